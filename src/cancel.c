/* Signal handling for runs: the only process-wide state luamigrate keeps, because a signal
 * handler can reach nothing else. Everything done in the handler is async-signal-safe:
 * PQcancel, lua_sethook, setting a flag, restoring the default action. */
#include "cancel.h"

#include <lauxlib.h>
#include <signal.h>
#include <string.h>

static volatile sig_atomic_t requested;
static PGcancel *volatile cancel_obj;
static lua_State *volatile hook_state;

static void stop_hook(lua_State *L, lua_Debug *ar) {
  (void)ar;
  lua_sethook(L, NULL, 0, 0);
  luaL_error(L, "interrupted by signal: the migration in progress is rolled back");
}

static void on_signal(int sig) {
  requested = 1;
  signal(sig, SIG_DFL); /* a second signal ends the process */
  PGcancel *c = cancel_obj;
  if (c) {
    char buf[256];
    PQcancel(c, buf, sizeof buf);
  }
  lua_State *L = hook_state;
  if (L) lua_sethook(L, stop_hook, LUA_MASKCALL | LUA_MASKRET | LUA_MASKCOUNT, 1);
}

void lm_cancel_install(lua_State *L) {
  hook_state = L;
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_signal;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, NULL);
  sigaction(SIGTERM, &sa, NULL);
}

void lm_cancel_set_conn(PGconn *conn) {
  PGcancel *old = cancel_obj;
  cancel_obj = NULL;
  if (old) PQfreeCancel(old);
  if (conn) cancel_obj = PQgetCancel(conn);
}

int lm_cancel_requested(void) {
  return requested;
}
