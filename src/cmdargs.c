/* A command's own arguments: the options its entry in the command table (cli.c) lists, its
 * positional arguments, and the messages for an option it does not take. */
#include "cmdargs.h"

#include <stdio.h>
#include <string.h>

static int is_relative(const char *a) {
  if (a[0] != '-' && a[0] != '+') return 0;
  if (!a[1]) return 0;
  for (const char *p = a + 1; *p; p++)
    if (*p < '0' || *p > '9') return 0;
  return 1;
}

/* The error for an option `command` does not take: a global option misplaced, or a typo of
 * one of its own options (`allowed`, space-separated names), named in a hint. */
static int unknown_option(const lm_opts *o, const char *allowed, const char *s, lm_error *err) {
  char hint[160];
  if (lm_cli_is_global(s)) {
    lm_error_set(err, LM_EUSAGE, "%s: '%.*s' is a global option: it goes before the command",
                 o->command, (int)strcspn(s, "="), s);
    snprintf(hint, sizeof hint, "luamigrate %.*s ... %s ...", (int)strcspn(s, "="), s, o->command);
    lm_error_setfield(&err->hint, hint);
    return LM_EUSAGE;
  }
  lm_error_set(err, LM_EUSAGE, "%s: unknown option '%s'", o->command, s);
  char names[24][32];
  const char *cands[24];
  size_t n = 0;
  for (const char *p = allowed; *p && n < 22;) {
    size_t len = strcspn(p, " ");
    if (len && len + 3 <= sizeof names[0]) {
      snprintf(names[n], sizeof names[n], "--%.*s", (int)len, p);
      cands[n] = names[n];
      n++;
    }
    p += len;
    while (*p == ' ') p++;
  }
  cands[n++] = "--help";
  if (!strstr(allowed, " verbose ")) cands[n++] = "--verbose";
  const char *best = lm_cli_closest(s, cands, n);
  if (best)
    snprintf(hint, sizeof hint, "did you mean '%s'? (luamigrate %s --help lists them)", best,
             o->command);
  else
    snprintf(hint, sizeof hint, "luamigrate %s --help lists its options", o->command);
  lm_error_setfield(&err->hint, hint);
  return LM_EUSAGE;
}

/* The long options a command takes, " name name ... ", from its help: each --name at the
 * head of an option line ("  -m, --message MESSAGE   text"), so the help and the parser
 * cannot disagree. NULL for a command that parses its own. */
static const char *allowed_of(const lm_command *c, char *buf, size_t size) {
  if (c->flags & LM_CMD_OWN_ARGS) return NULL;
  size_t n = 0;
  buf[n++] = ' ';
  buf[n] = '\0';
  for (const char *line = c->options; *line;) {
    size_t len = strcspn(line, "\n");
    if (!strncmp(line, "  -", 3)) {
      const char *end = strstr(line + 2, "  "); /* the option's text starts after two spaces */
      size_t head = end && end < line + len ? (size_t)(end - line) : len;
      for (const char *p = line; (p = strstr(p, "--")) && p < line + head; p += 2) {
        size_t w = strspn(p + 2, "abcdefghijklmnopqrstuvwxyz-");
        if (w && n + w + 2 < size) {
          memcpy(buf + n, p + 2, w);
          n += w;
          buf[n++] = ' ';
          buf[n] = '\0';
        }
      }
    }
    line += len;
    if (*line) line++;
  }
  return buf;
}

int lm_cmdargs_parse(lm_opts *o, const lm_command *c, lm_cmdargs *a, lm_error *err) {
  char buf[256];
  const char *allowed = allowed_of(c, buf, sizeof buf);
  memset(a, 0, sizeof *a);
  int argc = o->argc;
  char **argv = o->argv;
  for (int i = 1; i < argc; i++) {
    const char *s = argv[i];
    const char *val = NULL;
    int t;
    if (!allowed) { /* it parses its own options: everything but --help is passed on */
      if (!strcmp(s, "-h") || !strcmp(s, "--help")) {
        a->help = 1;
        return LM_OK;
      }
      if (a->npos == 64) return lm_error_set(err, LM_EUSAGE, "%s: too many arguments", o->command);
      a->pos[a->npos++] = s;
      continue;
    }
    if (s[0] != '-' || is_relative(s) || !strcmp(s, "-")) {
      if (a->npos == 64) return lm_error_set(err, LM_EUSAGE, "%s: too many arguments", o->command);
      a->pos[a->npos++] = s;
      continue;
    }
    if (!strcmp(s, "-h") || !strcmp(s, "--help")) {
      a->help = 1;
      return LM_OK;
    }
#define ALLOWED(name) (strstr(allowed, " " name " ") != NULL)
    if (ALLOWED("verbose") && (!strcmp(s, "-v") || !strcmp(s, "--verbose"))) {
      a->verbose = 1;
    } else if (ALLOWED("sql") && !strcmp(s, "--sql")) {
      a->sql = 1;
    } else if (ALLOWED("indicate-current") &&
               (!strcmp(s, "-i") || !strcmp(s, "--indicate-current"))) {
      a->indicate_current = 1;
    } else if (ALLOWED("check-heads") && (!strcmp(s, "-c") || !strcmp(s, "--check-heads"))) {
      a->check_heads = 1;
    } else if (ALLOWED("resolve-dependencies") && !strcmp(s, "--resolve-dependencies")) {
      a->resolve_deps = 1;
    } else if (ALLOWED("json") && !strcmp(s, "--json")) {
      a->json = 1;
    } else if (ALLOWED("autogenerate") && !strcmp(s, "--autogenerate")) {
      a->autogenerate = 1;
    } else if (ALLOWED("dry-run") && !strcmp(s, "--dry-run")) {
      a->dry_run = 1;
    } else if (ALLOWED("resume") && !strcmp(s, "--resume")) {
      a->resume = 1;
    } else if (ALLOWED("baseline") && !strcmp(s, "--baseline")) {
      a->baseline = 1;
    } else if (ALLOWED("output") &&
               (t = lm_cli_take(argc, argv, &i, "-o", "--output", &val, err))) {
      if (t < 0) return t;
      a->output = val;
    } else if (ALLOWED("locks") && !strcmp(s, "--locks")) {
      a->locks = 1;
    } else if (ALLOWED("offline") && !strcmp(s, "--offline")) {
      a->offline = 1;
    } else if (ALLOWED("downgrade") && !strcmp(s, "--downgrade")) {
      a->downgrade = 1;
    } else if (ALLOWED("purge") && !strcmp(s, "--purge")) {
      a->purge = 1;
    } else if (ALLOWED("splice") && !strcmp(s, "--splice")) {
      a->splice = 1;
    } else if (ALLOWED("message") &&
               (t = lm_cli_take(argc, argv, &i, "-m", "--message", &val, err))) {
      if (t < 0) return t;
      a->message = val;
    } else if (ALLOWED("rev-id") &&
               (t = lm_cli_take(argc, argv, &i, NULL, "--rev-id", &val, err))) {
      if (t < 0) return t;
      a->rev_id = val;
    } else if (ALLOWED("head") && (t = lm_cli_take(argc, argv, &i, NULL, "--head", &val, err))) {
      if (t < 0) return t;
      a->head = val;
    } else if (ALLOWED("branch-label") &&
               (t = lm_cli_take(argc, argv, &i, NULL, "--branch-label", &val, err))) {
      if (t < 0) return t;
      a->branch_label = val;
    } else if (ALLOWED("depends-on") &&
               (t = lm_cli_take(argc, argv, &i, NULL, "--depends-on", &val, err))) {
      if (t < 0) return t;
      if (a->ndeps == 32) return lm_error_set(err, LM_EUSAGE, "too many --depends-on");
      a->depends[a->ndeps++] = val;
    } else if (ALLOWED("rev-range") &&
               (t = lm_cli_take(argc, argv, &i, "-r", "--rev-range", &val, err))) {
      if (t < 0) return t;
      a->rev_range = val;
    } else if (ALLOWED("rev-range") && !strncmp(s, "-r", 2) && s[2]) {
      a->rev_range = s + 2; /* -r-3:current, as argparse allows */
    } else if (!strcmp(s, "-v") || !strcmp(s, "--verbose")) {
      o->verbose = 1; /* the command has no -v of its own: the global one */
    } else if (!strcmp(s, "-q") || !strcmp(s, "--quiet")) {
      o->quiet = 1;
    } else {
      return unknown_option(o, allowed, s, err);
    }
#undef ALLOWED
  }
  return LM_OK;
}

int lm_cmdargs_positional(const lm_opts *o, const lm_cmdargs *a, int min, int max, const char *what,
                          lm_error *err) {
  if (a->npos < min)
    return lm_error_set(err, LM_EUSAGE, "%s: missing %s (usage: %s)", o->command, what,
                        lm_cli_find(o->command)->usage);
  if (a->npos > max && max >= 0 && max < 64)
    return lm_error_set(err, LM_EUSAGE, "%s: unexpected argument '%s' (usage: %s)", o->command,
                        a->pos[max], lm_cli_find(o->command)->usage);
  return LM_OK;
}
