/* Global option parsing and the one command table: each command's name, usage, summary,
 * options (its help, and what its argument parser accepts), example and handler. Help,
 * dispatch (pmain.c), the man page check and the completions' check all read it. */
#include "cli.h"

#include "commands.h"
#include "log.h"

#include <stdlib.h>
#include <string.h>

static const lm_command COMMANDS[] = {
    {"init", "luamigrate init DIR",
     "Create a new migration environment: DIR/versions/, "
     "DIR/script.lua.tmpl and ./luamigrate.lua (and .luarc.json for editors when the "
     "LuaLS annotations are installed).",
     "", "luamigrate init migrations", 0, lm_cmd_init},
    {"revision", "luamigrate revision -m MESSAGE [options]",
     "Create a new revision file in <script_location>/versions/.",
     "  -m, --message MESSAGE   the revision's message (its docstring)\n"
     "  --rev-id ID             use ID instead of a random 12-hex id\n"
     "  --head REV              base the revision on REV (default: head)\n"
     "  --splice                allow --head to name a revision that is not a head\n"
     "  --branch-label LABEL    give the revision a branch label\n"
     "  --depends-on REV        add a dependency (repeatable)\n"
     "  --autogenerate          fill upgrade() and downgrade() from the differences\n"
     "                          between the declared schema (target_schema, default\n"
     "                          schema.lua) and the database, which must be at the\n"
     "                          heads\n",
     "luamigrate revision -m \"create account table\"\n"
     "  luamigrate revision --autogenerate -m \"add EMPLOYEE role\"",
     LM_CMD_LOAD, lm_cmd_revision},
    {"check", "luamigrate check",
     "Compare the declared schema (target_schema) with the database: exit 0 when they match, "
     "else list the differences and exit 1.",
     "", "luamigrate check", LM_CMD_LOAD | LM_CMD_FLEET, lm_cmd_check},
    {"upgrade", "luamigrate upgrade [--sql | --dry-run [--locks] | --resume] TARGET",
     "Upgrade the database to TARGET.",
     "  TARGET: head, heads, a revision id or unique prefix, +N, REV+N;\n"
     "          on one branch: LABEL@head, LABEL@heads, LABEL@+N, LABEL@REV\n"
     "          (LABEL: a branch label, or a revision id naming its line)\n"
     "  --sql                   print the SQL script instead of running it (no\n"
     "                          database needed); TARGET may be START:END\n"
     "  --dry-run               run the migrations in one transaction, print every\n"
     "                          statement with its timing, then roll everything back\n"
     "                          (autocommit blocks are listed, not run)\n"
     "  --locks                 with --dry-run: after each statement, the locks it\n"
     "                          took (pg_locks) and the tables it rewrote\n"
     "                          (relfilenode changed)\n"
     "  --resume                finish a half-done revision (interrupted inside or\n"
     "                          after an autocommit block): skip the statements its\n"
     "                          journal records done, run the rest, then go on to\n"
     "                          TARGET\n",
     "luamigrate upgrade head\n"
     "  luamigrate upgrade +1\n"
     "  luamigrate upgrade --resume head\n"
     "  luamigrate upgrade --sql head > upgrade.sql",
     LM_CMD_LOAD | LM_CMD_FLEET, lm_cmd_upgrade},
    {"downgrade", "luamigrate downgrade [--sql | --dry-run [--locks] | --resume] TARGET",
     "Revert the database to TARGET.",
     "  TARGET: base, a revision id or unique prefix, -N, REV-N;\n"
     "          on one branch: LABEL@base, LABEL@-N, LABEL@REV\n"
     "          (LABEL: a branch label, or a revision id naming its line)\n"
     "  --sql                   print the SQL script for START:END instead of running\n"
     "                          it\n"
     "  --dry-run               run the downgrade in one transaction, print every\n"
     "                          statement with its timing, then roll everything back\n"
     "  --resume                finish a revision whose downgrade is half-done: skip\n"
     "                          the statements its journal records done, run the\n"
     "                          rest, then go on to TARGET\n"
     "  --locks                 with --dry-run: each statement's locks and rewrites\n",
     "luamigrate downgrade -1\n"
     "  luamigrate downgrade --dry-run base",
     LM_CMD_LOAD | LM_CMD_FLEET, lm_cmd_downgrade},
    {"current", "luamigrate current [-v] [--check-heads] [--json]",
     "Show the database's current revision(s).",
     "  -v, --verbose           show full details and the (redacted) database URL\n"
     "  -c, --check-heads       exit 1 unless the database is on every head revision\n"
     "  --json                  a JSON array of revisions instead of text\n",
     "luamigrate current --check-heads", LM_CMD_LOAD | LM_CMD_FLEET, lm_cmd_current},
    {"heads", "luamigrate heads [-v] [--resolve-dependencies] [--json]",
     "Show the head revisions of the scripts.",
     "  -v, --verbose           show full details\n"
     "  --resolve-dependencies  leave out heads that another revision depends on\n"
     "  --json                  a JSON array of revisions instead of text\n",
     "luamigrate heads", LM_CMD_LOAD, lm_cmd_heads},
    {"branches", "luamigrate branches [-v]", "Show the branch points and their branches.",
     "  -v, --verbose           show full details\n", "luamigrate branches", LM_CMD_LOAD,
     lm_cmd_branches},
    {"merge", "luamigrate merge REVS... -m MESSAGE [options]",
     "Create a revision that merges two or more revisions (usually: heads).",
     "  -m, --message MESSAGE   the merge revision's message\n"
     "  --rev-id ID             use ID instead of a random 12-hex id\n"
     "  --branch-label LABEL    give the merge revision a branch label\n"
     "  --splice                allow revisions that are not heads\n",
     "luamigrate merge heads -m \"merge feature branches\"", LM_CMD_LOAD, lm_cmd_merge},
    {"history", "luamigrate history [-r [START]:[END]] [-v] [-i] [--json]",
     "List revisions, newest first.",
     "  -r, --rev-range RANGE   only START:END (either side may be empty; 'current' is\n"
     "                          the database's revision)\n"
     "  -i, --indicate-current  mark the database's revisions with (current)\n"
     "  -v, --verbose           show full details\n"
     "  --json                  a JSON array of revisions, newest first\n",
     "luamigrate history -r base:head\n"
     "  luamigrate history -i -r current:",
     LM_CMD_LOAD, lm_cmd_history},
    {"show", "luamigrate show [--json] REV", "Show the revision(s) REV names.",
     "  --json                  a JSON array of revisions instead of text\n",
     "luamigrate show head", LM_CMD_LOAD, lm_cmd_show},
    {"status", "luamigrate status [--json]",
     "Show where the database is, what is pending, what was applied when, and which "
     "applied files changed since.",
     "  --json                  one JSON object instead of text\n", "luamigrate status",
     LM_CMD_LOAD | LM_CMD_FLEET, lm_cmd_status},
    {"inspect", "luamigrate inspect [-o FILE] [--baseline [-m MESSAGE]]",
     "Write the database (the schemas autogenerate compares) as a schema.lua that check finds "
     "identical to it.",
     "  -o, --output FILE       write it to FILE (which must not exist), not stdout\n"
     "  --baseline              also write a first revision that creates all of it and\n"
     "                          stamp the database at it (for a database luamigrate\n"
     "                          has not run on)\n"
     "  -m, --message MESSAGE   the baseline revision's message (default: baseline)\n",
     "luamigrate inspect -o migrations/schema.lua --baseline", LM_CMD_LOAD, lm_cmd_inspect},
    {"repair", "luamigrate repair [REV...]",
     "Record the current sha256 of applied revision files edited since they ran, after the "
     "edits are reviewed, so they are no longer reported as changed.",
     "  REV...                  only these revisions (default: every changed file)\n",
     "luamigrate repair\n"
     "  luamigrate repair 3c52d30040ed",
     LM_CMD_LOAD, lm_cmd_repair},
    {"stamp", "luamigrate stamp [--purge] [--sql] REV...",
     "Set the version table to REV without running any migration.",
     "  --purge                 delete every version row first (recovers from a row\n"
     "                          that names a revision no file defines)\n"
     "  --sql                   print the SQL instead of running it (REV may be\n"
     "                          START:END)\n",
     "luamigrate stamp head\n"
     "  luamigrate stamp --purge 3c52d30040ed",
     LM_CMD_LOAD | LM_CMD_FLEET, lm_cmd_stamp},
    {"convert", "luamigrate convert alembic PATH [-o DIR]",
     "Convert an Alembic project into a luamigrate project on Alembic's version table.",
     "  PATH                    an alembic.ini, a pyproject.toml with\n"
     "                          [tool.alembic], or the directory holding one; env.py\n"
     "                          is scanned for\n"
     "                          version_table and version_table_schema, versions/*.py\n"
     "                          translated to Lua\n"
     "  -o, --output DIR        where luamigrate.lua and the script location go\n"
     "                          (default: .)\n"
     "  What cannot be translated is listed on stderr (file:line) and kept as\n"
     "  commented Python with an error() that makes its revision fail when run;\n"
     "  then exit 1.\n",
     "luamigrate convert alembic ../app/alembic.ini -o .", LM_CMD_OWN_ARGS, lm_cmd_convert},
    {"lint", "luamigrate lint [--offline] [--json] [--downgrade] [RANGE]",
     "Check the statements of pending revisions for locks, rewrites and breaking changes "
     "(squawk's rules and more; docs/safety.md): exit 1 on an error-level finding.",
     "  RANGE                   a target (default heads; base with --downgrade), or\n"
     "                          START:END\n"
     "  --offline               judge the revision files alone, with no database\n"
     "  --json                  a JSON array of findings instead of text\n"
     "  --downgrade             check the downgrade() statements instead\n",
     "luamigrate lint\n"
     "  luamigrate lint --offline --json base:head",
     LM_CMD_LOAD | LM_CMD_FLEET, lm_cmd_lint},
};

#define NCOMMANDS (sizeof COMMANDS / sizeof COMMANDS[0])

const lm_command *lm_cli_find(const char *name) {
  for (size_t i = 0; i < NCOMMANDS; i++)
    if (!strcmp(COMMANDS[i].name, name)) return &COMMANDS[i];
  return NULL;
}

/* Writes text as lines of at most 80 columns, the first continuing a line already at column
 * `at`, the others indented by `indent`. */
static void wrap(FILE *f, const char *text, size_t at, size_t indent) {
  size_t col = at;
  for (const char *p = text; *p;) {
    size_t word = strcspn(p, " ");
    if (p != text) {
      if (col + 1 + word > 80) {
        fprintf(f, "\n%*s", (int)indent, "");
        col = indent;
      } else {
        fputc(' ', f);
        col++;
      }
    }
    fprintf(f, "%.*s", (int)word, p);
    col += word;
    p += word;
    while (*p == ' ') p++;
  }
  fputc('\n', f);
}

void lm_cli_print_help(FILE *f) {
  fprintf(f,
          "usage: luamigrate [-c CONFIG] [--url URL] [-x KEY=VALUE]... [--lock-timeout S]\n"
          "                  [--lock MODE] [-q | -v] [--color WHEN]\n"
          "                  [-t PATTERN [--parallel N] [--canary N] [--keep-going]\n"
          "                  [--json]] COMMAND ...\n"
          "\n"
          "A PostgreSQL migration engine with migrations written in Lua.\n"
          "\n"
          "global options:\n"
          "  -c, --config PATH       config file (default: $LUAMIGRATE_CONFIG, else the\n"
          "                          nearest luamigrate.lua in this directory or a parent)\n"
          "  --url URL               database URL or conninfo (beats $DATABASE_URL and the\n"
          "                          config's url; libpq's PG* variables fill the rest)\n"
          "  -x KEY=VALUE            passed to migrations (op.get_x_argument())\n"
          "  --lock-timeout SECONDS  give up waiting for the migration lock after SECONDS\n"
          "                          (default: the config's lock_timeout, else wait)\n"
          "  --lock MODE             session (default), xact or table: how runs exclude\n"
          "                          each other (table and xact work through PgBouncer)\n"
          "  -q, --quiet             no progress lines (warnings, errors and server notices\n"
          "                          still show)\n"
          "  -v, --verbose           also show the connection, the lock, every statement a\n"
          "                          migration runs, with timings (on stderr), and\n"
          "                          luamigrate's own frames in tracebacks. After a command\n"
          "                          with its own -v (current, heads, branches, history)\n"
          "                          -v is that command's; after any other it is this one\n"
          "  --color WHEN            auto (default: colour on a terminal, unless NO_COLOR\n"
          "                          is set or TERM=dumb), always or never\n"
          "  -t, --targets PATTERN   run upgrade, downgrade, current, stamp, status, check\n"
          "                          or lint on each of the config's targets whose name\n"
          "                          matches PATTERN (comma-separated shell globs: '*',\n"
          "                          'eu-*,us-1'; docs/fleet.md)\n"
          "  --parallel N            with -t: at most N connections per server (a run of\n"
          "                          upgrade, downgrade or stamp holds 2 with lock =\n"
          "                          session or table, any other run 1; default: half\n"
          "                          the server's free slots, at most 8 runs)\n"
          "  --keep-going            with -t: start every target even after one failed\n"
          "                          (default: after a failure no new target starts)\n"
          "  --canary N              with -t: run the first N targets that need a run\n"
          "                          first, and the others only when all of those\n"
          "                          succeeded\n"
          "  --json                  with -t: one JSON object per target per line (target,\n"
          "                          status, from, to, steps, duration_ms, error and\n"
          "                          messages, what the run wrote to stderr; status, lint\n"
          "                          and current with an option add report, check\n"
          "                          output: docs/fleet.md)\n"
          "  --version               print the version\n"
          "  -h, --help              this help; COMMAND --help for a command's\n"
          "\n"
          "commands:\n");
  for (size_t i = 0; i < NCOMMANDS; i++) {
    fprintf(f, "  %-10s ", COMMANDS[i].name);
    wrap(f, COMMANDS[i].summary, 13, 13);
  }
  fprintf(f, "  %-10s ", "help");
  wrap(f, "Show the help of COMMAND (luamigrate help upgrade), or this one.", 13, 13);
  fprintf(f,
          "\n"
          "output: command output goes to stdout; progress (one line per migration with its\n"
          "duration, and a [ i/n] counter when stderr is a terminal), warnings, server\n"
          "notices and errors go to stderr.\n"
          "\n"
          "exit status:\n"
          "  0  success\n"
          "  1  a migration or database error: a failed migration, no connection, the lock\n"
          "     not had in time, an interruption; also check finding differences and\n"
          "     current --check-heads off the heads\n"
          "  2  a usage or config error: an unknown command, option or revision, a bad\n"
          "     config or revision file\n"
          "  3  a revision is half-done (interrupted inside or after an autocommit block):\n"
          "     upgrade --resume (downgrade --resume for a downgrade) finishes it\n"
          "\n"
          "example:\n"
          "  luamigrate --url postgresql://app@localhost/app upgrade head\n");
}

void lm_cli_print_command_help(const lm_command *h, FILE *f) {
  fprintf(f, "usage: %s\n\n", h->usage);
  wrap(f, h->summary, 0, 0);
  fprintf(f,
          "\noptions:\n%s"
          "  -h, --help              this help\n"
          "  (global options, such as --url, go before the command: see luamigrate --help)\n",
          h->options);
  fprintf(f, "\nexample:\n  %s\n", h->example);
}

/* Levenshtein distance, small strings only. */
static size_t distance(const char *a, const char *b) {
  size_t la = strlen(a), lb = strlen(b);
  if (la > 32 || lb > 32) return 99;
  size_t d[33][33];
  for (size_t i = 0; i <= la; i++) d[i][0] = i;
  for (size_t j = 0; j <= lb; j++) d[0][j] = j;
  for (size_t i = 1; i <= la; i++)
    for (size_t j = 1; j <= lb; j++) {
      size_t c = d[i - 1][j - 1] + (a[i - 1] != b[j - 1]);
      if (d[i - 1][j] + 1 < c) c = d[i - 1][j] + 1;
      if (d[i][j - 1] + 1 < c) c = d[i][j - 1] + 1;
      d[i][j] = c;
    }
  return d[la][lb];
}

static const char *undashed(const char *s) {
  while (*s == '-') s++;
  return s;
}

const char *lm_cli_closest(const char *name, const char *const *cands, size_t n) {
  char bare[40];
  const char *u = undashed(name);
  size_t len = strcspn(u, "=");
  if (len == 0 || len >= sizeof bare) return NULL;
  memcpy(bare, u, len);
  bare[len] = '\0';
  const char *best = NULL;
  size_t bestd = 3;
  for (size_t i = 0; i < n; i++) {
    const char *c = undashed(cands[i]);
    size_t d = distance(bare, c);
    /* One edit in a one-letter name is any other letter: no suggestion. */
    if (d < bestd && d < len) {
      bestd = d;
      best = cands[i];
    } else if (!best && len >= 2 && !strncmp(c, bare, len)) {
      best = cands[i];
    }
  }
  return best;
}

const char *lm_cli_suggest(const char *name) {
  const char *names[NCOMMANDS];
  for (size_t i = 0; i < NCOMMANDS; i++) names[i] = COMMANDS[i].name;
  return lm_cli_closest(name, names, NCOMMANDS);
}

/* Matches "-s VALUE", "--long VALUE" or "--long=VALUE" at argv[*i]: 1 and *val set, 0 no
 * match, or LM_EUSAGE when the value is missing. */
int lm_cli_take(int argc, char **argv, int *i, const char *s, const char *l, const char **val,
                lm_error *err) {
  const char *a = argv[*i];
  size_t ll = strlen(l);
  if ((s && !strcmp(a, s)) || !strcmp(a, l)) {
    if (*i + 1 >= argc) return lm_error_set(err, LM_EUSAGE, "option %s needs a value", a);
    *val = argv[++*i];
    return 1;
  }
  if (!strncmp(a, l, ll) && a[ll] == '=') {
    *val = a + ll + 1;
    return 1;
  }
  return 0;
}

static int take(int argc, char **argv, int *i, const char *s, const char *l, const char **val,
                lm_error *err) {
  return lm_cli_take(argc, argv, i, s, l, val, err);
}

static const char *const GLOBAL_OPTIONS[] = {
    "--config", "--url",        "--x-arg",  "--lock-timeout", "--lock",
    "--quiet",  "--verbose",    "--color",  "--targets",      "--parallel",
    "--json",   "--keep-going", "--canary", "--version",      "--help",
};
#define NGLOBAL (sizeof GLOBAL_OPTIONS / sizeof GLOBAL_OPTIONS[0])

int lm_cli_is_global(const char *arg) {
  size_t len = strcspn(arg, "=");
  if (!strcmp(arg, "-x") || !strcmp(arg, "-c") || !strcmp(arg, "-t")) return 1;
  for (size_t i = 0; i < NGLOBAL; i++)
    if (strlen(GLOBAL_OPTIONS[i]) == len && !strncmp(arg, GLOBAL_OPTIONS[i], len)) return 1;
  return 0;
}

int lm_cli_color(const char *when) {
  if (!when) return -1;
  if (!strcmp(when, "auto")) return LM_COLOR_AUTO;
  if (!strcmp(when, "always")) return LM_COLOR_ALWAYS;
  if (!strcmp(when, "never")) return LM_COLOR_NEVER;
  return -1;
}

static void suggest(lm_error *err, const char *s) {
  char hint[128];
  snprintf(hint, sizeof hint, "did you mean '%s'?", s);
  lm_error_setfield(&err->hint, hint);
}

int lm_cli_parse(int argc, char **argv, lm_opts *o, int *done, lm_error *err) {
  *done = 0;
  int i = 1;
  for (; i < argc; i++) {
    const char *a = argv[i];
    const char *val = NULL;
    if (a[0] != '-' || !strcmp(a, "-")) break;
    if (!strcmp(a, "--")) {
      i++;
      break;
    }
    int t;
    if ((t = take(argc, argv, &i, "-c", "--config", &val, err))) {
      if (t < 0) return LM_EUSAGE;
      o->config = val;
    } else if ((t = take(argc, argv, &i, NULL, "--url", &val, err))) {
      if (t < 0) return LM_EUSAGE;
      o->url = val;
    } else if ((t = take(argc, argv, &i, "-x", "--x-arg", &val, err))) {
      if (t < 0) return LM_EUSAGE;
      const char **nx = realloc(o->x, sizeof(char *) * (size_t)(o->nx + 1));
      if (!nx) return lm_error_set(err, LM_ENOMEM, "out of memory");
      o->x = nx;
      o->x[o->nx++] = val;
    } else if ((t = take(argc, argv, &i, NULL, "--lock-timeout", &val, err))) {
      if (t < 0) return LM_EUSAGE;
      o->lock_timeout = val;
    } else if ((t = take(argc, argv, &i, NULL, "--lock", &val, err))) {
      if (t < 0) return LM_EUSAGE;
      o->lock_mode = val;
    } else if ((t = take(argc, argv, &i, NULL, "--color", &val, err))) {
      if (t < 0) return LM_EUSAGE;
      if ((o->color = lm_cli_color(val)) < 0)
        return lm_error_set(err, LM_EUSAGE, "--color: '%s' is not auto, always or never", val);
    } else if ((t = take(argc, argv, &i, "-t", "--targets", &val, err))) {
      if (t < 0) return LM_EUSAGE;
      o->targets = val;
    } else if ((t = take(argc, argv, &i, NULL, "--parallel", &val, err))) {
      if (t < 0) return LM_EUSAGE;
      o->parallel = val;
    } else if ((t = take(argc, argv, &i, NULL, "--canary", &val, err))) {
      if (t < 0) return LM_EUSAGE;
      o->canary = val;
    } else if (!strcmp(a, "--keep-going")) {
      o->keep_going = 1;
    } else if (!strcmp(a, "--json")) {
      o->json = 1;
    } else if (!strcmp(a, "-q") || !strcmp(a, "--quiet")) {
      o->quiet = 1;
    } else if (!strcmp(a, "-v") || !strcmp(a, "--verbose")) {
      o->verbose = 1;
    } else if (!strcmp(a, "--version")) {
      printf("luamigrate %s\n", LM_VERSION);
      *done = 1;
      return LM_OK;
    } else if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
      lm_cli_print_help(stdout);
      *done = 1;
      return LM_OK;
    } else {
      lm_error_set(err, LM_EUSAGE,
                   "unknown global option '%s' (global options go before the command; see "
                   "luamigrate --help)",
                   a);
      const char *s = lm_cli_closest(a, GLOBAL_OPTIONS, NGLOBAL);
      if (s) suggest(err, s);
      return LM_EUSAGE;
    }
  }
  if (i >= argc) {
    lm_cli_print_help(stderr);
    return lm_error_set(err, LM_EUSAGE, "no command given");
  }
  o->command = argv[i];
  o->argc = argc - i;
  o->argv = argv + i;
  if (!strcmp(o->command, "help")) { /* as git's: help COMMAND is COMMAND --help */
    if (i + 1 >= argc || !strcmp(argv[i + 1], "-h") || !strcmp(argv[i + 1], "--help") ||
        !strcmp(argv[i + 1], "help")) {
      lm_cli_print_help(stdout);
      *done = 1;
      return LM_OK;
    }
    const lm_command *h = lm_cli_find(argv[i + 1]);
    if (!h) {
      const char *s = lm_cli_suggest(argv[i + 1]);
      lm_error_set(err, LM_EUSAGE, "help: unknown command '%s'", argv[i + 1]);
      if (s) suggest(err, s);
      return LM_EUSAGE;
    }
    if (i + 2 < argc)
      return lm_error_set(err, LM_EUSAGE,
                          "help: unexpected argument '%s' (usage: luamigrate help "
                          "[COMMAND])",
                          argv[i + 2]);
    lm_cli_print_command_help(h, stdout);
    *done = 1;
    return LM_OK;
  }
  if (!lm_cli_find(o->command)) {
    const char *s = lm_cli_suggest(o->command);
    lm_error_set(err, LM_EUSAGE, "unknown command '%s'", o->command);
    if (s) suggest(err, s);
    return LM_EUSAGE;
  }
  if (!o->targets && (o->parallel || o->keep_going || o->json))
    return lm_error_set(err, LM_EUSAGE, "%s needs --targets PATTERN (a fleet run)",
                        o->parallel     ? "--parallel"
                        : o->keep_going ? "--keep-going"
                                        : "--json");
  return LM_OK;
}
