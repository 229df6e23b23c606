-- Autogenerate for user-defined types: domains, composite types and range types registered
-- in schema.lua (md:register) are created before the tables whose columns use them (a
-- domain over an enum after the enum), altered in place where PostgreSQL can (ALTER DOMAIN,
-- ALTER TYPE ... ATTRIBUTE) with the rows in those columns kept, dropped and created when
-- nothing uses them, refused with a message naming the column when something does, and
-- dropped after the tables. Each step's migration is checked in pg_type and friends,
-- `check` is clean after it, and its downgrade restores exactly the schema before.
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

  it("refuses a composite attribute's new type while a column uses it", function()
    pg.psql(url, "CREATE TYPE pair AS (a integer, b text); CREATE TABLE pairs (p pair)")
    cli.write(dir .. "/migrations/schema.lua", [[
local md = sa.MetaData()
md:register(sa.View("nothing", "SELECT 1 AS one"), sa.CompositeType("pair", { { "a", "bigint" }, { "b", "text" } }))
sa.Table("pairs", md, sa.Column("p", "pair"))
return md
]])
    local r = run("check")
    assert.equal(1, r.code, r.out .. r.err)
    assert.truthy((r.out .. r.err):find("changed composite type public.pair: not applied, PostgreSQL cannot make this change "
      .. "in place and column public.pairs.p uses it", 1, true), r.out .. r.err)
    pg.psql(url, "DROP TABLE pairs; DROP TYPE pair")
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
