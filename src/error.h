/* Structured errors shared by every C module: a caller-owned lm_error that a failing
 * function fills in, with the server's diagnostic fields when the failure came from SQL. */
#ifndef LM_ERROR_H
#define LM_ERROR_H

#include <stddef.h>

/* Return codes: 0 is success; every failure is negative. */
enum {
  LM_OK = 0,
  LM_ERR = -1,       /* generic failure, see message */
  LM_ENOMEM = -2,    /* out of memory */
  LM_EUSAGE = -3,    /* bad command line or config: exit code 2 */
  LM_ESQL = -4,      /* the server reported an error (sqlstate is set) */
  LM_ECONN = -5,     /* connection lost or could not be made */
  LM_ELOCK = -6,     /* migration lock not obtained in time */
  LM_ENOTFOUND = -7, /* a revision identifier resolved to nothing */
  LM_ESTALE = -8,    /* the version table is not what this run planned from */
  LM_EHALFDONE = -9, /* a revision is half-done (journal.h): exit code 3 */
  LM_EINTR = -10,    /* stopped by a signal outside any migration (nothing to roll back) */
};

/* All strings are malloc'd and owned by the lm_error; lm_error_clear frees them.
 * A zeroed lm_error is empty and valid. */
typedef struct lm_error {
  int code;
  char *message;   /* one line, names the thing that failed */
  char *detail;    /* server DETAIL or extra lines */
  char *hint;      /* server HINT or advice */
  char *sqlstate;  /* five characters, server errors only */
  char *statement; /* the SQL that failed */
  char *context;   /* server CONTEXT */
  int position;    /* 1-based character position in statement, 0 if unknown */
} lm_error;

void lm_error_clear(lm_error *err);

/* Hands everything src holds to dst (what dst held is freed first) and leaves src empty, so
 * each string has one owner; returns the code moved. */
int lm_error_move(lm_error *dst, lm_error *src);

/* Sets code and a printf-formatted message (replacing any previous one); returns code
 * so callers can write `return lm_error_set(err, LM_ERR, "...")`. err may be NULL. */
int lm_error_set(lm_error *err, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Prepends "prefix: " to the existing message (for adding context as errors travel up). */
void lm_error_prefix(lm_error *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Sets a malloc'd copy of s into *field (freeing the old value); NULL clears it. */
void lm_error_setfield(char **field, const char *s);

/* Writes the whole error for a user to f: message, then indented detail lines. The
 * leading "luamigrate:" goes between the escape sequences on and off ("" for none). */
#include <stdio.h>
void lm_error_print(const lm_error *err, FILE *f, const char *on, const char *off);

#endif
