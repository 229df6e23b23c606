/* Progress and diagnostics on stderr; stdout is kept for command output (and SQL). Also
 * decides whether a stream gets colour and whether step lines carry a progress counter. */
#ifndef LM_LOG_H
#define LM_LOG_H

#include <stddef.h>
#include <stdio.h>

typedef enum lm_color { LM_COLOR_AUTO, LM_COLOR_ALWAYS, LM_COLOR_NEVER } lm_color;

typedef enum lm_style {
  LM_STYLE_RESET,
  LM_STYLE_ERROR,  /* the "luamigrate:" of an error */
  LM_STYLE_WARN,   /* warnings and server WARNINGs */
  LM_STYLE_NOTICE, /* server NOTICE, INFO, LOG, DEBUG */
  LM_STYLE_DIM,    /* durations, progress counters, SQL in -v */
  LM_STYLE_MARK,   /* (head), (current) and the like in command output */
} lm_style;

/* verbosity: -1 (-q) no step lines, 0 the default, 1 (-v) also connection, lock and SQL
 * detail. Colour: LM_COLOR_AUTO means a terminal, NO_COLOR unset or empty, TERM not dumb. */
void lm_log_setup(int verbosity, lm_color color);
/* This thread's lines (progress, warnings, server notices) go to f, NULL: stderr again (a
 * fleet's worker thread captures its target's, printed in the target's block). */
void lm_log_set_stream(FILE *f);
/* This thread's stream for them: stderr, or the capture lm_log_set_stream gave. */
FILE *lm_log_stream(void);
int lm_log_verbose(void);
/* Whether escape codes are written to f (stdout or stderr). */
int lm_log_color(FILE *f);
/* The escape sequence for style s on f, or "" when f gets no colour. */
const char *lm_log_sgr(FILE *f, lm_style s);

void lm_log_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void lm_log_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* -v only: a line of detail (connection, lock, timing). */
void lm_log_detail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* A progress line in two halves ("Running upgrade a -> b, msg" ... " (12 ms)"): anything
 * else written to stderr in between (notices, warnings, errors) first ends the open line
 * (lm_log_break), and the ending then goes on a line of its own. */
void lm_log_begin(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void lm_log_end(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* The ending " (12 ms)" of an open line. */
void lm_log_end_ms(double ms);
/* Milliseconds on the monotonic clock: what every duration the run shows, and every
 * deadline it keeps, is measured with. */
double lm_log_clock_ms(void);
void lm_log_break(void);
/* A live line (a backfill's rows so far) rewritten in place on a terminal: each call replaces
 * the last; anything written to stderr after it (the next step line, a warning, the step's
 * ending) first ends it with a newline, so its last state stays on the screen. Nothing when
 * stderr is not a terminal, TERM is dumb, or -q. */
void lm_log_live(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Call before writing to stdout while a step line may be open (dry-run traces): when stdout
 * and stderr are the same terminal or file, the open line is ended first so the two do not
 * run together; separate streams are left as they are. */
void lm_log_before_stdout(void);

/* Step `i` (1-based) of `total` is about to begin: when stderr is a terminal and the run
 * has more than one step, the next lm_log_begin line starts with "[ i/total] ". */
void lm_log_step(size_t i, size_t total);
/* -v only: opens a line showing a statement about to run, with its parameters; end it with
 * lm_log_statement_end (or lm_log_break when it failed). */
void lm_log_statement(const char *sql, int n, const char *const *values);
void lm_log_statement_end(double ms);

/* The revision whose migration runs now (NULL: none), named in server notices. The string
 * must live until it is replaced. */
void lm_log_set_revision(const char *revision);
/* A server notice: severity, message, and optional detail and hint. */
void lm_log_notice(const char *severity, const char *message, const char *detail, const char *hint);

#endif
