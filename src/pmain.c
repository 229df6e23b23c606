/* One run of the command line, in a Lua state of its own: parses the arguments, runs the
 * command inside a protected Lua call (so even a Lua memory error ends in a message, not a
 * crash), then releases the lock, the connection and the Lua state on every path. The
 * executable (main.c) and core.main (a Lua program running migrations in-process) both
 * come here; each says how the new state finds luamigrate's modules. */
#include "pmain.h"

#include <errno.h>
#include <lauxlib.h>
#include <lualib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "app.h"
#include "bind/bind.h"
#include "cancel.h"
#include "cli.h"
#include "cmdargs.h"
#include "conn.h"
#include "fleet.h"
#include "log.h"
#include "strbuf.h"
#include "luamigrate/luamigrate.h"
#include "workspace.h"

typedef struct run {
  lm_app *app;
  lm_error *err;
  void (*preload)(lua_State *, void *);
  void *ud;
} run;

/* os.exit in a migration, a revision file, a helper or the config would end the process
 * with whatever the run had done half-finished and no word said: it raises instead, at the
 * caller's file:line, so the run stops the way any other error stops it (rolled back). */
static int l_refuse_exit(lua_State *L) {
  return luaL_error(L,
                    "os.exit() called: a migration, revision file or config cannot end "
                    "luamigrate (raise an error with error(\"...\") instead)");
}

/* Runs the command its entry in the command table (cli.c) names: its arguments parsed, the
 * config and revision files loaded first when it needs them. */
static int dispatch(run *r) {
  lm_app *app = r->app;
  lm_error *err = r->err;
  const lm_command *c = lm_cli_find(app->opts->command);
  if (!c) return lm_error_set(err, LM_EUSAGE, "unknown command '%s'", app->opts->command);
  lm_cmdargs a;
  int rc = lm_cmdargs_parse(app->opts, c, &a, err);
  if (rc) return rc;
  if (app->opts->quiet && app->opts->verbose)
    return lm_error_set(err, LM_EUSAGE, "-q and -v contradict each other: give one");
  lm_log_setup(app->opts->quiet ? -1 : app->opts->verbose, (lm_color)app->opts->color);
  if (a.help) {
    lm_cli_print_command_help(c, stdout);
    return LM_OK;
  }
  if (app->opts->targets) {
    if (!lm_fleet_supports(c->name))
      return lm_error_set(err, LM_EUSAGE, "--targets works with %s, not with %s", LM_FLEET_COMMANDS,
                          c->name);
    lm_cancel_set_phase(LM_CANCEL_CONFIG);
    rc = lm_config_load(app, err);
    lm_cancel_set_phase(NULL);
    return rc ? rc : lm_fleet_run(app, r->preload, r->ud, err);
  }
  if (c->flags & LM_CMD_LOAD) {
    lm_cancel_set_phase(LM_CANCEL_CONFIG);
    rc = lm_config_load(app, err);
    lm_cancel_set_phase(LM_CANCEL_LOADING);
    if (rc == LM_OK) lm_workspace_preconnect(app, c->name, &a); /* while the files load */
    if (rc == LM_OK) rc = lm_loader_load(app, err);
    lm_cancel_set_phase(NULL);
    if (rc) return rc;
  }
  return c->run(app, &a, err);
}

static int pmain(lua_State *L) {
  run *r = lua_touserdata(L, 1);
  lua_settop(L, 0); /* the C pointer leaves the stack before any Lua code can see it */
  luaL_openlibs(L);
  lua_getglobal(L, "os");
  lua_pushcfunction(L, l_refuse_exit);
  lua_setfield(L, -2, "exit");
  lua_pop(L, 1);
  r->preload(L, r->ud);
  lm_cancel_install(L);
  lua_pushinteger(L, dispatch(r));
  return 1;
}

static int exit_code(int rc) {
  switch (rc) {
    case LM_OK: return LUAMIGRATE_EXIT_OK;
    case LM_EUSAGE:
    case LM_ENOTFOUND: return LUAMIGRATE_EXIT_USAGE;
    case LM_EHALFDONE: return LUAMIGRATE_EXIT_HALFDONE;
    default: return LUAMIGRATE_EXIT_ERROR;
  }
}

/* The version rows joined by ", " ("base" for none), on the run's own connection when it is
 * idle (not left in a failed transaction or lost): a fleet's report saves a connection so.
 * NULL when they cannot be read. */
static char *final_rows(lm_app *app) {
  char **ids = NULL;
  size_t n = 0;
  lm_error e = {0};
  lm_strbuf b = {0};
  if (PQstatus(app->conn) != CONNECTION_OK || PQtransactionStatus(app->conn) != PQTRANS_IDLE ||
      lm_vt_read(&app->vt, app->conn, &ids, &n, &e)) {
    lm_error_clear(&e);
    return NULL;
  }
  if (n == 0) lm_strbuf_cat(&b, "base");
  lm_strbuf_join(&b, (const char *const *)ids, n);
  lm_vt_free_ids(ids, n);
  if (b.oom) {
    free(b.s);
    return NULL;
  }
  return b.s;
}

int lm_pmain_exec(int argc, char **argv, void (*preload)(lua_State *, void *), void *ud,
                  lm_error *errp, lm_pmain_result *res) {
  lm_opts opts = {0};
  lm_app app = {0};
  lm_error err = {0};
  int done = 0;
  int rc = lm_cli_parse(argc, argv, &opts, &done, &err);
  lm_log_setup(opts.quiet ? -1 : 0, (lm_color)opts.color);
  if (rc == LM_OK && !done) {
    app.opts = &opts;
    app.envs_ref = LUA_NOREF;
    app.out = res && res->out ? res->out : stdout;
    app.L = luaL_newstate();
    if (!app.L) {
      rc = lm_error_set(&err, LM_ENOMEM, "cannot create a Lua state");
    } else {
      run r = {&app, &err, preload, ud};
      lua_pushcfunction(app.L, pmain);
      lua_pushlightuserdata(app.L, &r);
      if (lua_pcall(app.L, 1, 1, 0) != LUA_OK) {
        lm_error_set(&err, LM_ERR, "%s", luaL_optstring(app.L, -1, "error in error handling"));
        rc = LM_ERR;
      } else {
        rc = (int)lua_tointeger(app.L, -1);
        if (rc && !err.message) lm_error_set(&err, rc, "failed (code %d)", rc);
      }
    }
    if (res && app.conn && app.vt.table) res->to = final_rows(&app);
    /* The work connection goes first: a lease renewal waiting on its row lock must not
     * keep the release waiting. */
    lm_workspace_preconnect_drop(&app);
    if (app.conn) PQfinish(app.conn);
    app.conn = NULL;
    lm_cancel_set_conn(NULL);
    lm_error unlock = {0};
    if (lm_lock_release(&app.lock, &unlock) != LM_OK) {
      if (rc == LM_OK) {
        lm_error_clear(&err);
        err = unlock;
        rc = unlock.code;
      } else {
        lm_log_warn("%s", unlock.message);
        lm_error_clear(&unlock);
      }
    }
    if (app.conn) PQfinish(app.conn);
    lm_vt_free(&app.vt);
    lm_dag_free(app.dag);
    free(app.sums);
    lm_cancel_uninstall();
    if (app.L) lua_close(app.L);
    /* One transaction for the whole run: a failure rolled back every step. */
    if (rc && !app.cfg.tx_per_migration) app.steps_done = 0;
    if (res && app.steps_done) {
      res->steps = app.steps_done;
      res->from = app.first_from;
      app.first_from = NULL;
    }
    free(app.first_from);
    lm_config_free(&app.cfg);
  }
  free(opts.x);
  *errp = err;
  return rc;
}

int lm_pmain_run(int argc, char **argv, void (*preload)(lua_State *, void *), void *ud) {
  lm_error err = {0};
  int rc = lm_pmain_exec(argc, argv, preload, ud, &err, NULL);
  /* Every result, script and message on stdout is checked here, once: a full disk or a
   * closed pipe must not pass for a complete --sql script (the error is sticky in ferror). */
  errno = 0;
  if (fflush(stdout) != 0 || ferror(stdout)) {
    int e = errno;
    if (rc == LM_OK) {
      lm_error_clear(&err);
      rc = lm_error_set(&err, LM_ERR, "cannot write to standard output: %s",
                        e ? strerror(e) : "a write failed (a full disk or a closed pipe?)");
    }
  }
  if (rc != LM_OK) {
    lm_log_break();
    lm_error_print(&err, stderr, lm_log_sgr(stderr, LM_STYLE_ERROR),
                   lm_log_sgr(stderr, LM_STYLE_RESET));
  }
  lm_error_clear(&err);
  fflush(stdout);
  return exit_code(rc);
}
