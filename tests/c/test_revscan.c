/* C unit tests of the revision scanner (src/revscan.c): the plain forms it reads, with the
 * values Lua would give them, and the forms it leaves to running the file. */
#include <stdio.h>
#include <string.h>

#include "revscan.h"

static int passed, failed;

#define CHECK(cond)                                                            \
  do {                                                                         \
    if (cond) {                                                                \
      passed++;                                                                \
    } else {                                                                   \
      failed++;                                                                \
      fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond); \
    }                                                                          \
  } while (0)

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
  /* \z, \u{...}, a NUL in the value, what Lua refuses, a raw line end */
  CHECK(falls_back("revision = \"a\\z  b\" down_revision = nil" FUNCS));
  CHECK(falls_back("revision = \"\\u{41}\" down_revision = nil" FUNCS));
  CHECK(falls_back("revision = \"a\\0\" down_revision = nil" FUNCS));
  CHECK(falls_back("revision = \"a\\x4\" down_revision = nil" FUNCS));
  CHECK(falls_back("revision = \"\\256\" down_revision = nil" FUNCS));
  CHECK(falls_back("revision = \"\\q\" down_revision = nil" FUNCS));
  CHECK(falls_back("revision = \"a\nb\" down_revision = nil" FUNCS));
}

static void test_fallbacks(void) {
  /* computed values, other statements, other value forms */
  CHECK(falls_back("local PREV = \"a\"\nrevision = \"b\" down_revision = PREV" FUNCS));
  CHECK(falls_back("revision = \"a\" .. \"b\" down_revision = nil" FUNCS));
  CHECK(falls_back("revision = [[a]] down_revision = nil" FUNCS));
  CHECK(falls_back("revision = \"a\" down_revision = { [1] = \"b\" }" FUNCS));
  CHECK(falls_back("revision = \"a\" down_revision = nil or \"b\"" FUNCS));
  CHECK(falls_back("revision = nil down_revision = nil" FUNCS));
  CHECK(falls_back("revision = { \"a\" } down_revision = nil" FUNCS));
  CHECK(falls_back("revision = { \"a\", \"b\" } down_revision = nil" FUNCS));
  CHECK(falls_back("revision = \"a\" revision = \"b\" down_revision = nil" FUNCS));
  CHECK(falls_back("revision, x = \"a\", 1 down_revision = nil" FUNCS));
  CHECK(falls_back("print(1) revision = \"a\" down_revision = nil" FUNCS));
  CHECK(falls_back("revision = \"a\" down_revision = nil" FUNCS "error(\"at load\")\n"));
  CHECK(falls_back("#!/usr/bin/env lua\nrevision = \"a\" down_revision = nil" FUNCS));
  /* what the loader requires: down_revision assigned, both functions */
  CHECK(falls_back("revision = \"a\"" FUNCS));
  CHECK(falls_back("revision = \"a\" down_revision = nil function upgrade() end"));
  CHECK(falls_back("revision = \"a\" down_revision = nil" FUNCS "function revision() end"));
  CHECK(falls_back("local function upgrade() end revision = \"a\" down_revision = nil" FUNCS));
  CHECK(falls_back("function _ENV() end revision = \"a\" down_revision = nil" FUNCS));
  CHECK(falls_back("revision = \"a\" down_revision = nil function op.x() end" FUNCS));
  /* what Lua's lexer refuses, unbalanced blocks, a NUL byte */
  CHECK(
      falls_back("revision = \"a\" down_revision = nil function upgrade() if x then end"
                 " function downgrade() end"));
  CHECK(falls_back("revision = \"a\" down_revision = nil --[[ open" FUNCS));
  CHECK(falls_back("revision = \"a\" down_revision = nil" FUNCS "function f() return 3x end"));
  CHECK(falls_back("revision = \"a\" down_revision = nil" FUNCS "function f() return [=x end"));
  CHECK(falls_back("revision = \"\xC3\xA9\" down_revision = nil" FUNCS "function \xC3\xA9() end"));
  CHECK(lm_revscan_read("revision = \"a\"\0 down_revision = nil" FUNCS,
                        sizeof("revision = \"a\"\0 down_revision = nil" FUNCS) - 1,
                        &(lm_revscan){0}) == 0);
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
