/* The offline runner: upgrade/downgrade --sql writes the plan as a SQL script instead of
 * running it (statements rendered by op.* into ctx.emit, the bookkeeping rows by
 * luamigrate.offline), and the lint renders the plan the same way into a lint session. */
#include <lauxlib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cancel.h"
#include "log.h"
#include "runner.h"
#include "tx.h"

/* ---- lint: the --sql rendering into a lint session ------------------------------------ */

/* Calls session:<method>(args on the stack); 0, or LM_ERR with err filled. */
static int session_call(lua_State *L, int session, const char *method, int nargs, lm_error *err) {
  lua_getfield(L, session, method);
  lua_pushvalue(L, session);
  lua_rotate(L, -2 - nargs, 2); /* method, session, args... */
  if (lm_pcall(L, nargs + 1, 0) != LUA_OK) {
    lm_error_from_lua(L, -1, LM_ERR, err);
    lua_pop(L, 1);
    return LM_ERR;
  }
  return LM_OK;
}

int lm_lint_render(lm_app *app, const lm_revset *plan, int upgrade, int session,
                   const lm_revset *skip, lm_error *err) {
  lua_State *L = app->L;
  int top = lua_gettop(L);
  int rc = LM_OK;
  session = lua_absindex(L, session);
  const char *fn = upgrade ? "upgrade" : "downgrade";
  lua_pushnil(L); /* the context's emit: session:begin sets its own */
  int emit_idx = lua_gettop(L);
  lm_run_push_x(L, app);
  int x_idx = lua_gettop(L);
  const lm_run_spec spec = {.emit_idx = emit_idx, .x_idx = x_idx};
  for (size_t s = 0; s < plan->n && rc == LM_OK; s++) {
    int idx = plan->idx[s];
    if (skip && lm_revset_has(skip, idx)) continue;
    if ((rc = lm_loader_env(app, idx, err))) break;
    lua_getfield(L, -1, fn);
    lua_remove(L, -2);
    int fn_idx = lua_gettop(L);
    lm_run_open(L, &spec);
    lm_run_push_context(L);
    lua_pushstring(L, lm_dag_id(app->dag, idx));
    lua_pushstring(L, lm_dag_path(app->dag, idx));
    rc = session_call(L, session, "begin", 3, err);
    int ok = 1;
    if (rc == LM_OK && !lua_isnil(L, fn_idx)) {
      lua_pushvalue(L, fn_idx);
      lm_cancel_set_phase(LM_CANCEL_LINT); /* user Lua: a signal must stop it too */
      ok = lm_pcall(L, 0, 0) == LUA_OK;    /* a failure leaves its error table */
      lm_cancel_set_phase(NULL);
      if (!ok && lm_cancel_requested()) /* not a finding: the run stops here */
        rc = lm_error_set(err, LM_EINTR, "%s: %s", lm_dag_path(app->dag, idx), LM_CANCEL_LINT);
    }
    lm_run_close(L);
    if (rc == LM_OK) {
      lua_pushboolean(L, ok);
      if (ok)
        lua_pushnil(L);
      else
        lua_pushvalue(L, -2);
      rc = session_call(L, session, "finish_revision", 2, err);
    }
    lua_settop(L, fn_idx - 1);
    lm_loader_release(app, idx);
  }
  if (rc == LM_OK) rc = session_call(L, session, "done", 0, err);
  lua_settop(L, top);
  return rc;
}

/* ---- offline (--sql) --------------------------------------------------------------- */

void lm_emit_sql(const char *sql) {
  fputs(sql, stdout);
  fputs(";\n\n", stdout);
}

static int l_emit(lua_State *L) {
  lm_emit_sql(lm_check_text(L, 1, "statement"));
  return 0;
}

/* Calls require("luamigrate.offline")[fn](args on the stack) -> results; 0 or error. */
static int offline_call(lua_State *L, const char *fn, int nargs, int nres, lm_error *err) {
  if (lm_push_module_field(L, "luamigrate.offline", fn, err)) {
    lua_pop(L, nargs);
    return LM_ERR;
  }
  lua_insert(L, -1 - nargs);
  if (lm_pcall(L, nargs, nres) != LUA_OK) {
    lm_error_from_lua(L, -1, LM_ERR, err);
    lua_pop(L, 1);
    return LM_ERR;
  }
  return LM_OK;
}

int lm_emit_offline_preamble(lm_app *app, lm_error *err) {
  lua_State *L = app->L;
  const char *enc = getenv("PGCLIENTENCODING");
  if (enc)
    lua_pushstring(L, enc);
  else
    lua_pushnil(L);
  if (offline_call(L, "preamble", 1, 1, err)) return LM_ERR;
  lm_emit_sql(lua_tostring(L, -1));
  lua_pop(L, 1);
  return LM_OK;
}

int lm_emit_stamp_history(lm_app *app, const char *revision, const char *from, const char *to,
                          lm_error *err) {
  lua_State *L = app->L;
  lua_pushstring(L, app->cfg.version_table);
  lua_createtable(L, 0, 5);
  lua_pushstring(L, revision);
  lua_setfield(L, -2, "revision");
  lua_pushliteral(L, "stamp");
  lua_setfield(L, -2, "operation");
  const char *ids[2] = {from, to};
  const char *names[2] = {"from", "to"};
  for (int k = 0; k < 2; k++) { /* space-separated ids -> a list */
    lua_newtable(L);
    lua_Integer n = 0;
    for (const char *p = ids[k]; *p;) {
      size_t len = strcspn(p, " ");
      if (len) {
        lua_pushlstring(L, p, len);
        lua_rawseti(L, -2, ++n);
      }
      p += len;
      p += strspn(p, " ");
    }
    lua_setfield(L, -2, names[k]);
  }
  lua_pushliteral(L, LM_VERSION);
  lua_setfield(L, -2, "version");
  if (offline_call(L, "history_row", 2, 1, err)) return LM_ERR;
  lm_emit_sql(lua_tostring(L, -1));
  lua_pop(L, 1);
  return LM_OK;
}

/* --sql: the timeouts the online run sets (lm_tx_timeouts), as statements
 * (luamigrate.offline.timeout): "local" in each migration's transaction, "session" and
 * "reset" around an autocommit block. */
static int emit_timeouts(lm_app *app, const char *how, lm_error *err) {
  static const char *const names[2] = {"lock_timeout", "statement_timeout"};
  const char *values[2] = {app->cfg.ddl_lock_timeout, app->cfg.statement_timeout};
  lua_State *L = app->L;
  for (int i = 0; i < 2; i++) {
    if (!values[i]) continue;
    lua_pushstring(L, how);
    lua_pushstring(L, names[i]);
    lua_pushstring(L, values[i]);
    if (offline_call(L, "timeout", 3, 1, err)) return LM_ERR;
    lm_emit_sql(lua_tostring(L, -1));
    lua_pop(L, 1);
  }
  return LM_OK;
}

/* The autocommit protocol in --sql: the script commits, sets the block's timeouts for the
 * session, lists fn's statements, resets them, begins again and sets the transaction's
 * timeouts. After a failure nothing more is written: the script stops there. */
static int offline_leave(lua_State *L, void *ud, lm_error *err) {
  (void)L;
  lm_emit_sql(LM_TX_COMMIT_SQL);
  return emit_timeouts(ud, "session", err);
}

static int offline_enter(lua_State *L, void *ud, int failed, lm_error *err) {
  (void)L;
  if (failed) return LM_OK;
  int rc = emit_timeouts(ud, "reset", err);
  if (rc) return rc;
  lm_emit_sql(LM_TX_BEGIN_SQL);
  return emit_timeouts(ud, "local", err);
}

int lm_emit_offline_ddl(lm_app *app, lm_error *err) {
  lua_State *L = app->L;
  lua_pushstring(L, app->cfg.version_table);
  if (offline_call(L, "create_tables", 1, 1, err)) return LM_ERR;
  for (lua_Integer i = 1; lua_rawgeti(L, -1, i) == LUA_TSTRING; i++) {
    lm_emit_sql(lua_tostring(L, -1));
    lua_pop(L, 1);
  }
  lua_pop(L, 2);
  return LM_OK;
}

int lm_vt_apply(lm_app *app, int offline, lm_vt_kind kind, const char *from, const char *to,
                lm_error *err) {
  if (!offline) {
    switch (kind) {
      case LM_VT_INSERT: return lm_vt_insert(&app->vt, app->conn, to, err);
      case LM_VT_DELETE: return lm_vt_delete(&app->vt, app->conn, from, err);
      case LM_VT_UPDATE: return lm_vt_update(&app->vt, app->conn, from, to, err);
    }
    return LM_ERR;
  }
  lua_State *L = app->L;
  lua_pushstring(L, app->cfg.version_table);
  lua_pushstring(L, kind == LM_VT_INSERT ? "insert" : kind == LM_VT_DELETE ? "delete" : "update");
  lua_pushstring(L, from ? from : "");
  lua_pushstring(L, to ? to : "");
  if (offline_call(L, "version_row", 4, 1, err)) return LM_ERR;
  lm_emit_sql(lua_tostring(L, -1));
  lua_pop(L, 1);
  return LM_OK;
}

/* Pushes s as the history table takes it (lm_vt_utf8_clean), built in a buffer Lua owns. */
static void push_clean(lua_State *L, const char *s) {
  char *buf = lua_newuserdatauv(L, 4 * strlen(s) + 1, 0);
  lua_pushstring(L, lm_vt_utf8_clean(s, buf));
  lua_remove(L, -2);
}

static void push_id_list(lua_State *L, const lm_dag *dag, const int *idx, size_t n) {
  lua_createtable(L, (int)n, 0);
  for (size_t i = 0; i < n; i++) {
    lua_pushstring(L, lm_dag_id(dag, idx[i]));
    lua_rawseti(L, -2, (lua_Integer)i + 1);
  }
}

int lm_run_plan_offline(lm_app *app, lm_revset *heads, const lm_revset *plan, int upgrade,
                        int from_base, lm_error *err) {
  lua_State *L = app->L;
  int top = lua_gettop(L);
  int rc = LM_OK, in_tx = 0;
  const char *fn = upgrade ? "upgrade" : "downgrade";
  const int per_migration = app->cfg.tx_per_migration;
  lua_pushcfunction(L, l_emit);
  int emit_idx = lua_gettop(L);
  lm_run_push_x(L, app);
  int x_idx = lua_gettop(L);
  const lm_run_mode mode = {.leave = offline_leave, .enter = offline_enter, .ud = app};
  const lm_run_spec spec = {.emit_idx = emit_idx, .x_idx = x_idx, .mode = &mode};

  if ((rc = lm_emit_offline_preamble(app, err))) goto done;
  if (from_base && upgrade) {
    lm_emit_sql(LM_TX_BEGIN_SQL);
    in_tx = 1;
    if ((rc = lm_emit_offline_ddl(app, err))) goto done;
  }
  for (size_t s = 0; s < plan->n; s++) {
    int idx = plan->idx[s];
    const int *parents;
    size_t np = lm_dag_parents(app->dag, idx, &parents);
    char *pstr = lm_run_comma_ids(app->dag, parents, np);
    const char *self = lm_dag_id(app->dag, idx);
    if (!in_tx) {
      lm_emit_sql(LM_TX_BEGIN_SQL);
      in_tx = 1;
    }
    printf("-- Running %s %s -> %s\n\n", fn, upgrade ? (pstr ? pstr : "") : self,
           upgrade ? self : (pstr ? pstr : ""));
    if ((rc = emit_timeouts(app, "local", err)) || (rc = lm_loader_env(app, idx, err))) {
      free(pstr);
      goto done;
    }
    lua_getfield(L, -1, fn);
    lua_remove(L, -2);
    lm_run_open(L, &spec);
    lm_cancel_set_phase(LM_CANCEL_SCRIPT);
    int st = lm_pcall(L, 0, 0);
    lm_cancel_set_phase(NULL);
    lm_run_close(L);
    if (st != LUA_OK) {
      lm_run_step_error(app, idx, upgrade, upgrade ? (pstr ? pstr : "") : self,
                        upgrade ? self : (pstr ? pstr : ""), err);
      free(pstr);
      rc = LM_ERR;
      goto done;
    }
    free(pstr);
    lm_vt_op ops[64];
    int nops = lm_dag_step(app->dag, heads, idx, upgrade, ops, 64, err);
    if (nops < 0) {
      rc = nops;
      goto done;
    }
    for (int i = 0; i < nops && rc == LM_OK; i++)
      rc = lm_vt_apply(app, 1, ops[i].kind,
                       ops[i].kind == LM_VT_INSERT ? NULL : lm_dag_id(app->dag, ops[i].from),
                       ops[i].kind == LM_VT_DELETE ? NULL : lm_dag_id(app->dag, ops[i].to), err);
    if (rc) goto done;
    /* history row */
    lua_pushstring(L, app->cfg.version_table);
    lua_createtable(L, 0, 8);
    lua_pushstring(L, self);
    lua_setfield(L, -2, "revision");
    lua_pushstring(L, fn);
    lua_setfield(L, -2, "operation");
    if (upgrade)
      push_id_list(L, app->dag, parents, np);
    else
      push_id_list(L, app->dag, &idx, 1);
    lua_setfield(L, -2, "from");
    if (upgrade)
      push_id_list(L, app->dag, &idx, 1);
    else
      push_id_list(L, app->dag, parents, np);
    lua_setfield(L, -2, "to");
    push_clean(L, lm_dag_doc(app->dag, idx));
    lua_setfield(L, -2, "message");
    push_clean(L, lm_dag_path(app->dag, idx));
    lua_setfield(L, -2, "file");
    lua_pushliteral(L, LM_VERSION);
    lua_setfield(L, -2, "version");
    lua_pushboolean(L, per_migration);
    lua_setfield(L, -2, "timed");
    /* the checksum of the bytes that ran, as an online run records it (the changed-file
     * check compares it) */
    char sum[LM_CHECKSUM_HEX];
    lua_pushstring(L, lm_loader_checksum(app, idx, sum));
    lua_setfield(L, -2, "checksum");
    if ((rc = offline_call(L, "history_row", 2, 1, err))) goto done;
    lm_emit_sql(lua_tostring(L, -1));
    lua_pop(L, 1);
    lm_loader_release(app, idx);
    if (per_migration) {
      lm_emit_sql(LM_TX_COMMIT_SQL);
      in_tx = 0;
    }
  }
  if (in_tx) lm_emit_sql(LM_TX_COMMIT_SQL);
done:
  fflush(stdout);
  lua_settop(L, top);
  return rc;
}
