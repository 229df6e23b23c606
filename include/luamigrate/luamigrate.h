/* luamigrate's embedding API: run the command-line program in-process, or open the core
 * module into a Lua state of your own. */
#ifndef LUAMIGRATE_H
#define LUAMIGRATE_H

#ifdef __cplusplus
extern "C" {
#endif

struct lua_State;

#define LUAMIGRATE_EXIT_OK 0
#define LUAMIGRATE_EXIT_ERROR 1    /* migration or database error */
#define LUAMIGRATE_EXIT_USAGE 2    /* usage, config or revision-file error */
#define LUAMIGRATE_EXIT_HALFDONE 3 /* a revision is half-done: see upgrade --resume */

/* Runs `luamigrate argv[1] ...` and returns its exit status. */
int luamigrate_main(int argc, char **argv);

/* Pushes the luamigrate.core module table (what require "luamigrate.core" returns). */
int luaopen_luamigrate_core(struct lua_State *L);

#ifdef __cplusplus
}
#endif

#endif
