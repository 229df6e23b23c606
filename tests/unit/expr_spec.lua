-- Data-migration statements (sa.table, :insert/:update/:delete, sa.select, comparisons,
-- sa.func, ...) compiled in-process: with $n parameters (online) and with literals (--sql).
-- Where SQLAlchemy 1.4 writes the same statement, the literal form is compared with what
-- SQLAlchemy compiles for the Python (literal_binds), which the spec runs.
local sa = require "luamigrate.sa"
local expr = require "luamigrate.expr"
local render = require "luamigrate.render"


local function literal(s) return (expr.compile(s, true, render.value)) end
local function bound(s)
  local sql, params = expr.compile(s, false, render.value)
  return sql, table.pack(table.unpack(params, 1, params.n))
end

local sqlalchemy = require("helpers.sqlalchemy").literal_sql

local t = sa.table("t", sa.column("id"), sa.column("a", sa.Integer), sa.column("b", sa.String))

local SAME = {
  { t:insert():values { a = 1, b = "it's" }, [[t.insert().values(a=1, b="it's")]] },
  { t:insert():values { { a = 2, b = "x" }, { a = 3, b = sa.null() } }, [[t.insert().values([{"a": 2, "b": "x"}, {"a": 3, "b": None}])]] },
  { t:update():where(t.c.a:gt(1), t.c.b:is_(nil)):values { b = sa.func.lower("Y"), a = t.c.a + 10 },
    [[t.update().where(t.c.a > 1, t.c.b.is_(None)).values(b=sa.func.lower("Y"), a=t.c.a + 10)]] },
  { t:update():where(sa.or_(t.c.a:eq(1), sa.and_(t.c.b:in_ { "x", "y" }, sa.not_(t.c.b:like("z%"))))):values { b = "q" },
    [[t.update().where(sa.or_(t.c.a == 1, sa.and_(t.c.b.in_(["x", "y"]), sa.not_(t.c.b.like("z%"))))).values(b="q")]] },
  { t:delete():where(t.c.a:in_(sa.select(t.c.a):where(t.c.a:ge(100)))),
    [[t.delete().where(t.c.a.in_(sa.select(t.c.a).where(t.c.a >= 100)))]] },
  { t:delete():where(t.c.b:eq(nil), t.c.a:between(50, 60)), [[t.delete().where(t.c.b == None, t.c.a.between(50, 60))]] },
  { sa.select(sa.func.count():label("c")):select_from(t), [[sa.select(sa.func.count().label("c")).select_from(t)]] },
  { t:select():order_by(t.c.a), [[t.select().order_by(t.c.a)]] },
  { t:update():where(sa.and_(t.c.a:ne(nil), sa.or_(t.c.a:lt(3), t.c.a:gt(9)))):values { a = (t.c.a * 2) - 1 },
    [[t.update().where(sa.and_(t.c.a != None, sa.or_(t.c.a < 3, t.c.a > 9))).values(a=(t.c.a * 2) - 1)]] },
  { t:update():where(t.c.b:ilike("%x")):values { b = t.c.b .. "x" }, [[t.update().where(t.c.b.ilike("%x")).values(b=t.c.b + "x")]] },
  { t:delete():where(sa.not_(sa.and_(t.c.a:eq(1), t.c.b:eq("x")))), [[t.delete().where(sa.not_(sa.and_(t.c.a == 1, t.c.b == "x")))]] },
  { t:update():values { b = sa.true_() }:where(t.c.a:is_not(nil), t.c.b:ne(sa.null())),
    [[t.update().values(b=sa.true()).where(t.c.a.is_not(None), t.c.b != sa.null())]] },
  { t:update():values { a = sa.cast(5, sa.Integer) }, [[t.update().values(a=sa.cast(5, sa.Integer))]] },
  { t:update():values { b = sa.literal_column("'lit'") }, [[t.update().values(b=sa.literal_column("'lit'"))]] },
}

describe("data-migration statements", function()
  it("write, with literals, what SQLAlchemy writes for the same Python", function()
    local py, got = {}, {}
    for i, c in ipairs(SAME) do
      py[i] = c[2]
      got[i] = literal(c[1])
    end
    assert.same(sqlalchemy(py), got)
  end)

  it("bind every value as $n online, and write literals offline", function()
    local s = t:update():where(t.c.a:eq(7), t.c.b:in_ { "x", "o'k" }):values { b = "new", a = t.c.a + 1 }
    local sql, params = bound(s)
    assert.equal("UPDATE t SET a=(t.a + $1), b=$2 WHERE t.a = $3 AND t.b IN ($4, $5)", sql)
    assert.same({ 1, "new", 7, "x", "o'k", n = 5 }, params)
    assert.equal("UPDATE t SET a=(t.a + 1), b='new' WHERE t.a = 7 AND t.b IN ('x', 'o''k')", literal(s))
    local ins, p2 = bound(t:insert():values { a = 1, b = sa.null() }:returning(t.c.id))
    assert.equal("INSERT INTO t (a, b) VALUES ($1, NULL) RETURNING t.id", ins)
    assert.same({ 1, n = 1 }, p2)
  end)

  it("refuse what SQLAlchemy refuses, at the migration's line", function()
    local ok, err = pcall(function() return literal(t:update():values { c = 1 }) end)
    assert.is_false(ok)
    assert.truthy(err:find("update on sa.table(\"t\"): c is not one of its columns", 1, true), err)
    ok, err = pcall(function() return t.c.nope end)
    assert.is_false(ok)
    assert.truthy(err:find("sa.table(\"t\") has no column nope", 1, true), err)
    ok, err = pcall(function() return literal(t:insert():values { { a = 1 }, { b = "x" } }) end)
    assert.is_false(ok)
    assert.truthy(err:find("row 2 has no value for a", 1, true), err)
    ok, err = pcall(function() return literal(t:update()) end)
    assert.is_false(ok)
    assert.truthy(err:find("nothing to set", 1, true), err)
  end)

  it("serve server_default and index conditions as inline SQL", function()
    assert.equal("now()", render.default_sql(sa.func.now()))
    assert.equal("NULL", render.default_sql(sa.null()))
    assert.equal("lower('X')", render.default_sql(sa.func.lower("X")))
    assert.equal("a > 5 AND b IS NOT NULL", render.sqltext(sa.and_(sa.column("a"):gt(5), sa.column("b"):is_not(nil))))
  end)

  it("take column:op(operator)(value) as SQLAlchemy's column.op(operator)(value)", function()
    local py = { [[t.update().where(t.c.a.op("=")(7)).values(b="x")]], [[t.delete().where(t.c.b.op("~*")("^a"))]] }
    local got = { literal(t:update():where(t.c.a:op("=")(7)):values { b = "x" }),
      literal(t:delete():where(t.c.b:op("~*")("^a"))) }
    assert.same(sqlalchemy(py), got)
    local sql, params = bound(t:delete():where(t.c.a:op("%")(3)))
    assert.equal("DELETE FROM t WHERE t.a % $1", sql)
    assert.same({ 3, n = 1 }, params)
  end)

  it("write a Lua table as JSON for a json or jsonb column, bound online and literal offline", function()
    local postgresql = require "luamigrate.postgresql"
    local j = sa.table("j", sa.column("id", sa.Integer), sa.column("doc", postgresql.JSONB),
      sa.column("raw", sa.JSON()))
    local doc = { z = 1, a = { "x", 2.5, true, require("luamigrate.typed").NULL }, m = { k = "it's" } }
    local sql, params = bound(j:insert():values { id = 1, doc = doc })
    assert.equal("INSERT INTO j (id, doc) VALUES ($1, $2)", sql)
    assert.same({ 1, '{"a": ["x", 2.5, true, null], "m": {"k": "it\'s"}, "z": 1}', n = 2 }, params)
    assert.equal([[UPDATE j SET raw='{"a": [1, 2]}' WHERE j.id = 1]],
      literal(j:update():where(j.c.id:eq(1)):values { raw = { a = { 1, 2 } } }))
    -- a table for a column that is not json, or not typed, is refused naming the column
    local ok, err = pcall(literal, t:insert():values { b = { 1 } })
    assert.is_false(ok)
    assert.truthy(err:find('insert on sa.table("t"), column b: a table value needs a json or jsonb column', 1, true), err)
    ok, err = pcall(literal, j:insert():values { doc = { x = 0 / 0 } })
    assert.is_false(ok)
    assert.truthy(err:find('insert on sa.table("j"), column doc: the value.x is NaN, which JSON cannot hold', 1, true), err)
  end)

  it("spell SQLAlchemy's true() and false() as sa.true_() or sa[\"true\"]()", function()
    assert.equal(sa.true_, sa["true"])
    assert.equal(sa.false_, sa["false"])
    assert.equal("false", render.default_sql(sa["false"]()))
  end)
end)

