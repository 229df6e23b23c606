/* Plans over the revision DAG that the commands need beyond upgrade and downgrade: the
 * version-table changes of a stamp, which revisions a history range keeps, and a list of
 * revision arguments resolved. Uses only dag.h's public API; knows neither libpq nor Lua. */
#include "dag_plan.h"

#include <stdlib.h>
#include <string.h>

static int push_op(lm_vt_ops *o, lm_vt_kind kind, int from, int to) {
  if (o->n == o->cap) {
    size_t cap = o->cap ? o->cap * 2 : 16;
    lm_vt_op *v = realloc(o->v, cap * sizeof *v);
    if (!v) return LM_ENOMEM;
    o->v = v;
    o->cap = cap;
  }
  o->v[o->n++] = (lm_vt_op){kind, from, to};
  return LM_OK;
}

/* The version-table changes of `stamp REV...`, step for step as Alembic computes them. The
 * current rows in the lineage of any target (its ancestors and descendants, dependencies
 * included) are "filtered"; each target then either is already a row, or replaces all the
 * filtered rows (one step, downward when a filtered row descends from it, else upward),
 * or starts a branch of its own; base deletes the filtered rows. Where those steps would
 * replace a row an earlier step already removed, Alembic fails; so does this, with a
 * message. `next` receives the rows afterwards. */
int lm_dag_plan_stamp(const lm_dag *dag, const char *const *targets, size_t ntargets,
                      const lm_revset *current, lm_revset *next, lm_vt_ops *ops, lm_error *err) {
  size_t n = lm_dag_count(dag);
  lm_revset filtered = {0}, dests = {0}, shares = {0};
  unsigned char *mark = calloc(n ? n : 1, 1);
  int rc = mark ? LM_OK : LM_ENOMEM;
  for (size_t i = 0; rc == LM_OK && i < current->n; i++) rc = lm_revset_push(next, current->idx[i]);
  if (rc) goto oom;
  for (size_t i = 0; i < ntargets; i++) {
    const char *arg = targets[i];
    shares.n = 0;
    int r = lm_dag_resolve(dag, arg, current, LM_RESOLVE_STAMP, &shares, err);
    if (r < 0) {
      rc = r;
      goto done;
    }
    for (size_t j = 0; j < shares.n; j++)
      if (!lm_revset_has(&dests, shares.idx[j]) && lm_revset_push(&dests, shares.idx[j])) goto oom;
    const char *at = strchr(arg, '@');
    if (at && at > arg) { /* label@...: the label's own revision counts for the lineage */
      char *branch = strndup(arg, (size_t)(at - arg));
      lm_revset b = {0};
      lm_error ignore = {0};
      if (branch && lm_dag_resolve(dag, branch, current, LM_RESOLVE_SHOW, &b, &ignore) == LM_OK &&
          b.n == 1 && lm_revset_push(&shares, b.idx[0])) {
        free(branch);
        lm_revset_free(&b);
        goto oom;
      }
      lm_error_clear(&ignore);
      free(branch);
      lm_revset_free(&b);
    }
    memset(mark, 0, n);
    if (shares.n && (lm_dag_mark(dag, shares.idx, shares.n, 1, 1, mark, 1) ||
                     lm_dag_mark(dag, shares.idx, shares.n, 0, 1, mark, 2)))
      goto oom;
    for (size_t h = 0; h < current->n; h++) {
      int c = current->idx[h];
      if ((!shares.n || mark[c]) && !lm_revset_has(&filtered, c) && lm_revset_push(&filtered, c))
        goto oom;
    }
  }
  if (dests.n == 0) { /* base */
    for (size_t i = 0; i < filtered.n; i++) {
      if (push_op(ops, LM_VT_DELETE, filtered.idx[i], -1)) goto oom;
      lm_revset_remove(next, filtered.idx[i]);
    }
    goto done;
  }
  for (size_t d = 0; d < dests.n; d++) {
    int dest = dests.idx[d];
    if (lm_revset_has(&filtered, dest)) continue;
    memset(mark, 0, n);
    if (lm_dag_mark(dag, &dest, 1, 1, 1, mark, 1) || lm_dag_mark(dag, &dest, 1, 0, 1, mark, 2))
      goto oom;
    int below = 0, above = 0;
    for (size_t i = 0; i < filtered.n; i++) {
      below |= (mark[filtered.idx[i]] & 1) != 0;
      above |= (mark[filtered.idx[i]] & 2) != 0;
    }
    int branch_move = !below && !above;
    /* from: all filtered rows, unless the target starts a branch of its own */
    size_t nfrom = branch_move ? 0 : filtered.n;
    int missing = 0;
    for (size_t i = 0; i < nfrom; i++) missing |= !lm_revset_has(next, filtered.idx[i]);
    if (!below && (branch_move || missing) && !lm_revset_has(next, dest)) {
      if (push_op(ops, LM_VT_INSERT, -1, dest) || lm_revset_push(next, dest)) goto oom;
      continue;
    }
    if (nfrom == 0 || missing || lm_revset_has(next, dest)) {
      rc = lm_error_set(err, LM_EUSAGE,
                        "stamp: cannot move the version table to %s: an earlier target of this "
                        "stamp already replaced the rows it would replace",
                        lm_dag_id(dag, dest));
      lm_error_setfield(&err->hint,
                        "stamp one target at a time, or start over with "
                        "'luamigrate stamp --purge REV...'");
      goto done;
    }
    for (size_t i = 0; i + 1 < nfrom; i++) {
      if (push_op(ops, LM_VT_DELETE, filtered.idx[i], -1)) goto oom;
      lm_revset_remove(next, filtered.idx[i]);
    }
    if (push_op(ops, LM_VT_UPDATE, filtered.idx[nfrom - 1], dest)) goto oom;
    lm_revset_remove(next, filtered.idx[nfrom - 1]);
    if (lm_revset_push(next, dest)) goto oom;
  }
  goto done;
oom:
  rc = lm_error_set(err, LM_ENOMEM, "out of memory");
done:
  free(mark);
  lm_revset_free(&filtered);
  lm_revset_free(&dests);
  lm_revset_free(&shares);
  return rc < 0 ? rc : LM_OK;
}

void lm_dag_mark_history(const lm_dag *dag, const lm_revset *order, const lm_revset *from,
                         unsigned char *mark) {
  for (size_t i = 0; i < order->n; i++) {
    int r = order->idx[i];
    if (from->n == 0 || lm_revset_has(from, r)) {
      mark[r] = 1;
      continue;
    }
    const int *p;
    size_t np = lm_dag_parents(dag, r, &p);
    for (size_t j = 0; j < np && !mark[r]; j++) mark[r] = mark[p[j]];
    np = lm_dag_deps(dag, r, &p);
    for (size_t j = 0; j < np && !mark[r]; j++) mark[r] = mark[p[j]];
  }
}

int lm_dag_resolve_each(const lm_dag *dag, const char *const *exprs, size_t n, lm_revset *out,
                        lm_error *err) {
  lm_revset none = {0};
  int rc = LM_OK;
  for (size_t i = 0; i < n && rc >= 0; i++) {
    lm_revset one = {0};
    rc = lm_dag_resolve(dag, exprs[i], &none, LM_RESOLVE_SHOW, &one, err);
    for (size_t j = 0; rc >= 0 && j < one.n; j++)
      if (lm_revset_push(out, one.idx[j])) rc = lm_error_set(err, LM_ENOMEM, "out of memory");
    lm_revset_free(&one);
  }
  return rc < 0 ? rc : LM_OK;
}
