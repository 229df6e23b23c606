/* Progress and warning lines on stderr, silenced by -q (warnings are never silenced). */
#include "log.h"

#include <stdarg.h>
#include <stdio.h>

static int quiet_flag;
static int line_open; /* a progress line waits for its ending */

void lm_log_set_quiet(int quiet) {
  quiet_flag = quiet;
}

void lm_log_break(void) {
  if (!line_open) return;
  fputc('\n', stderr);
  line_open = 0;
}

void lm_log_begin(const char *fmt, ...) {
  if (quiet_flag) return;
  lm_log_break();
  va_list ap;
  va_start(ap, fmt);
  vfprintf(stderr, fmt, ap);
  va_end(ap);
  fflush(stderr);
  line_open = 1;
}

void lm_log_end(const char *fmt, ...) {
  if (quiet_flag) return;
  if (!line_open) fputs("  ...", stderr);
  va_list ap;
  va_start(ap, fmt);
  vfprintf(stderr, fmt, ap);
  va_end(ap);
  fputc('\n', stderr);
  fflush(stderr);
  line_open = 0;
}

void lm_log_info(const char *fmt, ...) {
  if (quiet_flag) return;
  lm_log_break();
  va_list ap;
  va_start(ap, fmt);
  vfprintf(stderr, fmt, ap);
  va_end(ap);
  fputc('\n', stderr);
  fflush(stderr);
}

void lm_log_warn(const char *fmt, ...) {
  lm_log_break();
  va_list ap;
  va_start(ap, fmt);
  fputs("luamigrate: warning: ", stderr);
  vfprintf(stderr, fmt, ap);
  va_end(ap);
  fputc('\n', stderr);
}
