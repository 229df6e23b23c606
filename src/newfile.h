/* Creating a new file (newfile.c). */
#ifndef LM_NEWFILE_H
#define LM_NEWFILE_H

#include "error.h"

/* Writes `text` to a new file at path, created 0644 (the umask can take permissions away,
 * never add them); an existing file or a symlink in its place is a usage error. */
int lm_newfile_write(const char *path, const char *text, lm_error *err);

#endif
