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
