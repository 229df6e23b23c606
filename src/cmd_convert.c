/* convert alembic PATH [-o DIR]: an Alembic project as a luamigrate one (luamigrate.convert
 * does the work). */
#include <lua.h>

#include "app.h"
#include "bind/bind.h"
#include "cmdargs.h"
#include "commands.h"

/* convert alembic PATH [-o DIR]: luamigrate.convert.main does it all (arguments included).
 * It returns nil when everything converted, or the summary of what did not (exit 1); it
 * raises for a usage error or a project it cannot read (exit 2). */
int lm_cmd_convert(lm_app *app, lm_cmdargs *a, lm_error *err) {
  lua_State *L = app->L;
  int rc = lm_push_module_field(L, "luamigrate.convert", "main", err);
  if (rc) return rc;
  lua_createtable(L, a->npos, 0);
  for (int i = 0; i < a->npos; i++) {
    lua_pushstring(L, a->pos[i]);
    lua_rawseti(L, -2, i + 1);
  }
  if (lm_pcall(L, 1, 1) != LUA_OK) {
    lm_error_from_lua(L, -1, LM_EUSAGE, err);
    lua_pop(L, 1);
    return LM_EUSAGE;
  }
  if (lua_type(L, -1) == LUA_TSTRING) rc = lm_error_set(err, LM_ERR, "%s", lua_tostring(L, -1));
  lua_pop(L, 1);
  return rc;
}
