/* Reading a revision file: bytes, checksum, docstring (revfile.c). No Lua. */
#ifndef LM_REVFILE_H
#define LM_REVFILE_H

#include <stddef.h>

#include "checksum.h"
#include "error.h"
#include "revscan.h"

/* The whole file at `path` into *data (NUL-terminated, the caller frees it) and *len.
 * Refuses what is not a regular file (a FIFO is never waited on) and files over 64 MiB. */
int lm_read_file(const char *path, char **data, size_t *len, lm_error *err);
/* lm_read_file for `name` relative to the directory dirfd (AT_FDCWD: the current one);
 * messages name `path`. Loading opens every revision file, so it opens them relative to
 * versions/ and the kernel walks one name instead of the whole path each time. */
int lm_revfile_read_at(int dirfd, const char *name, const char *path, char **data, size_t *len,
                       lm_error *err);
/* lm_revfile_read_at, and the bytes' hex SHA-256 into sum (LM_CHECKSUM_HEX bytes). */
int lm_revfile_read_hashed(int dirfd, const char *name, const char *path, char **data, size_t *len,
                           char sum[LM_CHECKSUM_HEX], lm_error *err);
/* The length of a UTF-8 byte order mark at s (0 or 3): editors on Windows write one, and a
 * file that starts with it is still the same Lua text (lua.c's loadfile skips it too). */
size_t lm_revfile_bom(const char *s, size_t len);
/* The leading long comment (--[[ ... ]] or --[==[ ... ]==]), trimmed, with CRLF line ends
 * made LF; "" if none; NULL when out of memory. The caller frees it. */
char *lm_revfile_doc(const char *s, size_t len);

/* The path messages name for `name` in directory `dir`, as lm_path_join would make it, into
 * *buf (grown as needed, the caller frees it); NULL when out of memory. */
const char *lm_revfile_path(char **buf, size_t *cap, const char *dir, const char *name);

/* Reading many revision files ahead of their use: names[0..n) (relative to dirfd, named
 * in messages as lm_revfile_path(dir, name) makes them) are read, hashed and, with `scan`,
 * scanned (lm_revscan_read) by worker threads, one fewer than the machine's processors
 * (none on one), while the caller takes the results in order; taking a file that is not
 * ready reads the next one itself meanwhile. At most LM_REVFILE_AHEAD files are held
 * ahead of the one taken. Opening, reading and closing a file is most of the time a cold
 * load takes (docs/performance.md), and each file is independent of the others. */
#define LM_REVFILE_AHEAD 256

typedef struct lm_revfile_ahead lm_revfile_ahead;

/* One file as read. */
typedef struct lm_revfile_got {
  char *data; /* NUL-terminated; the caller frees it */
  size_t len;
  lm_error err; /* the caller clears it */
  lm_revscan scan;
  int rc;      /* LM_OK, or why it could not be read (err) */
  int scanned; /* 1 when scanned (with `scan`, the file read) */
  int scan_rc; /* then lm_revscan_read's answer: 1 with scan filled (the caller frees it
                  with lm_revscan_free), 0 or LM_ENOMEM */
  char sum[LM_CHECKSUM_HEX];
} lm_revfile_got;

/* The workers lm_revfile_ahead_start starts for 64 files or more (below, none). */
int lm_revfile_ahead_workers(void);
/* NULL when out of memory. names, dir and dirfd stay valid until lm_revfile_ahead_stop. */
lm_revfile_ahead *lm_revfile_ahead_start(int dirfd, const char *dir, char *const *names, size_t n,
                                         int scan);
/* The result for names[i]; i must be 0, then each time one more. */
void lm_revfile_ahead_take(lm_revfile_ahead *a, size_t i, lm_revfile_got *out);
/* Stops the workers and frees what was read and not taken. NULL is allowed. */
void lm_revfile_ahead_stop(lm_revfile_ahead *a);

#endif
