/* The C unit tests' check: counts a passed or failed condition, printing where it failed.
 * A test file defines `static int passed, failed;` before including this. */
#ifndef LM_TEST_CHECK_H
#define LM_TEST_CHECK_H

#include <stdio.h>

#define CHECK(cond)                                                            \
  do {                                                                         \
    if (cond) {                                                                \
      passed++;                                                                \
    } else {                                                                   \
      failed++;                                                                \
      fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond); \
    }                                                                          \
  } while (0)

#endif
