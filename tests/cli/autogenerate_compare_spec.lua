-- Autogenerate's finer comparisons: a check constraint whose condition changes under the
-- same name, a unique constraint turning NULLS NOT DISTINCT, and a column type change that
-- needs USING (text -> integer, written by autogenerate), each applied over rows, `check`
-- clean after, downgraded back to exactly the schema before.
local pg = require "helpers.pg"
local cli = require "helpers.cli"
local fixture = require "helpers.fixture"

local schema_lines = require("helpers.autogen").schema_lines

local function declared(check, nnd, qty, identity)
  return ([[
local md = sa.MetaData()
%s
sa.Table("items", md,
  sa.Column("id", sa.Integer, { primary_key = true }),
  sa.Column("code", sa.Text, { nullable = false }),
  sa.Column("batch", sa.Text),
  sa.Column("qty", %s),
  sa.CheckConstraint(%q, { name = "items_code_check" }),
  sa.UniqueConstraint("code", "batch", { name = "uq_items_code_batch"%s }))
return md
]]):format(identity and ([==[
sa.Table("tickets", md,
  sa.Column("id", sa.BigInteger, sa.Identity { %s }, { primary_key = true }),
  sa.Column("note", sa.Text))
]==]):format(identity) or "", qty, check, nnd and ", postgresql_nulls_not_distinct = true" or "")
end

-- the last steps' schema: step 6's and a table with an exclusion constraint
local function shifts(extra)
  return (declared("length(code) > 1", true, "sa.Integer", "always = false, start = 100, increment = 5, cache = 20")
    :gsub("return md\n$", "")) .. ([[
sa.Table("shifts", md, sa.Column("room", sa.Integer, { nullable = false }), sa.Column("during", "tstzrange"),
  sa.ExcludeConstraint({ "during", "&&" }, { name = "shifts_no_overlap"%s }))
return md
]]):format(extra)
end

local steps = {
  { "the table", declared("length(code) > 0", false, "sa.Text"), { "op.create_table" } },
  { "a check's condition changed under its name", declared("length(code) > 1", false, "sa.Text"),
    { 'op.drop_constraint("items_code_check"', 'op.create_check_constraint("items_code_check"' },
    "INSERT INTO items (code, batch, qty) SELECT 'c' || g, CASE WHEN g % 2 = 0 THEN 'b' END, g::text "
    .. "FROM generate_series(1, 20) g" },
  { "a unique constraint made NULLS NOT DISTINCT", declared("length(code) > 1", true, "sa.Text"),
    { "postgresql_nulls_not_distinct = true" } },
  { "text to integer, with the USING autogenerate infers", declared("length(code) > 1", true, "sa.Integer"),
    { 'postgresql_using = "qty::integer"' } },
  { "an identity with options", declared("length(code) > 1", true, "sa.Integer", "start = 100, increment = 10"),
    { "sa.Identity({ start = 100, increment = 10 })" } },
  { "its options changed", declared("length(code) > 1", true, "sa.Integer", "always = false, start = 100, increment = 5, cache = 20"),
    { "SET INCREMENT BY 5 SET CACHE 20" }, "INSERT INTO tickets (note) SELECT 'n' FROM generate_series(1, 3)" },
  { "an exclusion constraint added", shifts(""), { 'op.create_exclude_constraint("shifts_no_overlap", "shifts", '
    .. '{ "during", "&&" })' } },
  { "and changed", shifts(', where = sa.text("room > 0")'), { 'op.drop_constraint("shifts_no_overlap", "shifts")',
    'where = sa.text("room > 0")' }, "INSERT INTO items (code, qty) VALUES ('shift', 1); "
    .. "INSERT INTO shifts (room, during) VALUES (1, '[2025-01-01,2025-01-02)')" },
}

describe("autogenerate compares", function()
  local fx = fixture.new { scope = "all" }
  local dir, url

  setup(function()
    dir, url = fx:open { prefix = "agcompare" }
    assert.equal(0, cli.run({ "--url", url, "stamp", "base" }, { cwd = dir }).code)
  end)

  local run = fx.run

  for i, s in ipairs(steps) do
    it(("step %d: %s"):format(i, s[1]), function()
      cli.write(dir .. "/migrations/schema.lua", s[2])
      local r = run("check")
      assert.equal(1, r.code, r.out .. r.err)
      r = run("revision", "--autogenerate", "-m", "step " .. i)
      assert.equal(0, r.code, r.err)
      local text = cli.slurp(dir .. "/" .. r.out:match("Generating (%S+) %.%.%. done"))
      local up = text:match("function upgrade%(%)(.-)\nend")
      for _, needle in ipairs(s[3]) do
        assert.truthy(up:find(needle, 1, true), ("expected %s in upgrade():\n%s"):format(needle, text))
      end
      if s[4] then pg.psql(url, s[4]) end
      local before = schema_lines(url)
      local rows = i > 1 and pg.psql(url, "SELECT string_agg(id || code || coalesce(batch, '-') || qty, ',' ORDER BY id) FROM items")
      r = run("upgrade", "head")
      assert.equal(0, r.code, r.err .. "\n" .. text)
      if i > 1 then
        assert.equal(rows, pg.psql(url, "SELECT string_agg(id || code || coalesce(batch, '-') || qty, ',' ORDER BY id) FROM items"))
      end
      r = run("check")
      assert.equal(0, r.code, r.out .. r.err .. "\n" .. text)
      r = run("downgrade", "-1")
      assert.equal(0, r.code, r.err .. "\n" .. text)
      assert.equal(before, schema_lines(url))
      assert.equal(0, run("upgrade", "head").code)
    end)
  end

  it("the changes hold: the new check refuses a one-letter code, nulls collide, tickets count by 5", function()
    assert.equal("100,110,120,125", pg.psql(url, "INSERT INTO tickets (note) VALUES ('x'); "
      .. "SELECT string_agg(id::text, ',' ORDER BY id) FROM tickets"))
    assert.has_error(function() pg.psql(url, "INSERT INTO items (code) VALUES ('x')") end)
    pg.psql(url, "INSERT INTO items (code) VALUES ('xy')")
    assert.has_error(function() pg.psql(url, "INSERT INTO items (code) VALUES ('xy')") end)
    assert.equal("integer", pg.psql(url, "SELECT format_type(atttypid, atttypmod) FROM pg_attribute "
      .. "WHERE attrelid = 'items'::regclass AND attname = 'qty'"))
  end)
end)
