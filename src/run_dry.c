/* upgrade --dry-run: the listing of autocommit blocks (a dry run cannot leave its
 * transaction) and, with --locks, what each statement actually locked and rewrote. */
#include <lauxlib.h>
#include <stdio.h>
#include <string.h>

#include "conn.h"
#include "log.h"
#include "runner.h"

/* The relation locks this backend holds (outside pg_catalog, whose locks are the
 * bookkeeping's own), and the storage files of the tables, before a statement. */
static const char LOCKS_SQL[] =
    "SELECT c.oid::regclass::text, l.mode FROM pg_locks l JOIN pg_class c ON c.oid = l.relation "
    "WHERE l.pid = pg_backend_pid() AND l.granted AND c.relnamespace <> "
    "'pg_catalog'::regnamespace ORDER BY 1, 2";
static const char FILES_SQL[] =
    "SELECT oid::regclass::text, relfilenode::text FROM pg_class WHERE relkind IN ('r', 'm', "
    "'t') AND relnamespace NOT IN ('pg_catalog'::regnamespace, "
    "'information_schema'::regnamespace)";

void lm_run_probe_clear(lm_run_probe *p) {
  PQclear(p->locks);
  PQclear(p->files);
  p->locks = p->files = NULL;
}

static int probe_before(void *ud, const char *sql, int n, const char *const *vals, lm_error *err) {
  (void)sql, (void)n, (void)vals;
  lm_run_probe *p = ud;
  lm_run_probe_clear(p);
  int rc = lm_exec(p->conn, LOCKS_SQL, 0, NULL, NULL, NULL, &p->locks, err);
  if (rc == LM_OK) rc = lm_exec(p->conn, FILES_SQL, 0, NULL, NULL, NULL, &p->files, err);
  return rc;
}

static int has_row(const PGresult *r, const char *a, const char *b) {
  for (int i = 0; r && i < PQntuples(r); i++)
    if (!strcmp(PQgetvalue(r, i, 0), a) && (!b || !strcmp(PQgetvalue(r, i, 1), b))) return 1;
  return 0;
}

/* Prints "--   locks: <mode> on <rel>, ...; rewrote <table>" for what the statement added.
 * Only reports: the statement's outcome stays what it was (LM_OK). */
static int probe_after(void *ud, const lm_error *failure, lm_error *unused) {
  (void)unused;
  lm_run_probe *p = ud;
  PGresult *locks = NULL, *files = NULL;
  lm_error err = {0};
  if (failure || !p->locks || !p->files ||
      lm_exec(p->conn, LOCKS_SQL, 0, NULL, NULL, NULL, &locks, &err) != LM_OK ||
      lm_exec(p->conn, FILES_SQL, 0, NULL, NULL, NULL, &files, &err) != LM_OK)
    goto cleanup;
  lm_log_before_stdout();
  int shown = 0;
  for (int i = 0; i < PQntuples(locks); i++) {
    const char *rel = PQgetvalue(locks, i, 0), *mode = PQgetvalue(locks, i, 1);
    if (has_row(p->locks, rel, mode)) continue;
    printf("%s%s on %s", shown++ ? ", " : "--   locks: ", mode, rel);
  }
  if (!shown) printf("--   locks: none new");
  int rewrote = 0;
  for (int i = 0; i < PQntuples(p->files); i++) {
    const char *rel = PQgetvalue(p->files, i, 0);
    if (has_row(files, rel, NULL) && !has_row(files, rel, PQgetvalue(p->files, i, 1)))
      printf("%s%s", rewrote++ ? ", " : "; rewrote ", rel);
  }
  printf("\n");
  fflush(stdout);
cleanup:
  PQclear(locks);
  PQclear(files);
  lm_error_clear(&err);
  lm_run_probe_clear(p);
  return LM_OK;
}

/* Dry runs: ctx.emit while an autocommit block's statements are listed, not run. */
static int l_dry_skip(lua_State *L) {
  size_t sql_len;
  const char *sql = luaL_checklstring(L, 1, &sql_len);
  if (strlen(sql) != sql_len) return luaL_error(L, "statement contains a NUL byte");
  lm_log_before_stdout();
  printf("-- skipped (autocommit block; a dry run cannot leave its transaction):\n");
  for (const char *p = sql; *p;) {
    const char *nl = strchr(p, '\n');
    size_t len = nl ? (size_t)(nl - p) : strlen(p);
    printf("--   %.*s\n", (int)len, p);
    if (!nl) break;
    p = nl + 1;
  }
  putchar('\n');
  fflush(stdout);
  return 0;
}

lm_conn_hook lm_run_probe_hook(lm_run_probe *p) {
  return (lm_conn_hook){probe_before, probe_after, p};
}

/* Dry runs' autocommit protocol: fn runs with the context switched to listing (ctx.emit),
 * so its statements are shown and none is sent; the surrounding transaction stays open. */
static int dry_leave(lua_State *L, void *ud, lm_error *err) {
  (void)ud, (void)err;
  lm_run_push_context(L);
  lua_pushcfunction(L, l_dry_skip);
  lua_setfield(L, -2, "emit");
  lua_pop(L, 1);
  return LM_OK;
}

static int dry_enter(lua_State *L, void *ud, int failed, lm_error *err) {
  (void)ud, (void)failed, (void)err;
  lm_run_push_context(L);
  lua_pushnil(L);
  lua_setfield(L, -2, "emit");
  lua_pop(L, 1);
  return LM_OK;
}

lm_run_mode lm_run_dry_mode(void) {
  return (lm_run_mode){.leave = dry_leave, .enter = dry_enter};
}
