/* The luamigrate executable: one run of the command line (pmain.c) with the Lua modules
 * compiled in. */
#include <lauxlib.h>
#include <lfs.h>
#include <lualib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "app.h"
#include "bind/bind.h"
#include "pmain.h"
#include "luamigrate/luamigrate.h"

int luaopen_cjson(lua_State *L); /* lua-cjson's entry point (it ships no header) */

/* Every module a migration or the engine requires, compiled in: the embedded Lua sources
 * (src/embedded.c), the C core, LuaFileSystem (linked statically) and lua-cjson. */
static void preload(lua_State *L, void *ud) {
  (void)ud;
  lm_preload_embedded(L);
  luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_PRELOAD_TABLE);
  lua_pushcfunction(L, luaopen_lfs);
  lua_setfield(L, -2, "lfs");
  lua_pushcfunction(L, luaopen_cjson);
  lua_setfield(L, -2, "cjson");
  lua_pop(L, 1);
}

int luamigrate_main(int argc, char **argv) {
  return lm_pmain_run(argc, argv, preload, NULL);
}

int main(int argc, char **argv) {
  return luamigrate_main(argc, argv);
}
