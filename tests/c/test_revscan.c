/* C unit tests of the revision scanner (src/revscan.c): the plain forms it reads, with the
 * values Lua would give them, and the forms it leaves to running the file. */
#include <stdio.h>
#include <string.h>

#include "revscan.h"

static int passed, failed;

#include "check.h"

#define FUNCS "\nfunction upgrade()\n  op.execute(\"x\")\nend\n\nfunction downgrade()\nend\n"

static int scan(const char *text, lm_revscan *r) {
  return lm_revscan_read(text, strlen(text), r);
}

/* 1 when the scanner leaves text to running the file. */
static int falls_back(const char *text) {
  lm_revscan r;
  int rc = scan(text, &r);
  if (rc == 1) lm_revscan_free(&r);
  return rc == 0;
}

static void test_template_form(void) {
  lm_revscan r;
  const char *text =
      "--[[ add users\n\nRevision ID: 1975ea83b712\nRevises: \n"
      "Create Date: 2026-11-23 09:00:00\n]]\n"
      "-- revision identifiers, used by luamigrate (---@type: annotations).\n"
      "---@type string\nrevision = \"1975ea83b712\"\n"
      "---@type string|string[]|nil\ndown_revision = nil\n"
      "---@type string|string[]|nil\nbranch_labels = nil\n"
      "---@type string|string[]|nil\ndepends_on = nil\n" FUNCS;
  CHECK(scan(text, &r) == 1);
  CHECK(r.id && !strcmp(r.id, "1975ea83b712"));
  CHECK(r.nd == 0 && r.nl == 0 && r.ne == 0);
  CHECK(r.body_line == 17);
  lm_revscan_free(&r);
}

static void test_lists(void) {
  lm_revscan r;
  const char *text =
      "\xEF\xBB\xBFrevision = 'm1'; down_revision = { \"a1\", 'b2'; }\n"
      "branch_labels = { \"line\" } depends_on = {}\n" FUNCS;
  CHECK(scan(text, &r) == 1);
  CHECK(!strcmp(r.id, "m1") && r.nd == 2 && !strcmp(r.down[0], "a1") && !strcmp(r.down[1], "b2"));
  CHECK(r.nl == 1 && !strcmp(r.labels[0], "line") && r.ne == 0);
  lm_revscan_free(&r);
  /* functions first, a local helper, blocks of every kind inside */
  text =
      "local function helper(x)\n  if x then return 1 elseif x == 2 then return 2 end\n"
      "  for i = 1, 2 do while false do end end\n  repeat local y = 0x1p4 until true\n"
      "  return function() return [==[ end ]==] end\nend\n"
      "function upgrade() helper(\"end\") end function downgrade() end\n"
      "revision = \"r2\" down_revision = \"r1\" --[[ a comment ]] depends_on = nil\n";
  CHECK(scan(text, &r) == 1);
  CHECK(!strcmp(r.id, "r2") && r.nd == 1 && !strcmp(r.down[0], "r1"));
  CHECK(r.body_line == 1);
  lm_revscan_free(&r);
}

static void test_escapes(void) {
  lm_revscan r;
  CHECK(scan("revision = \"a\\x41\\066\\t\\\\\\\"\\\n\" down_revision = nil" FUNCS, &r) == 1);
  CHECK(!strcmp(r.id, "aAB\t\\\"\n"));
  lm_revscan_free(&r);
  CHECK(scan("revision = \"\\0491\" down_revision = nil" FUNCS, &r) == 1);
  CHECK(!strcmp(r.id, "11")); /* \049 then the digit 1: at most three digits */
  lm_revscan_free(&r);
}

/* Files the scanner leaves to running them, each with why. */
#define DR " down_revision = nil"
static const char *const fallbacks[] = {
    /* escapes it does not decode, a NUL in the value, what Lua refuses, a raw line end */
    "revision = \"a\\z  b\"" DR FUNCS,
    "revision = \"\\u{41}\"" DR FUNCS,
    "revision = \"a\\0\"" DR FUNCS,
    "revision = \"a\\x4\"" DR FUNCS,
    "revision = \"\\256\"" DR FUNCS,
    "revision = \"\\q\"" DR FUNCS,
    "revision = \"a\nb\"" DR FUNCS,
    /* computed values, other statements, other value forms */
    "local PREV = \"a\"\nrevision = \"b\" down_revision = PREV" FUNCS,
    "revision = \"a\" .. \"b\"" DR FUNCS,
    "revision = [[a]]" DR FUNCS,
    "revision = \"a\" down_revision = { [1] = \"b\" }" FUNCS,
    "revision = \"a\" down_revision = nil or \"b\"" FUNCS,
    "revision = nil" DR FUNCS,
    "revision = { \"a\" }" DR FUNCS,
    "revision = { \"a\", \"b\" }" DR FUNCS,
    "revision = \"a\" revision = \"b\"" DR FUNCS,
    "revision, x = \"a\", 1" DR FUNCS,
    "print(1) revision = \"a\"" DR FUNCS,
    "revision = \"a\"" DR FUNCS "error(\"at load\")\n",
    "#!/usr/bin/env lua\nrevision = \"a\"" DR FUNCS,
    /* what the loader requires: down_revision assigned, both functions, no other global
     * function among the migration globals, _ENV untouched */
    "revision = \"a\"" FUNCS,
    "revision = \"a\"" DR " function upgrade() end",
    "revision = \"a\"" DR FUNCS "function revision() end",
    "local function upgrade() end revision = \"a\"" DR FUNCS,
    "function _ENV() end revision = \"a\"" DR FUNCS,
    "revision = \"a\"" DR " function op.x() end" FUNCS,
    /* what Lua's lexer refuses, unbalanced blocks, an unterminated comment */
    "revision = \"a\"" DR " function upgrade() if x then end function downgrade() end",
    "revision = \"a\"" DR " --[[ open" FUNCS,
    "revision = \"a\"" DR FUNCS "function f() return 3x end",
    "revision = \"a\"" DR FUNCS "function f() return [=x end",
    "revision = \"\xC3\xA9\"" DR FUNCS "function \xC3\xA9() end",
};

static void test_fallbacks(void) {
  for (size_t i = 0; i < sizeof fallbacks / sizeof *fallbacks; i++)
    if (!falls_back(fallbacks[i])) {
      failed++;
      fprintf(stderr, "test_revscan.c: read instead of falling back: %s\n", fallbacks[i]);
    } else {
      passed++;
    }
  /* a NUL byte anywhere: the loader refuses the file */
  static const char nul[] = "revision = \"a\"\0" DR FUNCS;
  CHECK(lm_revscan_read(nul, sizeof nul - 1, &(lm_revscan){0}) == 0);
  /* more than 64 entries: the loader's message, from running the file */
  char many[2048] = "revision = \"a\" down_revision = {";
  for (int i = 0; i < 65; i++) strcat(many, " \"b\",");
  strcat(many, "}" FUNCS);
  CHECK(falls_back(many));
}

int main(void) {
  test_template_form();
  test_lists();
  test_escapes();
  test_fallbacks();
  printf("test_revscan: %d passed, %d failed\n", passed, failed);
  return failed ? 1 : 0;
}
