/* The revision cache, versions/.luamigrate_cache: what each revision file declared (id,
 * down_revision, branch_labels, depends_on, docstring) under the SHA-256 of the file's
 * bytes, one line a file in file-name order, so a command over a large project reads and
 * hashes each file instead of running it. This module owns the format (reading, streaming,
 * writing); the loader decides which files count and whether an entry still matches its
 * file. Never trusted across luamigrate versions. No Lua, no libpq. */
#ifndef LM_REVCACHE_H
#define LM_REVCACHE_H

#include <stdio.h>

#include "dag.h"
#include "error.h"
#include "strbuf.h"

/* Cache text is built in an lm_strbuf (a line or many); its sticky oom spoils the write. */

/* Starts a line: the file's name and its checksum (hex, LM_CHECKSUM_HEX - 1 characters). */
void lm_revcache_begin(lm_strbuf *b, const char *name, const char *sum);
/* The rest of a line, from what the file declared... */
void lm_revcache_declared(lm_strbuf *b, const char *id, const char *const *down, size_t nd,
                          const char *const *labels, size_t nl, const char *const *deps, size_t ne,
                          const char *doc);
/* ... or as an old cache line held it (lm_revcache_line.rest, still escaped). */
void lm_revcache_copy(lm_strbuf *b, const char *rest);
/* Ends the line. */
void lm_revcache_end(lm_strbuf *b);
/* Drops what follows b->s[mark] (a line that must not be written). */
void lm_revcache_truncate(lm_strbuf *b, size_t mark);

/* One line of a cache read whole. */
typedef struct lm_revcache_line {
  char *name; /* points into the cache text */
  char *sum;  /* hex SHA-256 of the file's bytes */
  char *rest; /* id \t down \t labels \t deps \t doc, still escaped */
} lm_revcache_line;

typedef struct lm_revcache {
  char *text;
  lm_revcache_line *lines; /* sorted by name */
  size_t n;
} lm_revcache;

/* Parses the cache's text (NULL: no cache), taking it over: c->text is freed with the
 * cache. A foreign or damaged cache is simply empty. */
void lm_revcache_parse(char *text, size_t len, lm_revcache *c);
void lm_revcache_free(lm_revcache *c);

/* Adds the revision an entry's `rest` describes (parsed in place) to the DAG, `path` naming
 * its file; returns its index or a negative code ("damaged revision cache entry"). */
int lm_revcache_add(lm_dag *dag, const char *path, char *rest, lm_error *err);

/* The common case, streamed a line at a time (neither the cache text nor a file list is held
 * in memory): calls entry(ud, name, sum, rest) for each line, in order, with `name` a plain
 * file name (no '/'), names strictly increasing; entry returns 1 to go on. Returns 1 when the
 * cache holds exactly `nfiles` lines, all well formed and all accepted; else 0 (the caller
 * then starts over without the cache). */
int lm_revcache_stream(const char *path, long nfiles,
                       int (*entry)(void *ud, const char *name, const char *sum, char *rest),
                       void *ud);

/* The cache being rewritten, streamed to a temporary file beside it (renamed into place
 * once the whole graph has loaded). Writing is best effort: a writer that cannot open its
 * file drops what it is given (a read-only checkout simply runs every file). */
typedef struct lm_revcache_out {
  FILE *f;
  char *tmp;
  int ok;
} lm_revcache_out;

void lm_revcache_open(lm_revcache_out *w, const char *path);
/* Moves body's text to the file and empties body. */
void lm_revcache_flush(lm_revcache_out *w, lm_strbuf *body);
/* Puts the file in place at `path` when keep (and all went well), else removes it. */
void lm_revcache_close(lm_revcache_out *w, lm_strbuf *body, const char *path, int keep);

#endif
