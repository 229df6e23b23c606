/* Interrupts: SIGINT/SIGTERM cancel the statement in flight (PQcancel), stop running Lua
 * through a hook, and let the run loop roll back and unlock. A second signal kills at once
 * (the server then rolls back and drops the session lock on its own). */
#ifndef LM_CANCEL_H
#define LM_CANCEL_H

#include <libpq-fe.h>

struct lua_State;

void lm_cancel_install(struct lua_State *L);
/* The connection whose statements a signal cancels; NULL forgets it. */
void lm_cancel_set_conn(PGconn *conn);
int lm_cancel_requested(void);

#endif
