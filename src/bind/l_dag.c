/* luamigrate.core.dag(): the revision DAG as a Lua object, so specs and tools can build
 * graphs and ask for heads, resolution and plans in-process. Ids in, ids out. */
#include <stdlib.h>
#include <string.h>

#include "bind.h"
#include "dag.h"

typedef struct luadag {
  lm_dag *dag;
  int finished;
} luadag;

static luadag *checkdag(lua_State *L) {
  luadag *d = luaL_checkudata(L, 1, "luamigrate.Dag");
  if (!d->dag) luaL_error(L, "attempt to use a freed dag");
  return d;
}

static int l_dag_gc(lua_State *L) {
  luadag *d = luaL_checkudata(L, 1, "luamigrate.Dag");
  lm_dag_free(d->dag);
  d->dag = NULL;
  return 0;
}

/* Reads a nil | string | array-of-strings field into a userdata-backed array on the stack. */
static size_t strlist(lua_State *L, int tidx, const char *name, const char ***out) {
  lua_getfield(L, tidx, name);
  int v = lua_gettop(L);
  size_t n = 0;
  if (lua_type(L, v) == LUA_TSTRING) {
    n = 1;
  } else if (lua_type(L, v) == LUA_TTABLE) {
    n = lua_rawlen(L, v);
  } else if (!lua_isnil(L, v)) {
    luaL_error(L, "field '%s' must be nil, a string or a table of strings", name);
  }
  const char **arr = lua_newuserdatauv(L, sizeof(char *) * (n ? n : 1), 0);
  if (lua_type(L, v) == LUA_TSTRING) {
    arr[0] = lua_tostring(L, v);
  } else {
    for (size_t i = 0; i < n; i++) {
      lua_rawgeti(L, v, (lua_Integer)i + 1);
      if (lua_type(L, -1) != LUA_TSTRING) luaL_error(L, "field '%s' must hold only strings", name);
      arr[i] = lua_tostring(L, -1);
      lua_pop(L, 1); /* still referenced by the table at v */
    }
  }
  *out = arr;
  return n;
}

/* Field `name` of the table at t, left on the stack: a string, or def when it is nil and
 * optional. Raises naming the field otherwise. */
static const char *strfield(lua_State *L, int t, const char *name, int optional, const char *def) {
  int type = lua_getfield(L, t, name);
  if (type == LUA_TSTRING) return lua_tostring(L, -1);
  if (type == LUA_TNIL && optional) return def;
  luaL_error(L, optional ? "field '%s' must be nil or a string" : "field '%s' must be a string",
             name);
  return NULL;
}

/* dag:add{id=, down=, labels=, deps=, path=, doc=} -> index (0-based) */
static int l_dag_add(lua_State *L) {
  luadag *d = checkdag(L);
  luaL_checktype(L, 2, LUA_TTABLE);
  const char *id = strfield(L, 2, "id", 0, NULL);
  const char **down, **labels, **deps;
  size_t nd = strlist(L, 2, "down", &down);
  size_t nl = strlist(L, 2, "labels", &labels);
  size_t ne = strlist(L, 2, "deps", &deps);
  const char *path = strfield(L, 2, "path", 1, id);
  const char *doc = strfield(L, 2, "doc", 1, NULL);
  lm_error err = {0};
  int idx = lm_dag_add(d->dag, id, down, nd, labels, nl, deps, ne, path, doc, &err);
  if (idx < 0) return lm_raise_error(L, &err);
  lua_pushinteger(L, idx);
  return 1;
}

static int l_dag_finish(lua_State *L) {
  luadag *d = checkdag(L);
  lm_error err = {0};
  if (lm_dag_finish(d->dag, &err) != LM_OK) return lm_raise_error(L, &err);
  d->finished = 1;
  lua_settop(L, 1);
  return 1;
}

static void push_ids(lua_State *L, const lm_dag *dag, const lm_revset *s) {
  lua_createtable(L, (int)s->n, 0);
  for (size_t i = 0; i < s->n; i++) {
    lua_pushstring(L, lm_dag_id(dag, s->idx[i]));
    lua_rawseti(L, -2, (lua_Integer)i + 1);
  }
}

/* Reads an array of ids (arg idx) into set; unknown ids raise. */
static void read_ids(lua_State *L, int idx, const lm_dag *dag, lm_revset *set) {
  if (lua_isnoneornil(L, idx)) return;
  luaL_checktype(L, idx, LUA_TTABLE);
  size_t n = lua_rawlen(L, idx);
  for (size_t i = 0; i < n; i++) {
    lua_rawgeti(L, idx, (lua_Integer)i + 1);
    int r = lm_dag_find(dag, luaL_checkstring(L, -1));
    if (r < 0) {
      lm_revset_free(set);
      luaL_error(L, "unknown revision '%s'", lua_tostring(L, -1));
    }
    if (lm_revset_push(set, r) != LM_OK) {
      lm_revset_free(set);
      luaL_error(L, "out of memory");
    }
    lua_pop(L, 1);
  }
}

/* Runs one set-producing call and pushes the ids, freeing every set before any raise. */
static int finish_set(lua_State *L, const lm_dag *dag, int rc, lm_revset *a, lm_revset *b,
                      lm_revset *out, lm_error *err) {
  lm_revset_free(a);
  lm_revset_free(b);
  if (rc < 0) {
    lm_revset_free(out);
    return lm_raise_error(L, err);
  }
  push_ids(L, dag, out);
  lm_revset_free(out);
  return 1;
}

static int l_dag_heads(lua_State *L) {
  luadag *d = checkdag(L);
  lm_revset out = {0};
  lm_error err = {0};
  int rc = lm_dag_heads(d->dag, &out);
  if (rc < 0) lm_error_set(&err, rc, "out of memory");
  return finish_set(L, d->dag, rc, NULL, NULL, &out, &err);
}

static const char *const MODES[] = {"upgrade", "downgrade", "stamp", "show", NULL};

/* dag:resolve(expr, mode, current_ids) -> ids */
static int l_dag_resolve(lua_State *L) {
  luadag *d = checkdag(L);
  const char *expr = luaL_checkstring(L, 2);
  int mode = luaL_checkoption(L, 3, "show", MODES);
  lm_revset cur = {0}, out = {0};
  read_ids(L, 4, d->dag, &cur);
  lm_error err = {0};
  int rc = lm_dag_resolve(d->dag, expr, &cur, (lm_resolve_mode)mode, &out, &err);
  return finish_set(L, d->dag, rc, &cur, NULL, &out, &err);
}

/* dag:plan("upgrade"|"downgrade", current_ids, target_ids) -> ids in run order */
static int l_dag_plan(lua_State *L) {
  luadag *d = checkdag(L);
  int up = luaL_checkoption(L, 2, NULL, MODES) == 0;
  lm_revset cur = {0}, tgt = {0}, out = {0};
  read_ids(L, 3, d->dag, &cur);
  read_ids(L, 4, d->dag, &tgt);
  lm_error err = {0};
  int rc = up ? lm_dag_plan_upgrade(d->dag, &cur, &tgt, &out, &err)
              : lm_dag_plan_downgrade(d->dag, &cur, &tgt, &out, &err);
  return finish_set(L, d->dag, rc, &cur, &tgt, &out, &err);
}

static int l_dag_new(lua_State *L) {
  luadag *d = lua_newuserdatauv(L, sizeof *d, 0);
  d->dag = NULL;
  d->finished = 0;
  luaL_setmetatable(L, "luamigrate.Dag");
  d->dag = lm_dag_new();
  if (!d->dag) return luaL_error(L, "out of memory");
  return 1;
}

int luaopen_luamigrate_dag(lua_State *L) {
  static const luaL_Reg methods[] = {
      {"add", l_dag_add},         {"finish", l_dag_finish}, {"heads", l_dag_heads},
      {"resolve", l_dag_resolve}, {"plan", l_dag_plan},     {NULL, NULL},
  };
  if (luaL_newmetatable(L, "luamigrate.Dag")) {
    luaL_newlib(L, methods);
    lua_setfield(L, -2, "__index");
    lua_pushcfunction(L, l_dag_gc);
    lua_setfield(L, -2, "__gc");
    lua_pushcfunction(L, l_dag_gc);
    lua_setfield(L, -2, "__close");
  }
  lua_pop(L, 1);
  lua_pushcfunction(L, l_dag_new);
  return 1;
}
