/* The workspace: what the commands share to get a database ready to work on. Connect (and
 * say where), take the migration lock (the tables made under it), read the version table's
 * rows as revisions, refuse rows that overlap, check applied files for edits, and the refusal
 * (and the --resume wait) while the journal records a half-done revision. */
#include "workspace.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cancel.h"
#include "conn.h"
#include "log.h"
#include "strbuf.h"
#include "tx.h"

/* The work connection, and with `lock_conn` (lock = "session") the lock's own, opened at
 * once: the second costs no round trip of its own. */
static int open_conns(lm_app *app, int lock_conn, lm_error *err) {
  double t0 = lm_log_clock_ms();
  PGconn *c[2] = {NULL, NULL};
  lm_conn_pending *p = app->preconnect;
  app->preconnect = NULL;
  int rc = p ? lm_conn_open_end(p, c, lock_conn ? 2 : 1, err)
             : lm_conn_open_n(app->cfg.url, c, lock_conn ? 2 : 1, err);
  if (rc) return rc;
  app->conn = c[0];
  app->lock.conn = c[1];         /* lm_lock_acquire takes it over */
  lm_cancel_set_conn(app->conn); /* from its first statement: any may wait on a lock */
  if (lm_log_verbose()) {
    char *where = lm_conn_describe(app->conn);
    int v = PQserverVersion(app->conn);
    lm_log_detail("Connected to %s (PostgreSQL %d.%d) in %.1f ms", where ? where : "?", v / 10000,
                  v % 10000, lm_log_clock_ms() - t0);
    free(where);
  }
  return lm_vt_init(&app->vt, app->conn, app->cfg.version_table, err);
}

int lm_workspace_connect(lm_app *app, lm_error *err) {
  return open_conns(app, 0, err);
}

/* The commands that connect first thing, and how many connections they open. */
static int connections_for(const lm_app *app, const char *command, const lm_cmdargs *a) {
  if (!strcmp(command, "status")) return 1;
  if ((!strcmp(command, "upgrade") || !strcmp(command, "downgrade")) && !a->sql && !a->help)
    return app->cfg.lock_mode == LM_LOCK_SESSION ? 2 : 1;
  return 0;
}

void lm_workspace_preconnect(lm_app *app, const char *command, const lm_cmdargs *a) {
  int n = connections_for(app, command, a);
  if (n && !app->preconnect) app->preconnect = lm_conn_open_begin(app->cfg.url, n);
}

void lm_workspace_preconnect_drop(lm_app *app) {
  lm_conn_open_abandon(app->preconnect);
  app->preconnect = NULL;
}

int lm_workspace_connect_locking(lm_app *app, lm_error *err) {
  return open_conns(app, app->cfg.lock_mode == LM_LOCK_SESSION, err);
}

/* Takes the migration lock and makes sure the tables exist. A command that changes the
 * database and was given no URL at all (no --url, no DATABASE_URL, the config's url nil:
 * the usual forgotten `export`) says which database libpq's defaults picked. */
int lm_workspace_lock(lm_app *app, lm_error *err) {
  double t0 = lm_log_clock_ms();
  if (!app->cfg.url) {
    char *where = lm_conn_describe(app->conn);
    lm_log_info(
        "No database URL given (--url, DATABASE_URL or the config's url): using libpq's "
        "defaults, %s",
        where ? where : "?");
    free(where);
  }
  /* A session lock is taken on its own connection: meanwhile the work connection asks
   * which of the tables exist (the other modes' locking uses the work connection). What it
   * found holds when the lock is had at the first try; after a wait the holder may have
   * created or changed them, so they are asked again under the lock (lm_vt_ensure). */
  const int probing = app->cfg.lock_mode == LM_LOCK_SESSION && !app->vt.known;
  if (probing && lm_vt_probe_send(&app->vt, app->conn, err)) return err->code;
  int rc = lm_lock_acquire(&app->lock, (lm_lock_mode)app->cfg.lock_mode, app->conn, app->cfg.url,
                           app->cfg.version_table, app->vt.lock, app->cfg.lock_timeout,
                           app->cfg.lock_lease, app->opts->quiet, err);
  if (probing) {
    lm_error probe_err = {0};
    int prc = lm_vt_probe_wait(&app->vt, app->conn, rc ? &probe_err : err);
    lm_error_clear(&probe_err);
    if (!rc) rc = prc;
    if (app->lock.waited) app->vt.known = 0;
  }
  if (rc) return rc;
  /* Every statement on the work connection first checks the lock is still held. */
  lm_conn_set_guard(app->conn, lm_lock_check, &app->lock);
  static const char *const modes[] = {"session", "xact", "table"};
  if (app->cfg.lock_mode == LM_LOCK_XACT)
    lm_log_detail("Migration lock (xact): taken by each transaction");
  else
    lm_log_detail("Migration lock (%s) taken in %.1f ms", modes[app->cfg.lock_mode],
                  lm_log_clock_ms() - t0);
  if (app->cfg.lock_mode != LM_LOCK_XACT) return lm_vt_ensure(&app->vt, app->conn, err);
  /* Transaction locks: the tables are created under one (a dry run is already inside its
   * transaction). */
  int own = PQtransactionStatus(app->conn) == PQTRANS_IDLE;
  if (own && (rc = lm_tx_begin(app->conn, err))) return rc;
  if ((rc = lm_lock_fence(&app->lock, app->conn, err)) ||
      (rc = lm_vt_ensure(&app->vt, app->conn, err))) {
    lm_error e = {0};
    if (own) lm_tx_rollback(app->conn, &e);
    lm_error_clear(&e);
    return rc;
  }
  return own ? lm_tx_commit(app->conn, err) : LM_OK;
}

int lm_workspace_heads(lm_app *app, lm_revset *heads, lm_error *err) {
  char **ids = NULL;
  size_t n = 0;
  int rc = lm_vt_read(&app->vt, app->conn, &ids, &n, err);
  if (rc) return rc;
  for (size_t i = 0; i < n && rc == LM_OK; i++) {
    int idx = lm_dag_find(app->dag, ids[i]);
    if (idx < 0) {
      rc = lm_error_set(err, LM_ERR,
                        "Can't locate revision identified by '%s': the database's version "
                        "table %s names it, but no file in %s defines it",
                        ids[i], app->vt.table, app->cfg.versions_dir);
      lm_error_setfield(&err->hint,
                        "restore the revision file, or reset the version table "
                        "with 'luamigrate stamp --purge REV'");
    } else if (lm_revset_push(heads, idx)) {
      rc = lm_error_set(err, LM_ENOMEM, "out of memory");
    }
  }
  lm_vt_free_ids(ids, n);
  return rc;
}

/* A version table holding a revision and one of its ancestors (edited by hand, or written by
 * a run that bypassed the lock) has no meaning as a set of heads: upgrade and downgrade
 * refuse it as Alembic does, with its message; status reports it. LM_OK when consistent. */
int lm_workspace_check_overlap(lm_app *app, const lm_revset *heads, lm_error *err) {
  lm_revset anc = {0};
  int desc = -1;
  int rc = lm_dag_overlap(app->dag, heads, &desc, &anc, err);
  if (rc <= 0) return rc;
  char *ids = lm_dag_format_ids(app->dag, anc.idx, anc.n);
  rc = lm_error_set(err, LM_ERR, "Requested revision %s overlaps with other requested revisions %s",
                    lm_dag_id(app->dag, desc), ids ? ids : "?");
  lm_revset_free(&anc);
  free(ids);
  lm_strbuf d = {0};
  lm_strbuf_add(
      &d,
      "the version table %s holds both a revision and its ancestor; one run never leaves "
      "that (it was edited by hand, or written by a run that bypassed the migration lock)",
      app->vt.table);
  lm_error_setfield(&err->detail, d.s);
  free(d.s);
  lm_error_setfield(&err->hint,
                    "check which revision the schema is at, then reset the version table with "
                    "'luamigrate stamp --purge REV'");
  return rc;
}

/* Applied revision files edited since they ran: compares the SHA-256 of each file as this
 * run read it (lm_loader_checksum) with the one recorded when it was applied, for the
 * revisions the database is on or past. The content alone decides (a file's mtime says
 * nothing: cp -p, rsync -a and tar restore old ones). With `collect`, only gathers them;
 * else warns, or under on_changed_file = "error" fails when the file is one the command is
 * about to run (a step of `plan`): an unrelated edit does not stop a downgrade of other
 * revisions. *nchanged gets the count. */
int lm_workspace_changed(lm_app *app, const lm_revset *heads, int *nchanged, lm_revset *collect,
                         const lm_revset *plan, lm_error *err) {
  PGresult *res = NULL;
  unsigned char *mark = NULL;
  int rc = lm_vt_applied_checksums(&app->vt, app->conn, &res, err);
  *nchanged = 0;
  if (rc) return rc;
  size_t n = lm_dag_count(app->dag);
  mark = calloc(n ? n : 1, 1);
  if (!mark || lm_dag_mark(app->dag, heads->idx, heads->n, 0, 1, mark, 1)) {
    rc = lm_error_set(err, LM_ENOMEM, "out of memory");
    goto cleanup;
  }
  for (int r = 0; r < PQntuples(res) && rc == LM_OK; r++) {
    int idx = lm_dag_find(app->dag, PQgetvalue(res, r, 0));
    if (idx < 0 || !mark[idx] || PQgetisnull(res, r, 1)) continue;
    const char *path = lm_dag_path(app->dag, idx);
    char sum[LM_CHECKSUM_HEX];
    const char *now = lm_loader_checksum(app, idx, sum);
    if (!now || !strcmp(now, PQgetvalue(res, r, 1))) continue;
    (*nchanged)++;
    if (collect) {
      if (lm_revset_push(collect, idx)) rc = lm_error_set(err, LM_ENOMEM, "out of memory");
    } else if (app->cfg.changed_file_is_error && plan && lm_revset_has(plan, idx)) {
      rc = lm_error_set(err, LM_ERR,
                        "%s: revision %s was applied from a different version of this file "
                        "(sha256 %.12s then, %.12s now)",
                        path, lm_dag_id(app->dag, idx), PQgetvalue(res, r, 1), now);
      lm_error_setfield(&err->hint,
                        "restore the file as it was applied (the database already "
                        "holds its changes); or, the edit reviewed, record the file as it is "
                        "now with 'luamigrate repair'");
    } else {
      lm_log_warn(
          "%s: revision %s was applied from a different version of this file "
          "(sha256 %.12s then, %.12s now); the database holds what the old version did "
          "('luamigrate repair' records the file as it is now)",
          path, lm_dag_id(app->dag, idx), PQgetvalue(res, r, 1), now);
    }
  }
cleanup:
  free(mark);
  PQclear(res);
  return rc;
}

/* Whether the journal's account agrees with the version table: a half-done upgrade's
 * revision is not applied yet, a half-done downgrade's still is. 1 when it agrees. */
int lm_workspace_journal_agrees(lm_app *app, const lm_journal *j, const lm_revset *heads) {
  int idx = lm_dag_find(app->dag, j->revision);
  if (idx < 0) return 1; /* the refusal names the missing file */
  size_t n = lm_dag_count(app->dag);
  unsigned char *mark = calloc(n ? n : 1, 1);
  if (!mark || lm_dag_mark(app->dag, heads->idx, heads->n, 0, 1, mark, 1)) {
    free(mark);
    return 1;
  }
  int applied = mark[idx] != 0;
  free(mark);
  return applied == !strcmp(j->operation, "downgrade");
}

/* The refusal a command gives while `j` records a half-done revision: what is done, what
 * was running, and how to finish or undo it. `heads` is where the version table is. One
 * hint per case, the same whatever the command: LM_EHALFDONE. */
int lm_workspace_half_done(lm_app *app, const lm_journal *j, const lm_revset *heads,
                           const char *command, lm_error *err) {
  int idx = lm_dag_find(app->dag, j->revision);
  const int down = !strcmp(j->operation, "downgrade");
  char *message = NULL, *detail = NULL;
  int rc = lm_journal_describe(j, app->conn, idx >= 0 ? lm_dag_path(app->dag, idx) : NULL, &message,
                               &detail, err);
  if (rc) return rc;
  char *parents = NULL, *at = heads->n ? lm_dag_format_ids(app->dag, heads->idx, heads->n) : NULL;
  if (idx >= 0) {
    const int *p;
    size_t np = lm_dag_parents(app->dag, idx, &p);
    parents = np ? lm_dag_format_ids(app->dag, p, np) : strdup("base");
  }
  lm_strbuf h = {0};
  if (!lm_workspace_journal_agrees(app, j, heads)) {
    lm_error_set(err, LM_EHALFDONE,
                 "%s refused: the journal records revision %s as half-done by %s, but the "
                 "version table (at %s) has it %s",
                 command, j->revision, down ? "a downgrade" : "an upgrade", at ? at : "base",
                 down ? "undone" : "applied");
    lm_strbuf dd = {0};
    lm_strbuf_add(&dd, "%s\n%s", message, detail ? detail : "");
    free(detail);
    detail = dd.s;
    lm_strbuf_add(
        &h,
        "the version table was moved by hand (or by stamp from an older luamigrate) after "
        "the interrupted run; check that the schema matches it (finish or undo what the "
        "journal lists by hand), then run 'luamigrate stamp %s', which keeps the version "
        "table where it is and clears the record",
        at ? at : "base");
  } else if (down) {
    lm_error_set(err, LM_EHALFDONE, "%s refused: %s", command, message);
    lm_strbuf_add(
        &h,
        "to finish it, run 'luamigrate downgrade --resume TARGET': it skips the statements "
        "recorded done and runs the rest (a statement that was running runs again); to give "
        "it up, redo by hand what the done statements undid and run 'luamigrate stamp %s', "
        "which clears the record",
        j->revision);
  } else {
    lm_error_set(err, LM_EHALFDONE, "%s refused: %s", command, message);
    lm_strbuf_add(
        &h,
        "to finish it, run 'luamigrate upgrade --resume TARGET': it skips the statements "
        "recorded done and runs the rest (a statement that was running runs again); to give "
        "it up, undo the done statements by hand and run 'luamigrate stamp %s', which clears "
        "the record",
        parents ? parents : "<its down_revision>");
  }
  free(err->detail);
  err->detail = detail;
  lm_error_setfield(&err->hint, h.s);
  free(h.s);
  free(parents);
  free(at);
  free(message);
  return LM_EHALFDONE;
}

/* The statement of `j` that a backend still runs (the interrupted run's client died, its
 * statement goes on), or NULL. */
static const lm_journal_row *still_running(const lm_journal *j) {
  for (size_t i = 0; i < j->n; i++)
    if (j->rows[i].active) return &j->rows[i];
  return NULL;
}

/* --resume while the interrupted run's statement still runs on the server: waits for its
 * backend to end (within lock_timeout), re-reading the journal, so the statement never runs
 * twice at once. */
int lm_workspace_wait_statement(lm_app *app, lm_journal *j, lm_error *err) {
  const lm_journal_row *r = still_running(j);
  if (!r) return LM_OK;
  lm_vt_forget(&app->vt); /* the journal is read again as it is now, each time */
  lm_log_info(
      "--resume: statement %d of revision %s is still running on the server (backend pid "
      "%d, since %s); waiting for it to end",
      r->ordinal, j->revision, r->backend_pid, r->started);
  struct timespec t0;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  for (;;) {
    struct timespec ts = {0, 200000000L};
    nanosleep(&ts, NULL);
    if (lm_cancel_requested())
      return lm_error_set(err, LM_ERR,
                          "interrupted by signal while waiting for the interrupted run's "
                          "statement (backend pid %d) to end; nothing was changed",
                          r->backend_pid);
    int pid = r->backend_pid;
    lm_journal_free(j);
    int rc = lm_journal_read(&app->vt, app->conn, j, err);
    if (rc) return rc;
    if (!j->revision || !(r = still_running(j))) return LM_OK;
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    double waited = (double)(now.tv_sec - t0.tv_sec) + (double)(now.tv_nsec - t0.tv_nsec) / 1e9;
    if (app->cfg.lock_timeout >= 0 && waited >= app->cfg.lock_timeout) {
      rc = lm_error_set(err, LM_ELOCK,
                        "--resume: the interrupted run's statement %d of revision %s is still "
                        "running on the server (backend pid %d) after %g s",
                        r->ordinal, j->revision, pid, app->cfg.lock_timeout);
      lm_error_setfield(&err->hint,
                        "wait for it to end, or stop it with SELECT pg_cancel_backend(PID), "
                        "then run the command again");
      return rc;
    }
  }
}

/* Splits "A:B" into the start set (resolved absolutely) and the target text; without a
 * colon the start is base. Sets *from_base when the script starts from an empty database. */
int lm_workspace_offline_start(lm_app *app, const char *expr, lm_revset *heads, const char **target,
                               int *from_base, lm_error *err) {
  const char *colon = strchr(expr, ':');
  *target = colon ? colon + 1 : expr;
  *from_base = 1;
  if (!colon || colon == expr) return LM_OK;
  char *start = strndup(expr, (size_t)(colon - expr));
  if (!start) return lm_error_set(err, LM_ENOMEM, "out of memory");
  lm_revset none = {0};
  int rc = lm_dag_resolve(app->dag, start, &none, LM_RESOLVE_SHOW, heads, err);
  free(start);
  if (rc < 0) return rc;
  *from_base = heads->n == 0;
  return LM_OK;
}

/* *ok = the database's revisions `cur` are exactly the heads (rows are heads, so equal
 * sets). */
int lm_workspace_on_heads(lm_app *app, const lm_revset *cur, int *ok, lm_error *err) {
  lm_revset want = {0}, none = {0};
  int n = lm_dag_resolve(app->dag, "heads", &none, LM_RESOLVE_SHOW, &want, err);
  *ok = n >= 0 && lm_revset_same(&want, cur);
  lm_revset_free(&want);
  return n < 0 ? n : LM_OK;
}
