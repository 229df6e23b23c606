/* core.version_table: the engine's own table-name suffixes and bookkeeping statements, as
 * src/version_table.c owns them, for the Lua that needs the same text (the --sql script's
 * DDL and version rows in luamigrate.offline, autogenerate skipping the engine's tables). */
#include "l_vt.h"

#include "version_table.h"

/* Sets core.version_table = {suffix = {history=, lock=, journal=}, sql = {create_version=,
 * ..., update=}} on the core table at the top of the stack. */
void lm_vt_register(lua_State *L) {
  static const char *const suffix[][2] = {{"history", LM_VT_HISTORY_SUFFIX},
                                          {"lock", LM_VT_LOCK_SUFFIX},
                                          {"journal", LM_VT_JOURNAL_SUFFIX}};
  lua_createtable(L, 0, 2);
  lua_createtable(L, 0, 3);
  for (size_t i = 0; i < sizeof suffix / sizeof suffix[0]; i++) {
    lua_pushstring(L, suffix[i][1]);
    lua_setfield(L, -2, suffix[i][0]);
  }
  lua_setfield(L, -2, "suffix");
  lua_createtable(L, 0, LM_VT_SQL_COUNT);
  for (int i = 0; i < LM_VT_SQL_COUNT; i++) {
    lua_pushstring(L, lm_vt_sql_text((lm_vt_sql)i));
    lua_setfield(L, -2, lm_vt_sql_name((lm_vt_sql)i));
  }
  lua_setfield(L, -2, "sql");
  lua_setfield(L, -2, "version_table");
}
