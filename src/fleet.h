/* A fleet run (--targets): one command on each of the config's targets whose name matches
 * the pattern, at most --parallel at once, each target run as a single-target run of its
 * own in a worker thread (its own Lua state, connection, lock and transactions), with a
 * line per target as it finishes and a summary. */
#ifndef LM_FLEET_H
#define LM_FLEET_H

#include <lua.h>

#include "error.h"

struct lm_app;

#define LM_FLEET_COMMANDS "upgrade, downgrade, current, stamp, status, check and lint"

/* Whether `command` can run over a fleet (its LM_CMD_FLEET flag in cli.c). */
int lm_fleet_supports(const char *command);
/* Runs app->opts->command on the selected targets (app->cfg loaded); preload/ud as for
 * lm_pmain_run, for the targets' runs. LM_OK when every selected target succeeded. */
int lm_fleet_run(struct lm_app *app, void (*preload)(lua_State *, void *), void *ud, lm_error *err);

#endif
