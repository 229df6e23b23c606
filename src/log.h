/* Progress and diagnostics on stderr; stdout is kept for command output (and SQL). */
#ifndef LM_LOG_H
#define LM_LOG_H

void lm_log_set_quiet(int quiet);
void lm_log_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void lm_log_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* A progress line in two halves ("Running upgrade a -> b, msg" ... " (12 ms)"): anything
 * else written to stderr in between (notices, warnings, errors) first ends the open line
 * (lm_log_break), and the ending then goes on a line of its own. */
void lm_log_begin(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void lm_log_end(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void lm_log_break(void);

#endif
