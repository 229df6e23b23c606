/* Alembic's line formats for revisions and the JSON writer of the --json forms (report.c). */
#ifndef LM_REPORT_H
#define LM_REPORT_H

#include <stdio.h>

#include "dag.h"
#include "error.h"
#include "strbuf.h"

/* "a, b, c": the ids of revisions idx[0..n). */
void lm_report_ids(lm_strbuf *b, const lm_dag *dag, const int *idx, size_t n);
/* Alembic's Script._head_only: "[parents (deps) -> ]id[ (labels)] (head)...[, doc]".
 * `current` (may be NULL) marks "(current)". */
void lm_report_head(lm_strbuf *b, const lm_dag *dag, int idx, int include_branches, int include_doc,
                    int include_parents, int tree_indicators, const lm_revset *current);
/* Alembic's Script.log_entry (the verbose form), the file's whole docstring indented. */
void lm_report_log_entry(lm_strbuf *b, const lm_dag *dag, int idx, const lm_revset *current);
/* Writes b and a newline to `out` (the run's app->out: stdout, or a fleet target's capture)
 * and empties b; LM_ENOMEM when an append had failed. */
int lm_report_write(FILE *out, lm_strbuf *b, lm_error *err);

/* A JSON string literal. */
void lm_report_json_str(lm_strbuf *b, const char *s);
/* A JSON array of the ids in s. */
void lm_report_json_ids(lm_strbuf *b, const lm_dag *dag, const lm_revset *s);
/* A JSON array of revisions idx[0..n) (show's fields; "current" when `current` is given),
 * written to `out` as one line. */
int lm_report_json_revs(FILE *out, const lm_dag *dag, const int *idx, size_t n,
                        const lm_revset *current, lm_error *err);

#endif
