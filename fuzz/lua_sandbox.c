/* See lua_sandbox.h. */
#include "lua_sandbox.h"

#include <lauxlib.h>
#include <lualib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bind/bind.h"
#include "luamigrate/luamigrate.h"

#define MEMORY_CAP (64u << 20)
#define INSTRUCTION_BUDGET 2000000L
#define HOOK_EVERY 1000

typedef struct sandbox {
  size_t used;
  long instructions;
} sandbox;

static void *cap_alloc(void *ud, void *ptr, size_t osize, size_t nsize) {
  sandbox *sb = ud;
  size_t old = ptr ? osize : 0;
  if (nsize == 0) {
    free(ptr);
    sb->used -= old;
    return NULL;
  }
  if (nsize > old && sb->used - old + nsize > MEMORY_CAP) return NULL;
  void *p = realloc(ptr, nsize);
  if (p) sb->used = sb->used - old + nsize;
  return p;
}

/* Once the budget is spent every later instruction raises, so a pcall loop in the input
 * cannot swallow the error and go on. */
static void budget_hook(lua_State *L, lua_Debug *ar) {
  (void)ar;
  sandbox *sb;
  lua_getallocf(L, (void **)&sb);
  sb->instructions += HOOK_EVERY;
  if (sb->instructions > INSTRUCTION_BUDGET) {
    lua_sethook(L, budget_hook, LUA_MASKCOUNT, 1);
    luaL_error(L, "fuzz: instruction budget spent");
  }
}

static int setup(lua_State *L) {
  luaL_openlibs(L);
  lm_preload_embedded(L);
  /* Nothing outside the process: no commands, no file changes, no C modules. Reading
   * files stays (loadfile is how the config module runs the file). */
  static const char *const os_out[] = {"execute", "remove", "rename", "exit", "tmpname", NULL};
  static const char *const io_out[] = {"popen", "open", "output", "input", "lines", NULL};
  lua_getglobal(L, "os");
  for (const char *const *k = os_out; *k; k++) {
    lua_pushnil(L);
    lua_setfield(L, -2, *k);
  }
  lua_getglobal(L, "io");
  for (const char *const *k = io_out; *k; k++) {
    lua_pushnil(L);
    lua_setfield(L, -2, *k);
  }
  lua_getglobal(L, "package");
  lua_pushliteral(L, "");
  lua_setfield(L, -2, "cpath");
  lua_pushnil(L);
  lua_setfield(L, -2, "loadlib");
  lua_pop(L, 3);
  /* debug.sethook would lift the budget. */
  lua_pushnil(L);
  lua_setglobal(L, "debug");
  return 0;
}

lua_State *lm_fuzz_lua_new(void) {
  sandbox *sb = calloc(1, sizeof *sb);
  if (!sb) return NULL;
  lua_State *L = lua_newstate(cap_alloc, sb);
  if (!L) {
    free(sb);
    return NULL;
  }
  lua_pushcfunction(L, setup);
  if (lua_pcall(L, 0, 0, 0) != LUA_OK) {
    fprintf(stderr, "fuzz: setting up Lua: %s\n", lua_tostring(L, -1));
    abort();
  }
  lua_sethook(L, budget_hook, LUA_MASKCOUNT, HOOK_EVERY);
  return L;
}

void lm_fuzz_lua_close(lua_State *L) {
  if (!L) return;
  sandbox *sb;
  lua_getallocf(L, (void **)&sb);
  lua_close(L);
  free(sb);
}

const char *lm_fuzz_tmpdir(void) {
  static char dir[512];
  if (!dir[0]) {
    const char *base = getenv("TMPDIR");
    snprintf(dir, sizeof dir, "%s/lmfuzz.XXXXXX", base && *base ? base : "/tmp");
    if (!mkdtemp(dir)) dir[0] = '\0';
  }
  return dir;
}

int lm_fuzz_write(const char *path, const void *data, size_t len) {
  FILE *f = fopen(path, "wb");
  if (!f) return -1;
  int ok = fwrite(data, 1, len, f) == len;
  return fclose(f) == 0 && ok ? 0 : -1;
}
