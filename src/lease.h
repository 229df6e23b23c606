/* The lease lock of lock = "table" (lease.c): the table-mode half of lm_lock. */
#ifndef LM_LEASE_H
#define LM_LEASE_H

#include <libpq-fe.h>

#include "error.h"
#include "lock.h"

/* Takes the lease in lk->table (creating the table on a first run), waiting as lock.h
 * describes, on a connection of its own that it keeps in lk->conn; then starts the
 * heartbeat on a second one. */
int lm_lease_acquire(lm_lock *lk, const char *conninfo, lm_error *err);
/* Renews the lease on `conn` if it is still this run's: 1 renewed, 0 not ours, < 0 error. */
int lm_lease_renew(lm_lock *lk, PGconn *conn, lm_error *err);
/* lm_lock_fence in table mode: renews the lease inside the transaction on `work`, or fails
 * with LM_ELOCK naming who holds it now. */
int lm_lease_fence(lm_lock *lk, PGconn *work, lm_error *err);
/* Stops the heartbeat, closes its connection and deletes the row if it is still ours
 * (LM_ELOCK when it was taken over). lk->conn stays open for the caller to close. */
int lm_lease_release(lm_lock *lk, lm_error *err);

#endif
