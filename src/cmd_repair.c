/* repair: records the current sha256 of applied revision files whose edit was reviewed. */
#include <stdio.h>

#include "app.h"
#include "cmdargs.h"
#include "commands.h"
#include "conn.h"
#include "dag_plan.h"
#include "workspace.h"
#include "tx.h"

/* repair [REV...]: after a deliberate edit of applied revision files has been reviewed,
 * records each changed file's current sha256 as the one it was applied with (Flyway's
 * repair), so the warning (or the on_changed_file = "error" refusal) stops. REV... limits
 * it to those revisions. The database's schema is not touched. */
int lm_cmd_repair(lm_app *app, lm_cmdargs *a, lm_error *err) {
  lm_revset heads = {0}, changed = {0}, only = {0};
  int nchanged = 0, in_tx = 0, done = 0;
  int rc = lm_workspace_connect(app, err);
  if (rc || (rc = lm_workspace_lock(app, err)) || (rc = lm_workspace_heads(app, &heads, err)))
    goto cleanup;
  if ((rc = lm_dag_resolve_each(app->dag, a->pos, (size_t)a->npos, &only, err)) < 0) goto cleanup;
  if ((rc = lm_workspace_changed(app, &heads, &nchanged, &changed, NULL, err))) goto cleanup;
  if ((rc = lm_tx_begin(app->conn, err))) goto cleanup;
  in_tx = 1;
  for (size_t i = 0; i < changed.n; i++) {
    int idx = changed.idx[i];
    if (a->npos && !lm_revset_has(&only, idx)) continue;
    const char *path = lm_dag_path(app->dag, idx);
    /* the checksum of the bytes this run read, as a run of the file would record it */
    char sum[LM_CHECKSUM_HEX];
    const char *now = lm_loader_checksum(app, idx, sum);
    if (!now) {
      rc = lm_error_set(err, LM_ERR, "%s: no checksum of the file was computed", path);
      goto cleanup;
    }
    if ((rc = lm_vt_set_checksum(&app->vt, app->conn, lm_dag_id(app->dag, idx), now, err)))
      goto cleanup;
    printf("Recorded %s as revision %s's file (sha256 %.12s)\n", path, lm_dag_id(app->dag, idx),
           now);
    done++;
  }
  for (size_t i = 0; i < only.n; i++)
    if (!lm_revset_has(&changed, only.idx[i]))
      printf(
          "Revision %s: its file is as it was applied (or it is not applied); nothing to "
          "record\n",
          lm_dag_id(app->dag, only.idx[i]));
  if ((rc = lm_tx_commit(app->conn, err))) goto cleanup;
  in_tx = 0;
  if (!done && !a->npos) printf("No applied file changed since it ran: nothing to record\n");
cleanup:
  if (in_tx) {
    lm_error e = {0};
    lm_tx_rollback(app->conn, &e);
    lm_error_clear(&e);
  }
  lm_revset_free(&heads);
  lm_revset_free(&changed);
  lm_revset_free(&only);
  return rc < 0 ? rc : LM_OK;
}
