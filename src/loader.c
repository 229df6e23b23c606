/* Loads revision files: lists every .lua file in <script_location>/versions in file-name order,
 * runs each in its own environment, checks the migration globals and feeds the DAG. Keeps each
 * file's environment (for its upgrade/downgrade functions) in a registry table. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <lauxlib.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "app.h"
#include "bind/bind.h"
#include "checksum.h"
#include "log.h"
#include "revfile.h"
#include "revcache.h"
#include "revscan.h"

static int cmp_names(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The directory's revision file names, sorted, in one allocation (*names, freed with one
 * free): the pointers, then the names. At 100,000 files one block instead of a string each
 * saves a tenth of a cached load's peak memory. */
static int list_files(const char *dir, char ***names, size_t *count, lm_error *err) {
  DIR *d = opendir(dir);
  if (!d)
    return lm_error_set(err, LM_EUSAGE, "cannot open the versions directory %s: %s", dir,
                        strerror(errno));
  size_t n = 0, used = 0, cap = 0;
  char *chars = NULL; /* the names, each with its NUL */
  struct dirent *e;
  int oom = 0;
  while (!oom && (e = readdir(d)) != NULL) {
    size_t l = strlen(e->d_name);
    if (e->d_name[0] == '.' || l < 5 || strcmp(e->d_name + l - 4, ".lua") != 0) continue;
    if (used + l + 1 > cap) {
      char *c = realloc(chars, cap = 2 * (used + l + 1) + 4096);
      if (!(oom = !c)) chars = c;
    }
    if (!oom) memcpy(chars + used, e->d_name, l + 1);
    used += l + 1;
    n++;
  }
  closedir(d);
  char **v = oom ? NULL : malloc(n * sizeof *v + used + 1);
  if (!v) {
    free(chars);
    return lm_error_set(err, LM_ENOMEM, "out of memory listing %s", dir);
  }
  char *p = (char *)(v + n);
  if (used) memcpy(p, chars, used);
  free(chars);
  for (size_t i = 0; i < n; i++) {
    v[i] = p;
    p += strlen(p) + 1;
  }
  qsort(v, n, sizeof *v, cmp_names);
  *names = v;
  *count = n;
  return LM_OK;
}

/* Reads env[name] (nil | string | array of strings) into a userdata-backed array on the
 * stack; on a wrong type fills err. */
static int read_list(lua_State *L, int env, const char *name, const char *path, const char ***out,
                     size_t *n, lm_error *err) {
  lua_pushstring(L, name);
  lua_rawget(L, env);
  int v = lua_gettop(L);
  *n = 0;
  int t = lua_type(L, v);
  if (t == LUA_TSTRING)
    *n = 1;
  else if (t == LUA_TTABLE)
    *n = lua_rawlen(L, v);
  else if (t != LUA_TNIL)
    return lm_error_set(err, LM_EUSAGE,
                        "%s: '%s' must be nil, a string or a table of strings, got %s", path, name,
                        lua_typename(L, t));
  const char **arr = lua_newuserdatauv(L, sizeof(char *) * (*n ? *n : 1), 0);
  if (t == LUA_TSTRING) arr[0] = lua_tostring(L, v);
  for (size_t i = 0; t == LUA_TTABLE && i < *n; i++) {
    if (lua_rawgeti(L, v, (lua_Integer)i + 1) != LUA_TSTRING)
      return lm_error_set(err, LM_EUSAGE, "%s: '%s' must hold only strings (entry %zu is %s)", path,
                          name, i + 1, luaL_typename(L, -1));
    arr[i] = lua_tostring(L, -1);
    lua_pop(L, 1);
  }
  *out = arr;
  return LM_OK;
}

/* Compiles a revision file's bytes into a chunk named "@path", left on the stack; on
 * failure leaves the stack as it was and fills err. */
static int compile(lua_State *L, const char *path, const char *data, size_t len, lm_error *err) {
  int top = lua_gettop(L);
  if (memchr(data, '\0', len))
    return lm_error_set(err, LM_EUSAGE, "%s: not a Lua text file (it holds NUL bytes)", path);
  lua_pushfstring(L, "@%s", path);
  size_t bom = lm_revfile_bom(data, len);
  if (luaL_loadbufferx(L, data + bom, len - bom, lua_tostring(L, -1), "t") != LUA_OK) {
    /* a syntax error names path:line; a limit (nesting past the C stack) names nothing */
    const char *msg = lua_tostring(L, -1);
    size_t n = strlen(path);
    int rc = !strncmp(msg, path, n) && msg[n] == ':'
                 ? lm_error_set(err, LM_EUSAGE, "%s", msg)
                 : lm_error_set(err, LM_EUSAGE, "%s: %s", path, msg);
    lua_settop(L, top);
    return rc;
  }
  lua_remove(L, -2); /* the chunk name */
  return LM_OK;
}

/* What lua_dump writes, collected in a luaL_Buffer opened at the first write (above the
 * function, which lua_dump reads from the top of the stack before it writes). */
typedef struct dump_state {
  luaL_Buffer b;
  int init;
} dump_state;

static int dump_write(lua_State *L, const void *p, size_t n, void *ud) {
  dump_state *d = ud;
  if (!d->init) {
    d->init = 1;
    luaL_buffinit(L, &d->b);
  }
  luaL_addlstring(&d->b, p, n);
  return 0;
}

/* Pushes the binary dump of the function on top of the stack, debug information kept (a
 * chunk loaded from it names file:line in its errors as the source did). Loading the dump
 * makes a new closure of the same compiled code with its own _ENV, without compiling. */
static void push_dump(lua_State *L) {
  dump_state d = {.init = 0};
  lua_dump(L, dump_write, &d, 0);
  if (d.init)
    luaL_pushresult(&d.b);
  else
    lua_pushliteral(L, "");
}

/* Runs the chunk on top of the stack in a fresh environment made by the function at mkenv;
 * the chunk is replaced by the environment (LM_OK), or popped and err filled. */
static int run_chunk(lm_app *app, int mkenv, const char *path, lm_error *err) {
  lua_State *L = app->L;
  int chunk = lua_gettop(L);
  lua_pushvalue(L, mkenv);
  if (lm_pcall(L, 0, 1) != LUA_OK) {
    lm_error_from_lua(L, -1, LM_ERR, err);
    lua_settop(L, chunk - 1);
    return LM_ERR;
  }
  int env = lua_gettop(L);
  lua_pushvalue(L, env);
  lua_setupvalue(L, chunk, 1); /* the chunk's _ENV */
  lua_pushvalue(L, chunk);
  if (lm_pcall(L, 0, 0) != LUA_OK) {
    lm_error_from_lua(L, -1, LM_EUSAGE, err);
    lm_error_prefix(err, "%s: error while loading", path);
    lua_settop(L, chunk - 1);
    return LM_EUSAGE;
  }
  lua_replace(L, chunk); /* env where the chunk was */
  lua_settop(L, chunk);
  return LM_OK;
}

/* Runs data[0..len) (the bytes of the file at `path`, owned by the caller) in a fresh
 * environment made by the function at mkenv; leaves the environment on the stack (and
 * returns LM_OK) or leaves nothing and fills err. *doc gets the file's leading comment when
 * doc is not NULL. With `dump`, the chunk's dump (push_dump) is left under the environment,
 * so a run that executes the file later does not compile it again. */
static int exec_file(lm_app *app, int mkenv, const char *path, const char *data, size_t len,
                     char **doc, int dump, lm_error *err) {
  lua_State *L = app->L;
  int top = lua_gettop(L);
  int rc = LM_OK;
  if (doc && !(*doc = lm_revfile_doc(data, len))) {
    rc = lm_error_set(err, LM_ENOMEM, "out of memory");
    goto fail;
  }
  if ((rc = compile(L, path, data, len, err))) goto fail;
  if (dump) {
    push_dump(L);
    lua_insert(L, -2);
  }
  if ((rc = run_chunk(app, mkenv, path, err))) goto fail;
  return LM_OK;
fail:
  if (doc) {
    free(*doc);
    *doc = NULL;
  }
  lua_settop(L, top);
  return rc;
}

/* Sets t[idx + 1] = the value on top (popped), t being the registry table `ref`. */
static void set_slot(lua_State *L, int ref, int idx) {
  lua_rawgeti(L, LUA_REGISTRYINDEX, ref);
  lua_insert(L, -2);
  lua_rawseti(L, -2, (lua_Integer)idx + 1);
  lua_pop(L, 1);
}

/* What a run keeps of its files (their bytes, their compiled chunks) stops growing once the
 * Lua heap has grown since the load began by what the graph leaves of LM_KEEP_TOTAL_KB
 * (each revision in it costs about LM_KEEP_REV_BYTES), and never by less than
 * LM_KEEP_HEAP_KB: a project of 10,000 revisions keeps every file's chunk and compiles each
 * once, one of 100,000 keeps little and peaks where it did before files were kept
 * (bench/dag.sh). What is not kept is read (and compiled) again when its step runs, and the
 * checksum recorded is then that of the bytes read again. */
#define LM_KEEP_HEAP_KB 128
#define LM_KEEP_TOTAL_KB (24 << 10)
#define LM_KEEP_REV_BYTES 341

static int may_keep(const lm_app *app) {
  return lua_gc(app->L, LUA_GCCOUNT, 0) - app->keep_base_kb < app->keep_budget_kb;
}

/* The budget for a graph of n revisions, set when the load knows how many files it reads. */
static void keep_budget(lm_app *app, size_t n) {
  long left = LM_KEEP_TOTAL_KB - (long)(n * LM_KEEP_REV_BYTES / 1024);
  app->keep_budget_kb = left > LM_KEEP_HEAP_KB ? (int)left : LM_KEEP_HEAP_KB;
}

/* A command that executes migrations keeps the bytes it read of revision idx's file: the
 * run compiles and executes those, and records their checksum. */
static void keep_bytes(lm_app *app, int idx, const char *data, size_t len) {
  if (!app->keep_sources || !may_keep(app)) return;
  lua_pushlstring(app->L, data, len);
  set_slot(app->L, app->srcs_ref, idx);
}

/* New, empty tables of kept bytes and chunks (a load that starts over renumbers the
 * revisions). */
static void new_tables(lm_app *app) {
  lua_State *L = app->L;
  app->keep_base_kb = lua_gc(L, LUA_GCCOUNT, 0);
  app->keep_budget_kb = LM_KEEP_HEAP_KB;
  int *refs[] = {&app->srcs_ref, &app->chunks_ref};
  for (int i = 0; i < 2; i++) {
    if (*refs[i] > 0) luaL_unref(L, LUA_REGISTRYINDEX, *refs[i]);
    lua_newtable(L);
    *refs[i] = luaL_ref(L, LUA_REGISTRYINDEX);
  }
}

/* Remembers the checksum of revision idx's file as it was read (app->sums grows with the
 * graph; `sum` in hex, kept as its 32 bytes); 0 or LM_ENOMEM. */
static int keep_sum(lm_app *app, int idx, const char *sum) {
  if ((size_t)idx >= app->nsums) {
    size_t cap = app->nsums ? app->nsums : 64;
    while (cap <= (size_t)idx) cap *= 2;
    unsigned char(*v)[33] = realloc(app->sums, cap * sizeof *v);
    if (!v) return LM_ENOMEM;
    memset(v + app->nsums, 0, (cap - app->nsums) * sizeof *v);
    app->sums = v;
    app->nsums = cap;
  }
  unsigned char *d = app->sums[idx];
  for (size_t i = 0; i < 32; i++) {
    int hi = (unsigned char)sum[2 * i], lo = (unsigned char)sum[(2 * i) + 1];
    hi = hi <= '9' ? hi - '0' : hi - 'a' + 10;
    lo = lo <= '9' ? lo - '0' : lo - 'a' + 10;
    d[1 + i] = (unsigned char)((hi << 4) | lo);
  }
  d[0] = 1;
  return LM_OK;
}

/* The checksum kept for revision idx, in hex in `hex` (which it returns), or NULL. */
const char *lm_loader_checksum(const lm_app *app, int idx, char hex[LM_CHECKSUM_HEX]) {
  if (idx < 0 || (size_t)idx >= app->nsums || !app->sums[idx][0]) return NULL;
  static const char digits[] = "0123456789abcdef";
  for (size_t i = 0; i < 32; i++) {
    hex[2 * i] = digits[app->sums[idx][1 + i] >> 4];
    hex[(2 * i) + 1] = digits[app->sums[idx][1 + i] & 15];
  }
  hex[64] = '\0';
  return hex;
}

/* ---- through the revision cache (its format: revcache.c) -------------------------------- */
/* versions/.luamigrate_cache remembers what each file declared (id, down_revision,
 * branch_labels, depends_on, docstring) under the SHA-256 of the file's bytes, so a command
 * over a large project reads and hashes each file instead of running it. The content alone
 * decides: a file whose bytes differ from the ones cached is run again, whatever its size
 * and mtime say (an edit with its mtime restored by cp -p, rsync -a or tar is still seen),
 * and a file only touched keeps its entry. The hash is what the history table records, so
 * the changed-file check reuses it (lm_loader_checksum). The cache is rewritten whenever
 * anything changed, and never trusted across luamigrate versions. Writing it is best effort
 * (a read-only checkout simply runs every file). LUAMIGRATE_NO_CACHE=1 turns it off. When
 * nothing changed the cache is streamed straight into the DAG (load_cached); otherwise it
 * is read whole and merged with the file list. A damaged entry never fails a command: the
 * load starts over without the cache (lm_loader_load). */

/* Adds the revision a cache entry describes, with its file's checksum; its index or a
 * negative code. */
static int add_cached(lm_app *app, const char *path, char *rest, const char *sum, const char *data,
                      size_t len, lm_error *err) {
  int idx = lm_revcache_add(app->dag, path, rest, err);
  if (idx >= 0 && keep_sum(app, idx, sum)) return lm_error_set(err, LM_ENOMEM, "out of memory");
  if (idx >= 0) keep_bytes(app, idx, data, len);
  return idx;
}

/* The number of revision files in dir (names as list_files keeps them), or -1 when it
 * cannot be read. */
static long count_files(const char *dir) {
  DIR *d = opendir(dir);
  if (!d) return -1;
  long n = 0;
  struct dirent *e;
  while ((e = readdir(d)) != NULL) {
    size_t l = strlen(e->d_name);
    n += e->d_name[0] != '.' && l >= 5 && !strcmp(e->d_name + l - 4, ".lua");
  }
  closedir(d);
  return n;
}

/* What load_cached's entries need: the graph, the directory's files (sorted) as they are
 * read ahead (or, with no worker to read them, only their number, each file read as its
 * entry comes), the path being built. */
typedef struct streamed {
  lm_app *app;
  int dirfd;
  char **names;
  size_t n, k; /* k: the entries seen */
  lm_revfile_ahead *ahead;
  lm_revfile_got got; /* the one taken */
  char *path;
  size_t cap;
} streamed;

/* One cache entry of the streamed load: accepted when it names the next revision file,
 * whose bytes still hash to the cached checksum, and the graph takes the revision. */
static int stream_entry(void *ud, const char *name, const char *sum, char *rest) {
  streamed *st = ud;
  const char *path = lm_revfile_path(&st->path, &st->cap, st->app->cfg.versions_dir, name);
  char *data = NULL, got[LM_CHECKSUM_HEX];
  const char *hash = got;
  size_t len = 0;
  int rc;
  lm_error ignore = {0};
  if (st->ahead) {
    if (st->k >= st->n || strcmp(name, st->names[st->k]) != 0) return 0;
    lm_revfile_got *g = &st->got;
    lm_revfile_ahead_take(st->ahead, st->k++, g);
    lm_error_clear(&g->err);
    rc = g->rc, data = g->data, len = g->len, hash = g->sum;
  } else {
    size_t l = strlen(name);
    if (!path || name[0] == '.' || l < 5 || strcmp(name + l - 4, ".lua") != 0) return 0;
    rc = lm_revfile_read_hashed(st->dirfd, st->dirfd == AT_FDCWD ? path : name, path, &data, &len,
                                got, &ignore);
  }
  int ok = rc == LM_OK && path && !strcmp(hash, sum) &&
           add_cached(st->app, path, rest, sum, data, len, &ignore) >= 0;
  free(data);
  lm_error_clear(&ignore);
  return ok;
}

/* The common case: the cache names exactly the directory's revision files and none changed
 * since (each file's bytes hash to the checksum cached for it); the revisions go into the
 * DAG as the cache streams by (lm_revcache_stream), the files read ahead of it
 * (lm_revfile_ahead). Returns 1 when app->dag holds every revision; 0 when the cache does
 * not describe the directory or anything goes wrong, with app->dag emptied for the caller
 * to start over (which then reproduces any error exactly as without this shortcut). */
static int load_cached(lm_app *app, const char *cache_path, int dirfd) {
  /* No cache (a fresh clone): the directory is not read twice. */
  if (access(cache_path, R_OK) != 0) return 0;
  streamed st = {.app = app, .dirfd = dirfd};
  lm_error ignore = {0};
  int ok;
  if (lm_revfile_ahead_workers() > 0) { /* the files read ahead, in the cache's (sorted) order */
    ok = list_files(app->cfg.versions_dir, &st.names, &st.n, &ignore) == LM_OK && st.n > 0 &&
         lm_dag_reserve(app->dag, st.n) == LM_OK && (keep_budget(app, st.n), 1) &&
         (st.ahead = lm_revfile_ahead_start(dirfd, app->cfg.versions_dir, st.names, st.n, 0)) &&
         lm_revcache_stream(cache_path, (long)st.n, stream_entry, &st);
  } else { /* no sorting: the cache's order is checked as it streams (lm_revcache_stream) */
    long nfiles = count_files(app->cfg.versions_dir);
    ok = nfiles > 0 && lm_dag_reserve(app->dag, (size_t)nfiles) == LM_OK &&
         (keep_budget(app, (size_t)nfiles), 1) &&
         lm_revcache_stream(cache_path, nfiles, stream_entry, &st);
  }
  lm_error_clear(&ignore);
  lm_revfile_ahead_stop(st.ahead);
  free(st.path);
  free(st.names);
  if (!ok) {
    lm_dag_free(app->dag);
    app->dag = lm_dag_new();
    app->nsums = 0;
    free(app->sums);
    app->sums = NULL;
    new_tables(app);
  }
  return ok;
}

/* Whether the file run in environment `env` assigned migration global `name` (nil
 * included): luamigrate.env's metatable records it. */
static int assigned(lua_State *L, int env, const char *name) {
  int yes = 0;
  if (lua_getmetatable(L, env)) {
    if (lua_getfield(L, -1, "__assigned") == LUA_TTABLE) {
      lua_getfield(L, -1, name);
      yes = lua_toboolean(L, -1);
      lua_pop(L, 1);
    }
    lua_pop(L, 2);
  }
  return yes;
}

/* Runs one file (its bytes data[0..len), hashing to sum), checks its migration globals and
 * adds it to the DAG; appends its cache line (after name and checksum) to `line`. Leaves
 * the stack as it found it. */
static int load_one(lm_app *app, int mkenv, const char *path, const char *data, size_t len,
                    const char *sum, lm_strbuf *line, lm_error *err) {
  lua_State *L = app->L;
  int top = lua_gettop(L);
  char *doc = NULL;
  int rc = exec_file(app, mkenv, path, data, len, &doc, app->keep_sources, err);
  if (rc) return rc;
  int env = lua_gettop(L); /* the chunk's dump under it when app->keep_sources */
  lua_pushliteral(L, "revision");
  if (lua_rawget(L, env) != LUA_TSTRING) {
    rc = !lua_isnil(L, -1) ? lm_error_set(err, LM_EUSAGE, "%s: 'revision' must be a string, got %s",
                                          path, luaL_typename(L, -1))
         : assigned(L, env, "revision")
             ? lm_error_set(err, LM_EUSAGE,
                            "%s: 'revision' is nil (every revision file sets revision = \"<id>\")",
                            path)
             : lm_error_set(err, LM_EUSAGE,
                            "%s: missing 'revision' (every revision file sets "
                            "revision = \"<id>\")",
                            path);
    goto cleanup;
  }
  const char *id = lua_tostring(L, -1);
  /* Alembic fails on a file without down_revision; taking it as nil would make a second
   * base without a word. */
  if (!assigned(L, env, "down_revision")) {
    rc = lm_error_set(err, LM_EUSAGE, "%s: revision %s never assigns 'down_revision'", path, id);
    lm_error_setfield(&err->hint,
                      "set it to the id of the revision this one follows, or to nil for a "
                      "base (down_revision = nil), as 'luamigrate revision' writes it");
    goto cleanup;
  }
  const char **down, **labels, **deps;
  size_t nd, nl, ne;
  if ((rc = read_list(L, env, "down_revision", path, &down, &nd, err)) ||
      (rc = read_list(L, env, "branch_labels", path, &labels, &nl, err)) ||
      (rc = read_list(L, env, "depends_on", path, &deps, &ne, err)))
    goto cleanup;
  if (nd > 64 || nl > 64 || ne > 64) {
    rc = lm_error_set(err, LM_EUSAGE,
                      "%s: more than 64 entries in down_revision, "
                      "branch_labels or depends_on",
                      path);
    goto cleanup;
  }
  static const char *const fns[] = {"upgrade", "downgrade"};
  for (int i = 0; i < 2; i++) {
    lua_pushstring(L, fns[i]);
    int t = lua_rawget(L, env);
    if (t != LUA_TFUNCTION) {
      rc = t == LUA_TNIL ? lm_error_set(err, LM_EUSAGE, "%s: missing function %s() (revision %s)",
                                        path, fns[i], id)
                         : lm_error_set(err, LM_EUSAGE, "%s: '%s' must be a function, got %s", path,
                                        fns[i], lua_typename(L, t));
      goto cleanup;
    }
    lua_pop(L, 1);
  }
  /* read_list fills the arrays whenever it returns LM_OK (its errors come from lm_error_set,
   * in another file, which the analyzer cannot see returns a negative code). */
  /* NOLINTNEXTLINE(clang-analyzer-core.CallAndMessage) */
  int idx = lm_dag_add(app->dag, id, down, nd, labels, nl, deps, ne, path, doc, err);
  if (idx < 0) {
    rc = idx;
    goto cleanup;
  }
  if (keep_sum(app, idx, sum)) {
    rc = lm_error_set(err, LM_ENOMEM, "out of memory");
    goto cleanup;
  }
  if (app->keep_sources && may_keep(app)) { /* compiled once: a run loads it from the dump */
    lua_pushvalue(L, env - 1);
    set_slot(L, app->chunks_ref, idx);
  }
  lm_revcache_declared(line, id, down, nd, labels, nl, deps, ne, lm_dag_doc(app->dag, idx));
  rc = LM_OK;
cleanup:
  free(doc);
  lua_settop(L, top);
  return rc;
}

/* The cold path: a file in the plain form `luamigrate revision` writes is read by the
 * scanner (revscan.c) and added without running it; anything else runs (load_one), which
 * gives the same answer or today's error. A plain file's body is compiled only by a
 * command that runs its migration (lm_loader_compile, before the run's first step), so a
 * syntax error there is reported then, with its file:line (docs/performance.md). */
static int load_fresh(lm_app *app, int mkenv, lm_revfile_got *g, const char *path, lm_strbuf *line,
                      lm_error *err) {
  const char *data = g->data, *sum = g->sum;
  size_t len = g->len;
  lm_revscan sc;
  int rc = g->scanned ? g->scan_rc : lm_revscan_read(data, len, &sc);
  if (g->scanned) sc = g->scan; /* scanned as it was read (revfile.c) */
  g->scanned = 0;
  if (rc == 0) return load_one(app, mkenv, path, data, len, sum, line, err);
  char *doc = rc < 0 ? NULL : lm_revfile_doc(data, len);
  if (!doc) {
    lm_revscan_free(&sc);
    return lm_error_set(err, LM_ENOMEM, "out of memory");
  }
  int idx =
      lm_dag_add(app->dag, sc.id, sc.down, sc.nd, sc.labels, sc.nl, sc.deps, sc.ne, path, doc, err);
  rc = idx < 0 ? idx : LM_OK;
  if (rc == LM_OK && keep_sum(app, idx, sum)) rc = lm_error_set(err, LM_ENOMEM, "out of memory");
  if (rc == LM_OK) keep_bytes(app, idx, data, len);
  if (rc == LM_OK)
    lm_revcache_declared(line, sc.id, sc.down, sc.nd, sc.labels, sc.nl, sc.deps, sc.ne,
                         lm_dag_doc(app->dag, idx));
  free(doc);
  lm_revscan_free(&sc);
  return rc;
}

/* Pushes require("luamigrate.env").migration. */
static int push_mkenv(lua_State *L, lm_error *err) {
  return lm_push_module_field(L, "luamigrate.env", "migration", err);
}

/* One load of the graph. read_cache = 0 ignores what the cache holds (it is still
 * rewritten). On a failure *suspect tells whether a cache entry may be the cause (the graph
 * refused an entry, or could not be finished with some revisions taken from the cache). */
static int load(lm_app *app, int read_cache, int *suspect, lm_error *err) {
  lua_State *L = app->L;
  int top = lua_gettop(L);
  char **names = NULL;
  size_t n = 0;
  int rc = LM_OK, dirty = 0, dirfd = AT_FDCWD;
  lm_revcache old = {0};
  lm_strbuf fresh = {0};
  lm_revcache_out out = {0};
  char *cache_path = NULL, *data = NULL, *pathbuf = NULL;
  size_t pathcap = 0;
  lm_revfile_ahead *ahead = NULL;
  int used_cache = 0;
  *suspect = 0;
  app->dag = lm_dag_new();
  if (!app->dag) return lm_error_set(err, LM_ENOMEM, "out of memory");

  if ((rc = push_mkenv(L, err))) goto cleanup;
  int mkenv = lua_gettop(L);
  const char *no_cache = getenv("LUAMIGRATE_NO_CACHE");
  int use_cache = !(no_cache && *no_cache && strcmp(no_cache, "0") != 0);
  cache_path = lm_path_join(app->cfg.versions_dir, ".luamigrate_cache");
  if (!cache_path) {
    rc = lm_error_set(err, LM_ENOMEM, "out of memory");
    goto cleanup;
  }
  dirfd = open(app->cfg.versions_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dirfd < 0) dirfd = AT_FDCWD; /* list_files reports an unreadable directory */
  if (use_cache && read_cache && load_cached(app, cache_path, dirfd)) {
    rc = lm_dag_finish(app->dag, err);
    *suspect = rc != LM_OK;
    goto cleanup;
  }
  if (!app->dag) {
    rc = lm_error_set(err, LM_ENOMEM, "out of memory");
    goto cleanup;
  }
  if ((rc = list_files(app->cfg.versions_dir, &names, &n, err))) goto cleanup;
  if (lm_dag_reserve(app->dag, n)) {
    rc = lm_error_set(err, LM_ENOMEM, "out of memory");
    goto cleanup;
  }
  keep_budget(app, n);
  if (use_cache && read_cache) {
    char *text = NULL;
    size_t tlen = 0;
    lm_error ignore = {0};
    if (access(cache_path, R_OK) == 0 && lm_read_file(cache_path, &text, &tlen, &ignore) != LM_OK)
      text = NULL;
    lm_error_clear(&ignore);
    lm_revcache_parse(text, tlen, &old);
  }
  size_t j = 0;
  if (use_cache) lm_revcache_open(&out, cache_path);
  /* Without cache entries to compare with, every file is scanned: as it is read. */
  ahead = lm_revfile_ahead_start(dirfd, app->cfg.versions_dir, names, n, old.n == 0);
  if (!ahead) {
    rc = lm_error_set(err, LM_ENOMEM, "out of memory");
    goto cleanup;
  }
  for (size_t i = 0; i < n && rc == LM_OK; i++) {
    lm_revfile_got g;
    lm_revfile_ahead_take(ahead, i, &g);
    data = g.data;
    if (g.rc) {
      lm_error_clear(err);
      *err = g.err;
      rc = g.rc;
      break;
    }
    const char *path = lm_revfile_path(&pathbuf, &pathcap, app->cfg.versions_dir, names[i]);
    if (!path) {
      if (g.scanned && g.scan_rc == 1) lm_revscan_free(&g.scan);
      rc = lm_error_set(err, LM_ENOMEM, "out of memory");
      break;
    }
    const char *sum = g.sum;
    size_t len = g.len;
    /* old.lines[0..old.n) are all set by the cache parser; the analyzer loses track. */
    // NOLINTNEXTLINE(clang-analyzer-core.CallAndMessage)
    while (j < old.n && strcmp(old.lines[j].name, names[i]) < 0) {
      j++;
      dirty = 1; /* a file that went away */
    }
    size_t mark = fresh.n;
    lm_revcache_begin(&fresh, names[i], sum);
    if (j < old.n && !strcmp(old.lines[j].name, names[i]) && !strcmp(old.lines[j].sum, sum)) {
      lm_revcache_copy(&fresh, old.lines[j].rest);
      int idx = add_cached(app, path, old.lines[j].rest, sum, data, len, err);
      rc = idx < 0 ? idx : LM_OK;
      *suspect = rc != LM_OK;
      used_cache = 1;
      j++;
    } else {
      if (j < old.n && !strcmp(old.lines[j].name, names[i])) j++;
      dirty = 1;
      rc = load_fresh(app, mkenv, &g, path, &fresh, err);
    }
    if (g.scanned && g.scan_rc == 1) lm_revscan_free(&g.scan); /* a cache entry served it */
    if (rc) /* nothing of a failed file goes into the cache */
      lm_revcache_truncate(&fresh, mark);
    else
      lm_revcache_end(&fresh);
    if (fresh.n >= (size_t)64 * 1024) lm_revcache_flush(&out, &fresh);
    free(data);
    data = NULL;
  }
  if (j < old.n) dirty = 1;
  if (rc == LM_OK) {
    rc = lm_dag_finish(app->dag, err);
    *suspect = rc != LM_OK && used_cache;
  }
  if (rc == LM_OK && use_cache && (dirty || !old.text || !read_cache))
    lm_revcache_close(&out, &fresh, cache_path, 1);
cleanup:
  lm_revfile_ahead_stop(ahead);
  free(pathbuf);
  lm_revcache_close(&out, &fresh, cache_path, 0);
  if (dirfd >= 0) close(dirfd);
  lm_revcache_free(&old);
  free(fresh.s);
  free(data);
  free(cache_path);
  free(names);
  lua_settop(L, top);
  return rc;
}

int lm_loader_load(lm_app *app, lm_error *err) {
  lua_State *L = app->L;
  int top = lua_gettop(L);
  /* package.path gains the script location, so migrations require their helpers. */
  lua_getglobal(L, "package");
  lua_getfield(L, -1, "path");
  lua_pushfstring(L, "%s/?.lua;%s/?/init.lua;%s", app->cfg.script_location,
                  app->cfg.script_location, lua_tostring(L, -1));
  lua_setfield(L, -3, "path");
  lua_settop(L, top);

  /* The commands that execute migrations; the others read only what the files declare. */
  const char *cmd = app->opts && app->opts->command ? app->opts->command : "";
  app->keep_sources = !strcmp(cmd, "upgrade") || !strcmp(cmd, "downgrade") || !strcmp(cmd, "lint");
  new_tables(app);
  int suspect = 0;
  int rc = load(app, 1, &suspect, err);
  if (rc && rc != LM_ENOMEM && suspect) {
    /* A cache entry whose file is unchanged but whose text the graph refuses was damaged
     * (or written by hand): the files themselves decide, and the cache is rebuilt. */
    if (lm_log_verbose() > 0)
      lm_log_warn("%s/.luamigrate_cache: ignoring a damaged entry (%s); reading every file",
                  app->cfg.versions_dir, err->message ? err->message : "?");
    lm_error_clear(err);
    lm_dag_free(app->dag);
    app->dag = NULL;
    free(app->sums);
    app->sums = NULL;
    app->nsums = 0;
    new_tables(app);
    rc = load(app, 0, &suspect, err);
  }
  if (rc == LM_OK) {
    lua_newtable(L); /* environments, filled as revisions run */
    app->envs_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  }
  return rc;
}

/* Beyond this many bytes of source, lm_loader_compile keeps a chunk as its dump rather than
 * as a function: a compiled function takes about three times its source in memory, a dump
 * little more than the source, and a whole plan is compiled before its first step. */
#define LM_KEEP_FUNCTIONS_BYTES ((size_t)256 << 10)

/* Pushes the compiled chunk of revision idx, a closure never run, and keeps its dump in the
 * chunk table for any later use (within the keep budget): from the function
 * lm_loader_compile or the load kept, from
 * the dump (lua_load of a binary chunk: no compiling), else from the bytes the load kept,
 * else (a command that keeps nothing) from the file, read now, whose checksum then becomes
 * the one recorded. Pushes nothing on failure. */
static int push_chunk(lm_app *app, int idx, lm_error *err) {
  lua_State *L = app->L;
  int top = lua_gettop(L), rc = LM_OK;
  const char *path = lm_dag_path(app->dag, idx);
  lua_rawgeti(L, LUA_REGISTRYINDEX, app->chunks_ref);
  int t = lua_rawgeti(L, top + 1, (lua_Integer)idx + 1);
  if (t == LUA_TSTRING) {
    size_t n = 0;
    const char *s = lua_tolstring(L, -1, &n);
    if (luaL_loadbufferx(L, s, n, path, "b") != LUA_OK) {
      rc = lm_error_set(err, LM_ERR, "%s: cannot load its compiled chunk: %s", path,
                        lua_tostring(L, -1));
      lua_settop(L, top);
      return rc;
    }
    lua_replace(L, top + 1);
    lua_settop(L, top + 1);
    return LM_OK;
  }
  if (t != LUA_TFUNCTION) {
    lua_pop(L, 1);
    lua_rawgeti(L, LUA_REGISTRYINDEX, app->srcs_ref);
    if (lua_rawgeti(L, -1, (lua_Integer)idx + 1) == LUA_TSTRING) {
      size_t n = 0;
      const char *s = lua_tolstring(L, -1, &n);
      rc = compile(L, path, s, n, err);
      if (rc == LM_OK) {
        lua_pushnil(L); /* the bytes are compiled: they go */
        lua_rawseti(L, top + 2, (lua_Integer)idx + 1);
      }
    } else {
      char *data = NULL, sum[LM_CHECKSUM_HEX];
      size_t len = 0;
      rc = lm_revfile_read_hashed(AT_FDCWD, path, path, &data, &len, sum, err);
      if (rc == LM_OK) rc = compile(L, path, data, len, err);
      free(data);
      /* The history records the checksum of the bytes that ran. */
      if (rc == LM_OK && keep_sum(app, idx, sum))
        rc = lm_error_set(err, LM_ENOMEM, "out of memory");
    }
    if (rc) {
      lua_settop(L, top);
      return rc;
    }
  }
  if (may_keep(app)) {
    push_dump(L);
    lua_rawseti(L, top + 1, (lua_Integer)idx + 1);
  }
  lua_replace(L, top + 1);
  lua_settop(L, top + 1);
  return LM_OK;
}

int lm_loader_env(lm_app *app, int idx, lm_error *err) {
  lua_State *L = app->L;
  int top = lua_gettop(L);
  lua_rawgeti(L, LUA_REGISTRYINDEX, app->envs_ref);
  if (lua_rawgeti(L, -1, idx + 1) == LUA_TTABLE) {
    lua_remove(L, -2);
    return LM_OK;
  }
  lua_pop(L, 1);
  const char *path = lm_dag_path(app->dag, idx);
  int rc = push_mkenv(L, err);
  if (rc == LM_OK) rc = push_chunk(app, idx, err);
  if (rc == LM_OK) rc = run_chunk(app, top + 2, path, err);
  if (rc) {
    lua_settop(L, top);
    return rc;
  }
  int env = lua_gettop(L);
  lua_pushliteral(L, "revision");
  const char *id = lua_rawget(L, env) == LUA_TSTRING ? lua_tostring(L, -1) : NULL;
  if (!id || strcmp(id, lm_dag_id(app->dag, idx)) != 0) {
    rc = lm_error_set(err, LM_EUSAGE,
                      "%s: the file changed while luamigrate ran (it no longer "
                      "declares revision %s)",
                      path, lm_dag_id(app->dag, idx));
    lua_settop(L, top);
    return rc;
  }
  lua_pop(L, 1);
  lua_pushvalue(L, env);
  lua_rawseti(L, top + 1, idx + 1); /* envs table */
  lua_replace(L, top + 1);
  lua_settop(L, top + 1);
  return LM_OK;
}

void lm_loader_release(lm_app *app, int idx) {
  lua_State *L = app->L;
  if (app->envs_ref == LUA_NOREF || app->envs_ref == LUA_REFNIL) return;
  lua_rawgeti(L, LUA_REGISTRYINDEX, app->envs_ref);
  lua_pushnil(L);
  lua_rawseti(L, -2, idx + 1);
  lua_pop(L, 1);
}

char *lm_loader_longdoc(const char *path) {
  char *data = NULL;
  size_t len = 0;
  lm_error ignore = {0};
  if (lm_read_file(path, &data, &len, &ignore) != LM_OK) {
    lm_error_clear(&ignore);
    return strdup("");
  }
  char *doc = lm_revfile_doc(data, len);
  free(data);
  return doc;
}

int lm_loader_compile(lm_app *app, const lm_revset *plan, lm_error *err) {
  lua_State *L = app->L;
  int top = lua_gettop(L), rc = LM_OK;
  size_t kept = 0; /* bytes of source whose chunks are kept as functions */
  lua_rawgeti(L, LUA_REGISTRYINDEX, app->chunks_ref);
  lua_rawgeti(L, LUA_REGISTRYINDEX, app->srcs_ref);
  const int chunks = top + 1, srcs = top + 2;
  for (size_t i = 0; i < plan->n && rc == LM_OK; i++) {
    lua_Integer slot = (lua_Integer)plan->idx[i] + 1;
    const char *path = lm_dag_path(app->dag, plan->idx[i]);
    if (lua_rawgeti(L, chunks, slot) != LUA_TNIL) { /* compiled at load, or earlier */
      lua_pop(L, 1);
      continue;
    }
    size_t len = 0;
    if (lua_rawgeti(L, srcs, slot) == LUA_TSTRING) {
      const char *data = lua_tolstring(L, -1, &len);
      rc = compile(L, path, data, len, err);
      lua_pushnil(L);
      lua_rawseti(L, srcs, slot);
    } else { /* a command that keeps nothing: the file is read now */
      char *data = NULL, sum[LM_CHECKSUM_HEX];
      rc = lm_revfile_read_hashed(AT_FDCWD, path, path, &data, &len, sum, err);
      if (rc == LM_OK) rc = compile(L, path, data, len, err);
      free(data);
      if (rc == LM_OK && keep_sum(app, plan->idx[i], sum))
        rc = lm_error_set(err, LM_ENOMEM, "out of memory");
    }
    if (rc == LM_OK && may_keep(app)) {
      if ((kept += len) > LM_KEEP_FUNCTIONS_BYTES) push_dump(L);
      lua_rawseti(L, chunks, slot);
    }
    lua_settop(L, srcs);
  }
  lua_settop(L, top);
  /* What the plan does not run is not kept. */
  if (app->keep_sources) {
    luaL_unref(L, LUA_REGISTRYINDEX, app->srcs_ref);
    lua_newtable(L);
    app->srcs_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  }
  return rc;
}
