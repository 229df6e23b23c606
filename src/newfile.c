/* Creating a new file the user asked for (revision files, init's files, inspect -o): never
 * over an existing file or a symlink, 0644, removed again when a write fails. */
#include "newfile.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

/* A new file (an existing one or a symlink in its place is an error), created 0644: the
 * umask can take permissions away, never add group or world write. */
int lm_newfile_write(const char *path, const char *text, lm_error *err) {
  int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (fd < 0) return lm_error_set(err, LM_EUSAGE, "cannot create %s: %s", path, strerror(errno));
  size_t len = strlen(text), off = 0;
  while (off < len) {
    ssize_t w = write(fd, text + off, len - off);
    if (w < 0) {
      if (errno == EINTR) continue;
      int e = errno;
      close(fd);
      unlink(path);
      return lm_error_set(err, LM_ERR, "cannot write %s: %s", path, strerror(e));
    }
    off += (size_t)w;
  }
  if (close(fd) != 0)
    return lm_error_set(err, LM_ERR, "cannot write %s: %s", path, strerror(errno));
  return LM_OK;
}
