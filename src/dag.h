/* The revision DAG: revisions, their parents (down_revision), branch labels and
 * dependencies; validation, heads, identifier resolution, upgrade/downgrade plans and the
 * version-table transitions of each step. Knows neither libpq nor Lua. Every operation is
 * linear (or n log n) in the number of revisions (but see the downgrade order). The public
 * header of the layer: dag.c (storage, validation), dag_label.c, dag_resolve.c, dag_step.c. */
#ifndef LM_DAG_H
#define LM_DAG_H

#include <stddef.h>

#include "error.h"
#include "revset.h"

typedef struct lm_dag lm_dag;

lm_dag *lm_dag_new(void);
void lm_dag_free(lm_dag *dag);
/* Room for n revisions, so adding them does not grow the storage step by step (optional). */
int lm_dag_reserve(lm_dag *dag, size_t n);

/* The revision-id rule, owned here (the CLI and the loader ask; none repeats it). */
#define LM_DAG_ID_MAX 32 /* bytes: the version table's column is varchar(32) */
/* An id a revision file may declare: 1 to LM_DAG_ID_MAX bytes of UTF-8 text without control
 * characters, '@', '-', '+', ':' or white space (those are the target grammar's). LM_OK, or
 * LM_EUSAGE with a message that starts with `where` (the file): "Character(s) '-' not
 * allowed in revision identifier 'a-b'", ... */
int lm_dag_check_id(const char *id, const char *where, lm_error *err);
/* 1 for an id luamigrate writes itself (revision --rev-id, generated ids): 1 to
 * LM_DAG_ID_MAX ASCII letters, digits or '_', which lm_dag_check_id always accepts (ids
 * that read the same in every shell, file system and tool); else 0. */
int lm_dag_valid_id(const char *id);

/* Adds one revision. Every string is copied. `down` lists the parent ids (ndown == 0: a
 * base; ndown > 1: a merge point); `labels` the branch labels; `deps` the depends_on
 * entries (revision ids, partial ids or labels, resolved in lm_dag_finish). `path` is the
 * file it came from (used in messages), `doc` its docstring (may be NULL).
 * Fails (LM_EUSAGE) on an id lm_dag_check_id refuses (with `path` as where) and on a
 * duplicate id (message names both files).
 * Returns the new revision's index (>= 0) or a negative code. Indices follow add order,
 * which is the caller's file-name order and the documented tie-break everywhere. */
int lm_dag_add(lm_dag *dag, const char *id, const char *const *down, size_t ndown,
               const char *const *labels, size_t nlabels, const char *const *deps, size_t ndeps,
               const char *path, const char *doc, lm_error *err);

/* Ends loading: resolves parents and dependencies, builds children lists, finds heads and
 * bases, and validates. Errors (LM_EUSAGE, one clear message naming revision and file):
 * "Revision X referenced from Y (path) is not present", cycles ("Cycle is detected in
 * revisions (a, b, c)"), self-loops, duplicate branch labels ("Branch name 'x' in
 * revision R already used by revision S"), a label equal to a revision id. */
int lm_dag_finish(lm_dag *dag, lm_error *err);

size_t lm_dag_count(const lm_dag *dag);
int lm_dag_find(const lm_dag *dag, const char *id); /* exact id -> index, or -1 */
/* A branch label -> the index of the revision declaring it, or -1 (finished graphs). */
int lm_dag_find_label(const lm_dag *dag, const char *label);
const char *lm_dag_id(const lm_dag *dag, int idx);
const char *lm_dag_path(const lm_dag *dag, int idx);
/* The docstring's first paragraph (what history shows; the whole docstring is read from the
 * file when asked for: lm_loader_longdoc). */
const char *lm_dag_doc(const lm_dag *dag, int idx); /* "" when none */
/* Parents (down_revision order), children (add order), labels, resolved dependencies. */
size_t lm_dag_parents(const lm_dag *dag, int idx, const int **out);
size_t lm_dag_children(const lm_dag *dag, int idx, const int **out);
/* Effective branch labels: its own and those inherited along its line (see finish). */
size_t lm_dag_labels(const lm_dag *dag, int idx, const char *const **out);
size_t lm_dag_deps(const lm_dag *dag, int idx, const int **out);
int lm_dag_is_head(const lm_dag *dag, int idx);      /* no child via down_revision */
int lm_dag_is_real_head(const lm_dag *dag, int idx); /* ... nor via depends_on */
int lm_dag_is_branch_point(const lm_dag *dag, int idx);
int lm_dag_is_merge_point(const lm_dag *dag, int idx);
/* Marks (mark[i] |= bit) the ancestors-or-self (up = 0) or descendants-or-self (up = 1) of
 * the seeds, following dependencies too when deps is set. Linear in what it marks. */
int lm_dag_mark(const lm_dag *dag, const int *seeds, size_t nseeds, int up, int deps,
                unsigned char *mark, unsigned char bit);
/* Heads (lm_dag_is_head) and bases in add order. */
int lm_dag_heads(const lm_dag *dag, lm_revset *out);
int lm_dag_bases(const lm_dag *dag, lm_revset *out);
/* Heads nothing depends on either (lm_dag_is_real_head), in add order: what "heads" means. */
int lm_dag_real_heads(const lm_dag *dag, lm_revset *out);

/* What a target expression is resolved for: the grammar differs by command. */
typedef enum lm_resolve_mode {
  LM_RESOLVE_UPGRADE,   /* head, heads, base, ids, +N, REV+N, label@head ... */
  LM_RESOLVE_DOWNGRADE, /* base, ids, -N, REV-N, label@base ... */
  LM_RESOLVE_STAMP,     /* absolute targets only */
  LM_RESOLVE_SHOW,      /* absolute targets (show, history endpoints, --head) */
} lm_resolve_mode;

/* Resolves `expr` to a set of revisions (empty set = base). `current` holds the database's
 * current heads (needed for +N/-N). Errors (LM_ENOTFOUND / LM_EUSAGE) carry Alembic's
 * messages: "Can't locate revision identified by 'x'", "Multiple revisions start with
 * 'ab': 'ab12..', 'ab34..'", "Multiple head revisions are present for given argument
 * 'head'; please specify a specific target revision, '<branchname>@head' to narrow to a
 * specific head, or 'heads' for all heads", "Relative revision +3 didn't produce 3
 * migrations", "Ambiguous walk". */
int lm_dag_resolve(const lm_dag *dag, const char *expr, const lm_revset *current,
                   lm_resolve_mode mode, lm_revset *out, lm_error *err);
/* As lm_dag_resolve, and for a downgrade target *scope is the revision whose branch the
 * downgrade is confined to (-1: none): the revision declaring LABEL in LABEL@… (REV in
 * REV@…), the database's single revision for -N. Upgrade and downgrade read LABEL@… as
 * Alembic does: upgrading, LABEL@head/heads/REV/+N/REV+N stay on the label's line (a walk
 * up takes only the child on the line at a branch point) and LABEL@base upgrades nothing;
 * downgrading, LABEL@REV, LABEL@head and LABEL@base name the destination as REV, head and
 * base would, and LABEL@-N walks down from the database's revision on the line. An upgrade
 * from rows one of which is an ancestor of another (a stamp can leave them) is refused, as
 * Alembic refuses it: "Requested revision X overlaps with other requested revisions Y". */
int lm_dag_resolve_scoped(const lm_dag *dag, const char *expr, const lm_revset *current,
                          lm_resolve_mode mode, lm_revset *out, int *scope, lm_error *err);

/* 1 when `expr` is resolved from the database's current revisions (+N, -N, X@+N, X@-N), so
 * it means something else once another run has moved the version table. */
int lm_dag_target_relative(const char *expr);

/* A set of current revisions in which some are ancestors (through parents and
 * dependencies) of another, as a damaged or hand-edited version table may hold: returns 1,
 * sets *desc to the first such descendant and fills `anc` with its ancestors among them; 0
 * when the set is consistent; < 0 on error. Alembic refuses such a set with "Requested
 * revision X overlaps with other requested revisions Y". */
int lm_dag_overlap(const lm_dag *dag, const lm_revset *current, int *desc, lm_revset *anc,
                   lm_error *err);

/* Plans. Upgrade: every revision that is an ancestor-or-self of `target` (following
 * parents and dependencies) and not an ancestor-or-self of `current`, ordered so each
 * revision comes after all its parents and dependencies; ties broken by index. An empty
 * plan is not an error. Downgrade: the revisions to undo, children before parents, that
 * are ancestors-or-self of `current` and descendants-or-self (via children and dependents)
 * of the targets' children, in the order of Alembic's walk down from the rows (taken in
 * index order; a revision waits until nothing still to undo stands on it), which decides
 * the rows a downgrade through merges leaves; lm_dag_plan_downgrade_scoped with no scope.
 * Linear on graphs whose branches join again soon; a graph where long parallel lines
 * depend on each other revision by revision costs up to quadratic time (as in Alembic). */
int lm_dag_plan_upgrade(const lm_dag *dag, const lm_revset *current, const lm_revset *target,
                        lm_revset *plan, lm_error *err);
int lm_dag_plan_downgrade(const lm_dag *dag, const lm_revset *current, const lm_revset *target,
                          lm_revset *plan, lm_error *err);
/* Alembic's downgrade: what goes is what is applied and stands on the roots (the targets'
 * children by down_revision; every base when the target is base). With scope >= 0 (see
 * lm_dag_resolve_scoped) and several roots, only the roots below `scope` count ("Not a
 * valid downgrade target from current heads" when none is), so LABEL@-1 or LABEL@base
 * leave the other branches alone. Nothing to undo for a target that is not a current head
 * is "Destination X is not a valid downgrade target from current head(s)". */
int lm_dag_plan_downgrade_scoped(const lm_dag *dag, const lm_revset *current,
                                 const lm_revset *target, int scope, lm_revset *plan,
                                 lm_error *err);

/* One change to the version table. */
typedef enum lm_vt_kind { LM_VT_INSERT, LM_VT_DELETE, LM_VT_UPDATE } lm_vt_kind;
typedef struct lm_vt_op {
  lm_vt_kind kind;
  int from; /* DELETE, UPDATE: the row removed/replaced (index) */
  int to;   /* INSERT, UPDATE: the row added (index) */
} lm_vt_op;

/* The version-table changes of applying one step (upgrading or downgrading revision
 * `idx`) to the set of current heads `heads`, which is updated in place. Follows
 * Alembic's HeadMaintainer: insert a new branch, update parent->child, merge (delete all
 * but one parent, update the last), unmerge (insert other parents, update), delete a
 * branch; dependency rows are absorbed on upgrade and restored on downgrade.
 * `ops` receives up to `cap` operations; returns their number or a negative code. */
int lm_dag_step(const lm_dag *dag, lm_revset *heads, int idx, int upgrade, lm_vt_op *ops,
                size_t cap, lm_error *err);

/* Alembic's "a, b" formatting of a list of ids, for messages: "<base>" when empty. */
char *lm_dag_format_ids(const lm_dag *dag, const int *idx, size_t n);

#endif
