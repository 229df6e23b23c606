/* One run of the command line in a fresh Lua state (pmain.c). */
#ifndef LM_PMAIN_H
#define LM_PMAIN_H

#include <lua.h>
#include <stdio.h>

#include "error.h"

/* Runs `luamigrate argv[1] ...` and returns its exit status. `preload(L, ud)` makes
 * luamigrate's Lua modules findable in the new state L (its standard libraries are open). */
int lm_pmain_run(int argc, char **argv, void (*preload)(lua_State *, void *), void *ud);
/* What a run did to its database, for a fleet's report: the steps committed, where the
 * first of them started from (malloc'd; NULL when none ran), and its version rows at the
 * end, read on its own connection ("a, b" or "base"; malloc'd; NULL when it had none, or
 * it could not be read). `out`, set by the caller, is where the command's report goes
 * instead of stdout (a fleet target's capture). */
typedef struct lm_pmain_result {
  size_t steps;
  char *from;
  char *to;
  FILE *out;
} lm_pmain_result;

/* The same run, its result an lm_* code and *err (the caller's, to clear) instead of a
 * printed message and an exit status, and (res not NULL) what it did: a fleet's worker
 * threads (fleet.c) run targets so. */
int lm_pmain_exec(int argc, char **argv, void (*preload)(lua_State *, void *), void *ud,
                  lm_error *err, lm_pmain_result *res);

#endif
