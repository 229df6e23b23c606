/* Reading a revision file: its bytes (a regular file under a size limit, opened relative to
 * the versions directory), their checksum, and its docstring. No Lua. */
#include "revfile.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "checksum.h"
#include "revscan.h"

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
  /* *data is the caller's from here (freed below on failure); through the reader-ahead's
   * copy of it into a slot the analyzer loses track of it. */
  // NOLINTNEXTLINE(clang-analyzer-unix.Malloc)
  if (rc == LM_OK) rc = lm_checksum_sha256(*data, *len, sum, err);
  if (rc) {
    free(*data);
    *data = NULL;
  }
  return rc;
}

const char *lm_revfile_path(char **buf, size_t *cap, const char *dir, const char *name) {
  size_t dl = !dir || !*dir || !strcmp(dir, ".") || name[0] == '/' ? 0 : strlen(dir);
  int slash = dl && dir[dl - 1] != '/';
  size_t nl = strlen(name), need = dl + (size_t)slash + nl + 1;
  if (need > *cap) {
    char *v = realloc(*buf, need + 64);
    if (!v) return NULL;
    *buf = v;
    *cap = need + 64;
  }
  if (dl) memcpy(*buf, dir, dl);
  if (slash) (*buf)[dl] = '/';
  memcpy(*buf + dl + (size_t)slash, name, nl + 1);
  return *buf;
}

/* ---- reading ahead ------------------------------------------------------------------ */
/* One mutex guards the counters and the slots' states; the reading itself is done outside
 * it. File j goes to slot j % LM_REVFILE_AHEAD, claimed only while j is within the window
 * after the next file to take, so a slot is always free when claimed. A thread waits on a
 * condition variable only when it has nothing to do, and is signalled only when one is
 * waiting: on a warm page cache a file takes a few microseconds, a futex call about one. */
#ifndef LM_REVFILE_WORKERS
#define LM_REVFILE_WORKERS 3 /* at most; -DLM_REVFILE_WORKERS=0 builds the serial reader */
#endif
#define MAX_WORKERS (LM_REVFILE_WORKERS > 0 ? LM_REVFILE_WORKERS : 1)

struct lm_revfile_ahead {
  int dirfd, scan;
  const char *dir;
  char *const *names;
  size_t n;
  pthread_mutex_t mu;
  pthread_cond_t ready, space;
  size_t next;  /* the next file to claim */
  size_t taken; /* files taken by the caller */
  int want;     /* the caller waits for file `waiting_for` */
  size_t waiting_for;
  int space_waiters; /* workers waiting for the window to move */
  int stop;
  int nworkers;
  pthread_t workers[MAX_WORKERS];
  char *path; /* the caller's path buffer, when it reads a file itself */
  size_t cap;
  size_t ready_until; /* the caller's: files below it were seen ready (a batch) */
  struct slot {
    size_t seq; /* j + 1 once file j is in it; 0 when free */
    lm_revfile_got got;
  } slots[LM_REVFILE_AHEAD];
};

/* Reads file j into g (outside the lock), relative to dirfd; `path` is the reader's own
 * buffer. */
static void read_one(lm_revfile_ahead *a, int dirfd, size_t j, lm_revfile_got *g, char **path,
                     size_t *cap) {
  memset(g, 0, sizeof *g);
  const char *p = lm_revfile_path(path, cap, a->dir, a->names[j]);
  if (!p) {
    g->rc = lm_error_set(&g->err, LM_ENOMEM, "out of memory");
    return;
  }
  g->rc = lm_revfile_read_hashed(dirfd, dirfd == AT_FDCWD ? p : a->names[j], p, &g->data, &g->len,
                                 g->sum, &g->err);
  if (g->rc == LM_OK && a->scan) {
    g->scanned = 1;
    g->scan_rc = lm_revscan_read(g->data, g->len, &g->scan);
  }
}

/* Files claimed at once: the lock is taken, and a waiting caller woken, once for them all. */
#define CLAIM 8

/* Claims the next files (up to CLAIM), reads them and puts them in their slots; called and
 * returns with the lock held. 0 when there is nothing to claim now. */
static int claim_some(lm_revfile_ahead *a, int dirfd, char **path, size_t *cap) {
  if (a->stop || a->next >= a->n || a->next >= a->taken + LM_REVFILE_AHEAD) return 0;
  size_t j = a->next, k = a->n - j, room = a->taken + LM_REVFILE_AHEAD - j;
  if (k > room) k = room;
  if (k > CLAIM) k = CLAIM;
  a->next += k;
  lm_revfile_got g[CLAIM];
  pthread_mutex_unlock(&a->mu);
  for (size_t i = 0; i < k; i++) read_one(a, dirfd, j + i, &g[i], path, cap);
  pthread_mutex_lock(&a->mu);
  for (size_t i = 0; i < k; i++) {
    struct slot *s = &a->slots[(j + i) % LM_REVFILE_AHEAD];
    s->got = g[i];
    s->seq = j + i + 1;
  }
  if (a->want && a->waiting_for >= j && a->waiting_for < j + k) pthread_cond_signal(&a->ready);
  return 1;
}

static void *worker(void *ud) {
  lm_revfile_ahead *a = ud;
  char *path = NULL;
  size_t cap = 0;
  /* Its own descriptor of the directory: in a process with several threads each openat()
   * counts a reference on the directory's file, which the threads would otherwise share. */
  int dirfd = a->dirfd == AT_FDCWD ? -1 : open(a->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dirfd < 0) dirfd = a->dirfd;
  pthread_mutex_lock(&a->mu);
  while (!a->stop && a->next < a->n) {
    if (claim_some(a, dirfd, &path, &cap)) continue;
    a->space_waiters++;
    pthread_cond_wait(&a->space, &a->mu);
    a->space_waiters--;
  }
  pthread_mutex_unlock(&a->mu);
  if (dirfd != a->dirfd) close(dirfd);
  free(path);
  return NULL;
}

/* Threads runnable at this moment, this one included (the fourth field of /proc/loadavg,
 * "running/total"), or -1. A load of 50 milliseconds is to share the processors as they are
 * now: the 1-minute load average still counts a job that ended seconds ago, or the runs of
 * a loop of luamigrate commands before this one. */
static long runnable_now(void) {
  int fd = open("/proc/loadavg", O_RDONLY | O_CLOEXEC);
  if (fd < 0) return -1;
  char buf[128];
  ssize_t n = read(fd, buf, sizeof buf - 1);
  close(fd);
  if (n <= 0) return -1;
  buf[n] = '\0';
  const char *p = buf;
  for (int field = 0; field < 3 && p; field++) {
    p = strchr(p, ' ');
    if (p) p++;
  }
  if (!p) return -1;
  char *endp;
  long r = strtol(p, &endp, 10);
  return endp != p && *endp == '/' && r > 0 ? r : -1;
}

int lm_revfile_ahead_workers(void) {
  /* Only processors to spare: on a machine whose processors are all busy a worker saves no
   * time and costs a fifth more CPU (docs/performance.md). */
  long cpus = sysconf(_SC_NPROCESSORS_ONLN);
  long busy = runnable_now() - 1; /* the others' */
  if (busy < 0) {
    double load = 0;
    busy = getloadavg(&load, 1) == 1 ? (long)(load + 0.5) : 0;
  }
  cpus -= busy;
  return LM_REVFILE_WORKERS <= 0         ? 0
         : cpus - 1 > LM_REVFILE_WORKERS ? LM_REVFILE_WORKERS
                                         : (int)(cpus > 1 ? cpus - 1 : 0);
}

lm_revfile_ahead *lm_revfile_ahead_start(int dirfd, const char *dir, char *const *names, size_t n,
                                         int scan) {
  lm_revfile_ahead *a = calloc(1, sizeof *a);
  if (!a) return NULL;
  a->dirfd = dirfd;
  a->dir = dir;
  a->names = names;
  a->n = n;
  a->scan = scan;
  pthread_mutex_init(&a->mu, NULL);
  pthread_cond_init(&a->ready, NULL);
  pthread_cond_init(&a->space, NULL);
  int want = n < 64 ? 0 : lm_revfile_ahead_workers();
  /* The workers block every signal: SIGINT and SIGTERM stay the loader's thread's, where
   * the cancel handler (cancel.c) expects them. */
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old);
  while (a->nworkers < want && pthread_create(&a->workers[a->nworkers], NULL, worker, a) == 0)
    a->nworkers++;
  pthread_sigmask(SIG_SETMASK, &old, NULL);
  return a;
}

void lm_revfile_ahead_take(lm_revfile_ahead *a, size_t i, lm_revfile_got *out) {
  struct slot *s = &a->slots[i % LM_REVFILE_AHEAD];
  if (i < a->ready_until) { /* seen ready under the lock, and no worker writes it until taken */
    *out = s->got;
    s->seq = 0;
    return;
  }
  pthread_mutex_lock(&a->mu);
  while (s->seq != i + 1) {
    if (claim_some(a, a->dirfd, &a->path, &a->cap)) continue;
    a->want = 1;
    a->waiting_for = i;
    pthread_cond_wait(&a->ready, &a->mu);
    a->want = 0;
  }
  *out = s->got;
  s->seq = 0;
  /* The files after it that are ready too are taken next without the lock: their slots
   * stay theirs, as the window moves on only from the last file taken under it. */
  a->taken = a->ready_until = i + 1;
  while (a->ready_until < i + CLAIM && a->ready_until < a->n &&
         a->slots[a->ready_until % LM_REVFILE_AHEAD].seq == a->ready_until + 1)
    a->ready_until++;
  /* Waiting workers are woken once half the window is free, not for each file taken. */
  if (a->space_waiters && a->next <= a->taken + LM_REVFILE_AHEAD / 2)
    pthread_cond_broadcast(&a->space);
  pthread_mutex_unlock(&a->mu);
}

void lm_revfile_ahead_stop(lm_revfile_ahead *a) {
  if (!a) return;
  pthread_mutex_lock(&a->mu);
  a->stop = 1;
  pthread_cond_broadcast(&a->space);
  pthread_mutex_unlock(&a->mu);
  for (int i = 0; i < a->nworkers; i++) pthread_join(a->workers[i], NULL);
  for (size_t i = 0; i < LM_REVFILE_AHEAD; i++) {
    lm_revfile_got *g = &a->slots[i].got;
    if (!a->slots[i].seq) continue;
    free(g->data);
    lm_error_clear(&g->err);
    if (g->scanned && g->scan_rc == 1) lm_revscan_free(&g->scan);
  }
  pthread_mutex_destroy(&a->mu);
  pthread_cond_destroy(&a->ready);
  pthread_cond_destroy(&a->space);
  free(a->path);
  free(a);
}
