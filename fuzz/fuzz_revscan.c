/* libFuzzer target: the revision scanner (src/revscan.c). The input is the bytes of a
 * revision file. When the scanner reads it, the same bytes are run in a sandboxed Lua, in
 * the environment the loader gives a revision file (luamigrate.env.migration): the run must
 * succeed and leave the globals the scanner read (revision, down_revision, branch_labels,
 * depends_on as the loader reads them; upgrade and downgrade functions) -- or fail to
 * compile at or after the scanner's body_line (a syntax error inside a function body, which
 * the scanner leaves to the run of the migration). Anything else aborts. When the scanner
 * declines the file, the loader runs it: nothing to compare. */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>

#include "lua_sandbox.h"
#include "revfile.h"
#include "revscan.h"

static void fail(const char *what, const char *detail) {
  fprintf(stderr, "fuzz_revscan: %s (%s)\n", what, detail ? detail : "");
  abort();
}

/* env[name] read as the loader's read_list does, compared with list[0..n). */
static void same_list(lua_State *L, int env, const char *name, const char *const *list, size_t n) {
  int t = lua_getfield(L, env, name);
  size_t got = t == LUA_TNIL ? 0 : t == LUA_TSTRING ? 1 : t == LUA_TTABLE ? lua_rawlen(L, -1) : 99;
  if (got != n) fail("a list's length differs", name);
  for (size_t i = 0; i < n; i++) {
    if (t == LUA_TTABLE && lua_rawgeti(L, -1, (lua_Integer)i + 1) != LUA_TSTRING)
      fail("a list entry is not a string", name);
    size_t len;
    const char *s = lua_tolstring(L, -1, &len);
    if (len != strlen(list[i]) || memcmp(s, list[i], len) != 0) fail("a value differs", name);
    if (t == LUA_TTABLE) lua_pop(L, 1);
  }
  lua_pop(L, 1);
}

static void compare(lua_State *L, const char *data, size_t size, const lm_revscan *r) {
  size_t bom = lm_revfile_bom(data, size);
  if (luaL_loadbufferx(L, data + bom, size - bom, "=f", "t") != LUA_OK) {
    const char *msg = lua_tostring(L, -1);
    /* Limits, not syntax: Lua reports nesting past its C stack without a position. The
     * header forms the scanner accepts nest two deep at most, so such an error comes from
     * a function body, as a syntax error there may (the run's compile step reports it). */
    if (strstr(msg, "not enough memory") || strstr(msg, "C stack overflow")) return;
    const char *colon = strchr(msg, ':');
    if (!colon || atoi(colon + 1) < r->body_line) fail("a chunk it read does not compile", msg);
    return;
  }
  int chunk = lua_gettop(L);
  lua_getglobal(L, "require");
  lua_pushliteral(L, "luamigrate.env");
  if (lua_pcall(L, 1, 1, 0) != LUA_OK) return;
  lua_getfield(L, -1, "migration");
  if (lua_pcall(L, 0, 1, 0) != LUA_OK) return;
  int env = lua_gettop(L);
  lua_pushvalue(L, env);
  lua_setupvalue(L, chunk, 1);
  lua_pushvalue(L, chunk);
  if (lua_pcall(L, 0, 0, 0) != LUA_OK) {
    const char *msg = lua_tostring(L, -1);
    if (msg && (strstr(msg, "not enough memory") || strstr(msg, "budget spent"))) return;
    fail("a chunk it read raises at load", msg);
  }
  const char *id = r->id;
  same_list(L, env, "revision", &id, 1);
  same_list(L, env, "down_revision", r->down, r->nd);
  same_list(L, env, "branch_labels", r->labels, r->nl);
  same_list(L, env, "depends_on", r->deps, r->ne);
  if (lua_getfield(L, env, "upgrade") != LUA_TFUNCTION ||
      lua_getfield(L, env, "downgrade") != LUA_TFUNCTION)
    fail("upgrade or downgrade is not a function", NULL);
  lua_getmetatable(L, env);
  lua_getfield(L, -1, "__assigned");
  if (lua_getfield(L, -1, "down_revision") != LUA_TBOOLEAN) fail("down_revision unassigned", NULL);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size > 65536) return 0;
  lm_revscan r;
  int rc = lm_revscan_read((const char *)data, size, &r);
  if (getenv("LM_FUZZ_VERBOSE"))
    fprintf(stderr, "revscan: %s\n", rc == 1 ? r.id : rc == 0 ? "falls back" : "out of memory");
  if (rc != 1) return 0;
  lua_State *L = lm_fuzz_lua_new();
  if (L) {
    compare(L, (const char *)data, size, &r);
    lm_fuzz_lua_close(L);
  }
  lm_revscan_free(&r);
  return 0;
}
