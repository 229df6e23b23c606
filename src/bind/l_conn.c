/* The Conn userdata (metatable luamigrate.Conn): :execute and :query with bound
 * parameters, :status, :close. Results live in a Lua-owned box while rows are converted, so
 * no PGresult leaks when a conversion raises. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bind.h"
#include "cancel.h"
#include "conn.h"
#include "log.h"

typedef struct luaconn {
  PGconn *conn;             /* NULL once closed or detached */
  int borrowed;             /* not ours to PQfinish */
  int trace;                /* print each statement, its parameters and timing (dry runs) */
  const lm_conn_hook *hook; /* around :execute, or NULL */
  int queue;                /* :execute may send without waiting (lm_conn_set_queue) */
} luaconn;

typedef struct luaresult {
  PGresult *res;
} luaresult;

int luaopen_luamigrate_conn(lua_State *L);

void lm_push_conn(lua_State *L, PGconn *conn, int borrowed) {
  /* The metatables exist once luamigrate.core is loaded; a run whose files never required
   * it (an empty project) still needs them. */
  if (luaL_getmetatable(L, "luamigrate.Conn") == LUA_TNIL) {
    lua_pop(L, 1);
    luaopen_luamigrate_conn(L);
  }
  lua_pop(L, 1);
  luaconn *c = lua_newuserdatauv(L, sizeof *c, 0);
  c->conn = NULL;
  c->borrowed = borrowed;
  c->trace = 0;
  c->hook = NULL;
  c->queue = 0;
  luaL_setmetatable(L, "luamigrate.Conn");
  c->conn = conn;
}

void lm_conn_attach(lua_State *L, int idx, PGconn *conn) {
  luaconn *c = luaL_checkudata(L, idx, "luamigrate.Conn");
  c->conn = conn;
  c->borrowed = 0;
}

void lm_conn_detach(lua_State *L, int idx) {
  luaconn *c = luaL_checkudata(L, idx, "luamigrate.Conn");
  c->conn = NULL;
}

PGconn *lm_conn_pg(lua_State *L, int idx) {
  luaconn *c = luaL_checkudata(L, idx, "luamigrate.Conn");
  return c->conn;
}

void lm_conn_set_trace(lua_State *L, int idx, int on) {
  luaconn *c = luaL_checkudata(L, idx, "luamigrate.Conn");
  c->trace = on;
}

void lm_conn_set_hook(lua_State *L, int idx, const lm_conn_hook *hook) {
  luaconn *c = luaL_checkudata(L, idx, "luamigrate.Conn");
  c->hook = hook;
}

void lm_conn_set_queue(lua_State *L, int idx, int on) {
  luaconn *c = luaL_checkudata(L, idx, "luamigrate.Conn");
  c->queue = on;
}

/* ---- pipelined statements ----------------------------------------------------------
 * The queue is the connection's (lm_conn_queue): each entry a statement sent and not yet
 * answered, with where its op was; its stack frames are kept here, in the registry. */
/* ---- tracebacks of queued statements --------------------------------------------------
 * An error raised at once gets luaL_traceback's text from lm_pcall's handler. Formatting
 * that for every queued statement would cost more than the rest of the run (it looks each
 * frame's function up among the loaded modules), so the frames are kept as they are and
 * the same text is written only for the statement that failed: "stack traceback:", then per
 * frame "\n\t<source>:<line>: in <what>", "(...tail calls...)" after a tail call, and the
 * middle of a deep stack elided. <what> is "function '<module>.<field>'" when a loaded
 * module holds the function (looked up when the text is written), else the name the calling
 * code used, "main chunk", "function <source:line>" or "?". */
enum { TB_HEAD = 10, TB_TAIL = 11 }; /* frames kept either side of an elided middle */

static const char FRAMES_KEY[] = "luamigrate.pipe.frames"; /* slot -> frames of its op */
/* Whose each queued statement is: slot -> step * LM_PIPE_KINDS + kind (lm_pipe_set_step,
 * lm_pipe_queue_own); the step queueing now; and the code of the last failure raised. */
static const char CODES_KEY[] = "luamigrate.pipe.codes";
static const char STEP_KEY[] = "luamigrate.pipe.step";
static const char FAILED_KEY[] = "luamigrate.pipe.failed";

/* Pushes a table of the frames from `level` on: per frame its "\n\t<source>:<line>: in "
 * prefix, its function, the name to use when no module holds it, and whether it was a tail
 * call (an elided middle: its "..." line and false). */
static void push_frames(lua_State *L, int level) {
  lua_Debug ar;
  int last = level;
  while (lua_getstack(L, last, &ar)) last++;
  int nframes = last - level, skip_from = -1, skipped = 0;
  if (nframes > TB_HEAD + TB_TAIL + 1) {
    skip_from = level + TB_HEAD;
    skipped = nframes - TB_HEAD - TB_TAIL;
  }
  lua_createtable(L, 4 * (nframes < 32 ? nframes : 32), 0);
  int t = lua_gettop(L), k = 0;
  for (int lv = level; lua_getstack(L, lv, &ar); lv++) {
    if (lv == skip_from) {
      /* the count shown leaves out the frame this line stands in for, as Lua's does */
      lua_pushfstring(L, "\n\t...\t(skipping %d levels)", skipped - 1);
      lua_rawseti(L, t, ++k);
      lua_pushboolean(L, 0);
      lua_rawseti(L, t, ++k);
      lua_pushliteral(L, "");
      lua_rawseti(L, t, ++k);
      lua_pushboolean(L, 0);
      lua_rawseti(L, t, ++k);
      lv += skipped - 1;
      continue;
    }
    lua_getinfo(L, "Slntf", &ar); /* pushes the function */
    if (ar.currentline > 0)
      lua_pushfstring(L, "\n\t%s:%d: in ", ar.short_src, ar.currentline);
    else
      lua_pushfstring(L, "\n\t%s: in ", ar.short_src);
    lua_rawseti(L, t, ++k);
    lua_rawseti(L, t, ++k); /* the function */
    if (ar.namewhat && *ar.namewhat)
      lua_pushfstring(L, "%s '%s'", ar.namewhat, ar.name ? ar.name : "?");
    else if (ar.what && *ar.what == 'm')
      lua_pushliteral(L, "main chunk");
    else if (ar.what && *ar.what != 'C')
      lua_pushfstring(L, "function <%s:%d>", ar.short_src, ar.linedefined);
    else
      lua_pushliteral(L, "?");
    lua_rawseti(L, t, ++k);
    lua_pushboolean(L, ar.istailcall);
    lua_rawseti(L, t, ++k);
  }
}

/* Looks for the function at idx in the loaded modules and in their fields, in the order
 * lua_next gives; pushes "<module>" or "<module>.<field>" (without a "_G." prefix) and
 * returns 1, or pushes nothing and returns 0. */
static int push_module_name(lua_State *L, int idx) {
  idx = lua_absindex(L, idx);
  lua_getfield(L, LUA_REGISTRYINDEX, LUA_LOADED_TABLE);
  int loaded = lua_gettop(L);
  lua_pushnil(L);
  while (lua_next(L, loaded)) {
    if (lua_type(L, -2) == LUA_TSTRING) {
      if (lua_rawequal(L, -1, idx)) {
        lua_pushvalue(L, -2);
        lua_replace(L, loaded);
        lua_settop(L, loaded);
        return 1;
      }
      if (lua_istable(L, -1)) {
        int mod = lua_gettop(L);
        lua_pushnil(L);
        while (lua_next(L, mod)) {
          if (lua_type(L, -2) == LUA_TSTRING && lua_rawequal(L, -1, idx)) {
            const char *m = lua_tostring(L, mod - 1);
            if (!strcmp(m, "_G"))
              lua_pushvalue(L, -2);
            else
              lua_pushfstring(L, "%s.%s", m, lua_tostring(L, -2));
            lua_replace(L, loaded);
            lua_settop(L, loaded);
            return 1;
          }
          lua_pop(L, 1);
        }
      }
    }
    lua_pop(L, 1);
  }
  lua_settop(L, loaded - 1);
  return 0;
}

/* Pushes the traceback text of queue slot `slot` and returns it (NULL: none kept). */
static const char *push_traceback(lua_State *L, size_t slot) {
  lua_getfield(L, LUA_REGISTRYINDEX, FRAMES_KEY);
  if (!lua_istable(L, -1) || lua_rawgeti(L, -1, (lua_Integer)slot + 1) != LUA_TTABLE) {
    lua_pop(L, 2);
    return NULL;
  }
  int frames = lua_gettop(L);
  luaL_Buffer b;
  luaL_buffinit(L, &b);
  luaL_addstring(&b, "stack traceback:");
  for (lua_Integer k = 1; lua_rawgeti(L, frames, k) == LUA_TSTRING; k += 4) {
    luaL_addvalue(&b); /* the prefix */
    if (lua_rawgeti(L, frames, k + 1) == LUA_TFUNCTION && push_module_name(L, -1)) {
      lua_pushfstring(L, "function '%s'", lua_tostring(L, -1));
      lua_remove(L, -2);
      lua_remove(L, -2);
    } else {
      lua_pop(L, 1);
      lua_rawgeti(L, frames, k + 2);
    }
    luaL_addvalue(&b);
    lua_rawgeti(L, frames, k + 3);
    if (lua_toboolean(L, -1)) luaL_addstring(&b, "\n\t(...tail calls...)");
    lua_pop(L, 1);
  }
  lua_pop(L, 1); /* the nil that ended the loop */
  luaL_pushresult(&b);
  lua_replace(L, frames - 1);
  lua_settop(L, frames - 1);
  return lua_tostring(L, -1);
}

/* The code slot `slot` was queued with (an op of step 0 when none was noted). */
static lua_Integer slot_code(lua_State *L, size_t slot) {
  int top = lua_gettop(L);
  lua_Integer code = 0;
  if (lua_getfield(L, LUA_REGISTRYINDEX, CODES_KEY) == LUA_TTABLE &&
      lua_rawgeti(L, -1, (lua_Integer)slot + 1) == LUA_TNUMBER)
    code = lua_tointeger(L, -1);
  lua_settop(L, top);
  return code;
}

/* Notes `code` for the slots first .. first+n-1 of the queue. */
static void note_codes(lua_State *L, size_t first, int n, lua_Integer code) {
  if (lua_getfield(L, LUA_REGISTRYINDEX, CODES_KEY) != LUA_TTABLE) {
    lua_pop(L, 1);
    lua_createtable(L, LM_CONN_PIPE_MAX, 0);
    lua_pushvalue(L, -1);
    lua_setfield(L, LUA_REGISTRYINDEX, CODES_KEY);
  }
  for (int i = 0; i < n; i++) {
    lua_pushinteger(L, code);
    lua_rawseti(L, -2, (lua_Integer)first + i + 1);
  }
  lua_pop(L, 1);
}

static lua_Integer current_step(lua_State *L) {
  lua_getfield(L, LUA_REGISTRYINDEX, STEP_KEY);
  lua_Integer step = lua_tointeger(L, -1);
  lua_pop(L, 1);
  return step;
}

void lm_pipe_set_step(lua_State *L, int step) {
  lua_pushinteger(L, step);
  lua_setfield(L, LUA_REGISTRYINDEX, STEP_KEY);
}

int lm_pipe_failed(lua_State *L) {
  lua_getfield(L, LUA_REGISTRYINDEX, FAILED_KEY);
  int code = lua_isinteger(L, -1) ? (int)lua_tointeger(L, -1) : -1;
  lua_pop(L, 1);
  lua_pushnil(L);
  lua_setfield(L, LUA_REGISTRYINDEX, FAILED_KEY);
  return code;
}

int lm_pipe_queue_own(lua_State *L, PGconn *conn, const lm_stmt *s, int kind, lm_error *err) {
  size_t before = lm_conn_queued(conn);
  int sent = lm_conn_queue(conn, s, NULL, err);
  if (sent < 0) return sent;
  note_codes(L, before, sent, current_step(L) * LM_PIPE_KINDS + kind);
  return LM_OK;
}

void lm_pipe_sync(lua_State *L, PGconn *conn) {
  lua_pushnil(L);
  lua_setfield(L, LUA_REGISTRYINDEX, FAILED_KEY);
  if (!lm_conn_pipe_pending(conn)) return;
  size_t failed;
  lm_error err = {0};
  int rc = lm_conn_pipe_sync(conn, &failed, &err);
  if (rc == LM_OK) {
    lm_conn_pipe_discard(conn);
    return;
  }
  lua_Integer code = failed < lm_conn_queued(conn) ? slot_code(L, failed) : -1;
  lua_pushinteger(L, code);
  lua_setfield(L, LUA_REGISTRYINDEX, FAILED_KEY);
  const int op = code >= 0 && code % LM_PIPE_KINDS == LM_PIPE_OP;
  if (op && lm_conn_cancelled(rc, &err) == LM_EINTR) {
    /* The signal cancelled the op's statement: say so as its hook would have, at the op's
     * file:line. (The run loop's own statements are raised as the server failed them, for
     * it to apply the same rule.) */
    lm_error_clear(&err);
    lm_error_set(&err, LM_ERR, LM_CANCEL_MIGRATION);
  }
  /* Raised as the failing statement's op would have raised it (Lua copies of the strings:
   * the queue is freed first, so nothing leaks through the raise). */
  const char *where = NULL, *tb = NULL;
  if (op) {
    const char *w = lm_conn_queued_where(conn, failed);
    where = w ? lua_pushstring(L, w) : NULL;
    tb = push_traceback(L, failed);
  }
  lm_conn_pipe_discard(conn);
  lm_raise_error_at(L, &err, where, tb);
}

int lm_pipe_l_sync(lua_State *L) {
  luaconn *c = luaL_checkudata(L, 1, "luamigrate.Conn");
  if (c->conn) lm_pipe_sync(L, c->conn);
  return 0;
}

/* Sends sql without waiting, remembering the op's file:line and stack frames as an error
 * raised here would show them (level 0: this C function, as lm_pcall's handler sees the
 * function that raised at its level 1). */
static void queue_statement(lua_State *L, luaconn *c, const char *sql) {
  lm_push_user_where(L, 0);
  const char *where = lua_tostring(L, -1);
  if (lua_getfield(L, LUA_REGISTRYINDEX, FRAMES_KEY) != LUA_TTABLE) {
    lua_pop(L, 1);
    lua_createtable(L, LM_CONN_PIPE_MAX, 0);
    lua_pushvalue(L, -1);
    lua_setfield(L, LUA_REGISTRYINDEX, FRAMES_KEY);
  }
  int slots = lua_gettop(L);
  push_frames(L, 0);
  lm_error err = {0};
  size_t before = lm_conn_queued(c->conn);
  const lm_stmt s = {.sql = sql};
  int sent = lm_conn_queue(c->conn, &s, where, &err);
  if (sent < 0) {
    lm_conn_pipe_discard(c->conn);
    lm_raise_error(L, &err);
  }
  for (int i = 0; i < sent; i++) {
    lua_pushvalue(L, slots + 1);
    lua_rawseti(L, slots, (lua_Integer)before + i + 1);
  }
  lua_settop(L, slots - 2);
  note_codes(L, before, sent, current_step(L) * LM_PIPE_KINDS + LM_PIPE_OP);
}

static luaconn *checkbox(lua_State *L) {
  luaconn *c = luaL_checkudata(L, 1, "luamigrate.Conn");
  if (!c->conn) luaL_error(L, "attempt to use a closed connection");
  return c;
}

/* __gc, __close and :close(): idempotent. */
static int l_conn_close(lua_State *L) {
  luaconn *c = luaL_checkudata(L, 1, "luamigrate.Conn");
  if (c->conn && !c->borrowed) PQfinish(c->conn);
  c->conn = NULL;
  return 0;
}

static int l_result_gc(lua_State *L) {
  luaresult *r = luaL_checkudata(L, 1, "luamigrate.Result");
  if (r->res) PQclear(r->res);
  r->res = NULL;
  return 0;
}

/* Converts arguments first..top to text parameters. The strings stay on the Lua stack (and
 * the pointer array is a userdata), so nothing needs freeing if anything raises. Pushes the
 * array userdata; returns the count. */
static int collect_params(lua_State *L, int first, const char ***values) {
  int top = lua_gettop(L);
  int n = top >= first ? top - first + 1 : 0;
  const char **vals = lua_newuserdatauv(L, sizeof(char *) * (size_t)(n ? n : 1), 0);
  for (int i = 0; i < n; i++) {
    int idx = first + i;
    switch (lua_type(L, idx)) {
      case LUA_TNIL: vals[i] = NULL; break;
      case LUA_TBOOLEAN: vals[i] = lua_toboolean(L, idx) ? "true" : "false"; break;
      case LUA_TNUMBER:
        if (lua_isinteger(L, idx)) {
          lua_pushfstring(L, "%I", (LUAI_UACINT)lua_tointeger(L, idx));
        } else {
          char buf[64];
          snprintf(buf, sizeof buf, "%.17g", (double)lua_tonumber(L, idx));
          lua_pushstring(L, buf);
        }
        lua_replace(L, idx);
        vals[i] = lua_tostring(L, idx);
        break;
      case LUA_TSTRING: {
        char what[32];
        snprintf(what, sizeof what, "parameter $%d", i + 1);
        vals[i] = lm_check_text(L, idx, what);
        break;
      }
      default:
        return luaL_error(L, "parameter $%d: cannot bind a %s value", i + 1, luaL_typename(L, idx));
    }
  }
  *values = vals;
  return n;
}

/* The dry-run trace of one statement: the SQL as sent, its parameters, then the outcome. */
static void trace_statement(const char *sql, int n, const char *const *vals) {
  lm_log_before_stdout();
  size_t len = strlen(sql);
  while (len && (sql[len - 1] == ';' || sql[len - 1] == ' ' || sql[len - 1] == '\n')) len--;
  printf("%.*s;\n", (int)len, sql);
  for (int i = 0; i < n; i++) {
    /* n > 0 means collect_params filled vals (its luaL_error does not return, which the
     * analyzer does not know). */
    /* NOLINTNEXTLINE(clang-analyzer-core.NullDereference) */
    if (vals[i])
      printf("--   $%d = '%s'\n", i + 1, vals[i]);
    else
      printf("--   $%d = NULL\n", i + 1);
  }
  fflush(stdout); /* before any notice the statement causes reaches stderr */
}

/* Runs the statement at arg 2 with params from arg 3; leaves a Result box on the stack
 * holding the result. Raises a structured error on failure. With `hooked`, the Conn's hook
 * sees the statement; NULL is returned when it skipped it. */
static PGresult *run(lua_State *L, luaconn *c, int hooked) {
  const char *sql = lm_check_text(L, 2, "statement");
  const char **vals = NULL;
  int n = collect_params(L, 3, &vals);
  luaresult *box = lua_newuserdatauv(L, sizeof *box, 0);
  box->res = NULL;
  luaL_setmetatable(L, "luamigrate.Result");
  lm_error err = {0};
  PGresult *res = NULL;
  double t0 = 0;
  /* -v shows the statement on stderr as it starts, unless a dry run traces it anyway. */
  int verbose = !c->trace && lm_log_verbose();
  const lm_conn_hook *hook = hooked ? c->hook : NULL;
  /* Not inside a coroutine (an error raised there carries the main thread's traceback),
   * and only inside the migration's transaction: after a COMMIT in op.execute each
   * statement commits on its own, which a pipeline's implicit transaction would not do. */
  int queue = c->queue && hooked && n == 0 && !c->trace && lm_conn_pipe_open(c->conn);
  if (queue) {
    queue = lua_pushthread(L);
    lua_pop(L, 1);
  }
  if (queue && PQpipelineStatus(c->conn) == PQ_PIPELINE_OFF)
    queue = lm_conn_begin_pending(c->conn) || PQtransactionStatus(c->conn) == PQTRANS_INTRANS;
  if (queue && lm_conn_queued(c->conn) + 2 > LM_CONN_PIPE_MAX)
    lm_pipe_sync(L, c->conn); /* room for it and a held-back BEGIN */
  if (!queue) lm_pipe_sync(L, c->conn);
  if (hook) {
    int skip = hook->before(hook->ud, sql, n, vals, &err);
    if (skip < 0) lm_raise_error(L, &err);
    if (skip) return NULL;
  }
  if (queue) {
    queue_statement(L, c, sql);
    /* The hook's `after` matters only inside autocommit blocks, which never queue. */
    if (hook) {
      lm_error ignore = {0}; /* nothing to say about a statement not run yet */
      hook->after(hook->ud, NULL, &ignore);
      lm_error_clear(&ignore);
    }
    return NULL;
  }
  if (c->trace) {
    trace_statement(sql, n, vals);
    t0 = lm_log_clock_ms();
  } else if (verbose) {
    lm_log_statement(sql, n, vals);
    t0 = lm_log_clock_ms();
  }
  int rc;
  for (;;) {
    rc = lm_exec(c->conn, sql, n, n ? vals : NULL, NULL, NULL, &res, &err);
    if (rc == LM_EINTR) { /* lm_conn_cancelled: the signal stopped it, not its own failure */
      lm_error_clear(&err);
      lm_error_set(&err, LM_ERR, LM_CANCEL_MIGRATION);
    }
    if (!hook) break;
    lm_error after = {0};
    int again = hook->after(hook->ud, rc == LM_OK ? NULL : &err, &after);
    if (again > 0) { /* the hook wants it run once more (outside a transaction) */
      PQclear(res);
      res = NULL;
      lm_error_clear(&err);
      continue;
    }
    if (again < 0) {
      PQclear(res);
      res = NULL;
      lm_error_clear(&err);
      err = after;
      rc = err.code;
    } else {
      lm_error_clear(&after);
    }
    break;
  }
  if (rc != LM_OK) {
    if (verbose) lm_log_break();
    if (c->trace) {
      printf("-- ERROR %s after %.2f ms: %s\n\n", err.sqlstate ? err.sqlstate : "",
             lm_log_clock_ms() - t0, err.message ? err.message : "");
      fflush(stdout);
    }
    lm_raise_error(L, &err);
  }
  if (verbose) lm_log_statement_end(lm_log_clock_ms() - t0);
  if (c->trace) {
    const char *tuples = PQcmdTuples(res);
    if (PQresultStatus(res) == PGRES_TUPLES_OK)
      printf("-- %.2f ms, %d row%s\n\n", lm_log_clock_ms() - t0, PQntuples(res),
             PQntuples(res) == 1 ? "" : "s");
    else if (tuples && *tuples)
      printf("-- %.2f ms, %s row%s affected\n\n", lm_log_clock_ms() - t0, tuples,
             strcmp(tuples, "1") ? "s" : "");
    else
      printf("-- %.2f ms\n\n", lm_log_clock_ms() - t0);
    fflush(stdout);
  }
  box->res = res;
  return res;
}

static void push_value(lua_State *L, const PGresult *res, int row, int col) {
  const char *v = PQgetvalue(res, row, col);
  switch (PQftype(res, col)) {
    case 16: /* bool */ lua_pushboolean(L, v[0] == 't'); break;
    case 20: /* int8 */
    case 21: /* int2 */
    case 23: /* int4 */
    case 26: /* oid */ lua_pushinteger(L, (lua_Integer)strtoll(v, NULL, 10)); break;
    case 700: /* float4 */
    case 701: /* float8 */ lua_pushnumber(L, (lua_Number)strtod(v, NULL)); break;
    default: lua_pushlstring(L, v, (size_t)PQgetlength(res, row, col));
  }
}

/* Pushes the rows of res keyed by column name (NULL is nil), a table of each column's type
 * OID by name, and the column names in order. */
static void push_rows(lua_State *L, const PGresult *res) {
  int nrows = PQntuples(res), ncols = PQnfields(res);
  lua_createtable(L, nrows, 0);
  for (int r = 0; r < nrows; r++) {
    lua_createtable(L, 0, ncols);
    for (int c = 0; c < ncols; c++) {
      if (PQgetisnull(res, r, c)) continue;
      push_value(L, res, r, c);
      lua_setfield(L, -2, PQfname(res, c));
    }
    lua_rawseti(L, -2, r + 1);
  }
  lua_createtable(L, 0, ncols);
  for (int c = 0; c < ncols; c++) {
    lua_pushinteger(L, (lua_Integer)PQftype(res, c));
    lua_setfield(L, -2, PQfname(res, c));
  }
  /* the column names in the result's order: a row read by position (SQLAlchemy's row[0]) */
  lua_createtable(L, ncols, 0);
  for (int c = 0; c < ncols; c++) {
    lua_pushstring(L, PQfname(res, c));
    lua_rawseti(L, -2, c + 1);
  }
}

/* conn:execute(sql, ...) -> number of rows affected (0 when the command reports none), and
 * the rows a statement returned (UPDATE ... RETURNING: op.backfill) with their type OIDs and
 * column names, or nothing: unlike :query it goes through the hook (journal, dry-run
 * trace), as an op's statement. */
static int l_conn_execute(lua_State *L) {
  PGresult *res = run(L, checkbox(L), 1);
  const char *tuples = res ? PQcmdTuples(res) : NULL;
  lua_pushinteger(L, tuples && *tuples ? strtoll(tuples, NULL, 10) : 0);
  if (!res || PQresultStatus(res) != PGRES_TUPLES_OK) return 1;
  push_rows(L, res);
  return 4;
}

/* conn:query(sql, ...) -> array of rows keyed by column name (NULL is nil), a table of each
 * column's type OID by name (op.get_bind() decodes arrays and JSON by it), the column names
 * in order (positional access to a row), and the rows the command affected (a result's
 * rowcount: unlike :execute it never goes into a pipeline, so the count is there). */
static int l_conn_query(lua_State *L) {
  PGresult *res = run(L, checkbox(L), 0);
  push_rows(L, res);
  const char *tuples = PQcmdTuples(res);
  lua_pushinteger(L, *tuples ? strtoll(tuples, NULL, 10) : 0);
  return 4;
}

static int l_conn_status(lua_State *L) {
  luaconn *c = luaL_checkudata(L, 1, "luamigrate.Conn");
  if (!c->conn) {
    lua_pushliteral(L, "closed");
    return 1;
  }
  lm_pipe_sync(L, c->conn);
  const char *s = "unknown";
  /* A BEGIN held back for the next statement counts as sent. */
  switch (lm_conn_begin_pending(c->conn) ? PQTRANS_INTRANS : PQtransactionStatus(c->conn)) {
    case PQTRANS_IDLE: s = "idle"; break;
    case PQTRANS_ACTIVE: s = "active"; break;
    case PQTRANS_INTRANS: s = "intrans"; break;
    case PQTRANS_INERROR: s = "inerror"; break;
    case PQTRANS_UNKNOWN: s = "unknown"; break;
  }
  lua_pushstring(L, s);
  return 1;
}

/* conn:literal(s): s as an SQL string literal escaped by libpq for this connection's
 * client encoding and standard_conforming_strings (PQescapeLiteral). In SJIS, BIG5, GBK and
 * the like a character's second byte can be 0x5C; only an escaper that knows the encoding
 * leaves it alone instead of taking it for a backslash. Same form as luamigrate.quote's
 * offline literal: '...' or E'...' (libpq's leading space before E dropped). */
static int l_pqmem_gc(lua_State *L) {
  char **box = luaL_checkudata(L, 1, "luamigrate.PQmem");
  if (*box) PQfreemem(*box);
  *box = NULL;
  return 0;
}

static int l_conn_literal(lua_State *L) {
  luaconn *c = luaL_checkudata(L, 1, "luamigrate.Conn");
  size_t len;
  const char *s = luaL_checklstring(L, 2, &len);
  if (!c->conn) return luaL_error(L, "connection is closed");
  /* libpq's string lives in a box Lua owns before it exists, so a raise never leaks it */
  char **box = lua_newuserdatauv(L, sizeof *box, 0);
  *box = NULL;
  luaL_setmetatable(L, "luamigrate.PQmem");
  if (!(*box = PQescapeLiteral(c->conn, s, len)))
    return luaL_error(L, "cannot quote a string literal: %s", PQerrorMessage(c->conn));
  lua_pushstring(L, (*box)[0] == ' ' ? *box + 1 : *box);
  PQfreemem(*box);
  *box = NULL;
  return 1;
}

static int l_conn_tostring(lua_State *L) {
  luaconn *c = luaL_checkudata(L, 1, "luamigrate.Conn");
  if (!c->conn) {
    lua_pushliteral(L, "luamigrate.Conn (closed)");
    return 1;
  }
  char *d = lm_conn_describe(c->conn);
  lua_pushfstring(L, "luamigrate.Conn (%s)", d ? d : "?");
  free(d);
  return 1;
}

int luaopen_luamigrate_conn(lua_State *L) {
  static const luaL_Reg methods[] = {
      {"execute", l_conn_execute}, {"query", l_conn_query}, {"status", l_conn_status},
      {"literal", l_conn_literal}, {"close", l_conn_close}, {NULL, NULL},
  };
  if (luaL_newmetatable(L, "luamigrate.PQmem")) {
    lua_pushcfunction(L, l_pqmem_gc);
    lua_setfield(L, -2, "__gc");
  }
  lua_pop(L, 1);
  if (luaL_newmetatable(L, "luamigrate.Result")) {
    lua_pushcfunction(L, l_result_gc);
    lua_setfield(L, -2, "__gc");
  }
  lua_pop(L, 1);
  if (luaL_newmetatable(L, "luamigrate.Conn")) {
    luaL_newlib(L, methods);
    lua_setfield(L, -2, "__index");
    lua_pushcfunction(L, l_conn_close);
    lua_setfield(L, -2, "__gc");
    lua_pushcfunction(L, l_conn_close);
    lua_setfield(L, -2, "__close");
    lua_pushcfunction(L, l_conn_tostring);
    lua_setfield(L, -2, "__tostring");
  }
  return 1;
}
