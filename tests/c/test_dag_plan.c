/* C unit tests of the DAG's command plans (dag_plan.c): the version-table changes of a
 * stamp, Alembic's way, the revisions a history range keeps, and argument lists resolved. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dag.h"
#include "dag_plan.h"

static int passed, failed;

static void expect(const char *got, const char *want, int line) {
  if (!strcmp(got, want)) {
    passed++;
    return;
  }
  failed++;
  fprintf(stderr, "test_dag_plan.c:%d: got \"%s\", want \"%s\"\n", line, got, want);
}

/* One revision: `parents` and `label` space-separated or "" (labels: at most one). */
static void add(lm_dag *dag, const char *id, const char *parents, const char *label) {
  char buf[128];
  const char *down[4];
  size_t nd = 0;
  snprintf(buf, sizeof buf, "%s", parents);
  for (char *t = strtok(buf, " "); t && nd < 4; t = strtok(NULL, " ")) down[nd++] = t;
  lm_error err = {0};
  if (lm_dag_add(dag, id, down, nd, *label ? &label : NULL, *label ? 1 : 0, NULL, 0, id, "", &err) <
      0) {
    fprintf(stderr, "lm_dag_add %s: %s\n", id, err.message);
    exit(1);
  }
}

static lm_dag *finish(lm_dag *dag) {
  lm_error err = {0};
  if (lm_dag_finish(dag, &err) < 0) {
    fprintf(stderr, "lm_dag_finish: %s\n", err.message);
    exit(1);
  }
  return dag;
}

static void rows_of(const lm_dag *dag, lm_revset *s, const char *ids) {
  char buf[256];
  snprintf(buf, sizeof buf, "%s", ids);
  for (char *t = strtok(buf, " "); t; t = strtok(NULL, " ")) lm_revset_push(s, lm_dag_find(dag, t));
}

/* stamp targets (space-separated) from rows `cur`: "ops | rows after", or "ERR message". */
static const char *stamp(const lm_dag *dag, const char *cur, const char *targets) {
  static char out[1024];
  char buf[256];
  const char *argv[16];
  size_t argc = 0;
  snprintf(buf, sizeof buf, "%s", targets);
  for (char *t = strtok(buf, " "); t && argc < 16; t = strtok(NULL, " ")) argv[argc++] = t;
  lm_revset rows = {0}, next = {0};
  lm_vt_ops ops = {0};
  lm_error err = {0};
  rows_of(dag, &rows, cur);
  out[0] = '\0';
  if (lm_dag_plan_stamp(dag, argv, argc, &rows, &next, &ops, &err) < 0) {
    snprintf(out, sizeof out, "ERR %s", err.message);
  } else {
    static const char *const kind[] = {"insert", "delete", "update"};
    for (size_t i = 0; i < ops.n; i++) {
      const lm_vt_op *o = &ops.v[i];
      size_t len = strlen(out);
      snprintf(out + len, sizeof out - len, "%s %s%s%s, ", kind[o->kind],
               o->kind == LM_VT_INSERT ? "" : lm_dag_id(dag, o->from),
               o->kind == LM_VT_UPDATE ? ">" : "",
               o->kind == LM_VT_DELETE ? "" : lm_dag_id(dag, o->to));
    }
    strncat(out, "|", sizeof out - strlen(out) - 1);
    for (size_t i = 0; i < next.n; i++) {
      strncat(out, " ", sizeof out - strlen(out) - 1);
      strncat(out, lm_dag_id(dag, next.idx[i]), sizeof out - strlen(out) - 1);
    }
  }
  lm_error_clear(&err);
  lm_revset_free(&rows);
  lm_revset_free(&next);
  free(ops.v);
  return out;
}

/*   r - l(label a) - x
 *              \
 *               y1 - y2          and a second base: b1 - b2 (label b) */
static lm_dag *graph(void) {
  lm_dag *dag = lm_dag_new();
  add(dag, "r", "", "");
  add(dag, "l", "r", "a");
  add(dag, "x", "l", "");
  add(dag, "y1", "l", "");
  add(dag, "y2", "y1", "");
  add(dag, "b1", "", "");
  add(dag, "b2", "b1", "b");
  return finish(dag);
}

static void test_stamp(void) {
  lm_dag *dag = graph();
  expect(stamp(dag, "", "y2"), "insert y2, | y2", __LINE__);
  expect(stamp(dag, "y2", "y2"), "| y2", __LINE__);
  expect(stamp(dag, "y1", "y2"), "update y1>y2, | y2", __LINE__);
  expect(stamp(dag, "y2", "l"), "update y2>l, | l", __LINE__);
  expect(stamp(dag, "y2 b2", "base"), "delete y2, delete b2, |", __LINE__);
  /* a target on another base's line starts a branch of its own */
  expect(stamp(dag, "y2", "b1"), "insert b1, | y2 b1", __LINE__);
  /* two targets that each start a branch; a move on one line and a new branch at once */
  expect(stamp(dag, "", "x y2"), "insert x, insert y2, | x y2", __LINE__);
  expect(stamp(dag, "x y1", "y2 b2"), "update y1>y2, insert b2, | x y2 b2", __LINE__);
  /* an earlier target already took the rows a later one would replace */
  expect(stamp(dag, "y1", "y2 l"),
         "ERR stamp: cannot move the version table to l: an earlier target of this stamp "
         "already replaced the rows it would replace",
         __LINE__);
  expect(stamp(dag, "", "nope"), "ERR Can't locate revision identified by 'nope'", __LINE__);
  lm_dag_free(dag);
}

/* LABEL@REV: the rows in the lineage of the label's own revision count too, as Alembic's
 * filter_for_lineage adds the label's revision to what it compares with. Here x stands on l
 * (which declares a) but not on y2's line: stamping a@y2 from x and y1 replaces both. The
 * plan once tested lm_dag_resolve(...) == 1, which no call returns (0 is success), so the
 * label's revision never counted and x stayed behind as a second row. */
static void test_stamp_label(void) {
  lm_dag *dag = graph();
  expect(stamp(dag, "x y1", "a@y2"), "delete x, update y1>y2, | y2", __LINE__);
  /* without the label only y2's own lineage counts */
  expect(stamp(dag, "x y1", "y2"), "update y1>y2, | x y2", __LINE__);
  /* the other base's rows are never in a's lineage */
  expect(stamp(dag, "b2 y1", "a@y2"), "update y1>y2, | b2 y2", __LINE__);
  expect(stamp(dag, "b1", "b@b2"), "update b1>b2, | b2", __LINE__);
  lm_dag_free(dag);
}

/* history -r START:: each revision of the order that is START or stands on it. */
static const char *history(const lm_dag *dag, const char *from) {
  static char out[256];
  lm_revset heads = {0}, none = {0}, order = {0}, lo = {0};
  lm_error err = {0};
  unsigned char *mark = calloc(lm_dag_count(dag), 1);
  lm_dag_heads(dag, &heads);
  lm_dag_plan_upgrade(dag, &none, &heads, &order, &err);
  rows_of(dag, &lo, from);
  lm_dag_mark_history(dag, &order, &lo, mark);
  out[0] = '\0';
  for (size_t i = 0; i < order.n; i++)
    if (mark[order.idx[i]]) {
      if (out[0]) strncat(out, " ", sizeof out - strlen(out) - 1);
      strncat(out, lm_dag_id(dag, order.idx[i]), sizeof out - strlen(out) - 1);
    }
  free(mark);
  lm_revset_free(&heads);
  lm_revset_free(&order);
  lm_revset_free(&lo);
  lm_error_clear(&err);
  return out;
}

static void test_history(void) {
  lm_dag *dag = graph();
  /* Alembic's upgrade order (reversed, its history's): the walk down from the heads x, y2, b2 */
  expect(history(dag, ""), "b1 b2 r l y1 y2 x", __LINE__);
  expect(history(dag, "l"), "l y1 y2 x", __LINE__);
  expect(history(dag, "y1"), "y1 y2", __LINE__);
  expect(history(dag, "x b2"), "b2 x", __LINE__);
  lm_dag_free(dag);
}

/* merge's and repair's arguments: each resolved, in order; the first bad one fails. */
static void test_resolve_each(void) {
  lm_dag *dag = graph();
  const char *args[] = {"x", "a@y2", "b@head"};
  lm_revset out = {0};
  lm_error err = {0};
  char got[256] = "";
  if (lm_dag_resolve_each(dag, args, 3, &out, &err) == LM_OK)
    for (size_t i = 0; i < out.n; i++) {
      strncat(got, i ? " " : "", sizeof got - strlen(got) - 1);
      strncat(got, lm_dag_id(dag, out.idx[i]), sizeof got - strlen(got) - 1);
    }
  expect(got, "x y2 b2", __LINE__);
  lm_revset_free(&out);
  const char *bad[] = {"x", "nope", "y2"};
  int rc = lm_dag_resolve_each(dag, bad, 3, &out, &err);
  expect(rc < 0 ? err.message : "no error", "Can't locate revision identified by 'nope'", __LINE__);
  lm_error_clear(&err);
  lm_revset_free(&out);
  lm_dag_free(dag);
}

int main(void) {
  test_stamp();
  test_stamp_label();
  test_history();
  test_resolve_each();
  printf("%d passed, %d failed\n", passed, failed);
  return failed ? 1 : 0;
}
