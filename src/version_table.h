/* The version table (one row per current head, as Alembic's) and the applied-steps history
 * table beside it (<version_table>_history: who applied what, when, how long, checksum).
 * No Lua here. */
#ifndef LM_VERSION_TABLE_H
#define LM_VERSION_TABLE_H

#include <libpq-fe.h>
#include <stddef.h>

#include "conn.h"
#include "dag.h"
#include "error.h"

/* The engine's own tables beside the version table are named by these suffixes on its table
 * part (luamigrate_version_history, ...). lm_vt_init applies them online; the --sql path
 * and autogenerate (which skips the engine's tables) read them through core.version_table. */
#define LM_VT_HISTORY_SUFFIX "_history"
#define LM_VT_LOCK_SUFFIX "_lock"
#define LM_VT_JOURNAL_SUFFIX "_journal"

/* The order version rows are read in, by every reader (lm_vt_read, the fleet's probe): byte
 * order, so several heads are listed alike whatever the database's collation. */
#define LM_VT_ROWS_ORDER "ORDER BY version_num COLLATE \"C\""

/* The bookkeeping statements, each a template: one %s for the quoted table name, then $1, $2
 * for the values (the row statements). The online run formats them and binds the values;
 * the --sql path fills in the same text with literals (luamigrate.offline). */
typedef enum lm_vt_sql {
  LM_VT_SQL_CREATE_VERSION, /* the version table */
  LM_VT_SQL_CREATE_HISTORY, /* the history table */
  LM_VT_SQL_CREATE_JOURNAL, /* the journal (journal.h) */
  LM_VT_SQL_INSERT,         /* $1: the id added */
  LM_VT_SQL_DELETE,         /* $1: the id removed */
  LM_VT_SQL_UPDATE,         /* $1: the new id, $2: the id it replaces */
  LM_VT_SQL_COUNT
} lm_vt_sql;

/* The template of `which`, and its name in core.version_table ("create_version", ...). */
const char *lm_vt_sql_text(lm_vt_sql which);
const char *lm_vt_sql_name(lm_vt_sql which);

/* What lm_vt_prefetch reads, each for its reader. */
typedef enum lm_vt_pre {
  LM_VT_PRE_ROWS,    /* lm_vt_read's */
  LM_VT_PRE_APPLIED, /* lm_vt_applied_checksums' */
  LM_VT_PRE_STAMPED, /* lm_vt_stamped's */
  LM_VT_PRE_JOURNAL, /* lm_journal_read's */
  LM_VT_PRE_COUNT
} lm_vt_pre;

/* Quoted names for a (possibly schema-qualified) version table, and what this run already
 * knows of the tables. */
typedef struct lm_vt {
  char *table;   /* e.g. "public"."luamigrate_version" or "luamigrate_version" */
  char *history; /* same, with "_history" appended to the table part */
  char *lock;    /* same, with "_lock": the lease of lock = "table" */
  char *journal; /* same, with "_journal": statements of a half-done migration (journal.h) */
  /* lm_vt_probe's answer, when known: which of the tables exist, and whether the journal
   * has every column (journal.h). The existence checks answer from it without a round trip;
   * a table this run creates (lm_vt_ensure, lm_journal_ensure) is noted in it, and a failed
   * creation clears it (known = 0: asked again). */
  int known, has_table, has_history, has_journal, journal_whole;
  /* lm_vt_prefetch's results, until lm_vt_forget (NULL: not read, or the table is missing) */
  PGresult *pre[LM_VT_PRE_COUNT];
  /* the probe in flight between lm_vt_probe_send and lm_vt_probe_wait */
  lm_stmt probe_stmt;
  const char *probe_vals[3];
  lm_batch probe;
} lm_vt;

int lm_vt_init(lm_vt *vt, PGconn *conn, const char *name, lm_error *err);
void lm_vt_free(lm_vt *vt);

/* *exists = the (quoted, possibly qualified) table exists. */
int lm_vt_table_exists(PGconn *conn, const char *quoted, int *exists, lm_error *err);

/* The same for one of vt's own tables (`quoted` is vt->table, ->history or ->journal),
 * answered from the probe when it is known; any other name is asked. */
int lm_vt_has(lm_vt *vt, PGconn *conn, const char *quoted, int *exists, lm_error *err);

/* The probe: which of the tables exist and whether the journal is whole, in one statement.
 * _send sends it and returns (the caller may wait on another connection meanwhile), _wait
 * reads its answer into vt; lm_vt_probe does both. */
int lm_vt_probe_send(lm_vt *vt, PGconn *conn, lm_error *err);
int lm_vt_probe_wait(lm_vt *vt, PGconn *conn, lm_error *err);
int lm_vt_probe(lm_vt *vt, PGconn *conn, lm_error *err);

/* Reads, in one round trip (the probe first when it is not known), what a command starts
 * from: the version rows, the applied checksums, the journal, and with `stamped` the stamps.
 * Until lm_vt_forget, lm_vt_read, lm_vt_applied_checksums, lm_vt_stamped and
 * lm_journal_read answer from it: a command that writes calls lm_vt_forget first. */
int lm_vt_prefetch(lm_vt *vt, PGconn *conn, int stamped, lm_error *err);
void lm_vt_forget(lm_vt *vt);
/* A copy of the prefetched result `which` (the caller PQclears it), or NULL when none was
 * read (not asked for, or its table is missing: lm_vt_has knows which). */
PGresult *lm_vt_prefetched(lm_vt *vt, lm_vt_pre which);

/* Creates the version, history and journal tables if missing. */
int lm_vt_ensure(lm_vt *vt, PGconn *conn, lm_error *err);

/* Reads the version rows (ids malloc'd, sorted). A missing table reads as no rows. */
int lm_vt_read(lm_vt *vt, PGconn *conn, char ***ids, size_t *n, lm_error *err);
void lm_vt_free_ids(char **ids, size_t n);

/* Row changes; each checks that exactly one row matched. */
int lm_vt_insert(lm_vt *vt, PGconn *conn, const char *id, lm_error *err);
int lm_vt_delete(lm_vt *vt, PGconn *conn, const char *id, lm_error *err);
int lm_vt_update(lm_vt *vt, PGconn *conn, const char *from, const char *to, lm_error *err);
int lm_vt_purge(lm_vt *vt, PGconn *conn, lm_error *err);

typedef struct lm_vt_record {
  const char *revision;
  const char *operation; /* "upgrade", "downgrade", "stamp" */
  const char *from_ids;  /* space-separated, "" for none */
  const char *to_ids;
  const char *message;
  const char *file;
  const char *checksum; /* hex SHA-256 of the file's bytes (checksum.h); may be NULL */
  double started_at;    /* Unix epoch seconds */
  double duration_ms;
} lm_vt_record;

int lm_vt_record_step(lm_vt *vt, PGconn *conn, const lm_vt_record *rec, lm_error *err);

/* Writes s to out (room for 4 * strlen(s) + 1 bytes) as valid UTF-8: each byte that does not
 * begin a well-formed sequence becomes the four characters \xNN. The history's text columns
 * take the user's name, the host, file paths and docstrings as they come; a stray Latin-1
 * byte there must neither fail a step at its history insert (online or in a --sql script)
 * nor be lost silently. Returns out. */
char *lm_vt_utf8_clean(const char *s, char *out);

/* One version-row change of a step: INSERT to, DELETE from, or UPDATE from -> to. */
typedef struct lm_vt_change {
  lm_vt_kind kind;
  const char *from, *to;
} lm_vt_change;

/* Applies a step's version-row changes (each must match exactly one row, as with
 * lm_vt_insert/delete/update) and records its history row, all in one round trip (a
 * pipeline). At most 64 changes. */
int lm_vt_step(lm_vt *vt, PGconn *conn, const lm_vt_change *changes, size_t n,
               const lm_vt_record *rec, lm_error *err);

/* lm_vt_step (and lm_journal_clear) as statements to send in one pipeline with the
 * migration's and its COMMIT, none of whose results is read before the COMMIT: a guard that
 * fails outside the migration's transaction block (LOCK TABLE: 25P01 when the migration
 * ended it, 25P02 when it is aborted), each row change checked by the server to match one
 * row (a failure aborts the transaction, so the COMMIT rolls back), the history row, and
 * the journal's rows of the revision when clear_journal. *nout statements in out (room for
 * cap, at least n + 3), each with its parameters (owned: lm_vt_stmts_free) as lm_vt_step
 * binds them, so what the server runs and reports is the same text. lm_vt_mark_sql is the
 * statement that starts the step's clock on the server, sent before its ops. */
typedef enum lm_vt_piece {
  LM_VT_PIECE_GUARD,
  LM_VT_PIECE_ROW,
  LM_VT_PIECE_HISTORY,
  LM_VT_PIECE_JOURNAL
} lm_vt_piece;
enum { LM_VT_STMT_PARAMS = 11 }; /* the most any of them has: the history row's */
typedef struct lm_vt_stmt {
  lm_vt_piece piece;
  lm_stmt stmt; /* what to send: points into the fields below */
  char *sql;
  char *owned[LM_VT_STMT_PARAMS]; /* the parameters' values */
  const char *values[LM_VT_STMT_PARAMS];
  int lengths[LM_VT_STMT_PARAMS], formats[LM_VT_STMT_PARAMS];
} lm_vt_stmt;
int lm_vt_step_sql(lm_vt *vt, const lm_vt_change *changes, size_t n, const lm_vt_record *rec,
                   int clear_journal, lm_vt_stmt *out, size_t cap, size_t *nout, lm_error *err);
void lm_vt_stmts_free(lm_vt_stmt *stmts, size_t n);
const char *lm_vt_mark_sql(void);
/* The failure (err, as the server reported it) of a statement of lm_vt_step_sql, made the
 * error lm_vt_step would have reported: a row change that did not match one row reads
 * "expected to match one row when ...". Returns err's code. */
int lm_vt_step_failed(lm_vt *vt, lm_vt_piece piece, lm_error *err);

/* The latest upgrade recorded for each revision: revision, checksum (may be NULL), when it
 * started (epoch seconds), its duration (ms), and the start as text. *res holds the rows
 * (columns 0 to 4; none when the history table does not exist); PQclear it. */
int lm_vt_applied_checksums(lm_vt *vt, PGconn *conn, PGresult **res, lm_error *err);
/* The revisions some stamp moved the version table to (one column of ids): what a status
 * without a record of a revision running can say it was stamped from. */
int lm_vt_stamped(lm_vt *vt, PGconn *conn, PGresult **res, lm_error *err);

/* repair: makes `checksum` (lm_vt_checksum's hex) the recorded checksum of revision's latest
 * upgrade, as if the file had been applied as it is now. */
int lm_vt_set_checksum(lm_vt *vt, PGconn *conn, const char *revision, const char *checksum,
                       lm_error *err);

#endif
