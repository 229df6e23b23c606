/* Waiting for a lock held by another run (session, xact or lease mode): the shared wait
 * loop. Try, and after each failed try call lm_lock_waiter_wait, until it fails. */
#ifndef LM_LOCKWAIT_H
#define LM_LOCKWAIT_H

#include "error.h"

typedef struct lm_lock_waiter {
  double start, delay, timeout_s;
  unsigned seed;
  char last[512];
  int quiet;
} lm_lock_waiter;

/* timeout_s < 0: forever; quiet: no "waiting for" lines on stderr; seed: the jitter's. */
void lm_lock_waiter_init(lm_lock_waiter *w, double timeout_s, int quiet, unsigned seed);
/* After a failed try: LM_OK to try again (having slept), LM_ELOCK once the timeout has
 * passed ("could not obtain the <what> within N s: held by <holder>") or LM_EINTR on a
 * signal. Prints "waiting for the <what> held by <holder>" when the holder changes. */
int lm_lock_waiter_wait(lm_lock_waiter *w, const char *what, const char *holder, lm_error *err);

#endif
