/* Effective branch labels: a label names a line of revisions, and every revision on the
 * line carries it. A revision's labels are kept as an interned set of labeled revisions, so
 * spreading them is linear in the graph plus the distinct sets. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "dag.h"
#include "dag_impl.h"

static uint64_t hash_ints(const int *v, size_t n) {
  uint64_t h = 1469598103934665603ull;
  for (size_t i = 0; i < n; i++) h = (h ^ (uint64_t)(unsigned)v[i]) * 1099511628211ull;
  return h;
}

static void lshash_put(int *tab, size_t ntab, const lset *sets, int id) {
  size_t mask = ntab - 1, k = (size_t)hash_ints(sets[id].members, sets[id].nmembers) & mask;
  while (tab[k] >= 0) k = (k + 1) & mask;
  tab[k] = id;
}

/* The id of the set with these members (sorted), made when new; -1 when out of memory. */
static int ls_intern(lm_dag *dag, const int *m, size_t n) {
  if (dag->nlshash) {
    size_t mask = dag->nlshash - 1, k = (size_t)hash_ints(m, n) & mask;
    for (; dag->lshash[k] >= 0; k = (k + 1) & mask) {
      const lset *s = &dag->lsets[dag->lshash[k]];
      if (s->nmembers == n && (n == 0 || !memcmp(s->members, m, n * sizeof *m)))
        return dag->lshash[k];
    }
  }
  if (dag->nlsets == dag->caplsets) {
    size_t cap = dag->caplsets ? dag->caplsets * 2 : 16;
    lset *v = realloc(dag->lsets, cap * sizeof *v);
    if (!v) return -1;
    dag->lsets = v;
    dag->caplsets = cap;
  }
  if ((dag->nlsets + 1) * 2 > dag->nlshash) {
    size_t ntab = dag->nlshash ? dag->nlshash * 2 : 32;
    int *tab = malloc(ntab * sizeof *tab);
    if (!tab) return -1;
    for (size_t k = 0; k < ntab; k++) tab[k] = -1;
    for (size_t id = 0; id < dag->nlsets; id++) lshash_put(tab, ntab, dag->lsets, (int)id);
    free(dag->lshash);
    dag->lshash = tab;
    dag->nlshash = ntab;
  }
  lset *s = &dag->lsets[dag->nlsets];
  int *members = n ? lm_dag_arena_alloc(dag, n * sizeof *members) : NULL;
  size_t nflat = 0;
  for (size_t i = 0; i < n; i++) nflat += dag->revs[m[i]].nlabels;
  const char **flat = nflat ? lm_dag_arena_alloc(dag, nflat * sizeof *flat) : NULL;
  if ((n && !members) || (nflat && !flat)) return -1;
  if (n) memcpy(members, m, n * sizeof *m);
  nflat = 0;
  for (size_t i = 0; flat && i < n; i++) /* flat is NULL only when no member has labels */
    for (size_t j = 0; j < dag->revs[m[i]].nlabels; j++) flat[nflat++] = dag->revs[m[i]].labels[j];
  *s = (lset){members, n, flat, nflat};
  lshash_put(dag->lshash, dag->nlshash, dag->lsets, (int)dag->nlsets);
  return (int)dag->nlsets++;
}

/* The union of two sets; -1 when out of memory. */
static int ls_union(lm_dag *dag, int a, int b) {
  if (a == b || b == 0) return a;
  if (a == 0) return b;
  size_t na = dag->lsets[a].nmembers, nb = dag->lsets[b].nmembers;
  if (na + nb > dag->caplstmp) {
    int *v = realloc(dag->lstmp, (na + nb) * sizeof *v);
    if (!v) return -1;
    dag->lstmp = v;
    dag->caplstmp = na + nb;
  }
  const int *x = dag->lsets[a].members, *y = dag->lsets[b].members;
  size_t i = 0, j = 0, k = 0;
  while (i < na || j < nb) {
    if (j == nb || (i < na && x[i] < y[j]))
      dag->lstmp[k++] = x[i++];
    else if (i == na || y[j] < x[i])
      dag->lstmp[k++] = y[j++];
    else
      dag->lstmp[k++] = x[i++], j++;
  }
  return ls_intern(dag, dag->lstmp, k);
}

static int is_real_branch_point(const rev *r) {
  return r->children.n + r->dependents.n > 1;
}

/* A branch label names a line of revisions, not one: every descendant (through
 * down_revision) carries it, and so do the labeled revision's ancestors up to the nearest
 * branch point or merge point, as long as the line below the label neither branches nor
 * merges. A revision's labels are a set of labeled revisions (their labels in index
 * order), interned: in topological order each revision takes the union of its parents'
 * sets, so the cost is linear in the graph plus the distinct sets. */
int lm_dag_spread_labels(lm_dag *dag) {
  size_t n = dag->n;
  if (n == 0) return LM_OK;
  int *order = malloc(n * sizeof *order);
  unsigned char *plain = malloc(n); /* the line from here down neither branches nor merges */
  int rc = LM_ENOMEM;
  if (!order || !plain || ls_intern(dag, NULL, 0) != 0) goto done;
  for (size_t i = 0; i < n; i++) order[dag->rank[i]] = (int)i;
  for (size_t k = 0; k < n; k++) {
    rev *r = &dag->revs[order[k]];
    int s = 0;
    for (size_t j = 0; j < r->ndown && s >= 0; j++)
      s = ls_union(dag, s, dag->revs[r->parents[j]].lset);
    if (s >= 0 && r->nlabels) {
      int self = order[k], one = ls_intern(dag, &self, 1);
      s = one < 0 ? -1 : ls_union(dag, s, one);
    }
    if (s < 0) goto done;
    r->lset = s;
  }
  for (size_t k = n; k-- > 0;) {
    const rev *d = &dag->revs[order[k]];
    plain[order[k]] = !is_real_branch_point(d) && d->ndown <= 1 &&
                      (d->children.n == 0 || (d->children.n == 1 && plain[d->children.idx[0]]));
  }
  for (size_t i = 0; i < n; i++) {
    rev *r = &dag->revs[i];
    if (!r->nlabels || is_real_branch_point(r) || r->ndown != 1) continue;
    if (r->children.n == 1 && !plain[r->children.idx[0]]) continue;
    int self = (int)i, one = ls_intern(dag, &self, 1);
    if (one < 0) goto done;
    for (rev *a = &dag->revs[r->parents[0]];; a = &dag->revs[a->parents[0]]) {
      if (is_real_branch_point(a) || a->ndown > 1) break;
      if ((a->lset = ls_union(dag, a->lset, one)) < 0) goto done;
      if (a->ndown == 0) break;
    }
  }
  rc = LM_OK;
done:
  free(order);
  free(plain);
  return rc;
}
