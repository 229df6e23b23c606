/* Two runs of luamigrate in one process at once, one per thread, each on its own project and
 * database: `test_two_runs CONFIG_A URL_A CONFIG_B URL_B [COMMAND...]` runs
 * `luamigrate -c CONFIG --url URL COMMAND...` (default: upgrade head) in two threads started
 * together and exits 0 when both exit 0 (else 1, naming the one that failed). What each
 * database holds afterwards is the caller's to check (tests/integration/threads_spec.lua):
 * runs sharing mutable state (a held-back BEGIN, a pipeline queue, the run context) would
 * send one run's statements on the other's connection, or fail. */
#include <lauxlib.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bind/bind.h"
#include "pmain.h"

typedef struct job {
  char *argv[32];
  int argc;
  int status;
  pthread_barrier_t *start;
} job;

static void *run(void *ud) {
  job *j = ud;
  pthread_barrier_wait(j->start);
  j->status = lm_pmain_run(j->argc, j->argv, lm_preload_program, NULL);
  return NULL;
}

int main(int argc, char **argv) {
  if (argc < 5 || argc > 5 + 24) {
    fprintf(stderr, "usage: %s CONFIG_A URL_A CONFIG_B URL_B [COMMAND...]\n", argv[0]);
    return 2;
  }
  static char *def[] = {"upgrade", "head"};
  char **cmd = argc > 5 ? argv + 5 : def;
  int ncmd = argc > 5 ? argc - 5 : 2;
  pthread_barrier_t start;
  pthread_barrier_init(&start, NULL, 2);
  job jobs[2];
  pthread_t th[2];
  for (int k = 0; k < 2; k++) {
    job *j = &jobs[k];
    j->argc = 0;
    j->argv[j->argc++] = "luamigrate";
    j->argv[j->argc++] = "-c";
    j->argv[j->argc++] = argv[1 + 2 * k];
    j->argv[j->argc++] = "--url";
    j->argv[j->argc++] = argv[2 + 2 * k];
    for (int i = 0; i < ncmd; i++) j->argv[j->argc++] = cmd[i];
    j->argv[j->argc] = NULL;
    j->status = -1;
    j->start = &start;
    if (pthread_create(&th[k], NULL, run, j) != 0) {
      fprintf(stderr, "cannot start a thread\n");
      return 1;
    }
  }
  int failed = 0;
  for (int k = 0; k < 2; k++) {
    pthread_join(th[k], NULL);
    if (jobs[k].status != 0) {
      fprintf(stderr, "run %c (%s) exited %d\n", 'A' + k, argv[1 + 2 * k], jobs[k].status);
      failed = 1;
    }
  }
  pthread_barrier_destroy(&start);
  return failed;
}
