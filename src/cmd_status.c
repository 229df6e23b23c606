/* status: where the database is, what is pending, what was applied when and how long it
 * took, which applied files changed since, what is half-done; as text or one JSON object.
 * Reads only: takes no lock, creates nothing. */
#include <stdlib.h>
#include <string.h>

#include "app.h"
#include "cmdargs.h"
#include "commands.h"
#include "conn.h"
#include "journal.h"
#include "report.h"
#include "workspace.h"

/* status: where the database is, what is pending, what was applied when and how long it
 * took, and which applied files changed since. Reads only: takes no lock, creates nothing. */
int lm_cmd_status(lm_app *app, lm_cmdargs *a, lm_error *err) {
  lm_revset heads = {0}, none = {0}, all = {0}, pending = {0}, applied = {0}, changed = {0},
            stamped_to = {0};
  lm_journal half = {0};
  char *half_msg = NULL, *half_detail = NULL;
  unsigned char *stamped = NULL;
  PGresult *res = NULL, *stamps = NULL;
  lm_strbuf b = {0}, problem = {0};
  int rc = lm_cmdargs_positional(app->opts, a, 0, 0, "", err), nchanged = 0;
  if (rc) return rc;
  /* All it reads, in one round trip after the probe. */
  if ((rc = lm_workspace_connect(app, err)) || (rc = lm_vt_prefetch(&app->vt, app->conn, 1, err)) ||
      (rc = lm_workspace_heads(app, &heads, err)))
    goto cleanup;
  /* What upgrade and downgrade would refuse is reported here, not refused. */
  lm_error overlap = {0};
  if (lm_workspace_check_overlap(app, &heads, &overlap) == LM_ERR) {
    lm_strbuf_add(&problem, "%s", overlap.message);
  } else if (overlap.code) {
    rc = lm_error_move(err, &overlap);
    goto cleanup;
  }
  lm_error_clear(&overlap);
  if ((rc = lm_dag_resolve(app->dag, "heads", &none, LM_RESOLVE_SHOW, &all, err)) < 0) goto cleanup;
  if ((rc = lm_dag_plan_upgrade(app->dag, &heads, &all, &pending, err)) < 0) goto cleanup;
  if ((rc = lm_dag_plan_upgrade(app->dag, &none, &heads, &applied, err)) < 0) goto cleanup;
  if ((rc = lm_vt_applied_checksums(&app->vt, app->conn, &res, err))) goto cleanup;
  if ((rc = lm_workspace_changed(app, &heads, &nchanged, &changed, NULL, err))) goto cleanup;
  /* Applied revisions with no record of running: stamped (at or below a stamp's target), or
   * applied before luamigrate kept history (a database Alembic built, say). */
  if ((rc = lm_vt_stamped(&app->vt, app->conn, &stamps, err))) goto cleanup;
  for (int r = 0; r < PQntuples(stamps); r++) {
    int idx = lm_dag_find(app->dag, PQgetvalue(stamps, r, 0));
    if (idx >= 0 && lm_revset_push(&stamped_to, idx)) {
      rc = lm_error_set(err, LM_ENOMEM, "out of memory");
      goto cleanup;
    }
  }
  stamped = calloc(lm_dag_count(app->dag) ? lm_dag_count(app->dag) : 1, 1);
  if (!stamped ||
      (stamped_to.n && lm_dag_mark(app->dag, stamped_to.idx, stamped_to.n, 0, 1, stamped, 1))) {
    rc = lm_error_set(err, LM_ENOMEM, "out of memory");
    goto cleanup;
  }
  if ((rc = lm_journal_read(&app->vt, app->conn, &half, err))) goto cleanup;
  if (half.revision) {
    int hidx = lm_dag_find(app->dag, half.revision);
    rc = lm_journal_describe(&half, app->conn, hidx >= 0 ? lm_dag_path(app->dag, hidx) : NULL,
                             &half_msg, &half_detail, err);
    if (rc) goto cleanup;
  }
  /* when each applied revision last ran */
  int *row_of = malloc((lm_dag_count(app->dag) ? lm_dag_count(app->dag) : 1) * sizeof *row_of);
  if (!row_of) {
    rc = lm_error_set(err, LM_ENOMEM, "out of memory");
    goto cleanup;
  }
  for (size_t i = 0; i < lm_dag_count(app->dag); i++) row_of[i] = -1;
  for (int r = 0; r < PQntuples(res); r++) {
    int idx = lm_dag_find(app->dag, PQgetvalue(res, r, 0));
    if (idx >= 0) row_of[idx] = r;
  }
  char *where = lm_conn_describe(app->conn);
  if (a->json) {
    lm_strbuf_add(&b, "{\"database\": ");
    lm_report_json_str(&b, where);
    lm_strbuf_add(&b, ", \"version_table\": "); /* the name as configured, not SQL-quoted */
    lm_report_json_str(&b, app->cfg.version_table);
    lm_strbuf_add(&b, ", \"current\": ");
    lm_report_json_ids(&b, app->dag, &heads);
    lm_strbuf_add(&b, ", \"heads\": ");
    lm_report_json_ids(&b, app->dag, &all);
    lm_strbuf_add(&b, ", \"problem\": ");
    if (problem.s)
      lm_report_json_str(&b, problem.s);
    else
      lm_strbuf_add(&b, "null");
    lm_strbuf_add(&b, ", \"up_to_date\": %s, \"half_done\": ", pending.n ? "false" : "true");
    if (half.revision) {
      lm_strbuf_add(&b, "{\"revision\": ");
      lm_report_json_str(&b, half.revision);
      lm_strbuf_add(&b, ", \"message\": ");
      lm_report_json_str(&b, half_msg);
      lm_strbuf_add(&b, ", \"detail\": ");
      lm_report_json_str(&b, half_detail);
      lm_strbuf_add(&b, "}");
    } else {
      lm_strbuf_add(&b, "null");
    }
    lm_strbuf_add(&b, ", \"pending\": [");
    for (size_t i = 0; i < pending.n; i++) {
      int x = pending.idx[i];
      lm_strbuf_add(&b, "%s{\"revision\": ", i ? ", " : "");
      lm_report_json_str(&b, lm_dag_id(app->dag, x));
      lm_strbuf_add(&b, ", \"message\": ");
      lm_report_json_str(&b, lm_dag_doc(app->dag, x));
      lm_strbuf_add(&b, ", \"file\": ");
      lm_report_json_str(&b, lm_dag_path(app->dag, x));
      lm_strbuf_add(&b, "}");
    }
    lm_strbuf_add(&b, "], \"applied\": [");
    for (size_t i = 0; i < applied.n; i++) {
      int x = applied.idx[i], r = row_of[x];
      lm_strbuf_add(&b, "%s{\"revision\": ", i ? ", " : "");
      lm_report_json_str(&b, lm_dag_id(app->dag, x));
      lm_strbuf_add(&b, ", \"message\": ");
      lm_report_json_str(&b, lm_dag_doc(app->dag, x));
      if (r >= 0) {
        lm_strbuf_add(&b, ", \"applied_at\": ");
        lm_report_json_str(&b, PQgetvalue(res, r, 4));
        lm_strbuf_add(&b, ", \"duration_ms\": %.1f", strtod(PQgetvalue(res, r, 3), NULL));
      }
      lm_strbuf_add(&b, ", \"changed\": %s}", lm_revset_has(&changed, x) ? "true" : "false");
    }
    lm_strbuf_add(&b, "]}");
  } else {
    lm_strbuf_add(&b, "Database: %s (version table %s)\n", where ? where : "?", app->vt.table);
    lm_strbuf_add(&b, "Current: ");
    if (!heads.n) lm_strbuf_add(&b, "<base> (nothing applied)");
    for (size_t i = 0; i < heads.n; i++) {
      if (i) lm_strbuf_add(&b, ", ");
      lm_report_head(&b, app->dag, heads.idx[i], 0, 0, 0, 0, NULL);
    }
    lm_strbuf_add(&b, "\n");
    if (problem.s)
      lm_strbuf_add(&b,
                    "Problem: %s: the version table holds a revision and its ancestor; upgrade and "
                    "downgrade refuse it until 'luamigrate stamp --purge REV' resets it\n",
                    problem.s);
    if (half.revision) {
      lm_strbuf_add(&b, "Half-done: %s\n", half_msg);
      for (const char *p = half_detail; p && *p;) {
        const char *nl = strchr(p, '\n');
        int len = nl ? (int)(nl - p) : (int)strlen(p);
        lm_strbuf_add(&b, "  %.*s\n", len, p);
        p = nl ? nl + 1 : p + len;
      }
      if (!lm_workspace_journal_agrees(app, &half, &heads))
        lm_strbuf_add(&b,
                      "  the version table does not agree with this record: 'luamigrate upgrade' "
                      "says what to do\n");
      else if (!strcmp(half.operation, "downgrade"))
        lm_strbuf_add(&b,
                      "  finish it with 'luamigrate downgrade --resume TARGET', or redo it by hand "
                      "and 'luamigrate stamp' the revision\n");
      else
        lm_strbuf_add(&b,
                      "  finish it with 'luamigrate upgrade --resume head', or undo it by hand and "
                      "'luamigrate stamp' its down_revision\n");
    }
    if (pending.n == 0) {
      lm_strbuf_add(&b, "Up to date: no migration pending.\n");
    } else {
      lm_strbuf_add(&b, "Pending: %zu migration%s, in the order they will run:\n", pending.n,
                    pending.n == 1 ? "" : "s");
      for (size_t i = 0; i < pending.n; i++)
        lm_strbuf_add(&b, "  %s  %s\n", lm_dag_id(app->dag, pending.idx[i]),
                      lm_dag_doc(app->dag, pending.idx[i]));
    }
    if (applied.n) {
      lm_strbuf_add(&b, "Applied: %zu migration%s:\n", applied.n, applied.n == 1 ? "" : "s");
      for (size_t i = 0; i < applied.n; i++) {
        int x = applied.idx[i], r = row_of[x];
        if (r >= 0)
          lm_strbuf_add(&b, "  %s  %s  %8.0f ms  %s%s\n", lm_dag_id(app->dag, x),
                        PQgetvalue(res, r, 4), strtod(PQgetvalue(res, r, 3), NULL),
                        lm_dag_doc(app->dag, x),
                        lm_revset_has(&changed, x) ? "  [file changed since]" : "");
        else
          lm_strbuf_add(&b, "  %s  (%s)  %s%s\n", lm_dag_id(app->dag, x),
                        stamped[x] ? "stamped; no record of it running"
                                   : "applied before luamigrate kept history",
                        lm_dag_doc(app->dag, x),
                        lm_revset_has(&changed, x) ? "  [file changed since]" : "");
      }
    }
    if (nchanged)
      lm_strbuf_add(&b,
                    "%d applied file%s changed since %s ran: the database holds what the old "
                    "version did.",
                    nchanged, nchanged == 1 ? "" : "s", nchanged == 1 ? "it" : "they");
    else if (b.n && b.s[b.n - 1] == '\n')
      b.s[--b.n] = '\0';
  }
  free(where);
  free(row_of);
  rc = lm_report_write(app->out, &b, err);
cleanup:
  free(b.s);
  free(problem.s);
  free(half_msg);
  free(half_detail);
  lm_journal_free(&half);
  PQclear(res);
  PQclear(stamps);
  free(stamped);
  lm_revset_free(&stamped_to);
  lm_revset_free(&heads);
  lm_revset_free(&all);
  lm_revset_free(&pending);
  lm_revset_free(&applied);
  lm_revset_free(&changed);
  return rc < 0 ? rc : LM_OK;
}
