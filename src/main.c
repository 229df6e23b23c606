/* The luamigrate executable: one run of the command line (pmain.c) with the Lua modules
 * compiled in. */
#include <lauxlib.h>
#include <lualib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "app.h"
#include "bind/bind.h"
#include "pmain.h"
#include "luamigrate/luamigrate.h"

int luamigrate_main(int argc, char **argv) {
  return lm_pmain_run(argc, argv, lm_preload_program, NULL);
}

int main(int argc, char **argv) {
  return luamigrate_main(argc, argv);
}
