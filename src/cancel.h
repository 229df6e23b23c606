/* Interrupts: SIGINT/SIGTERM cancel the statement in flight (PQcancel), stop running Lua
 * through a hook, and let the run loop roll back and unlock. A second signal kills at once
 * (the server then rolls back and drops the session lock on its own). */
#ifndef LM_CANCEL_H
#define LM_CANCEL_H

#include <libpq-fe.h>

struct lua_State;

/* Runs a signal reaches at once, their statements in flight cancelled: a fleet's own run
 * and its worker threads' (fleet.c runs at most LM_CANCEL_RUNS - 1 targets at once). */
#define LM_CANCEL_RUNS 65

/* Registers this thread's run (its Lua state) with the signal handler; lm_cancel_uninstall
 * forgets it, and its connections, before the state is closed. */
void lm_cancel_install(struct lua_State *L);
void lm_cancel_uninstall(void);
/* The work connection and the lock's connection, whose statement in flight a signal
 * cancels; NULL forgets one. */
void lm_cancel_set_conn(PGconn *conn);
void lm_cancel_set_lock_conn(PGconn *conn);
/* While user Lua runs (the config, a revision file, a migration): the error a signal raises
 * in it, e.g. LM_CANCEL_MIGRATION; NULL while only the engine runs. A static string. */
void lm_cancel_set_phase(const char *message);
int lm_cancel_requested(void);

#define LM_CANCEL_MIGRATION "interrupted by signal: the migration in progress is rolled back"
#define LM_CANCEL_CONFIG "interrupted by signal while running the config file; nothing was changed"
#define LM_CANCEL_SCRIPT "interrupted by signal while writing the SQL script"
#define LM_CANCEL_LINT "interrupted by signal while linting the plan; nothing was changed"
#define LM_CANCEL_LOADING \
  "interrupted by signal while loading the revision files; nothing was changed"

#endif
