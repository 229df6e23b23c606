/* The DAG's representation, shared by the files of the layer (dag.c, dag_label.c,
 * dag_resolve.c, dag_step.c) and by nothing else: callers see the opaque lm_dag of dag.h. */
#ifndef LM_DAG_IMPL_H
#define LM_DAG_IMPL_H

#include <stddef.h>
#include <stdint.h>

#include "dag.h"

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

/* size bytes from the graph's arena, aligned for pointers (freed with the graph); NULL when
 * out of memory. */
void *lm_dag_arena_alloc(lm_dag *dag, size_t size);
/* Indices whose id starts with prefix: [*first, *first + count) in dag->sorted (finished
 * graphs only). */
size_t lm_dag_prefix_range(const lm_dag *dag, const char *prefix, size_t *first);
/* Computes every revision's effective labels (rev.lset) once parents, children and rank are
 * known; 0 or LM_ENOMEM. */
int lm_dag_spread_labels(lm_dag *dag);

#endif
