/* luamigrate.core: module entry point, the protected-call helper with its error-table
 * message handler, and conversions between Lua error tables and lm_error. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "bind.h"
#include "cli.h"
#include "conn.h"
#include "l_vt.h"
#include "log.h"
#include "pmain.h"

int luaopen_luamigrate_conn(lua_State *L);
int luaopen_luamigrate_dag(lua_State *L);
int luaopen_luamigrate_lock(lua_State *L);

void lm_push_user_where(lua_State *L, int level) {
  lua_Debug ar;
  for (; lua_getstack(L, level, &ar); level++) {
    if (!lua_getinfo(L, "Sl", &ar)) continue;
    if (ar.source && ar.source[0] == '@' && ar.currentline > 0) {
      lua_pushfstring(L, "%s:%d", ar.short_src, ar.currentline);
      return;
    }
  }
  lua_pushnil(L);
}

const char *lm_check_text(lua_State *L, int idx, const char *what) {
  size_t len;
  const char *s = luaL_checklstring(L, idx, &len);
  if (strlen(s) != len) luaL_error(L, "%s contains a NUL byte", what);
  return s;
}

static int msghandler(lua_State *L) {
  if (!lua_istable(L, 1)) {
    const char *msg = lua_tostring(L, 1);
    if (!msg) {
      if (luaL_callmeta(L, 1, "__tostring") && lua_type(L, -1) == LUA_TSTRING)
        msg = lua_tostring(L, -1);
      else
        msg = lua_pushfstring(L, "(error object is a %s value)", luaL_typename(L, 1));
    }
    lua_createtable(L, 0, 4);
    lua_pushstring(L, msg);
    lua_setfield(L, -2, "message");
    lua_replace(L, 1);
    lua_settop(L, 1);
  }
  if (lua_getfield(L, 1, "traceback") == LUA_TNIL) {
    luaL_traceback(L, L, NULL, 1);
    lua_setfield(L, 1, "traceback");
  }
  lua_pop(L, 1);
  if (lua_getfield(L, 1, "where") == LUA_TNIL) {
    lm_push_user_where(L, 1);
    lua_setfield(L, 1, "where");
  }
  lua_pop(L, 1);
  return 1;
}

int lm_pcall(lua_State *L, int nargs, int nresults) {
  int base = lua_gettop(L) - nargs;
  lua_pushcfunction(L, msghandler);
  lua_insert(L, base);
  int st = lua_pcall(L, nargs, nresults, base);
  lua_remove(L, base);
  return st;
}

int lm_push_module_field(lua_State *L, const char *module, const char *name, lm_error *err) {
  /* A module already loaded is what require would return: no call needed (this runs for
   * every step of a long run). */
  lua_getfield(L, LUA_REGISTRYINDEX, LUA_LOADED_TABLE);
  if (lua_getfield(L, -1, module) == LUA_TTABLE) {
    lua_remove(L, -2);
    lua_getfield(L, -1, name);
    lua_remove(L, -2);
    return LM_OK;
  }
  lua_pop(L, 2);
  lua_getglobal(L, "require");
  lua_pushstring(L, module);
  if (lm_pcall(L, 1, 1) != LUA_OK) {
    lm_error_from_lua(L, -1, LM_ERR, err);
    lua_pop(L, 1);
    return LM_ERR;
  }
  lua_getfield(L, -1, name);
  lua_remove(L, -2);
  return LM_OK;
}

static char *field(lua_State *L, int idx, const char *name) {
  char *s = NULL;
  lua_getfield(L, idx, name);
  if (lua_type(L, -1) == LUA_TSTRING) s = strdup(lua_tostring(L, -1));
  lua_pop(L, 1);
  return s;
}

/* A helper module required by a migration runs in the ordinary globals, where the
 * migration's op and sa are not: Lua's "(global 'op')" gets the line that fixes it. */
static void missing_global_hint(lm_error *err) {
  static const char *const names[][2] = {{"(global 'op')", "op"}, {"(global 'sa')", "sa"}};
  if (err->hint || !err->message) return;
  for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
    if (!strstr(err->message, names[i][0])) continue;
    char hint[256];
    snprintf(hint, sizeof hint,
             "only migration files get %s as a global; a helper module requires it: "
             "local %s = require \"luamigrate.%s\"",
             names[i][1], names[i][1], names[i][1]);
    lm_error_setfield(&err->hint, hint);
    return;
  }
}

void lm_error_from_lua(lua_State *L, int idx, int code, lm_error *err) {
  idx = lua_absindex(L, idx);
  lm_error_clear(err);
  err->code = code;
  if (!lua_istable(L, idx)) {
    const char *m = lua_tostring(L, idx);
    err->message = strdup(m ? m : "(error object is not a string)");
    missing_global_hint(err);
    return;
  }
  err->message = field(L, idx, "message");
  if (!err->message) err->message = strdup("(error without a message)");
  err->detail = field(L, idx, "detail");
  err->hint = field(L, idx, "hint");
  err->sqlstate = field(L, idx, "sqlstate");
  err->statement = field(L, idx, "statement");
  err->context = field(L, idx, "context");
  lua_getfield(L, idx, "position");
  err->position = (int)lua_tointeger(L, -1);
  lua_pop(L, 1);
  missing_global_hint(err);
}

static int error_tostring(lua_State *L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  lua_getfield(L, 1, "message");
  lua_getfield(L, 1, "sqlstate");
  if (lua_isstring(L, -1))
    lua_pushfstring(L, "%s (SQLSTATE %s)", lua_tostring(L, -2), lua_tostring(L, -1));
  else
    lua_pushstring(L, luaL_optstring(L, -2, "error"));
  return 1;
}

static void set_str(lua_State *L, const char *name, const char *v) {
  if (!v) return;
  lua_pushstring(L, v);
  lua_setfield(L, -2, name);
}

int lm_raise_error(lua_State *L, lm_error *err) {
  return lm_raise_error_at(L, err, NULL, NULL);
}

int lm_raise_error_at(lua_State *L, lm_error *err, const char *where, const char *traceback) {
  lua_createtable(L, 0, 10);
  set_str(L, "where", where);
  set_str(L, "traceback", traceback);
  set_str(L, "message", err->message ? err->message : "error");
  set_str(L, "detail", err->detail);
  set_str(L, "hint", err->hint);
  set_str(L, "sqlstate", err->sqlstate);
  set_str(L, "statement", err->statement);
  set_str(L, "context", err->context);
  if (err->position) {
    lua_pushinteger(L, err->position);
    lua_setfield(L, -2, "position");
  }
  if (luaL_newmetatable(L, "luamigrate.Error")) {
    lua_pushcfunction(L, error_tostring);
    lua_setfield(L, -2, "__tostring");
  }
  lua_setmetatable(L, -2);
  lm_error_clear(err); /* nothing malloc'd may outlive the raise */
  return lua_error(L);
}

/* core.connect(conninfo) -> Conn (owned: closed on __gc/__close/:close()). */
static int l_core_connect(lua_State *L) {
  const char *conninfo = luaL_optstring(L, 1, NULL);
  lua_settop(L, 1);
  lm_push_conn(L, NULL, 0); /* the box first, so a raise below leaks nothing */
  lm_error err = {0};
  PGconn *conn = lm_conn_open(conninfo, &err);
  if (!conn) return lm_raise_error(L, &err);
  lm_conn_attach(L, -1, conn);
  return 1;
}

static int l_core_redact(lua_State *L) {
  char *s = lm_conn_redact(luaL_checkstring(L, 1));
  if (!s) return luaL_error(L, "out of memory");
  lua_pushstring(L, s);
  free(s);
  return 1;
}

/* core.closest(name, {candidates}): the candidate the CLI's "did you mean" would pick for
 * name (lm_cli_closest), or nil; the op and sa layers suggest with the same rule. */
static int l_core_closest(lua_State *L) {
  const char *name = luaL_checkstring(L, 1);
  luaL_checktype(L, 2, LUA_TTABLE);
  lua_Integer n = luaL_len(L, 2);
  if (n > 512) n = 512;
  const char *cands[512];
  for (lua_Integer i = 1; i <= n; i++) {
    lua_rawgeti(L, 2, i); /* each string stays alive in the table at index 2 */
    cands[i - 1] = lua_tostring(L, -1);
    lua_pop(L, 1);
    if (!cands[i - 1]) return luaL_argerror(L, 2, "candidates must be strings");
  }
  const char *best = lm_cli_closest(name, cands, (size_t)n);
  if (best)
    lua_pushstring(L, best);
  else
    lua_pushnil(L);
  return 1;
}

/* core.md5_hex(s): MD5 of s in lowercase hex. SQLAlchemy shortens an over-long convention
 * name with the last 4 digits of it, so names match the databases Alembic built. */
static int l_core_md5_hex(lua_State *L) {
  size_t len;
  const char *s = luaL_checklstring(L, 1, &len);
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int mdlen = 0;
  if (!EVP_Digest(s, len, md, &mdlen, EVP_md5(), NULL)) return luaL_error(L, "MD5 failed");
  char hex[2 * EVP_MAX_MD_SIZE + 1];
  for (size_t i = 0; i < mdlen; i++) {
    static const char digits[] = "0123456789abcdef";
    hex[2 * i] = digits[md[i] >> 4];
    hex[(2 * i) + 1] = digits[md[i] & 15];
  }
  lua_pushlstring(L, hex, 2 * (size_t)mdlen);
  return 1;
}

/* core.nul_free(v): true when no string in v (its keys and values, tables to a depth of
 * 6, read raw; keys only when they are strings) holds a NUL byte, false when one does, nil when v
 * has more than a budget of tables to look through (a graph of shared tables): op.lua then finds
 * the path itself. Every op call asks this of its arguments, and nearly always the answer is true.
 */
enum { NUL_DEPTH = 6, NUL_BUDGET = 4096 };

static int nul_in(lua_State *L, int idx) {
  size_t n;
  const char *s = lua_tolstring(L, idx, &n);
  return memchr(s, '\0', n) != NULL;
}

/* A walk with the tables it is in, and each one's key, on the Lua stack. */
static int l_core_nul_free(lua_State *L) {
  lua_settop(L, 1);
  if (lua_type(L, 1) == LUA_TSTRING) {
    lua_pushboolean(L, !nul_in(L, 1));
    return 1;
  }
  int budget = NUL_BUDGET, depth = 1;
  if (lua_type(L, 1) != LUA_TTABLE) {
    lua_pushboolean(L, 1);
    return 1;
  }
  budget--;
  lua_pushvalue(L, 1);
  lua_pushnil(L);
  while (depth > 0) {
    if (!lua_next(L, -2)) { /* this table is done: back to the one it is in */
      lua_pop(L, 1);
      depth--;
      continue;
    }
    if ((lua_type(L, -2) == LUA_TSTRING && nul_in(L, -2)) ||
        (lua_type(L, -1) == LUA_TSTRING && nul_in(L, -1))) {
      lua_pushboolean(L, 0);
      return 1;
    }
    if (lua_type(L, -1) == LUA_TTABLE && depth < NUL_DEPTH) {
      if (--budget < 0) {
        lua_pushnil(L);
        return 1;
      }
      luaL_checkstack(L, 3, "core.nul_free");
      lua_pushnil(L); /* into the value, a table */
      depth++;
    } else {
      lua_pop(L, 1);
    }
  }
  lua_pushboolean(L, 1);
  return 1;
}

/* core.print(...): print() for migration files. It writes to stderr, so a migration's own
 * output stays out of a --sql script on stdout, and ends an open progress line first, so
 * the output does not run on from "Running upgrade ...". */
static int l_core_print(lua_State *L) {
  int n = lua_gettop(L);
  FILE *out = lm_log_stream(); /* stderr, or a fleet target's capture */
  lm_log_break();
  for (int i = 1; i <= n; i++) {
    size_t len;
    const char *s = luaL_tolstring(L, i, &len);
    if (i > 1) fputc('\t', out);
    fwrite(s, 1, len, out);
    lua_pop(L, 1);
  }
  fputc('\n', out);
  fflush(out);
  return 0;
}

/* core.main's preload: the new state finds luamigrate's Lua modules where the calling
 * program found them (its package.path and cpath), and this very module. */
static void preload_from_host(lua_State *L, void *ud) {
  lua_State *host = ud;
  static const char *const paths[] = {"path", "cpath"};
  lua_getglobal(L, "package");
  for (int i = 0; i < 2; i++) {
    int top = lua_gettop(host);
    if (lua_getglobal(host, "package") == LUA_TTABLE &&
        lua_getfield(host, -1, paths[i]) == LUA_TSTRING) {
      lua_pushstring(L, lua_tostring(host, -1));
      lua_setfield(L, -2, paths[i]);
    }
    lua_settop(host, top);
  }
  lua_pop(L, 1);
  luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_PRELOAD_TABLE);
  lua_pushcfunction(L, luaopen_luamigrate_core);
  lua_setfield(L, -2, "luamigrate.core");
  lua_pop(L, 1);
}

/* core.main{ "--url", url, "upgrade", "head" } -> exit status (0 success; see luamigrate(1)):
 * the command line run in-process, in a Lua state of its own, for a program that migrates
 * its database at start-up. Output goes to stdout and stderr as the program's would. The
 * SIGINT and SIGTERM handlers a run installs are put back afterwards. */
static int l_core_main(lua_State *L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  lua_Integer n = luaL_len(L, 1);
  if (n < 0 || n > 4096) return luaL_argerror(L, 1, "too many arguments");
  /* argv lives in a userdata box, so a raise below leaks nothing */
  char **argv = lua_newuserdatauv(L, sizeof(char *) * (size_t)(n + 2), 0);
  argv[0] = "luamigrate";
  for (lua_Integer i = 1; i <= n; i++) {
    lua_rawgeti(L, 1, i);
    if (lua_type(L, -1) != LUA_TSTRING)
      return luaL_error(L, "core.main: argument %d is a %s, not a string", (int)i,
                        luaL_typename(L, -1));
    argv[i] = (char *)lua_tostring(L, -1); /* kept alive by the argument table */
    lua_pop(L, 1);
  }
  argv[n + 1] = NULL;
  struct sigaction old_int, old_term;
  sigaction(SIGINT, NULL, &old_int);
  sigaction(SIGTERM, NULL, &old_term);
  int status = lm_pmain_run((int)n + 1, argv, preload_from_host, L);
  sigaction(SIGINT, &old_int, NULL);
  sigaction(SIGTERM, &old_term, NULL);
  lua_pushinteger(L, status);
  return 1;
}

int luaopen_luamigrate_core(lua_State *L) {
  static const luaL_Reg fns[] = {
      {"connect", l_core_connect},       {"main", l_core_main},
      {"print", l_core_print},           {"context", lm_run_l_context},
      {"redact", l_core_redact},         {"closest", l_core_closest},
      {"md5_hex", l_core_md5_hex},       {"nul_free", l_core_nul_free},
      {"pcall", lm_run_l_pcall},         {"xpcall", lm_run_l_xpcall},
      {"offline_run", lm_run_l_offline}, {NULL, NULL},
  };
  luaL_newlib(L, fns);
  lua_pushliteral(L, LM_VERSION);
  lua_setfield(L, -2, "version");
  luaopen_luamigrate_conn(L);
  lua_pop(L, 1);
  luaopen_luamigrate_dag(L);
  lua_setfield(L, -2, "dag");
  luaopen_luamigrate_lock(L);
  lua_setfield(L, -2, "lock");
  lm_sql_register(L);
  lm_vt_register(L);
  return 1;
}
