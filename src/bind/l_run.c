/* The run context op.* works on: a luamigrate.Run userdata, open while a migration runs and
 * marked ended after, whose table core.context() hands out. Outside a run core.context()
 * raises, so op.* called at load time fails with a clear message; a closure saved from the
 * table and called later raises "run has ended". The one autocommit protocol and the
 * environment's pcall/xpcall live here too. */
#include <string.h>
#include <time.h>

#include "bind.h"
#include "conn.h"
#include "log.h"
#include "tx.h"

static const char RUN_KEY; /* registry[&RUN_KEY]: the open Run, or nil */
static const char RUN_MT[] = "luamigrate.Run";

typedef struct lm_run {
  int open;         /* 0 once lm_run_close has run */
  PGconn *conn;     /* the Conns' connection (borrowed), or NULL offline */
  lm_run_mode mode; /* the autocommit protocol, copied from the spec */
  int has_mode;
} lm_run;

/* Hands luamigrate.quote the connection statements go to (conn_idx), or takes it back (0):
 * online, literals are escaped for that connection's client encoding (quote.lua). */
static void quote_for(lua_State *L, int conn_idx) {
  luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_LOADED_TABLE);
  if (lua_getfield(L, -1, "luamigrate.quote") == LUA_TTABLE) {
    if (conn_idx)
      lua_pushvalue(L, conn_idx);
    else
      lua_pushnil(L);
    lua_setfield(L, -2, "conn");
  }
  lua_pop(L, 2);
}

/* ctx.progress(label, rows, batches): the live line of a long op (op.backfill) on a
 * terminal, "  backfill items: 2000 rows, 2 batches, 1234 rows/s"; rows 0 starts its clock. */
static int l_progress(lua_State *L) {
  const char *label = luaL_checkstring(L, 1);
  lua_Integer rows = luaL_checkinteger(L, 2), batches = luaL_checkinteger(L, 3);
  double *started = lua_touserdata(L, lua_upvalueindex(1));
  double now = lm_log_clock_ms() / 1e3;
  if (rows == 0) *started = now;
  double secs = now - *started;
  if (secs > 0.001)
    lm_log_live("  %s: %lld rows, %lld batch%s, %.0f rows/s", label, (long long)rows,
                (long long)batches, batches == 1 ? "" : "es", (double)rows / secs);
  else
    lm_log_live("  %s: %lld rows, %lld batch%s", label, (long long)rows, (long long)batches,
                batches == 1 ? "" : "es");
  return 0;
}

/* The open Run, or NULL. */
static lm_run *current(lua_State *L) {
  lua_rawgetp(L, LUA_REGISTRYINDEX, &RUN_KEY);
  lm_run *r = luaL_testudata(L, -1, RUN_MT);
  lua_pop(L, 1);
  return r && r->open ? r : NULL;
}

/* The Run of a closure (upvalue 1), raising once its run has ended. */
static lm_run *checkrun(lua_State *L) {
  lm_run *r = luaL_checkudata(L, lua_upvalueindex(1), RUN_MT);
  if (!r->open) luaL_error(L, "run has ended: this function belonged to a migration that finished");
  return r;
}

/* ctx.autocommit_block(fn): the one autocommit protocol. What is queued belongs to the
 * transaction leave() ends, so it is collected first; fn's statements each wait for their
 * result; enter() runs even after fn failed (online it must begin the next transaction), and
 * fn's error comes first: it says what went wrong. */
static int l_autocommit(lua_State *L) {
  lm_run *r = checkrun(L);
  luaL_checktype(L, 1, LUA_TFUNCTION);
  if (r->has_mode && !r->mode.leave) return luaL_error(L, "%s", r->mode.refusal);
  if (r->conn) lm_pipe_sync(L, r->conn);
  lm_error err = {0};
  if (r->has_mode && r->mode.leave(L, r->mode.ud, &err)) return lm_raise_error(L, &err);
  lua_pushvalue(L, 1);
  lm_conn_pipe_suspend(r->conn, 1);
  int st = lm_pcall(L, 0, 0);
  lm_conn_pipe_suspend(r->conn, -1);
  int rc = r->has_mode ? r->mode.enter(L, r->mode.ud, st != LUA_OK, &err) : LM_OK;
  if (st != LUA_OK) {
    lm_error_clear(&err);
    return lua_error(L);
  }
  if (rc) return lm_raise_error(L, &err);
  return 0;
}

/* ctx.journal_batches(sql) -> done, finished (op.backfill on a resumed run). */
static int l_journal_batches(lua_State *L) {
  lm_run *r = checkrun(L);
  const char *sql = luaL_checkstring(L, 1);
  int done = 0, finished = 0;
  lm_error err = {0};
  if (r->mode.batches(r->mode.ud, sql, &done, &finished, &err)) return lm_raise_error(L, &err);
  lua_pushinteger(L, done);
  lua_pushboolean(L, finished);
  return 2;
}

static void set_hook(lua_State *L, int idx, const lm_conn_hook *hook) {
  if (idx) lm_conn_set_hook(L, idx, hook);
}

void lm_run_open(lua_State *L, const lm_run_spec *spec) {
  int conn_idx = spec->conn_idx ? lua_absindex(L, spec->conn_idx) : 0;
  int queue_idx = spec->queue_idx ? lua_absindex(L, spec->queue_idx) : 0;
  int emit_idx = spec->emit_idx ? lua_absindex(L, spec->emit_idx) : 0;
  int x_idx = spec->x_idx ? lua_absindex(L, spec->x_idx) : 0;
  lm_run_close(L);
  if (luaL_newmetatable(L, RUN_MT)) {
    lua_pushliteral(L, "luamigrate.Run");
    lua_setfield(L, -2, "__name");
  }
  lua_pop(L, 1);
  lm_run *r = lua_newuserdatauv(L, sizeof *r, 1);
  r->open = 0; /* until it is whole */
  r->conn = NULL;
  r->has_mode = spec->mode != NULL;
  if (spec->mode) r->mode = *spec->mode;
  luaL_setmetatable(L, RUN_MT);
  int run = lua_gettop(L);
  lua_createtable(L, 0, 8);
  if (conn_idx) {
    lua_pushvalue(L, conn_idx);
    lua_setfield(L, -2, "conn");
    r->conn = lm_conn_pg(L, conn_idx);
  }
  if (queue_idx) {
    lua_pushvalue(L, queue_idx);
    lua_setfield(L, -2, "queue");
  }
  if (emit_idx) {
    lua_pushvalue(L, emit_idx);
    lua_setfield(L, -2, "emit");
  }
  if (conn_idx) {
    double *started = lua_newuserdatauv(L, sizeof *started, 0);
    *started = lm_log_clock_ms() / 1e3;
    lua_pushcclosure(L, l_progress, 1);
    lua_setfield(L, -2, "progress");
  }
  if (x_idx)
    lua_pushvalue(L, x_idx);
  else
    lua_newtable(L);
  lua_setfield(L, -2, "x");
  lua_pushboolean(L, conn_idx == 0);
  lua_setfield(L, -2, "offline");
  lua_pushvalue(L, run);
  lua_pushcclosure(L, l_autocommit, 1);
  lua_setfield(L, -2, "autocommit_block");
  if (spec->mode && spec->mode->batches) {
    lua_pushvalue(L, run);
    lua_pushcclosure(L, l_journal_batches, 1);
    lua_setfield(L, -2, "journal_batches");
  }
  lua_setiuservalue(L, run, 1);
  set_hook(L, conn_idx, spec->hook);
  set_hook(L, queue_idx, spec->hook);
  r->open = 1;
  lua_rawsetp(L, LUA_REGISTRYINDEX, &RUN_KEY);
  quote_for(L, conn_idx);
}

void lm_run_push_context(lua_State *L) {
  lua_rawgetp(L, LUA_REGISTRYINDEX, &RUN_KEY);
  lm_run *r = luaL_testudata(L, -1, RUN_MT);
  if (r && r->open)
    lua_getiuservalue(L, -1, 1);
  else
    lua_pushnil(L);
  lua_remove(L, -2);
}

void lm_run_close(lua_State *L) {
  lua_rawgetp(L, LUA_REGISTRYINDEX, &RUN_KEY);
  lm_run *r = luaL_testudata(L, -1, RUN_MT);
  if (r && r->open) {
    r->open = 0;
    lua_getiuservalue(L, -1, 1);
    for (int k = 0; k < 2; k++) { /* the hooks point into the opener's frame */
      lua_getfield(L, -1, k ? "queue" : "conn");
      if (luaL_testudata(L, -1, "luamigrate.Conn")) lm_conn_set_hook(L, -1, NULL);
      lua_pop(L, 1);
    }
    lua_pop(L, 1);
    r->conn = NULL;
    memset(&r->mode, 0, sizeof r->mode);
  }
  lua_pop(L, 1);
  lua_pushnil(L);
  lua_rawsetp(L, LUA_REGISTRYINDEX, &RUN_KEY);
  quote_for(L, 0);
}

int lm_run_l_context(lua_State *L) {
  const char *who = luaL_optstring(L, 1, "luamigrate.core.context");
  lm_run_push_context(L);
  if (lua_isnil(L, -1))
    return luaL_error(L,
                      "%s called outside a migration: op.* works only inside upgrade() "
                      "and downgrade()",
                      who);
  return 1;
}

/* ---- the environment's pcall and xpcall ----------------------------------------------
 * While the open run pipelines, the statements queued so far are collected first (a
 * failure among them is raised here, outside the protected call, as it would have been
 * raised before it), and the protected function's statements each wait for their result,
 * so an error it catches leaves the transaction as it would without pipelining.
 * Outside a run they are Lua's own. */
static PGconn *pipe_conn(lua_State *L) {
  lm_run *r = current(L);
  return r ? r->conn : NULL;
}

static int finish_pcall(lua_State *L, int status, lua_KContext extra) {
  lm_conn_pipe_suspend(pipe_conn(L), -1);
  if (status != LUA_OK && status != LUA_YIELD) {
    lua_pushboolean(L, 0);
    lua_pushvalue(L, -2);
    return 2;
  }
  return lua_gettop(L) - (int)extra;
}

int lm_run_l_pcall(lua_State *L) {
  luaL_checkany(L, 1);
  PGconn *conn = pipe_conn(L);
  if (conn) lm_pipe_sync(L, conn);
  lua_pushboolean(L, 1);
  lua_insert(L, 1);
  lm_conn_pipe_suspend(conn, 1);
  int status = lua_pcallk(L, lua_gettop(L) - 2, LUA_MULTRET, 0, 0, finish_pcall);
  return finish_pcall(L, status, 0);
}

int lm_run_l_xpcall(lua_State *L) {
  int n = lua_gettop(L);
  luaL_checktype(L, 2, LUA_TFUNCTION);
  PGconn *conn = pipe_conn(L);
  if (conn) lm_pipe_sync(L, conn);
  lua_pushboolean(L, 1);
  lua_pushvalue(L, 1);
  lua_rotate(L, 3, 2);
  lm_conn_pipe_suspend(conn, 1);
  int status = lua_pcallk(L, n - 2, LUA_MULTRET, 2, 2, finish_pcall);
  return finish_pcall(L, status, 2);
}

/* ---- core.offline_run(emit, x, fn, ...) ------------------------------------------------
 * Runs fn(...) as a migration of a --sql run, in-process: each statement op renders is
 * handed to emit(sql), and an autocommit block's statements come between a COMMIT and a
 * BEGIN given to emit as well (the --sql protocol; the session timeouts the command writes
 * come from a project's settings, which this has none of). x is op.get_x_argument()'s table
 * (nil: empty). fn's error is raised again once the run is closed; so are emit's. For
 * rendering a migration without a project, and for the specs of op's offline path. */
static int emit_call(lua_State *L, const char *sql, lm_error *err) {
  lm_run_push_context(L);
  lua_getfield(L, -1, "emit");
  lua_remove(L, -2);
  lua_pushstring(L, sql);
  if (lm_pcall(L, 1, 0) == LUA_OK) return LM_OK;
  lm_error_from_lua(L, -1, LM_ERR, err);
  lua_pop(L, 1);
  return LM_ERR;
}

static int script_leave(lua_State *L, void *ud, lm_error *err) {
  (void)ud;
  return emit_call(L, LM_TX_COMMIT_SQL, err);
}

static int script_enter(lua_State *L, void *ud, int failed, lm_error *err) {
  (void)ud;
  return failed ? LM_OK : emit_call(L, LM_TX_BEGIN_SQL, err);
}

int lm_run_l_offline(lua_State *L) {
  luaL_checktype(L, 1, LUA_TFUNCTION);
  if (!lua_isnoneornil(L, 2)) luaL_checktype(L, 2, LUA_TTABLE);
  luaL_checktype(L, 3, LUA_TFUNCTION);
  const lm_run_mode mode = {.leave = script_leave, .enter = script_enter};
  const lm_run_spec spec = {.emit_idx = 1, .x_idx = lua_istable(L, 2) ? 2 : 0, .mode = &mode};
  int base = 3;
  lm_run_open(L, &spec);
  /* a plain protected call: the error value goes back to the caller as it was raised */
  int st = lua_pcall(L, lua_gettop(L) - base, LUA_MULTRET, 0);
  lm_run_close(L);
  if (st != LUA_OK) return lua_error(L);
  return lua_gettop(L) - base + 1;
}
