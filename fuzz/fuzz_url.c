/* libFuzzer target: the database URL as the config hands it over (src/conn.c): the
 * SQLAlchemy scheme rewrite, then libpq's parse with the password hidden in its message.
 * The input is the URL. A password given as password=VALUE, or as user:VALUE@ in a
 * postgresql:// URI, of at least four bytes must never appear in the error message. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "conn.h"
#include "log.h"

/* The password a simple URL or conninfo carries, if easy to tell (else NULL): enough for
 * the property, not a parser. */
static char *easy_password(const char *s) {
  int uri = !strncmp(s, "postgresql://", 13) || !strncmp(s, "postgres://", 11);
  const char *p = NULL;
  size_t len = 0;
  for (const char *k = strstr(s, "password="); k; k = strstr(k + 1, "password=")) {
    if (uri ? (k > s && (k[-1] == '?' || k[-1] == '&')) : (k == s || k[-1] == ' ')) {
      p = k + 9;
      len = strcspn(p, uri ? "&" : " \t\n");
      /* quotes and escapes make the value differ from its text: no easy answer */
      if (!uri && (memchr(p, '\'', len) || memchr(p, '\\', len))) return NULL;
      break;
    }
  }
  if (!p && uri) {
    const char *a = strstr(s, "://") + 3;
    const char *at = strchr(a, '@'), *colon = strchr(a, ':'), *slash = strchr(a, '/');
    if (!at || !colon || colon > at || (slash && slash < at)) return NULL;
    p = colon + 1;
    len = (size_t)(at - p);
  }
  return p && len >= 4 ? strndup(p, len) : NULL;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size > 4096) return 0;
  char *url = malloc(size + 1);
  if (!url) return 0;
  memcpy(url, data, size);
  url[size] = '\0';
  lm_log_setup(-1, LM_COLOR_NEVER);
  lm_error err = {0};
  if (lm_conn_url_scheme(url, "--url", &err) == LM_OK && lm_conn_check_url(url, &err) != LM_OK) {
    /* what follows luamigrate's own words: libpq's reason */
    static const char prefix[] = "invalid database URL or connection string: ";
    const char *why = err.message;
    if (why && !strncmp(why, prefix, sizeof prefix - 1)) why += sizeof prefix - 1;
    /* libpq's words withheld: what is left is luamigrate's own fixed text, which holds none
     * of the input (a password such as "asswo" is in its word "password") */
    static const char withheld[] = "libpq cannot parse it (its message is not shown";
    if (why && !strncmp(why, withheld, sizeof withheld - 1)) why = NULL;
    char *pw = easy_password(url);
    if (pw && why && strstr(why, pw)) abort();
    free(pw);
  }
  lm_error_clear(&err);
  free(url);
  return 0;
}
