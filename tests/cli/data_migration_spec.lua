-- Data migrations in SQLAlchemy Core's style (sa.table, :insert/:update/:delete, sa.select,
-- op.execute, op.get_bind()), against Alembic: the Python's offline SQL (Debian's
-- python3-alembic, values inline) applied with psql on one database, the Lua translation
-- upgraded online on another and through --sql + psql on a third: all three hold the same
-- rows. Then op.get_bind():query's typed values.
local pg = require "helpers.pg"
local cli = require "helpers.cli"

local PY = [[
op.create_table("account",
    sa.Column("id", sa.Integer(), nullable=False),
    sa.Column("email", sa.String(length=100), nullable=False),
    sa.Column("status", sa.String(length=20), nullable=True),
    sa.Column("score", sa.Integer(), server_default="0", nullable=False),
    sa.PrimaryKeyConstraint("id"))
account = sa.table("account", sa.column("id", sa.Integer), sa.column("email", sa.String),
    sa.column("status", sa.String), sa.column("score", sa.Integer))
op.bulk_insert(account, [{"id": 1, "email": "a@x", "status": "new"}, {"id": 2, "email": "b@x", "status": None},
    {"id": 3, "email": "o'c@x", "status": "old"}, {"id": 4, "email": "d@y", "status": "new"}])
op.execute(account.insert().values(id=5, email="e@y", status="vip", score=3))
op.execute(account.insert().values([{"id": 6, "email": "f@y", "status": "x"}, {"id": 7, "email": "g@z", "status": "y"}]))
op.execute(account.update().where(account.c.status == None).values(status="unknown"))
op.execute(account.update().where(sa.and_(account.c.email.like("%@y"), account.c.status != "vip"))
    .values(score=account.c.score + 10, status=sa.func.upper(account.c.status)))
op.execute(account.update().where(sa.or_(account.c.id.in_([1, 3]), account.c.email.startswith("g")))
    .values(status="touched"))
op.execute(account.delete().where(account.c.id.in_(sa.select(account.c.id).where(account.c.score.between(10, 12)))))
op.execute(account.delete().where(sa.not_(account.c.email.contains("@"))))
]]

local LUA = [[
  op.create_table("account",
    sa.Column("id", sa.Integer(), { nullable = false }),
    sa.Column("email", sa.String { length = 100 }, { nullable = false }),
    sa.Column("status", sa.String { length = 20 }, { nullable = true }),
    sa.Column("score", sa.Integer(), { server_default = "0", nullable = false }),
    sa.PrimaryKeyConstraint("id"))
  local account = sa.table("account", sa.column("id", sa.Integer), sa.column("email", sa.String),
    sa.column("status", sa.String), sa.column("score", sa.Integer))
  op.bulk_insert(account, { { id = 1, email = "a@x", status = "new" }, { id = 2, email = "b@x" },
    { id = 3, email = "o'c@x", status = "old" }, { id = 4, email = "d@y", status = "new" } })
  op.execute(account:insert():values { id = 5, email = "e@y", status = "vip", score = 3 })
  op.execute(account:insert():values { { id = 6, email = "f@y", status = "x" }, { id = 7, email = "g@z", status = "y" } })
  op.execute(account:update():where(account.c.status:eq(nil)):values { status = "unknown" })
  op.execute(account:update():where(sa.and_(account.c.email:like("%@y"), account.c.status:ne("vip")))
    :values { score = account.c.score + 10, status = sa.func.upper(account.c.status) })
  op.execute(account:update():where(sa.or_(account.c.id:in_ { 1, 3 }, account.c.email:startswith("g")))
    :values { status = "touched" })
  op.execute(account:delete():where(account.c.id:in_(sa.select(account.c.id):where(account.c.score:between(10, 12)))))
  op.execute(account:delete():where(sa.not_(account.c.email:contains("@"))))
]]

local function alembic_sql(py)
  local tmp = os.tmpname()
  cli.write(tmp, py)
  local p = assert(io.popen(("/usr/bin/python3 %s/tests/helpers/alembic_sql.py < %s 2>&1"):format(cli.src, tmp)))
  local out = p:read("a")
  local ok = p:close()
  os.remove(tmp)
  assert(ok, "alembic failed: " .. out)
  return out
end

local ROWS = "SELECT id, email, status, score FROM account ORDER BY id"

describe("data migrations in SQLAlchemy Core's style", function()
  it("leave the rows Alembic leaves, online and through --sql", function()
    local url_a, db_a = pg.new_db("data_alembic")
    local url_l, db_l = pg.new_db("data_lua")
    local url_s, db_s = pg.new_db("data_sql")
    local dir = cli.project { files = {
      ["migrations/versions/d0001_data.lua"] = cli.revision("d0001", nil, LUA, ""),
    } }
    pg.psql(url_a, alembic_sql(PY))
    local want = pg.psql(url_a, ROWS)
    assert.equal("1|a@x|touched|0\n2|b@x|unknown|0\n3|o'c@x|touched|0\n5|e@y|vip|3\n7|g@z|touched|0", want)
    local r = cli.run({ "--url", url_l, "upgrade", "head" }, { cwd = dir })
    assert.equal(0, r.code, r.err)
    assert.equal(want, pg.psql(url_l, ROWS))
    r = cli.run({ "--url", url_s, "upgrade", "head", "--sql" }, { cwd = dir })
    assert.equal(0, r.code, r.err)
    assert.truthy(r.out:find("UPDATE account SET status=upper(account.status), score=(account.score + 10) "
      .. "WHERE account.email LIKE '%@y' AND account.status != 'vip';", 1, true), r.out)
    pg.psql(url_s, r.out)
    assert.equal(want, pg.psql(url_s, ROWS))
    cli.remove(dir)
    for _, d in ipairs { db_a, db_l, db_s } do pg.drop_db(d) end
  end)

  it("write Lua tables into json and jsonb columns as JSON, online and through --sql", function()
    local body = [[
  local doc = op.create_table("doc", sa.Column("id", sa.Integer(), { primary_key = true }),
    sa.Column("b", postgresql.JSONB()), sa.Column("j", sa.JSON()))
  op.bulk_insert(doc, { { id = 1, b = { z = { 1, 2.5 }, a = "it's" }, j = { z = 1, a = { x = true } } },
    { id = 2, j = { "a/b", typed.NULL } } })
  local d = sa.table("doc", sa.column("id", sa.Integer), sa.column("b", postgresql.JSONB), sa.column("j", sa.JSON))
  op.execute(d:insert():values { id = 3, b = { n = 0 } })
  op.execute(d:update():where(d.c.id:eq(2)):values { b = { 3, { k = "v" } } })
]]
    local dir = cli.project { files = {
      ["migrations/versions/j0001_json.lua"] = cli.revision("j0001", nil,
        '  local typed = require "luamigrate.typed"\n' .. body, ""),
    } }
    local want = '1|{"a": "it\'s", "z": [1, 2.5]}|{"a": {"x": true}, "z": 1}\n'
      .. '2|[3, {"k": "v"}]|["a/b", null]\n3|{"n": 0}|'
    local url, db = pg.new_db("data_json")
    local r = cli.run({ "--url", url, "upgrade", "head" }, { cwd = dir })
    assert.equal(0, r.code, r.err)
    assert.equal(want, pg.psql(url, "SELECT id, b, j FROM doc ORDER BY id"))
    local url_s, db_s = pg.new_db("data_json_sql")
    r = cli.run({ "--url", url_s, "upgrade", "head", "--sql" }, { cwd = dir })
    assert.equal(0, r.code, r.err)
    assert.truthy(r.out:find([[INSERT INTO doc (id, b) VALUES (3, '{"n": 0}');]], 1, true), r.out)
    pg.psql(url_s, r.out)
    assert.equal(want, pg.psql(url_s, "SELECT id, b, j FROM doc ORDER BY id"))
    cli.remove(dir)
    pg.drop_db(db_s)
    pg.drop_db(db)
    -- a table for a column nothing types as json is refused, naming the row, column and line
    dir = cli.project { files = {
      ["migrations/versions/j0002_bad.lua"] = cli.revision("j0002", nil, [[
  op.execute("CREATE TABLE bad (id int, doc jsonb)")
  op.bulk_insert("bad", { { id = 1, doc = {} }, { id = 2, doc = { x = 1 } } })
]], ""),
    } }
    url, db = pg.new_db("data_json_bad")
    r = cli.run({ "--url", url, "upgrade", "head" }, { cwd = dir })
    assert.equal(1, r.code, r.err)
    assert.truthy(r.err:find("j0002_bad.lua:%d+: op.bulk_insert into bad: row 1, column doc: a table value "
      .. "needs a json or jsonb column, and the table does not type it"), r.err)
    assert.equal("t", pg.psql(url, "SELECT to_regclass('bad') IS NULL"))
    cli.remove(dir)
    pg.drop_db(db)
  end)

  it("op.get_bind():query returns typed values, and takes sa statements", function()
    local url, db = pg.new_db("data_typed")
    local dir = cli.project { files = {
      ["migrations/versions/q0001_query.lua"] = cli.revision("q0001", nil, [==[
  op.execute([[CREATE TABLE v (id int, big bigint, ok boolean, price numeric(12, 4), ratio float8,
    tags text[], grid int[], flags boolean[], doc jsonb, j json, note text, nums numeric[])]])
  op.execute([[INSERT INTO v VALUES (1, 9007199254740993, true, 12.3400, 0.5, '{a,"b c",NULL,"q\"d"}',
    '{{1,2},{3,4}}', '{t,f}', '{"k": [1, null, "x"], "n": null, "f": 1.5}', '[1, 2]', NULL, '{1.10,2}')]])
  local v = sa.table("v", sa.column("id"), sa.column("big"), sa.column("ok"), sa.column("price"),
    sa.column("ratio"), sa.column("tags"), sa.column("grid"), sa.column("flags"), sa.column("doc"),
    sa.column("j"), sa.column("note"), sa.column("nums"))
  local r = op.get_bind():query(v:select():where(v.c.id:eq(1)))[1]
  local function show(x)
    if type(x) == "table" and getmetatable(x) == nil then
      local keys = {}
      for k in pairs(x) do keys[#keys + 1] = k end
      table.sort(keys, function(a, b) return tostring(a) < tostring(b) end)
      local parts = {}
      for _, k in ipairs(keys) do parts[#parts + 1] = tostring(k) .. "=" .. show(x[k]) end
      return "{" .. table.concat(parts, ",") .. "}"
    end
    return math.type(x) or type(x) == "string" and ("'" .. x .. "'") or tostring(x)
  end
  local out = {}
  for _, k in ipairs { "id", "big", "ok", "price", "ratio", "tags", "grid", "flags", "doc", "j", "note", "nums" } do
    out[#out + 1] = k .. ":" .. (k == "big" and tostring(r.big) .. "/" or "") .. show(r[k])
  end
  op.execute("CREATE TABLE seen (s text)")
  op.get_bind():execute(sa.table("seen", sa.column("s")):insert():values { s = table.concat(out, " ") })
  local n = op.get_bind():query(sa.text("SELECT count(*) AS n FROM v WHERE id = :id"), { id = 1 })[1].n
  op.get_bind():execute(sa.table("seen", sa.column("s")):insert():values { s = "count " .. n })
]==], ""),
    } }
    local r = cli.run({ "--url", url, "upgrade", "head" }, { cwd = dir })
    assert.equal(0, r.code, r.err)
    assert.equal("id:integer big:9007199254740993/integer ok:true price:'12.3400' ratio:float "
      .. "tags:{1='a',2='b c',3=NULL,4='q\"d'} grid:{1={1=integer,2=integer},2={1=integer,2=integer}} "
      .. "flags:{1=true,2=false} doc:{f=float,k={1=integer,2=NULL,3='x'}} j:{1=integer,2=integer} note:nil "
      .. "nums:{1='1.10',2='2'}\ncount 1",
      pg.psql(url, "SELECT s FROM seen ORDER BY s DESC"))
    cli.remove(dir)
    pg.drop_db(db)
  end)

  it("reads back random text and integer arrays exactly as they were written", function()
    -- the array parser against the server's own output: random elements with quotes,
    -- backslashes, braces, commas, spaces, "NULL" strings, empty strings and NULLs, in one
    -- and two dimensions (LM_ARRAY_SEED picks another run)
    local url, db = pg.new_db("data_arrays")
    local seed = tonumber(os.getenv("LM_ARRAY_SEED") or "") or 12
    local dir = cli.project { files = {
      ["migrations/versions/a0001_arrays.lua"] = cli.revision("a0001", nil, ([==[
  math.randomseed(%d)
  local typed = require "luamigrate.typed"
  local PIECES = { "a", "\"", "\\", "{", "}", ",", " ", "NULL", "é", "x y", "'", "" }
  local function word()
    local w = {}
    for _ = 1, math.random(0, 4) do w[#w + 1] = PIECES[math.random(#PIECES)] end
    return table.concat(w)
  end
  local function literal(list)
    local parts = {}
    for i, v in ipairs(list) do
      parts[i] = v == typed.NULL and "NULL" or ('"' .. v:gsub('[\\"]', "\\%%0") .. '"')
    end
    return "{" .. table.concat(parts, ",") .. "}"
  end
  op.execute("CREATE TABLE arr (id int, t text[], g int[], m text[])")
  local want = {}
  for id = 1, 200 do
    local t, g = {}, {}
    for i = 1, math.random(0, 6) do t[i] = math.random(5) == 1 and typed.NULL or word() end
    for i = 1, math.random(0, 6) do g[i] = math.random(-1000000, 1000000) end
    local m = { { word(), word() }, { word(), typed.NULL } }
    want[id] = { t = t, g = g, m = m }
    op.get_bind():execute("INSERT INTO arr VALUES ($1, $2, $3, $4)", id, literal(t),
      "{" .. table.concat(g, ",") .. "}", "{" .. literal(m[1]) .. "," .. literal(m[2]) .. "}")
  end
  local bad = 0
  local function same(a, b)
    if type(a) ~= type(b) then return false end
    if type(a) ~= "table" or a == typed.NULL or b == typed.NULL then return a == b end
    if #a ~= #b then return false end
    for i = 1, #a do if not same(a[i], b[i]) then return false end end
    return true
  end
  for _, r in ipairs(op.get_bind():query("SELECT id, t, g, m FROM arr ORDER BY id")) do
    local w = want[r.id]
    if not (same(w.t, r.t) and same(w.g, r.g) and same(w.m, r.m)) then bad = bad + 1 end
  end
  op.execute("CREATE TABLE verdict (bad int)")
  op.get_bind():execute("INSERT INTO verdict VALUES ($1)", bad)
]==]):format(seed), ""),
    } }
    local r = cli.run({ "--url", url, "upgrade", "head" }, { cwd = dir })
    assert.equal(0, r.code, r.err)
    assert.equal("0", pg.psql(url, "SELECT bad FROM verdict"))
    assert.equal("200", pg.psql(url, "SELECT count(*) FROM arr"))
    cli.remove(dir)
    pg.drop_db(db)
  end)
end)
