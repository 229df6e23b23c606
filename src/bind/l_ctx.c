/* The run context op.* works on, kept in the registry while a migration runs; outside a
 * run core.context() raises, so op.* called at load time fails with a clear message. */
#include "bind.h"

#include <time.h>

#include "log.h"

static const char CTX_KEY[] = LM_CTX_KEY;

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

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ctx.progress(label, rows, batches): the live line of a long op (op.backfill) on a
 * terminal, "  backfill items: 2000 rows, 2 batches, 1234 rows/s"; rows 0 starts its clock. */
static int l_progress(lua_State *L) {
  const char *label = luaL_checkstring(L, 1);
  lua_Integer rows = luaL_checkinteger(L, 2), batches = luaL_checkinteger(L, 3);
  double *started = lua_touserdata(L, lua_upvalueindex(1));
  double now = now_s();
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

void lm_ctx_begin(lua_State *L, int conn_idx, int x_idx) {
  conn_idx = lua_absindex(L, conn_idx);
  if (x_idx) x_idx = lua_absindex(L, x_idx);
  lua_createtable(L, 0, 4);
  lua_pushvalue(L, conn_idx);
  lua_setfield(L, -2, "conn");
  double *started = lua_newuserdatauv(L, sizeof *started, 0);
  *started = now_s();
  lua_pushcclosure(L, l_progress, 1);
  lua_setfield(L, -2, "progress");
  if (x_idx)
    lua_pushvalue(L, x_idx);
  else
    lua_newtable(L);
  lua_setfield(L, -2, "x");
  lua_pushboolean(L, 0);
  lua_setfield(L, -2, "offline");
  lua_setfield(L, LUA_REGISTRYINDEX, CTX_KEY);
  quote_for(L, conn_idx);
}

void lm_ctx_begin_offline(lua_State *L, int emit_idx, int x_idx) {
  emit_idx = lua_absindex(L, emit_idx);
  if (x_idx) x_idx = lua_absindex(L, x_idx);
  lua_createtable(L, 0, 3);
  lua_pushvalue(L, emit_idx);
  lua_setfield(L, -2, "emit");
  if (x_idx)
    lua_pushvalue(L, x_idx);
  else
    lua_newtable(L);
  lua_setfield(L, -2, "x");
  lua_pushboolean(L, 1);
  lua_setfield(L, -2, "offline");
  lua_setfield(L, LUA_REGISTRYINDEX, CTX_KEY);
  quote_for(L, 0);
}

void lm_ctx_end(lua_State *L) {
  lua_pushnil(L);
  lua_setfield(L, LUA_REGISTRYINDEX, CTX_KEY);
  quote_for(L, 0);
}

int lm_ctx_l_context(lua_State *L) {
  const char *who = luaL_optstring(L, 1, "luamigrate.core.context");
  if (lua_getfield(L, LUA_REGISTRYINDEX, CTX_KEY) != LUA_TTABLE)
    return luaL_error(L,
                      "%s called outside a migration: op.* works only inside upgrade() "
                      "and downgrade()",
                      who);
  return 1;
}
