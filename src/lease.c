/* The lease lock (lock = "table"): one row in <version_table>_lock naming its owner (host,
 * pid, random bits), renewed by a heartbeat thread on its own connection, taken over only
 * once expired, and checked under a row lock at the start of every migration transaction
 * (the fence). See lock.h. */
#include "lease.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cancel.h"
#include "conn.h"
#include "lockwait.h"
#include "log.h"
#include "version_table.h"

static int affected(PGresult *res) {
  const char *t = PQcmdTuples(res);
  return t && *t ? (int)strtol(t, NULL, 10) : 0;
}

/* The lease's holder: "luamigrate on host h, pid 12 (application_name 'x'), since T, last
 * heartbeat Ns ago, expires in Ms"; returns 1 if a row exists. */
static int describe_lease_holder(lm_lock *lk, PGconn *conn, char *buf, size_t cap) {
  char sql[1024];
  PGresult *res = NULL;
  lm_error e = {0};
  int found = 0;
  buf[0] = '\0';
  snprintf(sql, sizeof sql,
           "SELECT owner, coalesce(host, '?'), coalesce(pid::text, '?'), "
           "       coalesce(application, ''), "
           "       to_char(acquired_at, 'YYYY-MM-DD HH24:MI:SS TZ'), "
           "       round(extract(epoch FROM now() - heartbeat_at))::bigint, "
           "       round(extract(epoch FROM expires_at - now()))::bigint "
           "FROM %s WHERE id = 1",
           lk->table);
  if (lm_exec(conn, sql, 0, NULL, NULL, NULL, &res, &e) == LM_OK) {
    if (PQntuples(res) > 0) {
      found = 1;
      long long exp = strtoll(PQgetvalue(res, 0, 6), NULL, 10);
      snprintf(buf, cap,
               "luamigrate on host %s, pid %s (application_name '%s'), since %s, last "
               "heartbeat %s s ago, %s %lld s",
               PQgetvalue(res, 0, 1), PQgetvalue(res, 0, 2), PQgetvalue(res, 0, 3),
               PQgetvalue(res, 0, 4), PQgetvalue(res, 0, 5), exp >= 0 ? "expires in" : "expired",
               exp >= 0 ? exp : -exp);
    }
    PQclear(res);
  }
  lm_error_clear(&e);
  return found;
}

static void make_owner(lm_lock *lk) {
  char host[64] = "?";
  gethostname(host, sizeof host - 1);
  host[sizeof host - 1] = '\0';
  unsigned char rnd[6] = {0};
  int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
  if (fd < 0 || read(fd, rnd, sizeof rnd) != (ssize_t)sizeof rnd) {
    unsigned s = (unsigned)time(NULL) ^ (unsigned)getpid();
    for (size_t i = 0; i < sizeof rnd; i++) rnd[i] = (unsigned char)rand_r(&s);
  }
  if (fd >= 0) close(fd);
  snprintf(lk->owner, sizeof lk->owner, "%.40s:%d:%02x%02x%02x%02x%02x%02x", host, (int)getpid(),
           rnd[0], rnd[1], rnd[2], rnd[3], rnd[4], rnd[5]);
}

static int exec_sql(PGconn *conn, const char *sql, int n, const char *const *vals, PGresult **res,
                    lm_error *err) {
  return lm_exec(conn, sql, n, vals, NULL, NULL, res, err);
}

int lm_lease_renew(lm_lock *lk, PGconn *conn, lm_error *err) {
  char sql[512], lease[32];
  snprintf(sql, sizeof sql,
           "UPDATE %s SET heartbeat_at = now(), "
           "       expires_at = now() + make_interval(secs => $2::float8) "
           "WHERE id = 1 AND owner = $1",
           lk->table);
  snprintf(lease, sizeof lease, "%g", lk->lease_s);
  const char *vals[2] = {lk->owner, lease};
  PGresult *res = NULL;
  int rc = exec_sql(conn, sql, 2, vals, &res, err);
  if (rc) return rc;
  int n = affected(res);
  PQclear(res);
  return n == 1;
}

static void *heartbeat_main(void *arg) {
  lm_lock *lk = arg;
  double every = lk->lease_s / 4.0;
  pthread_mutex_lock(&lk->hb_mu);
  while (!lk->hb_stop) {
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    double t = (double)until.tv_sec + (double)until.tv_nsec / 1e9 + every;
    until.tv_sec = (time_t)t;
    until.tv_nsec = (long)((t - (double)(time_t)t) * 1e9);
    int w = 0;
    while (!lk->hb_stop && w != ETIMEDOUT)
      w = pthread_cond_timedwait(&lk->hb_cv, &lk->hb_mu, &until);
    if (lk->hb_stop) break;
    pthread_mutex_unlock(&lk->hb_mu);
    /* A failed renewal (server restart, network) is tried again next beat; only finding
     * the row taken over ends the heartbeat. The run's own fence notices either way. */
    lm_error e = {0};
    int r = -1;
    if (lk->hb_conn && PQstatus(lk->hb_conn) != CONNECTION_OK) PQreset(lk->hb_conn);
    if (lk->hb_conn) r = lm_lease_renew(lk, lk->hb_conn, &e);
    lm_error_clear(&e);
    pthread_mutex_lock(&lk->hb_mu);
    if (r == 0) break; /* taken over: the run's next fence stops it */
  }
  pthread_mutex_unlock(&lk->hb_mu);
  return NULL;
}

static int ensure_lease_table(lm_lock *lk, PGconn *conn, lm_error *err) {
  /* Looked up first: CREATE TABLE IF NOT EXISTS on every run would print the server's
   * "already exists, skipping" notice every time. */
  int exists = 0;
  int rc = lm_vt_table_exists(conn, lk->table, &exists, err);
  if (rc || exists) return rc;
  char sql[1024];
  snprintf(sql, sizeof sql,
           "CREATE TABLE IF NOT EXISTS %s ("
           "id integer PRIMARY KEY CHECK (id = 1), owner text NOT NULL, host text, pid integer, "
           "application text, acquired_at timestamptz NOT NULL, "
           "heartbeat_at timestamptz NOT NULL, expires_at timestamptz NOT NULL)",
           lk->table);
  rc = exec_sql(conn, sql, 0, NULL, NULL, err);
  /* Two first runs racing: one of them loses on the catalog's unique index; by then the
   * table exists. */
  if (rc == LM_ESQL && err->sqlstate &&
      (!strcmp(err->sqlstate, "23505") || !strcmp(err->sqlstate, "42P07") ||
       !strcmp(err->sqlstate, "42710"))) {
    lm_error_clear(err);
    rc = exec_sql(conn, sql, 0, NULL, NULL, err);
  }
  return rc;
}

int lm_lease_acquire(lm_lock *lk, const char *conninfo, lm_error *err) {
  int rc = LM_OK;
  PGconn *conn = lm_conn_open(conninfo, err);
  if (!conn) return err && err->code ? err->code : LM_ECONN;
  lm_cancel_set_lock_conn(conn); /* the lease's INSERT waits on a migration's row lock */
  if ((rc = ensure_lease_table(lk, conn, err))) goto cleanup;
  make_owner(lk);
  char host[64] = "?", pid[16], lease[32], sql[1024];
  gethostname(host, sizeof host - 1);
  host[sizeof host - 1] = '\0';
  snprintf(pid, sizeof pid, "%d", (int)getpid());
  snprintf(lease, sizeof lease, "%g", lk->lease_s);
  snprintf(sql, sizeof sql,
           "INSERT INTO %s AS l (id, owner, host, pid, application, acquired_at, heartbeat_at, "
           "                     expires_at) "
           "VALUES (1, $1, $2, $3::int, current_setting('application_name'), now(), now(), "
           "        now() + make_interval(secs => $4::float8)) "
           "ON CONFLICT (id) DO UPDATE SET owner = EXCLUDED.owner, host = EXCLUDED.host, "
           "  pid = EXCLUDED.pid, application = EXCLUDED.application, acquired_at = now(), "
           "  heartbeat_at = now(), expires_at = EXCLUDED.expires_at "
           "WHERE l.expires_at < now() "
           /* an update (xmax set) took over a row still there; an insert found none */
           "RETURNING l.id, l.xmax::text <> '0'",
           lk->table);
  const char *vals[4] = {lk->owner, host, pid, lease};
  lm_lock_waiter w;
  lm_lock_waiter_init(&w, lk->timeout_s, lk->quiet, (unsigned)time(NULL) ^ (unsigned)getpid());
  for (;;) {
    char holder[512];
    describe_lease_holder(lk, conn, holder, sizeof holder);
    PGresult *res = NULL;
    if ((rc = exec_sql(conn, sql, 4, vals, &res, err))) goto cleanup;
    int got = PQntuples(res) == 1;
    int took_over = got && !strcmp(PQgetvalue(res, 0, 1), "t");
    PQclear(res);
    if (got) {
      /* Only a row replaced was taken over: one released meanwhile was simply free. */
      if (took_over && *holder && !lk->quiet)
        lm_log_warn("took over the expired migration lease of %s", holder);
      break;
    }
    /* Described again after the refusal: the row read before it may be the version a
     * migration in progress has renewed but not committed (its fence holds the row), which
     * looks expired; the refusal waited for that commit, so the row now read is current. */
    describe_lease_holder(lk, conn, holder, sizeof holder);
    if ((rc = lm_lock_waiter_wait(&w, lk->what, holder, err))) goto cleanup;
  }
  lk->conn = conn;
  conn = NULL;
  /* The heartbeat keeps the lease while migrations run; its own connection, so a long
   * statement on the work connection does not stop it. */
  lk->hb_conn = lm_conn_open(conninfo, err);
  if (!lk->hb_conn) {
    rc = err && err->code ? err->code : LM_ECONN;
    goto cleanup;
  }
  pthread_mutex_init(&lk->hb_mu, NULL);
  pthread_cond_init(&lk->hb_cv, NULL);
  if (pthread_create(&lk->hb_thread, NULL, heartbeat_main, lk) != 0) {
    pthread_mutex_destroy(&lk->hb_mu);
    pthread_cond_destroy(&lk->hb_cv);
    rc = lm_error_set(err, LM_ERR, "cannot start the lease heartbeat thread: %s", strerror(errno));
    goto cleanup;
  }
  lk->hb_started = 1;
cleanup:
  if (conn) PQfinish(conn);
  return rc;
}

int lm_lease_release(lm_lock *lk, lm_error *err) {
  if (lk->hb_started) {
    pthread_mutex_lock(&lk->hb_mu);
    lk->hb_stop = 1;
    pthread_cond_signal(&lk->hb_cv);
    pthread_mutex_unlock(&lk->hb_mu);
    pthread_join(lk->hb_thread, NULL);
    pthread_mutex_destroy(&lk->hb_mu);
    pthread_cond_destroy(&lk->hb_cv);
    lk->hb_started = 0;
  }
  if (lk->hb_conn) PQfinish(lk->hb_conn);
  lk->hb_conn = NULL;
  int rc = LM_OK;
  if (lk->conn) {
    char sql[512];
    snprintf(sql, sizeof sql, "DELETE FROM %s WHERE id = 1 AND owner = $1", lk->table);
    const char *vals[1] = {lk->owner};
    PGresult *res = NULL;
    if (PQstatus(lk->conn) != CONNECTION_OK) PQreset(lk->conn);
    rc = exec_sql(lk->conn, sql, 1, vals, &res, err);
    if (rc == LM_OK) {
      if (affected(res) != 1)
        rc = lm_error_set(err, LM_ELOCK,
                          "the migration lease was no longer this run's at "
                          "release (it expired and was taken over)");
      PQclear(res);
    }
  }
  return rc;
}

int lm_lease_fence(lm_lock *lk, PGconn *work, lm_error *err) {
  int r = lm_lease_renew(lk, work, err);
  if (r < 0) return r;
  if (r == 0) {
    char holder[512];
    int found = describe_lease_holder(lk, work, holder, sizeof holder);
    lm_error_set(err, LM_ELOCK,
                 "lost the migration lease: %s%s (its heartbeat stopped for longer than "
                 "lock_lease = %g s); this run stops here, the next one continues from what "
                 "it committed",
                 found ? "now held by " : "its row is gone", found ? holder : "", lk->lease_s);
    return LM_ELOCK;
  }
  return LM_OK;
}
