/* The parts of a run the run loop (runner.c) shares with the statement journal
 * (run_journal.c), the dry run's listing and lock probe (run_dry.c), the offline runner and
 * the lint rendering (run_offline.c) and the step's error report (run_error.c). The entry
 * points (lm_run_plan, lm_run_plan_offline, lm_lint_render, ...) are declared in app.h. */
#ifndef LM_RUNNER_H
#define LM_RUNNER_H

#include <lua.h>

#include "app.h"
#include "bind/bind.h"
#include "journal.h"

/* Ids joined as Alembic prints them in "Running upgrade a, b -> c": "" for none; malloc'd. */
char *lm_run_comma_ids(const lm_dag *dag, const int *idx, size_t n);
/* Pushes the -x KEY=VALUE arguments as a table (op.get_x_argument()), online and in --sql. */
void lm_run_push_x(lua_State *L, const lm_app *app);

/* run_error.c: turns the Lua error table at the top (popped) into the user-facing error of
 * a failed step: "file:line: upgrade a -> b failed: ...", detail with revision, statement,
 * server fields and the user's frames of the traceback. */
void lm_run_step_error(lm_app *app, int idx, int upgrade, const char *from, const char *to,
                       lm_error *err);
/* The hint of a step that failed after an autocommit block committed part of it. */
void lm_run_half_done_hint(lm_app *app, int idx, int upgrade, lm_error *err);

/* run_journal.c: the journal of a migration with autocommit blocks. Every statement an
 * upgrade() or downgrade() executes gets an ordinal; lm_run_journal_hook sees each one (as
 * the Conns' hook), lm_run_journal_mode is the online autocommit protocol that writes what a
 * block's COMMIT makes permanent. Lives in lm_run_plan's frame; the run's closures reach it
 * only while the step's Run is open. */
typedef struct lm_run_journal {
  lm_app *app;
  const char *operation; /* "upgrade" or "downgrade" */
  int idx;               /* the revision running */
  int ordinal;           /* statements of this migration so far */
  int block;             /* the autocommit block running (0: none) */
  int nblocks;           /* autocommit blocks entered so far */
  char **seg;            /* transactional statements not yet journaled, ordinals seg_first.. */
  size_t nseg, cap;
  int seg_first;
  const lm_journal *resume; /* the interrupted run's record of this revision, or NULL */
  int skipped;
  int user_commit; /* the migration's own COMMIT made part of it permanent (tx_control) */
  int wrapped;     /* the block statement running goes in a transaction of its own */
  char *cur_key;   /* ... and its journaled text, to record it again if it cannot */
} lm_run_journal;

/* Empties j for revision idx (idx -1 and resume NULL: frees what it holds). */
void lm_run_journal_reset(lm_run_journal *j, int idx, const lm_journal *resume);
lm_conn_hook lm_run_journal_hook(lm_run_journal *j);
lm_run_mode lm_run_journal_mode(lm_run_journal *j);

/* run_dry.c: upgrade --dry-run. The dry-run autocommit protocol lists a block's statements
 * instead of running them; --locks probes what each statement locked and rewrote. */
lm_run_mode lm_run_dry_mode(void);
typedef struct lm_run_probe {
  PGconn *conn;
  PGresult *locks, *files; /* before the statement */
} lm_run_probe;
lm_conn_hook lm_run_probe_hook(lm_run_probe *p);
void lm_run_probe_clear(lm_run_probe *p);

#endif
