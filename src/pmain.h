/* One run of the command line in a fresh Lua state (pmain.c). */
#ifndef LM_PMAIN_H
#define LM_PMAIN_H

#include <lua.h>

/* Runs `luamigrate argv[1] ...` and returns its exit status. `preload(L, ud)` makes
 * luamigrate's Lua modules findable in the new state L (its standard libraries are open). */
int lm_pmain_run(int argc, char **argv, void (*preload)(lua_State *, void *), void *ud);

#endif
