/* The report of a failed step: the Lua error table of a migration turned into one line
 * naming file:line, revision and statement, and a detail with the server's fields and the
 * user's frames of the traceback. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "runner.h"

/* The traceback as a user wants it: frames in luamigrate's own modules ("[luamigrate]/...",
 * the embedded sources) are left out, and with them the C functions they called into or that
 * called them (a "[C]" frame followed by no frame of the user's) and the "(...tail calls...)"
 * mark of a frame left out. -v keeps everything. malloc'd, or NULL. */
static char *user_frames(const char *tb) {
  if (!tb) return NULL;
  if (lm_log_verbose()) return strdup(tb);
  size_t nlines = 1;
  for (const char *p = tb; *p; p++) nlines += *p == '\n';
  const char **line = malloc(nlines * sizeof *line);
  size_t *len = malloc(nlines * sizeof *len);
  char *kind = malloc(nlines), *out = malloc(strlen(tb) + 1);
  if (!line || !len || !kind || !out) {
    free(line);
    free(len);
    free(kind);
    free(out);
    return NULL;
  }
  /* kind: 'u' the user's frame (or the heading), 'i' internal, 'c' a C frame, 't' a tail mark */
  size_t n = 0;
  for (const char *p = tb; *p && n < nlines; n++) {
    const char *nl = strchr(p, '\n');
    line[n] = p;
    len[n] = nl ? (size_t)(nl - p) : strlen(p);
    const char *f = p + strspn(p, "\t ");
    if (!strncmp(f, "[luamigrate]/", 13))
      kind[n] = 'i';
    else if (!strncmp(f, "[C]:", 4))
      kind[n] = 'c';
    else if (!strncmp(f, "(...tail calls...)", 18))
      kind[n] = 't';
    else
      kind[n] = 'u';
    p = nl ? nl + 1 : p + len[n];
  }
  for (size_t i = 0; i < n; i++) {
    if (kind[i] != 'c') continue;
    size_t j = i + 1;
    while (j < n && (kind[j] == 't' || kind[j] == 'c')) j++;
    if (j == n || kind[j] == 'i') kind[i] = 'i';
  }
  for (size_t i = 1; i < n; i++)
    if (kind[i] == 't' && kind[i - 1] == 'i') kind[i] = 'i';
  size_t used = 0;
  for (size_t i = 0; i < n; i++) {
    if (kind[i] == 'i') continue;
    if (used) out[used++] = '\n';
    memcpy(out + used, line[i], len[i]);
    used += len[i];
  }
  out[used] = '\0';
  free(line);
  free(len);
  free(kind);
  return out;
}

/* Builds the user-facing error for a failed step from the Lua error table at the top. */
void lm_run_step_error(lm_app *app, int idx, int upgrade, const char *from, const char *to,
                       lm_error *err) {
  lua_State *L = app->L;
  int e = lua_gettop(L);
  lm_error_from_lua(L, e, LM_ERR, err);
  const char *where = NULL;
  char *tb = NULL;
  if (lua_istable(L, e)) {
    lua_getfield(L, e, "where");
    where = lua_tostring(L, -1);
    lua_getfield(L, e, "traceback");
    tb = user_frames(lua_tostring(L, -1));
  }
  const char *path = lm_dag_path(app->dag, idx);
  const char *msg = err->message ? err->message : "error";
  char *first = NULL;
  size_t cap =
      strlen(msg) + strlen(path) + strlen(from) + strlen(to) + 256 + (where ? strlen(where) : 0);
  first = malloc(cap);
  if (first) {
    /* A Lua error string already starts with its own file:line. */
    int has_where = where && strncmp(msg, where, strlen(where)) == 0;
    if (err->sqlstate)
      snprintf(first, cap, "%s: %s %s -> %s failed: ERROR %s: %s", where ? where : path,
               upgrade ? "upgrade" : "downgrade", from, to, err->sqlstate, msg);
    else
      snprintf(first, cap, "%s%s%s %s -> %s failed: %s", has_where || !where ? "" : where,
               has_where || !where ? "" : ": ", upgrade ? "upgrade" : "downgrade", from, to, msg);
  }
  /* Detail: the statement, the server's detail/hint/context, then the Lua traceback. */
  size_t dcap = 256 + (err->statement ? strlen(err->statement) : 0) +
                (err->detail ? strlen(err->detail) : 0) +
                (err->context ? strlen(err->context) : 0) + (tb ? strlen(tb) : 0);
  char *detail = malloc(dcap);
  if (detail) {
    detail[0] = '\0';
    size_t used = 0;
#define ADD(...) used += (size_t)snprintf(detail + used, dcap - used, __VA_ARGS__)
    ADD("revision %s (%s)", lm_dag_id(app->dag, idx), path);
    if (err->statement) ADD("\nstatement: %s", err->statement);
    if (err->position) ADD("\nposition: %d", err->position);
    if (err->detail) ADD("\ndetail: %s", err->detail);
    if (err->context) ADD("\ncontext: %s", err->context);
    if (tb) ADD("\n%s", tb);
#undef ADD
  }
  if (first) {
    free(err->message);
    err->message = first;
  }
  free(err->detail);
  err->detail = detail;
  err->code = LM_ERR;
  free(tb);
  lua_settop(L, e - 1);
}

/* The hint of a step that failed after an autocommit block committed part of it. */
void lm_run_half_done_hint(lm_app *app, int idx, int upgrade, lm_error *err) {
  char hint[512];
  snprintf(hint, sizeof hint,
           "revision %s is half-done: the work before its autocommit block (or its own "
           "COMMIT) is committed; "
           "'luamigrate status' shows what is done, and 'luamigrate %s --resume' "
           "finishes it once the cause is fixed",
           lm_dag_id(app->dag, idx), upgrade ? "upgrade" : "downgrade");
  lm_error_setfield(&err->hint, hint);
}
