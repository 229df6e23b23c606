-- A migration that fails: only it is rolled back, the message says where and why, and a
-- fixed file then applies.
local pg = require "helpers.pg"
local cli = require "helpers.cli"
local fixture = require "helpers.fixture"

describe("a failing migration", function()
  local fx = fixture.new()
  local dir, url, dbname

  local function setup(files, config)
    dir, url, dbname = fx:open { files = files, config = config }
  end

  local run = fx.run

  it("rolls back only itself and names revision, file:line, SQLSTATE and statement", function()
    local files, ids = cli.chain(10, { broken = 5 })
    setup(files)
    local r = run("upgrade", "head")
    assert.equal(1, r.code)
    assert.equal(ids[4], pg.psql(url, "SELECT version_num FROM luamigrate_version"))
    assert.equal("4", pg.psql(url, "SELECT count(*) FROM pg_tables WHERE tablename ~ '^t[0-9]+$'"))
    assert.equal("", pg.psql(url, "SELECT to_regclass('t5')"))
    local first = r.err:match("luamigrate: [^\n]*")
    assert.truthy(first:find("luamigrate: migrations/versions/" .. ids[5] .. "_step_5.lua:12: upgrade "
      .. ids[4] .. " -> " .. ids[5] .. " failed: ERROR 42P01: relation \"no_such_table\" does not exist", 1, true), r.err)
    assert.truthy(r.err:find("statement: INSERT INTO no_such_table VALUES (1)", 1, true), r.err)
    assert.truthy(r.err:find("stack traceback", 1, true))
    -- fix the file: the rest applies
    local path = dir .. "/migrations/versions/" .. ids[5] .. "_step_5.lua"
    cli.write(path, (cli.slurp(path):gsub('  op.execute%("INSERT INTO no_such_table VALUES %(1%)"%)\n', "")))
    r = run("upgrade", "head")
    assert.equal(0, r.code, r.err)
    assert.equal(ids[10], pg.psql(url, "SELECT version_num FROM luamigrate_version"))
    assert.equal("10", pg.psql(url, "SELECT count(*) FROM migration_log"))
  end)

  it("rolls back the whole run when transaction_per_migration is false", function()
    local files = cli.chain(6, { broken = 4 })
    setup(files, 'script_location = "migrations"\ntransaction_per_migration = false\n')
    local r = run("upgrade", "head")
    assert.equal(1, r.code)
    assert.equal("0", pg.psql(url, "SELECT count(*) FROM pg_tables WHERE tablename ~ '^t[0-9]+$'"))
    assert.equal("", pg.psql(url, "SELECT coalesce(string_agg(version_num, ','), '') FROM luamigrate_version"))
  end)

  it("reports a Lua runtime error with file:line", function()
    setup { ["migrations/versions/aaaa_x.lua"] = cli.revision("aaaa", nil,
      '  op.execute("CREATE TABLE kept (id int)")\n  local t = nil\n  return t.field') }
    local r = run("upgrade", "head")
    assert.equal(1, r.code)
    assert.truthy(r.err:find("migrations/versions/aaaa_x.lua:11: attempt to index a nil value", 1, true), r.err)
    assert.equal("", pg.psql(url, "SELECT to_regclass('kept')"))
  end)

  for _, mode in ipairs { "session", "xact" } do
    -- through the bare connection: op.execute refuses them before sending (no_transaction_spec)
    it(("stops at a COMMIT, ROLLBACK or COMMIT; BEGIN in the migration, with what committed recorded (lock = %q)"):format(mode), function()
      local function body(stmt)
        return '  op.execute("CREATE TABLE before_t (id int)")\n  op.get_bind():execute("' .. stmt .. '")\n'
          .. '  op.execute("CREATE TABLE after_t (id int)")'
      end
      for _, case in ipairs { { "COMMIT", "committed" }, { "ROLLBACK", "rolled back" }, { "COMMIT; BEGIN", "committed" } } do
        setup { ["migrations/versions/aaaa_x.lua"] = cli.revision("aaaa", nil, body(case[1])) }
        local r = run("--lock", mode, "upgrade", "head")
        assert.equal(1, r.code, r.err)
        assert.truthy(r.err:find("aaaa_x.lua:10: upgrade  -> aaaa failed: this statement " .. case[2]
          .. " the migration's transaction", 1, true), r.err)
        -- nothing ran outside the migration's transaction
        assert.equal("", pg.psql(url, "SELECT coalesce(to_regclass('after_t')::text, '')"), case[1])
        assert.equal("0", pg.psql(url, "SELECT count(*) FROM luamigrate_version"))
        if case[2] == "committed" then
          assert.truthy(r.err:find("2 statements up to it are committed and recorded in the journal", 1, true), r.err)
          assert.equal("before_t", pg.psql(url, "SELECT coalesce(to_regclass('before_t')::text, '')"))
          local again = run("--lock", mode, "upgrade", "head")
          assert.equal(3, again.code, again.err)
          assert.truthy(again.err:find("2 statements of its transactional part are committed", 1, true), again.err)
        else
          assert.truthy(r.err:find("what revision aaaa did before it in that transaction is undone", 1, true), r.err)
          assert.equal("", pg.psql(url, "SELECT coalesce(to_regclass('before_t')::text, '')"))
          assert.equal("0", pg.psql(url, "SELECT count(*) FROM luamigrate_version_journal"))
        end
        cli.remove(dir)
        pg.drop_db(dbname)
      end
      -- a recorded COMMIT: --resume skips what it committed (the COMMIT too) and finishes
      setup { ["migrations/versions/aaaa_x.lua"] = cli.revision("aaaa", nil, body("COMMIT")) }
      assert.equal(1, run("--lock", mode, "upgrade", "head").code)
      local ok = run("--lock", mode, "upgrade", "--resume", "head")
      assert.equal(0, ok.code, ok.err)
      assert.equal("after_t", pg.psql(url, "SELECT coalesce(to_regclass('after_t')::text, '')"))
      assert.equal("aaaa", pg.psql(url, "SELECT version_num FROM luamigrate_version"))
    end)
  end

  it("refuses a migration that swallowed a SQL error", function()
    setup { ["migrations/versions/aaaa_x.lua"] = cli.revision("aaaa", nil,
      '  op.execute("CREATE TABLE kept (id int)")\n  pcall(op.execute, "SELECT * FROM nothing_here")') }
    local r = run("upgrade", "head")
    assert.equal(1, r.code)
    assert.truthy(r.err:find("a statement failed inside upgrade() of revision aaaa and the error was caught", 1, true), r.err)
    assert.equal("", pg.psql(url, "SELECT to_regclass('kept')"))
  end)

  it("names the statement of a non-transactional command run inside the transaction", function()
    setup { ["migrations/versions/aaaa_x.lua"] = cli.revision("aaaa", nil,
      '  op.execute("CREATE TABLE k (id int)")\n  op.execute("CREATE INDEX CONCURRENTLY k_i ON k (id)")') }
    local r = run("upgrade", "head")
    assert.equal(1, r.code)
    -- found by the parser before it is sent (no_transaction_spec), the table rolled back
    assert.truthy(r.err:find("CREATE INDEX CONCURRENTLY cannot run inside a transaction block", 1, true), r.err)
    assert.truthy(r.err:find("statement: CREATE INDEX CONCURRENTLY k_i ON k (id)", 1, true), r.err)
    assert.equal("", pg.psql(url, "SELECT to_regclass('k')"))
  end)
end)
