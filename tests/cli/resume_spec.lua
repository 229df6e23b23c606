-- A migration with an autocommit block, killed with SIGKILL while one of the block's
-- statements runs: the next plain upgrade refuses, naming the revision, the block and the
-- statement (exit 3); `status` shows it half-done; `upgrade --resume` finishes it, running
-- each statement that was not done exactly once; and a file changed since refuses to resume.
local pg = require "helpers.pg"
local cli = require "helpers.cli"

local q = pg.shell_quote

-- The binary in the background (its stderr file is not read here); returns its pid.
local function start(args, cwd)
  local pid, err = cli.start(args, cwd)
  os.remove(err)
  return pid
end
local alive = cli.alive

-- Waits until sql returns "t" (up to 20 s).
local function wait_for(url, sql)
  for _ = 1, 400 do
    if pg.psql(url, sql) == "t" then return end
    os.execute("sleep 0.05")
  end
  error("timed out waiting for: " .. sql)
end

-- Each statement logs itself into steps; the block's second statement sleeps as long as
-- the control table says (the statement text stays the same between runs).
local function body(extra)
  return ([[
  op.execute("CREATE TABLE steps (n int, at timestamptz DEFAULT clock_timestamp())")
  op.execute("CREATE TABLE widgets (id int, name text)")
  op.execute("INSERT INTO steps (n) VALUES (1)")
  op.autocommit_block(function()
    op.execute("INSERT INTO steps (n) VALUES (2)")
    op.execute("INSERT INTO steps (n) SELECT 3 FROM (SELECT pg_sleep(coalesce((SELECT s FROM public.sleep_ctl), 0))) AS s")
    op.create_index("ix_widgets_name", "widgets", { "name" }, { postgresql_concurrently = true })
    op.execute("INSERT INTO steps (n) VALUES (4)")
  end)
  op.execute("INSERT INTO steps (n) VALUES (5)")%s
]]):format(extra or "")
end

local function project(extra, config)
  return cli.project { config = config, files = {
    ["migrations/versions/r1_base.lua"] = cli.revision("r1", nil, 'op.execute("CREATE TABLE base_t (id int)")',
      'op.drop_table("base_t")'),
    ["migrations/versions/r2_block.lua"] = cli.revision("r2", "r1", body(extra), 'op.drop_table("steps")'),
    ["migrations/versions/r3_after.lua"] = cli.revision("r3", "r2", 'op.execute("CREATE TABLE after_t (id int)")',
      'op.drop_table("after_t")'),
  } }
end

-- Runs upgrade head and kills it (SIGKILL) while statement 2 of the block sleeps; the
-- server-side statement is then ended as the server would on noticing the dropped client.
local function interrupted_run(url, dir, lock)
  pg.psql(url, "CREATE TABLE sleep_ctl (s float8); INSERT INTO sleep_ctl VALUES (60)")
  local pid = start({ "--url", url, "--lock", lock, "upgrade", "head" }, dir)
  wait_for(url, "SELECT count(*) = 1 FROM pg_stat_activity WHERE wait_event = 'PgSleep' AND datname = current_database()")
  os.execute(("kill -9 %d"):format(pid))
  for _ = 1, 200 do
    if not alive(pid) then break end
    os.execute("sleep 0.05")
  end
  assert.is_false(alive(pid))
  pg.psql(url, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE wait_event = 'PgSleep' "
    .. "AND datname = current_database()")
  wait_for(url, "SELECT count(*) = 0 FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()")
  pg.psql(url, "UPDATE sleep_ctl SET s = 0")
end

local function steps(url)
  return pg.psql(url, "SELECT string_agg(n::text, ',' ORDER BY at, n) FROM steps")
end

describe("upgrade --resume", function()
  for _, lock in ipairs { "session", "table" } do
    it(("finishes a migration killed inside its autocommit block (lock = %q)"):format(lock), function()
      local url, dbname = pg.new_db("resume")
      -- a killed run's lease (lock = "table") lives lock_lease seconds: the shortest allowed
      local dir = project(nil, 'script_location = "migrations"\nlock_lease = 5\n')
      interrupted_run(url, dir, lock)
      -- the transactional part before the block and the block's first statement are committed
      assert.equal("1,2", steps(url))
      assert.equal("r1", pg.psql(url, "SELECT version_num FROM luamigrate_version"))

      local r = cli.run({ "--url", url, "--lock", lock, "upgrade", "head" }, { cwd = dir })
      assert.equal(3, r.code, r.err)
      assert.matches("upgrade refused: revision r2 %(.-r2_block%.lua%) is half%-done", r.err)
      assert.matches("3 statements of its transactional part are committed", r.err, 1, true)
      assert.matches("autocommit block 1: statement 1 done", r.err, 1, true)
      assert.matches("autocommit block 1, statement 2 was running when the run stopped, in a transaction of "
        .. "its own that ended with the run: it had no effect, and runs again:", r.err, 1, true)
      assert.matches("pg_sleep(coalesce((SELECT s FROM public.sleep_ctl), 0))", r.err, 1, true)
      assert.matches("upgrade --resume", r.err, 1, true)
      assert.matches("luamigrate stamp r1", r.err, 1, true)
      -- refused before doing anything
      assert.equal("1,2", steps(url))
      assert.equal("r1", pg.psql(url, "SELECT version_num FROM luamigrate_version"))

      local dr = cli.run({ "--url", url, "downgrade", "base" }, { cwd = dir })
      assert.equal(3, dr.code, dr.err)
      assert.matches("downgrade refused: revision r2", dr.err, 1, true)

      local st = cli.run({ "--url", url, "status" }, { cwd = dir })
      assert.equal(0, st.code, st.err)
      assert.matches("Half-done: revision r2", st.out, 1, true)
      assert.matches("statement 2 was running", st.out, 1, true)
      local js = cli.run({ "--url", url, "status", "--json" }, { cwd = dir })
      assert.matches('"half_done": {"revision": "r2"', js.out, 1, true)

      local ok = cli.run({ "--url", url, "--lock", lock, "upgrade", "--resume", "head" }, { cwd = dir })
      assert.equal(0, ok.code, ok.err)
      assert.matches("Resuming revision r2", ok.err, 1, true)
      -- statements 1 and 2 of the block are not run again; 3 (the interrupted one) onward once
      assert.equal("1,2,3,4,5", steps(url))
      assert.equal("r3", pg.psql(url, "SELECT version_num FROM luamigrate_version"))
      assert.equal("t", pg.psql(url, "SELECT indisvalid FROM pg_index WHERE indexrelid = 'ix_widgets_name'::regclass"))
      assert.equal("0", pg.psql(url, "SELECT count(*) FROM luamigrate_version_journal"))
      assert.equal("1", pg.psql(url, "SELECT count(*) FROM luamigrate_version_history WHERE revision = 'r2'"))
      local st2 = cli.run({ "--url", url, "status" }, { cwd = dir })
      assert.is_nil(st2.out:find("Half-done", 1, true))
      cli.remove(dir)
      pg.drop_db(dbname)
    end)
  end

  it("refuses to resume when the file changed since the interrupted run", function()
    local url, dbname = pg.new_db("resume")
    local dir = project()
    interrupted_run(url, dir, "session")
    -- the same statements with one of the committed ones edited
    local path = dir .. "/migrations/versions/r2_block.lua"
    local text = cli.slurp(path)
    cli.write(path, (text:gsub("VALUES %(1%)", "VALUES (10)")))
    local r = cli.run({ "--url", url, "upgrade", "--resume", "head" }, { cwd = dir })
    assert.equal(1, r.code, r.err)
    assert.matches("--resume: revision r2 changed since the interrupted run: its statement 3 is not the one "
      .. "the journal records", r.err, 1, true)
    assert.matches("recorded: INSERT INTO steps (n) VALUES (1)", r.err, 1, true)
    assert.matches("now:      INSERT INTO steps (n) VALUES (10)", r.err, 1, true)
    -- what is said of the rollback: the revision is still half-done, not "rolled back"
    assert.matches("Rolled back this run's transaction; revision r2 stays half-done, as its journal "
      .. "records (see the hint)", r.err, 1, true)
    assert.is_nil(r.err:find("Rolled back the failed migration", 1, true), r.err)
    assert.equal("1,2", steps(url))
    assert.equal("r1", pg.psql(url, "SELECT version_num FROM luamigrate_version"))
    -- fewer statements than recorded: also refused
    cli.write(path, cli.revision("r2", "r1", 'op.execute("CREATE TABLE steps (n int, at timestamptz DEFAULT clock_timestamp())")',
      'op.drop_table("steps")'))
    r = cli.run({ "--url", url, "upgrade", "--resume", "head" }, { cwd = dir })
    assert.equal(1, r.code, r.err)
    assert.matches("it ran 1 statements, and the journal records 5", r.err, 1, true)
    assert.matches("revision r2 stays half-done", r.err, 1, true)
    assert.equal("1,2", steps(url))
    -- giving up: undo by hand, stamp the parent, and the next upgrade runs it whole
    pg.psql(url, "DROP TABLE steps; DROP TABLE widgets")
    cli.write(path, text)
    local s = cli.run({ "--url", url, "stamp", "r1" }, { cwd = dir })
    assert.equal(0, s.code, s.err)
    assert.matches("Clearing the journal of half-done revision r2", s.err, 1, true)
    local ok = cli.run({ "--url", url, "upgrade", "head" }, { cwd = dir })
    assert.equal(0, ok.code, ok.err)
    assert.equal("1,2,3,4,5", steps(url))
    cli.remove(dir)
    pg.drop_db(dbname)
  end)

  it("names the INVALID index a killed CREATE INDEX CONCURRENTLY leaves, and resumes after it is dropped", function()
    local url, dbname = pg.new_db("resume")
    local dir = cli.project { files = {
      ["migrations/versions/c1_cic.lua"] = cli.revision("c1", nil, [[
  op.execute("CREATE TABLE items (id int, name text) WITH (autovacuum_enabled = false)")
  op.execute("INSERT INTO items SELECT g, 'n' || g FROM generate_series(1, 100) g")
  op.autocommit_block(function()
    op.create_index("ix_items_name", "items", { "name" }, { postgresql_concurrently = true })
  end)
]], 'op.drop_table("items")'),
    } }
    assert.equal(0, cli.run({ "--url", url, "upgrade", "head" }, { cwd = dir }).code)
    -- again from scratch, with a transaction holding the table so the build waits
    assert.equal(0, cli.run({ "--url", url, "downgrade", "base" }, { cwd = dir }).code)
    os.execute(("(%spsql -XAtq -d %s -c %s >/dev/null 2>&1 &)"):format(pg.tool, q(url),
      q("BEGIN; SELECT pg_sleep(60)")))
    wait_for(url, "SELECT count(*) = 1 FROM pg_stat_activity WHERE wait_event = 'PgSleep' AND datname = current_database()")
    local pid = start({ "--url", url, "upgrade", "head" }, dir)
    -- the holder's open transaction makes CIC wait for it (virtualxid) after creating the index
    -- (the index exists, INVALID, once CIC waits for older snapshots: a virtualxid lock)
    wait_for(url, "SELECT count(*) = 1 FROM pg_stat_activity WHERE query LIKE 'CREATE INDEX CONCURRENTLY%' "
      .. "AND wait_event = 'virtualxid' AND to_regclass('ix_items_name') IS NOT NULL")
    os.execute(("kill -9 %d"):format(pid))
    -- the build's backend first: with the holder gone first it could finish the index
    pg.psql(url, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE query LIKE 'CREATE INDEX CONCURRENTLY%'")
    wait_for(url, "SELECT count(*) = 0 FROM pg_stat_activity WHERE query LIKE 'CREATE INDEX CONCURRENTLY%'")
    pg.psql(url, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database() "
      .. "AND pid <> pg_backend_pid()")
    wait_for(url, "SELECT count(*) = 0 FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()")
    assert.equal("f", pg.psql(url, "SELECT indisvalid FROM pg_index WHERE indexrelid = 'ix_items_name'::regclass"))
    local r = cli.run({ "--url", url, "upgrade", "head" }, { cwd = dir })
    assert.equal(3, r.code, r.err)
    assert.matches("autocommit block 1, statement 1 was running", r.err, 1, true)
    assert.matches("INVALID index public.ix_items_name exists", r.err, 1, true)
    assert.matches("DROP INDEX CONCURRENTLY public.ix_items_name", r.err, 1, true)
    pg.psql(url, "DROP INDEX CONCURRENTLY public.ix_items_name")
    local ok = cli.run({ "--url", url, "upgrade", "--resume", "head" }, { cwd = dir })
    assert.equal(0, ok.code, ok.err)
    assert.equal("t", pg.psql(url, "SELECT indisvalid FROM pg_index WHERE indexrelid = 'ix_items_name'::regclass"))
    assert.equal("100", pg.psql(url, "SELECT count(*) FROM items"))
    cli.remove(dir)
    pg.drop_db(dbname)
  end)

  it("a failed autocommit statement is recorded with its error and resumed after the fix", function()
    local url, dbname = pg.new_db("resume")
    local dir = cli.project { files = {
      ["migrations/versions/f1_fail.lua"] = cli.revision("f1", nil, [[
  op.execute("CREATE TABLE t (v int)")
  op.autocommit_block(function()
    op.execute("INSERT INTO t VALUES (1)")
    op.execute("INSERT INTO t SELECT v + 1 FROM fix_me")
  end)
]], 'op.drop_table("t")'),
    } }
    local r = cli.run({ "--url", url, "upgrade", "head" }, { cwd = dir })
    assert.equal(1, r.code, r.err)
    assert.matches('relation "fix_me" does not exist', r.err, 1, true)
    assert.matches("revision f1 is half-done", r.err, 1, true)
    r = cli.run({ "--url", url, "upgrade", "head" }, { cwd = dir })
    assert.equal(3, r.code, r.err)
    assert.matches('autocommit block 1, statement 2 failed (relation "fix_me" does not exist)', r.err, 1, true)
    pg.psql(url, "CREATE TABLE fix_me (v int); INSERT INTO fix_me VALUES (1)")
    local ok = cli.run({ "--url", url, "upgrade", "--resume", "head" }, { cwd = dir })
    assert.equal(0, ok.code, ok.err)
    assert.equal("1,2", pg.psql(url, "SELECT string_agg(v::text, ',' ORDER BY v) FROM t"))
    cli.remove(dir)
    pg.drop_db(dbname)
  end)

  it("a server restart inside a block: a clear error, then a refusal, then --resume completes", function()
    -- a cluster of its own, so restarting it disturbs no other spec
    local pgdir = os.tmpname()
    os.remove(pgdir)
    local p = assert(io.popen(("bash %s/scripts/pg.sh start %s"):format(q(cli.src), q(pgdir))))
    local exports = p:read("a")
    assert(p:close(), exports)
    local own = ("host=%s port=%s user=postgres dbname=postgres"):format(pgdir, exports:match("PGPORT=(%d+)"))
    local ok, err = pcall(function()
      local dir = project()
      pg.psql(own, "CREATE TABLE sleep_ctl (s float8); INSERT INTO sleep_ctl VALUES (60)")
      local h = cli.spawn({ "--url", own, "upgrade", "head" }, { cwd = dir })
      wait_for(own, "SELECT count(*) = 1 FROM pg_stat_activity WHERE wait_event = 'PgSleep'")
      local restart = "runuser -u postgres -- /usr/lib/postgresql/15/bin/pg_ctl -D %s/data -m fast -w restart >/dev/null 2>&1"
      if pg.tool ~= "" then restart = "env -u LD_PRELOAD " .. restart end
      assert(os.execute(restart:format(q(pgdir))))
      local first = h:wait()
      assert.equal(1, first.code, first.err)
      assert.truthy(first.err:find("terminating connection") or first.err:find("server closed the connection")
        or first.err:find("connection was lost") or first.err:find("no connection to the server"), first.err)
      pg.psql(own, "UPDATE sleep_ctl SET s = 0")
      local r = cli.run({ "--url", own, "upgrade", "head" }, { cwd = dir })
      assert.equal(3, r.code, r.err)
      assert.matches("autocommit block 1, statement 2 was running when the run stopped", r.err, 1, true)
      local done = cli.run({ "--url", own, "upgrade", "--resume", "head" }, { cwd = dir })
      assert.equal(0, done.code, done.err)
      assert.equal("1,2,3,4,5", steps(own))
      assert.equal("r3", pg.psql(own, "SELECT version_num FROM luamigrate_version"))
      cli.remove(dir)
    end)
    os.execute(("bash %s/scripts/pg.sh stop %s"):format(q(cli.src), q(pgdir)))
    assert(ok, err)
  end)

  it("counts statements across two blocks and the transactional part between them", function()
    local url, dbname = pg.new_db("resume")
    local dir = cli.project { files = {
      ["migrations/versions/b2_two.lua"] = cli.revision("b2", nil, [[
  op.execute("CREATE TABLE t (v int)")
  op.autocommit_block(function() op.execute("INSERT INTO t VALUES (1)") end)
  op.execute("INSERT INTO t VALUES (2)")
  op.execute("INSERT INTO t VALUES (3)")
  op.autocommit_block(function()
    op.execute("INSERT INTO t SELECT 4 FROM fix_me")
    op.execute("INSERT INTO t VALUES (5)")
  end)
  op.execute("INSERT INTO t VALUES (6)")
]], 'op.drop_table("t")'),
    } }
    local r = cli.run({ "--url", url, "upgrade", "head" }, { cwd = dir })
    assert.equal(1, r.code, r.err)
    r = cli.run({ "--url", url, "status" }, { cwd = dir })
    assert.matches("3 statements of its transactional part are committed", r.out, 1, true)
    assert.matches("autocommit block 2: no statement done", r.out, 1, true)
    assert.matches("autocommit block 2, statement 1 failed", r.out, 1, true)
    assert.equal("1,2,3", pg.psql(url, "SELECT string_agg(v::text, ',' ORDER BY v) FROM t"))
    pg.psql(url, "CREATE TABLE fix_me (v int); INSERT INTO fix_me VALUES (1)")
    local ok = cli.run({ "--url", url, "upgrade", "--resume", "head" }, { cwd = dir })
    assert.equal(0, ok.code, ok.err)
    assert.matches("4 statements skipped", ok.err, 1, true)
    assert.equal("1,2,3,4,5,6", pg.psql(url, "SELECT string_agg(v::text, ',' ORDER BY v) FROM t"))
    cli.remove(dir)
    pg.drop_db(dbname)
  end)

  it("--sql and --dry-run write no journal; --resume with nothing half-done upgrades as usual", function()
    local url, dbname = pg.new_db("resume")
    local dir = project()
    pg.psql(url, "CREATE TABLE sleep_ctl (s float8)")
    local sql = cli.run({ "upgrade", "--sql", "head" }, { cwd = dir })
    assert.equal(0, sql.code, sql.err)
    assert.truthy(sql.out:find("CREATE TABLE IF NOT EXISTS luamigrate_version_journal", 1, true), sql.out)
    assert.is_nil(sql.out:find("INTO luamigrate_version_journal", 1, true))
    local dry = cli.run({ "--url", url, "upgrade", "--dry-run", "head" }, { cwd = dir })
    assert.equal(0, dry.code, dry.err)
    assert.equal("", pg.psql(url, "SELECT coalesce(to_regclass('luamigrate_version_journal')::text, '')"))
    local bad = cli.run({ "--url", url, "upgrade", "--resume", "--sql", "head" }, { cwd = dir })
    assert.equal(2, bad.code, bad.err)
    local ok = cli.run({ "--url", url, "upgrade", "--resume", "head" }, { cwd = dir })
    assert.equal(0, ok.code, ok.err)
    assert.matches("no revision is half-done", ok.err, 1, true)
    assert.equal("1,2,3,4,5", steps(url))
    -- the journal is empty after the step committed
    assert.equal("0", pg.psql(url, "SELECT count(*) FROM luamigrate_version_journal"))
    cli.remove(dir)
    pg.drop_db(dbname)
  end)
  -- Kills `args` (SIGKILL) once a statement sleeps; `terminate` also ends that statement
  -- on the server, as it would on noticing the dropped client; otherwise it runs on.
  local function killed_in_sleep(url, dir, args, terminate)
    local pid = start(args, dir)
    wait_for(url, "SELECT count(*) = 1 FROM pg_stat_activity WHERE wait_event = 'PgSleep' AND datname = current_database()")
    os.execute(("kill -9 %d"):format(pid))
    for _ = 1, 200 do
      if not alive(pid) then break end
      os.execute("sleep 0.05")
    end
    if terminate then
      pg.psql(url, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE wait_event = 'PgSleep' "
        .. "AND datname = current_database()")
      wait_for(url, "SELECT count(*) = 0 FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()")
    end
  end

  it("a downgrade killed inside its autocommit block is recorded, refused, and finished by downgrade --resume", function()
    local url, dbname = pg.new_db("resume")
    local dir = cli.project { files = {
      ["migrations/versions/r1_base.lua"] = cli.revision("r1", nil, 'op.execute("CREATE TABLE base_t (id int)")',
        'op.drop_table("base_t")'),
      ["migrations/versions/r2_block.lua"] = cli.revision("r2", "r1", [[
  op.execute("CREATE TABLE steps (n int, at timestamptz DEFAULT clock_timestamp())")
  op.execute("CREATE TABLE widgets (id int, name text)")
  op.create_index("ix_widgets_name", "widgets", { "name" })]], [[
  op.execute("INSERT INTO steps (n) VALUES (-1)")
  op.autocommit_block(function()
    op.execute("INSERT INTO steps (n) VALUES (-2)")
    op.execute("INSERT INTO steps (n) SELECT -3 FROM (SELECT pg_sleep(coalesce((SELECT s FROM public.sleep_ctl), 0))) AS s")
    op.execute("DROP INDEX CONCURRENTLY ix_widgets_name")
  end)
  op.execute("DROP TABLE widgets")
  op.execute("INSERT INTO steps (n) VALUES (-5)")]]),
    } }
    pg.psql(url, "CREATE TABLE sleep_ctl (s float8); INSERT INTO sleep_ctl VALUES (0)")
    assert.equal(0, cli.run({ "--url", url, "upgrade", "head" }, { cwd = dir }).code)
    pg.psql(url, "UPDATE sleep_ctl SET s = 60")
    killed_in_sleep(url, dir, { "--url", url, "downgrade", "base" }, true)
    pg.psql(url, "UPDATE sleep_ctl SET s = 0")
    assert.equal("-1,-2", steps(url))
    assert.equal("r2", pg.psql(url, "SELECT version_num FROM luamigrate_version"))
    for _, cmd in ipairs { { "downgrade", "base" }, { "upgrade", "head" } } do
      local r = cli.run({ "--url", url, cmd[1], cmd[2] }, { cwd = dir })
      assert.equal(3, r.code, r.err)
      assert.matches(cmd[1] .. " refused: revision r2 (migrations/versions/r2_block.lua) is half-done by a "
        .. "downgrade: a run stopped after committing part of its downgrade()", r.err, 1, true)
      assert.matches("autocommit block 1, statement 2 was running when the run stopped", r.err, 1, true)
      assert.matches("luamigrate downgrade --resume TARGET", r.err, 1, true)
    end
    local wrong = cli.run({ "--url", url, "upgrade", "--resume", "head" }, { cwd = dir })
    assert.equal(3, wrong.code, wrong.err)
    local st = cli.run({ "--url", url, "status" }, { cwd = dir })
    assert.matches("finish it with 'luamigrate downgrade --resume TARGET'", st.out, 1, true)
    local ok = cli.run({ "--url", url, "downgrade", "--resume", "base" }, { cwd = dir })
    assert.equal(0, ok.code, ok.err)
    assert.matches("Resuming revision r2", ok.err, 1, true)
    assert.equal("-1,-2,-3,-5", steps(url))
    assert.equal("0", pg.psql(url, "SELECT count(*) FROM luamigrate_version"))
    assert.equal("", pg.psql(url, "SELECT coalesce(to_regclass('widgets')::text, '')"))
    assert.equal("0", pg.psql(url, "SELECT count(*) FROM luamigrate_version_journal"))
    cli.remove(dir)
    pg.drop_db(dbname)
  end)

  it("while the killed run's statement still runs on the server, others refuse and --resume waits for it", function()
    local url, dbname = pg.new_db("resume")
    local dir = project()
    pg.psql(url, "CREATE TABLE sleep_ctl (s float8); INSERT INTO sleep_ctl VALUES (3)")
    killed_in_sleep(url, dir, { "--url", url, "upgrade", "head" }, false)
    local r = cli.run({ "--url", url, "upgrade", "head" }, { cwd = dir })
    assert.equal(3, r.code, r.err)
    assert.matches("autocommit block 1, statement 2 is still running on the server %(backend pid %d+, since", r.err)
    assert.matches("SELECT pg_cancel_backend(", r.err, 1, true)
    pg.psql(url, "UPDATE sleep_ctl SET s = 0")
    local ok = cli.run({ "--url", url, "upgrade", "--resume", "head" }, { cwd = dir })
    assert.equal(0, ok.code, ok.err)
    assert.matches("is still running on the server (backend pid", ok.err, 1, true)
    assert.matches("waiting for it to end", ok.err, 1, true)
    -- the killed run's statement ended with its transaction, undone: it ran once, after
    assert.equal("1,2,3,4,5", steps(url))
    assert.equal("r3", pg.psql(url, "SELECT version_num FROM luamigrate_version"))
    cli.remove(dir)
    pg.drop_db(dbname)
  end)

  it("a CREATE INDEX CONCURRENTLY the server finished after the kill is recorded done by --resume", function()
    local url, dbname = pg.new_db("resume")
    local dir = cli.project { files = {
      ["migrations/versions/c1_cic.lua"] = cli.revision("c1", nil, [[
  op.execute("CREATE TABLE items (id int, name text)")
  op.execute("INSERT INTO items SELECT g, 'n' || g FROM generate_series(1, 100) g")
  op.autocommit_block(function()
    op.create_index("ix_items_name", "items", { "name" }, { postgresql_concurrently = true })
    op.execute("INSERT INTO items VALUES (0, 'after')")
  end)
]], 'op.drop_table("items")'),
    } }
    -- a transaction holds a snapshot, so the build waits for it (virtualxid) once its index exists
    local holder = require("luamigrate.core").connect(url)
    holder:execute("BEGIN ISOLATION LEVEL REPEATABLE READ")
    holder:execute("SELECT 1")
    local pid = start({ "--url", url, "upgrade", "head" }, dir)
    wait_for(url, "SELECT count(*) = 1 FROM pg_stat_activity WHERE query LIKE 'CREATE INDEX CONCURRENTLY%' "
      .. "AND wait_event = 'virtualxid'")
    os.execute(("kill -9 %d"):format(pid))
    for _ = 1, 200 do
      if not alive(pid) then break end
      os.execute("sleep 0.05")
    end
    local r = cli.run({ "--url", url, "upgrade", "head" }, { cwd = dir })
    assert.equal(3, r.code, r.err)
    assert.matches("statement 1 is still running on the server", r.err, 1, true)
    -- the holder ends: the server finishes the index for the dead client
    holder:execute("COMMIT")
    holder:close()
    wait_for(url, "SELECT count(*) = 0 FROM pg_stat_activity WHERE query LIKE 'CREATE INDEX CONCURRENTLY%'")
    assert.equal("t", pg.psql(url, "SELECT indisvalid FROM pg_index WHERE indexrelid = 'ix_items_name'::regclass"))
    r = cli.run({ "--url", url, "upgrade", "head" }, { cwd = dir })
    assert.equal(3, r.code, r.err)
    assert.matches("its index public.ix_items_name exists and is VALID: the statement completed on the server", r.err, 1, true)
    local ok = cli.run({ "--url", url, "upgrade", "--resume", "head" }, { cwd = dir })
    assert.equal(0, ok.code, ok.err)
    assert.matches("skipped: statement 3, as its index public.ix_items_name exists and is VALID", ok.err, 1, true)
    assert.equal("101", pg.psql(url, "SELECT count(*) FROM items"))
    assert.equal("c1", pg.psql(url, "SELECT version_num FROM luamigrate_version"))
    cli.remove(dir)
    pg.drop_db(dbname)
  end)

  it("an INVALID index a killed CREATE INDEX CONCURRENTLY left is dropped and built again by --resume", function()
    local url, dbname = pg.new_db("resume")
    local dir = cli.project { files = {
      ["migrations/versions/c1_cic.lua"] = cli.revision("c1", nil, [[
  op.execute("CREATE TABLE items (id int, name text)")
  op.autocommit_block(function()
    op.create_index("ix_items_name", "items", { "name" }, { postgresql_concurrently = true })
  end)
]], 'op.drop_table("items")'),
    } }
    local holder = require("luamigrate.core").connect(url)
    holder:execute("BEGIN ISOLATION LEVEL REPEATABLE READ")
    holder:execute("SELECT 1")
    local pid = start({ "--url", url, "upgrade", "head" }, dir)
    wait_for(url, "SELECT count(*) = 1 FROM pg_stat_activity WHERE query LIKE 'CREATE INDEX CONCURRENTLY%' "
      .. "AND wait_event = 'virtualxid'")
    os.execute(("kill -9 %d"):format(pid))
    pg.psql(url, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE query LIKE 'CREATE INDEX CONCURRENTLY%'")
    wait_for(url, "SELECT count(*) = 0 FROM pg_stat_activity WHERE query LIKE 'CREATE INDEX CONCURRENTLY%'")
    holder:execute("COMMIT")
    holder:close()
    local r = cli.run({ "--url", url, "upgrade", "head" }, { cwd = dir })
    assert.equal(3, r.code, r.err)
    assert.matches("INVALID index public.ix_items_name exists (the interrupted CREATE INDEX CONCURRENTLY left it): "
      .. "'upgrade --resume' drops it (DROP INDEX CONCURRENTLY public.ix_items_name)", r.err, 1, true)
    local ok = cli.run({ "--url", url, "upgrade", "--resume", "head" }, { cwd = dir })
    assert.equal(0, ok.code, ok.err)
    assert.matches("dropping the INVALID index public.ix_items_name", ok.err, 1, true)
    assert.equal("t", pg.psql(url, "SELECT indisvalid FROM pg_index WHERE indexrelid = 'ix_items_name'::regclass"))
    cli.remove(dir)
    pg.drop_db(dbname)
  end)

  it("a record of a revision the version table has applied gets one hint, from every command", function()
    local url, dbname = pg.new_db("resume")
    local dir = project()
    interrupted_run(url, dir, "session")
    pg.psql(url, "UPDATE luamigrate_version SET version_num = 'r3'")
    for _, args in ipairs { { "upgrade", "head" }, { "upgrade", "--resume", "head" }, { "downgrade", "base" } } do
      local r = cli.run({ "--url", url, table.unpack(args) }, { cwd = dir })
      assert.equal(3, r.code, r.err)
      assert.matches("refused: the journal records revision r2 as half-done by an upgrade, but the version "
        .. "table (at r3) has it applied", r.err, 1, true)
      assert.matches("run 'luamigrate stamp r3', which keeps the version table where it is and clears the record", r.err, 1, true)
      assert.is_nil(r.err:find("stamp r1", 1, true), r.err)
      assert.is_nil(r.err:find("not the next step", 1, true), r.err)
    end
    assert.equal(0, cli.run({ "--url", url, "stamp", "r3" }, { cwd = dir }).code)
    assert.equal("0", pg.psql(url, "SELECT count(*) FROM luamigrate_version_journal"))
    cli.remove(dir)
    pg.drop_db(dbname)
  end)
end)
