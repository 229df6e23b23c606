/* libpq connections: open, execute with exact result-status checks, turn server errors
 * into lm_error, print notices, and describe connection strings without passwords. */
#include "conn.h"

#include "log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void notice_receiver(void *arg, const PGresult *res) {
  (void)arg;
  lm_log_notice(PQresultErrorField(res, PG_DIAG_SEVERITY),
                PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY),
                PQresultErrorField(res, PG_DIAG_MESSAGE_DETAIL),
                PQresultErrorField(res, PG_DIAG_MESSAGE_HINT));
}

/* libpq's own messages end with a newline and may span lines; keep the first line as the
 * message and the rest as detail. */
static void set_libpq_message(lm_error *err, int code, const char *prefix, const char *msg) {
  char *copy = strdup(msg ? msg : "");
  if (!copy) {
    lm_error_set(err, LM_ENOMEM, "out of memory");
    return;
  }
  size_t n = strlen(copy);
  while (n > 0 && (copy[n - 1] == '\n' || copy[n - 1] == ' ')) copy[--n] = '\0';
  char *nl = strchr(copy, '\n');
  if (nl) {
    *nl = '\0';
    lm_error_setfield(&err->detail, nl + 1);
  }
  lm_error_set(err, code, "%s%s", prefix, copy);
  free(copy);
}

/* A connection string libpq cannot parse is a usage error; its quoted fragments could be a
 * password, so they are left out when one may be present. */
static int check_parse(const char *conninfo, lm_error *err) {
  char *errmsg = NULL;
  PQconninfoOption *opts = PQconninfoParse(conninfo, &errmsg);
  if (opts) {
    PQconninfoFree(opts);
    return LM_OK;
  }
  char why[512];
  size_t n = 0;
  int hide = strchr(conninfo, '@') || strstr(conninfo, "password"), quoted = 0;
  for (const char *p = errmsg ? errmsg : "cannot parse it"; *p && *p != '\n' && n + 5 < sizeof why;
       p++) {
    if (hide && *p == '"') {
      quoted = !quoted;
      if (quoted) {
        memcpy(why + n, "\"...", 4);
        n += 4;
        continue;
      }
    }
    if (!quoted || !hide) why[n++] = *p;
  }
  why[n] = '\0';
  PQfreemem(errmsg);
  return lm_error_set(err, LM_EUSAGE, "invalid database URL or connection string: %s", why);
}

PGconn *lm_conn_open(const char *conninfo, lm_error *err) {
  if (conninfo && *conninfo && check_parse(conninfo, err)) return NULL;
  const char *keys[] = {"dbname", "fallback_application_name", NULL};
  const char *vals[] = {conninfo && *conninfo ? conninfo : NULL, "luamigrate", NULL};
  PGconn *conn = PQconnectdbParams(keys, vals, 1);
  if (!conn) {
    lm_error_set(err, LM_ENOMEM, "out of memory while connecting");
    return NULL;
  }
  if (PQstatus(conn) != CONNECTION_OK) {
    char *where = lm_conn_redact(conninfo);
    char prefix[1024];
    snprintf(prefix, sizeof prefix, "cannot connect to %s: ", where ? where : "the database");
    free(where);
    set_libpq_message(err, LM_ECONN, prefix, PQerrorMessage(conn));
    PQfinish(conn);
    return NULL;
  }
  PQsetNoticeReceiver(conn, notice_receiver, NULL);
  return conn;
}

int lm_error_from_result(lm_error *err, PGconn *conn, const PGresult *res, const char *sql) {
  if (!err) return LM_ESQL;
  const char *primary = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) : NULL;
  const char *sqlstate = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
  int code = LM_ESQL;
  if (PQstatus(conn) == CONNECTION_BAD) code = LM_ECONN;
  if (primary) {
    lm_error_set(err, code, "%s", primary);
  } else {
    const char *m = res ? PQresultErrorMessage(res) : "";
    if (!m || !*m) m = PQerrorMessage(conn);
    set_libpq_message(err, code, "", m);
  }
  lm_error_setfield(&err->sqlstate, sqlstate);
  if (res) {
    lm_error_setfield(&err->detail, PQresultErrorField(res, PG_DIAG_MESSAGE_DETAIL));
    lm_error_setfield(&err->hint, PQresultErrorField(res, PG_DIAG_MESSAGE_HINT));
    lm_error_setfield(&err->context, PQresultErrorField(res, PG_DIAG_CONTEXT));
    const char *pos = PQresultErrorField(res, PG_DIAG_STATEMENT_POSITION);
    err->position = pos ? (int)strtol(pos, NULL, 10) : 0;
  }
  lm_error_setfield(&err->statement, sql);
  return code;
}

int lm_exec(PGconn *conn, const char *sql, int nparams, const char *const *values,
            const int *lengths, const int *formats, PGresult **res, lm_error *err) {
  if (res) *res = NULL;
  /* Without parameters the simple protocol runs, so one string may hold several
   * statements, as migrations often do; with parameters it is exactly one statement. */
  PGresult *r = nparams == 0 ? PQexec(conn, sql)
                             : PQexecParams(conn, sql, nparams, NULL, values, lengths, formats, 0);
  ExecStatusType st = r ? PQresultStatus(r) : PGRES_FATAL_ERROR;
  if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK) {
    if (res)
      *res = r;
    else
      PQclear(r);
    return LM_OK;
  }
  int rc;
  if (st == PGRES_FATAL_ERROR || st == PGRES_NONFATAL_ERROR) {
    rc = lm_error_from_result(err, conn, r, sql);
  } else {
    /* COPY, pipeline or empty-query results: nothing a migration statement should yield. */
    rc = lm_error_set(err, LM_ESQL, "unexpected result status %s", PQresStatus(st));
    lm_error_setfield(&err->statement, sql);
    if (st == PGRES_COPY_IN || st == PGRES_COPY_BOTH) PQputCopyEnd(conn, "not supported");
    if (st == PGRES_COPY_IN || st == PGRES_COPY_OUT || st == PGRES_COPY_BOTH) {
      PGresult *rest;
      while ((rest = PQgetResult(conn)) != NULL) PQclear(rest);
    }
  }
  PQclear(r);
  return rc;
}

/* Appends s to buf (size cap) escaping nothing: values shown here are for people. */
static void cat(char *buf, size_t cap, const char *s) {
  size_t n = strlen(buf);
  if (n + 1 >= cap) return;
  snprintf(buf + n, cap - n, "%s", s);
}

static char *describe(const char *user, const char *pw, const char *host, const char *port,
                      const char *db) {
  char buf[2048] = "postgresql://";
  if (user && *user) {
    cat(buf, sizeof buf, user);
    if (pw && *pw) cat(buf, sizeof buf, ":***");
    cat(buf, sizeof buf, "@");
  } else if (pw && *pw) {
    cat(buf, sizeof buf, ":***@");
  }
  if (host && *host && host[0] != '/') cat(buf, sizeof buf, host);
  if (port && *port) {
    cat(buf, sizeof buf, ":");
    cat(buf, sizeof buf, port);
  }
  cat(buf, sizeof buf, "/");
  if (db && *db) cat(buf, sizeof buf, db);
  if (host && host[0] == '/') {
    cat(buf, sizeof buf, "?host=");
    cat(buf, sizeof buf, host);
  }
  return strdup(buf);
}

char *lm_conn_redact(const char *conninfo) {
  if (!conninfo || !*conninfo) return describe(NULL, NULL, NULL, NULL, NULL);
  char *errmsg = NULL;
  PQconninfoOption *opts = PQconninfoParse(conninfo, &errmsg);
  if (!opts) {
    PQfreemem(errmsg);
    return strdup("<unparsable connection string>");
  }
  const char *user = NULL, *pw = NULL, *host = NULL, *port = NULL, *db = NULL;
  for (PQconninfoOption *o = opts; o->keyword; o++) {
    if (!o->val) continue;
    if (!strcmp(o->keyword, "user"))
      user = o->val;
    else if (!strcmp(o->keyword, "password"))
      pw = o->val;
    else if (!strcmp(o->keyword, "host") || (!host && !strcmp(o->keyword, "hostaddr")))
      host = o->val;
    else if (!strcmp(o->keyword, "port"))
      port = o->val;
    else if (!strcmp(o->keyword, "dbname"))
      db = o->val;
  }
  char *s = describe(user, pw, host, port, db);
  PQconninfoFree(opts);
  return s;
}

char *lm_conn_describe(PGconn *conn) {
  const char *pw = PQpass(conn);
  return describe(PQuser(conn), (pw && *pw) ? "x" : NULL, PQhost(conn), PQport(conn), PQdb(conn));
}
