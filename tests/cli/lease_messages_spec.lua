-- lock = "table": what a run says about the lease says what happened. No server notice on
-- every run; no takeover warning for a lease that was released, not taken over; and a lease
-- a run holds (renewed in its migration's open transaction) is not reported as expired.
-- Another session plays the holder with psql, so each race happens the same way every time.
local pg = require "helpers.pg"
local cli = require "helpers.cli"
local fixture = require "helpers.fixture"

describe("lock = \"table\" messages", function()
  local fx = fixture.new()
  local url, dir

  before_each(function()
    url = fx:new_db("lease")
    local files = cli.chain(2)
    dir = fx:project { files = files, config = 'script_location = "migrations"\nlock = "table"\n' }
    local r = cli.run({ "--url", url, "upgrade", "+1" }, { cwd = dir })
    assert.equal(0, r.code, r.err)
  end)

  -- Runs sql in a background psql session; returns a function that waits for it to end.
  local function background(sql)
    local done = os.tmpname()
    os.execute(("(%spsql -XAtq -d %s %s >/dev/null 2>&1; echo >%s) &"):format(pg.tool, pg.shell_quote(url),
      sql, done))
    return function()
      for _ = 1, 200 do
        if cli.slurp(done) ~= "" then break end
        os.execute("sleep 0.05")
      end
      os.remove(done)
    end
  end

  -- Waits until a session of ours (not this query) has the lease row locked.
  local function row_locked()
    for _ = 1, 200 do
      if pg.psql(url, "SELECT count(*) FROM pg_stat_activity WHERE query = 'SELECT pg_sleep(2)'") == "1" then return end
      os.execute("sleep 0.05")
    end
    error("the holder session did not start")
  end

  it("prints no server notice about the lease table on later runs", function()
    local r = cli.run({ "--url", url, "upgrade", "head" }, { cwd = dir })
    assert.equal(0, r.code, r.err)
    assert.is_nil(r.err:find('"luamigrate_version_lock" already exists', 1, true), r.err)
  end)

  it("does not warn of a takeover when the lease was released while it asked", function()
    pg.psql(url, "INSERT INTO luamigrate_version_lock VALUES (1, 'ghost', 'deploy-7', 4242, 'web', now(), now(), "
      .. "now() + interval '1 hour')")
    -- the holder releases (deletes its row) while this run's claim waits on that row
    local wait = background("-c 'BEGIN' -c 'DELETE FROM luamigrate_version_lock' -c 'SELECT pg_sleep(2)' -c 'COMMIT'")
    row_locked()
    local r = cli.run({ "--url", url, "upgrade", "head" }, { cwd = dir })
    wait()
    assert.equal(0, r.code, r.err)
    assert.is_nil(r.err:find("took over", 1, true), r.err)
  end)

  it("does not report a lease renewed in the holder's open transaction as expired", function()
    -- committed: expired a minute ago; the holder's open transaction has renewed it
    pg.psql(url, "INSERT INTO luamigrate_version_lock VALUES (1, 'ghost', 'deploy-7', 4242, 'web', now(), now(), "
      .. "now() - interval '1 minute')")
    local wait = background("-c 'BEGIN' -c \"UPDATE luamigrate_version_lock SET expires_at = now() + interval '1 hour'\" "
      .. "-c 'SELECT pg_sleep(2)' -c 'COMMIT'")
    row_locked()
    local r = cli.run({ "--url", url, "--lock-timeout", "1", "upgrade", "head" }, { cwd = dir })
    wait()
    assert.equal(1, r.code)
    assert.truthy(r.err:find("held by luamigrate on host deploy-7, pid 4242 (application_name 'web')", 1, true), r.err)
    assert.is_nil(r.err:find("expired", 1, true), r.err)
    assert.truthy(r.err:find("expires in", 1, true), r.err)
  end)
end)
