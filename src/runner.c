/* The run loop: for each planned step, in its transaction, call the revision's upgrade()
 * or downgrade() under lm_pcall, check the server's transaction state afterwards, move the
 * version rows and record the step, then commit; on any failure roll back that step (or
 * the whole run) and report revision, file:line, statement, SQLSTATE and message. */
#include <lauxlib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "app.h"
#include "bind/bind.h"
#include "cancel.h"
#include "conn.h"
#include "journal.h"
#include "log.h"

static double wall_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int simple(PGconn *conn, const char *sql, lm_error *err) {
  return lm_exec(conn, sql, 0, NULL, NULL, NULL, NULL, err);
}

/* "a b c" from indices, for the history table. */
static char *space_ids(const lm_dag *dag, const int *idx, size_t n) {
  size_t len = 1;
  for (size_t i = 0; i < n; i++) len += strlen(lm_dag_id(dag, idx[i])) + 1;
  char *s = malloc(len);
  if (!s) return NULL;
  char *end = s;
  for (size_t i = 0; i < n; i++) {
    const char *id = lm_dag_id(dag, idx[i]);
    size_t l = strlen(id);
    if (i) *end++ = ' ';
    memcpy(end, id, l);
    end += l;
  }
  *end = '\0';
  return s;
}

/* Ids joined as Alembic prints them in "Running upgrade a, b -> c": "" for none. */
static char *comma_ids(const lm_dag *dag, const int *idx, size_t n) {
  if (n == 0) return strdup("");
  return lm_dag_format_ids(dag, idx, n);
}

/* The traceback as a user wants it: frames in luamigrate's own modules ("[luamigrate]/...",
 * the embedded sources) are left out, and with them the C functions they called into or that
 * called them (a "[C]" frame followed by no frame of the user's) and the "(...tail calls...)"
 * mark of a frame left out. -v keeps everything. malloc'd, or NULL. */
static char *user_frames(const char *tb) {
  if (!tb) return NULL;
  if (lm_log_verbose()) return strdup(tb);
  size_t nlines = 1;
  for (const char *p = tb; *p; p++) nlines += *p == '\n';
  const char **line = malloc(nlines * sizeof *line);
  size_t *len = malloc(nlines * sizeof *len);
  char *kind = malloc(nlines), *out = malloc(strlen(tb) + 1);
  if (!line || !len || !kind || !out) {
    free(line);
    free(len);
    free(kind);
    free(out);
    return NULL;
  }
  /* kind: 'u' the user's frame (or the heading), 'i' internal, 'c' a C frame, 't' a tail mark */
  size_t n = 0;
  for (const char *p = tb; *p && n < nlines; n++) {
    const char *nl = strchr(p, '\n');
    line[n] = p;
    len[n] = nl ? (size_t)(nl - p) : strlen(p);
    const char *f = p + strspn(p, "\t ");
    if (!strncmp(f, "[luamigrate]/", 13))
      kind[n] = 'i';
    else if (!strncmp(f, "[C]:", 4))
      kind[n] = 'c';
    else if (!strncmp(f, "(...tail calls...)", 18))
      kind[n] = 't';
    else
      kind[n] = 'u';
    p = nl ? nl + 1 : p + len[n];
  }
  for (size_t i = 0; i < n; i++) {
    if (kind[i] != 'c') continue;
    size_t j = i + 1;
    while (j < n && (kind[j] == 't' || kind[j] == 'c')) j++;
    if (j == n || kind[j] == 'i') kind[i] = 'i';
  }
  for (size_t i = 1; i < n; i++)
    if (kind[i] == 't' && kind[i - 1] == 'i') kind[i] = 'i';
  size_t used = 0;
  for (size_t i = 0; i < n; i++) {
    if (kind[i] == 'i') continue;
    if (used) out[used++] = '\n';
    memcpy(out + used, line[i], len[i]);
    used += len[i];
  }
  out[used] = '\0';
  free(line);
  free(len);
  free(kind);
  return out;
}

/* Builds the user-facing error for a failed step from the Lua error table at the top. */
static void step_error(lm_app *app, int idx, int upgrade, const char *from, const char *to,
                       lm_error *err) {
  lua_State *L = app->L;
  int e = lua_gettop(L);
  lm_error_from_lua(L, e, LM_ERR, err);
  const char *where = NULL;
  char *tb = NULL;
  if (lua_istable(L, e)) {
    lua_getfield(L, e, "where");
    where = lua_tostring(L, -1);
    lua_getfield(L, e, "traceback");
    tb = user_frames(lua_tostring(L, -1));
  }
  const char *path = lm_dag_path(app->dag, idx);
  const char *msg = err->message ? err->message : "error";
  char *first = NULL;
  size_t cap =
      strlen(msg) + strlen(path) + strlen(from) + strlen(to) + 256 + (where ? strlen(where) : 0);
  first = malloc(cap);
  if (first) {
    /* A Lua error string already starts with its own file:line. */
    int has_where = where && strncmp(msg, where, strlen(where)) == 0;
    if (err->sqlstate)
      snprintf(first, cap, "%s: %s %s -> %s failed: ERROR %s: %s", where ? where : path,
               upgrade ? "upgrade" : "downgrade", from, to, err->sqlstate, msg);
    else
      snprintf(first, cap, "%s%s%s %s -> %s failed: %s", has_where || !where ? "" : where,
               has_where || !where ? "" : ": ", upgrade ? "upgrade" : "downgrade", from, to, msg);
  }
  /* Detail: the statement, the server's detail/hint/context, then the Lua traceback. */
  size_t dcap = 256 + (err->statement ? strlen(err->statement) : 0) +
                (err->detail ? strlen(err->detail) : 0) +
                (err->context ? strlen(err->context) : 0) + (tb ? strlen(tb) : 0);
  char *detail = malloc(dcap);
  if (detail) {
    detail[0] = '\0';
    size_t used = 0;
#define ADD(...) used += (size_t)snprintf(detail + used, dcap - used, __VA_ARGS__)
    ADD("revision %s (%s)", lm_dag_id(app->dag, idx), path);
    if (err->statement) ADD("\nstatement: %s", err->statement);
    if (err->position) ADD("\nposition: %d", err->position);
    if (err->detail) ADD("\ndetail: %s", err->detail);
    if (err->context) ADD("\ncontext: %s", err->context);
    if (tb) ADD("\n%s", tb);
#undef ADD
  }
  if (first) {
    free(err->message);
    err->message = first;
  }
  free(err->detail);
  err->detail = detail;
  err->code = LM_ERR;
  free(tb);
  lua_settop(L, e - 1);
}

static int check_tx_state(lm_app *app, int idx, const char *fn, lm_error *err) {
  if (lm_conn_begin_pending(app->conn)) return LM_OK; /* nothing sent yet: it goes with the rows */
  switch (PQtransactionStatus(app->conn)) {
    case PQTRANS_INTRANS: return LM_OK;
    case PQTRANS_IDLE:
      return lm_error_set(err, LM_ERR,
                          "%s: %s() of revision %s ended its transaction (a COMMIT or ROLLBACK "
                          "in op.execute?); what ran before that point was committed or rolled "
                          "back with it, and luamigrate cannot undo it",
                          lm_dag_path(app->dag, idx), fn, lm_dag_id(app->dag, idx));
    case PQTRANS_INERROR:
      return lm_error_set(err, LM_ERR,
                          "%s: a statement failed inside %s() of revision %s and the error was "
                          "caught; the transaction is aborted, so the migration is rolled back",
                          lm_dag_path(app->dag, idx), fn, lm_dag_id(app->dag, idx));
    case PQTRANS_ACTIVE:
    case PQTRANS_UNKNOWN: break;
  }
  return lm_error_set(err, LM_ECONN, "%s: the connection was lost during %s() of revision %s",
                      lm_dag_path(app->dag, idx), fn, lm_dag_id(app->dag, idx));
}

/* Applies the version-table changes of one step and records it in the history table, in
 * one round trip. */
static int record_step(lm_app *app, lm_revset *heads, int idx, int upgrade, double started,
                       lm_error *err) {
  lm_vt_op ops[64];
  int nops = lm_dag_step(app->dag, heads, idx, upgrade, ops, 64, err);
  if (nops < 0) return nops;
  lm_vt_change changes[64];
  for (int i = 0; i < nops; i++)
    changes[i] = (lm_vt_change){
        ops[i].kind,
        ops[i].kind == LM_VT_INSERT ? NULL : lm_dag_id(app->dag, ops[i].from),
        ops[i].kind == LM_VT_DELETE ? NULL : lm_dag_id(app->dag, ops[i].to),
    };
  const int *parents;
  size_t np = lm_dag_parents(app->dag, idx, &parents);
  char *pids = space_ids(app->dag, parents, np);
  const char *self = lm_dag_id(app->dag, idx);
  lm_vt_record rec = {
      .revision = self,
      .operation = upgrade ? "upgrade" : "downgrade",
      .from_ids = upgrade ? (pids ? pids : "") : self,
      .to_ids = upgrade ? self : (pids ? pids : ""),
      .message = lm_dag_doc(app->dag, idx),
      .file = lm_dag_path(app->dag, idx),
      .checksum = lm_loader_checksum(app, idx), /* of the bytes that ran */
      .started_at = started,
      .duration_ms = (wall_s() - started) * 1000.0,
  };
  int rc = lm_vt_step(&app->vt, app->conn, changes, (size_t)nops, &rec, err);
  free(pids);
  return rc;
}

/* ---- upgrade --dry-run --locks: what each statement actually locked and rewrote -------- */

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

typedef struct locks_probe {
  PGconn *conn;
  PGresult *locks, *files; /* before the statement */
} locks_probe;

static void probe_clear(locks_probe *p) {
  PQclear(p->locks);
  PQclear(p->files);
  p->locks = p->files = NULL;
}

static int probe_before(void *ud, const char *sql, int n, const char *const *vals, lm_error *err) {
  (void)sql, (void)n, (void)vals;
  locks_probe *p = ud;
  probe_clear(p);
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
  locks_probe *p = ud;
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
  probe_clear(p);
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

/* Dry runs: ctx.autocommit_block(fn). Runs fn with the context switched to listing, so its
 * statements are shown and none is sent; the surrounding transaction stays open. */
static int l_dry_autocommit(lua_State *L) {
  luaL_checktype(L, 1, LUA_TFUNCTION);
  lua_getfield(L, LUA_REGISTRYINDEX, LM_CTX_KEY);
  int ctx = lua_gettop(L);
  lua_pushcfunction(L, l_dry_skip);
  lua_setfield(L, ctx, "emit");
  lua_pushvalue(L, 1);
  int st = lm_pcall(L, 0, 0);
  lua_pushnil(L);
  lua_setfield(L, ctx, "emit");
  if (st != LUA_OK) return lua_error(L);
  return 0;
}

/* SET LOCAL lock_timeout / statement_timeout for the migration's transaction, from the
 * config (a session SET would leak through a connection pooler); both in one round trip. */
static int set_local_timeouts(lm_app *app, lm_error *err) {
  static const char *const names[2] = {"lock_timeout", "statement_timeout"};
  const char *values[2] = {app->cfg.ddl_lock_timeout, app->cfg.statement_timeout};
  const char *params[2][2];
  lm_stmt stmts[2];
  size_t n = 0;
  for (int i = 0; i < 2; i++) {
    if (!values[i]) continue;
    params[n][0] = names[i];
    params[n][1] = values[i];
    stmts[n] =
        (lm_stmt){.sql = "SELECT set_config($1, $2, true)", .nparams = 2, .values = params[n]};
    n++;
  }
  return n ? lm_exec_batch(app->conn, stmts, n, err) : LM_OK;
}

/* The same timeouts for an autocommit block, whose statements run outside any transaction:
 * set for the session when the block starts (on), reset to the session's defaults when it
 * ends (off). */
static int set_block_timeouts(lm_app *app, int on, lm_error *err) {
  static const char *const names[2] = {"lock_timeout", "statement_timeout"};
  static const char *const resets[2] = {"RESET lock_timeout", "RESET statement_timeout"};
  const char *values[2] = {app->cfg.ddl_lock_timeout, app->cfg.statement_timeout};
  const char *params[2][2];
  lm_stmt stmts[2];
  size_t n = 0;
  for (int i = 0; i < 2; i++) {
    if (!values[i]) continue;
    params[n][0] = names[i];
    params[n][1] = values[i];
    stmts[n] =
        on ? (lm_stmt){.sql = "SELECT set_config($1, $2, false)", .nparams = 2, .values = params[n]}
           : (lm_stmt){.sql = resets[i]};
    n++;
  }
  return n ? lm_exec_batch(app->conn, stmts, n, err) : LM_OK;
}

/* Ends a failed step's transaction: a BEGIN still held back is dropped unsent, an open
 * transaction rolled back. */
static void rollback(PGconn *conn) {
  lm_pipe_discard();
  lm_conn_forget_begin(conn);
  if (PQtransactionStatus(conn) == PQTRANS_IDLE) return;
  lm_error rb = {0};
  simple(conn, "ROLLBACK", &rb);
  lm_error_clear(&rb);
}

/* lock = "xact": between two transactions another run may have moved the version rows;
 * read under the lock, they must be the ones this run planned from, else the caller plans
 * again. (The other locks are held for the whole run; there the version-row updates'
 * one-row checks catch anyone bypassing them.) */
static int check_heads(lm_app *app, const lm_revset *heads, lm_error *err) {
  char **ids = NULL;
  size_t n = 0;
  int rc = lm_vt_read(&app->vt, app->conn, &ids, &n, err);
  if (rc) return rc;
  int same = n == heads->n;
  for (size_t i = 0; same && i < n; i++) {
    int idx = lm_dag_find(app->dag, ids[i]);
    same = idx >= 0 && lm_revset_has(heads, idx);
  }
  if (!same) {
    char *want = heads->n ? lm_dag_format_ids(app->dag, heads->idx, heads->n) : NULL;
    size_t len = 1;
    for (size_t i = 0; i < n; i++) len += strlen(ids[i]) + 2;
    char *got = malloc(len);
    if (got) {
      char *end = got;
      for (size_t i = 0; i < n; i++) {
        size_t l = strlen(ids[i]);
        if (i) {
          memcpy(end, ", ", 2);
          end += 2;
        }
        memcpy(end, ids[i], l);
        end += l;
      }
      *end = '\0';
    }
    rc = lm_error_set(err, LM_ESTALE,
                      "the version table changed under this run: it planned from %s and now "
                      "finds %s",
                      want ? want : "<base>", got && *got ? got : "<base>");
    lm_error_setfield(&err->hint, "another run moved it; run the command again");
    free(want);
    free(got);
  }
  lm_vt_free_ids(ids, n);
  return rc;
}

/* Starts a transaction on the work connection under the migration lock. The BEGIN is held
 * back and goes with the next statement (the lock's fence, the SET LOCALs, the migration's
 * first statement or its version rows), one round trip less per migration. */
static int begin_locked(lm_app *app, const lm_revset *heads, lm_error *err) {
  int rc = LM_OK;
  if (app->dry_run)
    rc = simple(app->conn, "BEGIN", err);
  else
    lm_conn_defer_begin(app->conn);
  if (rc == LM_OK) rc = lm_lock_fence(&app->lock, app->conn, err);
  if (rc == LM_OK && app->lock.held && app->lock.mode == LM_LOCK_XACT)
    rc = check_heads(app, heads, err);
  return rc;
}

/* ctx.autocommit_block under lock = "xact": refused, as its COMMIT would drop the lock. */
static int l_xact_autocommit(lua_State *L) {
  return luaL_error(L,
                    "op.autocommit_block cannot run with lock = \"xact\": its COMMIT would "
                    "release the migration lock; use lock = \"table\" (or \"session\" "
                    "without a pooler) for migrations with autocommit blocks");
}

/* Pushes the -x KEY=VALUE arguments as a table (op.get_x_argument()), online and in --sql. */
static void push_x_args(lua_State *L, const lm_app *app) {
  lua_newtable(L);
  for (int i = 0; i < app->opts->nx; i++) {
    const char *kv = app->opts->x[i];
    const char *eq = strchr(kv, '=');
    if (eq) {
      lua_pushlstring(L, kv, (size_t)(eq - kv));
      lua_pushstring(L, eq + 1);
    } else {
      lua_pushstring(L, kv);
      lua_pushliteral(L, "");
    }
    lua_rawset(L, -3);
  }
}

/* ---- the journal of a migration with autocommit blocks ---------------------------------
 * Every statement an upgrade() or downgrade() executes gets an ordinal. The transactional ones are
 * kept in memory until an autocommit block's COMMIT is due; then they are written to the journal in
 * that same transaction, so the journal says exactly what the COMMIT made permanent. Inside a
 * block each statement's row is written before it runs and marked after, each committing on
 * its own. The step's final transaction deletes the rows with the version row change. A
 * resumed run (upgrade/downgrade --resume) skips the statements the journal records done, after
 * checking that each has the same ordinal and text as before. */
typedef struct journal {
  lm_app *app;
  const char *operation; /* "upgrade" or "downgrade" */
  int idx;               /* the revision running */
  int ordinal;           /* statements of this migration so far */
  int block;             /* the autocommit block running (0: none) */
  int nblocks;           /* autocommit blocks entered so far */
  char **seg;            /* transactional statements not yet journaled, ordinals seg_first.. */
  size_t nseg, cap;
  int seg_first;
  const lm_journal *resume; /* the interrupted run's record of this revision, or NULL */
  int skipped;
  int user_commit; /* the migration's own COMMIT made part of it permanent (tx_control) */
  int wrapped;     /* the block statement running goes in a transaction of its own */
  char *cur_key;   /* ... and its journaled text, to record it again if it cannot */
} journal;

static void journal_reset(journal *j, int idx, const lm_journal *resume) {
  for (size_t i = 0; i < j->nseg; i++) free(j->seg[i]);
  free(j->seg);
  free(j->cur_key);
  lm_app *app = j->app;
  const char *operation = j->operation;
  memset(j, 0, sizeof *j);
  j->app = app;
  j->operation = operation;
  j->idx = idx;
  j->seg_first = 1;
  j->resume = resume;
}

/* The text a statement is journaled and compared by: the SQL, then its parameters. */
static char *statement_key(const char *sql, int n, const char *const *vals) {
  size_t len = strlen(sql) + 1;
  for (int i = 0; i < n; i++) len += 32 + (vals[i] ? strlen(vals[i]) : 4);
  char *key = malloc(len);
  if (!key) return NULL;
  size_t used = strlen(sql);
  memcpy(key, sql, used + 1);
  for (int i = 0; i < n; i++)
    used += (size_t)snprintf(key + used, len - used, vals[i] ? "\n-- $%d = '%s'" : "\n-- $%d = %s",
                             i + 1, vals[i] ? vals[i] : "NULL");
  return key;
}

static int journal_before(void *ud, const char *sql, int n, const char *const *vals,
                          lm_error *err) {
  journal *j = ud;
  lm_app *app = j->app;
  const char *rev = lm_dag_id(app->dag, j->idx);
  char *key = statement_key(sql, n, vals);
  if (!key) return lm_error_set(err, LM_ENOMEM, "out of memory");
  j->ordinal++;
  if (j->resume && (size_t)j->ordinal <= j->resume->n) {
    const lm_journal_row *row = &j->resume->rows[j->ordinal - 1];
    if (row->ordinal != j->ordinal || strcmp(row->statement, key) != 0) {
      lm_error_set(err, LM_ERR,
                   "--resume: revision %s changed since the interrupted run: its statement %d "
                   "is not the one the journal records, so what is done cannot be told",
                   rev, j->ordinal);
      size_t dl = strlen(row->statement) + strlen(key) + 64;
      char *detail = malloc(dl);
      if (detail) snprintf(detail, dl, "recorded: %s\nnow:      %s", row->statement, key);
      free(err->detail);
      err->detail = detail;
      lm_error_setfield(&err->hint,
                        "restore the file as it was, or undo the recorded statements by hand "
                        "and run 'luamigrate stamp' to clear the record");
      free(key);
      return err->code;
    }
    if (row->done) {
      lm_log_info("  skipped (done by the interrupted run): statement %d%s", j->ordinal,
                  row->block ? "" : " (committed)");
      j->skipped++;
      free(key);
      return 1; /* a committed transactional statement is already in the journal too */
    }
    /* A CREATE INDEX CONCURRENTLY that was running: its index says how far it got. */
    char own[256];
    int state = 0, rc = LM_OK;
    if (j->block && (rc = lm_journal_cic_state(app->conn, row->statement, &state, own, err))) {
      free(key);
      return rc;
    }
    if (state > 0) {
      lm_log_info(
          "  skipped: statement %d, as its index %s exists and is VALID (the server "
          "finished it after the interrupted run stopped)",
          j->ordinal, own);
      rc = lm_journal_mark_done(&app->vt, app->conn, rev, j->ordinal, err);
      free(key);
      if (rc) return rc;
      j->skipped++;
      return 1;
    }
    if (state < 0) {
      char drop[300];
      snprintf(drop, sizeof drop, "DROP INDEX CONCURRENTLY %s", own);
      lm_log_info(
          "  statement %d: dropping the INVALID index %s the interrupted run left, "
          "to build it again",
          j->ordinal, own);
      if ((rc = lm_exec(app->conn, drop, 0, NULL, NULL, NULL, NULL, err))) {
        free(key);
        return rc;
      }
    }
  }
  if (j->block == 0) {
    if (j->nseg == j->cap) {
      size_t cap = j->cap ? j->cap * 2 : 16;
      char **seg = realloc(j->seg, cap * sizeof *seg);
      if (!seg) {
        free(key);
        return lm_error_set(err, LM_ENOMEM, "out of memory");
      }
      j->seg = seg;
      j->cap = cap;
    }
    if (j->nseg == 0) j->seg_first = j->ordinal;
    j->seg[j->nseg++] = key;
    return 0;
  }
  /* A block statement runs in a transaction of its own that commits with its done mark, so
   * a run killed while it runs leaves it recorded exactly: done, or undone with the
   * transaction. A statement that cannot run in a transaction (CREATE INDEX CONCURRENTLY,
   * VACUUM, ...) runs as sent; its index tells how far it got (lm_journal_cic_state). */
  char ix[256], tb[1024];
  j->wrapped = !lm_journal_cic_target(sql, ix, sizeof ix, tb, sizeof tb);
  int rc = lm_journal_start(&app->vt, app->conn, rev, j->operation, j->ordinal, j->block, key,
                            j->wrapped, err);
  free(j->cur_key);
  j->cur_key = key;
  if (rc == LM_OK && j->wrapped) lm_conn_defer_begin(app->conn);
  return rc < 0 ? rc : 0;
}

static int tx_control(journal *j, lm_error *err);
static PGconn *app_conn(const journal *j);

/* Can run only outside a transaction block: 25001 (CREATE INDEX CONCURRENTLY unnamed,
 * VACUUM, ALTER SYSTEM, ...) or 2D000 (a procedure's own COMMIT). */
static int needs_autocommit(const lm_error *e) {
  return e && e->sqlstate && (!strcmp(e->sqlstate, "25001") || !strcmp(e->sqlstate, "2D000"));
}

static int journal_after(void *ud, const lm_error *failure, lm_error *err) {
  journal *j = ud;
  if (j->block == 0) return failure ? LM_OK : tx_control(j, err);
  lm_app *app = j->app;
  const char *rev = lm_dag_id(app->dag, j->idx);
  if (j->wrapped) {
    j->wrapped = 0;
    if (!failure) {
      int rc = lm_journal_end_commit(&app->vt, app->conn, rev, j->ordinal, err);
      if (rc == LM_OK) return LM_OK;
      /* its COMMIT failed (a deferred constraint, the connection): the work is undone */
      if (PQtransactionStatus(app->conn) != PQTRANS_IDLE) {
        lm_error rb = {0};
        simple(app->conn, "ROLLBACK", &rb);
        lm_error_clear(&rb);
      }
      lm_error ignore = {0};
      lm_journal_end(&app->vt, app->conn, rev, j->ordinal, err->message ? err->message : "error",
                     &ignore);
      lm_error_clear(&ignore);
      return rc;
    }
    lm_error rb = {0};
    lm_conn_forget_begin(app->conn);
    if (PQtransactionStatus(app->conn) != PQTRANS_IDLE) simple(app->conn, "ROLLBACK", &rb);
    lm_error_clear(&rb);
    if (needs_autocommit(failure)) {
      /* run again as sent, recorded as such */
      int rc = lm_journal_start(&app->vt, app->conn, rev, j->operation, j->ordinal, j->block,
                                j->cur_key ? j->cur_key : "", 0, err);
      return rc ? rc : 1;
    }
  }
  lm_error ignore = {0}; /* a lost connection loses this mark too: the row stays "running" */
  lm_journal_end(&j->app->vt, j->app->conn, lm_dag_id(j->app->dag, j->idx), j->ordinal,
                 failure ? (failure->message ? failure->message : "error") : NULL, &ignore);
  lm_error_clear(&ignore);
  return LM_OK;
}

/* Journals the transactional statements run since the last block (in the open transaction). */
static int journal_flush(journal *j, lm_error *err) {
  lm_app *app = j->app;
  int rc = lm_journal_save(&app->vt, app->conn, lm_dag_id(app->dag, j->idx), j->operation,
                           j->seg_first, j->seg, j->nseg, err);
  for (size_t i = 0; i < j->nseg; i++) free(j->seg[i]);
  j->nseg = 0;
  return rc;
}

static PGconn *app_conn(const journal *j) {
  return j->app->conn;
}

/* A statement of the migration's transaction that ended it (op.execute("COMMIT"),
 * "ROLLBACK", "COMMIT; BEGIN"): the migration stops at once, before any statement runs
 * outside its transaction. What a COMMIT made permanent is recorded in the journal right
 * away (in a transaction of its own, under the lock), so the revision is half-done with an
 * account of it, as after an autocommit block's COMMIT; a ROLLBACK undid it all. A new
 * transaction begun after the end is rolled back. A BEGIN alone changes nothing. */
static int tx_control(journal *j, lm_error *err) {
  int txc = lm_conn_last_tx_control();
  if (!(txc & (LM_TXC_COMMIT | LM_TXC_ROLLBACK))) return LM_OK;
  /* ROLLBACK TO SAVEPOINT reports "ROLLBACK" too, and leaves the transaction open. */
  if (txc == LM_TXC_ROLLBACK && PQtransactionStatus(app_conn(j)) == PQTRANS_INTRANS) return LM_OK;
  lm_app *app = j->app;
  const char *rev = lm_dag_id(app->dag, j->idx);
  const int committed = (txc & LM_TXC_COMMIT) != 0;
  lm_error e = {0};
  lm_pipe_discard();
  if (PQtransactionStatus(app->conn) != PQTRANS_IDLE) simple(app->conn, "ROLLBACK", &e);
  lm_error_clear(&e);
  int recorded = 0;
  if (committed && j->nseg) {
    int n = (int)j->nseg;
    int rc = simple(app->conn, "BEGIN", &e);
    if (rc == LM_OK) rc = lm_lock_fence(&app->lock, app->conn, &e);
    if (rc == LM_OK) rc = journal_flush(j, &e);
    if (rc == LM_OK) rc = lm_lock_renew(&app->lock, app->conn, &e);
    if (rc == LM_OK) rc = simple(app->conn, "COMMIT", &e);
    if (rc != LM_OK && PQtransactionStatus(app->conn) != PQTRANS_IDLE) {
      lm_error rb = {0};
      simple(app->conn, "ROLLBACK", &rb);
      lm_error_clear(&rb);
    }
    if (rc == LM_OK) recorded = n;
    j->user_commit = 1;
    if (rc != LM_OK) {
      lm_error_set(err, LM_ERR,
                   "the migration's own COMMIT (statement %d) committed its statements before it, "
                   "and recording them in the journal failed: %s",
                   j->ordinal, e.message ? e.message : "error");
      lm_error_clear(&e);
      return LM_ERR;
    }
  }
  lm_error_clear(&e);
  if (committed)
    lm_error_set(err, LM_ERR,
                 "this statement committed the migration's transaction (a COMMIT in the "
                 "migration)%s: %d statement%s up to it %s committed and recorded in the journal; "
                 "the migration stops here, half-done, before anything runs outside its "
                 "transaction",
                 txc & LM_TXC_BEGIN ? " and began another, rolled back" : "", recorded,
                 recorded == 1 ? "" : "s", recorded == 1 ? "is" : "are");
  else
    lm_error_set(err, LM_ERR,
                 "this statement rolled back the migration's transaction (a ROLLBACK in the "
                 "migration)%s: what revision %s did before it in that transaction is undone; "
                 "the migration stops here",
                 txc & LM_TXC_BEGIN ? " and began another, rolled back too" : "", rev);
  lm_error_setfield(&err->hint,
                    "a migration runs in the transaction luamigrate gives it: remove the "
                    "transaction control, or put what must commit apart in "
                    "op.autocommit_block");
  return LM_ERR;
}

/* ctx.autocommit_block(fn) online: journals what the COMMIT makes permanent, commits, runs fn
 * with each statement journaled, then begins the next transaction (the lock's fence and the
 * SET LOCAL timeouts again). */
static int l_autocommit(lua_State *L) {
  journal *j = lua_touserdata(L, lua_upvalueindex(1));
  lm_app *app = j->app;
  luaL_checktype(L, 1, LUA_TFUNCTION);
  if (j->block) return luaL_error(L, "op.autocommit_block: blocks do not nest");
  lm_pipe_sync(L); /* what is queued belongs to the transaction the COMMIT ends */
  lm_error err = {0};
  int rc = journal_flush(j, &err);
  if (rc == LM_OK) rc = simple(app->conn, "COMMIT", &err);
  if (rc == LM_OK) rc = set_block_timeouts(app, 1, &err);
  if (rc) return lm_raise_error(L, &err);
  j->block = ++j->nblocks;
  lua_pushvalue(L, 1);
  lm_pipe_suspend(1); /* each statement is journaled and commits on its own */
  int st = lm_pcall(L, 0, 0);
  lm_pipe_suspend(-1);
  j->block = 0;
  rc = set_block_timeouts(app, 0, &err);
  if (rc == LM_OK) rc = simple(app->conn, "BEGIN", &err);
  if (rc == LM_OK) rc = lm_lock_fence(&app->lock, app->conn, &err);
  if (rc == LM_OK) rc = set_local_timeouts(app, &err);
  if (st != LUA_OK) { /* fn's error first: it says what went wrong */
    lm_error_clear(&err);
    return lua_error(L);
  }
  if (rc) return lm_raise_error(L, &err);
  return 0;
}

/* ctx.journal_batches(sql) online, for op.backfill: each batch is a block statement of its
 * own, journaled like any other, all with the same text. A resumed run skips the batches the
 * journal records done in one go (each one more would find rows the next run's batches fill
 * anyway, but would shift every later ordinal): returns how many were done, and whether the
 * backfill had finished (a different statement follows them in the record). */
static int l_journal_batches(lua_State *L) {
  journal *j = lua_touserdata(L, lua_upvalueindex(1));
  const char *sql = luaL_checkstring(L, 1);
  int done = 0, finished = 0;
  if (j->resume && j->block) {
    char *key = statement_key(sql, 0, NULL);
    if (!key) return luaL_error(L, "out of memory");
    const lm_journal *r = j->resume;
    size_t i = (size_t)j->ordinal; /* the row of the next statement */
    while (i < r->n && r->rows[i].ordinal == (int)i + 1 && r->rows[i].done &&
           !strcmp(r->rows[i].statement, key)) {
      i++;
      done++;
    }
    finished = done > 0 && i < r->n && strcmp(r->rows[i].statement, key) != 0;
    free(key);
    if (done)
      lm_log_info(
          "  skipped (done by the interrupted run): op.backfill, statements %d..%d (%d "
          "committed batch%s)%s",
          j->ordinal + 1, j->ordinal + done, done, done == 1 ? "" : "es",
          finished ? ", all of it" : "; the rest runs on from there");
    j->ordinal += done;
    j->skipped += done;
  }
  lua_pushinteger(L, done);
  lua_pushboolean(L, finished);
  return 2;
}

/* The hint of a step that failed after an autocommit block committed part of it. */
static void half_done_hint(lm_app *app, int idx, int upgrade, lm_error *err) {
  char hint[512];
  snprintf(hint, sizeof hint,
           "revision %s is half-done: the work before its autocommit block (or its own "
           "COMMIT) is committed; "
           "'luamigrate status' shows what is done, and 'luamigrate %s --resume' "
           "finishes it once the cause is fixed",
           lm_dag_id(app->dag, idx), upgrade ? "upgrade" : "downgrade");
  lm_error_setfield(&err->hint, hint);
}

int lm_run_plan(lm_app *app, lm_revset *heads, const lm_revset *plan, int upgrade, lm_error *err) {
  lua_State *L = app->L;
  int top = lua_gettop(L);
  int rc = LM_OK;
  int in_tx = PQtransactionStatus(app->conn) == PQTRANS_INTRANS;
  const char *fn = upgrade ? "upgrade" : "downgrade";
  const int per_migration = app->cfg.tx_per_migration && !app->dry_run;

  lm_push_conn(L, app->conn, 1);
  int conn_idx = lua_gettop(L);
  if (app->dry_run) lm_conn_set_trace(L, conn_idx, 1);
  /* The ops' statements go without waiting for their results, unless a dry run or -v
   * shows each with its timing (docs/performance.md). */
  const int pipelined = app->cfg.pipeline && !app->dry_run && !lm_log_verbose();
  lm_push_conn(L, app->conn, 1);
  int queue_idx = lua_gettop(L);
  lm_conn_set_queue(L, queue_idx, 1);
  if (pipelined) lm_pipe_enable(L, app->conn);
  push_x_args(L, app);
  int x_idx = lua_gettop(L);
  /* Upgrades and downgrades journal their statements (online; dry runs list autocommit
   * blocks instead). */
  journal j = {.app = app, .operation = fn};
  int half_done = 0; /* the failed step had committed part of itself */
  lm_conn_hook hook = {journal_before, journal_after, &j};
  locks_probe probe = {.conn = app->conn};
  lm_conn_hook probe_hook = {probe_before, probe_after, &probe};
  const int journaled = !app->dry_run;
  lm_cancel_set_conn(app->conn);
  for (size_t s = 0; s < plan->n; s++) {
    int idx = plan->idx[s];
    if (lm_cancel_requested()) {
      rc = lm_error_set(err, LM_EINTR, "interrupted by signal before revision %s%s",
                        lm_dag_id(app->dag, idx),
                        s ? "; the migrations before it stay applied" : "; nothing was changed");
      break;
    }
    const int *parents;
    size_t np = lm_dag_parents(app->dag, idx, &parents);
    char *pstr = comma_ids(app->dag, parents, np);
    const char *self = lm_dag_id(app->dag, idx);
    const char *from = upgrade ? (pstr ? pstr : "") : self;
    const char *to = upgrade ? self : (pstr ? pstr : "");
    int attempt = 1;
  retry:
    journal_reset(&j, idx,
                  app->resume && !strcmp(app->resume->revision, self) ? app->resume : NULL);
    if (!in_tx) {
      in_tx = 1;
      if ((rc = begin_locked(app, heads, err))) goto step_done;
    }
    lm_log_step(s + 1, plan->n);
    lm_log_begin("Running %s %s -> %s, %s", fn, from, to, lm_dag_doc(app->dag, idx));
    lm_log_set_revision(self);
    if ((rc = set_local_timeouts(app, err))) goto step_done;
    double started = wall_s();
    lm_cancel_set_phase(LM_CANCEL_MIGRATION); /* the file runs again, then its function */
    if ((rc = lm_loader_env(app, idx, err))) goto step_done;
    lua_getfield(L, -1, fn);
    lua_remove(L, -2);
    lm_ctx_begin(L, conn_idx, x_idx);
    lua_getfield(L, LUA_REGISTRYINDEX, LM_CTX_KEY);
    if (pipelined) {
      lua_pushvalue(L, queue_idx);
      lua_setfield(L, -2, "queue");
    }
    if (app->dry_run) {
      lua_pushcfunction(L, l_dry_autocommit);
      lua_setfield(L, -2, "autocommit_block");
      if (app->show_locks) lm_conn_set_hook(L, conn_idx, &probe_hook);
    } else if (journaled) {
      if (app->lock.held && app->lock.mode == LM_LOCK_XACT) {
        lua_pushcfunction(L, l_xact_autocommit);
      } else {
        lua_pushlightuserdata(L, &j);
        lua_pushcclosure(L, l_autocommit, 1);
      }
      lua_setfield(L, -2, "autocommit_block");
      lua_pushlightuserdata(L, &j);
      lua_pushcclosure(L, l_journal_batches, 1);
      lua_setfield(L, -2, "journal_batches");
      lm_conn_set_hook(L, conn_idx, &hook);
      lm_conn_set_hook(L, queue_idx, &hook);
    }
    lua_pop(L, 1);
    int st = lm_pcall(L, 0, 0);
    lm_cancel_set_phase(NULL);
    if (pipelined) {
      /* The queued statements' results: a failure among them came before anything that
       * failed after them, so it is the step's error. */
      lua_pushcfunction(L, lm_pipe_l_sync);
      int sst = lm_pcall(L, 0, 0);
      if (sst != LUA_OK) {
        if (st != LUA_OK) lua_remove(L, -2);
        st = sst;
      }
    }
    lm_ctx_end(L);
    lm_conn_set_hook(L, conn_idx, NULL);
    lm_conn_set_hook(L, queue_idx, NULL);
    if (st != LUA_OK) {
      step_error(app, idx, upgrade, from, to, err);
      if (j.nblocks || j.user_commit) {
        half_done_hint(app, idx, upgrade, err);
        half_done = 1;
      }
      rc = LM_ERR;
      goto step_done;
    }
    if ((rc = check_tx_state(app, idx, fn, err))) goto step_done;
    if (j.resume && (size_t)j.ordinal < j.resume->n) {
      rc = lm_error_set(err, LM_ERR,
                        "--resume: revision %s changed since the interrupted run: it ran %d "
                        "statements, and the journal records %zu",
                        self, j.ordinal, j.resume->n);
      lm_error_setfield(&err->hint,
                        "restore the file as it was, or undo the recorded statements by hand "
                        "and run 'luamigrate stamp' to clear the record");
      goto step_done;
    }
    if ((rc = record_step(app, heads, idx, upgrade, started, err))) goto step_done;
    if ((j.nblocks || j.resume) && (rc = lm_journal_clear(&app->vt, app->conn, self, err)))
      goto step_done;
    if (j.resume)
      lm_log_info("  resumed: %d statement%s skipped as done by the interrupted run", j.skipped,
                  j.skipped == 1 ? "" : "s");
    if ((rc = lm_lock_renew(&app->lock, app->conn, err))) goto step_done;
    if (per_migration) {
      rc = simple(app->conn, "COMMIT", err);
      in_tx = 0;
    }
    if (rc == LM_OK) lm_log_end_ms((wall_s() - started) * 1000.0);
  step_done:
    lm_cancel_set_phase(NULL);
    lm_log_set_revision(NULL);
    /* A lock that could not be had within lock_timeout (55P03) is worth another try: the
     * step rolls back alone, waits with backoff, and runs again, up to lock_retries times. */
    if (rc && err->sqlstate && !strcmp(err->sqlstate, "55P03") && per_migration && !j.nblocks &&
        attempt <= app->cfg.lock_retries && !lm_cancel_requested()) {
      rollback(app->conn);
      in_tx = 0;
      /* rand(): jitter that spreads the retries of concurrent runs, not a secret. */
      /* NOLINTNEXTLINE(cert-msc30-c,cert-msc50-cpp) */
      double jitter = 0.75 + 0.5 * (double)rand() / RAND_MAX;
      double wait = 0.5 * (double)(1 << (attempt - 1)) * jitter;
      if (wait > 30) wait = 30;
      lm_log_warn("%s; rolled back, retrying in %.1f s (attempt %d of %d)",
                  err->message ? err->message : "lock not available", wait, attempt + 1,
                  app->cfg.lock_retries + 1);
      lm_error_clear(err);
      struct timespec ts = {(time_t)wait, (long)((wait - (double)(time_t)wait) * 1e9)};
      nanosleep(&ts, NULL);
      attempt++;
      goto retry; /* which sets rc again */
    }
    free(pstr);
    lm_loader_release(app, idx);
    if (rc) break;
  }
  if (app->dry_run) {
    lm_error rb = {0};
    int rbrc =
        PQtransactionStatus(app->conn) == PQTRANS_IDLE ? LM_OK : simple(app->conn, "ROLLBACK", &rb);
    if (rc == LM_OK && rbrc != LM_OK) {
      rc = rbrc;
      *err = rb;
    } else {
      lm_error_clear(&rb);
    }
    if (rc == LM_OK)
      lm_log_info("Dry run: %zu migration%s ran and %s rolled back; the database is unchanged",
                  plan->n, plan->n == 1 ? "" : "s", plan->n == 1 ? "was" : "were");
    else
      lm_log_info("Dry run failed; everything it did was rolled back");
    goto out;
  }
  if (rc == LM_OK && in_tx) rc = simple(app->conn, "COMMIT", err);
  if (rc != LM_OK &&
      (lm_conn_begin_pending(app->conn) || PQtransactionStatus(app->conn) != PQTRANS_IDLE)) {
    rollback(app->conn);
    if (j.resume)
      lm_log_info(
          "Rolled back this run's transaction; revision %s stays half-done, as its "
          "journal records (see the hint)",
          j.resume->revision);
    else if (half_done)
      lm_log_info(
          "Rolled back the failed migration's open transaction; what its autocommit "
          "block committed stays (see the hint)");
    else if (rc != LM_ESTALE && rc != LM_ELOCK && rc != LM_EINTR)
      lm_log_info("Rolled back %s", per_migration ? "the failed migration; the ones before it "
                                                    "stay applied"
                                                  : "the whole run (transaction_per_migration "
                                                    "is false)");
  }
out:
  probe_clear(&probe);
  journal_reset(&j, -1, NULL);
  if (pipelined) lm_pipe_enable(L, NULL);
  lm_conn_forget_begin(app->conn);
  lm_conn_detach(L, conn_idx);
  lm_conn_detach(L, queue_idx);
  lua_settop(L, top);
  return rc;
}

/* ---- lint: the --sql rendering into a lint session ------------------------------------ */

/* Calls session:<method>(args on the stack); 0, or LM_ERR with err filled. */
static int session_call(lua_State *L, int session, const char *method, int nargs, lm_error *err) {
  lua_getfield(L, session, method);
  lua_pushvalue(L, session);
  lua_rotate(L, -2 - nargs, 2); /* method, session, args... */
  if (lm_pcall(L, nargs + 1, 0) != LUA_OK) {
    lm_error_from_lua(L, -1, LM_ERR, err);
    lua_pop(L, 1);
    return LM_ERR;
  }
  return LM_OK;
}

int lm_lint_render(lm_app *app, const lm_revset *plan, int upgrade, int session,
                   const lm_revset *skip, lm_error *err) {
  lua_State *L = app->L;
  int top = lua_gettop(L);
  int rc = LM_OK;
  session = lua_absindex(L, session);
  const char *fn = upgrade ? "upgrade" : "downgrade";
  lua_pushnil(L); /* the context's emit: session:begin sets its own */
  int emit_idx = lua_gettop(L);
  push_x_args(L, app);
  int x_idx = lua_gettop(L);
  for (size_t s = 0; s < plan->n && rc == LM_OK; s++) {
    int idx = plan->idx[s];
    if (skip && lm_revset_has(skip, idx)) continue;
    if ((rc = lm_loader_env(app, idx, err))) break;
    lua_getfield(L, -1, fn);
    lua_remove(L, -2);
    int fn_idx = lua_gettop(L);
    lm_ctx_begin_offline(L, emit_idx, x_idx);
    lua_getfield(L, LUA_REGISTRYINDEX, LM_CTX_KEY);
    lua_pushstring(L, lm_dag_id(app->dag, idx));
    lua_pushstring(L, lm_dag_path(app->dag, idx));
    rc = session_call(L, session, "begin", 3, err);
    int ok = 1;
    if (rc == LM_OK && !lua_isnil(L, fn_idx)) {
      lua_pushvalue(L, fn_idx);
      lm_cancel_set_phase(LM_CANCEL_LINT); /* user Lua: a signal must stop it too */
      ok = lm_pcall(L, 0, 0) == LUA_OK;    /* a failure leaves its error table */
      lm_cancel_set_phase(NULL);
      if (!ok && lm_cancel_requested()) /* not a finding: the run stops here */
        rc = lm_error_set(err, LM_EINTR, "%s: %s", lm_dag_path(app->dag, idx), LM_CANCEL_LINT);
    }
    lm_ctx_end(L);
    if (rc == LM_OK) {
      lua_pushboolean(L, ok);
      if (ok)
        lua_pushnil(L);
      else
        lua_pushvalue(L, -2);
      rc = session_call(L, session, "finish_revision", 2, err);
    }
    lua_settop(L, fn_idx - 1);
    lm_loader_release(app, idx);
  }
  if (rc == LM_OK) rc = session_call(L, session, "done", 0, err);
  lua_settop(L, top);
  return rc;
}

/* ---- offline (--sql) --------------------------------------------------------------- */

void lm_emit_sql(const char *sql) {
  fputs(sql, stdout);
  fputs(";\n\n", stdout);
}

static int l_emit(lua_State *L) {
  size_t len;
  const char *sql = luaL_checklstring(L, 1, &len);
  if (strlen(sql) != len) return luaL_error(L, "statement contains a NUL byte");
  lm_emit_sql(sql);
  return 0;
}

/* Calls require("luamigrate.offline")[fn](args on the stack) -> results; 0 or error. */
static int offline_call(lua_State *L, const char *fn, int nargs, int nres, lm_error *err) {
  if (lm_push_module_field(L, "luamigrate.offline", fn, err)) {
    lua_pop(L, nargs);
    return LM_ERR;
  }
  lua_insert(L, -1 - nargs);
  if (lm_pcall(L, nargs, nres) != LUA_OK) {
    lm_error_from_lua(L, -1, LM_ERR, err);
    lua_pop(L, 1);
    return LM_ERR;
  }
  return LM_OK;
}

int lm_emit_offline_preamble(lm_app *app, lm_error *err) {
  lua_State *L = app->L;
  const char *enc = getenv("PGCLIENTENCODING");
  if (enc)
    lua_pushstring(L, enc);
  else
    lua_pushnil(L);
  if (offline_call(L, "preamble", 1, 1, err)) return LM_ERR;
  lm_emit_sql(lua_tostring(L, -1));
  lua_pop(L, 1);
  return LM_OK;
}

int lm_emit_stamp_history(lm_app *app, const char *revision, const char *from, const char *to,
                          lm_error *err) {
  lua_State *L = app->L;
  lua_pushstring(L, app->cfg.version_table);
  lua_createtable(L, 0, 5);
  lua_pushstring(L, revision);
  lua_setfield(L, -2, "revision");
  lua_pushliteral(L, "stamp");
  lua_setfield(L, -2, "operation");
  const char *ids[2] = {from, to};
  const char *names[2] = {"from", "to"};
  for (int k = 0; k < 2; k++) { /* space-separated ids -> a list */
    lua_newtable(L);
    lua_Integer n = 0;
    for (const char *p = ids[k]; *p;) {
      size_t len = strcspn(p, " ");
      if (len) {
        lua_pushlstring(L, p, len);
        lua_rawseti(L, -2, ++n);
      }
      p += len;
      p += strspn(p, " ");
    }
    lua_setfield(L, -2, names[k]);
  }
  lua_pushliteral(L, LM_VERSION);
  lua_setfield(L, -2, "version");
  if (offline_call(L, "history_row", 2, 1, err)) return LM_ERR;
  lm_emit_sql(lua_tostring(L, -1));
  lua_pop(L, 1);
  return LM_OK;
}

/* --sql: the timeouts the online run sets, as statements (luamigrate.offline.timeout):
 * "local" as set_local_timeouts sends them in each migration's transaction, "session" and
 * "reset" as set_block_timeouts sets and resets them around an autocommit block. */
static int emit_timeouts(lm_app *app, const char *how, lm_error *err) {
  static const char *const names[2] = {"lock_timeout", "statement_timeout"};
  const char *values[2] = {app->cfg.ddl_lock_timeout, app->cfg.statement_timeout};
  lua_State *L = app->L;
  for (int i = 0; i < 2; i++) {
    if (!values[i]) continue;
    lua_pushstring(L, how);
    lua_pushstring(L, names[i]);
    lua_pushstring(L, values[i]);
    if (offline_call(L, "timeout", 3, 1, err)) return LM_ERR;
    lm_emit_sql(lua_tostring(L, -1));
    lua_pop(L, 1);
  }
  return LM_OK;
}

/* ctx.on_begin / ctx.on_block in --sql: the timeouts an autocommit block's statements and
 * the transaction after it get online (upvalue 2: "local", "session" or "reset"). */
static int l_offline_timeouts(lua_State *L) {
  lm_app *app = lua_touserdata(L, lua_upvalueindex(1));
  const char *how = lua_tostring(L, lua_upvalueindex(2));
  if (lua_isboolean(L, 1)) how = lua_toboolean(L, 1) ? "session" : "reset";
  lm_error err = {0};
  if (emit_timeouts(app, how, &err) == LM_OK) return 0;
  lua_pushstring(L, err.message ? err.message : "cannot render the timeouts");
  lm_error_clear(&err);
  return lua_error(L);
}

int lm_emit_offline_ddl(lm_app *app, lm_error *err) {
  lua_State *L = app->L;
  lua_pushstring(L, app->cfg.version_table);
  if (offline_call(L, "create_tables", 1, 1, err)) return LM_ERR;
  for (lua_Integer i = 1; lua_rawgeti(L, -1, i) == LUA_TSTRING; i++) {
    lm_emit_sql(lua_tostring(L, -1));
    lua_pop(L, 1);
  }
  lua_pop(L, 2);
  return LM_OK;
}

int lm_vt_apply(lm_app *app, int offline, lm_vt_kind kind, const char *from, const char *to,
                lm_error *err) {
  if (!offline) {
    switch (kind) {
      case LM_VT_INSERT: return lm_vt_insert(&app->vt, app->conn, to, err);
      case LM_VT_DELETE: return lm_vt_delete(&app->vt, app->conn, from, err);
      case LM_VT_UPDATE: return lm_vt_update(&app->vt, app->conn, from, to, err);
    }
    return LM_ERR;
  }
  lua_State *L = app->L;
  lua_pushstring(L, app->cfg.version_table);
  lua_pushstring(L, kind == LM_VT_INSERT ? "insert" : kind == LM_VT_DELETE ? "delete" : "update");
  lua_pushstring(L, from ? from : "");
  lua_pushstring(L, to ? to : "");
  if (offline_call(L, "version_row", 4, 1, err)) return LM_ERR;
  lm_emit_sql(lua_tostring(L, -1));
  lua_pop(L, 1);
  return LM_OK;
}

/* Pushes s as the history table takes it (lm_vt_utf8_clean), built in a buffer Lua owns. */
static void push_clean(lua_State *L, const char *s) {
  char *buf = lua_newuserdatauv(L, 4 * strlen(s) + 1, 0);
  lua_pushstring(L, lm_vt_utf8_clean(s, buf));
  lua_remove(L, -2);
}

static void push_id_list(lua_State *L, const lm_dag *dag, const int *idx, size_t n) {
  lua_createtable(L, (int)n, 0);
  for (size_t i = 0; i < n; i++) {
    lua_pushstring(L, lm_dag_id(dag, idx[i]));
    lua_rawseti(L, -2, (lua_Integer)i + 1);
  }
}

int lm_run_plan_offline(lm_app *app, lm_revset *heads, const lm_revset *plan, int upgrade,
                        int from_base, lm_error *err) {
  lua_State *L = app->L;
  int top = lua_gettop(L);
  int rc = LM_OK, in_tx = 0;
  const char *fn = upgrade ? "upgrade" : "downgrade";
  const int per_migration = app->cfg.tx_per_migration;
  lua_pushcfunction(L, l_emit);
  int emit_idx = lua_gettop(L);
  push_x_args(L, app);
  int x_idx = lua_gettop(L);

  if ((rc = lm_emit_offline_preamble(app, err))) goto done;
  if (from_base && upgrade) {
    fputs("BEGIN;\n\n", stdout);
    in_tx = 1;
    if ((rc = lm_emit_offline_ddl(app, err))) goto done;
  }
  for (size_t s = 0; s < plan->n; s++) {
    int idx = plan->idx[s];
    const int *parents;
    size_t np = lm_dag_parents(app->dag, idx, &parents);
    char *pstr = comma_ids(app->dag, parents, np);
    const char *self = lm_dag_id(app->dag, idx);
    if (!in_tx) {
      fputs("BEGIN;\n\n", stdout);
      in_tx = 1;
    }
    printf("-- Running %s %s -> %s\n\n", fn, upgrade ? (pstr ? pstr : "") : self,
           upgrade ? self : (pstr ? pstr : ""));
    if ((rc = emit_timeouts(app, "local", err)) || (rc = lm_loader_env(app, idx, err))) {
      free(pstr);
      goto done;
    }
    lua_getfield(L, -1, fn);
    lua_remove(L, -2);
    lm_ctx_begin_offline(L, emit_idx, x_idx);
    lm_cancel_set_phase(LM_CANCEL_SCRIPT);
    lua_getfield(L, LUA_REGISTRYINDEX, LM_CTX_KEY);
    lua_pushlightuserdata(L, app);
    lua_pushliteral(L, "local");
    lua_pushcclosure(L, l_offline_timeouts, 2);
    lua_setfield(L, -2, "on_begin");
    lua_pushlightuserdata(L, app);
    lua_pushliteral(L, "session");
    lua_pushcclosure(L, l_offline_timeouts, 2);
    lua_setfield(L, -2, "on_block");
    lua_pop(L, 1);
    int st = lm_pcall(L, 0, 0);
    lm_cancel_set_phase(NULL);
    lm_ctx_end(L);
    if (st != LUA_OK) {
      step_error(app, idx, upgrade, upgrade ? (pstr ? pstr : "") : self,
                 upgrade ? self : (pstr ? pstr : ""), err);
      free(pstr);
      rc = LM_ERR;
      goto done;
    }
    free(pstr);
    lm_vt_op ops[64];
    int nops = lm_dag_step(app->dag, heads, idx, upgrade, ops, 64, err);
    if (nops < 0) {
      rc = nops;
      goto done;
    }
    for (int i = 0; i < nops && rc == LM_OK; i++)
      rc = lm_vt_apply(app, 1, ops[i].kind,
                       ops[i].kind == LM_VT_INSERT ? NULL : lm_dag_id(app->dag, ops[i].from),
                       ops[i].kind == LM_VT_DELETE ? NULL : lm_dag_id(app->dag, ops[i].to), err);
    if (rc) goto done;
    /* history row */
    lua_pushstring(L, app->cfg.version_table);
    lua_createtable(L, 0, 8);
    lua_pushstring(L, self);
    lua_setfield(L, -2, "revision");
    lua_pushstring(L, fn);
    lua_setfield(L, -2, "operation");
    if (upgrade)
      push_id_list(L, app->dag, parents, np);
    else
      push_id_list(L, app->dag, &idx, 1);
    lua_setfield(L, -2, "from");
    if (upgrade)
      push_id_list(L, app->dag, &idx, 1);
    else
      push_id_list(L, app->dag, parents, np);
    lua_setfield(L, -2, "to");
    push_clean(L, lm_dag_doc(app->dag, idx));
    lua_setfield(L, -2, "message");
    push_clean(L, lm_dag_path(app->dag, idx));
    lua_setfield(L, -2, "file");
    lua_pushliteral(L, LM_VERSION);
    lua_setfield(L, -2, "version");
    lua_pushboolean(L, per_migration);
    lua_setfield(L, -2, "timed");
    /* the file's bytes, for the checksum an online run records (changed-file detection) */
    char *content = NULL;
    size_t clen = 0;
    if ((rc = lm_read_file(lm_dag_path(app->dag, idx), &content, &clen, err))) goto done;
    lua_pushlstring(L, content, clen);
    free(content);
    lua_setfield(L, -2, "content");
    if ((rc = offline_call(L, "history_row", 2, 1, err))) goto done;
    lm_emit_sql(lua_tostring(L, -1));
    lua_pop(L, 1);
    lm_loader_release(app, idx);
    if (per_migration) {
      fputs("COMMIT;\n\n", stdout);
      in_tx = 0;
    }
  }
  if (in_tx) fputs("COMMIT;\n\n", stdout);
done:
  fflush(stdout);
  lua_settop(L, top);
  return rc;
}
