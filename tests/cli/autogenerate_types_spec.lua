-- Autogenerate for user-defined types: domains, composite types and range types registered
-- in schema.lua (md:register) are created before the tables whose columns use them (a
-- domain over an enum after the enum), altered in place where PostgreSQL can (ALTER DOMAIN,
-- ALTER TYPE ... ATTRIBUTE) with the rows in those columns kept, a domain's new base type or
-- a composite type's reordered attributes swapped in over rows (the enum's rename-swap),
-- dropped and created when nothing uses them, refused with a message naming the column when
-- nothing else can be done, and dropped after the tables. Each step's migration is checked
-- in pg_type and friends, `check` is clean after it, and its downgrade restores exactly the
-- schema before.
local pg = require "helpers.pg"
local cli = require "helpers.cli"
local ag = require "helpers.autogen"

local schema_lines = ag.schema_lines

local TYPES_V1 = [[
local md = sa.MetaData()
local mood = sa.Enum("sad", "ok", "happy", { name = "mood" })
local posint = sa.Domain("posint", sa.Integer, { check = "VALUE > 0" })
local address = sa.CompositeType("address", { { "street", sa.Text }, { "city", "text" } })
local floatrange = sa.RangeType("floatrange", "float8", { subtype_diff = "float8mi" })
md:register(floatrange, posint, address,
  sa.Domain("cheerful", "mood", { not_null = true, check = "VALUE <> 'sad'", constraint_name = "not_sad" }))
]]

local TYPES_V2 = [[
local md = sa.MetaData()
local mood = sa.Enum("sad", "ok", "happy", { name = "mood" })
local posint = sa.Domain("posint", sa.Integer, { default = "1", not_null = true, constraints = {
  sa.CheckConstraint("VALUE > 0", { name = "posint_check" }),
  sa.CheckConstraint("VALUE < 1000000", { name = "posint_max" }) } })
local address = sa.CompositeType("address", { { "street", sa.Text }, { "city", "text" }, { "zip", "varchar(10)" } })
local floatrange = sa.RangeType("floatrange", "float8", { subtype_diff = "float8mi" })
md:register(floatrange, posint, address,
  sa.Domain("cheerful", "mood", { check = "VALUE <> 'sad'", constraint_name = "not_sad" }),
  sa.RangeType("spare_range", "integer"))
]]

local PLACES = [[
sa.Table("places", md,
  sa.Column("id", sa.Integer, { primary_key = true }),
  sa.Column("qty", posint),
  sa.Column("addr", address),
  sa.Column("span", floatrange),
  sa.Column("feeling", "cheerful"),
  sa.Column("m", mood))
return md
]]

local ROWS = "SELECT string_agg(id || ':' || coalesce(qty::text, '-') || ':' || coalesce((addr).street || '/' || (addr).city, '-') || ':'"
  .. " || coalesce(span::text, '-') || ':' || coalesce(feeling::text, '-'), ',' ORDER BY id) FROM places"

-- Each step: the schema, the op calls the upgrade must hold (in this order), SQL run
-- before the upgrade, and a query with its answer after it.
local steps = {
  { "the types created before the table that uses them, the domain over an enum after the enum", TYPES_V1 .. PLACES,
    { "op.create_enum", "op.create_entity(sa.RangeType(\"floatrange\"", "op.create_entity(sa.Domain(\"posint\"",
      "op.create_entity(sa.Domain(\"cheerful\"", "op.create_entity(sa.CompositeType(\"address\"", "op.create_table" },
    nil,
    { [[SELECT string_agg(t.typname || '/' || t.typtype::text, ',' ORDER BY t.typname) FROM pg_type t
        JOIN pg_namespace n ON n.oid = t.typnamespace WHERE n.nspname = 'public' AND t.typtype IN ('d', 'c', 'r', 'e')
        AND (t.typtype <> 'c' OR t.typrelid IN (SELECT oid FROM pg_class WHERE relkind = 'c'))]],
      "address/c,cheerful/d,floatrange/r,mood/e,posint/d" } },

  { "a domain's default, NOT NULL and checks, a composite attribute, a range no column uses", TYPES_V2 .. PLACES,
    { "op.create_entity(sa.RangeType(\"spare_range\"", "op.alter_domain(\"posint\"", "op.alter_domain(\"cheerful\"",
      "op.alter_composite_type(\"address\"" },
    "INSERT INTO places VALUES (1, 5, ROW('Main St', 'Lyon'), '[1.5,2.5)', 'ok', 'ok'), "
      .. "(2, 7, ROW('Quai', 'Nice'), '(,3)', 'happy', 'sad')",
    { [[SELECT (SELECT typdefault || '/' || typnotnull FROM pg_type WHERE typname = 'posint') || ' '
        || (SELECT string_agg(conname, ',' ORDER BY conname) FROM pg_constraint
            WHERE contypid = 'posint'::regtype) || ' '
        || (SELECT string_agg(attname, ',' ORDER BY attnum) FROM pg_attribute
            WHERE attrelid = 'address'::regclass AND attnum > 0 AND NOT attisdropped)]],
      "1/true posint_check,posint_max street,city,zip" },
    { "ALTER DOMAIN posint SET DEFAULT 1;", "ALTER DOMAIN posint SET NOT NULL;",
      "ALTER DOMAIN posint ADD CONSTRAINT posint_max CHECK ((VALUE < 1000000));",
      "ALTER DOMAIN cheerful DROP NOT NULL;", "ALTER TYPE address ADD ATTRIBUTE zip character varying(10);",
      "CREATE TYPE spare_range AS RANGE (SUBTYPE = integer);" } },

  { "a range type no column uses changed: dropped and created", TYPES_V2:gsub('sa.RangeType%("spare_range", "integer"%)',
      'sa.RangeType("spare_range", "bigint", { multirange_type_name = "spare_multi" })') .. PLACES,
    { "op.drop_entity(sa.RangeType(\"spare_range\"", "op.create_entity(sa.RangeType(\"spare_range\", \"bigint\"" },
    nil,
    { "SELECT format_type(rngsubtype, NULL) || '/' || rngmultitypid::regtype FROM pg_range "
      .. "WHERE rngtypid = 'spare_range'::regtype", "bigint/spare_multi" } },

  { "the table and the types removed: the types after the table, the domain before the enum", "local md = sa.MetaData()\n"
      .. "md:register(sa.View(\"nothing\", \"SELECT 1 AS one\"))\nreturn md\n",
    { "op.drop_table", "op.drop_entity(sa.CompositeType(\"address\"", "op.drop_entity(sa.Domain(\"cheerful\"",
      "op.drop_entity(sa.Domain(\"posint\"", "op.drop_entity(sa.RangeType(\"floatrange\"", "op.drop_enum" },
    nil,
    { "SELECT count(*) FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace WHERE n.nspname = 'public' "
      .. "AND t.typtype IN ('d', 'r', 'e')", "0" } },
}

describe("revision --autogenerate with domains, composite and range types", function()
  local p, url, dir, run

  setup(function()
    p = ag.project("agtypes")
    url, dir, run = p.url, p.dir, p.run
  end)

  teardown(function() p.close() end)

  for i, s in ipairs(steps) do
    it(("step %d: %s"):format(i, s[1]), function()
      local text, up = ag.generate(p, s[2], "step " .. i)
      local at = 0
      for _, needle in ipairs(s[3]) do
        local found = up:find(needle, at + 1, true)
        assert.truthy(found, ("expected %s (after position %d) in upgrade():\n%s"):format(needle, at, text))
        at = found
      end
      if s[6] then
        -- the same statements offline
        local r = run("upgrade", "head", "--sql")
        assert.equal(0, r.code, r.err)
        for _, stmt in ipairs(s[6]) do assert.truthy(r.out:find(stmt, 1, true), ("expected %s in:\n%s"):format(stmt, r.out)) end
      end
      if s[4] then pg.psql(url, s[4]) end
      local function rows() return i > 1 and i < #steps and pg.psql(url, ROWS) end
      local before, data = schema_lines(url), rows()
      local r = run("upgrade", "head")
      assert.equal(0, r.code, r.err .. "\n" .. text)
      assert.equal(data, rows())
      assert.equal(s[5][2], pg.psql(url, s[5][1]))
      r = run("check")
      assert.equal(0, r.code, r.out .. r.err .. "\n" .. text)
      r = run("downgrade", "-1")
      assert.equal(0, r.code, r.err .. "\n" .. text)
      assert.equal(before, schema_lines(url))
      assert.equal(data, rows())
      assert.equal(0, run("upgrade", "head").code)
    end)
  end

  it("drops a middle attribute of a composite type a column uses, keeping the rows; the downgrade adds it last",
    function()
    pg.psql(url, "CREATE TYPE triple AS (a integer, b text, c integer); CREATE TABLE triples (t triple); "
      .. "INSERT INTO triples VALUES (ROW(1, 'x', 3))")
    local text, up = ag.generate(p, [[
local md = sa.MetaData()
md:register(sa.View("nothing", "SELECT 1 AS one"), sa.CompositeType("triple", { { "a", "integer" }, { "c", "integer" } }))
sa.Table("triples", md, sa.Column("t", "triple"))
return md
]], "middle")
    assert.truthy(up:find('op.alter_composite_type("triple", { drop_attributes = { "b" } })', 1, true), text)
    assert.truthy(text:find("-- PostgreSQL adds an attribute at the end: those dropped come back after the others\n"
      .. '  op.alter_composite_type("triple", { add_attributes = { { "b", "text" } } })', 1, true), text)
    local r = run("upgrade", "head")
    assert.equal(0, r.code, r.err)
    assert.equal("1|3", pg.psql(url, "SELECT (t).a, (t).c FROM triples"))
    assert.equal(0, run("check").code)
    r = run("downgrade", "-1")
    assert.equal(0, r.code, r.err)
    assert.equal("a,c,b|1|3", pg.psql(url, "SELECT (SELECT string_agg(attname, ',' ORDER BY attnum) FROM pg_attribute "
      .. "WHERE attrelid = 'triple'::regclass AND attnum > 0 AND NOT attisdropped), (t).a, (t).c FROM triples"))
    assert.equal(0, run("upgrade", "head").code)
    pg.psql(url, "DROP TABLE triples; DROP TYPE triple")
  end)

  it("swaps a domain a column uses for one of a new base type: rows converted, views, functions and defaults rebuilt",
    function()
    pg.psql(url, [[
CREATE DOMAIN qty AS integer CONSTRAINT qty_check CHECK (VALUE > 0);
COMMENT ON DOMAIN qty IS 'how many (never none)';
CREATE TABLE stock (id integer PRIMARY KEY, n qty DEFAULT 1 NOT NULL, ns qty[],
  CONSTRAINT stock_n_small CHECK (n < 1000000));
CREATE INDEX stock_big ON stock (id) WHERE n > 10;
CREATE VIEW stock_view AS SELECT id, n, n + 1 AS next FROM stock;
CREATE DOMAIN small_qty AS qty CONSTRAINT small_qty_check CHECK (VALUE < 100);
CREATE TABLE small (s small_qty);
INSERT INTO small VALUES (42);
CREATE FUNCTION qty_twice(q qty) RETURNS text LANGUAGE sql AS 'SELECT (q * 2)::text';
INSERT INTO stock VALUES (1, 5, '{1,2}'), (2, 50, NULL), (3, 999999, '{7}');
]])
    local data = pg.psql(url, "SELECT string_agg(id || ':' || n || ':' || coalesce(ns::text, '-'), ',' ORDER BY id) "
      .. "FROM stock_view JOIN stock USING (id, n)")
    local before = schema_lines(url)
    local text, up = ag.generate(p, [[
local md = sa.MetaData()
local qty = sa.Domain("qty", sa.BigInteger, { check = "VALUE > 0" })
md:register(qty, sa.View("nothing", "SELECT 1 AS one"), sa.View("stock_view", "SELECT id, n, n + 1 AS next FROM stock"),
  sa.Domain("small_qty", qty, { check = "VALUE < 100" }),
  sa.Function("qty_twice(q qty)", "RETURNS text LANGUAGE sql AS 'SELECT (q * 2)::text'"))
sa.Table("stock", md,
  sa.Column("id", sa.Integer, { primary_key = true, autoincrement = false }),
  sa.Column("n", qty, { nullable = false, server_default = sa.text("1") }),
  sa.Column("ns", "qty[]"),
  sa.CheckConstraint("n < 1000000", { name = "stock_n_small" }),
  sa.Index("stock_big", "id", { postgresql_where = sa.text("n > 10") }))
sa.Table("small", md, sa.Column("s", "small_qty"))
return md
]], "domain base")
    local at = 0
    for _, needle in ipairs { "op.execute(\"DROP FUNCTION public.qty_twice(public.qty)\")", "op.execute(\"DROP VIEW public.stock_view\")",
      'op.alter_column("stock", "n", { server_default = false })',
      'op.create_entity(sa.Domain("qty_new", "BIGINT", { check = "VALUE > 0", constraint_name = "qty_check" }))',
      'op.alter_column("stock", "n", { type_ = "qty_new", postgresql_using = "n::BIGINT" })',
      'op.alter_column("stock", "ns", { type_ = "qty_new[]", postgresql_using = "ns::BIGINT[]" })',
      'op.drop_entity(sa.Domain("qty", "integer", { check = "VALUE > 0" }))',
      'op.execute("ALTER DOMAIN qty_new RENAME TO qty")',
      [[op.execute("COMMENT ON DOMAIN qty IS 'how many (never none)'")]],
      'op.alter_column("stock", "n", { server_default = sa.text("1") })',
      -- the check and the partial index come back as declared, not with the old casts
      'op.create_check_constraint("stock_n_small", "stock", sa.text("n < 1000000"))',
      'op.create_index("stock_big", "stock", { "id" }, { postgresql_where = sa.text("n > 10") })',
      -- the view and the domain over the domain come back as declared, not with the old casts
      'op.execute("CREATE VIEW public.stock_view AS SELECT id, n, n + 1 AS next FROM stock")',
      "CREATE OR REPLACE FUNCTION public.qty_twice(q qty)",
      'op.execute("CREATE DOMAIN public.small_qty AS qty CONSTRAINT small_qty_check CHECK (VALUE < 100)")' } do
      local found = up:find(needle, at + 1, true)
      assert.truthy(found, ("expected %s (after position %d) in upgrade():\n%s"):format(needle, at, text))
      at = found
    end
    local r = run("upgrade", "head")
    assert.equal(0, r.code, r.err .. "\n" .. text)
    assert.equal("bigint|qty|0", pg.psql(url, "SELECT format_type(typbasetype, NULL) FROM pg_type WHERE typname = 'qty'; "
      .. "SELECT pg_typeof(ns[1]) FROM stock WHERE id = 1; SELECT count(*) FROM pg_type WHERE typname LIKE '%qty\\_new%'")
      :gsub("\n", "|"))
    assert.equal(data, pg.psql(url, "SELECT string_agg(id || ':' || n || ':' || coalesce(ns::text, '-'), ',' ORDER BY id) "
      .. "FROM stock_view JOIN stock USING (id, n)"))
    -- the new base type holds what the old could not; the domain's check and the table's still hold
    assert.equal("6000000000", pg.psql(url, "SELECT qty_twice(3000000000::qty)"))
    local ok, err = pcall(pg.psql, url, "INSERT INTO stock VALUES (4, 0)")
    assert.falsy(ok)
    assert.truthy(err:find("qty_check", 1, true), err)
    r = run("check")
    assert.equal(0, r.code, r.out .. r.err .. "\n" .. text)
    r = run("downgrade", "-1")
    assert.equal(0, r.code, r.err .. "\n" .. text)
    assert.equal(before, schema_lines(url))
    assert.equal(data, pg.psql(url, "SELECT string_agg(id || ':' || n || ':' || coalesce(ns::text, '-'), ',' ORDER BY id) "
      .. "FROM stock_view JOIN stock USING (id, n)"))
    assert.equal(0, run("upgrade", "head").code)
    assert.equal("42", pg.psql(url, "SELECT s FROM small"))
    pg.psql(url, "DROP VIEW stock_view; DROP FUNCTION qty_twice; DROP TABLE stock, small; DROP DOMAIN small_qty, qty")
  end)

  -- `sql` makes the objects, `check` on schema.lua `body` (after the "nothing" view every
  -- step keeps) reports `message`, `drop` removes them.
  local function refuses(sql, body, message, drop)
    pg.psql(url, sql)
    cli.write(dir .. "/migrations/schema.lua", 'local md = sa.MetaData()\nmd:register(sa.View("nothing", "SELECT 1 AS one"), '
      .. body .. "\nreturn md\n")
    local r = run("check")
    assert.equal(1, r.code, r.out .. r.err)
    assert.truthy((r.out .. r.err):find(message, 1, true), r.out .. r.err)
    pg.psql(url, drop)
  end

  it("refuses a domain's new base type while a composite type's attribute uses it, naming the attribute", function()
    refuses("CREATE DOMAIN tag AS varchar(10); CREATE TYPE tagged AS (t tag); CREATE TABLE tags (x tag)",
      'sa.Domain("tag", sa.Text), sa.CompositeType("tagged", { { "t", "tag" } }))\nsa.Table("tags", md, sa.Column("x", "tag"))',
      "changed domain public.tag: not applied, PostgreSQL cannot make this change in place and composite type column "
        .. "public.tagged.t uses it (change it by hand)", "DROP TABLE tags; DROP TYPE tagged; DROP DOMAIN tag")
  end)

  it("compares a range type with a canonical function by the names the server prints", function()
    -- a canonical function takes the range type itself, so it is written in C: here the
    -- server's own int4range_canonical under a name that takes the new type
    pg.psql(url, [[
CREATE TYPE dayspan;
CREATE FUNCTION dayspan_canonical(dayspan) RETURNS dayspan AS 'int4range_canonical' LANGUAGE internal IMMUTABLE STRICT;
CREATE TYPE dayspan AS RANGE (subtype = integer, canonical = dayspan_canonical, subtype_diff = int4range_subdiff);
CREATE TABLE shifts (id integer, during dayspan);
INSERT INTO shifts VALUES (1, '[1,5]');
]])
    local function schema(diff)
      return ([[
local md = sa.MetaData()
md:register(sa.View("nothing", "SELECT 1 AS one"),
  sa.Function("dayspan_canonical(dayspan)", "RETURNS dayspan LANGUAGE internal IMMUTABLE STRICT AS 'int4range_canonical'"),
  sa.RangeType("dayspan", sa.Integer, { canonical = "public.dayspan_canonical", subtype_diff = %q }))
sa.Table("shifts", md, sa.Column("id", sa.Integer), sa.Column("during", "dayspan"))
return md
]]):format(diff)
    end
    assert.equal("[1,6)", pg.psql(url, "SELECT during FROM shifts"))
    -- written schema-qualified, printed without the schema (both are on the search_path)
    cli.write(dir .. "/migrations/schema.lua", schema("pg_catalog.int4range_subdiff"))
    local r = run("check")
    assert.equal(0, r.code, r.out .. r.err)
    -- another function is a change
    cli.write(dir .. "/migrations/schema.lua", schema("int8range_subdiff"))
    r = run("check")
    assert.equal(1, r.code, r.out .. r.err)
    assert.truthy((r.out .. r.err):find("changed range type public.dayspan: not applied", 1, true), r.out .. r.err)
    pg.psql(url, "DROP TABLE shifts; DROP TYPE dayspan CASCADE")
  end)

  it("refuses to change a range type a column uses, naming the column, and leaves the database alone", function()
    pg.psql(url, "CREATE TYPE intspan AS RANGE (subtype = integer); CREATE TABLE bookings (id int, during intspan); "
      .. "INSERT INTO bookings VALUES (1, '[1,5)')")
    cli.write(dir .. "/migrations/schema.lua", [[
local md = sa.MetaData()
md:register(sa.View("nothing", "SELECT 1 AS one"), sa.RangeType("intspan", "bigint"))
sa.Table("bookings", md, sa.Column("id", sa.Integer), sa.Column("during", "intspan"))
return md
]])
    local r = run("check")
    assert.equal(1, r.code, r.out .. r.err)
    assert.truthy((r.out .. r.err):find("changed range type public.intspan: not applied, PostgreSQL cannot alter a range type "
      .. "in place and column public.bookings.during uses it", 1, true), r.out .. r.err)
    local text, _, path = ag.generate(p, cli.slurp(dir .. "/migrations/schema.lua"), "refused")
    assert.truthy(text:find("-- changed range type public.intspan: not applied", 1, true), text)
    assert.falsy(text:find("op.drop_entity", 1, true), text)
    os.remove(path)
    assert.equal("integer|[1,5)", pg.psql(url, "SELECT format_type(rngsubtype, NULL) FROM pg_range "
      .. "WHERE rngtypid = 'intspan'::regtype; SELECT during FROM bookings"):gsub("\n", "|"))
    pg.psql(url, "DROP TABLE bookings; DROP TYPE intspan")
  end)

  it("swaps a composite type a column uses for one with its attributes reordered and retyped, over rows", function()
    pg.psql(url, [[
CREATE TYPE pair AS (a integer, b text);
CREATE TABLE pairs (id integer, p pair, CONSTRAINT pairs_a_pos CHECK ((p).a > 0));
CREATE VIEW pair_as AS SELECT id, (p).a FROM pairs;
INSERT INTO pairs VALUES (1, ROW(1, 'x')), (2, NULL), (3, ROW(NULL, NULL)), (4, ROW(2147483647, 'max'));
]])
    local rows = "SELECT string_agg(id || ':' || coalesce(p::text, 'NULL') || ':' || coalesce(a::text, '-'), ',' "
      .. "ORDER BY id) FROM pairs LEFT JOIN pair_as USING (id)"
    local before, data = schema_lines(url), pg.psql(url, rows)
    local text, up = ag.generate(p, [[
local md = sa.MetaData()
md:register(sa.View("nothing", "SELECT 1 AS one"), sa.View("pair_as", "SELECT id, (p).a FROM pairs"),
  sa.CompositeType("pair", { { "b", "text" }, { "a", "bigint" } }))
sa.Table("pairs", md, sa.Column("id", sa.Integer), sa.Column("p", "pair"),
  sa.CheckConstraint("(p).a > 0", { name = "pairs_a_pos" }))
return md
]], "pair")
    assert.truthy(up:find('op.alter_column("pairs", "p", { type_ = "pair_new", postgresql_using = '
      .. '"CASE WHEN p::text IS NULL THEN NULL ELSE ROW((p).b::text, (p).a::bigint)::pair_new END" })', 1, true), text)
    assert.truthy(up:find('op.execute("ALTER TYPE pair_new RENAME TO pair")', 1, true), text)
    local r = run("upgrade", "head")
    assert.equal(0, r.code, r.err .. "\n" .. text)
    assert.equal("1:(x,1):1,2:NULL:-,3:(,):-,4:(max,2147483647):2147483647", pg.psql(url, rows))
    assert.equal("b text,a bigint", pg.psql(url, "SELECT string_agg(attname || ' ' || format_type(atttypid, NULL), ',' "
      .. "ORDER BY attnum) FROM pg_attribute WHERE attrelid = 'pair'::regclass AND attnum > 0 AND NOT attisdropped"))
    pg.psql(url, "INSERT INTO pairs VALUES (5, ROW('big', 2147483648))")
    r = run("check")
    assert.equal(0, r.code, r.out .. r.err .. "\n" .. text)
    pg.psql(url, "DELETE FROM pairs WHERE id = 5")
    r = run("downgrade", "-1")
    assert.equal(0, r.code, r.err .. "\n" .. text)
    assert.equal(before, schema_lines(url))
    assert.equal(data, pg.psql(url, rows))
    assert.equal(0, run("upgrade", "head").code)
    pg.psql(url, "DROP VIEW pair_as; DROP TABLE pairs; DROP TYPE pair")
  end)

  it("refuses a composite attribute's new type while a column holds an array of the type", function()
    refuses("CREATE TYPE pair AS (a integer, b text); CREATE TABLE pairs (ps pair[])",
      'sa.CompositeType("pair", { { "a", "bigint" }, { "b", "text" } }))\nsa.Table("pairs", md, sa.Column("ps", "pair[]"))',
      "changed composite type public.pair: not applied, PostgreSQL cannot make this change in place and column "
        .. "public.pairs.ps (an array of the type) uses it", "DROP TABLE pairs; DROP TYPE pair")
  end)
end)

describe("inspect with domains, composite and range types", function()
  local p, url, dir, run

  setup(function()
    p = ag.project("inspecttypes", false)
    url, dir, run = p.url, p.dir, p.run
    pg.psql(url, [[
CREATE TYPE tone AS ENUM ('low', 'high');
CREATE DOMAIN loud AS tone DEFAULT 'high' NOT NULL CONSTRAINT not_low CHECK (VALUE <> 'low');
CREATE DOMAIN code AS varchar(8) COLLATE "C" CONSTRAINT code_check CHECK (VALUE ~ '^[A-Z]+$')
  CONSTRAINT code_len CHECK (length(VALUE) > 1);
CREATE TYPE timespan AS RANGE (subtype = time, multirange_type_name = timespans);
CREATE TYPE textrange AS RANGE (subtype = text, subtype_opclass = text_pattern_ops, collation = "C");
CREATE TYPE money_pair AS (amount numeric(12,2), currency code, label text COLLATE "C");
CREATE TABLE ledger (id integer PRIMARY KEY, v loud, c code, open timespan, t textrange, p money_pair, ps money_pair[]);
CREATE EXTENSION cube;
CREATE EXTENSION earthdistance;
CREATE EXTENSION tablefunc;
]])
  end)

  teardown(function() p.close() end)

  it("writes them so that check finds nothing, and rebuilds them from an empty database", function()
    local r = run("inspect", "-o", "migrations/schema.lua")
    assert.equal(0, r.code, r.err)
    local text = cli.slurp(dir .. "/migrations/schema.lua")
    for _, needle in ipairs { 'sa.Domain("loud", "tone", { default = "\'high\'::tone", not_null = true, '
      .. 'check = "VALUE <> \'low\'::tone", constraint_name = "not_low" })',
      'sa.RangeType("timespan", "time without time zone", { multirange_type_name = "timespans" })',
      'sa.RangeType("textrange", "text", { subtype_opclass = "text_pattern_ops", collation = "C" })',
      'sa.CompositeType("money_pair", { { "amount", "numeric(12,2)" }, { "currency", "code" }, '
        .. '{ "label", "text COLLATE \\"C\\"" } })' } do
      assert.truthy(text:find(needle, 1, true), ("expected %s in:\n%s"):format(needle, text))
    end
    -- types an extension owns are the extension's (earthdistance's domain, tablefunc's composites)
    assert.truthy(text:find('sa.Extension("earthdistance")', 1, true), text)
    assert.falsy(text:find('sa.Domain("earth"', 1, true), text)
    assert.falsy(text:find("tablefunc_crosstab", 1, true), text)
    r = run("check")
    assert.equal(0, r.code, r.out .. r.err .. "\n" .. text)
    -- the same schema from nothing
    local copy_url, copy = pg.new_db("inspecttypes_copy")
    r = cli.run({ "--url", copy_url, "revision", "--autogenerate", "-m", "all" }, { cwd = dir })
    assert.equal(0, r.code, r.err)
    r = cli.run({ "--url", copy_url, "upgrade", "head" }, { cwd = dir })
    assert.equal(0, r.code, r.err)
    r = cli.run({ "--url", copy_url, "check" }, { cwd = dir })
    assert.equal(0, r.code, r.out .. r.err)
    pg.psql(copy_url, "DROP TABLE IF EXISTS luamigrate_version, luamigrate_version_history, "
      .. "luamigrate_version_journal, luamigrate_version_lock CASCADE")
    assert.equal(schema_lines(url), schema_lines(copy_url))
    pg.drop_db(copy)
  end)
end)

describe("domains, composite and range types: bad input", function()
  local p

  setup(function() p = ag.project("badtypes", false) end)
  teardown(function() p.close() end)

  it("names schema.lua's line for an unknown option or a malformed attribute list, and changes nothing", function()
    for _, case in ipairs {
      { 'sa.Domain("posint", sa.Integer, { nullable = false })', "sa.Domain: unknown option 'nullable'" },
      { 'sa.CompositeType("pair", { "a", "integer" })', 'sa.CompositeType("pair"): attribute 1 must be {name, type}' },
      { 'sa.RangeType("r", "integer", { subtype_diff = 3 })', "sa.RangeType: subtype_diff must be a non-empty string" },
    } do
      cli.write(p.dir .. "/migrations/schema.lua", "local md = sa.MetaData()\n\nmd:register(" .. case[1] .. ")\nreturn md\n")
      local r = p.run("check")
      assert.equal(2, r.code, r.out .. r.err)
      assert.truthy(r.err:find("schema.lua:3: " .. case[2], 1, true), r.err)
    end
    assert.equal("0", pg.psql(p.url, "SELECT count(*) FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace "
      .. "WHERE n.nspname = 'public'"))
  end)

  it("stops a migration whose op.alter_domain has an unknown option, naming the file and line", function()
    cli.mkdir_p(p.dir .. "/migrations/versions")
    cli.write(p.dir .. "/migrations/versions/d1.lua", cli.revision("d1", nil,
      '  op.create_entity(sa.Domain("posint", sa.Integer))\n  op.alter_domain("posint", { nullable = false })'))
    local r = p.run("upgrade", "head")
    assert.equal(1, r.code, r.out .. r.err)
    assert.truthy(r.err:find("d1.lua:10: op.alter_domain: unknown option 'nullable'", 1, true), r.err)
    assert.equal("0", pg.psql(p.url, "SELECT count(*) FROM pg_type WHERE typname = 'posint'"))
  end)
end)

describe("range types before PostgreSQL 14 (no multiranges)", function()
  -- only PostgreSQL 15 runs here: the queries for an older server are built from the
  -- version number and run on this one, where they must leave the multirange out
  local entities = require "luamigrate.autogen.entities"
  local core = require "luamigrate.core"
  local p, conn

  setup(function()
    p = ag.project("oldrange", false)
    pg.psql(p.url, "CREATE TYPE hours AS RANGE (subtype = integer, multirange_type_name = hour_set); "
      .. "CREATE TABLE slots (h hours, hs hour_set)")
    conn = core.connect(p.url)
  end)

  teardown(function()
    conn:close()
    p.close()
  end)

  it("reads range types without pg_range.rngmultitypid below 140000, with it from 140000", function()
    for _, case in ipairs { { 130011, nil }, { 140000, "hour_set" }, { 150004, "hour_set" } } do
      local sql = entities.range_sql(case[1])
      assert.equal(case[2] ~= nil, sql:find("rngmultitypid", 1, true) ~= nil, sql)
      local rows = conn:query("SELECT * FROM (" .. sql .. ") q WHERE schema = 'public'")
      assert.equal(1, #rows)
      assert.equal("hours|integer", rows[1].name .. "|" .. rows[1].subtype)
      assert.equal(case[2], rows[1].multirange_type_name)
    end
  end)

  it("finds the columns of a range type without its multirange below 140000", function()
    local function users(version)
      local out = {}
      for _, r in ipairs(conn:query(entities.type_users_sql(version), pg.psql(p.url, "SELECT 'hours'::regtype::oid"))) do
        out[#out + 1] = r.what
      end
      return table.concat(out, ",")
    end
    assert.equal("column public.slots.h", users(130000))
    assert.falsy(entities.type_users_sql(130000):find("rngmultitypid", 1, true))
    assert.equal("column public.slots.h,column public.slots.hs", users(140000))
  end)
end)
