-- What converted Alembic migrations run on, used by hand-written Lua migrations:
-- op.get_bind():result (SQLAlchemy's CursorResult and Row), sa.inspect (the Inspector over
-- pg_catalog) and luamigrate.py (datetime, uuid, json). Each migration writes what it saw
-- into a table; the rows are what SQLAlchemy and Python give for the same calls. In --sql
-- mode reading is an error naming the statement, and the database is left unchanged.
local pg = require "helpers.pg"
local cli = require "helpers.cli"

-- Runs `upgrade ARGS` (default head) of one revision holding body on a fresh database;
-- returns the result and the output of `query` on the database afterwards.
local function upgrade(body, args, query)
  local url, db = pg.new_db("conv_rt")
  local dir = cli.project { files = {
    ["migrations/versions/r0001_rt.lua"] = cli.revision("r0001", nil, body, ""),
  } }
  local r = cli.run({ "--url", url, "upgrade", table.unpack(args or { "head" }) }, { cwd = dir })
  local out = query and pg.psql(url, query)
  cli.remove(dir)
  pg.drop_db(db)
  return r, out
end

local SEEN = "SELECT s FROM seen ORDER BY i"

local SETUP = [==[
  op.execute([[CREATE TABLE k (id serial PRIMARY KEY, name text NOT NULL UNIQUE, rank int CHECK (rank >= 0),
    tags text[], doc jsonb)]])
  op.execute([[INSERT INTO k (name, rank, tags, doc) VALUES ('a', 1, '{x,y}', '{"n": 1}'), ('b', NULL, NULL, NULL),
    ('c', 3, '{}', '[]')]])
  op.execute("CREATE TABLE seen (i serial, s text)")
  local function see(s) op.get_bind():execute("INSERT INTO seen (s) VALUES ($1)", tostring(s)) end
]==]

describe("op.get_bind():result", function()
  it("has SQLAlchemy's result methods, and rows by position, name and _mapping", function()
    local r, rows = upgrade(SETUP .. [==[
  local bind = op.get_bind()
  local res = bind:result("SELECT id, name, rank, tags, doc FROM k ORDER BY id")
  see(table.concat(res:keys(), ","))
  see(table.concat(bind:result("SELECT 1 AS a, 2 AS b"):first():keys(), ","))
  local first = res:fetchone()
  see(first[1] .. " " .. first.name .. " " .. first._mapping.rank .. " " .. #first .. " " .. first.tags[2]
    .. " " .. first.doc.n)
  local rest = res:fetchall()
  see(#rest .. " " .. tostring(rest[1].rank) .. " " .. tostring(rest[1][3]) .. " " .. #res:fetchall())
  local id, name = table.unpack(rest[2])
  see(id .. "=" .. name .. " " .. tostring(rest[2]))
  see(bind:result("SELECT count(*) FROM k"):scalar() .. " " .. bind:result("SELECT max(rank) FROM k"):scalar_one())
  see(tostring(bind:result("SELECT id FROM k WHERE false"):first()) .. " "
    .. tostring(bind:result("SELECT id FROM k WHERE false"):scalar()))
  see(table.concat(bind:result("SELECT name FROM k ORDER BY id"):scalars():all(), ","))
  local names = {}
  for _, row in ipairs(bind:result(sa.text("SELECT name FROM k WHERE id > :n ORDER BY id"), { n = 1 })) do
    names[#names + 1] = row.name
  end
  see(table.concat(names, ","))
  local upd = bind:result("UPDATE k SET rank = coalesce(rank, 0) + 1")
  see("rowcount " .. upd.rowcount)
  local ins = bind:result("INSERT INTO k (name) VALUES ('d') RETURNING id, name")
  see("returning " .. ins:one().name .. " " .. ins.rowcount)
  local ok, err = pcall(function() return bind:result("SELECT id FROM k"):one() end)
  see(tostring(ok) .. " " .. err:match("MultipleResultsFound.*"))
  ok, err = pcall(function() return bind:result("SELECT id FROM k WHERE false"):scalar_one() end)
  see(tostring(ok) .. " " .. err:match("NoResultFound.*"))
  ok, err = pcall(function() return first.nope end)
  see(tostring(ok) .. " " .. err:match("AttributeError.*"))
  ok, err = pcall(function() return first[6] end)
  see(tostring(ok) .. " " .. err:match("IndexError.*"))
]==], nil, SEEN)
    assert.equal(0, r.code, r.err)
    assert.equal(table.concat({
      "id,name,rank,tags,doc",
      "a,b",
      "1 a 1 5 y 1",
      "2 nil nil 0",
      "3=c (3, 'c', 3, [], [])",
      "3 3",
      "nil nil",
      "a,b,c",
      "b,c",
      "rowcount 3",
      "returning d 1",
      "false MultipleResultsFound: Multiple rows were found when exactly one was required",
      "false NoResultFound: No row was found when one was required",
      "false AttributeError: the row has no column \"nope\" (its columns: id, name, rank, tags, doc)",
      "false IndexError: tuple index out of range (row[5] of 5 columns)",
    }, "\n"), rows)
  end)

  it("keeps the values after a NULL in :scalars(): #, fetchmany, fetchall, all, first", function()
    local r, rows = upgrade(SETUP .. [==[
  local bind = op.get_bind()
  local q = "SELECT rank FROM k ORDER BY id"
  local res = bind:result(q):scalars()
  see(#res)
  local two = res:fetchmany(2)
  local rest = res:fetchall()
  see(#two .. " " .. tostring(two[1]) .. " " .. tostring(two[2]) .. " | " .. #rest .. " " .. tostring(rest[1])
    .. " | " .. #res)
  local all = bind:result(q):scalars():all()
  see(#all .. " " .. tostring(all[3]) .. " " .. select("#", table.unpack(all)))
  see(tostring(bind:result("SELECT rank FROM k WHERE rank IS NULL"):scalars():first()))
]==], nil, SEEN)
    assert.equal(0, r.code, r.err)
    assert.equal(table.concat({ "3", "2 1 nil | 1 3 | 0", "3 3 3", "nil" }, "\n"), rows)
  end)

  it("writes the statement in --sql mode and refuses to read its rows, naming it", function()
    local r = upgrade([==[
  local res = op.get_bind():result("UPDATE k SET rank = 0")
  local _ = res.rowcount
]==], { "--sql", "head" })
    assert.equal(1, r.code, r.err)
    assert.truthy(r.out:find("UPDATE k SET rank = 0;", 1, true), r.out)
    assert.truthy(r.err:find("r0001_rt.lua:10: result.rowcount: there is no database in --sql mode (UPDATE k SET rank = 0)",
      1, true), r.err)
  end)
end)

describe("sa.inspect", function()
  it("reads tables, columns, keys, indexes, constraints and enums as SQLAlchemy's inspector", function()
    local r, rows = upgrade(SETUP .. [==[
  op.execute("CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy')")
  op.execute([[CREATE TABLE item (id bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    k_id int REFERENCES k (id) ON DELETE CASCADE, label varchar(40) DEFAULT 'x', m mood)]])
  op.execute("CREATE INDEX ix_item_label ON item (label) WHERE label <> ''")
  op.execute("CREATE INDEX ix_item_lower ON item (lower(label))")
  local insp = sa.inspect(op.get_bind().engine)
  see(table.concat(insp:get_table_names(), ","))
  see(tostring(insp:has_table("item")) .. " " .. tostring(insp:has_table("nope")) .. " "
    .. tostring(insp:has_table("item", { schema = "pg_catalog" })))
  local cols = {}
  for _, c in ipairs(insp:get_columns("item")) do
    cols[#cols + 1] = ("%s %s %s %s %s"):format(c.name, c.type, tostring(c.nullable), tostring(c.default),
      tostring(c.autoincrement))
  end
  see(table.concat(cols, "; "))
  local pk = insp:get_pk_constraint("item")
  see(pk.name .. " " .. table.concat(pk.constrained_columns, ","))
  local fk = insp:get_foreign_keys("item")[1]
  see(("%s %s(%s) -> %s(%s) %s"):format(fk.name, "item", table.concat(fk.constrained_columns, ","),
    fk.referred_table, table.concat(fk.referred_columns, ","), fk.options.ondelete))
  local ix = {}
  for _, i in ipairs(insp:get_indexes("item")) do
    ix[#ix + 1] = i.name .. ":" .. tostring(i.column_names[1]) .. ":" .. tostring(i.dialect_options.postgresql_where)
  end
  see(table.concat(ix, " "))
  see(insp:get_unique_constraints("k")[1].name .. " " .. insp:get_check_constraints("k")[1].sqltext)
  local e = insp:get_enums()[1]
  see(e.name .. " " .. e.schema .. " " .. table.concat(e.labels, "|"))
  local ok, err = pcall(function() return insp:get_columns("nope") end)
  see(tostring(ok) .. " " .. err:match("NoSuchTableError.*"))
]==], nil, SEEN)
    assert.equal(0, r.code, r.err)
    assert.equal(table.concat({
      -- the version table is there, luamigrate's own tables beside it are not
      "item,k,luamigrate_version,seen",
      "true false false",
      "id bigint false nil true; k_id integer true nil false; label character varying(40) true "
        .. "'x'::character varying false; m mood true nil false",
      "item_pkey id",
      "item_k_id_fkey item(k_id) -> k(id) CASCADE",
      "ix_item_label:label:((label)::text <> ''::text) ix_item_lower:nil:nil",
      "k_name_key rank >= 0",
      "mood public sad|ok|happy",
      "false NoSuchTableError: nope",
    }, "\n"), rows)
  end)

  it("reads a table's keys and indexes in one query each, and a NOT VALID check as SQLAlchemy", function()
    local r, rows = upgrade(SETUP .. [==[
  op.execute([[CREATE TABLE p (a int, b int, c int, PRIMARY KEY (a, b), UNIQUE (b, c))]])
  op.execute([[CREATE TABLE ch (x int, y int, z int, CONSTRAINT ch_p FOREIGN KEY (y, x) REFERENCES p (a, b))]])
  op.execute("CREATE INDEX ix_ch ON ch (z, lower(x::text), y)")
  op.execute("ALTER TABLE ch ADD CONSTRAINT ch_z CHECK (z > 0) NOT VALID")
  local bind = op.get_bind()
  local queries = 0
  local counting = setmetatable({}, { __index = function(_, k)
    if k == "query" then return function(_, ...) queries = queries + 1; return bind:query(...) end end
    local v = bind[k]
    if type(v) == "function" then return function(_, ...) return v(bind, ...) end end
    return v
  end })
  local insp = sa.inspect(counting)
  local function count(f)
    queries = 0
    local v = f()
    return v, queries
  end
  local fk, nf = count(function() return insp:get_foreign_keys("ch")[1] end)
  see(table.concat(fk.constrained_columns, ",") .. " -> " .. table.concat(fk.referred_columns, ",") .. " " .. nf)
  local pk, np = count(function() return insp:get_pk_constraint("p") end)
  local uq, nu = count(function() return insp:get_unique_constraints("p")[1] end)
  see(table.concat(pk.constrained_columns, ",") .. " " .. np .. " " .. table.concat(uq.column_names, ",") .. " " .. nu)
  local ix, ni = count(function() return insp:get_indexes("ch")[1] end)
  see(("%s %s,%s,%s %s %d"):format(ix.name, tostring(ix.column_names[1]), tostring(ix.column_names[2]),
    tostring(ix.column_names[3]), table.concat(ix.expressions, "|"), ni))
  local ck = insp:get_check_constraints("ch")[1]
  see(ck.name .. " " .. ck.sqltext .. " " .. tostring(ck.dialect_options and ck.dialect_options.not_valid))
]==], nil, SEEN)
    assert.equal(0, r.code, r.err)
    assert.equal(table.concat({
      "y,x -> a,b 2",
      "a,b 2 b,c 2",
      "ix_ch z,nil,y z|lower(x::text)|y 2",
      "ch_z z > 0 true",
    }, "\n"), rows)
  end)

  it("fails in --sql mode, as Alembic's offline mode has no database to inspect", function()
    local r, exists = upgrade([==[
  op.execute("CREATE TABLE before_inspect (id int)")
  local tables = sa.inspect(op.get_bind()):get_table_names()
]==], { "--sql", "head" }, "SELECT to_regclass('before_inspect') IS NOT NULL")
    assert.equal(1, r.code, r.err)
    assert.truthy(r.err:find("r0001_rt.lua:10: upgrade  -> r0001 failed: sa.inspect: there is no database to inspect "
      .. "in --sql mode", 1, true),
      r.err)
    assert.equal("f", exists)
  end)
end)

describe("luamigrate.py", function()
  it("has Python's datetime, timedelta, uuid and json for converted migrations", function()
    local r, rows = upgrade([==[
  op.execute("CREATE TABLE seen (i serial, s text)")
  local function see(s) op.get_bind():execute("INSERT INTO seen (s) VALUES ($1)", tostring(s)) end
  local py = require "luamigrate.py"
  local dt, utc = py.datetime.datetime, py.datetime.timezone.utc
  local t = dt(2024, 2, 29, 23, 59, 58, 120, { tzinfo = utc })
  see(tostring(t) .. " | " .. t:isoformat() .. " | " .. tostring(t:replace { tzinfo = false }))
  local later = t + py.datetime.timedelta { seconds = 3 }
  see(later:isoformat() .. " | " .. tostring(later - t) .. " | " .. tostring(later > t) .. " | " .. later:strftime("%Y%m%d"))
  see(tostring(py.datetime.timedelta { days = -1, seconds = 5 }) .. " | " .. tostring(py.datetime.date(2020, 1, 2)))
  see(tostring(dt.fromisoformat("2018-03-21 14:27:17.466841")))
  local ok, err = pcall(dt, 2023, 2, 29)
  see(tostring(ok) .. " " .. err:match("ValueError.*"))
  ok, err = pcall(function() return t._replace end)
  see(tostring(ok) .. " " .. err:match("AttributeError.*"))
  local u = py.uuid.uuid4()
  see(#tostring(u) .. " " .. tostring(tostring(u):match("^%x+%-%x+%-4%x+%-[89ab]%x+%-%x+$") ~= nil) .. " " .. #u.hex)
  see(py.json.dumps { b = { 1, 2.5, "x" }, a = true } .. " | " .. py.json.loads('{"k": [1, null]}').k[1])
]==], nil, SEEN)
    assert.equal(0, r.code, r.err)
    assert.equal(table.concat({
      "2024-02-29 23:59:58.000120+00:00 | 2024-02-29T23:59:58.000120+00:00 | 2024-02-29 23:59:58.000120",
      "2024-03-01T00:00:01.000120+00:00 | 0:00:03 | true | 20240301",
      "-1 day, 0:00:05 | 2020-01-02",
      "2018-03-21 14:27:17.466841",
      "false ValueError: day must be in 1..28, got 29",
      "false AttributeError: 'datetime.datetime' object has no attribute '_replace'",
      "36 true 32",
      '{"a": true, "b": [1, 2.5, "x"]} | 1',
    }, "\n"), rows)
  end)
end)

-- A revision written in Python, converted in-process (luamigrate.convert) and run by the
-- binary: what the seen table holds is what Python prints for the same code.
local function converted_run(py_body)
  local src = table.concat({
    '"""python semantics', "", "Revision ID: r0001", "Revises:", "Create Date: 2026-01-01", '"""',
    "from alembic import op", "import datetime", "import sqlalchemy as sa", "",
    'revision = "r0001"', "down_revision = None", "", "",
    "def upgrade():", "    bind = op.get_bind()",
    '    bind.execute(sa.text("CREATE TABLE seen (i serial, s text)"))', "",
    "    def see(s):", '        bind.execute(sa.text("INSERT INTO seen (s) VALUES (:s)"), {"s": s})', "",
    py_body, "", "", "def downgrade():", "    pass", "",
  }, "\n")
  local r = require("luamigrate.convert").revision(src, "r0001_py.py")
  assert.same({}, r.notes)
  local url, db = pg.new_db("conv_py")
  local dir = cli.project { files = { ["migrations/versions/r0001_py.lua"] = r.text } }
  local res = cli.run({ "--url", url, "upgrade", "head" }, { cwd = dir })
  local rows = res.code == 0 and pg.psql(url, SEEN)
  local version = pg.psql(url, "SELECT count(*) FROM luamigrate_version")
  cli.remove(dir)
  pg.drop_db(db)
  return res, rows, version, r.text
end

describe("converted Python at run time", function()
  it("keeps every value of a result's scalars after a NULL, in lists, len() and loops", function()
    local r, rows, _, text = converted_run([==[
    bind.execute(sa.text("CREATE TABLE k (id int, rank int)"))
    bind.execute(sa.text("INSERT INTO k VALUES (1, 1), (2, NULL), (3, 3), (4, NULL)"))
    ranks = bind.execute(sa.text("SELECT rank FROM k ORDER BY id")).scalars().all()
    see("%d %s %r" % (len(ranks), ranks, ranks[2]))
    grown = list(ranks)
    grown.append(None)
    grown.append(5)
    see("%d %s" % (len(grown), grown))
    seen = []
    for r in bind.execute(sa.text("SELECT rank FROM k ORDER BY id")).scalars():
        seen.append(str(r))
    see(",".join(seen))
    res = bind.execute(sa.text("SELECT rank FROM k ORDER BY id")).scalars()
    first = res.fetchmany(2)
    see("%s %s" % (first, res.fetchall()))]==])
    assert.equal(0, r.code, r.err .. "\n" .. text)
    assert.equal(table.concat({ "4 [1, None, 3, None] 3", "6 [1, None, 3, None, None, 5]", "1,None,3,None",
      "[1, None] [3, None]" }, "\n"), rows)
  end)

  it("formats with %, str() and f-strings as Python writes values", function()
    local r, rows, _, text = converted_run([==[
    see("%s|%r|%d|%f|%.2f|%5s|%%|%s|%s" % ([1, 'a'], "it's", 2.9, 1, 3.14159, "ab", None, True))
    x = 2.5
    see(f"{x} {None} {[1.0, 'b']} {x / 5} {x!r} {'q'!r}")
    see("%x %#o %05d %+d %e %g" % (-31, 8, 42, 7, 12345.678, 0.0001))
    see(str(1.0) + " " + str(1e-05) + " " + str(0.1) + " " + str(7 / 2) + " " + str(7 // 2) + " "
        + str(-7 % 3) + " " + str(7 % -3) + " " + str(2 ** 10) + " " + str(2 ** -1) + " " + str(1 / 3))
    n = 3
    see("-" * n + str([0] * 2) + "ab" * 0)
    fmt = "%s=%d"
    see(fmt % ("k", 7.9))]==])
    assert.equal(0, r.code, r.err .. "\n" .. text)
    assert.equal(table.concat({
      "[1, 'a']|\"it's\"|2|1.000000|3.14|   ab|%|None|True",
      "2.5 None [1.0, 'b'] 0.5 2.5 'q'",
      "-1f 0o10 00042 +7 1.234568e+04 0.0001",
      "1.0 1e-05 0.1 3.5 3 2 -2 1024 0.5 0.3333333333333333",
      "---[0, 0]",
      "k=7",
    }, "\n"), rows)
  end)

  it("raises Python's errors: ZeroDivisionError, and an assert's message only when it fails", function()
    local r, _, version = converted_run([==[
    n = 0

    def boom():
        raise Exception("the message was evaluated")
    assert n == 0, boom()
    see(str(10 / (n + 1)))
    assert n == 1, "n is %d, not 1" % n]==])
    assert.equal(1, r.code)
    assert.truthy(r.err:find("AssertionError: n is 0, not 1", 1, true), r.err)
    assert.falsy(r.err:find("evaluated", 1, true), r.err)
    assert.equal("0", version)
    local z = converted_run("    d = 0\n    see(str(1 / d))")
    assert.equal(1, z.code)
    assert.truthy(z.err:find("ZeroDivisionError: division by zero", 1, true), z.err)
  end)

  it("has Python's datetime arithmetic and refuses an ISO string Python refuses", function()
    local r, rows, _, text = converted_run([==[
    d = datetime.date(2020, 2, 28)
    see(str(d + datetime.timedelta(days=2)) + " " + str(datetime.timedelta(hours=25) + d) + " "
        + str(datetime.date(2020, 3, 1) - d))
    see(str(datetime.datetime(2020, 1, 2) - datetime.datetime(2020, 1, 1, 12)))
    see(repr(datetime.datetime(2020, 1, 2)) + " " + repr(datetime.timedelta(days=-1, seconds=5)))
    see(str(datetime.datetime.fromisoformat("2018-03-21T10:00:05")))]==])
    assert.equal(0, r.code, r.err .. "\n" .. text)
    assert.equal(table.concat({
      "2020-03-01 2020-02-29 2 days, 0:00:00",
      "12:00:00",
      "datetime.datetime(2020, 1, 2, 0, 0) datetime.timedelta(days=-1, seconds=5)",
      "2018-03-21 10:00:05",
    }, "\n"), rows)
    for _, bad in ipairs { "2018-03-21garbage", "2018-03-21T1:00" } do
      local f = converted_run(('    see(str(datetime.datetime.fromisoformat("%s")))'):format(bad))
      assert.equal(1, f.code)
      assert.truthy(f.err:find(("ValueError: Invalid isoformat string: '%s'"):format(bad), 1, true), f.err)
    end
  end)
end)

describe("sa.Table in a data migration", function()
  it("has the columns, statements and sa.select(...):distinct() of sa.table, as in SQLAlchemy", function()
    local r, rows = upgrade(SETUP .. [==[
  local k = sa.Table("k", sa.MetaData(), sa.Column("id", sa.Integer(), { primary_key = true }),
    sa.Column("name", sa.Text()), sa.Column("rank", sa.Integer()))
  op.execute(k:update():where(k.c.rank:eq(nil)):values({ rank = 0 }))
  op.execute(k:insert():values({ name = "d", rank = 1 }))
  local bind = op.get_bind()
  local ranks = {}
  for _, row in ipairs(bind:result(sa.select(k.c.rank):distinct():order_by(k.c.rank))) do
    ranks[#ranks + 1] = row.rank
  end
  see(table.concat(ranks, ","))
  see(#bind:result(sa.select(k)):fetchall() .. " " .. #bind:result(k:select()):fetchall())
  op.execute(k:delete():where(k.c.name:eq("d")))
]==], nil, SEEN .. "; SELECT count(*) FROM k")
    assert.equal(0, r.code, r.err)
    assert.equal("0,1,3\n4 4\n3", rows)
  end)
end)

describe("luamigrate.helpers.sync_enum", function()
  -- The expected rows are what alembic_postgresql_enum 1.x itself leaves for the same calls
  -- (measured with Alembic 1.8.1; the library is not a Debian package, so it is not run here).
  it("changes an enum's values as alembic_postgresql_enum's sync_enum_values does, defaults and renames kept",
    function()
      local r, rows = upgrade([==[
  local sync_enum = require "luamigrate.helpers.sync_enum"
  op.execute("CREATE TYPE st AS ENUM ('new', 'old', 'gone')")
  op.execute("CREATE TABLE job (id int PRIMARY KEY, s st NOT NULL DEFAULT 'old', tags st[] DEFAULT '{old}')")
  op.execute("CREATE INDEX job_new ON job (id) WHERE s = 'new'")
  op.execute("INSERT INTO job VALUES (1, 'new', '{new,old}'), (2, 'old', '{}')")
  sync_enum.sync_enum_values("public", "st", { "fresh", "old", "done" }, {
    sync_enum.TableReference("job", "s", { existing_server_default = "'old'::st" }),
    sync_enum.TableReference { table_name = "job", column_name = "tags", column_type = sync_enum.ColumnType.ARRAY,
      existing_server_default = "'{old}'::st[]" },
  }, { enum_values_to_rename = { { "new", "fresh" } } })
  -- the old-style {table, column[, column_type]} reads the column's default from the database
  sync_enum.sync_enum_values { enum_schema = "public", enum_name = "st", new_values = { "fresh", "old", "done", "x" },
    affected_columns = { { "job", "s" }, { "job", "tags", sync_enum.ColumnType.ARRAY } } }
]==], nil, table.concat({
        "SELECT string_agg(e.enumlabel, ',' ORDER BY e.enumsortorder) FROM pg_enum e JOIN pg_type t ON t.oid = e.enumtypid"
          .. " WHERE t.typname = 'st'",
        "SELECT string_agg(id || ':' || s || ':' || tags::text, ' ' ORDER BY id) FROM job",
        "SELECT string_agg(column_name || '=' || column_default, ' ' ORDER BY column_name) FROM information_schema.columns"
          .. " WHERE table_name = 'job' AND column_default IS NOT NULL",
        "SELECT count(*) FROM pg_class WHERE relname = 'job_new'",
        "SELECT count(*) FROM pg_type WHERE typname = 'st_old'",
        "SELECT count(*) FROM pg_proc WHERE proname LIKE 'new_old%'",
      }, "; "))
      assert.equal(0, r.code, r.err)
      assert.equal(table.concat({
        "fresh,old,done,x",
        "1:fresh:{fresh,old} 2:old:{}",
        "s='old'::st tags='{old}'::st[]",
        -- as with the library: the partial index comparing with the old type goes with the
        -- temporary operator (DROP FUNCTION ... CASCADE)
        "0",
        "0",
        "0",
      }, "\n"), rows)
    end)
end)
