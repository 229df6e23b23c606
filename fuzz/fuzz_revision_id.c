/* libFuzzer target: revision identifier resolution (src/dag.c). The input is lines:
 *   r ID [P1,P2 [L1,L2 [D1,D2]]]   adds a revision (parents, branch labels, depends_on; "-"
 *                                  for an empty list); without any, a built-in graph is used
 *   c ID                           marks ID as a current head (as the version table would)
 *   anything else                  a target expression (head, heads, base, ab12, +2, x@head,
 *                                  label@-1, REV+N, ...), resolved in every mode; the
 *                                  upgrade/downgrade plans and their version-table steps
 *                                  are then computed as the commands would
 *   A:B                            a range as upgrade/downgrade --sql take it: A resolved
 *                                  absolutely becomes the current heads B starts from */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "dag.h"

/* A graph with two bases, a branch point, labels, a merge, a dependency and ids sharing
 * prefixes, so relative steps, label@ and prefix look-ups all have something to find. */
static const char *const builtin[] = {
    "r ae10",      "r ae21 ae10",      "r b300 ae21 - -",     "r c401 b300 feature",
    "r c402 c401", "r d501 b300 main", "r d502 d501",         "r f601 - other ae21",
    "r f602 f601", "r e701 c402,d502", "r e702 e701 release", NULL};

#define MAX_REVS 64
#define MAX_EXPRS 16

static size_t split(char *s, const char **out, size_t cap) {
  size_t n = 0;
  if (!s || !strcmp(s, "-")) return 0;
  for (char *tok = strtok(s, ","); tok && n < cap; tok = strtok(NULL, ",")) out[n++] = tok;
  return n;
}

/* "r ID P L D": fields split on single spaces; lists on commas. */
static int add_line(lm_dag *dag, char *line, lm_error *err) {
  char *f[4] = {NULL, NULL, NULL, NULL};
  size_t nf = 0;
  char *save = NULL;
  for (char *tok = strtok_r(line + 2, " ", &save); tok && nf < 4; tok = strtok_r(NULL, " ", &save))
    f[nf++] = tok;
  if (!f[0]) return 0;
  const char *down[8], *labels[8], *deps[8];
  size_t nd = split(f[1], down, 8), nl = split(f[2], labels, 8), ne = split(f[3], deps, 8);
  return lm_dag_add(dag, f[0], down, nd, labels, nl, deps, ne, "versions/fuzz.lua", "doc", err);
}

static void exercise(const lm_dag *dag, const lm_revset *current, const char *expr) {
  for (int mode = LM_RESOLVE_UPGRADE; mode <= LM_RESOLVE_SHOW; mode++) {
    lm_revset target = {0}, plan = {0}, heads = {0};
    lm_error err = {0};
    int rc = lm_dag_resolve(dag, expr, current, (lm_resolve_mode)mode, &target, &err);
    if (rc >= 0 && (mode == LM_RESOLVE_UPGRADE || mode == LM_RESOLVE_DOWNGRADE)) {
      int up = mode == LM_RESOLVE_UPGRADE;
      lm_error_clear(&err);
      rc = up ? lm_dag_plan_upgrade(dag, current, &target, &plan, &err)
              : lm_dag_plan_downgrade(dag, current, &target, &plan, &err);
      for (size_t i = 0; rc >= 0 && i < current->n; i++)
        rc = lm_revset_push(&heads, current->idx[i]);
      for (size_t i = 0; rc >= 0 && i < plan.n; i++) {
        lm_vt_op ops[64];
        rc = lm_dag_step(dag, &heads, plan.idx[i], up, ops, 64, &err);
      }
      char *ids = lm_dag_format_ids(dag, heads.idx, heads.n);
      free(ids);
    }
    lm_error_clear(&err);
    lm_revset_free(&target);
    lm_revset_free(&plan);
    lm_revset_free(&heads);
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size > 4096) return 0;
  char *text = malloc(size + 1);
  if (!text) return 0;
  memcpy(text, data, size);
  text[size] = '\0';

  char *lines[MAX_REVS + MAX_EXPRS + 16];
  size_t nlines = 0;
  int own_graph = 0;
  for (char *p = text; p && nlines < sizeof lines / sizeof *lines;) {
    char *nl = strchr(p, '\n');
    if (nl) *nl = '\0';
    lines[nlines++] = p;
    if (!strncmp(p, "r ", 2)) own_graph = 1;
    p = nl ? nl + 1 : NULL;
  }

  lm_dag *dag = lm_dag_new();
  lm_error err = {0};
  int rc = 0;
  size_t nrevs = 0;
  if (!own_graph) {
    for (const char *const *b = builtin; *b && rc >= 0; b++) {
      char buf[64];
      strcpy(buf, *b);
      rc = add_line(dag, buf, &err);
    }
  }
  for (size_t i = 0; own_graph && rc >= 0 && i < nlines; i++)
    if (!strncmp(lines[i], "r ", 2) && nrevs++ < MAX_REVS) rc = add_line(dag, lines[i], &err);
  if (rc >= 0) rc = lm_dag_finish(dag, &err);
  lm_error_clear(&err);
  if (rc >= 0) {
    lm_revset current = {0};
    for (size_t i = 0; i < nlines; i++) {
      if (strncmp(lines[i], "c ", 2)) continue;
      int idx = lm_dag_find(dag, lines[i] + 2);
      if (idx >= 0 && !lm_revset_has(&current, idx)) lm_revset_push(&current, idx);
    }
    size_t nexpr = 0;
    for (size_t i = 0; i < nlines && nexpr < MAX_EXPRS; i++) {
      if (!strncmp(lines[i], "r ", 2) || !strncmp(lines[i], "c ", 2)) continue;
      exercise(dag, &current, lines[i]);
      char *colon = strchr(lines[i], ':');
      if (colon) {
        lm_revset start = {0};
        lm_error e = {0};
        lm_revset none = {0};
        *colon = '\0';
        /* ":B" starts from base */
        if (colon == lines[i] ||
            lm_dag_resolve(dag, lines[i], &none, LM_RESOLVE_SHOW, &start, &e) >= 0)
          exercise(dag, &start, colon + 1);
        *colon = ':';
        lm_error_clear(&e);
        lm_revset_free(&start);
      }
      nexpr++;
    }
    lm_revset_free(&current);
  }
  lm_dag_free(dag);
  free(text);
  return 0;
}
