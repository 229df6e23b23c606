/* Statement splitting and parse trees from libpg_query, the PostgreSQL 15 parser built as
 * a library: the same grammar as the server the statements go to. */
#include "sqlparse.h"

#include <pg_query.h>
#include <stdlib.h>
#include <string.h>

static int is_space(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

/* The parser's error as an lm_error. */
static int parse_error(const PgQueryError *pe, lm_error *err) {
  int rc = lm_error_set(err, LM_ERR, "%s", pe->message ? pe->message : "syntax error");
  if (err) err->position = pe->cursorpos;
  return rc;
}

int lm_sql_split(const char *sql, lm_sql_span **spans, size_t *n, lm_error *err) {
  *spans = NULL;
  *n = 0;
  int rc = LM_OK;
  PgQuerySplitResult r = pg_query_split_with_parser(sql);
  if (r.error) {
    rc = parse_error(r.error, err);
    goto cleanup;
  }
  if (r.n_stmts <= 0) goto cleanup;
  lm_sql_span *out = malloc((size_t)r.n_stmts * sizeof *out);
  if (!out) {
    rc = lm_error_set(err, LM_ENOMEM, "out of memory");
    goto cleanup;
  }
  size_t k = 0, total = strlen(sql);
  for (int i = 0; i < r.n_stmts; i++) {
    size_t off = (size_t)r.stmts[i]->stmt_location;
    size_t len = (size_t)r.stmts[i]->stmt_len;
    /* stmt_len 0 means "to the end of the text" (the last statement without a ';') */
    if (off > total) off = total;
    if (len == 0 || off + len > total) len = total - off;
    while (len && is_space(sql[off])) off++, len--;
    while (len && is_space(sql[off + len - 1])) len--;
    if (len) out[k++] = (lm_sql_span){off, len};
  }
  if (k == 0) {
    free(out);
    out = NULL;
  }
  *spans = out;
  *n = k;
cleanup:
  pg_query_free_split_result(r);
  return rc;
}

int lm_sql_parse(const char *sql, char **json, lm_error *err) {
  *json = NULL;
  int rc = LM_OK;
  PgQueryParseResult r = pg_query_parse(sql);
  if (r.error) {
    rc = parse_error(r.error, err);
  } else if (!(*json = strdup(r.parse_tree ? r.parse_tree : "{\"stmts\":[]}"))) {
    rc = lm_error_set(err, LM_ENOMEM, "out of memory");
  }
  pg_query_free_parse_result(r);
  return rc;
}
