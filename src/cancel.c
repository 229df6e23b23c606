/* Signal handling for runs: the only process-wide state luamigrate keeps, because a signal
 * handler can reach nothing else (a signal stops every run of the process). Everything done in the
 * handler is async-signal-safe: PQcancel, lua_sethook, setting a flag, restoring the default
 * action. */
#include "cancel.h"

#include <lauxlib.h>
#include <signal.h>
#include <stdatomic.h>
#include <string.h>

static volatile sig_atomic_t requested;

/* One slot per run in progress (a thread of its own each: core.main in two threads runs two),
 * taken by lm_cancel_install and given back by lm_cancel_uninstall: the connections whose
 * statement in flight a signal cancels (the work connection and the lock's: a lease or lock
 * query waiting on another session's lock must not outlast it) and the Lua state whose hook
 * it arms. The handler reaches every run; a run finds its own slot through `mine`. */
enum { MAX_RUNS = LM_CANCEL_RUNS };
typedef struct run_slot {
  PGcancel *volatile cancel[2];
  lua_State *volatile L;
} run_slot;
static run_slot slots[MAX_RUNS];
static atomic_int taken[MAX_RUNS];
static _Thread_local int mine = -1;
/* What the user code running now in this thread's run is, for the interrupt's message; NULL
 * while the engine's own Lua runs, which the hook then leaves alone (the hook runs in the
 * thread of its Lua state, so the thread's own value is the run's). */
static _Thread_local const char *phase;

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
  for (int r = 0; r < MAX_RUNS; r++) {
    for (int i = 0; i < 2; i++) {
      PGcancel *c = slots[r].cancel[i];
      if (c) {
        char buf[256];
        PQcancel(c, buf, sizeof buf);
      }
    }
    lua_State *L = slots[r].L;
    if (L) lua_sethook(L, poll_hook, LUA_MASKCOUNT, 1);
  }
}

void lm_cancel_install(lua_State *L) {
  for (int r = 0; mine < 0 && r < MAX_RUNS; r++) {
    int free_slot = 0;
    if (atomic_compare_exchange_strong(&taken[r], &free_slot, 1)) mine = r;
  }
  if (mine >= 0) slots[mine].L = L;
  lua_sethook(L, poll_hook, LUA_MASKCOUNT, POLL_COUNT);
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_signal;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, NULL);
  sigaction(SIGTERM, &sa, NULL);
}

static void set_slot(int i, PGconn *conn) {
  if (mine < 0) return; /* more runs at once than slots: signals stop it between steps */
  PGcancel *old = slots[mine].cancel[i];
  slots[mine].cancel[i] = NULL;
  if (old) PQfreeCancel(old);
  if (conn) slots[mine].cancel[i] = PQgetCancel(conn);
}

void lm_cancel_uninstall(void) {
  if (mine < 0) return;
  set_slot(0, NULL);
  set_slot(1, NULL);
  slots[mine].L = NULL;
  atomic_store(&taken[mine], 0);
  mine = -1;
  phase = NULL;
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
