/* Config discovery (-c, $LUAMIGRATE_CONFIG, nearest luamigrate.lua upward) and loading
 * through the Lua module luamigrate.config (the defaults and value rules are its); the
 * precedence of flags and environment over the file. */
#include <errno.h>
#include <lauxlib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "app.h"
#include "bind/bind.h"
#include "conn.h"

#define CONFIG_NAME "luamigrate.lua"

char *lm_path_join(const char *a, const char *b) {
  if (b[0] == '/' || !a || !*a || !strcmp(a, ".")) return strdup(b);
  size_t n = strlen(a) + 1 + strlen(b) + 1;
  char *s = malloc(n);
  if (s) snprintf(s, n, "%s%s%s", a, a[strlen(a) - 1] == '/' ? "" : "/", b);
  return s;
}

static int is_file(const char *p) {
  struct stat st;
  return stat(p, &st) == 0 && S_ISREG(st.st_mode);
}

int lm_config_find(const lm_opts *o, char **path, lm_error *err) {
  *path = NULL;
  const char *explicit = o->config ? o->config : getenv("LUAMIGRATE_CONFIG");
  if (explicit && *explicit) {
    if (!is_file(explicit))
      return lm_error_set(err, LM_EUSAGE, "config file '%s' not found%s", explicit,
                          o->config ? "" : " (named by LUAMIGRATE_CONFIG)");
    *path = strdup(explicit);
    return *path ? LM_OK : LM_ENOMEM;
  }
  /* Walk up like git: ./luamigrate.lua, ../luamigrate.lua, ... Paths stay relative so
   * messages name files the way the user sees them. */
  char cwd[4096];
  if (!getcwd(cwd, sizeof cwd)) return lm_error_set(err, LM_ERR, "getcwd: %s", strerror(errno));
  char rel[4096] = "";
  size_t depth = 0;
  for (;;) {
    char cand[4200];
    snprintf(cand, sizeof cand, "%s%s", rel, CONFIG_NAME);
    if (is_file(cand)) {
      *path = strdup(cand);
      return *path ? LM_OK : LM_ENOMEM;
    }
    char *slash = strrchr(cwd, '/');
    if (!slash || slash == cwd) {
      if (slash == cwd && cwd[1]) {
        cwd[1] = '\0';
      } else {
        break;
      }
    } else {
      *slash = '\0';
    }
    size_t rl = strlen(rel);
    if (++depth > 64 || rl + 4 >= sizeof rel) break;
    memcpy(rel + rl, "../", 4);
  }
  return lm_error_set(err, LM_EUSAGE,
                      "no %s found in this directory or any parent; run 'luamigrate init "
                      "migrations' to create one, or pass -c PATH",
                      CONFIG_NAME);
}

void lm_config_free(lm_config *cfg) {
  free(cfg->ddl_lock_timeout);
  free(cfg->statement_timeout);
  free(cfg->path);
  free(cfg->dir);
  free(cfg->script_location);
  free(cfg->versions_dir);
  free(cfg->url);
  free(cfg->version_table);
  memset(cfg, 0, sizeof *cfg);
}

static char *dirname_of(const char *p) {
  /* p is never NULL: lm_config_load passes the path lm_config_find set when it returned
   * LM_OK (the analyzer cannot see that lm_error_set, in another file, returns its negative
   * code, and follows a failure as if it succeeded). */
  /* NOLINTNEXTLINE(clang-analyzer-core.NonNullParamChecker) */
  const char *slash = strrchr(p, '/');
  if (!slash) return strdup(".");
  if (slash == p) return strdup("/");
  return strndup(p, (size_t)(slash - p));
}

/* Copies settings[name] (a string) or NULL. */
static char *opt_string(lua_State *L, int t, const char *name) {
  char *s = NULL;
  if (lua_getfield(L, t, name) == LUA_TSTRING) s = strdup(lua_tostring(L, -1));
  lua_pop(L, 1);
  return s;
}

int lm_config_load(lm_app *app, lm_error *err) {
  lua_State *L = app->L;
  lm_config *cfg = &app->cfg;
  int rc = lm_config_find(app->opts, &cfg->path, err);
  if (rc) return rc;
  cfg->dir = dirname_of(cfg->path);

  int top = lua_gettop(L);
  if (lm_push_module_field(L, "luamigrate.config", "resolve", err)) return LM_ERR;
  lua_pushstring(L, cfg->path);
  if (lm_pcall(L, 1, 1) != LUA_OK) {
    lm_error_from_lua(L, -1, LM_EUSAGE, err);
    /* error({}) or error(nil) carries no position: the message still names the file */
    if (!err->message || !strstr(err->message, cfg->path))
      lm_error_prefix(err, "%s: error while loading", cfg->path);
    lua_settop(L, top);
    return LM_EUSAGE;
  }
  /* The settings come with luamigrate.config's defaults applied and its rules checked. */
  int t = lua_gettop(L);
  char *loc = opt_string(L, t, "script_location");
  cfg->script_location = loc ? lm_path_join(cfg->dir, loc) : NULL;
  free(loc);
  cfg->versions_dir = cfg->script_location ? lm_path_join(cfg->script_location, "versions") : NULL;
  cfg->version_table = opt_string(L, t, "version_table");
  lua_getfield(L, t, "transaction_per_migration");
  cfg->tx_per_migration = lua_toboolean(L, -1);
  lua_pop(L, 1);
  lua_getfield(L, t, "pipeline");
  cfg->pipeline = lua_toboolean(L, -1);
  lua_pop(L, 1);
  cfg->lock_timeout = lua_getfield(L, t, "lock_timeout") == LUA_TNUMBER ? lua_tonumber(L, -1) : -1;
  lua_pop(L, 1);
  if (app->opts->lock_timeout) {
    char *end = NULL;
    double v = strtod(app->opts->lock_timeout, &end);
    if (end == app->opts->lock_timeout || *end || v < 0) {
      lua_settop(L, top);
      return lm_error_set(err, LM_EUSAGE, "--lock-timeout '%s': expected a number of seconds",
                          app->opts->lock_timeout);
    }
    cfg->lock_timeout = v;
  }
  char *changed = opt_string(L, t, "on_changed_file");
  cfg->changed_file_is_error = changed && !strcmp(changed, "error");
  free(changed);
  cfg->ddl_lock_timeout = opt_string(L, t, "migration_lock_timeout"); /* false: none */
  cfg->statement_timeout = opt_string(L, t, "migration_statement_timeout");
  lua_getfield(L, t, "lock_retries");
  cfg->lock_retries = (int)lua_tointeger(L, -1);
  lua_pop(L, 1);
  char *mode = opt_string(L, t, "lock");
  const char *m = app->opts->lock_mode ? app->opts->lock_mode : mode;
  cfg->lock_mode = lm_lock_mode_parse(m);
  if (cfg->lock_mode < 0) {
    lm_error_set(err, LM_EUSAGE, "%s: lock must be \"session\", \"xact\" or \"table\", got \"%s\"",
                 app->opts->lock_mode ? "--lock" : cfg->path, m);
    free(mode);
    lua_settop(L, top);
    return LM_EUSAGE;
  }
  free(mode);
  lua_getfield(L, t, "lock_lease");
  cfg->lock_lease = lua_tonumber(L, -1);
  lua_pop(L, 1);
  /* --url > DATABASE_URL > config url > libpq's PG* defaults */
  const char *env_url = getenv("DATABASE_URL");
  if (app->opts->url)
    cfg->url = strdup(app->opts->url);
  else if (env_url && *env_url)
    cfg->url = strdup(env_url);
  else
    cfg->url = opt_string(L, t, "url");
  lua_settop(L, top);
  if (!cfg->dir || !cfg->script_location || !cfg->versions_dir || !cfg->version_table)
    return lm_error_set(err, LM_ENOMEM, "out of memory");
  if (cfg->url) {
    char source[1024];
    if (app->opts->url)
      snprintf(source, sizeof source, "--url");
    else if (env_url && *env_url)
      snprintf(source, sizeof source, "DATABASE_URL");
    else
      snprintf(source, sizeof source, "%s: url", cfg->path);
    return lm_conn_url_scheme(cfg->url, source, err);
  }
  return LM_OK;
}
