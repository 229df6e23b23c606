/* lm_error: construction, prefixing and printing of structured errors. */
#include "error.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void lm_error_setfield(char **field, const char *s) {
  free(*field);
  *field = s ? strdup(s) : NULL;
}

void lm_error_clear(lm_error *err) {
  if (!err) return;
  free(err->message);
  free(err->detail);
  free(err->hint);
  free(err->sqlstate);
  free(err->statement);
  free(err->context);
  memset(err, 0, sizeof *err);
}

int lm_error_move(lm_error *dst, lm_error *src) {
  if (dst == src) return dst->code;
  lm_error_clear(dst);
  *dst = *src;
  memset(src, 0, sizeof *src);
  return dst->code;
}

static char *vformat(const char *fmt, va_list ap) {
  va_list ap2;
  va_copy(ap2, ap);
  int n = vsnprintf(NULL, 0, fmt, ap2);
  va_end(ap2);
  if (n < 0) return NULL;
  char *s = malloc((size_t)n + 1);
  if (s) vsnprintf(s, (size_t)n + 1, fmt, ap);
  return s;
}

int lm_error_set(lm_error *err, int code, const char *fmt, ...) {
  if (!err) return code;
  va_list ap;
  va_start(ap, fmt);
  char *m = vformat(fmt, ap);
  va_end(ap);
  free(err->message);
  err->message = m;
  err->code = code;
  return code;
}

void lm_error_prefix(lm_error *err, const char *fmt, ...) {
  if (!err) return;
  va_list ap;
  va_start(ap, fmt);
  char *p = vformat(fmt, ap);
  va_end(ap);
  if (!p) return;
  const char *old = err->message ? err->message : "";
  size_t n = strlen(p) + 2 + strlen(old) + 1;
  char *m = malloc(n);
  if (m) {
    snprintf(m, n, "%s: %s", p, old);
    free(err->message);
    err->message = m;
  }
  free(p);
}

static void print_block(FILE *f, const char *label, const char *text) {
  if (!text || !*text) return;
  const char *s = text;
  while (*s) {
    const char *nl = strchr(s, '\n');
    size_t len = nl ? (size_t)(nl - s) : strlen(s);
    fprintf(f, "  %s%.*s\n", label, (int)len, s);
    label = label[0] ? "        " : "";
    if (!nl) break;
    s = nl + 1;
  }
}

void lm_error_print(const lm_error *err, FILE *f, const char *on, const char *off) {
  fprintf(f, "%sluamigrate:%s %s\n", on, off, err->message ? err->message : "unknown error");
  print_block(f, "", err->detail);
  print_block(f, "hint: ", err->hint);
}
