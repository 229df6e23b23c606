/* The project's settings (config.c): luamigrate.lua read in a sandbox, then flags and the
 * environment over it. */
#ifndef LM_CONFIG_H
#define LM_CONFIG_H

#include "cli.h"
#include "error.h"

struct lm_app;

typedef struct lm_config {
  char *path;            /* the config file as found (relative paths stay relative) */
  char *dir;             /* its directory */
  char *script_location; /* resolved against dir */
  char *versions_dir;    /* script_location/versions */
  char *url;             /* after precedence; NULL = libpq defaults */
  char *version_table;
  int tx_per_migration;
  int pipeline;              /* pipeline = false: ops' statements each wait for their result */
  double lock_timeout;       /* seconds; < 0 waits forever */
  int changed_file_is_error; /* on_changed_file = "error" */
  char *ddl_lock_timeout;    /* migration_lock_timeout: SET LOCAL lock_timeout, or NULL */
  char *statement_timeout;   /* migration_statement_timeout, or NULL */
  int lock_retries;          /* retries of a step that failed with 55P03 */
  int lock_mode;             /* lm_lock_mode: lock = "session" | "xact" | "table" */
  double lock_lease;         /* lock_lease: seconds a lease lives without a heartbeat */
} lm_config;

int lm_config_find(const lm_opts *o, char **path, lm_error *err);
/* Reads app->opts->config (or the one found) into app->cfg, with the precedence of
 * flags, environment and file. */
int lm_config_load(struct lm_app *app, lm_error *err);
void lm_config_free(lm_config *cfg);
char *lm_path_join(const char *a, const char *b);

#endif
