/* The revision cache's format: reading it whole or streamed, building and writing its
 * lines (see revcache.h). Fields are tab-separated, list items space-separated, each
 * escaped (backslash, tab, newline, CR, space); "-" is an empty list. The first line names
 * the format and the luamigrate version that wrote it. */
#include "revcache.h"

#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <unistd.h>

#include "checksum.h"

#define CACHE_MAGIC "luamigrate revision cache 2 " LM_VERSION "\n"

/* One field: backslash, tab, newline and space escaped, so fields split on tabs and list
 * items on spaces. */
static void sb_field(lm_strbuf *b, const char *v) {
  static const char special[] = "\\\t\n\r ", code[] = "\\tnrs";
  size_t plain = strcspn(v, special);
  lm_strbuf_addn(b, v, plain);
  for (v += plain; *v; v++) {
    const char *e = strchr(special, *v); /* *v is never the terminator */
    if (e) {
      lm_strbuf_putc(b, '\\');
      lm_strbuf_putc(b, code[e - special]);
    } else {
      lm_strbuf_putc(b, *v);
    }
  }
}

static void sb_list(lm_strbuf *b, const char *const *v, size_t n) {
  if (n == 0) lm_strbuf_putc(b, '-');
  for (size_t i = 0; i < n; i++) {
    if (i) lm_strbuf_putc(b, ' ');
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

void lm_revcache_begin(lm_strbuf *b, const char *name, const char *sum) {
  sb_field(b, name);
  lm_strbuf_putc(b, '\t');
  lm_strbuf_addn(b, sum, LM_CHECKSUM_HEX - 1);
  lm_strbuf_putc(b, '\t');
}

void lm_revcache_declared(lm_strbuf *b, const char *id, const char *const *down, size_t nd,
                          const char *const *labels, size_t nl, const char *const *deps, size_t ne,
                          const char *doc) {
  sb_field(b, id);
  lm_strbuf_putc(b, '\t');
  sb_list(b, down, nd);
  lm_strbuf_putc(b, '\t');
  sb_list(b, labels, nl);
  lm_strbuf_putc(b, '\t');
  sb_list(b, deps, ne);
  lm_strbuf_putc(b, '\t');
  sb_field(b, doc);
}

void lm_revcache_copy(lm_strbuf *b, const char *rest) {
  lm_strbuf_addn(b, rest, strlen(rest));
}

void lm_revcache_end(lm_strbuf *b) {
  lm_strbuf_putc(b, '\n');
}

void lm_revcache_truncate(lm_strbuf *b, size_t mark) {
  b->n = mark;
  if (b->s) b->s[mark] = '\0';
}

/* Splits a cache line (its '\n' removed) into name, sum and rest, in place; 0 when it is
 * not one. */
static int split_line(char *line, char **name, char **sum, char **rest) {
  char *f[3];
  int nf = 0;
  f[nf++] = line;
  for (char *q = line; *q && nf < 3; q++)
    if (*q == '\t') {
      *q = '\0';
      f[nf++] = q + 1;
    }
  if (nf < 3 || strlen(f[1]) != LM_CHECKSUM_HEX - 1) return 0;
  *name = unescape(f[0], strlen(f[0]));
  *sum = f[1];
  *rest = f[2];
  return 1;
}

void lm_revcache_free(lm_revcache *c) {
  free(c->text);
  free(c->lines);
  memset(c, 0, sizeof *c);
}

void lm_revcache_parse(char *text, size_t len, lm_revcache *c) {
  memset(c, 0, sizeof *c);
  if (!(c->text = text)) return;
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
    lm_revcache_line *l = &c->lines[c->n];
    if (!split_line(p, &l->name, &l->sum, &l->rest)) goto bad;
    if (c->n && strcmp(c->lines[c->n - 1].name, l->name) >= 0) goto bad;
    c->n++;
    p = nl + 1;
  }
  return;
bad:
  lm_revcache_free(c);
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

int lm_revcache_add(lm_dag *dag, const char *path, char *rest, lm_error *err) {
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
  return lm_dag_add(dag, f[0], (const char *const *)down, nd, (const char *const *)labels, nl,
                    (const char *const *)deps, ne, path, f[4], err);
}

int lm_revcache_stream(const char *path, long nfiles,
                       int (*entry)(void *ud, const char *name, const char *sum, char *rest),
                       void *ud) {
  FILE *f = nfiles > 0 ? fopen(path, "rb") : NULL;
  if (!f) return 0;
  char *line = NULL, *prev = NULL;
  size_t cap = 0, prevcap = 0;
  long count = 0;
  ssize_t len = getline(&line, &cap, f);
  int ok = len == (ssize_t)strlen(CACHE_MAGIC) && !memcmp(line, CACHE_MAGIC, (size_t)len);
  while (ok && (len = getline(&line, &cap, f)) > 0) {
    char *name, *sum, *rest;
    if (line[len - 1] != '\n' || ++count > nfiles) {
      ok = 0;
      break;
    }
    line[len - 1] = '\0';
    if (!split_line(line, &name, &sum, &rest) || strchr(name, '/') ||
        (prev && strcmp(prev, name) >= 0)) {
      ok = 0;
      break;
    }
    size_t nl = strlen(name);
    if (nl + 1 > prevcap) {
      char *v = realloc(prev, prevcap = 2 * nl + 16);
      if (!v) {
        ok = 0;
        break;
      }
      prev = v;
    }
    memcpy(prev, name, nl + 1);
    ok = entry(ud, name, sum, rest);
  }
  ok = ok && !ferror(f) && count == nfiles;
  fclose(f);
  free(line);
  free(prev);
  return ok;
}

void lm_revcache_open(lm_revcache_out *w, const char *path) {
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

void lm_revcache_flush(lm_revcache_out *w, lm_strbuf *body) {
  if (body->oom) w->ok = 0;
  if (w->f && w->ok && body->n) w->ok = fwrite(body->s, 1, body->n, w->f) == body->n;
  body->n = 0;
  if (body->s) body->s[0] = '\0';
}

void lm_revcache_close(lm_revcache_out *w, lm_strbuf *body, const char *path, int keep) {
  if (keep) lm_revcache_flush(w, body);
  if (w->f) {
    int ok = fclose(w->f) == 0 && w->ok;
    if (!keep || !ok || rename(w->tmp, path) != 0) unlink(w->tmp);
  }
  free(w->tmp);
  memset(w, 0, sizeof *w);
}
