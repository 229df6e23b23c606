/* The revision DAG: storage (hash-indexed; strings in one arena, adjacency as slices of one
 * array, effective labels as interned sets), validation, heads, identifier resolution,
 * upgrade/downgrade plans and version-table transitions. Revision indices follow add
 * order, which callers make file-name order; that order is the tie-break wherever the
 * graph leaves a choice (documented behaviour). Every walk is iterative and none is
 * repeated per revision: graphs reach 100,000 revisions. */
#include "dag.h"

#include <ctype.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Adjacency: a slice of one array shared by the whole graph (filled by lm_dag_finish). */
typedef struct adj {
  int *idx;
  uint32_t n;
} adj;

/* One revision. Strings and arrays live in the graph's arena: nothing is allocated per
 * revision. */
typedef struct rev {
  const char *id, *path, *doc; /* doc: the first paragraph of the file's leading comment */
  const char **down_ids, **labels, **dep_ids;
  int *parents;   /* resolved down_revision, same order */
  int *deps;      /* resolved depends_on */
  adj children;   /* via down_revision */
  adj dependents; /* via depends_on */
  uint32_t ndown, nlabels, ndeps_raw, ndeps;
  int lset; /* effective labels (own and inherited): a label set, 0 = none */
} rev;

typedef struct label_ent {
  const char *label;
  int idx;
} label_ent;

/* A block of the arena; blocks never move, so pointers into them stay valid. */
typedef struct block {
  struct block *next;
  size_t used, cap;
  char data[];
} block;

/* An interned set of labeled revisions (sorted indices) and its labels, flattened in
 * index order: the effective labels of every revision that carries it. */
typedef struct lset {
  const int *members;
  size_t nmembers;
  const char **flat;
  size_t nflat;
} lset;

/* Scratch for the bounded ancestry walks of lm_dag_step (visit stamps, a stack). */
typedef struct scratch {
  unsigned *visit;
  unsigned gen;
  int *stack;
} scratch;

struct lm_dag {
  rev *revs;
  size_t n, cap;
  block *arena;
  int *slots; /* open addressing on id, -1 empty */
  size_t nslots;
  int *sorted; /* indices sorted by id, for prefix lookup */
  label_ent *labels;
  size_t nlabels;
  int *edges; /* children and dependents slices */
  int *rank;  /* position in a topological order (parents and deps first) */
  lset *lsets;
  size_t nlsets, caplsets;
  int *lshash; /* open addressing on lset members, -1 empty */
  size_t nlshash;
  int *lstmp; /* union buffer */
  size_t caplstmp;
  scratch *ws;
  int finished;
};

/* ---- revsets ------------------------------------------------------------------------ */

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

/* ---- storage ------------------------------------------------------------------------ */

static uint64_t hash_str(const char *s) {
  uint64_t h = 1469598103934665603ull;
  for (; *s; s++) h = (h ^ (unsigned char)*s) * 1099511628211ull;
  return h;
}

lm_dag *lm_dag_new(void) {
  return calloc(1, sizeof(lm_dag));
}

#define ARENA_BLOCK ((size_t)256 * 1024)

/* size bytes from the arena, aligned for pointers; NULL when out of memory. */
static void *arena_alloc(lm_dag *dag, size_t size);

/* As arena_alloc, zeroed: for the edge lists, read only below counts that grow as they fill,
 * which the static analyzer cannot follow (a few bytes a revision). */
static void *arena_zalloc(lm_dag *dag, size_t size) {
  void *p = arena_alloc(dag, size);
  if (p) memset(p, 0, size);
  return p;
}

static void *arena_alloc(lm_dag *dag, size_t size) {
  size = (size + 7) & ~(size_t)7;
  block *b = dag->arena;
  if (!b || b->cap - b->used < size) {
    size_t cap = size > ARENA_BLOCK / 4 ? size : ARENA_BLOCK - sizeof(block);
    block *nb = malloc(sizeof(block) + cap);
    if (!nb) return NULL;
    nb->used = 0;
    nb->cap = cap;
    if (b && size > ARENA_BLOCK / 4) { /* a big one goes behind the current block */
      nb->next = b->next;
      b->next = nb;
      nb->used = size;
      return nb->data;
    }
    nb->next = b;
    dag->arena = b = nb;
  }
  void *p = b->data + b->used;
  b->used += size;
  return p;
}

static const char *arena_strndup(lm_dag *dag, const char *s, size_t len) {
  char *p = arena_alloc(dag, len + 1);
  if (!p) return NULL;
  memcpy(p, s, len);
  p[len] = '\0';
  return p;
}

static const char *arena_strdup(lm_dag *dag, const char *s) {
  return arena_strndup(dag, s, strlen(s));
}

void lm_dag_free(lm_dag *dag) {
  if (!dag) return;
  for (block *b = dag->arena, *next; b; b = next) {
    next = b->next;
    free(b);
  }
  free(dag->revs);
  free(dag->slots);
  free(dag->sorted);
  free(dag->labels);
  free(dag->edges);
  free(dag->rank);
  free(dag->lsets);
  free(dag->lshash);
  free(dag->lstmp);
  if (dag->ws) {
    free(dag->ws->visit);
    free(dag->ws->stack);
    free(dag->ws);
  }
  free(dag);
}

static int slot_insert(int *slots, size_t nslots, const rev *revs, int idx) {
  size_t mask = nslots - 1, i = (size_t)hash_str(revs[idx].id) & mask;
  while (slots[i] >= 0) i = (i + 1) & mask;
  slots[i] = idx;
  return LM_OK;
}

static int grow_slots(lm_dag *dag) {
  size_t nslots = dag->nslots ? dag->nslots * 2 : 64;
  int *slots = malloc(nslots * sizeof *slots);
  if (!slots) return LM_ENOMEM;
  for (size_t i = 0; i < nslots; i++) slots[i] = -1;
  for (size_t i = 0; i < dag->n; i++) slot_insert(slots, nslots, dag->revs, (int)i);
  free(dag->slots);
  dag->slots = slots;
  dag->nslots = nslots;
  return LM_OK;
}

int lm_dag_reserve(lm_dag *dag, size_t n) {
  if (n > dag->cap) {
    rev *v = realloc(dag->revs, n * sizeof *v);
    if (!v) return LM_ENOMEM;
    dag->revs = v;
    dag->cap = n;
  }
  while (n * 2 > dag->nslots)
    if (grow_slots(dag)) return LM_ENOMEM;
  return LM_OK;
}

int lm_dag_find(const lm_dag *dag, const char *id) {
  if (!dag->nslots) return -1;
  size_t mask = dag->nslots - 1, i = (size_t)hash_str(id) & mask;
  while (dag->slots[i] >= 0) {
    if (!strcmp(dag->revs[dag->slots[i]].id, id)) return dag->slots[i];
    i = (i + 1) & mask;
  }
  return -1;
}

static const char **copy_strs(lm_dag *dag, const char *const *v, size_t n, int *oom) {
  if (!n) return NULL;
  const char **out = arena_alloc(dag, n * sizeof *out);
  if (!out) {
    *oom = 1;
    return NULL;
  }
  for (size_t i = 0; i < n; i++)
    if (!(out[i] = arena_strdup(dag, v[i]))) *oom = 1;
  return out;
}

static int bad_id(const char *id, char *bad) {
  for (const char *p = id; *p; p++)
    if (*p == '@' || *p == '-' || *p == '+' || *p == ':' || isspace((unsigned char)*p)) {
      *bad = *p;
      return 1;
    }
  return 0;
}

/* 1 when s is well-formed UTF-8 without control characters. */
static int clean_utf8(const char *s) {
  const unsigned char *p = (const unsigned char *)s;
  while (*p) {
    unsigned c = *p;
    size_t n = c < 0x80 ? 0 : (c >> 5) == 6 ? 1 : (c >> 4) == 14 ? 2 : (c >> 3) == 30 ? 3 : 9;
    if (n == 9 || (n == 1 && c < 0xc2) || (n == 0 && (c < 0x20 || c == 0x7f))) return 0;
    unsigned cp = n == 0 ? c : c & (0x3f >> n);
    for (size_t i = 1; i <= n; i++) {
      if ((p[i] & 0xc0) != 0x80) return 0;
      cp = (cp << 6) | (p[i] & 0x3f);
    }
    if ((n == 2 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) ||
        (n == 3 && (cp < 0x10000 || cp > 0x10ffff)))
      return 0;
    p += n + 1;
  }
  return 1;
}

int lm_dag_add(lm_dag *dag, const char *id, const char *const *down, size_t ndown,
               const char *const *labels, size_t nlabels, const char *const *deps, size_t ndeps,
               const char *path, const char *doc, lm_error *err) {
  char bad;
  if (dag->finished)
    return lm_error_set(err, LM_ERR, "revision added after the graph was finished");
  if (!id || !*id) return lm_error_set(err, LM_EUSAGE, "%s: empty revision identifier", path);
  if (bad_id(id, &bad))
    return lm_error_set(err, LM_EUSAGE,
                        "%s: Character(s) '%c' not allowed in revision identifier '%s'", path, bad,
                        id);
  if (!clean_utf8(id))
    return lm_error_set(err, LM_EUSAGE,
                        "%s: revision identifier is not valid UTF-8 text (it holds invalid or "
                        "control bytes)",
                        path);
  if (strlen(id) > 32)
    return lm_error_set(err, LM_EUSAGE,
                        "%s: revision identifier '%s' is longer than 32 characters (the version "
                        "table's column is varchar(32))",
                        path, id);
  int dup = lm_dag_find(dag, id);
  if (dup >= 0)
    return lm_error_set(err, LM_EUSAGE, "Revision %s is present more than once: in %s and in %s",
                        id, dag->revs[dup].path, path);
  for (size_t i = 0; i < ndown; i++)
    if (!down[i] || !*down[i])
      return lm_error_set(err, LM_EUSAGE, "%s: empty down_revision entry", path);
  if (dag->n == dag->cap) {
    size_t cap = dag->cap ? dag->cap * 2 : 64;
    rev *v = realloc(dag->revs, cap * sizeof *v);
    if (!v) return lm_error_set(err, LM_ENOMEM, "out of memory");
    dag->revs = v;
    dag->cap = cap;
  }
  if ((dag->n + 1) * 2 > dag->nslots && grow_slots(dag))
    return lm_error_set(err, LM_ENOMEM, "out of memory");
  rev *r = &dag->revs[dag->n];
  memset(r, 0, sizeof *r);
  int oom = 0;
  r->id = arena_strdup(dag, id);
  r->path = arena_strdup(dag, path ? path : id);
  const char *para = doc ? strstr(doc, "\n\n") : NULL;
  r->doc = para ? arena_strndup(dag, doc, (size_t)(para - doc)) : arena_strdup(dag, doc ? doc : "");
  r->down_ids = copy_strs(dag, down, ndown, &oom);
  r->ndown = (uint32_t)ndown;
  r->labels = copy_strs(dag, labels, nlabels, &oom);
  r->nlabels = (uint32_t)nlabels;
  r->dep_ids = copy_strs(dag, deps, ndeps, &oom);
  r->ndeps_raw = (uint32_t)ndeps;
  int idx = (int)dag->n++;
  slot_insert(dag->slots, dag->nslots, dag->revs, idx);
  if (oom || !r->id || !r->path || !r->doc) return lm_error_set(err, LM_ENOMEM, "out of memory");
  return idx;
}

/* ---- finish: resolve, validate ------------------------------------------------------- */

static int cmp_label(const void *a, const void *b) {
  return strcmp(((const label_ent *)a)->label, ((const label_ent *)b)->label);
}

static int find_label(const lm_dag *dag, const char *label) {
  size_t lo = 0, hi = dag->nlabels;
  while (lo < hi) {
    size_t mid = (lo + hi) / 2;
    int c = strcmp(dag->labels[mid].label, label);
    if (!c) return dag->labels[mid].idx;
    if (c < 0)
      lo = mid + 1;
    else
      hi = mid;
  }
  return -1;
}

/* Indices whose id starts with prefix: [*first, *first + count) in dag->sorted. */
static size_t prefix_range(const lm_dag *dag, const char *prefix, size_t *first) {
  size_t lo = 0, hi = dag->n, len = strlen(prefix);
  while (lo < hi) {
    size_t mid = (lo + hi) / 2;
    if (strcmp(dag->revs[dag->sorted[mid]].id, prefix) < 0)
      lo = mid + 1;
    else
      hi = mid;
  }
  *first = lo;
  size_t end = lo;
  while (end < dag->n && !strncmp(dag->revs[dag->sorted[end]].id, prefix, len)) end++;
  return end - lo;
}

/* Cycle check: Kahn over parents+deps; whatever is left is on or behind a cycle. The order
 * Kahn finds is kept as dag->rank: parents and dependencies rank below their revision. */
static int check_cycles(lm_dag *dag, lm_error *err) {
  size_t n = dag->n;
  int *indeg = calloc(n ? n : 1, sizeof *indeg), *queue = malloc((n ? n : 1) * sizeof *queue);
  int rc = LM_OK;
  if (!indeg || !queue) {
    rc = lm_error_set(err, LM_ENOMEM, "out of memory");
    goto cleanup;
  }
  for (size_t i = 0; i < n; i++) indeg[i] = (int)(dag->revs[i].ndown + dag->revs[i].ndeps);
  size_t qh = 0, qt = 0;
  for (size_t i = 0; i < n; i++)
    if (!indeg[i]) queue[qt++] = (int)i;
  while (qh < qt) {
    rev *r = &dag->revs[queue[qh++]];
    for (size_t j = 0; j < r->children.n; j++)
      if (--indeg[r->children.idx[j]] == 0) queue[qt++] = r->children.idx[j];
    for (size_t j = 0; j < r->dependents.n; j++)
      if (--indeg[r->dependents.idx[j]] == 0) queue[qt++] = r->dependents.idx[j];
  }
  if (qt < n) {
    char buf[512] = "";
    size_t used = 0, shown = 0;
    for (size_t i = 0; i < n && shown < 8; i++) {
      if (!indeg[i]) continue;
      used += (size_t)snprintf(buf + used, sizeof buf - used, "%s%s", shown ? ", " : "",
                               dag->revs[i].id);
      if (used >= sizeof buf) break;
      shown++;
    }
    rc = lm_error_set(err, LM_EUSAGE, "Cycle is detected in revisions (%s%s)", buf,
                      n - qt > shown ? ", ..." : "");
    goto cleanup;
  }
  /* indeg is all zeros now: it becomes the rank. */
  for (size_t k = 0; k < n; k++) indeg[queue[k]] = (int)k;
  dag->rank = indeg;
  indeg = NULL;
cleanup:
  free(indeg);
  free(queue);
  return rc;
}

/* ---- label sets ---------------------------------------------------------------------- */

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
  int *members = n ? arena_alloc(dag, n * sizeof *members) : NULL;
  size_t nflat = 0;
  for (size_t i = 0; i < n; i++) nflat += dag->revs[m[i]].nlabels;
  const char **flat = nflat ? arena_alloc(dag, nflat * sizeof *flat) : NULL;
  if ((n && !members) || (nflat && !flat)) return -1;
  if (n) memcpy(members, m, n * sizeof *m);
  nflat = 0;
  for (size_t i = 0; i < n; i++)
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
static int spread_labels(lm_dag *dag) {
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

int lm_dag_finish(lm_dag *dag, lm_error *err) {
  size_t n = dag->n, total_labels = 0;
  int rc = LM_OK;
  /* Sorted ids for prefix search, sorted labels for label lookup. */
  dag->sorted = malloc((n ? n : 1) * sizeof *dag->sorted);
  label_ent *byid = malloc((n ? n : 1) * sizeof *byid);
  if (!dag->sorted || !byid) {
    free(byid);
    return lm_error_set(err, LM_ENOMEM, "out of memory");
  }
  for (size_t i = 0; i < n; i++) byid[i] = (label_ent){dag->revs[i].id, (int)i};
  qsort(byid, n, sizeof *byid, cmp_label);
  for (size_t i = 0; i < n; i++) dag->sorted[i] = byid[i].idx;
  free(byid);
  for (size_t i = 0; i < n; i++) total_labels += dag->revs[i].nlabels;
  dag->labels = malloc((total_labels ? total_labels : 1) * sizeof *dag->labels);
  if (!dag->labels) return lm_error_set(err, LM_ENOMEM, "out of memory");
  for (size_t i = 0; i < n; i++)
    for (size_t j = 0; j < dag->revs[i].nlabels; j++) {
      const char *l = dag->revs[i].labels[j];
      int other = lm_dag_find(dag, l);
      if (other >= 0)
        return lm_error_set(err, LM_EUSAGE,
                            "Branch name '%s' in revision %s (%s) is also a revision identifier", l,
                            dag->revs[i].id, dag->revs[i].path);
      dag->labels[dag->nlabels++] = (label_ent){l, (int)i};
    }
  qsort(dag->labels, dag->nlabels, sizeof *dag->labels, cmp_label);
  for (size_t k = 1; k < dag->nlabels; k++)
    if (!strcmp(dag->labels[k].label, dag->labels[k - 1].label)) {
      int a = dag->labels[k - 1].idx, b = dag->labels[k].idx;
      if (a > b) {
        int t = a;
        a = b;
        b = t;
      }
      return lm_error_set(err, LM_EUSAGE,
                          "Branch name '%s' in revision %s already used by revision %s",
                          dag->labels[k].label, dag->revs[b].id, dag->revs[a].id);
    }
  /* Parents and dependencies; children and dependents are counted here, then laid out as
   * slices of one array in the same order. */
  size_t nedges = 0;
  for (size_t i = 0; i < n; i++) {
    rev *r = &dag->revs[i];
    if (r->ndown && !(r->parents = arena_zalloc(dag, r->ndown * sizeof *r->parents)))
      return lm_error_set(err, LM_ENOMEM, "out of memory");
    for (size_t j = 0; j < r->ndown; j++) {
      int p = lm_dag_find(dag, r->down_ids[j]);
      if (p < 0)
        return lm_error_set(err, LM_EUSAGE, "Revision %s referenced from %s (%s) is not present",
                            r->down_ids[j], r->id, r->path);
      if (p == (int)i)
        return lm_error_set(err, LM_EUSAGE, "Self-loop is detected in revisions (%s): %s", r->id,
                            r->path);
      for (size_t k = 0; k < j; k++)
        if (r->parents[k] == p)
          return lm_error_set(err, LM_EUSAGE, "%s: down_revision names %s twice", r->path,
                              r->down_ids[j]);
      r->parents[j] = p;
      dag->revs[p].children.n++;
      nedges++;
    }
    if (r->ndeps_raw && !(r->deps = arena_zalloc(dag, r->ndeps_raw * sizeof *r->deps)))
      return lm_error_set(err, LM_ENOMEM, "out of memory");
    for (size_t j = 0; j < r->ndeps_raw; j++) {
      const char *d = r->dep_ids[j];
      int p = lm_dag_find(dag, d);
      if (p < 0) p = find_label(dag, d);
      if (p < 0) {
        size_t first, cnt = prefix_range(dag, d, &first);
        if (cnt == 1) p = dag->sorted[first];
      }
      if (p < 0)
        return lm_error_set(err, LM_EUSAGE, "Revision %s referenced from %s (%s) is not present", d,
                            r->id, r->path);
      if (p == (int)i)
        return lm_error_set(err, LM_EUSAGE, "Self-loop is detected in revisions (%s): %s", r->id,
                            r->path);
      int seen = 0;
      for (size_t k = 0; k < r->ndown; k++) seen |= r->parents[k] == p;
      for (size_t k = 0; k < r->ndeps; k++) seen |= r->deps[k] == p;
      if (seen) continue;
      r->deps[r->ndeps++] = p;
      dag->revs[p].dependents.n++;
      nedges++;
    }
  }
  if (!(dag->edges = malloc((nedges ? nedges : 1) * sizeof *dag->edges)))
    return lm_error_set(err, LM_ENOMEM, "out of memory");
  int *e = dag->edges;
  for (size_t i = 0; i < n; i++) {
    rev *r = &dag->revs[i];
    r->children.idx = e;
    e += r->children.n;
    r->children.n = 0;
    r->dependents.idx = e;
    e += r->dependents.n;
    r->dependents.n = 0;
  }
  for (size_t i = 0; i < n; i++) {
    const rev *r = &dag->revs[i];
    for (size_t j = 0; j < r->ndown; j++) {
      adj *c = &dag->revs[r->parents[j]].children;
      c->idx[c->n++] = (int)i;
    }
    for (size_t j = 0; j < r->ndeps; j++) {
      adj *c = &dag->revs[r->deps[j]].dependents;
      c->idx[c->n++] = (int)i;
    }
  }
  if ((rc = check_cycles(dag, err))) return rc;
  if ((rc = spread_labels(dag))) return lm_error_set(err, rc, "out of memory");
  if (!(dag->ws = calloc(1, sizeof *dag->ws))) return lm_error_set(err, LM_ENOMEM, "out of memory");
  dag->finished = 1;
  return LM_OK;
}

/* ---- accessors ---------------------------------------------------------------------- */

size_t lm_dag_count(const lm_dag *dag) {
  return dag->n;
}
const char *lm_dag_id(const lm_dag *dag, int idx) {
  return dag->revs[idx].id;
}
const char *lm_dag_path(const lm_dag *dag, int idx) {
  return dag->revs[idx].path;
}
const char *lm_dag_doc(const lm_dag *dag, int idx) {
  return dag->revs[idx].doc;
}
size_t lm_dag_parents(const lm_dag *dag, int idx, const int **out) {
  *out = dag->revs[idx].parents;
  return dag->revs[idx].ndown;
}
size_t lm_dag_children(const lm_dag *dag, int idx, const int **out) {
  *out = dag->revs[idx].children.idx;
  return dag->revs[idx].children.n;
}
size_t lm_dag_labels(const lm_dag *dag, int idx, const char *const **out) {
  if (!dag->lsets) { /* not finished */
    *out = NULL;
    return 0;
  }
  const lset *s = &dag->lsets[dag->revs[idx].lset];
  *out = s->flat;
  return s->nflat;
}
size_t lm_dag_deps(const lm_dag *dag, int idx, const int **out) {
  *out = dag->revs[idx].deps;
  return dag->revs[idx].ndeps;
}
int lm_dag_is_head(const lm_dag *dag, int idx) {
  return dag->revs[idx].children.n == 0;
}
int lm_dag_is_real_head(const lm_dag *dag, int idx) {
  return dag->revs[idx].children.n == 0 && dag->revs[idx].dependents.n == 0;
}
int lm_dag_is_branch_point(const lm_dag *dag, int idx) {
  return dag->revs[idx].children.n > 1;
}
int lm_dag_is_merge_point(const lm_dag *dag, int idx) {
  return dag->revs[idx].ndown > 1;
}

int lm_dag_heads(const lm_dag *dag, lm_revset *out) {
  for (size_t i = 0; i < dag->n; i++)
    if (lm_dag_is_head(dag, (int)i) && lm_revset_push(out, (int)i)) return LM_ENOMEM;
  return LM_OK;
}

int lm_dag_bases(const lm_dag *dag, lm_revset *out) {
  for (size_t i = 0; i < dag->n; i++)
    if (dag->revs[i].ndown == 0 && lm_revset_push(out, (int)i)) return LM_ENOMEM;
  return LM_OK;
}

static int real_heads(const lm_dag *dag, lm_revset *out) {
  for (size_t i = 0; i < dag->n; i++)
    if (lm_dag_is_real_head(dag, (int)i) && lm_revset_push(out, (int)i)) return LM_ENOMEM;
  return LM_OK;
}

char *lm_dag_format_ids(const lm_dag *dag, const int *idx, size_t n) {
  if (n == 0) return strdup("<base>");
  size_t len = 1;
  for (size_t i = 0; i < n; i++) len += strlen(dag->revs[idx[i]].id) + 2;
  char *s = malloc(len);
  if (!s) return NULL;
  char *end = s;
  for (size_t i = 0; i < n; i++) {
    const char *id = dag->revs[idx[i]].id;
    size_t l = strlen(id);
    if (i) {
      memcpy(end, ", ", 2);
      end += 2;
    }
    memcpy(end, id, l);
    end += l;
  }
  *end = '\0';
  return s;
}

/* ---- marking walks ------------------------------------------------------------------ */

/* Marks (mark[i] |= bit) the ancestors-or-self (up = 0) or descendants-or-self (up = 1) of
 * the seeds, through parents/children and, with deps, dependencies/dependents. */
int lm_dag_mark(const lm_dag *dag, const int *seeds, size_t nseeds, int up, int deps,
                unsigned char *mark, unsigned char bit) {
  int *stack = malloc((dag->n ? dag->n : 1) * sizeof *stack);
  if (!stack) return LM_ENOMEM;
  size_t sp = 0;
  for (size_t i = 0; i < nseeds; i++)
    if (!(mark[seeds[i]] & bit)) {
      mark[seeds[i]] |= bit;
      stack[sp++] = seeds[i];
    }
  while (sp) {
    const rev *r = &dag->revs[stack[--sp]];
    const int *a = up ? r->children.idx : r->parents;
    size_t na = up ? r->children.n : r->ndown;
    const int *b = up ? r->dependents.idx : r->deps;
    size_t nb = !deps ? 0 : up ? r->dependents.n : r->ndeps;
    for (size_t j = 0; j < na; j++)
      if (!(mark[a[j]] & bit)) {
        mark[a[j]] |= bit;
        stack[sp++] = a[j];
      }
    for (size_t j = 0; j < nb; j++)
      if (!(mark[b[j]] & bit)) {
        mark[b[j]] |= bit;
        stack[sp++] = b[j];
      }
  }
  free(stack);
  return LM_OK;
}

/* Topological order (parents and deps first, ties by lowest index) of the revisions with
 * mark[i] & bit, appended to out. */
static int topo(const lm_dag *dag, const unsigned char *mark, unsigned char bit, lm_revset *out) {
  size_t n = dag->n;
  int *indeg = calloc(n ? n : 1, sizeof *indeg), *heap = malloc((n ? n : 1) * sizeof *heap);
  int rc = LM_OK;
  if (!indeg || !heap) {
    rc = LM_ENOMEM;
    goto cleanup;
  }
  size_t hn = 0;
#define HPUSH(v)                                  \
  do {                                            \
    size_t c_ = hn++;                             \
    heap[c_] = (v);                               \
    while (c_ && heap[(c_ - 1) / 2] > heap[c_]) { \
      int t_ = heap[c_];                          \
      heap[c_] = heap[(c_ - 1) / 2];              \
      heap[(c_ - 1) / 2] = t_;                    \
      c_ = (c_ - 1) / 2;                          \
    }                                             \
  } while (0)
  for (size_t i = 0; i < n; i++) {
    if (!(mark[i] & bit)) continue;
    const rev *r = &dag->revs[i];
    for (size_t j = 0; j < r->ndown; j++) indeg[i] += (mark[r->parents[j]] & bit) != 0;
    for (size_t j = 0; j < r->ndeps; j++) indeg[i] += (mark[r->deps[j]] & bit) != 0;
    if (!indeg[i]) HPUSH((int)i);
  }
  while (hn) {
    int top = heap[0];
    heap[0] = heap[--hn];
    for (size_t c = 0;;) {
      size_t l = 2 * c + 1, rr = l + 1, m = c;
      if (l < hn && heap[l] < heap[m]) m = l;
      if (rr < hn && heap[rr] < heap[m]) m = rr;
      if (m == c) break;
      int t = heap[c];
      heap[c] = heap[m];
      heap[m] = t;
      c = m;
    }
    if ((rc = lm_revset_push(out, top))) goto cleanup;
    const rev *r = &dag->revs[top];
    for (size_t j = 0; j < r->children.n; j++) {
      int ch = r->children.idx[j];
      if ((mark[ch] & bit) && --indeg[ch] == 0) HPUSH(ch);
    }
    for (size_t j = 0; j < r->dependents.n; j++) {
      int ch = r->dependents.idx[j];
      if ((mark[ch] & bit) && --indeg[ch] == 0) HPUSH(ch);
    }
  }
#undef HPUSH
cleanup:
  free(indeg);
  free(heap);
  return rc;
}

int lm_dag_plan_upgrade(const lm_dag *dag, const lm_revset *current, const lm_revset *target,
                        lm_revset *plan, lm_error *err) {
  unsigned char *mark = calloc(dag->n ? dag->n : 1, 1);
  if (!mark) return lm_error_set(err, LM_ENOMEM, "out of memory");
  /* bit 1: needed by the target; bit 2: already applied. Plan = 1 and not 2. */
  int rc = lm_dag_mark(dag, target->idx, target->n, 0, 1, mark, 1);
  if (!rc) rc = lm_dag_mark(dag, current->idx, current->n, 0, 1, mark, 2);
  if (!rc) {
    for (size_t i = 0; i < dag->n; i++) mark[i] = (mark[i] & 1) && !(mark[i] & 2) ? 4 : 0;
    rc = topo(dag, mark, 4, plan);
  }
  free(mark);
  return rc ? lm_error_set(err, LM_ENOMEM, "out of memory") : LM_OK;
}

int lm_dag_plan_downgrade_scoped(const lm_dag *dag, const lm_revset *current,
                                 const lm_revset *target, int scope, lm_revset *plan,
                                 lm_error *err) {
  unsigned char *mark = calloc(dag->n ? dag->n : 1, 1);
  lm_revset order = {0}, roots = {0};
  int rc = LM_OK;
  if (!mark) return lm_error_set(err, LM_ENOMEM, "out of memory");
  /* bit 1: ancestors-or-self of the current heads. */
  if ((rc = lm_dag_mark(dag, current->idx, current->n, 0, 1, mark, 1))) goto oom;
  /* What goes is what stands on the roots: the bases (to base) or the targets' children
   * by down_revision (a revision that only depends_on a target stays: the target itself
   * is not undone). */
  for (size_t i = 0; i < dag->n && !target->n && !rc; i++)
    if (!dag->revs[i].ndown) rc = lm_revset_push(&roots, (int)i);
  for (size_t i = 0; i < target->n && !rc; i++) {
    const rev *t = &dag->revs[target->idx[i]];
    for (size_t c = 0; c < t->children.n && !rc; c++)
      rc = lm_revset_push(&roots, t->children.idx[c]);
  }
  if (rc) goto oom;
  if (scope >= 0 && roots.n > 1) {
    /* A branch-scoped target keeps the roots below the branch's revision (bit 8). */
    if (lm_dag_mark(dag, &scope, 1, 0, 0, mark, 8)) goto oom;
    size_t k = 0;
    for (size_t i = 0; i < roots.n; i++)
      if (mark[roots.idx[i]] & 8) roots.idx[k++] = roots.idx[i];
    roots.n = k;
    if (!k) {
      rc = lm_error_set(err, LM_EUSAGE, "Not a valid downgrade target from current heads");
      goto cleanup;
    }
  }
  /* bit 2: what descends from the roots, through children and dependents. */
  if (lm_dag_mark(dag, roots.idx, roots.n, 1, 1, mark, 2)) goto oom;
  size_t ndrop = 0;
  for (size_t i = 0; i < dag->n; i++) {
    mark[i] = (mark[i] & 1) && (mark[i] & 2) ? 4 : 0;
    ndrop += mark[i] != 0;
  }
  /* Nothing to undo is fine when a target is a current head (already there); otherwise
   * the target is not below the database's revisions on that branch. */
  if (target->n && !ndrop) {
    int there = 0;
    for (size_t i = 0; i < target->n; i++) there |= lm_revset_has(current, target->idx[i]);
    if (!there) {
      rc = lm_error_set(err, LM_EUSAGE,
                        "Destination %s is not a valid downgrade target from current head(s)",
                        dag->revs[target->idx[0]].id);
      goto cleanup;
    }
  }
  if ((rc = topo(dag, mark, 4, &order))) goto oom;
  for (size_t i = order.n; i-- > 0;)
    if ((rc = lm_revset_push(plan, order.idx[i]))) goto oom;
  goto cleanup;
oom:
  rc = lm_error_set(err, LM_ENOMEM, "out of memory");
cleanup:
  free(mark);
  lm_revset_free(&order);
  lm_revset_free(&roots);
  return rc;
}

int lm_dag_plan_downgrade(const lm_dag *dag, const lm_revset *current, const lm_revset *target,
                          lm_revset *plan, lm_error *err) {
  return lm_dag_plan_downgrade_scoped(dag, current, target, -1, plan, err);
}

/* ---- resolution ------------------------------------------------------------------------ */

static int not_found(lm_error *err, const char *expr) {
  return lm_error_set(err, LM_ENOTFOUND, "Can't locate revision identified by '%s'", expr);
}

/* An id, label or unique prefix -> index. With `within`, a prefix only matches the
 * revisions it marks (Alembic narrows BRANCH@PREFIX to the branch's lineage). */
static int resolve_within(const lm_dag *dag, const char *s, const unsigned char *within, int *out,
                          lm_error *err) {
  int i = lm_dag_find(dag, s);
  if (i < 0) i = find_label(dag, s);
  if (i >= 0) {
    *out = i;
    return LM_OK;
  }
  size_t first, cnt = *s ? prefix_range(dag, s, &first) : 0, hits = 0;
  char buf[512];
  size_t used = 0;
  for (size_t k = 0; k < cnt; k++) {
    int c = dag->sorted[first + k];
    if (within && !within[c]) continue;
    if (hits++ == 0) *out = c;
    if (hits <= 10 && used < sizeof buf)
      used += (size_t)snprintf(buf + used, sizeof buf - used, "%s'%s'", hits > 1 ? ", " : "",
                               dag->revs[c].id);
  }
  if (hits == 1) return LM_OK;
  if (hits == 0) return not_found(err, s);
  return lm_error_set(err, LM_ENOTFOUND, "Multiple revisions start with '%s': %s%s", s, buf,
                      hits > 10 ? ", ..." : "");
}

static int resolve_one(const lm_dag *dag, const char *s, int *out, lm_error *err) {
  return resolve_within(dag, s, NULL, out, err);
}

static int multiple_heads(lm_error *err, const char *what) {
  lm_error_set(err, LM_ENOTFOUND,
               "Multiple head revisions are present for given argument '%s'; please "
               "specify a specific target revision, '<branchname>@head' to narrow to a "
               "specific head, or 'heads' for all heads",
               what);
  /* Alembic's wording stays; the way out is added (two heads usually come from a git merge
   * of branches that each added a revision). */
  lm_error_setfield(&err->hint,
                    "join the heads with a merge revision: luamigrate merge heads -m \"merge\"");
  return LM_ENOTFOUND;
}

/* "Ambiguous walk" (Alembic's words), with a hint naming a target that is not ambiguous:
 * idx is where the walk stopped (-1: base, with several bases), `other` a revision to go to. */
static int ambiguous_walk(const lm_dag *dag, int idx, int other, int up, lm_error *err) {
  lm_error_set(err, LM_ENOTFOUND, "Ambiguous walk");
  char hint[512];
  const char *cmd = up ? "upgrade" : "downgrade", *to = dag->revs[other].id;
  if (idx < 0)
    snprintf(hint, sizeof hint,
             "there are several bases: name the revision to go to, e.g. 'luamigrate %s %s'", cmd,
             to);
  else if (up)
    snprintf(hint, sizeof hint,
             "%s is a branch point: name the revision to go to, e.g. 'luamigrate %s %s', or step "
             "from one branch's revision, e.g. 'luamigrate %s %s+1'",
             dag->revs[idx].id, cmd, to, cmd, to);
  else /* REV-1 from a parent would undo both branches: only a destination is safe to name */
    snprintf(hint, sizeof hint,
             "%s is a merge point: name the revision to go to, e.g. 'luamigrate %s %s'",
             dag->revs[idx].id, cmd, to);
  lm_error_setfield(&err->hint, hint);
  return LM_ENOTFOUND;
}

/* The heads (effective ones included) on the line of idx: its descendants-or-self through
 * down_revision only, as X@head / X@heads select them. */
static int heads_of(const lm_dag *dag, int idx, lm_revset *out) {
  unsigned char *mark = calloc(dag->n ? dag->n : 1, 1);
  if (!mark) return LM_ENOMEM;
  int rc = lm_dag_mark(dag, &idx, 1, 1, 0, mark, 1);
  for (size_t i = 0; !rc && i < dag->n; i++)
    if ((mark[i] & 1) && lm_dag_is_head(dag, (int)i)) rc = lm_revset_push(out, (int)i);
  free(mark);
  return rc;
}

/* A walk of n steps from `from` (-1 = base) along single children (up) or single parents
 * (down). Walking up, `within` (when not NULL) narrows each step to the revisions it
 * marks (a branch's lineage: Alembic's BRANCH@+N), so a branch point on the way is only
 * ambiguous when two of its children are on the branch. */
static int walk(const lm_dag *dag, int from, long n, int up, const unsigned char *within,
                const char *expr, int *out, lm_error *err) {
  int cur = from;
  for (long k = 0; k < n; k++) {
    if (up) {
      int next = -1;
      size_t found = 0;
      if (cur < 0) {
        for (size_t i = 0; i < dag->n && found < 2; i++)
          if (!dag->revs[i].ndown && (!within || within[i]))
            found++, next = next < 0 ? (int)i : next;
      } else {
        const adj *c = &dag->revs[cur].children;
        for (size_t i = 0; i < c->n && found < 2; i++)
          if (!within || within[c->idx[i]]) found++, next = next < 0 ? c->idx[i] : next;
      }
      if (found > 1) return ambiguous_walk(dag, cur, next, 1, err);
      if (found == 0) goto short_walk;
      cur = next;
    } else {
      if (cur < 0) goto short_walk;
      const rev *r = &dag->revs[cur];
      if (r->ndown > 1) return ambiguous_walk(dag, cur, r->parents[0], 0, err);
      cur = r->ndown ? r->parents[0] : -1;
    }
  }
  *out = cur;
  return LM_OK;
short_walk:
  return lm_error_set(err, LM_ENOTFOUND, "Relative revision %s didn't produce %ld migrations", expr,
                      n);
}

/* The lineage of idx (through down_revision only): bit 1 on its descendants-or-self, bit 2
 * on its ancestors-or-self. */
static unsigned char *lineage(const lm_dag *dag, int idx) {
  unsigned char *mark = calloc(dag->n ? dag->n : 1, 1);
  if (!mark) return NULL;
  if (lm_dag_mark(dag, &idx, 1, 1, 0, mark, 1) || lm_dag_mark(dag, &idx, 1, 0, 0, mark, 2)) {
    free(mark);
    return NULL;
  }
  return mark;
}

/* BRANCH@REV and BRANCH@-N where no database is involved (show, stamp, history), with
 * `branch` (a label or revision) resolved to bidx. REV must share the branch's lineage;
 * BRANCH@-N walks down from the branch's heads. */
static int resolve_in_branch(const lm_dag *dag, const char *expr, const char *branch, int bidx,
                             const char *what, lm_revset *out, lm_error *err) {
  int rc = LM_OK, idx = -1;
  unsigned char *mark = lineage(dag, bidx);
  if (!mark) return lm_error_set(err, LM_ENOMEM, "out of memory");
  const char *q = what + 1;
  int relative = (*what == '+' || *what == '-') && *q;
  for (; relative && *q; q++)
    if (*q < '0' || *q > '9') relative = 0;
  if (!relative) {
    if ((rc = resolve_one(dag, what, &idx, err))) goto done;
    if (!mark[idx]) {
      rc = lm_error_set(err, LM_ENOTFOUND, "Revision %s is not a member of branch '%s'",
                        dag->revs[idx].id, branch);
      goto done;
    }
    rc = lm_revset_push(out, idx) ? lm_error_set(err, LM_ENOMEM, "out of memory") : LM_OK;
    goto done;
  }
  long n = strtol(what + 1, NULL, 10);
  if (*what == '+') {
    rc = not_found(err, expr);
    goto done;
  }
  lm_revset h = {0};
  if (heads_of(dag, bidx, &h)) {
    rc = lm_error_set(err, LM_ENOMEM, "out of memory");
    goto done;
  }
  for (size_t i = 0; i < h.n && rc == LM_OK; i++) {
    rc = walk(dag, h.idx[i], n, 0, NULL, expr, &idx, err);
    if (rc == LM_OK && idx >= 0 && !lm_revset_has(out, idx) && lm_revset_push(out, idx))
      rc = lm_error_set(err, LM_ENOMEM, "out of memory");
  }
  lm_revset_free(&h);
done:
  free(mark);
  return rc;
}

/* ---- BRANCH@… as upgrade and downgrade read it (Alembic's _parse_upgrade_target and
 * _parse_downgrade_target, revision.py) ---------------------------------------------- */

static int oom(lm_error *err) {
  return lm_error_set(err, LM_ENOMEM, "out of memory");
}

static int short_relative(lm_error *err, const char *expr, long n) {
  return lm_error_set(err, LM_ENOTFOUND, "Relative revision %s didn't produce %ld migrations", expr,
                      n);
}

/* An upgrade to REV-N that walks down to base: Alembic fails on it (an AssertionError),
 * luamigrate refuses it. */
static int below_base(lm_error *err, const char *expr) {
  return lm_error_set(err, LM_ENOTFOUND,
                      "Relative revision %s walks down to base: there is nothing to upgrade to",
                      expr);
}

/* The relative form after BRANCH@: [SYMBOL](+|-)N, SYMBOL a word (letters, digits, '_').
 * 1 when `what` has it; *sym gets SYMBOL ("" when absent). */
static int branch_relative(const char *what, char *sym, size_t cap, int *up, long *n) {
  size_t k = 0;
  while (isalnum((unsigned char)what[k]) || what[k] == '_') k++;
  if ((what[k] != '+' && what[k] != '-') || !what[k + 1] || k >= cap) return 0;
  for (const char *q = what + k + 1; *q; q++)
    if (*q < '0' || *q > '9') return 0;
  memcpy(sym, what, k);
  sym[k] = '\0';
  *up = what[k] == '+';
  *n = strtol(what + k + 1, NULL, 10);
  return 1;
}

/* A revision named on its own (Alembic's get_revision): base -> -1, head -> the single
 * head, heads -> the single head nothing depends on, else an id, label or prefix. `expr`
 * names the target in the message when there are several heads. */
static int plain_target(const lm_dag *dag, const char *s, const char *expr, int *out,
                        lm_error *err) {
  *out = -1;
  if (!strcmp(s, "base")) return LM_OK;
  int head = !strcmp(s, "head");
  if (!head && strcmp(s, "heads") != 0) return resolve_one(dag, s, out, err);
  lm_revset h = {0};
  if (head ? lm_dag_heads(dag, &h) : real_heads(dag, &h)) return oom(err);
  int rc = h.n > 1 ? multiple_heads(err, expr) : LM_OK;
  if (h.n == 1) *out = h.idx[0];
  lm_revset_free(&h);
  return rc;
}

/* BRANCH@S as one revision: base -> -1, head or heads -> the branch's single head, else a
 * revision on the branch's lineage `mark` (a prefix matching only there). */
static int branch_target(const lm_dag *dag, const char *s, const char *branch, int bidx,
                         const unsigned char *mark, int *out, lm_error *err) {
  *out = -1;
  if (!strcmp(s, "base")) return LM_OK;
  if (!strcmp(s, "head") || !strcmp(s, "heads")) {
    lm_revset h = {0};
    if (heads_of(dag, bidx, &h)) return oom(err);
    char what[300];
    snprintf(what, sizeof what, "%s@head", branch);
    int rc = h.n > 1 ? multiple_heads(err, what) : LM_OK;
    if (h.n == 1) *out = h.idx[0];
    lm_revset_free(&h);
    return rc;
  }
  int rc = resolve_within(dag, s, mark, out, err);
  if (rc == LM_OK && !mark[*out])
    rc = lm_error_set(err, LM_ENOTFOUND, "Revision %s is not a member of branch '%s'",
                      dag->revs[*out].id, branch);
  return rc;
}

/* Where BRANCH@+N / BRANCH@-N starts from the database's revisions `current`: the one on
 * the branch's lineage `mark`; when none is, the tip of what is applied on that lineage
 * (upgrading; a revision on it may be applied as the ancestor of another line's row) or
 * the branch head among the applied revisions (downgrading); -1 (upgrading from below the
 * branch) when nothing of it is applied. More than one is ambiguous. */
static int branch_start(const lm_dag *dag, const lm_revset *current, const unsigned char *mark,
                        int up, const char *expr, long n, int *out, lm_error *err) {
  size_t found = 0;
  *out = -1;
  for (size_t i = 0; i < current->n; i++)
    if (mark[current->idx[i]] && found++ == 0) *out = current->idx[i];
  unsigned char *seen = NULL;
  int rc = LM_OK;
  if (found == 0) {
    /* bit 1: applied (ancestors-or-self of the rows); bit 2: below another applied
     * revision, on the lineage when upgrading (a parent or dependency of one: Alembic
     * drops from the dependencies those an ancestor also has, which only matters when
     * nothing else on the line stands on that dependency; counting them keeps this one
     * pass), by down_revision when downgrading */
    if (!(seen = calloc(dag->n ? dag->n : 1, 1)) ||
        lm_dag_mark(dag, current->idx, current->n, 0, 1, seen, 1)) {
      rc = oom(err);
      goto done;
    }
    for (size_t i = 0; i < dag->n; i++) {
      if (!(seen[i] & 1) || (up && !mark[i])) continue;
      const rev *r = &dag->revs[i];
      for (size_t j = 0; j < r->ndown; j++) seen[r->parents[j]] |= 2;
      for (size_t j = 0; up && j < r->ndeps; j++) seen[r->deps[j]] |= 2;
    }
    for (size_t i = 0; i < dag->n; i++)
      if (seen[i] == 1 && mark[i] && found++ == 0) *out = (int)i;
  }
  if (found > 1)
    rc = lm_error_set(err, LM_ENOTFOUND,
                      up ? "Ambiguous upgrade from multiple current revisions"
                         : "Ambiguous downgrade from multiple current revisions");
  else if (found == 0 && !up)
    rc = short_relative(err, expr, n);
done:
  free(seen);
  return rc;
}

/* Upgrading to several revisions where one is an ancestor of another is refused, as
 * Alembic refuses it ("overlaps"): BRANCH@heads can name a head that another head
 * depends on. */
static int check_overlap(const lm_dag *dag, const lm_revset *h, lm_error *err) {
  if (h->n < 2) return LM_OK;
  unsigned char *mark = calloc(dag->n ? dag->n : 1, 1);
  if (!mark) return oom(err);
  /* bit 1: the proper ancestors of the set (one walk from all their parents and deps) */
  lm_revset below = {0};
  int rc = LM_OK;
  for (size_t i = 0; i < h->n && !rc; i++) {
    const rev *r = &dag->revs[h->idx[i]];
    for (size_t j = 0; j < r->ndown && !rc; j++) rc = lm_revset_push(&below, r->parents[j]);
    for (size_t j = 0; j < r->ndeps && !rc; j++) rc = lm_revset_push(&below, r->deps[j]);
  }
  if (rc || lm_dag_mark(dag, below.idx, below.n, 0, 1, mark, 1)) rc = oom(err);
  lm_revset_free(&below);
  for (size_t i = 0; i < h->n && !rc; i++) {
    int a = h->idx[i];
    if (!(mark[a] & 1)) continue;
    if (lm_dag_mark(dag, &a, 1, 1, 1, mark, 2)) {
      rc = oom(err);
      break;
    }
    for (size_t j = 0; j < h->n; j++)
      if (h->idx[j] != a && (mark[h->idx[j]] & 2)) {
        rc = lm_error_set(err, LM_EUSAGE,
                          "Requested revision %s overlaps with other requested revisions %s",
                          dag->revs[h->idx[j]].id, dag->revs[a].id);
        break;
      }
  }
  free(mark);
  return rc;
}

/* BRANCH@… for upgrade and downgrade; BRANCH (a label, or a revision standing for its
 * line) resolved to bidx. Upgrading, every form stays on the branch: @head and @heads
 * are the heads above bidx, @base names nothing (Alembic upgrades nothing), @REV must be
 * on the lineage, @+N walks up from the database's revision on the branch taking only
 * the branch's children at a branch point, @REV+N likewise from REV, @REV-N walks down.
 * Downgrading, the part after '@' names the destination as it would on its own (@REV,
 * @head, @base) or relative to the branch (@-N from the database's revision on it, @REV-N,
 * @REV+N); *scope = bidx, so that the downgrade only undoes what stands on that branch
 * (lm_dag_plan_downgrade_scoped). */
static int resolve_branch_target(const lm_dag *dag, const char *expr, const char *branch, int bidx,
                                 const char *what, const lm_revset *current, lm_resolve_mode mode,
                                 lm_revset *out, int *scope, lm_error *err) {
  int rc = LM_OK, idx = -1, up = 0, upgrade = mode == LM_RESOLVE_UPGRADE;
  long n = 0;
  char sym[256];
  unsigned char *mark = lineage(dag, bidx);
  if (!mark) return oom(err);
  if (!upgrade) *scope = bidx;
  if (!branch_relative(what, sym, sizeof sym, &up, &n)) {
    if (!upgrade) {
      rc = plain_target(dag, what, expr, &idx, err);
    } else if (!strcmp(what, "base")) {
      goto done;
    } else if (!strcmp(what, "heads")) {
      lm_revset h = {0};
      rc = heads_of(dag, bidx, &h) ? oom(err) : check_overlap(dag, &h, err);
      for (size_t i = 0; i < h.n && !rc; i++)
        if (lm_revset_push(out, h.idx[i])) rc = oom(err);
      lm_revset_free(&h);
      goto done;
    } else {
      rc = branch_target(dag, what, branch, bidx, mark, &idx, err);
    }
  } else if (*sym) {
    if (up && !(rc = plain_target(dag, sym, expr, &idx, err)))
      rc = walk(dag, idx, n, 1, mark, expr, &idx, err);
    else if (!up && !(rc = branch_target(dag, sym, branch, bidx, mark, &idx, err)) &&
             !(rc = walk(dag, idx, n, 0, NULL, expr, &idx, err)) && idx < 0 && upgrade)
      rc = below_base(err, expr);
  } else if (n == 0 || up != upgrade) {
    rc = short_relative(err, expr, n);
  } else if (!(rc = branch_start(dag, current, mark, up, expr, n, &idx, err))) {
    rc = walk(dag, idx, n, up, up ? mark : NULL, expr, &idx, err);
  }
  if (!rc && idx >= 0 && lm_revset_push(out, idx)) rc = oom(err);
done:
  free(mark);
  return rc;
}

/* REV+N resolves REV by calling itself on a strictly shorter prefix of expr, so the
 * recursion is bounded by the expression's length (at most 255: see `base`). */
/* NOLINTNEXTLINE(misc-no-recursion) */
int lm_dag_resolve_scoped(const lm_dag *dag, const char *expr, const lm_revset *current,
                          lm_resolve_mode mode, lm_revset *out, int *scope, lm_error *err) {
  int idx = -1, rc;
  *scope = -1;
  if (!expr || !*expr) return lm_error_set(err, LM_EUSAGE, "empty revision identifier");
  /* Alembic upgrades from no set of rows one of which implies another (a stamp can leave
   * one behind), whatever the target. */
  if (mode == LM_RESOLVE_UPGRADE && (rc = check_overlap(dag, current, err))) {
    lm_error_setfield(&err->hint,
                      "the version table holds a revision and an ancestor of it; "
                      "`stamp --purge` the revisions the database is at");
    return rc;
  }
  if (!strcmp(expr, "base")) return LM_OK;
  if (!strcmp(expr, "heads"))
    return real_heads(dag, out) ? lm_error_set(err, LM_ENOMEM, "out of memory") : LM_OK;
  if (!strcmp(expr, "head")) {
    /* Every head counts here, effective ones too: "head" is unambiguous only when the
     * graph has exactly one. */
    lm_revset h = {0};
    if (lm_dag_heads(dag, &h)) return lm_error_set(err, LM_ENOMEM, "out of memory");
    if (h.n > 1) {
      lm_revset_free(&h);
      return multiple_heads(err, expr);
    }
    if (h.n == 1)
      rc = lm_revset_push(out, h.idx[0]);
    else
      rc = LM_OK;
    lm_revset_free(&h);
    return rc ? lm_error_set(err, LM_ENOMEM, "out of memory") : LM_OK;
  }
  /* [REV]+N / [REV]-N */
  const char *sign = NULL;
  for (const char *p = expr; *p; p++)
    if ((*p == '+' || *p == '-') && p[1]) {
      const char *q = p + 1;
      while (*q >= '0' && *q <= '9') q++;
      if (!*q) {
        sign = p;
        break;
      }
    }
  if (sign && !strchr(expr, '@')) {
    long n = strtol(sign + 1, NULL, 10);
    int up = *sign == '+';
    int from = -1;
    if (sign == expr) {
      if ((mode == LM_RESOLVE_UPGRADE && !up) || (mode == LM_RESOLVE_DOWNGRADE && up) ||
          mode == LM_RESOLVE_STAMP || mode == LM_RESOLVE_SHOW)
        return lm_error_set(err, LM_ENOTFOUND, "Relative revision %s didn't produce %ld migrations",
                            expr, n);
      if (current->n > 1)
        return lm_error_set(err, LM_ENOTFOUND,
                            up ? "Ambiguous upgrade from multiple current revisions"
                               : "Ambiguous downgrade from multiple current revisions");
      from = current->n ? current->idx[0] : -1;
      /* Alembic reads "-N" as CURRENT@-N: only what stands on that revision's branch goes */
      if (mode == LM_RESOLVE_DOWNGRADE) *scope = from;
    } else {
      char base[256];
      size_t bl = (size_t)(sign - expr);
      if (bl >= sizeof base) return not_found(err, expr);
      memcpy(base, expr, bl);
      base[bl] = '\0';
      lm_revset b = {0};
      int ignore;
      rc = lm_dag_resolve_scoped(dag, base, current, LM_RESOLVE_SHOW, &b, &ignore, err);
      if (rc < 0) {
        lm_revset_free(&b);
        return rc;
      }
      if (b.n > 1) {
        lm_revset_free(&b);
        return multiple_heads(err, base);
      }
      from = b.n ? b.idx[0] : -1;
      lm_revset_free(&b);
    }
    if ((rc = walk(dag, from, n, up, NULL, expr, &idx, err))) return rc;
    if (idx < 0 && !up && mode == LM_RESOLVE_UPGRADE) return below_base(err, expr);
    if (idx >= 0 && lm_revset_push(out, idx)) return lm_error_set(err, LM_ENOMEM, "out of memory");
    return LM_OK;
  }
  /* X@head, X@heads, X@base */
  const char *at = strchr(expr, '@');
  if (at) {
    char base[256];
    size_t bl = (size_t)(at - expr);
    if (bl >= sizeof base || bl == 0) return not_found(err, expr);
    memcpy(base, expr, bl);
    base[bl] = '\0';
    if ((rc = resolve_one(dag, base, &idx, err))) {
      if (lm_dag_find(dag, base) < 0 && find_label(dag, base) < 0)
        return lm_error_set(err, LM_ENOTFOUND, "No such branch: '%s'", base);
      return rc;
    }
    const char *what = at + 1;
    if (mode == LM_RESOLVE_UPGRADE || mode == LM_RESOLVE_DOWNGRADE)
      return resolve_branch_target(dag, expr, base, idx, what, current, mode, out, scope, err);
    if (!strcmp(what, "head") || !strcmp(what, "heads")) {
      lm_revset h = {0};
      if (heads_of(dag, idx, &h)) return lm_error_set(err, LM_ENOMEM, "out of memory");
      if (!strcmp(what, "head") && h.n > 1) {
        lm_revset_free(&h);
        return multiple_heads(err, expr);
      }
      for (size_t i = 0; i < h.n; i++)
        if (lm_revset_push(out, h.idx[i])) {
          lm_revset_free(&h);
          return lm_error_set(err, LM_ENOMEM, "out of memory");
        }
      lm_revset_free(&h);
      return LM_OK;
    }
    if (!strcmp(what, "base")) {
      /* the base of idx's lineage: follow first parents down */
      int cur = idx;
      while (dag->revs[cur].ndown) cur = dag->revs[cur].parents[0];
      return lm_revset_push(out, cur) ? lm_error_set(err, LM_ENOMEM, "out of memory") : LM_OK;
    }
    return resolve_in_branch(dag, expr, base, idx, what, out, err);
  }
  if ((rc = resolve_one(dag, expr, &idx, err))) return rc;
  return lm_revset_push(out, idx) ? lm_error_set(err, LM_ENOMEM, "out of memory") : LM_OK;
}

static int all_digits(const char *p) {
  if (!*p) return 0;
  for (; *p; p++)
    if (*p < '0' || *p > '9') return 0;
  return 1;
}

int lm_dag_target_relative(const char *expr) {
  if (!expr) return 0;
  const char *at = strchr(expr, '@');
  const char *what = at ? at + 1 : expr;
  return (*what == '+' || *what == '-') && all_digits(what + 1);
}

int lm_dag_overlap(const lm_dag *dag, const lm_revset *current, int *desc, lm_revset *anc,
                   lm_error *err) {
  size_t n = lm_dag_count(dag);
  int found = 0;
  unsigned char *mark = calloc(n ? n : 1, 1);
  if (!mark) return lm_error_set(err, LM_ENOMEM, "out of memory");
  for (size_t i = 0; i < current->n && !found; i++) {
    memset(mark, 0, n);
    int self = current->idx[i];
    const int *parents;
    size_t np = lm_dag_parents(dag, self, &parents);
    const int *deps;
    size_t nd = lm_dag_deps(dag, self, &deps);
    if (lm_dag_mark(dag, parents, np, 0, 1, mark, 1) || lm_dag_mark(dag, deps, nd, 0, 1, mark, 1)) {
      free(mark);
      return lm_error_set(err, LM_ENOMEM, "out of memory");
    }
    for (size_t k = 0; k < current->n; k++)
      if (k != i && mark[current->idx[k]]) {
        *desc = self;
        found = 1;
        if (lm_revset_push(anc, current->idx[k])) {
          free(mark);
          return lm_error_set(err, LM_ENOMEM, "out of memory");
        }
      }
  }
  free(mark);
  return found;
}

int lm_dag_resolve(const lm_dag *dag, const char *expr, const lm_revset *current,
                   lm_resolve_mode mode, lm_revset *out, lm_error *err) {
  int scope;
  return lm_dag_resolve_scoped(dag, expr, current, mode, out, &scope, err);
}

/* ---- version-table transitions (Alembic's HeadMaintainer) ---------------------------- */

/* Stamps (in dag->ws) the ancestors-or-self of the seeds, through parents and
 * dependencies, whose rank is at least min_rank: every ancestor of rank >= min_rank is
 * reached, as ranks only grow from a revision to its children. A step near the current
 * heads thus walks the few revisions between them, not the whole graph. Test with
 * stamped(). */
static int stamp_ancestors(const lm_dag *dag, const int *seeds, size_t nseeds, int min_rank) {
  scratch *ws = dag->ws;
  if (!ws) return LM_ENOMEM;
  if (!ws->visit) {
    ws->visit = calloc(dag->n ? dag->n : 1, sizeof *ws->visit);
    ws->stack = malloc((dag->n ? dag->n : 1) * sizeof *ws->stack);
    if (!ws->visit || !ws->stack) {
      free(ws->visit);
      free(ws->stack);
      ws->visit = NULL;
      ws->stack = NULL;
      return LM_ENOMEM;
    }
  }
  if (++ws->gen == 0) { /* wrapped: start the stamps over */
    memset(ws->visit, 0, dag->n * sizeof *ws->visit);
    ws->gen = 1;
  }
  unsigned gen = ws->gen;
  size_t sp = 0;
  for (size_t i = 0; i < nseeds; i++) {
    int s = seeds[i];
    if (dag->rank[s] < min_rank || ws->visit[s] == gen) continue;
    ws->visit[s] = gen;
    ws->stack[sp++] = s;
  }
  while (sp) {
    const rev *r = &dag->revs[ws->stack[--sp]];
    for (int pass = 0; pass < 2; pass++) {
      const int *v = pass ? r->deps : r->parents;
      size_t nv = pass ? r->ndeps : r->ndown;
      for (size_t j = 0; j < nv; j++) {
        int a = v[j];
        if (dag->rank[a] < min_rank || ws->visit[a] == gen) continue;
        ws->visit[a] = gen;
        ws->stack[sp++] = a;
      }
    }
  }
  return LM_OK;
}

static int stamped(const lm_dag *dag, int idx) {
  return dag->ws->visit[idx] == dag->ws->gen;
}

/* down_revision plus dependencies, without those implied by another entry's ancestry. */
static int normalized_down(const lm_dag *dag, int idx, lm_revset *out) {
  const rev *r = &dag->revs[idx];
  for (size_t i = 0; i < r->ndown; i++)
    if (lm_revset_push(out, r->parents[i])) return LM_ENOMEM;
  if (r->ndeps == 0) return LM_OK;
  for (size_t i = 0; i < r->ndeps; i++) {
    /* keep a dependency unless it is an ancestor of a parent or of another dependency */
    int others[64];
    size_t no = 0;
    for (size_t k = 0; k < r->ndown && no < 64; k++) others[no++] = r->parents[k];
    for (size_t k = 0; k < r->ndeps && no < 64; k++)
      if (k != i) others[no++] = r->deps[k];
    int rc = stamp_ancestors(dag, others, no, dag->rank[r->deps[i]]);
    if (rc) return rc;
    if (!stamped(dag, r->deps[i]) && lm_revset_push(out, r->deps[i])) return LM_ENOMEM;
  }
  return LM_OK;
}

/* Members of `set` that are not ancestors-or-self of the heads other than `except`. */
static int minus_ancestors_of_others(const lm_dag *dag, const lm_revset *heads,
                                     const lm_revset *except, const lm_revset *set,
                                     lm_revset *out) {
  lm_revset others = {0};
  int rc = LM_OK, min_rank = INT32_MAX;
  for (size_t i = 0; i < heads->n && !rc; i++)
    if (!lm_revset_has(except, heads->idx[i])) rc = lm_revset_push(&others, heads->idx[i]);
  for (size_t i = 0; i < set->n; i++)
    if (dag->rank[set->idx[i]] < min_rank) min_rank = dag->rank[set->idx[i]];
  if (!rc) rc = stamp_ancestors(dag, others.idx, others.n, min_rank);
  for (size_t i = 0; i < set->n && !rc; i++)
    if (!stamped(dag, set->idx[i])) rc = lm_revset_push(out, set->idx[i]);
  lm_revset_free(&others);
  return rc;
}

static void set_remove(lm_revset *s, int idx) {
  for (size_t i = 0; i < s->n; i++)
    if (s->idx[i] == idx) {
      memmove(s->idx + i, s->idx + i + 1, (s->n - i - 1) * sizeof *s->idx);
      s->n--;
      return;
    }
}

int lm_dag_step(const lm_dag *dag, lm_revset *heads, int idx, int upgrade, lm_vt_op *ops,
                size_t cap, lm_error *err) {
  lm_revset down = {0}, tmp = {0}, self = {0};
  size_t nops = 0;
  int rc = LM_OK;
#define OP(k, f, t)                                                                 \
  do {                                                                              \
    if (nops == cap) {                                                              \
      rc = lm_error_set(err, LM_ERR, "too many version-table changes in one step"); \
      goto cleanup;                                                                 \
    }                                                                               \
    ops[nops++] = (lm_vt_op){(k), (f), (t)};                                        \
  } while (0)
  if (normalized_down(dag, idx, &down) || lm_revset_push(&self, idx)) goto oom;
  if (upgrade) {
    size_t present = 0;
    int last = -1;
    for (size_t i = 0; i < down.n; i++)
      if (lm_revset_has(heads, down.idx[i])) present++, last = down.idx[i];
    if (down.n == 0 || present == 0) {
      /* a new branch */
      OP(LM_VT_INSERT, -1, idx);
      if (lm_revset_push(heads, idx)) goto oom;
    } else if (down.n > 1 && present > 1) {
      /* merge: delete all parents but the last one present, update that one */
      if (minus_ancestors_of_others(dag, heads, &down, &down, &tmp)) goto oom;
      /* Dependencies first, so the row that is updated (the last) is a parent's. */
      lm_revset from = {0};
      for (int pass = 0; pass < 2; pass++)
        for (size_t i = 0; i < tmp.n; i++) {
          int is_parent = 0;
          for (size_t k = 0; k < dag->revs[idx].ndown; k++)
            is_parent |= dag->revs[idx].parents[k] == tmp.idx[i];
          if (is_parent != pass || !lm_revset_has(heads, tmp.idx[i])) continue;
          if (lm_revset_push(&from, tmp.idx[i])) {
            lm_revset_free(&from);
            goto oom;
          }
        }
      for (size_t i = 0; i + 1 < from.n; i++) {
        OP(LM_VT_DELETE, from.idx[i], -1);
        set_remove(heads, from.idx[i]);
      }
      int f = from.n ? from.idx[from.n - 1] : last;
      lm_revset_free(&from);
      OP(LM_VT_UPDATE, f, idx);
      set_remove(heads, f);
      if (lm_revset_push(heads, idx)) goto oom;
    } else {
      OP(LM_VT_UPDATE, last, idx);
      set_remove(heads, last);
      if (lm_revset_push(heads, idx)) goto oom;
    }
  } else {
    if (!lm_revset_has(heads, idx)) {
      rc = lm_error_set(err, LM_ERR, "revision %s is not a current head; cannot downgrade it",
                        dag->revs[idx].id);
      goto cleanup;
    }
    /* where the rows go: the down revisions not already implied by another head */
    if (minus_ancestors_of_others(dag, heads, &self, &down, &tmp)) goto oom;
    if (tmp.n == 0) {
      OP(LM_VT_DELETE, idx, -1);
      set_remove(heads, idx);
    } else {
      for (size_t i = 0; i + 1 < tmp.n; i++) {
        if (lm_revset_has(heads, tmp.idx[i])) continue;
        OP(LM_VT_INSERT, -1, tmp.idx[i]);
        if (lm_revset_push(heads, tmp.idx[i])) goto oom;
      }
      int t = tmp.idx[tmp.n - 1];
      OP(LM_VT_UPDATE, idx, t);
      set_remove(heads, idx);
      if (lm_revset_push(heads, t)) goto oom;
    }
  }
  rc = (int)nops;
  goto cleanup;
oom:
  rc = lm_error_set(err, LM_ENOMEM, "out of memory");
cleanup:
#undef OP
  lm_revset_free(&down);
  lm_revset_free(&tmp);
  lm_revset_free(&self);
  return rc;
}
