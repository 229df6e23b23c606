/* C unit tests of the string buffer (strbuf.c): appends that grow it past its first
 * allocation, formatted and plain, and the result always NUL-terminated. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "strbuf.h"

static int failed;

static void expect(int ok, const char *what, int line) {
  if (ok) return;
  failed++;
  fprintf(stderr, "test_strbuf.c:%d: %s\n", line, what);
}

int main(void) {
  lm_strbuf b = {0};
  lm_strbuf_cat(&b, "");
  expect(b.s && b.n == 0 && b.s[0] == '\0', "an empty append leaves an empty string", __LINE__);
  const char *v[] = {"a", "bb", "ccc"};
  lm_strbuf_join(&b, v, 3);
  expect(!strcmp(b.s, "a, bb, ccc"), "join", __LINE__);
  lm_strbuf_putc(&b, '!');
  lm_strbuf_addn(&b, "xyz", 2);
  expect(!strcmp(b.s, "a, bb, ccc!xy"), "putc and addn", __LINE__);
  /* formatted appends far past the first 256 bytes, each landing whole */
  char want[8192] = "a, bb, ccc!xy";
  for (int i = 0; i < 500; i++) {
    lm_strbuf_add(&b, "[%d:%s]", i, i % 2 ? "odd" : "even");
    size_t len = strlen(want);
    snprintf(want + len, sizeof want - len, "[%d:%s]", i, i % 2 ? "odd" : "even");
  }
  expect(!strcmp(b.s, want), "500 formatted appends", __LINE__);
  expect(b.n == strlen(want) && b.n < b.cap && !b.oom, "length and capacity", __LINE__);
  free(b.s);
  printf("test_strbuf: %s\n", failed ? "FAILED" : "ok");
  return failed ? 1 : 0;
}
