/* Reading a revision file: its bytes (a regular file under a size limit, opened relative to
 * the versions directory), their checksum, and its docstring. No Lua. */
#include "revfile.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "checksum.h"

/* Revision files beyond this are refused rather than read into memory. */
#define LM_MAX_FILE 67108864u /* 64 MiB */

int lm_revfile_read_at(int dirfd, const char *name, const char *path, char **data, size_t *len,
                       lm_error *err) {
  *data = NULL;
  *len = 0;
  /* O_NONBLOCK: opening a FIFO (or a device) for reading would otherwise wait for a writer
   * before the file type could be checked; on a regular file it changes nothing. */
  int fd = openat(dirfd, name, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
  if (fd < 0) return lm_error_set(err, LM_EUSAGE, "%s: cannot read: %s", path, strerror(errno));
  struct stat st;
  if (fstat(fd, &st) != 0) {
    int e = errno;
    close(fd);
    return lm_error_set(err, LM_EUSAGE, "%s: cannot read: %s", path, strerror(e));
  }
  if (!S_ISREG(st.st_mode)) {
    close(fd);
    return lm_error_set(err, LM_EUSAGE,
                        "%s: not a regular file (%s); luamigrate reads only regular files", path,
                        S_ISFIFO(st.st_mode)   ? "a FIFO"
                        : S_ISDIR(st.st_mode)  ? "a directory"
                        : S_ISSOCK(st.st_mode) ? "a socket"
                                               : "a device or other special file");
  }
  if ((unsigned long long)st.st_size > LM_MAX_FILE) {
    close(fd);
    return lm_error_set(err, LM_EUSAGE, "%s: file too large (%lld bytes; the limit is %u)", path,
                        (long long)st.st_size, LM_MAX_FILE);
  }
  size_t size = (size_t)st.st_size, got = 0;
  char *buf = malloc(size + 1);
  if (!buf) {
    close(fd);
    return lm_error_set(err, LM_ENOMEM, "out of memory reading %s", path);
  }
  while (got < size) {
    ssize_t r = read(fd, buf + got, size - got);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) break;
    got += (size_t)r;
  }
  close(fd);
  if (got != size) {
    free(buf);
    return lm_error_set(err, LM_EUSAGE, "%s: read error", path);
  }
  buf[size] = '\0';
  *data = buf;
  *len = size;
  return LM_OK;
}

int lm_read_file(const char *path, char **data, size_t *len, lm_error *err) {
  return lm_revfile_read_at(AT_FDCWD, path, path, data, len, err);
}

size_t lm_revfile_bom(const char *s, size_t len) {
  return len >= 3 && !memcmp(s, "\xEF\xBB\xBF", 3) ? 3 : 0;
}

/* Removes every CR that ends a line (a file saved with CRLF line ends reads as with LF). */
static void strip_crlf(char *s) {
  char *w = s;
  for (const char *r = s; *r; r++)
    if (!(r[0] == '\r' && r[1] == '\n')) *w++ = *r;
  *w = '\0';
}

char *lm_revfile_doc(const char *s, size_t len) {
  size_t bom = lm_revfile_bom(s, len);
  s += bom;
  len -= bom;
  const char *end = s + len, *p = s;
  while (p < end && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')) p++;
  if (end - p < 4 || strncmp(p, "--[", 3) != 0) return strdup("");
  p += 3;
  size_t level = 0;
  while (p < end && *p == '=') level++, p++;
  if (p >= end || *p != '[') return strdup("");
  p++;
  const char *body = p;
  for (; p < end; p++) {
    if (*p != ']') continue;
    const char *q = p + 1;
    size_t l = 0;
    while (q < end && *q == '=') l++, q++;
    if (l == level && q < end && *q == ']') break;
  }
  const char *stop = p < end ? p : end;
  while (body < stop && (*body == ' ' || *body == '\t' || *body == '\n' || *body == '\r')) body++;
  while (stop > body &&
         (stop[-1] == ' ' || stop[-1] == '\t' || stop[-1] == '\n' || stop[-1] == '\r'))
    stop--;
  char *doc = strndup(body, (size_t)(stop - body));
  if (doc) strip_crlf(doc);
  return doc;
}

int lm_revfile_read_hashed(int dirfd, const char *name, const char *path, char **data, size_t *len,
                           char sum[LM_CHECKSUM_HEX], lm_error *err) {
  int rc = lm_revfile_read_at(dirfd, name, path, data, len, err);
  if (rc == LM_OK) rc = lm_checksum_sha256(*data, *len, sum, err);
  if (rc) {
    free(*data);
    *data = NULL;
  }
  return rc;
}
