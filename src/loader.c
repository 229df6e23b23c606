/* Loads revision files: lists every .lua file in <script_location>/versions in file-name order, runs
 * each in its own environment, checks the migration globals and feeds the DAG. Keeps each
 * file's environment (for its upgrade/downgrade functions) in a registry table. */
#include <dirent.h>
#include <errno.h>
#include <lauxlib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "app.h"
#include "bind/bind.h"

/* Revision files beyond this are refused rather than read into memory. */
#define LM_MAX_FILE (64u * 1024 * 1024)

int lm_read_file(const char *path, char **data, size_t *len, lm_error *err) {
  *data = NULL;
  *len = 0;
  FILE *f = fopen(path, "rb");
  if (!f) return lm_error_set(err, LM_EUSAGE, "%s: cannot read: %s", path, strerror(errno));
  struct stat st;
  if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode)) {
    fclose(f);
    return lm_error_set(err, LM_EUSAGE, "%s: not a regular file", path);
  }
  if ((unsigned long long)st.st_size > LM_MAX_FILE) {
    fclose(f);
    return lm_error_set(err, LM_EUSAGE, "%s: file too large (%lld bytes; the limit is %u)",
                        path, (long long)st.st_size, LM_MAX_FILE);
  }
  size_t size = (size_t)st.st_size;
  char *buf = malloc(size + 1);
  if (!buf) {
    fclose(f);
    return lm_error_set(err, LM_ENOMEM, "out of memory reading %s", path);
  }
  size_t got = fread(buf, 1, size, f);
  int failed = ferror(f);
  fclose(f);
  if (failed || got != size) {
    free(buf);
    return lm_error_set(err, LM_EUSAGE, "%s: read error", path);
  }
  buf[size] = '\0';
  *data = buf;
  *len = size;
  return LM_OK;
}

/* The leading long comment (--[[ ... ]] or --[==[ ... ]==]), trimmed; "" if none. */
static char *extract_doc(const char *s, size_t len) {
  const char *end = s + len, *p = s;
  while (p < end && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')) p++;
  if (end - p < 4 || strncmp(p, "--[", 3) != 0) return strdup("");
  p += 3;
  size_t level = 0;
  while (p < end && *p == '=') level++, p++;
  if (p >= end || *p != '[') return strdup("");
  p++;
  const char *body = p;
  for (; p < end; p++) {
    if (*p != ']') continue;
    const char *q = p + 1;
    size_t l = 0;
    while (q < end && *q == '=') l++, q++;
    if (l == level && q < end && *q == ']') break;
  }
  const char *stop = p < end ? p : end;
  while (body < stop && (*body == ' ' || *body == '\t' || *body == '\n' || *body == '\r'))
    body++;
  while (stop > body && (stop[-1] == ' ' || stop[-1] == '\t' || stop[-1] == '\n' ||
                         stop[-1] == '\r'))
    stop--;
  return strndup(body, (size_t)(stop - body));
}

static int cmp_names(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

static int list_files(const char *dir, char ***names, size_t *count, lm_error *err) {
  DIR *d = opendir(dir);
  if (!d)
    return lm_error_set(err, LM_EUSAGE, "cannot open the versions directory %s: %s", dir,
                        strerror(errno));
  size_t n = 0, cap = 64;
  char **v = malloc(cap * sizeof *v);
  struct dirent *e;
  int rc = v ? LM_OK : LM_ENOMEM;
  while (rc == LM_OK && (e = readdir(d)) != NULL) {
    size_t l = strlen(e->d_name);
    if (e->d_name[0] == '.' || l < 5 || strcmp(e->d_name + l - 4, ".lua") != 0) continue;
    if (n == cap) {
      char **nv = realloc(v, (cap *= 2) * sizeof *v);
      if (!nv) {
        rc = LM_ENOMEM;
        break;
      }
      v = nv;
    }
    if (!(v[n] = strdup(e->d_name))) rc = LM_ENOMEM;
    else n++;
  }
  closedir(d);
  if (rc) {
    for (size_t i = 0; i < n; i++) free(v[i]);
    free(v);
    return lm_error_set(err, rc, "out of memory listing %s", dir);
  }
  qsort(v, n, sizeof *v, cmp_names);
  *names = v;
  *count = n;
  return LM_OK;
}

/* Reads env[name] (nil | string | array of strings) into a userdata-backed array on the
 * stack; on a wrong type fills err. */
static int read_list(lua_State *L, int env, const char *name, const char *path,
                     const char ***out, size_t *n, lm_error *err) {
  lua_pushstring(L, name);
  lua_rawget(L, env);
  int v = lua_gettop(L);
  *n = 0;
  int t = lua_type(L, v);
  if (t == LUA_TSTRING) *n = 1;
  else if (t == LUA_TTABLE) *n = lua_rawlen(L, v);
  else if (t != LUA_TNIL)
    return lm_error_set(err, LM_EUSAGE,
                        "%s: '%s' must be nil, a string or a table of strings, got %s", path,
                        name, lua_typename(L, t));
  const char **arr = lua_newuserdatauv(L, sizeof(char *) * (*n ? *n : 1), 0);
  if (t == LUA_TSTRING) arr[0] = lua_tostring(L, v);
  for (size_t i = 0; t == LUA_TTABLE && i < *n; i++) {
    if (lua_rawgeti(L, v, (lua_Integer)i + 1) != LUA_TSTRING)
      return lm_error_set(err, LM_EUSAGE, "%s: '%s' must hold only strings (entry %zu is %s)",
                          path, name, i + 1, luaL_typename(L, -1));
    arr[i] = lua_tostring(L, -1);
    lua_pop(L, 1);
  }
  *out = arr;
  return LM_OK;
}

/* Loads one file; leaves the stack as it found it. */
static int load_one(lm_app *app, int envs, int mkenv, const char *path, lm_error *err) {
  lua_State *L = app->L;
  int top = lua_gettop(L);
  char *data = NULL, *doc = NULL;
  size_t len = 0;
  int rc = lm_read_file(path, &data, &len, err);
  if (rc) goto cleanup;
  if (memchr(data, '\0', len)) {
    rc = lm_error_set(err, LM_EUSAGE, "%s: not a Lua text file (it holds NUL bytes)", path);
    goto cleanup;
  }
  doc = extract_doc(data, len);
  lua_pushfstring(L, "@%s", path);
  if (luaL_loadbufferx(L, data, len, lua_tostring(L, -1), "t") != LUA_OK) {
    rc = lm_error_set(err, LM_EUSAGE, "%s", lua_tostring(L, -1));
    goto cleanup;
  }
  free(data);
  data = NULL;
  int chunk = lua_gettop(L);
  lua_pushvalue(L, mkenv);
  if (lm_pcall(L, 0, 1) != LUA_OK) {
    lm_error_from_lua(L, -1, LM_ERR, err);
    rc = LM_ERR;
    goto cleanup;
  }
  int env = lua_gettop(L);
  lua_pushvalue(L, env);
  lua_setupvalue(L, chunk, 1); /* the chunk's _ENV */
  lua_pushvalue(L, chunk);
  if (lm_pcall(L, 0, 0) != LUA_OK) {
    lm_error_from_lua(L, -1, LM_EUSAGE, err);
    lm_error_prefix(err, "%s: error while loading", path);
    rc = LM_EUSAGE;
    goto cleanup;
  }
  lua_pushliteral(L, "revision");
  if (lua_rawget(L, env) != LUA_TSTRING) {
    rc = lua_isnil(L, -1)
             ? lm_error_set(err, LM_EUSAGE, "%s: missing 'revision' (every revision file sets "
                                            "revision = \"<id>\")", path)
             : lm_error_set(err, LM_EUSAGE, "%s: 'revision' must be a string, got %s", path,
                            luaL_typename(L, -1));
    goto cleanup;
  }
  const char *id = lua_tostring(L, -1);
  const char **down, **labels, **deps;
  size_t nd, nl, ne;
  if ((rc = read_list(L, env, "down_revision", path, &down, &nd, err)) ||
      (rc = read_list(L, env, "branch_labels", path, &labels, &nl, err)) ||
      (rc = read_list(L, env, "depends_on", path, &deps, &ne, err)))
    goto cleanup;
  static const char *const fns[] = {"upgrade", "downgrade"};
  for (int i = 0; i < 2; i++) {
    lua_pushstring(L, fns[i]);
    int t = lua_rawget(L, env);
    if (t != LUA_TFUNCTION) {
      rc = t == LUA_TNIL
               ? lm_error_set(err, LM_EUSAGE, "%s: missing function %s() (revision %s)", path,
                              fns[i], id)
               : lm_error_set(err, LM_EUSAGE, "%s: '%s' must be a function, got %s", path,
                              fns[i], lua_typename(L, t));
      goto cleanup;
    }
    lua_pop(L, 1);
  }
  int idx = lm_dag_add(app->dag, id, down, nd, labels, nl, deps, ne, path, doc, err);
  if (idx < 0) {
    rc = idx;
    goto cleanup;
  }
  lua_pushvalue(L, env);
  lua_rawseti(L, envs, idx + 1);
  rc = LM_OK;
cleanup:
  free(data);
  free(doc);
  lua_settop(L, top);
  return rc;
}

int lm_loader_load(lm_app *app, lm_error *err) {
  lua_State *L = app->L;
  int top = lua_gettop(L);
  char **names = NULL;
  size_t n = 0;
  int rc = LM_OK;
  app->dag = lm_dag_new();
  if (!app->dag) return lm_error_set(err, LM_ENOMEM, "out of memory");
  rc = list_files(app->cfg.versions_dir, &names, &n, err);
  if (rc) return rc;

  /* package.path gains the script location, so migrations require their helpers. */
  lua_getglobal(L, "package");
  lua_getfield(L, -1, "path");
  lua_pushfstring(L, "%s/?.lua;%s/?/init.lua;%s", app->cfg.script_location,
                  app->cfg.script_location, lua_tostring(L, -1));
  lua_setfield(L, -3, "path");
  lua_settop(L, top);

  lua_getglobal(L, "require");
  lua_pushliteral(L, "luamigrate.env");
  if (lm_pcall(L, 1, 1) != LUA_OK) {
    lm_error_from_lua(L, -1, LM_ERR, err);
    rc = LM_ERR;
    goto cleanup;
  }
  lua_getfield(L, -1, "migration");
  int mkenv = lua_gettop(L);
  lua_createtable(L, (int)n, 0);
  int envs = lua_gettop(L);
  for (size_t i = 0; i < n && rc == LM_OK; i++) {
    char *path = lm_path_join(app->cfg.versions_dir, names[i]);
    if (!path) {
      rc = lm_error_set(err, LM_ENOMEM, "out of memory");
      break;
    }
    rc = load_one(app, envs, mkenv, path, err);
    free(path);
  }
  if (rc == LM_OK) rc = lm_dag_finish(app->dag, err);
  if (rc == LM_OK) {
    lua_pushvalue(L, envs);
    app->envs_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  }
cleanup:
  for (size_t i = 0; i < n; i++) free(names[i]);
  free(names);
  lua_settop(L, top);
  return rc;
}
