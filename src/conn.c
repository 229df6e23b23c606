/* libpq connections: open, execute with exact result-status checks, turn server errors
 * into lm_error, print notices, and describe connection strings without passwords. */
#include "conn.h"

#include <libpq-events.h>

#include "cancel.h"
#include "log.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static lm_conn *state(PGconn *conn);

static void notice_receiver(void *arg, const PGresult *res) {
  (void)arg;
  lm_log_notice(PQresultErrorField(res, PG_DIAG_SEVERITY),
                PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY),
                PQresultErrorField(res, PG_DIAG_MESSAGE_DETAIL),
                PQresultErrorField(res, PG_DIAG_MESSAGE_HINT));
}

/* libpq's own messages end with a newline and may span lines; keep the first line as the
 * message and the rest as detail. */
static void set_libpq_message(lm_error *err, int code, const char *prefix, const char *msg) {
  char *copy = strdup(msg ? msg : "");
  if (!copy) {
    lm_error_set(err, LM_ENOMEM, "out of memory");
    return;
  }
  size_t n = strlen(copy);
  while (n > 0 && (copy[n - 1] == '\n' || copy[n - 1] == ' ')) copy[--n] = '\0';
  char *nl = strchr(copy, '\n');
  if (nl) {
    *nl = '\0';
    lm_error_setfield(&err->detail, nl + 1);
  }
  lm_error_set(err, code, "%s%s", prefix, copy);
  free(copy);
}

/* The error of a connection attempt that failed, naming where (without a password): `why`
 * is libpq's message (may span lines). */
static void connect_error(const char *conninfo, const char *why, lm_error *err) {
  char *where = lm_conn_redact(conninfo);
  char prefix[1024];
  snprintf(prefix, sizeof prefix, "cannot connect to %s: ", where ? where : "the database");
  free(where);
  set_libpq_message(err, LM_ECONN, prefix, why);
}

/* connect_timeout as libpq reads it (the conninfo, PGCONNECT_TIMEOUT): seconds, 0 for none.
 * PQconnectPoll leaves it to the caller. libpq's own floor of 2 s applies. */
static double connect_timeout(PGconn *conn) {
  PQconninfoOption *opts = PQconninfo(conn);
  double t = 0;
  for (PQconninfoOption *o = opts; o && o->keyword; o++)
    if (!strcmp(o->keyword, "connect_timeout") && o->val && *o->val) t = strtod(o->val, NULL);
  PQconninfoFree(opts);
  return t <= 0 ? 0 : t < 2 ? 2 : t;
}

/* Drives the n connection attempts in c[] together until each is made or one fails: each
 * waits on its socket as PQconnectPoll asks, all in one poll(), so their round trips
 * (TCP, TLS, start-up, authentication) overlap. Returns the index of a failed one, or -1. */
static int connect_all(PGconn **c, int n, const atomic_int *stop, const char **why) {
  PostgresPollingStatusType st[LM_CONN_OPEN_MAX];
  double deadline = 0;
  for (int i = 0; i < n; i++) {
    st[i] = PGRES_POLLING_WRITING; /* as libpq's docs say to start */
    double t = connect_timeout(c[i]);
    if (t > 0 && (deadline == 0 || t * 1e3 < deadline)) deadline = t * 1e3;
  }
  if (deadline > 0) deadline += lm_log_clock_ms();
  *why = NULL;
  for (;;) {
    struct pollfd fds[LM_CONN_OPEN_MAX];
    int waiting = 0;
    for (int i = 0; i < n; i++) {
      fds[i] = (struct pollfd){.fd = -1};
      if (st[i] == PGRES_POLLING_OK) continue;
      if (st[i] == PGRES_POLLING_FAILED || PQsocket(c[i]) < 0) return i;
      fds[i].fd = PQsocket(c[i]);
      fds[i].events = st[i] == PGRES_POLLING_READING ? POLLIN : POLLOUT;
      waiting++;
    }
    if (!waiting) return -1;
    /* In slices, so a signal (seen by another thread, when connecting in the background)
     * stops the wait. */
    int timeout = 100;
    if (deadline > 0) {
      double left = deadline - lm_log_clock_ms();
      if (left <= 0) {
        *why = "timeout expired";
        for (int i = 0; i < n; i++)
          if (st[i] != PGRES_POLLING_OK) return i;
      }
      if (left < timeout) timeout = (int)left + 1;
    }
    int r = poll(fds, (nfds_t)n, timeout);
    if (lm_cancel_requested() || (stop && atomic_load(stop))) {
      *why = "interrupted by signal";
      for (int i = 0; i < n; i++)
        if (st[i] != PGRES_POLLING_OK) return i;
    }
    for (int i = 0; r > 0 && i < n; i++)
      if (fds[i].fd >= 0 && fds[i].revents) st[i] = PQconnectPoll(c[i]);
  }
}

/* Whether conninfo (or, where it names none, PGHOST/PGHOSTADDR) lists several hosts
 * ("host=a,b", "postgresql://a,b/db"). libpq applies connect_timeout to each host (and
 * address) in turn, moving to the next when one does not answer in time; that needs its own
 * connect loop (PQconnectdbParams), as PQconnectPoll gives no way to skip a host. */
static int multi_host(const char *conninfo) {
  const char *host = NULL, *hostaddr = NULL;
  PQconninfoOption *opts = conninfo && *conninfo ? PQconninfoParse(conninfo, NULL) : NULL;
  for (PQconninfoOption *o = opts; o && o->keyword; o++) {
    if (!strcmp(o->keyword, "host") && o->val && *o->val) host = o->val;
    if (!strcmp(o->keyword, "hostaddr") && o->val && *o->val) hostaddr = o->val;
  }
  if (!host) host = getenv("PGHOST");
  if (!hostaddr) hostaddr = getenv("PGHOSTADDR");
  int many = (host && strchr(host, ',')) || (hostaddr && strchr(hostaddr, ','));
  PQconninfoFree(opts);
  return many;
}

/* lm_conn_open_n, given up early once *stop is set (NULL: never; a multi-host conninfo's
 * connections, opened one after the other by libpq's own loop, are not given up). */
static int open_n(const char *conninfo, PGconn **out, int n, const atomic_int *stop,
                  lm_error *err) {
  for (int i = 0; i < n; i++) out[i] = NULL;
  if (n < 1 || n > LM_CONN_OPEN_MAX)
    return lm_error_set(err, LM_ERR, "internal error: %d connections at once", n);
  if (conninfo && *conninfo && lm_conn_check_url(conninfo, err)) return err->code;
  const char *keys[] = {"dbname", "fallback_application_name", NULL};
  const char *vals[] = {conninfo && *conninfo ? conninfo : NULL, "luamigrate", NULL};
  int failed = -1;
  const char *why = NULL;
  if (multi_host(conninfo)) {
    for (int i = 0; i < n && failed < 0; i++) {
      out[i] = PQconnectdbParams(keys, vals, 1);
      if (!out[i] || PQstatus(out[i]) == CONNECTION_BAD) failed = i;
    }
  } else {
    for (int i = 0; i < n && failed < 0; i++) {
      out[i] = PQconnectStartParams(keys, vals, 1);
      if (!out[i] || PQstatus(out[i]) == CONNECTION_BAD) failed = i;
    }
    if (failed < 0) failed = connect_all(out, n, stop, &why);
  }
  if (failed >= 0) {
    if (!out[failed])
      lm_error_set(err, LM_ENOMEM, "out of memory while connecting");
    else
      connect_error(conninfo, why ? why : PQerrorMessage(out[failed]), err);
    for (int i = 0; i < n; i++) {
      if (out[i]) PQfinish(out[i]);
      out[i] = NULL;
    }
    return err->code ? err->code : LM_ECONN;
  }
  for (int i = 0; i < n; i++) {
    PQsetNoticeReceiver(out[i], notice_receiver, NULL);
    if (!state(out[i])) {
      for (int k = 0; k < n; k++) {
        PQfinish(out[k]);
        out[k] = NULL;
      }
      return lm_error_set(err, LM_ENOMEM, "out of memory while connecting");
    }
  }
  return LM_OK;
}

int lm_conn_open_n(const char *conninfo, PGconn **out, int n, lm_error *err) {
  return open_n(conninfo, out, n, NULL, err);
}

PGconn *lm_conn_open(const char *conninfo, lm_error *err) {
  PGconn *conn = NULL;
  return lm_conn_open_n(conninfo, &conn, 1, err) == LM_OK ? conn : NULL;
}

struct lm_conn_pending {
  pthread_t thread;
  char *conninfo; /* NULL: libpq's defaults */
  int n, rc;
  atomic_int stop; /* abandoned: give up */
  PGconn *out[LM_CONN_OPEN_MAX];
  lm_error err;
};

static void *open_in_background(void *arg) {
  lm_conn_pending *p = arg;
  sigset_t all;
  sigfillset(&all);
  pthread_sigmask(SIG_BLOCK, &all, NULL); /* signals are the main thread's to handle */
  p->rc = open_n(p->conninfo, p->out, p->n, &p->stop, &p->err);
  return NULL;
}

lm_conn_pending *lm_conn_open_begin(const char *conninfo, int n) {
  lm_conn_pending *p = calloc(1, sizeof *p);
  if (!p || n < 1 || n > LM_CONN_OPEN_MAX) {
    free(p);
    return NULL;
  }
  p->n = n;
  atomic_init(&p->stop, 0);
  if ((conninfo && !(p->conninfo = strdup(conninfo))) ||
      pthread_create(&p->thread, NULL, open_in_background, p) != 0) {
    free(p->conninfo);
    free(p);
    return NULL;
  }
  return p;
}

int lm_conn_open_end(lm_conn_pending *p, PGconn **out, int n, lm_error *err) {
  pthread_join(p->thread, NULL);
  int rc = p->rc;
  for (int i = 0; i < n; i++) out[i] = NULL;
  if (rc == LM_OK && n != p->n) { /* a caller's bug: it asks for what it began */
    for (int i = 0; i < p->n; i++) PQfinish(p->out[i]);
    rc = lm_error_set(err, LM_ERR, "internal error: %d connections begun, %d asked for", p->n, n);
  } else if (rc == LM_OK) {
    for (int i = 0; i < n; i++) out[i] = p->out[i];
  } else {
    lm_error_move(err, &p->err); /* handed over */
  }
  lm_error_clear(&p->err);
  free(p->conninfo);
  free(p);
  return rc;
}

void lm_conn_open_abandon(lm_conn_pending *p) {
  if (!p) return;
  atomic_store(&p->stop, 1); /* a connection that hangs need not be waited for */
  PGconn *out[LM_CONN_OPEN_MAX] = {NULL};
  lm_error ignore = {0};
  const int n = p->n;
  if (lm_conn_open_end(p, out, n, &ignore) == LM_OK)
    for (int i = 0; i < n; i++) PQfinish(out[i]);
  lm_error_clear(&ignore);
}

int lm_error_from_result(lm_error *err, PGconn *conn, const PGresult *res, const char *sql) {
  if (!err) return LM_ESQL;
  const char *primary = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) : NULL;
  const char *sqlstate = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
  int code = LM_ESQL;
  if (PQstatus(conn) == CONNECTION_BAD) code = LM_ECONN;
  if (primary) {
    lm_error_set(err, code, "%s", primary);
  } else {
    const char *m = res ? PQresultErrorMessage(res) : "";
    if (!m || !*m) m = PQerrorMessage(conn);
    set_libpq_message(err, code, "", m);
  }
  lm_error_setfield(&err->sqlstate, sqlstate);
  if (res) {
    lm_error_setfield(&err->detail, PQresultErrorField(res, PG_DIAG_MESSAGE_DETAIL));
    lm_error_setfield(&err->hint, PQresultErrorField(res, PG_DIAG_MESSAGE_HINT));
    lm_error_setfield(&err->context, PQresultErrorField(res, PG_DIAG_CONTEXT));
    const char *pos = PQresultErrorField(res, PG_DIAG_STATEMENT_POSITION);
    err->position = pos ? (int)strtol(pos, NULL, 10) : 0;
  }
  lm_error_setfield(&err->statement, sql);
  return code;
}

/* What one connection carries between calls, as libpq's instance data of conn_event (the
 * connection owns it: PQfinish frees it through PGEVT_CONNDESTROY). */
typedef struct queued_stmt {
  char *sql, *where;
} queued_stmt;

struct lm_conn {
  int begin_deferred; /* a BEGIN travels with the next statement */
  int last_txc;       /* LM_TXC_* of the last simple-protocol string */
  lm_conn_guard_fn guard;
  void *guard_ud;
  int pipe_on;        /* lm_conn_pipe_enable */
  int pipe_suspended; /* > 0: each statement waits for its result */
  size_t nq;
  queued_stmt q[LM_CONN_PIPE_MAX];
};

static void clear_queue(lm_conn *c) {
  for (size_t i = 0; i < c->nq; i++) {
    free(c->q[i].sql);
    free(c->q[i].where);
  }
  c->nq = 0;
}

static int conn_event(PGEventId id, void *info, void *pass) {
  (void)pass;
  if (id == PGEVT_REGISTER) {
    PGconn *conn = ((PGEventRegister *)info)->conn;
    lm_conn *c = calloc(1, sizeof *c);
    return c && PQsetInstanceData(conn, conn_event, c);
  }
  if (id == PGEVT_CONNDESTROY) {
    lm_conn *c = PQinstanceData(((PGEventConnDestroy *)info)->conn, conn_event);
    if (c) clear_queue(c);
    free(c);
  }
  return 1;
}

/* conn's state, made on first use; NULL only for a NULL conn or out of memory. */
static lm_conn *state(PGconn *conn) {
  if (!conn) return NULL;
  lm_conn *c = PQinstanceData(conn, conn_event);
  if (!c && PQregisterEventProc(conn, conn_event, "luamigrate", NULL))
    c = PQinstanceData(conn, conn_event);
  return c;
}

/* The held-back BEGIN, taken: 1 when there was one (it is to be sent now). */
static int take_begin(lm_conn *c) {
  int with_begin = c && c->begin_deferred;
  if (c) c->begin_deferred = 0;
  return with_begin;
}

static void set_txc(lm_conn *c, int txc) {
  if (c) c->last_txc = txc;
}

int lm_conn_defer_begin(PGconn *conn, lm_error *err) {
  lm_conn *c = state(conn);
  if (!c) return lm_error_set(err, LM_ENOMEM, "out of memory");
  c->begin_deferred = 1;
  return LM_OK;
}

int lm_conn_begin_pending(PGconn *conn) {
  lm_conn *c = conn ? PQinstanceData(conn, conn_event) : NULL;
  return c && c->begin_deferred;
}

void lm_conn_forget_begin(PGconn *conn) {
  take_begin(conn ? PQinstanceData(conn, conn_event) : NULL);
}

void lm_conn_set_guard(PGconn *conn, lm_conn_guard_fn check, void *ud) {
  lm_conn *c = check ? state(conn) : (conn ? PQinstanceData(conn, conn_event) : NULL);
  if (!c) return;
  c->guard = check;
  c->guard_ud = check ? ud : NULL;
}

static int guarded(lm_conn *c, const char *sql, lm_error *err) {
  if (!c || !c->guard) return LM_OK;
  int rc = c->guard(c->guard_ud, err);
  if (rc) lm_error_setfield(&err->statement, sql);
  return rc;
}

static int libpq_error(PGconn *conn, const char *sql, lm_error *err) {
  set_libpq_message(err, PQstatus(conn) == CONNECTION_BAD ? LM_ECONN : LM_ESQL, "",
                    PQerrorMessage(conn));
  lm_error_setfield(&err->statement, sql);
  return err->code;
}

/* Checks r (cleared here unless handed out through res), the last result of sql. */
static int finish(PGconn *conn, PGresult *r, const char *sql, PGresult **res, lm_error *err) {
  ExecStatusType st = r ? PQresultStatus(r) : PGRES_FATAL_ERROR;
  if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK) {
    if (res)
      *res = r;
    else
      PQclear(r);
    return LM_OK;
  }
  int rc;
  if (st == PGRES_FATAL_ERROR || st == PGRES_NONFATAL_ERROR) {
    rc = lm_error_from_result(err, conn, r, sql);
  } else {
    /* COPY, pipeline or empty-query results: nothing a migration statement should yield. */
    rc = lm_error_set(err, LM_ESQL, "unexpected result status %s", PQresStatus(st));
    lm_error_setfield(&err->statement, sql);
    if (st == PGRES_COPY_IN || st == PGRES_COPY_BOTH) PQputCopyEnd(conn, "not supported");
    if (st == PGRES_COPY_IN || st == PGRES_COPY_OUT || st == PGRES_COPY_BOTH) {
      PGresult *rest;
      while ((rest = PQgetResult(conn)) != NULL) PQclear(rest);
    }
  }
  PQclear(r);
  return rc;
}

int lm_conn_last_tx_control(PGconn *conn) {
  lm_conn *c = conn ? PQinstanceData(conn, conn_event) : NULL;
  return c ? c->last_txc : 0;
}

/* Notes the transaction control among the commands of one simple-protocol string: the last
 * COMMIT or ROLLBACK seen (LM_TXC_COMMIT / LM_TXC_ROLLBACK) and whether a BEGIN came after it
 * (LM_TXC_BEGIN). */
static void note_tx_control(lm_conn *c, const PGresult *r) {
  const char *cmd = PQcmdStatus((PGresult *)r);
  if (!cmd || !c) return;
  if (!strcmp(cmd, "COMMIT"))
    c->last_txc = LM_TXC_COMMIT;
  else if (!strcmp(cmd, "ROLLBACK"))
    c->last_txc = LM_TXC_ROLLBACK;
  else if (!strcmp(cmd, "BEGIN") || !strcmp(cmd, "START TRANSACTION"))
    c->last_txc |= LM_TXC_BEGIN;
}

/* The results of one simple-protocol message, read as PQexec reads them (the last one, or
 * the first COPY), noting transaction control; `skip_begin`: the first is our own BEGIN. */
static PGresult *read_simple(PGconn *conn, int skip_begin, int *count) {
  PGresult *r, *last = NULL;
  lm_conn *c = state(conn);
  set_txc(c, 0);
  *count = 0;
  while ((r = PQgetResult(conn)) != NULL) {
    ExecStatusType st = PQresultStatus(r);
    if (++*count == 1 && skip_begin && st == PGRES_COMMAND_OK) { /* the BEGIN */
      PQclear(r);
      continue;
    }
    note_tx_control(c, r);
    PQclear(last);
    last = r;
    if (st == PGRES_COPY_IN || st == PGRES_COPY_OUT || st == PGRES_COPY_BOTH) break;
  }
  return last;
}

/* "BEGIN;\n" and sql as one simple-protocol message: one round trip for both. The results
 * are read as PQexec reads them; an error or an empty sql is reported as sql alone would
 * have been, its position counted from the start of sql. */
static int exec_after_begin(PGconn *conn, const char *sql, PGresult **res, lm_error *err) {
  static const char prefix[] = "BEGIN;\n";
  const int shift = (int)sizeof prefix - 1;
  size_t len = strlen(sql);
  char *both = malloc(sizeof prefix + len);
  if (!both) return lm_error_set(err, LM_ENOMEM, "out of memory");
  memcpy(both, prefix, sizeof prefix - 1);
  memcpy(both + sizeof prefix - 1, sql, len + 1);
  int sent = PQsendQuery(conn, both);
  free(both);
  if (!sent) return libpq_error(conn, sql, err);
  int count = 0;
  PGresult *last = read_simple(conn, 1, &count);
  if (count == 1 && !last) last = PQmakeEmptyPGresult(conn, PGRES_EMPTY_QUERY);
  int rc = finish(conn, last, sql, res, err);
  if (rc && err->position > shift) err->position -= shift;
  return rc;
}

/* Reads what is left of one statement's results in pipeline mode, up to the NULL that ends
 * them. */
static void drain_to_end(PGconn *conn) {
  PGresult *end;
  while ((end = PQgetResult(conn)) != NULL) PQclear(end);
}

/* Reads the sync point's result; 1 when it is one. */
static int read_sync(PGconn *conn) {
  PGresult *r = PQgetResult(conn);
  int ok = r && PQresultStatus(r) == PGRES_PIPELINE_SYNC;
  PQclear(r);
  return ok;
}

static const lm_stmt begin_stmt = {.sql = "BEGIN"};

/* Sends b's statements (after a held-back BEGIN when b->with_begin) in pipeline mode with one
 * sync, without reading anything: pipeline_recv reads the results. */
/* b's statements as before anything was sent: no result, none failed. */
static void unsent(lm_batch *b) {
  for (size_t i = 0; i < b->n; i++) {
    b->stmts[i].res = NULL;
    b->stmts[i].failed = 0;
  }
}

static void pipeline_send(PGconn *conn, lm_batch *b, lm_error *err) {
  unsent(b);
  b->sent = 0;
  b->synced = 0;
  b->rc = LM_OK;
  if (!PQenterPipelineMode(conn)) {
    b->rc = libpq_error(conn, b->with_begin ? "BEGIN" : b->stmts[0].sql, err);
    b->entered = 0;
    return;
  }
  b->entered = 1;
  size_t total = b->n + (b->with_begin ? 1 : 0);
  for (; b->sent < total; b->sent++) {
    const lm_stmt *s =
        b->with_begin ? (b->sent ? &b->stmts[b->sent - 1] : &begin_stmt) : &b->stmts[b->sent];
    if (!PQsendQueryParams(conn, s->sql, s->nparams, NULL, s->values, s->lengths, s->formats, 0)) {
      b->rc = libpq_error(conn, s->sql, err);
      if (s != &begin_stmt) b->stmts[b->with_begin ? b->sent - 1 : b->sent].failed = 1;
      break;
    }
  }
  if (PQpipelineSync(conn))
    b->synced = 1;
  else if (b->rc == LM_OK)
    b->rc = libpq_error(conn, b->n ? b->stmts[b->n - 1].sql : "BEGIN", err);
}

/* Reads every result of what pipeline_send sent; the first failure is reported with its own
 * statement. */
static int pipeline_recv(PGconn *conn, lm_batch *b, lm_error *err) {
  if (!b->entered) return b->rc;
  int rc = b->rc;
  for (size_t i = 0; i < b->sent && PQstatus(conn) != CONNECTION_BAD; i++) {
    lm_stmt *s = b->with_begin ? (i ? &b->stmts[i - 1] : NULL) : &b->stmts[i];
    const char *sql = s ? s->sql : "BEGIN";
    PGresult *r = PQgetResult(conn);
    ExecStatusType st = r ? PQresultStatus(r) : PGRES_FATAL_ERROR;
    if (st == PGRES_PIPELINE_ABORTED) {
      PQclear(r); /* an earlier statement failed */
    } else if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK) {
      if (s && s->keep && rc == LM_OK)
        s->res = r;
      else
        PQclear(r);
    } else {
      if (rc == LM_OK) {
        rc = finish(conn, r, sql, NULL, err);
        if (s) s->failed = 1;
      } else {
        PQclear(r);
      }
      if (!r) break;
    }
    drain_to_end(conn);
  }
  if (b->synced && PQstatus(conn) != CONNECTION_BAD && !read_sync(conn) && rc == LM_OK)
    rc = lm_error_set(err, LM_ESQL, "pipeline out of step: expected its sync point");
  if (!PQexitPipelineMode(conn) && rc == LM_OK)
    rc = libpq_error(conn, b->n ? b->stmts[b->n - 1].sql : "BEGIN", err);
  if (rc)
    for (size_t i = 0; i < b->n; i++) {
      PQclear(b->stmts[i].res);
      b->stmts[i].res = NULL;
    }
  b->entered = 0;
  return rc;
}

static int pipeline(PGconn *conn, int with_begin, lm_stmt *stmts, size_t n, lm_error *err) {
  lm_batch b = {.stmts = stmts, .n = n, .with_begin = with_begin};
  pipeline_send(conn, &b, err);
  return pipeline_recv(conn, &b, err);
}

/* A statement sent while lm_conn_queue's statements await their results would be read
 * out of order: the callers collect those first (lm_pipe_sync). */
static int queued(PGconn *conn, const char *sql, lm_error *err) {
  if (PQpipelineStatus(conn) == PQ_PIPELINE_OFF) return LM_OK;
  lm_error_set(err, LM_ERR, "internal error: a statement sent before the queued ones' results");
  lm_error_setfield(&err->statement, sql);
  return LM_ERR;
}

int lm_exec_batch(PGconn *conn, lm_stmt *stmts, size_t n, lm_error *err) {
  lm_batch b = {.stmts = stmts, .n = n};
  return lm_exec_batch_send(conn, &b, err) ? b.rc : lm_exec_batch_wait(conn, &b, err);
}

int lm_exec_batch_send(PGconn *conn, lm_batch *b, lm_error *err) {
  lm_conn *c = state(conn);
  const char *first = b->n ? b->stmts[0].sql : "BEGIN";
  b->entered = 0;
  b->rc = LM_OK;
  unsent(b);
  set_txc(c, 0);
  if (queued(conn, first, err)) return b->rc = LM_ERR;
  if (guarded(c, first, err)) return b->rc = err->code;
  b->with_begin = take_begin(c);
  if (b->n == 0 && !b->with_begin) return LM_OK;
  pipeline_send(conn, b, err);
  return LM_OK; /* a failure to send is reported by the wait, after what was sent is read */
}

int lm_exec_batch_wait(PGconn *conn, lm_batch *b, lm_error *err) {
  return lm_conn_cancelled(pipeline_recv(conn, b, err), err);
}

static int exec_one(PGconn *conn, const char *sql, int nparams, const char *const *values,
                    const int *lengths, const int *formats, PGresult **res, lm_error *err);

int lm_conn_cancelled(int rc, lm_error *err) {
  if (rc == LM_ESQL && lm_cancel_requested() && err->sqlstate && !strcmp(err->sqlstate, "57014")) {
    lm_error_set(err, LM_EINTR, "interrupted by signal: luamigrate's statement was cancelled");
    lm_error_setfield(&err->detail,
                      "it was waiting on the server (for another session's lock?); nothing "
                      "more was changed");
  }
  return rc == LM_ESQL && err->code == LM_EINTR ? LM_EINTR : rc;
}

int lm_exec(PGconn *conn, const char *sql, int nparams, const char *const *values,
            const int *lengths, const int *formats, PGresult **res, lm_error *err) {
  return lm_conn_cancelled(exec_one(conn, sql, nparams, values, lengths, formats, res, err), err);
}

static int exec_one(PGconn *conn, const char *sql, int nparams, const char *const *values,
                    const int *lengths, const int *formats, PGresult **res, lm_error *err) {
  if (res) *res = NULL;
  lm_conn *c = state(conn);
  set_txc(c, 0);
  if (queued(conn, sql, err)) return LM_ERR;
  if (guarded(c, sql, err)) return err->code;
  if (take_begin(c)) {
    if (nparams == 0) return exec_after_begin(conn, sql, res, err);
    lm_stmt one = {.sql = sql,
                   .values = values,
                   .lengths = lengths,
                   .formats = formats,
                   .nparams = nparams,
                   .keep = res != NULL};
    int rc = pipeline(conn, 1, &one, 1, err);
    if (rc == LM_OK && res) *res = one.res;
    return rc;
  }
  /* Without parameters the simple protocol runs, so one string may hold several
   * statements, as migrations often do; with parameters it is exactly one statement. */
  if (nparams == 0) {
    if (!PQsendQuery(conn, sql)) return libpq_error(conn, sql, err);
    int count = 0;
    return finish(conn, read_simple(conn, 0, &count), sql, res, err);
  }
  PGresult *r = PQexecParams(conn, sql, nparams, NULL, values, lengths, formats, 0);
  return finish(conn, r, sql, res, err);
}

void lm_conn_pipe_enable(PGconn *conn, int on) {
  lm_conn *c = state(conn);
  if (!c) return;
  if (c->pipe_on) lm_conn_pipe_discard(conn);
  c->pipe_on = on;
  c->pipe_suspended = 0;
}

void lm_conn_pipe_suspend(PGconn *conn, int delta) {
  lm_conn *c = conn ? PQinstanceData(conn, conn_event) : NULL;
  if (c) c->pipe_suspended += delta;
}

int lm_conn_pipe_open(PGconn *conn) {
  lm_conn *c = conn ? PQinstanceData(conn, conn_event) : NULL;
  return c && c->pipe_on && c->pipe_suspended <= 0;
}

int lm_conn_pipe_pending(PGconn *conn) {
  lm_conn *c = conn ? PQinstanceData(conn, conn_event) : NULL;
  return c && c->pipe_on && (c->nq || PQpipelineStatus(conn) != PQ_PIPELINE_OFF);
}

size_t lm_conn_queued(PGconn *conn) {
  lm_conn *c = conn ? PQinstanceData(conn, conn_event) : NULL;
  return c ? c->nq : 0;
}

const char *lm_conn_queued_where(PGconn *conn, size_t i) {
  lm_conn *c = conn ? PQinstanceData(conn, conn_event) : NULL;
  return c && i < c->nq ? c->q[i].where : NULL;
}

/* Keeps one sent statement's text and where in the queue. */
static int remember(lm_conn *c, const char *sql, const char *where, lm_error *err) {
  queued_stmt *q = &c->q[c->nq];
  q->sql = strdup(sql);
  q->where = where ? strdup(where) : NULL;
  if (!q->sql || (where && !q->where)) {
    free(q->sql);
    free(q->where);
    return lm_error_set(err, LM_ENOMEM, "out of memory");
  }
  c->nq++;
  return LM_OK;
}

int lm_conn_queue(PGconn *conn, const lm_stmt *s, const char *where, lm_error *err) {
  const char *sql = s->sql;
  int with_begin = 0;
  lm_conn *c = state(conn);
  if (!c) return lm_error_set(err, LM_ENOMEM, "out of memory");
  c->last_txc = 0;
  if (guarded(c, sql, err)) return err->code;
  if (c->nq + 2 > LM_CONN_PIPE_MAX)
    return lm_error_set(err, LM_ERR, "internal error: the pipeline queue is full");
  if (PQpipelineStatus(conn) == PQ_PIPELINE_OFF) {
    if (!PQenterPipelineMode(conn)) return libpq_error(conn, sql, err);
    with_begin = take_begin(c);
    if (with_begin && !PQsendQueryParams(conn, "BEGIN", 0, NULL, NULL, NULL, NULL, 0))
      return libpq_error(conn, "BEGIN", err);
    if (with_begin && remember(c, "BEGIN", where, err)) return err->code;
  } else if (PQflush(conn) != 0) {
    /* The statements queued before this one go now, and the server runs them while the
     * client goes on; the newest stays in the buffer, so the last one of a migration
     * travels with the sync in one message. */
    return libpq_error(conn, sql, err);
  }
  if (!PQsendQueryParams(conn, sql, s->nparams, NULL, s->values, s->lengths, s->formats, 0))
    return libpq_error(conn, sql, err);
  if (remember(c, sql, where, err)) return err->code;
  return with_begin ? 2 : 1;
}

int lm_conn_pipe_sync(PGconn *conn, size_t *failed, lm_error *err) {
  lm_conn *c = state(conn);
  size_t n = c ? c->nq : 0;
  const char *sqls[LM_CONN_PIPE_MAX];
  for (size_t i = 0; i < n; i++) sqls[i] = c->q[i].sql;
  *failed = n;
  if (PQpipelineStatus(conn) == PQ_PIPELINE_OFF) return LM_OK;
  int rc = LM_OK, synced = PQpipelineSync(conn);
  if (!synced) {
    rc = libpq_error(conn, n ? sqls[n - 1] : "", err);
    *failed = n ? n - 1 : 0;
  }
  for (size_t i = 0; synced && i < n && PQstatus(conn) != CONNECTION_BAD; i++) {
    PGresult *r = PQgetResult(conn);
    ExecStatusType st = r ? PQresultStatus(r) : PGRES_FATAL_ERROR;
    if (st == PGRES_PIPELINE_ABORTED || st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK) {
      PQclear(r); /* aborted: an earlier statement failed */
    } else {
      if (rc == LM_OK) {
        rc = finish(conn, r, sqls[i], NULL, err);
        *failed = i;
      } else {
        PQclear(r);
      }
      if (!r) break;
    }
    drain_to_end(conn);
  }
  if (synced && PQstatus(conn) != CONNECTION_BAD && !read_sync(conn) && rc == LM_OK) {
    rc = lm_error_set(err, LM_ESQL, "pipeline out of step: expected its sync point");
    *failed = n ? n - 1 : 0;
  }
  if (PQstatus(conn) == CONNECTION_BAD && rc == LM_OK) {
    rc = libpq_error(conn, n ? sqls[n - 1] : "", err);
    *failed = n ? n - 1 : 0;
  }
  if (!PQexitPipelineMode(conn) && rc == LM_OK) {
    rc = libpq_error(conn, n ? sqls[n - 1] : "", err);
    *failed = n ? n - 1 : 0;
  }
  return rc;
}

void lm_conn_pipe_discard(PGconn *conn) {
  lm_conn *c = conn ? PQinstanceData(conn, conn_event) : NULL;
  if (!c) return;
  if (PQpipelineStatus(conn) != PQ_PIPELINE_OFF) {
    size_t failed;
    lm_error ignore = {0};
    lm_conn_pipe_sync(conn, &failed, &ignore);
    lm_error_clear(&ignore);
  }
  clear_queue(c);
}
