/* A set of revisions, as indices into a DAG (0 .. lm_dag_count-1), kept in the order the
 * operation that fills it defines. Knows nothing of the graph itself. */
#ifndef LM_REVSET_H
#define LM_REVSET_H

#include <stddef.h>

/* The caller zero-initialises it and frees it with lm_revset_free. */
typedef struct lm_revset {
  int *idx;
  size_t n, cap;
} lm_revset;

void lm_revset_free(lm_revset *s);
int lm_revset_push(lm_revset *s, int idx); /* 0 or LM_ENOMEM */
int lm_revset_has(const lm_revset *s, int idx);
int lm_revset_same(const lm_revset *a, const lm_revset *b); /* same members (no duplicates) */
/* Removes idx (its first occurrence) keeping the order of the others; nothing when absent. */
void lm_revset_remove(lm_revset *s, int idx);

#endif
