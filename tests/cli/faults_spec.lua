-- Faults: luamigrate killed with SIGKILL at random points of a long run, and the server
-- restarted under it. The database must always be at a consistent version (each
-- migration's work present exactly when the version table says so), and a re-run finishes.
local pg = require "helpers.pg"
local cli = require "helpers.cli"

local q = pg.shell_quote

local start, alive = cli.start, cli.alive

local function wait_gone(pid)
  for _ = 1, 600 do
    if not alive(pid) then return end
    os.execute("sleep 0.05")
  end
  error("process " .. pid .. " did not end")
end

-- The chain's state is consistent when the version row names revision k and exactly the
-- tables t1..tk exist, each logged once.
local function assert_consistent(url, ids, trial)
  local version = pg.psql(url, "SELECT coalesce(max(version_num), '') FROM luamigrate_version")
  local k = 0
  for i, id in ipairs(ids) do if id == version then k = i end end
  assert.equal(version == "" and 0 or k, k, "trial " .. trial .. ": unknown version " .. version)
  local tables = tonumber(pg.psql(url, "SELECT count(*) FROM pg_tables WHERE tablename ~ '^t[0-9]+$'"))
  assert.equal(k, tables, ("trial %s: version %s (step %d) but %d tables"):format(trial, version, k, tables))
  if k > 0 then
    assert.equal(tostring(k), pg.psql(url, "SELECT count(*) FROM migration_log WHERE direction = 'up'"),
      "trial " .. trial)
  end
  return k
end

describe("faults", function()
  local dir, url, dbname, ids

  setup(function()
    local files
    files, ids = cli.chain(200)
    dir = cli.project { files = files }
  end)

  teardown(function() cli.remove(dir) end)

  -- LUAMIGRATE_FAULT_TRIALS=50 for the full run; the suite runs 10.
  local trials = tonumber(os.getenv("LUAMIGRATE_FAULT_TRIALS") or "10")
  it(("stays consistent when killed with SIGKILL at random points (%d trials)"):format(trials), function()
    math.randomseed(4242)
    for trial = 1, trials do
      url, dbname = pg.new_db("faults")
      local pid = start({ "--url", url, "upgrade", "head" }, dir)
      os.execute(("sleep %.3f"):format(math.random() * 0.8))
      os.execute(("kill -9 %d 2>/dev/null"):format(pid))
      wait_gone(pid)
      -- the server notices the dropped connection and rolls its transaction back
      os.execute("sleep 0.1")
      if pg.psql(url, "SELECT coalesce(to_regclass('luamigrate_version')::text, '')") ~= "" then
        assert_consistent(url, ids, trial)
      end
      local r = cli.run({ "--url", url, "upgrade", "head" }, { cwd = dir })
      assert.equal(0, r.code, "trial " .. trial .. ": " .. r.err)
      assert.equal(200, assert_consistent(url, ids, trial))
      pg.drop_db(dbname)
    end
  end)

  it("reports a server restart mid-run and completes on the next run", function()
    -- a cluster of its own, so restarting it disturbs no other spec
    local pgdir = os.tmpname()
    os.remove(pgdir)
    local p = assert(io.popen(("bash %s/scripts/pg.sh start %s"):format(q(cli.src), q(pgdir))))
    local exports = p:read("a")
    assert(p:close(), exports)
    local port = exports:match("PGPORT=(%d+)")
    local own = ("host=%s port=%s user=postgres dbname=postgres"):format(pgdir, port)
    local ok, err = pcall(function()
      local slow = cli.chain(40, { sleep = 0.05 })
      local sdir = cli.project { files = slow }
      local h = cli.spawn({ "--url", own, "upgrade", "head" }, { cwd = sdir })
      os.execute("sleep 0.8")
      local restart = ("runuser -u postgres -- /usr/lib/postgresql/15/bin/pg_ctl -D %s/data -m fast -w restart >/dev/null 2>&1")
      if pg.tool ~= "" then restart = "env -u LD_PRELOAD " .. restart end
      assert(os.execute(restart:format(q(pgdir))))
      local first = h:wait()
      local stderr = first.err
      assert.equal(1, first.code, stderr)
      assert.truthy(stderr:find("luamigrate: ", 1, true), stderr)
      assert.truthy(stderr:find("terminating connection") or stderr:find("server closed the connection")
        or stderr:find("connection was lost") or stderr:find("no connection to the server")
        -- the lock's connection may be the one found closed first (both die with the server)
        or stderr:find("lost the migration lock", 1, true), stderr)
      local r = cli.run({ "--url", own, "upgrade", "head" }, { cwd = sdir })
      assert.equal(0, r.code, r.err)
      assert.equal("40", pg.psql(own, "SELECT count(*) FROM migration_log WHERE direction = 'up'"))
      cli.remove(sdir)
    end)
    os.execute(("bash %s/scripts/pg.sh stop %s"):format(q(cli.src), q(pgdir)))
    assert(ok, err)
  end)
end)
