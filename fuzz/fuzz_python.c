/* libFuzzer target: the Python reader and the Alembic revision translator
 * (lua/luamigrate/python.lua, lua/luamigrate/convert.lua), as `convert alembic` runs them on
 * each Python file of versions/. The input is the bytes of one Python file. Either the file is
 * refused with a message naming fuzz.py and a line, or the translation is Lua that compiles; any
 * other outcome (an error inside the converter, text that does not load) aborts. */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>

#include "lua_sandbox.h"

/* Runs in the sandbox with the file's text as its argument; returns true, or false and why. */
static const char HARNESS[] =
    "local src = ...\n"
    "local ok, r = pcall(require('luamigrate.convert').revision, src, 'fuzz.py')\n"
    "if not ok then\n"
    "  if type(r) == 'string' and (r:find('^fuzz%.py:%d+') or r:find('fuzz: instruction budget', "
    "1, true)\n"
    "      or r:find('not enough memory', 1, true)) then return true end\n"
    "  return false, 'the converter failed: ' .. tostring(r)\n"
    "end\n"
    "local chunk, err = load(r.text, '=converted', 't', {})\n"
    "if not chunk then return false, 'the translation is not Lua: ' .. err .. '\\n' .. r.text end\n"
    "return true\n";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size > 16384) return 0; /* a revision file; bigger inputs only spend the budget */
  lua_State *L = lm_fuzz_lua_new();
  if (!L) return 0;
  if (luaL_loadbuffer(L, HARNESS, sizeof HARNESS - 1, "=fuzz_python") != LUA_OK) {
    fprintf(stderr, "fuzz_python: %s\n", lua_tostring(L, -1));
    abort();
  }
  lua_pushlstring(L, (const char *)data, size);
  int st = lua_pcall(L, 1, 2, 0);
  const char *msg = lua_tostring(L, -1);
  if (st != LUA_OK) {
    /* only the sandbox's own limits may end the harness itself */
    if (!msg || (!strstr(msg, "instruction budget") && !strstr(msg, "not enough memory"))) {
      fprintf(stderr, "fuzz_python: harness error: %s\n", msg ? msg : "(no message)");
      abort();
    }
  } else if (!lua_toboolean(L, -2)) {
    fprintf(stderr, "fuzz_python: %s\n", msg ? msg : "(no message)");
    abort();
  }
  if (getenv("LM_FUZZ_VERBOSE")) fprintf(stderr, "python: %s\n", st == LUA_OK && !msg ? "ok" : msg);
  lm_fuzz_lua_close(L);
  return 0;
}
