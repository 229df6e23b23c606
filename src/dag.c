/* The revision DAG's storage and validation: revisions hash-indexed by id (strings in one
 * arena, adjacency as slices of one array), the revision-id rule, lm_dag_finish (parents,
 * dependencies, labels, cycles and the topological rank), accessors, heads and the marking
 * walks. Label sets live in dag_label.c, identifier resolution in dag_resolve.c, plans and
 * version-table steps in dag_step.c. Revision indices follow add order, which callers make
 * file-name order; that order is the tie-break wherever the graph leaves a choice
 * (documented behaviour). Every walk is iterative and none is repeated per revision: graphs
 * reach 100,000 revisions. */
#include <ctype.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dag.h"
#include "dag_impl.h"

static uint64_t hash_str(const char *s) {
  uint64_t h = 1469598103934665603ull;
  for (; *s; s++) h = (h ^ (unsigned char)*s) * 1099511628211ull;
  return h;
}

lm_dag *lm_dag_new(void) {
  return calloc(1, sizeof(lm_dag));
}

#define ARENA_BLOCK ((size_t)256 * 1024)

/* As arena_alloc, zeroed: for the edge lists, read only below counts that grow as they fill,
 * which the static analyzer cannot follow (a few bytes a revision). */
static void *arena_zalloc(lm_dag *dag, size_t size) {
  void *p = lm_dag_arena_alloc(dag, size);
  if (p) memset(p, 0, size);
  return p;
}

void *lm_dag_arena_alloc(lm_dag *dag, size_t size) {
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
  char *p = lm_dag_arena_alloc(dag, len + 1);
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
  const char **out = lm_dag_arena_alloc(dag, n * sizeof *out);
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

int lm_dag_check_id(const char *id, const char *where, lm_error *err) {
  char bad;
  if (!id || !*id) return lm_error_set(err, LM_EUSAGE, "%s: empty revision identifier", where);
  if (bad_id(id, &bad))
    return lm_error_set(err, LM_EUSAGE,
                        "%s: Character(s) '%c' not allowed in revision identifier '%s'", where, bad,
                        id);
  if (!clean_utf8(id))
    return lm_error_set(err, LM_EUSAGE,
                        "%s: revision identifier is not valid UTF-8 text (it holds invalid or "
                        "control bytes)",
                        where);
  if (strlen(id) > LM_DAG_ID_MAX)
    return lm_error_set(err, LM_EUSAGE,
                        "%s: revision identifier '%s' is longer than 32 characters (the version "
                        "table's column is varchar(32))",
                        where, id);
  return LM_OK;
}

int lm_dag_valid_id(const char *id) {
  size_t n = id ? strlen(id) : 0;
  if (n == 0 || n > LM_DAG_ID_MAX) return 0;
  for (const char *p = id; *p; p++)
    if (!isalnum((unsigned char)*p) && *p != '_') return 0;
  return 1;
}

int lm_dag_add(lm_dag *dag, const char *id, const char *const *down, size_t ndown,
               const char *const *labels, size_t nlabels, const char *const *deps, size_t ndeps,
               const char *path, const char *doc, lm_error *err) {
  if (dag->finished)
    return lm_error_set(err, LM_ERR, "revision added after the graph was finished");
  int rc = lm_dag_check_id(id, path, err);
  if (rc) return rc;
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

int lm_dag_find_label(const lm_dag *dag, const char *label) {
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
size_t lm_dag_prefix_range(const lm_dag *dag, const char *prefix, size_t *first) {
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
      if (p < 0) p = lm_dag_find_label(dag, d);
      if (p < 0) {
        size_t first, cnt = lm_dag_prefix_range(dag, d, &first);
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
  if ((rc = lm_dag_spread_labels(dag))) return lm_error_set(err, rc, "out of memory");
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

int lm_dag_real_heads(const lm_dag *dag, lm_revset *out) {
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
