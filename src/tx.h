/* Transaction control, in one place: every BEGIN, COMMIT, ROLLBACK and SAVEPOINT the engine
 * issues, and the migration timeouts that go with a transaction. Knows libpq, not Lua. */
#ifndef LM_TX_H
#define LM_TX_H

#include <libpq-fe.h>

#include "conn.h"
#include "error.h"

/* The statements themselves, for the --sql script and for batches (lm_exec_batch). */
#define LM_TX_BEGIN_SQL "BEGIN"
#define LM_TX_COMMIT_SQL "COMMIT"

/* BEGIN now. */
int lm_tx_begin(PGconn *conn, lm_error *err);
/* BEGIN with the next statement sent on conn (lm_conn_defer_begin): one round trip less. */
int lm_tx_begin_deferred(PGconn *conn, lm_error *err);
int lm_tx_commit(PGconn *conn, lm_error *err);
/* Ends whatever transaction conn is in: results still queued are collected and dropped, a
 * BEGIN still held back is dropped unsent, an open (or aborted) transaction rolled back.
 * Returns the ROLLBACK's outcome with err filled; err NULL: a failure is ignored (the
 * caller is already reporting one). */
int lm_tx_rollback(PGconn *conn, lm_error *err);

/* SAVEPOINT name / RELEASE SAVEPOINT name, or ROLLBACK TO SAVEPOINT name (undo). */
int lm_tx_savepoint(PGconn *conn, const char *name, lm_error *err);
int lm_tx_release(PGconn *conn, const char *name, int undo, lm_error *err);

/* The migration timeouts (lock_timeout, statement_timeout; a NULL value is left alone), in
 * one round trip: LM_TX_LOCAL for the transaction (SET LOCAL: a session SET would leak
 * through a connection pooler), LM_TX_SESSION for an autocommit block, whose statements
 * run outside any transaction, LM_TX_RESET back to the session's defaults after it. */
typedef enum lm_tx_scope { LM_TX_LOCAL, LM_TX_SESSION, LM_TX_RESET } lm_tx_scope;
int lm_tx_timeouts(PGconn *conn, const char *lock_timeout, const char *statement_timeout,
                   lm_tx_scope scope, lm_error *err);

/* The statements lm_tx_timeouts sends (one per value given), for a caller that queues them
 * in the run's pipeline instead: out[] gets them, their parameters in params (the values
 * are the caller's and must outlive out); returns how many (0 to 2). */
size_t lm_tx_timeouts_stmts(const char *lock_timeout, const char *statement_timeout,
                            lm_tx_scope scope, lm_stmt out[2], const char *params[2][2]);

#endif
