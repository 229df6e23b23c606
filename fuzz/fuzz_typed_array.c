/* libFuzzer target: luamigrate.typed's parser of PostgreSQL's array output, with which
 * op.get_bind():query decodes array columns. The input is the array text; elements stay
 * text. The parser must give a value or its own "malformed array" error: any other error
 * (an index of nil, a loop past the instruction budget...) aborts. */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>

#include "lua_sandbox.h"

static const char CODE[] =
    "local s = ...\n"
    "local typed = require 'luamigrate.typed'\n"
    "local ok, err = pcall(typed.parse_array, s, function(x) return x end)\n"
    "if ok then return 'ok' end\n"
    "if type(err) == 'string' and err:find('malformed array', 1, true) then return 'refused' end\n"
    "if err == 'not enough memory' then return 'memory' end\n"
    "return 'BUG: ' .. tostring(err)\n";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size > 65536) return 0;
  lua_State *L = lm_fuzz_lua_new();
  if (!L) return 0;
  if (luaL_loadbuffer(L, CODE, sizeof CODE - 1, "=fuzz_typed_array") != LUA_OK) abort();
  lua_pushlstring(L, (const char *)data, size);
  const char *outcome = "memory";
  if (lua_pcall(L, 1, 1, 0) == LUA_OK) {
    outcome = lua_tostring(L, -1);
  } else if (!strstr(lua_tostring(L, -1) ? lua_tostring(L, -1) : "", "not enough memory")) {
    fprintf(stderr, "fuzz_typed_array: %s\n", lua_tostring(L, -1));
    abort();
  }
  if (getenv("LM_FUZZ_VERBOSE")) fprintf(stderr, "typed_array: %s\n", outcome ? outcome : "?");
  if (!outcome || !strncmp(outcome, "BUG: ", 5)) {
    fprintf(stderr, "fuzz_typed_array: %s\n", outcome ? outcome : "no outcome");
    abort();
  }
  lm_fuzz_lua_close(L);
  return 0;
}
