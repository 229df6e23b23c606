/* Sets of revisions as DAG indices, in the order the operation that fills them defines. */
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "revset.h"

void lm_revset_free(lm_revset *s) {
  if (!s) return;
  free(s->idx);
  s->idx = NULL;
  s->n = s->cap = 0;
}

int lm_revset_push(lm_revset *s, int idx) {
  if (s->n == s->cap) {
    size_t cap = s->cap ? s->cap * 2 : 8;
    int *v = realloc(s->idx, cap * sizeof *v);
    if (!v) return LM_ENOMEM;
    s->idx = v;
    s->cap = cap;
  }
  s->idx[s->n++] = idx;
  return LM_OK;
}

int lm_revset_has(const lm_revset *s, int idx) {
  for (size_t i = 0; i < s->n; i++)
    if (s->idx[i] == idx) return 1;
  return 0;
}

int lm_revset_same(const lm_revset *a, const lm_revset *b) {
  if (a->n != b->n) return 0;
  for (size_t i = 0; i < a->n; i++)
    if (!lm_revset_has(b, a->idx[i])) return 0;
  return 1;
}

void lm_revset_remove(lm_revset *s, int idx) {
  for (size_t i = 0; i < s->n; i++)
    if (s->idx[i] == idx) {
      memmove(s->idx + i, s->idx + i + 1, (s->n - i - 1) * sizeof *s->idx);
      s->n--;
      return;
    }
}
