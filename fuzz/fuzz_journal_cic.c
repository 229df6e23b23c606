/* libFuzzer target: recognising a recorded CREATE INDEX CONCURRENTLY and the names in it
 * (lm_journal_cic_target, src/journal.c), which --resume uses to find the index a killed run
 * left. The input is one statement. Checks: the outputs are NUL-terminated within their
 * buffers, non-empty on success, and the table is text of the input; small buffers are
 * refused rather than overrun. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "journal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  char *sql = malloc(size + 1);
  if (!sql) return 0;
  memcpy(sql, data, size);
  sql[size] = '\0';
  static const size_t caps[] = {1, 2, 8, 64, 256};
  for (size_t i = 0; i < sizeof caps / sizeof caps[0]; i++) {
    size_t cap = caps[i];
    char *index = malloc(cap), *table = malloc(cap);
    if (!index || !table) abort();
    if (lm_journal_cic_target(sql, index, cap, table, cap)) {
      if (!memchr(index, '\0', cap) || !memchr(table, '\0', cap)) abort();
      if (!index[0] || !table[0]) abort();
      if (!strstr(sql, table)) abort();
    }
    free(index);
    free(table);
  }
  free(sql);
  return 0;
}
