/* Waiting for a lock: polls with backoff and jitter until the timeout, naming the holder
 * whenever it changes; a signal ends the wait (lockwait.h). */
#include "lockwait.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cancel.h"
#include "log.h"

static void sleep_s(double s) {
  struct timespec ts = {(time_t)s, (long)((s - (double)(time_t)s) * 1e9)};
  /* A signal cuts the sleep short; the caller then sees the cancel flag. */
  nanosleep(&ts, NULL);
}

void lm_lock_waiter_init(lm_lock_waiter *w, double timeout_s, int quiet, unsigned seed) {
  memset(w, 0, sizeof *w);
  w->start = lm_log_clock_ms() / 1e3;
  w->delay = 0.05;
  w->timeout_s = timeout_s;
  w->seed = seed;
  w->quiet = quiet;
}

int lm_lock_waiter_wait(lm_lock_waiter *w, const char *what, const char *holder, lm_error *err) {
  if (lm_cancel_requested())
    return lm_error_set(err, LM_EINTR,
                        "interrupted by signal while waiting for the %s; nothing more was "
                        "changed",
                        what);
  double waited = lm_log_clock_ms() / 1e3 - w->start;
  if (w->timeout_s >= 0 && waited >= w->timeout_s) {
    lm_error_set(err, LM_ELOCK, "could not obtain the %s within %g s: held by %s", what,
                 w->timeout_s, *holder ? holder : "another session");
    lm_error_setfield(&err->hint,
                      "another luamigrate run is working on this database; wait "
                      "for it, or raise lock_timeout");
    return LM_ELOCK;
  }
  if (!w->quiet && *holder && strcmp(holder, w->last) != 0) {
    lm_log_break();
    fprintf(lm_log_stream(), "luamigrate: waiting for the %s held by %s\n", what, holder);
    snprintf(w->last, sizeof w->last, "%s", holder);
  }
  /* Backoff to 1 s with +-25% jitter, so many waiters do not poll in step. */
  double jitter = 0.75 + 0.5 * ((double)(rand_r(&w->seed) % 1000) / 1000.0);
  double d = w->delay * jitter;
  if (w->timeout_s >= 0 && waited + d > w->timeout_s) d = w->timeout_s - waited + 0.001;
  sleep_s(d);
  w->delay = w->delay * 1.6 > 1.0 ? 1.0 : w->delay * 1.6;
  return LM_OK;
}
