/* A fleet run: the selected targets, each run by lm_pmain_exec in a worker thread as a
 * single-target run with the target's --url (threads, not child processes: the binary
 * starts no other program, tests/cli/security_spec.lua). The targets' runs are quiet (-q),
 * their errors and what they did (steps, where they started) come back as values, and each
 * target's version rows are read after its run on a connection of the fleet's, so the main
 * thread alone prints, one line per target as it finishes: outputs never interleave. */
#include "fleet.h"

#include <fnmatch.h>
#include <lauxlib.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "app.h"
#include "bind/bind.h"
#include "cancel.h"
#include "conn.h"
#include "pmain.h"
#include "report.h"
#include "strbuf.h"
#include "version_table.h"

enum { NOT_STARTED, RUNNING, FINISHED, REPORTED };

typedef struct fleet fleet;

typedef struct job {
  fleet *f;
  char *name, *url; /* url NULL: libpq's defaults; with a schema, its search_path set */
  char *schema;     /* a schema target's schema, or NULL */
  int state, rc;
  char *error; /* the whole message (detail and hint included) when rc != LM_OK */
  char *from, *to;
  long steps;
  double ms;
  pthread_t thread;
} job;

struct fleet {
  lm_app *app;
  void (*preload)(lua_State *, void *);
  void *ud;
  job *jobs;
  size_t n;
  pthread_mutex_t mu;
  pthread_cond_t cv;
  pthread_mutex_t preload_mu;
};

int lm_fleet_supports(const char *command) {
  return !strcmp(command, "upgrade") || !strcmp(command, "downgrade") ||
         !strcmp(command, "current");
}

static double now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec * 1000.0 + (double)ts.tv_nsec / 1e6;
}

static char *full_message(const lm_error *e) {
  lm_strbuf b = {0};
  lm_strbuf_cat(&b, e->message ? e->message : "failed");
  if (e->detail) lm_strbuf_add(&b, "\n%s", e->detail);
  if (e->hint) lm_strbuf_add(&b, "\nhint: %s", e->hint);
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
 * no colour: nothing of it reaches a terminal), the target's URL, the command's words. */
static char **target_argv(const lm_app *app, const job *j, int *argc) {
  const lm_opts *o = app->opts;
  size_t cap = 12 + 2 * (size_t)o->nx + (size_t)o->argc;
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
  *argc = k;
  return v;
}

/* A schema target's schema must exist: on a search_path naming only a missing schema there
 * is no current schema, and nothing of the run could be created where it belongs. */
static int check_schema(const char *url, const char *schema, lm_error *err) {
  PGresult *res = NULL;
  PGconn *conn = lm_conn_open(url, err);
  if (!conn) return err->code;
  int rc = lm_exec(conn, "SELECT coalesce(current_schema(), '')", 0, NULL, NULL, NULL, &res, err);
  if (!rc && strcmp(PQgetvalue(res, 0, 0), schema) != 0)
    rc = lm_error_set(err, LM_ERR, "schema %s does not exist in database %s (create it first)",
                      schema, PQdb(conn));
  PQclear(res);
  PQfinish(conn);
  return rc;
}

/* The caller's preload, one thread at a time: core.main's reads the host's Lua state. */
static void preload_one(lua_State *L, void *ud) {
  fleet *f = ud;
  pthread_mutex_lock(&f->preload_mu);
  f->preload(L, f->ud);
  pthread_mutex_unlock(&f->preload_mu);
}

static void *work(void *p) {
  job *j = p;
  fleet *f = j->f;
  lm_error err = {0};
  lm_pmain_result res = {0};
  double t0 = now_ms();
  const char *url = j->url ? j->url : f->app->cfg.url;
  int rc = j->schema ? check_schema(url, j->schema, &err) : LM_OK;
  if (!rc && strcmp(f->app->opts->command, "current") != 0) {
    int argc = 0;
    char **argv = target_argv(f->app, j, &argc);
    rc = argv ? lm_pmain_exec(argc, argv, preload_one, f, &err, &res)
              : lm_error_set(&err, LM_ENOMEM, "out of memory");
    free(argv);
  }
  /* Where the target is now, even after a failure (the steps committed before it stay);
   * the run itself says where its steps started, as it saw it under the lock. */
  lm_error again = {0};
  if (read_state(f, url, &j->to, rc ? &again : &err) && !rc) rc = err.code;
  lm_error_clear(&again);
  j->from = res.from ? res.from : j->to ? strdup(j->to) : NULL;
  pthread_mutex_lock(&f->mu);
  j->rc = rc;
  j->error = rc ? full_message(&err) : NULL;
  if (rc && !j->error) j->error = strdup("failed (out of memory)");
  j->steps = (long)res.steps;
  j->ms = now_ms() - t0;
  j->state = FINISHED;
  pthread_cond_signal(&f->cv);
  pthread_mutex_unlock(&f->mu);
  lm_error_clear(&err);
  return NULL;
}

static const char *status_of(const fleet *f, const job *j) {
  if (j->state == NOT_STARTED) return "not_started";
  if (j->rc) return "failed";
  if (!strcmp(f->app->opts->command, "current")) return "ok";
  if (j->steps == 0) return "already";
  return !strcmp(f->app->opts->command, "upgrade") ? "upgraded" : "downgraded";
}

static void first_line(const char *s, FILE *out) {
  if (!s) s = "failed (out of memory)";
  fprintf(out, "%.*s", (int)strcspn(s, "\n"), s);
}

static void report(const fleet *f, const job *j) {
  FILE *out = stdout;
  if (f->app->opts->json) {
    lm_strbuf b = {0};
    lm_strbuf_cat(&b, "{\"target\": ");
    lm_report_json_str(&b, j->name);
    lm_strbuf_add(&b, ", \"status\": \"%s\", \"from\": ", status_of(f, j));
    if (j->from)
      lm_report_json_str(&b, j->from);
    else
      lm_strbuf_cat(&b, "null");
    lm_strbuf_cat(&b, ", \"to\": ");
    if (j->to)
      lm_report_json_str(&b, j->to);
    else
      lm_strbuf_cat(&b, "null");
    lm_strbuf_add(&b, ", \"steps\": %ld, \"duration_ms\": %.0f, \"error\": ", j->steps, j->ms);
    if (j->error)
      lm_report_json_str(&b, j->error);
    else
      lm_strbuf_cat(&b, "null");
    lm_strbuf_cat(&b, "}");
    fprintf(out, "%s\n", b.s ? b.s : "");
    free(b.s);
  } else if (j->rc) {
    fprintf(out, "%s: FAILED: ", j->name);
    first_line(j->error, out);
    fputc('\n', out);
  } else if (!strcmp(f->app->opts->command, "current")) {
    fprintf(out, "%s: %s\n", j->name, j->to);
  } else {
    fprintf(out, "%s: %s -> %s, %ld step%s, %.0f ms\n", j->name, j->from, j->to, j->steps,
            j->steps == 1 ? "" : "s", j->ms);
  }
  fflush(out);
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

/* url (NULL: libpq's defaults) with the schema first on search_path: libpq's options,
 * as a URI parameter or a conninfo keyword. The schema is a plain lower-case name
 * (luamigrate.config checks it), so it needs no quoting in either. */
static char *with_schema(const char *url, const char *schema) {
  lm_strbuf b = {0};
  if (url && (!strncmp(url, "postgresql://", 13) || !strncmp(url, "postgres://", 11)))
    lm_strbuf_add(&b, "%s%coptions=-csearch_path%%3D%s", url, strchr(url, '?') ? '&' : '?', schema);
  else
    lm_strbuf_add(&b, "%s%soptions='-csearch_path=%s'", url ? url : "", url && *url ? " " : "",
                  schema);
  if (b.oom) {
    free(b.s);
    return NULL;
  }
  return b.s;
}

/* The config's targets (luamigrate.config.targets: checked there), names and urls copied. */
static int load_targets(lm_app *app, char ***names, char ***urls, char ***schemas, size_t *n,
                        lm_error *err) {
  lua_State *L = app->L;
  int top = lua_gettop(L);
  if (lm_push_module_field(L, "luamigrate.config", "targets", err)) return LM_ERR;
  lua_pushstring(L, app->cfg.path);
  if (lm_pcall(L, 1, 1) != LUA_OK) {
    lm_error_from_lua(L, -1, LM_EUSAGE, err);
    lua_settop(L, top);
    return LM_EUSAGE;
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

static void summary(const fleet *f, size_t failed) {
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
  if (!strcmp(f->app->opts->command, "current"))
    printf("\n%zu ok, %zu failed, %zu not started\n", ok, failed, idle);
  else
    printf("\n%zu %s, %zu already there, %zu failed, %zu not started\n", changed,
           !strcmp(f->app->opts->command, "upgrade") ? "upgraded" : "downgraded", already, failed,
           idle);
  if (failed) printf("\nfailures:\n");
  for (size_t i = 0; i < f->n; i++)
    if (f->jobs[i].error) printf("%s: %s\n", f->jobs[i].name, f->jobs[i].error);
}

/* Starts the targets, at most `parallel` at once: the first `canary` ones (0: all) as a
 * stage of their own, the others only once all of those succeeded. */
static int run_jobs(fleet *f, size_t parallel, size_t canary, lm_error *err) {
  size_t next = 0, running = 0, failed = 0;
  size_t limit = canary && canary < f->n ? canary : f->n;
  int rc = LM_OK;
  pthread_mutex_lock(&f->mu);
  for (;;) {
    /* An interrupt (SIGINT, SIGTERM) stops the running targets' runs; none starts after. */
    while (running < parallel && next < limit && (!failed || f->app->opts->keep_going) &&
           !lm_cancel_requested()) {
      job *j = &f->jobs[next++];
      j->state = RUNNING;
      if (pthread_create(&j->thread, NULL, work, j) != 0) {
        j->state = NOT_STARTED;
        rc = lm_error_set(err, LM_ERR, "cannot start a thread for target %s", j->name);
        limit = next = f->n;
        break;
      }
      running++;
    }
    if (running == 0) {
      if (next == limit && limit < f->n && !failed && !rc && !lm_cancel_requested()) {
        limit = f->n; /* the canaries all succeeded */
        continue;
      }
      break;
    }
    pthread_cond_wait(&f->cv, &f->mu);
    for (size_t i = 0; i < next; i++) {
      job *j = &f->jobs[i];
      if (j->state != FINISHED) continue;
      pthread_join(j->thread, NULL);
      j->state = REPORTED;
      running--;
      if (j->rc) failed++;
      report(f, j);
    }
  }
  pthread_mutex_unlock(&f->mu);
  if (!f->app->opts->json) {
    summary(f, failed);
  } else {
    for (size_t i = 0; i < f->n; i++)
      if (f->jobs[i].state == NOT_STARTED) report(f, &f->jobs[i]);
  }
  if (!rc && failed && next <= canary && next < f->n)
    rc = lm_error_set(err, LM_ERR,
                      "%zu of the %zu canary targets failed: the other %zu were not started",
                      failed, next, f->n - next);
  else if (!rc && failed)
    rc = lm_error_set(err, LM_ERR, "%zu of %zu targets failed", failed, f->n);
  return rc;
}

int lm_fleet_run(lm_app *app, void (*preload)(lua_State *, void *), void *ud, lm_error *err) {
  char **names = NULL, **urls = NULL, **schemas = NULL;
  size_t n = 0;
  fleet f = {app,
             preload,
             ud,
             NULL,
             0,
             PTHREAD_MUTEX_INITIALIZER,
             PTHREAD_COND_INITIALIZER,
             PTHREAD_MUTEX_INITIALIZER};
  size_t parallel = 4, canary = 0;
  int rc = LM_OK;
  if (app->opts->parallel) {
    char *end = NULL;
    long v = strtol(app->opts->parallel, &end, 10);
    if (end == app->opts->parallel || *end || v < 1 || v > 1000) {
      rc = lm_error_set(err, LM_EUSAGE, "--parallel '%s': expected a number from 1 to 1000",
                        app->opts->parallel);
      goto cleanup;
    }
    parallel = (size_t)v;
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
  rc = load_targets(app, &names, &urls, &schemas, &n, err);
  if (!rc) rc = check_pattern(app->opts->targets, names, n, err);
  if (rc) goto cleanup;
  f.jobs = calloc(n, sizeof *f.jobs);
  if (!f.jobs) {
    rc = lm_error_set(err, LM_ENOMEM, "out of memory");
    goto cleanup;
  }
  for (size_t i = 0; i < n; i++)
    if (selected(app->opts->targets, names[i]))
      f.jobs[f.n++] = (job){.f = &f, .name = names[i], .url = urls[i], .schema = schemas[i]};
  if (parallel > f.n) parallel = f.n;
  rc = run_jobs(&f, parallel, canary, err);
cleanup:
  for (size_t i = 0; i < f.n; i++) {
    free(f.jobs[i].error);
    free(f.jobs[i].from);
    free(f.jobs[i].to);
  }
  free(f.jobs);
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
