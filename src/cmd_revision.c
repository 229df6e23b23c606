/* revision and merge: a new revision file, its name and text made by luamigrate.revision.new
 * from the revisions resolved here and the project's template (or the built-in one), its id
 * claimed under a lock on the versions directory; --autogenerate's bodies are cmd_autogen.c's
 * compare, handed over as the Lua table it returned. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <lua.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#include "app.h"
#include "bind/bind.h"
#include "cmdargs.h"
#include "commands.h"
#include "dag_plan.h"
#include "newfile.h"

/* Two `revision --rev-id X` at once both pass the check against the files loaded before:
 * the id is claimed under an exclusive flock on the versions directory (released when the
 * process ends, killed or not), where the files present now are checked again. Returns the
 * locked directory's descriptor (the caller closes it after creating the file), or < 0. */
static int claim_id(const char *versions_dir, const char *id, const char *own, int *fd_out,
                    lm_error *err) {
  int fd = open(versions_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0)
    return lm_error_set(err, LM_EUSAGE, "cannot open %s: %s", versions_dir, strerror(errno));
  while (flock(fd, LOCK_EX) != 0) {
    if (errno == EINTR) continue;
    int e = errno;
    close(fd);
    return lm_error_set(err, LM_ERR, "cannot lock %s: %s", versions_dir, strerror(e));
  }
  DIR *d = fdopendir(dup(fd));
  if (!d) {
    int e = errno;
    close(fd);
    return lm_error_set(err, LM_ERR, "cannot read %s: %s", versions_dir, strerror(e));
  }
  size_t n = strlen(id);
  int rc = LM_OK;
  for (struct dirent *e; rc == LM_OK && (e = readdir(d));)
    if (!strncmp(e->d_name, id, n) && (e->d_name[n] == '_' || !strcmp(e->d_name + n, ".lua")) &&
        strcmp(e->d_name, own) != 0) { /* its own name: the exclusive create says why not */
      rc = lm_error_set(err, LM_EUSAGE, "Revision %s already present: %s/%s was created meanwhile",
                        id, versions_dir, e->d_name);
      lm_error_setfield(&err->hint,
                        "another 'luamigrate revision' took this id; choose another --rev-id");
    }
  closedir(d);
  if (rc) {
    close(fd);
    return rc;
  }
  *fd_out = fd;
  return LM_OK;
}

int lm_revision_random_id(char out[13], lm_error *err) {
  unsigned char raw[6];
  FILE *f = fopen("/dev/urandom", "rb");
  if (!f || fread(raw, 1, sizeof raw, f) != sizeof raw) {
    if (f) fclose(f);
    return lm_error_set(err, LM_ERR, "cannot read /dev/urandom for a revision id");
  }
  fclose(f);
  for (int i = 0; i < 6; i++) snprintf(out + (size_t)2 * i, 3, "%02x", raw[i]);
  return LM_OK;
}

static void push_strlist(lua_State *L, const int *idx, size_t n, const lm_dag *dag) {
  lua_createtable(L, (int)n, 0);
  for (size_t i = 0; i < n; i++) {
    lua_pushstring(L, lm_dag_id(dag, idx[i]));
    lua_rawseti(L, -2, (lua_Integer)i + 1);
  }
}

/* Refuses bases that are not heads (unless --splice) and duplicates, as Alembic does. */
static int check_bases(lm_app *app, const lm_cmdargs *a, const lm_revset *base, lm_error *err) {
  for (size_t i = 0; i < base->n; i++) {
    for (size_t j = 0; j < i; j++)
      if (base->idx[i] == base->idx[j])
        return lm_error_set(err, LM_EUSAGE, "Duplicate head revisions specified");
    if (!a->splice && !lm_dag_is_head(app->dag, base->idx[i]))
      return lm_error_set(err, LM_EUSAGE,
                          "Revision %s is not a head revision; please specify --splice to "
                          "create a new branch from this revision",
                          lm_dag_id(app->dag, base->idx[i]));
  }
  return LM_OK;
}

int lm_cmd_revision(lm_app *app, lm_cmdargs *a, lm_error *err) {
  lua_State *L = app->L;
  lm_revset none = {0}, base = {0}, heads = {0};
  int top = lua_gettop(L), bodies = 0; /* --autogenerate's result table */
  int rc = lm_cmdargs_positional(app->opts, a, 0, 0, "", err);
  if (rc) return rc;
  if (lm_dag_heads(app->dag, &heads)) return lm_error_set(err, LM_ENOMEM, "out of memory");
  const char *head = a->head ? a->head : "head";
  if (!strcmp(head, "head") && heads.n > 1) {
    rc = lm_error_set(err, LM_EUSAGE,
                      "Multiple heads are present; please specify the head revision on which "
                      "the new revision should be based, or perform a merge.");
    lm_error_setfield(&err->hint,
                      "luamigrate merge heads -m \"merge\" joins them; --head REV bases the "
                      "new revision on one of them");
    goto cleanup;
  }
  if ((rc = lm_dag_resolve(app->dag, head, &none, LM_RESOLVE_SHOW, &base, err)) < 0) goto cleanup;
  if ((rc = check_bases(app, a, &base, err))) goto cleanup;
  if (a->autogenerate) {
    if ((rc = lm_autogen_compare(app, err))) goto cleanup;
    bodies = lua_gettop(L);
    int unchanged = lua_getfield(L, bodies, "upgrade") == LUA_TNIL;
    lua_pop(L, 1);
    if (unchanged) {
      printf("No changes in schema detected; no revision written.\n");
      goto cleanup;
    }
    lm_autogen_print_ops(app, bodies, "Detected ");
  }
  rc = lm_revision_write(app, a, &base, bodies, err);
cleanup:
  lua_settop(L, top);
  lm_revset_free(&base);
  lm_revset_free(&heads);
  return rc < 0 ? rc : LM_OK;
}

/* merge REVS...: a new, empty revision whose down_revision is every revision named. */
int lm_cmd_merge(lm_app *app, lm_cmdargs *a, lm_error *err) {
  lm_revset base = {0};
  int rc = lm_cmdargs_positional(app->opts, a, 1, 64, "REVS", err);
  if (rc) return rc;
  if ((rc = lm_dag_resolve_each(app->dag, a->pos, (size_t)a->npos, &base, err)) < 0) goto cleanup;
  if (base.n < 2) {
    rc = lm_error_set(err, LM_EUSAGE, "merge: %s names %s; a merge needs two or more revisions",
                      a->npos == 1 ? a->pos[0] : "the arguments",
                      base.n ? lm_dag_id(app->dag, base.idx[0]) : "<base>");
    goto cleanup;
  }
  if ((rc = check_bases(app, a, &base, err))) goto cleanup;
  rc = lm_revision_write(app, a, &base, 0, err);
cleanup:
  lm_revset_free(&base);
  return rc < 0 ? rc : LM_OK;
}

/* Pushes --depends-on's revisions as a list: partial ids become full ids, labels stay labels
 * (as Alembic keeps them). Pushes nothing on failure. */
static int push_depends(lm_app *app, const lm_cmdargs *a, lm_error *err) {
  lua_State *L = app->L;
  lm_revset none = {0};
  lua_createtable(L, a->ndeps, 0);
  for (int i = 0; i < a->ndeps; i++) {
    lm_revset d = {0};
    int r = lm_dag_resolve(app->dag, a->depends[i], &none, LM_RESOLVE_SHOW, &d, err);
    if (r < 0 || d.n != 1) {
      lm_revset_free(&d);
      lua_pop(L, 1);
      if (r >= 0)
        lm_error_set(err, LM_EUSAGE, "--depends-on %s: not a single revision", a->depends[i]);
      return LM_EUSAGE;
    }
    const char *full = lm_dag_id(app->dag, d.idx[0]);
    int keep_label = strcmp(full, a->depends[i]) != 0 &&
                     strncmp(full, a->depends[i], strlen(a->depends[i])) != 0;
    lua_pushstring(L, keep_label ? a->depends[i] : full);
    lua_rawseti(L, -2, i + 1);
    lm_revset_free(&d);
  }
  return LM_OK;
}

/* Writes the new revision file based on `base` (its down_revision): the id checked here, the
 * name and text from one luamigrate.revision.new call, the file created here. `bodies` is the
 * stack index of a table whose upgrade and downgrade fields are the generated bodies (its
 * upgrade nil reads as empty), or 0 for the template's own. */
int lm_revision_write(lm_app *app, const lm_cmdargs *a, const lm_revset *base, int bodies,
                      lm_error *err) {
  lua_State *L = app->L;
  int top = lua_gettop(L);
  char *path = NULL, *tmpl = NULL, *tmpl_path = NULL;
  char id[64];
  int rc = LM_OK;
  if (bodies) bodies = lua_absindex(L, bodies);
  if (a->rev_id) {
    if (!lm_dag_valid_id(a->rev_id))
      return lm_error_set(err, LM_EUSAGE,
                          "--rev-id '%s': a revision id is 1 to 32 letters, digits or '_'",
                          a->rev_id);
    snprintf(id, sizeof id, "%s", a->rev_id);
  } else if ((rc = lm_revision_random_id(id, err))) {
    return rc;
  }
  if (lm_dag_find(app->dag, id) >= 0)
    return lm_error_set(err, LM_EUSAGE, "Revision %s already present", id);
  /* Template: the project's own, else (none given) revision.new's built-in one. */
  tmpl_path = lm_path_join(app->cfg.script_location, "script.lua.tmpl");
  size_t tlen = 0;
  if (tmpl_path && access(tmpl_path, F_OK) == 0 &&
      (rc = lm_read_file(tmpl_path, &tmpl, &tlen, err)))
    goto cleanup;
  if ((rc = lm_push_module_field(L, "luamigrate.revision", "new", err))) goto cleanup;
  lua_createtable(L, 0, 9);
  lua_pushstring(L, id);
  lua_setfield(L, -2, "id");
  if (a->message) {
    lua_pushstring(L, a->message);
    lua_setfield(L, -2, "message");
  }
  if (tmpl) {
    lua_pushstring(L, tmpl);
    lua_setfield(L, -2, "template_text");
    free(tmpl);
    tmpl = NULL;
  }
  if (bodies) {
    if (lua_getfield(L, bodies, "upgrade") == LUA_TNIL) {
      lua_pop(L, 1);
      lua_pushliteral(L, "");
    }
    lua_setfield(L, -2, "upgrades");
    lua_getfield(L, bodies, "downgrade");
    lua_setfield(L, -2, "downgrades");
  }
  push_strlist(L, base->idx, base->n, app->dag);
  lua_setfield(L, -2, "down_revision");
  if (a->branch_label) {
    lua_createtable(L, 1, 0);
    lua_pushstring(L, a->branch_label);
    lua_rawseti(L, -2, 1);
    lua_setfield(L, -2, "branch_labels");
  }
  if (a->ndeps) {
    if ((rc = push_depends(app, a, err))) goto cleanup;
    lua_setfield(L, -2, "depends_on");
  }
  if (lm_pcall(L, 1, 2) != LUA_OK) {
    lm_error_from_lua(L, -1, LM_EUSAGE, err);
    rc = err->code ? err->code : LM_ERR;
    goto cleanup;
  }
  const char *fname = lua_tostring(L, -2), *text = lua_tostring(L, -1);
  if (!fname || !text) {
    rc = lm_error_set(err, LM_ERR, "luamigrate.revision.new returned no file name and text");
    goto cleanup;
  }
  path = lm_path_join(app->cfg.versions_dir, fname);
  if (!path) {
    rc = lm_error_set(err, LM_ENOMEM, "out of memory");
    goto cleanup;
  }
  int claim = -1;
  if ((rc = claim_id(app->cfg.versions_dir, id, fname, &claim, err))) goto cleanup;
  rc = lm_newfile_write(path, text, err);
  close(claim);
  if (rc) goto cleanup;
  printf("Generating %s ... done\n", path);
cleanup:
  lua_settop(L, top);
  free(path);
  free(tmpl);
  free(tmpl_path);
  return rc < 0 ? rc : LM_OK;
}
