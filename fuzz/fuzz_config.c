/* libFuzzer target: the config loader. The input is the bytes of a luamigrate.lua; it is
 * loaded exactly as a command loads it (src/config.c through lua/luamigrate/config.lua),
 * settings validated and URL precedence applied. */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>

#include "app.h"
#include "lua_sandbox.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerInitialize(int *argc, char ***argv) {
  (void)argc;
  (void)argv;
  /* Settings from the environment would bypass the file's. */
  unsetenv("DATABASE_URL");
  unsetenv("LUAMIGRATE_CONFIG");
  return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size > 65536) return 0;
  char path[600];
  snprintf(path, sizeof path, "%s/luamigrate.lua", lm_fuzz_tmpdir());
  if (lm_fuzz_write(path, data, size)) return 0;

  lm_opts opts = {0};
  opts.config = path;
  lm_app app = {0};
  app.opts = &opts;
  app.envs_ref = LUA_NOREF;
  app.L = lm_fuzz_lua_new();
  if (!app.L) return 0;
  lm_error err = {0};
  lm_config_load(&app, &err);
  if (getenv("LM_FUZZ_VERBOSE")) fprintf(stderr, "config: %s\n", err.message ? err.message : "ok");
  lm_error_clear(&err);
  lm_config_free(&app.cfg);
  lm_fuzz_lua_close(app.L);
  return 0;
}
