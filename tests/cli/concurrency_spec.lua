-- Runs on one database at the same time: the migration lock serialises them (in each of its
-- modes), so every migration is applied exactly once; a busy lock times out with the holder
-- named; mixed upgrades, downgrades and stamps leave a consistent database.
local pg = require "helpers.pg"
local cli = require "helpers.cli"
local fixture = require "helpers.fixture"
local core = require "luamigrate.core"

describe("concurrent runs", function()
  local fx = fixture.new()
  local dir, url, ids

  before_each(function()
    local files
    files, ids = cli.chain(30, { sleep = 0.05 })
    dir, url = fx:open { files = files }
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
    local waited = (ra.err .. rb.err):find("waiting for the migration lock for 'luamigrate_version' held by pid", 1, true)
    assert.truthy(waited, ra.err .. rb.err)
    -- the one that waited asked again which tables exist, and created none of them twice
    assert.is_nil((ra.err .. rb.err):find('"luamigrate_version[%w_]*" already exists'), ra.err .. rb.err)
  end)

  -- lock = "session": a run asks which of the engine's tables exist while it takes the lock;
  -- when it had to wait, the run that held the lock may have made them meanwhile, so it asks
  -- again under the lock instead of creating what is there (the server's "already exists,
  -- skipping" notices) or trusting a stale answer.
  it("a run that waited for the session lock finds the tables the holder made meanwhile", function()
    local lock = core.lock(url, "luamigrate_version")
    assert.is_true(lock:held())
    local h = cli.spawn({ "--url", url, "--lock", "session", "upgrade", "head" }, { cwd = dir })
    local waiting = false
    for _ = 1, 200 do
      waiting = h.stderr():find("waiting for the migration lock", 1, true) ~= nil
      if waiting then break end
      os.execute("sleep 0.05")
    end
    -- what the holder's run would have made under the lock
    local sql = core.version_table.sql
    local ok, err = pcall(function()
      assert.is_true(waiting, "the run never waited for the lock")
      pg.psql(url, sql.create_version:format("luamigrate_version") .. ";"
        .. sql.create_history:format("luamigrate_version_history") .. ";"
        .. sql.create_journal:format("luamigrate_version_journal"))
    end)
    lock:release()
    local r = h.wait()
    if not ok then error(err, 0) end
    assert.equal(0, r.code, r.err)
    assert.truthy(r.err:find("waiting for the migration lock for 'luamigrate_version' held by pid", 1, true), r.err)
    assert.is_nil(r.err:find('"luamigrate_version[%w_]*" already exists'), r.err)
    assert.equal("30", pg.psql(url, "SELECT count(*) FROM migration_log"))
    assert.equal("30", pg.psql(url, "SELECT count(DISTINCT rev) FROM migration_log"))
    assert.equal(ids[30], pg.psql(url, "SELECT version_num FROM luamigrate_version"))
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

  -- The chain is consistent when the version row names revision k, exactly t1..tk exist,
  -- and every revision's net count of up minus down log rows is 1 up to k and 0 after.
  local function assert_consistent()
    local version = pg.psql(url, "SELECT coalesce(string_agg(version_num, ','), '') FROM luamigrate_version")
    local k = 0
    for i, id in ipairs(ids) do if id == version then k = i end end
    assert.is_true(version == "" or k > 0, "unknown version " .. version)
    local tables = pg.psql(url, "SELECT coalesce(string_agg(tablename, ',' ORDER BY tablename::text COLLATE \"C\"), '') "
      .. "FROM pg_tables WHERE tablename ~ '^t[0-9]+$'")
    local want = {}
    for i = 1, k do want[#want + 1] = "t" .. i end
    table.sort(want)
    assert.equal(table.concat(want, ","), tables, "at version " .. version)
    local nets = pg.psql(url, "SELECT coalesce(string_agg(rev || '=' || net, ',' ORDER BY rev), '') FROM "
      .. "(SELECT rev, sum(CASE direction WHEN 'up' THEN 1 ELSE -1 END) AS net FROM migration_log GROUP BY rev) s "
      .. "WHERE net <> 0")
    local expect = {}
    for i = 1, k do expect[#expect + 1] = ids[i] .. "=1" end
    assert.equal(table.concat(expect, ","), nets)
    return k
  end

  for _, mode in ipairs { "session", "xact", "table" } do
    it(("16 concurrent upgrade head runs with lock = %q apply each migration once"):format(mode), function()
      local runs = {}
      for i = 1, 16 do runs[i] = cli.spawn({ "--url", url, "--lock", mode, "upgrade", "head" }, { cwd = dir }) end
      for i = 1, 16 do
        local r = runs[i].wait()
        assert.equal(0, r.code, r.err)
      end
      assert.equal("30", pg.psql(url, "SELECT count(*) FROM migration_log"))
      assert.equal("30", pg.psql(url, "SELECT count(DISTINCT rev) FROM migration_log"))
      assert.equal(ids[30], pg.psql(url, "SELECT version_num FROM luamigrate_version"))
      assert.equal(30, assert_consistent())
      if mode == "table" then
        assert.equal("0", pg.psql(url, "SELECT count(*) FROM luamigrate_version_lock"), "the lease is released")
      end
    end)
  end

  it("mixed concurrent upgrades, downgrades and stamps: every step ran once and was recorded once", function()
    assert.equal(0, cli.run({ "--url", url, "upgrade", "+10" }, { cwd = dir }).code)
    local cmds = {
      { "upgrade", "head" }, { "downgrade", "-3" }, { "upgrade", "+5" }, { "stamp", ids[12] },
      { "downgrade", ids[4] }, { "upgrade", "head" }, { "downgrade", "-1" }, { "upgrade", "+2" },
      { "upgrade", ids[20] }, { "downgrade", "-2" }, { "stamp", "heads" }, { "upgrade", "head" },
    }
    for round = 1, 2 do
      local runs = {}
      for i, c in ipairs(cmds) do
        local mode = ({ "session", "xact" })[(i + round) % 2 + 1]
        runs[i] = cli.spawn({ "--url", url, "--lock", mode, c[1], c[2] }, { cwd = dir })
      end
      for i = 1, #runs do
        local r = runs[i].wait()
        -- a stamp moves the row without touching tables, so a later step may then fail on
        -- a table that is (or is not) there: the stamp's doing, and a clean failure
        assert.is_true(r.code == 0 or r.err:find("luamigrate: ", 1, true) ~= nil, r.err)
      end
    end
    -- what ran (the migrations' own log) is exactly what the history recorded, step by step
    local ran = pg.psql(url, "SELECT coalesce(string_agg(rev || '=' || net, ',' ORDER BY rev), '') FROM "
      .. "(SELECT rev, sum(CASE direction WHEN 'up' THEN 1 ELSE -1 END) AS net, count(*) AS n FROM migration_log GROUP BY rev) s")
    local recorded = pg.psql(url, "SELECT coalesce(string_agg(revision || '=' || net, ',' ORDER BY revision), '') FROM "
      .. "(SELECT revision, sum(CASE operation WHEN 'upgrade' THEN 1 ELSE -1 END) AS net FROM luamigrate_version_history "
      .. "WHERE operation <> 'stamp' GROUP BY revision) s")
    assert.equal(ran, recorded)
    assert.equal(pg.psql(url, "SELECT count(*) FROM migration_log"),
      pg.psql(url, "SELECT count(*) FROM luamigrate_version_history WHERE operation <> 'stamp'"))
    -- and the schema is what ran: t_k exists exactly when revision k is applied on net
    for k = 1, 30 do
      local net = pg.psql(url, ("SELECT coalesce(sum(CASE direction WHEN 'up' THEN 1 ELSE -1 END), 0) FROM migration_log WHERE rev = '%s'"):format(ids[k]))
      local exists = pg.psql(url, ("SELECT to_regclass('t%d') IS NOT NULL"):format(k))
      assert.equal(net == "1" and "t" or "f", exists, "t" .. k .. " net " .. net)
    end
    assert.equal(1, tonumber(pg.psql(url, "SELECT count(*) FROM luamigrate_version")))
  end)

  it("lock = \"xact\" refuses an autocommit block; lock = \"table\" runs it with others waiting", function()
    local files = {
      ["migrations/versions/a1_idx.lua"] = cli.revision("a1", nil,
        "  op.execute(\"CREATE TABLE items (id int)\")\n"
        .. "  op.autocommit_block(function() op.create_index('items_id', 'items', { 'id' }, { postgresql_concurrently = true }) end)\n"
        .. "  op.execute(\"CREATE TABLE IF NOT EXISTS migration_log (rev text, direction text)\")\n"
        .. "  op.execute(\"INSERT INTO migration_log VALUES ('a1', 'up')\")\n",
        "  op.drop_table('items')\n"),
    }
    local d = cli.project { files = files }
    local r = cli.run({ "--url", url, "--lock", "xact", "upgrade", "head" }, { cwd = d })
    assert.equal(1, r.code)
    assert.truthy(r.err:find('op.autocommit_block cannot run with lock = "xact"', 1, true), r.err)
    assert.truthy(r.err:find("a1_idx.lua:", 1, true), r.err)
    assert.equal("", pg.psql(url, "SELECT coalesce(to_regclass('items')::text, '')"))
    local runs = {}
    for i = 1, 6 do runs[i] = cli.spawn({ "--url", url, "--lock", "table", "upgrade", "head" }, { cwd = d }) end
    for i = 1, 6 do
      local ri = runs[i].wait()
      assert.equal(0, ri.code, ri.err)
    end
    assert.equal("1", pg.psql(url, "SELECT count(*) FROM migration_log"))
    assert.equal("t", pg.psql(url, "SELECT indisvalid FROM pg_index WHERE indexrelid = 'items_id'::regclass"))
    cli.remove(d)
  end)

  it("lock = \"table\": a live lease makes others wait and time out naming it; an expired one is taken over", function()
    assert.equal(0, cli.run({ "--url", url, "--lock", "table", "upgrade", "+1" }, { cwd = dir }).code)
    pg.psql(url, "INSERT INTO luamigrate_version_lock VALUES (1, 'ghost', 'deploy-7', 4242, 'web', now(), now(), now() + interval '1 hour')")
    local r = cli.run({ "--url", url, "--lock", "table", "--lock-timeout", "0.5", "upgrade", "head" }, { cwd = dir })
    assert.equal(1, r.code)
    assert.truthy(r.err:find("could not obtain the migration lease for 'luamigrate_version' within 0.5 s: held by "
      .. "luamigrate on host deploy-7, pid 4242 (application_name 'web')", 1, true), r.err)
    assert.equal(ids[1], pg.psql(url, "SELECT version_num FROM luamigrate_version"))
    pg.psql(url, "UPDATE luamigrate_version_lock SET expires_at = now() - interval '1 minute'")
    r = cli.run({ "--url", url, "--lock", "table", "upgrade", "head" }, { cwd = dir })
    assert.equal(0, r.code, r.err)
    assert.truthy(r.err:find("took over the expired migration lease of luamigrate on host deploy-7", 1, true), r.err)
    assert.equal(30, assert_consistent())
  end)

  it("lock = \"table\": the heartbeat keeps the lease through a step longer than lock_lease", function()
    -- an autocommit block sleeps 7 s outside any transaction, with lock_lease = 5: only the
    -- heartbeat keeps a waiting run from taking the lease over meanwhile
    local d = cli.project {
      config = 'script_location = "migrations"\nlock = "table"\nlock_lease = 5\n',
      files = { ["migrations/versions/hb01_slow.lua"] = cli.revision("hb01", nil,
        "  op.execute(\"CREATE TABLE IF NOT EXISTS migration_log (rev text, direction text)\")\n"
        .. "  op.autocommit_block(function() op.execute('SELECT pg_sleep(7)') end)\n"
        .. "  op.execute(\"INSERT INTO migration_log VALUES ('hb01', 'up')\")\n",
        "  op.drop_table('migration_log')\n") },
    }
    local first = cli.spawn({ "--url", url, "upgrade", "head" }, { cwd = d })
    for _ = 1, 200 do
      if pg.psql(url, "SELECT count(*) FROM pg_stat_activity WHERE query LIKE '%SELECT pg_sleep(7)%' AND pid <> pg_backend_pid()") == "1" then break end
      os.execute("sleep 0.05")
    end
    local second = cli.run({ "--url", url, "upgrade", "head" }, { cwd = d })
    local r = first.wait()
    assert.equal(0, r.code, r.err)
    assert.equal(0, second.code, second.err)
    assert.is_nil(second.err:find("took over", 1, true), second.err)
    assert.truthy(second.err:find("waiting for the migration lease", 1, true), second.err)
    assert.equal("1", pg.psql(url, "SELECT count(*) FROM migration_log"))
    cli.remove(d)
  end)

  it("lock = \"table\": a run whose lease was taken over stops before its next migration", function()
    local h = cli.spawn({ "--url", url, "--lock", "table", "upgrade", "head" }, { cwd = dir })
    for _ = 1, 200 do
      if pg.psql(url, "SELECT count(*) FROM pg_tables WHERE tablename = 't5'") == "1" then break end
      os.execute("sleep 0.02")
    end
    pg.psql(url, "UPDATE luamigrate_version_lock SET owner = 'thief', host = 'other', pid = 1")
    local r = h.wait()
    assert.equal(1, r.code)
    assert.truthy(r.err:find("lost the migration lease: now held by luamigrate on host other, pid 1", 1, true), r.err)
    local k = assert_consistent()
    assert.is_true(k >= 5 and k < 30, "stopped at " .. k)
    pg.psql(url, "DELETE FROM luamigrate_version_lock")
    assert.equal(0, cli.run({ "--url", url, "--lock", "table", "upgrade", "head" }, { cwd = dir }).code)
    assert.equal(30, assert_consistent())
  end)

  -- Waits until a backend of this database waits on a lock running a query like `pattern`.
  local function await_blocked(pattern)
    local q = ("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
      .. "AND wait_event_type = 'Lock' AND query LIKE '%s'"):format(pattern)
    for _ = 1, 400 do
      if pg.psql(url, q) == "1" then return end
      os.execute("sleep 0.02")
    end
    error("no backend blocked on " .. pattern)
  end

  it("lock = \"xact\": a relative target is resolved from what the lock shows, not from an earlier read", function()
    assert.equal(0, cli.run({ "--url", url, "upgrade", "+3" }, { cwd = dir }).code)
    -- Another session holds the history table while the downgrade has read the version row
    -- (at 3) and not yet planned; meanwhile "another run" moves the database to 5.
    local other = core.connect(url)
    other:execute("BEGIN")
    other:execute("LOCK TABLE luamigrate_version_history IN ACCESS EXCLUSIVE MODE")
    local h = cli.spawn({ "--url", url, "--lock", "xact", "downgrade", "-1" }, { cwd = dir })
    await_blocked("SELECT DISTINCT ON (revision) revision, checksum%")
    other:execute("CREATE TABLE t4 (id int); CREATE TABLE t5 (id int)")
    other:execute(("INSERT INTO migration_log (rev, direction) VALUES ('%s', 'up'), ('%s', 'up')"):format(ids[4], ids[5]))
    other:execute(("UPDATE luamigrate_version SET version_num = '%s'"):format(ids[5]))
    other:execute("COMMIT")
    other:close()
    local r = h.wait()
    assert.equal(0, r.code, r.err)
    -- -1 from where the database was when the run held the lock: only 5 is undone
    assert.equal(ids[4], pg.psql(url, "SELECT version_num FROM luamigrate_version"))
    assert.equal(ids[5], pg.psql(url, "SELECT string_agg(rev, ',') FROM migration_log WHERE direction = 'down'"))
    assert.equal(4, assert_consistent())
  end)

  it("lock = \"xact\": stamp reads and writes the version table under the lock", function()
    assert.equal(0, cli.run({ "--url", url, "upgrade", "+1" }, { cwd = dir }).code)
    local other = core.connect(url)
    other:execute("BEGIN")
    other:execute("LOCK TABLE luamigrate_version_journal IN ACCESS EXCLUSIVE MODE")
    local h = cli.spawn({ "--url", url, "--lock", "xact", "stamp", ids[2] }, { cwd = dir })
    await_blocked("SELECT revision, ordinal, block%")
    -- between its read of the version row and its write, the stamp holds the migration lock
    assert.equal("1", pg.psql(url, "SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a USING (pid) "
      .. "WHERE l.locktype = 'advisory' AND l.classid = 27757 AND l.granted AND a.wait_event_type = 'Lock' "
      .. "AND a.query LIKE 'SELECT revision, ordinal, block%'"))
    other:execute("COMMIT")
    other:close()
    local r = h.wait()
    assert.equal(0, r.code, r.err)
    assert.equal(ids[2], pg.psql(url, "SELECT version_num FROM luamigrate_version"))
  end)

  it("concurrent upgrades and stamps in every mode never leave a revision and its ancestor", function()
    for _, mode in ipairs { "session", "xact", "table" } do
      local runs = {}
      for i = 1, 6 do
        local c = i % 2 == 0 and { "upgrade", "head" } or { "stamp", ids[10 + i] }
        runs[i] = cli.spawn({ "--url", url, "--lock", mode, c[1], c[2] }, { cwd = dir })
      end
      for i = 1, #runs do runs[i].wait() end
      assert.equal("1", pg.psql(url, "SELECT count(*) FROM luamigrate_version"), mode)
      assert.equal(0, cli.run({ "--url", url, "stamp", "--purge", "base" }, { cwd = dir }).code)
      pg.psql(url, "DROP TABLE IF EXISTS migration_log; " .. (function()
        local t = {}
        for k = 1, 30 do t[k] = "DROP TABLE IF EXISTS t" .. k end
        return table.concat(t, "; ")
      end)())
    end
  end)

  it("lock = \"session\": a run whose lock connection is terminated stops before its next statement", function()
    local h = cli.spawn({ "--url", url, "--lock", "session", "upgrade", "head" }, { cwd = dir })
    for _ = 1, 200 do
      if pg.psql(url, "SELECT count(*) FROM pg_tables WHERE tablename = 't5'") == "1" then break end
      os.execute("sleep 0.02")
    end
    assert.equal("t", pg.psql(url, "SELECT pg_terminate_backend(pid) FROM pg_locks "
      .. "WHERE locktype = 'advisory' AND classid = 27757 AND granted"))
    local r = h.wait()
    assert.equal(1, r.code, r.err)
    assert.truthy(r.err:find("lost the migration lock for 'luamigrate_version': the connection holding it "
      .. "%(backend pid %d+%) was closed"), r.err)
    local k = assert_consistent()
    assert.is_true(k >= 5 and k < 30, "stopped at " .. k)
    assert.equal(0, cli.run({ "--url", url, "upgrade", "head" }, { cwd = dir }).code)
    assert.equal(30, assert_consistent())
  end)

  it("the lock is per database and version table, whatever the search_path", function()
    pg.psql(url, "CREATE SCHEMA elsewhere")
    cli.write(dir .. "/luamigrate.lua", 'script_location = "migrations"\nversion_table = "public.luamigrate_version"\n')
    for _, held in ipairs { "public.luamigrate_version", "luamigrate_version" } do
      local lock = core.lock(url, held)
      for _, mode in ipairs { "session", "xact" } do
        local r = cli.run({ "--url", url, "--lock", mode, "--lock-timeout", "0.3", "upgrade", "+1" },
          { cwd = dir, env = { PGOPTIONS = "-c search_path=elsewhere,public" } })
        assert.equal(1, r.code, held .. " " .. mode .. ": " .. r.err)
        assert.truthy(r.err:find("could not obtain the migration lock", 1, true), r.err)
      end
      lock:release()
    end
    assert.equal("", pg.psql(url, "SELECT coalesce(to_regclass('t1')::text, '')"))
  end)

  it("rejects an unknown lock mode and a bad lease", function()
    local r = cli.run({ "--url", url, "--lock", "advisory", "upgrade", "head" }, { cwd = dir })
    assert.equal(2, r.code)
    assert.truthy(r.err:find('--lock: lock must be "session", "xact" or "table", got "advisory"', 1, true), r.err)
    cli.write(dir .. "/luamigrate.lua", 'script_location = "migrations"\nlock_lease = 1\n')
    r = cli.run({ "--url", url, "upgrade", "head" }, { cwd = dir })
    assert.equal(2, r.code)
    assert.truthy(r.err:find("lock_lease must be from 5 to 86400 seconds", 1, true), r.err)
    assert.equal("", pg.psql(url, "SELECT coalesce(to_regclass('luamigrate_version')::text, '')"))
  end)
end)
