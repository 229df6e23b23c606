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

/* Revision files beyond this are refused rather than read into memory. */
#define LM_MAX_FILE 67108864u /* 64 MiB */

/* lm_read_file for `name` relative to the directory dirfd (AT_FDCWD: the current one);
 * messages name `path`. Loading opens every revision file, so it opens them relative to
 * versions/ and the kernel walks one name instead of the whole path each time. */
static int read_file_at(int dirfd, const char *name, const char *path, char **data, size_t *len,
                        lm_error *err) {
  *data = NULL;
  *len = 0;
  /* O_NONBLOCK: opening a FIFO (or a device) for reading would otherwise wait for a writer
   * before the file type could be checked; on a regular file it changes nothing. */
  int fd = openat(dirfd, name, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
  if (fd < 0) return lm_error_set(err, LM_EUSAGE, "%s: cannot read: %s", path, strerror(errno));
  struct stat st;
  if (fstat(fd, &st) != 0) {
    int e = errno;
    close(fd);
    return lm_error_set(err, LM_EUSAGE, "%s: cannot read: %s", path, strerror(e));
  }
  if (!S_ISREG(st.st_mode)) {
    close(fd);
    return lm_error_set(err, LM_EUSAGE,
                        "%s: not a regular file (%s); luamigrate reads only regular files", path,
                        S_ISFIFO(st.st_mode)   ? "a FIFO"
                        : S_ISDIR(st.st_mode)  ? "a directory"
                        : S_ISSOCK(st.st_mode) ? "a socket"
                                               : "a device or other special file");
  }
  if ((unsigned long long)st.st_size > LM_MAX_FILE) {
    close(fd);
    return lm_error_set(err, LM_EUSAGE, "%s: file too large (%lld bytes; the limit is %u)", path,
                        (long long)st.st_size, LM_MAX_FILE);
  }
  size_t size = (size_t)st.st_size, got = 0;
  char *buf = malloc(size + 1);
  if (!buf) {
    close(fd);
    return lm_error_set(err, LM_ENOMEM, "out of memory reading %s", path);
  }
  while (got < size) {
    ssize_t r = read(fd, buf + got, size - got);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) break;
    got += (size_t)r;
  }
  close(fd);
  if (got != size) {
    free(buf);
    return lm_error_set(err, LM_EUSAGE, "%s: read error", path);
  }
  buf[size] = '\0';
  *data = buf;
  *len = size;
  return LM_OK;
}

int lm_read_file(const char *path, char **data, size_t *len, lm_error *err) {
  return read_file_at(AT_FDCWD, path, path, data, len, err);
}

/* The length of a UTF-8 byte order mark at s (0 or 3): editors on Windows write one, and a
 * file that starts with it is still the same Lua text (lua.c's loadfile skips it too). */
static size_t bom_len(const char *s, size_t len) {
  return len >= 3 && !memcmp(s, "\xEF\xBB\xBF", 3) ? 3 : 0;
}

/* Removes every CR that ends a line (a file saved with CRLF line ends reads as with LF). */
static void strip_crlf(char *s) {
  char *w = s;
  for (const char *r = s; *r; r++)
    if (!(r[0] == '\r' && r[1] == '\n')) *w++ = *r;
  *w = '\0';
}

/* The leading long comment (--[[ ... ]] or --[==[ ... ]==]), trimmed, with CRLF line ends
 * made LF; "" if none. */
static char *extract_doc(const char *s, size_t len) {
  size_t bom = bom_len(s, len);
  s += bom;
  len -= bom;
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
  while (body < stop && (*body == ' ' || *body == '\t' || *body == '\n' || *body == '\r')) body++;
  while (stop > body &&
         (stop[-1] == ' ' || stop[-1] == '\t' || stop[-1] == '\n' || stop[-1] == '\r'))
    stop--;
  char *doc = strndup(body, (size_t)(stop - body));
  if (doc) strip_crlf(doc);
  return doc;
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
    if (!(v[n] = strdup(e->d_name)))
      rc = LM_ENOMEM;
    else
      n++;
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

/* Runs data[0..len) (the bytes of the file at `path`, owned by the caller) in a fresh
 * environment made by the function at mkenv; leaves the environment on the stack (and
 * returns LM_OK) or leaves nothing and fills err. *doc gets the file's leading comment when
 * doc is not NULL. */
static int exec_file(lm_app *app, int mkenv, const char *path, const char *data, size_t len,
                     char **doc, lm_error *err) {
  lua_State *L = app->L;
  int top = lua_gettop(L);
  int rc = LM_OK;
  if (memchr(data, '\0', len)) {
    rc = lm_error_set(err, LM_EUSAGE, "%s: not a Lua text file (it holds NUL bytes)", path);
    goto fail;
  }
  if (doc && !(*doc = extract_doc(data, len))) {
    rc = lm_error_set(err, LM_ENOMEM, "out of memory");
    goto fail;
  }
  lua_pushfstring(L, "@%s", path);
  size_t bom = bom_len(data, len);
  if (luaL_loadbufferx(L, data + bom, len - bom, lua_tostring(L, -1), "t") != LUA_OK) {
    rc = lm_error_set(err, LM_EUSAGE, "%s", lua_tostring(L, -1));
    goto fail;
  }
  int chunk = lua_gettop(L);
  lua_pushvalue(L, mkenv);
  if (lm_pcall(L, 0, 1) != LUA_OK) {
    lm_error_from_lua(L, -1, LM_ERR, err);
    rc = LM_ERR;
    goto fail;
  }
  int env = lua_gettop(L);
  lua_pushvalue(L, env);
  lua_setupvalue(L, chunk, 1); /* the chunk's _ENV */
  lua_pushvalue(L, chunk);
  if (lm_pcall(L, 0, 0) != LUA_OK) {
    lm_error_from_lua(L, -1, LM_EUSAGE, err);
    lm_error_prefix(err, "%s: error while loading", path);
    rc = LM_EUSAGE;
    goto fail;
  }
  lua_replace(L, top + 1); /* env where the chunk name was */
  lua_settop(L, top + 1);
  return LM_OK;
fail:
  if (doc) {
    free(*doc);
    *doc = NULL;
  }
  lua_settop(L, top);
  return rc;
}

/* Remembers the checksum of revision idx's file as it was read (app->sums grows with the
 * graph); 0 or LM_ENOMEM. */
static int keep_sum(lm_app *app, int idx, const char *sum) {
  if ((size_t)idx >= app->nsums) {
    size_t cap = app->nsums ? app->nsums : 64;
    while (cap <= (size_t)idx) cap *= 2;
    char(*v)[LM_CHECKSUM_HEX] = realloc(app->sums, cap * sizeof *v);
    if (!v) return LM_ENOMEM;
    memset(v + app->nsums, 0, (cap - app->nsums) * sizeof *v);
    app->sums = v;
    app->nsums = cap;
  }
  memcpy(app->sums[idx], sum, LM_CHECKSUM_HEX);
  return LM_OK;
}

const char *lm_loader_checksum(const lm_app *app, int idx) {
  if (idx < 0 || (size_t)idx >= app->nsums || !app->sums[idx][0]) return NULL;
  return app->sums[idx];
}

/* ---- the revision cache -------------------------------------------------------------- */
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

#define CACHE_MAGIC "luamigrate revision cache 2 " LM_VERSION "\n"

typedef struct sbuf_t {
  char *s;
  size_t n, cap;
  int oom;
} sbuf_t;

static void sb_putc(sbuf_t *b, char c) {
  if (b->oom) return;
  if (b->n + 2 > b->cap) {
    size_t cap = b->cap ? b->cap * 2 : 256;
    char *s = realloc(b->s, cap);
    if (!s) {
      b->oom = 1;
      return;
    }
    b->s = s;
    b->cap = cap;
  }
  b->s[b->n++] = c;
  b->s[b->n] = '\0';
}

static void sb_puts(sbuf_t *b, const char *v, size_t len) {
  if (b->oom) return;
  if (b->n + len + 1 > b->cap) {
    size_t cap = b->cap ? b->cap : 256;
    while (b->n + len + 1 > cap) cap *= 2;
    char *s = realloc(b->s, cap);
    if (!s) {
      b->oom = 1;
      return;
    }
    b->s = s;
    b->cap = cap;
  }
  /* NOLINTNEXTLINE(clang-analyzer-core.NonNullParamChecker): cap 0 always grows above. */
  memcpy(b->s + b->n, v, len);
  b->n += len;
  b->s[b->n] = '\0';
}

/* One field: backslash, tab, newline and space escaped, so fields split on tabs and list
 * items on spaces. */
static void sb_field(sbuf_t *b, const char *v) {
  size_t plain = strcspn(v, "\\\t\n\r ");
  sb_puts(b, v, plain);
  for (v += plain; *v; v++) {
    switch (*v) {
      case '\\':
        sb_putc(b, '\\');
        sb_putc(b, '\\');
        break;
      case '\t':
        sb_putc(b, '\\');
        sb_putc(b, 't');
        break;
      case '\n':
        sb_putc(b, '\\');
        sb_putc(b, 'n');
        break;
      case '\r':
        sb_putc(b, '\\');
        sb_putc(b, 'r');
        break;
      case ' ':
        sb_putc(b, '\\');
        sb_putc(b, 's');
        break;
      default: sb_putc(b, *v);
    }
  }
}

static void sb_list(sbuf_t *b, const char *const *v, size_t n) {
  if (n == 0) sb_putc(b, '-');
  for (size_t i = 0; i < n; i++) {
    if (i) sb_putc(b, ' ');
    sb_field(b, v[i]);
  }
}

/* Unescapes s[0..len) in place into a NUL-terminated string; returns it. */
static char *unescape(char *s, size_t len) {
  char *w = s;
  for (size_t i = 0; i < len; i++) {
    if (s[i] == '\\' && i + 1 < len) {
      char c = s[++i];
      *w++ = (char)(c == 't' ? '\t' : c == 'n' ? '\n' : c == 'r' ? '\r' : c == 's' ? ' ' : c);
    } else {
      *w++ = s[i];
    }
  }
  *w = '\0';
  return s;
}

typedef struct cache_line {
  char *name; /* points into the cache text */
  char *sum;  /* hex SHA-256 of the file's bytes */
  char *rest; /* id \t down \t labels \t deps \t doc, still escaped */
} cache_line;

typedef struct cache {
  char *text;
  cache_line *lines;
  size_t n;
} cache;

static void cache_free(cache *c) {
  free(c->text);
  free(c->lines);
  memset(c, 0, sizeof *c);
}

/* Reads the cache; a missing, foreign or damaged one is simply empty. Lines are sorted by
 * name as written. */
static void cache_read(const char *path, cache *c) {
  size_t len = 0;
  lm_error ignore = {0};
  memset(c, 0, sizeof *c);
  if (access(path, R_OK) != 0 || lm_read_file(path, &c->text, &len, &ignore) != LM_OK) {
    lm_error_clear(&ignore);
    return;
  }
  size_t ml = strlen(CACHE_MAGIC);
  if (len < ml || memcmp(c->text, CACHE_MAGIC, ml) != 0) goto bad;
  size_t cap = 0;
  for (size_t i = ml; i < len; i++) cap += c->text[i] == '\n';
  c->lines = malloc((cap ? cap : 1) * sizeof *c->lines);
  if (!c->lines) goto bad;
  char *p = c->text + ml, *end = c->text + len;
  while (p < end) {
    char *nl = memchr(p, '\n', (size_t)(end - p));
    if (!nl) goto bad;
    *nl = '\0';
    cache_line *l = &c->lines[c->n];
    char *f[3];
    int nf = 0;
    f[nf++] = p;
    for (char *q = p; *q && nf < 3; q++)
      if (*q == '\t') {
        *q = '\0';
        f[nf++] = q + 1;
      }
    if (nf < 3 || strlen(f[1]) != LM_CHECKSUM_HEX - 1) goto bad;
    l->name = unescape(f[0], strlen(f[0]));
    l->sum = f[1];
    l->rest = f[2];
    if (c->n && strcmp(c->lines[c->n - 1].name, l->name) >= 0) goto bad;
    c->n++;
    p = nl + 1;
  }
  return;
bad:
  cache_free(c);
}

/* Splits a space-separated escaped list in place. */
static size_t split_list(char *s, char **out, size_t cap) {
  if (!strcmp(s, "-")) return 0;
  size_t n = 0;
  char *p = s;
  while (n < cap) {
    char *sp = strchr(p, ' ');
    if (sp) *sp = '\0';
    out[n++] = unescape(p, strlen(p));
    if (!sp) break;
    p = sp + 1;
  }
  return n;
}

/* Adds the revision a cache line describes to the DAG, with its file's checksum; returns its
 * index or a negative code. */
static int add_cached(lm_app *app, const char *path, char *rest, const char *sum, lm_error *err) {
  char *f[5];
  int nf = 0;
  f[nf++] = rest;
  for (char *q = rest; *q && nf < 5; q++)
    if (*q == '\t') {
      *q = '\0';
      f[nf++] = q + 1;
    }
  if (nf < 5) return lm_error_set(err, LM_ERR, "damaged revision cache entry for %s", path);
  char *down[64], *labels[64], *deps[64];
  unescape(f[0], strlen(f[0]));
  size_t nd = split_list(f[1], down, 64), nl = split_list(f[2], labels, 64),
         ne = split_list(f[3], deps, 64);
  unescape(f[4], strlen(f[4]));
  int idx = lm_dag_add(app->dag, f[0], (const char *const *)down, nd, (const char *const *)labels,
                       nl, (const char *const *)deps, ne, path, f[4], err);
  if (idx >= 0 && keep_sum(app, idx, sum)) return lm_error_set(err, LM_ENOMEM, "out of memory");
  return idx;
}

/* Reads the file `name` in dirfd (AT_FDCWD: path itself), named `path` in messages, and
 * hashes it: *data (the caller frees it) and sum. */
static int read_hashed(int dirfd, const char *name, const char *path, char **data, size_t *len,
                       char sum[LM_CHECKSUM_HEX], lm_error *err) {
  int rc = read_file_at(dirfd, name, path, data, len, err);
  if (rc == LM_OK) rc = lm_checksum_sha256(*data, *len, sum, err);
  if (rc) {
    free(*data);
    *data = NULL;
  }
  return rc;
}

/* 1 for a name list_files keeps. */
static int is_revision_file(const char *name) {
  size_t l = strlen(name);
  return name[0] != '.' && l >= 5 && !strcmp(name + l - 4, ".lua");
}

/* The number of revision files in dir, or -1 when it cannot be read. */
static long count_files(const char *dir) {
  DIR *d = opendir(dir);
  if (!d) return -1;
  long n = 0;
  struct dirent *e;
  while ((e = readdir(d)) != NULL) n += is_revision_file(e->d_name);
  closedir(d);
  return n;
}

/* The common case, streamed: the cache names exactly the directory's revision files and
 * none changed since (each file's bytes hash to the checksum cached for it). Reads the cache
 * a line at a time and adds each revision as it goes, so neither the cache text nor the file
 * list is held in memory. Returns 1 when app->dag holds every revision; 0 when the cache
 * does not describe the directory or anything goes wrong, with app->dag emptied for the
 * caller to start over (which then reproduces any error exactly as without this shortcut). */
static int load_cached(lm_app *app, const char *cache_path, int dirfd) {
  long nfiles = count_files(app->cfg.versions_dir);
  FILE *f = nfiles > 0 ? fopen(cache_path, "rb") : NULL;
  if (!f) return 0;
  char *line = NULL, *prev = NULL, *path = NULL;
  size_t cap = 0, prevcap = 0, pathcap = 0;
  /* Paths are versions_dir + name, joined as lm_path_join does; the prefix is kept. */
  const char *dir = app->cfg.versions_dir;
  size_t dirlen = 0;
  if (*dir && strcmp(dir, ".") != 0) dirlen = strlen(dir) + (dir[strlen(dir) - 1] != '/');
  if (dirlen && !(path = malloc(pathcap = dirlen + 64))) {
    fclose(f);
    return 0;
  }
  if (dirlen) {
    memcpy(path, dir, strlen(dir));
    path[dirlen - 1] = '/';
  }
  long count = 0;
  int ok = lm_dag_reserve(app->dag, (size_t)nfiles) == LM_OK;
  ssize_t len = ok ? getline(&line, &cap, f) : -1;
  ok = len == (ssize_t)strlen(CACHE_MAGIC) && !memcmp(line, CACHE_MAGIC, (size_t)len);
  while (ok && (len = getline(&line, &cap, f)) > 0) {
    if (line[len - 1] != '\n' || ++count > nfiles) {
      ok = 0;
      break;
    }
    line[len - 1] = '\0';
    char *fld[3];
    int nf = 0;
    fld[nf++] = line;
    for (char *q = line; *q && nf < 3; q++)
      if (*q == '\t') {
        *q = '\0';
        fld[nf++] = q + 1;
      }
    if (nf < 3) {
      ok = 0;
      break;
    }
    char *name = unescape(fld[0], strlen(fld[0]));
    size_t nl = strlen(name);
    ok = strlen(fld[1]) == LM_CHECKSUM_HEX - 1 && is_revision_file(name) && !strchr(name, '/') &&
         (!prev || strcmp(prev, name) < 0);
    if (!ok) break;
    if (nl + 1 > prevcap) {
      char *v = realloc(prev, prevcap = 2 * nl + 16);
      if (!v) {
        ok = 0;
        break;
      }
      prev = v;
    }
    memcpy(prev, name, nl + 1);
    if (dirlen + nl + 2 > pathcap) {
      char *v = realloc(path, pathcap = 2 * (dirlen + nl) + 16);
      if (!v) {
        ok = 0;
        break;
      }
      path = v;
    }
    /* what lm_path_join(versions_dir, name) gives */
    memcpy(path + dirlen, name, nl + 1);
    char *data = NULL, sum[LM_CHECKSUM_HEX];
    size_t dlen = 0;
    lm_error ignore = {0};
    ok = read_hashed(dirfd, dirfd == AT_FDCWD ? path : name, path, &data, &dlen, sum, &ignore) ==
             LM_OK &&
         !strcmp(sum, fld[1]) && add_cached(app, path, fld[2], sum, &ignore) >= 0;
    free(data);
    lm_error_clear(&ignore);
  }
  ok = ok && !ferror(f) && count == nfiles;
  fclose(f);
  free(line);
  free(prev);
  free(path);
  if (!ok) {
    lm_dag_free(app->dag);
    app->dag = lm_dag_new();
    app->nsums = 0;
    free(app->sums);
    app->sums = NULL;
  }
  return ok;
}

/* The cache being rewritten, streamed to a temporary file beside it (renamed into place
 * once the whole graph has loaded), so a first run over a large project never holds the
 * whole text in memory. A writer that cannot open its file drops what it is given. */
typedef struct cache_out {
  FILE *f;
  char *tmp;
  int ok;
} cache_out;

static void cache_open(cache_out *w, const char *path) {
  size_t plen = strlen(path);
  memset(w, 0, sizeof *w);
  if (!(w->tmp = malloc(plen + 32))) return;
  snprintf(w->tmp, plen + 32, "%s.%ld", path, (long)getpid());
  /* A new file of our own (never through a symlink), 0644 at most whatever the umask: the
   * cache decides which revision files are read, so others must not be able to edit it. */
  unlink(w->tmp);
  int fd = open(w->tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
  if (fd < 0) return;
  if (!(w->f = fdopen(fd, "wb"))) {
    close(fd);
    unlink(w->tmp);
    return;
  }
  w->ok = fputs(CACHE_MAGIC, w->f) >= 0;
}

/* Moves body's text to the file and empties body. */
static void cache_flush(cache_out *w, sbuf_t *body) {
  if (body->oom) w->ok = 0;
  if (w->f && w->ok && body->n) w->ok = fwrite(body->s, 1, body->n, w->f) == body->n;
  body->n = 0;
  if (body->s) body->s[0] = '\0';
}

/* Puts the file in place when keep (and all went well), else removes it. */
static void cache_close(cache_out *w, sbuf_t *body, const char *path, int keep) {
  if (keep) cache_flush(w, body);
  if (w->f) {
    int ok = fclose(w->f) == 0 && w->ok;
    if (!keep || !ok || rename(w->tmp, path) != 0) unlink(w->tmp);
  }
  free(w->tmp);
  memset(w, 0, sizeof *w);
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
                    const char *sum, sbuf_t *line, lm_error *err) {
  lua_State *L = app->L;
  int top = lua_gettop(L);
  char *doc = NULL;
  int rc = exec_file(app, mkenv, path, data, len, &doc, err);
  if (rc) return rc;
  int env = lua_gettop(L);
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
  sb_field(line, id);
  sb_putc(line, '\t');
  sb_list(line, down, nd);
  sb_putc(line, '\t');
  sb_list(line, labels, nl);
  sb_putc(line, '\t');
  sb_list(line, deps, ne);
  sb_putc(line, '\t');
  sb_field(line, lm_dag_doc(app->dag, idx));
  rc = LM_OK;
cleanup:
  free(doc);
  lua_settop(L, top);
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
  cache old = {0};
  sbuf_t fresh = {0};
  cache_out out = {0};
  char *cache_path = NULL, *data = NULL;
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
  if (use_cache && read_cache) cache_read(cache_path, &old);
  size_t j = 0;
  if (use_cache) cache_open(&out, cache_path);
  for (size_t i = 0; i < n && rc == LM_OK; i++) {
    char *path = lm_path_join(app->cfg.versions_dir, names[i]);
    if (!path) {
      rc = lm_error_set(err, LM_ENOMEM, "out of memory");
      break;
    }
    char sum[LM_CHECKSUM_HEX];
    size_t len = 0;
    if ((rc = read_hashed(dirfd, dirfd == AT_FDCWD ? path : names[i], path, &data, &len, sum,
                          err))) {
      free(path);
      break;
    }
    /* old.lines[0..old.n) are all set by the cache parser; the analyzer loses track. */
    // NOLINTNEXTLINE(clang-analyzer-core.CallAndMessage)
    while (j < old.n && strcmp(old.lines[j].name, names[i]) < 0) {
      j++;
      dirty = 1; /* a file that went away */
    }
    size_t mark = fresh.n;
    sb_field(&fresh, names[i]);
    sb_putc(&fresh, '\t');
    sb_puts(&fresh, sum, LM_CHECKSUM_HEX - 1);
    sb_putc(&fresh, '\t');
    if (j < old.n && !strcmp(old.lines[j].name, names[i]) && !strcmp(old.lines[j].sum, sum)) {
      sb_puts(&fresh, old.lines[j].rest, strlen(old.lines[j].rest));
      int idx = add_cached(app, path, old.lines[j].rest, sum, err);
      rc = idx < 0 ? idx : LM_OK;
      *suspect = rc != LM_OK;
      used_cache = 1;
      j++;
    } else {
      if (j < old.n && !strcmp(old.lines[j].name, names[i])) j++;
      dirty = 1;
      rc = load_one(app, mkenv, path, data, len, sum, &fresh, err);
    }
    if (rc) { /* nothing of a failed file goes into the cache */
      fresh.n = mark;
      if (fresh.s) fresh.s[mark] = '\0';
    } else {
      sb_putc(&fresh, '\n');
    }
    if (fresh.n >= (size_t)64 * 1024) cache_flush(&out, &fresh);
    free(data);
    data = NULL;
    free(path);
  }
  if (j < old.n) dirty = 1;
  if (rc == LM_OK) {
    rc = lm_dag_finish(app->dag, err);
    *suspect = rc != LM_OK && used_cache;
  }
  if (rc == LM_OK && use_cache && (dirty || !old.text || !read_cache))
    cache_close(&out, &fresh, cache_path, 1);
cleanup:
  cache_close(&out, &fresh, cache_path, 0);
  if (dirfd >= 0) close(dirfd);
  cache_free(&old);
  free(fresh.s);
  free(data);
  free(cache_path);
  for (size_t i = 0; i < n; i++) free(names[i]);
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
    rc = load(app, 0, &suspect, err);
  }
  if (rc == LM_OK) {
    lua_newtable(L); /* environments, filled as revisions run */
    app->envs_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  }
  return rc;
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
  char *data = NULL, sum[LM_CHECKSUM_HEX];
  size_t len = 0;
  int rc = push_mkenv(L, err);
  if (rc == LM_OK) rc = read_hashed(AT_FDCWD, path, path, &data, &len, sum, err);
  if (rc == LM_OK) rc = exec_file(app, lua_gettop(L), path, data, len, NULL, err);
  free(data);
  /* The history records the checksum of the bytes that ran. */
  if (rc == LM_OK && keep_sum(app, idx, sum)) rc = lm_error_set(err, LM_ENOMEM, "out of memory");
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
  char *doc = extract_doc(data, len);
  free(data);
  return doc;
}
