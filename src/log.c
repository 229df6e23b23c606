/* Progress, detail and warning lines on stderr: step lines are silenced by -q (warnings and
 * server notices never are), detail lines need -v. Colour goes only to a stream that is a
 * terminal, unless --color says otherwise, and never with NO_COLOR or TERM=dumb under auto. */
#include "log.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static int verbosity;
static lm_color color_mode;
static int line_open; /* a progress line waits for its ending */
static int live_open; /* ... and it is a live line (lm_log_live), not a step line */
static _Thread_local size_t step_i, step_n; /* the next lm_log_begin's counter (per run) */
static _Thread_local const char *revision;  /* named in server notices (per run) */
static _Thread_local FILE *sink;            /* where this thread's lines go (NULL: stderr) */

void lm_log_set_stream(FILE *f) {
  sink = f;
}

FILE *lm_log_stream(void) {
  return sink ? sink : stderr;
}

void lm_log_setup(int level, lm_color color) {
  verbosity = level;
  color_mode = color;
}

int lm_log_verbose(void) {
  return verbosity > 0;
}

int lm_log_color(FILE *f) {
  switch (color_mode) {
    case LM_COLOR_ALWAYS: return 1;
    case LM_COLOR_NEVER: return 0;
    case LM_COLOR_AUTO: break;
  }
  /* no-color.org: any non-empty NO_COLOR turns colour off. */
  const char *no = getenv("NO_COLOR"), *term = getenv("TERM");
  if (no && *no) return 0;
  if (term && !strcmp(term, "dumb")) return 0;
  return isatty(fileno(f));
}

const char *lm_log_sgr(FILE *f, lm_style s) {
  if (!lm_log_color(f)) return "";
  switch (s) {
    case LM_STYLE_RESET: return "\033[0m";
    case LM_STYLE_ERROR: return "\033[1;31m";
    case LM_STYLE_WARN: return "\033[33m";
    case LM_STYLE_NOTICE: return "\033[36m";
    case LM_STYLE_DIM: return "\033[2m";
    case LM_STYLE_MARK: return "\033[32m";
  }
  return "";
}

void lm_log_break(void) {
  if (!line_open) return;
  fputc('\n', lm_log_stream());
  line_open = live_open = 0;
}

void lm_log_live(const char *fmt, ...) {
  const char *term = getenv("TERM");
  if (verbosity < 0 || !isatty(fileno(lm_log_stream())) || (term && !strcmp(term, "dumb"))) return;
  if (live_open)
    fputs("\r\033[K", lm_log_stream()); /* back to the start of the line, cleared */
  else
    lm_log_break();
  fprintf(lm_log_stream(), "%s", lm_log_sgr(lm_log_stream(), LM_STYLE_DIM));
  va_list ap;
  va_start(ap, fmt);
  vfprintf(lm_log_stream(), fmt, ap);
  va_end(ap);
  fprintf(lm_log_stream(), "%s", lm_log_sgr(lm_log_stream(), LM_STYLE_RESET));
  fflush(lm_log_stream());
  line_open = live_open = 1;
}

void lm_log_before_stdout(void) {
  if (!line_open) return;
  struct stat out, err;
  if (fstat(STDOUT_FILENO, &out) || fstat(STDERR_FILENO, &err)) return;
  if (out.st_dev == err.st_dev && out.st_ino == err.st_ino) lm_log_break();
}

void lm_log_step(size_t i, size_t total) {
  step_i = i;
  step_n = total;
}

void lm_log_begin(const char *fmt, ...) {
  size_t i = step_i, n = step_n;
  step_i = step_n = 0;
  if (verbosity < 0) return;
  lm_log_break();
  if (n > 1 && isatty(fileno(lm_log_stream()))) {
    int width = snprintf(NULL, 0, "%zu", n);
    fprintf(lm_log_stream(), "%s[%*zu/%zu]%s ", lm_log_sgr(lm_log_stream(), LM_STYLE_DIM), width, i,
            n, lm_log_sgr(lm_log_stream(), LM_STYLE_RESET));
  }
  va_list ap;
  va_start(ap, fmt);
  vfprintf(lm_log_stream(), fmt, ap);
  va_end(ap);
  fflush(lm_log_stream());
  line_open = 1;
}

void lm_log_end(const char *fmt, ...) {
  if (verbosity < 0) return;
  if (live_open) lm_log_break(); /* the ending belongs to the step line, not the live one */
  if (!line_open) fputs("  ...", lm_log_stream());
  va_list ap;
  va_start(ap, fmt);
  vfprintf(lm_log_stream(), fmt, ap);
  va_end(ap);
  fputc('\n', lm_log_stream());
  fflush(lm_log_stream());
  line_open = live_open = 0;
}

double lm_log_clock_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

void lm_log_end_ms(double ms) {
  lm_log_end(" %s(%.0f ms)%s", lm_log_sgr(lm_log_stream(), LM_STYLE_DIM), ms,
             lm_log_sgr(lm_log_stream(), LM_STYLE_RESET));
}

void lm_log_statement_end(double ms) {
  if (verbosity <= 0) return;
  if (live_open) lm_log_break();
  /* Interrupted (by a notice): say which line this ending belongs to. */
  if (!line_open) fputs("  sql: done", lm_log_stream());
  fprintf(lm_log_stream(), " %s(%.2f ms)%s\n", lm_log_sgr(lm_log_stream(), LM_STYLE_DIM), ms,
          lm_log_sgr(lm_log_stream(), LM_STYLE_RESET));
  fflush(lm_log_stream());
  line_open = 0;
}

static void vline(const char *fmt, va_list ap) {
  lm_log_break();
  vfprintf(lm_log_stream(), fmt, ap);
  fputc('\n', lm_log_stream());
  fflush(lm_log_stream());
}

void lm_log_info(const char *fmt, ...) {
  if (verbosity < 0) return;
  va_list ap;
  va_start(ap, fmt);
  vline(fmt, ap);
  va_end(ap);
}

void lm_log_detail(const char *fmt, ...) {
  if (verbosity <= 0) return;
  va_list ap;
  va_start(ap, fmt);
  vline(fmt, ap);
  va_end(ap);
}

void lm_log_warn(const char *fmt, ...) {
  lm_log_break();
  fprintf(lm_log_stream(), "%sluamigrate: warning:%s ", lm_log_sgr(lm_log_stream(), LM_STYLE_WARN),
          lm_log_sgr(lm_log_stream(), LM_STYLE_RESET));
  va_list ap;
  va_start(ap, fmt);
  vfprintf(lm_log_stream(), fmt, ap);
  va_end(ap);
  fputc('\n', lm_log_stream());
  fflush(lm_log_stream());
}

/* Writes text line by line, the first line after `first`, the others after `more`. */
static void lines(const char *text, size_t len, const char *first, const char *more) {
  const char *p = text, *end = text + len;
  const char *lead = first;
  if (p == end) fputs(first, lm_log_stream());
  while (p < end) {
    const char *nl = memchr(p, '\n', (size_t)(end - p));
    size_t n = nl ? (size_t)(nl - p) : (size_t)(end - p);
    fprintf(lm_log_stream(), "%s%s%.*s", p == text ? "" : "\n", lead, (int)n, p);
    lead = more;
    if (!nl) break;
    p = nl + 1;
  }
}

void lm_log_statement(const char *sql, int n, const char *const *values) {
  if (verbosity <= 0) return;
  lm_log_break();
  size_t len = strlen(sql);
  while (len && strchr("; \t\n", sql[len - 1])) len--;
  const char *dim = lm_log_sgr(lm_log_stream(), LM_STYLE_DIM),
             *off = lm_log_sgr(lm_log_stream(), LM_STYLE_RESET);
  fprintf(lm_log_stream(), "%s", dim);
  lines(sql, len, "  sql: ", "       ");
  for (int i = 0; i < n; i++) {
    if (values[i])
      fprintf(lm_log_stream(), "\n       $%d = '%s'", i + 1, values[i]);
    else
      fprintf(lm_log_stream(), "\n       $%d = NULL", i + 1);
  }
  fprintf(lm_log_stream(), "%s", off);
  fflush(lm_log_stream());
  line_open = 1;
}

void lm_log_set_revision(const char *rev) {
  revision = rev;
}

void lm_log_notice(const char *severity, const char *message, const char *detail,
                   const char *hint) {
  lm_log_break();
  const char *sev = severity ? severity : "NOTICE";
  lm_style style = !strcmp(sev, "WARNING") ? LM_STYLE_WARN : LM_STYLE_NOTICE;
  fprintf(lm_log_stream(), "%sserver %s%s%s:%s ", lm_log_sgr(lm_log_stream(), style), sev,
          revision ? " in " : "", revision ? revision : "",
          lm_log_sgr(lm_log_stream(), LM_STYLE_RESET));
  const char *msg = message ? message : "";
  lines(msg, strlen(msg), "", "  ");
  fputc('\n', lm_log_stream());
  if (detail && *detail) {
    lines(detail, strlen(detail), "  detail: ", "          ");
    fputc('\n', lm_log_stream());
  }
  if (hint && *hint) {
    lines(hint, strlen(hint), "  hint: ", "        ");
    fputc('\n', lm_log_stream());
  }
  fflush(lm_log_stream());
}
