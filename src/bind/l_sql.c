/* core.sql_split / core.sql_parse: src/sqlparse.c for the op layer and the linter. */
#include <stdlib.h>
#include <string.h>

#include "bind.h"
#include "sqlparse.h"

/* What the parser returns is malloc'd; a box made before the call owns it, so a Lua error
 * (memory) while its contents become Lua values frees it through __gc. */
static const char BOX_MT[] = "luamigrate.SqlBox";

static int box_gc(lua_State *L) {
  void **p = luaL_checkudata(L, 1, BOX_MT);
  free(*p);
  *p = NULL;
  return 0;
}

static void **new_box(lua_State *L) {
  void **p = lua_newuserdatauv(L, sizeof *p, 0);
  *p = NULL;
  if (luaL_newmetatable(L, BOX_MT)) {
    lua_pushcfunction(L, box_gc);
    lua_setfield(L, -2, "__gc");
    lua_pushcfunction(L, box_gc);
    lua_setfield(L, -2, "__close");
  }
  lua_setmetatable(L, -2);
  return p;
}

/* Checks argument 1 is a string without NUL bytes (the parser reads C strings). */
static const char *check_sql(lua_State *L) {
  return lm_check_text(L, 1, "SQL text");
}

/* nil, message, position: a syntax error, the way io functions report failure. */
static int push_failure(lua_State *L, lm_error *err) {
  lua_pushnil(L);
  lua_pushstring(L, err->message ? err->message : "syntax error");
  lua_pushinteger(L, err->position);
  lm_error_clear(err);
  return 3;
}

/* core.sql_split(sql) -> {stmt, ...}, {byte_offset, ...} (1-based) | nil, message, position */
static int l_sql_split(lua_State *L) {
  const char *sql = check_sql(L);
  void **box = new_box(L);
  lm_sql_span *spans = NULL;
  size_t n = 0;
  lm_error err = {0};
  if (lm_sql_split(sql, &spans, &n, &err)) return push_failure(L, &err);
  *box = spans;
  lua_createtable(L, (int)n, 0);
  lua_createtable(L, (int)n, 0);
  for (size_t i = 0; i < n; i++) {
    lua_pushlstring(L, sql + spans[i].offset, spans[i].len);
    lua_rawseti(L, -3, (lua_Integer)i + 1);
    lua_pushinteger(L, (lua_Integer)spans[i].offset + 1);
    lua_rawseti(L, -2, (lua_Integer)i + 1);
  }
  return 2;
}

/* core.sql_parse(sql) -> JSON text of the parse tree | nil, message, position */
static int l_sql_parse(lua_State *L) {
  const char *sql = check_sql(L);
  void **box = new_box(L);
  char *json = NULL;
  lm_error err = {0};
  if (lm_sql_parse(sql, &json, &err)) return push_failure(L, &err);
  *box = json;
  lua_pushstring(L, json);
  return 1;
}

void lm_sql_register(lua_State *L) {
  static const luaL_Reg fns[] = {
      {"sql_split", l_sql_split}, {"sql_parse", l_sql_parse}, {NULL, NULL}};
  luaL_setfuncs(L, fns, 0);
}
