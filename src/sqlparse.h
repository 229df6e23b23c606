/* PostgreSQL's own parser (libpg_query): statement splitting and parse trees for the op
 * layer's checks and the linter. Knows neither libpq nor Lua. */
#ifndef LM_SQLPARSE_H
#define LM_SQLPARSE_H

#include <stddef.h>

#include "error.h"

/* One statement of a text: its bytes [offset, offset + len), surrounding whitespace
 * trimmed (comments before it kept: they may carry `-- luamigrate:allow` marks). */
typedef struct lm_sql_span {
  size_t offset, len;
} lm_sql_span;

/* Splits the NUL-terminated `sql` into its statements with the server's grammar, so
 * semicolons in strings, comments, dollar quotes and CREATE RULE bodies stay inside their
 * statement. *spans (malloc'd, caller frees; NULL when *n is 0) gets one entry per
 * statement; a text of only comments and whitespace has none. A syntax error fills err
 * (message, position: 1-based character) and returns LM_ERR. */
int lm_sql_split(const char *sql, lm_sql_span **spans, size_t *n, lm_error *err);

/* Parses `sql` into the server's raw parse tree as JSON ({"version":..,"stmts":[..]}, each
 * with stmt_location and stmt_len in bytes); *json is malloc'd, the caller frees it. A
 * syntax error fills err as lm_sql_split does. */
int lm_sql_parse(const char *sql, char **json, lm_error *err);

#endif
