-- Statements that cannot run in a transaction, and transaction control, are found by the
-- parser before they are sent: refused with file:line and the way out, the same online, in
-- --sql and in --dry-run, leaving the database as it was.
local pg = require "helpers.pg"
local cli = require "helpers.cli"
local fixture = require "helpers.fixture"

describe("statements the migration's transaction cannot hold", function()
  local fx = fixture.new { scope = "all" }
  local dir, url

  setup(function() url = fx:new_db() end)
  after_each(function()
    cli.remove(dir)
    dir = nil
    pg.psql(url, "DROP TABLE IF EXISTS t, luamigrate_version, luamigrate_version_history, luamigrate_version_journal")
  end)

  local function project(body)
    dir = cli.project { files = { ["migrations/versions/aa01_x.lua"] = cli.revision("aa01", nil, body) } }
  end

  -- --dry-run, --sql and online (last: a refusal after an autocommit block's COMMIT leaves
  -- the revision half-done, which later runs would report instead): {code, err} each
  local function three_ways()
    local out = {}
    for _, args in ipairs { { "upgrade", "--dry-run", "head" }, { "upgrade", "--sql", "head" }, { "upgrade", "head" } } do
      local r = cli.run({ "--url", url, table.unpack(args) }, { cwd = dir })
      out[#out + 1] = r
    end
    return out
  end

  local cases = {
    { "CREATE INDEX CONCURRENTLY through an op",
      '  op.create_index("t_a", "t", { "a" }, { postgresql_concurrently = true })',
      "migrations/versions/aa01_x.lua:10: upgrade  -> aa01 failed: op.create_index: CREATE INDEX CONCURRENTLY "
        .. "cannot run inside a transaction block", "op.autocommit_block" },
    { "DROP INDEX CONCURRENTLY through an op", '  op.drop_index("t_a", { postgresql_concurrently = true })',
      "aa01_x.lua:10: upgrade  -> aa01 failed: op.drop_index: DROP INDEX CONCURRENTLY cannot run", "op.autocommit_block" },
    { "a non-transactional statement among others in raw SQL",
      '  op.execute("SELECT \';\'; VACUUM t; SELECT 2")',
      "aa01_x.lua:10: upgrade  -> aa01 failed: op.execute: VACUUM cannot run inside a transaction block",
      "statement: VACUUM t" },
    { "REINDEX CONCURRENTLY", '  op.execute("REINDEX TABLE CONCURRENTLY t")', "REINDEX CONCURRENTLY cannot run", nil },
    { "ALTER SYSTEM", [[  op.execute("ALTER SYSTEM SET work_mem = '8MB'")]], "ALTER SYSTEM cannot run", nil },
    { "CREATE DATABASE", '  op.execute("CREATE DATABASE lm_never_made")', "CREATE DATABASE cannot run", nil },
    { "COMMIT", '  op.execute("COMMIT")', "op.execute: COMMIT is transaction control, which a migration must not issue", nil },
    { "END after other work in one text", '  op.execute("INSERT INTO t VALUES (1); END; BEGIN")',
      "op.execute: COMMIT is transaction control", "statement: END" },
    { "PREPARE TRANSACTION", [[  op.execute("PREPARE TRANSACTION 'x'")]], "PREPARE TRANSACTION is transaction control", nil },
    { "BEGIN inside an autocommit block", '  op.autocommit_block(function() op.execute("BEGIN") end)',
      "BEGIN is transaction control", nil },
    { "a savepoint inside an autocommit block", '  op.autocommit_block(function() op.execute("SAVEPOINT a") end)',
      "SAVEPOINT is transaction control", "autocommit block" },
  }
  for _, c in ipairs(cases) do
    it("refuses " .. c[1] .. " online, in --dry-run and in --sql alike", function()
      pg.psql(url, "CREATE TABLE t (a int)")
      -- work before the refused statement, rolled back with it (an autocommit block would
      -- commit it first, so those cases have none)
      project((c[2]:find("autocommit_block", 1, true) and "" or '  op.execute("INSERT INTO t VALUES (42)")\n') .. c[2])
      for i, r in ipairs(three_ways()) do
        assert.equal(1, r.code, r.err)
        assert.truthy(r.err:find(c[3], 1, true), r.err)
        if c[4] then assert.truthy(r.err:find(c[4], 1, true), r.err) end
        assert.equal("0", pg.psql(url, "SELECT count(*) FROM t"), i)
      end
      assert.equal("0", pg.psql(url, "SELECT count(*) FROM luamigrate_version"))
    end)
  end

  it("runs them inside an autocommit block, and savepoints inside the transaction", function()
    pg.psql(url, "CREATE TABLE t (a int)")
    project([[
  op.execute("SAVEPOINT s1; INSERT INTO t VALUES (1); ROLLBACK TO SAVEPOINT s1; RELEASE SAVEPOINT s1")
  op.execute("SELECT 'COMMIT; BEGIN'")
  op.autocommit_block(function()
    op.create_index("t_a", "t", { "a" }, { postgresql_concurrently = true })
    op.execute("VACUUM t")
  end)]])
    local r = cli.run({ "--url", url, "upgrade", "--sql", "head" }, { cwd = dir })
    assert.equal(0, r.code, r.err)
    assert.truthy(r.out:find("COMMIT;\n\nSET lock_timeout = '5s';\n\nCREATE INDEX CONCURRENTLY t_a ON t (a);\n\n"
      .. "VACUUM t;\n\nRESET lock_timeout;\n\nBEGIN;", 1, true), r.out)
    r = cli.run({ "--url", url, "upgrade", "head" }, { cwd = dir })
    assert.equal(0, r.code, r.err)
    assert.equal("t_a", pg.psql(url, "SELECT indexrelid::regclass FROM pg_index WHERE indrelid = 't'::regclass"))
    assert.equal("0", pg.psql(url, "SELECT count(*) FROM t"))
  end)
end)
