-- `luamigrate convert alembic`: the Alembic projects under tests/fixtures/alembic/ are run by
-- Alembic itself (Debian's python3-alembic) on one database and, converted, by luamigrate on
-- another; the schemas must be identical apart from the tools' own tables, online, through
-- --sql scripts applied with psql, and after downgrade base. The converted project on the
-- database Alembic built applies nothing.
local pg = require "helpers.pg"
local cli = require "helpers.cli"

local q = pg.shell_quote
local FIXTURES = cli.src .. "/tests/fixtures/alembic"

-- Alembic's command in fixture `name`, against `url`; returns exit code, stdout, stderr.
local function alembic(name, url, args)
  local out, err = os.tmpname(), os.tmpname()
  local cmd = ("cd %s && env -u LD_PRELOAD FIXTURE_URL=%s /usr/bin/python3 -m alembic %s >%s 2>%s; echo $?")
    :format(q(FIXTURES .. "/" .. name), q(url), args, out, err)
  local p = assert(io.popen(cmd))
  local code = tonumber(p:read("a"):match("%d+"))
  p:close()
  local r = { code = code, out = cli.slurp(out), err = cli.slurp(err) }
  os.remove(out)
  os.remove(err)
  return r
end

-- SQLAlchemy's URL for a libpq conninfo of helpers.pg (host, port, user, dbname).
local function sa_url(conninfo)
  local t = {}
  for k, v in conninfo:gmatch("(%w+)=(%S+)") do t[k] = v end
  return ("postgresql:///%s?host=%s&port=%s&user=%s"):format(t.dbname, t.host, t.port, t.user)
end

-- The schema without the version tables (Alembic names its key alembic_version_pkc,
-- luamigrate adds _history, _lock and _journal next to it).
local function schema(url, version_table)
  local p = assert(io.popen((pg.tool .. "pg_dump --schema-only --no-owner --no-privileges -T %s -d %s 2>&1")
    :format(q(version_table .. "*"), q(url))))
  local out = p:read("a")
  p:close()
  return (out:gsub("\n\\u?n?restrict [^\n]*", ""))
end

local function apply(url, sql)
  local file = os.tmpname()
  cli.write(file, sql)
  local p = assert(io.popen((pg.tool .. "psql -XAtq -v ON_ERROR_STOP=1 -d %s -f %s 2>&1")
    :format(q(url), q(file))))
  local out = p:read("a")
  local ok = p:close()
  os.remove(file)
  return ok, out
end

local function versions(url, version_table)
  return pg.psql(url, ("SELECT string_agg(version_num, ',' ORDER BY version_num) FROM %s"):format(version_table))
end

-- The fixture's parity checks. `version_table`: the one its env.py configures; `o.data`: a
-- query whose rows (the data migrations wrote) must be the same as Alembic's, and not empty;
-- `o.alembic_sql_fails`: the message Alembic's upgrade --sql stops with on this fixture (see
-- the --sql case); `o.reads`: the fixture's migrations read the database, so neither tool
-- can write its --sql script (both must refuse, luamigrate with this message).
local function parity(name, version_table, o)
  o = o or {}
  local dir, dbs = nil, {}
  local function db()
    local url, dbname = pg.new_db("conv")
    dbs[#dbs + 1] = dbname
    return url
  end

  setup(function()
    dir = os.tmpname()
    os.remove(dir)
    cli.mkdir_p(dir)
    local r = cli.run({ "convert", "alembic", FIXTURES .. "/" .. name .. "/alembic.ini", "-o", dir })
    assert.equal(0, r.code, r.err)
  end)

  teardown(function()
    cli.remove(dir)
    for _, d in ipairs(dbs) do pg.drop_db(d) end
  end)

  local function lm(url, ...)
    return cli.run({ "--url", url, ... }, { cwd = dir })
  end

  local function same_data(a, b)
    if not o.data then return end
    local rows = pg.psql(a, o.data)
    assert.are_not.equal("", rows)
    assert.equal(rows, pg.psql(b, o.data))
  end

  it("upgrade heads, then downgrade base: the same schema as Alembic's", function()
    local a, b = db(), db()
    local r = alembic(name, sa_url(a), "upgrade heads")
    assert.equal(0, r.code, r.err)
    r = lm(b, "upgrade", "heads")
    assert.equal(0, r.code, r.err)
    assert.equal(schema(a, version_table), schema(b, version_table))
    assert.equal(versions(a, version_table), versions(b, version_table))
    same_data(a, b)
    r = alembic(name, sa_url(a), "downgrade base")
    assert.equal(0, r.code, r.err)
    r = lm(b, "downgrade", "base")
    assert.equal(0, r.code, r.err)
    assert.equal(schema(a, version_table), schema(b, version_table))
    assert.equal("", versions(b, version_table))
  end)

  it("upgrade --sql and downgrade --sql scripts build the same schema as Alembic's", function()
    local a, b = db(), db()
    local r = alembic(name, sa_url(a), "upgrade heads --sql")
    local ok, out
    if o.reads then
      -- Alembic's offline bind is None: reading a result is Python's AttributeError
      assert.are_not.equal(0, r.code, r.out)
      assert.truthy(r.err:find("AttributeError: 'NoneType' object has no attribute", 1, true), r.err)
      local s = lm(b, "upgrade", "--sql", "heads")
      assert.equal(1, s.code, s.err)
      assert.truthy(s.err:find(o.reads, 1, true), s.err)
      return
    end
    if o.alembic_sql_fails then
      -- Alembic cannot write this fixture's upgrade script at all, so luamigrate's script is
      -- held to what Alembic builds online instead: the same schema, versions and data. Its
      -- refusal is asserted, so that an Alembic that can write the script puts this fixture
      -- back to script against script. (The downgrade scripts below are compared as usual.)
      assert.are_not.equal(0, r.code, r.out)
      assert.truthy(r.err:find(o.alembic_sql_fails, 1, true), r.err)
      r = alembic(name, sa_url(a), "upgrade heads")
      assert.equal(0, r.code, r.err)
    else
      assert.equal(0, r.code, r.err)
      ok, out = apply(a, r.out)
      assert.is_true(ok, out)
    end
    local s = lm(b, "upgrade", "--sql", "heads")
    assert.equal(0, s.code, s.err)
    ok, out = apply(b, s.out)
    assert.is_true(ok, out)
    assert.equal(schema(a, version_table), schema(b, version_table))
    same_data(a, b)
    local heads = versions(a, version_table)
    assert.equal(heads, versions(b, version_table))
    assert.falsy(heads:find(",", 1, true), "one head, so that HEAD:base is one range")
    r = alembic(name, sa_url(a), "downgrade " .. heads .. ":base --sql")
    assert.equal(0, r.code, r.err)
    ok, out = apply(a, r.out)
    assert.is_true(ok, out)
    s = lm(b, "downgrade", "--sql", heads .. ":base")
    assert.equal(0, s.code, s.err)
    ok, out = apply(b, s.out)
    assert.is_true(ok, out)
    assert.equal(schema(a, version_table), schema(b, version_table))
    -- Alembic's script drops its version table at base; luamigrate's empties it
    assert.equal("t", pg.psql(a, ("SELECT to_regclass('%s') IS NULL"):format(version_table)))
    assert.equal("", versions(b, version_table))
  end)

  it("continues a database Alembic took part of the way to the schema Alembic builds", function()
    local a, b = db(), db()
    assert.equal(0, alembic(name, sa_url(a), "upgrade heads").code)
    local r = alembic(name, sa_url(b), "upgrade +1")
    assert.equal(0, r.code, r.err)
    r = lm(b, "upgrade", "heads")
    assert.equal(0, r.code, r.err)
    assert.truthy(r.err:find("Running upgrade", 1, true), r.err)
    assert.equal(schema(a, version_table), schema(b, version_table))
    assert.equal(versions(a, version_table), versions(b, version_table))
    same_data(a, b)
  end)

  it("run on the database Alembic built, applies nothing and Alembic still agrees", function()
    local a = db()
    assert.equal(0, alembic(name, sa_url(a), "upgrade heads").code)
    local before = schema(a, version_table)
    local heads = versions(a, version_table)
    local r = lm(a, "upgrade", "heads")
    assert.equal(0, r.code, r.err)
    assert.falsy(r.err:find("Running upgrade", 1, true), r.err)
    assert.equal(before, schema(a, version_table))
    assert.equal(heads, versions(a, version_table))
    r = lm(a, "current")
    assert.equal(0, r.code, r.err)
    for id in heads:gmatch("[^,]+") do assert.truthy(r.out:find(id, 1, true), r.out) end
    -- and back: luamigrate downgrades one step, Alembic sees it and upgrades again
    r = lm(a, "downgrade", "-1")
    assert.equal(0, r.code, r.err)
    r = alembic(name, sa_url(a), "upgrade heads")
    assert.equal(0, r.code, r.err)
    assert.equal(before, schema(a, version_table))
  end)
end

-- Converts fixture `name`, asserts every one of its `revisions` translated untouched, and
-- returns the text of the converted `file`.
local function converted(name, file, revisions)
  local dir = os.tmpname()
  os.remove(dir)
  cli.mkdir_p(dir)
  local r = cli.run({ "convert", "alembic", FIXTURES .. "/" .. name, "-o", dir })
  local text = cli.slurp(dir .. "/" .. file)
  cli.remove(dir)
  assert.equal(0, r.code, r.err)
  assert.truthy(r.out:find(("(%d revisions untouched)"):format(revisions), 1, true), r.out)
  return text
end

describe("convert alembic (shop fixture: constructs luamigrate has today)", function()
  parity("shop", "alembic_version", { data = "SELECT code, monthly_cents, seats FROM plans ORDER BY code" })
end)

-- Autogenerate output as SQLAlchemy 1.4/2.0 writes it: op.f names, PrimaryKeyConstraint on
-- an integer id (SERIAL), sa.TIMESTAMP, sa.CHAR, keyword type arguments, postgresql.UUID/JSONB/
-- ARRAY/ENUM/INET/TIMESTAMP, sa.func.now(), sa.Identity, Enum:create(bind, {checkfirst}), data
-- migrations with sa.table():update():where(column:eq(v)):values{...}, :is_(nil) and
-- :delete(), bulk_insert of a dict into a JSONB column of op.create_table's result,
-- positional drop_constraint(name, table, "unique"); a custom version table.
describe("convert alembic (autogen fixture: SQLAlchemy names from issue 12's op/sa work)", function()
  it("translates every statement and keeps env.py's version table and transaction mode", function()
    local cfg = converted("autogen", "luamigrate.lua", 3)
    assert.truthy(cfg:find('\nversion_table = "autogen_version"\n', 1, true), cfg)
    assert.truthy(cfg:find("\ntransaction_per_migration = true\n", 1, true), cfg)
  end)

  -- SQLAlchemy has no literal renderer for JSONB, so Alembic's --sql cannot write the audit
  -- log's bulk_insert; luamigrate writes the JSON as a literal.
  parity("autogen", "autogen_version", {
    data = "SELECT action, payload::text FROM audit_log ORDER BY id",
    alembic_sql_fails = 'No literal value renderer is available for literal value "{\'revision\': \'d91e6a0b3f48\'}" with datatype JSONB',
  })
end)

-- An application's migrations (kiosk/, beside alembic.ini): its own TypeDecorator types
-- (impl a class or an instance, __init__ passing arguments on, load_dialect_impl's PostgreSQL
-- branch), a constant, a module attribute, Flask-SQLAlchemy's db imported through a package
-- that re-exports it, sqlalchemy_utils' and oslo.db's types; json.dumps of literal data, a set,
-- a while loop with continue, a decorated upgrade().
describe("convert alembic (appsrc fixture: the application's own imports)", function()
  it("translates every statement, reading the application's modules", function()
    local text = converted("appsrc", "kiosk/migrations/versions/a1c0e5f2b7d4_devices.lua", 2)
    assert.truthy(text:find('sa.Column("uid", postgresql.UUID(), { nullable = false })', 1, true), text)
    assert.truthy(text:find('sa.Column("serial", sa.String({ length = 40 }), { nullable = false })', 1, true), text)
  end)

  parity("appsrc", "kiosk_version", { data = "SELECT title, meta FROM tickets ORDER BY id" })
end)

-- Data migrations that read: bind.execute(...)'s results (scalars().all(), first(), fetchone(),
-- fetchall(), scalar(), scalar_one(), rowcount, iteration with tuple unpacking, row[0],
-- row.name, row._mapping["name"]), Python's truthiness in if/elif/while/and/or/conditional
-- expressions, early returns, the inspector (sa.inspect, Inspector.from_engine) and datetime,
-- uuid, json at run time. Each result is written into the notes table, whose rows must be
-- Alembic's (Python's) exactly.
describe("convert alembic (reader fixture: results, truthiness, inspector, stdlib)", function()
  it("translates every statement", function()
    local text = converted("reader", "migrations/versions/8e4f2b6a0c13_derive_notes.lua", 2)
    assert.truthy(text:find('bind:result(sa.text("SELECT name FROM kinds ORDER BY id")):scalars():all()', 1, true), text)
    assert.truthy(text:find("  while py_bool(n) do\n", 1, true), text)
  end)

  parity("reader", "alembic_version", {
    data = "SELECT k, v FROM notes ORDER BY k",
    reads = "result:scalars(): there is no database in --sql mode, so the rows of this statement cannot be read "
      .. "(SELECT name FROM kinds ORDER BY id)",
  })
end)

describe("convert alembic", function()
  local dir

  before_each(function()
    dir = os.tmpname()
    os.remove(dir)
    cli.mkdir_p(dir)
  end)

  after_each(function() cli.remove(dir) end)

  it("keeps ids, parents, labels, dependencies and messages, and reports full coverage", function()
    local r = cli.run({ "convert", "alembic", FIXTURES .. "/shop", "-o", dir })
    assert.equal(0, r.code, r.err)
    assert.equal("", r.err)
    assert.truthy(r.out:find("Converted 6 revisions into " .. dir .. "/migrations/versions: ", 1, true), r.out)
    assert.truthy(r.out:find("(6 revisions untouched)", 1, true), r.out)
    -- the graph as Alembic reads it from the Python files: the same lines, in the same order
    for _, cmd in ipairs { "history", "heads" } do
      local h = cli.run({ cmd }, { cwd = dir })
      assert.equal(0, h.code, h.err)
      local a = alembic("shop", "", cmd)
      assert.equal(0, a.code, a.err)
      assert.equal(a.out, h.out)
    end
    local text = cli.slurp(dir .. "/migrations/versions/e1f04d6b8a23_concurrent_indexes.lua")
    assert.truthy(text:find('depends_on = "2d8f6c3a1e57"', 1, true), text)
    assert.truthy(text:find("Create Date: 2025-03-10 07:31:48.662050", 1, true), text)
    local cfg = cli.slurp(dir .. "/luamigrate.lua")
    assert.truthy(cfg:find('version_table = "alembic_version"', 1, true), cfg)
  end)

  it("writes what it cannot translate as commented Python and an error, lists it, exits 1", function()
    local src = dir .. "/src"
    cli.mkdir_p(src .. "/alembic/versions")
    cli.write(src .. "/alembic.ini", "[alembic]\nscript_location = alembic\n")
    cli.write(src .. "/alembic/env.py", "from alembic import context\n"
      .. "context.configure(version_table='app_versions', version_table_schema='public')\n")
    cli.write(src .. "/alembic/versions/aa01_first.py", table.concat({
      '"""first"""',
      "from alembic import op",
      "import sqlalchemy as sa",
      "from app.models import helper",
      "revision = 'aa01'",
      "down_revision = None",
      "def upgrade():",
      "    op.execute('CREATE TABLE t (x int)')",
      "    class T:",
      "        pass",
      "    helper(op)",
      "def downgrade():",
      "    op.drop_table('t')",
      "",
    }, "\n"))
    local out = dir .. "/out"
    cli.mkdir_p(out)
    local r = cli.run({ "convert", "alembic", src, "-o", out })
    assert.equal(1, r.code, r.err)
    local file = src .. "/alembic/versions/aa01_first.py"
    assert.truthy(r.err:find(file .. ":9: not converted: 'class' statements\n", 1, true), r.err)
    assert.truthy(r.err:find(file .. ":11: not converted: 'helper' comes from app.models.helper", 1, true), r.err)
    assert.truthy(r.err:find("2 places not converted", 1, true), r.err)
    local text = cli.slurp(out .. "/alembic/versions/aa01_first.lua")
    assert.truthy(text:find("--       class T:\n", 1, true), text)
    assert.truthy(cli.slurp(out .. "/luamigrate.lua"):find('version_table = "public.app_versions"', 1, true))
    -- the revision loads (history works) and fails loudly when run
    local h = cli.run({ "history" }, { cwd = out })
    assert.equal(0, h.code, h.err)
    assert.truthy(h.out:find("<base> -> aa01 (head), first", 1, true), h.out)
    local url, dbname = pg.new_db("conv")
    local u = cli.run({ "--url", url, "upgrade", "head" }, { cwd = out })
    pg.drop_db(dbname)
    assert.equal(1, u.code, u.err)
    assert.truthy(u.err:find("not converted: " .. file .. ":9: 'class' statements", 1, true), u.err)
  end)

  it("reads Flask-Migrate's layout: alembic.ini beside env.py, without script_location", function()
    local src = dir .. "/app/migrations"
    cli.mkdir_p(src .. "/versions")
    cli.write(src .. "/alembic.ini", "[alembic]\n# template used to generate migration files\n")
    cli.write(src .. "/env.py", "from alembic import context\n")
    cli.write(src .. "/versions/cc03_first.py", "revision = 'cc03'\ndown_revision = None\n"
      .. "def upgrade():\n    pass\ndef downgrade():\n    pass\n")
    local out = dir .. "/out"
    cli.mkdir_p(out)
    local r = cli.run({ "convert", "alembic", src, "-o", out })
    assert.equal(0, r.code, r.err)
    assert.truthy(cli.slurp(out .. "/luamigrate.lua"):find('\nscript_location = "migrations"\n', 1, true))
    assert.truthy(io.open(out .. "/migrations/versions/cc03_first.lua"))
  end)

  it("finds the application's modules above the Alembic directory, which may have no alembic.ini", function()
    -- JupyterHub's layout: the application writes alembic.ini when it runs, so the script
    -- location (env.py beside versions/) is what there is to convert
    local src = dir .. "/repo"
    cli.mkdir_p(src .. "/shopapp/db/alembic/versions")
    cli.write(src .. "/shopapp/__init__.py", "")
    cli.write(src .. "/shopapp/fields.py", "import sqlalchemy as sa\n\n\nclass Money(sa.types.TypeDecorator):\n"
      .. "    impl = sa.Numeric(12, 2)\n    cache_ok = True\n")
    cli.write(src .. "/shopapp/db/alembic/env.py", "from alembic import context\n")
    cli.write(src .. "/shopapp/db/alembic/versions/dd04_prices.py", table.concat({
      "from alembic import op",
      "import sqlalchemy as sa",
      "from shopapp.fields import Money",
      "revision = 'dd04'",
      "down_revision = None",
      "def upgrade():",
      "    op.create_table('prices', sa.Column('id', sa.Integer, primary_key=True), sa.Column('amount', Money()))",
      "def downgrade():",
      "    op.drop_table('prices')",
      "",
    }, "\n"))
    local out = dir .. "/out"
    cli.mkdir_p(out)
    local r = cli.run({ "convert", "alembic", src .. "/shopapp/db/alembic", "-o", out })
    assert.equal(0, r.code, r.err)
    assert.truthy(r.out:find("(1 revision untouched)", 1, true), r.out)
    local url, dbname = pg.new_db("conv")
    local u = cli.run({ "--url", url, "upgrade", "head" }, { cwd = out })
    local cols = pg.psql(url, "SELECT column_name || ' ' || data_type || coalesce('(' || numeric_precision || ','"
      .. " || numeric_scale || ')', '') FROM information_schema.columns WHERE table_name = 'prices' ORDER BY 1")
    pg.drop_db(dbname)
    assert.equal(0, u.code, u.err)
    assert.equal("amount numeric(12,2)\nid integer(32,0)", cols)
  end)

  it("keeps an application constant's multi-line text exactly, wherever it is used", function()
    -- CTFd's email templates: module-level strings of the application, several lines each
    local src = dir .. "/repo"
    cli.mkdir_p(src .. "/mailapp/alembic/versions")
    cli.write(src .. "/mailapp/__init__.py", "")
    cli.write(src .. "/mailapp/texts.py", 'BODY = (\n    "Hello {name}!\\n\\n"\n    "  Bye."\n)\n')
    cli.write(src .. "/mailapp/alembic/env.py", "from alembic import context\n")
    cli.write(src .. "/mailapp/alembic/versions/ee05_texts.py", table.concat({
      "from alembic import op",
      "import sqlalchemy as sa",
      "from mailapp.texts import BODY",
      "revision = 'ee05'",
      "down_revision = None",
      "t = sa.table('texts', sa.column('k', sa.String), sa.column('v', sa.Text))",
      "def upgrade():",
      "    op.create_table('texts', sa.Column('k', sa.String(10)), sa.Column('v', sa.Text))",
      "    if True:",
      "        for k, v in [('body', BODY)]:",
      "            op.execute(t.insert().values(k=k, v=v))",
      "def downgrade():",
      "    op.drop_table('texts')",
      "",
    }, "\n"))
    local out = dir .. "/out"
    cli.mkdir_p(out)
    local r = cli.run({ "convert", "alembic", src .. "/mailapp/alembic", "-o", out })
    assert.equal(0, r.code, r.err)
    local url, dbname = pg.new_db("conv")
    local u = cli.run({ "--url", url, "upgrade", "head" }, { cwd = out })
    local v = pg.psql(url, "SELECT v FROM texts")
    pg.drop_db(dbname)
    assert.equal(0, u.code, u.err)
    assert.equal("Hello {name}!\n\n  Bye.", v)
  end)

  it("refuses a file it cannot read, naming file, line and column, and writes nothing", function()
    local src = dir .. "/src"
    cli.mkdir_p(src .. "/m/versions")
    cli.write(src .. "/pyproject.toml", '[project]\nname = "x"\n\n[tool.alembic]\nscript_location = "%(here)s/m"\n')
    cli.write(src .. "/m/versions/bb02_bad.py", "revision = 'bb02'\ndown_revision = None\ndef upgrade():\n    op.execute('x' \"y\" 3)\n")
    local out = dir .. "/out"
    cli.mkdir_p(out)
    local r = cli.run({ "convert", "alembic", src .. "/pyproject.toml", "-o", out })
    assert.equal(2, r.code, r.err)
    assert.truthy(r.err:find(src .. "/m/versions/bb02_bad.py:4:24: expected ')', found '3'", 1, true), r.err)
    assert.equal(nil, io.open(out .. "/luamigrate.lua"))
  end)

  it("refuses to overwrite a project and names usage errors", function()
    cli.write(dir .. "/luamigrate.lua", "")
    local r = cli.run({ "convert", "alembic", FIXTURES .. "/shop", "-o", dir })
    assert.equal(2, r.code)
    assert.truthy(r.err:find(dir .. "/luamigrate.lua already exists; not overwriting it", 1, true), r.err)
    r = cli.run({ "convert", "flyway", "x" })
    assert.equal(2, r.code)
    assert.truthy(r.err:find("unknown source 'flyway': only alembic", 1, true), r.err)
    r = cli.run({ "convert", "alembic", dir .. "/nowhere" })
    assert.equal(2, r.code)
    assert.truthy(r.err:find(dir .. "/nowhere: no such file or directory", 1, true), r.err)
  end)
end)
