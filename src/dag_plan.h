/* Plans over the DAG beyond upgrade and downgrade (dag_plan.c): a stamp's version-table
 * changes and a history range. Pure graph logic: neither libpq nor Lua. */
#ifndef LM_DAG_PLAN_H
#define LM_DAG_PLAN_H

#include "dag.h"

/* A growing list of version-table changes; zero-initialise, free(ops.v). */
typedef struct lm_vt_ops {
  lm_vt_op *v;
  size_t n, cap;
} lm_vt_ops;

/* The version-table changes of `stamp targets...` from the rows `current`, step for step
 * as Alembic computes them (its _stamp_revs). The current rows in the lineage of a target
 * (its ancestors and descendants, dependencies included; for LABEL@..., the lineage of
 * the label's own revision too) are "filtered"; each target then either is already a row,
 * or replaces all the filtered rows (one step, downward when a filtered row descends from
 * it, else upward), or starts a branch of its own; base deletes the filtered rows. Where
 * those steps would replace a row an earlier step already removed, Alembic fails; so does
 * this (LM_EUSAGE, with a hint). `next` receives the rows afterwards, `ops` the changes. */
int lm_dag_plan_stamp(const lm_dag *dag, const char *const *targets, size_t ntargets,
                      const lm_revset *current, lm_revset *next, lm_vt_ops *ops, lm_error *err);

/* Each of exprs[0..n) resolved absolutely (LM_RESOLVE_SHOW), the revisions appended to
 * `out` in order (a revision named twice is there twice). */
int lm_dag_resolve_each(const lm_dag *dag, const char *const *exprs, size_t n, lm_revset *out,
                        lm_error *err);

/* History's range: marks (mark[r] = 1) each revision of `order` (parents before children)
 * that is in `from` or descends (by parent or dependency) from one; every one when `from`
 * is empty. mark has lm_dag_count entries, zeroed by the caller. */
void lm_dag_mark_history(const lm_dag *dag, const lm_revset *order, const lm_revset *from,
                         unsigned char *mark);

#endif
