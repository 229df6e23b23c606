/* The command handlers the table in cli.c names, one family per cmd_*.c file. Each runs with
 * app's options parsed and (for LM_CMD_LOAD commands) its config and revisions loaded, and
 * returns 0 or a negative code with err filled. */
#ifndef LM_COMMANDS_H
#define LM_COMMANDS_H

#include "error.h"

struct lm_app;
struct lm_cmdargs;
struct lm_revset;

#define LM_COMMAND(name) int lm_cmd_##name(struct lm_app *app, struct lm_cmdargs *a, lm_error *err)

LM_COMMAND(init);      /* cmd_init.c */
LM_COMMAND(revision);  /* cmd_revision.c */
LM_COMMAND(merge);     /* cmd_revision.c */
LM_COMMAND(check);     /* cmd_autogen.c */
LM_COMMAND(inspect);   /* cmd_autogen.c */
LM_COMMAND(upgrade);   /* cmd_migrate.c */
LM_COMMAND(downgrade); /* cmd_migrate.c */
LM_COMMAND(current);   /* cmd_show.c */
LM_COMMAND(heads);     /* cmd_show.c */
LM_COMMAND(branches);  /* cmd_show.c */
LM_COMMAND(history);   /* cmd_show.c */
LM_COMMAND(show);      /* cmd_show.c */
LM_COMMAND(stamp);     /* cmd_stamp.c */
LM_COMMAND(status);    /* cmd_status.c */
LM_COMMAND(repair);    /* cmd_repair.c */
LM_COMMAND(convert);   /* cmd_convert.c */
LM_COMMAND(lint);      /* cmd_lint.c */

/* Shared between the families. */

/* cmd_lint.c: upgrade's plan linted first (lint.upgrade = "warn" | "error" | "off"). */
int lm_lint_before_upgrade(struct lm_app *app, const struct lm_revset *plan, lm_error *err);
/* cmd_autogen.c: compares the declared schema with the database (at the heads); leaves
 * luamigrate.autogen.generate's result on the Lua stack. */
int lm_autogen_compare(struct lm_app *app, lm_error *err);
/* cmd_autogen.c: prints the result's ops (at stack index t), each after `prefix`. */
void lm_autogen_print_ops(struct lm_app *app, int t, const char *prefix);
/* cmd_revision.c: a random 12-hex revision id. */
int lm_revision_random_id(char out[13], lm_error *err);
/* cmd_revision.c: writes the new revision file on `base` (a->message, a->rev_id,
 * a->branch_label, a->depends) through luamigrate.revision.new, with the bodies of the table
 * at stack index `bodies` (its upgrade and downgrade fields; 0: the template's). */
int lm_revision_write(struct lm_app *app, const struct lm_cmdargs *a, const struct lm_revset *base,
                      int bodies, lm_error *err);

#endif
