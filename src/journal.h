/* The journal table (<version_table>_journal): statement-by-statement record of a migration
 * with autocommit blocks, whose work is committed in pieces. A row per statement that is
 * committed (the transactional statements before a block, written in the transaction that the
 * block's COMMIT ends) or was started in an autocommit block (finished_at set once it ran).
 * Rows exist only while a revision is half-done: its final transaction deletes them. No Lua.
 * The table is created with the version table (and by --sql scripts, luamigrate.offline). */
#ifndef LM_JOURNAL_H
#define LM_JOURNAL_H

#include <libpq-fe.h>
#include <stddef.h>

#include "error.h"
#include "version_table.h"

typedef struct lm_journal_row {
  int ordinal;     /* 1-based, over every statement the migration executed */
  int block;       /* 0: a committed transactional statement; n: in autocommit block n */
  char *statement; /* the text as sent, with its parameters appended */
  char *sha256;
  int done;        /* the statement completed (always for block 0) */
  char *error;     /* the error it failed with, or NULL */
  int backend_pid; /* block statements: the backend that ran it (0: not recorded) */
  int in_tx;       /* ... in a transaction of its own, committed with its done mark */
  int active;      /* ... and that backend is still running it (pg_stat_activity) */
  char *started;   /* when it started, as text */
} lm_journal_row;

typedef struct lm_journal {
  char *revision;  /* NULL when nothing is half-done */
  char *operation; /* "upgrade" or "downgrade": the step that is half-done */
  lm_journal_row *rows;
  size_t n;
} lm_journal;

void lm_journal_free(lm_journal *p);

/* Reads the record of the half-done revision (p->revision NULL: none). A missing table reads
 * as none. More than one revision recorded is an error naming them. */
int lm_journal_read(lm_vt *vt, PGconn *conn, lm_journal *p, lm_error *err);

/* The columns a journal made before downgrades and backend pids were recorded lacks (and
 * lm_journal_ensure adds), and their count: lm_vt_probe asks for them too. */
#define LM_JOURNAL_LATE_COLUMNS "'operation', 'backend_pid', 'in_transaction'"
#define LM_JOURNAL_LATE_COUNT "3"
/* A finished revision's rows cleared (%s the quoted journal, $1 the revision). */
#define LM_JOURNAL_CLEAR_SQL "DELETE FROM %s WHERE revision = $1"

/* The statement lm_journal_read runs (malloc'd; NULL when out of memory): lm_vt_prefetch
 * sends it with the other reads. */
char *lm_journal_select_sql(const lm_vt *vt);

/* Creates the table if missing (the DDL is luamigrate.offline's too). */
int lm_journal_ensure(lm_vt *vt, PGconn *conn, lm_error *err);

/* In the migration's transaction, before an autocommit block's COMMIT: creates the table if
 * missing (a database older than the journal) and records statements first..first+n-1 as committed
 * (rows already there stay). */
int lm_journal_save(lm_vt *vt, PGconn *conn, const char *revision, const char *operation, int first,
                    char *const *statements, size_t n, lm_error *err);

/* Outside a transaction: statement `ordinal` of autocommit block `block` starts (its row is
 * written with the backend running it, or reset when a resumed run re-runs it) / ended
 * (error NULL: it ran) / was found done by a resumed run (lm_journal_mark_done). */
int lm_journal_start(lm_vt *vt, PGconn *conn, const char *revision, const char *operation,
                     int ordinal, int block, const char *statement, int in_tx, lm_error *err);
/* Inside the block statement's own transaction, just after it ran: marks it done and
 * commits, in one round trip, so the mark and the statement's work commit together. */
int lm_journal_end_commit(lm_vt *vt, PGconn *conn, const char *revision, int ordinal,
                          lm_error *err);
int lm_journal_mark_done(lm_vt *vt, PGconn *conn, const char *revision, int ordinal, lm_error *err);
int lm_journal_end(lm_vt *vt, PGconn *conn, const char *revision, int ordinal, const char *error,
                   lm_error *err);

/* Deletes the record of `revision` (NULL: of every revision), when the table exists. */
int lm_journal_clear(lm_vt *vt, PGconn *conn, const char *revision, lm_error *err);

/* A recorded CREATE [UNIQUE] INDEX CONCURRENTLY [IF NOT EXISTS] name ON [ONLY] table ...:
 * fills index (the name as the catalog stores it) and table (as written, for to_regclass)
 * and returns 1; 0 for any other statement (or an unnamed index). Pure; fuzzed. */
int lm_journal_cic_target(const char *sql, char *index, size_t icap, char *table, size_t tcap);

/* For a recorded CREATE INDEX CONCURRENTLY statement: *state 0 when its index does not
 * exist, 1 when it exists and is VALID, -1 when it exists INVALID; qualified (cap 256) gets
 * its schema-qualified, quoted name. *state 0 too for any other statement. */
int lm_journal_cic_state(PGconn *conn, const char *statement, int *state, char *qualified,
                         lm_error *err);

/* The user-facing account of a half-done revision: *message (one line) and *detail (what is
 * done, what was running, INVALID indexes found), both malloc'd. `path` names its file. */
int lm_journal_describe(const lm_journal *p, PGconn *conn, const char *path, char **message,
                        char **detail, lm_error *err);

#endif
