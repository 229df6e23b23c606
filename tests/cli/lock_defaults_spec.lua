-- Lock-safe defaults: each migration's transaction gets SET LOCAL lock_timeout (5s unless
-- migration_lock_timeout says otherwise; false turns it off), --sql prints those SET LOCALs
-- where the online run sends them, and a migration that hit the timeout is retried
-- (lock_retries, default 3).
local pg = require "helpers.pg"
local cli = require "helpers.cli"
local fixture = require "helpers.fixture"
local core = require "luamigrate.core"

local V = "migrations/versions/"

describe("lock-safe defaults", function()
  local fx = fixture.new()
  local dir, url

  before_each(function()
    url = fx:new_db()
    pg.psql(url, "CREATE TABLE busy (id int); CREATE TABLE seen (setting text)")
  end)

  local BODY = [[
  op.execute("INSERT INTO seen SELECT current_setting('lock_timeout')")
  op.autocommit_block(function()
    op.execute("INSERT INTO seen SELECT 'block ' || current_setting('lock_timeout')")
  end)
  op.execute("INSERT INTO seen SELECT 'after ' || current_setting('lock_timeout')")]]

  local function project(config)
    dir = fx:project { files = { [V .. "aaaa_x.lua"] = cli.revision("aaaa", nil, BODY) },
      config = 'script_location = "migrations"\n' .. (config or "") }
  end

  -- and for the session while an autocommit block runs (its statements have no transaction
  -- for a SET LOCAL), reset after it
  it("sets lock_timeout 5s in each migration's transaction and for its autocommit blocks", function()
    project()
    local r = cli.run({ "--url", url, "upgrade", "head" }, { cwd = dir })
    assert.equal(0, r.code, r.err)
    assert.equal("5s\nblock 5s\nafter 5s", pg.psql(url, "SELECT string_agg(setting, E'\\n' ORDER BY ctid) FROM seen"))
  end)

  it("prints the SET LOCALs in --sql where the online run sends them", function()
    project('migration_statement_timeout = "10min"\n')
    local r = cli.run({ "upgrade", "--sql", "head" }, { cwd = dir })
    assert.equal(0, r.code, r.err)
    assert.truthy(r.out:find("-- Running upgrade  -> aaaa\n\nSET LOCAL lock_timeout = '5s';\n\n"
      .. "SET LOCAL statement_timeout = '10min';\n\nINSERT INTO seen", 1, true), r.out)
    assert.truthy(r.out:find("COMMIT;\n\nSET lock_timeout = '5s';\n\nSET statement_timeout = '10min';\n\n"
      .. "INSERT INTO seen SELECT 'block ' || current_setting('lock_timeout');\n\n"
      .. "RESET lock_timeout;\n\nRESET statement_timeout;\n\nBEGIN;\n\nSET LOCAL lock_timeout = '5s';\n\nSET LOCAL statement_timeout = '10min';\n\nINSERT INTO seen "
      .. "SELECT 'after '", 1, true), r.out)
    -- the script does what the online run does
    pg.psql(url, r.out)
    assert.equal("5s\nblock 5s\nafter 5s", pg.psql(url, "SELECT string_agg(setting, E'\\n' ORDER BY ctid) FROM seen"))
  end)

  it("turns the timeout off with migration_lock_timeout = false", function()
    project("migration_lock_timeout = false\n")
    local r = cli.run({ "upgrade", "--sql", "head" }, { cwd = dir })
    assert.equal(0, r.code, r.err)
    assert.falsy(r.out:find("SET LOCAL", 1, true), r.out)
    r = cli.run({ "--url", url, "upgrade", "head" }, { cwd = dir })
    assert.equal(0, r.code, r.err)
    assert.equal("0", pg.psql(url, "SELECT setting FROM seen ORDER BY ctid LIMIT 1"))
    cli.write(dir .. "/luamigrate.lua", "migration_lock_timeout = true\n")
    r = cli.run({ "upgrade", "--sql", "head" }, { cwd = dir })
    assert.equal(2, r.code)
    assert.truthy(r.err:find("setting 'migration_lock_timeout' must be a string or false, got boolean", 1, true), r.err)
  end)

  it("retries a migration that hit its lock timeout three times by default", function()
    dir = fx:project { files = { [V .. "aaaa_x.lua"] = cli.revision("aaaa", nil,
      '  op.add_column("busy", sa.Column("note", sa.Text))') },
      config = 'script_location = "migrations"\nmigration_lock_timeout = "50ms"\n' }
    local blocker = core.connect(url)
    blocker:execute("BEGIN")
    blocker:execute("LOCK TABLE busy IN ACCESS SHARE MODE")
    local r = cli.run({ "--url", url, "upgrade", "head" }, { cwd = dir })
    blocker:close()
    assert.equal(1, r.code)
    assert.truthy(r.err:find("(attempt 4 of 4)", 1, true), r.err)
    assert.falsy(r.err:find("(attempt 5", 1, true), r.err)
    assert.truthy(r.err:find("ERROR 55P03: canceling statement due to lock timeout", 1, true), r.err)
  end)
end)
