/* The growing string buffer (strbuf.h). */
#include "strbuf.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Room for `more` bytes and the NUL; 0, or -1 (and b->oom) when out of memory. */
static int room(lm_strbuf *b, size_t more) {
  if (b->oom) return -1;
  if (b->n + more + 1 <= b->cap) return 0;
  size_t cap = (b->cap ? b->cap * 2 : 256) + more;
  char *s = realloc(b->s, cap);
  if (!s) {
    b->oom = 1;
    return -1;
  }
  b->s = s;
  b->cap = cap;
  return 0;
}

void lm_strbuf_addn(lm_strbuf *b, const char *v, size_t len) {
  if (room(b, len)) return;
  memcpy(b->s + b->n, v, len);
  b->n += len;
  b->s[b->n] = '\0';
}

void lm_strbuf_cat(lm_strbuf *b, const char *v) {
  lm_strbuf_addn(b, v, strlen(v));
}

void lm_strbuf_putc(lm_strbuf *b, char c) {
  lm_strbuf_addn(b, &c, 1);
}

void lm_strbuf_add(lm_strbuf *b, const char *fmt, ...) {
  if (b->oom) return;
  va_list ap;
  va_start(ap, fmt);
  int need = vsnprintf(b->s ? b->s + b->n : NULL, b->s ? b->cap - b->n : 0, fmt, ap);
  va_end(ap);
  if (need < 0) return;
  if (!b->s || b->n + (size_t)need + 1 > b->cap) { /* it did not fit: grow, format again */
    if (room(b, (size_t)need)) return;
    va_start(ap, fmt);
    vsnprintf(b->s + b->n, b->cap - b->n, fmt, ap);
    va_end(ap);
  }
  b->n += (size_t)need;
}

void lm_strbuf_join(lm_strbuf *b, const char *const *v, size_t n) {
  for (size_t i = 0; i < n; i++) {
    if (i) lm_strbuf_cat(b, ", ");
    lm_strbuf_cat(b, v[i]);
  }
}
