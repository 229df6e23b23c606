/* C unit tests of the revision DAG: validation messages, heads, identifier resolution,
 * plans and version-table transitions, on small graphs and on 100,000 revisions. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dag.h"

static int passed, failed;

#include "check.h"

/* Builds a graph from "id:parent1,parent2[:dep1,dep2[:label]]" specs; NULL-terminated. */
static lm_dag *build(const char *const *specs, lm_error *err, int *rc) {
  lm_dag *dag = lm_dag_new();
  *rc = 0;
  for (const char *const *s = specs; *s && *rc >= 0; s++) {
    char buf[256];
    snprintf(buf, sizeof buf, "%s", *s);
    char *fields[4] = {buf, "", "", ""};
    int nf = 1;
    for (char *p = buf; *p && nf < 4; p++)
      if (*p == ':') {
        *p = '\0';
        fields[nf++] = p + 1;
      }
    const char *lists[3][8];
    size_t counts[3] = {0, 0, 0};
    for (int f = 1; f < 4; f++) {
      char *tok = strtok(fields[f], ",");
      while (tok && counts[f - 1] < 8) {
        lists[f - 1][counts[f - 1]++] = tok;
        tok = strtok(NULL, ",");
      }
    }
    char path[300];
    snprintf(path, sizeof path, "versions/%s.lua", fields[0]);
    *rc = lm_dag_add(dag, fields[0], lists[0], counts[0], lists[2], counts[2], lists[1], counts[1],
                     path, "doc\n\nlong", err);
  }
  if (*rc >= 0) *rc = lm_dag_finish(dag, err);
  return dag;
}

static char *ids(const lm_dag *dag, const lm_revset *s) {
  static char buf[4096];
  buf[0] = '\0';
  for (size_t i = 0; i < s->n; i++) {
    if (i) strcat(buf, " ");
    strcat(buf, lm_dag_id(dag, s->idx[i]));
  }
  return buf;
}

static int set_of(const lm_dag *dag, lm_revset *s, const char *list) {
  char buf[512];
  snprintf(buf, sizeof buf, "%s", list);
  for (char *t = strtok(buf, " "); t; t = strtok(NULL, " ")) lm_revset_push(s, lm_dag_find(dag, t));
  return 0;
}

/* Resolves expr against current heads (space-separated ids); returns ids or the error. */
static const char *resolve(lm_dag *dag, const char *expr, const char *cur, lm_resolve_mode mode) {
  static char out[4096];
  lm_revset c = {0}, r = {0};
  lm_error err = {0};
  set_of(dag, &c, cur);
  if (lm_dag_resolve(dag, expr, &c, mode, &r, &err) < 0)
    snprintf(out, sizeof out, "ERR %s", err.message);
  else
    snprintf(out, sizeof out, "%s", ids(dag, &r));
  lm_error_clear(&err);
  lm_revset_free(&c);
  lm_revset_free(&r);
  return out;
}

static const char *plan(lm_dag *dag, int up, const char *cur, const char *target) {
  static char out[4096];
  lm_revset c = {0}, t = {0}, p = {0};
  lm_error err = {0};
  set_of(dag, &c, cur);
  set_of(dag, &t, target);
  int rc = up ? lm_dag_plan_upgrade(dag, &c, &t, &p, &err)
              : lm_dag_plan_downgrade(dag, &c, &t, &p, &err);
  if (rc < 0)
    snprintf(out, sizeof out, "ERR %s", err.message);
  else
    snprintf(out, sizeof out, "%s", ids(dag, &p));
  lm_error_clear(&err);
  lm_revset_free(&c);
  lm_revset_free(&t);
  lm_revset_free(&p);
  return out;
}

/* Resolves expr for an upgrade or downgrade from heads `cur` and plans it, as the upgrade
 * and downgrade commands do; returns the plan or the error. */
static const char *migrate(lm_dag *dag, int up, const char *cur, const char *expr) {
  static char out[4096];
  lm_revset c = {0}, t = {0}, p = {0};
  lm_error err = {0};
  int scope = -2;
  set_of(dag, &c, cur);
  int rc = lm_dag_resolve_scoped(dag, expr, &c, up ? LM_RESOLVE_UPGRADE : LM_RESOLVE_DOWNGRADE, &t,
                                 &scope, &err);
  if (rc >= 0)
    rc = up ? lm_dag_plan_upgrade(dag, &c, &t, &p, &err)
            : lm_dag_plan_downgrade_scoped(dag, &c, &t, scope, &p, &err);
  if (rc < 0)
    snprintf(out, sizeof out, "ERR %s", err.message);
  else
    snprintf(out, sizeof out, "%s", ids(dag, &p));
  lm_error_clear(&err);
  lm_revset_free(&c);
  lm_revset_free(&t);
  lm_revset_free(&p);
  return out;
}

/* Applies the steps of `order` to heads `cur`; returns the SQL-ish log and final heads. */
static const char *steps(lm_dag *dag, const char *cur, const char *order, int up) {
  static char out[4096];
  lm_revset h = {0};
  set_of(dag, &h, cur);
  out[0] = '\0';
  char buf[512];
  snprintf(buf, sizeof buf, "%s", order);
  for (char *t = strtok(buf, " "); t; t = strtok(NULL, " ")) {
    lm_vt_op ops[16];
    lm_error err = {0};
    int n = lm_dag_step(dag, &h, lm_dag_find(dag, t), up, ops, 16, &err);
    if (n < 0) {
      strcat(out, "ERR ");
      strcat(out, err.message);
      lm_error_clear(&err);
      break;
    }
    for (int i = 0; i < n; i++) {
      char one[128];
      if (ops[i].kind == LM_VT_INSERT)
        snprintf(one, sizeof one, "INSERT %s; ", lm_dag_id(dag, ops[i].to));
      else if (ops[i].kind == LM_VT_DELETE)
        snprintf(one, sizeof one, "DELETE %s; ", lm_dag_id(dag, ops[i].from));
      else
        snprintf(one, sizeof one, "UPDATE %s->%s; ", lm_dag_id(dag, ops[i].from),
                 lm_dag_id(dag, ops[i].to));
      strcat(out, one);
    }
  }
  /* final heads, sorted for comparison */
  char heads[1024] = "";
  for (size_t i = 0; i < h.n; i++)
    for (size_t j = i + 1; j < h.n; j++)
      if (strcmp(lm_dag_id(dag, h.idx[i]), lm_dag_id(dag, h.idx[j])) > 0) {
        int t = h.idx[i];
        h.idx[i] = h.idx[j];
        h.idx[j] = t;
      }
  strcat(heads, "=> {");
  strcat(heads, ids(dag, &h));
  strcat(heads, "}");
  strcat(out, heads);
  lm_revset_free(&h);
  return out;
}

static void expect_str(const char *got, const char *want, int line) {
  if (!strcmp(got, want)) {
    passed++;
  } else {
    failed++;
    fprintf(stderr, "test_dag.c:%d: got  '%s'\n               want '%s'\n", line, got, want);
  }
}
#define EXPECT(got, want) expect_str((got), (want), __LINE__)

static void expect_error(const char *const *specs, const char *want, int line) {
  lm_error err = {0};
  int rc;
  lm_dag *dag = build(specs, &err, &rc);
  expect_str(rc < 0 && err.message ? err.message : "(no error)", want, line);
  lm_error_clear(&err);
  lm_dag_free(dag);
}

/* The one revision-id rule: what a file may declare, and the narrower set luamigrate writes. */
static void test_ids(void) {
  lm_error err = {0};
  CHECK(lm_dag_check_id("ab12_x", "f.lua", &err) == LM_OK);
  CHECK(lm_dag_check_id("r\xc3\xa9v", "f.lua", &err) == LM_OK); /* UTF-8 text is an id */
  CHECK(lm_dag_check_id("a:b", "f.lua", &err) == LM_EUSAGE &&
        !strcmp(err.message, "f.lua: Character(s) ':' not allowed in revision identifier 'a:b'"));
  lm_error_clear(&err);
  CHECK(lm_dag_check_id("a\x01", "f.lua", &err) == LM_EUSAGE);
  lm_error_clear(&err);
  CHECK(lm_dag_check_id("123456789012345678901234567890123", "f.lua", &err) == LM_EUSAGE);
  lm_error_clear(&err);
  CHECK(lm_dag_check_id("", "f.lua", &err) == LM_EUSAGE &&
        !strcmp(err.message, "f.lua: empty revision identifier"));
  lm_error_clear(&err);
  CHECK(lm_dag_valid_id("ab12_X"));
  CHECK(lm_dag_valid_id("12345678901234567890123456789012"));
  CHECK(!lm_dag_valid_id("123456789012345678901234567890123"));
  CHECK(!lm_dag_valid_id(""));
  CHECK(!lm_dag_valid_id(NULL));
  CHECK(!lm_dag_valid_id("a.b"));
  CHECK(!lm_dag_valid_id("r\xc3\xa9v"));
}

static void test_validation(void) {
  expect_error((const char *const[]){"a-b", NULL},
               "versions/a-b.lua: Character(s) '-' not allowed in revision identifier 'a-b'",
               __LINE__);
  expect_error(
      (const char *const[]){"aaaa", "aaaa", NULL},
      "Revision aaaa is present more than once: in versions/aaaa.lua and in versions/aaaa.lua",
      __LINE__);
  expect_error((const char *const[]){"aaaa", "bbbb:zzzz", NULL},
               "Revision zzzz referenced from bbbb (versions/bbbb.lua) is not present", __LINE__);
  expect_error((const char *const[]){"aaaa:cccc", "bbbb:aaaa", "cccc:bbbb", NULL},
               "Cycle is detected in revisions (aaaa, bbbb, cccc)", __LINE__);
  expect_error((const char *const[]){"aaaa:aaaa", NULL},
               "Self-loop is detected in revisions (aaaa): versions/aaaa.lua", __LINE__);
  expect_error((const char *const[]){"aaaa:::x", "bbbb:aaaa::x", NULL},
               "Branch name 'x' in revision bbbb already used by revision aaaa", __LINE__);
  expect_error((const char *const[]){"0123456789abcdef0123456789abcdef0", NULL},
               "versions/0123456789abcdef0123456789abcdef0.lua: revision identifier "
               "'0123456789abcdef0123456789abcdef0' is longer than 32 characters (the version "
               "table's column is varchar(32))",
               __LINE__);
}

static void test_linear(void) {
  lm_error err = {0};
  int rc;
  lm_dag *dag = build((const char *const[]){"aaaa1111", "bbbb2222:aaaa1111", "cccc3333:bbbb2222",
                                            "cafe4444:cccc3333", NULL},
                      &err, &rc);
  CHECK(rc == 0);
  EXPECT(resolve(dag, "head", "", LM_RESOLVE_UPGRADE), "cafe4444");
  EXPECT(resolve(dag, "heads", "", LM_RESOLVE_UPGRADE), "cafe4444");
  EXPECT(resolve(dag, "base", "", LM_RESOLVE_DOWNGRADE), "");
  EXPECT(resolve(dag, "bb", "", LM_RESOLVE_SHOW), "bbbb2222");
  EXPECT(resolve(dag, "c", "", LM_RESOLVE_SHOW),
         "ERR Multiple revisions start with 'c': 'cafe4444', 'cccc3333'");
  EXPECT(resolve(dag, "dddd", "", LM_RESOLVE_SHOW),
         "ERR Can't locate revision identified by 'dddd'");
  EXPECT(resolve(dag, "+2", "", LM_RESOLVE_UPGRADE), "bbbb2222");
  EXPECT(resolve(dag, "+1", "bbbb2222", LM_RESOLVE_UPGRADE), "cccc3333");
  EXPECT(resolve(dag, "+3", "bbbb2222", LM_RESOLVE_UPGRADE),
         "ERR Relative revision +3 didn't produce 3 migrations");
  EXPECT(resolve(dag, "-1", "cccc3333", LM_RESOLVE_DOWNGRADE), "bbbb2222");
  EXPECT(resolve(dag, "-3", "cccc3333", LM_RESOLVE_DOWNGRADE), "");
  EXPECT(resolve(dag, "-4", "cccc3333", LM_RESOLVE_DOWNGRADE),
         "ERR Relative revision -4 didn't produce 4 migrations");
  EXPECT(resolve(dag, "-1", "cccc3333", LM_RESOLVE_UPGRADE),
         "ERR Relative revision -1 didn't produce 1 migrations");
  EXPECT(resolve(dag, "+1", "cccc3333", LM_RESOLVE_DOWNGRADE),
         "ERR Relative revision +1 didn't produce 1 migrations");
  EXPECT(resolve(dag, "aaaa+2", "", LM_RESOLVE_UPGRADE), "cccc3333");
  EXPECT(resolve(dag, "head-1", "", LM_RESOLVE_DOWNGRADE), "cccc3333");
  EXPECT(resolve(dag, "base+1", "", LM_RESOLVE_UPGRADE), "aaaa1111");
  EXPECT(plan(dag, 1, "", "cafe4444"), "aaaa1111 bbbb2222 cccc3333 cafe4444");
  EXPECT(plan(dag, 1, "bbbb2222", "cafe4444"), "cccc3333 cafe4444");
  EXPECT(plan(dag, 1, "cafe4444", "bbbb2222"), "");
  EXPECT(plan(dag, 0, "cafe4444", "aaaa1111"), "cafe4444 cccc3333 bbbb2222");
  EXPECT(plan(dag, 0, "cafe4444", ""), "cafe4444 cccc3333 bbbb2222 aaaa1111");
  EXPECT(plan(dag, 0, "bbbb2222", "cccc3333"),
         "ERR Destination cccc3333 is not a valid downgrade target from current head(s)");
  EXPECT(steps(dag, "", "aaaa1111 bbbb2222", 1),
         "INSERT aaaa1111; UPDATE aaaa1111->bbbb2222; => {bbbb2222}");
  EXPECT(steps(dag, "bbbb2222", "bbbb2222 aaaa1111", 0),
         "UPDATE bbbb2222->aaaa1111; DELETE aaaa1111; => {}");
  EXPECT(lm_dag_doc(dag, 0), "doc");
  lm_dag_free(dag);
}

/* a -> {b, c} -> d(b, c) -> e5 -> e6; plus a labelled base net: n0 -> n1 -> n2 (n2 depends on b).
 */
static void test_branches(void) {
  lm_error err = {0};
  int rc;
  lm_dag *dag = build(
      (const char *const[]){"aaaa1111", "bbbb2222:aaaa1111", "cccc3333:aaaa1111", NULL}, &err, &rc);
  CHECK(rc == 0);
  EXPECT(resolve(dag, "head", "", LM_RESOLVE_UPGRADE),
         "ERR Multiple head revisions are present for given argument 'head'; please specify a "
         "specific target revision, "
         "'<branchname>@head' to narrow to a specific head, or 'heads' for all heads");
  EXPECT(resolve(dag, "heads", "", LM_RESOLVE_UPGRADE), "bbbb2222 cccc3333");
  EXPECT(resolve(dag, "+2", "", LM_RESOLVE_UPGRADE), "ERR Ambiguous walk");
  EXPECT(resolve(dag, "aaaa@head", "", LM_RESOLVE_UPGRADE),
         "ERR Multiple head revisions are present for given argument 'aaaa@head'; please specify a "
         "specific target revision, '<branchname>@head' to narrow to a specific head, or 'heads' "
         "for all heads");
  EXPECT(resolve(dag, "bbbb@head", "", LM_RESOLVE_UPGRADE), "bbbb2222");
  /* Alembic's order: its walk down from the heads, reversed (the last branch runs first) */
  EXPECT(plan(dag, 1, "", "bbbb2222 cccc3333"), "aaaa1111 cccc3333 bbbb2222");
  EXPECT(plan(dag, 1, "", "cccc3333"), "aaaa1111 cccc3333");
  EXPECT(steps(dag, "", "aaaa1111 bbbb2222 cccc3333", 1),
         "INSERT aaaa1111; UPDATE aaaa1111->bbbb2222; INSERT cccc3333; => {bbbb2222 cccc3333}");
  EXPECT(steps(dag, "bbbb2222 cccc3333", "cccc3333", 0), "DELETE cccc3333; => {bbbb2222}");
  lm_dag_free(dag);

  dag =
      build((const char *const[]){"aaaa1111", "bbbb2222:aaaa1111", "cccc3333:aaaa1111",
                                  "dddd4444:bbbb2222,cccc3333", "eeee5555:dddd4444",
                                  "eeee6666:eeee5555", "n0:::net", "n1:n0", "n2:n1:bbbb2222", NULL},
            &err, &rc);
  CHECK(rc == 0);
  CHECK(lm_dag_is_merge_point(dag, lm_dag_find(dag, "dddd4444")));
  CHECK(lm_dag_is_branch_point(dag, lm_dag_find(dag, "aaaa1111")));
  CHECK(!lm_dag_is_real_head(dag, lm_dag_find(dag, "bbbb2222")));
  EXPECT(resolve(dag, "heads", "", LM_RESOLVE_UPGRADE), "eeee6666 n2");
  EXPECT(resolve(dag, "net", "", LM_RESOLVE_SHOW), "n0");
  EXPECT(resolve(dag, "net@head", "", LM_RESOLVE_SHOW), "n2");
  EXPECT(resolve(dag, "-1", "dddd4444", LM_RESOLVE_DOWNGRADE), "ERR Ambiguous walk");
  /* the merge's last parent's branch first, as Alembic runs it */
  EXPECT(plan(dag, 1, "", "eeee6666"), "aaaa1111 cccc3333 bbbb2222 dddd4444 eeee5555 eeee6666");
  EXPECT(plan(dag, 1, "", "n2"), "aaaa1111 bbbb2222 n0 n1 n2");
  EXPECT(plan(dag, 0, "eeee6666", "bbbb2222"), "eeee6666 eeee5555 dddd4444");
  EXPECT(steps(dag, "bbbb2222 cccc3333", "dddd4444", 1),
         "DELETE bbbb2222; UPDATE cccc3333->dddd4444; => {dddd4444}");
  EXPECT(steps(dag, "eeee6666", "eeee6666 eeee5555 dddd4444", 0),
         "UPDATE eeee6666->eeee5555; UPDATE eeee5555->dddd4444; INSERT bbbb2222; UPDATE "
         "dddd4444->cccc3333; => {bbbb2222 cccc3333}");
  EXPECT(steps(dag, "bbbb2222 n1", "n2", 1), "DELETE bbbb2222; UPDATE n1->n2; => {n2}");
  EXPECT(steps(dag, "n2", "n2", 0), "INSERT n1; UPDATE n2->bbbb2222; => {bbbb2222 n1}");
  lm_dag_free(dag);
}

/* Labels on revisions that are not bases, as Alembic 1.8.1 reads LABEL@… (issue 12):
 * r1 -> r2 -> {a, b}, `lbl` on b; zz a second, labelled base. */
static void test_labels(void) {
  lm_error err = {0};
  int rc;
  lm_dag *dag =
      build((const char *const[]){"r1", "r2:r1", "a:r2", "b:r2::lbl", "z0:::zz", NULL}, &err, &rc);
  CHECK(rc == 0);
  const char *const *labels;
  /* r2 is a branch point: the label names b alone */
  CHECK(lm_dag_labels(dag, lm_dag_find(dag, "b"), &labels) == 1 && !strcmp(labels[0], "lbl"));
  CHECK(lm_dag_labels(dag, lm_dag_find(dag, "r2"), &labels) == 0);
  EXPECT(migrate(dag, 0, "a b", "lbl@-1"), "b");
  EXPECT(migrate(dag, 0, "a b", "lbl@r2"), "b");
  /* Alembic's order: its walk down from the rows, taking them in index order */
  EXPECT(migrate(dag, 0, "a b", "r2"), "a b");
  EXPECT(migrate(dag, 0, "a b z0", "lbl@base"), "a b r2 r1");
  EXPECT(migrate(dag, 0, "a b z0", "zz@-1"), "z0");
  EXPECT(migrate(dag, 0, "a b z0", "zz@base"), "z0");
  EXPECT(migrate(dag, 0, "a z0", "lbl@r2"),
         "ERR Destination r2 is not a valid downgrade target from current head(s)");
  EXPECT(migrate(dag, 0, "a b z0", "zz@r2"), "ERR Not a valid downgrade target from current heads");
  EXPECT(migrate(dag, 0, "a b", "lbl@+1"),
         "ERR Relative revision lbl@+1 didn't produce 1 migrations");
  /* downgrading, what follows '@' names the destination on its own */
  EXPECT(migrate(dag, 0, "a b", "lbl@head"),
         "ERR Multiple head revisions are present for given argument 'lbl@head'; please specify a "
         "specific target revision, '<branchname>@head' to narrow to a specific head, or 'heads' "
         "for all heads");
  EXPECT(migrate(dag, 1, "r2", "lbl@+1"), "b");
  EXPECT(migrate(dag, 1, "", "lbl@+2"), "r1 r2");
  EXPECT(migrate(dag, 1, "", "lbl@+3"), "r1 r2 b");
  EXPECT(migrate(dag, 1, "a", "lbl@+1"), "b");
  EXPECT(migrate(dag, 1, "r1", "lbl@r2+1"), "r2 b");
  EXPECT(migrate(dag, 1, "", "lbl@b-1"), "r1 r2");
  /* a walk down to base is no upgrade target (Alembic fails on it with an AssertionError) */
  EXPECT(migrate(dag, 1, "", "lbl@r1-1"),
         "ERR Relative revision lbl@r1-1 walks down to base: there is nothing to upgrade to");
  EXPECT(migrate(dag, 1, "", "r1-1"),
         "ERR Relative revision r1-1 walks down to base: there is nothing to upgrade to");
  EXPECT(migrate(dag, 0, "a b z0", "lbl@r1-1"), "a b r2 r1");
  EXPECT(migrate(dag, 1, "", "lbl@head"), "r1 r2 b");
  EXPECT(migrate(dag, 1, "", "lbl@base"), "");
  EXPECT(migrate(dag, 1, "", "lbl@a"), "ERR Revision a is not a member of branch 'lbl'");
  EXPECT(migrate(dag, 1, "", "lbl@-1"), "ERR Relative revision lbl@-1 didn't produce 1 migrations");
  EXPECT(migrate(dag, 1, "r2", "r2@+1"), "ERR Ambiguous walk");
  /* rows one of which implies another (left by a stamp): Alembic upgrades from none */
  EXPECT(migrate(dag, 1, "a r1", "heads"),
         "ERR Requested revision a overlaps with other requested revisions r1");
  EXPECT(migrate(dag, 0, "a r1", "r1"), "a r2");
  /* one root below the destination: Alembic does not narrow it to the branch */
  EXPECT(migrate(dag, 0, "a z0", "zz@r1"), "a r2");
  lm_dag_free(dag);

  /* A label mid-line spreads down to the branch point, and "-1" is confined to the current
   * revision's branch: a depends on b, so a's row stands for b too, and only a goes. */
  dag = build(
      (const char *const[]){"r1", "r2:r1", "m1:r2", "m2:m1::mid", "m3:m2", "b:r2", "a:m3:b", NULL},
      &err, &rc);
  CHECK(rc == 0);
  CHECK(lm_dag_labels(dag, lm_dag_find(dag, "m1"), &labels) == 1);
  CHECK(lm_dag_labels(dag, lm_dag_find(dag, "r2"), &labels) == 0);
  EXPECT(migrate(dag, 0, "a", "-1"), "a");
  EXPECT(migrate(dag, 0, "a", "mid@-2"), "a m3");
  EXPECT(migrate(dag, 0, "a", "mid@r2"), "a m3 m2 m1");
  lm_dag_free(dag);

  /* No row is on mid's line (x, which depends on m1, holds it): mid@+1 starts from the
   * applied tip of the line, m1. */
  dag = build((const char *const[]){"r1", "m1:r1", "m2:m1::mid", "x:r1:m1", NULL}, &err, &rc);
  CHECK(rc == 0);
  EXPECT(migrate(dag, 1, "x", "mid@+1"), "m2");
  lm_dag_free(dag);

  /* mid@heads names h1 and h2, and h2 depends on h1: Alembic refuses the overlap */
  dag = build((const char *const[]){"r1:::mid", "h1:r1", "h2:r1:h1", NULL}, &err, &rc);
  CHECK(rc == 0);
  EXPECT(migrate(dag, 1, "", "mid@heads"),
         "ERR Requested revision h2 overlaps with other requested revisions h1");
  EXPECT(migrate(dag, 1, "", "heads"), "r1 h1 h2");
  lm_dag_free(dag);
  lm_error_clear(&err);
}

/* The order of a downgrade is Alembic's walk down from the rows (issue 12, parity seeds 11
 * and 71): the rows in index order, each walked down until it stands below another row.
 * Undoing c first lets the merge m unmerge into both parents, as Alembic leaves the rows;
 * undoing m first (the reverse of the upgrade order) deleted its row instead. */
static void test_downgrade_order(void) {
  lm_error err = {0};
  int rc;
  lm_dag *dag = build(
      (const char *const[]){"p0", "p1:p0", "p2:p0:p1", "c:p2", "m:p1,p2", "t:m", NULL}, &err, &rc);
  CHECK(rc == 0);
  EXPECT(migrate(dag, 0, "c t", "p2"), "c t m");
  EXPECT(steps(dag, "c t", "c t m", 0),
         "DELETE c; UPDATE t->m; INSERT p1; UPDATE m->p2; => {p1 p2}");
  /* a row below another position waits for it: x stands on w, which the walk meets first */
  lm_dag_free(dag);
  dag = build((const char *const[]){"b0", "w:b0", "x:w", "y:b0", "z:y,w", NULL}, &err, &rc);
  CHECK(rc == 0);
  EXPECT(migrate(dag, 0, "x z", "b0"), "x z y w");
  lm_dag_free(dag);
  lm_error_clear(&err);
}

static void test_scale(void) {
  enum { N = 100000 };
  lm_dag *dag = lm_dag_new();
  lm_error err = {0};
  char id[32], parent[32], path[64];
  int ok = 1;
  for (int i = 0; i < N && ok; i++) {
    snprintf(id, sizeof id, "%06xfeed", (unsigned)i);
    const char *down[1] = {parent};
    snprintf(path, sizeof path, "versions/%s.lua", id);
    const char *mid[1] = {"mid"}; /* a label halfway: the whole line carries it */
    ok = lm_dag_add(dag, id, down, i ? 1 : 0, mid, i == N / 2, NULL, 0, path, NULL, &err) >= 0;
    snprintf(parent, sizeof parent, "%s", id);
  }
  CHECK(ok);
  CHECK(lm_dag_finish(dag, &err) == 0);
  lm_revset heads = {0}, none = {0}, p = {0}, back = {0};
  CHECK(lm_dag_heads(dag, &heads) == 0 && heads.n == 1);
  CHECK(lm_dag_plan_upgrade(dag, &none, &heads, &p, &err) == 0 && p.n == N);
  CHECK(p.n == N && !strcmp(lm_dag_id(dag, p.idx[N - 1]), parent));
  CHECK(lm_dag_plan_downgrade(dag, &heads, &none, &back, &err) == 0 && back.n == N);
  lm_revset r = {0};
  CHECK(lm_dag_resolve(dag, "-50000", &heads, LM_RESOLVE_DOWNGRADE, &r, &err) == 0 && r.n == 1);
  lm_revset_free(&r);
  /* branch-scoped targets on the same line: a few walks over the graph each */
  char want[64];
  snprintf(want, sizeof want, "%s %06xfeed %06xfeed", parent, (unsigned)(N - 2), (unsigned)(N - 3));
  EXPECT(migrate(dag, 0, parent, "mid@-3"), want);
  snprintf(id, sizeof id, "%06xfeed", (unsigned)(N / 4));
  snprintf(want, sizeof want, "%06xfeed %06xfeed", (unsigned)(N / 4 + 1), (unsigned)(N / 4 + 2));
  EXPECT(migrate(dag, 1, id, "mid@+2"), want);
  int scope = -1;
  lm_revset base = {0};
  CHECK(lm_dag_resolve_scoped(dag, "mid@base", &heads, LM_RESOLVE_DOWNGRADE, &r, &scope, &err) ==
            0 &&
        r.n == 0 && scope == N / 2);
  CHECK(lm_dag_plan_downgrade_scoped(dag, &heads, &r, scope, &base, &err) == 0 && base.n == N);
  lm_revset_free(&base);
  lm_revset_free(&heads);
  lm_revset_free(&p);
  lm_revset_free(&back);
  lm_error_clear(&err);
  lm_dag_free(dag);
}

int main(void) {
  test_ids();
  test_validation();
  test_linear();
  test_branches();
  test_labels();
  test_downgrade_order();
  test_scale();
  printf("%d passed, %d failed\n", passed, failed);
  return failed ? 1 : 0;
}
