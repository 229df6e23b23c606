/* The Lua side of the core: the luamigrate.core module, the Conn userdata, the run
 * context that op.* reads, and the one protected-call path every C->Lua call takes. */
#ifndef LM_BIND_H
#define LM_BIND_H

#include <lauxlib.h>
#include <libpq-fe.h>
#include <lua.h>

#include "conn.h"
#include "error.h"

int luaopen_luamigrate_core(lua_State *L);

/* Calls the function below nargs arguments under a message handler that turns any error
 * into an error table {message=, traceback=, where=, sqlstate=, detail=, hint=,
 * statement=, position=, context=} (keeping fields of structured SQL errors). `where` is
 * the file:line of the innermost frame in a user file (a chunk named "@path"). Returns
 * LUA_OK or the lua_pcall status with the error table on the stack. */
int lm_pcall(lua_State *L, int nargs, int nresults);

/* The string at idx as C reads it (up to its first NUL), raising "<what> contains a NUL
 * byte" when it holds one: libpq and the parser would silently cut it short. The one NUL
 * check where text leaves Lua for C. Raises (also luaL_checklstring's type error). */
const char *lm_check_text(lua_State *L, int idx, const char *what);

/* Pushes "path:line" of the innermost stack frame from `level` up that belongs to a user
 * file (chunk "@path"), or nil: the `where` of lm_pcall's error tables. */
void lm_push_user_where(lua_State *L, int level);

/* Pushes require(module)[name]. On failure pushes nothing, fills err and returns LM_ERR. */
int lm_push_module_field(lua_State *L, const char *module, const char *name, lm_error *err);

/* Copies the error table at idx (as left by lm_pcall) into err, with code. */
void lm_error_from_lua(lua_State *L, int idx, int code, lm_error *err);

/* Pushes a Conn userdata. A borrowed Conn never closes `conn`; lm_conn_detach makes the
 * userdata at idx "closed" without touching the connection (end of a migration run). */
void lm_push_conn(lua_State *L, PGconn *conn, int borrowed);
void lm_conn_detach(lua_State *L, int idx);
/* The connection of the Conn at idx (NULL once closed or detached). */
PGconn *lm_conn_pg(lua_State *L, int idx);
/* Dry runs: the Conn at idx prints every statement with its parameters and timing. */
void lm_conn_set_trace(lua_State *L, int idx, int on);
/* A hook around each statement of a Conn's :execute (not :query, which only reads):
 * `before` returns 1 to skip the statement (:execute then returns 0), 0 to run it, or a
 * negative code with err filled (raised as the statement's error); `after` learns how a
 * statement it let run ended (failure NULL: it succeeded). The hook is the caller's and
 * must outlive its use; NULL removes it. */
typedef struct lm_conn_hook {
  int (*before)(void *ud, const char *sql, int n, const char *const *vals, lm_error *err);
  /* After the statement ran (failure: its error, or NULL): LM_OK; > 0 to run it once more
   * (it could not run in the transaction `before` began for it); or an error (filled in
   * err) that the statement is raised with instead, e.g. it ended the transaction. */
  int (*after)(void *ud, const lm_error *failure, lm_error *err);
  void *ud;
} lm_conn_hook;
void lm_conn_set_hook(lua_State *L, int idx, const lm_conn_hook *hook);
/* Pipelined statements (the `pipeline` setting). A Conn marked with lm_conn_set_queue sends
 * each :execute without waiting for its result while its connection pipelines
 * (lm_conn_pipe_enable): the op layer's statements, whose results nothing reads. Each queued
 * statement keeps the file:line and traceback of its op, so a failure collected later reads
 * as if raised there. lm_pipe_sync collects conn's results (raising the first failure);
 * every other use of the connection through a Conn syncs first. lm_pipe_l_sync is the same
 * as a lua_CFunction taking the Conn. */
void lm_conn_set_queue(lua_State *L, int idx, int on);
void lm_pipe_sync(lua_State *L, PGconn *conn);
int lm_pipe_l_sync(lua_State *L);
/* Whose a queued statement is, so that a failure collected later is reported for the step
 * and the statement that caused it (the run loop's one pipeline, runner.c): every statement
 * queued is noted with the step set by lm_pipe_set_step and a kind, LM_PIPE_OP for an op's
 * (raised with its op's file:line) or one of the run loop's own (lm_pipe_queue_own: raised
 * without a where, for the run loop to explain). lm_pipe_failed returns the failure's
 * step * LM_PIPE_KINDS + kind once after lm_pipe_sync raised it, else -1. */
enum { LM_PIPE_OP = 0, LM_PIPE_KINDS = 16 };
void lm_pipe_set_step(lua_State *L, int step);
int lm_pipe_queue_own(lua_State *L, PGconn *conn, const lm_stmt *s, int kind, lm_error *err);
int lm_pipe_failed(lua_State *L);
/* Puts an owned connection into the (empty) Conn box at idx. */
void lm_conn_attach(lua_State *L, int idx, PGconn *conn);

/* Raises the error in err as a structured Lua error table (never returns). */
int lm_raise_error(lua_State *L, lm_error *err);
/* The same with the error table's where and traceback given (NULL: lm_pcall's handler
 * fills them in as usual): an error noticed away from where it was caused. */
int lm_raise_error_at(lua_State *L, lm_error *err, const char *where, const char *traceback);

/* The run context (src/bind/l_run.c): one luamigrate.Run userdata per running migration,
 * under a registry key of its own, holding the connection, the queue, the journal hook, the
 * autocommit protocol and emit; core.context() hands Lua its table. Closures taken from that
 * table raise "run has ended" once lm_run_close has run, so nothing in Lua reaches the C
 * frame that opened it afterwards. */

/* How the run's autocommit blocks leave and re-enter its transaction: the one protocol of
 * ctx.autocommit_block is sync the queue, leave(), fn with the queue suspended, enter(failed),
 * then fn's error first. NULL leave: blocks are refused with `refusal`. `batches`
 * (op.backfill's ctx.journal_batches) may be NULL. ud is the caller's and is reached only
 * while the run is open. */
typedef struct lm_run_mode {
  int (*leave)(lua_State *L, void *ud, lm_error *err);
  int (*enter)(lua_State *L, void *ud, int failed, lm_error *err);
  const char *refusal;
  int (*batches)(void *ud, const char *sql, int *done, int *finished, lm_error *err);
  void *ud;
} lm_run_mode;

typedef struct lm_run_spec {
  int conn_idx;             /* the Conn ops use (ctx.conn), or 0 offline */
  int queue_idx;            /* the queue Conn (ctx.queue), or 0 */
  int emit_idx;             /* offline: the value of ctx.emit, or 0 */
  int x_idx;                /* the -x table, or 0 for an empty one */
  const lm_conn_hook *hook; /* set on both Conns while the run is open, or NULL */
  const lm_run_mode *mode;  /* copied; NULL: autocommit blocks run their fn as it is */
} lm_run_spec;

/* Opens the run (closing one still open) and leaves nothing on the stack. */
void lm_run_open(lua_State *L, const lm_run_spec *spec);
/* Pushes the open run's context table (nil when none is open). */
void lm_run_push_context(lua_State *L);
/* Marks the open run ended, takes its hooks off its Conns and forgets it. */
void lm_run_close(lua_State *L);
int lm_run_l_context(lua_State *L); /* core.context(opname) */
int lm_run_l_offline(lua_State *L); /* core.offline_run(emit, x, fn, ...) */
/* core.pcall / core.xpcall, the migration environment's pcall and xpcall: while the open
 * run pipelines, the statements queued so far are collected first and the protected
 * function's statements each wait for their result. */
int lm_run_l_pcall(lua_State *L);
int lm_run_l_xpcall(lua_State *L);

/* Adds core.sql_split and core.sql_parse (src/bind/l_sql.c) to the table on the top. */
void lm_sql_register(lua_State *L);

/* Registers the project's embedded Lua modules and luamigrate.core in
 * package.preload (src/embedded.c: the executable and the fuzz targets; the Lua module
 * build finds files on package.path). */
void lm_preload_embedded(lua_State *L);
/* lm_preload_embedded and the C modules the program links (lfs, cjson): src/preload.c, in the
 * executable (an lm_pmain_run preload; ud unused). */
void lm_preload_program(lua_State *L, void *ud);

#endif
