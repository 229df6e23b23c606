/* The project's Lua modules, embedded in the executable as C arrays (build/embedded_lua.c,
 * made by cmake/embed.cmake), and the package.preload entries that load them. Linked into
 * the executable and the fuzz targets; core.so, loaded by a Lua that finds the modules on
 * its path, has neither. */
#include <lauxlib.h>
#include <lualib.h>

#include "bind/bind.h"
#include "luamigrate/luamigrate.h"

struct lm_embedded {
  const char *name, *chunkname, *code;
  size_t len;
};
extern const struct lm_embedded lm_embedded_modules[];

/* package.preload's loader for one embedded module (upvalue: its light userdata): compiles
 * the module when it is first required, so start-up compiles none of them. */
static int load_embedded(lua_State *L) {
  const struct lm_embedded *m = lua_touserdata(L, lua_upvalueindex(1));
  int nargs = lua_gettop(L);
  if (luaL_loadbufferx(L, m->code, m->len, m->chunkname, "t") != LUA_OK) return lua_error(L);
  lua_insert(L, 1);
  lua_call(L, nargs, 1);
  return 1;
}

void lm_preload_embedded(lua_State *L) {
  luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_PRELOAD_TABLE);
  for (const struct lm_embedded *m = lm_embedded_modules; m->name; m++) {
    lua_pushlightuserdata(L, (void *)m);
    lua_pushcclosure(L, load_embedded, 1);
    lua_setfield(L, -2, m->name);
  }
  lua_pushcfunction(L, luaopen_luamigrate_core);
  lua_setfield(L, -2, "luamigrate.core");
  lua_pop(L, 1);
}
