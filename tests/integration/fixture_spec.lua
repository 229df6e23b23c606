-- helpers/fixture.lua, which the cli specs build their projects and databases with: what it
-- makes, and that it removes all of it when the test (or the block) ends.
local pg = require "helpers.pg"
local cli = require "helpers.cli"
local fixture = require "helpers.fixture"

local CONFIG = 'script_location = "migrations"\nlock_timeout = 7\n'

local function exists(path)
  local f = io.open(path)
  if f then f:close() end
  return f ~= nil
end

-- How many of the named databases the server has.
local function databases(names)
  local quoted = {}
  for i, n in ipairs(names) do quoted[i] = "'" .. n .. "'" end
  return pg.psql(pg.conninfo("postgres"),
    "SELECT count(*) FROM pg_database WHERE datname IN (" .. table.concat(quoted, ", ") .. ")")
end

local made = {}

describe("a fixture closed after each test", function()
  local fx = fixture.new()

  it("makes a project with its files and config, and a fresh empty database", function()
    local dir, url, dbname = fx:open { files = { ["migrations/versions/a1_first.lua"] = cli.revision("a1", nil, "") },
      config = CONFIG }
    assert.equal(CONFIG, cli.slurp(dir .. "/luamigrate.lua"))
    assert.equal(cli.revision("a1", nil, ""), cli.slurp(dir .. "/migrations/versions/a1_first.lua"))
    assert.equal("0", pg.psql(url, "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'"))
    assert.equal(dbname, pg.psql(url, "SELECT current_database()"))
    assert.equal("migrations/versions/b2_second.lua",
      fx:revision("b2_second", "b2", "a1", '  op.execute("CREATE TABLE t (id int)")', '  op.drop_table("t")'))
    local r = fx.run("upgrade", "head")
    assert.equal(0, r.code, r.err)
    assert.equal("b2", fx.psql("SELECT version_num FROM luamigrate_version"))
    local _, extra = fx:new_db("fixture_extra")
    made.each = { dir = dir, dbs = { dbname, extra } }
    assert.equal("2", databases(made.each.dbs))
  end)

  it("has removed the last test's directory and dropped its databases", function()
    assert.is_false(exists(made.each.dir .. "/luamigrate.lua"))
    assert.equal("0", databases(made.each.dbs))
    assert.is_nil(fx.dir)
    assert.is_nil(fx.url)
  end)

  it("makes an empty directory for a spec that runs init itself", function()
    local dir = fx:project { empty = true }
    assert.is_false(exists(dir .. "/luamigrate.lua"))
    assert.equal(0, cli.run({ "init", "migrations" }, { cwd = dir }).code)
    assert.is_true(exists(dir .. "/luamigrate.lua"))
  end)
end)

describe("a fixture closed after its block", function()
  local fx = fixture.new { scope = "all" }
  local refused, why = pcall(fixture.new, { scope = "sometimes" })

  it("keeps its project and database from one test to the next", function()
    local dir, _, dbname = fx:open {}
    made.all = { dir = dir, dbs = { dbname } }
    assert.is_true(exists(dir .. "/luamigrate.lua"))
  end)

  it("still has them in the next test", function()
    assert.is_true(exists(made.all.dir .. "/luamigrate.lua"))
    assert.equal("1", databases(made.all.dbs))
  end)

  it("refuses a scope it does not know", function()
    assert.is_false(refused)
    assert.truthy(why:find('fixture.new: scope must be "each" or "all", got sometimes', 1, true), why)
  end)
end)

describe("after a block's fixture", function()
  it("its directory and database are gone", function()
    assert.is_false(exists(made.all.dir .. "/luamigrate.lua"))
    assert.equal("0", databases(made.all.dbs))
  end)
end)
