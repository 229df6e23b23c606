/* Signal handling for runs: the only process-wide state luamigrate keeps, because a signal
 * handler can reach nothing else. Everything done in the handler is async-signal-safe:
 * PQcancel, lua_sethook, setting a flag, restoring the default action. */
#include "cancel.h"

#include <lauxlib.h>
#include <signal.h>
#include <string.h>

static volatile sig_atomic_t requested;
/* The connections whose statement in flight a signal cancels: the work connection and the
 * lock's (a lease or lock query waiting on another session's lock must not outlast it). */
static PGcancel *volatile cancel_obj[2];
static lua_State *volatile hook_state;
/* What the user code running now is, for the interrupt's message; NULL while the engine's
 * own Lua runs, which the hook then leaves alone. */
static const char *volatile phase;

#define POLL_COUNT 1000

/* Runs every POLL_COUNT instructions in every thread (coroutines inherit it from the thread
 * that creates them), and after a signal at every instruction of the thread it fires in.
 * It raises for as long as user code runs: a pcall or a coroutine that catches the error
 * runs into it again at its next instruction. Count events only: a C function such as
 * lm_pcall's traceback handler runs no instruction, so it is never interrupted. */
static void poll_hook(lua_State *L, lua_Debug *ar) {
  (void)ar;
  const char *msg = phase;
  if (!requested || !msg) return;
  lua_sethook(L, poll_hook, LUA_MASKCOUNT, 1);
  luaL_where(L, 0); /* in a hook, level 0 is the function running: the loop */
  lua_pushstring(L, msg);
  lua_concat(L, 2);
  lua_error(L);
}

static void on_signal(int sig) {
  requested = 1;
  signal(sig, SIG_DFL); /* a second signal ends the process */
  for (int i = 0; i < 2; i++) {
    PGcancel *c = cancel_obj[i];
    if (c) {
      char buf[256];
      PQcancel(c, buf, sizeof buf);
    }
  }
  lua_State *L = hook_state;
  if (L) lua_sethook(L, poll_hook, LUA_MASKCOUNT, 1);
}

void lm_cancel_install(lua_State *L) {
  hook_state = L;
  lua_sethook(L, poll_hook, LUA_MASKCOUNT, POLL_COUNT);
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_signal;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, NULL);
  sigaction(SIGTERM, &sa, NULL);
}

static void set_slot(int i, PGconn *conn) {
  PGcancel *old = cancel_obj[i];
  cancel_obj[i] = NULL;
  if (old) PQfreeCancel(old);
  if (conn) cancel_obj[i] = PQgetCancel(conn);
}

void lm_cancel_set_conn(PGconn *conn) {
  set_slot(0, conn);
}

void lm_cancel_set_lock_conn(PGconn *conn) {
  set_slot(1, conn);
}

void lm_cancel_set_phase(const char *message) {
  phase = message;
}

int lm_cancel_requested(void) {
  return requested;
}
