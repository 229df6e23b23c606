/* lint (luamigrate.lint; docs/safety.md): the statements of pending revisions judged for
 * locks, rewrites and breaking changes; and the same lint of upgrade's plan before it runs. */
#include <lua.h>
#include <stdlib.h>
#include <string.h>

#include "app.h"
#include "bind/bind.h"
#include "cancel.h"
#include "cmdargs.h"
#include "commands.h"
#include "conn.h"
#include "log.h"
#include "workspace.h"
#include "tx.h"

/* Pushes luamigrate.lint.open(config_path, conn or nil): a lint session. */
static int lint_session(lm_app *app, int online, lm_error *err) {
  lua_State *L = app->L;
  if (lm_push_module_field(L, "luamigrate.lint", "open", err)) return LM_ERR;
  lua_pushstring(L, app->cfg.path);
  if (online)
    lm_push_conn(L, app->conn, 1);
  else
    lua_pushnil(L);
  if (lm_pcall(L, 2, 1) != LUA_OK) {
    lm_error_from_lua(L, -1, LM_EUSAGE, err);
    lua_pop(L, 1);
    return LM_EUSAGE;
  }
  return LM_OK;
}

/* The revisions lint.start_after names and their ancestors: old history not judged again. */
static int lint_skip(lm_app *app, int session, lm_revset *skip, lm_error *err) {
  lua_State *L = app->L;
  lua_getfield(L, session, "lint");
  lua_getfield(L, -1, "start_after");
  char *start = lua_isstring(L, -1) ? strdup(lua_tostring(L, -1)) : NULL;
  lua_pop(L, 2);
  if (!start) return LM_OK;
  lm_revset none = {0}, at = {0};
  int rc = lm_dag_resolve(app->dag, start, &none, LM_RESOLVE_SHOW, &at, err);
  if (rc >= 0) rc = lm_dag_plan_upgrade(app->dag, &none, &at, skip, err);
  if (rc < 0) lm_error_prefix(err, "%s: lint.start_after", app->cfg.path);
  lm_revset_free(&at);
  free(start);
  return rc < 0 ? rc : LM_OK;
}

/* The lint of upgrade's plan; *refused is set when lint.upgrade = "error" stops the run. */
static int lint_plan(lm_app *app, const lm_revset *plan, int *refused, lm_error *err) {
  lua_State *L = app->L;
  int top = lua_gettop(L);
  lm_revset skip = {0};
  int rc = lint_session(app, 1, err);
  if (rc) return rc;
  int session = lua_gettop(L);
  lua_getfield(L, session, "lint");
  lua_getfield(L, -1, "upgrade");
  const char *mode = lua_tostring(L, -1);
  int off = mode && !strcmp(mode, "off"), strict = mode && !strcmp(mode, "error");
  lua_pop(L, 2);
  if (off) goto cleanup;
  if ((rc = lint_skip(app, session, &skip, err))) goto cleanup;
  if ((rc = lm_lint_render(app, plan, 1, session, &skip, err))) goto cleanup;
  lua_getfield(L, session, "warnings");
  lua_pushvalue(L, session);
  if (lm_pcall(L, 1, 3) != LUA_OK) {
    lm_error_from_lua(L, -1, LM_ERR, err);
    rc = LM_ERR;
    goto cleanup;
  }
  lua_Integer errors = lua_tointeger(L, -2);
  for (lua_Integer i = 1; lua_rawgeti(L, -3, i) == LUA_TSTRING; i++) {
    lm_log_warn("%s", lua_tostring(L, -1));
    lua_pop(L, 1);
  }
  lua_pop(L, 1);
  if (lua_isstring(L, -1)) lm_log_detail("%s", lua_tostring(L, -1));
  if (strict && errors > 0) {
    *refused = 1;
    rc = lm_error_set(err, LM_ERR,
                      "upgrade refused: lint found %lld error-level finding%s in what it would "
                      "run (lint.upgrade = \"error\")",
                      (long long)errors, errors == 1 ? "" : "s");
    lm_error_setfield(&err->hint,
                      "fix them, or allow them in the migration (op.allow, -- luamigrate:allow); "
                      "'luamigrate lint' shows them with hints");
  }
cleanup:
  lm_revset_free(&skip);
  lua_settop(L, top);
  return rc;
}

/* upgrade: the plan linted first, its findings shown as warnings (lint.upgrade = "warn", the
 * default); "error" refuses to run a plan with an error-level finding, "off" skips this. The
 * lint only reads (in a dry run inside a savepoint, so even a failed read leaves the
 * transaction usable); if it cannot do its work, the run goes on with a warning. */
int lm_lint_before_upgrade(lm_app *app, const lm_revset *plan, lm_error *err) {
  if (plan->n == 0) return LM_OK;
  if (app->dry_run && lm_tx_savepoint(app->conn, "luamigrate_lint", err)) return LM_ERR;
  int refused = 0;
  int rc = lint_plan(app, plan, &refused, err);
  if (app->dry_run) {
    lm_error sp = {0};
    if (lm_tx_release(app->conn, "luamigrate_lint", rc != LM_OK, &sp) && rc == LM_OK) {
      lm_error_move(err, &sp);
      return LM_ERR;
    }
    lm_error_clear(&sp);
  }
  if (refused || lm_cancel_requested()) return rc;
  if (rc) {
    lm_log_warn("lint could not check the plan (%s); running it unchecked",
                err->message ? err->message : "?");
    lm_error_clear(err);
  }
  return LM_OK;
}

/* luamigrate lint [RANGE] [--offline] [--json] [--downgrade]: the revisions pending on the
 * database (or, offline or in a START:END range, from START or base), rendered as --sql
 * renders them and judged by luamigrate.lint. Exit 1 on an error-level finding. */
int lm_cmd_lint(lm_app *app, lm_cmdargs *a, lm_error *err) {
  lm_revset heads = {0}, target = {0}, plan = {0}, skip = {0};
  lua_State *L = app->L;
  int top = lua_gettop(L);
  int rc = lm_cmdargs_positional(app->opts, a, 0, 1, "RANGE", err);
  if (rc) return rc;
  const int up = !a->downgrade;
  const char *expr = a->npos ? a->pos[0] : up ? "heads" : "base";
  int online = 0;
  if (!a->offline) {
    if (lm_workspace_connect(app, err) == LM_OK) {
      online = 1;
    } else {
      lm_log_info("lint: no database reachable (%s); linting offline, from the revision files",
                  err->message ? err->message : "?");
      lm_error_clear(err);
      if (app->conn) PQfinish(app->conn);
      app->conn = NULL;
    }
  }
  const char *tgt = expr;
  if (strchr(expr, ':') || !online) {
    int from_base;
    if (strchr(expr, ':')) {
      if ((rc = lm_workspace_offline_start(app, expr, &heads, &tgt, &from_base, err)) < 0)
        goto cleanup;
    } else if (!up) {
      lm_revset none = {0};
      if ((rc = lm_dag_resolve(app->dag, "heads", &none, LM_RESOLVE_SHOW, &heads, err)) < 0)
        goto cleanup;
    }
  } else if ((rc = lm_workspace_heads(app, &heads, err))) {
    goto cleanup;
  }
  rc = lm_dag_resolve(app->dag, tgt, &heads, up ? LM_RESOLVE_UPGRADE : LM_RESOLVE_DOWNGRADE,
                      &target, err);
  if (rc < 0) goto cleanup;
  rc = up ? lm_dag_plan_upgrade(app->dag, &heads, &target, &plan, err)
          : lm_dag_plan_downgrade(app->dag, &heads, &target, &plan, err);
  if (rc < 0) goto cleanup;
  if ((rc = lint_session(app, online, err))) goto cleanup;
  int session = lua_gettop(L);
  if ((rc = lint_skip(app, session, &skip, err))) goto cleanup;
  if ((rc = lm_lint_render(app, &plan, up, session, &skip, err))) goto cleanup;
  lua_getfield(L, session, "report");
  lua_pushvalue(L, session);
  lua_pushboolean(L, a->json);
  if (lm_pcall(L, 2, 1) != LUA_OK) {
    lm_error_from_lua(L, -1, LM_ERR, err);
    rc = LM_ERR;
    goto cleanup;
  }
  if (lua_tointeger(L, -1) != 0)
    rc = lm_error_set(err, LM_ERR, "lint: error-level findings (listed above)");
cleanup:
  lua_settop(L, top);
  lm_revset_free(&heads);
  lm_revset_free(&target);
  lm_revset_free(&plan);
  lm_revset_free(&skip);
  return rc < 0 ? rc : LM_OK;
}
