/* The migration lock: session advisory lock on a dedicated connection (refused behind a
 * pooler), transaction advisory locks on the work connection, or a fenced lease row with a
 * heartbeat thread. Waiting polls with backoff and jitter and names the holder. */
#include "lock.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cancel.h"
#include "conn.h"
#include "log.h"
#include "version_table.h"

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

static int affected(PGresult *res) {
  const char *t = PQcmdTuples(res);
  return t && *t ? (int)strtol(t, NULL, 10) : 0;
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

/* The shared wait loop: try() until it succeeds, the timeout passes or a signal arrives,
 * printing the holder whenever it changes. */
typedef struct waiter {
  double start, delay, timeout_s;
  unsigned seed;
  char last[512];
  int quiet;
} waiter;

static void waiter_init(waiter *w, double timeout_s, int quiet, unsigned seed) {
  memset(w, 0, sizeof *w);
  w->start = now_s();
  w->delay = 0.05;
  w->timeout_s = timeout_s;
  w->seed = seed;
  w->quiet = quiet;
}

/* After a failed try: LM_OK to try again (having slept), or an error. */
static int waiter_wait(waiter *w, const char *what, const char *holder, lm_error *err) {
  if (lm_cancel_requested())
    return lm_error_set(err, LM_EINTR,
                        "interrupted by signal while waiting for the %s; nothing more was "
                        "changed",
                        what);
  double waited = now_s() - w->start;
  if (w->timeout_s >= 0 && waited >= w->timeout_s) {
    lm_error_set(err, LM_ELOCK, "could not obtain the %s within %g s: held by %s", what,
                 w->timeout_s, *holder ? holder : "another session");
    lm_error_setfield(&err->hint,
                      "another luamigrate run is working on this database; wait "
                      "for it, or raise lock_timeout");
    return LM_ELOCK;
  }
  if (!w->quiet && *holder && strcmp(holder, w->last) != 0) {
    lm_log_break();
    fprintf(stderr, "luamigrate: waiting for the %s held by %s\n", what, holder);
    snprintf(w->last, sizeof w->last, "%s", holder);
  }
  /* Backoff to 1 s with +-25% jitter, so many waiters do not poll in step. */
  double jitter = 0.75 + 0.5 * ((double)(rand_r(&w->seed) % 1000) / 1000.0);
  double d = w->delay * jitter;
  if (w->timeout_s >= 0 && waited + d > w->timeout_s) d = w->timeout_s - waited + 0.001;
  sleep_s(d);
  w->delay = w->delay * 1.6 > 1.0 ? 1.0 : w->delay * 1.6;
  return LM_OK;
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

static int acquire_session(lm_lock *lk, const char *conninfo, const char *k1, const char *k2,
                           lm_error *err) {
  int rc = LM_OK, server_pid = 0;
  PGconn *conn = lm_conn_open(conninfo, err);
  if (!conn) return err && err->code ? err->code : LM_ECONN;
  lm_cancel_set_lock_conn(conn);
  /* Refuse before locking: a lock taken through a pooler would stay behind on a pooled
   * server connection. */
  int pooled = lm_conn_pooled(conn, &server_pid, err);
  if (pooled < 0) {
    rc = pooled;
    goto cleanup;
  }
  if (pooled) {
    rc = pooler_refusal(err, PQbackendPID(conn), server_pid,
                        "a pooler is between luamigrate and PostgreSQL");
    goto cleanup;
  }
  waiter w;
  waiter_init(&w, lk->timeout_s, lk->quiet, (unsigned)time(NULL) ^ (unsigned)server_pid);
  const char *vals[2] = {k1, k2};
  for (;;) {
    int got = 0;
    if ((rc =
             query_bool(conn, "SELECT pg_try_advisory_lock($1::int, $2::int)", 2, vals, &got, err)))
      goto cleanup;
    if (got) break;
    char holder[512];
    describe_advisory_holder(conn, k1, k2, holder, sizeof holder);
    if ((rc = waiter_wait(&w, lk->what, holder, err))) goto cleanup;
  }
  /* Check from a new transaction that the lock is held by this very backend. */
  int mine = 0;
  rc = query_bool(conn,
                  "SELECT EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND granted "
                  "  AND pid = pg_backend_pid() AND classid = $1::int::oid "
                  "  AND objid = $2::int::oid AND objsubid = 2)",
                  2, vals, &mine, err);
  if (rc) goto cleanup;
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
  if (conn) PQfinish(conn);
  return rc;
}

/* ---- table (lease) ------------------------------------------------------------------ */

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

/* Renews the lease if it is still ours: 1 renewed, 0 not ours, < 0 error. */
static int renew_on(lm_lock *lk, PGconn *conn, lm_error *err) {
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
    if (lk->hb_conn) r = renew_on(lk, lk->hb_conn, &e);
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

static int acquire_table(lm_lock *lk, const char *conninfo, lm_error *err) {
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
  waiter w;
  waiter_init(&w, lk->timeout_s, lk->quiet, (unsigned)time(NULL) ^ (unsigned)getpid());
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
    if ((rc = waiter_wait(&w, lk->what, holder, err))) goto cleanup;
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

static int release_table(lm_lock *lk, lm_error *err) {
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
  /* The key names the table itself: a qualified name as written, an unqualified one with
   * the schema it resolves to (or is created in), so two runs on one table exclude each
   * other whatever their search_path. */
  const char *vals[1] = {name};
  int rc = lm_exec(work,
                   "SELECT hashtext(current_database() || '.' || coalesce("
                   "  (SELECT n.nspname || '.' || c.relname FROM pg_class c "
                   "   JOIN pg_namespace n ON n.oid = c.relnamespace "
                   "   WHERE strpos($1, '.') = 0 AND c.oid = to_regclass(quote_ident($1))), "
                   "  CASE WHEN strpos($1, '.') > 0 THEN $1 "
                   "       ELSE coalesce(current_schema(), '') || '.' || $1 END))",
                   1, vals, NULL, NULL, &res, err);
  if (rc) return rc;
  lk->key1 = LM_LOCK_CLASS;
  lk->key2 = (int)strtol(PQgetvalue(res, 0, 0), NULL, 10);
  PQclear(res);
  char k1[16], k2[16];
  snprintf(k1, sizeof k1, "%d", lk->key1);
  snprintf(k2, sizeof k2, "%d", lk->key2);
  switch (mode) {
    case LM_LOCK_SESSION: rc = acquire_session(lk, conninfo, k1, k2, err); break;
    case LM_LOCK_XACT:
      rc = LM_OK; /* each transaction takes it: lm_lock_fence */
      break;
    case LM_LOCK_TABLE:
      if (!(lk->table = strdup(lock_table))) return lm_error_set(err, LM_ENOMEM, "out of memory");
      rc = acquire_table(lk, conninfo, err);
      if (rc) {
        lm_error e = {0};
        release_table(lk, &e);
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
    waiter w;
    waiter_init(&w, lk->timeout_s, lk->quiet, (unsigned)time(NULL) ^ (unsigned)getpid());
    for (;;) {
      int got = 0;
      int rc = query_bool(work, "SELECT pg_try_advisory_xact_lock($1::int, $2::int)", 2, vals, &got,
                          err);
      if (rc) return rc;
      if (got) return LM_OK;
      char holder[512];
      describe_advisory_holder(work, k1, k2, holder, sizeof holder);
      if ((rc = waiter_wait(&w, lk->what, holder, err))) return rc;
    }
  }
  if (lk->mode == LM_LOCK_TABLE) {
    int r = renew_on(lk, work, err);
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
  }
  return LM_OK;
}

int lm_lock_renew(lm_lock *lk, PGconn *work, lm_error *err) {
  if (!lk->held || lk->mode != LM_LOCK_TABLE) return LM_OK;
  int r = renew_on(lk, work, err);
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
    rc = release_table(lk, err);
  }
  if (lk->conn) PQfinish(lk->conn);
  lk->conn = NULL;
  lm_cancel_set_lock_conn(NULL);
  free(lk->table);
  lk->table = NULL;
  lk->held = 0;
  return rc;
}
