/* Progress and warning lines on stderr, silenced by -q (warnings are never silenced). */
#include "log.h"

#include <stdarg.h>
#include <stdio.h>

static int quiet_flag;

void lm_log_set_quiet(int quiet) { quiet_flag = quiet; }

void lm_log_info(const char *fmt, ...) {
  if (quiet_flag) return;
  va_list ap;
  va_start(ap, fmt);
  vfprintf(stderr, fmt, ap);
  va_end(ap);
  fputc('\n', stderr);
  fflush(stderr);
}

void lm_log_warn(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fputs("luamigrate: warning: ", stderr);
  vfprintf(stderr, fmt, ap);
  va_end(ap);
  fputc('\n', stderr);
}
