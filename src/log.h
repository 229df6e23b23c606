/* Progress and diagnostics on stderr; stdout is kept for command output (and SQL). */
#ifndef LM_LOG_H
#define LM_LOG_H

void lm_log_set_quiet(int quiet);
void lm_log_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void lm_log_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
