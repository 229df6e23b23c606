/* The project's Lua modules, embedded in the executable as C arrays (build/embedded_lua.c,
 * made by the build's tools/embed_lua.c) of their sources and of their bytecode, and the
 * package.preload entries that load them. Linked into
 * the executable and the fuzz targets; core.so, loaded by a Lua that finds the modules on
 * its path, has neither. */
#include <lauxlib.h>
#include <lualib.h>
#include <string.h>

#include "bind/bind.h"
#include "luamigrate/luamigrate.h"

struct lm_embedded {
  const char *name, *chunkname, *code;
  size_t len;
  const char *bytecode;
  size_t bytecode_len;
};
extern const struct lm_embedded lm_embedded_modules[];
extern const char *const lm_embedded_lua_ident; /* lua_ident of the Lua that compiled them */

/* package.preload's loader for one embedded module (upvalue: its light userdata): loads
 * the module when it is first required, so start-up loads none of them. The bytecode was
 * compiled at build time (parsing the sources took about 4 ms of each Lua state's start, once
 * per target in a fleet run) by the Lua this program links, unless another release of the
 * library is installed now: lua_ident says which, and a different one gets the sources.
 * Only these arrays are ever loaded as binary chunks; whatever users supply is text only. */
static int load_embedded(lua_State *L) {
  const struct lm_embedded *m = lua_touserdata(L, lua_upvalueindex(1));
  int nargs = lua_gettop(L);
  int status = strcmp(lua_ident, lm_embedded_lua_ident) == 0
                   ? luaL_loadbufferx(L, m->bytecode, m->bytecode_len, m->chunkname, "b")
                   : luaL_loadbufferx(L, m->code, m->len, m->chunkname, "t");
  if (status != LUA_OK) return lua_error(L);
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
