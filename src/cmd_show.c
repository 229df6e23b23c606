/* The read-only views of revisions in Alembic's formats: current, heads, branches, history
 * and show (text, verbose or --json). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "app.h"
#include "cmdargs.h"
#include "commands.h"
#include "conn.h"
#include "dag_plan.h"
#include "report.h"
#include "workspace.h"

int lm_cmd_current(lm_app *app, lm_cmdargs *a, lm_error *err) {
  lm_revset heads = {0};
  lm_strbuf b = {0};
  int rc = lm_cmdargs_positional(app->opts, a, 0, 0, "", err);
  if (rc || (rc = lm_workspace_connect(app, err)) || (rc = lm_workspace_heads(app, &heads, err)))
    goto cleanup;
  if (a->json) {
    rc = lm_report_json_revs(app->out, app->dag, heads.idx, heads.n, NULL, err);
  } else if (a->verbose) {
    char *d = lm_conn_describe(app->conn);
    fprintf(app->out, "Current revision(s) for %s:\n", d ? d : "?");
    free(d);
  }
  for (size_t i = 0; !a->json && i < heads.n; i++) {
    if (a->verbose)
      lm_report_log_entry(&b, app->dag, heads.idx[i], NULL);
    else
      lm_report_head(&b, app->dag, heads.idx[i], 0, 0, 0, 1, NULL);
    if ((rc = lm_report_write(app->out, &b, err))) break;
  }
  if (rc == LM_OK && a->check_heads) {
    int ok = 0;
    if ((rc = lm_workspace_on_heads(app, &heads, &ok, err)) == LM_OK && !ok)
      rc = lm_error_set(err, LM_ERR, "Database is not on all head revisions");
  }
cleanup:
  free(b.s);
  lm_revset_free(&heads);
  return rc;
}

int lm_cmd_heads(lm_app *app, lm_cmdargs *a, lm_error *err) {
  lm_revset heads = {0};
  lm_strbuf b = {0};
  int rc = lm_cmdargs_positional(app->opts, a, 0, 0, "", err);
  if (rc) return rc;
  if (a->resolve_deps) {
    /* Only the real heads: a head something else depends on is satisfied by it. */
    lm_revset none = {0};
    if ((rc = lm_dag_resolve(app->dag, "heads", &none, LM_RESOLVE_SHOW, &heads, err)) < 0)
      return rc;
    rc = LM_OK;
  } else if (lm_dag_heads(app->dag, &heads)) {
    return lm_error_set(err, LM_ENOMEM, "out of memory");
  }
  if (a->json) rc = lm_report_json_revs(app->out, app->dag, heads.idx, heads.n, NULL, err);
  for (size_t i = 0; !a->json && i < heads.n && rc == LM_OK; i++) {
    if (a->verbose)
      lm_report_log_entry(&b, app->dag, heads.idx[i], NULL);
    else
      lm_report_head(&b, app->dag, heads.idx[i], 1, 0, 0, 0, NULL);
    rc = lm_report_write(app->out, &b, err);
  }
  lm_revset_free(&heads);
  return rc;
}

/* All revisions in upgrade order (parents first). */
static int all_in_order(lm_app *app, lm_revset *order, lm_error *err) {
  lm_revset none = {0}, heads = {0};
  if (lm_dag_heads(app->dag, &heads)) return lm_error_set(err, LM_ENOMEM, "out of memory");
  int rc = lm_dag_plan_upgrade(app->dag, &none, &heads, order, err);
  lm_revset_free(&heads);
  return rc < 0 ? rc : LM_OK;
}

/* An endpoint of `history -r`: `current` means the database's heads. */
static int history_end(lm_app *app, const char *expr, lm_revset *cur, int *have_cur, lm_revset *out,
                       lm_error *err) {
  lm_revset none = {0};
  if (strcmp(expr, "current") != 0)
    return lm_dag_resolve(app->dag, expr, &none, LM_RESOLVE_SHOW, out, err);
  int rc;
  if (!*have_cur) {
    if ((rc = lm_workspace_connect(app, err)) || (rc = lm_workspace_heads(app, cur, err)))
      return rc;
    *have_cur = 1;
  }
  for (size_t i = 0; i < cur->n; i++)
    if (lm_revset_push(out, cur->idx[i])) return lm_error_set(err, LM_ENOMEM, "out of memory");
  return (int)out->n;
}

int lm_cmd_history(lm_app *app, lm_cmdargs *a, lm_error *err) {
  lm_revset lo = {0}, hi = {0}, none = {0}, order = {0}, cur = {0};
  int have_cur = 0;
  lm_strbuf b = {0};
  unsigned char *mark = NULL;
  int rc = lm_cmdargs_positional(app->opts, a, 0, 0, "", err);
  if (rc) return rc;
  const char *range = a->rev_range;
  char *start = NULL, *end = NULL;
  if (range) {
    const char *colon = strchr(range, ':');
    if (!colon)
      return lm_error_set(err, LM_EUSAGE,
                          "History range requires [start]:[end], [start]:, or :[end]");
    start = strndup(range, (size_t)(colon - range));
    end = strdup(colon + 1);
  }
  if (a->indicate_current && !have_cur) {
    if ((rc = lm_workspace_connect(app, err)) || (rc = lm_workspace_heads(app, &cur, err)))
      goto cleanup;
    have_cur = 1;
  }
  if (start && *start && (rc = history_end(app, start, &cur, &have_cur, &lo, err)) < 0)
    goto cleanup;
  if (end && *end) {
    if ((rc = history_end(app, end, &cur, &have_cur, &hi, err)) < 0) goto cleanup;
    rc = lm_dag_plan_upgrade(app->dag, &none, &hi, &order, err);
  } else {
    rc = all_in_order(app, &order, err);
  }
  if (rc < 0) goto cleanup;
  /* Keep descendants-or-self of the start: one forward pass in topological order. */
  size_t count = lm_dag_count(app->dag);
  mark = calloc(count ? count : 1, 1);
  if (!mark) {
    rc = lm_error_set(err, LM_ENOMEM, "out of memory");
    goto cleanup;
  }
  lm_dag_mark_history(app->dag, &order, &lo, mark);
  rc = LM_OK;
  if (a->json) {
    /* newest first: keep the marked ones in place, then reverse */
    size_t k = 0;
    for (size_t i = 0; i < order.n; i++)
      if (mark[order.idx[i]]) order.idx[k++] = order.idx[i];
    for (size_t i = 0; i < k / 2; i++) {
      int t = order.idx[i];
      order.idx[i] = order.idx[k - 1 - i];
      order.idx[k - 1 - i] = t;
    }
    rc = lm_report_json_revs(app->out, app->dag, order.idx, k, a->indicate_current ? &cur : NULL,
                             err);
    goto cleanup;
  }
  for (size_t i = order.n; i-- > 0 && rc == LM_OK;) {
    int r = order.idx[i];
    if (!mark[r]) continue;
    const lm_revset *c = a->indicate_current ? &cur : NULL;
    if (a->verbose)
      lm_report_log_entry(&b, app->dag, r, c);
    else
      lm_report_head(&b, app->dag, r, 1, 1, 1, 1, c);
    rc = lm_report_write(app->out, &b, err);
  }
cleanup:
  lm_revset_free(&cur);
  free(mark);
  free(start);
  free(end);
  free(b.s);
  lm_revset_free(&lo);
  lm_revset_free(&hi);
  lm_revset_free(&order);
  return rc < 0 ? rc : LM_OK;
}

int lm_cmd_show(lm_app *app, lm_cmdargs *a, lm_error *err) {
  lm_revset revs = {0}, heads = {0};
  lm_strbuf b = {0};
  int rc = lm_cmdargs_positional(app->opts, a, 1, 1, "REV", err);
  if (rc) return rc;
  if (!strcmp(a->pos[0], "current")) {
    if ((rc = lm_workspace_connect(app, err)) || (rc = lm_workspace_heads(app, &revs, err)))
      goto cleanup;
  } else if ((rc = lm_dag_resolve(app->dag, a->pos[0], &heads, LM_RESOLVE_SHOW, &revs, err)) < 0) {
    goto cleanup;
  }
  rc = LM_OK;
  if (a->json) rc = lm_report_json_revs(app->out, app->dag, revs.idx, revs.n, NULL, err);
  for (size_t i = 0; !a->json && i < revs.n && rc == LM_OK; i++) {
    lm_report_log_entry(&b, app->dag, revs.idx[i], NULL);
    rc = lm_report_write(app->out, &b, err);
  }
cleanup:
  free(b.s);
  lm_revset_free(&revs);
  lm_revset_free(&heads);
  return rc < 0 ? rc : LM_OK;
}

/* branches: each branch point, newest first, with a "-> child" line per child. */
int lm_cmd_branches(lm_app *app, lm_cmdargs *a, lm_error *err) {
  lm_revset order = {0};
  lm_strbuf b = {0};
  int rc = lm_cmdargs_positional(app->opts, a, 0, 0, "", err);
  if (rc || (rc = all_in_order(app, &order, err))) return rc;
  for (size_t i = order.n; i-- > 0 && rc == LM_OK;) {
    int r = order.idx[i];
    if (!lm_dag_is_branch_point(app->dag, r)) continue;
    if (a->verbose)
      lm_report_log_entry(&b, app->dag, r, NULL);
    else
      lm_report_head(&b, app->dag, r, 1, 0, 0, 1, NULL);
    const int *kids;
    size_t nk = lm_dag_children(app->dag, r, &kids);
    size_t pad = strlen(lm_dag_id(app->dag, r));
    for (size_t k = 0; k < nk; k++) {
      lm_strbuf_add(&b, "\n%*s -> ", (int)pad, "");
      lm_report_head(&b, app->dag, kids[k], 1, a->verbose, 0, 1, NULL);
    }
    lm_strbuf_add(&b, "\n");
    rc = lm_report_write(app->out, &b, err);
  }
  free(b.s);
  lm_revset_free(&order);
  return rc;
}
