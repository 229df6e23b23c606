/* The migration lock: a session-level PostgreSQL advisory lock held on a dedicated
 * connection for the whole run, taken with pg_try_advisory_lock polled with backoff and
 * jitter (a blocking waiter would deadlock against the holder's CREATE INDEX
 * CONCURRENTLY), reporting who holds it while waiting. No Lua here. */
#ifndef LM_LOCK_H
#define LM_LOCK_H

#include <libpq-fe.h>

#include "error.h"

typedef struct lm_lock {
  PGconn *conn; /* dedicated connection; NULL when not held */
  int key1, key2;
} lm_lock;

/* Opens a dedicated connection with `conninfo` and takes the lock named by the database,
 * the current schema and `name` (the version table). Waits at most `timeout_s` seconds
 * (< 0: forever). `quiet` suppresses the waiting messages on stderr. On LM_ELOCK the
 * message names the holder (pid, application_name, since). */
int lm_lock_acquire(lm_lock *lk, const char *conninfo, const char *name, double timeout_s,
                    int quiet, lm_error *err);

/* Releases the lock and closes its connection; checks that the server did release it.
 * Safe to call on a lock that is not held. */
int lm_lock_release(lm_lock *lk, lm_error *err);

#endif
