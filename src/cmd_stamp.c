/* stamp: sets the version table to the named revisions without running a migration
 * (online under the lock in one transaction, or as --sql); the plan is lm_dag_plan_stamp's. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "app.h"
#include "cmdargs.h"
#include "commands.h"
#include "conn.h"
#include "dag_plan.h"
#include "journal.h"
#include "log.h"
#include "strbuf.h"
#include "workspace.h"
#include "tx.h"

int lm_cmd_stamp(lm_app *app, lm_cmdargs *a, lm_error *err) {
  lm_revset heads = {0}, next = {0};
  lm_vt_ops opsv = {0}, *ops = &opsv;
  lm_strbuf from = {0}, to = {0};
  int rc = lm_cmdargs_positional(app->opts, a, 1, 64, "REV", err);
  int from_base = 0, in_tx = 0;
  if (rc) return rc;
  if (a->sql && a->purge) return lm_error_set(err, LM_EUSAGE, "Can't use --purge with --sql mode");
  if (a->sql) {
    const char *colon = a->npos == 1 ? strchr(a->pos[0], ':') : NULL;
    if (a->npos > 1 && strchr(a->pos[0], ':'))
      return lm_error_set(err, LM_EUSAGE,
                          "Stamp operation with --sql only supports a single starting revision "
                          "at a time");
    const char *tgt;
    if ((rc = lm_workspace_offline_start(app, a->pos[0], &heads, &tgt, &from_base, err)) < 0)
      goto cleanup;
    if (colon) a->pos[0] = (char *)tgt;
  } else {
    if ((rc = lm_workspace_connect(app, err)) || (rc = lm_workspace_lock(app, err))) goto cleanup;
    /* The rows are read and written in one transaction under the lock (lock = "xact" takes
     * it there; "table" checks the lease is still this run's). */
    if ((rc = lm_tx_begin(app->conn, err))) goto cleanup;
    in_tx = 1;
    if ((rc = lm_lock_fence(&app->lock, app->conn, err))) goto cleanup;
    /* --purge starts from no rows: the stored ones may name revisions no file defines */
    if (!a->purge && (rc = lm_workspace_heads(app, &heads, err))) goto cleanup;
  }
  if ((rc = lm_dag_plan_stamp(app->dag, a->pos, (size_t)a->npos, &heads, &next, ops, err)))
    goto cleanup;
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  double started = (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
  char *f = lm_dag_format_ids(app->dag, heads.idx, heads.n);
  char *t = lm_dag_format_ids(app->dag, next.idx, next.n);
  lm_log_info("Running stamp_revision %s -> %s", heads.n ? (f ? f : "") : "",
              next.n ? (t ? t : "") : "");
  free(f);
  free(t);
  if (a->sql) {
    if ((rc = lm_emit_offline_preamble(app, err))) goto cleanup;
    lm_emit_sql(LM_TX_BEGIN_SQL);
    if (from_base && (rc = lm_emit_offline_ddl(app, err))) goto cleanup;
  }
  in_tx = 1;
  if (a->purge) rc = lm_vt_purge(&app->vt, app->conn, err);
  if (rc == LM_OK && !a->sql) { /* stamping settles a half-done revision by hand */
    lm_journal half = {0};
    rc = lm_journal_read(&app->vt, app->conn, &half, err);
    if (rc == LM_OK && half.revision) {
      lm_log_info("Clearing the journal of half-done revision %s", half.revision);
      rc = lm_journal_clear(&app->vt, app->conn, NULL, err);
    }
    lm_journal_free(&half);
  }
  for (size_t i = 0; i < ops->n && rc == LM_OK; i++) {
    const lm_vt_op *o = &ops->v[i];
    rc = lm_vt_apply(app, a->sql, o->kind,
                     o->kind == LM_VT_INSERT ? NULL : lm_dag_id(app->dag, o->from),
                     o->kind == LM_VT_DELETE ? NULL : lm_dag_id(app->dag, o->to), err);
  }
  if (rc == LM_OK) { /* the history row, online and in a --sql script alike */
    for (size_t i = 0; i < heads.n; i++)
      lm_strbuf_add(&from, "%s%s", i ? " " : "", lm_dag_id(app->dag, heads.idx[i]));
    for (size_t i = 0; i < next.n; i++)
      lm_strbuf_add(&to, "%s%s", i ? " " : "", lm_dag_id(app->dag, next.idx[i]));
    lm_vt_record rec = {
        .revision = next.n ? lm_dag_id(app->dag, next.idx[0]) : "base",
        .operation = "stamp",
        .from_ids = from.s ? from.s : "",
        .to_ids = to.s ? to.s : "",
        .started_at = started,
    };
    rc = a->sql ? lm_emit_stamp_history(app, rec.revision, rec.from_ids, rec.to_ids, err)
                : lm_vt_record_step(&app->vt, app->conn, &rec, err);
  }
  /* A failed step leaves the transaction open for the ROLLBACK below. */
  if (a->sql) {
    lm_emit_sql(LM_TX_COMMIT_SQL);
    in_tx = 0;
  } else if (rc == LM_OK && (rc = lm_lock_renew(&app->lock, app->conn, err)) == LM_OK) {
    rc = lm_tx_commit(app->conn, err);
    in_tx = 0;
  }
cleanup:
  if (in_tx && !a->sql) {
    lm_error e2 = {0};
    lm_tx_rollback(app->conn, &e2);
    lm_error_clear(&e2);
  }
  free(from.s);
  free(to.s);
  lm_revset_free(&heads);
  lm_revset_free(&next);
  free(opsv.v);
  return rc < 0 ? rc : LM_OK;
}
