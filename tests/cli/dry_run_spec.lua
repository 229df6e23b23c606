-- upgrade/downgrade --dry-run: the plan runs against the live database in one transaction,
-- every statement is printed with its timing, and everything is rolled back.
local pg = require "helpers.pg"
local cli = require "helpers.cli"
local fixture = require "helpers.fixture"

describe("--dry-run", function()
  local fx = fixture.new()
  local dir, url

  -- A dump without sequence positions: PostgreSQL never rolls back nextval(), so a rolled
  -- back identity insert still moves its sequence.
  local function dump()
    return (pg.dump(url):gsub("SELECT pg_catalog.setval[^\n]*", ""))
  end

  local function run(...)
    return cli.run({ "--url", url, ... }, { cwd = dir })
  end

  it("prints every statement with its timing and leaves an empty database empty", function()
    local files = cli.chain(3)
    dir = fx:project { files = files }
    url = fx:new_db()
    local before = dump()
    local r = run("upgrade", "--dry-run", "head")
    assert.equal(0, r.code, r.err)
    assert.truthy(r.out:find("CREATE TABLE t1 %(id int%);\n%-%- %d+%.%d%d ms\n"))
    assert.truthy(r.out:find("CREATE TABLE t3 (id int);", 1, true))
    assert.truthy(r.out:find("--   $1 = '03abcdef0123'", 1, true))
    assert.truthy(r.out:find("%-%- %d+%.%d%d ms, 1 row affected"))
    assert.truthy(r.err:find("Dry run: 3 migrations ran and were rolled back", 1, true))
    -- not even the version tables are left behind
    assert.equal(before, dump())
    assert.equal("", pg.psql(url, "SELECT coalesce(to_regclass('luamigrate_version')::text, '')"))
  end)

  it("reports the failing statement, exits 1 and changes nothing", function()
    local files, ids = cli.chain(4, { broken = 3 })
    dir = fx:project { files = files }
    url = fx:new_db()
    assert.equal(0, run("upgrade", "+1").code)
    local before = dump()
    local r = run("upgrade", "--dry-run", "head")
    assert.equal(1, r.code)
    assert.truthy(r.out:find("INSERT INTO no_such_table VALUES (1);\n-- ERROR 42P01 after", 1, true))
    assert.truthy(r.err:find(ids[3], 1, true))
    assert.truthy(r.err:find("Dry run failed; everything it did was rolled back", 1, true))
    assert.equal(before, dump())
  end)

  it("lists autocommit blocks as skipped instead of running them", function()
    dir = fx:project { files = {
      ["migrations/versions/aaaa_t.lua"] = cli.revision("aaaa", nil,
        '  op.execute("CREATE TABLE t (id int)")\n'
        .. '  op.autocommit_block(function()\n'
        .. '    op.create_index("t_id", "t", { "id" }, { postgresql_concurrently = true })\n'
        .. '  end)\n'
        .. '  op.execute("INSERT INTO t VALUES (1)")\n',
        '  op.drop_table("t")\n'),
    } }
    url = fx:new_db()
    local r = run("upgrade", "--dry-run", "head")
    assert.equal(0, r.code, r.err)
    assert.truthy(r.out:find("-- skipped (autocommit block", 1, true))
    assert.truthy(r.out:find("--   CREATE INDEX CONCURRENTLY t_id ON t (id)", 1, true))
    assert.truthy(r.out:find("INSERT INTO t VALUES (1);", 1, true))
    assert.equal("", pg.psql(url, "SELECT coalesce(to_regclass('t')::text, '')"))
    -- the real run does build the index, outside the transaction
    r = run("upgrade", "head")
    assert.equal(0, r.code, r.err)
    assert.equal("t_id", pg.psql(url, "SELECT indexname FROM pg_indexes WHERE tablename = 't'"))
    assert.equal("1", pg.psql(url, "SELECT count(*) FROM t"))
  end)

  it("works for downgrade and keeps the version rows", function()
    local files, ids = cli.chain(3)
    dir = fx:project { files = files }
    url = fx:new_db()
    assert.equal(0, run("upgrade", "head").code)
    local before = dump()
    local r = run("downgrade", "--dry-run", "base")
    assert.equal(0, r.code, r.err)
    assert.truthy(r.out:find("DROP TABLE t3;", 1, true))
    assert.truthy(r.out:find("DROP TABLE t1;", 1, true))
    assert.equal(before, dump())
    assert.equal(ids[3], pg.psql(url, "SELECT version_num FROM luamigrate_version"))
  end)

  it("refuses --sql together with --dry-run", function()
    dir = fx:project { files = cli.chain(1) }
    url = fx:new_db()
    local r = run("upgrade", "--sql", "--dry-run", "head")
    assert.equal(2, r.code)
    assert.truthy(r.err:find("--sql and --dry-run exclude each other", 1, true))
  end)
end)
