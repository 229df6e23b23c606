/* The workspace (workspace.c): a connected, locked database and its rows as revisions, for
 * the commands. Each returns 0 or a negative code with err filled. */
#ifndef LM_WORKSPACE_H
#define LM_WORKSPACE_H

#include "app.h"
#include "cmdargs.h"
#include "journal.h"

/* Connects app->conn (verbose: where, which server, how long) and sets up app->vt. */
int lm_workspace_connect(lm_app *app, lm_error *err);
/* The same for a command that takes the lock next: with lock = "session" the lock's own
 * connection is opened at the same time, in the same round trips. */
int lm_workspace_connect_locking(lm_app *app, lm_error *err);
/* Once the config is read, for a command that connects first thing (upgrade, downgrade,
 * status): starts opening its connections in the background while the revision files load;
 * the connect above takes them over (its errors are reported there, as before). A command
 * that ends without connecting drops them (lm_workspace_preconnect_drop). */
void lm_workspace_preconnect(lm_app *app, const char *command, const lm_cmdargs *a);
void lm_workspace_preconnect_drop(lm_app *app);
/* Takes the migration lock and makes sure the bookkeeping tables exist. */
int lm_workspace_lock(lm_app *app, lm_error *err);
/* The version table's rows as revisions of app->dag; a row no file defines is an error. */
int lm_workspace_heads(lm_app *app, lm_revset *heads, lm_error *err);
/* Rows one of which is an ancestor of another: Alembic's "overlaps" refusal (LM_ERR, with
 * a detail and a hint); LM_OK when consistent. */
int lm_workspace_check_overlap(lm_app *app, const lm_revset *heads, lm_error *err);
/* Applied revision files edited since they ran (by checksum). With `collect`, gathers
 * them; else warns, or under on_changed_file = "error" fails for one in `plan`. */
int lm_workspace_changed(lm_app *app, const lm_revset *heads, int *nchanged, lm_revset *collect,
                         const lm_revset *plan, lm_error *err);
/* 1 when the journal's record `j` agrees with the version table at `heads`. */
int lm_workspace_journal_agrees(lm_app *app, const lm_journal *j, const lm_revset *heads);
/* The refusal while `j` records a half-done revision: LM_EHALFDONE, with how to go on. */
int lm_workspace_half_done(lm_app *app, const lm_journal *j, const lm_revset *heads,
                           const char *command, lm_error *err);
/* --resume: waits (within lock_timeout) for the interrupted run's statement to end. */
int lm_workspace_wait_statement(lm_app *app, lm_journal *j, lm_error *err);
/* --sql's START:END: the start set and the target text; *from_base for an empty start. */
int lm_workspace_offline_start(lm_app *app, const char *expr, lm_revset *heads, const char **target,
                               int *from_base, lm_error *err);
/* *ok = the revisions `cur` are exactly the heads. */
int lm_workspace_on_heads(lm_app *app, const lm_revset *cur, int *ok, lm_error *err);

#endif
