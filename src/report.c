/* Alembic's line formats for heads, current, history, show and branches (Script._head_only
 * and Script.log_entry, line for line, so scripts written against Alembic keep working), and
 * the JSON the --json forms and status write. Results go to stdout. */
#include "report.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "app.h"
#include "log.h"

void lm_report_ids(lm_strbuf *b, const lm_dag *dag, const int *idx, size_t n) {
  for (size_t i = 0; i < n; i++) {
    if (i) lm_strbuf_cat(b, ", ");
    lm_strbuf_cat(b, lm_dag_id(dag, idx[i]));
  }
}

static void format_down(lm_strbuf *b, const lm_dag *dag, int idx) {
  const int *p;
  size_t n = lm_dag_parents(dag, idx, &p);
  if (n == 0)
    lm_strbuf_cat(b, "<base>");
  else
    lm_report_ids(b, dag, p, n);
}

/* " (head)" and the like, coloured when stdout gets colour. */
static void add_mark(lm_strbuf *b, const char *mark) {
  lm_strbuf_cat(b, " ");
  lm_strbuf_cat(b, lm_log_sgr(stdout, LM_STYLE_MARK));
  lm_strbuf_cat(b, "(");
  lm_strbuf_cat(b, mark);
  lm_strbuf_cat(b, ")");
  lm_strbuf_cat(b, lm_log_sgr(stdout, LM_STYLE_RESET));
}

/* Alembic's Script._head_only. `current` (may be NULL) marks "(current)". */
void lm_report_head(lm_strbuf *b, const lm_dag *dag, int idx, int include_branches, int include_doc,
                    int include_parents, int tree_indicators, const lm_revset *current) {
  if (include_parents) {
    format_down(b, dag, idx);
    const int *d;
    size_t nd = lm_dag_deps(dag, idx, &d);
    if (nd) {
      lm_strbuf_cat(b, " (");
      lm_report_ids(b, dag, d, nd);
      lm_strbuf_cat(b, ")");
    }
    lm_strbuf_cat(b, " -> ");
  }
  lm_strbuf_cat(b, lm_dag_id(dag, idx));
  const char *const *labels;
  size_t nl = lm_dag_labels(dag, idx, &labels);
  if (include_branches && nl) {
    lm_strbuf_cat(b, " (");
    lm_strbuf_join(b, labels, nl);
    lm_strbuf_cat(b, ")");
  }
  if (lm_dag_is_real_head(dag, idx)) add_mark(b, "head");
  if (lm_dag_is_head(dag, idx) && !lm_dag_is_real_head(dag, idx)) add_mark(b, "effective head");
  if (current && lm_revset_has(current, idx)) add_mark(b, "current");
  if (tree_indicators) {
    if (lm_dag_is_branch_point(dag, idx)) add_mark(b, "branchpoint");
    if (lm_dag_is_merge_point(dag, idx)) add_mark(b, "mergepoint");
  }
  if (include_doc) {
    lm_strbuf_cat(b, ", ");
    lm_strbuf_cat(b, lm_dag_doc(dag, idx));
  }
}

/* Alembic's Script.lm_report_log_entry (the verbose form). */
void lm_report_log_entry(lm_strbuf *b, const lm_dag *dag, int idx, const lm_revset *current) {
  lm_strbuf_add(b, "Rev: %s", lm_dag_id(dag, idx));
  if (lm_dag_is_head(dag, idx)) add_mark(b, "head");
  if (lm_dag_is_branch_point(dag, idx)) add_mark(b, "branchpoint");
  if (lm_dag_is_merge_point(dag, idx)) add_mark(b, "mergepoint");
  if (current && lm_revset_has(current, idx)) add_mark(b, "current");
  lm_strbuf_add(b, "\n");
  lm_strbuf_add(b, lm_dag_is_merge_point(dag, idx) ? "Merges: " : "Parent: ");
  format_down(b, dag, idx);
  lm_strbuf_add(b, "\n");
  const int *v;
  size_t n = lm_dag_deps(dag, idx, &v);
  if (n) {
    lm_strbuf_add(b, "Also depends on: ");
    lm_report_ids(b, dag, v, n);
    lm_strbuf_add(b, "\n");
  }
  if (lm_dag_is_branch_point(dag, idx)) {
    n = lm_dag_children(dag, idx, &v);
    lm_strbuf_add(b, "Branches into: ");
    lm_report_ids(b, dag, v, n);
    lm_strbuf_add(b, "\n");
  }
  const char *const *labels;
  n = lm_dag_labels(dag, idx, &labels);
  if (n) {
    lm_strbuf_add(b, "Branch names: ");
    lm_strbuf_join(b, labels, n);
    lm_strbuf_add(b, "\n");
  }
  lm_strbuf_add(b, "Path: %s\n\n", lm_dag_path(dag, idx));
  char *longdoc = lm_loader_longdoc(lm_dag_path(dag, idx));
  const char *doc = longdoc ? longdoc : "";
  while (*doc) {
    const char *nl = strchr(doc, '\n');
    size_t len = nl ? (size_t)(nl - doc) : strlen(doc);
    lm_strbuf_add(b, "    %.*s\n", (int)len, doc);
    if (!nl) break;
    doc = nl + 1;
  }
  free(longdoc);
}

int lm_report_write(FILE *out, lm_strbuf *b, lm_error *err) {
  if (b->oom) {
    free(b->s);
    memset(b, 0, sizeof *b);
    return lm_error_set(err, LM_ENOMEM, "out of memory");
  }
  fwrite(b->s ? b->s : "", 1, b->n, out);
  fputc('\n', out);
  free(b->s);
  memset(b, 0, sizeof *b);
  return LM_OK;
}

void lm_report_json_str(lm_strbuf *b, const char *s) {
  lm_strbuf_add(b, "\"");
  for (; s && *s; s++) {
    unsigned char c = (unsigned char)*s;
    if (c == '"' || c == '\\')
      lm_strbuf_add(b, "\\%c", c);
    else if (c == '\n')
      lm_strbuf_add(b, "\\n");
    else if (c == '\t')
      lm_strbuf_add(b, "\\t");
    else if (c < 0x20)
      lm_strbuf_add(b, "\\u%04x", c);
    else
      lm_strbuf_add(b, "%c", c);
  }
  lm_strbuf_add(b, "\"");
}

/* A JSON array of the ids of revisions v[0..n). */
static void json_idx(lm_strbuf *b, const lm_dag *dag, const int *v, size_t n) {
  lm_strbuf_add(b, "[");
  for (size_t i = 0; i < n; i++) {
    if (i) lm_strbuf_add(b, ", ");
    lm_report_json_str(b, lm_dag_id(dag, v[i]));
  }
  lm_strbuf_add(b, "]");
}

void lm_report_json_ids(lm_strbuf *b, const lm_dag *dag, const lm_revset *s) {
  json_idx(b, dag, s->idx, s->n);
}

/* One revision as a JSON object (the fields of `show`). */
static void json_rev(lm_strbuf *b, const lm_dag *dag, int idx, const lm_revset *current) {
  const int *v;
  size_t n;
  lm_strbuf_add(b, "{\"revision\": ");
  lm_report_json_str(b, lm_dag_id(dag, idx));
  lm_strbuf_add(b, ", \"down_revisions\": ");
  n = lm_dag_parents(dag, idx, &v);
  json_idx(b, dag, v, n);
  lm_strbuf_add(b, ", \"depends_on\": ");
  n = lm_dag_deps(dag, idx, &v);
  json_idx(b, dag, v, n);
  lm_strbuf_add(b, ", \"branch_labels\": [");
  const char *const *labels;
  n = lm_dag_labels(dag, idx, &labels);
  for (size_t i = 0; i < n; i++) {
    if (i) lm_strbuf_add(b, ", ");
    lm_report_json_str(b, labels[i]);
  }
  lm_strbuf_add(b, "], \"message\": ");
  lm_report_json_str(b, lm_dag_doc(dag, idx));
  lm_strbuf_add(b, ", \"path\": ");
  lm_report_json_str(b, lm_dag_path(dag, idx));
  lm_strbuf_add(b,
                ", \"head\": %s, \"effective_head\": %s, \"branch_point\": %s, \"merge_point\": %s",
                lm_dag_is_real_head(dag, idx) ? "true" : "false",
                lm_dag_is_head(dag, idx) && !lm_dag_is_real_head(dag, idx) ? "true" : "false",
                lm_dag_is_branch_point(dag, idx) ? "true" : "false",
                lm_dag_is_merge_point(dag, idx) ? "true" : "false");
  if (current)
    lm_strbuf_add(b, ", \"current\": %s", lm_revset_has(current, idx) ? "true" : "false");
  lm_strbuf_add(b, "}");
}

/* A JSON array of revisions, written as one line. */
int lm_report_json_revs(FILE *out, const lm_dag *dag, const int *idx, size_t n,
                        const lm_revset *current, lm_error *err) {
  lm_strbuf b = {0};
  lm_strbuf_add(&b, "[");
  for (size_t i = 0; i < n; i++) {
    if (i) lm_strbuf_add(&b, ", ");
    json_rev(&b, dag, idx[i], current);
  }
  lm_strbuf_add(&b, "]");
  return lm_report_write(out, &b, err);
}
