/* Command-line parsing: global options before the command, and the help texts. */
#ifndef LM_CLI_H
#define LM_CLI_H

#include <stddef.h>
#include <stdio.h>

#include "app.h"

typedef struct lm_command_help {
  const char *name;
  const char *usage;
  const char *summary;
  const char *options; /* lines of "  -x, --long  text" */
  const char *example;
} lm_command_help;

/* Parses global options; on success o->command and o->argc/argv are set (command may be
 * NULL when only --help/--version was given: *done is then set). */
int lm_cli_parse(int argc, char **argv, lm_opts *o, int *done, lm_error *err);
int lm_cli_take(int argc, char **argv, int *i, const char *s, const char *l, const char **val,
                lm_error *err);
const lm_command_help *lm_cli_help_for(const char *command);
void lm_cli_print_help(FILE *f);
void lm_cli_print_command_help(const lm_command_help *h, FILE *f);
/* The known command closest to `name` (for "did you mean"), or NULL. */
const char *lm_cli_suggest(const char *name);
/* The candidate closest to `name` (an option: leading dashes and "=value" are ignored): a
 * typo of at most two edits, or else a name that starts with it; NULL when none is. */
const char *lm_cli_closest(const char *name, const char *const *cands, size_t n);
/* Whether arg is a global option (one that goes before the command). */
int lm_cli_is_global(const char *arg);
/* lm_color for --color's WHEN, or -1. */
int lm_cli_color(const char *when);

#endif
