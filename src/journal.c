/* The journal of half-done migrations: DDL, reads, row writes, and the account of what is
 * done that a refused upgrade and `status` print. */
#include "journal.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conn.h"
#include "tx.h"

/* The sha256 the table stores, computed by the server from the statement's UTF-8 bytes. */
#define SHA_OF(p) "encode(sha256(convert_to(" p ", 'UTF8')), 'hex')"

static int exec_on(PGconn *conn, const char *table, const char *fmt, int n, const char *const *vals,
                   PGresult **res, lm_error *err) {
  size_t len = strlen(fmt) + strlen(table) + 1;
  char *sql = malloc(len);
  if (!sql) return lm_error_set(err, LM_ENOMEM, "out of memory");
  snprintf(sql, len, fmt, table);
  int rc = lm_exec(conn, sql, n, vals, NULL, NULL, res, err);
  free(sql);
  return rc;
}

void lm_journal_free(lm_journal *p) {
  for (size_t i = 0; p->rows && i < p->n; i++) {
    free(p->rows[i].statement);
    free(p->rows[i].sha256);
    free(p->rows[i].error);
    free(p->rows[i].started);
  }
  free(p->rows);
  free(p->revision);
  free(p->operation);
  memset(p, 0, sizeof *p);
}

/* The columns a journal older than downgrade journaling lacks read through to_jsonb.
 * A block statement still running is one whose backend (the same one: it started before
 * the statement) is busy; once the client died it ends with its statement. */
static const char SELECT_SQL[] =
    "SELECT revision, ordinal, block, statement, sha256, "
    "  finished_at IS NOT NULL OR block = 0, error, "
    "  coalesce(to_jsonb(j)->>'operation', 'upgrade'), "
    "  coalesce(to_jsonb(j)->>'backend_pid', '0'), "
    "  finished_at IS NULL AND error IS NULL AND block > 0 AND EXISTS ("
    "    SELECT 1 FROM pg_stat_activity a "
    "    WHERE a.pid = (to_jsonb(j)->>'backend_pid')::int "
    "      AND a.backend_start <= j.started_at AND coalesce(a.state, '?') <> 'idle'), "
    "  to_char(started_at, 'YYYY-MM-DD HH24:MI:SS TZ'), "
    "  coalesce((to_jsonb(j)->>'in_transaction')::boolean, false) "
    "FROM %s j ORDER BY revision, ordinal";

char *lm_journal_select_sql(const lm_vt *vt) {
  size_t len = sizeof SELECT_SQL + strlen(vt->journal);
  char *sql = malloc(len);
  if (sql) snprintf(sql, len, SELECT_SQL, vt->journal);
  return sql;
}

int lm_journal_read(lm_vt *vt, PGconn *conn, lm_journal *p, lm_error *err) {
  PGresult *res = lm_vt_prefetched(vt, LM_VT_PRE_JOURNAL);
  int exists = 0, rc = LM_OK;
  memset(p, 0, sizeof *p);
  if (!res) {
    rc = lm_vt_has(vt, conn, vt->journal, &exists, err);
    if (rc || !exists) return rc;
    rc = exec_on(conn, vt->journal, SELECT_SQL, 0, NULL, &res, err);
    if (rc) return rc;
  }
  int rows = PQntuples(res);
  if (rows == 0) goto cleanup;
  if (strcmp(PQgetvalue(res, 0, 0), PQgetvalue(res, rows - 1, 0)) != 0) {
    rc = lm_error_set(err, LM_ERR,
                      "the journal table %s records two half-done revisions, %s and %s; one run "
                      "leaves at most one",
                      vt->journal, PQgetvalue(res, 0, 0), PQgetvalue(res, rows - 1, 0));
    lm_error_setfield(&err->hint, "was it changed by hand? 'luamigrate stamp' clears it");
    goto cleanup;
  }
  p->revision = strdup(PQgetvalue(res, 0, 0));
  p->operation = strdup(PQgetvalue(res, 0, 7));
  p->rows = calloc((size_t)rows, sizeof *p->rows);
  if (!p->revision || !p->operation || !p->rows) {
    rc = lm_error_set(err, LM_ENOMEM, "out of memory");
    goto cleanup;
  }
  for (int r = 0; r < rows; r++) {
    lm_journal_row *row = &p->rows[p->n++];
    row->ordinal = (int)strtol(PQgetvalue(res, r, 1), NULL, 10);
    row->block = (int)strtol(PQgetvalue(res, r, 2), NULL, 10);
    row->statement = strdup(PQgetvalue(res, r, 3));
    row->sha256 = strdup(PQgetvalue(res, r, 4));
    row->done = PQgetvalue(res, r, 5)[0] == 't';
    row->error = PQgetisnull(res, r, 6) ? NULL : strdup(PQgetvalue(res, r, 6));
    row->backend_pid = (int)strtol(PQgetvalue(res, r, 8), NULL, 10);
    row->active = PQgetvalue(res, r, 9)[0] == 't';
    row->started = strdup(PQgetvalue(res, r, 10));
    row->in_tx = PQgetvalue(res, r, 11)[0] == 't';
    if (!row->statement || !row->sha256 || !row->started ||
        (!PQgetisnull(res, r, 6) && !row->error)) {
      rc = lm_error_set(err, LM_ENOMEM, "out of memory");
      goto cleanup;
    }
  }
cleanup:
  PQclear(res);
  if (rc) lm_journal_free(p);
  return rc;
}

int lm_journal_ensure(lm_vt *vt, PGconn *conn, lm_error *err) {
  int exists = 0;
  int rc = lm_vt_has(vt, conn, vt->journal, &exists, err);
  if (rc) return rc;
  if (exists && vt->known && vt->journal_whole) return LM_OK; /* as the probe found it */
  if (!exists) {
    rc = exec_on(conn, vt->journal, lm_vt_sql_text(LM_VT_SQL_CREATE_JOURNAL), 0, NULL, NULL, err);
  } else {
    /* A journal from before downgrades and backend pids were recorded gets their columns
     * (asked here when no probe said whether it has them). */
    int have = 0;
    if (!vt->known) {
      PGresult *res = NULL;
      const char *vals[1] = {vt->journal};
      rc = lm_exec(conn,
                   "SELECT count(*) FROM pg_attribute WHERE attrelid = to_regclass($1) "
                   "AND attname IN (" LM_JOURNAL_LATE_COLUMNS ") AND NOT attisdropped",
                   1, vals, NULL, NULL, &res, err);
      if (rc) return rc;
      have = (int)strtol(PQgetvalue(res, 0, 0), NULL, 10) ==
             (int)strtol(LM_JOURNAL_LATE_COUNT, NULL, 10);
      PQclear(res);
    }
    if (!have)
      rc = exec_on(conn, vt->journal,
                   "ALTER TABLE %s ADD COLUMN IF NOT EXISTS operation text NOT NULL DEFAULT "
                   "'upgrade', ADD COLUMN IF NOT EXISTS backend_pid integer, "
                   "ADD COLUMN IF NOT EXISTS in_transaction boolean NOT NULL DEFAULT false",
                   0, NULL, NULL, err);
  }
  /* Made whole here: the probe's answer says so from now on (a failure: asked again). */
  if (rc)
    vt->known = 0;
  else
    vt->has_journal = vt->journal_whole = 1;
  return rc;
}

int lm_journal_save(lm_vt *vt, PGconn *conn, const char *revision, const char *operation, int first,
                    char *const *statements, size_t n, lm_error *err) {
  int rc = lm_journal_ensure(vt, conn, err);
  for (size_t i = 0; i < n && rc == LM_OK; i++) {
    char ord[16];
    snprintf(ord, sizeof ord, "%d", first + (int)i);
    const char *vals[4] = {revision, ord, statements[i], operation};
    rc = exec_on(conn, vt->journal,
                 "INSERT INTO %s (revision, ordinal, block, statement, sha256, finished_at, "
                 "operation) "
                 "VALUES ($1, $2, 0, $3, " SHA_OF("$3::text") ", clock_timestamp(), $4) "
                 "ON CONFLICT (revision, ordinal) DO NOTHING",
                 4, vals, NULL, err);
  }
  return rc;
}

int lm_journal_start(lm_vt *vt, PGconn *conn, const char *revision, const char *operation,
                     int ordinal, int block, const char *statement, int in_tx, lm_error *err) {
  char ord[16], blk[16];
  snprintf(ord, sizeof ord, "%d", ordinal);
  snprintf(blk, sizeof blk, "%d", block);
  const char *vals[6] = {revision, ord, blk, statement, operation, in_tx ? "t" : "f"};
  /* pg_backend_pid(): this row is written on the connection that runs the statement next. */
  return exec_on(conn, vt->journal,
                 "INSERT INTO %s (revision, ordinal, block, statement, sha256, operation, "
                 "backend_pid, in_transaction) "
                 "VALUES ($1, $2, $3, $4, " SHA_OF("$4::text") ", $5, pg_backend_pid(), $6) "
                 "ON CONFLICT (revision, ordinal) DO UPDATE SET block = EXCLUDED.block, "
                 "statement = EXCLUDED.statement, sha256 = EXCLUDED.sha256, "
                 "started_at = clock_timestamp(), finished_at = NULL, error = NULL, "
                 "backend_pid = EXCLUDED.backend_pid, in_transaction = EXCLUDED.in_transaction",
                 6, vals, NULL, err);
}

int lm_journal_end_commit(lm_vt *vt, PGconn *conn, const char *revision, int ordinal,
                          lm_error *err) {
  char ord[16], sql[512];
  snprintf(ord, sizeof ord, "%d", ordinal);
  snprintf(sql, sizeof sql,
           "UPDATE %s SET finished_at = clock_timestamp() WHERE revision = $1 AND ordinal = $2",
           vt->journal);
  const char *vals[2] = {revision, ord};
  lm_stmt stmts[2] = {{.sql = sql, .values = vals, .nparams = 2}, {.sql = LM_TX_COMMIT_SQL}};
  return lm_exec_batch(conn, stmts, 2, err);
}

int lm_journal_mark_done(lm_vt *vt, PGconn *conn, const char *revision, int ordinal,
                         lm_error *err) {
  char ord[16];
  snprintf(ord, sizeof ord, "%d", ordinal);
  const char *vals[2] = {revision, ord};
  return exec_on(conn, vt->journal,
                 "UPDATE %s SET finished_at = clock_timestamp(), error = NULL "
                 "WHERE revision = $1 AND ordinal = $2",
                 2, vals, NULL, err);
}

/* ---- recorded CREATE INDEX CONCURRENTLY --------------------------------------------- */

static const char *skip_space(const char *p) {
  for (;;) {
    while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r' || *p == '\f' || *p == '\v') p++;
    if (p[0] == '-' && p[1] == '-') {
      while (*p && *p != '\n') p++;
    } else if (p[0] == '/' && p[1] == '*') {
      /* PostgreSQL's block comments nest */
      int depth = 0;
      do {
        if (p[0] == '/' && p[1] == '*') {
          depth++;
          p += 2;
        } else if (p[0] == '*' && p[1] == '/') {
          depth--;
          p += 2;
        } else if (*p) {
          p++;
        } else {
          return p;
        }
      } while (depth > 0);
    } else {
      return p;
    }
  }
}

/* A keyword (ASCII, any case) followed by a non-identifier character. */
static const char *keyword(const char *p, const char *kw) {
  p = skip_space(p);
  size_t n = strlen(kw);
  for (size_t i = 0; i < n; i++) {
    char c = p[i];
    if (c >= 'A' && c <= 'Z') c = (char)(c - 'A' + 'a');
    if (c != kw[i]) return NULL;
  }
  char next = p[n];
  if ((next >= 'a' && next <= 'z') || (next >= 'A' && next <= 'Z') ||
      (next >= '0' && next <= '9') || next == '_' || next == '$' || (next & 0x80))
    return NULL;
  return p + n;
}

static int ident_start(unsigned char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c >= 0x80;
}
static int ident_char(unsigned char c) {
  return ident_start(c) || (c >= '0' && c <= '9') || c == '$';
}

/* One identifier: its value (unquoted, an unquoted one folded to lower case) into out when
 * out is set; returns the position after it, or NULL. */
static const char *identifier(const char *p, char *out, size_t cap) {
  size_t n = 0;
  if (*p == '"') {
    for (p++;; p++) {
      if (!*p) return NULL;
      if (*p == '"') {
        if (p[1] != '"') break;
        p++;
      }
      if (out && n + 1 < cap)
        out[n++] = *p;
      else if (out)
        return NULL;
    }
    p++;
    if (n == 0) return NULL;
  } else {
    if (!ident_start((unsigned char)*p)) return NULL;
    for (; ident_char((unsigned char)*p); p++) {
      char c = *p;
      if (c >= 'A' && c <= 'Z') c = (char)(c - 'A' + 'a');
      if (out && n + 1 < cap)
        out[n++] = c;
      else if (out)
        return NULL;
    }
  }
  if (out) out[n] = '\0';
  return p;
}

int lm_journal_cic_target(const char *sql, char *index, size_t icap, char *table, size_t tcap) {
  const char *p = keyword(sql, "create");
  if (!p) return 0;
  const char *u = keyword(p, "unique");
  if (u) p = u;
  if (!(p = keyword(p, "index")) || !(p = keyword(p, "concurrently"))) return 0;
  const char *ine = keyword(p, "if");
  if (ine) {
    if (!(ine = keyword(ine, "not")) || !(ine = keyword(ine, "exists"))) return 0;
    p = ine;
  }
  if (keyword(p, "on")) return 0; /* an unnamed index: the server picks its name */
  if (!(p = identifier(skip_space(p), index, icap))) return 0;
  if (!(p = keyword(p, "on"))) return 0;
  const char *only = keyword(p, "only");
  if (only) p = only;
  p = skip_space(p);
  const char *start = p;
  for (;;) {
    if (!(p = identifier(p, NULL, 0))) return 0;
    if (*p != '.') break;
    p++;
  }
  size_t len = (size_t)(p - start);
  if (len + 1 > tcap) return 0;
  memcpy(table, start, len);
  table[len] = '\0';
  return 1;
}

int lm_journal_cic_state(PGconn *conn, const char *statement, int *state, char *qualified,
                         lm_error *err) {
  char index[256], table[1024];
  *state = 0;
  qualified[0] = '\0';
  if (!lm_journal_cic_target(statement, index, sizeof index, table, sizeof table)) return LM_OK;
  const char *vals[2] = {table, index};
  PGresult *res = NULL;
  int rc = lm_exec(conn,
                   "SELECT i.indisvalid, format('%I.%I', n.nspname, c.relname) FROM pg_index i "
                   "JOIN pg_class c ON c.oid = i.indexrelid "
                   "JOIN pg_namespace n ON n.oid = c.relnamespace "
                   "WHERE i.indrelid = to_regclass($1) AND c.relname = $2",
                   2, vals, NULL, NULL, &res, err);
  if (rc) return rc;
  if (PQntuples(res) == 1) {
    *state = PQgetvalue(res, 0, 0)[0] == 't' ? 1 : -1;
    snprintf(qualified, 256, "%s", PQgetvalue(res, 0, 1));
  }
  PQclear(res);
  return LM_OK;
}

int lm_journal_end(lm_vt *vt, PGconn *conn, const char *revision, int ordinal, const char *error,
                   lm_error *err) {
  char ord[16];
  snprintf(ord, sizeof ord, "%d", ordinal);
  const char *vals[3] = {revision, ord, error};
  return exec_on(conn, vt->journal,
                 "UPDATE %s SET finished_at = CASE WHEN $3::text IS NULL THEN clock_timestamp() "
                 "END, error = $3 WHERE revision = $1 AND ordinal = $2",
                 3, vals, NULL, err);
}

int lm_journal_clear(lm_vt *vt, PGconn *conn, const char *revision, lm_error *err) {
  int exists = 0;
  int rc = lm_vt_table_exists(conn, vt->journal, &exists, err);
  if (rc || !exists) return rc;
  if (!revision) return exec_on(conn, vt->journal, "DELETE FROM %s", 0, NULL, NULL, err);
  const char *vals[1] = {revision};
  return exec_on(conn, vt->journal, LM_JOURNAL_CLEAR_SQL, 1, vals, NULL, err);
}

/* A growing string; on allocation failure it stays NULL and the caller reports it. */
typedef struct text {
  char *s;
  size_t n, cap;
  int oom;
} text;

static void add(text *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void add(text *t, const char *fmt, ...) {
  if (t->oom) return;
  va_list ap;
  va_start(ap, fmt);
  int len = vsnprintf(NULL, 0, fmt, ap);
  va_end(ap);
  if (len < 0) return;
  if (t->n + (size_t)len + 1 > t->cap) {
    size_t cap = (t->cap ? t->cap * 2 : 256) + (size_t)len;
    char *s = realloc(t->s, cap);
    if (!s) {
      t->oom = 1;
      return;
    }
    t->s = s;
    t->cap = cap;
  }
  va_start(ap, fmt);
  vsnprintf(t->s + t->n, t->cap - t->n, fmt, ap);
  va_end(ap);
  t->n += (size_t)len;
}

/* A statement on one line, shortened to about 300 bytes. */
static void add_statement(text *t, const char *sql) {
  size_t len = strlen(sql), shown = len > 300 ? 300 : len;
  while (shown < len && (sql[shown] & 0xC0) == 0x80) shown++; /* whole UTF-8 characters */
  add(t, "    ");
  for (size_t i = 0; i < shown; i++) add(t, "%c", sql[i] == '\n' ? ' ' : sql[i]);
  if (shown < len) add(t, " ...");
}

/* op.backfill runs its batches as one statement repeated, each committed with its row: how
 * far the killed backfill got is the number of done rows with the text of the open one. */
static void add_backfill(text *t, const lm_journal *p, const lm_journal_row *open) {
  static const char shape[] = " WHERE ctid = ANY (ARRAY(SELECT ctid FROM ";
  if (strncmp(open->statement, "UPDATE ", 7) != 0 || !strstr(open->statement, shape)) return;
  int batches = 0;
  for (size_t i = 0; i < p->n; i++)
    if (p->rows[i].block == open->block && p->rows[i].done &&
        !strcmp(p->rows[i].statement, open->statement))
      batches++;
  const char *limit = strstr(open->statement, " LIMIT "), *next;
  while (limit && (next = strstr(limit + 1, " LIMIT "))) limit = next;
  long size = limit ? strtol(limit + 7, NULL, 10) : 0;
  add(t, "\nop.backfill: %d batch%s committed", batches, batches == 1 ? "" : "es");
  if (size > 0) add(t, " (of up to %ld rows each: at most %ld rows filled)", size, size * batches);
  add(t, "; --resume skips them and goes on with the rows its where clause still finds");
}

int lm_journal_describe(const lm_journal *p, PGconn *conn, const char *path, char **message,
                        char **detail, lm_error *err) {
  text m = {0}, d = {0};
  PGresult *res = NULL;
  int committed = 0, last_block = 0, in_block = 0, done_in_block = 0, after_block = 0;
  const lm_journal_row *open = NULL;
  for (size_t i = 0; i < p->n; i++) {
    const lm_journal_row *r = &p->rows[i];
    if (r->block == 0) { /* committed; after_block counts those since the last block */
      committed++;
      after_block++;
      continue;
    }
    after_block = 0;
    if (r->block != last_block) {
      last_block = r->block;
      in_block = done_in_block = 0;
      open = NULL;
    }
    in_block++;
    if (r->done)
      done_in_block++;
    else
      open = r;
  }
  const int down = p->operation && !strcmp(p->operation, "downgrade");
  add(&m, "revision %s (%s) is half-done%s: a run stopped after committing part of it%s",
      p->revision, path ? path : "file not found", down ? " by a downgrade" : "",
      down ? "s downgrade()" : "");
  add(&d,
      "%d statement%s of its transactional part %s committed (by the COMMIT that opens an "
      "autocommit block, or one the migration ran itself)",
      committed, committed == 1 ? "" : "s", committed == 1 ? "is" : "are");
  if (last_block && after_block) {
    add(&d,
        "\nautocommit block %d: all %d statement%s done; the next %d statement%s after it %s "
        "committed, and autocommit block %d had not started a statement",
        last_block, in_block, in_block == 1 ? "" : "s", after_block, after_block == 1 ? "" : "s",
        after_block == 1 ? "is" : "are", last_block + 1);
  } else if (last_block) {
    if (done_in_block == 1)
      add(&d, "\nautocommit block %d: statement 1 done", last_block);
    else if (done_in_block)
      add(&d, "\nautocommit block %d: statements 1..%d done", last_block, done_in_block);
    else
      add(&d, "\nautocommit block %d: no statement done", last_block);
    if (open && open->error) {
      add(&d, "\nautocommit block %d, statement %d failed (%s):\n", last_block, in_block,
          open->error);
      add_statement(&d, open->statement);
    } else if (open && open->active) {
      add(&d,
          "\nautocommit block %d, statement %d is still running on the server (backend pid "
          "%d, since %s); nothing may run it again until it ends (wait for it, or stop it "
          "with SELECT pg_cancel_backend(%d)):\n",
          last_block, in_block, open->backend_pid, open->started, open->backend_pid);
      add_statement(&d, open->statement);
    } else if (open && open->in_tx) {
      add(&d,
          "\nautocommit block %d, statement %d was running when the run stopped, in a "
          "transaction of its own that ended with the run: it had no effect, and runs again:\n",
          last_block, in_block);
      add_statement(&d, open->statement);
    } else if (open) {
      add(&d,
          "\nautocommit block %d, statement %d was running when the run stopped; it may or may "
          "not have taken effect:\n",
          last_block, in_block);
      add_statement(&d, open->statement);
    } else {
      add(&d, "\nthe statements after autocommit block %d were not committed", last_block);
    }
  } else {
    add(&d, "\nno autocommit block had started a statement");
  }
  if (open && !open->error) add_backfill(&d, p, open);
  /* The index of a recorded CREATE INDEX CONCURRENTLY tells how far it got. */
  char own[256] = "";
  int state = 0, rc = LM_OK;
  if (open && !open->active && (rc = lm_journal_cic_state(conn, open->statement, &state, own, err)))
    goto cleanup;
  if (state > 0)
    add(&d,
        "\nits index %s exists and is VALID: the statement completed on the server; "
        "'%s --resume' records it done and goes on",
        own, down ? "downgrade" : "upgrade");
  else if (state < 0)
    add(&d,
        "\nINVALID index %s exists (the interrupted CREATE INDEX CONCURRENTLY left it): '%s "
        "--resume' drops it (DROP INDEX CONCURRENTLY %s) and builds it again",
        own, down ? "downgrade" : "upgrade", own);
  /* An interrupted or failed CREATE INDEX CONCURRENTLY leaves its index behind, INVALID. */
  rc = lm_exec(conn,
               "SELECT format('%I.%I', n.nspname, c.relname) FROM pg_index i "
               "JOIN pg_class c ON c.oid = i.indexrelid "
               "JOIN pg_namespace n ON n.oid = c.relnamespace "
               "WHERE NOT i.indisvalid AND n.nspname NOT IN ('pg_catalog', 'information_schema') "
               "ORDER BY 1",
               0, NULL, NULL, NULL, &res, err);
  if (rc) goto cleanup;
  for (int r = 0; r < PQntuples(res); r++)
    if (strcmp(PQgetvalue(res, r, 0), own) != 0)
      add(&d,
          "\nINVALID index %s exists (an interrupted or failed CREATE INDEX CONCURRENTLY leaves "
          "one): drop it with DROP INDEX CONCURRENTLY %s before the statement runs again",
          PQgetvalue(res, r, 0), PQgetvalue(res, r, 0));
  if (m.oom || d.oom) {
    rc = lm_error_set(err, LM_ENOMEM, "out of memory");
    goto cleanup;
  }
  *message = m.s;
  *detail = d.s;
  m.s = d.s = NULL;
cleanup:
  PQclear(res);
  free(m.s);
  free(d.s);
  return rc;
}
