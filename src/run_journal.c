/* The statement journal, the runner's side (journal.c owns its table and statements): every
 * statement an upgrade() or downgrade() executes gets an ordinal. The transactional ones are
 * kept in memory until an autocommit block's COMMIT is due; then they are written to the
 * journal in that same transaction, so the journal says exactly what the COMMIT made
 * permanent. Inside a block each statement's row is written before it runs and marked after,
 * each committing on its own. The step's final transaction deletes the rows with the version
 * row change. A resumed run (upgrade/downgrade --resume) skips the statements the journal
 * records done, after checking that each has the same ordinal and text as before. */
#include <lauxlib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conn.h"
#include "log.h"
#include "runner.h"
#include "tx.h"

void lm_run_journal_reset(lm_run_journal *j, int idx, const lm_journal *resume) {
  for (size_t i = 0; i < j->nseg; i++) free(j->seg[i]);
  free(j->seg);
  free(j->cur_key);
  lm_app *app = j->app;
  const char *operation = j->operation;
  memset(j, 0, sizeof *j);
  j->app = app;
  j->operation = operation;
  j->idx = idx;
  j->seg_first = 1;
  j->resume = resume;
}

/* The text a statement is journaled and compared by: the SQL, then its parameters. */
static char *statement_key(const char *sql, int n, const char *const *vals) {
  size_t len = strlen(sql) + 1;
  for (int i = 0; i < n; i++) len += 32 + (vals[i] ? strlen(vals[i]) : 4);
  char *key = malloc(len);
  if (!key) return NULL;
  size_t used = strlen(sql);
  memcpy(key, sql, used + 1);
  for (int i = 0; i < n; i++)
    used += (size_t)snprintf(key + used, len - used, vals[i] ? "\n-- $%d = '%s'" : "\n-- $%d = %s",
                             i + 1, vals[i] ? vals[i] : "NULL");
  return key;
}

static int journal_before(void *ud, const char *sql, int n, const char *const *vals,
                          lm_error *err) {
  lm_run_journal *j = ud;
  lm_app *app = j->app;
  const char *rev = lm_dag_id(app->dag, j->idx);
  char *key = statement_key(sql, n, vals);
  if (!key) return lm_error_set(err, LM_ENOMEM, "out of memory");
  j->ordinal++;
  if (j->resume && (size_t)j->ordinal <= j->resume->n) {
    const lm_journal_row *row = &j->resume->rows[j->ordinal - 1];
    if (row->ordinal != j->ordinal || strcmp(row->statement, key) != 0) {
      lm_error_set(err, LM_ERR,
                   "--resume: revision %s changed since the interrupted run: its statement %d "
                   "is not the one the journal records, so what is done cannot be told",
                   rev, j->ordinal);
      size_t dl = strlen(row->statement) + strlen(key) + 64;
      char *detail = malloc(dl);
      if (detail) snprintf(detail, dl, "recorded: %s\nnow:      %s", row->statement, key);
      free(err->detail);
      err->detail = detail;
      lm_error_setfield(&err->hint,
                        "restore the file as it was, or undo the recorded statements by hand "
                        "and run 'luamigrate stamp' to clear the record");
      free(key);
      return err->code;
    }
    if (row->done) {
      lm_log_info("  skipped (done by the interrupted run): statement %d%s", j->ordinal,
                  row->block ? "" : " (committed)");
      j->skipped++;
      free(key);
      return 1; /* a committed transactional statement is already in the journal too */
    }
    /* A CREATE INDEX CONCURRENTLY that was running: its index says how far it got. */
    char own[256];
    int state = 0, rc = LM_OK;
    if (j->block && (rc = lm_journal_cic_state(app->conn, row->statement, &state, own, err))) {
      free(key);
      return rc;
    }
    if (state > 0) {
      lm_log_info(
          "  skipped: statement %d, as its index %s exists and is VALID (the server "
          "finished it after the interrupted run stopped)",
          j->ordinal, own);
      rc = lm_journal_mark_done(&app->vt, app->conn, rev, j->ordinal, err);
      free(key);
      if (rc) return rc;
      j->skipped++;
      return 1;
    }
    if (state < 0) {
      char drop[300];
      snprintf(drop, sizeof drop, "DROP INDEX CONCURRENTLY %s", own);
      lm_log_info(
          "  statement %d: dropping the INVALID index %s the interrupted run left, "
          "to build it again",
          j->ordinal, own);
      if ((rc = lm_exec(app->conn, drop, 0, NULL, NULL, NULL, NULL, err))) {
        free(key);
        return rc;
      }
    }
  }
  if (j->block == 0) {
    if (j->nseg == j->cap) {
      size_t cap = j->cap ? j->cap * 2 : 16;
      char **seg = realloc(j->seg, cap * sizeof *seg);
      if (!seg) {
        free(key);
        return lm_error_set(err, LM_ENOMEM, "out of memory");
      }
      j->seg = seg;
      j->cap = cap;
    }
    if (j->nseg == 0) j->seg_first = j->ordinal;
    j->seg[j->nseg++] = key;
    return 0;
  }
  /* A block statement runs in a transaction of its own that commits with its done mark, so
   * a run killed while it runs leaves it recorded exactly: done, or undone with the
   * transaction. A statement that cannot run in a transaction (CREATE INDEX CONCURRENTLY,
   * VACUUM, ...) runs as sent; its index tells how far it got (lm_journal_cic_state). */
  char ix[256], tb[1024];
  j->wrapped = !lm_journal_cic_target(sql, ix, sizeof ix, tb, sizeof tb);
  int rc = lm_journal_start(&app->vt, app->conn, rev, j->operation, j->ordinal, j->block, key,
                            j->wrapped, err);
  free(j->cur_key);
  j->cur_key = key;
  if (rc == LM_OK && j->wrapped) rc = lm_tx_begin_deferred(app->conn, err);
  return rc < 0 ? rc : 0;
}

static int tx_control(lm_run_journal *j, lm_error *err);
static PGconn *app_conn(const lm_run_journal *j);

/* Can run only outside a transaction block: 25001 (CREATE INDEX CONCURRENTLY unnamed,
 * VACUUM, ALTER SYSTEM, ...) or 2D000 (a procedure's own COMMIT). */
static int needs_autocommit(const lm_error *e) {
  return e && e->sqlstate && (!strcmp(e->sqlstate, "25001") || !strcmp(e->sqlstate, "2D000"));
}

static int journal_after(void *ud, const lm_error *failure, lm_error *err) {
  lm_run_journal *j = ud;
  if (j->block == 0) return failure ? LM_OK : tx_control(j, err);
  lm_app *app = j->app;
  const char *rev = lm_dag_id(app->dag, j->idx);
  if (j->wrapped) {
    j->wrapped = 0;
    if (!failure) {
      int rc = lm_journal_end_commit(&app->vt, app->conn, rev, j->ordinal, err);
      if (rc == LM_OK) return LM_OK;
      /* its COMMIT failed (a deferred constraint, the connection): the work is undone */
      lm_tx_rollback(app->conn, NULL);
      lm_error ignore = {0};
      lm_journal_end(&app->vt, app->conn, rev, j->ordinal, err->message ? err->message : "error",
                     &ignore);
      lm_error_clear(&ignore);
      return rc;
    }
    lm_tx_rollback(app->conn, NULL);
    if (needs_autocommit(failure)) {
      /* run again as sent, recorded as such */
      int rc = lm_journal_start(&app->vt, app->conn, rev, j->operation, j->ordinal, j->block,
                                j->cur_key ? j->cur_key : "", 0, err);
      return rc ? rc : 1;
    }
  }
  lm_error ignore = {0}; /* a lost connection loses this mark too: the row stays "running" */
  lm_journal_end(&j->app->vt, j->app->conn, lm_dag_id(j->app->dag, j->idx), j->ordinal,
                 failure ? (failure->message ? failure->message : "error") : NULL, &ignore);
  lm_error_clear(&ignore);
  return LM_OK;
}

/* Journals the transactional statements run since the last block (in the open transaction). */
static int journal_flush(lm_run_journal *j, lm_error *err) {
  lm_app *app = j->app;
  int rc = lm_journal_save(&app->vt, app->conn, lm_dag_id(app->dag, j->idx), j->operation,
                           j->seg_first, j->seg, j->nseg, err);
  for (size_t i = 0; i < j->nseg; i++) free(j->seg[i]);
  j->nseg = 0;
  return rc;
}

static PGconn *app_conn(const lm_run_journal *j) {
  return j->app->conn;
}

/* A statement of the migration's transaction that ended it (op.execute("COMMIT"),
 * "ROLLBACK", "COMMIT; BEGIN"): the migration stops at once, before any statement runs
 * outside its transaction. What a COMMIT made permanent is recorded in the journal right
 * away (in a transaction of its own, under the lock), so the revision is half-done with an
 * account of it, as after an autocommit block's COMMIT; a ROLLBACK undid it all. A new
 * transaction begun after the end is rolled back. A BEGIN alone changes nothing. */
static int tx_control(lm_run_journal *j, lm_error *err) {
  int txc = lm_conn_last_tx_control(app_conn(j));
  if (!(txc & (LM_TXC_COMMIT | LM_TXC_ROLLBACK))) return LM_OK;
  /* ROLLBACK TO SAVEPOINT reports "ROLLBACK" too, and leaves the transaction open. */
  if (txc == LM_TXC_ROLLBACK && PQtransactionStatus(app_conn(j)) == PQTRANS_INTRANS) return LM_OK;
  lm_app *app = j->app;
  const char *rev = lm_dag_id(app->dag, j->idx);
  const int committed = (txc & LM_TXC_COMMIT) != 0;
  lm_error e = {0};
  lm_tx_rollback(app->conn, NULL);
  int recorded = 0;
  if (committed && j->nseg) {
    int n = (int)j->nseg;
    int rc = lm_tx_begin(app->conn, &e);
    if (rc == LM_OK) rc = lm_lock_fence(&app->lock, app->conn, &e);
    if (rc == LM_OK) rc = journal_flush(j, &e);
    if (rc == LM_OK) rc = lm_lock_renew(&app->lock, app->conn, &e);
    if (rc == LM_OK) rc = lm_tx_commit(app->conn, &e);
    if (rc != LM_OK) lm_tx_rollback(app->conn, NULL);
    if (rc == LM_OK) recorded = n;
    j->user_commit = 1;
    if (rc != LM_OK) {
      lm_error_set(err, LM_ERR,
                   "the migration's own COMMIT (statement %d) committed its statements before it, "
                   "and recording them in the journal failed: %s",
                   j->ordinal, e.message ? e.message : "error");
      lm_error_clear(&e);
      return LM_ERR;
    }
  }
  lm_error_clear(&e);
  if (committed)
    lm_error_set(err, LM_ERR,
                 "this statement committed the migration's transaction (a COMMIT in the "
                 "migration)%s: %d statement%s up to it %s committed and recorded in the journal; "
                 "the migration stops here, half-done, before anything runs outside its "
                 "transaction",
                 txc & LM_TXC_BEGIN ? " and began another, rolled back" : "", recorded,
                 recorded == 1 ? "" : "s", recorded == 1 ? "is" : "are");
  else
    lm_error_set(err, LM_ERR,
                 "this statement rolled back the migration's transaction (a ROLLBACK in the "
                 "migration)%s: what revision %s did before it in that transaction is undone; "
                 "the migration stops here",
                 txc & LM_TXC_BEGIN ? " and began another, rolled back too" : "", rev);
  lm_error_setfield(&err->hint,
                    "a migration runs in the transaction luamigrate gives it: remove the "
                    "transaction control, or put what must commit apart in "
                    "op.autocommit_block");
  return LM_ERR;
}

/* The online autocommit protocol. leave: journals what the COMMIT makes permanent, commits
 * and sets the block's session timeouts; enter (after fn, even when it failed): resets
 * them and begins the next transaction (the lock's fence and the SET LOCAL timeouts again). */
static int journal_leave(lua_State *L, void *ud, lm_error *err) {
  lm_run_journal *j = ud;
  lm_app *app = j->app;
  if (j->block) return luaL_error(L, "op.autocommit_block: blocks do not nest");
  int rc = journal_flush(j, err);
  if (rc == LM_OK) rc = lm_tx_commit(app->conn, err);
  if (rc == LM_OK)
    rc = lm_tx_timeouts(app->conn, app->cfg.ddl_lock_timeout, app->cfg.statement_timeout,
                        LM_TX_SESSION, err);
  if (rc == LM_OK) j->block = ++j->nblocks; /* each statement is journaled, commits alone */
  return rc;
}

static int journal_enter(lua_State *L, void *ud, int failed, lm_error *err) {
  (void)L, (void)failed;
  lm_run_journal *j = ud;
  lm_app *app = j->app;
  j->block = 0;
  int rc = lm_tx_timeouts(app->conn, app->cfg.ddl_lock_timeout, app->cfg.statement_timeout,
                          LM_TX_RESET, err);
  if (rc == LM_OK) rc = lm_tx_begin(app->conn, err);
  if (rc == LM_OK) rc = lm_lock_fence(&app->lock, app->conn, err);
  if (rc == LM_OK)
    rc = lm_tx_timeouts(app->conn, app->cfg.ddl_lock_timeout, app->cfg.statement_timeout,
                        LM_TX_LOCAL, err);
  return rc;
}

/* ctx.journal_batches(sql) online, for op.backfill: each batch is a block statement of its
 * own, journaled like any other, all with the same text. A resumed run skips the batches the
 * journal records done in one go (each one more would find rows the next run's batches fill
 * anyway, but would shift every later ordinal): *done is how many were done, *finished
 * whether the backfill had finished (a different statement follows them in the record). */
static int journal_batches(void *ud, const char *sql, int *done, int *finished, lm_error *err) {
  lm_run_journal *j = ud;
  *done = *finished = 0;
  if (!j->resume || !j->block) return LM_OK;
  char *key = statement_key(sql, 0, NULL);
  if (!key) return lm_error_set(err, LM_ENOMEM, "out of memory");
  const lm_journal *r = j->resume;
  size_t i = (size_t)j->ordinal; /* the row of the next statement */
  while (i < r->n && r->rows[i].ordinal == (int)i + 1 && r->rows[i].done &&
         !strcmp(r->rows[i].statement, key)) {
    i++;
    ++*done;
  }
  *finished = *done > 0 && i < r->n && strcmp(r->rows[i].statement, key) != 0;
  free(key);
  if (*done)
    lm_log_info(
        "  skipped (done by the interrupted run): op.backfill, statements %d..%d (%d "
        "committed batch%s)%s",
        j->ordinal + 1, j->ordinal + *done, *done, *done == 1 ? "" : "es",
        *finished ? ", all of it" : "; the rest runs on from there");
  j->ordinal += *done;
  j->skipped += *done;
  return LM_OK;
}

lm_conn_hook lm_run_journal_hook(lm_run_journal *j) {
  return (lm_conn_hook){journal_before, journal_after, j};
}

lm_run_mode lm_run_journal_mode(lm_run_journal *j) {
  return (lm_run_mode){
      .leave = journal_leave, .enter = journal_enter, .batches = journal_batches, .ud = j};
}
