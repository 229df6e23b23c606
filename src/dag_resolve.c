/* Identifier resolution: Alembic's target grammar (ids, unique prefixes, labels, head,
 * heads, base, +N/-N, REV+N, BRANCH@...) for upgrade, downgrade, stamp and show, with
 * Alembic's messages. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dag.h"
#include "dag_impl.h"

static int not_found(lm_error *err, const char *expr) {
  return lm_error_set(err, LM_ENOTFOUND, "Can't locate revision identified by '%s'", expr);
}

/* An id, label or unique prefix -> index. With `within`, a prefix only matches the
 * revisions it marks (Alembic narrows BRANCH@PREFIX to the branch's lineage). */
static int resolve_within(const lm_dag *dag, const char *s, const unsigned char *within, int *out,
                          lm_error *err) {
  int i = lm_dag_find(dag, s);
  if (i < 0) i = lm_dag_find_label(dag, s);
  if (i >= 0) {
    *out = i;
    return LM_OK;
  }
  size_t first, cnt = *s ? lm_dag_prefix_range(dag, s, &first) : 0, hits = 0;
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
  if (head ? lm_dag_heads(dag, &h) : lm_dag_real_heads(dag, &h)) return oom(err);
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
  int desc = -1;
  lm_revset anc = {0};
  int found = lm_dag_overlap(dag, h, &desc, &anc, err);
  if (found > 0 && desc >= 0 && anc.n > 0)
    found = lm_error_set(err, LM_EUSAGE,
                         "Requested revision %s overlaps with other requested revisions %s",
                         dag->revs[desc].id, dag->revs[anc.idx[0]].id);
  else if (found > 0) /* not reached: an overlap found names both revisions */
    found = LM_OK;
  lm_revset_free(&anc);
  return found;
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
    return lm_dag_real_heads(dag, out) ? lm_error_set(err, LM_ENOMEM, "out of memory") : LM_OK;
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
      if (lm_dag_find(dag, base) < 0 && lm_dag_find_label(dag, base) < 0)
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
