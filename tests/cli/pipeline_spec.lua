-- Pipelined op statements (the `pipeline` setting): a failure reads exactly as without it,
-- the statements queued after a failing one never run, pcall still sees each statement's
-- own error, and op.execute still returns row counts.
local pg = require "helpers.pg"
local cli = require "helpers.cli"
local fixture = require "helpers.fixture"

-- luamigrate --url URL ARGS... in dir.
local function run(dir, url, ...)
  return cli.run({ "--url", url, ... }, { cwd = dir })
end

-- A project of `files` in fixture fx, `settings` following script_location in its config;
-- returns its dir and database URL.
local function open(fx, files, settings)
  return fx:open { files = files, config = 'script_location = "migrations"\n' .. settings }
end

-- cond() polled every 50 ms up to `tries` times; true once it held.
local function wait_for(cond, tries)
  for _ = 1, tries do
    if cond() then return true end
    os.execute("sleep 0.05")
  end
  return cond()
end

-- Whether a session of url's database sits in pg_sleep.
local function sleeping(url)
  return pg.psql(url, "SELECT count(*) FROM pg_stat_activity WHERE wait_event = 'PgSleep' "
    .. "AND datname = current_database()") == "1"
end

describe("pipelined op statements", function()
  local fx = fixture.new()

  -- A project with the given files and `pipeline = <on>`; returns its dir and database URL.
  -- lint off: its rendering runs upgrade() once more, which the files' marks would count
  local function project(files, on)
    return open(fx, files, "pipeline = " .. tostring(on) .. '\nlint = { upgrade = "off" }\n')
  end

  -- stderr without its timings, which differ between runs.
  local function normalized(err)
    return (err:gsub("%(%d+ ms%)", "(N ms)"))
  end

  local SEQS = cli.revision("aaaa", nil, [[
  op.create_table("seqs", sa.Column("id", sa.Integer, { primary_key = true }),
    sa.Column("v", sa.Integer))
  op.execute("INSERT INTO seqs VALUES (1, 1)")
  op.execute("CREATE SEQUENCE s_after")]])

  -- The failing op (line 11) sits among several queued ones; after it, Lua code runs on
  -- (only when pipelined: it writes a file) and an op queues a statement that would advance
  -- a sequence (which no rollback undoes).
  local FAILING = cli.revision("bbbb", "aaaa", [[
  op.create_table("p1", sa.Column("id", sa.Integer), sa.Column("name", sa.Text))
  op.add_column("p1", sa.Column("extra", sa.Integer))
  op.add_column("no_such_table", sa.Column("x", sa.Integer))
  op.create_index("p1_name", "p1", { "name" })
  io.open("ran_after_failure", "w"):close() -- pipelined: runs before the failure is known
  op.add_column("seqs", sa.Column("w", sa.Integer, { server_default = sa.text("nextval('s_after')") }))
  op.create_table("p2", sa.Column("id", sa.Integer))]])

  it("reports a failing op exactly as without pipelining, and what came after never ran", function()
    local outs = {}
    for _, on in ipairs { false, true } do
      local dir, url = project({
        ["migrations/versions/aaaa_seqs.lua"] = SEQS,
        ["migrations/versions/bbbb_failing.lua"] = FAILING,
      }, on)
      local r = run(dir, url, "upgrade", "head")
      assert.equal(1, r.code, r.err)
      assert.truthy(r.err:find("migrations/versions/bbbb_failing.lua:11: upgrade aaaa -> bbbb failed: "
        .. 'ERROR 42P01: relation "no_such_table" does not exist', 1, true), r.err)
      assert.truthy(r.err:find("statement: ALTER TABLE no_such_table ADD COLUMN x INTEGER", 1, true), r.err)
      -- unchanged: the version row, no p1/p2, the column not added, the sequence not advanced
      assert.equal("aaaa", pg.psql(url, "SELECT version_num FROM luamigrate_version"))
      assert.equal("0", pg.psql(url, "SELECT count(*) FROM pg_tables WHERE tablename IN ('p1', 'p2')"))
      assert.equal("0", pg.psql(url, "SELECT count(*) FROM information_schema.columns "
        .. "WHERE table_name = 'seqs' AND column_name = 'w'"))
      assert.equal("f", pg.psql(url, "SELECT is_called FROM s_after"))
      local mark = io.open(dir .. "/ran_after_failure")
      if mark then mark:close() end
      assert.equal(on, mark ~= nil)
      outs[#outs + 1] = { code = r.code, err = normalized(r.err), out = r.out }
    end
    assert.same(outs[1], outs[2])
  end)

  it("reports a failure deep in helper calls with the same elided traceback", function()
    local errs = {}
    for _, on in ipairs { false, true } do
      local dir, url = project({ ["migrations/versions/aaaa_x.lua"] = cli.revision("aaaa", nil, [[
  op.create_table("t", sa.Column("id", sa.Integer))
  local function deep(n)
    if n == 0 then op.add_column("missing", sa.Column("x", sa.Integer)) return end
    deep(n - 1)
    return
  end
  deep(25)]]) }, on)
      local r = run(dir, url, "upgrade", "head")
      assert.equal(1, r.code, r.err)
      assert.truthy(r.err:find("(skipping 9 levels)", 1, true), r.err)
      errs[#errs + 1] = normalized(r.err)
    end
    assert.equal(errs[1], errs[2])
  end)

  it("keeps the SAVEPOINT + pcall pattern working", function()
    local dir, url = project({ ["migrations/versions/aaaa_x.lua"] = cli.revision("aaaa", nil, [[
  op.create_table("kept", sa.Column("id", sa.Integer))
  op.execute("SAVEPOINT sp")
  local ok, err = pcall(op.create_table, "kept", sa.Column("id", sa.Integer))
  assert(not ok and tostring(err):find("42P07", 1, true), tostring(err))
  op.execute("ROLLBACK TO SAVEPOINT sp")
  op.add_column("kept", sa.Column("after", sa.Text))
  local ok2 = xpcall(op.add_column, function(e) return e end, "missing", sa.Column("x", sa.Text))
  assert(not ok2)]]) }, true)
    local r = run(dir, url, "upgrade", "head")
    -- the xpcall's failure aborted the transaction: the run says so and rolls back
    assert.equal(1, r.code, r.err)
    assert.truthy(r.err:find("a statement failed inside upgrade() of revision aaaa and the error was caught", 1, true),
      r.err)
    assert.equal("", pg.psql(url, "SELECT to_regclass('kept')"))
    -- without the xpcall the migration applies, with the column added after the rollback
    local path = dir .. "/migrations/versions/aaaa_x.lua"
    cli.write(path, (cli.slurp(path):gsub("  local ok2 = xpcall[^\n]*\n  assert%(not ok2%)\n", "")))
    r = run(dir, url, "upgrade", "head")
    assert.equal(0, r.code, r.err)
    assert.equal("id,after", pg.psql(url, "SELECT string_agg(column_name, ',' ORDER BY ordinal_position) "
      .. "FROM information_schema.columns WHERE table_name = 'kept'"))
  end)

  it("raises a queued failure before pcall is entered, not inside it", function()
    local dir, url = project({ ["migrations/versions/aaaa_x.lua"] = cli.revision("aaaa", nil, [[
  op.create_table("t", sa.Column("id", sa.Integer))
  op.drop_column("t", "nope")
  local ok = pcall(op.execute, "SELECT 1")
  op.create_table("never", sa.Column("ok", sa.Boolean, { server_default = tostring(ok) }))]]) }, true)
    local r = run(dir, url, "upgrade", "head")
    assert.equal(1, r.code, r.err)
    assert.truthy(r.err:find("migrations/versions/aaaa_x.lua:10: upgrade  -> aaaa failed: ERROR 42703: "
      .. 'column "nope" of relation "t" does not exist', 1, true), r.err)
    assert.equal("", pg.psql(url, "SELECT to_regclass('t')"))
  end)

  it("names the op whose queued statement SIGINT cancelled, and rolls back", function()
    local dir, url = project({ ["migrations/versions/aaaa_x.lua"] = cli.revision("aaaa", nil, [[
  op.create_table("t", sa.Column("id", sa.Integer))
  op.bulk_insert("t", { { id = 1 } })
  op.add_column("t", sa.Column("x", sa.Integer, { server_default = sa.text("(pg_sleep(30) IS NULL)::int") }))
  op.create_table("u", sa.Column("id", sa.Integer))]]) }, true)
    local pid, errfile = cli.start({ "--url", url, "upgrade", "head" }, dir)
    assert.is_true(wait_for(function() return sleeping(url) end, 200))
    os.execute(("kill -INT %d"):format(pid))
    assert.is_true(wait_for(function() return not cli.alive(pid) end, 200))
    local err = cli.slurp(errfile)
    os.remove(errfile)
    assert.truthy(err:find("luamigrate: migrations/versions/aaaa_x.lua:11: upgrade  -> aaaa failed: interrupted by "
      .. "signal: the migration in progress is rolled back", 1, true), err)
    assert.equal("", pg.psql(url, "SELECT coalesce(to_regclass('t')::text, '') || coalesce(to_regclass('u')::text, '')"))
  end)

  it("applies a migration of hundreds of ops and returns op.execute's row counts", function()
    local body = { '  op.create_table("big", sa.Column("id", sa.Integer), sa.Column("v", sa.Text))' }
    for i = 1, 300 do
      body[#body + 1] = ('  op.add_column("big", sa.Column("c%d", sa.Integer))'):format(i)
    end
    body[#body + 1] = '  op.bulk_insert("big", { { id = 1 }, { id = 2 }, { id = 3 } })'
    body[#body + 1] = '  local n = op.execute("UPDATE big SET v = \'x\' WHERE id >= 2")'
    body[#body + 1] = '  op.create_table("counted", sa.Column("n", sa.Integer))'
    body[#body + 1] = '  op.execute("INSERT INTO counted VALUES ($1)", { n })'
    local dir, url = project({ ["migrations/versions/aaaa_big.lua"] =
      cli.revision("aaaa", nil, table.concat(body, "\n")) }, true)
    local r = run(dir, url, "upgrade", "head")
    assert.equal(0, r.code, r.err)
    assert.equal("302", pg.psql(url, "SELECT count(*) FROM information_schema.columns WHERE table_name = 'big'"))
    assert.equal("2", pg.psql(url, "SELECT n FROM counted"))
    assert.equal("aaaa", pg.psql(url, "SELECT version_num FROM luamigrate_version"))
    r = run(dir, url, "downgrade", "base")
    assert.equal(0, r.code, r.err)
  end)
end)

-- One wait per migration: a step's statements, its version rows, history row and COMMIT go
-- in one pipeline, the row checks made by the server. What a user sees when something in
-- that pipeline fails is what a step that waited for each result reported.
describe("one wait per migration", function()
  local fx = fixture.new()

  local function project(files, per_migration)
    return open(fx, files, "transaction_per_migration = " .. tostring(per_migration) .. "\n")
  end

  -- Three revisions, each creating its table; `bodies[i]` replaces revision i's body.
  local IDS = { "aaaa", "bbbb", "cccc" }
  local function three(bodies)
    local files = {}
    for i, id in ipairs(IDS) do
      files[("migrations/versions/%s_m%d.lua"):format(id, i)] = cli.revision(id, IDS[i - 1],
        bodies[i] or ('  op.create_table("m%d", sa.Column("id", sa.Integer))'):format(i))
    end
    return files
  end

  local TABLES = "SELECT count(*) FROM pg_tables WHERE tablename IN ('m1', 'm2', 'm3')"
  local VERSION = "SELECT coalesce(string_agg(version_num, ','), '') FROM luamigrate_version"
  local HISTORY = "SELECT coalesce(string_agg(revision, ',' ORDER BY id), '') FROM luamigrate_version_history"

  it("rolls back a migration whose version row another session moved while it ran", function()
    local dir, url = project(three { [2] = '  op.create_table("m2", sa.Column("id", sa.Integer))\n'
      .. '  op.execute("SELECT pg_sleep(3)")' }, true)
    local pid, errfile = cli.start({ "--url", url, "upgrade", "head" }, dir)
    assert.is_true(wait_for(function() return sleeping(url) end, 200))
    -- someone else moves the row (bypassing the lock) while the second migration runs
    pg.psql(url, "UPDATE luamigrate_version SET version_num = 'zzzz'")
    assert.is_true(wait_for(function() return not cli.alive(pid) end, 400))
    local err = cli.slurp(errfile)
    os.remove(errfile)
    assert.truthy(err:find("expected to match one row when updating 'aaaa' to 'bbbb' in \"luamigrate_version\"; "
      .. "0 found (was the version table changed by hand?)", 1, true), err)
    assert.truthy(err:find("Rolled back the failed migration; the ones before it stay applied", 1, true), err)
    -- the other session's row stays; of this run only the first migration is there
    assert.equal("zzzz", pg.psql(url, VERSION))
    assert.equal("aaaa", pg.psql(url, HISTORY))
    assert.equal("1", pg.psql(url, TABLES))
  end)

  it("reports a failing statement mid-migration at its file:line, the migrations before it applied", function()
    local dir, url = project(three { [2] = '  op.create_table("m2", sa.Column("id", sa.Integer))\n'
      .. '  op.add_column("no_such", sa.Column("x", sa.Integer))\n'
      .. '  op.create_index("m2_id", "m2", { "id" })' }, true)
    local r = run(dir, url, "upgrade", "head")
    assert.equal(1, r.code, r.err)
    assert.truthy(r.err:find("migrations/versions/bbbb_m2.lua:10: upgrade aaaa -> bbbb failed: ERROR 42P01: "
      .. 'relation "no_such" does not exist', 1, true), r.err)
    assert.truthy(r.err:find("statement: ALTER TABLE no_such ADD COLUMN x INTEGER", 1, true), r.err)
    assert.equal("aaaa", pg.psql(url, VERSION))
    assert.equal("aaaa", pg.psql(url, HISTORY))
    assert.equal("1", pg.psql(url, TABLES))
    assert.equal("", pg.psql(url, "SELECT to_regclass('m2_id')"))
  end)

  -- transaction_per_migration = false: the run is one pipeline. Whichever statement fails,
  -- however late its result is read, the report names it and nothing is applied; without
  -- the failing line the same project applies all three in its one transaction.
  local ONE_RUN = {
    { "leaves nothing applied when the third migration fails", 3,
      [[  op.execute("INSERT INTO m3 VALUES ('not a number')")]],
      "migrations/versions/cccc_m3.lua:10: upgrade bbbb -> cccc failed: ERROR 22P02: "
        .. "invalid input syntax for type integer" },
    { "names the first migration's failing op, its result read only at the run's end", 1,
      '  op.drop_column("m1", "nope")',
      'migrations/versions/aaaa_m1.lua:10: upgrade  -> aaaa failed: ERROR 42703: column "nope" of relation "m1" '
        .. "does not exist" },
    { "names the version row an earlier migration moved, though the next one had run", 2,
      '  op.execute("DELETE FROM luamigrate_version")',
      "expected to match one row when updating 'aaaa' to 'bbbb' in \"luamigrate_version\"; 0 found "
        .. "(was the version table changed by hand?)" },
  }
  for _, case in ipairs(ONE_RUN) do
    local name, i, line, message = table.unpack(case)
    it("with transaction_per_migration = false, " .. name, function()
      local dir, url = project(three { [i] = ('  op.create_table("m%d", sa.Column("id", sa.Integer))\n'):format(i)
        .. line }, false)
      local r = run(dir, url, "upgrade", "head")
      assert.equal(1, r.code, r.err)
      assert.truthy(r.err:find(message, 1, true), r.err)
      assert.truthy(r.err:find("Rolled back the whole run (transaction_per_migration is false)", 1, true), r.err)
      assert.equal("0", pg.psql(url, TABLES))
      assert.equal("", pg.psql(url, VERSION))
      assert.equal("", pg.psql(url, HISTORY))
      local path = ("%s/migrations/versions/%s_m%d.lua"):format(dir, IDS[i], i)
      local text = cli.slurp(path)
      local from, to = text:find(line, 1, true)
      cli.write(path, text:sub(1, from - 1) .. text:sub(to + 1))
      r = run(dir, url, "upgrade", "head")
      assert.equal(0, r.code, r.err)
      assert.equal("cccc", pg.psql(url, VERSION))
      assert.equal("aaaa,bbbb,cccc", pg.psql(url, HISTORY))
      assert.equal("3", pg.psql(url, TABLES))
    end)
  end

  -- The guard (LOCK TABLE on the version table, first of the step's own statements) stands
  -- where the run loop used to read the transaction's state after upgrade(). Nothing a
  -- migration is given reaches it: op.* and op.execute refuse transaction control before
  -- sending, and a statement of op.get_bind() waits for what is queued, after which nothing
  -- is queued outside a transaction, so the run loop reads the state itself (the first case).
  -- What gets past op's check with statements in flight is one sent on the run's queue
  -- directly (the run context, core.context, which a helper module can require): the guard
  -- then fails outside the transaction block (25P01), and the report is the same.
  local ENDED = "migrations/versions/aaaa_m1.lua: upgrade() of revision aaaa ended its transaction "
    .. "(a COMMIT or ROLLBACK in op.execute?); what ran before that point was committed or rolled back with it, "
    .. "and luamigrate cannot undo it"
  for _, case in ipairs {
    { "op.get_bind():query", 'op.get_bind():query("COMMIT")', "after" },
    { "the run's queue", 'require("luamigrate.core").context("helper").queue:execute("COMMIT")', "" },
  } do
    local how, line, after = table.unpack(case)
    it("reports a migration that ended its transaction through " .. how, function()
      local dir, url = project({ ["migrations/versions/aaaa_m1.lua"] = cli.revision("aaaa", nil,
        '  op.create_table("m1", sa.Column("id", sa.Integer))\n  ' .. line .. '\n'
        .. '  op.create_table("after", sa.Column("id", sa.Integer))') }, true)
      local r = run(dir, url, "upgrade", "head")
      assert.equal(1, r.code, r.err)
      assert.truthy(r.err:find(ENDED, 1, true), r.err)
      -- what came before the COMMIT stays; after it, what ran on its own (get_bind's case:
      -- nothing was in flight to go with it) stays too; the version and history rows are not
      -- written
      assert.equal("m1", pg.psql(url, "SELECT coalesce(to_regclass('m1')::text, '')"))
      assert.equal(after, pg.psql(url, "SELECT coalesce(to_regclass('after')::text, '')"))
      assert.equal("", pg.psql(url, VERSION))
      assert.equal("", pg.psql(url, HISTORY))
    end)
  end

  it("records each step's history row with its checksum and a duration that covers the server's work", function()
    local dir, url = project(three { [2] = '  op.create_table("m2", sa.Column("id", sa.Integer))\n'
      .. '  op.execute("SELECT pg_sleep(0.3)")' }, true)
    local r = run(dir, url, "upgrade", "head")
    assert.equal(0, r.code, r.err)
    assert.equal("aaaa,bbbb,cccc", pg.psql(url, HISTORY))
    assert.equal("3", pg.psql(url, "SELECT count(*) FROM luamigrate_version_history WHERE checksum ~ '^[0-9a-f]{64}$' "
      .. "AND file LIKE 'migrations/versions/%' AND message LIKE 'revision %'"))
    assert.equal("t", pg.psql(url, "SELECT duration_ms >= 300 FROM luamigrate_version_history WHERE revision = 'bbbb'"))
    assert.equal("cccc", pg.psql(url, VERSION))
  end)
end)
