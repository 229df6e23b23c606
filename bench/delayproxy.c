/* delayproxy: a TCP proxy on 127.0.0.1 that delays every chunk, in both directions, by half
 * a given round-trip time, keeping each direction's order, and counts round trips. For the latency
 * benchmarks (bench/apply.sh --latency, bench/noop.sh): this kernel has no netem. Bench tooling
 * only, not installed.
 *
 *   delayproxy --rtt MS --upstream PORT [--listen PORT] [--count FILE] [--no-handshake]
 *
 * --rtt is the round trip: each chunk is held MS / 2 on its way, each way. A new connection's first
 * client bytes are held one more round trip, as a real network's TCP handshake would have
 * delayed them (--no-handshake: not). The listening port (--listen, default any free one)
 * is printed on stdout's first line. On SIGTERM or SIGINT it prints its counts on stderr
 * (and writes them to --count FILE) and exits:
 *   round_trips N       waits as the client sees them: a burst of client bytes followed by
 *                       server bytes on that connection is one; a round trip begun before
 *                       the last counted one ended (two connections at once) overlaps it
 *                       and is not counted again
 *   connection_trips M  the same summed over connections, overlapping ones included
 *   connections K       connections accepted
 * The handshake's round trip is timed, not counted (no bytes travel). */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

enum { MAX_PAIRS = 256, CHUNK = 65536 };

typedef struct chunk {
  struct chunk *next;
  double due; /* ms, CLOCK_MONOTONIC */
  size_t len, off;
  int eof; /* a half-close to pass on */
  char data[];
} chunk;

/* One direction: bytes read from `from`, written to `to` once due. */
typedef struct flow {
  int from, to;
  chunk *head, *tail;
  int read_eof; /* `from` said EOF (queued as an eof chunk) */
  int done;     /* the eof chunk was passed on */
} flow;

typedef struct pair {
  int used;
  flow up, down; /* up: client -> server */
  int first;     /* no client bytes yet: the handshake's extra round trip is still due */
  int waiting;   /* client bytes since the server's last */
  double wait_start;
} pair;

static pair pairs[MAX_PAIRS];
static double delay_ms = 0; /* one way: half the round trip */
static int handshake = 1;
static long round_trips = 0, connection_trips = 0, connections = 0;
static double last_counted = -1; /* when the last counted round trip ended */
static volatile sig_atomic_t stop = 0;

static void on_signal(int sig) {
  (void)sig;
  stop = 1;
}

static double now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static int nonblocking(int fd) {
  int fl = fcntl(fd, F_GETFL);
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  return fl < 0 ? -1 : fcntl(fd, F_SETFL, fl | O_NONBLOCK);
}

static int push(flow *f, const char *data, size_t len, int eof, double due) {
  chunk *c = malloc(sizeof *c + len);
  if (!c) return -1;
  c->next = NULL;
  /* never before the one ahead of it: the order is kept */
  c->due = f->tail && f->tail->due > due ? f->tail->due : due;
  c->len = len;
  c->off = 0;
  c->eof = eof;
  if (len) memcpy(c->data, data, len);
  if (f->tail)
    f->tail->next = c;
  else
    f->head = c;
  f->tail = c;
  return 0;
}

static void flow_free(flow *f) {
  while (f->head) {
    chunk *n = f->head->next;
    free(f->head);
    f->head = n;
  }
  f->tail = NULL;
}

static void pair_close(pair *p) {
  close(p->up.from);
  close(p->up.to);
  flow_free(&p->up);
  flow_free(&p->down);
  memset(p, 0, sizeof *p);
}

/* Counts a round trip: server bytes after client bytes on this connection. */
static void note_read(pair *p, int client, double t) {
  if (client) {
    if (!p->waiting) {
      p->waiting = 1;
      p->wait_start = t;
    }
    return;
  }
  if (!p->waiting) return; /* more of the same reply, or unsolicited */
  p->waiting = 0;
  connection_trips++;
  if (p->wait_start >= last_counted) {
    round_trips++;
    last_counted = t;
  }
}

/* Reads what `f->from` has; -1 when the pair must close. */
static int pump_in(pair *p, flow *f, int client) {
  static char buf[CHUNK];
  ssize_t n = read(f->from, buf, sizeof buf);
  if (n < 0) return errno == EAGAIN || errno == EINTR ? 0 : -1;
  double t = now_ms(), due = t + delay_ms;
  if (n == 0) {
    f->read_eof = 1;
    return push(f, NULL, 0, 1, due);
  }
  note_read(p, client, t);
  if (client && p->first) {
    p->first = 0;
    if (handshake) due += 2 * delay_ms;
  }
  return push(f, buf, (size_t)n, 0, due);
}

/* Writes the due chunks of f; -1 when the pair must close. */
static int pump_out(flow *f, double t) {
  while (f->head && f->head->due <= t) {
    chunk *c = f->head;
    if (c->eof) {
      shutdown(f->to, SHUT_WR);
      f->done = 1;
    } else {
      ssize_t w = write(f->to, c->data + c->off, c->len - c->off);
      if (w < 0) return errno == EAGAIN || errno == EINTR ? 0 : -1;
      c->off += (size_t)w;
      if (c->off < c->len) return 0;
    }
    f->head = c->next;
    if (!f->head) f->tail = NULL;
    free(c);
  }
  return 0;
}

static int connect_upstream(int port) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return -1;
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, (struct sockaddr *)&a, sizeof a) < 0 || nonblocking(fd) < 0) {
    close(fd);
    return -1;
  }
  return fd;
}

static void accept_one(int lfd, int upstream) {
  int cfd = accept(lfd, NULL, NULL);
  if (cfd < 0) return;
  int sfd = connect_upstream(upstream);
  pair *p = NULL;
  for (int i = 0; i < MAX_PAIRS && !p; i++)
    if (!pairs[i].used) p = &pairs[i];
  if (sfd < 0 || !p || nonblocking(cfd) < 0) {
    if (sfd < 0) perror("delayproxy: connect upstream");
    close(cfd);
    if (sfd >= 0) close(sfd);
    return;
  }
  connections++;
  *p = (pair){.used = 1, .first = 1};
  p->up = (flow){.from = cfd, .to = sfd};
  p->down = (flow){.from = sfd, .to = cfd};
}

static void report(const char *file) {
  char text[256];
  snprintf(text, sizeof text, "round_trips %ld\nconnection_trips %ld\nconnections %ld\n",
           round_trips, connection_trips, connections);
  fputs(text, stderr);
  if (!file) return;
  FILE *f = fopen(file, "w");
  if (!f) {
    perror(file);
    return;
  }
  fputs(text, f);
  fclose(f);
}

static int usage(void) {
  fputs(
      "usage: delayproxy --rtt MS --upstream PORT [--listen PORT] [--count FILE] "
      "[--no-handshake]\n",
      stderr);
  return 2;
}

/* The poll timeout: until the earliest due chunk (to the microsecond: at 1 ms RTT a
 * millisecond's rounding would be half the delay), at most 1 s. */
static struct timespec next_timeout(double t) {
  double first = -1;
  for (int i = 0; i < MAX_PAIRS; i++) {
    if (!pairs[i].used) continue;
    const flow *fs[2] = {&pairs[i].up, &pairs[i].down};
    for (int k = 0; k < 2; k++)
      if (fs[k]->head && (first < 0 || fs[k]->head->due < first)) first = fs[k]->head->due;
  }
  double ms = first < 0 ? 1000 : first - t;
  if (ms < 0) ms = 0;
  if (ms > 1000) ms = 1000;
  long us = (long)(ms * 1000);
  return (struct timespec){.tv_sec = us / 1000000, .tv_nsec = (us % 1000000) * 1000};
}

int main(int argc, char **argv) {
  int listen_port = 0, upstream = 0;
  const char *count_file = NULL;
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--rtt") && i + 1 < argc)
      delay_ms = strtod(argv[++i], NULL) / 2;
    else if (!strcmp(argv[i], "--upstream") && i + 1 < argc)
      upstream = (int)strtol(argv[++i], NULL, 10);
    else if (!strcmp(argv[i], "--listen") && i + 1 < argc)
      listen_port = (int)strtol(argv[++i], NULL, 10);
    else if (!strcmp(argv[i], "--count") && i + 1 < argc)
      count_file = argv[++i];
    else if (!strcmp(argv[i], "--no-handshake"))
      handshake = 0;
    else
      return usage();
  }
  if (upstream <= 0 || delay_ms < 0) return usage();
  signal(SIGPIPE, SIG_IGN);
  struct sigaction sa = {.sa_handler = on_signal};
  sigaction(SIGTERM, &sa, NULL);
  sigaction(SIGINT, &sa, NULL);

  int lfd = socket(AF_INET, SOCK_STREAM, 0), one = 1;
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)listen_port)};
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t alen = sizeof a;
  setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (lfd < 0 || bind(lfd, (struct sockaddr *)&a, sizeof a) < 0 || listen(lfd, 64) < 0 ||
      getsockname(lfd, (struct sockaddr *)&a, &alen) < 0 || nonblocking(lfd) < 0) {
    perror("delayproxy: listen");
    return 1;
  }
  printf("%d\n", ntohs(a.sin_port));
  fflush(stdout);

  struct pollfd fds[1 + 2 * MAX_PAIRS];
  int owner[1 + 2 * MAX_PAIRS]; /* the pair of each fds[] entry (2i: up.from, 2i+1: down.from) */
  while (!stop) {
    double t = now_ms();
    int nf = 0;
    fds[nf++] = (struct pollfd){.fd = lfd, .events = POLLIN};
    for (int i = 0; i < MAX_PAIRS; i++) {
      pair *p = &pairs[i];
      if (!p->used) continue;
      /* The writable side is polled only while a due chunk waits for room. */
      short up_out = p->down.head && p->down.head->due <= t ? POLLOUT : 0;
      short down_out = p->up.head && p->up.head->due <= t ? POLLOUT : 0;
      /* A side that said EOF and has nothing due is left out: its POLLHUP would spin. */
      owner[nf] = 2 * i;
      fds[nf++] = (struct pollfd){.fd = p->up.read_eof && !up_out ? -1 : p->up.from,
                                  .events = (short)((p->up.read_eof ? 0 : POLLIN) | up_out)};
      owner[nf] = 2 * i + 1;
      fds[nf++] = (struct pollfd){.fd = p->down.read_eof && !down_out ? -1 : p->down.from,
                                  .events = (short)((p->down.read_eof ? 0 : POLLIN) | down_out)};
    }
    struct timespec timeout = next_timeout(t);
    int r = ppoll(fds, (nfds_t)nf, &timeout, NULL);
    if (r < 0 && errno != EINTR) {
      perror("delayproxy: poll");
      break;
    }
    if (r > 0 && (fds[0].revents & POLLIN)) accept_one(lfd, upstream);
    for (int k = 1; r > 0 && k < nf; k++) {
      if (!(fds[k].revents & (POLLIN | POLLHUP | POLLERR))) continue;
      pair *p = &pairs[owner[k] / 2];
      if (!p->used) continue;
      int client = owner[k] % 2 == 0;
      flow *f = client ? &p->up : &p->down;
      if (!f->read_eof && pump_in(p, f, client) < 0) pair_close(p);
    }
    t = now_ms();
    for (int i = 0; i < MAX_PAIRS; i++) {
      pair *p = &pairs[i];
      if (!p->used) continue;
      if (pump_out(&p->up, t) < 0 || pump_out(&p->down, t) < 0 || (p->up.done && p->down.done))
        pair_close(p);
    }
  }
  report(count_file);
  return 0;
}
