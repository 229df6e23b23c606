/* libFuzzer target: statement splitting and parsing (src/sqlparse.c). The input is SQL
 * text; every span must lie inside it, in order, trimmed and non-empty, and a text that
 * splits must also parse (the splitter runs the same grammar), with as many statements. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "sqlparse.h"

static size_t count_stmts(const char *json) {
  size_t n = 0;
  for (const char *p = json; (p = strstr(p, "\"stmt\":")); p++) n++;
  return n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  char *sql = malloc(size + 1);
  if (!sql) return 0;
  memcpy(sql, data, size);
  sql[size] = '\0';
  size_t len = strlen(sql); /* the parser reads up to the first NUL */
  lm_sql_span *spans = NULL;
  size_t n = 0;
  lm_error err = {0};
  int rc = lm_sql_split(sql, &spans, &n, &err);
  if (rc == LM_OK) {
    size_t end = 0;
    for (size_t i = 0; i < n; i++) {
      if (spans[i].len == 0 || spans[i].offset < end || spans[i].offset + spans[i].len > len)
        abort();
      if (strchr(" \t\n\r", sql[spans[i].offset]) ||
          strchr(" \t\n\r", sql[spans[i].offset + spans[i].len - 1]))
        abort();
      end = spans[i].offset + spans[i].len;
    }
    char *json = NULL;
    lm_error perr = {0};
    if (lm_sql_parse(sql, &json, &perr) != LM_OK) abort();
    /* the tree counts a statement per ';'-separated part; the split leaves out empty ones */
    if (count_stmts(json) < n) abort();
    free(json);
    lm_error_clear(&perr);
  } else if (!err.message) {
    abort();
  }
  free(spans);
  free(sql);
  lm_error_clear(&err);
  return 0;
}
