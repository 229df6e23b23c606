/* Command-line parsing: global options before the command, and the one table of commands
 * (name, usage, summary, options, handler) that help, dispatch, the man page check and the
 * completions read. Knows neither Lua nor libpq. */
#ifndef LM_CLI_H
#define LM_CLI_H

#include <stddef.h>
#include <stdio.h>

#include "error.h"

typedef struct lm_opts {
  const char *config; /* -c */
  const char *url;    /* --url */
  const char **x;     /* -x KEY=VALUE, in order */
  int nx;
  int quiet;   /* -q: no step lines */
  int verbose; /* -v before the command (or after one without its own -v): more detail */
  int color;   /* lm_color: --color=auto|always|never */
  const char *lock_timeout; /* --lock-timeout SECONDS, beats the config's lock_timeout */
  const char *lock_mode;    /* --lock MODE, beats the config's lock */
  const char *targets;      /* -t PATTERN: a fleet run over the config's targets (fleet.c) */
  const char *parallel;     /* --parallel N: targets run at once */
  const char *canary;       /* --canary N: the first N targets first, the rest if all succeed */
  int keep_going;           /* --keep-going: start every target even after a failure */
  int json;                 /* --json: a fleet run's results as JSON lines */
  const char *command;
  int argc; /* the command's own arguments */
  char **argv;
} lm_opts;

struct lm_app;
struct lm_cmdargs;

enum {
  LM_CMD_LOAD = 1,     /* load the config and the revision files before it runs */
  LM_CMD_OWN_ARGS = 2, /* it parses its own arguments: all but --help are passed on */
  LM_CMD_FLEET = 4,    /* it runs over a fleet (--targets: fleet.c) */
};

typedef struct lm_command {
  const char *name;
  const char *usage;
  const char *summary;
  /* Lines of "  -x, --long ARG   text": its help, and (each --long) the options it takes. */
  const char *options;
  const char *example;
  int flags; /* LM_CMD_* */
  int (*run)(struct lm_app *app, struct lm_cmdargs *a, lm_error *err);
} lm_command;

/* Parses global options; on success o->command and o->argc/argv are set (command may be
 * NULL when only --help/--version was given: *done is then set). */
int lm_cli_parse(int argc, char **argv, lm_opts *o, int *done, lm_error *err);
int lm_cli_take(int argc, char **argv, int *i, const char *s, const char *l, const char **val,
                lm_error *err);
/* The command named `name`, or NULL. */
const lm_command *lm_cli_find(const char *name);
void lm_cli_print_help(FILE *f);
void lm_cli_print_command_help(const lm_command *c, FILE *f);
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
