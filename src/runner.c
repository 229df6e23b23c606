/* The run loop: for each planned step, in its transaction, call the revision's upgrade()
 * or downgrade() under lm_pcall, check the server's transaction state afterwards, move the
 * version rows and record the step, then commit; on any failure roll back that step (or
 * the whole run) and report revision, file:line, statement, SQLSTATE and message. */
#include "runner.h"

#include <lauxlib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cancel.h"
#include "conn.h"
#include "log.h"
#include "tx.h"

static double wall_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* "a b c" from indices, for the history table. */
static char *space_ids(const lm_dag *dag, const int *idx, size_t n) {
  size_t len = 1;
  for (size_t i = 0; i < n; i++) len += strlen(lm_dag_id(dag, idx[i])) + 1;
  char *s = malloc(len);
  if (!s) return NULL;
  char *end = s;
  for (size_t i = 0; i < n; i++) {
    const char *id = lm_dag_id(dag, idx[i]);
    size_t l = strlen(id);
    if (i) *end++ = ' ';
    memcpy(end, id, l);
    end += l;
  }
  *end = '\0';
  return s;
}

/* Ids joined as Alembic prints them in "Running upgrade a, b -> c": "" for none. */
char *lm_run_comma_ids(const lm_dag *dag, const int *idx, size_t n) {
  if (n == 0) return strdup("");
  return lm_dag_format_ids(dag, idx, n);
}

/* The error of a migration that left its transaction in state st (LM_OK for INTRANS). */
static int tx_state_error(lm_app *app, int idx, const char *fn, PGTransactionStatusType st,
                          lm_error *err) {
  switch (st) {
    case PQTRANS_INTRANS: return LM_OK;
    case PQTRANS_IDLE:
      return lm_error_set(err, LM_ERR,
                          "%s: %s() of revision %s ended its transaction (a COMMIT or ROLLBACK "
                          "in op.execute?); what ran before that point was committed or rolled "
                          "back with it, and luamigrate cannot undo it",
                          lm_dag_path(app->dag, idx), fn, lm_dag_id(app->dag, idx));
    case PQTRANS_INERROR:
      return lm_error_set(err, LM_ERR,
                          "%s: a statement failed inside %s() of revision %s and the error was "
                          "caught; the transaction is aborted, so the migration is rolled back",
                          lm_dag_path(app->dag, idx), fn, lm_dag_id(app->dag, idx));
    case PQTRANS_ACTIVE:
    case PQTRANS_UNKNOWN: break;
  }
  return lm_error_set(err, LM_ECONN, "%s: the connection was lost during %s() of revision %s",
                      lm_dag_path(app->dag, idx), fn, lm_dag_id(app->dag, idx));
}

static int check_tx_state(lm_app *app, int idx, const char *fn, lm_error *err) {
  if (lm_conn_begin_pending(app->conn)) return LM_OK; /* nothing sent yet: it goes with the rows */
  return tx_state_error(app, idx, fn, PQtransactionStatus(app->conn), err);
}

/* The version-table changes of one step (heads moves on) and its history row, for
 * lm_vt_step (record_step) or lm_vt_step_sql (queue_tail). Returns the number of changes
 * or a negative code; *pids (malloc'd, the parents) and `sum` back rec. */
static int step_rows(lm_app *app, lm_revset *heads, int idx, int upgrade, double started,
                     lm_vt_change *changes, lm_vt_record *rec, char **pids,
                     char sum[LM_CHECKSUM_HEX], lm_error *err) {
  lm_vt_op ops[64];
  int nops = lm_dag_step(app->dag, heads, idx, upgrade, ops, 64, err);
  if (nops < 0) return nops;
  for (int i = 0; i < nops; i++)
    changes[i] = (lm_vt_change){
        ops[i].kind,
        ops[i].kind == LM_VT_INSERT ? NULL : lm_dag_id(app->dag, ops[i].from),
        ops[i].kind == LM_VT_DELETE ? NULL : lm_dag_id(app->dag, ops[i].to),
    };
  const int *parents;
  size_t np = lm_dag_parents(app->dag, idx, &parents);
  *pids = space_ids(app->dag, parents, np);
  const char *self = lm_dag_id(app->dag, idx), *p = *pids ? *pids : "";
  *rec = (lm_vt_record){
      .revision = self,
      .operation = upgrade ? "upgrade" : "downgrade",
      .from_ids = upgrade ? p : self,
      .to_ids = upgrade ? self : p,
      .message = lm_dag_doc(app->dag, idx),
      .file = lm_dag_path(app->dag, idx),
      .checksum = lm_loader_checksum(app, idx, sum), /* of the bytes that ran */
      .started_at = started,
      .duration_ms = (wall_s() - started) * 1000.0,
  };
  return nops;
}

/* Applies the version-table changes of one step and records it in the history table, in
 * one round trip. */
static int record_step(lm_app *app, lm_revset *heads, int idx, int upgrade, double started,
                       lm_error *err) {
  lm_vt_change changes[64];
  lm_vt_record rec;
  char sum[LM_CHECKSUM_HEX];
  char *pids = NULL;
  int n = step_rows(app, heads, idx, upgrade, started, changes, &rec, &pids, sum, err);
  int rc = n < 0 ? n : lm_vt_step(&app->vt, app->conn, changes, (size_t)n, &rec, err);
  free(pids);
  return rc;
}

/* ---- one wait per migration ----------------------------------------------------------
 * Pipelined, a step sends everything in one pipeline with one sync: the BEGIN, the step's
 * clock (lm_vt_mark_sql) and SET LOCAL timeouts, the ops' statements, then the version
 * rows, the history row, the journal's clean-up and the COMMIT (with
 * transaction_per_migration = false only the last step's COMMIT: the whole run is one
 * pipeline, collected every LM_CONN_PIPE_MAX statements). Nothing waits for a result
 * before the COMMIT: the row checks and the transaction's state are checked by the server
 * (lm_vt_step_sql), and a failure aborts the transaction, so the COMMIT rolls back. Each
 * queued statement is noted with its step and kind (lm_pipe_queue_own), so a failure
 * collected later is reported for its step as it would have been at once. */
enum { OWN_MARK = 1, OWN_TIMEOUTS, OWN_COMMIT, OWN_VT /* + lm_vt_piece */ };

typedef struct pipe_run {
  lm_app *app;
  int queue_idx;
  const lm_revset *plan;
  size_t s; /* the step running */
  int upgrade;
  lm_run_journal *j;
  int *half_done;
} pipe_run;

/* from/to of step idx as the log and the errors name them; *pstr (malloc'd) backs them. */
static void step_ends(const lm_app *app, int idx, int upgrade, char **pstr, const char **from,
                      const char **to) {
  const int *parents;
  size_t np = lm_dag_parents(app->dag, idx, &parents);
  *pstr = lm_run_comma_ids(app->dag, parents, np);
  const char *self = lm_dag_id(app->dag, idx), *p = *pstr ? *pstr : "";
  *from = upgrade ? p : self;
  *to = upgrade ? self : p;
}

/* The error table at the top (popped), raised by the step or by collecting the pipeline
 * (`code`: lm_pipe_failed's, -1 when not a queued statement's), made the step's error. */
static int pipe_failure(const pipe_run *r, int code, lm_error *err) {
  lm_app *app = r->app;
  size_t fs = code >= 0 ? (size_t)(code / LM_PIPE_KINDS) : r->s;
  int kind = code >= 0 ? code % LM_PIPE_KINDS : LM_PIPE_OP;
  if (fs >= r->plan->n) fs = r->s;
  int idx = r->plan->idx[fs];
  if (kind == LM_PIPE_OP) {
    char *pstr;
    const char *from, *to;
    step_ends(app, idx, r->upgrade, &pstr, &from, &to);
    lm_run_step_error(app, idx, r->upgrade, from, to, err);
    free(pstr);
    if (fs == r->s && (r->j->nblocks || r->j->user_commit)) {
      lm_run_half_done_hint(app, idx, r->upgrade, err);
      *r->half_done = 1;
    }
    return LM_ERR;
  }
  lm_error_from_lua(app->L, -1, LM_ESQL, err);
  lua_pop(app->L, 1);
  /* one of the engine's own statements cancelled by a signal is LM_EINTR, by lm_exec's
   * rule; any other failure is reported as its own, signal or not */
  if (lm_conn_cancelled(LM_ESQL, err) == LM_EINTR) {
    lm_error_clear(err);
    return lm_error_set(err, LM_EINTR, LM_CANCEL_MIGRATION);
  }
  if (!err->sqlstate) return err->code = LM_ERR; /* the connection's */
  if (kind == OWN_VT + LM_VT_PIECE_GUARD &&
      (!strcmp(err->sqlstate, "25P01") || !strcmp(err->sqlstate, "25P02"))) {
    int inerror = !strcmp(err->sqlstate, "25P02");
    lm_error_clear(err);
    return tx_state_error(app, idx, r->upgrade ? "upgrade" : "downgrade",
                          inerror ? PQTRANS_INERROR : PQTRANS_IDLE, err);
  }
  if (kind >= OWN_VT) return lm_vt_step_failed(&app->vt, (lm_vt_piece)(kind - OWN_VT), err);
  return err->code;
}

/* Collects what the pipeline holds: the one wait. */
static int pipe_collect(const pipe_run *r, lm_error *err) {
  lua_State *L = r->app->L;
  lua_pushcfunction(L, lm_pipe_l_sync);
  lua_pushvalue(L, r->queue_idx);
  if (lm_pcall(L, 1, 0) == LUA_OK) return LM_OK;
  return pipe_failure(r, lm_pipe_failed(L), err);
}

/* Queues one of the run loop's own statements (collecting first when the queue is full). */
static int queue_own(const pipe_run *r, const lm_stmt *stmt, int kind, lm_error *err) {
  if (lm_conn_queued(r->app->conn) + 2 > LM_CONN_PIPE_MAX) {
    int rc = pipe_collect(r, err);
    if (rc) return rc;
  }
  return lm_pipe_queue_own(r->app->L, r->app->conn, stmt, kind, err);
}

/* The start of a step in the pipeline: its clock and its SET LOCAL timeouts (the statements
 * lm_tx_timeouts sends when the step waits for each). */
static int queue_head(const pipe_run *r, lm_error *err) {
  lm_app *app = r->app;
  const lm_stmt mark = {.sql = lm_vt_mark_sql()};
  int rc = queue_own(r, &mark, OWN_MARK, err);
  const char *params[2][2];
  lm_stmt timeouts[2];
  size_t n = lm_tx_timeouts_stmts(app->cfg.ddl_lock_timeout, app->cfg.statement_timeout,
                                  LM_TX_LOCAL, timeouts, params);
  for (size_t i = 0; rc == LM_OK && i < n; i++) rc = queue_own(r, &timeouts[i], OWN_TIMEOUTS, err);
  return rc;
}

static const lm_stmt commit_stmt = {.sql = LM_TX_COMMIT_SQL};

/* The end of a step in the pipeline: the version rows, the history row, the journal's
 * rows when its autocommit blocks wrote some, and the COMMIT when `commit`. */
static int queue_tail(const pipe_run *r, lm_revset *heads, int idx, double started, int commit,
                      lm_error *err) {
  lm_app *app = r->app;
  lm_vt_change changes[64];
  lm_vt_record rec;
  char sum[LM_CHECKSUM_HEX];
  lm_vt_stmt stmts[64 + 3];
  size_t n = 0;
  char *pids = NULL;
  int nch = step_rows(app, heads, idx, r->upgrade, started, changes, &rec, &pids, sum, err);
  int rc = nch < 0 ? nch
                   : lm_vt_step_sql(&app->vt, changes, (size_t)nch, &rec, r->j->nblocks > 0, stmts,
                                    64 + 3, &n, err);
  free(pids);
  for (size_t i = 0; rc == LM_OK && i < n; i++)
    rc = queue_own(r, &stmts[i].stmt, OWN_VT + (int)stmts[i].piece, err);
  lm_vt_stmts_free(stmts, n);
  if (rc == LM_OK && commit) rc = queue_own(r, &commit_stmt, OWN_COMMIT, err);
  return rc;
}

static int copy_heads(lm_revset *dst, const lm_revset *src) {
  dst->n = 0;
  for (size_t i = 0; i < src->n; i++)
    if (lm_revset_push(dst, src->idx[i])) return LM_ENOMEM;
  return LM_OK;
}

/* lock = "xact": between two transactions another run may have moved the version rows;
 * read under the lock, they must be the ones this run planned from, else the caller plans
 * again. (The other locks are held for the whole run; there the version-row updates'
 * one-row checks catch anyone bypassing them.) */
static int check_heads(lm_app *app, const lm_revset *heads, lm_error *err) {
  char **ids = NULL;
  size_t n = 0;
  int rc = lm_vt_read(&app->vt, app->conn, &ids, &n, err);
  if (rc) return rc;
  int same = n == heads->n;
  for (size_t i = 0; same && i < n; i++) {
    int idx = lm_dag_find(app->dag, ids[i]);
    same = idx >= 0 && lm_revset_has(heads, idx);
  }
  if (!same) {
    char *want = heads->n ? lm_dag_format_ids(app->dag, heads->idx, heads->n) : NULL;
    size_t len = 1;
    for (size_t i = 0; i < n; i++) len += strlen(ids[i]) + 2;
    char *got = malloc(len);
    if (got) {
      char *end = got;
      for (size_t i = 0; i < n; i++) {
        size_t l = strlen(ids[i]);
        if (i) {
          memcpy(end, ", ", 2);
          end += 2;
        }
        memcpy(end, ids[i], l);
        end += l;
      }
      *end = '\0';
    }
    rc = lm_error_set(err, LM_ESTALE,
                      "the version table changed under this run: it planned from %s and now "
                      "finds %s",
                      want ? want : "<base>", got && *got ? got : "<base>");
    lm_error_setfield(&err->hint, "another run moved it; run the command again");
    free(want);
    free(got);
  }
  lm_vt_free_ids(ids, n);
  return rc;
}

/* Starts a transaction on the work connection under the migration lock. The BEGIN is held
 * back and goes with the next statement (the lock's fence, the SET LOCALs, the migration's
 * first statement or its version rows), one round trip less per migration. */
static int begin_locked(lm_app *app, const lm_revset *heads, lm_error *err) {
  int rc = LM_OK;
  if (app->dry_run)
    rc = lm_tx_begin(app->conn, err);
  else
    rc = lm_tx_begin_deferred(app->conn, err);
  if (rc == LM_OK) rc = lm_lock_fence(&app->lock, app->conn, err);
  if (rc == LM_OK && app->lock.held && app->lock.mode == LM_LOCK_XACT)
    rc = check_heads(app, heads, err);
  return rc;
}

/* ctx.autocommit_block under lock = "xact": refused, as its COMMIT would drop the lock. */
static const char XACT_REFUSAL[] =
    "op.autocommit_block cannot run with lock = \"xact\": its COMMIT would release the "
    "migration lock; use lock = \"table\" (or \"session\" without a pooler) for migrations "
    "with autocommit blocks";

/* Pushes the -x KEY=VALUE arguments as a table (op.get_x_argument()), online and in --sql. */
void lm_run_push_x(lua_State *L, const lm_app *app) {
  lua_newtable(L);
  for (int i = 0; i < app->opts->nx; i++) {
    const char *kv = app->opts->x[i];
    const char *eq = strchr(kv, '=');
    if (eq) {
      lua_pushlstring(L, kv, (size_t)(eq - kv));
      lua_pushstring(L, eq + 1);
    } else {
      lua_pushstring(L, kv);
      lua_pushliteral(L, "");
    }
    lua_rawset(L, -3);
  }
}

int lm_run_plan(lm_app *app, lm_revset *heads, const lm_revset *plan, int upgrade, lm_error *err) {
  lua_State *L = app->L;
  int top = lua_gettop(L);
  int rc = LM_OK;
  int in_tx = PQtransactionStatus(app->conn) == PQTRANS_INTRANS;
  const char *fn = upgrade ? "upgrade" : "downgrade";
  const int per_migration = app->cfg.tx_per_migration && !app->dry_run;

  lm_push_conn(L, app->conn, 1);
  int conn_idx = lua_gettop(L);
  if (app->dry_run) lm_conn_set_trace(L, conn_idx, 1);
  /* The ops' statements go without waiting for their results, unless a dry run or -v
   * shows each with its timing (docs/performance.md). */
  const int pipelined = app->cfg.pipeline && !app->dry_run && !lm_log_verbose();
  /* ... and with them the step's own statements up to its COMMIT, one wait per step,
   * except under lock = "table", whose lease is renewed (and its row count read) before
   * each COMMIT. */
  const int one_wait = pipelined && !(app->lock.held && app->lock.mode == LM_LOCK_TABLE);
  lm_push_conn(L, app->conn, 1);
  int queue_idx = lua_gettop(L);
  lm_conn_set_queue(L, queue_idx, 1);
  if (pipelined) lm_conn_pipe_enable(app->conn, 1);
  lm_run_push_x(L, app);
  int x_idx = lua_gettop(L);
  /* Upgrades and downgrades journal their statements (online; dry runs list autocommit
   * blocks instead). */
  lm_run_journal j = {.app = app, .operation = fn};
  int half_done = 0; /* the failed step had committed part of itself */
  lm_conn_hook hook = lm_run_journal_hook(&j);
  lm_run_mode mode = lm_run_journal_mode(&j);
  lm_run_probe probe = {.conn = app->conn};
  lm_conn_hook probe_hook = lm_run_probe_hook(&probe);
  if (app->dry_run) {
    mode = lm_run_dry_mode();
  } else if (app->lock.held && app->lock.mode == LM_LOCK_XACT) {
    mode.leave = NULL;
    mode.refusal = XACT_REFUSAL;
  }
  lm_run_spec spec = {
      .conn_idx = conn_idx,
      .queue_idx = pipelined ? queue_idx : 0,
      .x_idx = x_idx,
      .hook = app->dry_run ? (app->show_locks ? &probe_hook : NULL) : &hook,
      .mode = &mode,
  };
  pipe_run pr = {app, queue_idx, plan, 0, upgrade, &j, &half_done};
  /* The heads before the step, put back when it fails: a step moves `heads` as it sends its
   * version rows (step_rows), and a failure after that (the one wait's collect, which finds
   * the ops' errors too; without it lm_vt_step, the journal's clean-up, the lease's renewal,
   * the COMMIT) leaves the database where it was. The retry below and the caller (a relative
   * target re-planned under lock = "xact") need `heads` to be what is committed. Only with
   * transaction_per_migration: otherwise a failure rolls back the whole run and nothing
   * reads heads again. */
  lm_revset before = {0};
  lm_cancel_set_conn(app->conn);
  for (size_t s = 0; s < plan->n; s++) {
    int idx = plan->idx[s];
    if (lm_cancel_requested()) {
      rc = lm_error_set(err, LM_EINTR, "interrupted by signal before revision %s%s",
                        lm_dag_id(app->dag, idx),
                        s ? "; the migrations before it stay applied" : "; nothing was changed");
      break;
    }
    char *pstr;
    const char *from, *to;
    step_ends(app, idx, upgrade, &pstr, &from, &to);
    const char *self = lm_dag_id(app->dag, idx);
    if (s == 0 && !app->first_from) app->first_from = strdup(*from ? from : "base");
    int attempt = 1;
    pr.s = s;
    lm_pipe_set_step(L, (int)s);
  retry:
    lm_run_journal_reset(&j, idx,
                         app->resume && !strcmp(app->resume->revision, self) ? app->resume : NULL);
    if (per_migration && (rc = copy_heads(&before, heads))) {
      lm_error_set(err, rc, "out of memory");
      goto step_done;
    }
    if (!in_tx) {
      in_tx = 1;
      if ((rc = begin_locked(app, heads, err))) goto step_done;
    }
    lm_log_step(s + 1, plan->n);
    lm_log_begin("Running %s %s -> %s, %s", fn, from, to, lm_dag_doc(app->dag, idx));
    lm_log_set_revision(self);
    if (one_wait)
      rc = queue_head(&pr, err);
    else
      rc = lm_tx_timeouts(app->conn, app->cfg.ddl_lock_timeout, app->cfg.statement_timeout,
                          LM_TX_LOCAL, err);
    if (rc) goto step_done;
    double started = wall_s();
    lm_cancel_set_phase(LM_CANCEL_MIGRATION); /* the file runs again, then its function */
    if ((rc = lm_loader_env(app, idx, err))) goto step_done;
    lua_getfield(L, -1, fn);
    lua_remove(L, -2);
    lm_run_open(L, &spec);
    lm_pipe_failed(L); /* forgets an earlier step's */
    int st = lm_pcall(L, 0, 0);
    int code = st != LUA_OK ? lm_pipe_failed(L) : -1;
    lm_cancel_set_phase(NULL);
    /* One wait: what upgrade() queued goes on with the step's own statements, unless it
     * failed or a --resume's check comes first. */
    const int tail = one_wait && st == LUA_OK && !j.resume;
    if (pipelined && !tail) {
      /* The queued statements' results: a failure among them came before anything that
       * failed after them, so it is the step's error. */
      lua_pushcfunction(L, lm_pipe_l_sync);
      lua_pushvalue(L, queue_idx);
      int sst = lm_pcall(L, 1, 0);
      if (sst != LUA_OK) {
        if (st != LUA_OK) lua_remove(L, -2);
        st = sst;
        code = lm_pipe_failed(L);
      }
    }
    lm_run_close(L);
    if (st != LUA_OK) {
      rc = pipe_failure(&pr, code, err);
      goto step_done;
    }
    if (tail) {
      /* Known only when nothing is in flight; else the tail's guard checks it. */
      if (!lm_conn_pipe_pending(app->conn) && (rc = check_tx_state(app, idx, fn, err)))
        goto step_done;
      if ((rc = queue_tail(&pr, heads, idx, started, per_migration, err))) goto step_done;
      if (per_migration) {
        rc = pipe_collect(&pr, err);
        in_tx = 0;
        if (rc) goto step_done;
      }
      app->steps_done++;
      lm_log_end_ms((wall_s() - started) * 1000.0);
      goto step_done;
    }
    if ((rc = check_tx_state(app, idx, fn, err))) goto step_done;
    if (j.resume && (size_t)j.ordinal < j.resume->n) {
      rc = lm_error_set(err, LM_ERR,
                        "--resume: revision %s changed since the interrupted run: it ran %d "
                        "statements, and the journal records %zu",
                        self, j.ordinal, j.resume->n);
      lm_error_setfield(&err->hint,
                        "restore the file as it was, or undo the recorded statements by hand "
                        "and run 'luamigrate stamp' to clear the record");
      goto step_done;
    }
    if ((rc = record_step(app, heads, idx, upgrade, started, err))) goto step_done;
    app->steps_done++;
    if ((j.nblocks || j.resume) && (rc = lm_journal_clear(&app->vt, app->conn, self, err)))
      goto step_done;
    if (j.resume)
      lm_log_info("  resumed: %d statement%s skipped as done by the interrupted run", j.skipped,
                  j.skipped == 1 ? "" : "s");
    if ((rc = lm_lock_renew(&app->lock, app->conn, err))) goto step_done;
    if (per_migration) {
      rc = lm_tx_commit(app->conn, err);
      in_tx = 0;
    }
    if (rc == LM_OK) lm_log_end_ms((wall_s() - started) * 1000.0);
  step_done:
    lm_cancel_set_phase(NULL);
    lm_log_set_revision(NULL);
    if (rc && per_migration && copy_heads(heads, &before) && rc != LM_ENOMEM) {
      lm_error_clear(err);
      rc = lm_error_set(err, LM_ENOMEM, "out of memory");
    }
    /* A lock that could not be had within lock_timeout (55P03) is worth another try: the
     * step rolls back alone, waits with backoff, and runs again, up to lock_retries times. */
    if (rc && err->sqlstate && !strcmp(err->sqlstate, "55P03") && per_migration && !j.nblocks &&
        attempt <= app->cfg.lock_retries && !lm_cancel_requested()) {
      lm_tx_rollback(app->conn, NULL);
      in_tx = 0;
      /* rand(): jitter that spreads the retries of concurrent runs, not a secret. */
      /* NOLINTNEXTLINE(cert-msc30-c,cert-msc50-cpp) */
      double jitter = 0.75 + 0.5 * (double)rand() / RAND_MAX;
      double wait = 0.5 * (double)(1 << (attempt - 1)) * jitter;
      if (wait > 30) wait = 30;
      lm_log_warn("%s; rolled back, retrying in %.1f s (attempt %d of %d)",
                  err->message ? err->message : "lock not available", wait, attempt + 1,
                  app->cfg.lock_retries + 1);
      lm_error_clear(err);
      struct timespec ts = {(time_t)wait, (long)((wait - (double)(time_t)wait) * 1e9)};
      nanosleep(&ts, NULL);
      attempt++;
      goto retry; /* which sets rc again */
    }
    free(pstr);
    lm_loader_release(app, idx);
    if (rc) break;
  }
  lm_revset_free(&before);
  if (app->dry_run) {
    lm_error rb = {0};
    int rbrc = lm_tx_rollback(app->conn, &rb);
    if (rc == LM_OK && rbrc != LM_OK) {
      rc = rbrc;
      lm_error_move(err, &rb);
    } else {
      lm_error_clear(&rb);
    }
    if (rc == LM_OK)
      lm_log_info("Dry run: %zu migration%s ran and %s rolled back; the database is unchanged",
                  plan->n, plan->n == 1 ? "" : "s", plan->n == 1 ? "was" : "were");
    else
      lm_log_info("Dry run failed; everything it did was rolled back");
    goto out;
  }
  if (rc == LM_OK && in_tx && lm_conn_pipe_pending(app->conn)) {
    /* transaction_per_migration = false: the run's one pipeline ends with its COMMIT */
    rc = queue_own(&pr, &commit_stmt, OWN_COMMIT, err);
    if (rc == LM_OK) rc = pipe_collect(&pr, err);
  } else if (rc == LM_OK && in_tx) {
    rc = lm_tx_commit(app->conn, err);
  }
  if (rc != LM_OK &&
      (lm_conn_begin_pending(app->conn) || PQtransactionStatus(app->conn) != PQTRANS_IDLE)) {
    lm_tx_rollback(app->conn, NULL);
    if (j.resume)
      lm_log_info(
          "Rolled back this run's transaction; revision %s stays half-done, as its "
          "journal records (see the hint)",
          j.resume->revision);
    else if (half_done)
      lm_log_info(
          "Rolled back the failed migration's open transaction; what its autocommit "
          "block committed stays (see the hint)");
    else if (rc != LM_ESTALE && rc != LM_ELOCK && rc != LM_EINTR)
      lm_log_info("Rolled back %s", per_migration ? "the failed migration; the ones before it "
                                                    "stay applied"
                                                  : "the whole run (transaction_per_migration "
                                                    "is false)");
  }
out:
  lm_run_probe_clear(&probe);
  lm_run_journal_reset(&j, -1, NULL);
  if (pipelined) lm_conn_pipe_enable(app->conn, 0);
  lm_conn_forget_begin(app->conn);
  lm_conn_detach(L, conn_idx);
  lm_conn_detach(L, queue_idx);
  lua_settop(L, top);
  return rc;
}
