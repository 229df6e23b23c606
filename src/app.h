/* The state of one command invocation, shared by the command implementations, the loader
 * and the run loop: options, settings, the Lua state, the DAG, the connection, the lock.
 * Knows no Lua API: the state is a forward-declared struct lua_State. */
#ifndef LM_APP_H
#define LM_APP_H

#include "checksum.h"
#include "cli.h"
#include "config.h"
#include "dag.h"
#include "error.h"
#include "lock.h"
#include "version_table.h"

typedef struct lm_app {
  lm_opts *opts;
  struct lua_State *L;
  lm_config cfg;
  lm_dag *dag;
  int envs_ref; /* registry ref: table revision index+1 -> the file's environment */
  /* A run that executes migrations (upgrade, downgrade, lint) reads each file once: */
  int keep_sources;   /* loader: this command keeps the bytes it loads (srcs_ref) */
  int srcs_ref;       /* registry ref: index+1 -> the file's bytes as read at load, until
                         lm_loader_compile compiles them */
  int chunks_ref;     /* registry ref: index+1 -> the file's compiled chunk: a function not yet
                         run, or its lua_dump, from which each use loads a fresh closure */
  int keep_base_kb;   /* loader: the Lua heap (KiB) when the load began; what is kept is
                        bounded by its growth since, */
  int keep_budget_kb; /* to this (loader.c: keep_budget) */
  unsigned char (*sums)[33]; /* loader: SHA-256 of each revision's file as read, by DAG index:
                                byte 0 says it is set, the digest follows (half the hex's room) */
  size_t nsums;              /* slots in sums */
  PGconn *conn;
  struct lm_conn_pending *preconnect; /* connections opening while the files load (workspace.h) */
  lm_lock lock;
  lm_vt vt;
  int dry_run;    /* upgrade/downgrade --dry-run: one transaction, traced, rolled back */
  int show_locks; /* --dry-run --locks: each statement's new locks and table rewrites */
  const struct lm_journal *resume; /* upgrade --resume: the half-done revision's record */
  size_t steps_done;               /* steps the run recorded (a fleet's report: fleet.c) */
  char *first_from;                /* the revisions its first step started from ("base": none) */
  FILE *out; /* where a command's report goes: stdout, or a fleet target's capture (fleet.c) */
} lm_app;

/* loader.c: builds app->dag from the revision files (through the revision cache) and
 * creates the table of environments app->envs_ref, which lm_loader_env fills as revisions
 * run. For upgrade, downgrade and lint each file's bytes are kept as read (the checksum is
 * theirs), so a run never reads a file twice. */
int lm_loader_load(lm_app *app, lm_error *err);
/* Pushes the environment of revision idx (running its file the first time it is asked:
 * its chunk as lm_loader_compile or the load compiled it, in a fresh environment). */
int lm_loader_env(lm_app *app, int idx, lm_error *err);
/* Compiles, without running, the file of every revision in plan (files the metadata
 * scanner read were never compiled) from the bytes the load read, and keeps the chunks for
 * lm_loader_env: a syntax error anywhere in a run is refused, naming file:line, before any
 * of its steps runs. The kept bytes of revisions outside the plan are dropped. */
int lm_loader_compile(lm_app *app, const lm_revset *plan, lm_error *err);
/* Forgets the environment of revision idx once its step is done, so a long run does not
 * keep every file's environment alive (a later lm_loader_env runs the chunk again, in a
 * new environment). */
void lm_loader_release(lm_app *app, int idx);
/* The hex SHA-256 of revision idx's file as luamigrate last read it (at load, or when it
 * ran), written into `hex` and returned, or NULL when unknown. */
const char *lm_loader_checksum(const lm_app *app, int idx, char hex[LM_CHECKSUM_HEX]);
/* A file's whole leading comment (malloc'd; "" when it has none or cannot be read). */
char *lm_loader_longdoc(const char *path);
/* Reads a whole file (malloc'd, NUL-terminated; *len without the NUL). */
int lm_read_file(const char *path, char **data, size_t *len, lm_error *err);

/* runner.c: applies `plan` (upgrade or downgrade steps) to the database. `heads` holds
 * the current heads and is updated as steps commit. A transaction already open on
 * app->conn is continued. With app->dry_run every statement is printed with its timing,
 * autocommit blocks are listed and skipped, and the transaction is rolled back at the end. */
int lm_run_plan(lm_app *app, lm_revset *heads, const lm_revset *plan, int upgrade, lm_error *err);

/* run_offline.c, lint: renders each revision of `plan` not in `skip` (may be NULL) the way --sql
 * does, into the lint session at stack index `session` (luamigrate.lint): session:begin(ctx,
 * revision, file), the migration's upgrade() or downgrade(), session:finish_revision(ok,
 * err) each, then session:done(). Nothing is sent to a database. */
int lm_lint_render(lm_app *app, const lm_revset *plan, int upgrade, int session,
                   const lm_revset *skip, lm_error *err);

/* run_offline.c, --sql: writes the plan as a SQL script to stdout instead of running it.
 * `from_base` adds the version-table DDL. */
int lm_run_plan_offline(lm_app *app, lm_revset *heads, const lm_revset *plan, int upgrade,
                        int from_base, lm_error *err);
/* One version-table change, executed online (app->conn) or written offline. */
int lm_vt_apply(lm_app *app, int offline, lm_vt_kind kind, const char *from, const char *to,
                lm_error *err);
/* Writes one statement of a --sql script ("sql;" and a blank line). */
void lm_emit_sql(const char *sql);
/* The script's first statement, SET client_encoding (luamigrate.offline.preamble). */
int lm_emit_offline_preamble(lm_app *app, lm_error *err);
int lm_emit_offline_ddl(lm_app *app, lm_error *err);
/* Writes the history row of a stamp (from/to: space-separated ids) to a --sql script. */
int lm_emit_stamp_history(lm_app *app, const char *revision, const char *from, const char *to,
                          lm_error *err);

#endif
