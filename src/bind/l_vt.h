/* core.version_table (l_vt.c): version_table.c's table suffixes and statements for Lua. */
#ifndef LM_L_VT_H
#define LM_L_VT_H

#include <lua.h>

/* Sets core.version_table on the core table at the top of the stack. */
void lm_vt_register(lua_State *L);

#endif
