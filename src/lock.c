/* Advisory migration lock on a dedicated connection: try-lock polling with backoff and
 * jitter, holder reporting from pg_locks/pg_stat_activity, checked unlock. */
#include "lock.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cancel.h"
#include "conn.h"

/* Class id of every luamigrate lock: "lm" in ASCII, so it is recognisable in pg_locks. */
#define LM_LOCK_CLASS 0x6c6d

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void sleep_s(double s) {
  struct timespec ts = {(time_t)s, (long)((s - (double)(time_t)s) * 1e9)};
  /* A signal cuts the sleep short; the caller then sees the cancel flag. */
  nanosleep(&ts, NULL);
}

static int query_bool(PGconn *conn, const char *sql, const char *k1, const char *k2, int *out,
                      lm_error *err) {
  const char *vals[2] = {k1, k2};
  PGresult *res = NULL;
  int rc = lm_exec(conn, sql, 2, vals, NULL, NULL, &res, err);
  if (rc) return rc;
  *out = PQntuples(res) == 1 && strcmp(PQgetvalue(res, 0, 0), "t") == 0;
  PQclear(res);
  return LM_OK;
}

/* Describes the current holder into buf ("pid 123 (application_name 'x', since T)"); returns
 * its pid, or 0 if nobody holds it any more. */
static int describe_holder(PGconn *conn, const char *k1, const char *k2, char *buf,
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
      pid = atoi(PQgetvalue(res, 0, 0));
      snprintf(buf, cap, "pid %s (application_name '%s', user %s, %s, connected since %s)",
               PQgetvalue(res, 0, 0), PQgetvalue(res, 0, 1), PQgetvalue(res, 0, 3),
               PQgetvalue(res, 0, 4), PQgetvalue(res, 0, 2));
    }
    PQclear(res);
  }
  lm_error_clear(&e);
  return pid;
}

int lm_lock_acquire(lm_lock *lk, const char *conninfo, const char *name, double timeout_s,
                    int quiet, lm_error *err) {
  int rc = LM_OK;
  PGresult *res = NULL;
  PGconn *conn = lm_conn_open(conninfo, err);
  if (!conn) return err ? err->code : LM_ECONN;

  const char *vals[1] = {name};
  rc = lm_exec(conn,
               "SELECT hashtext(current_database() || '.' || current_schema() || '.' || $1)",
               1, vals, NULL, NULL, &res, err);
  if (rc) goto cleanup;
  char k1[16], k2[16];
  snprintf(k1, sizeof k1, "%d", LM_LOCK_CLASS);
  snprintf(k2, sizeof k2, "%s", PQgetvalue(res, 0, 0));
  PQclear(res);
  res = NULL;

  double start = now_s(), delay = 0.05;
  int last_pid = -1;
  unsigned seed = (unsigned)time(NULL) ^ (unsigned)PQbackendPID(conn);
  for (;;) {
    int got = 0;
    rc = query_bool(conn, "SELECT pg_try_advisory_lock($1::int, $2::int)", k1, k2, &got, err);
    if (rc) goto cleanup;
    if (got) break;
    if (lm_cancel_requested()) {
      rc = lm_error_set(err, LM_ERR, "interrupted by signal while waiting for the migration lock");
      goto cleanup;
    }
    char holder[512];
    int pid = describe_holder(conn, k1, k2, holder, sizeof holder);
    double waited = now_s() - start;
    if (timeout_s >= 0 && waited >= timeout_s) {
      rc = lm_error_set(err, LM_ELOCK,
                        "could not obtain the migration lock for '%s' within %g s: held by %s",
                        name, timeout_s, pid ? holder : "another session");
      lm_error_setfield(&err->hint,
                        "another luamigrate run is working on this database; wait for it, or "
                        "raise lock_timeout");
      goto cleanup;
    }
    if (!quiet && pid && pid != last_pid) {
      fprintf(stderr, "luamigrate: waiting for the migration lock held by %s\n", holder);
      last_pid = pid;
    }
    /* Backoff to 1 s with +-25% jitter, so many waiters do not poll in step. */
    double jitter = 0.75 + 0.5 * ((double)(rand_r(&seed) % 1000) / 1000.0);
    double d = delay * jitter;
    if (timeout_s >= 0 && waited + d > timeout_s) d = timeout_s - waited + 0.001;
    sleep_s(d);
    delay = delay * 1.6 > 1.0 ? 1.0 : delay * 1.6;
  }
  lk->conn = conn;
  conn = NULL;
  snprintf(k1, sizeof k1, "%d", LM_LOCK_CLASS);
  lk->key1 = LM_LOCK_CLASS;
  lk->key2 = atoi(k2);

cleanup:
  PQclear(res);
  if (conn) PQfinish(conn);
  return rc;
}

int lm_lock_release(lm_lock *lk, lm_error *err) {
  if (!lk->conn) return LM_OK;
  char k1[16], k2[16];
  snprintf(k1, sizeof k1, "%d", lk->key1);
  snprintf(k2, sizeof k2, "%d", lk->key2);
  int released = 0;
  int rc = query_bool(lk->conn, "SELECT pg_advisory_unlock($1::int, $2::int)", k1, k2,
                      &released, err);
  if (rc == LM_OK && !released)
    rc = lm_error_set(err, LM_ELOCK,
                      "the migration lock was not held at release (was the lock connection "
                      "reset, or is a pooler in transaction mode in between?)");
  PQfinish(lk->conn);
  lk->conn = NULL;
  return rc;
}
