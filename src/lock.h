/* The migration lock, in three modes:
 *
 *   session  a session-level advisory lock held on a dedicated connection for the whole run,
 *            taken with pg_try_advisory_lock polled with backoff and jitter (a blocking
 *            waiter would deadlock against the holder's CREATE INDEX CONCURRENTLY). Refused
 *            behind a connection pooler, where the lock would land on one server connection
 *            and the run's later statements on others.
 *   xact     a transaction-level advisory lock taken at the start of every migration
 *            transaction on the work connection; safe through any pooler, but autocommit
 *            blocks (which commit) cannot run under it.
 *   table    a lease row (owner, host, pid, heartbeat, expiry) in <version_table>_lock,
 *            renewed by a heartbeat thread on its own connection and checked under a row
 *            lock at the start of every migration transaction (fencing): safe through any
 *            pooler and with autocommit blocks.
 *
 * Waiting reports who holds the lock. No Lua here. */
#ifndef LM_LOCK_H
#define LM_LOCK_H

#include <libpq-fe.h>
#include <pthread.h>

#include "error.h"

typedef enum { LM_LOCK_SESSION = 0, LM_LOCK_XACT, LM_LOCK_TABLE } lm_lock_mode;

typedef struct lm_lock {
  lm_lock_mode mode;
  int held;
  PGconn *conn; /* session: the connection holding the lock; table: the lease connection */
  int key1, key2;
  int backend_pid;  /* session: the backend holding the lock, for messages */
  int lost;         /* session: lm_lock_check found its connection gone (and said so) */
  int waited;       /* session: another held the lock at the first try, so this run waited */
  char what[160];   /* "migration lock for 'luamigrate_version'", for messages */
  double timeout_s; /* xact: how long each transaction may wait; < 0 forever */
  int quiet;
  /* table mode */
  char *table;    /* quoted, possibly schema-qualified lease table */
  char owner[96]; /* this run's token: host, pid and random bits */
  double lease_s;
  char *conninfo;
  PGconn *hb_conn;
  pthread_t hb_thread;
  int hb_started;
  pthread_mutex_t hb_mu;
  pthread_cond_t hb_cv;
  int hb_stop;
} lm_lock;

/* Parses "session", "xact" or "table"; -1 for anything else. */
int lm_lock_mode_parse(const char *s);
const char *lm_lock_mode_name(lm_lock_mode m);

/* Takes the lock for a run against the database `work` is connected to. `name` is the
 * version table as configured; the lock is per database and fully qualified version table
 * (an unqualified one in the schema where `work` finds it, or would create it), whatever
 * the search_path;
 * `lock_table` the quoted lease table (table mode). Waits at most `timeout_s` seconds
 * (< 0: forever); `quiet` suppresses the waiting messages on stderr. In xact mode this
 * only checks the mode can work and remembers the key: lm_lock_fence takes the lock.
 * On LM_ELOCK the message names the holder. A session lock takes over lk->conn when it is
 * set (opened with the work connection, lm_conn_open_n), else opens its own; it works the
 * key out, checks for a pooler and takes the lock in one round trip when nobody holds it. */
int lm_lock_acquire(lm_lock *lk, lm_lock_mode mode, PGconn *work, const char *conninfo,
                    const char *name, const char *lock_table, double timeout_s, double lease_s,
                    int quiet, lm_error *err);

/* At the start of every transaction on the work connection that reads or moves the version
 * table: xact mode takes the transaction lock (waiting as acquire does); table mode checks,
 * under a row lock that stops a take-over until this transaction ends, that the lease is
 * still this run's. Nothing in session mode. */
int lm_lock_fence(lm_lock *lk, PGconn *work, lm_error *err);

/* Just before such a transaction commits: table mode renews the lease inside it, so a
 * waiter queued on the row lock sees a fresh expiry. Nothing in the other modes. */
int lm_lock_renew(lm_lock *lk, PGconn *work, lm_error *err);

/* Whether the lock is still held, without a round trip: session mode reads what the lock's
 * connection has received (a terminated backend's farewell, its close) and fails with
 * LM_ELOCK once that connection is gone, as the server dropped the lock with it. LM_OK in
 * the other modes, whose fence checks at each transaction. A lm_conn_guard_fn. */
int lm_lock_check(void *lk, lm_error *err);

/* Releases the lock and closes its connections; checks that the server did release it.
 * Safe to call on a lock that is not held. */
int lm_lock_release(lm_lock *lk, lm_error *err);

/* 1 when a connection pooler sits between us and the server: the backend pid the
 * connection reported at start-up is not the one that runs its statements. *server_pid
 * gets the latter. Negative on error. */
int lm_conn_pooled(PGconn *conn, int *server_pid, lm_error *err);

#endif
