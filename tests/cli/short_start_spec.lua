-- What a run reads at its start, read at once: the work and lock connections open together,
-- and the version rows, journal and applied checksums come in one round trip. What a user
-- sees must not change: a fresh clone (every mtime new, no revision cache) still finds the
-- one file edited since it ran, and a lock connection the server refuses stops the run
-- before it changes anything.
local pg = require "helpers.pg"
local cli = require "helpers.cli"
local fixture = require "helpers.fixture"

describe("the start of a run", function()
  local fx = fixture.new()

  -- A copy of dir as a fresh clone has it: new mtimes, no revision cache.
  local function clone(dir)
    local copy = dir .. "-clone"
    assert(os.execute(("rm -rf '%s' && cp -r '%s' '%s' && rm -f '%s/migrations/versions/.luamigrate_cache'")
      :format(copy, dir, copy, copy)))
    fx.dirs[#fx.dirs + 1] = copy
    return copy
  end

  -- The delay proxy built beside the binary (bench/delayproxy.c) in front of the server, `rtt`
  -- ms a round trip: its port, and a function that stops it and returns the round trips it
  -- counted.
  local function proxy(rtt)
    local bin = cli.bin:gsub("[^/]+$", "delayproxy")
    local portfile, countfile = os.tmpname(), os.tmpname()
    os.remove(countfile)
    local p = assert(io.popen(("%s --rtt %d --upstream %s --count %s >%s 2>/dev/null & echo $!")
      :format(pg.shell_quote(bin), rtt, pg.port, countfile, portfile)))
    local pid = assert(tonumber(p:read("l")))
    p:close()
    local port
    for _ = 1, 200 do
      local f = io.open(portfile)
      port = f and tonumber(f:read("l") or "")
      if f then f:close() end
      if port then break end
      os.execute("sleep 0.02")
    end
    assert(port, "delayproxy did not start")
    return port, function()
      os.execute(("kill -TERM %d"):format(pid))
      local trips
      for _ = 1, 200 do
        local f = io.open(countfile)
        trips = f and tonumber((f:read("a") or ""):match("round_trips (%d+)"))
        if f then f:close() end
        if trips then break end
        os.execute("sleep 0.02")
      end
      os.remove(portfile)
      os.remove(countfile)
      return assert(trips, "delayproxy wrote no count")
    end
  end

  -- luamigrate ARGS in dir against database dbname through the proxy at 40 ms a round trip:
  -- the result, and the round trips the proxy counted. (Counted, not timed: the delay only
  -- makes the two connections' messages overlap as they would on a network.)
  local function counted(dir, dbname, ...)
    local port, stop = proxy(40)
    local r = cli.run({ "--url", ("host=127.0.0.1 port=%d user=postgres dbname=%s"):format(port, dbname), ... },
      { cwd = dir })
    return r, stop()
  end

  it("takes a handful of round trips for a no-op upgrade and status, however long the history", function()
    local most = {}
    for _, n in ipairs { 2, 40 } do
      local files, ids = cli.chain(n)
      local dir, _, dbname = fx:open { files = files }
      assert.equal(0, fx.run("upgrade", "head").code)
      local fresh = clone(dir)
      local r, up = counted(fresh, dbname, "upgrade", "head")
      assert.equal(0, r.code, r.err)
      assert.equal(ids[n], pg.psql(fx.url, "SELECT version_num FROM luamigrate_version"))
      local s, st = counted(fresh, dbname, "status")
      assert.equal(0, s.code, s.err)
      assert.truthy(s.out:find("Up to date", 1, true), s.out)
      -- libpq's SSLRequest and the start-up (both connections at once), the lock with the
      -- probe, the one read, the unlock; status takes no lock
      assert.is_true(up <= 6, ("upgrade head with %d applied: %d round trips"):format(n, up))
      assert.is_true(st <= 5, ("status with %d applied: %d round trips"):format(n, st))
      most[#most + 1] = up
    end
    assert.is_true(math.abs(most[1] - most[2]) <= 1, ("%d and %d round trips"):format(most[1], most[2]))
  end)

  -- The first run on an empty database creates the engine's tables under the lock; what it
  -- knows of them then is what it made, not asked again: it costs a no-op run's round trips
  -- plus one per CREATE TABLE (the version table, its history and journal; lock = "table"
  -- also its lease table). In every mode the tables' existence is asked in one statement.
  for _, mode in ipairs { "session", "xact", "table" } do
    it(("creates the engine's tables without asking about them again (lock = %q)"):format(mode), function()
      local dir, _, dbname = fx:open { files = {} }
      local first_run, first = counted(dir, dbname, "--lock", mode, "upgrade", "head")
      assert.equal(0, first_run.code, first_run.err)
      local noop_run, noop = counted(dir, dbname, "--lock", mode, "upgrade", "head")
      assert.equal(0, noop_run.code, noop_run.err)
      local creates = mode == "table" and 4 or 3
      assert.is_true(first - noop <= creates,
        ("first run %d round trips, a no-op one %d (lock = %s)"):format(first, noop, mode))
    end)
  end

  -- A conninfo listing several hosts connects as libpq documents it: a host that refuses
  -- is skipped at once, and one that does not answer within connect_timeout is given up for
  -- the next (libpq's own loop; the concurrent connect has one deadline for everything).
  it("connects to the second of two hosts when the first refuses or does not answer", function()
    local files, ids = cli.chain(2)
    local dir, url, dbname = fx:open { files = files }
    local refused = ("host=127.0.0.1,127.0.0.1 port=1,%s user=postgres dbname=%s connect_timeout=2")
      :format(pg.port, dbname)
    local r = cli.run({ "--url", refused, "upgrade", "+1" }, { cwd = dir })
    assert.equal(0, r.code, r.err)
    assert.equal(ids[1], pg.psql(url, "SELECT version_num FROM luamigrate_version"))
    -- a first host that never answers (the proxy holds every byte for a minute)
    local port, stop = proxy(60000)
    local silent = ("postgresql://postgres@127.0.0.1:%d,127.0.0.1:%s/%s?connect_timeout=2")
      :format(port, pg.port, dbname)
    local ok, err = pcall(function()
      r = cli.run({ "--url", silent, "upgrade", "head" }, { cwd = dir })
      assert.equal(0, r.code, r.err)
      assert.equal(ids[2], pg.psql(url, "SELECT version_num FROM luamigrate_version"))
      r = cli.run({ "--url", silent, "status" }, { cwd = dir })
      assert.equal(0, r.code, r.err)
      assert.truthy(r.out:find("Up to date", 1, true), r.out)
    end)
    stop()
    if not ok then error(err, 0) end
  end)

  it("on a fresh clone, finds the one applied file edited since it ran, and only that one", function()
    local files, ids = cli.chain(3)
    local dir, url = fx:open { files = files }
    assert.equal(0, fx.run("upgrade", "head").code)

    local fresh = clone(dir)
    local r = cli.run({ "--url", url, "status" }, { cwd = fresh })
    assert.equal(0, r.code, r.err)
    assert.is_nil(r.out:find("changed since", 1, true), r.out)

    local edited = fresh .. "/migrations/versions/" .. ids[2] .. "_step_2.lua"
    local f = assert(io.open(edited, "a"))
    f:write("-- reviewed later\n")
    f:close()
    r = cli.run({ "--url", url, "status" }, { cwd = fresh })
    assert.equal(0, r.code, r.err)
    assert.truthy(r.out:find(ids[2] .. "  [^\n]*%[file changed since%]\n"), r.out)
    assert.is_nil(r.out:find(ids[1] .. "  [^\n]*%[file changed since%]"), r.out)
    assert.is_nil(r.out:find(ids[3] .. "  [^\n]*%[file changed since%]"), r.out)
    assert.truthy(r.out:find("1 applied file changed since it ran", 1, true), r.out)

    -- the no-op upgrade warns about it, runs nothing, and leaves the rows as they were
    r = cli.run({ "--url", url, "upgrade", "head" }, { cwd = fresh })
    assert.equal(0, r.code, r.err)
    assert.truthy(r.err:find(ids[2] .. "_step_2.lua: revision " .. ids[2]
      .. " was applied from a different version of this file", 1, true), r.err)
    assert.equal(1, select(2, r.err:gsub("was applied from a different version", "")), r.err)
    assert.equal(ids[3], pg.psql(url, "SELECT version_num FROM luamigrate_version"))
    assert.equal("3", pg.psql(url, "SELECT count(*) FROM luamigrate_version_history"))
  end)

  it("stops before changing anything when the server refuses the lock's connection", function()
    local files = cli.chain(2)
    local dir, url = fx:open { files = files }
    local role = "lm_one_conn_" .. math.random(1, 1e6)
    pg.psql(url, ("CREATE ROLE %s LOGIN CONNECTION LIMIT 1; GRANT CREATE ON SCHEMA public TO %s")
      :format(role, role))
    local as_role = url .. " user=" .. role
    local ok, err = pcall(function()
      -- upgrade needs two connections (the work one and the session lock's): refused
      local r = cli.run({ "--url", as_role, "upgrade", "head" }, { cwd = dir })
      assert.equal(1, r.code, r.err)
      assert.truthy(r.err:find("cannot connect to [^\n]*too many connections for role \"" .. role .. "\""), r.err)
      assert.equal(1, select(2, r.err:gsub("cannot connect", "")), r.err)
      assert.equal("", pg.psql(url, "SELECT coalesce(to_regclass('luamigrate_version')::text, '')"))
      assert.equal("0", pg.psql(url, "SELECT count(*) FROM pg_class WHERE relnamespace = 'public'::regnamespace"))
      -- status reads with one connection, and takes no lock
      r = cli.run({ "--url", as_role, "status" }, { cwd = dir })
      assert.equal(0, r.code, r.err)
      assert.truthy(r.out:find("Pending: 2 migrations", 1, true), r.out)
      -- with room for both connections the same run goes through
      pg.psql(url, ("ALTER ROLE %s CONNECTION LIMIT 2"):format(role))
      r = cli.run({ "--url", as_role, "upgrade", "head" }, { cwd = dir })
      assert.equal(0, r.code, r.err)
      assert.equal("2", pg.psql(url, "SELECT count(*) FROM luamigrate_version_history"))
    end)
    pg.psql(url, ("DROP OWNED BY %s"):format(role))
    pg.psql(pg.conninfo("postgres"), ("DROP ROLE %s"):format(role))
    if not ok then error(err, 0) end
  end)
end)
