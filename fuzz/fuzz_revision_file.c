/* libFuzzer target: the revision-file loader (src/loader.c). The input holds up to three
 * parts separated by a line "--8<--": the bytes of versions/a.lua, of versions/b.lua and of
 * versions/.luamigrate_cache. A cache line whose checksum matches its file's bytes (the
 * seeds hold some) is trusted and parsed; without a cache part each file is run and its
 * declarations (revision, down_revision, branch_labels, depends_on, upgrade/downgrade, the
 * docstring) checked and added to the graph. The files keep a fixed modification time, as
 * before the cache was keyed by content, so old seeds behave as they did. */
#include <fcntl.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <lauxlib.h>

#include "app.h"
#include "lua_sandbox.h"

#define SEP "\n--8<--\n"
/* 2017-07-14: long enough ago that the loader does not treat the files as racily clean. */
#define FIXED_MTIME 1500000000

static char versions[600], script[600];

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerInitialize(int *argc, char ***argv) {
  (void)argc;
  (void)argv;
  unsetenv("LUAMIGRATE_NO_CACHE");
  snprintf(script, sizeof script, "%s/migrations", lm_fuzz_tmpdir());
  snprintf(versions, sizeof versions, "%s/versions", script);
  mkdir(script, 0700);
  mkdir(versions, 0700);
  return 0;
}

static void put(const char *name, const char *data, size_t len, int fixed_mtime) {
  char path[700];
  snprintf(path, sizeof path, "%s/%s", versions, name);
  if (!data) {
    unlink(path);
    return;
  }
  if (lm_fuzz_write(path, data, len)) return;
  if (fixed_mtime) {
    struct timespec t[2] = {{FIXED_MTIME, 0}, {FIXED_MTIME, 0}};
    utimensat(AT_FDCWD, path, t, 0);
  }
}

static const char *find_sep(const char *p, const char *end) {
  size_t n = strlen(SEP);
  for (; end - p >= (ptrdiff_t)n; p++)
    if (!memcmp(p, SEP, n)) return p;
  return NULL;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size > 65536) return 0;
  const char *part[3] = {NULL, NULL, NULL};
  size_t len[3] = {0, 0, 0};
  const char *p = (const char *)data, *end = p + size;
  for (int i = 0; i < 3 && p; i++) {
    const char *sep = i < 2 ? find_sep(p, end) : NULL;
    part[i] = p;
    len[i] = sep ? (size_t)(sep - p) : (size_t)(end - p);
    p = sep ? sep + strlen(SEP) : NULL;
  }
  put("a.lua", part[0], len[0], 1);
  put("b.lua", part[1], len[1], 1);
  put(".luamigrate_cache", part[2], len[2], 0);

  lm_opts opts = {0};
  lm_app app = {0};
  app.opts = &opts;
  app.envs_ref = LUA_NOREF;
  app.cfg.script_location = script;
  app.cfg.versions_dir = versions;
  app.L = lm_fuzz_lua_new();
  if (!app.L) return 0;
  lm_error err = {0};
  if (lm_loader_load(&app, &err) == LM_OK) {
    /* What running a revision does first: its environment, from the file again. */
    for (size_t i = 0; i < lm_dag_count(app.dag); i++) {
      lm_error e = {0};
      if (lm_loader_env(&app, (int)i, &e) == LM_OK) lua_pop(app.L, 1);
      lm_error_clear(&e);
      free(lm_loader_longdoc(lm_dag_path(app.dag, (int)i)));
    }
  }
  if (getenv("LM_FUZZ_VERBOSE"))
    fprintf(stderr, "loader: %zu revisions; %s\n", app.dag ? lm_dag_count(app.dag) : 0,
            err.message ? err.message : "ok");
  lm_error_clear(&err);
  lm_dag_free(app.dag);
  free(app.sums);
  lm_fuzz_lua_close(app.L);
  return 0;
}
