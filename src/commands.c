/* The commands: init, revision, upgrade, downgrade, current, heads, history, show, stamp,
 * status, repair.
 * Output formats follow Alembic's line for line, so scripts written against it keep
 * working; progress goes to stderr, results to stdout. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <lauxlib.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "app.h"
#include "bind/bind.h"
#include "cancel.h"
#include "cli.h"
#include "conn.h"
#include "journal.h"
#include "log.h"

/* ---- a small growing string buffer ------------------------------------------------ */

typedef struct sbuf {
  char *s;
  size_t n, cap;
  int oom;
} sbuf;

/* Room for `more` bytes and the NUL; 0, or -1 (and b->oom) when out of memory. */
static int sb_room(sbuf *b, size_t more) {
  if (b->oom) return -1;
  if (b->n + more + 1 <= b->cap) return 0;
  size_t cap = (b->cap ? b->cap * 2 : 256) + more;
  char *s = realloc(b->s, cap);
  if (!s) {
    b->oom = 1;
    return -1;
  }
  b->s = s;
  b->cap = cap;
  return 0;
}

/* Appends a plain string (the cheap path: history prints 100,000 lines). */
static void sb_cat(sbuf *b, const char *v) {
  size_t len = strlen(v);
  if (sb_room(b, len)) return;
  memcpy(b->s + b->n, v, len + 1);
  b->n += len;
}

static void sb_add(sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void sb_add(sbuf *b, const char *fmt, ...) {
  if (b->oom) return;
  va_list ap;
  va_start(ap, fmt);
  int need = vsnprintf(b->s ? b->s + b->n : NULL, b->s ? b->cap - b->n : 0, fmt, ap);
  va_end(ap);
  if (need < 0) return;
  if (!b->s || b->n + (size_t)need + 1 > b->cap) { /* it did not fit: grow, format again */
    if (sb_room(b, (size_t)need)) return;
    va_start(ap, fmt);
    vsnprintf(b->s + b->n, b->cap - b->n, fmt, ap);
    va_end(ap);
  }
  b->n += (size_t)need;
}

static void sb_ids(sbuf *b, const lm_dag *dag, const int *idx, size_t n) {
  for (size_t i = 0; i < n; i++) {
    if (i) sb_cat(b, ", ");
    sb_cat(b, lm_dag_id(dag, idx[i]));
  }
}

static void sb_strs(sbuf *b, const char *const *v, size_t n) {
  for (size_t i = 0; i < n; i++) {
    if (i) sb_cat(b, ", ");
    sb_cat(b, v[i]);
  }
}

/* ---- command arguments -------------------------------------------------------------- */

typedef struct cmdargs {
  const char *pos[64];
  int npos;
  int verbose, purge, splice, help, sql, dry_run, indicate_current, check_heads, resolve_deps, json,
      autogenerate, resume, baseline, offline, downgrade, locks;
  char *upgrades, *downgrades; /* revision --autogenerate: the generated bodies */
  const char *message, *rev_id, *head, *rev_range, *branch_label, *output;
  const char *depends[32];
  int ndeps;
} cmdargs;

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
  if (!strstr(allowed, "verbose ")) cands[n++] = "--verbose";
  const char *best = lm_cli_closest(s, cands, n);
  if (best)
    snprintf(hint, sizeof hint, "did you mean '%s'? (luamigrate %s --help lists them)", best,
             o->command);
  else
    snprintf(hint, sizeof hint, "luamigrate %s --help lists its options", o->command);
  lm_error_setfield(&err->hint, hint);
  return LM_EUSAGE;
}

/* Parses a command's arguments; `allowed` lists the long options it takes, space-separated. */
static int parse_args(lm_opts *o, const char *allowed, cmdargs *a, lm_error *err) {
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
#define ALLOWED(name) (strstr(allowed, name " ") != NULL)
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

static int want_positional(lm_opts *o, cmdargs *a, int min, int max, const char *what,
                           lm_error *err) {
  if (a->npos < min)
    return lm_error_set(err, LM_EUSAGE, "%s: missing %s (usage: %s)", o->command, what,
                        lm_cli_help_for(o->command)->usage);
  if (a->npos > max && max >= 0 && max < 64)
    return lm_error_set(err, LM_EUSAGE, "%s: unexpected argument '%s' (usage: %s)", o->command,
                        a->pos[max], lm_cli_help_for(o->command)->usage);
  return LM_OK;
}

/* ---- Alembic's line formats --------------------------------------------------------- */

static void format_down(sbuf *b, const lm_dag *dag, int idx) {
  const int *p;
  size_t n = lm_dag_parents(dag, idx, &p);
  if (n == 0)
    sb_cat(b, "<base>");
  else
    sb_ids(b, dag, p, n);
}

/* " (head)" and the like, coloured when stdout gets colour. */
static void sb_mark(sbuf *b, const char *mark) {
  sb_cat(b, " ");
  sb_cat(b, lm_log_sgr(stdout, LM_STYLE_MARK));
  sb_cat(b, "(");
  sb_cat(b, mark);
  sb_cat(b, ")");
  sb_cat(b, lm_log_sgr(stdout, LM_STYLE_RESET));
}

/* Alembic's Script._head_only. `current` (may be NULL) marks "(current)". */
static void head_only(sbuf *b, const lm_dag *dag, int idx, int include_branches, int include_doc,
                      int include_parents, int tree_indicators, const lm_revset *current) {
  if (include_parents) {
    format_down(b, dag, idx);
    const int *d;
    size_t nd = lm_dag_deps(dag, idx, &d);
    if (nd) {
      sb_cat(b, " (");
      sb_ids(b, dag, d, nd);
      sb_cat(b, ")");
    }
    sb_cat(b, " -> ");
  }
  sb_cat(b, lm_dag_id(dag, idx));
  const char *const *labels;
  size_t nl = lm_dag_labels(dag, idx, &labels);
  if (include_branches && nl) {
    sb_cat(b, " (");
    sb_strs(b, labels, nl);
    sb_cat(b, ")");
  }
  if (lm_dag_is_real_head(dag, idx)) sb_mark(b, "head");
  if (lm_dag_is_head(dag, idx) && !lm_dag_is_real_head(dag, idx)) sb_mark(b, "effective head");
  if (current && lm_revset_has(current, idx)) sb_mark(b, "current");
  if (tree_indicators) {
    if (lm_dag_is_branch_point(dag, idx)) sb_mark(b, "branchpoint");
    if (lm_dag_is_merge_point(dag, idx)) sb_mark(b, "mergepoint");
  }
  if (include_doc) {
    sb_cat(b, ", ");
    sb_cat(b, lm_dag_doc(dag, idx));
  }
}

/* Alembic's Script.log_entry (the verbose form). */
static void log_entry(sbuf *b, const lm_dag *dag, int idx, const lm_revset *current) {
  sb_add(b, "Rev: %s", lm_dag_id(dag, idx));
  if (lm_dag_is_head(dag, idx)) sb_mark(b, "head");
  if (lm_dag_is_branch_point(dag, idx)) sb_mark(b, "branchpoint");
  if (lm_dag_is_merge_point(dag, idx)) sb_mark(b, "mergepoint");
  if (current && lm_revset_has(current, idx)) sb_mark(b, "current");
  sb_add(b, "\n");
  sb_add(b, lm_dag_is_merge_point(dag, idx) ? "Merges: " : "Parent: ");
  format_down(b, dag, idx);
  sb_add(b, "\n");
  const int *v;
  size_t n = lm_dag_deps(dag, idx, &v);
  if (n) {
    sb_add(b, "Also depends on: ");
    sb_ids(b, dag, v, n);
    sb_add(b, "\n");
  }
  if (lm_dag_is_branch_point(dag, idx)) {
    n = lm_dag_children(dag, idx, &v);
    sb_add(b, "Branches into: ");
    sb_ids(b, dag, v, n);
    sb_add(b, "\n");
  }
  const char *const *labels;
  n = lm_dag_labels(dag, idx, &labels);
  if (n) {
    sb_add(b, "Branch names: ");
    sb_strs(b, labels, n);
    sb_add(b, "\n");
  }
  sb_add(b, "Path: %s\n\n", lm_dag_path(dag, idx));
  char *longdoc = lm_loader_longdoc(lm_dag_path(dag, idx));
  const char *doc = longdoc ? longdoc : "";
  while (*doc) {
    const char *nl = strchr(doc, '\n');
    size_t len = nl ? (size_t)(nl - doc) : strlen(doc);
    sb_add(b, "    %.*s\n", (int)len, doc);
    if (!nl) break;
    doc = nl + 1;
  }
  free(longdoc);
}

static int emit(sbuf *b, lm_error *err) {
  if (b->oom) {
    free(b->s);
    memset(b, 0, sizeof *b);
    return lm_error_set(err, LM_ENOMEM, "out of memory");
  }
  fwrite(b->s ? b->s : "", 1, b->n, stdout);
  fputc('\n', stdout);
  free(b->s);
  memset(b, 0, sizeof *b);
  return LM_OK;
}

/* ---- database helpers -------------------------------------------------------------- */

static double now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static int connect_db(lm_app *app, lm_error *err) {
  double t0 = now_ms();
  app->conn = lm_conn_open(app->cfg.url, err);
  if (!app->conn) return err->code ? err->code : LM_ECONN;
  lm_cancel_set_conn(app->conn); /* from its first statement: any may wait on a lock */
  if (lm_log_verbose()) {
    char *where = lm_conn_describe(app->conn);
    int v = PQserverVersion(app->conn);
    lm_log_detail("Connected to %s (PostgreSQL %d.%d) in %.1f ms", where ? where : "?", v / 10000,
                  v % 10000, now_ms() - t0);
    free(where);
  }
  return lm_vt_init(&app->vt, app->conn, app->cfg.version_table, err);
}

/* Takes the migration lock and makes sure the tables exist. A command that changes the
 * database and was given no URL at all (no --url, no DATABASE_URL, the config's url nil:
 * the usual forgotten `export`) says which database libpq's defaults picked. */
static int lock_db(lm_app *app, lm_error *err) {
  double t0 = now_ms();
  if (!app->cfg.url) {
    char *where = lm_conn_describe(app->conn);
    lm_log_info(
        "No database URL given (--url, DATABASE_URL or the config's url): using libpq's "
        "defaults, %s",
        where ? where : "?");
    free(where);
  }
  int rc = lm_lock_acquire(&app->lock, (lm_lock_mode)app->cfg.lock_mode, app->conn, app->cfg.url,
                           app->cfg.version_table, app->vt.lock, app->cfg.lock_timeout,
                           app->cfg.lock_lease, app->opts->quiet, err);
  if (rc) return rc;
  /* Every statement on the work connection first checks the lock is still held. */
  lm_conn_set_guard(app->conn, lm_lock_check, &app->lock);
  static const char *const modes[] = {"session", "xact", "table"};
  if (app->cfg.lock_mode == LM_LOCK_XACT)
    lm_log_detail("Migration lock (xact): taken by each transaction");
  else
    lm_log_detail("Migration lock (%s) taken in %.1f ms", modes[app->cfg.lock_mode], now_ms() - t0);
  if (app->cfg.lock_mode != LM_LOCK_XACT) return lm_vt_ensure(&app->vt, app->conn, err);
  /* Transaction locks: the tables are created under one (a dry run is already inside its
   * transaction). */
  int own = PQtransactionStatus(app->conn) == PQTRANS_IDLE;
  if (own && (rc = lm_exec(app->conn, "BEGIN", 0, NULL, NULL, NULL, NULL, err))) return rc;
  if ((rc = lm_lock_fence(&app->lock, app->conn, err)) ||
      (rc = lm_vt_ensure(&app->vt, app->conn, err))) {
    lm_error e = {0};
    if (own) lm_exec(app->conn, "ROLLBACK", 0, NULL, NULL, NULL, NULL, &e);
    lm_error_clear(&e);
    return rc;
  }
  return own ? lm_exec(app->conn, "COMMIT", 0, NULL, NULL, NULL, NULL, err) : LM_OK;
}

static int read_heads(lm_app *app, lm_revset *heads, lm_error *err) {
  char **ids = NULL;
  size_t n = 0;
  int rc = lm_vt_read(&app->vt, app->conn, &ids, &n, err);
  if (rc) return rc;
  for (size_t i = 0; i < n && rc == LM_OK; i++) {
    int idx = lm_dag_find(app->dag, ids[i]);
    if (idx < 0) {
      rc = lm_error_set(err, LM_ERR,
                        "Can't locate revision identified by '%s': the database's version "
                        "table %s names it, but no file in %s defines it",
                        ids[i], app->vt.table, app->cfg.versions_dir);
      lm_error_setfield(&err->hint,
                        "restore the revision file, or reset the version table "
                        "with 'luamigrate stamp --purge REV'");
    } else if (lm_revset_push(heads, idx)) {
      rc = lm_error_set(err, LM_ENOMEM, "out of memory");
    }
  }
  lm_vt_free_ids(ids, n);
  return rc;
}

/* A version table holding a revision and one of its ancestors (edited by hand, or written by
 * a run that bypassed the lock) has no meaning as a set of heads: upgrade and downgrade
 * refuse it as Alembic does, with its message; status reports it. LM_OK when consistent. */
static int check_overlap(lm_app *app, const lm_revset *heads, lm_error *err) {
  lm_revset anc = {0};
  int desc = -1;
  int rc = lm_dag_overlap(app->dag, heads, &desc, &anc, err);
  if (rc <= 0) return rc;
  char *ids = lm_dag_format_ids(app->dag, anc.idx, anc.n);
  rc = lm_error_set(err, LM_ERR, "Requested revision %s overlaps with other requested revisions %s",
                    lm_dag_id(app->dag, desc), ids ? ids : "?");
  lm_revset_free(&anc);
  free(ids);
  sbuf d = {0};
  sb_add(&d,
         "the version table %s holds both a revision and its ancestor; one run never leaves "
         "that (it was edited by hand, or written by a run that bypassed the migration lock)",
         app->vt.table);
  lm_error_setfield(&err->detail, d.s);
  free(d.s);
  lm_error_setfield(&err->hint,
                    "check which revision the schema is at, then reset the version table with "
                    "'luamigrate stamp --purge REV'");
  return rc;
}

/* Applied revision files edited since they ran: compares the SHA-256 of each file as this
 * run read it (lm_loader_checksum) with the one recorded when it was applied, for the
 * revisions the database is on or past. The content alone decides (a file's mtime says
 * nothing: cp -p, rsync -a and tar restore old ones). With `collect`, only gathers them;
 * else warns, or under on_changed_file = "error" fails when the file is one the command is
 * about to run (a step of `plan`): an unrelated edit does not stop a downgrade of other
 * revisions. *nchanged gets the count. */
static int check_changed(lm_app *app, const lm_revset *heads, int *nchanged, lm_revset *collect,
                         const lm_revset *plan, lm_error *err) {
  PGresult *res = NULL;
  unsigned char *mark = NULL;
  int rc = lm_vt_applied_checksums(&app->vt, app->conn, &res, err);
  *nchanged = 0;
  if (rc) return rc;
  size_t n = lm_dag_count(app->dag);
  mark = calloc(n ? n : 1, 1);
  if (!mark || lm_dag_mark(app->dag, heads->idx, heads->n, 0, 1, mark, 1)) {
    rc = lm_error_set(err, LM_ENOMEM, "out of memory");
    goto cleanup;
  }
  for (int r = 0; r < PQntuples(res) && rc == LM_OK; r++) {
    int idx = lm_dag_find(app->dag, PQgetvalue(res, r, 0));
    if (idx < 0 || !mark[idx] || PQgetisnull(res, r, 1)) continue;
    const char *path = lm_dag_path(app->dag, idx);
    const char *now = lm_loader_checksum(app, idx);
    if (!now || !strcmp(now, PQgetvalue(res, r, 1))) continue;
    (*nchanged)++;
    if (collect) {
      if (lm_revset_push(collect, idx)) rc = lm_error_set(err, LM_ENOMEM, "out of memory");
    } else if (app->cfg.changed_file_is_error && plan && lm_revset_has(plan, idx)) {
      rc = lm_error_set(err, LM_ERR,
                        "%s: revision %s was applied from a different version of this file "
                        "(sha256 %.12s then, %.12s now)",
                        path, lm_dag_id(app->dag, idx), PQgetvalue(res, r, 1), now);
      lm_error_setfield(&err->hint,
                        "restore the file as it was applied (the database already "
                        "holds its changes); or, the edit reviewed, record the file as it is "
                        "now with 'luamigrate repair'");
    } else {
      lm_log_warn(
          "%s: revision %s was applied from a different version of this file "
          "(sha256 %.12s then, %.12s now); the database holds what the old version did "
          "('luamigrate repair' records the file as it is now)",
          path, lm_dag_id(app->dag, idx), PQgetvalue(res, r, 1), now);
    }
  }
cleanup:
  free(mark);
  PQclear(res);
  return rc;
}

/* ---- status ---------------------------------------------------------------------------- */

static int journal_agrees(lm_app *app, const struct lm_journal *j, const lm_revset *heads);

static void json_str(sbuf *b, const char *s) {
  sb_add(b, "\"");
  for (; s && *s; s++) {
    unsigned char c = (unsigned char)*s;
    if (c == '"' || c == '\\')
      sb_add(b, "\\%c", c);
    else if (c == '\n')
      sb_add(b, "\\n");
    else if (c == '\t')
      sb_add(b, "\\t");
    else if (c < 0x20)
      sb_add(b, "\\u%04x", c);
    else
      sb_add(b, "%c", c);
  }
  sb_add(b, "\"");
}

/* A JSON array of the ids of revisions v[0..n). */
static void json_idx(sbuf *b, const lm_dag *dag, const int *v, size_t n) {
  sb_add(b, "[");
  for (size_t i = 0; i < n; i++) {
    if (i) sb_add(b, ", ");
    json_str(b, lm_dag_id(dag, v[i]));
  }
  sb_add(b, "]");
}

static void json_ids(sbuf *b, const lm_dag *dag, const lm_revset *s) {
  json_idx(b, dag, s->idx, s->n);
}

/* One revision as a JSON object (the fields of `show`). */
static void json_rev(sbuf *b, const lm_dag *dag, int idx, const lm_revset *current) {
  const int *v;
  size_t n;
  sb_add(b, "{\"revision\": ");
  json_str(b, lm_dag_id(dag, idx));
  sb_add(b, ", \"down_revisions\": ");
  n = lm_dag_parents(dag, idx, &v);
  json_idx(b, dag, v, n);
  sb_add(b, ", \"depends_on\": ");
  n = lm_dag_deps(dag, idx, &v);
  json_idx(b, dag, v, n);
  sb_add(b, ", \"branch_labels\": [");
  const char *const *labels;
  n = lm_dag_labels(dag, idx, &labels);
  for (size_t i = 0; i < n; i++) {
    if (i) sb_add(b, ", ");
    json_str(b, labels[i]);
  }
  sb_add(b, "], \"message\": ");
  json_str(b, lm_dag_doc(dag, idx));
  sb_add(b, ", \"path\": ");
  json_str(b, lm_dag_path(dag, idx));
  sb_add(b, ", \"head\": %s, \"effective_head\": %s, \"branch_point\": %s, \"merge_point\": %s",
         lm_dag_is_real_head(dag, idx) ? "true" : "false",
         lm_dag_is_head(dag, idx) && !lm_dag_is_real_head(dag, idx) ? "true" : "false",
         lm_dag_is_branch_point(dag, idx) ? "true" : "false",
         lm_dag_is_merge_point(dag, idx) ? "true" : "false");
  if (current) sb_add(b, ", \"current\": %s", lm_revset_has(current, idx) ? "true" : "false");
  sb_add(b, "}");
}

/* A JSON array of revisions, written as one line. */
static int emit_json_revs(lm_app *app, const int *idx, size_t n, const lm_revset *current,
                          lm_error *err) {
  sbuf b = {0};
  sb_add(&b, "[");
  for (size_t i = 0; i < n; i++) {
    if (i) sb_add(&b, ", ");
    json_rev(&b, app->dag, idx[i], current);
  }
  sb_add(&b, "]");
  return emit(&b, err);
}

/* status: where the database is, what is pending, what was applied when and how long it
 * took, and which applied files changed since. Reads only: takes no lock, creates nothing. */
static int cmd_status(lm_app *app, cmdargs *a, lm_error *err) {
  lm_revset heads = {0}, none = {0}, all = {0}, pending = {0}, applied = {0}, changed = {0},
            stamped_to = {0};
  lm_journal half = {0};
  char *half_msg = NULL, *half_detail = NULL;
  unsigned char *stamped = NULL;
  PGresult *res = NULL, *stamps = NULL;
  sbuf b = {0}, problem = {0};
  int rc = want_positional(app->opts, a, 0, 0, "", err), nchanged = 0;
  if (rc) return rc;
  if ((rc = connect_db(app, err)) || (rc = read_heads(app, &heads, err))) goto cleanup;
  /* What upgrade and downgrade would refuse is reported here, not refused. */
  lm_error overlap = {0};
  if (check_overlap(app, &heads, &overlap) == LM_ERR) {
    sb_add(&problem, "%s", overlap.message);
  } else if (overlap.code) {
    *err = overlap;
    rc = overlap.code;
    goto cleanup;
  }
  lm_error_clear(&overlap);
  if ((rc = lm_dag_resolve(app->dag, "heads", &none, LM_RESOLVE_SHOW, &all, err)) < 0) goto cleanup;
  if ((rc = lm_dag_plan_upgrade(app->dag, &heads, &all, &pending, err)) < 0) goto cleanup;
  if ((rc = lm_dag_plan_upgrade(app->dag, &none, &heads, &applied, err)) < 0) goto cleanup;
  if ((rc = lm_vt_applied_checksums(&app->vt, app->conn, &res, err))) goto cleanup;
  if ((rc = check_changed(app, &heads, &nchanged, &changed, NULL, err))) goto cleanup;
  /* Applied revisions with no record of running: stamped (at or below a stamp's target), or
   * applied before luamigrate kept history (a database Alembic built, say). */
  if ((rc = lm_vt_stamped(&app->vt, app->conn, &stamps, err))) goto cleanup;
  for (int r = 0; r < PQntuples(stamps); r++) {
    int idx = lm_dag_find(app->dag, PQgetvalue(stamps, r, 0));
    if (idx >= 0 && lm_revset_push(&stamped_to, idx)) {
      rc = lm_error_set(err, LM_ENOMEM, "out of memory");
      goto cleanup;
    }
  }
  stamped = calloc(lm_dag_count(app->dag) ? lm_dag_count(app->dag) : 1, 1);
  if (!stamped ||
      (stamped_to.n && lm_dag_mark(app->dag, stamped_to.idx, stamped_to.n, 0, 1, stamped, 1))) {
    rc = lm_error_set(err, LM_ENOMEM, "out of memory");
    goto cleanup;
  }
  if ((rc = lm_journal_read(&app->vt, app->conn, &half, err))) goto cleanup;
  if (half.revision) {
    int hidx = lm_dag_find(app->dag, half.revision);
    rc = lm_journal_describe(&half, app->conn, hidx >= 0 ? lm_dag_path(app->dag, hidx) : NULL,
                             &half_msg, &half_detail, err);
    if (rc) goto cleanup;
  }
  /* when each applied revision last ran */
  int *row_of = malloc((lm_dag_count(app->dag) ? lm_dag_count(app->dag) : 1) * sizeof *row_of);
  if (!row_of) {
    rc = lm_error_set(err, LM_ENOMEM, "out of memory");
    goto cleanup;
  }
  for (size_t i = 0; i < lm_dag_count(app->dag); i++) row_of[i] = -1;
  for (int r = 0; r < PQntuples(res); r++) {
    int idx = lm_dag_find(app->dag, PQgetvalue(res, r, 0));
    if (idx >= 0) row_of[idx] = r;
  }
  char *where = lm_conn_describe(app->conn);
  if (a->json) {
    sb_add(&b, "{\"database\": ");
    json_str(&b, where);
    sb_add(&b, ", \"version_table\": "); /* the name as configured, not SQL-quoted */
    json_str(&b, app->cfg.version_table);
    sb_add(&b, ", \"current\": ");
    json_ids(&b, app->dag, &heads);
    sb_add(&b, ", \"heads\": ");
    json_ids(&b, app->dag, &all);
    sb_add(&b, ", \"problem\": ");
    if (problem.s)
      json_str(&b, problem.s);
    else
      sb_add(&b, "null");
    sb_add(&b, ", \"up_to_date\": %s, \"half_done\": ", pending.n ? "false" : "true");
    if (half.revision) {
      sb_add(&b, "{\"revision\": ");
      json_str(&b, half.revision);
      sb_add(&b, ", \"message\": ");
      json_str(&b, half_msg);
      sb_add(&b, ", \"detail\": ");
      json_str(&b, half_detail);
      sb_add(&b, "}");
    } else {
      sb_add(&b, "null");
    }
    sb_add(&b, ", \"pending\": [");
    for (size_t i = 0; i < pending.n; i++) {
      int x = pending.idx[i];
      sb_add(&b, "%s{\"revision\": ", i ? ", " : "");
      json_str(&b, lm_dag_id(app->dag, x));
      sb_add(&b, ", \"message\": ");
      json_str(&b, lm_dag_doc(app->dag, x));
      sb_add(&b, ", \"file\": ");
      json_str(&b, lm_dag_path(app->dag, x));
      sb_add(&b, "}");
    }
    sb_add(&b, "], \"applied\": [");
    for (size_t i = 0; i < applied.n; i++) {
      int x = applied.idx[i], r = row_of[x];
      sb_add(&b, "%s{\"revision\": ", i ? ", " : "");
      json_str(&b, lm_dag_id(app->dag, x));
      sb_add(&b, ", \"message\": ");
      json_str(&b, lm_dag_doc(app->dag, x));
      if (r >= 0) {
        sb_add(&b, ", \"applied_at\": ");
        json_str(&b, PQgetvalue(res, r, 4));
        sb_add(&b, ", \"duration_ms\": %.1f", strtod(PQgetvalue(res, r, 3), NULL));
      }
      sb_add(&b, ", \"changed\": %s}", lm_revset_has(&changed, x) ? "true" : "false");
    }
    sb_add(&b, "]}");
  } else {
    sb_add(&b, "Database: %s (version table %s)\n", where ? where : "?", app->vt.table);
    sb_add(&b, "Current: ");
    if (!heads.n) sb_add(&b, "<base> (nothing applied)");
    for (size_t i = 0; i < heads.n; i++) {
      if (i) sb_add(&b, ", ");
      head_only(&b, app->dag, heads.idx[i], 0, 0, 0, 0, NULL);
    }
    sb_add(&b, "\n");
    if (problem.s)
      sb_add(&b,
             "Problem: %s: the version table holds a revision and its ancestor; upgrade and "
             "downgrade refuse it until 'luamigrate stamp --purge REV' resets it\n",
             problem.s);
    if (half.revision) {
      sb_add(&b, "Half-done: %s\n", half_msg);
      for (const char *p = half_detail; p && *p;) {
        const char *nl = strchr(p, '\n');
        int len = nl ? (int)(nl - p) : (int)strlen(p);
        sb_add(&b, "  %.*s\n", len, p);
        p = nl ? nl + 1 : p + len;
      }
      if (!journal_agrees(app, &half, &heads))
        sb_add(&b,
               "  the version table does not agree with this record: 'luamigrate upgrade' "
               "says what to do\n");
      else if (!strcmp(half.operation, "downgrade"))
        sb_add(&b,
               "  finish it with 'luamigrate downgrade --resume TARGET', or redo it by hand "
               "and 'luamigrate stamp' the revision\n");
      else
        sb_add(&b,
               "  finish it with 'luamigrate upgrade --resume head', or undo it by hand and "
               "'luamigrate stamp' its down_revision\n");
    }
    if (pending.n == 0) {
      sb_add(&b, "Up to date: no migration pending.\n");
    } else {
      sb_add(&b, "Pending: %zu migration%s, in the order they will run:\n", pending.n,
             pending.n == 1 ? "" : "s");
      for (size_t i = 0; i < pending.n; i++)
        sb_add(&b, "  %s  %s\n", lm_dag_id(app->dag, pending.idx[i]),
               lm_dag_doc(app->dag, pending.idx[i]));
    }
    if (applied.n) {
      sb_add(&b, "Applied: %zu migration%s:\n", applied.n, applied.n == 1 ? "" : "s");
      for (size_t i = 0; i < applied.n; i++) {
        int x = applied.idx[i], r = row_of[x];
        if (r >= 0)
          sb_add(&b, "  %s  %s  %8.0f ms  %s%s\n", lm_dag_id(app->dag, x), PQgetvalue(res, r, 4),
                 strtod(PQgetvalue(res, r, 3), NULL), lm_dag_doc(app->dag, x),
                 lm_revset_has(&changed, x) ? "  [file changed since]" : "");
        else
          sb_add(&b, "  %s  (%s)  %s%s\n", lm_dag_id(app->dag, x),
                 stamped[x] ? "stamped; no record of it running"
                            : "applied before luamigrate kept history",
                 lm_dag_doc(app->dag, x),
                 lm_revset_has(&changed, x) ? "  [file changed since]" : "");
      }
    }
    if (nchanged)
      sb_add(&b,
             "%d applied file%s changed since %s ran: the database holds what the old "
             "version did.",
             nchanged, nchanged == 1 ? "" : "s", nchanged == 1 ? "it" : "they");
    else if (b.n && b.s[b.n - 1] == '\n')
      b.s[--b.n] = '\0';
  }
  free(where);
  free(row_of);
  rc = emit(&b, err);
cleanup:
  free(b.s);
  free(problem.s);
  free(half_msg);
  free(half_detail);
  lm_journal_free(&half);
  PQclear(res);
  PQclear(stamps);
  free(stamped);
  lm_revset_free(&stamped_to);
  lm_revset_free(&heads);
  lm_revset_free(&all);
  lm_revset_free(&pending);
  lm_revset_free(&applied);
  lm_revset_free(&changed);
  return rc < 0 ? rc : LM_OK;
}

/* ---- repair ------------------------------------------------------------------------ */

/* repair [REV...]: after a deliberate edit of applied revision files has been reviewed,
 * records each changed file's current sha256 as the one it was applied with (Flyway's
 * repair), so the warning (or the on_changed_file = "error" refusal) stops. REV... limits
 * it to those revisions. The database's schema is not touched. */
static int cmd_repair(lm_app *app, cmdargs *a, lm_error *err) {
  lm_revset heads = {0}, changed = {0}, only = {0}, none = {0};
  int nchanged = 0, in_tx = 0, done = 0;
  int rc = connect_db(app, err);
  if (rc || (rc = lock_db(app, err)) || (rc = read_heads(app, &heads, err))) goto cleanup;
  for (int i = 0; i < a->npos; i++) {
    lm_revset one = {0};
    rc = lm_dag_resolve(app->dag, a->pos[i], &none, LM_RESOLVE_SHOW, &one, err);
    for (size_t j = 0; rc >= 0 && j < one.n; j++)
      if (lm_revset_push(&only, one.idx[j])) rc = lm_error_set(err, LM_ENOMEM, "out of memory");
    lm_revset_free(&one);
    if (rc < 0) goto cleanup;
  }
  if ((rc = check_changed(app, &heads, &nchanged, &changed, NULL, err))) goto cleanup;
  if ((rc = lm_exec(app->conn, "BEGIN", 0, NULL, NULL, NULL, NULL, err))) goto cleanup;
  in_tx = 1;
  for (size_t i = 0; i < changed.n; i++) {
    int idx = changed.idx[i];
    if (a->npos && !lm_revset_has(&only, idx)) continue;
    const char *path = lm_dag_path(app->dag, idx);
    /* the checksum of the bytes this run read, as a run of the file would record it */
    const char *now = lm_loader_checksum(app, idx);
    if (!now) {
      rc = lm_error_set(err, LM_ERR, "%s: no checksum of the file was computed", path);
      goto cleanup;
    }
    if ((rc = lm_vt_set_checksum(&app->vt, app->conn, lm_dag_id(app->dag, idx), now, err)))
      goto cleanup;
    printf("Recorded %s as revision %s's file (sha256 %.12s)\n", path, lm_dag_id(app->dag, idx),
           now);
    done++;
  }
  for (size_t i = 0; i < only.n; i++)
    if (!lm_revset_has(&changed, only.idx[i]))
      printf(
          "Revision %s: its file is as it was applied (or it is not applied); nothing to "
          "record\n",
          lm_dag_id(app->dag, only.idx[i]));
  if ((rc = lm_exec(app->conn, "COMMIT", 0, NULL, NULL, NULL, NULL, err))) goto cleanup;
  in_tx = 0;
  if (!done && !a->npos) printf("No applied file changed since it ran: nothing to record\n");
cleanup:
  if (in_tx) {
    lm_error e = {0};
    lm_exec(app->conn, "ROLLBACK", 0, NULL, NULL, NULL, NULL, &e);
    lm_error_clear(&e);
  }
  lm_revset_free(&heads);
  lm_revset_free(&changed);
  lm_revset_free(&only);
  return rc < 0 ? rc : LM_OK;
}

/* ---- half-done revisions (journal.h) ---------------------------------------------- */

/* Whether the journal's account agrees with the version table: a half-done upgrade's
 * revision is not applied yet, a half-done downgrade's still is. 1 when it agrees. */
static int journal_agrees(lm_app *app, const lm_journal *j, const lm_revset *heads) {
  int idx = lm_dag_find(app->dag, j->revision);
  if (idx < 0) return 1; /* the refusal names the missing file */
  size_t n = lm_dag_count(app->dag);
  unsigned char *mark = calloc(n ? n : 1, 1);
  if (!mark || lm_dag_mark(app->dag, heads->idx, heads->n, 0, 1, mark, 1)) {
    free(mark);
    return 1;
  }
  int applied = mark[idx] != 0;
  free(mark);
  return applied == !strcmp(j->operation, "downgrade");
}

/* The refusal a command gives while `j` records a half-done revision: what is done, what
 * was running, and how to finish or undo it. `heads` is where the version table is. One
 * hint per case, the same whatever the command: LM_EHALFDONE. */
static int half_done_error(lm_app *app, const lm_journal *j, const lm_revset *heads,
                           const char *command, lm_error *err) {
  int idx = lm_dag_find(app->dag, j->revision);
  const int down = !strcmp(j->operation, "downgrade");
  char *message = NULL, *detail = NULL;
  int rc = lm_journal_describe(j, app->conn, idx >= 0 ? lm_dag_path(app->dag, idx) : NULL, &message,
                               &detail, err);
  if (rc) return rc;
  char *parents = NULL, *at = heads->n ? lm_dag_format_ids(app->dag, heads->idx, heads->n) : NULL;
  if (idx >= 0) {
    const int *p;
    size_t np = lm_dag_parents(app->dag, idx, &p);
    parents = np ? lm_dag_format_ids(app->dag, p, np) : strdup("base");
  }
  sbuf h = {0};
  if (!journal_agrees(app, j, heads)) {
    lm_error_set(err, LM_EHALFDONE,
                 "%s refused: the journal records revision %s as half-done by %s, but the "
                 "version table (at %s) has it %s",
                 command, j->revision, down ? "a downgrade" : "an upgrade", at ? at : "base",
                 down ? "undone" : "applied");
    sbuf dd = {0};
    sb_add(&dd, "%s\n%s", message, detail ? detail : "");
    free(detail);
    detail = dd.s;
    sb_add(&h,
           "the version table was moved by hand (or by stamp from an older luamigrate) after "
           "the interrupted run; check that the schema matches it (finish or undo what the "
           "journal lists by hand), then run 'luamigrate stamp %s', which keeps the version "
           "table where it is and clears the record",
           at ? at : "base");
  } else if (down) {
    lm_error_set(err, LM_EHALFDONE, "%s refused: %s", command, message);
    sb_add(&h,
           "to finish it, run 'luamigrate downgrade --resume TARGET': it skips the statements "
           "recorded done and runs the rest (a statement that was running runs again); to give "
           "it up, redo by hand what the done statements undid and run 'luamigrate stamp %s', "
           "which clears the record",
           j->revision);
  } else {
    lm_error_set(err, LM_EHALFDONE, "%s refused: %s", command, message);
    sb_add(&h,
           "to finish it, run 'luamigrate upgrade --resume TARGET': it skips the statements "
           "recorded done and runs the rest (a statement that was running runs again); to give "
           "it up, undo the done statements by hand and run 'luamigrate stamp %s', which clears "
           "the record",
           parents ? parents : "<its down_revision>");
  }
  free(err->detail);
  err->detail = detail;
  lm_error_setfield(&err->hint, h.s);
  free(h.s);
  free(parents);
  free(at);
  free(message);
  return LM_EHALFDONE;
}

/* The statement of `j` that a backend still runs (the interrupted run's client died, its
 * statement goes on), or NULL. */
static const lm_journal_row *still_running(const lm_journal *j) {
  for (size_t i = 0; i < j->n; i++)
    if (j->rows[i].active) return &j->rows[i];
  return NULL;
}

/* --resume while the interrupted run's statement still runs on the server: waits for its
 * backend to end (within lock_timeout), re-reading the journal, so the statement never runs
 * twice at once. */
static int wait_for_statement(lm_app *app, lm_journal *j, lm_error *err) {
  const lm_journal_row *r = still_running(j);
  if (!r) return LM_OK;
  lm_log_info(
      "--resume: statement %d of revision %s is still running on the server (backend pid "
      "%d, since %s); waiting for it to end",
      r->ordinal, j->revision, r->backend_pid, r->started);
  struct timespec t0;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  for (;;) {
    struct timespec ts = {0, 200000000L};
    nanosleep(&ts, NULL);
    if (lm_cancel_requested())
      return lm_error_set(err, LM_ERR,
                          "interrupted by signal while waiting for the interrupted run's "
                          "statement (backend pid %d) to end; nothing was changed",
                          r->backend_pid);
    int pid = r->backend_pid;
    lm_journal_free(j);
    int rc = lm_journal_read(&app->vt, app->conn, j, err);
    if (rc) return rc;
    if (!j->revision || !(r = still_running(j))) return LM_OK;
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    double waited = (double)(now.tv_sec - t0.tv_sec) + (double)(now.tv_nsec - t0.tv_nsec) / 1e9;
    if (app->cfg.lock_timeout >= 0 && waited >= app->cfg.lock_timeout) {
      rc = lm_error_set(err, LM_ELOCK,
                        "--resume: the interrupted run's statement %d of revision %s is still "
                        "running on the server (backend pid %d) after %g s",
                        r->ordinal, j->revision, pid, app->cfg.lock_timeout);
      lm_error_setfield(&err->hint,
                        "wait for it to end, or stop it with SELECT pg_cancel_backend(PID), "
                        "then run the command again");
      return rc;
    }
  }
}

/* ---- lint (luamigrate.lint; docs/safety.md) ------------------------------------------- */

/* Pushes luamigrate.lint.open(config_path, conn or nil): a lint session. */
static int lint_session(lm_app *app, int online, lm_error *err) {
  lua_State *L = app->L;
  if (lm_push_module_field(L, "luamigrate.lint", "open", err)) return LM_ERR;
  lua_pushstring(L, app->cfg.path);
  if (online)
    lm_push_conn(L, app->conn, 1);
  else
    lua_pushnil(L);
  if (lm_pcall(L, 2, 1) != LUA_OK) {
    lm_error_from_lua(L, -1, LM_EUSAGE, err);
    lua_pop(L, 1);
    return LM_EUSAGE;
  }
  return LM_OK;
}

/* The revisions lint.start_after names and their ancestors: old history not judged again. */
static int lint_skip(lm_app *app, int session, lm_revset *skip, lm_error *err) {
  lua_State *L = app->L;
  lua_getfield(L, session, "lint");
  lua_getfield(L, -1, "start_after");
  char *start = lua_isstring(L, -1) ? strdup(lua_tostring(L, -1)) : NULL;
  lua_pop(L, 2);
  if (!start) return LM_OK;
  lm_revset none = {0}, at = {0};
  int rc = lm_dag_resolve(app->dag, start, &none, LM_RESOLVE_SHOW, &at, err);
  if (rc >= 0) rc = lm_dag_plan_upgrade(app->dag, &none, &at, skip, err);
  if (rc < 0) lm_error_prefix(err, "%s: lint.start_after", app->cfg.path);
  lm_revset_free(&at);
  free(start);
  return rc < 0 ? rc : LM_OK;
}

/* upgrade: the plan linted first, its findings shown as warnings (lint.upgrade = "warn", the
 * default); "error" refuses to run a plan with an error-level finding, "off" skips this. */
/* The lint of upgrade's plan; *refused is set when lint.upgrade = "error" stops the run. */
static int lint_plan(lm_app *app, const lm_revset *plan, int *refused, lm_error *err) {
  lua_State *L = app->L;
  int top = lua_gettop(L);
  lm_revset skip = {0};
  int rc = lint_session(app, 1, err);
  if (rc) return rc;
  int session = lua_gettop(L);
  lua_getfield(L, session, "lint");
  lua_getfield(L, -1, "upgrade");
  const char *mode = lua_tostring(L, -1);
  int off = mode && !strcmp(mode, "off"), strict = mode && !strcmp(mode, "error");
  lua_pop(L, 2);
  if (off) goto cleanup;
  if ((rc = lint_skip(app, session, &skip, err))) goto cleanup;
  if ((rc = lm_lint_render(app, plan, 1, session, &skip, err))) goto cleanup;
  lua_getfield(L, session, "warnings");
  lua_pushvalue(L, session);
  if (lm_pcall(L, 1, 3) != LUA_OK) {
    lm_error_from_lua(L, -1, LM_ERR, err);
    rc = LM_ERR;
    goto cleanup;
  }
  lua_Integer errors = lua_tointeger(L, -2);
  for (lua_Integer i = 1; lua_rawgeti(L, -3, i) == LUA_TSTRING; i++) {
    lm_log_warn("%s", lua_tostring(L, -1));
    lua_pop(L, 1);
  }
  lua_pop(L, 1);
  if (lua_isstring(L, -1)) lm_log_detail("%s", lua_tostring(L, -1));
  if (strict && errors > 0) {
    *refused = 1;
    rc = lm_error_set(err, LM_ERR,
                      "upgrade refused: lint found %lld error-level finding%s in what it would "
                      "run (lint.upgrade = \"error\")",
                      (long long)errors, errors == 1 ? "" : "s");
    lm_error_setfield(&err->hint,
                      "fix them, or allow them in the migration (op.allow, -- luamigrate:allow); "
                      "'luamigrate lint' shows them with hints");
  }
cleanup:
  lm_revset_free(&skip);
  lua_settop(L, top);
  return rc;
}

/* upgrade: the plan linted first, its findings shown as warnings (lint.upgrade = "warn", the
 * default); "error" refuses to run a plan with an error-level finding, "off" skips this. The
 * lint only reads (in a dry run inside a savepoint, so even a failed read leaves the
 * transaction usable); if it cannot do its work, the run goes on with a warning. */
static int lint_before_upgrade(lm_app *app, const lm_revset *plan, lm_error *err) {
  if (plan->n == 0) return LM_OK;
  if (app->dry_run &&
      lm_exec(app->conn, "SAVEPOINT luamigrate_lint", 0, NULL, NULL, NULL, NULL, err))
    return LM_ERR;
  int refused = 0;
  int rc = lint_plan(app, plan, &refused, err);
  if (app->dry_run) {
    lm_error sp = {0};
    const char *back =
        rc ? "ROLLBACK TO SAVEPOINT luamigrate_lint" : "RELEASE SAVEPOINT luamigrate_lint";
    if (lm_exec(app->conn, back, 0, NULL, NULL, NULL, NULL, &sp) && rc == LM_OK) {
      *err = sp;
      return LM_ERR;
    }
    lm_error_clear(&sp);
  }
  if (refused || lm_cancel_requested()) return rc;
  if (rc) {
    lm_log_warn("lint could not check the plan (%s); running it unchecked",
                err->message ? err->message : "?");
    lm_error_clear(err);
  }
  return LM_OK;
}

/* ---- commands ------------------------------------------------------------------------ */

/* Splits "A:B" into the start set (resolved absolutely) and the target text; without a
 * colon the start is base. Sets *from_base when the script starts from an empty database. */
static int offline_start(lm_app *app, const char *expr, lm_revset *heads, const char **target,
                         int *from_base, lm_error *err) {
  const char *colon = strchr(expr, ':');
  *target = colon ? colon + 1 : expr;
  *from_base = 1;
  if (!colon || colon == expr) return LM_OK;
  char *start = strndup(expr, (size_t)(colon - expr));
  if (!start) return lm_error_set(err, LM_ENOMEM, "out of memory");
  lm_revset none = {0};
  int rc = lm_dag_resolve(app->dag, start, &none, LM_RESOLVE_SHOW, heads, err);
  free(start);
  if (rc < 0) return rc;
  *from_base = heads->n == 0;
  return LM_OK;
}

static int cmd_migrate(lm_app *app, cmdargs *a, int upgrade, lm_error *err) {
  lm_revset heads = {0}, target = {0}, plan = {0}, start = {0};
  lm_journal half = {0};
  int scope = -1; /* a downgrade confined to one branch (lm_dag_resolve_scoped) */
  int rc = want_positional(app->opts, a, 1, 1, "TARGET", err);
  if (rc) return rc;
  const char *expr = a->pos[0];
  if (a->sql && a->dry_run)
    return lm_error_set(err, LM_EUSAGE,
                        "%s: --sql and --dry-run exclude each other (--sql "
                        "needs no database; --dry-run runs against it and rolls back)",
                        upgrade ? "upgrade" : "downgrade");
  if (a->resume && (a->sql || a->dry_run))
    return lm_error_set(err, LM_EUSAGE,
                        "%s: --resume runs against the database; it excludes --sql and "
                        "--dry-run",
                        upgrade ? "upgrade" : "downgrade");
  if (a->locks && !a->dry_run)
    return lm_error_set(err, LM_EUSAGE,
                        "%s: --locks reports what --dry-run's statements lock; give --dry-run too",
                        upgrade ? "upgrade" : "downgrade");
  if (a->sql) {
    if (!upgrade && !strchr(expr, ':'))
      return lm_error_set(err, LM_EUSAGE, "downgrade with --sql requires <fromrev>:<torev>");
    const char *tgt;
    int from_base;
    if ((rc = offline_start(app, expr, &heads, &tgt, &from_base, err)) < 0) goto cleanup;
    rc = lm_dag_resolve_scoped(app->dag, tgt, &heads,
                               upgrade ? LM_RESOLVE_UPGRADE : LM_RESOLVE_DOWNGRADE, &target, &scope,
                               err);
    if (rc < 0) goto cleanup;
    rc = upgrade ? lm_dag_plan_upgrade(app->dag, &heads, &target, &plan, err)
                 : lm_dag_plan_downgrade_scoped(app->dag, &heads, &target, scope, &plan, err);
    if (rc < 0) goto cleanup;
    rc = lm_run_plan_offline(app, &heads, &plan, upgrade, from_base, err);
    goto cleanup;
  }
  if (strchr(expr, ':'))
    return lm_error_set(err, LM_EUSAGE,
                        "Range revision not allowed: '%s' (ranges A:B are for --sql output)", expr);
  app->dry_run = a->dry_run;
  app->show_locks = a->locks;
  if ((rc = connect_db(app, err))) goto cleanup;
  /* A dry run creates even the version tables inside the transaction it rolls back. */
  if (a->dry_run && (rc = lm_exec(app->conn, "BEGIN", 0, NULL, NULL, NULL, NULL, err)))
    goto cleanup;
  if ((rc = lock_db(app, err)) || (rc = read_heads(app, &heads, err)) ||
      (rc = check_overlap(app, &heads, err)))
    goto cleanup;
  /* A half-done revision: only --resume in its direction goes on (from the revision's
   * start), once the statement the interrupted run left running has ended. */
  if ((rc = lm_journal_read(&app->vt, app->conn, &half, err))) goto cleanup;
  if (half.revision && a->resume && journal_agrees(app, &half, &heads) &&
      !strcmp(half.operation, upgrade ? "upgrade" : "downgrade") &&
      (rc = wait_for_statement(app, &half, err)))
    goto cleanup;
  if (half.revision && (!a->resume || !journal_agrees(app, &half, &heads) ||
                        strcmp(half.operation, upgrade ? "upgrade" : "downgrade") != 0)) {
    rc = half_done_error(app, &half, &heads, upgrade ? "upgrade" : "downgrade", err);
    goto cleanup;
  }
  if (a->resume && !half.revision)
    lm_log_info("--resume: no revision is half-done; %s as usual",
                upgrade ? "upgrading" : "downgrading");
  rc = lm_dag_resolve_scoped(app->dag, expr, &heads,
                             upgrade ? LM_RESOLVE_UPGRADE : LM_RESOLVE_DOWNGRADE, &target, &scope,
                             err);
  if (rc < 0) goto cleanup;
  rc = upgrade ? lm_dag_plan_upgrade(app->dag, &heads, &target, &plan, err)
               : lm_dag_plan_downgrade_scoped(app->dag, &heads, &target, scope, &plan, err);
  if (rc < 0) goto cleanup;
  int nchanged;
  if ((rc = check_changed(app, &heads, &nchanged, NULL, &plan, err))) goto cleanup;
  if (half.revision) {
    if (plan.n == 0 || strcmp(lm_dag_id(app->dag, plan.idx[0]), half.revision) != 0) {
      rc = lm_error_set(err, LM_EUSAGE,
                        "%s --resume %s: the half-done revision %s is not the next step "
                        "towards that target",
                        upgrade ? "upgrade" : "downgrade", expr, half.revision);
      lm_error_setfield(&err->hint, upgrade ? "name a target at or past it, e.g. 'head'"
                                            : "name a target below it, e.g. '-1' or 'base'");
      goto cleanup;
    }
    lm_log_info("Resuming revision %s: the statements its journal records done are skipped",
                half.revision);
    app->resume = &half;
  }
  const int relative = lm_dag_target_relative(expr);
  for (size_t i = 0; i < heads.n && rc >= 0; i++)
    if (lm_revset_push(&start, heads.idx[i])) rc = lm_error_set(err, LM_ENOMEM, "out of memory");
  if (rc >= 0 && upgrade) rc = lint_before_upgrade(app, &plan, err);
  if (rc >= 0) rc = lm_run_plan(app, &heads, &plan, upgrade, err);
  app->resume = NULL;
  /* lock = "xact": between transactions another run may move the version table; each
   * transaction checks under the lock, and a stale plan is made again from where the
   * database is now. An absolute target stays; a relative one (-1, +2, label@-1) means
   * steps from the database's state, so it is resolved again from what the lock shows, as
   * long as this run has committed none of its steps; after that it cannot tell how many
   * steps are left and stops. */
  for (int again = 0; rc == LM_ESTALE && app->cfg.lock_mode == LM_LOCK_XACT && again < 10000;
       again++) {
    if (relative && !lm_revset_same(&start, &heads)) {
      free(err->hint);
      err->hint = NULL;
      lm_error_setfield(&err->hint,
                        "this run stopped after some of its steps, as its target is relative "
                        "to the version table's state; check 'luamigrate current' and run the "
                        "command again");
      break;
    }
    lm_error_clear(err);
    lm_revset_free(&heads);
    lm_revset_free(&plan);
    if ((rc = read_heads(app, &heads, err)) || (rc = check_overlap(app, &heads, err))) break;
    if (relative) {
      lm_revset_free(&target);
      lm_revset_free(&start);
      for (size_t i = 0; i < heads.n && rc >= 0; i++)
        if (lm_revset_push(&start, heads.idx[i]))
          rc = lm_error_set(err, LM_ENOMEM, "out of memory");
      if (rc >= 0)
        rc = lm_dag_resolve(app->dag, expr, &heads,
                            upgrade ? LM_RESOLVE_UPGRADE : LM_RESOLVE_DOWNGRADE, &target, err);
      if (rc < 0) break;
    }
    rc = upgrade ? lm_dag_plan_upgrade(app->dag, &heads, &target, &plan, err)
                 : lm_dag_plan_downgrade_scoped(app->dag, &heads, &target, scope, &plan, err);
    if (rc < 0) break;
    rc = lm_run_plan(app, &heads, &plan, upgrade, err);
  }
cleanup:
  lm_journal_free(&half);
  lm_revset_free(&heads);
  lm_revset_free(&target);
  lm_revset_free(&plan);
  lm_revset_free(&start);
  return rc < 0 ? rc : LM_OK;
}

/* *ok = the database's revisions `cur` are exactly the heads (rows are heads, so equal
 * sets). */
static int on_all_heads(lm_app *app, const lm_revset *cur, int *ok, lm_error *err) {
  lm_revset want = {0}, none = {0};
  int n = lm_dag_resolve(app->dag, "heads", &none, LM_RESOLVE_SHOW, &want, err);
  *ok = n >= 0 && lm_revset_same(&want, cur);
  lm_revset_free(&want);
  return n < 0 ? n : LM_OK;
}

static int cmd_current(lm_app *app, cmdargs *a, lm_error *err) {
  lm_revset heads = {0};
  sbuf b = {0};
  int rc = want_positional(app->opts, a, 0, 0, "", err);
  if (rc || (rc = connect_db(app, err)) || (rc = read_heads(app, &heads, err))) goto cleanup;
  if (a->json) {
    rc = emit_json_revs(app, heads.idx, heads.n, NULL, err);
  } else if (a->verbose) {
    char *d = lm_conn_describe(app->conn);
    printf("Current revision(s) for %s:\n", d ? d : "?");
    free(d);
  }
  for (size_t i = 0; !a->json && i < heads.n; i++) {
    if (a->verbose)
      log_entry(&b, app->dag, heads.idx[i], NULL);
    else
      head_only(&b, app->dag, heads.idx[i], 0, 0, 0, 1, NULL);
    if ((rc = emit(&b, err))) break;
  }
  if (rc == LM_OK && a->check_heads) {
    int ok = 0;
    if ((rc = on_all_heads(app, &heads, &ok, err)) == LM_OK && !ok)
      rc = lm_error_set(err, LM_ERR, "Database is not on all head revisions");
  }
cleanup:
  free(b.s);
  lm_revset_free(&heads);
  return rc;
}

static int cmd_heads(lm_app *app, cmdargs *a, lm_error *err) {
  lm_revset heads = {0};
  sbuf b = {0};
  int rc = want_positional(app->opts, a, 0, 0, "", err);
  if (rc) return rc;
  if (a->resolve_deps) {
    /* Only the real heads: a head something else depends on is satisfied by it. */
    lm_revset none = {0};
    if ((rc = lm_dag_resolve(app->dag, "heads", &none, LM_RESOLVE_SHOW, &heads, err)) < 0)
      return rc;
    rc = LM_OK;
  } else if (lm_dag_heads(app->dag, &heads)) {
    return lm_error_set(err, LM_ENOMEM, "out of memory");
  }
  if (a->json) rc = emit_json_revs(app, heads.idx, heads.n, NULL, err);
  for (size_t i = 0; !a->json && i < heads.n && rc == LM_OK; i++) {
    if (a->verbose)
      log_entry(&b, app->dag, heads.idx[i], NULL);
    else
      head_only(&b, app->dag, heads.idx[i], 1, 0, 0, 0, NULL);
    rc = emit(&b, err);
  }
  lm_revset_free(&heads);
  return rc;
}

/* All revisions in upgrade order (parents first). */
static int all_in_order(lm_app *app, lm_revset *order, lm_error *err) {
  lm_revset none = {0}, heads = {0};
  if (lm_dag_heads(app->dag, &heads)) return lm_error_set(err, LM_ENOMEM, "out of memory");
  int rc = lm_dag_plan_upgrade(app->dag, &none, &heads, order, err);
  lm_revset_free(&heads);
  return rc < 0 ? rc : LM_OK;
}

/* An endpoint of `history -r`: `current` means the database's heads. */
static int history_end(lm_app *app, const char *expr, lm_revset *cur, int *have_cur, lm_revset *out,
                       lm_error *err) {
  lm_revset none = {0};
  if (strcmp(expr, "current") != 0)
    return lm_dag_resolve(app->dag, expr, &none, LM_RESOLVE_SHOW, out, err);
  int rc;
  if (!*have_cur) {
    if ((rc = connect_db(app, err)) || (rc = read_heads(app, cur, err))) return rc;
    *have_cur = 1;
  }
  for (size_t i = 0; i < cur->n; i++)
    if (lm_revset_push(out, cur->idx[i])) return lm_error_set(err, LM_ENOMEM, "out of memory");
  return (int)out->n;
}

static int cmd_history(lm_app *app, cmdargs *a, lm_error *err) {
  lm_revset lo = {0}, hi = {0}, none = {0}, order = {0}, cur = {0};
  int have_cur = 0;
  sbuf b = {0};
  char *mark = NULL;
  int rc = want_positional(app->opts, a, 0, 0, "", err);
  if (rc) return rc;
  const char *range = a->rev_range;
  char *start = NULL, *end = NULL;
  if (range) {
    const char *colon = strchr(range, ':');
    if (!colon)
      return lm_error_set(err, LM_EUSAGE,
                          "History range requires [start]:[end], [start]:, or :[end]");
    start = strndup(range, (size_t)(colon - range));
    end = strdup(colon + 1);
  }
  if (a->indicate_current && !have_cur) {
    if ((rc = connect_db(app, err)) || (rc = read_heads(app, &cur, err))) goto cleanup;
    have_cur = 1;
  }
  if (start && *start && (rc = history_end(app, start, &cur, &have_cur, &lo, err)) < 0)
    goto cleanup;
  if (end && *end) {
    if ((rc = history_end(app, end, &cur, &have_cur, &hi, err)) < 0) goto cleanup;
    rc = lm_dag_plan_upgrade(app->dag, &none, &hi, &order, err);
  } else {
    rc = all_in_order(app, &order, err);
  }
  if (rc < 0) goto cleanup;
  /* Keep descendants-or-self of the start: one forward pass in topological order. */
  size_t count = lm_dag_count(app->dag);
  mark = calloc(count ? count : 1, 1);
  if (!mark) {
    rc = lm_error_set(err, LM_ENOMEM, "out of memory");
    goto cleanup;
  }
  for (size_t i = 0; i < order.n; i++) {
    int r = order.idx[i];
    if (lo.n == 0 || lm_revset_has(&lo, r)) {
      mark[r] = 1;
      continue;
    }
    const int *p;
    size_t np = lm_dag_parents(app->dag, r, &p);
    for (size_t j = 0; j < np && !mark[r]; j++) mark[r] = mark[p[j]];
    np = lm_dag_deps(app->dag, r, &p);
    for (size_t j = 0; j < np && !mark[r]; j++) mark[r] = mark[p[j]];
  }
  rc = LM_OK;
  if (a->json) {
    /* newest first: keep the marked ones in place, then reverse */
    size_t k = 0;
    for (size_t i = 0; i < order.n; i++)
      if (mark[order.idx[i]]) order.idx[k++] = order.idx[i];
    for (size_t i = 0; i < k / 2; i++) {
      int t = order.idx[i];
      order.idx[i] = order.idx[k - 1 - i];
      order.idx[k - 1 - i] = t;
    }
    rc = emit_json_revs(app, order.idx, k, a->indicate_current ? &cur : NULL, err);
    goto cleanup;
  }
  for (size_t i = order.n; i-- > 0 && rc == LM_OK;) {
    int r = order.idx[i];
    if (!mark[r]) continue;
    const lm_revset *c = a->indicate_current ? &cur : NULL;
    if (a->verbose)
      log_entry(&b, app->dag, r, c);
    else
      head_only(&b, app->dag, r, 1, 1, 1, 1, c);
    rc = emit(&b, err);
  }
cleanup:
  lm_revset_free(&cur);
  free(mark);
  free(start);
  free(end);
  free(b.s);
  lm_revset_free(&lo);
  lm_revset_free(&hi);
  lm_revset_free(&order);
  return rc < 0 ? rc : LM_OK;
}

static int cmd_show(lm_app *app, cmdargs *a, lm_error *err) {
  lm_revset revs = {0}, heads = {0};
  sbuf b = {0};
  int rc = want_positional(app->opts, a, 1, 1, "REV", err);
  if (rc) return rc;
  if (!strcmp(a->pos[0], "current")) {
    if ((rc = connect_db(app, err)) || (rc = read_heads(app, &revs, err))) goto cleanup;
  } else if ((rc = lm_dag_resolve(app->dag, a->pos[0], &heads, LM_RESOLVE_SHOW, &revs, err)) < 0) {
    goto cleanup;
  }
  rc = LM_OK;
  if (a->json) rc = emit_json_revs(app, revs.idx, revs.n, NULL, err);
  for (size_t i = 0; !a->json && i < revs.n && rc == LM_OK; i++) {
    log_entry(&b, app->dag, revs.idx[i], NULL);
    rc = emit(&b, err);
  }
cleanup:
  free(b.s);
  lm_revset_free(&revs);
  lm_revset_free(&heads);
  return rc < 0 ? rc : LM_OK;
}

/* branches: each branch point, newest first, with a "-> child" line per child. */
static int cmd_branches(lm_app *app, cmdargs *a, lm_error *err) {
  lm_revset order = {0};
  sbuf b = {0};
  int rc = want_positional(app->opts, a, 0, 0, "", err);
  if (rc || (rc = all_in_order(app, &order, err))) return rc;
  for (size_t i = order.n; i-- > 0 && rc == LM_OK;) {
    int r = order.idx[i];
    if (!lm_dag_is_branch_point(app->dag, r)) continue;
    if (a->verbose)
      log_entry(&b, app->dag, r, NULL);
    else
      head_only(&b, app->dag, r, 1, 0, 0, 1, NULL);
    const int *kids;
    size_t nk = lm_dag_children(app->dag, r, &kids);
    size_t pad = strlen(lm_dag_id(app->dag, r));
    for (size_t k = 0; k < nk; k++) {
      sb_add(&b, "\n%*s -> ", (int)pad, "");
      head_only(&b, app->dag, kids[k], 1, a->verbose, 0, 1, NULL);
    }
    sb_add(&b, "\n");
    rc = emit(&b, err);
  }
  free(b.s);
  lm_revset_free(&order);
  return rc;
}

/* ---- stamp ---------------------------------------------------------------------------- */

typedef struct vt_ops {
  lm_vt_op *v;
  size_t n, cap;
} vt_ops;

static int push_op(vt_ops *o, lm_vt_kind kind, int from, int to) {
  if (o->n == o->cap) {
    size_t cap = o->cap ? o->cap * 2 : 16;
    lm_vt_op *v = realloc(o->v, cap * sizeof *v);
    if (!v) return LM_ENOMEM;
    o->v = v;
    o->cap = cap;
  }
  o->v[o->n++] = (lm_vt_op){kind, from, to};
  return LM_OK;
}

static void set_drop(lm_revset *s, int idx) {
  for (size_t i = 0; i < s->n; i++)
    if (s->idx[i] == idx) {
      memmove(s->idx + i, s->idx + i + 1, (s->n - i - 1) * sizeof *s->idx);
      s->n--;
      return;
    }
}

/* The version-table changes of `stamp REV...`, step for step as Alembic computes them. The
 * current rows in the lineage of any target (its ancestors and descendants, dependencies
 * included) are "filtered"; each target then either is already a row, or replaces all the
 * filtered rows (one step, downward when a filtered row descends from it, else upward),
 * or starts a branch of its own; base deletes the filtered rows. Where those steps would
 * replace a row an earlier step already removed, Alembic fails; so does this, with a
 * message. `next` receives the rows afterwards. */
static int stamp_plan(lm_app *app, cmdargs *a, const lm_revset *current, lm_revset *next,
                      vt_ops *ops, lm_error *err) {
  const lm_dag *dag = app->dag;
  size_t n = lm_dag_count(dag);
  lm_revset filtered = {0}, dests = {0}, shares = {0};
  unsigned char *mark = calloc(n ? n : 1, 1);
  int rc = mark ? LM_OK : LM_ENOMEM;
  for (size_t i = 0; rc == LM_OK && i < current->n; i++) rc = lm_revset_push(next, current->idx[i]);
  if (rc) goto oom;
  for (int i = 0; i < a->npos; i++) {
    const char *arg = a->pos[i];
    shares.n = 0;
    int r = lm_dag_resolve(dag, arg, current, LM_RESOLVE_STAMP, &shares, err);
    if (r < 0) {
      rc = r;
      goto done;
    }
    for (size_t j = 0; j < shares.n; j++)
      if (!lm_revset_has(&dests, shares.idx[j]) && lm_revset_push(&dests, shares.idx[j])) goto oom;
    const char *at = strchr(arg, '@');
    if (at && at > arg) { /* label@...: the label's own revision counts for the lineage */
      char *branch = strndup(arg, (size_t)(at - arg));
      lm_revset b = {0};
      lm_error ignore = {0};
      if (branch && lm_dag_resolve(dag, branch, current, LM_RESOLVE_SHOW, &b, &ignore) == 1 &&
          lm_revset_push(&shares, b.idx[0])) {
        free(branch);
        lm_revset_free(&b);
        goto oom;
      }
      lm_error_clear(&ignore);
      free(branch);
      lm_revset_free(&b);
    }
    memset(mark, 0, n);
    if (shares.n && (lm_dag_mark(dag, shares.idx, shares.n, 1, 1, mark, 1) ||
                     lm_dag_mark(dag, shares.idx, shares.n, 0, 1, mark, 2)))
      goto oom;
    for (size_t h = 0; h < current->n; h++) {
      int c = current->idx[h];
      if ((!shares.n || mark[c]) && !lm_revset_has(&filtered, c) && lm_revset_push(&filtered, c))
        goto oom;
    }
  }
  if (dests.n == 0) { /* base */
    for (size_t i = 0; i < filtered.n; i++) {
      if (push_op(ops, LM_VT_DELETE, filtered.idx[i], -1)) goto oom;
      set_drop(next, filtered.idx[i]);
    }
    goto done;
  }
  for (size_t d = 0; d < dests.n; d++) {
    int dest = dests.idx[d];
    if (lm_revset_has(&filtered, dest)) continue;
    memset(mark, 0, n);
    if (lm_dag_mark(dag, &dest, 1, 1, 1, mark, 1) || lm_dag_mark(dag, &dest, 1, 0, 1, mark, 2))
      goto oom;
    int below = 0, above = 0;
    for (size_t i = 0; i < filtered.n; i++) {
      below |= (mark[filtered.idx[i]] & 1) != 0;
      above |= (mark[filtered.idx[i]] & 2) != 0;
    }
    int branch_move = !below && !above;
    /* from: all filtered rows, unless the target starts a branch of its own */
    size_t nfrom = branch_move ? 0 : filtered.n;
    int missing = 0;
    for (size_t i = 0; i < nfrom; i++) missing |= !lm_revset_has(next, filtered.idx[i]);
    if (!below && (branch_move || missing) && !lm_revset_has(next, dest)) {
      if (push_op(ops, LM_VT_INSERT, -1, dest) || lm_revset_push(next, dest)) goto oom;
      continue;
    }
    if (nfrom == 0 || missing || lm_revset_has(next, dest)) {
      rc = lm_error_set(err, LM_EUSAGE,
                        "stamp: cannot move the version table to %s: an earlier target of this "
                        "stamp already replaced the rows it would replace",
                        lm_dag_id(dag, dest));
      lm_error_setfield(&err->hint,
                        "stamp one target at a time, or start over with "
                        "'luamigrate stamp --purge REV...'");
      goto done;
    }
    for (size_t i = 0; i + 1 < nfrom; i++) {
      if (push_op(ops, LM_VT_DELETE, filtered.idx[i], -1)) goto oom;
      set_drop(next, filtered.idx[i]);
    }
    if (push_op(ops, LM_VT_UPDATE, filtered.idx[nfrom - 1], dest)) goto oom;
    set_drop(next, filtered.idx[nfrom - 1]);
    if (lm_revset_push(next, dest)) goto oom;
  }
  goto done;
oom:
  rc = lm_error_set(err, LM_ENOMEM, "out of memory");
done:
  free(mark);
  lm_revset_free(&filtered);
  lm_revset_free(&dests);
  lm_revset_free(&shares);
  return rc < 0 ? rc : LM_OK;
}

static int cmd_stamp(lm_app *app, cmdargs *a, lm_error *err) {
  lm_revset heads = {0}, next = {0};
  vt_ops opsv = {0}, *ops = &opsv;
  sbuf from = {0}, to = {0};
  int rc = want_positional(app->opts, a, 1, 64, "REV", err);
  int from_base = 0, in_tx = 0;
  if (rc) return rc;
  if (a->sql && a->purge) return lm_error_set(err, LM_EUSAGE, "Can't use --purge with --sql mode");
  if (a->sql) {
    const char *colon = a->npos == 1 ? strchr(a->pos[0], ':') : NULL;
    if (a->npos > 1 && strchr(a->pos[0], ':'))
      return lm_error_set(err, LM_EUSAGE,
                          "Stamp operation with --sql only supports a single starting revision "
                          "at a time");
    const char *tgt;
    if ((rc = offline_start(app, a->pos[0], &heads, &tgt, &from_base, err)) < 0) goto cleanup;
    if (colon) a->pos[0] = (char *)tgt;
  } else {
    if ((rc = connect_db(app, err)) || (rc = lock_db(app, err))) goto cleanup;
    /* The rows are read and written in one transaction under the lock (lock = "xact" takes
     * it there; "table" checks the lease is still this run's). */
    if ((rc = lm_exec(app->conn, "BEGIN", 0, NULL, NULL, NULL, NULL, err))) goto cleanup;
    in_tx = 1;
    if ((rc = lm_lock_fence(&app->lock, app->conn, err))) goto cleanup;
    /* --purge starts from no rows: the stored ones may name revisions no file defines */
    if (!a->purge && (rc = read_heads(app, &heads, err))) goto cleanup;
  }
  if ((rc = stamp_plan(app, a, &heads, &next, ops, err))) goto cleanup;
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  double started = (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
  char *f = lm_dag_format_ids(app->dag, heads.idx, heads.n);
  char *t = lm_dag_format_ids(app->dag, next.idx, next.n);
  lm_log_info("Running stamp_revision %s -> %s", heads.n ? (f ? f : "") : "",
              next.n ? (t ? t : "") : "");
  free(f);
  free(t);
  if (a->sql) {
    if ((rc = lm_emit_offline_preamble(app, err))) goto cleanup;
    fputs("BEGIN;\n\n", stdout);
    if (from_base && (rc = lm_emit_offline_ddl(app, err))) goto cleanup;
  }
  in_tx = 1;
  if (a->purge) rc = lm_vt_purge(&app->vt, app->conn, err);
  if (rc == LM_OK && !a->sql) { /* stamping settles a half-done revision by hand */
    lm_journal half = {0};
    rc = lm_journal_read(&app->vt, app->conn, &half, err);
    if (rc == LM_OK && half.revision) {
      lm_log_info("Clearing the journal of half-done revision %s", half.revision);
      rc = lm_journal_clear(&app->vt, app->conn, NULL, err);
    }
    lm_journal_free(&half);
  }
  for (size_t i = 0; i < ops->n && rc == LM_OK; i++) {
    const lm_vt_op *o = &ops->v[i];
    rc = lm_vt_apply(app, a->sql, o->kind,
                     o->kind == LM_VT_INSERT ? NULL : lm_dag_id(app->dag, o->from),
                     o->kind == LM_VT_DELETE ? NULL : lm_dag_id(app->dag, o->to), err);
  }
  if (rc == LM_OK) { /* the history row, online and in a --sql script alike */
    for (size_t i = 0; i < heads.n; i++)
      sb_add(&from, "%s%s", i ? " " : "", lm_dag_id(app->dag, heads.idx[i]));
    for (size_t i = 0; i < next.n; i++)
      sb_add(&to, "%s%s", i ? " " : "", lm_dag_id(app->dag, next.idx[i]));
    lm_vt_record rec = {
        .revision = next.n ? lm_dag_id(app->dag, next.idx[0]) : "base",
        .operation = "stamp",
        .from_ids = from.s ? from.s : "",
        .to_ids = to.s ? to.s : "",
        .started_at = started,
    };
    rc = a->sql ? lm_emit_stamp_history(app, rec.revision, rec.from_ids, rec.to_ids, err)
                : lm_vt_record_step(&app->vt, app->conn, &rec, err);
  }
  /* A failed step leaves the transaction open for the ROLLBACK below. */
  if (a->sql) {
    fputs("COMMIT;\n\n", stdout);
    in_tx = 0;
  } else if (rc == LM_OK && (rc = lm_lock_renew(&app->lock, app->conn, err)) == LM_OK) {
    rc = lm_exec(app->conn, "COMMIT", 0, NULL, NULL, NULL, NULL, err);
    in_tx = 0;
  }
cleanup:
  if (in_tx && !a->sql) {
    lm_error e2 = {0};
    lm_exec(app->conn, "ROLLBACK", 0, NULL, NULL, NULL, NULL, &e2);
    lm_error_clear(&e2);
  }
  free(from.s);
  free(to.s);
  lm_revset_free(&heads);
  lm_revset_free(&next);
  free(opsv.v);
  return rc < 0 ? rc : LM_OK;
}

/* Calls require("luamigrate.template")[fn] with the table or string on top; pops it and
 * returns the string result (malloc'd) or NULL with err set. */
static char *template_call(lm_app *app, const char *fn, int nargs, lm_error *err) {
  lua_State *L = app->L;
  if (lm_push_module_field(L, "luamigrate.template", fn, err)) {
    lua_pop(L, nargs);
    return NULL;
  }
  lua_insert(L, -1 - nargs);
  if (lm_pcall(L, nargs, 1) != LUA_OK) {
    lm_error_from_lua(L, -1, LM_EUSAGE, err);
    lua_pop(L, 1);
    return NULL;
  }
  char *s = strdup(luaL_optstring(L, -1, ""));
  lua_pop(L, 1);
  return s;
}

/* A new file (an existing one or a symlink in its place is an error), created 0644: the
 * umask can take permissions away, never add group or world write. */
static int write_new_file(const char *path, const char *text, lm_error *err) {
  int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (fd < 0) return lm_error_set(err, LM_EUSAGE, "cannot create %s: %s", path, strerror(errno));
  size_t len = strlen(text), off = 0;
  while (off < len) {
    ssize_t w = write(fd, text + off, len - off);
    if (w < 0) {
      if (errno == EINTR) continue;
      int e = errno;
      close(fd);
      unlink(path);
      return lm_error_set(err, LM_ERR, "cannot write %s: %s", path, strerror(e));
    }
    off += (size_t)w;
  }
  if (close(fd) != 0)
    return lm_error_set(err, LM_ERR, "cannot write %s: %s", path, strerror(errno));
  return LM_OK;
}

/* Two `revision --rev-id X` at once both pass the check against the files loaded before:
 * the id is claimed under an exclusive flock on the versions directory (released when the
 * process ends, killed or not), where the files present now are checked again. Returns the
 * locked directory's descriptor (the caller closes it after creating the file), or < 0. */
static int claim_id(const char *versions_dir, const char *id, const char *own, int *fd_out,
                    lm_error *err) {
  int fd = open(versions_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0)
    return lm_error_set(err, LM_EUSAGE, "cannot open %s: %s", versions_dir, strerror(errno));
  while (flock(fd, LOCK_EX) != 0) {
    if (errno == EINTR) continue;
    int e = errno;
    close(fd);
    return lm_error_set(err, LM_ERR, "cannot lock %s: %s", versions_dir, strerror(e));
  }
  DIR *d = fdopendir(dup(fd));
  if (!d) {
    int e = errno;
    close(fd);
    return lm_error_set(err, LM_ERR, "cannot read %s: %s", versions_dir, strerror(e));
  }
  size_t n = strlen(id);
  int rc = LM_OK;
  for (struct dirent *e; rc == LM_OK && (e = readdir(d));)
    if (!strncmp(e->d_name, id, n) && (e->d_name[n] == '_' || !strcmp(e->d_name + n, ".lua")) &&
        strcmp(e->d_name, own) != 0) { /* its own name: the exclusive create says why not */
      rc = lm_error_set(err, LM_EUSAGE, "Revision %s already present: %s/%s was created meanwhile",
                        id, versions_dir, e->d_name);
      lm_error_setfield(&err->hint,
                        "another 'luamigrate revision' took this id; choose another --rev-id");
    }
  closedir(d);
  if (rc) {
    close(fd);
    return rc;
  }
  *fd_out = fd;
  return LM_OK;
}

static int random_id(char out[13], lm_error *err) {
  unsigned char raw[6];
  FILE *f = fopen("/dev/urandom", "rb");
  if (!f || fread(raw, 1, sizeof raw, f) != sizeof raw) {
    if (f) fclose(f);
    return lm_error_set(err, LM_ERR, "cannot read /dev/urandom for a revision id");
  }
  fclose(f);
  for (int i = 0; i < 6; i++) snprintf(out + (size_t)2 * i, 3, "%02x", raw[i]);
  return LM_OK;
}

static void push_strlist(lua_State *L, const int *idx, size_t n, const lm_dag *dag) {
  lua_createtable(L, (int)n, 0);
  for (size_t i = 0; i < n; i++) {
    lua_pushstring(L, lm_dag_id(dag, idx[i]));
    lua_rawseti(L, -2, (lua_Integer)i + 1);
  }
}

/* Refuses bases that are not heads (unless --splice) and duplicates, as Alembic does. */
static int check_bases(lm_app *app, cmdargs *a, const lm_revset *base, lm_error *err) {
  for (size_t i = 0; i < base->n; i++) {
    for (size_t j = 0; j < i; j++)
      if (base->idx[i] == base->idx[j])
        return lm_error_set(err, LM_EUSAGE, "Duplicate head revisions specified");
    if (!a->splice && !lm_dag_is_head(app->dag, base->idx[i]))
      return lm_error_set(err, LM_EUSAGE,
                          "Revision %s is not a head revision; please specify --splice to "
                          "create a new branch from this revision",
                          lm_dag_id(app->dag, base->idx[i]));
  }
  return LM_OK;
}

static int new_revision(lm_app *app, cmdargs *a, const lm_revset *base, lm_error *err);

/* ---- autogenerate ------------------------------------------------------------------- */

/* Compares the declared schema with the database (which must be at the heads, as a new
 * revision goes on top of them). Leaves the result table of luamigrate.autogen.generate on
 * the stack: {ops = {text...}, upgrade = text, downgrade = text}. */
static int autogen_compare(lm_app *app, lm_error *err) {
  lua_State *L = app->L;
  lm_revset cur = {0};
  int ok = 0, rc = connect_db(app, err);
  if (rc == LM_OK) rc = read_heads(app, &cur, err);
  if (rc == LM_OK) rc = on_all_heads(app, &cur, &ok, err);
  lm_revset_free(&cur);
  if (rc) return rc;
  if (!ok) {
    lm_error_set(err, LM_ERR, "Target database is not up to date.");
    lm_error_setfield(&err->hint,
                      "run 'luamigrate upgrade heads' first: autogenerate compares "
                      "the declared schema with a database at the heads");
    return LM_ERR;
  }
  if ((rc = lm_push_module_field(L, "luamigrate.autogen", "generate", err))) return rc;
  int fn = lua_gettop(L);
  lm_push_conn(L, app->conn, 1);
  int conn_idx = lua_gettop(L);
  lua_pushvalue(L, fn);
  lua_pushvalue(L, conn_idx);
  lua_createtable(L, 0, 3);
  lua_pushstring(L, app->cfg.path);
  lua_setfield(L, -2, "config");
  lua_pushstring(L, app->cfg.script_location);
  lua_setfield(L, -2, "script_location");
  lua_pushstring(L, app->cfg.version_table);
  lua_setfield(L, -2, "version_table");
  int st = lm_pcall(L, 2, 1);
  lm_conn_detach(L, conn_idx);
  lua_replace(L, fn); /* the result (or error) where the function was */
  lua_settop(L, fn);
  if (st != LUA_OK) {
    lm_error_from_lua(L, -1, LM_EUSAGE, err);
    lua_pop(L, 1);
    if (PQtransactionStatus(app->conn) != PQTRANS_IDLE) {
      lm_error e = {0};
      lm_exec(app->conn, "ROLLBACK", 0, NULL, NULL, NULL, NULL, &e);
      lm_error_clear(&e);
    }
    return err->code ? err->code : LM_EUSAGE;
  }
  return LM_OK;
}

static void print_ops(lua_State *L, int t, const char *prefix) {
  lua_getfield(L, t, "ops");
  for (lua_Integer i = 1; lua_rawgeti(L, -1, i) == LUA_TSTRING; i++) {
    printf("%s%s\n", prefix, lua_tostring(L, -1));
    lua_pop(L, 1);
  }
  lua_pop(L, 2);
}

/* check: exit 1 and list the differences when the database differs from the declared
 * schema; 0 otherwise. */
static int cmd_check(lm_app *app, cmdargs *a, lm_error *err) {
  int rc = want_positional(app->opts, a, 0, 0, "", err);
  if (rc || (rc = autogen_compare(app, err))) return rc;
  lua_State *L = app->L;
  int t = lua_gettop(L);
  lua_getfield(L, t, "upgrade");
  int changed = !lua_isnil(L, -1);
  lua_pop(L, 1);
  if (!changed) {
    printf("No new upgrade operations detected.\n");
  } else {
    printf("New upgrade operations detected:\n");
    print_ops(L, t, "  ");
    lua_getfield(L, t, "ops");
    rc = lm_error_set(err, LM_ERR, "the database differs from the declared schema in %d way%s",
                      (int)luaL_len(L, -1), luaL_len(L, -1) == 1 ? "" : "s");
    lua_pop(L, 1);
  }
  lua_settop(L, t - 1);
  return rc;
}

static int cmd_revision(lm_app *app, cmdargs *a, lm_error *err) {
  lm_revset none = {0}, base = {0}, heads = {0};
  int rc = want_positional(app->opts, a, 0, 0, "", err);
  if (rc) return rc;
  if (lm_dag_heads(app->dag, &heads)) return lm_error_set(err, LM_ENOMEM, "out of memory");
  const char *head = a->head ? a->head : "head";
  if (!strcmp(head, "head") && heads.n > 1) {
    rc = lm_error_set(err, LM_EUSAGE,
                      "Multiple heads are present; please specify the head revision on which "
                      "the new revision should be based, or perform a merge.");
    lm_error_setfield(&err->hint,
                      "luamigrate merge heads -m \"merge\" joins them; --head REV bases the "
                      "new revision on one of them");
    goto cleanup;
  }
  if ((rc = lm_dag_resolve(app->dag, head, &none, LM_RESOLVE_SHOW, &base, err)) < 0) goto cleanup;
  if ((rc = check_bases(app, a, &base, err))) goto cleanup;
  if (a->autogenerate) {
    if ((rc = autogen_compare(app, err))) goto cleanup;
    lua_State *L = app->L;
    int t = lua_gettop(L);
    lua_getfield(L, t, "upgrade");
    lua_getfield(L, t, "downgrade");
    if (lua_isnil(L, -2)) {
      printf("No changes in schema detected; no revision written.\n");
      lua_settop(L, t - 1);
      goto cleanup;
    }
    a->upgrades = strdup(lua_tostring(L, -2));
    a->downgrades = strdup(lua_tostring(L, -1));
    lua_pop(L, 2);
    print_ops(L, t, "Detected ");
    lua_settop(L, t - 1);
    if (!a->upgrades || !a->downgrades) {
      rc = lm_error_set(err, LM_ENOMEM, "out of memory");
      goto cleanup;
    }
  }
  rc = new_revision(app, a, &base, err);
cleanup:
  free(a->upgrades);
  free(a->downgrades);
  a->upgrades = a->downgrades = NULL;
  lm_revset_free(&base);
  lm_revset_free(&heads);
  return rc < 0 ? rc : LM_OK;
}

/* merge REVS...: a new, empty revision whose down_revision is every revision named. */
static int cmd_merge(lm_app *app, cmdargs *a, lm_error *err) {
  lm_revset none = {0}, base = {0};
  int rc = want_positional(app->opts, a, 1, 64, "REVS", err);
  if (rc) return rc;
  for (int i = 0; i < a->npos && rc >= 0; i++) {
    lm_revset one = {0};
    rc = lm_dag_resolve(app->dag, a->pos[i], &none, LM_RESOLVE_SHOW, &one, err);
    for (size_t j = 0; rc >= 0 && j < one.n; j++)
      if (lm_revset_push(&base, one.idx[j])) rc = lm_error_set(err, LM_ENOMEM, "out of memory");
    lm_revset_free(&one);
  }
  if (rc < 0) goto cleanup;
  if (base.n < 2) {
    rc = lm_error_set(err, LM_EUSAGE, "merge: %s names %s; a merge needs two or more revisions",
                      a->npos == 1 ? a->pos[0] : "the arguments",
                      base.n ? lm_dag_id(app->dag, base.idx[0]) : "<base>");
    goto cleanup;
  }
  if ((rc = check_bases(app, a, &base, err))) goto cleanup;
  rc = new_revision(app, a, &base, err);
cleanup:
  lm_revset_free(&base);
  return rc < 0 ? rc : LM_OK;
}

/* Writes the new revision file based on `base` (its down_revision). */
static int new_revision(lm_app *app, cmdargs *a, const lm_revset *base, lm_error *err) {
  lua_State *L = app->L;
  lm_revset none = {0};
  char *slug = NULL, *text = NULL, *path = NULL, *tmpl = NULL, *tmpl_path = NULL;
  char id[64];
  int rc = LM_OK;
  if (!a->message) a->message = "";
  if (a->rev_id) {
    if (strlen(a->rev_id) > 32 ||
        strspn(a->rev_id,
               "abcdefghijklmnopqrstuvwxyz"
               "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_") != strlen(a->rev_id) ||
        !*a->rev_id)
      return lm_error_set(err, LM_EUSAGE,
                          "--rev-id '%s': a revision id is 1 to 32 letters, digits or '_'",
                          a->rev_id);
    snprintf(id, sizeof id, "%s", a->rev_id);
  } else if ((rc = random_id(id, err))) {
    return rc;
  }
  if (lm_dag_find(app->dag, id) >= 0)
    return lm_error_set(err, LM_EUSAGE, "Revision %s already present", id);
  /* Template: the project's own, else the built-in one. */
  tmpl_path = lm_path_join(app->cfg.script_location, "script.lua.tmpl");
  size_t tlen = 0;
  if (tmpl_path && access(tmpl_path, F_OK) == 0 &&
      (rc = lm_read_file(tmpl_path, &tmpl, &tlen, err)))
    goto cleanup;
  lua_pushstring(L, a->message);
  slug = template_call(app, "slug", 1, err);
  if (!slug) {
    rc = err->code ? err->code : LM_ERR;
    goto cleanup;
  }
  char date[64];
  time_t now = time(NULL);
  struct tm tmv;
  strftime(date, sizeof date, "%Y-%m-%d %H:%M:%S", localtime_r(&now, &tmv));
  lua_createtable(L, 0, 6);
  lua_pushstring(L, a->message);
  lua_setfield(L, -2, "message");
  lua_pushstring(L, id);
  lua_setfield(L, -2, "revision");
  lua_pushstring(L, date);
  lua_setfield(L, -2, "create_date");
  if (a->upgrades) {
    lua_pushstring(L, a->upgrades);
    lua_setfield(L, -2, "upgrades");
    lua_pushstring(L, a->downgrades ? a->downgrades : "");
    lua_setfield(L, -2, "downgrades");
  }
  push_strlist(L, base->idx, base->n, app->dag);
  lua_setfield(L, -2, "down_revision");
  if (a->branch_label) {
    lua_createtable(L, 1, 0);
    lua_pushstring(L, a->branch_label);
    lua_rawseti(L, -2, 1);
    lua_setfield(L, -2, "branch_labels");
  }
  if (a->ndeps) {
    lua_createtable(L, a->ndeps, 0);
    for (int i = 0; i < a->ndeps; i++) {
      lm_revset d = {0};
      /* Partial ids become full ids; labels stay labels, as Alembic keeps them. */
      int r = lm_dag_resolve(app->dag, a->depends[i], &none, LM_RESOLVE_SHOW, &d, err);
      int keep_label =
          r >= 0 && d.n == 1 && strcmp(lm_dag_id(app->dag, d.idx[0]), a->depends[i]) != 0 &&
          strncmp(lm_dag_id(app->dag, d.idx[0]), a->depends[i], strlen(a->depends[i])) != 0;
      if (r < 0 || d.n != 1) {
        lm_revset_free(&d);
        lua_pop(L, 2);
        if (r >= 0)
          lm_error_set(err, LM_EUSAGE, "--depends-on %s: not a single revision", a->depends[i]);
        rc = LM_EUSAGE;
        goto cleanup;
      }
      lua_pushstring(L, keep_label ? a->depends[i] : lm_dag_id(app->dag, d.idx[0]));
      lua_rawseti(L, -2, i + 1);
      lm_revset_free(&d);
    }
    lua_setfield(L, -2, "depends_on");
  }
  int nargs = 1;
  if (tmpl) {
    lua_pushstring(L, tmpl);
    nargs = 2;
  }
  text = template_call(app, "render", nargs, err);
  if (!text) {
    rc = err->code ? err->code : LM_ERR;
    goto cleanup;
  }
  char fname[512];
  snprintf(fname, sizeof fname, "%s_%s.lua", id, slug);
  path = lm_path_join(app->cfg.versions_dir, fname);
  if (!path) {
    rc = lm_error_set(err, LM_ENOMEM, "out of memory");
    goto cleanup;
  }
  int claim = -1;
  if ((rc = claim_id(app->cfg.versions_dir, id, fname, &claim, err))) goto cleanup;
  rc = write_new_file(path, text, err);
  close(claim);
  if (rc) goto cleanup;
  printf("Generating %s ... done\n", path);
cleanup:
  free(slug);
  free(text);
  free(path);
  free(tmpl);
  free(tmpl_path);
  return rc < 0 ? rc : LM_OK;
}

#ifndef LM_LUALS_REL
#define LM_LUALS_REL "../share/luamigrate/luals"
#endif

/* The installed LuaLS annotation library: LM_LUALS_REL (the install layout's path from the
 * binary's directory to it) resolved against where this binary is, so an install under any
 * prefix finds its own copy. NULL when absent, as in a build tree. */
static char *luals_dir(void) {
  char exe[4096];
  ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
  if (n <= 0) return NULL;
  exe[n] = '\0';
  char *slash = strrchr(exe, '/');
  if (!slash) return NULL;
  *slash = '\0';
  char *joined = lm_path_join(exe, LM_LUALS_REL);
  if (!joined) return NULL;
  char *dir = realpath(joined, NULL);
  free(joined);
  struct stat st;
  if (dir && (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode))) {
    free(dir);
    dir = NULL;
  }
  return dir;
}

/* Writes .luarc.json next to the config file, pointing LuaLS at the annotation library, so
 * op and sa complete in revision files. Skipped when there is no installed library or the
 * project already has a .luarc.json. The file is meant to be committed, so the path must hold
 * on teammates' machines: a library inside the project (a copy installed into it) is named
 * relative to the project; any other by its absolute path, which for the standard installs
 * (the .deb's /usr, cmake --install's default /usr/local) is the same on every machine; a
 * library elsewhere gets a note that the path is this machine's. */
static int write_luarc(const char *cfg, lm_error *err) {
  char *lib = luals_dir();
  if (!lib) return LM_OK;
  const char *slash = strrchr(cfg, '/');
  char *path = NULL, *dir = NULL, *proj = NULL;
  if (slash) {
    size_t dlen = (size_t)(slash - cfg);
    dir = strndup(cfg, dlen ? dlen : 1);
    path = dir ? lm_path_join(dir, ".luarc.json") : NULL;
  } else {
    path = strdup(".luarc.json");
  }
  proj = realpath(dir ? dir : ".", NULL);
  const char *named = lib;
  size_t plen = proj ? strlen(proj) : 0;
  if (proj && !strncmp(lib, proj, plen) && lib[plen] == '/') named = lib + plen + 1;
  char *esc = malloc(2 * strlen(named) + 1);
  int rc = LM_OK;
  if (!path || !esc) {
    rc = lm_error_set(err, LM_ENOMEM, "out of memory");
    goto cleanup;
  }
  char *e = esc;
  for (const char *p = named; *p; p++) {
    if (*p == '"' || *p == '\\') *e++ = '\\';
    *e++ = *p;
  }
  *e = '\0';
  if (access(path, F_OK) == 0) {
    printf("Leaving the existing %s as it is (LuaLS library: %s)\n", path, lib);
    goto cleanup;
  }
  size_t len = strlen(esc) + 256;
  char *text = malloc(len);
  if (!text) {
    rc = lm_error_set(err, LM_ENOMEM, "out of memory");
    goto cleanup;
  }
  snprintf(text, len,
           "{\n"
           "  \"runtime.version\": \"Lua 5.4\",\n"
           "  \"workspace.library\": [\"%s\"]\n"
           "}\n",
           esc);
  rc = write_new_file(path, text, err);
  free(text);
  if (!rc) printf("Generating %s ... done\n", path);
  if (!rc && named == lib && strncmp(lib, "/usr/", 5) != 0)
    printf(
        "Note: %s names the LuaLS library by where this machine has it (%s); teammates "
        "whose luamigrate is installed elsewhere need their own path there (the .deb and "
        "cmake --install's default prefix put it in the same place on every machine)\n",
        path, lib);
cleanup:
  free(lib);
  free(path);
  free(dir);
  free(proj);
  free(esc);
  return rc;
}

static int cmd_init(lm_app *app, cmdargs *a, lm_error *err) {
  int rc = want_positional(app->opts, a, 1, 1, "DIR", err);
  char *versions = NULL, *tmpl_path = NULL, *tmpl = NULL;
  if (rc) return rc;
  const char *dir = a->pos[0];
  const char *cfg = app->opts->config ? app->opts->config : "luamigrate.lua";
  struct stat st;
  if (stat(dir, &st) == 0) {
    if (!S_ISDIR(st.st_mode))
      return lm_error_set(err, LM_EUSAGE, "%s exists and is not a directory", dir);
    if (rmdir(dir) != 0) /* succeeds only when empty; recreated just below */
      return lm_error_set(err, LM_EUSAGE, "Directory %s already exists and is not empty", dir);
  }
  if (access(cfg, F_OK) == 0)
    return lm_error_set(err, LM_EUSAGE, "%s already exists; not overwriting it", cfg);
  versions = lm_path_join(dir, "versions");
  tmpl_path = lm_path_join(dir, "script.lua.tmpl");
  if (!versions || !tmpl_path) {
    rc = lm_error_set(err, LM_ENOMEM, "out of memory");
    goto cleanup;
  }
  /* Missing parents are created (init db/migrations), as mkdir -p does. A directory that
   * cannot be made is a usage error (exit 2), not a database one. */
  for (char *p = strchr(versions + 1, '/'); p; p = strchr(p + 1, '/')) {
    *p = '\0';
    int made = mkdir(versions, 0755) == 0;
    if (!made && errno != EEXIST) {
      rc = lm_error_set(err, LM_EUSAGE, "cannot create %s: %s", versions, strerror(errno));
      goto cleanup;
    }
    if (made) printf("Creating directory %s ... done\n", versions);
    *p = '/';
  }
  if (mkdir(versions, 0755) != 0) {
    rc = lm_error_set(err, LM_EUSAGE, "cannot create %s: %s", versions, strerror(errno));
    goto cleanup;
  }
  printf("Creating directory %s ... done\n", versions);
  lua_State *L = app->L;
  if ((rc = lm_push_module_field(L, "luamigrate.template", "DEFAULT", err))) goto cleanup;
  tmpl = strdup(lua_tostring(L, -1));
  lua_pop(L, 1);
  if ((rc = write_new_file(tmpl_path, tmpl, err))) goto cleanup;
  printf("Generating %s ... done\n", tmpl_path);
  /* DIR goes in as a Lua string literal of Lua's own making (string.format's %q), so any
   * name (quotes, backslashes, newlines) reads back as itself and nothing more. */
  lua_getglobal(L, "string");
  lua_getfield(L, -1, "format");
  lua_remove(L, -2);
  lua_pushliteral(L,
                  "-- luamigrate configuration. Top-level assignments are settings; paths are\n"
                  "-- relative to this file. Precedence: command-line flag > environment > this "
                  "file.\n"
                  "script_location = %q\n"
                  "-- A libpq URI or key=value conninfo; PG* variables and ~/.pgpass also apply.\n"
                  "url = os.getenv(\"DATABASE_URL\")\n"
                  "version_table = \"luamigrate_version\"\n"
                  "transaction_per_migration = true\n"
                  "-- lock_timeout = 60  -- seconds to wait for another run's lock (default: "
                  "forever)\n");
  lua_pushstring(L, dir);
  if (lm_pcall(L, 2, 1) != LUA_OK) {
    lm_error_from_lua(L, -1, LM_ERR, err);
    lua_pop(L, 1);
    rc = LM_ERR;
    goto cleanup;
  }
  rc = write_new_file(cfg, lua_tostring(L, -1), err);
  lua_pop(L, 1);
  if (rc) goto cleanup;
  printf("Generating %s ... done\n", cfg);
  if ((rc = write_luarc(cfg, err))) goto cleanup;
  printf("Please edit %s to point at your database (or set DATABASE_URL).\n", cfg);
cleanup:
  free(versions);
  free(tmpl_path);
  free(tmpl);
  return rc;
}

/* ---- convert ----------------------------------------------------------------------- */

/* convert alembic PATH [-o DIR]: luamigrate.convert.main does it all (arguments included).
 * It returns nil when everything converted, or the summary of what did not (exit 1); it
 * raises for a usage error or a project it cannot read (exit 2). */
static int cmd_convert(lm_app *app, cmdargs *a, lm_error *err) {
  lua_State *L = app->L;
  int rc = lm_push_module_field(L, "luamigrate.convert", "main", err);
  if (rc) return rc;
  lua_createtable(L, a->npos, 0);
  for (int i = 0; i < a->npos; i++) {
    lua_pushstring(L, a->pos[i]);
    lua_rawseti(L, -2, i + 1);
  }
  if (lm_pcall(L, 1, 1) != LUA_OK) {
    lm_error_from_lua(L, -1, LM_EUSAGE, err);
    lua_pop(L, 1);
    return LM_EUSAGE;
  }
  if (lua_type(L, -1) == LUA_TSTRING) rc = lm_error_set(err, LM_ERR, "%s", lua_tostring(L, -1));
  lua_pop(L, 1);
  return rc;
}

/* ---- inspect ------------------------------------------------------------------------ */

/* inspect [-o FILE] [--baseline]: the database (the schemas in scope, as for autogenerate)
 * written as a schema.lua, to stdout or to FILE (which must not exist); with --baseline
 * also a first revision that creates all of it, and the database stamped at that revision,
 * so a database luamigrate has never run on adopts it in one step. */
static int cmd_inspect(lm_app *app, cmdargs *a, lm_error *err) {
  lua_State *L = app->L;
  lm_revset cur = {0}, heads = {0};
  char id[13] = {0};
  int top = lua_gettop(L), in_tx = 0;
  int rc = want_positional(app->opts, a, 0, 0, "", err);
  if (rc || (rc = connect_db(app, err))) goto cleanup;
  if (a->baseline) {
    if (lm_dag_heads(app->dag, &heads)) {
      rc = lm_error_set(err, LM_ENOMEM, "out of memory");
      goto cleanup;
    }
    if (heads.n) {
      rc = lm_error_set(err, LM_EUSAGE,
                        "inspect --baseline: %s already holds revisions; a baseline is the first "
                        "one",
                        app->cfg.versions_dir);
      lm_error_setfield(&err->hint,
                        "run 'luamigrate inspect' without --baseline, or "
                        "'luamigrate revision --autogenerate' for what changed");
      goto cleanup;
    }
    if ((rc = read_heads(app, &cur, err))) goto cleanup;
    if (cur.n) {
      rc = lm_error_set(err, LM_EUSAGE, "inspect --baseline: the database is already stamped");
      goto cleanup;
    }
  }
  if ((rc = lm_push_module_field(L, "luamigrate.autogen", "inspect_schema", err))) goto cleanup;
  int fn = lua_gettop(L);
  lm_push_conn(L, app->conn, 1);
  int conn_idx = lua_gettop(L);
  lua_pushvalue(L, fn);
  lua_pushvalue(L, conn_idx);
  lua_createtable(L, 0, 3);
  lua_pushstring(L, app->cfg.path);
  lua_setfield(L, -2, "config");
  lua_pushstring(L, app->cfg.version_table);
  lua_setfield(L, -2, "version_table");
  lua_pushboolean(L, a->baseline);
  lua_setfield(L, -2, "baseline");
  int st = lm_pcall(L, 2, 1);
  lm_conn_detach(L, conn_idx);
  if (st != LUA_OK) {
    lm_error_from_lua(L, -1, LM_EUSAGE, err);
    rc = err->code ? err->code : LM_EUSAGE;
    if (PQtransactionStatus(app->conn) != PQTRANS_IDLE) {
      lm_error e = {0};
      lm_exec(app->conn, "ROLLBACK", 0, NULL, NULL, NULL, NULL, &e);
      lm_error_clear(&e);
    }
    goto cleanup;
  }
  int t = lua_gettop(L);
  lua_getfield(L, t, "schema");
  if (a->output) {
    if ((rc = write_new_file(a->output, lua_tostring(L, -1), err))) goto cleanup;
    lm_log_info("Wrote %s", a->output);
  } else {
    fputs(lua_tostring(L, -1), stdout);
  }
  lua_pop(L, 1);
  if (!a->baseline) goto cleanup;
  lua_getfield(L, t, "upgrade");
  lua_getfield(L, t, "downgrade");
  a->upgrades = strdup(luaL_optstring(L, -2, ""));
  a->downgrades = strdup(luaL_optstring(L, -1, ""));
  lua_pop(L, 2);
  if (!a->upgrades || !a->downgrades) {
    rc = lm_error_set(err, LM_ENOMEM, "out of memory");
    goto cleanup;
  }
  if ((rc = random_id(id, err))) goto cleanup;
  a->rev_id = id;
  if (!a->message) a->message = "baseline";
  if ((rc = new_revision(app, a, &heads, err)) < 0) goto cleanup;
  /* and the database is at it: the revision describes what is already there */
  if ((rc = lock_db(app, err)) ||
      (rc = lm_exec(app->conn, "BEGIN", 0, NULL, NULL, NULL, NULL, err)))
    goto cleanup;
  in_tx = 1;
  if ((rc = lm_vt_apply(app, 0, LM_VT_INSERT, NULL, id, err))) goto cleanup;
  lm_vt_record rec = {.revision = id, .operation = "stamp", .from_ids = "", .to_ids = id};
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  rec.started_at = (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
  if ((rc = lm_vt_record_step(&app->vt, app->conn, &rec, err))) goto cleanup;
  rc = lm_exec(app->conn, "COMMIT", 0, NULL, NULL, NULL, NULL, err);
  in_tx = 0;
  if (rc == LM_OK) lm_log_info("Stamped the database at %s", id);
cleanup:
  if (in_tx) {
    lm_error e = {0};
    lm_exec(app->conn, "ROLLBACK", 0, NULL, NULL, NULL, NULL, &e);
    lm_error_clear(&e);
  }
  free(a->upgrades);
  free(a->downgrades);
  a->upgrades = a->downgrades = NULL;
  lm_revset_free(&cur);
  lm_revset_free(&heads);
  lua_settop(L, top);
  return rc < 0 ? rc : LM_OK;
}

/* ---- dispatch ---------------------------------------------------------------------- */

/* luamigrate lint [RANGE] [--offline] [--json] [--downgrade]: the revisions pending on the
 * database (or, offline or in a START:END range, from START or base), rendered as --sql
 * renders them and judged by luamigrate.lint. Exit 1 on an error-level finding. */
static int cmd_lint(lm_app *app, cmdargs *a, lm_error *err) {
  lm_revset heads = {0}, target = {0}, plan = {0}, skip = {0};
  lua_State *L = app->L;
  int top = lua_gettop(L);
  int rc = want_positional(app->opts, a, 0, 1, "RANGE", err);
  if (rc) return rc;
  const int up = !a->downgrade;
  const char *expr = a->npos ? a->pos[0] : up ? "heads" : "base";
  int online = 0;
  if (!a->offline) {
    if (connect_db(app, err) == LM_OK) {
      online = 1;
    } else {
      lm_log_info("lint: no database reachable (%s); linting offline, from the revision files",
                  err->message ? err->message : "?");
      lm_error_clear(err);
      if (app->conn) PQfinish(app->conn);
      app->conn = NULL;
    }
  }
  const char *tgt = expr;
  if (strchr(expr, ':') || !online) {
    int from_base;
    if (strchr(expr, ':')) {
      if ((rc = offline_start(app, expr, &heads, &tgt, &from_base, err)) < 0) goto cleanup;
    } else if (!up) {
      lm_revset none = {0};
      if ((rc = lm_dag_resolve(app->dag, "heads", &none, LM_RESOLVE_SHOW, &heads, err)) < 0)
        goto cleanup;
    }
  } else if ((rc = read_heads(app, &heads, err))) {
    goto cleanup;
  }
  rc = lm_dag_resolve(app->dag, tgt, &heads, up ? LM_RESOLVE_UPGRADE : LM_RESOLVE_DOWNGRADE,
                      &target, err);
  if (rc < 0) goto cleanup;
  rc = up ? lm_dag_plan_upgrade(app->dag, &heads, &target, &plan, err)
          : lm_dag_plan_downgrade(app->dag, &heads, &target, &plan, err);
  if (rc < 0) goto cleanup;
  if ((rc = lint_session(app, online, err))) goto cleanup;
  int session = lua_gettop(L);
  if ((rc = lint_skip(app, session, &skip, err))) goto cleanup;
  if ((rc = lm_lint_render(app, &plan, up, session, &skip, err))) goto cleanup;
  lua_getfield(L, session, "report");
  lua_pushvalue(L, session);
  lua_pushboolean(L, a->json);
  if (lm_pcall(L, 2, 1) != LUA_OK) {
    lm_error_from_lua(L, -1, LM_ERR, err);
    rc = LM_ERR;
    goto cleanup;
  }
  if (lua_tointeger(L, -1) != 0)
    rc = lm_error_set(err, LM_ERR, "lint: error-level findings (listed above)");
cleanup:
  lua_settop(L, top);
  lm_revset_free(&heads);
  lm_revset_free(&target);
  lm_revset_free(&plan);
  lm_revset_free(&skip);
  return rc < 0 ? rc : LM_OK;
}

typedef struct command {
  const char *name;
  const char *options; /* long options it takes, each followed by a space; NULL: it parses
                        * its own (every argument but --help is passed on) */
  int needs_revisions; /* load config and revision files first */
  int (*fn)(lm_app *, cmdargs *, lm_error *);
} command;

static int cmd_upgrade(lm_app *app, cmdargs *a, lm_error *err) {
  return cmd_migrate(app, a, 1, err);
}
static int cmd_downgrade(lm_app *app, cmdargs *a, lm_error *err) {
  return cmd_migrate(app, a, 0, err);
}

static const command COMMANDS[] = {
    {"init", "", 0, cmd_init},
    {"revision", "message rev-id head splice branch-label depends-on autogenerate ", 1,
     cmd_revision},
    {"check", "", 1, cmd_check},
    {"merge", "message rev-id splice branch-label ", 1, cmd_merge},
    {"upgrade", "sql dry-run resume locks ", 1, cmd_upgrade},
    {"downgrade", "sql dry-run resume locks ", 1, cmd_downgrade},
    {"current", "verbose check-heads json ", 1, cmd_current},
    {"heads", "verbose resolve-dependencies json ", 1, cmd_heads},
    {"branches", "verbose ", 1, cmd_branches},
    {"history", "verbose rev-range indicate-current json ", 1, cmd_history},
    {"show", "json ", 1, cmd_show},
    {"stamp", "purge sql ", 1, cmd_stamp},
    {"status", "json ", 1, cmd_status},
    {"convert", NULL, 0, cmd_convert},
    {"inspect", "output baseline message ", 1, cmd_inspect},
    {"lint", "offline json downgrade ", 1, cmd_lint},
    {"repair", "", 1, cmd_repair},
};

int lm_command_run(lm_app *app, lm_error *err) {
  const command *c = NULL;
  for (size_t i = 0; i < sizeof COMMANDS / sizeof COMMANDS[0]; i++)
    if (!strcmp(COMMANDS[i].name, app->opts->command)) c = &COMMANDS[i];
  if (!c) return lm_error_set(err, LM_EUSAGE, "unknown command '%s'", app->opts->command);
  cmdargs a;
  int rc = parse_args(app->opts, c->options, &a, err);
  if (rc) return rc;
  if (app->opts->quiet && app->opts->verbose)
    return lm_error_set(err, LM_EUSAGE, "-q and -v contradict each other: give one");
  lm_log_setup(app->opts->quiet ? -1 : app->opts->verbose, (lm_color)app->opts->color);
  if (a.help) {
    lm_cli_print_command_help(lm_cli_help_for(c->name), stdout);
    return LM_OK;
  }
  if (c->needs_revisions) {
    lm_cancel_set_phase(LM_CANCEL_CONFIG);
    rc = lm_config_load(app, err);
    lm_cancel_set_phase(LM_CANCEL_LOADING);
    if (rc == LM_OK) rc = lm_loader_load(app, err);
    lm_cancel_set_phase(NULL);
    if (rc) return rc;
  }
  return c->fn(app, &a, err);
}
