/* The cold path of loading a revision file without Lua (revscan.c): reads the migration
 * globals of a file written in the plain literal form `luamigrate revision` writes
 * (revision = "...", down_revision = nil | "..." | { "...", ... }, branch_labels and
 * depends_on likewise, top-level function definitions) straight from its bytes. Anything
 * else is left to running the file: the scanner answers only when the answer is the one
 * running the file would give. No Lua, no libpq. */
#ifndef LM_REVSCAN_H
#define LM_REVSCAN_H

#include <stddef.h>

#define LM_REVSCAN_MAX 64 /* entries in a list, as the loader allows */

typedef struct lm_revscan {
  char *buf; /* the decoded strings, each NUL-terminated; freed by lm_revscan_free */
  const char *id;
  const char *down[LM_REVSCAN_MAX], *labels[LM_REVSCAN_MAX], *deps[LM_REVSCAN_MAX];
  size_t nd, nl, ne;
  int body_line; /* the line of the first top-level function (1-based) */
} lm_revscan;

/* Scans the file's bytes s[0..len) (a UTF-8 byte order mark included). Returns 1 with *r
 * filled when the file is plain: running it would define upgrade() and downgrade() and set
 * exactly these globals, or fail only on a syntax error after body_line that this lexer
 * does not look for (docs/performance.md). Returns 0 (nothing to free) when the file must
 * be run instead, LM_ENOMEM when out of memory. */
int lm_revscan_read(const char *s, size_t len, lm_revscan *r);
void lm_revscan_free(lm_revscan *r);

#endif
