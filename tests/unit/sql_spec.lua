-- luamigrate.sql: PostgreSQL's parser (libpg_query) splitting raw SQL into statements and
-- telling which statements cannot run in a transaction or are transaction control.
local sql = require "luamigrate.sql"

local function first(text) return assert(sql.parse(text))[1] end

describe("luamigrate.sql", function()
  it("splits on the grammar, not on semicolons", function()
    local s = assert(sql.split("SELECT ';';\n-- note; here\nCREATE FUNCTION f() RETURNS int AS $$ SELECT 1; $$ LANGUAGE sql;"
      .. "\nCREATE RULE r AS ON INSERT TO t DO ALSO (SELECT 1; SELECT 2);  ;\n/* only */"))
    assert.equal(3, #s)
    assert.equal("SELECT ';'", s[1].sql)
    assert.equal("-- note; here\nCREATE FUNCTION f() RETURNS int AS $$ SELECT 1; $$ LANGUAGE sql", s[2].sql)
    assert.equal(2, s[2].line)
    assert.equal(4, s[3].line)
    assert.truthy(s[3].sql:find("^CREATE RULE"))
    assert.same({}, assert(sql.split("  -- nothing but a comment\n")))
  end)

  it("reports a syntax error with its position", function()
    local s, msg, pos = sql.split("SELECT 1;\nSELEC 2")
    assert.is_nil(s)
    assert.equal('syntax error at or near "SELEC"', msg)
    assert.equal(11, pos)
    local t, msg2 = sql.parse("CREATE TABLE (")
    assert.is_nil(t)
    assert.truthy(msg2:find("syntax error", 1, true))
  end)

  it("refuses NUL bytes instead of cutting the text", function()
    assert.has_error(function() sql.split("SELECT 1\0; DROP TABLE t") end)
  end)

  it("gives each statement its parse tree", function()
    local t = assert(sql.parse("ALTER TABLE t ADD COLUMN c int; DROP TABLE u"))
    assert.equal("AlterTableStmt", t[1].node)
    assert.equal("t", t[1].tree.relation.relname)
    assert.equal("DropStmt", t[2].node)
    assert.equal("DROP TABLE u", t[2].sql)
  end)

  it("knows what cannot run inside a transaction block", function()
    local cases = {
      ["CREATE INDEX CONCURRENTLY i ON t (a)"] = "CREATE INDEX CONCURRENTLY",
      ["CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS i ON t (a)"] = "CREATE INDEX CONCURRENTLY",
      ["DROP INDEX CONCURRENTLY i"] = "DROP INDEX CONCURRENTLY",
      ["REINDEX INDEX CONCURRENTLY i"] = "REINDEX CONCURRENTLY",
      ["REINDEX (CONCURRENTLY) TABLE t"] = "REINDEX CONCURRENTLY",
      ["REINDEX DATABASE d"] = "REINDEX DATABASE",
      ["ALTER TABLE p DETACH PARTITION c CONCURRENTLY"] = "ALTER TABLE ... DETACH PARTITION ... CONCURRENTLY",
      ["VACUUM t"] = "VACUUM",
      ["VACUUM (ANALYZE) t"] = "VACUUM",
      ["ALTER SYSTEM SET work_mem = '8MB'"] = "ALTER SYSTEM",
      ["CREATE DATABASE d"] = "CREATE DATABASE",
      ["DROP DATABASE d"] = "DROP DATABASE",
      ["CREATE TABLESPACE ts LOCATION '/x'"] = "CREATE TABLESPACE",
      ["CLUSTER"] = "CLUSTER (of every table)",
    }
    for text, want in pairs(cases) do assert.equal(want, sql.no_transaction(first(text)), text) end
    for _, text in ipairs { "CREATE INDEX i ON t (a)", "DROP INDEX i", "REINDEX INDEX i",
      "ALTER TABLE p DETACH PARTITION c", "ANALYZE t", "CLUSTER t USING i", "SELECT 'VACUUM'",
      "ALTER TYPE e ADD VALUE 'x'" } do
      assert.is_nil(sql.no_transaction(first(text)), text)
    end
  end)

  it("knows transaction control, END and ABORT included", function()
    local cases = { BEGIN = "BEGIN", ["START TRANSACTION"] = "START TRANSACTION", COMMIT = "COMMIT",
      ["END"] = "COMMIT", ROLLBACK = "ROLLBACK", ABORT = "ROLLBACK",
      ["PREPARE TRANSACTION 'x'"] = "PREPARE TRANSACTION", ["COMMIT PREPARED 'x'"] = "COMMIT PREPARED",
      ["SAVEPOINT a"] = "SAVEPOINT", ["RELEASE SAVEPOINT a"] = "RELEASE SAVEPOINT",
      ["ROLLBACK TO SAVEPOINT a"] = "ROLLBACK TO SAVEPOINT" }
    for text, want in pairs(cases) do assert.equal(want, (sql.transaction_control(first(text))), text) end
    assert.is_nil(sql.transaction_control(first("DO $$ BEGIN PERFORM 1; END $$")))
    assert.is_nil(sql.transaction_control(first("SELECT 'COMMIT'")))
  end)

  describe("check", function()
    local function refusal(text, in_block)
      local ok, e = pcall(sql.check, "op.execute", text, in_block)
      if ok then return nil end
      return e
    end

    it("refuses a non-transactional statement outside an autocommit block, naming it", function()
      local e = refusal("CREATE TABLE t (a int); CREATE INDEX CONCURRENTLY i ON t (a)")
      assert.equal("op.execute: CREATE INDEX CONCURRENTLY cannot run inside a transaction block, "
        .. "and the migration's transaction is open here", e.message)
      assert.equal("CREATE INDEX CONCURRENTLY i ON t (a)", e.statement)
      assert.truthy(e.hint:find("op.autocommit_block", 1, true))
      assert.is_nil(refusal("CREATE INDEX CONCURRENTLY i ON t (a)", true))
    end)

    it("refuses transaction control everywhere, savepoints only in autocommit blocks", function()
      assert.truthy(refusal("SELECT 1; COMMIT").message:find("COMMIT is transaction control", 1, true))
      assert.truthy(refusal("BEGIN", true).message:find("BEGIN is transaction control", 1, true))
      assert.truthy(refusal("END").message:find("COMMIT is transaction control", 1, true))
      assert.truthy(refusal("PREPARE TRANSACTION 'x'").message:find("PREPARE TRANSACTION", 1, true))
      assert.is_nil(refusal("SAVEPOINT a"))
      assert.is_nil(refusal("ROLLBACK TO SAVEPOINT a"))
      assert.truthy(refusal("SAVEPOINT a", true).message:find("SAVEPOINT is transaction control", 1, true))
    end)

    it("lets through what only looks like it, and leaves syntax errors to the server", function()
      assert.is_nil(refusal("SELECT 'COMMIT; BEGIN; VACUUM'"))
      assert.is_nil(refusal("DO $$ BEGIN RAISE NOTICE 'x'; END $$"))
      assert.is_nil(refusal("-- COMMIT\nSELECT 1"))
      assert.is_nil(refusal("COMMIT garbage ("))
    end)
  end)
end)
