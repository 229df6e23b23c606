/* Plans and steps: which revisions an upgrade or a downgrade runs, in what order, and the
 * version-table changes of each step (Alembic's HeadMaintainer). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "dag.h"
#include "dag_impl.h"

static int alembic_walk(const lm_dag *dag, const lm_revset *starts, unsigned char *mark,
                        lm_revset *plan);

int lm_dag_plan_upgrade(const lm_dag *dag, const lm_revset *current, const lm_revset *target,
                        lm_revset *plan, lm_error *err) {
  unsigned char *mark = calloc(dag->n ? dag->n : 1, 1);
  if (!mark) return lm_error_set(err, LM_ENOMEM, "out of memory");
  /* bit 1: needed by the target; bit 2: already applied. Plan = 1 and not 2. */
  int rc = lm_dag_mark(dag, target->idx, target->n, 0, 1, mark, 1);
  if (!rc) rc = lm_dag_mark(dag, current->idx, current->n, 0, 1, mark, 2);
  if (!rc) {
    /* Alembic's order: its walk down from the targets, reversed (an upgrade reverses the
     * downgrade-direction iteration), so where two branches leave a choice the one a merge
     * names last runs first, as Alembic runs it. */
    for (size_t i = 0; i < dag->n; i++) mark[i] = (mark[i] & 1) && !(mark[i] & 2) ? 4 : 0;
    size_t from = plan->n;
    rc = alembic_walk(dag, target, mark, plan);
    for (size_t i = from, j = plan->n; !rc && j > i + 1; i++, j--) {
      int t = plan->idx[i];
      plan->idx[i] = plan->idx[j - 1];
      plan->idx[j - 1] = t;
    }
  }
  free(mark);
  if (rc == LM_ENOMEM) return lm_error_set(err, LM_ENOMEM, "out of memory");
  return rc ? lm_error_set(err, rc, "internal error: no order for the upgrade") : LM_OK;
}

int lm_dag_plan_downgrade_scoped(const lm_dag *dag, const lm_revset *current,
                                 const lm_revset *target, int scope, lm_revset *plan,
                                 lm_error *err) {
  unsigned char *mark = calloc(dag->n ? dag->n : 1, 1);
  lm_revset roots = {0};
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
  if ((rc = alembic_walk(dag, current, mark, plan)) == LM_ENOMEM) goto oom;
  if (rc) rc = lm_error_set(err, rc, "internal error: no order for the downgrade");
  goto cleanup;
oom:
  rc = lm_error_set(err, LM_ENOMEM, "out of memory");
cleanup:
  free(mark);
  lm_revset_free(&roots);
  return rc;
}

int lm_dag_plan_downgrade(const lm_dag *dag, const lm_revset *current, const lm_revset *target,
                          lm_revset *plan, lm_error *err) {
  return lm_dag_plan_downgrade_scoped(dag, current, target, -1, plan, err);
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
        lm_revset_remove(heads, from.idx[i]);
      }
      int f = from.n ? from.idx[from.n - 1] : last;
      lm_revset_free(&from);
      OP(LM_VT_UPDATE, f, idx);
      lm_revset_remove(heads, f);
      if (lm_revset_push(heads, idx)) goto oom;
    } else {
      OP(LM_VT_UPDATE, last, idx);
      lm_revset_remove(heads, last);
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
      lm_revset_remove(heads, idx);
    } else {
      for (size_t i = 0; i + 1 < tmp.n; i++) {
        if (lm_revset_has(heads, tmp.idx[i])) continue;
        OP(LM_VT_INSERT, -1, tmp.idx[i]);
        if (lm_revset_push(heads, tmp.idx[i])) goto oom;
      }
      int t = tmp.idx[tmp.n - 1];
      OP(LM_VT_UPDATE, idx, t);
      lm_revset_remove(heads, idx);
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

/* Alembic's normalized down revisions of idx (the walk's next steps): its parents, then the
 * dependencies that no revision below it by down_revision also declares (a rule that differs
 * from normalized_down's). A declaring revision ranks above the dependency, so the walk
 * stops below that rank. stack and seen (stamped with *gen) are scratch of dag->n. */
static int walk_down(const lm_dag *dag, int idx, int *stack, unsigned *seen, unsigned *gen,
                     lm_revset *out) {
  const rev *r = &dag->revs[idx];
  for (size_t i = 0; i < r->ndown; i++)
    if (lm_revset_push(out, r->parents[i])) return LM_ENOMEM;
  for (size_t i = 0; i < r->ndeps; i++) {
    int d = r->deps[i], declared = 0;
    size_t sp = 0;
    ++*gen;
    for (size_t j = 0; j < r->ndown; j++) {
      int p = r->parents[j];
      if (dag->rank[p] > dag->rank[d] && seen[p] != *gen) seen[p] = *gen, stack[sp++] = p;
    }
    while (sp && !declared) {
      const rev *a = &dag->revs[stack[--sp]];
      for (size_t k = 0; k < a->ndeps && !declared; k++) declared = a->deps[k] == d;
      for (size_t j = 0; j < a->ndown; j++) {
        int p = a->parents[j];
        if (dag->rank[p] > dag->rank[d] && seen[p] != *gen) seen[p] = *gen, stack[sp++] = p;
      }
    }
    if (!declared && lm_revset_push(out, d)) return LM_ENOMEM;
  }
  return LM_OK;
}

/* Alembic's _topological_sort of the revisions marked 4 in `mark`, appended to `plan`: the
 * order in which a downgrade undoes them (`starts`: the database's rows; the version-table
 * steps depend on it, as undoing a branch first or a merge first leaves different rows),
 * and reversed, the order in which an upgrade runs them (`starts`: its targets; which of two
 * branches runs first decides the column order of a table both add to). A list of
 * walk positions starts as the marked `starts`, in index order; the walk stays on one position
 * and emits it, moving to its parents (its normalized down revisions; a second parent opens a
 * new position at the end of the list), unless the position is below another one: then the
 * walk goes to the first position in the list standing on it. A finished position leaves the
 * list and the walk goes back to the one before it. A revision is below another position
 * exactly when one of its children or dependents is still to emit (what a downgrade undoes
 * is closed upwards, and what an upgrade runs is, below its targets), so that test is a
 * counter; only finding which position takes a walk up. Clears the marks it emits. */
static int alembic_walk(const lm_dag *dag, const lm_revset *starts, unsigned char *mark,
                        lm_revset *plan) {
  size_t n = dag->n;
  int *pending = calloc(n ? n : 1, sizeof *pending), *stack = malloc((n ? n : 1) * sizeof *stack);
  unsigned *seen = calloc(n ? n : 1, sizeof *seen), gen = 0;
  lm_revset pos = {0}, down = {0};
  int rc = LM_ENOMEM;
  if (!pending || !stack || !seen) goto cleanup;
  /* pending[x]: x's children and dependents still to undo; bit 16: x is a walk position */
  for (size_t i = 0; i < n; i++) {
    if (!(mark[i] & 4)) continue;
    const rev *r = &dag->revs[i];
    for (size_t j = 0; j < r->ndown; j++) pending[r->parents[j]] += (mark[r->parents[j]] & 4) != 0;
    for (size_t j = 0; j < r->ndeps; j++) pending[r->deps[j]] += (mark[r->deps[j]] & 4) != 0;
  }
  for (size_t i = 0; i < n; i++)
    if ((mark[i] & 4) && lm_revset_has(starts, (int)i)) {
      if (lm_revset_push(&pos, (int)i)) goto cleanup;
      mark[i] |= 16;
    }
  size_t at = 0;
  while (pos.n) {
    int cand = pos.idx[at];
    if (pending[cand]) {
      /* the first position standing on cand: walk up what is still to undo above it */
      size_t sp = 0, first = pos.n;
      gen++;
      stack[sp++] = cand;
      seen[cand] = gen;
      while (sp) {
        const rev *r = &dag->revs[stack[--sp]];
        for (int pass = 0; pass < 2; pass++) {
          const adj *up = pass ? &r->dependents : &r->children;
          for (size_t j = 0; j < up->n; j++) {
            int c = up->idx[j];
            if (!(mark[c] & 4) || seen[c] == gen) continue;
            seen[c] = gen;
            stack[sp++] = c;
          }
        }
      }
      for (size_t k = 0; k < pos.n && first == pos.n; k++)
        if (k != at && seen[pos.idx[k]] == gen) first = k;
      if (first == pos.n) { /* cannot happen: what is pending sits below a position */
        rc = LM_ERR;
        goto cleanup;
      }
      at = first;
      continue;
    }
    if (lm_revset_push(plan, cand)) goto cleanup;
    mark[cand] &= (unsigned char)~(4 | 16);
    const rev *r = &dag->revs[cand];
    for (size_t j = 0; j < r->ndown; j++) pending[r->parents[j]] -= (mark[r->parents[j]] & 4) != 0;
    for (size_t j = 0; j < r->ndeps; j++) pending[r->deps[j]] -= (mark[r->deps[j]] & 4) != 0;
    down.n = 0;
    if (walk_down(dag, cand, stack, seen, &gen, &down)) goto cleanup;
    size_t k = 0;
    for (size_t j = 0; j < down.n; j++)
      if ((mark[down.idx[j]] & (4 | 16)) == 4) down.idx[k++] = down.idx[j];
    if (k == 0) {
      lm_revset_remove(&pos, cand);
      at = at ? at - 1 : 0;
      continue;
    }
    pos.idx[at] = down.idx[0];
    mark[down.idx[0]] |= 16;
    for (size_t j = 1; j < k; j++) {
      if (lm_revset_push(&pos, down.idx[j])) goto cleanup;
      mark[down.idx[j]] |= 16;
    }
  }
  rc = LM_OK;
cleanup:
  free(pending);
  free(stack);
  free(seen);
  lm_revset_free(&pos);
  lm_revset_free(&down);
  return rc;
}
