/* Reading a revision file: bytes, checksum, docstring (revfile.c). No Lua. */
#ifndef LM_REVFILE_H
#define LM_REVFILE_H

#include <stddef.h>

#include "checksum.h"
#include "error.h"

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

#endif
