-- Runs on one database at the same time: the advisory lock serialises them, so every
-- migration is applied exactly once; a busy lock times out with the holder named.
local pg = require "helpers.pg"
local cli = require "helpers.cli"
local core = require "luamigrate.core"

describe("concurrent runs", function()
  local dir, url, dbname, ids

  before_each(function()
    local files
    files, ids = cli.chain(30, { sleep = 0.05 })
    dir = cli.project { files = files }
    url, dbname = pg.new_db()
  end)

  after_each(function()
    cli.remove(dir)
    pg.drop_db(dbname)
  end)

  it("two upgrade head runs apply each migration exactly once", function()
    local a = cli.spawn({ "--url", url, "upgrade", "head" }, { cwd = dir })
    local b = cli.spawn({ "--url", url, "upgrade", "head" }, { cwd = dir })
    local ra, rb = a:wait(), b:wait()
    assert.equal(0, ra.code, ra.err)
    assert.equal(0, rb.code, rb.err)
    assert.equal("30", pg.psql(url, "SELECT count(*) FROM migration_log"))
    assert.equal("30", pg.psql(url, "SELECT count(DISTINCT rev) FROM migration_log"))
    assert.equal(ids[30], pg.psql(url, "SELECT version_num FROM luamigrate_version"))
    local waited = (ra.err .. rb.err):find("waiting for the migration lock held by pid", 1, true)
    assert.truthy(waited, ra.err .. rb.err)
  end)

  it("gives up after lock_timeout, naming the holder, and changes nothing", function()
    local lock = core.lock(url, "luamigrate_version")
    assert.is_true(lock:held())
    cli.write(dir .. "/luamigrate.lua", 'script_location = "migrations"\nlock_timeout = 0.5\n')
    local r = cli.run({ "--url", url, "upgrade", "head" }, { cwd = dir })
    lock:release()
    assert.equal(1, r.code)
    assert.truthy(r.err:find("could not obtain the migration lock for 'luamigrate_version' within 0.5 s: held by pid %d+"), r.err)
    assert.equal("", pg.psql(url, "SELECT coalesce(to_regclass('migration_log')::text, '')"))
    r = cli.run({ "--url", url, "upgrade", "+1" }, { cwd = dir })
    assert.equal(0, r.code, r.err)
  end)

  it("takes --lock-timeout from the command line over the config", function()
    local lock = core.lock(url, "luamigrate_version")
    cli.write(dir .. "/luamigrate.lua", 'script_location = "migrations"\nlock_timeout = 600\n')
    local r = cli.run({ "--url", url, "--lock-timeout", "0.2", "upgrade", "head" }, { cwd = dir })
    lock:release()
    assert.equal(1, r.code)
    assert.truthy(r.err:find("within 0.2 s: held by pid %d+ %(application_name"), r.err)
    r = cli.run({ "--url", url, "--lock-timeout", "soon", "upgrade", "head" }, { cwd = dir })
    assert.equal(2, r.code)
    assert.truthy(r.err:find("--lock-timeout 'soon': expected a number of seconds", 1, true), r.err)
  end)
end)
