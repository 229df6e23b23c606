-- The safe ways lint's hints name, as ops: op.backfill (committed batches outside the DDL
-- transaction, idempotent, resumable), op.set_not_null (through a validated check),
-- op.create_index_concurrently / op.drop_index_concurrently (their own autocommit block) and
-- op.validate_constraint; online and through --sql + psql alike, and lint-clean.
local pg = require "helpers.pg"
local cli = require "helpers.cli"
local fixture = require "helpers.fixture"

local V = "migrations/versions/"

describe("safe ops", function()
  local fx = fixture.new()
  local dir, url

  before_each(function()
    url = fx:new_db()
    pg.psql(url, "CREATE TABLE items (id bigint PRIMARY KEY, price bigint, cents bigint); "
      .. "INSERT INTO items (id, price) SELECT g, g FROM generate_series(1, 2500) g")
  end)

  local UP = [[
  op.backfill("items", { set = { cents = "price * 100" }, where = "cents IS NULL", batch_size = 1000 })
  op.set_not_null("items", "cents")
  op.create_index_concurrently("ix_items_cents", "items", { "cents" })
  op.create_check_constraint("ck_items_cents", "items", "cents >= 0", { postgresql_not_valid = true })]]
  local UP2 = [[
  op.validate_constraint("ck_items_cents", "items")
  op.drop_index_concurrently("ix_items_cents")]]

  local function project()
    dir = fx:project { files = {
      [V .. "s1_x.lua"] = cli.revision("s1", nil, UP),
      [V .. "s2_x.lua"] = cli.revision("s2", "s1", UP2) } }
  end

  local function check_done()
    assert.equal("0", pg.psql(url, "SELECT count(*) FROM items WHERE cents IS DISTINCT FROM price * 100"))
    assert.equal("t", pg.psql(url, "SELECT attnotnull FROM pg_attribute WHERE attrelid = 'items'::regclass AND attname = 'cents'"))
    assert.equal("ck_items_cents", pg.psql(url, "SELECT string_agg(conname, ',') FROM pg_constraint "
      .. "WHERE conrelid = 'items'::regclass AND contype = 'c' AND convalidated"))
    assert.equal("", pg.psql(url, "SELECT coalesce(to_regclass('ix_items_cents')::text, '')"))
  end

  it("fill, constrain and index a table with rows online, in committed batches", function()
    project()
    local r = cli.run({ "--url", url, "upgrade", "s1" }, { cwd = dir })
    assert.equal(0, r.code, r.err)
    assert.equal("t", pg.psql(url, "SELECT indisvalid FROM pg_index WHERE indexrelid = 'ix_items_cents'::regclass"))
    -- three batches, each its own transaction: three different xmin values
    assert.equal("3", pg.psql(url, "SELECT count(DISTINCT xmin::text) FROM items"))
    r = cli.run({ "--url", url, "upgrade", "head" }, { cwd = dir })
    assert.equal(0, r.code, r.err)
    check_done()
  end)

  it("show a backfill's progress as a live line on a terminal, and nothing when piped", function()
    project()
    local r = cli.run_tty({ "--url", url, "upgrade", "head" }, { cwd = dir })
    assert.equal(0, r.code, r.out)
    assert.truthy(r.out:find("\27[2m  backfill items: ", 1, true), r.out) -- dim, as step counters
    local plain = r.out:gsub("\27%[[%d;]*m", "")
    -- rewritten in place after each batch (carriage return, erase line), rows, batches, rate
    assert.truthy(plain:find("\n  backfill items: 0 rows, 0 batches\r\27%[K  backfill items: 1000 rows, 1 batch, "
      .. "%d+ rows/s\r\27%[K  backfill items: 2000 rows, 2 batches, %d+ rows/s\r\27%[K"), plain)
    -- ended with a newline, so what follows (a notice, the step's ending, the next step line)
    -- starts a line of its own
    assert.truthy(plain:find("\r\27%[K  backfill items: 2500 rows, 3 batches, %d+ rows/s\nserver NOTICE"), plain)
    assert.truthy(plain:find("\n  %.%.%. %(%d+ ms%)\n%[2/2%] Running upgrade s1 %-> s2"), plain)
    -- NO_COLOR: the same line, without the dim style; piped: the output as before, no live line
    cli.remove(dir)
    pg.psql(url, "DELETE FROM luamigrate_version; UPDATE items SET cents = 0")
    dir = fx:project { files = { [V .. "b1_x.lua"] = cli.revision("b1", nil,
      '  op.backfill("items", { set = { cents = "price" }, where = "cents IS DISTINCT FROM price", batch_size = 1000 })') } }
    r = cli.run_tty({ "--url", url, "upgrade", "head" }, { cwd = dir, env = { NO_COLOR = "1" } })
    assert.equal(0, r.code, r.out)
    assert.truthy(r.out:find("\r\27%[K  backfill items: 2500 rows, 3 batches, %d+ rows/s\n  %.%.%. %(%d+ ms%)\n"), r.out)
    assert.falsy(r.out:find("\27%[2m"), r.out)
    assert.equal(0, cli.run({ "--url", url, "stamp", "base" }, { cwd = dir }).code)
    pg.psql(url, "UPDATE items SET cents = 0")
    r = cli.run({ "--url", url, "upgrade", "head" }, { cwd = dir })
    assert.equal(0, r.code, r.err)
    assert.equal("0", pg.psql(url, "SELECT count(*) FROM items WHERE cents IS DISTINCT FROM price"))
    assert.falsy(r.err:find("backfill", 1, true), r.err)
    assert.falsy(r.err:find("\r", 1, true), r.err)
  end)

  it("write the same work into the --sql script", function()
    project()
    local r = cli.run({ "upgrade", "--sql", "head" }, { cwd = dir })
    assert.equal(0, r.code, r.err)
    -- (each autocommit block runs with the migration's lock_timeout for the session)
    assert.truthy(r.out:find("COMMIT;\n\nSET lock_timeout = '5s';\n\nDO $luamigrate$\nDECLARE n bigint;\nBEGIN\n  LOOP\n    UPDATE items SET cents = "
      .. "price * 100 WHERE ctid = ANY (ARRAY(SELECT ctid FROM items WHERE cents IS NULL LIMIT 1000));\n", 1, true), r.out)
    assert.truthy(r.out:find("ALTER TABLE items ADD CONSTRAINT items_cents_not_null CHECK (cents IS NOT NULL) NOT VALID;\n\n"
      .. "COMMIT;\n\nSET lock_timeout = '5s';\n\nALTER TABLE items VALIDATE CONSTRAINT items_cents_not_null;\n\n"
      .. "RESET lock_timeout;\n\nBEGIN;\n\n"
      .. "SET LOCAL lock_timeout = '5s';\n\nALTER TABLE items ALTER COLUMN cents SET NOT NULL;", 1, true), r.out)
    -- as a user applies a script: psql -f sends each statement on its own (the DO block commits)
    local sqlfile = os.tmpname()
    cli.write(sqlfile, r.out)
    local ok = os.execute((pg.tool .. "psql -XAtq -v ON_ERROR_STOP=1 -d %s -f %s >/dev/null"):format(
      pg.shell_quote(url), sqlfile))
    os.remove(sqlfile)
    assert.is_true(ok == true or ok == 0)
    check_done()
  end)

  it("resume where a killed backfill stopped, and refuse a set that never leaves where", function()
    project()
    pg.psql(url, "UPDATE items SET cents = price * 100 WHERE id <= 1200") -- as if a run died half-way
    local r = cli.run({ "--url", url, "upgrade", "head" }, { cwd = dir })
    assert.equal(0, r.code, r.err)
    check_done()
    pg.psql(url, "ALTER TABLE items ADD COLUMN flag boolean")
    cli.write(dir .. "/" .. V .. "s3_x.lua", cli.revision("s3", "s2",
      '  op.backfill("items", { set = { flag = false }, where = "flag IS NOT TRUE" })'))
    r = cli.run({ "--url", url, "upgrade", "head" }, { cwd = dir })
    assert.equal(1, r.code)
    assert.truthy(r.err:find('op.backfill("items"): rows it updated still match where (flag IS NOT TRUE)', 1, true), r.err)
  end)

  it("journal a backfill's batches: killed mid-way, refused with how far it got, finished by --resume", function()
    -- 60 rows in batches of 10; each batch sleeps as long as sleep_ctl says (the text stays the same)
    pg.psql(url, "CREATE TABLE sleep_ctl (s float8); INSERT INTO sleep_ctl VALUES (0.25); "
      .. "CREATE TABLE slow (id int PRIMARY KEY, v int, hits int NOT NULL DEFAULT 0); "
      .. "INSERT INTO slow (id) SELECT g FROM generate_series(1, 60) g; CREATE TABLE after_t (n int)")
    dir = fx:project { files = {
      [V .. "k1_x.lua"] = cli.revision("k1", nil, [[
  op.backfill("slow", { set = { v = "id * 2 + (SELECT 0 FROM pg_sleep((SELECT s FROM public.sleep_ctl)))",
    hits = "hits + 1" }, where = "v IS NULL", batch_size = 10 })
  op.execute("INSERT INTO after_t VALUES (1)")]]) } }
    local pid, errf = cli.start({ "--url", url, "upgrade", "head" }, dir)
    os.remove(errf)
    local function wait_for(sql)
      for _ = 1, 400 do
        if pg.psql(url, sql) == "t" then return end
        os.execute("sleep 0.02")
      end
      error("timed out waiting for: " .. sql)
    end
    wait_for("SELECT count(*) >= 20 FROM slow WHERE v IS NOT NULL")
    os.execute(("kill -9 %d"):format(pid))
    cli.wait_exit(pid, 10)
    assert.is_false(cli.alive(pid))
    pg.psql(url, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database() "
      .. "AND pid <> pg_backend_pid()")
    wait_for("SELECT count(*) = 0 FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()")
    pg.psql(url, "UPDATE sleep_ctl SET s = 0")
    local filled = tonumber(pg.psql(url, "SELECT count(*) FROM slow WHERE v IS NOT NULL"))
    assert.truthy(filled >= 20 and filled < 60 and filled % 10 == 0, filled)

    local r = cli.run({ "--url", url, "upgrade", "head" }, { cwd = dir })
    assert.equal(3, r.code, r.err)
    assert.truthy(r.err:find("revision k1 (", 1, true), r.err)
    assert.truthy(r.err:find(("op.backfill: %d batches committed (of up to 10 rows each: at most %d rows filled)"):format(
      filled // 10, filled), 1, true), r.err)
    assert.equal(tostring(filled), pg.psql(url, "SELECT count(*) FROM slow WHERE v IS NOT NULL"))

    r = cli.run({ "--url", url, "upgrade", "--resume", "head" }, { cwd = dir })
    assert.equal(0, r.code, r.err)
    assert.truthy(r.err:find(("skipped (done by the interrupted run): op.backfill, statements 1..%d (%d committed "
      .. "batches); the rest runs on from there"):format(filled // 10, filled // 10), 1, true), r.err)
    -- every row filled exactly once, and what follows the backfill ran once
    assert.equal("60|1|1", pg.psql(url, "SELECT count(*), min(hits), max(hits) FROM slow WHERE v = id * 2"))
    assert.equal("1", pg.psql(url, "SELECT count(*) FROM after_t"))
    assert.equal("k1", pg.psql(url, "SELECT version_num FROM luamigrate_version"))
    assert.equal("0", pg.psql(url, "SELECT count(*) FROM luamigrate_version_journal"))
  end)

  it("a backfill that finished before the kill is skipped whole by --resume, and what follows runs once", function()
    pg.psql(url, "CREATE TABLE sleep_ctl (s float8); INSERT INTO sleep_ctl VALUES (60); "
      .. "CREATE TABLE slow (id int PRIMARY KEY, v int, hits int NOT NULL DEFAULT 0); "
      .. "INSERT INTO slow (id) SELECT g FROM generate_series(1, 30) g; CREATE TABLE after_t (n int)")
    dir = fx:project { files = {
      [V .. "k1_x.lua"] = cli.revision("k1", nil, [[
  op.backfill("slow", { set = { v = "id * 2", hits = "hits + 1" }, where = "v IS NULL", batch_size = 10 })
  op.execute("INSERT INTO after_t VALUES (1)")
  op.autocommit_block(function()
    op.execute("INSERT INTO after_t SELECT 2 FROM pg_sleep((SELECT s FROM public.sleep_ctl))")
  end)
  op.execute("INSERT INTO after_t VALUES (3)")]]) } }
    local pid, errf = cli.start({ "--url", url, "upgrade", "head" }, dir)
    os.remove(errf)
    local function wait_for(sql)
      for _ = 1, 400 do
        if pg.psql(url, sql) == "t" then return end
        os.execute("sleep 0.02")
      end
      error("timed out waiting for: " .. sql)
    end
    wait_for("SELECT count(*) = 1 FROM pg_stat_activity WHERE wait_event = 'PgSleep' AND datname = current_database()")
    os.execute(("kill -9 %d"):format(pid))
    cli.wait_exit(pid, 10)
    pg.psql(url, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database() "
      .. "AND pid <> pg_backend_pid()")
    wait_for("SELECT count(*) = 0 FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()")
    pg.psql(url, "UPDATE sleep_ctl SET s = 0")
    local r = cli.run({ "--url", url, "upgrade", "--resume", "head" }, { cwd = dir })
    assert.equal(0, r.code, r.err)
    -- three full batches and the empty one that ended it
    assert.truthy(r.err:find("op.backfill, statements 1..4 (4 committed batches), all of it", 1, true), r.err)
    assert.equal("30|1|1", pg.psql(url, "SELECT count(*), min(hits), max(hits) FROM slow WHERE v = id * 2"))
    assert.equal("1,2,3", pg.psql(url, "SELECT string_agg(n::text, ',' ORDER BY n) FROM after_t"))
    assert.equal("k1", pg.psql(url, "SELECT version_num FROM luamigrate_version"))
  end)

  it("give lint nothing to object to", function()
    project()
    local r = cli.run({ "lint", "--offline", "--json" }, { cwd = dir })
    assert.equal(0, r.code, r.out .. r.err)
    for _, f in ipairs(require("cjson").decode(r.out)) do
      assert.is_not.equal("error", f.severity, f.rule .. ": " .. f.message)
    end
  end)
end)
