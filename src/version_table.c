/* Version table and applied-steps history: DDL, reads, row-count-checked changes. */
#include "version_table.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "conn.h"
#include "journal.h"

/* The one text of each bookkeeping statement (version_table.h). */
static const struct {
  const char *name, *sql;
} SQL[LM_VT_SQL_COUNT] = {
    [LM_VT_SQL_CREATE_VERSION] = {"create_version",
                                  "CREATE TABLE IF NOT EXISTS %s (\n"
                                  "    version_num varchar(32) NOT NULL PRIMARY KEY\n"
                                  ")"},
    [LM_VT_SQL_CREATE_HISTORY] =
        {"create_history",
         "CREATE TABLE IF NOT EXISTS %s (\n"
         "    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,\n"
         "    revision varchar(32) NOT NULL,\n"
         "    operation text NOT NULL CHECK (operation IN ('upgrade', 'downgrade', 'stamp')),\n"
         "    from_revisions varchar(32)[] NOT NULL,\n"
         "    to_revisions varchar(32)[] NOT NULL,\n"
         "    message text,\n"
         "    file text,\n"
         "    checksum text,\n"
         "    started_at timestamptz NOT NULL,\n"
         "    duration_ms double precision NOT NULL,\n"
         "    db_user text NOT NULL DEFAULT current_user,\n"
         "    os_user text,\n"
         "    hostname text,\n"
         "    luamigrate_version text NOT NULL\n"
         ")"},
    [LM_VT_SQL_CREATE_JOURNAL] = {"create_journal",
                                  "CREATE TABLE IF NOT EXISTS %s (\n"
                                  "    revision varchar(32) NOT NULL,\n"
                                  "    ordinal integer NOT NULL,\n"
                                  "    block integer NOT NULL,\n"
                                  "    statement text NOT NULL,\n"
                                  "    sha256 text NOT NULL,\n"
                                  "    started_at timestamptz NOT NULL DEFAULT clock_timestamp(),\n"
                                  "    finished_at timestamptz,\n"
                                  "    error text,\n"
                                  "    operation text NOT NULL DEFAULT 'upgrade',\n"
                                  "    backend_pid integer,\n"
                                  "    in_transaction boolean NOT NULL DEFAULT false,\n"
                                  "    PRIMARY KEY (revision, ordinal)\n"
                                  ")"},
    [LM_VT_SQL_INSERT] = {"insert", "INSERT INTO %s (version_num) VALUES ($1)"},
    [LM_VT_SQL_DELETE] = {"delete", "DELETE FROM %s WHERE version_num = $1"},
    [LM_VT_SQL_UPDATE] = {"update", "UPDATE %s SET version_num = $1 WHERE version_num = $2"},
};

const char *lm_vt_sql_text(lm_vt_sql which) {
  return SQL[which].sql;
}
const char *lm_vt_sql_name(lm_vt_sql which) {
  return SQL[which].name;
}

static char *quote_ident(PGconn *conn, const char *s, size_t len) {
  char *q = PQescapeIdentifier(conn, s, len);
  if (!q) return NULL;
  char *copy = strdup(q);
  PQfreemem(q);
  return copy;
}

static char *join2(const char *a, const char *dot, const char *b) {
  size_t n = strlen(a) + strlen(dot) + strlen(b) + 1;
  char *s = malloc(n);
  if (s) snprintf(s, n, "%s%s%s", a, dot, b);
  return s;
}

int lm_vt_init(lm_vt *vt, PGconn *conn, const char *name, lm_error *err) {
  int rc = LM_OK;
  char *schema = NULL, *table = NULL, *hist = NULL, *histname = NULL, *lck = NULL, *lckname = NULL,
       *jnl = NULL, *jnlname = NULL;
  memset(vt, 0, sizeof *vt);
  const char *dot = strchr(name, '.');
  const char *tname = dot ? dot + 1 : name;
  if (!*name || !*tname || strlen(tname) > 55)
    return lm_error_set(err, LM_EUSAGE, "invalid version_table '%s'", name);
  if (dot) schema = quote_ident(conn, name, (size_t)(dot - name));
  table = quote_ident(conn, tname, strlen(tname));
  histname = join2(tname, "", LM_VT_HISTORY_SUFFIX);
  hist = histname ? quote_ident(conn, histname, strlen(histname)) : NULL;
  lckname = join2(tname, "", LM_VT_LOCK_SUFFIX);
  lck = lckname ? quote_ident(conn, lckname, strlen(lckname)) : NULL;
  jnlname = join2(tname, "", LM_VT_JOURNAL_SUFFIX);
  jnl = jnlname ? quote_ident(conn, jnlname, strlen(jnlname)) : NULL;
  if (!table || !hist || !lck || !jnl || (dot && !schema)) {
    rc = lm_error_set(err, LM_ENOMEM, "out of memory");
    goto cleanup;
  }
  vt->table = schema ? join2(schema, ".", table) : strdup(table);
  vt->history = schema ? join2(schema, ".", hist) : strdup(hist);
  vt->lock = schema ? join2(schema, ".", lck) : strdup(lck);
  vt->journal = schema ? join2(schema, ".", jnl) : strdup(jnl);
  if (!vt->table || !vt->history || !vt->lock || !vt->journal)
    rc = lm_error_set(err, LM_ENOMEM, "out of memory");
cleanup:
  free(schema);
  free(table);
  free(hist);
  free(histname);
  free(lck);
  free(lckname);
  free(jnl);
  free(jnlname);
  if (rc) lm_vt_free(vt);
  return rc;
}

void lm_vt_free(lm_vt *vt) {
  lm_vt_forget(vt);
  free(vt->table);
  free(vt->history);
  free(vt->lock);
  free(vt->journal);
  memset(vt, 0, sizeof *vt);
}

/* A server error from one of luamigrate's own statements on its tables gets context: which
 * table, what luamigrate was doing and expects, and what to do. `doing` is "reading", ...;
 * `table` the quoted name. Returns rc. Errors that are not the server's pass unchanged. */
static int explain(int rc, const char *doing, const char *what, const char *table, lm_error *err) {
  if (rc == LM_OK || !err || !err->sqlstate) return rc;
  const char *st = err->sqlstate, *hint = NULL;
  char buf[512];
  if (!strcmp(st, "42703") || !strcmp(st, "42804") || !strcmp(st, "42P10") ||
      !strcmp(st, "42809")) {
    if (!strcmp(what, "version"))
      snprintf(buf, sizeof buf,
               "%s is not the table luamigrate made (was it changed by hand?); the version "
               "table holds version_num varchar(32) NOT NULL PRIMARY KEY, one row per current "
               "head: restore it, or drop it and run 'luamigrate stamp REV' for the revision "
               "the database is at",
               table);
    else
      snprintf(buf, sizeof buf,
               "%s is not the table luamigrate made (was it changed by hand?): restore it, or "
               "drop it and luamigrate creates it anew (what it recorded is then lost)",
               table);
    hint = buf;
  } else if (!strcmp(st, "3F000")) {
    hint =
        "the search_path names no schema that exists (or none the role may create in): "
        "create the schema, fix search_path (PGOPTIONS, ALTER ROLE/DATABASE ... SET "
        "search_path), or name one in the config: version_table = \"schema.luamigrate_version\"";
  } else if (!strcmp(st, "57014")) {
    hint =
        "a statement_timeout set for the session (PGOPTIONS, ALTER ROLE/DATABASE ... SET) also "
        "limits luamigrate's own statements: raise or unset it there (migration_statement_timeout "
        "limits only the migrations)";
  } else if (!strcmp(st, "42501")) {
    hint =
        "the role needs SELECT, INSERT, UPDATE and DELETE on luamigrate's tables (and CREATE "
        "on their schema for the first run)";
  } else if (err->context &&
             (strstr(err->context, "PL/pgSQL") || strstr(err->context, "trigger"))) {
    snprintf(buf, sizeof buf,
             "a trigger or rule on %s raised this; luamigrate's tables must accept its own "
             "writes: drop or change the trigger",
             table);
    hint = buf;
  }
  lm_error_prefix(err, "%s luamigrate's %s table %s", doing, what, table);
  if (hint && !err->hint) lm_error_setfield(&err->hint, hint);
  return rc;
}

static int exec_fmt(PGconn *conn, lm_error *err, PGresult **res, int n, const char *const *vals,
                    const char *fmt, const char *a, const char *b) {
  char sql[2048];
  snprintf(sql, sizeof sql, fmt, a, b);
  return lm_exec(conn, sql, n, vals, NULL, NULL, res, err);
}

int lm_vt_table_exists(PGconn *conn, const char *quoted, int *exists, lm_error *err) {
  PGresult *res = NULL;
  const char *vals[1] = {quoted};
  int rc = lm_exec(conn, "SELECT to_regclass($1) IS NOT NULL", 1, vals, NULL, NULL, &res, err);
  if (rc) return rc;
  *exists = strcmp(PQgetvalue(res, 0, 0), "t") == 0;
  PQclear(res);
  return LM_OK;
}

int lm_vt_has(lm_vt *vt, PGconn *conn, const char *quoted, int *exists, lm_error *err) {
  if (vt->known && (quoted == vt->table || quoted == vt->history || quoted == vt->journal)) {
    *exists = quoted == vt->table     ? vt->has_table
              : quoted == vt->history ? vt->has_history
                                      : vt->has_journal;
    return LM_OK;
  }
  return lm_vt_table_exists(conn, quoted, exists, err);
}

/* One statement for all the existence checks a start needs (the journal's columns are
 * journal.h's). */
int lm_vt_probe_send(lm_vt *vt, PGconn *conn, lm_error *err) {
  vt->probe_vals[0] = vt->table;
  vt->probe_vals[1] = vt->history;
  vt->probe_vals[2] = vt->journal;
  vt->probe_stmt =
      (lm_stmt){.sql =
                    "SELECT to_regclass($1) IS NOT NULL, to_regclass($2) IS NOT NULL, "
                    "to_regclass($3) IS NOT NULL, (SELECT count(*) FROM pg_attribute "
                    "WHERE attrelid = to_regclass($3) AND attname IN (" LM_JOURNAL_LATE_COLUMNS
                    ") AND NOT attisdropped) = " LM_JOURNAL_LATE_COUNT,
                .values = vt->probe_vals,
                .nparams = 3,
                .keep = 1};
  vt->probe = (lm_batch){.stmts = &vt->probe_stmt, .n = 1};
  return lm_exec_batch_send(conn, &vt->probe, err);
}

int lm_vt_probe_wait(lm_vt *vt, PGconn *conn, lm_error *err) {
  int rc = lm_exec_batch_wait(conn, &vt->probe, err);
  PGresult *res = vt->probe_stmt.res;
  vt->probe_stmt.res = NULL;
  if (rc) return explain(rc, "looking for", "version", vt->table, err);
  vt->has_table = PQgetvalue(res, 0, 0)[0] == 't';
  vt->has_history = PQgetvalue(res, 0, 1)[0] == 't';
  vt->has_journal = PQgetvalue(res, 0, 2)[0] == 't';
  vt->journal_whole = PQgetvalue(res, 0, 3)[0] == 't';
  vt->known = 1;
  PQclear(res);
  return LM_OK;
}

int lm_vt_probe(lm_vt *vt, PGconn *conn, lm_error *err) {
  return lm_vt_probe_send(vt, conn, err) ? vt->probe.rc : lm_vt_probe_wait(vt, conn, err);
}

void lm_vt_forget(lm_vt *vt) {
  for (int i = 0; i < LM_VT_PRE_COUNT; i++) {
    PQclear(vt->pre[i]);
    vt->pre[i] = NULL;
  }
}

PGresult *lm_vt_prefetched(lm_vt *vt, lm_vt_pre which) {
  return vt->pre[which] ? PQcopyResult(vt->pre[which], PG_COPYRES_ATTRS | PG_COPYRES_TUPLES) : NULL;
}

/* The reads, each written once: lm_vt_read's, lm_vt_applied_checksums', lm_vt_stamped's. */
#define ROWS_SQL "SELECT version_num FROM %s " LM_VT_ROWS_ORDER
#define APPLIED_SQL                                          \
  "SELECT DISTINCT ON (revision) revision, checksum, "       \
  "extract(epoch FROM started_at)::float8, duration_ms, "    \
  "to_char(started_at, 'YYYY-MM-DD HH24:MI:SS TZ') FROM %s " \
  "WHERE operation = 'upgrade' ORDER BY revision, id DESC"
#define STAMPED_SQL "SELECT DISTINCT unnest(to_revisions) FROM %s WHERE operation = 'stamp'"

int lm_vt_prefetch(lm_vt *vt, PGconn *conn, int stamped, lm_error *err) {
  char rows[512], applied[1024], stamps[512];
  char *journal = NULL;
  lm_stmt stmts[LM_VT_PRE_COUNT];
  lm_vt_pre which[LM_VT_PRE_COUNT];
  size_t n = 0;
  lm_vt_forget(vt);
  int rc = vt->known ? LM_OK : lm_vt_probe(vt, conn, err);
  if (rc) return rc;
  if (vt->has_table) {
    snprintf(rows, sizeof rows, ROWS_SQL, vt->table);
    which[n] = LM_VT_PRE_ROWS;
    stmts[n++] = (lm_stmt){.sql = rows, .keep = 1};
  }
  if (vt->has_history) {
    snprintf(applied, sizeof applied, APPLIED_SQL, vt->history);
    which[n] = LM_VT_PRE_APPLIED;
    stmts[n++] = (lm_stmt){.sql = applied, .keep = 1};
    if (stamped) {
      snprintf(stamps, sizeof stamps, STAMPED_SQL, vt->history);
      which[n] = LM_VT_PRE_STAMPED;
      stmts[n++] = (lm_stmt){.sql = stamps, .keep = 1};
    }
  }
  if (vt->has_journal) {
    if (!(journal = lm_journal_select_sql(vt)))
      return lm_error_set(err, LM_ENOMEM, "out of memory");
    which[n] = LM_VT_PRE_JOURNAL;
    stmts[n++] = (lm_stmt){.sql = journal, .keep = 1};
  }
  rc = lm_exec_batch(conn, stmts, n, err);
  free(journal);
  if (rc) {
    /* explained for the table whose read failed (the version table's when none did: the
     * guard, the connection) */
    lm_vt_pre failed = LM_VT_PRE_ROWS;
    for (size_t i = 0; i < n; i++)
      if (stmts[i].failed) failed = which[i];
    switch (failed) {
      case LM_VT_PRE_JOURNAL: return rc; /* as lm_journal_read reports a read of its own */
      case LM_VT_PRE_APPLIED:
      case LM_VT_PRE_STAMPED: return explain(rc, "reading", "history", vt->history, err);
      case LM_VT_PRE_ROWS:
      case LM_VT_PRE_COUNT: break;
    }
    return explain(rc, "reading", "version", vt->table, err);
  }
  for (size_t i = 0; i < n; i++) vt->pre[which[i]] = stmts[i].res;
  return LM_OK;
}

/* Creates what is missing. Runs under the migration lock, so checking first is race-free
 * and spares every run the server's "already exists, skipping" notices. The checks answer
 * from the probe (made here when this run has none yet: one round trip for all of them);
 * once everything exists the probe's answer says so, so nothing is asked again. */
int lm_vt_ensure(lm_vt *vt, PGconn *conn, lm_error *err) {
  int have_vt = 0, have_hist = 0;
  int rc = vt->known ? LM_OK : lm_vt_probe(vt, conn, err);
  if (!rc) rc = lm_vt_has(vt, conn, vt->table, &have_vt, err);
  if (!rc) rc = lm_vt_has(vt, conn, vt->history, &have_hist, err);
  if (!rc) rc = explain(lm_journal_ensure(vt, conn, err), "creating", "journal", vt->journal, err);
  if (!rc && !have_vt)
    rc = explain(
        exec_fmt(conn, err, NULL, 0, NULL, SQL[LM_VT_SQL_CREATE_VERSION].sql, vt->table, ""),
        "creating", "version", vt->table, err);
  if (!rc && !have_hist)
    rc = explain(
        exec_fmt(conn, err, NULL, 0, NULL, SQL[LM_VT_SQL_CREATE_HISTORY].sql, vt->history, ""),
        "creating", "history", vt->history, err);
  if (rc) {
    vt->known = 0; /* what a failed statement left is asked again */
    return rc;
  }
  vt->has_table = vt->has_history = 1; /* the journal's, lm_journal_ensure's */
  return LM_OK;
}

void lm_vt_free_ids(char **ids, size_t n) {
  if (!ids) return;
  for (size_t i = 0; i < n; i++) free(ids[i]);
  free(ids);
}

int lm_vt_read(lm_vt *vt, PGconn *conn, char ***ids, size_t *n, lm_error *err) {
  int exists = 0, rc = LM_OK;
  PGresult *res = lm_vt_prefetched(vt, LM_VT_PRE_ROWS);
  *ids = NULL;
  *n = 0;
  if (!res) {
    rc = lm_vt_has(vt, conn, vt->table, &exists, err);
    if (rc || !exists) return rc;
    rc = exec_fmt(conn, err, &res, 0, NULL, ROWS_SQL "%s", vt->table, "");
    if (rc) return explain(rc, "reading", "version", vt->table, err);
  }
  size_t rows = (size_t)PQntuples(res);
  char **out = calloc(rows ? rows : 1, sizeof *out);
  if (!out) {
    PQclear(res);
    return lm_error_set(err, LM_ENOMEM, "out of memory");
  }
  for (size_t i = 0; i < rows; i++) {
    out[i] = strdup(PQgetvalue(res, (int)i, 0));
    if (!out[i]) {
      lm_vt_free_ids(out, i);
      PQclear(res);
      return lm_error_set(err, LM_ENOMEM, "out of memory");
    }
  }
  PQclear(res);
  *ids = out;
  *n = rows;
  return LM_OK;
}

/* The message of a row change that matched `rows` rows instead of one is
 * ONE_ROW_HEAD "<what> 'a'[ to 'b'] in <table>; " <rows> ONE_ROW_TAIL. */
#define ONE_ROW_HEAD "expected to match one row when "
#define ONE_ROW_TAIL " found (was the version table changed by hand?)"

static void one_row_head(char *buf, size_t size, const lm_vt *vt, const char *what, const char *a,
                         const char *b) {
  if (b)
    snprintf(buf, size, ONE_ROW_HEAD "%s '%s' to '%s' in %s; ", what, a, b, vt->table);
  else
    snprintf(buf, size, ONE_ROW_HEAD "%s '%s' in %s; ", what, a, vt->table);
}

static int expect_one(PGresult *res, lm_vt *vt, const char *what, const char *a, const char *b,
                      lm_error *err) {
  const char *t = PQcmdTuples(res);
  int rows = t && *t ? (int)strtol(t, NULL, 10) : 0;
  PQclear(res);
  if (rows == 1) return LM_OK;
  char head[1024];
  one_row_head(head, sizeof head, vt, what, a, b);
  return lm_error_set(err, LM_ERR, "%s%d" ONE_ROW_TAIL, head, rows);
}

int lm_vt_insert(lm_vt *vt, PGconn *conn, const char *id, lm_error *err) {
  PGresult *res = NULL;
  const char *vals[1] = {id};
  int rc = exec_fmt(conn, err, &res, 1, vals, SQL[LM_VT_SQL_INSERT].sql, vt->table, "");
  return rc ? explain(rc, "writing", "version", vt->table, err)
            : expect_one(res, vt, "inserting", id, NULL, err);
}

int lm_vt_delete(lm_vt *vt, PGconn *conn, const char *id, lm_error *err) {
  PGresult *res = NULL;
  const char *vals[1] = {id};
  int rc = exec_fmt(conn, err, &res, 1, vals, SQL[LM_VT_SQL_DELETE].sql, vt->table, "");
  return rc ? explain(rc, "writing", "version", vt->table, err)
            : expect_one(res, vt, "deleting", id, NULL, err);
}

int lm_vt_update(lm_vt *vt, PGconn *conn, const char *from, const char *to, lm_error *err) {
  PGresult *res = NULL;
  const char *vals[2] = {to, from};
  int rc = exec_fmt(conn, err, &res, 2, vals, SQL[LM_VT_SQL_UPDATE].sql, vt->table, "");
  return rc ? explain(rc, "writing", "version", vt->table, err)
            : expect_one(res, vt, "updating", from, to, err);
}

int lm_vt_purge(lm_vt *vt, PGconn *conn, lm_error *err) {
  return explain(exec_fmt(conn, err, NULL, 0, NULL, "DELETE FROM %s%s", vt->table, ""), "writing",
                 "version", vt->table, err);
}

char *lm_vt_utf8_clean(const char *s, char *out) {
  size_t n = strlen(s);
  char *w = out;
  const unsigned char *p = (const unsigned char *)s, *end = p + n;
  while (p < end) {
    size_t len = *p < 0x80                  ? 1
                 : *p >= 0xC2 && *p <= 0xDF ? 2
                 : *p >= 0xE0 && *p <= 0xEF ? 3
                 : *p >= 0xF0 && *p <= 0xF4 ? 4
                                            : 0;
    int ok = len > 0 && (size_t)(end - p) >= len;
    for (size_t i = 1; ok && i < len; i++) ok = (p[i] & 0xC0) == 0x80;
    /* overlong three- and four-byte forms, surrogates, beyond U+10FFFF */
    if (ok && len == 3) ok = !(p[0] == 0xE0 && p[1] < 0xA0) && !(p[0] == 0xED && p[1] >= 0xA0);
    if (ok && len == 4) ok = !(p[0] == 0xF0 && p[1] < 0x90) && !(p[0] == 0xF4 && p[1] >= 0x90);
    if (ok) {
      memcpy(w, p, len);
      w += len;
      p += len;
    } else {
      w += sprintf(w, "\\x%02X", *p);
      p++;
    }
  }
  *w = '\0';
  return out;
}

/* lm_vt_utf8_clean into a malloc'd copy; NULL for NULL, or out of memory. */
static char *utf8_clean(const char *s) {
  if (!s) return NULL;
  char *out = malloc(4 * strlen(s) + 1);
  return out ? lm_vt_utf8_clean(s, out) : NULL;
}

/* A step's duration ($9, the client's time so far): or the server's since the step's mark
 * (lm_vt_mark_sql, sent before a pipelined step's ops) when longer, as the ops may still be
 * running there when the row is sent. Without a mark the setting reads NULL (or '' once a
 * transaction that set it ended), and $9 stands. */
#define STEP_DURATION_SQL                                                  \
  "GREATEST($9::double precision, extract(epoch FROM clock_timestamp() - " \
  "nullif(current_setting('luamigrate.step_started', true), '')::timestamptz) * 1000)"

/* The history row's statement and parameters. The texts that come from outside luamigrate
 * (message, file, os_user, hostname) go as UTF-8 bytes decoded by the server
 * (convert_from), so they read the same whatever the connection's client_encoding. */
typedef struct history_row {
  char sql[2048], started[64], duration[64], host[256];
  char *text[4]; /* message, file, os user, host: valid UTF-8, owned */
  const char *vals[11];
  int lens[11], fmts[11];
} history_row;

static void history_free(history_row *h) {
  for (int i = 0; i < 4; i++) free(h->text[i]);
}

static int history_stmt(const lm_vt *vt, const lm_vt_record *rec, history_row *h, lm_error *err) {
  memset(h, 0, sizeof *h);
  snprintf(h->started, sizeof h->started, "%.6f", rec->started_at);
  snprintf(h->duration, sizeof h->duration, "%.3f", rec->duration_ms);
  if (gethostname(h->host, 255) != 0) h->host[0] = '\0';
  h->host[255] = '\0';
  const char *user = getenv("USER");
  if (!user) user = getenv("LOGNAME");
  const char *raw[4] = {rec->message, rec->file, user, h->host[0] ? h->host : NULL};
  for (int i = 0; i < 4; i++)
    if (raw[i] && !(h->text[i] = utf8_clean(raw[i]))) {
      history_free(h);
      return lm_error_set(err, LM_ENOMEM, "out of memory");
    }
  const char *v[11] = {rec->revision, rec->operation, rec->from_ids, rec->to_ids,
                       h->text[0],    h->text[1],     rec->checksum, h->started,
                       h->duration,   h->text[2],     h->text[3]};
  memcpy(h->vals, v, sizeof v);
  static const int binary[] = {4, 5, 9, 10};
  for (int i = 0; i < 4; i++) {
    int k = binary[i];
    h->fmts[k] = 1;
    h->lens[k] = h->vals[k] ? (int)strlen(h->vals[k]) : 0;
  }
  snprintf(h->sql, sizeof h->sql,
           "INSERT INTO %s (revision, operation, from_revisions, to_revisions, message, file, "
           "checksum, started_at, duration_ms, os_user, hostname, luamigrate_version) "
           "VALUES ($1, $2, string_to_array($3, ' '), string_to_array($4, ' '), "
           "convert_from($5::bytea, 'UTF8'), convert_from($6::bytea, 'UTF8'), $7, "
           "to_timestamp($8::double precision), " STEP_DURATION_SQL
           ", "
           "convert_from($10::bytea, 'UTF8'), convert_from($11::bytea, 'UTF8'), '" LM_VERSION "')",
           vt->history);
  return LM_OK;
}

int lm_vt_record_step(lm_vt *vt, PGconn *conn, const lm_vt_record *rec, lm_error *err) {
  history_row h;
  int rc = history_stmt(vt, rec, &h, err);
  if (rc) return rc;
  rc = lm_exec(conn, h.sql, 11, h.vals, h.lens, h.fmts, NULL, err);
  history_free(&h);
  return explain(rc, "writing", "history", vt->history, err);
}

int lm_vt_step(lm_vt *vt, PGconn *conn, const lm_vt_change *changes, size_t n,
               const lm_vt_record *rec, lm_error *err) {
  enum { ROW_SQL = 512 };
  if (n > 64) return lm_error_set(err, LM_ERR, "too many version-table changes in one step");
  char *rows = malloc(ROW_SQL * (n ? n : 1));
  if (!rows) return lm_error_set(err, LM_ENOMEM, "out of memory");
  lm_stmt stmts[65];
  const char *rowvals[64][2];
  for (size_t i = 0; i < n; i++) {
    char *sql = rows + i * ROW_SQL;
    const lm_vt_change *c = &changes[i];
    int np = 1;
    if (c->kind == LM_VT_INSERT) {
      snprintf(sql, ROW_SQL, SQL[LM_VT_SQL_INSERT].sql, vt->table);
      rowvals[i][0] = c->to;
    } else if (c->kind == LM_VT_DELETE) {
      snprintf(sql, ROW_SQL, SQL[LM_VT_SQL_DELETE].sql, vt->table);
      rowvals[i][0] = c->from;
    } else {
      snprintf(sql, ROW_SQL, SQL[LM_VT_SQL_UPDATE].sql, vt->table);
      rowvals[i][0] = c->to;
      rowvals[i][1] = c->from;
      np = 2;
    }
    stmts[i] = (lm_stmt){.sql = sql, .nparams = np, .values = rowvals[i], .keep = 1};
  }
  history_row h;
  int rc = history_stmt(vt, rec, &h, err);
  if (rc) {
    free(rows);
    return rc;
  }
  stmts[n] = (lm_stmt){
      .sql = h.sql, .values = h.vals, .lengths = h.lens, .formats = h.fmts, .nparams = 11};
  rc = lm_exec_batch(conn, stmts, n + 1, err);
  history_free(&h);
  if (stmts[n].failed)
    explain(rc, "writing", "history", vt->history, err);
  else
    explain(rc, "writing", "version", vt->table, err);
  /* Each row change must have matched one row; checked only now, before the caller commits
   * (the history row, sent with them, goes away with the rollback). */
  for (size_t i = 0; i < n; i++) {
    if (rc) {
      PQclear(stmts[i].res);
      continue;
    }
    const lm_vt_change *c = &changes[i];
    rc = c->kind == LM_VT_INSERT   ? expect_one(stmts[i].res, vt, "inserting", c->to, NULL, err)
         : c->kind == LM_VT_DELETE ? expect_one(stmts[i].res, vt, "deleting", c->from, NULL, err)
                                   : expect_one(stmts[i].res, vt, "updating", c->from, c->to, err);
  }
  free(rows);
  return rc;
}

/* ---- a step's bookkeeping in the run's pipeline ------------------------------------
 * The statements lm_vt_step sends, made to need no result before COMMIT: each row change
 * becomes a data-modifying CTE that fails unless it matched one row. Its failure is a cast
 * of the one-row message to integer (SQLSTATE 22P02, the message quoted in the server's),
 * which aborts the transaction, so the COMMIT queued after it rolls back; lm_vt_step_failed
 * gives back the message lm_vt_step reports. No object is created for it. */

/* o as statement sql with n parameters (values copied, owned by o: lm_vt_stmts_free);
 * lengths and formats as lm_stmt's (NULL: all text). 0, or -1 out of memory. */
static int own_stmt(lm_vt_stmt *o, lm_vt_piece piece, const char *sql, int n,
                    const char *const *vals, const int *lens, const int *fmts) {
  memset(o, 0, sizeof *o);
  o->piece = piece;
  o->sql = strdup(sql);
  int bad = !o->sql;
  for (int i = 0; i < n; i++) {
    if (vals[i] && !(o->owned[i] = strdup(vals[i]))) bad = 1;
    o->values[i] = o->owned[i];
    o->lengths[i] = lens ? lens[i] : 0;
    o->formats[i] = fmts ? fmts[i] : 0;
  }
  o->stmt = (lm_stmt){.sql = o->sql,
                      .values = o->values,
                      .lengths = o->lengths,
                      .formats = o->formats,
                      .nparams = n};
  return bad ? -1 : 0;
}

/* One row change as a statement that fails unless it matched one row. */
static int checked_row(lm_vt *vt, const lm_vt_change *c, lm_vt_stmt *o) {
  char table_sql[512], head[1024], sql[2048];
  const char *vals[4];
  int n;
  lm_vt_sql which;
  if (c->kind == LM_VT_INSERT) {
    which = LM_VT_SQL_INSERT;
    vals[0] = c->to;
    n = 1;
    one_row_head(head, sizeof head, vt, "inserting", c->to, NULL);
  } else if (c->kind == LM_VT_DELETE) {
    which = LM_VT_SQL_DELETE;
    vals[0] = c->from;
    n = 1;
    one_row_head(head, sizeof head, vt, "deleting", c->from, NULL);
  } else {
    which = LM_VT_SQL_UPDATE;
    vals[0] = c->to;
    vals[1] = c->from;
    n = 2;
    one_row_head(head, sizeof head, vt, "updating", c->from, c->to);
  }
  snprintf(table_sql, sizeof table_sql, SQL[which].sql, vt->table);
  vals[n] = head;
  vals[n + 1] = ONE_ROW_TAIL;
  snprintf(sql, sizeof sql,
           "WITH m AS (%s RETURNING 1) SELECT CASE count(*) WHEN 1 THEN 0 ELSE ($%d::text || "
           "count(*) || $%d::text)::integer END FROM m",
           table_sql, n + 1, n + 2);
  return own_stmt(o, LM_VT_PIECE_ROW, sql, n + 2, vals, NULL, NULL);
}

const char *lm_vt_mark_sql(void) {
  return "SELECT set_config('luamigrate.step_started', clock_timestamp()::text, true)";
}

void lm_vt_stmts_free(lm_vt_stmt *stmts, size_t n) {
  for (size_t i = 0; i < n; i++) {
    free(stmts[i].sql);
    for (int k = 0; k < LM_VT_STMT_PARAMS; k++) free(stmts[i].owned[k]);
  }
}

int lm_vt_step_sql(lm_vt *vt, const lm_vt_change *changes, size_t n, const lm_vt_record *rec,
                   int clear_journal, lm_vt_stmt *out, size_t cap, size_t *nout, lm_error *err) {
  *nout = 0;
  if (n + 3 > cap) return lm_error_set(err, LM_ERR, "too many version-table changes in one step");
  size_t k = 0;
  int bad = 0;
  char sql[2048];
  snprintf(sql, sizeof sql, "LOCK TABLE %s IN ROW EXCLUSIVE MODE", vt->table);
  bad |= own_stmt(&out[k++], LM_VT_PIECE_GUARD, sql, 0, NULL, NULL, NULL);
  for (size_t i = 0; i < n; i++) bad |= checked_row(vt, &changes[i], &out[k++]);
  history_row h;
  int rc = history_stmt(vt, rec, &h, err);
  if (rc) {
    lm_vt_stmts_free(out, k);
    return rc;
  }
  bad |= own_stmt(&out[k++], LM_VT_PIECE_HISTORY, h.sql, 11, h.vals, h.lens, h.fmts);
  history_free(&h);
  if (clear_journal) {
    const char *vals[1] = {rec->revision};
    snprintf(sql, sizeof sql, LM_JOURNAL_CLEAR_SQL, vt->journal);
    bad |= own_stmt(&out[k++], LM_VT_PIECE_JOURNAL, sql, 1, vals, NULL, NULL);
  }
  if (bad) {
    lm_vt_stmts_free(out, k);
    return lm_error_set(err, LM_ENOMEM, "out of memory");
  }
  *nout = k;
  return LM_OK;
}

int lm_vt_step_failed(lm_vt *vt, lm_vt_piece piece, lm_error *err) {
  int rc = err->code ? err->code : LM_ESQL;
  const char *msg = err->message, *head = msg ? strstr(msg, ONE_ROW_HEAD) : NULL;
  const char *tail = head ? strstr(head, ONE_ROW_TAIL) : NULL;
  if (piece == LM_VT_PIECE_ROW && err->sqlstate && !strcmp(err->sqlstate, "22P02") && tail) {
    char *text = strndup(head, (size_t)(tail - head) + strlen(ONE_ROW_TAIL));
    lm_error_clear(err);
    if (!text) return lm_error_set(err, LM_ENOMEM, "out of memory");
    lm_error_set(err, LM_ERR, "%s", text);
    free(text);
    return LM_ERR;
  }
  switch (piece) {
    case LM_VT_PIECE_GUARD:
    case LM_VT_PIECE_ROW: return explain(rc, "writing", "version", vt->table, err);
    case LM_VT_PIECE_HISTORY: return explain(rc, "writing", "history", vt->history, err);
    case LM_VT_PIECE_JOURNAL: return explain(rc, "writing", "journal", vt->journal, err);
  }
  return rc;
}

/* A missing table reads as no rows: an empty result, made here without a round trip. */
static int no_rows(PGconn *conn, PGresult **res, lm_error *err) {
  *res = PQmakeEmptyPGresult(conn, PGRES_TUPLES_OK);
  return *res ? LM_OK : lm_error_set(err, LM_ENOMEM, "out of memory");
}

int lm_vt_applied_checksums(lm_vt *vt, PGconn *conn, PGresult **res, lm_error *err) {
  int exists = 0;
  if ((*res = lm_vt_prefetched(vt, LM_VT_PRE_APPLIED))) return LM_OK;
  int rc = lm_vt_has(vt, conn, vt->history, &exists, err);
  if (rc) return rc;
  if (!exists) return no_rows(conn, res, err);
  return explain(exec_fmt(conn, err, res, 0, NULL, APPLIED_SQL "%s", vt->history, ""), "reading",
                 "history", vt->history, err);
}

int lm_vt_set_checksum(lm_vt *vt, PGconn *conn, const char *revision, const char *checksum,
                       lm_error *err) {
  PGresult *res = NULL;
  const char *vals[2] = {revision, checksum};
  int rc = exec_fmt(conn, err, &res, 2, vals,
                    "UPDATE %s SET checksum = $2 WHERE id = (SELECT id FROM %s WHERE revision = $1 "
                    "AND operation = 'upgrade' ORDER BY id DESC LIMIT 1)",
                    vt->history, vt->history);
  return rc ? rc : expect_one(res, vt, "recording the checksum of", revision, NULL, err);
}

int lm_vt_stamped(lm_vt *vt, PGconn *conn, PGresult **res, lm_error *err) {
  int exists = 0;
  if ((*res = lm_vt_prefetched(vt, LM_VT_PRE_STAMPED))) return LM_OK;
  int rc = lm_vt_has(vt, conn, vt->history, &exists, err);
  if (rc) return rc;
  if (!exists) return no_rows(conn, res, err);
  return exec_fmt(conn, err, res, 0, NULL, STAMPED_SQL "%s", vt->history, "");
}
