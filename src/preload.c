/* The modules the luamigrate program has compiled in, for package.preload: the embedded Lua
 * sources (src/embedded.c), the C core, LuaFileSystem (linked statically) and lua-cjson. The
 * executable and the in-process test of two runs (tests/c/test_two_runs.c) start runs with it. */
#include <lauxlib.h>
#include <lfs.h>

#include "bind/bind.h"

int luaopen_cjson(lua_State *L); /* lua-cjson's entry point (it ships no header) */

void lm_preload_program(lua_State *L, void *ud) {
  (void)ud;
  lm_preload_embedded(L);
  luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_PRELOAD_TABLE);
  lua_pushcfunction(L, luaopen_lfs);
  lua_setfield(L, -2, "lfs");
  lua_pushcfunction(L, luaopen_cjson);
  lua_setfield(L, -2, "cjson");
  lua_pop(L, 1);
}
