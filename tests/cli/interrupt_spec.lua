-- Ctrl-C (SIGINT): it takes effect at once wherever luamigrate is — its own statement waiting
-- on another session's lock (in every lock mode), a loop inside a coroutine or a pcall in a
-- migration — and the message says what was interrupted: the config, a revision file being
-- loaded, a lock wait, or a migration (which alone has something to roll back).
local pg = require "helpers.pg"
local cli = require "helpers.cli"
local fixture = require "helpers.fixture"
local core = require "luamigrate.core"

-- Starts the binary; returns its pid and a function giving (seconds from signal to exit,
-- stderr) after sending one SIGINT once ready() is true.
local function interrupt(args, dir, ready)
  local pid, errfile = cli.start(args, dir)
  for _ = 1, 400 do
    if ready() then break end
    os.execute("sleep 0.05")
  end
  if not ready() then
    -- not left spinning (these migrations loop until a signal) when the spec fails here
    os.execute(("kill -9 %d"):format(pid))
    error("never ready: " .. cli.slurp(errfile))
  end
  local p = assert(io.popen("date +%s.%N"))
  local t0 = tonumber(p:read("l"))
  p:close()
  os.execute(("kill -INT %d"):format(pid))
  cli.wait_exit(pid, 10)
  p = assert(io.popen("date +%s.%N"))
  local took = tonumber(p:read("l")) - t0
  p:close()
  local alive = cli.alive(pid)
  if alive then os.execute(("kill -9 %d"):format(pid)) end
  local err = cli.slurp(errfile)
  os.remove(errfile)
  assert.is_false(alive, "still running 10 s after SIGINT: " .. err)
  return took, err
end

describe("SIGINT", function()
  local fx = fixture.new()
  local url

  before_each(function() url = fx:new_db() end)


  for _, mode in ipairs { "session", "xact", "table" } do
    it(("stops luamigrate's own statement waiting on another session's lock at once (lock = %q)"):format(mode), function()
      local files, ids = cli.chain(2)
      local dir = cli.project { files = files }
      assert.equal(0, cli.run({ "--url", url, "--lock", mode, "upgrade", "+1" }, { cwd = dir }).code)
      local blocker = core.connect(url)
      blocker:execute("BEGIN")
      blocker:execute("LOCK TABLE luamigrate_version IN ACCESS EXCLUSIVE MODE")
      local took, err = interrupt({ "--url", url, "--lock", mode, "upgrade", "head" }, dir, function()
        return pg.psql(url, "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
          .. "AND wait_event_type = 'Lock' AND query LIKE '%luamigrate_version%'") == "1"
      end)
      blocker:execute("COMMIT")
      blocker:close()
      assert.is_true(took < 3, ("took %.1f s"):format(took))
      assert.truthy(err:find("interrupted by signal", 1, true), err)
      assert.is_nil(err:find("rolled back", 1, true), err)
      assert.equal(ids[1], pg.psql(url, "SELECT version_num FROM luamigrate_version"))
      cli.remove(dir)
    end)
  end

  -- A signal cancels the statement in flight; only a failure the server reports as that
  -- cancel (SQLSTATE 57014) reads as the interruption. A statement that catches it and fails
  -- otherwise (a plpgsql handler, a trigger's) is reported with its own error, whether it is
  -- an op's or one of the run loop's own, pipelined or not.
  local SLEEP_THEN_FAIL = "BEGIN PERFORM pg_sleep(30); EXCEPTION WHEN query_canceled THEN "
    .. "RAISE EXCEPTION 'gave up waiting' USING ERRCODE = 'P0001'; END"
  local function sleeping()
    return pg.psql(url, "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
      .. "AND wait_event = 'PgSleep'") == "1"
  end

  for _, pipeline in ipairs { true, false } do
    it(("reports an op's own error, not the interruption, when its statement turns the cancel into another (pipeline = %s)")
      :format(pipeline), function()
      local dir = cli.project { files = { ["migrations/versions/aaaa_x.lua"] = cli.revision("aaaa", nil,
        '  op.create_table("t", sa.Column("id", sa.Integer))\n'
        .. ('  op.execute([[DO $$%s$$]])'):format(SLEEP_THEN_FAIL)) },
        config = ('script_location = "migrations"\npipeline = %s\n'):format(pipeline) }
      local _, err = interrupt({ "--url", url, "upgrade", "head" }, dir, sleeping)
      assert.truthy(err:find("aaaa_x.lua:10: upgrade  -> aaaa failed: ERROR P0001: gave up waiting", 1, true), err)
      assert.is_nil(err:find("interrupted", 1, true), err)
      assert.equal("", pg.psql(url, "SELECT coalesce(to_regclass('t')::text, '')"))
      assert.equal("", pg.psql(url, "SELECT coalesce(string_agg(version_num, ','), '') FROM luamigrate_version"))
      cli.remove(dir)
    end)
  end

  it("reports the engine's own statement failing for a trigger's reason, not the interruption", function()
    local files, ids = cli.chain(2)
    local dir = cli.project { files = files }
    assert.equal(0, cli.run({ "--url", url, "upgrade", "+1" }, { cwd = dir }).code)
    pg.psql(url, ("CREATE FUNCTION slow_vt() RETURNS trigger LANGUAGE plpgsql AS $$%s$$; "
      .. "CREATE TRIGGER slow BEFORE UPDATE ON luamigrate_version FOR EACH ROW EXECUTE FUNCTION slow_vt()")
      :format((SLEEP_THEN_FAIL:gsub("pg_sleep%(30%);", "pg_sleep(30); RETURN NEW;"))))
    local _, err = interrupt({ "--url", url, "upgrade", "head" }, dir, sleeping)
    assert.truthy(err:find("luamigrate's version table \"luamigrate_version\"[^\n]*gave up waiting"), err)
    assert.truthy(err:find("a trigger or rule on \"luamigrate_version\" raised this", 1, true), err)
    assert.truthy(err:find("Rolled back the failed migration; the ones before it stay applied", 1, true), err)
    assert.is_nil(err:find("interrupted", 1, true), err)
    assert.equal(ids[1], pg.psql(url, "SELECT version_num FROM luamigrate_version"))
    assert.equal("0", pg.psql(url, "SELECT count(*) FROM pg_tables WHERE tablename = 't2'"))
    cli.remove(dir)
  end)

  it("says a lock wait was interrupted, with nothing rolled back", function()
    local files = cli.chain(2)
    local dir = cli.project { files = files }
    local lock = core.lock(url, "luamigrate_version")
    for _, mode in ipairs { "session", "xact" } do
      local _, err = interrupt({ "--url", url, "--lock", mode, "upgrade", "head" }, dir, function()
        return pg.psql(url, "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
          .. "AND application_name = 'luamigrate'") ~= "0"
      end)
      assert.truthy(err:find("interrupted by signal while waiting for the migration lock for 'luamigrate_version'; "
        .. "nothing more was changed", 1, true), mode .. ": " .. err)
      assert.is_nil(err:find("olled back", 1, true), err)
    end
    lock:release()
    cli.remove(dir)
  end)

  for _, case in ipairs {
    { "a coroutine", "local co = coroutine.wrap(function() while true do end end)\n  co()" },
    { "a pcall", "while true do pcall(function() while true do end end) end" },
    { "an xpcall and a coroutine.resume", [[
  while true do
    xpcall(function() coroutine.resume(coroutine.create(function() while true do end end)) end,
      function(e) return e end)
  end]] },
  } do
    it(("stops a migration looping inside %s at the first SIGINT, and rolls it back"):format(case[1]), function()
      -- lint.upgrade = "off": the lint before upgrade renders upgrade() first, as --sql
      -- does, and this one never returns there either (a SIGINT during that pass is the
      -- case below); here the signal must land in the run itself
      local dir = cli.project { files = { ["migrations/versions/aaaa_loop.lua"] = cli.revision("aaaa", nil,
        '  op.autocommit_block(function() op.execute("CREATE TABLE spin (id int)") end)\n  ' .. case[2]) },
        config = 'script_location = "migrations"\nlint = { upgrade = "off" }\n' }
      local took, err = interrupt({ "--url", url, "upgrade", "head" }, dir, function()
        return pg.psql(url, "SELECT coalesce(to_regclass('spin')::text, '')") == "spin"
      end)
      assert.is_true(took < 3, ("took %.1f s"):format(took))
      assert.truthy(err:find("upgrade  -> aaaa failed: ", 1, true), err)
      assert.truthy(err:find("aaaa_loop.lua:%d+: interrupted by signal: the migration in progress is rolled back"), err)
      assert.equal("", pg.psql(url, "SELECT coalesce(string_agg(version_num, ','), '') FROM luamigrate_version"))
      cli.remove(dir)
    end)
  end

  it("stops the lint before upgrade when upgrade() never returns there, with nothing applied", function()
    local dir = cli.project { files = { ["migrations/versions/aaaa_loop.lua"] = cli.revision("aaaa", nil,
      '  op.execute("CREATE TABLE spin (id int)")\n  while true do end') } }
    local took, err = interrupt({ "--url", url, "upgrade", "head" }, dir, function()
      os.execute("sleep 0.5")
      return true
    end)
    assert.is_true(took < 3, ("took %.1f s"):format(took))
    assert.truthy(err:find("interrupted by signal", 1, true), err)
    assert.equal("", pg.psql(url, "SELECT coalesce(to_regclass('spin')::text, '')"))
    assert.equal("", pg.psql(url, "SELECT coalesce(string_agg(version_num, ','), '') FROM luamigrate_version"))
    cli.remove(dir)
  end)

  it("names the config file and a revision file looping at load time, with nothing rolled back", function()
    local dir = cli.project { config = 'script_location = "migrations"\nwhile true do end\n' }
    local _, err = interrupt({ "--url", url, "upgrade", "head" }, dir, function()
      os.execute("sleep 0.3")
      return true
    end)
    assert.truthy(err:find("luamigrate.lua:2: interrupted by signal while running the config file; nothing was changed", 1, true), err)
    assert.is_nil(err:find("olled back", 1, true), err)
    cli.remove(dir)
    dir = cli.project { files = { ["migrations/versions/aaaa_loop.lua"] = 'revision = "aaaa"\ndown_revision = nil\nwhile true do end\n' } }
    _, err = interrupt({ "--url", url, "upgrade", "head" }, dir, function()
      os.execute("sleep 0.3")
      return true
    end)
    assert.truthy(err:find("aaaa_loop.lua:3: interrupted by signal while loading the revision files; nothing was changed", 1, true), err)
    assert.is_nil(err:find("olled back", 1, true), err)
    cli.remove(dir)
  end)
end)
