/* Transaction control: the engine's BEGIN, COMMIT, ROLLBACK and savepoints, and the
 * timeouts set for a migration's transaction or an autocommit block. */
#include "tx.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conn.h"

static int simple(PGconn *conn, const char *sql, lm_error *err) {
  return lm_exec(conn, sql, 0, NULL, NULL, NULL, NULL, err);
}

int lm_tx_begin(PGconn *conn, lm_error *err) {
  return simple(conn, LM_TX_BEGIN_SQL, err);
}

int lm_tx_begin_deferred(PGconn *conn, lm_error *err) {
  return lm_conn_defer_begin(conn, err);
}

int lm_tx_commit(PGconn *conn, lm_error *err) {
  return simple(conn, LM_TX_COMMIT_SQL, err);
}

int lm_tx_rollback(PGconn *conn, lm_error *err) {
  lm_conn_pipe_discard(conn);
  lm_conn_forget_begin(conn);
  if (PQtransactionStatus(conn) == PQTRANS_IDLE) return LM_OK;
  lm_error ignore = {0};
  int rc = simple(conn, "ROLLBACK", err ? err : &ignore);
  lm_error_clear(&ignore);
  return rc;
}

int lm_tx_savepoint(PGconn *conn, const char *name, lm_error *err) {
  char sql[128];
  snprintf(sql, sizeof sql, "SAVEPOINT %s", name);
  return simple(conn, sql, err);
}

int lm_tx_release(PGconn *conn, const char *name, int undo, lm_error *err) {
  char sql[160];
  snprintf(sql, sizeof sql, "%s SAVEPOINT %s", undo ? "ROLLBACK TO" : "RELEASE", name);
  return simple(conn, sql, err);
}

size_t lm_tx_timeouts_stmts(const char *lock_timeout, const char *statement_timeout,
                            lm_tx_scope scope, lm_stmt out[2], const char *params[2][2]) {
  static const char *const names[2] = {"lock_timeout", "statement_timeout"};
  static const char *const resets[2] = {"RESET lock_timeout", "RESET statement_timeout"};
  const char *values[2] = {lock_timeout, statement_timeout};
  size_t n = 0;
  for (int i = 0; i < 2; i++) {
    if (!values[i]) continue;
    params[n][0] = names[i];
    params[n][1] = values[i];
    if (scope == LM_TX_RESET)
      out[n] = (lm_stmt){.sql = resets[i]};
    else
      out[n] = (lm_stmt){.sql = scope == LM_TX_LOCAL ? "SELECT set_config($1, $2, true)"
                                                     : "SELECT set_config($1, $2, false)",
                         .nparams = 2,
                         .values = params[n]};
    n++;
  }
  return n;
}

int lm_tx_timeouts(PGconn *conn, const char *lock_timeout, const char *statement_timeout,
                   lm_tx_scope scope, lm_error *err) {
  const char *params[2][2];
  lm_stmt stmts[2];
  size_t n = lm_tx_timeouts_stmts(lock_timeout, statement_timeout, scope, stmts, params);
  return n ? lm_exec_batch(conn, stmts, n, err) : LM_OK;
}
