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

/* Runs every POLL_COUNT instructions in every coroutine (armed when coroutine.create or
 * coroutine.wrap makes it, below), and after a signal at every instruction of the run's main
 * thread, which the handler arms; the main thread runs without a hook until then (a count
 * hook makes the VM trap at every instruction: a sixth of the CPU of rendering migrations).
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

/* coroutine.create and coroutine.wrap, each arming the coroutine it makes: the handler
 * reaches only the run's main thread, and a coroutine inherits only the hook its creator has
 * at that moment. Upvalue 1 is the library's own function. */
static lua_State *call_library(lua_State *L) {
  luaL_checktype(L, 1, LUA_TFUNCTION);
  lua_settop(L, 1);
  lua_pushvalue(L, lua_upvalueindex(1));
  lua_insert(L, 1);
  lua_call(L, 1, 1);
  return L;
}

static void arm(lua_State *co) {
  if (co) lua_sethook(co, poll_hook, LUA_MASKCOUNT, POLL_COUNT);
}

static int l_create(lua_State *L) {
  arm(lua_tothread(call_library(L), -1));
  return 1;
}

static int l_wrap(lua_State *L) {
  /* the library's wrap returns a C closure whose first upvalue is the coroutine */
  if (lua_getupvalue(call_library(L), -1, 1)) {
    arm(lua_tothread(L, -1));
    lua_pop(L, 1);
  }
  return 1;
}

static void arm_coroutines(lua_State *L) {
  if (lua_getglobal(L, "coroutine") != LUA_TTABLE) {
    lua_pop(L, 1);
    return;
  }
  static const struct {
    const char *name;
    lua_CFunction fn;
  } armed[] = {{"create", l_create}, {"wrap", l_wrap}};
  for (size_t i = 0; i < sizeof armed / sizeof armed[0]; i++) {
    if (lua_getfield(L, -1, armed[i].name) == LUA_TFUNCTION) {
      lua_pushcclosure(L, armed[i].fn, 1);
      lua_setfield(L, -2, armed[i].name);
    } else {
      lua_pop(L, 1);
    }
  }
  lua_pop(L, 1);
}

void lm_cancel_install(lua_State *L) {
  for (int r = 0; mine < 0 && r < MAX_RUNS; r++) {
    int free_slot = 0;
    if (atomic_compare_exchange_strong(&taken[r], &free_slot, 1)) mine = r;
  }
  if (mine >= 0)
    slots[mine].L = L;
  else /* the handler cannot reach this run's state: it polls all along instead */
    lua_sethook(L, poll_hook, LUA_MASKCOUNT, POLL_COUNT);
  arm_coroutines(L);
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
