/* init: a new migration environment (versions/, the template, the config, and .luarc.json
 * pointing LuaLS at the installed annotation library). */
#include <errno.h>
#include <lua.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "app.h"
#include "bind/bind.h"
#include "cmdargs.h"
#include "commands.h"
#include "newfile.h"
#include "report.h"

#ifndef LM_LUALS_REL
#define LM_LUALS_REL "../share/luamigrate/luals"
#endif

/* The installed LuaLS annotation library: LM_LUALS_REL (the install layout's path from the
 * binary's directory to it) resolved against where this binary is, so an install under any
 * prefix finds its own copy. NULL when absent, as in a build tree. */
static char *luals_dir(void) {
  char exe[4096];
  ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
  if (n <= 0) return NULL;
  exe[n] = '\0';
  char *slash = strrchr(exe, '/');
  if (!slash) return NULL;
  *slash = '\0';
  char *joined = lm_path_join(exe, LM_LUALS_REL);
  if (!joined) return NULL;
  char *dir = realpath(joined, NULL);
  free(joined);
  struct stat st;
  if (dir && (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode))) {
    free(dir);
    dir = NULL;
  }
  return dir;
}

/* Writes .luarc.json next to the config file, pointing LuaLS at the annotation library, so
 * op and sa complete in revision files. Skipped when there is no installed library or the
 * project already has a .luarc.json. The file is meant to be committed, so the path must hold
 * on teammates' machines: a library inside the project (a copy installed into it) is named
 * relative to the project; any other by its absolute path, which for the standard installs
 * (the .deb's /usr, cmake --install's default /usr/local) is the same on every machine; a
 * library elsewhere gets a note that the path is this machine's. */
static int write_luarc(const char *cfg, lm_error *err) {
  char *lib = luals_dir();
  if (!lib) return LM_OK;
  const char *slash = strrchr(cfg, '/');
  char *path = NULL, *dir = NULL, *proj = NULL;
  if (slash) {
    size_t dlen = (size_t)(slash - cfg);
    dir = strndup(cfg, dlen ? dlen : 1);
    path = dir ? lm_path_join(dir, ".luarc.json") : NULL;
  } else {
    path = strdup(".luarc.json");
  }
  proj = realpath(dir ? dir : ".", NULL);
  const char *named = lib;
  size_t plen = proj ? strlen(proj) : 0;
  if (proj && !strncmp(lib, proj, plen) && lib[plen] == '/') named = lib + plen + 1;
  lm_strbuf text = {0};
  int rc = LM_OK;
  if (!path) {
    rc = lm_error_set(err, LM_ENOMEM, "out of memory");
    goto cleanup;
  }
  if (access(path, F_OK) == 0) {
    printf("Leaving the existing %s as it is (LuaLS library: %s)\n", path, lib);
    goto cleanup;
  }
  lm_strbuf_cat(&text, "{\n  \"runtime.version\": \"Lua 5.4\",\n  \"workspace.library\": [");
  lm_report_json_str(&text, named);
  lm_strbuf_cat(&text, "]\n}\n");
  if (text.oom) {
    rc = lm_error_set(err, LM_ENOMEM, "out of memory");
    goto cleanup;
  }
  rc = lm_newfile_write(path, text.s, err);
  if (!rc) printf("Generating %s ... done\n", path);
  if (!rc && named == lib && strncmp(lib, "/usr/", 5) != 0)
    printf(
        "Note: %s names the LuaLS library by where this machine has it (%s); teammates "
        "whose luamigrate is installed elsewhere need their own path there (the .deb and "
        "cmake --install's default prefix put it in the same place on every machine)\n",
        path, lib);
cleanup:
  free(lib);
  free(path);
  free(dir);
  free(proj);
  free(text.s);
  return rc;
}

int lm_cmd_init(lm_app *app, lm_cmdargs *a, lm_error *err) {
  int rc = lm_cmdargs_positional(app->opts, a, 1, 1, "DIR", err);
  char *versions = NULL, *tmpl_path = NULL, *tmpl = NULL;
  if (rc) return rc;
  const char *dir = a->pos[0];
  const char *cfg = app->opts->config ? app->opts->config : "luamigrate.lua";
  struct stat st;
  if (stat(dir, &st) == 0) {
    if (!S_ISDIR(st.st_mode))
      return lm_error_set(err, LM_EUSAGE, "%s exists and is not a directory", dir);
    if (rmdir(dir) != 0) /* succeeds only when empty; recreated just below */
      return lm_error_set(err, LM_EUSAGE, "Directory %s already exists and is not empty", dir);
  }
  if (access(cfg, F_OK) == 0)
    return lm_error_set(err, LM_EUSAGE, "%s already exists; not overwriting it", cfg);
  versions = lm_path_join(dir, "versions");
  tmpl_path = lm_path_join(dir, "script.lua.tmpl");
  if (!versions || !tmpl_path) {
    rc = lm_error_set(err, LM_ENOMEM, "out of memory");
    goto cleanup;
  }
  /* Missing parents are created (init db/migrations), as mkdir -p does. A directory that
   * cannot be made is a usage error (exit 2), not a database one. */
  for (char *p = strchr(versions + 1, '/'); p; p = strchr(p + 1, '/')) {
    *p = '\0';
    int made = mkdir(versions, 0755) == 0;
    if (!made && errno != EEXIST) {
      rc = lm_error_set(err, LM_EUSAGE, "cannot create %s: %s", versions, strerror(errno));
      goto cleanup;
    }
    if (made) printf("Creating directory %s ... done\n", versions);
    *p = '/';
  }
  if (mkdir(versions, 0755) != 0) {
    rc = lm_error_set(err, LM_EUSAGE, "cannot create %s: %s", versions, strerror(errno));
    goto cleanup;
  }
  printf("Creating directory %s ... done\n", versions);
  lua_State *L = app->L;
  if ((rc = lm_push_module_field(L, "luamigrate.template", "DEFAULT", err))) goto cleanup;
  tmpl = strdup(lua_tostring(L, -1));
  lua_pop(L, 1);
  if ((rc = lm_newfile_write(tmpl_path, tmpl, err))) goto cleanup;
  printf("Generating %s ... done\n", tmpl_path);
  /* DIR goes in as a Lua string literal of Lua's own making (string.format's %q), so any
   * name (quotes, backslashes, newlines) reads back as itself and nothing more. */
  lua_getglobal(L, "string");
  lua_getfield(L, -1, "format");
  lua_remove(L, -2);
  lua_pushliteral(L,
                  "-- luamigrate configuration. Top-level assignments are settings; paths are\n"
                  "-- relative to this file. Precedence: command-line flag > environment > this "
                  "file.\n"
                  "script_location = %q\n"
                  "-- A libpq URI or key=value conninfo; PG* variables and ~/.pgpass also apply.\n"
                  "url = os.getenv(\"DATABASE_URL\")\n"
                  "version_table = \"luamigrate_version\"\n"
                  "transaction_per_migration = true\n"
                  "-- lock_timeout = 60  -- seconds to wait for another run's lock (default: "
                  "forever)\n");
  lua_pushstring(L, dir);
  if (lm_pcall(L, 2, 1) != LUA_OK) {
    lm_error_from_lua(L, -1, LM_ERR, err);
    lua_pop(L, 1);
    rc = LM_ERR;
    goto cleanup;
  }
  rc = lm_newfile_write(cfg, lua_tostring(L, -1), err);
  lua_pop(L, 1);
  if (rc) goto cleanup;
  printf("Generating %s ... done\n", cfg);
  if ((rc = write_luarc(cfg, err))) goto cleanup;
  printf("Please edit %s to point at your database (or set DATABASE_URL).\n", cfg);
cleanup:
  free(versions);
  free(tmpl_path);
  free(tmpl);
  return rc;
}
