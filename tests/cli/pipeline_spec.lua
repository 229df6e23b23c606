-- Pipelined op statements (the `pipeline` setting): a failure reads exactly as without it,
-- the statements queued after a failing one never run, pcall still sees each statement's
-- own error, and op.execute still returns row counts.
local pg = require "helpers.pg"
local cli = require "helpers.cli"
local fixture = require "helpers.fixture"

describe("pipelined op statements", function()
  local fx = fixture.new()

  -- A project with the given files and `pipeline = <on>`; returns its dir and database URL.
  local function project(files, on)
    return fx:open {
      files = files,
      -- lint off: its rendering runs upgrade() once more, which the files' marks would count
      config = 'script_location = "migrations"\npipeline = ' .. tostring(on) .. '\nlint = { upgrade = "off" }\n',
    }
  end

  local function run(dir, url, ...)
    return cli.run({ "--url", url, ... }, { cwd = dir })
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
    local sleeping = "SELECT count(*) FROM pg_stat_activity WHERE wait_event = 'PgSleep' AND datname = current_database()"
    for _ = 1, 200 do
      if pg.psql(url, sleeping) == "1" then break end
      os.execute("sleep 0.05")
    end
    assert.equal("1", pg.psql(url, sleeping))
    os.execute(("kill -INT %d"):format(pid))
    for _ = 1, 200 do
      if not cli.alive(pid) then break end
      os.execute("sleep 0.05")
    end
    assert.is_false(cli.alive(pid))
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
