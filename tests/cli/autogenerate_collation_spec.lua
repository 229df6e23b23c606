-- Autogenerate compares a column's collation when schema.lua names one: added, changed,
-- kept through a type change, set back to the database's default, each applied over rows,
-- `check` clean after, downgraded back to exactly the schema before. A column declared
-- without one keeps whatever the database gives it and is never reported.
local pg = require "helpers.pg"
local cli = require "helpers.cli"
local fixture = require "helpers.fixture"

local schema_lines = require("helpers.autogen").schema_lines

local function declared(word, note, extra)
  return ([[
local md = sa.MetaData()
sa.Table("words", md,
  sa.Column("id", sa.Integer, { primary_key = true }),
  sa.Column("word", %s),
  sa.Column("note", %s))
%sreturn md
]]):format(word, note, extra or "")
end

local TAGS = [[
sa.Table("tags", md, sa.Column("id", sa.Integer, { primary_key = true }),
  sa.Column("code", sa.String(8, "C"), { nullable = false }), sa.Column("label", 'character(3) COLLATE "POSIX"'))
]]

local steps = {
  { "the table, no collation declared", declared("sa.String(20)", "sa.Text"), { "op.create_table" } },
  { "a collation added", declared('sa.String(20, "C")', "sa.Text"),
    { 'op.alter_column("words", "word", { type_ = sa.String(20, "C"), existing_type = sa.String(20)' },
    "INSERT INTO words (word, note) VALUES ('b', 'x'), ('B', 'y'), ('a', NULL), ('A', 'z')" },
  { "changed, and one added on text", declared('sa.String(20, "POSIX")', 'sa.Text({ collation = "C" })'),
    { 'op.alter_column("words", "word", { type_ = sa.String(20, "POSIX"), existing_type = sa.String(20, "C")',
      'op.alter_column("words", "note", { type_ = sa.Text({ collation = "C" }), existing_type = sa.Text()' } },
  { "a longer type keeps the collation", declared('sa.String(40, "POSIX")', "sa.Text"),
    { 'op.alter_column("words", "word", { type_ = sa.String(40, "POSIX")' } },
  { "set back to the database's default", declared('sa.String(40, "default")', "sa.Text"),
    { 'op.alter_column("words", "word", { type_ = sa.String(40, "default"), existing_type = sa.String(40, "POSIX")' } },
  { "a new table with collated columns", declared('sa.String(40, "default")', "sa.Text", TAGS),
    { 'sa.Column("code", sa.String(8, "C"), { nullable = false })', [[sa.Column("label", "character(3) COLLATE \"POSIX\"")]] } },
}

describe("autogenerate compares collations", function()
  local fx = fixture.new { scope = "all" }
  local dir, url

  setup(function()
    dir, url = fx:open { prefix = "agcollation" }
    assert.equal(0, cli.run({ "--url", url, "stamp", "base" }, { cwd = dir }).code)
  end)

  local run = fx.run
  local function collation(col)
    return pg.psql(url, ("SELECT coalesce(collation_name, '-') FROM information_schema.columns "
      .. "WHERE table_name = 'words' AND column_name = '%s'"):format(col))
  end
  local ROWS = "SELECT string_agg(id || word || coalesce(note, '-'), ',' ORDER BY id) FROM words"

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
      local before, rows = schema_lines(url), i > 1 and pg.psql(url, ROWS)
      r = run("upgrade", "head")
      assert.equal(0, r.code, r.err .. "\n" .. text)
      if i > 1 then assert.equal(rows, pg.psql(url, ROWS)) end
      r = run("check")
      assert.equal(0, r.code, r.out .. r.err .. "\n" .. text)
      assert.equal("No new upgrade operations detected.\n", r.out)
      r = run("downgrade", "-1")
      assert.equal(0, r.code, r.err .. "\n" .. text)
      assert.equal(before, schema_lines(url))
      assert.equal(0, run("upgrade", "head").code)
    end)
  end

  it("the collations hold: C sorts capitals first, the default collation is back on word", function()
    assert.equal("-", collation("word"))
    assert.equal("C", pg.psql(url, "SELECT collation_name FROM information_schema.columns "
      .. "WHERE table_name = 'tags' AND column_name = 'code'"))
    assert.equal("A,B,a,b", pg.psql(url, "SELECT string_agg(word, ',' ORDER BY word COLLATE \"C\") FROM words"))
  end)

  it("a collation the database has but schema.lua does not name is not reported", function()
    pg.psql(url, 'ALTER TABLE words ALTER COLUMN note TYPE text COLLATE "C"')
    assert.equal("C", collation("note"))
    local r = run("check")
    assert.equal(0, r.code, r.out .. r.err)
    -- a type change keeps it: the new type is written with the collation the column has
    cli.write(dir .. "/migrations/schema.lua", declared('sa.String(40, "default")', "sa.String(200)", TAGS))
    r = run("revision", "--autogenerate", "-m", "note as varchar")
    assert.equal(0, r.code, r.err)
    local text = cli.slurp(dir .. "/" .. r.out:match("Generating (%S+) %.%.%. done"))
    assert.truthy(text:find('op.alter_column("words", "note", { type_ = sa.String(200, "C")', 1, true), text)
    assert.truthy(text:find('op.alter_column("words", "note", { type_ = sa.Text({ collation = "C" })', 1, true), text)
    assert.equal(0, run("upgrade", "head").code)
    assert.equal("C", collation("note"))
    assert.equal(0, run("check").code)
  end)
end)
