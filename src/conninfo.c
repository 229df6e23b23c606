/* Connection strings: libpq's URIs and key=value strings checked, SQLAlchemy's URL schemes
 * rewritten, and display forms with every password hidden. No connection is opened here. */
#include "conninfo.h"

#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"

/* The spans of conninfo that hold a password (at most `max`): a URI's user:PASSWORD@ and
 * ?password=, a key=value string's password=VALUE. Returns how many were found. */
typedef struct span {
  size_t at, len;
} span;

static size_t password_spans(const char *s, span *out, size_t max) {
  size_t n = 0;
  /* a URI as libpq tells one: by its prefix; its user info ends at the first '@' */
  const char *sep = NULL;
  if (!strncmp(s, "postgresql://", 13))
    sep = s + 10;
  else if (!strncmp(s, "postgres://", 11))
    sep = s + 8;
  if (sep) {
    const char *auth = sep + 3, *at = auth + strcspn(auth, "@/");
    const char *colon = *at == '@' ? memchr(auth, ':', (size_t)(at - auth)) : NULL;
    if (colon && n < max) out[n++] = (span){(size_t)(colon + 1 - s), (size_t)(at - colon - 1)};
  }
  for (const char *p = strstr(s, "password"); p && n < max; p = strstr(p + 8, "password")) {
    if (p > s && !strchr(sep ? "?&" : " \t\n", p[-1])) continue;
    const char *v = p + 8;
    if (!sep) v += strspn(v, " \t\n");
    if (*v != '=') continue;
    v++;
    if (sep) {
      out[n++] = (span){(size_t)(v - s), strcspn(v, "&")};
      continue;
    }
    v += strspn(v, " \t\n");
    const char *e = v;
    if (*e == '\'') {
      for (e++; *e && *e != '\''; e++)
        if (*e == '\\' && e[1]) e++;
      if (*e) e++;
    } else {
      e += strcspn(e, " \t\n");
    }
    out[n++] = (span){(size_t)(v - s), (size_t)(e - v)};
  }
  return n;
}

/* A connection string libpq cannot parse is a usage error. libpq's message may quote the
 * part it could not parse; every copy of a password in it becomes "***". */
int lm_conn_check_url(const char *conninfo, lm_error *err) {
  char *errmsg = NULL;
  PQconninfoOption *opts = PQconninfoParse(conninfo, &errmsg);
  if (opts) {
    PQconninfoFree(opts);
    return LM_OK;
  }
  span pw[8];
  size_t npw = password_spans(conninfo, pw, 8);
  char why[512];
  size_t n = 0;
  const char *msg = errmsg ? errmsg : "cannot parse it";
  /* libpq's message quotes what it shows of the string. A password of four bytes or more
   * is hidden wherever it appears (the string itself may hold quotes, so the quoting cannot
   * be trusted); a shorter one only inside quotes, where it cannot be an ordinary word. */
  int quoted = 0;
  for (const char *p = msg; *p && *p != '\n' && n + 4 < sizeof why;) {
    size_t skip = 0;
    if (*p == '"') quoted = !quoted;
    for (size_t i = 0; i < npw && !skip; i++)
      if (pw[i].len && (quoted || pw[i].len >= 4) && !strncmp(p, conninfo + pw[i].at, pw[i].len))
        skip = pw[i].len;
    if (skip) {
      memcpy(why + n, "***", 3);
      n += 3;
      p += skip;
    } else {
      why[n++] = *p++;
    }
  }
  why[n] = '\0';
  PQfreemem(errmsg);
  /* What was kept can still spell a password: the "***" put in for one can run on into
   * characters of the same kind after it (a password of asterisks, say). Then libpq's
   * words are not shown at all. */
  int shows = 0;
  for (size_t i = 0; i < npw && !shows; i++)
    for (size_t k = 0; pw[i].len >= 4 && k + pw[i].len <= n && !shows; k++)
      shows = !memcmp(why + k, conninfo + pw[i].at, pw[i].len);
  if (shows)
    snprintf(why, sizeof why,
             "libpq cannot parse it (its message is not shown: it would show the password)");
  return lm_error_set(err, LM_EUSAGE, "invalid database URL or connection string: %s", why);
}

int lm_conn_url_scheme(char *url, const char *source, lm_error *err) {
  size_t len = strspn(url, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789+.-");
  if (!len || strncmp(url + len, "://", 3) != 0) return LM_OK; /* key=value conninfo */
  char scheme[64];
  snprintf(scheme, sizeof scheme, "%.*s", (int)len, url);
  for (char *c = scheme; *c; c++)
    if (*c >= 'A' && *c <= 'Z') *c = (char)(*c - 'A' + 'a');
  if (!strcmp(scheme, "postgresql") || !strcmp(scheme, "postgres")) return LM_OK;
  const char *plus = strchr(scheme, '+');
  size_t base = plus ? (size_t)(plus - scheme) : len;
  if (plus && (!strncmp(scheme, "postgresql", base) || !strncmp(scheme, "postgres", base)) &&
      (base == 10 || base == 8)) {
    /* SQLAlchemy's dialect+driver: the driver means nothing to libpq. The dialect stays
     * (postgres:// and postgresql:// are both libpq's), so the string only shrinks. */
    lm_log_info("%s: %s:// is SQLAlchemy's form of the URL; connecting with %.*s://", source,
                scheme, (int)base, scheme);
    memmove(url + base, url + len, strlen(url + len) + 1);
    memcpy(url, scheme, base);
    return LM_OK;
  }
  lm_error_set(err, LM_EUSAGE, "%s: a %.*s:// URL: luamigrate works with PostgreSQL only", source,
               (int)base, scheme);
  lm_error_setfield(&err->hint,
                    "give a postgresql:// URL or a key=value conninfo string (libpq's forms)");
  return LM_EUSAGE;
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
