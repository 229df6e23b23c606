/* A growing NUL-terminated string buffer: the one the commands build their output, messages
 * and JSON in. Out of memory is sticky (oom), so a caller appends freely and checks once. */
#ifndef LM_STRBUF_H
#define LM_STRBUF_H

#include <stddef.h>

/* Zero-initialise; s is NULL until something is appended; free(b.s) when done. */
typedef struct lm_strbuf {
  char *s;
  size_t n, cap;
  int oom; /* an append failed: s holds what came before */
} lm_strbuf;

/* Appends len bytes of v (no NUL among them). */
void lm_strbuf_addn(lm_strbuf *b, const char *v, size_t len);
void lm_strbuf_putc(lm_strbuf *b, char c);
/* Appends a plain string (the cheap path: history prints 100,000 lines). */
void lm_strbuf_cat(lm_strbuf *b, const char *v);
void lm_strbuf_add(lm_strbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Appends each of v[0..n) with ", " between them. */
void lm_strbuf_join(lm_strbuf *b, const char *const *v, size_t n);

#endif
