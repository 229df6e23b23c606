/* A fleet run: the selected targets, each run by lm_pmain_exec in a worker thread as a
 * single-target run with the target's --url (threads, not child processes: the binary
 * starts no other program, tests/cli/security_spec.lua). Before any run, one query per
 * target without a schema and one per database for all its schema targets (the probe)
 * reads where every target is, so targets already there, and plain `current` over the
 * whole fleet, need no run at all. The targets' runs are quiet (-q), their errors, what
 * they did (steps, where they started) and their reports (status, check, lint, current
 * with an option: captured) come back as values, and each target's version rows are read
 * after its run on a connection of the fleet's, so the main thread alone prints, one
 * block per target as it finishes: outputs never interleave. */
#include "fleet.h"

#include <fnmatch.h>
#include <lauxlib.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "app.h"
#include "bind/bind.h"
#include "cancel.h"
#include "conn.h"
#include "log.h"
#include "pmain.h"
#include "report.h"
#include "strbuf.h"
#include "version_table.h"

enum { NOT_STARTED, RUNNING, FINISHED, REPORTED };

/* Runs at once on one server when the config's servers leave it to luamigrate. */
#define DEFAULT_RUNS_PER_SERVER 8
/* Worker threads at once over all servers: each holds a Lua state and its revisions, and
 * a signal must reach each one's statement in flight (a slot of cancel.c's each). */
#define MAX_RUNNING (LM_CANCEL_RUNS - 1)

typedef struct fleet fleet;

typedef struct job {
  fleet *f;
  char *name, *url; /* url NULL: libpq's defaults; with a schema, its search_path set */
  char *schema;     /* a schema target's schema, or NULL */
  size_t server;    /* index into f->servers */
  int state, rc;
  int probed;      /* the probe read it: heads (NULL: base), journal_rows, present */
  int canary;      /* one of the --canary stage's targets */
  int ran;         /* its run was started (else the probe settled it, or it never started) */
  int present;     /* its schema exists (or it has none) */
  long journal;    /* rows in its journal: a half-done revision */
  char *heads;     /* the probe's version rows, space-separated, sorted; NULL for none */
  char *error;     /* the whole message (detail and hint included) when rc != LM_OK */
  char *from, *to; /* "a, b" or "base" */
  char *output;    /* what the command reported (status, check, lint), or NULL */
  size_t output_len;
  char *messages; /* its warnings, server notices, print()s, lock waits and (a reporting
                   * command) io.stderr (lint's summary), or NULL */
  size_t messages_len;
  long steps;
  double ms;
  pthread_t thread;
} job;

typedef struct server {
  char *key;      /* host:port */
  long free;      /* connection slots the probe saw free (-1: unknown) */
  size_t runs;    /* target runs at once on it */
  size_t running; /* target runs holding its connections now */
} server;

struct fleet {
  lm_app *app;
  void (*preload)(lua_State *, void *);
  void *ud;
  job *jobs;
  size_t n;
  server *servers;
  size_t nservers;
  int cost;        /* connections a target run holds at once: a work and a lock one */
  int bar;         /* a live counter and progress bar on stderr (a terminal) */
  size_t done;     /* targets reported */
  size_t failed;   /* of them, failed */
  int report_json; /* the command's own --json is on (status, lint, current -c): "report" is JSON */
  pthread_mutex_t mu;
  pthread_cond_t cv;
  pthread_mutex_t preload_mu;
};

int lm_fleet_supports(const char *command) {
  const lm_command *c = lm_cli_find(command);
  return c && (c->flags & LM_CMD_FLEET);
}

static int is(const fleet *f, const char *command) {
  return !strcmp(f->app->opts->command, command);
}

/* `current` as such: the probe answers it, no target runs. With an option (--check-heads,
 * -v, --json) each target runs it, as a reporting command. */
static int plain_current(const fleet *f) {
  return is(f, "current") && f->app->opts->argc == 1;
}

/* Commands that report (their output captured and printed per target) and change nothing. */
static int reporting(const fleet *f) {
  return is(f, "status") || is(f, "check") || is(f, "lint") ||
         (is(f, "current") && !plain_current(f));
}

static char *full_message(const lm_error *e) {
  lm_strbuf b = {0};
  lm_strbuf_cat(&b, e->message ? e->message : "failed");
  if (e->detail) lm_strbuf_add(&b, "\n%s", e->detail);
  if (e->hint) lm_strbuf_add(&b, "\nhint: %s", e->hint);
  return b.s;
}

/* "a, b" for the space-separated ids s, "base" for none. */
static char *joined(const char *s) {
  lm_strbuf b = {0};
  if (!s || !*s) lm_strbuf_cat(&b, "base");
  for (const char *p = s; p && *p;) {
    size_t len = strcspn(p, " ");
    lm_strbuf_add(&b, "%s%.*s", p == s ? "" : ", ", (int)len, p);
    p += len;
    while (*p == ' ') p++;
  }
  return b.s;
}

/* The target's version rows joined by ", " ("base" for none). */
static int read_state(fleet *f, const char *url, char **ids_out, lm_error *err) {
  char **ids = NULL;
  size_t n = 0;
  lm_vt vt = {0};
  PGconn *conn = lm_conn_open(url, err);
  if (!conn) return err->code;
  int rc = lm_vt_init(&vt, conn, f->app->cfg.version_table, err);
  if (!rc) rc = lm_vt_read(&vt, conn, &ids, &n, err);
  if (!rc) {
    lm_strbuf b = {0};
    if (n == 0) lm_strbuf_cat(&b, "base");
    lm_strbuf_join(&b, (const char *const *)ids, n);
    *ids_out = b.s;
  }
  lm_vt_free_ids(ids, n);
  lm_vt_free(&vt);
  PQfinish(conn);
  return rc;
}

/* The target's single-target command line: the fleet's own global options (but -q, and
 * no colour: nothing of it reaches a terminal), the target's URL, the command's words
 * (with the command's own --json when the fleet's asks for JSON and the command has one). */
static char **target_argv(const fleet *f, const job *j, int *argc) {
  const lm_app *app = f->app;
  const lm_opts *o = app->opts;
  size_t cap = 13 + 2 * (size_t)o->nx + (size_t)o->argc;
  char **v = calloc(cap, sizeof *v);
  if (!v) return NULL;
  int k = 0;
  v[k++] = "luamigrate";
  v[k++] = "-q";
  v[k++] = "--color=never";
  v[k++] = "-c";
  v[k++] = app->cfg.path;
  for (int i = 0; i < o->nx; i++) {
    v[k++] = "-x";
    v[k++] = (char *)o->x[i];
  }
  if (o->lock_timeout) {
    v[k++] = "--lock-timeout";
    v[k++] = (char *)o->lock_timeout;
  }
  if (o->lock_mode) {
    v[k++] = "--lock";
    v[k++] = (char *)o->lock_mode;
  }
  const char *url = j->url ? j->url : o->url;
  if (url) {
    v[k++] = "--url";
    v[k++] = (char *)url;
  }
  for (int i = 0; i < o->argc; i++) v[k++] = o->argv[i];
  if (f->report_json && o->json) {
    int has = 0;
    for (int i = 1; i < o->argc; i++) has |= !strcmp(o->argv[i], "--json");
    if (!has) v[k++] = "--json";
  }
  *argc = k;
  return v;
}

#define SCHEMA_MISSING "schema %s does not exist in database %s (create it first)"

/* A schema target's schema must exist: on a search_path naming only a missing schema there
 * is no current schema, and nothing of the run could be created where it belongs. */
static int check_schema(const char *url, const char *schema, lm_error *err) {
  PGresult *res = NULL;
  PGconn *conn = lm_conn_open(url, err);
  if (!conn) return err->code;
  int rc = lm_exec(conn, "SELECT coalesce(current_schema(), '')", 0, NULL, NULL, NULL, &res, err);
  if (!rc && strcmp(PQgetvalue(res, 0, 0), schema) != 0)
    rc = lm_error_set(err, LM_ERR, SCHEMA_MISSING, schema, PQdb(conn));
  PQclear(res);
  PQfinish(conn);
  return rc;
}

/* A Lua file handle on a target's capture: io.stdout and io.stderr of the target's Lua
 * state (lint's findings and summary go there), closed by fleet.c alone. */
static int l_noclose(lua_State *L) {
  luaL_Stream *p = luaL_checkudata(L, 1, LUA_FILEHANDLE);
  p->closef = &l_noclose;
  luaL_pushfail(L);
  lua_pushliteral(L, "cannot close a fleet target's output");
  return 2;
}

typedef struct target_run {
  job *j;
  FILE *out, *messages;
} target_run;

/* A Lua file handle on f, set as io[field]. */
static void set_io(lua_State *L, int io, const char *field, FILE *f) {
  luaL_Stream *p = lua_newuserdatauv(L, sizeof *p, 0);
  p->f = f;
  p->closef = &l_noclose;
  luaL_setmetatable(L, LUA_FILEHANDLE);
  lua_setfield(L, io, field);
}

/* The caller's preload, one thread at a time (core.main's reads the host's Lua state);
 * then the target's io.stdout and io.stderr become its captures. */
static void preload_one(lua_State *L, void *ud) {
  target_run *t = ud;
  fleet *f = t->j->f;
  pthread_mutex_lock(&f->preload_mu);
  f->preload(L, f->ud);
  pthread_mutex_unlock(&f->preload_mu);
  if (!t->out || !t->messages) return;
  lua_getglobal(L, "io");
  if (lua_istable(L, -1)) {
    set_io(L, lua_gettop(L), "stdout", t->out);
    set_io(L, lua_gettop(L), "stderr", t->messages);
  }
  lua_pop(L, 1);
}

static void *work(void *p) {
  job *j = p;
  fleet *f = j->f;
  lm_error err = {0};
  lm_pmain_result res = {0};
  target_run t = {j, NULL, NULL};
  double t0 = lm_log_clock_ms();
  const char *url = j->url ? j->url : f->app->cfg.url;
  char *captured = NULL, *messages = NULL;
  size_t captured_len = 0, messages_len = 0;
  int rc = j->schema && !j->probed ? check_schema(url, j->schema, &err) : LM_OK;
  if (!rc && !plain_current(f)) {
    int argc = 0;
    char **argv = target_argv(f, j, &argc);
    if (reporting(f)) t.out = res.out = open_memstream(&captured, &captured_len);
    /* the run's warnings, server notices and lock waits (and a reporting command's
     * io.stderr): printed in the target's block, named */
    t.messages = open_memstream(&messages, &messages_len);
    if (!argv || (reporting(f) && !t.out) || !t.messages) {
      rc = lm_error_set(&err, LM_ENOMEM, "out of memory");
    } else {
      lm_log_set_stream(t.messages);
      rc = lm_pmain_exec(argc, argv, preload_one, &t, &err, &res);
      lm_log_set_stream(NULL);
    }
    if (t.out) fclose(t.out);
    if (t.messages) fclose(t.messages);
    free(argv);
  }
  /* Where the target is now, even after a failure (the steps committed before it stay);
   * the run itself says where its steps started, as it saw it under the lock. */
  lm_error again = {0};
  if (res.to)
    j->to = res.to;
  else if (read_state(f, url, &j->to, rc ? &again : &err) && !rc)
    rc = err.code;
  lm_error_clear(&again);
  if (res.from)
    j->from = res.from;
  else if (is(f, "stamp") && j->probed) /* where it was before: the probe read it */
    j->from = joined(j->heads);
  else /* no step ran: it is where its run found it */
    j->from = j->to ? strdup(j->to) : NULL;
  pthread_mutex_lock(&f->mu);
  j->rc = rc;
  j->error = rc ? full_message(&err) : NULL;
  if (rc && !j->error) j->error = strdup("failed (out of memory)");
  j->output = captured;
  j->output_len = captured_len;
  j->messages = messages;
  j->messages_len = messages_len;
  j->steps = (long)res.steps;
  j->ms = lm_log_clock_ms() - t0;
  j->state = FINISHED;
  pthread_cond_signal(&f->cv);
  pthread_mutex_unlock(&f->mu);
  lm_error_clear(&err);
  return NULL;
}

static const char *status_of(const fleet *f, const job *j) {
  if (j->state == NOT_STARTED) return "not_started";
  if (j->rc) return "failed";
  if (is(f, "stamp")) return "stamped";
  if (!is(f, "upgrade") && !is(f, "downgrade")) return "ok";
  if (j->steps == 0) return "already";
  return is(f, "upgrade") ? "upgraded" : "downgraded";
}

static void first_line(const char *s, FILE *out) {
  if (!s) s = "failed (out of memory)";
  fprintf(out, "%.*s", (int)strcspn(s, "\n"), s);
}

static void json_str_or_null(lm_strbuf *b, const char *s) {
  if (s)
    lm_report_json_str(b, s);
  else
    lm_strbuf_cat(b, "null");
}

/* The counter and bar on stderr: "[ 37/1000] [#####...............]  3 failed". */
static void draw_bar(const fleet *f) {
  enum { WIDTH = 30 };
  size_t fill = f->n ? f->done * WIDTH / f->n : WIDTH;
  char bar[WIDTH + 1];
  for (size_t i = 0; i < WIDTH; i++) bar[i] = i < fill ? '#' : '.';
  bar[WIDTH] = '\0';
  int w = snprintf(NULL, 0, "%zu", f->n);
  fprintf(stderr, "\r\033[K[%*zu/%zu] [%s]", w, f->done, f->n, bar);
  if (f->failed) fprintf(stderr, "  %zu failed", f->failed);
  fflush(stderr);
}

static void clear_bar(const fleet *f) {
  if (!f->bar) return;
  fputs("\r\033[K", stderr);
  fflush(stderr);
}

/* Each line of text, after "name: ". */
static void prefixed(FILE *out, const char *name, const char *text) {
  for (const char *p = text; p && *p;) {
    size_t len = strcspn(p, "\n");
    fprintf(out, "%s: %.*s\n", name, (int)len, p);
    p += len;
    if (*p) p++;
  }
}

/* A target's report: its JSON object, or its captured report with each line prefixed by
 * its name (pdsh's way: grep-able, and a block per target), then its result line. */
static void report(fleet *f, const job *j) {
  FILE *out = stdout;
  clear_bar(f);
  if (f->app->opts->json) {
    lm_strbuf b = {0};
    lm_strbuf_cat(&b, "{\"target\": ");
    lm_report_json_str(&b, j->name);
    lm_strbuf_add(&b, ", \"status\": \"%s\", \"from\": ", status_of(f, j));
    json_str_or_null(&b, j->from);
    lm_strbuf_cat(&b, ", \"to\": ");
    json_str_or_null(&b, j->to);
    lm_strbuf_add(&b, ", \"steps\": %ld, \"duration_ms\": %.0f, \"error\": ", j->steps, j->ms);
    json_str_or_null(&b, j->error);
    if (reporting(f) && f->report_json) {
      /* the command's own JSON (one value), as it printed it */
      size_t n = j->output_len;
      while (n && (j->output[n - 1] == '\n' || j->output[n - 1] == ' ')) n--;
      lm_strbuf_cat(&b, ", \"report\": ");
      if (n)
        lm_strbuf_addn(&b, j->output, n);
      else
        lm_strbuf_cat(&b, "null");
    } else if (reporting(f)) {
      lm_strbuf_cat(&b, ", \"output\": ");
      json_str_or_null(&b, j->output);
    }
    lm_strbuf_cat(&b, ", \"messages\": "); /* in every object, so each has the same keys */
    json_str_or_null(&b, j->messages && *j->messages ? j->messages : NULL);
    lm_strbuf_cat(&b, "}");
    fprintf(out, "%s\n", b.s ? b.s : "");
    free(b.s);
  } else {
    prefixed(out, j->name, j->output);
    prefixed(out, j->name, j->messages);
    if (j->rc) {
      fprintf(out, "%s: FAILED: ", j->name);
      first_line(j->error, out);
      fputc('\n', out);
    } else if (plain_current(f)) {
      fprintf(out, "%s: %s\n", j->name, j->to);
    } else if (reporting(f)) {
      fprintf(out, "%s: ok, %.0f ms\n", j->name, j->ms);
    } else if (is(f, "stamp")) {
      fprintf(out, "%s: %s -> %s, stamped, %.0f ms\n", j->name, j->from, j->to, j->ms);
    } else {
      fprintf(out, "%s: %s -> %s, %ld step%s, %.0f ms\n", j->name, j->from, j->to, j->steps,
              j->steps == 1 ? "" : "s", j->ms);
    }
  }
  fflush(out);
  if (j->state != NOT_STARTED) {
    f->done++;
    if (j->rc) f->failed++;
  }
  if (f->bar) draw_bar(f);
}

/* Whether name matches one of the comma-separated globs in pattern. */
static int selected(const char *pattern, const char *name) {
  char glob[256];
  for (const char *p = pattern; *p;) {
    size_t len = strcspn(p, ",");
    if (len < sizeof glob) {
      memcpy(glob, p, len);
      glob[len] = '\0';
      if (len && fnmatch(glob, name, 0) == 0) return 1;
    }
    p += len;
    if (*p == ',') p++;
  }
  return 0;
}

/* Each glob of the pattern must select a target: a typo is not an empty success. */
static int check_pattern(const char *pattern, char **names, size_t n, lm_error *err) {
  char glob[256];
  for (const char *p = pattern;;) {
    size_t len = strcspn(p, ",");
    if (len == 0 || len >= sizeof glob)
      return lm_error_set(err, LM_EUSAGE, "--targets '%s': an empty or too long pattern", pattern);
    memcpy(glob, p, len);
    glob[len] = '\0';
    size_t i = 0;
    while (i < n && fnmatch(glob, names[i], 0) != 0) i++;
    if (i == n) return lm_error_set(err, LM_EUSAGE, "--targets: '%s' matches no target", glob);
    p += len;
    if (!*p) return LM_OK;
    p++;
  }
}

/* The value of conninfo keyword `kw` in parsed options (NULL when unset). */
static const char *option(const PQconninfoOption *o, const char *kw) {
  for (; o && o->keyword; o++)
    if (!strcmp(o->keyword, kw)) return o->val && *o->val ? o->val : NULL;
  return NULL;
}

/* url (NULL: libpq's defaults) with the schema first on search_path: libpq's options, the
 * url's own (a -c work_mem=..., kept) and then the search_path, given again after what the
 * url says (libpq takes a keyword's last value), as a URI parameter or a conninfo keyword.
 * The schema is a plain lower-case name (luamigrate.config checks it). */
static char *with_schema(const char *url, const char *schema) {
  PQconninfoOption *o = PQconninfoParse(url ? url : "", NULL);
  const char *own = option(o, "options");
  lm_strbuf v = {0}, b = {0};
  lm_strbuf_add(&v, "%s%s-csearch_path=%s", own ? own : "", own ? " " : "", schema);
  if (url && (!strncmp(url, "postgresql://", 13) || !strncmp(url, "postgres://", 11))) {
    lm_strbuf_add(&b, "%s%coptions=", url, strchr(url, '?') ? '&' : '?');
    for (const char *p = v.s; p && *p; p++)
      if (strchr("-._~", *p) || (*p >= '0' && *p <= '9') || ((*p | 32) >= 'a' && (*p | 32) <= 'z'))
        lm_strbuf_putc(&b, *p);
      else
        lm_strbuf_add(&b, "%%%02X", (unsigned char)*p);
  } else {
    lm_strbuf_add(&b, "%s%soptions='", url ? url : "", url && *url ? " " : "");
    for (const char *p = v.s; p && *p; p++) {
      if (*p == '\'' || *p == '\\') lm_strbuf_putc(&b, '\\');
      lm_strbuf_putc(&b, *p);
    }
    lm_strbuf_putc(&b, '\'');
  }
  PQconninfoFree(o);
  int oom = v.oom || b.oom;
  free(v.s);
  if (oom) {
    free(b.s);
    return NULL;
  }
  return b.s;
}

enum { KEY_SERVER, KEY_DB, KEY_DBNAME };

/* Where url connects: "host:port" (KEY_SERVER), "host:port/dbname user" (KEY_DB) or the
 * database's name (KEY_DBNAME), libpq's defaults (PG* variables included) filling what the
 * url leaves out. Malloc'd; NULL on out of memory. */
static char *conn_key(const char *url, int what) {
  PQconninfoOption *o = PQconninfoParse(url ? url : "", NULL);
  PQconninfoOption *d = PQconndefaults();
  const char *host = option(o, "hostaddr"), *port = option(o, "port");
  const char *name = option(o, "dbname"), *user = option(o, "user");
  if (!host) host = option(o, "host");
  if (!host) host = option(d, "host");
  if (!port) port = option(d, "port");
  if (!user) user = option(d, "user");
  if (!name) name = option(d, "dbname");
  if (!name) name = user;
  lm_strbuf b = {0};
  if (what == KEY_DBNAME)
    lm_strbuf_cat(&b, name ? name : "");
  else
    lm_strbuf_add(&b, "%s:%s", host ? host : "", port ? port : "5432");
  if (what == KEY_DB) lm_strbuf_add(&b, "/%s %s", name ? name : "", user ? user : "");
  PQconninfoFree(o);
  PQconninfoFree(d);
  if (b.oom) {
    free(b.s);
    return NULL;
  }
  return b.s;
}

/* The probe of a group (probe()): for every target in it (its schema, or none), whether the
 * schema exists, its version rows and its journal's row count, read in one query (each
 * schema's tables through query_to_xml, as no table may exist yet; the rows hex-encoded in
 * the XML, which would escape an id's & or <); and how many connection slots its server
 * has free. */
static const char PROBE_SQL[] =
    "SELECT p.s = '' OR EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = p.s), "
    "  CASE WHEN to_regclass(p.q || $2) IS NOT NULL THEN convert_from(decode((xpath("
    "    '/row/v/text()', query_to_xml('SELECT encode(convert_to(string_agg(version_num, "
    "    '' '' " LM_VT_ROWS_ORDER
    "), ''UTF8''), ''hex'') AS v FROM ' || p.q || $2, "
    "    false, true, '')))[1]::text, 'hex'), 'UTF8') END, "
    "  CASE WHEN to_regclass(p.q || $3) IS NOT NULL THEN (xpath('/row/n/text()', query_to_xml("
    "    'SELECT count(*) AS n FROM ' || p.q || $3, false, true, '')))[1]::text ELSE '0' END, "
    "  current_setting('max_connections')::int "
    "    - current_setting('superuser_reserved_connections')::int "
    "    - (SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend') "
    "FROM (SELECT s, o, CASE WHEN s = '' THEN '' ELSE quote_ident(s) || '.' END AS q "
    "      FROM unnest($1::text[]) WITH ORDINALITY AS u(s, o)) p ORDER BY p.o";

/* s (NULL: "") as an element of a text[] literal: always double-quoted, a " or \ escaped,
 * so no name reads as NULL (a schema named null) or splits (a comma, a brace). */
static void array_element(lm_strbuf *b, const char *s) {
  lm_strbuf_putc(b, '"');
  for (; s && *s; s++) {
    if (*s == '"' || *s == '\\') lm_strbuf_putc(b, '\\');
    lm_strbuf_putc(b, *s);
  }
  lm_strbuf_putc(b, '"');
}

/* Probes the database of jobs[idx[0..n)] (one connection, one query). A failure leaves
 * them unprobed: their own runs then meet it and report it each. */
static void probe_db(fleet *f, const size_t *idx, size_t n) {
  lm_error err = {0};
  lm_vt vt = {0};
  PGresult *res = NULL;
  lm_strbuf arr = {0};
  const job *first = &f->jobs[idx[0]];
  PGconn *conn = lm_conn_open(first->url ? first->url : f->app->cfg.url, &err);
  if (!conn || lm_vt_init(&vt, conn, f->app->cfg.version_table, &err)) goto cleanup;
  lm_strbuf_putc(&arr, '{');
  for (size_t i = 0; i < n; i++) {
    if (i) lm_strbuf_putc(&arr, ',');
    array_element(&arr, f->jobs[idx[i]].schema);
  }
  lm_strbuf_putc(&arr, '}');
  if (arr.oom) goto cleanup;
  const char *params[] = {arr.s, vt.table, vt.journal};
  if (lm_exec(conn, PROBE_SQL, 3, params, NULL, NULL, &res, &err) || (size_t)PQntuples(res) != n)
    goto cleanup;
  for (size_t i = 0; i < n; i++) {
    job *j = &f->jobs[idx[i]];
    j->present = !strcmp(PQgetvalue(res, (int)i, 0), "t");
    j->heads = PQgetisnull(res, (int)i, 1) ? NULL : strdup(PQgetvalue(res, (int)i, 1));
    j->journal = strtol(PQgetvalue(res, (int)i, 2), NULL, 10);
    j->probed = PQgetisnull(res, (int)i, 1) || j->heads;
  }
  server *s = &f->servers[first->server];
  long free_slots = strtol(PQgetvalue(res, 0, 3), NULL, 10);
  if (s->free < 0 || free_slots < s->free) s->free = free_slots;
cleanup:
  lm_error_clear(&err);
  PQclear(res);
  free(arr.s);
  lm_vt_free(&vt);
  if (conn) PQfinish(conn);
}

/* The databases to probe: group g is jobs order[first[g] .. first[g + 1]). */
typedef struct probe_plan {
  fleet *f;
  size_t *order, *first, ngroups;
  size_t next_server; /* the next server a prober thread takes (under f->mu) */
} probe_plan;

/* A prober thread: takes servers one at a time and probes each of their databases in
 * turn, so a server sees one probe connection at a time. */
static void *prober(void *p) {
  probe_plan *pp = p;
  fleet *f = pp->f;
  for (;;) {
    pthread_mutex_lock(&f->mu);
    size_t s = pp->next_server++;
    pthread_mutex_unlock(&f->mu);
    if (s >= f->nservers || lm_cancel_requested()) return NULL;
    for (size_t g = 0; g < pp->ngroups; g++) {
      const size_t *idx = pp->order + pp->first[g];
      if (f->jobs[idx[0]].server == s) probe_db(f, idx, pp->first[g + 1] - pp->first[g]);
    }
  }
}

/* Groups the schema targets by database, each other target alone, and probes each group
 * once, the servers side by side (at most MAX_PROBERS at once). */
#define MAX_PROBERS 16
static int probe(fleet *f, lm_error *err) {
  size_t cap = f->n ? f->n : 1;
  char **keys = calloc(cap, sizeof *keys);
  unsigned char *done = calloc(cap, 1);
  probe_plan pp = {f, malloc(cap * sizeof(size_t)), malloc((cap + 1) * sizeof(size_t)), 0, 0};
  pthread_t threads[MAX_PROBERS];
  size_t nthreads = 0, k = 0;
  int rc = LM_OK;
  if (!keys || !done || !pp.order || !pp.first) {
    rc = lm_error_set(err, LM_ENOMEM, "out of memory");
    goto cleanup;
  }
  for (size_t i = 0; i < f->n; i++) {
    const job *j = &f->jobs[i];
    if (!(keys[i] = conn_key(j->url ? j->url : f->app->cfg.url, KEY_DB))) {
      rc = lm_error_set(err, LM_ENOMEM, "out of memory");
      goto cleanup;
    }
  }
  /* The schema targets of one database share a probe: their tables are read qualified by
   * their schemas. A target without a schema reads its tables as its own URL's search_path
   * finds them, so it has a probe of its own (on a schema target's connection it would read
   * that schema's). */
  for (size_t i = 0; i < f->n; i++) {
    if (done[i]) continue;
    pp.first[pp.ngroups++] = k;
    done[i] = 1;
    pp.order[k++] = i;
    for (size_t m = i + 1; f->jobs[i].schema && m < f->n; m++)
      if (!done[m] && f->jobs[m].schema && !strcmp(keys[m], keys[i])) {
        done[m] = 1;
        pp.order[k++] = m;
      }
  }
  pp.first[pp.ngroups] = k;
  while (nthreads < MAX_PROBERS && nthreads < f->nservers &&
         pthread_create(&threads[nthreads], NULL, prober, &pp) == 0)
    nthreads++;
  if (nthreads == 0) prober(&pp); /* no thread to be had: probe here */
  for (size_t t = 0; t < nthreads; t++) pthread_join(threads[t], NULL);
cleanup:
  for (size_t i = 0; keys && i < f->n; i++) free(keys[i]);
  free(keys);
  free(done);
  free(pp.order);
  free(pp.first);
  return rc;
}

/* The servers of the jobs (by host:port), each job's index set. */
static int find_servers(fleet *f, lm_error *err) {
  f->servers = calloc(f->n ? f->n : 1, sizeof *f->servers);
  if (!f->servers) return lm_error_set(err, LM_ENOMEM, "out of memory");
  for (size_t i = 0; i < f->n; i++) {
    job *j = &f->jobs[i];
    char *key = conn_key(j->url ? j->url : f->app->cfg.url, KEY_SERVER);
    if (!key) return lm_error_set(err, LM_ENOMEM, "out of memory");
    size_t s = 0;
    while (s < f->nservers && strcmp(f->servers[s].key, key) != 0) s++;
    if (s == f->nservers) {
      f->servers[f->nservers++] = (server){.key = key, .free = -1};
    } else {
      free(key);
    }
    j->server = s;
  }
  return LM_OK;
}

/* Targets the probe settled: a missing schema fails; `current` is answered; an upgrade or
 * downgrade whose plan from the rows read is empty, with nothing half-done, is already
 * there. Only the plain form (COMMAND TARGET, an absolute target) is settled so: any
 * option, and a relative target, is the run's to judge. */
static int settle(fleet *f, lm_error *err) {
  const lm_opts *o = f->app->opts;
  int plan = (is(f, "upgrade") || is(f, "downgrade")) && o->argc == 2 && o->argv[1][0] != '-' &&
             !lm_dag_target_relative(o->argv[1]);
  if (plan && lm_loader_load(f->app, err)) return err->code;
  int up = is(f, "upgrade");
  for (size_t i = 0; i < f->n; i++) {
    job *j = &f->jobs[i];
    if (!j->probed) continue;
    int ok = 0;
    if (!j->present) {
      lm_error e = {0};
      char *db = conn_key(j->url ? j->url : f->app->cfg.url, KEY_DBNAME);
      lm_error_set(&e, LM_ERR, SCHEMA_MISSING, j->schema, db ? db : "?");
      free(db);
      j->error = full_message(&e);
      j->rc = e.code;
      lm_error_clear(&e);
      j->from = joined(NULL);
      j->to = joined(NULL);
      j->state = FINISHED;
      continue;
    }
    if (plain_current(f)) {
      ok = 1;
    } else if (plan && j->journal == 0) {
      lm_revset heads = {0}, target = {0}, steps = {0}, anc = {0};
      int scope = -1, desc = -1, known = 1;
      lm_error e = {0};
      for (const char *p = j->heads; p && *p && known;) {
        char id[128];
        size_t len = strcspn(p, " ");
        if (len >= sizeof id) {
          known = 0; /* heads read only in part: the run judges */
          break;
        }
        memcpy(id, p, len);
        id[len] = '\0';
        int x = lm_dag_find(f->app->dag, id);
        known = x >= 0 && !lm_revset_push(&heads, x);
        p += len;
        while (*p == ' ') p++;
      }
      if (known && lm_dag_overlap(f->app->dag, &heads, &desc, &anc, &e) == 0 &&
          lm_dag_resolve_scoped(f->app->dag, o->argv[1], &heads,
                                up ? LM_RESOLVE_UPGRADE : LM_RESOLVE_DOWNGRADE, &target, &scope,
                                &e) >= 0 &&
          (up ? lm_dag_plan_upgrade(f->app->dag, &heads, &target, &steps, &e)
              : lm_dag_plan_downgrade_scoped(f->app->dag, &heads, &target, scope, &steps, &e)) >= 0)
        ok = steps.n == 0;
      lm_error_clear(&e);
      lm_revset_free(&heads);
      lm_revset_free(&target);
      lm_revset_free(&steps);
      lm_revset_free(&anc);
    }
    if (ok) {
      j->from = joined(j->heads);
      j->to = joined(j->heads);
      j->state = FINISHED;
      if (!j->from || !j->to) return lm_error_set(err, LM_ENOMEM, "out of memory");
    }
  }
  return LM_OK;
}

/* The config's targets (luamigrate.config.targets: checked there), names and urls copied. */
static int load_targets(lm_app *app, char ***names, char ***urls, char ***schemas, size_t *n,
                        lm_error *err) {
  lua_State *L = app->L;
  int top = lua_gettop(L);
  if (lm_push_module_field(L, "luamigrate.config", "targets", err)) return LM_ERR;
  lua_pushstring(L, app->cfg.path);
  if (lm_pcall(L, 1, 1) != LUA_OK) {
    /* An interrupt raises again wherever Lua runs next (luamigrate.config's own lines):
     * said here, for the config's targets function it stopped. */
    if (lm_cancel_requested())
      lm_error_set(err, LM_EINTR, "%s: targets(): %s", app->cfg.path, LM_CANCEL_CONFIG);
    else
      lm_error_from_lua(L, -1, LM_EUSAGE, err);
    lua_settop(L, top);
    return err->code;
  }
  *n = (size_t)luaL_len(L, -1);
  *names = calloc(*n + 1, sizeof **names);
  *urls = calloc(*n + 1, sizeof **urls);
  *schemas = calloc(*n + 1, sizeof **schemas);
  if (!*names || !*urls || !*schemas) {
    lua_settop(L, top);
    return lm_error_set(err, LM_ENOMEM, "out of memory");
  }
  for (size_t i = 0; i < *n; i++) {
    lua_geti(L, -1, (lua_Integer)i + 1);
    lua_getfield(L, -1, "name");
    (*names)[i] = strdup(lua_tostring(L, -1));
    lua_getfield(L, -2, "url");
    const char *url = lua_isstring(L, -1) ? lua_tostring(L, -1) : app->cfg.url;
    lua_getfield(L, -3, "schema");
    const char *schema = lua_tostring(L, -1);
    (*urls)[i] = schema ? with_schema(url, schema) : url ? strdup(url) : NULL;
    (*schemas)[i] = schema ? strdup(schema) : NULL;
    lua_pop(L, 4);
    if (schema && !(*urls)[i]) {
      lua_settop(L, top);
      return lm_error_set(err, LM_ENOMEM, "out of memory");
    }
    if (schema && strchr(app->cfg.version_table, '.')) {
      lua_settop(L, top);
      return lm_error_set(err, LM_EUSAGE,
                          "%s: target %s has a schema, and version_table '%s' names one: a "
                          "schema target keeps its version table in its own schema (leave "
                          "version_table unqualified)",
                          app->cfg.path, (*names)[i], app->cfg.version_table);
    }
  }
  lua_settop(L, top);
  return LM_OK;
}

static void summary(const fleet *f) {
  size_t changed = 0, already = 0, ok = 0, idle = 0;
  for (size_t i = 0; i < f->n; i++) {
    const char *s = status_of(f, &f->jobs[i]);
    if (!strcmp(s, "not_started"))
      idle++;
    else if (!strcmp(s, "already"))
      already++;
    else if (!strcmp(s, "ok"))
      ok++;
    else if (strcmp(s, "failed") != 0)
      changed++;
  }
  if (is(f, "stamp"))
    printf("\n%zu stamped, %zu failed, %zu not started\n", changed, f->failed, idle);
  else if (!is(f, "upgrade") && !is(f, "downgrade"))
    printf("\n%zu ok, %zu failed, %zu not started\n", ok, f->failed, idle);
  else
    printf("\n%zu %s, %zu already there, %zu failed, %zu not started\n", changed,
           is(f, "upgrade") ? "upgraded" : "downgraded", already, f->failed, idle);
  if (f->failed) printf("\nfailures:\n");
  for (size_t i = 0; i < f->n; i++)
    if (f->jobs[i].error) printf("%s: %s\n", f->jobs[i].name, f->jobs[i].error);
}

/* Whether job j may start now: its server has room for one more run, and the fleet for
 * one more thread. */
static int room(const fleet *f, const job *j, size_t running) {
  const server *s = &f->servers[j->server];
  return running < MAX_RUNNING && s->running < s->runs;
}

/* Targets that failed: the canaries among them (canaries), or those that failed before any
 * run (the probe found it: a missing schema; !canaries). */
static size_t failures(const fleet *f, int canaries) {
  size_t n = 0;
  for (size_t i = 0; i < f->n; i++) {
    const job *j = &f->jobs[i];
    n += j->state == REPORTED && j->rc && (canaries ? j->canary : !j->ran);
  }
  return n;
}

/* The fleet's error, worded from what failed: canaries (and the others, held back, not
 * started), or targets found failed before any run, or targets whose runs failed. */
static int failed_message(const fleet *f, size_t canaries, lm_error *err) {
  size_t idle = 0, idle_canaries = 0, early = failures(f, 0), failed = failures(f, 1);
  /* No target succeeded and each failed with a usage error (exit 2 for a single target: an
   * unknown revision, a bad argument): the command line is at fault, exit 2 too. */
  int code = LM_EUSAGE;
  for (size_t i = 0; i < f->n; i++) {
    const job *j = &f->jobs[i];
    if (j->state == NOT_STARTED) {
      idle++;
      idle_canaries += j->canary;
    } else if (j->rc != LM_EUSAGE && j->rc != LM_ENOTFOUND) {
      code = LM_ERR;
    }
  }
  char more[64] = "", rest[96] = "";
  if (failed && idle) {
    if (early) snprintf(more, sizeof more, " (and %zu more before any run)", early);
    if (idle_canaries)
      snprintf(rest, sizeof rest, "%zu were not started, %zu of them canaries", idle,
               idle_canaries);
    else
      snprintf(rest, sizeof rest, "the other %zu were not started", idle);
    return lm_error_set(err, code, "%zu of the %zu canary targets failed%s: %s", failed, canaries,
                        more, rest);
  }
  if (early == f->failed)
    snprintf(more, sizeof more, " before any run");
  else if (early)
    snprintf(more, sizeof more, " (%zu before any run)", early);
  if (idle) snprintf(rest, sizeof rest, "; %zu not started", idle);
  return lm_error_set(err, code, "%zu of %zu targets failed%s%s", f->failed, f->n, more, rest);
}

/* Starts the targets the probe left, at most `runs` of its server's at once and
 * MAX_RUNNING in all: the first `canary` ones (0: all) as a stage of their own, the others
 * only once all of those succeeded. Targets the probe settled are reported first. */
static int run_jobs(fleet *f, size_t canary, lm_error *err) {
  size_t running = 0, next = 0, limit = f->n, canaries = 0;
  int rc = LM_OK;
  pthread_mutex_lock(&f->mu);
  for (size_t i = 0; i < f->n; i++)
    if (f->jobs[i].state == FINISHED) {
      f->jobs[i].state = REPORTED;
      report(f, &f->jobs[i]);
    }
  /* The canaries are the first `canary` targets that need a run: one already there proves
   * nothing about the migrations. */
  if (canary)
    for (limit = 0; limit < f->n && canaries < canary; limit++)
      if (f->jobs[limit].state == NOT_STARTED) {
        f->jobs[limit].canary = 1;
        canaries++;
      }
  for (;;) {
    /* An interrupt (SIGINT, SIGTERM) stops the running targets' runs; none starts after.
     * A target waits while its server is full; a later one on another server may start. */
    int stop = (f->failed && !f->app->opts->keep_going) || lm_cancel_requested() || rc;
    for (size_t i = next; i < limit && !stop && running < MAX_RUNNING; i++) {
      job *j = &f->jobs[i];
      if (j->state != NOT_STARTED || !room(f, j, running)) continue;
      j->state = RUNNING;
      j->ran = 1;
      if (pthread_create(&j->thread, NULL, work, j) != 0) {
        j->state = NOT_STARTED;
        j->ran = 0;
        rc = lm_error_set(err, LM_ERR, "cannot start a thread for target %s", j->name);
        break;
      }
      f->servers[j->server].running++;
      running++;
    }
    while (next < limit && f->jobs[next].state != NOT_STARTED) next++;
    if (running == 0) {
      /* A failure the probe found is no canary's: by default it has stopped the fleet
       * already, and with --keep-going it holds back only itself. */
      if (next == limit && limit < f->n && !failures(f, 1) && !rc && !lm_cancel_requested()) {
        limit = f->n; /* the canaries all succeeded */
        continue;
      }
      break;
    }
    pthread_cond_wait(&f->cv, &f->mu);
    for (size_t i = 0; i < limit; i++) {
      job *j = &f->jobs[i];
      if (j->state != FINISHED) continue;
      pthread_join(j->thread, NULL);
      j->state = REPORTED;
      f->servers[j->server].running--;
      running--;
      report(f, j);
    }
  }
  pthread_mutex_unlock(&f->mu);
  clear_bar(f);
  if (!f->app->opts->json) {
    summary(f);
  } else {
    for (size_t i = 0; i < f->n; i++)
      if (f->jobs[i].state == NOT_STARTED) report(f, &f->jobs[i]);
    clear_bar(f);
  }
  if (!rc && f->failed) rc = failed_message(f, canaries, err);
  if (!rc && lm_cancel_requested()) { /* a target not started did not succeed */
    size_t idle = 0;
    for (size_t i = 0; i < f->n; i++) idle += f->jobs[i].state == NOT_STARTED;
    if (idle)
      rc = lm_error_set(err, LM_EINTR, "interrupted by signal: %zu of %zu targets were not started",
                        idle, f->n);
  }
  return rc;
}

/* How many target runs each server takes at once: --parallel N is connections per server
 * (a run holding `cost` of them); by default half the slots the probe saw free, at most
 * DEFAULT_RUNS_PER_SERVER runs; never more than the server's targets. */
static int size_servers(fleet *f, long parallel, lm_error *err) {
  if (parallel && parallel < f->cost)
    return lm_error_set(err, LM_EUSAGE,
                        "--parallel %ld: each target's run holds %d connections to its server "
                        "(a work and a lock connection, lock = %s); give --parallel %d or more",
                        parallel, f->cost, lm_lock_mode_name(f->app->cfg.lock_mode), f->cost);
  for (size_t s = 0; s < f->nservers; s++) {
    server *v = &f->servers[s];
    size_t targets = 0;
    for (size_t i = 0; i < f->n; i++) targets += f->jobs[i].server == s;
    long runs = DEFAULT_RUNS_PER_SERVER;
    if (parallel)
      runs = parallel / f->cost;
    else if (v->free >= 0 && v->free / 2 / f->cost < runs)
      runs = v->free / 2 / f->cost;
    if (runs < 1) runs = 1;
    v->runs = (size_t)runs < targets ? (size_t)runs : targets;
  }
  return LM_OK;
}

/* Options a fleet cannot honour: --sql writes one script, for one database. */
static int check_options(const lm_opts *o, lm_error *err) {
  for (int i = 1; i < o->argc; i++)
    if (!strcmp(o->argv[i], "--sql"))
      return lm_error_set(err, LM_EUSAGE,
                          "--targets: %s --sql writes one SQL script for one database; run it "
                          "once per target with --url instead",
                          o->command);
  return LM_OK;
}

int lm_fleet_run(lm_app *app, void (*preload)(lua_State *, void *), void *ud, lm_error *err) {
  char **names = NULL, **urls = NULL, **schemas = NULL;
  size_t n = 0;
  fleet f = {.app = app,
             .preload = preload,
             .ud = ud,
             .mu = PTHREAD_MUTEX_INITIALIZER,
             .cv = PTHREAD_COND_INITIALIZER,
             .preload_mu = PTHREAD_MUTEX_INITIALIZER};
  long parallel = 0;
  size_t canary = 0;
  int rc = check_options(app->opts, err);
  if (rc) return rc;
  if (app->opts->parallel) {
    char *end = NULL;
    parallel = strtol(app->opts->parallel, &end, 10);
    if (end == app->opts->parallel || *end || parallel < 1 || parallel > 1000) {
      rc = lm_error_set(err, LM_EUSAGE, "--parallel '%s': expected a number from 1 to 1000",
                        app->opts->parallel);
      goto cleanup;
    }
  }
  if (app->opts->canary) {
    char *end = NULL;
    long v = strtol(app->opts->canary, &end, 10);
    if (end == app->opts->canary || *end || v < 1) {
      rc = lm_error_set(err, LM_EUSAGE, "--canary '%s': expected a number of targets (1 or more)",
                        app->opts->canary);
      goto cleanup;
    }
    canary = (size_t)v;
  }
  /* Commands that take the migration lock hold a lock connection beside the work one in
   * lock = session (the advisory lock's) and table (the lease's heartbeat). */
  int locks = is(&f, "upgrade") || is(&f, "downgrade") || is(&f, "stamp");
  f.cost = locks && app->cfg.lock_mode != LM_LOCK_XACT ? 2 : 1;
  f.report_json = is(&f, "status") || is(&f, "lint") || (is(&f, "current") && !plain_current(&f));
  f.bar = isatty(STDERR_FILENO) && !app->opts->quiet;
  lm_cancel_set_phase(LM_CANCEL_CONFIG); /* the config's targets function is user Lua */
  rc = load_targets(app, &names, &urls, &schemas, &n, err);
  lm_cancel_set_phase(NULL);
  if (!rc) rc = check_pattern(app->opts->targets, names, n, err);
  if (rc) goto cleanup;
  f.jobs = calloc(n ? n : 1, sizeof *f.jobs);
  if (!f.jobs) {
    rc = lm_error_set(err, LM_ENOMEM, "out of memory");
    goto cleanup;
  }
  for (size_t i = 0; i < n; i++)
    if (selected(app->opts->targets, names[i]))
      f.jobs[f.n++] = (job){.f = &f, .name = names[i], .url = urls[i], .schema = schemas[i]};
  if ((rc = find_servers(&f, err)) || (rc = probe(&f, err)) || (rc = settle(&f, err)) ||
      (rc = size_servers(&f, parallel, err)))
    goto cleanup;
  rc = run_jobs(&f, canary, err);
cleanup:
  for (size_t i = 0; i < f.n; i++) {
    free(f.jobs[i].error);
    free(f.jobs[i].from);
    free(f.jobs[i].to);
    free(f.jobs[i].heads);
    free(f.jobs[i].output);
    free(f.jobs[i].messages);
  }
  free(f.jobs);
  for (size_t s = 0; s < f.nservers; s++) free(f.servers[s].key);
  free(f.servers);
  for (size_t i = 0; i < n; i++) { /* an array whose calloc failed is NULL */
    if (names) free(names[i]);
    if (urls) free(urls[i]);
    if (schemas) free(schemas[i]);
  }
  free(names);
  free(urls);
  free(schemas);
  return rc;
}
