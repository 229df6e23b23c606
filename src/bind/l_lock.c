/* luamigrate.core.lock(conninfo, name [, timeout_s]) -> Lock with :release(): the migration
 * lock as a Lua object, so tools and specs can hold it the way a run does. */
#include "bind.h"
#include "lock.h"

#include <string.h>

#include "conn.h"

static int l_lock_release(lua_State *L) {
  lm_lock *lk = luaL_checkudata(L, 1, "luamigrate.Lock");
  lm_error err = {0};
  if (lm_lock_release(lk, &err) != LM_OK) return lm_raise_error(L, &err);
  return 0;
}

/* __gc / __close: release without raising. */
static int l_lock_gc(lua_State *L) {
  lm_lock *lk = luaL_checkudata(L, 1, "luamigrate.Lock");
  lm_error err = {0};
  lm_lock_release(lk, &err);
  lm_error_clear(&err);
  return 0;
}

static int l_lock_held(lua_State *L) {
  lm_lock *lk = luaL_checkudata(L, 1, "luamigrate.Lock");
  lua_pushboolean(L, lk->conn != NULL);
  return 1;
}

static int l_core_lock(lua_State *L) {
  const char *conninfo = luaL_optstring(L, 1, NULL);
  const char *name = luaL_optstring(L, 2, "luamigrate_version");
  double timeout = luaL_optnumber(L, 3, -1);
  lm_lock *lk = lua_newuserdatauv(L, sizeof *lk, 0);
  memset(lk, 0, sizeof *lk);
  luaL_setmetatable(L, "luamigrate.Lock");
  lm_error err = {0};
  PGconn *work = lm_conn_open(conninfo, &err);
  if (!work) return lm_raise_error(L, &err);
  int rc = lm_lock_acquire(lk, LM_LOCK_SESSION, work, conninfo, name, NULL, timeout, 0, 1, &err);
  PQfinish(work);
  if (rc != LM_OK) return lm_raise_error(L, &err);
  return 1;
}

int luaopen_luamigrate_lock(lua_State *L) {
  static const luaL_Reg methods[] = {
      {"release", l_lock_release}, {"held", l_lock_held}, {NULL, NULL}};
  if (luaL_newmetatable(L, "luamigrate.Lock")) {
    luaL_newlib(L, methods);
    lua_setfield(L, -2, "__index");
    lua_pushcfunction(L, l_lock_gc);
    lua_setfield(L, -2, "__gc");
    lua_pushcfunction(L, l_lock_gc);
    lua_setfield(L, -2, "__close");
  }
  lua_pop(L, 1);
  lua_pushcfunction(L, l_core_lock);
  return 1;
}
