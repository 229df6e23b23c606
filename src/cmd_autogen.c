/* The declared schema against the database (luamigrate.autogen): check, inspect (the
 * database written as a schema.lua, with --baseline a first revision and a stamp), and the
 * compare behind revision --autogenerate. */
#include <lauxlib.h>
#include <lua.h>
#include <stdio.h>
#include <time.h>

#include "app.h"
#include "bind/bind.h"
#include "cmdargs.h"
#include "commands.h"
#include "conn.h"
#include "log.h"
#include "newfile.h"
#include "workspace.h"
#include "tx.h"

/* Calls luamigrate.autogen[fn](conn, {config, script_location, version_table, baseline}) with
 * app->conn borrowed for the call, and leaves its result on the stack. On failure the stack
 * is as before, a transaction the call left open is rolled back, and err is filled. */
static int call(lm_app *app, const char *fn, int baseline, lm_error *err) {
  lua_State *L = app->L;
  int rc = lm_push_module_field(L, "luamigrate.autogen", fn, err);
  if (rc) return rc;
  int f = lua_gettop(L);
  lm_push_conn(L, app->conn, 1);
  int conn_idx = lua_gettop(L);
  lua_pushvalue(L, f);
  lua_pushvalue(L, conn_idx);
  lua_createtable(L, 0, 4);
  lua_pushstring(L, app->cfg.path);
  lua_setfield(L, -2, "config");
  lua_pushstring(L, app->cfg.script_location);
  lua_setfield(L, -2, "script_location");
  lua_pushstring(L, app->cfg.version_table);
  lua_setfield(L, -2, "version_table");
  lua_pushboolean(L, baseline);
  lua_setfield(L, -2, "baseline");
  int st = lm_pcall(L, 2, 1);
  lm_conn_detach(L, conn_idx);
  lua_replace(L, f); /* the result (or error) where the function was */
  lua_settop(L, f);
  if (st == LUA_OK) return LM_OK;
  lm_error_from_lua(L, -1, LM_EUSAGE, err);
  lua_pop(L, 1);
  if (PQtransactionStatus(app->conn) != PQTRANS_IDLE) {
    lm_error e = {0};
    lm_tx_rollback(app->conn, &e);
    lm_error_clear(&e);
  }
  return err->code ? err->code : LM_EUSAGE;
}

/* Compares the declared schema with the database (which must be at the heads, as a new
 * revision goes on top of them). Leaves the result table of luamigrate.autogen.generate on
 * the stack: {ops = {text...}, upgrade = text, downgrade = text}. */
int lm_autogen_compare(lm_app *app, lm_error *err) {
  lm_revset cur = {0};
  int ok = 0, rc = lm_workspace_connect(app, err);
  if (rc == LM_OK) rc = lm_workspace_heads(app, &cur, err);
  if (rc == LM_OK) rc = lm_workspace_on_heads(app, &cur, &ok, err);
  lm_revset_free(&cur);
  if (rc) return rc;
  if (!ok) {
    lm_error_set(err, LM_ERR, "Target database is not up to date.");
    lm_error_setfield(&err->hint,
                      "run 'luamigrate upgrade heads' first: autogenerate compares "
                      "the declared schema with a database at the heads");
    return LM_ERR;
  }
  return call(app, "generate", 0, err);
}

void lm_autogen_print_ops(lm_app *app, int t, const char *prefix) {
  lua_State *L = app->L;
  lua_getfield(L, t, "ops");
  for (lua_Integer i = 1; lua_rawgeti(L, -1, i) == LUA_TSTRING; i++) {
    fprintf(app->out, "%s%s\n", prefix, lua_tostring(L, -1));
    lua_pop(L, 1);
  }
  lua_pop(L, 2);
}

/* check: exit 1 and list the differences when the database differs from the declared
 * schema; 0 otherwise. */
int lm_cmd_check(lm_app *app, lm_cmdargs *a, lm_error *err) {
  int rc = lm_cmdargs_positional(app->opts, a, 0, 0, "", err);
  if (rc || (rc = lm_autogen_compare(app, err))) return rc;
  lua_State *L = app->L;
  int t = lua_gettop(L);
  lua_getfield(L, t, "upgrade");
  int changed = !lua_isnil(L, -1);
  lua_pop(L, 1);
  if (!changed) {
    fprintf(app->out, "No new upgrade operations detected.\n");
  } else {
    fprintf(app->out, "New upgrade operations detected:\n");
    lm_autogen_print_ops(app, t, "  ");
    lua_getfield(L, t, "ops");
    rc = lm_error_set(err, LM_ERR, "the database differs from the declared schema in %d way%s",
                      (int)luaL_len(L, -1), luaL_len(L, -1) == 1 ? "" : "s");
    lua_pop(L, 1);
  }
  lua_settop(L, t - 1);
  return rc;
}

/* inspect [-o FILE] [--baseline]: the database (the schemas in scope, as for autogenerate)
 * written as a schema.lua, to stdout or to FILE (which must not exist); with --baseline
 * also a first revision that creates all of it, and the database stamped at that revision,
 * so a database luamigrate has never run on adopts it in one step. */
int lm_cmd_inspect(lm_app *app, lm_cmdargs *a, lm_error *err) {
  lua_State *L = app->L;
  lm_revset cur = {0}, heads = {0};
  char id[13] = {0};
  int top = lua_gettop(L), in_tx = 0;
  int rc = lm_cmdargs_positional(app->opts, a, 0, 0, "", err);
  if (rc || (rc = lm_workspace_connect(app, err))) goto cleanup;
  if (a->baseline) {
    if (lm_dag_heads(app->dag, &heads)) {
      rc = lm_error_set(err, LM_ENOMEM, "out of memory");
      goto cleanup;
    }
    if (heads.n) {
      rc = lm_error_set(err, LM_EUSAGE,
                        "inspect --baseline: %s already holds revisions; a baseline is the first "
                        "one",
                        app->cfg.versions_dir);
      lm_error_setfield(&err->hint,
                        "run 'luamigrate inspect' without --baseline, or "
                        "'luamigrate revision --autogenerate' for what changed");
      goto cleanup;
    }
    if ((rc = lm_workspace_heads(app, &cur, err))) goto cleanup;
    if (cur.n) {
      rc = lm_error_set(err, LM_EUSAGE, "inspect --baseline: the database is already stamped");
      goto cleanup;
    }
  }
  if ((rc = call(app, "inspect_schema", a->baseline, err))) goto cleanup;
  int t = lua_gettop(L);
  lua_getfield(L, t, "schema");
  if (a->output) {
    if ((rc = lm_newfile_write(a->output, lua_tostring(L, -1), err))) goto cleanup;
    lm_log_info("Wrote %s", a->output);
  } else {
    fputs(lua_tostring(L, -1), stdout);
  }
  lua_pop(L, 1);
  if (!a->baseline) goto cleanup;
  if ((rc = lm_revision_random_id(id, err))) goto cleanup;
  a->rev_id = id;
  if (!a->message) a->message = "baseline";
  if ((rc = lm_revision_write(app, a, &heads, t, err)) < 0) goto cleanup;
  /* and the database is at it: the revision describes what is already there */
  if ((rc = lm_workspace_lock(app, err)) || (rc = lm_tx_begin(app->conn, err))) goto cleanup;
  in_tx = 1;
  if ((rc = lm_vt_apply(app, 0, LM_VT_INSERT, NULL, id, err))) goto cleanup;
  lm_vt_record rec = {.revision = id, .operation = "stamp", .from_ids = "", .to_ids = id};
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  rec.started_at = (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
  if ((rc = lm_vt_record_step(&app->vt, app->conn, &rec, err))) goto cleanup;
  rc = lm_tx_commit(app->conn, err);
  in_tx = 0;
  if (rc == LM_OK) lm_log_info("Stamped the database at %s", id);
cleanup:
  if (in_tx) {
    lm_error e = {0};
    lm_tx_rollback(app->conn, &e);
    lm_error_clear(&e);
  }
  lm_revset_free(&cur);
  lm_revset_free(&heads);
  lua_settop(L, top);
  return rc < 0 ? rc : LM_OK;
}
