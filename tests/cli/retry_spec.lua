-- Per-migration timeouts (SET LOCAL, so nothing leaks through a pooler) and bounded retries
-- of a migration that could not get its lock in time.
local pg = require "helpers.pg"
local cli = require "helpers.cli"
local fixture = require "helpers.fixture"
local core = require "luamigrate.core"

describe("migration_lock_timeout and lock_retries", function()
  local fx, dir, url, blocker

  before_each(function()
    url = fx:new_db()
    pg.psql(url, "CREATE TABLE busy (id int); CREATE TABLE migration_log (rev text)")
    dir = fx:project { files = {
      ["migrations/versions/aaaa_alter_busy.lua"] = cli.revision("aaaa", nil,
        '  op.execute("INSERT INTO migration_log VALUES (\'aaaa\')")\n'
        .. '  op.execute("SELECT current_setting(\'lock_timeout\')")\n'
        .. '  op.add_column("busy", sa.Column("note", sa.Text))\n',
        '  op.drop_column("busy", "note")\n'),
    } }
    blocker = core.connect(url)
    blocker:execute("BEGIN")
    blocker:execute("LOCK TABLE busy IN ACCESS SHARE MODE")
  end)

  after_each(function() blocker:close() end)
  fx = fixture.new() -- after the blocker's after_each: its database is dropped once it is closed

  it("fails with the server's lock_timeout error and changes nothing without retries", function()
    cli.write(dir .. "/luamigrate.lua", 'script_location = "migrations"\nmigration_lock_timeout = "100ms"\n')
    local r = cli.run({ "--url", url, "upgrade", "head" }, { cwd = dir })
    assert.equal(1, r.code)
    assert.truthy(r.err:find("ERROR 55P03: canceling statement due to lock timeout", 1, true), r.err)
    assert.truthy(r.err:find('ALTER TABLE busy ADD COLUMN note TEXT', 1, true), r.err)
    assert.equal("0", pg.psql(url, "SELECT count(*) FROM migration_log"))
    -- the setting was local to the migration's transaction
    assert.equal("0", pg.psql(url, "SELECT current_setting('lock_timeout')"))
  end)

  it("rolls back, waits and tries again until the lock is free", function()
    cli.write(dir .. "/luamigrate.lua",
      'script_location = "migrations"\nmigration_lock_timeout = "100ms"\nlock_retries = 6\n')
    local h = cli.spawn({ "--url", url, "upgrade", "head" }, { cwd = dir })
    os.execute("sleep 1.2")
    blocker:execute("COMMIT")
    local r = h:wait()
    assert.equal(0, r.code, r.err)
    assert.truthy(r.err:find("luamigrate: warning: migrations/versions/aaaa_alter_busy.lua:11: upgrade  -> aaaa "
      .. "failed: ERROR 55P03: canceling statement due to lock timeout; rolled back, retrying in", 1, true), r.err)
    assert.truthy(r.err:find("(attempt 2 of 7)", 1, true), r.err)
    -- every failed attempt was rolled back: the migration's work is there once
    assert.equal("1", pg.psql(url, "SELECT count(*) FROM migration_log"))
    assert.equal("aaaa", pg.psql(url, "SELECT version_num FROM luamigrate_version"))
    assert.truthy(r.err:find("Running upgrade  %-> aaaa, revision aaaa %(%d+ ms%)\n"), r.err)
  end)
  it("migration_statement_timeout reaches the statements of an autocommit block", function()
    local d = cli.project {
      config = 'script_location = "migrations"\nmigration_statement_timeout = "300ms"\n',
      files = { ["migrations/versions/bbbb_slow_block.lua"] = cli.revision("bbbb", nil,
        '  op.autocommit_block(function() op.execute("SELECT pg_sleep(5)") end)\n'
        .. '  op.execute("INSERT INTO migration_log VALUES (\'bbbb\')")\n') },
    }
    local t0 = os.time()
    local r = cli.run({ "--url", url, "upgrade", "head" }, { cwd = d })
    cli.remove(d)
    assert.equal(1, r.code, r.err)
    assert.truthy(r.err:find("ERROR 57014: canceling statement due to statement timeout", 1, true), r.err)
    assert.truthy(os.time() - t0 < 4, "the block's statement ran to its end")
    assert.equal("0", pg.psql(url, "SELECT count(*) FROM migration_log"))
  end)
end)
