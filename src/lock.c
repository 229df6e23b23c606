/* The migration lock: session advisory lock on a dedicated connection (refused behind a
 * pooler), transaction advisory locks on the work connection, or a fenced lease row with a
 * heartbeat thread (lease.c). Waiting polls with backoff and jitter and names the holder
 * (lockwait.c). */
#include "lock.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cancel.h"
#include "conn.h"
#include "lease.h"
#include "lockwait.h"

/* Class id of every luamigrate lock: "lm" in ASCII, so it is recognisable in pg_locks. */
#define LM_LOCK_CLASS 0x6c6d
#define LM_LOCK_CLASS_SQL "27757" /* the same, as the statements write it */

/* The lock's second key, from the version table's name as configured (parameter p): a
 * qualified name as written, an unqualified one with the schema it resolves to (or is
 * created in), so two runs on one table exclude each other whatever their search_path. */
#define LOCK_KEY_SQL(p)                                                    \
  "hashtext(current_database() || '.' || coalesce("                        \
  "  (SELECT n.nspname || '.' || c.relname FROM pg_class c "               \
  "   JOIN pg_namespace n ON n.oid = c.relnamespace "                      \
  "   WHERE strpos(" p ", '.') = 0 AND c.oid = to_regclass(quote_ident(" p \
  "))), "                                                                  \
  "  CASE WHEN strpos(" p ", '.') > 0 THEN " p                             \
  " "                                                                      \
  "       ELSE coalesce(current_schema(), '') || '.' || " p " END))"

int lm_lock_mode_parse(const char *s) {
  if (!s || !strcmp(s, "session")) return LM_LOCK_SESSION;
  if (!strcmp(s, "xact")) return LM_LOCK_XACT;
  if (!strcmp(s, "table")) return LM_LOCK_TABLE;
  return -1;
}

const char *lm_lock_mode_name(lm_lock_mode m) {
  return m == LM_LOCK_XACT ? "xact" : m == LM_LOCK_TABLE ? "table" : "session";
}

static int query_bool(PGconn *conn, const char *sql, int nparams, const char *const *vals, int *out,
                      lm_error *err) {
  PGresult *res = NULL;
  int rc = lm_exec(conn, sql, nparams, vals, NULL, NULL, &res, err);
  if (rc) return rc;
  *out = PQntuples(res) == 1 && strcmp(PQgetvalue(res, 0, 0), "t") == 0;
  PQclear(res);
  return LM_OK;
}

int lm_conn_pooled(PGconn *conn, int *server_pid, lm_error *err) {
  PGresult *res = NULL;
  int rc = lm_exec(conn, "SELECT pg_backend_pid()", 0, NULL, NULL, NULL, &res, err);
  if (rc) return rc;
  int pid = (int)strtol(PQgetvalue(res, 0, 0), NULL, 10);
  PQclear(res);
  if (server_pid) *server_pid = pid;
  return pid != PQbackendPID(conn);
}

/* Who holds the advisory lock (session or transaction level): "pid 123 (application_name
 * 'x', user u, local, connected since T)"; returns its pid, or 0 if nobody holds it. */
static int describe_advisory_holder(PGconn *conn, const char *k1, const char *k2, char *buf,
                                    size_t cap) {
  const char *vals[2] = {k1, k2};
  PGresult *res = NULL;
  lm_error e = {0};
  buf[0] = '\0';
  int pid = 0;
  if (lm_exec(conn,
              "SELECT l.pid, coalesce(a.application_name, ''), "
              "       coalesce(to_char(a.backend_start, 'YYYY-MM-DD HH24:MI:SS TZ'), '?'), "
              "       coalesce(a.usename::text, '?'), coalesce(a.client_addr::text, 'local') "
              "FROM pg_locks l LEFT JOIN pg_stat_activity a ON a.pid = l.pid "
              "WHERE l.locktype = 'advisory' AND l.granted AND l.classid = $1::int::oid "
              "  AND l.objid = $2::int::oid AND l.objsubid = 2 AND l.database = "
              "      (SELECT oid FROM pg_database WHERE datname = current_database())",
              2, vals, NULL, NULL, &res, &e) == LM_OK) {
    if (PQntuples(res) > 0) {
      pid = (int)strtol(PQgetvalue(res, 0, 0), NULL, 10);
      snprintf(buf, cap, "pid %s (application_name '%s', user %s, %s, connected since %s)",
               PQgetvalue(res, 0, 0), PQgetvalue(res, 0, 1), PQgetvalue(res, 0, 3),
               PQgetvalue(res, 0, 4), PQgetvalue(res, 0, 2));
    }
    PQclear(res);
  }
  lm_error_clear(&e);
  return pid;
}

/* ---- session ------------------------------------------------------------------------ */

static int pooler_refusal(lm_error *err, int reported, int actual, const char *why) {
  lm_error_set(err, LM_EUSAGE,
               "lock = \"session\" cannot hold through a connection pooler: %s (the connection "
               "reported backend pid %d, its statements run on pid %d)",
               why, reported, actual);
  lm_error_setfield(&err->detail,
                    "behind PgBouncer and similar poolers in transaction mode a session "
                    "advisory lock lands on one server connection and the run's later "
                    "statements, and other clients' statements, on others, so it excludes "
                    "nobody");
  lm_error_setfield(&err->hint,
                    "set lock = \"table\" (a fenced lease row; autocommit blocks "
                    "work) or lock = \"xact\" in luamigrate.lua, or pass --lock "
                    "table; or connect to PostgreSQL directly");
  return LM_EUSAGE;
}

/* Whether the lock (keys k1, k2) is held by this very backend, asked in a transaction of its
 * own: through a pooler in transaction mode it may not be. */
#define MINE_SQL(k1, k2)                                                           \
  "SELECT EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND granted " \
  "  AND pid = pg_backend_pid() AND classid = " k1                                 \
  "::int::oid "                                                                    \
  "  AND objid = " k2 "::int::oid AND objsubid = 2)"

/* The first attempt, in one round trip: two statements, each its own transaction, sent
 * together. The first works the key out and takes the lock only when the backend running
 * it is the one the connection reported at start-up (else a pooler is in between: refused
 * before locking, as a lock taken through it would stay behind on a pooled server
 * connection); the second checks the lock is this backend's. *got is 1 (taken), 0 (held
 * by another) or -1 (pooled: not tried); *mine only means something when *got is 1. */
static int first_attempt(PGconn *conn, const char *name, int *server_pid, int *key2, int *got,
                         int *mine, lm_error *err) {
  char pid[16];
  snprintf(pid, sizeof pid, "%d", PQbackendPID(conn));
  const char *vals[2] = {name, pid};
  static const char *const sql[2] = {
      "SELECT pg_backend_pid(), k, CASE WHEN pg_backend_pid() = $2::int "
      "THEN pg_try_advisory_lock(" LM_LOCK_CLASS_SQL
      ", k) END FROM (SELECT " LOCK_KEY_SQL("$1") " AS k) key",
      MINE_SQL(LM_LOCK_CLASS_SQL, LOCK_KEY_SQL("$1"))};
  PGresult *res[2] = {NULL, NULL};
  int rc = LM_OK;
  if (!PQenterPipelineMode(conn)) return lm_error_from_result(err, conn, NULL, sql[0]);
  for (int i = 0; i < 2 && rc == LM_OK; i++)
    if (!PQsendQueryParams(conn, sql[i], i ? 1 : 2, NULL, vals, NULL, NULL, 0) ||
        !PQpipelineSync(conn))
      rc = lm_error_from_result(err, conn, NULL, sql[i]);
  for (int i = 0; i < 2 && rc == LM_OK; i++) {
    res[i] = PQgetResult(conn); /* the statement's result, its NULL, its sync */
    PGresult *end;
    while ((end = PQgetResult(conn)) != NULL) PQclear(end);
    end = PQgetResult(conn);
    int synced = end && PQresultStatus(end) == PGRES_PIPELINE_SYNC;
    PQclear(end);
    if (!res[i] || PQresultStatus(res[i]) != PGRES_TUPLES_OK)
      rc = lm_error_from_result(err, conn, res[i], sql[i]);
    else if (!synced)
      rc = lm_error_set(err, LM_ESQL, "pipeline out of step: expected its sync point");
  }
  if (!PQexitPipelineMode(conn) && rc == LM_OK) rc = lm_error_from_result(err, conn, NULL, sql[1]);
  if (rc == LM_OK) {
    *server_pid = (int)strtol(PQgetvalue(res[0], 0, 0), NULL, 10);
    *key2 = (int)strtol(PQgetvalue(res[0], 0, 1), NULL, 10);
    *got = PQgetisnull(res[0], 0, 2) ? -1 : PQgetvalue(res[0], 0, 2)[0] == 't';
    *mine = PQgetvalue(res[1], 0, 0)[0] == 't';
  }
  PQclear(res[0]);
  PQclear(res[1]);
  return rc;
}

/* lk->conn, when set, is the connection opened for the lock with the work connection
 * (lm_conn_open_n); else one is opened here. Either way the lock owns it from here on. */
static int acquire_session(lm_lock *lk, const char *conninfo, const char *name, lm_error *err) {
  int rc = LM_OK, server_pid = 0, got = 0, mine = 0;
  PGconn *conn = lk->conn ? lk->conn : lm_conn_open(conninfo, err);
  lk->conn = NULL;
  if (!conn) return err && err->code ? err->code : LM_ECONN;
  lm_cancel_set_lock_conn(conn);
  if ((rc = first_attempt(conn, name, &server_pid, &lk->key2, &got, &mine, err))) goto cleanup;
  if (got < 0) {
    rc = pooler_refusal(err, PQbackendPID(conn), server_pid,
                        "a pooler is between luamigrate and PostgreSQL");
    goto cleanup;
  }
  char k1[16], k2[16];
  snprintf(k1, sizeof k1, "%d", lk->key1);
  snprintf(k2, sizeof k2, "%d", lk->key2);
  const char *vals[2] = {k1, k2};
  lk->waited = !got;
  if (!got) {
    lm_lock_waiter w;
    lm_lock_waiter_init(&w, lk->timeout_s, lk->quiet, (unsigned)time(NULL) ^ (unsigned)server_pid);
    while (!got) {
      char holder[512];
      describe_advisory_holder(conn, k1, k2, holder, sizeof holder);
      if ((rc = lm_lock_waiter_wait(&w, lk->what, holder, err))) goto cleanup;
      if ((rc = query_bool(conn, "SELECT pg_try_advisory_lock($1::int, $2::int)", 2, vals, &got,
                           err)))
        goto cleanup;
    }
    /* Check from a new transaction that the lock is held by this very backend. */
    if ((rc = query_bool(conn, MINE_SQL("$1", "$2"), 2, vals, &mine, err))) goto cleanup;
  }
  if (!mine) {
    lm_error e = {0};
    query_bool(conn, "SELECT pg_advisory_unlock($1::int, $2::int)", 2, vals, &mine, &e);
    lm_error_clear(&e);
    rc = pooler_refusal(err, PQbackendPID(conn), server_pid,
                        "the lock just taken is not held by this connection's backend");
    goto cleanup;
  }
  lk->conn = conn;
  lk->backend_pid = PQbackendPID(conn);
  conn = NULL;
cleanup:
  if (conn) {
    lm_cancel_set_lock_conn(NULL);
    PQfinish(conn);
  }
  return rc;
}

/* ---- the interface ------------------------------------------------------------------ */

int lm_lock_acquire(lm_lock *lk, lm_lock_mode mode, PGconn *work, const char *conninfo,
                    const char *name, const char *lock_table, double timeout_s, double lease_s,
                    int quiet, lm_error *err) {
  PGresult *res = NULL;
  lk->mode = mode;
  lk->timeout_s = timeout_s;
  lk->quiet = quiet;
  lk->lease_s = lease_s > 0 ? lease_s : 60;
  snprintf(lk->what, sizeof lk->what, "migration %s for '%.100s'",
           mode == LM_LOCK_TABLE ? "lease" : "lock", name);
  /* The key names the table itself (LOCK_KEY_SQL). */
  lk->key1 = LM_LOCK_CLASS;
  if (mode == LM_LOCK_SESSION) { /* its connection works the key out as it locks */
    int rc = acquire_session(lk, conninfo, name, err);
    if (rc == LM_OK) lk->held = 1;
    return rc;
  }
  const char *vals[1] = {name};
  int rc = lm_exec(work, "SELECT " LOCK_KEY_SQL("$1"), 1, vals, NULL, NULL, &res, err);
  if (rc) return rc;
  lk->key2 = (int)strtol(PQgetvalue(res, 0, 0), NULL, 10);
  PQclear(res);
  switch (mode) {
    case LM_LOCK_SESSION: break;
    case LM_LOCK_XACT:
      rc = LM_OK; /* each transaction takes it: lm_lock_fence */
      break;
    case LM_LOCK_TABLE:
      if (!(lk->table = strdup(lock_table))) return lm_error_set(err, LM_ENOMEM, "out of memory");
      rc = lm_lease_acquire(lk, conninfo, err);
      if (rc) {
        lm_error e = {0};
        lm_lease_release(lk, &e);
        lm_error_clear(&e);
        if (lk->conn) PQfinish(lk->conn);
        lk->conn = NULL;
      }
      break;
  }
  if (rc == LM_OK) lk->held = 1;
  return rc;
}

int lm_lock_fence(lm_lock *lk, PGconn *work, lm_error *err) {
  if (!lk->held) return LM_OK;
  if (lk->mode == LM_LOCK_XACT) {
    char k1[16], k2[16];
    snprintf(k1, sizeof k1, "%d", lk->key1);
    snprintf(k2, sizeof k2, "%d", lk->key2);
    const char *vals[2] = {k1, k2};
    lm_lock_waiter w;
    lm_lock_waiter_init(&w, lk->timeout_s, lk->quiet, (unsigned)time(NULL) ^ (unsigned)getpid());
    for (;;) {
      int got = 0;
      int rc = query_bool(work, "SELECT pg_try_advisory_xact_lock($1::int, $2::int)", 2, vals, &got,
                          err);
      if (rc) return rc;
      if (got) return LM_OK;
      char holder[512];
      describe_advisory_holder(work, k1, k2, holder, sizeof holder);
      if ((rc = lm_lock_waiter_wait(&w, lk->what, holder, err))) return rc;
    }
  }
  if (lk->mode == LM_LOCK_TABLE) return lm_lease_fence(lk, work, err);
  return LM_OK;
}

int lm_lock_renew(lm_lock *lk, PGconn *work, lm_error *err) {
  if (!lk->held || lk->mode != LM_LOCK_TABLE) return LM_OK;
  int r = lm_lease_renew(lk, work, err);
  if (r < 0) return r;
  if (r == 0) return lm_error_set(err, LM_ELOCK, "lost the migration lease during the migration");
  return LM_OK;
}

int lm_lock_check(void *ud, lm_error *err) {
  lm_lock *lk = ud;
  if (!lk->held || lk->mode != LM_LOCK_SESSION || !lk->conn) return LM_OK;
  if (lk->lost) return lm_error_set(err, LM_ELOCK, "lost the %s", lk->what);
  /* Nothing is in flight on the lock's connection: whatever it received is the server
   * ending it. PQconsumeInput never blocks (libpq's sockets are non-blocking). */
  if (PQconsumeInput(lk->conn) && PQstatus(lk->conn) == CONNECTION_OK) return LM_OK;
  lm_error_set(err, LM_ELOCK,
               "lost the %s: the connection holding it (backend pid %d) was closed, and the "
               "server released the lock with it",
               lk->what, lk->backend_pid);
  lk->lost = 1;
  lm_error_setfield(&err->detail,
                    "was the backend terminated (pg_terminate_backend, a restart) or the "
                    "network cut? another run may now be migrating this database");
  lm_error_setfield(&err->hint,
                    "this run stopped before its next statement; what it committed stays: "
                    "check 'luamigrate status', then run the command again");
  return LM_ELOCK;
}

int lm_lock_release(lm_lock *lk, lm_error *err) {
  int rc = LM_OK;
  /* A lock found lost was reported then; found lost only now, it is reported here. */
  if (lk->held && lk->mode == LM_LOCK_SESSION && lk->conn && !lk->lost &&
      (rc = lm_lock_check(lk, err)) == LM_OK) {
    char k1[16], k2[16];
    snprintf(k1, sizeof k1, "%d", lk->key1);
    snprintf(k2, sizeof k2, "%d", lk->key2);
    const char *vals[2] = {k1, k2};
    int released = 0;
    rc = query_bool(lk->conn, "SELECT pg_advisory_unlock($1::int, $2::int)", 2, vals, &released,
                    err);
    if (rc == LM_OK && !released)
      rc = lm_error_set(err, LM_ELOCK,
                        "the migration lock was not held at release (was the lock connection "
                        "reset, or is a pooler in transaction mode in between?)");
  } else if (lk->mode == LM_LOCK_TABLE && (lk->held || lk->hb_started)) {
    rc = lm_lease_release(lk, err);
  }
  if (lk->conn) PQfinish(lk->conn);
  lk->conn = NULL;
  lm_cancel_set_lock_conn(NULL);
  free(lk->table);
  lk->table = NULL;
  lk->held = 0;
  return rc;
}
