-- The lint rules (luamigrate.lint and lua/luamigrate/lint/*.lua) on raw SQL, without a
-- database: each rule fires on its positive case and stays quiet on its negative one, and
-- the offline knowledge (tables created in the same transaction, autocommit blocks,
-- configured timeouts, the target version) changes what is reported.
local lint = require "luamigrate.lint"

-- Lints `stmts` (strings; {sql, block = true} for one inside an autocommit block) as one
-- revision; returns the findings.
local function run(stmts, settings)
  local session = lint.new { settings = settings or {} }
  local ctx = {}
  session:begin(ctx, "r1", "migrations/versions/r1_x.lua")
  for _, st in ipairs(stmts) do
    if type(st) == "table" then
      ctx.in_autocommit_block = st.block or nil
      ctx.emit(st[1])
      ctx.in_autocommit_block = nil
    else
      ctx.emit(st)
    end
  end
  session:finish_revision(true)
  return session.findings, session
end

local function fired(findings, rule)
  for _, f in ipairs(findings) do
    if f.rule == rule and not f.allowed then return true end
  end
  return false
end

local T = "CREATE TABLE t (id bigint)" -- a table created earlier in the same transaction

-- {rule, positive statements, negative statements, settings}
local CASES = {
  { "adding-field-with-default", { "ALTER TABLE u ADD COLUMN c uuid DEFAULT gen_random_uuid()" },
    { "ALTER TABLE u ADD COLUMN c integer DEFAULT 10", "ALTER TABLE u ADD COLUMN c timestamptz DEFAULT now()",
      "ALTER TABLE u ADD COLUMN c jsonb DEFAULT '{}'::jsonb", "ALTER TABLE u ADD COLUMN c int DEFAULT 2 + 2" } },
  { "adding-field-with-default", { "ALTER TABLE u ADD COLUMN c numeric GENERATED ALWAYS AS (a + b) STORED" },
    { T, "ALTER TABLE t ADD COLUMN c numeric GENERATED ALWAYS AS (id + 1) STORED" } },
  { "adding-field-with-default", { "ALTER TABLE u ADD COLUMN c integer DEFAULT 10" }, {},
    { lint = { postgres_version = 10 } } },
  { "adding-foreign-key-constraint", { "ALTER TABLE u ADD CONSTRAINT fk FOREIGN KEY (a) REFERENCES v (id)" },
    { "ALTER TABLE u ADD CONSTRAINT fk FOREIGN KEY (a) REFERENCES v (id) NOT VALID",
      "CREATE TABLE w (a bigint REFERENCES v (id))" } },
  { "adding-foreign-key-constraint", { "ALTER TABLE u ADD COLUMN a bigint REFERENCES v (id)" }, {} },
  { "adding-not-nullable-field", { "ALTER TABLE u ALTER COLUMN a SET NOT NULL" },
    { "ALTER TABLE u ADD CONSTRAINT a_nn CHECK (a IS NOT NULL) NOT VALID",
      "ALTER TABLE u VALIDATE CONSTRAINT a_nn", "ALTER TABLE u ALTER COLUMN a SET NOT NULL" } },
  { "adding-not-nullable-field", { "ALTER TABLE u ADD CONSTRAINT a_nn CHECK (a IS NOT NULL) NOT VALID",
      "ALTER TABLE u ALTER COLUMN a SET NOT NULL" }, { T, "ALTER TABLE t ALTER COLUMN id SET NOT NULL" } },
  { "adding-required-field", { "ALTER TABLE u ADD COLUMN c bigint NOT NULL" },
    { "ALTER TABLE u ADD COLUMN c bigint NOT NULL DEFAULT 0", T, "ALTER TABLE t ADD COLUMN c bigint NOT NULL" } },
  { "adding-serial-primary-key-field", { "ALTER TABLE u ADD PRIMARY KEY (id)" },
    { "ALTER TABLE u ADD CONSTRAINT u_pkey PRIMARY KEY USING INDEX u_id_idx" } },
  { "adding-serial-primary-key-field", { "ALTER TABLE u ADD COLUMN id bigserial PRIMARY KEY" }, {} },
  { "adding-auto-increment-column", { "ALTER TABLE u ADD COLUMN n bigserial" },
    { "ALTER TABLE u ADD COLUMN n bigint", T, "ALTER TABLE t ADD COLUMN n bigserial" } },
  { "adding-field-with-default", { "ALTER TABLE u ADD COLUMN n bigint GENERATED ALWAYS AS IDENTITY" }, {} },
  { "ban-char-field", { "CREATE TABLE w (c char(10))", "ALTER TABLE u ADD COLUMN c character(2)" },
    { "CREATE TABLE w (c varchar(10), d text, e \"char\")" } },
  { "ban-concurrent-index-creation-in-transaction", { "CREATE INDEX CONCURRENTLY IF NOT EXISTS i ON u (a)" },
    { { "CREATE INDEX CONCURRENTLY IF NOT EXISTS i ON u (a)", block = true } } },
  { "non-transactional-in-transaction", { "VACUUM u" }, { { "VACUUM u", block = true }, "ANALYZE u" } },
  { "ban-drop-column", { "ALTER TABLE u DROP COLUMN c" }, { "ALTER TABLE u ADD COLUMN c bigint" } },
  { "ban-drop-table", { "DROP TABLE u" }, { T, "DROP TABLE t" } },
  { "ban-drop-database", { "DROP DATABASE d" }, { "DROP SCHEMA s" } },
  { "ban-drop-not-null", { "ALTER TABLE u ALTER COLUMN c DROP NOT NULL" }, { "ALTER TABLE u ALTER COLUMN c DROP DEFAULT" } },
  { "ban-truncate-cascade", { "TRUNCATE u CASCADE" }, { "TRUNCATE u" } },
  { "ban-uncommitted-transaction", { "BEGIN", "INSERT INTO u VALUES (1)" }, { "BEGIN", "COMMIT" } },
  { "transaction-nesting", { "COMMIT" }, { "SAVEPOINT a", "ROLLBACK TO SAVEPOINT a" } },
  { "transaction-nesting", { { "SAVEPOINT a", block = true } }, { "SELECT 1" } },
  { "ban-alter-domain-with-add-constraint", { "ALTER DOMAIN d ADD CONSTRAINT c CHECK (VALUE > 0)" },
    { "ALTER DOMAIN d SET DEFAULT 0" } },
  { "ban-create-domain-with-constraint", { "CREATE DOMAIN d AS int CHECK (VALUE > 0)" },
    { "CREATE DOMAIN d AS int NOT NULL" } },
  { "changing-column-type", { "ALTER TABLE u ALTER COLUMN c TYPE bigint" },
    { T, "ALTER TABLE t ALTER COLUMN id TYPE numeric" } },
  { "constraint-missing-not-valid", { "ALTER TABLE u ADD CONSTRAINT ck CHECK (a > 0)" },
    { "ALTER TABLE u ADD CONSTRAINT ck CHECK (a > 0) NOT VALID" } },
  { "constraint-missing-not-valid", { "ALTER TABLE u ADD CONSTRAINT ck CHECK (a > 0) NOT VALID",
      "ALTER TABLE u VALIDATE CONSTRAINT ck" }, { "ALTER TABLE u VALIDATE CONSTRAINT ck" } },
  { "disallowed-unique-constraint", { "ALTER TABLE u ADD CONSTRAINT uq UNIQUE (a)" },
    { "ALTER TABLE u ADD CONSTRAINT uq UNIQUE USING INDEX uq_idx" } },
  { "adding-exclusion-constraint", { "ALTER TABLE u ADD CONSTRAINT ex EXCLUDE USING gist (p WITH &&)" },
    { "CREATE TABLE w (p tstzrange, EXCLUDE USING gist (p WITH &&))" } },
  { "identifier-too-long", { "CREATE TABLE " .. ("x"):rep(64) .. " (id bigint)" },
    { "CREATE TABLE " .. ("x"):rep(63) .. " (id bigint)" } },
  { "prefer-bigint-over-int", { "CREATE TABLE w (a integer)", "ALTER TABLE u ADD COLUMN b serial" },
    { "CREATE TABLE w (a bigint)" } },
  { "prefer-bigint-over-smallint", { "CREATE TABLE w (a smallint)" }, { "CREATE TABLE w (a bigint)" } },
  { "prefer-identity", { "CREATE TABLE w (id bigserial)" },
    { "CREATE TABLE w (id bigint GENERATED BY DEFAULT AS IDENTITY)" } },
  { "prefer-robust-stmts", { { "CREATE INDEX CONCURRENTLY i ON u (a)", block = true } },
    { { "CREATE INDEX CONCURRENTLY IF NOT EXISTS i ON u (a)", block = true }, "CREATE TABLE w (id bigint)" } },
  { "prefer-robust-stmts", { { "ALTER TABLE u ADD COLUMN c bigint", block = true } },
    { { "ALTER TABLE u ADD COLUMN IF NOT EXISTS c bigint", block = true } } },
  { "prefer-robust-stmts", { { "ALTER TABLE p DETACH PARTITION c CONCURRENTLY", block = true } },
    { { "ALTER TABLE u DROP CONSTRAINT IF EXISTS c", block = true }, { "ALTER TABLE u VALIDATE CONSTRAINT c", block = true } } },
  { "prefer-text-field", { "CREATE TABLE w (a varchar(100))" }, { "CREATE TABLE w (a varchar, b text)" } },
  { "prefer-timestamptz", { "CREATE TABLE w (a timestamp)", "ALTER TABLE u ALTER COLUMN b TYPE timestamp" },
    { "CREATE TABLE w (a timestamptz)" } },
  { "prefer-jsonb", { "CREATE TABLE w (a json)" }, { "CREATE TABLE w (a jsonb)" } },
  { "renaming-column", { "ALTER TABLE u RENAME COLUMN a TO b" }, { T, "ALTER TABLE t RENAME COLUMN id TO b" } },
  { "renaming-table", { "ALTER TABLE u RENAME TO v" }, { "ALTER INDEX i RENAME TO j" } },
  { "renaming-schema", { "ALTER SCHEMA s RENAME TO s2" }, { "CREATE SCHEMA s2" } },
  { "renaming-enum-value", { "ALTER TYPE e RENAME VALUE 'a' TO 'b'" }, { "ALTER TYPE e RENAME TO f" } },
  { "require-concurrent-index-creation", { "CREATE INDEX i ON u (a)" },
    { { "CREATE INDEX CONCURRENTLY IF NOT EXISTS i ON u (a)", block = true }, T, "CREATE INDEX i ON t (id)" } },
  { "require-concurrent-index-deletion", { "DROP INDEX i" }, { { "DROP INDEX CONCURRENTLY IF EXISTS i", block = true } } },
  { "require-concurrent-partition-detach", { "ALTER TABLE p DETACH PARTITION c" },
    { { "ALTER TABLE p DETACH PARTITION c CONCURRENTLY", block = true } } },
  { "require-concurrent-partition-detach", {}, { "ALTER TABLE p DETACH PARTITION c" }, { lint = { postgres_version = 13 } } },
  { "require-concurrent-reindex", { "REINDEX INDEX i" }, { { "REINDEX INDEX CONCURRENTLY i", block = true } } },
  { "require-concurrent-reindex", {}, { "REINDEX INDEX i" }, { lint = { postgres_version = 11 } } },
  { "require-enum-value-ordering", { "ALTER TYPE e ADD VALUE 'x'" }, { "ALTER TYPE e ADD VALUE 'x' AFTER 'w'" } },
  { "require-lock-timeout", { "ALTER TABLE u ADD COLUMN c bigint" },
    { "SET LOCAL lock_timeout = '2s'", "ALTER TABLE u ADD COLUMN c bigint" }, { migration_lock_timeout = false } },
  -- the default migration_lock_timeout (luamigrate.config.DEFAULTS) is in force
  { "require-lock-timeout", {}, { "ALTER TABLE u ADD COLUMN c bigint" } },
  { "require-lock-timeout", {}, { "ALTER TABLE u ADD COLUMN c bigint" }, { migration_lock_timeout = "5s" } },
  { "require-lock-timeout", { { "DROP INDEX IF EXISTS i", block = true } },
    { { "DROP INDEX CONCURRENTLY IF EXISTS i", block = true }, "ALTER TABLE u VALIDATE CONSTRAINT c" },
    { migration_lock_timeout = false } },
  -- the run sets migration_lock_timeout for an autocommit block's session too
  { "require-lock-timeout", {}, { { "DROP INDEX IF EXISTS i", block = true } }, { migration_lock_timeout = "5s" } },
  { "require-statement-timeout", { "ALTER TABLE u ADD COLUMN c bigint" }, { "SELECT 1" } },
  { "require-statement-timeout", {}, { "ALTER TABLE u ADD COLUMN c bigint" }, { migration_statement_timeout = "1min" } },
  { "index-too-many-columns", { "CREATE INDEX i ON u (a, b, c, d)" },
    { "CREATE UNIQUE INDEX i ON u (a, b, c, d)", "CREATE INDEX j ON u (a, b, c)" } },
  { "backfill-in-ddl-transaction", { "ALTER TABLE u ADD COLUMN c bigint", "UPDATE u SET c = 0" },
    { "UPDATE u SET c = 0", { "UPDATE u SET c = 0 WHERE id < 1000", block = true } } },
}

describe("lint rules", function()
  for i, c in ipairs(CASES) do
    local rule, pos, neg, settings = c[1], c[2], c[3], c[4]
    if #pos > 0 then
      it(("%s fires (case %d)"):format(rule, i), function()
        local f = run(pos, settings)
        assert.is_true(fired(f, rule), rule .. " on: " .. require("cjson").encode(pos))
      end)
    end
    it(("%s stays quiet (case %d)"):format(rule, i), function()
      local f = run(neg, settings)
      assert.is_false(fired(f, rule), rule .. " on: " .. require("cjson").encode(neg))
    end)
  end

  it("has a case for every rule", function()
    local seen = {}
    for _, c in ipairs(CASES) do seen[c[1]] = true end
    for _, r in ipairs(lint.RULES) do assert.is_true(seen[r.id] == true, r.id) end
  end)

  it("names rule, severity, revision, file, line, statement, message and hint", function()
    local f = run { "SELECT 1", "CREATE INDEX i ON u (a)" }
    local one
    for _, x in ipairs(f) do
      if x.rule == "require-concurrent-index-creation" then one = x end
    end
    assert.equal("error", one.severity)
    assert.equal("r1", one.revision)
    assert.equal("CREATE INDEX i ON u (a)", one.statement)
    assert.truthy(one.file:find("lint_spec.lua", 1, true))
    assert.is_true(one.line > 0)
    assert.truthy(one.message:find("SHARE lock on u", 1, true))
    assert.truthy(one.hint:find("op.create_index_concurrently", 1, true))
  end)

  it("reports findings a -- luamigrate:allow comment names as allowed, not hidden", function()
    local f = run { "-- luamigrate:allow ban-drop-column, prefer-timestamp-tz\nALTER TABLE u DROP COLUMN c, ADD COLUMN d timestamp" }
    local allowed = {}
    for _, x in ipairs(f) do if x.allowed then allowed[x.rule] = true end end
    assert.is_true(allowed["ban-drop-column"])
    assert.is_true(allowed["prefer-timestamptz"])
    assert.is_false(fired(f, "ban-drop-column"))
  end)

  it("turns rules off or raises them to errors from the config", function()
    local f = run({ "CREATE TABLE w (a integer)", "DROP TABLE u" },
      { lint = { rules = { ["prefer-bigint-over-int"] = "error", ["ban-drop-table"] = "off" } } })
    assert.is_false(fired(f, "ban-drop-table"))
    for _, x in ipairs(f) do
      if x.rule == "prefer-bigint-over-int" then assert.equal("error", x.severity) end
    end
  end)

  it("refuses unknown settings and rule ids, naming them", function()
    assert.has_error(function() lint.new { settings = { lint = { rulez = {} } } } end,
      "luamigrate.lua: lint: unknown key 'rulez' (known: postgres_version, rules, start_after, upgrade)")
    assert.has_error(function() lint.new { settings = { lint = { rules = { ["no-such-rule"] = "off" } } } } end,
      "luamigrate.lua: lint.rules: unknown rule 'no-such-rule'")
    assert.has_error(function() lint.new { settings = { lint = { rules = { ["ban-drop-table"] = "loud" } } } } end,
      "luamigrate.lua: lint.rules['ban-drop-table'] must be \"off\", \"warning\" or \"error\"")
  end)

  it("reports SQL the parser rejects instead of guessing", function()
    local f = run { "ALTER TABLE u ADD COLUMN" }
    assert.equal("syntax-error", f[1].rule)
    assert.truthy(f[1].message:find("syntax error at end of input", 1, true))
  end)
end)
