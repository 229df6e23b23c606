/* A command's own arguments (cmdargs.c): its options, as its entry in the command table
 * lists them, and its positional arguments. */
#ifndef LM_CMDARGS_H
#define LM_CMDARGS_H

#include "cli.h"

typedef struct lm_cmdargs {
  const char *pos[64];
  int npos;
  int verbose, purge, splice, help, sql, dry_run, indicate_current, check_heads, resolve_deps, json,
      autogenerate, resume, baseline, offline, downgrade, locks;
  const char *message, *rev_id, *head, *rev_range, *branch_label, *output;
  const char *depends[32];
  int ndeps;
} lm_cmdargs;

/* Parses o->argv[1..] for command c. -v and -q of a command that has no -v of its own are
 * the global ones (set in o). --help sets a->help and stops. */
int lm_cmdargs_parse(lm_opts *o, const lm_command *c, lm_cmdargs *a, lm_error *err);
/* Between min and max (max < 0: any number) positional arguments, else a usage error
 * naming `what` and the command's usage line. */
int lm_cmdargs_positional(const lm_opts *o, const lm_cmdargs *a, int min, int max, const char *what,
                          lm_error *err);

#endif
