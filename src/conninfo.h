/* Connection strings: checking, SQLAlchemy's schemes, and password-free display forms. */
#ifndef LM_CONNINFO_H
#define LM_CONNINFO_H

#include <libpq-fe.h>

#include "error.h"

/* A URL or conninfo libpq cannot parse: LM_EUSAGE with libpq's reason, every password it
 * quotes shown as "***". LM_OK when it parses. */
int lm_conn_check_url(const char *conninfo, lm_error *err);

/* SQLAlchemy's URLs: postgresql+DRIVER:// (and postgres+DRIVER://) is rewritten in place to
 * postgresql://, saying so on stderr; another scheme (mysql://, sqlite://) is a usage error
 * naming `source` (where the URL came from). A key=value string is left alone. */
int lm_conn_url_scheme(char *url, const char *source, lm_error *err);

/* A display form of a connection string with any password replaced by "***":
 * "postgresql://user:***@host:port/dbname". malloc'd; never NULL except on ENOMEM. */
char *lm_conn_redact(const char *conninfo);

/* Same for a live connection (what it actually connected to). */
char *lm_conn_describe(PGconn *conn);

#endif
