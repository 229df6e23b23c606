/* upgrade and downgrade: online (under the lock, with the half-done refusal, --resume and
 * --dry-run) or as a --sql script; with lock = "xact", a plan gone stale is made again. */
#include <stdlib.h>
#include <string.h>

#include "app.h"
#include "cmdargs.h"
#include "commands.h"
#include "conn.h"
#include "journal.h"
#include "log.h"
#include "workspace.h"
#include "tx.h"

/* The steps from `heads` to `target`: upgrade's, or a downgrade's confined to `scope`. */
static int steps(lm_app *app, const lm_revset *heads, const lm_revset *target, int upgrade,
                 int scope, lm_revset *plan, lm_error *err) {
  return upgrade ? lm_dag_plan_upgrade(app->dag, heads, target, plan, err)
                 : lm_dag_plan_downgrade_scoped(app->dag, heads, target, scope, plan, err);
}

/* `expr` resolved from `heads` (the downgrade's scope with it), then the steps there. */
static int resolve_and_plan(lm_app *app, const char *expr, const lm_revset *heads, int upgrade,
                            lm_revset *target, int *scope, lm_revset *plan, lm_error *err) {
  int rc = lm_dag_resolve_scoped(app->dag, expr, heads,
                                 upgrade ? LM_RESOLVE_UPGRADE : LM_RESOLVE_DOWNGRADE, target, scope,
                                 err);
  return rc < 0 ? rc : steps(app, heads, target, upgrade, *scope, plan, err);
}

static int migrate(lm_app *app, lm_cmdargs *a, int upgrade, lm_error *err) {
  lm_revset heads = {0}, target = {0}, plan = {0}, start = {0};
  lm_journal half = {0};
  int scope = -1; /* a downgrade confined to one branch (lm_dag_resolve_scoped) */
  int rc = lm_cmdargs_positional(app->opts, a, 1, 1, "TARGET", err);
  if (rc) return rc;
  const char *expr = a->pos[0];
  if (a->sql && a->dry_run)
    return lm_error_set(err, LM_EUSAGE,
                        "%s: --sql and --dry-run exclude each other (--sql "
                        "needs no database; --dry-run runs against it and rolls back)",
                        upgrade ? "upgrade" : "downgrade");
  if (a->resume && (a->sql || a->dry_run))
    return lm_error_set(err, LM_EUSAGE,
                        "%s: --resume runs against the database; it excludes --sql and "
                        "--dry-run",
                        upgrade ? "upgrade" : "downgrade");
  if (a->locks && !a->dry_run)
    return lm_error_set(err, LM_EUSAGE,
                        "%s: --locks reports what --dry-run's statements lock; give --dry-run too",
                        upgrade ? "upgrade" : "downgrade");
  if (a->sql) {
    if (!upgrade && !strchr(expr, ':'))
      return lm_error_set(err, LM_EUSAGE, "downgrade with --sql requires <fromrev>:<torev>");
    const char *tgt;
    int from_base;
    if ((rc = lm_workspace_offline_start(app, expr, &heads, &tgt, &from_base, err)) < 0)
      goto cleanup;
    if ((rc = resolve_and_plan(app, tgt, &heads, upgrade, &target, &scope, &plan, err)) < 0)
      goto cleanup;
    if ((rc = lm_loader_compile(app, &plan, err)) == LM_OK)
      rc = lm_run_plan_offline(app, &heads, &plan, upgrade, from_base, err);
    goto cleanup;
  }
  if (strchr(expr, ':'))
    return lm_error_set(err, LM_EUSAGE,
                        "Range revision not allowed: '%s' (ranges A:B are for --sql output)", expr);
  app->dry_run = a->dry_run;
  app->show_locks = a->locks;
  if ((rc = lm_workspace_connect_locking(app, err))) goto cleanup;
  /* A dry run creates even the version tables inside the transaction it rolls back. */
  if (a->dry_run && (rc = lm_tx_begin(app->conn, err))) goto cleanup;
  /* Under the lock, everything the start reads (version rows, journal, applied checksums)
   * comes in one round trip; it is dropped before the first step writes. */
  if ((rc = lm_workspace_lock(app, err)) || (rc = lm_vt_prefetch(&app->vt, app->conn, 0, err)) ||
      (rc = lm_workspace_heads(app, &heads, err)) ||
      (rc = lm_workspace_check_overlap(app, &heads, err)))
    goto cleanup;
  /* A half-done revision: only --resume in its direction goes on (from the revision's
   * start), once the statement the interrupted run left running has ended. */
  if ((rc = lm_journal_read(&app->vt, app->conn, &half, err))) goto cleanup;
  if (half.revision && a->resume && lm_workspace_journal_agrees(app, &half, &heads) &&
      !strcmp(half.operation, upgrade ? "upgrade" : "downgrade") &&
      (rc = lm_workspace_wait_statement(app, &half, err)))
    goto cleanup;
  if (half.revision && (!a->resume || !lm_workspace_journal_agrees(app, &half, &heads) ||
                        strcmp(half.operation, upgrade ? "upgrade" : "downgrade") != 0)) {
    rc = lm_workspace_half_done(app, &half, &heads, upgrade ? "upgrade" : "downgrade", err);
    goto cleanup;
  }
  if (a->resume && !half.revision)
    lm_log_info("--resume: no revision is half-done; %s as usual",
                upgrade ? "upgrading" : "downgrading");
  if ((rc = resolve_and_plan(app, expr, &heads, upgrade, &target, &scope, &plan, err)) < 0)
    goto cleanup;
  int nchanged;
  rc = lm_workspace_changed(app, &heads, &nchanged, NULL, &plan, err);
  lm_vt_forget(&app->vt);
  if (rc) goto cleanup;
  if (half.revision) {
    if (plan.n == 0 || strcmp(lm_dag_id(app->dag, plan.idx[0]), half.revision) != 0) {
      rc = lm_error_set(err, LM_EUSAGE,
                        "%s --resume %s: the half-done revision %s is not the next step "
                        "towards that target",
                        upgrade ? "upgrade" : "downgrade", expr, half.revision);
      lm_error_setfield(&err->hint, upgrade ? "name a target at or past it, e.g. 'head'"
                                            : "name a target below it, e.g. '-1' or 'base'");
      goto cleanup;
    }
    lm_log_info("Resuming revision %s: the statements its journal records done are skipped",
                half.revision);
    app->resume = &half;
  }
  const int relative = lm_dag_target_relative(expr);
  for (size_t i = 0; i < heads.n && rc >= 0; i++)
    if (lm_revset_push(&start, heads.idx[i])) rc = lm_error_set(err, LM_ENOMEM, "out of memory");
  if (rc >= 0) rc = lm_loader_compile(app, &plan, err);
  if (rc >= 0 && upgrade) rc = lm_lint_before_upgrade(app, &plan, err);
  if (rc >= 0) rc = lm_run_plan(app, &heads, &plan, upgrade, err);
  app->resume = NULL;
  /* lock = "xact": between transactions another run may move the version table; each
   * transaction checks under the lock, and a stale plan is made again from where the
   * database is now. An absolute target stays; a relative one (-1, +2, label@-1) means
   * steps from the database's state, so it is resolved again from what the lock shows, as
   * long as this run has committed none of its steps; after that it cannot tell how many
   * steps are left and stops. */
  for (int again = 0; rc == LM_ESTALE && app->cfg.lock_mode == LM_LOCK_XACT && again < 10000;
       again++) {
    if (relative && !lm_revset_same(&start, &heads)) {
      free(err->hint);
      err->hint = NULL;
      lm_error_setfield(&err->hint,
                        "this run stopped after some of its steps, as its target is relative "
                        "to the version table's state; check 'luamigrate current' and run the "
                        "command again");
      break;
    }
    lm_error_clear(err);
    lm_revset_free(&heads);
    lm_revset_free(&plan);
    if ((rc = lm_workspace_heads(app, &heads, err)) ||
        (rc = lm_workspace_check_overlap(app, &heads, err)))
      break;
    if (relative) {
      lm_revset_free(&target);
      lm_revset_free(&start);
      for (size_t i = 0; i < heads.n && rc >= 0; i++)
        if (lm_revset_push(&start, heads.idx[i]))
          rc = lm_error_set(err, LM_ENOMEM, "out of memory");
      if (rc >= 0)
        rc = lm_dag_resolve(app->dag, expr, &heads,
                            upgrade ? LM_RESOLVE_UPGRADE : LM_RESOLVE_DOWNGRADE, &target, err);
      if (rc < 0) break;
    }
    if ((rc = steps(app, &heads, &target, upgrade, scope, &plan, err)) < 0) break;
    rc = lm_run_plan(app, &heads, &plan, upgrade, err);
  }
cleanup:
  lm_journal_free(&half);
  lm_revset_free(&heads);
  lm_revset_free(&target);
  lm_revset_free(&plan);
  lm_revset_free(&start);
  return rc < 0 ? rc : LM_OK;
}

int lm_cmd_upgrade(lm_app *app, lm_cmdargs *a, lm_error *err) {
  return migrate(app, a, 1, err);
}
int lm_cmd_downgrade(lm_app *app, lm_cmdargs *a, lm_error *err) {
  return migrate(app, a, 0, err);
}
