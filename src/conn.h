/* Connections and statement execution over libpq: connect with URI/conninfo/PG* fallbacks,
 * one checked exec path, structured server errors, notices, URL redaction. No Lua here. */
#ifndef LM_CONN_H
#define LM_CONN_H

#include <libpq-fe.h>

#include "conninfo.h"
#include "error.h"

/* Opens a connection. `conninfo` is a libpq URI or key=value string, or NULL/"" for libpq's
 * PG* environment defaults. The application_name falls back to "luamigrate". Notices are
 * printed to stderr prefixed with their severity. Returns NULL and fills err (LM_ECONN) on
 * failure; the message never contains a password. */
PGconn *lm_conn_open(const char *conninfo, lm_error *err);

/* Opens n (at most LM_CONN_OPEN_MAX) connections to `conninfo` at once: their connection
 * round trips overlap (libpq's non-blocking PQconnectStartParams/PQconnectPoll), so two cost
 * what one does. out[0..n-1] get them, each as lm_conn_open's; on failure none stays open,
 * out[] is all NULL and err names the first that failed. connect_timeout is kept, for
 * the whole attempt. A conninfo (or PGHOST/PGHOSTADDR) listing several hosts is opened by
 * libpq's own loop instead (PQconnectdbParams, one connection after the other), which
 * gives each host connect_timeout in turn and honours target_session_attrs as libpq
 * documents; a single host name with several addresses (localhost: ::1 and 127.0.0.1) gets
 * the one deadline for all of them. */
enum { LM_CONN_OPEN_MAX = 4 };
int lm_conn_open_n(const char *conninfo, PGconn **out, int n, lm_error *err);

/* lm_conn_open_n in a thread of its own, so the caller does other work (loading revision
 * files) while the connections' round trips go on. _begin returns NULL when no thread could
 * be started (then open them the usual way). _end waits for it and hands the connections
 * over as lm_conn_open_n would (n must be what was begun: else they are closed and an
 * internal error returned); _abandon waits and closes them. Each pending attempt is ended
 * or abandoned once. */
typedef struct lm_conn_pending lm_conn_pending;
lm_conn_pending *lm_conn_open_begin(const char *conninfo, int n);
int lm_conn_open_end(lm_conn_pending *p, PGconn **out, int n, lm_error *err);
void lm_conn_open_abandon(lm_conn_pending *p);

/* Executes one statement with text parameters (values[i] NULL = SQL NULL; `formats` may be
 * NULL for all-text, or give 1 for a binary parameter with its length in `lengths`).
 * On success returns 0 and, if res is non-NULL, hands the result to the caller (who
 * PQclears it); otherwise the result is cleared here. On failure the result is always
 * cleared and err carries SQLSTATE, message, detail, hint, position, context and the
 * statement; returns LM_ESQL, or LM_ECONN when the connection is gone. */
int lm_exec(PGconn *conn, const char *sql, int nparams, const char *const *values,
            const int *lengths, const int *formats, PGresult **res, lm_error *err);

/* One statement of lm_exec_batch: a single statement (extended protocol) with parameters as
 * for lm_exec. With keep set, a successful result is handed back in res (the caller
 * PQclears it); otherwise, and on any failure, res is NULL. `failed` is set on the one
 * statement the batch's failure is reported for (none when it was not a statement's: the
 * guard, a held-back BEGIN, the connection), so the caller knows which it was without
 * reading the message. */
typedef struct lm_stmt {
  const char *sql;
  const char *const *values;
  const int *lengths;
  const int *formats;
  PGresult *res;
  int nparams;
  int keep;
  int failed;
} lm_stmt;

/* Sends n single statements in libpq's pipeline mode, one round trip for all, and reads
 * every result. The server runs them in order and skips the rest after a failure, which is
 * reported with the failing statement's own text as lm_exec reports it. */
int lm_exec_batch(PGconn *conn, lm_stmt *stmts, size_t n, lm_error *err);

/* lm_exec_batch in two halves, so the wait for one connection's results overlaps another's
 * round trip: _send sends stmts[0..n-1] (fill stmts and n; the rest is the batch's own) and
 * returns at once; _wait reads every result and reports as lm_exec_batch does. Nothing else
 * may be sent on conn in between. _send returns non-zero only when nothing was sent (the
 * guard, a queue in flight): then b->rc is the code and err filled, and no _wait follows. */
typedef struct lm_batch {
  lm_stmt *stmts;
  size_t n;
  size_t sent;
  int with_begin, entered, synced, rc;
} lm_batch;
int lm_exec_batch_send(PGconn *conn, lm_batch *b, lm_error *err);
int lm_exec_batch_wait(PGconn *conn, lm_batch *b, lm_error *err);

/* The per-connection state libpq does not keep for us: a BEGIN held back, the guard, the
 * transaction control of the last string run, and the pipeline queue. Opaque; created with
 * the connection (lm_conn_open, or on first use for one opened elsewhere) and freed by
 * PQfinish, so two connections, in one thread or two, share nothing. */
typedef struct lm_conn lm_conn;

/* Statements lm_conn_queue keeps in flight before the caller must collect them. */
enum { LM_CONN_PIPE_MAX = 64 };

/* Pipelining (the `pipeline` setting) on conn: lm_conn_pipe_enable(conn, 1) allows
 * lm_conn_queue, 0 ends it (dropping what is queued, as lm_conn_pipe_discard).
 * lm_conn_pipe_suspend(+1/-1) makes the queue wait for each result again for a while (a
 * pcall, an autocommit block). lm_conn_pipe_open says whether a statement may be queued now;
 * lm_conn_pipe_pending whether results wait to be collected; lm_conn_queued how many. */
void lm_conn_pipe_enable(PGconn *conn, int on);
void lm_conn_pipe_suspend(PGconn *conn, int delta);
int lm_conn_pipe_open(PGconn *conn);
int lm_conn_pipe_pending(PGconn *conn);
size_t lm_conn_queued(PGconn *conn);

/* Sends one statement (s's sql and parameters, as lm_exec_batch's; libpq copies them, so
 * they need not outlive the call) without waiting for its result (libpq pipeline mode,
 * entered here; a BEGIN held back by lm_conn_defer_begin goes first). It stays in libpq's
 * buffer until
 * the next one is queued or the sync, which saves a message for a migration's last
 * statement. `where` (may be NULL) is the caller's note of where the statement came from,
 * kept with it (lm_conn_queued_where). Returns how many statements went (1, or 2 with the
 * BEGIN), or a negative code with err filled. Nothing else may be sent on conn until
 * lm_conn_pipe_sync has collected the results. */
int lm_conn_queue(PGconn *conn, const lm_stmt *s, const char *where, lm_error *err);

/* Collects the results of the statements lm_conn_queue sent and leaves pipeline mode. On
 * failure fills err as lm_exec would for the first statement that failed, sets *failed to
 * its index in the queue (the server skipped the ones after it) and returns the code;
 * *failed is the queue's length on success. The queue is kept until lm_conn_pipe_discard,
 * so the caller can read the failed statement's where. */
int lm_conn_pipe_sync(PGconn *conn, size_t *failed, lm_error *err);
const char *lm_conn_queued_where(PGconn *conn, size_t i);
/* Collects what is in flight, ignoring failures, and empties the queue (a failed step,
 * before its rollback). */
void lm_conn_pipe_discard(PGconn *conn);

/* Holds back a BEGIN on conn: it is sent with the next lm_exec or lm_exec_batch there (in
 * one message with a simple-protocol statement, or first in the pipeline), saving the round
 * trip. lm_conn_begin_pending says whether it is still unsent (the transaction has, for the
 * program's purposes, begun); lm_conn_forget_begin drops it unsent (a failed step).
 * lm_conn_defer_begin returns LM_ENOMEM (err filled) when conn's state cannot be had. */
int lm_conn_defer_begin(PGconn *conn, lm_error *err);
int lm_conn_begin_pending(PGconn *conn);
void lm_conn_forget_begin(PGconn *conn);

/* A check run before every statement sent on `conn` through lm_exec, lm_exec_batch and
 * lm_conn_queue (the migration lock's watch: a lost lock stops the run before its next
 * statement). check returns LM_OK or fills err; check NULL removes it (conn NULL: nothing). */
typedef int (*lm_conn_guard_fn)(void *ud, lm_error *err);
void lm_conn_set_guard(PGconn *conn, lm_conn_guard_fn check, void *ud);

/* Transaction control among the commands of the last string lm_exec ran on conn (COMMIT,
 * ROLLBACK, BEGIN in a migration's op.execute): LM_TXC_COMMIT or LM_TXC_ROLLBACK for the
 * last one that ended a transaction, | LM_TXC_BEGIN when a BEGIN followed it (or came alone). */
enum { LM_TXC_COMMIT = 1, LM_TXC_ROLLBACK = 2, LM_TXC_BEGIN = 4 };
int lm_conn_last_tx_control(PGconn *conn);

/* The one rule for a statement a signal stopped: a cancel is pending (lm_cancel) and the
 * server reported SQLSTATE 57014 (query_canceled); any other failure is the statement's
 * own, reported as it is, signal or not. When it holds, err becomes LM_EINTR with the message
 * that says so (the statement may have waited on another session's lock) and LM_EINTR is
 * returned; else rc. lm_exec and lm_exec_batch apply it; a caller collecting a pipeline
 * applies it to what it collected. */
int lm_conn_cancelled(int rc, lm_error *err);

/* Fills err from a failed result (does not clear it). */
int lm_error_from_result(lm_error *err, PGconn *conn, const PGresult *res, const char *sql);

#endif
