/* libpq connections: open, execute with exact result-status checks, turn server errors
 * into lm_error, print notices, and describe connection strings without passwords. */
#include "conn.h"

#include <libpq-events.h>

#include "cancel.h"
#include "log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

PGconn *lm_conn_open(const char *conninfo, lm_error *err) {
  if (conninfo && *conninfo && lm_conn_check_url(conninfo, err)) return NULL;
  const char *keys[] = {"dbname", "fallback_application_name", NULL};
  const char *vals[] = {conninfo && *conninfo ? conninfo : NULL, "luamigrate", NULL};
  PGconn *conn = PQconnectdbParams(keys, vals, 1);
  if (!conn) {
    lm_error_set(err, LM_ENOMEM, "out of memory while connecting");
    return NULL;
  }
  if (PQstatus(conn) != CONNECTION_OK) {
    char *where = lm_conn_redact(conninfo);
    char prefix[1024];
    snprintf(prefix, sizeof prefix, "cannot connect to %s: ", where ? where : "the database");
    free(where);
    set_libpq_message(err, LM_ECONN, prefix, PQerrorMessage(conn));
    PQfinish(conn);
    return NULL;
  }
  PQsetNoticeReceiver(conn, notice_receiver, NULL);
  if (!state(conn)) {
    PQfinish(conn);
    lm_error_set(err, LM_ENOMEM, "out of memory while connecting");
    return NULL;
  }
  return conn;
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

/* Sends stmts (after a held-back BEGIN when with_begin) in pipeline mode with one sync and
 * reads every result; the first failure is reported with its own statement. */
static int pipeline(PGconn *conn, int with_begin, lm_stmt *stmts, size_t n, lm_error *err) {
  for (size_t i = 0; i < n; i++) stmts[i].res = NULL;
  if (!PQenterPipelineMode(conn))
    return libpq_error(conn, with_begin ? "BEGIN" : stmts[0].sql, err);
  size_t total = n + (with_begin ? 1 : 0), sent = 0;
  int rc = LM_OK, synced = 0;
  for (; sent < total; sent++) {
    const lm_stmt *s = with_begin ? (sent ? &stmts[sent - 1] : &begin_stmt) : &stmts[sent];
    if (!PQsendQueryParams(conn, s->sql, s->nparams, NULL, s->values, s->lengths, s->formats, 0)) {
      rc = libpq_error(conn, s->sql, err);
      break;
    }
  }
  if (PQpipelineSync(conn))
    synced = 1;
  else if (rc == LM_OK)
    rc = libpq_error(conn, n ? stmts[n - 1].sql : "BEGIN", err);
  for (size_t i = 0; i < sent && PQstatus(conn) != CONNECTION_BAD; i++) {
    lm_stmt *s = with_begin ? (i ? &stmts[i - 1] : NULL) : &stmts[i];
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
      if (rc == LM_OK)
        rc = finish(conn, r, sql, NULL, err);
      else
        PQclear(r);
      if (!r) break;
    }
    drain_to_end(conn);
  }
  if (synced && PQstatus(conn) != CONNECTION_BAD && !read_sync(conn) && rc == LM_OK)
    rc = lm_error_set(err, LM_ESQL, "pipeline out of step: expected its sync point");
  if (!PQexitPipelineMode(conn) && rc == LM_OK)
    rc = libpq_error(conn, n ? stmts[n - 1].sql : "BEGIN", err);
  if (rc)
    for (size_t i = 0; i < n; i++) {
      PQclear(stmts[i].res);
      stmts[i].res = NULL;
    }
  return rc;
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
  lm_conn *c = state(conn);
  set_txc(c, 0);
  if (queued(conn, n ? stmts[0].sql : "BEGIN", err)) return LM_ERR;
  if (guarded(c, n ? stmts[0].sql : "BEGIN", err)) return err->code;
  int with_begin = take_begin(c);
  if (n == 0 && !with_begin) return LM_OK;
  return pipeline(conn, with_begin, stmts, n, err);
}

static int exec_one(PGconn *conn, const char *sql, int nparams, const char *const *values,
                    const int *lengths, const int *formats, PGresult **res, lm_error *err);

/* A statement of the engine's that a signal cancelled (lm_cancel: it may have waited on
 * another session's lock) says so; the run stops there. */
int lm_exec(PGconn *conn, const char *sql, int nparams, const char *const *values,
            const int *lengths, const int *formats, PGresult **res, lm_error *err) {
  int rc = exec_one(conn, sql, nparams, values, lengths, formats, res, err);
  if (rc == LM_ESQL && lm_cancel_requested() && err->sqlstate && !strcmp(err->sqlstate, "57014")) {
    lm_error_set(err, LM_EINTR, "interrupted by signal: luamigrate's statement was cancelled");
    lm_error_setfield(&err->detail,
                      "it was waiting on the server (for another session's lock?); nothing "
                      "more was changed");
  }
  return rc == LM_ESQL && err->code == LM_EINTR ? LM_EINTR : rc;
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

int lm_conn_queue(PGconn *conn, const char *sql, const char *where, lm_error *err) {
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
  if (!PQsendQueryParams(conn, sql, 0, NULL, NULL, NULL, NULL, 0))
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
