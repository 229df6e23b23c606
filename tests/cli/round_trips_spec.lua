-- What a run reports when the statements it sends together fail: the BEGIN travels with a
-- migration's first statement and the version rows go with the history row, yet every
-- error still names its own statement, revision and position, and rolls back only its step.
local pg = require "helpers.pg"
local cli = require "helpers.cli"
local fixture = require "helpers.fixture"

describe("statements sent together", function()
  local fx = fixture.new()
  local url

  local function setup(files, config)
    fx:open { files = files, config = config }
    url = fx.url
  end

  local run = fx.run

  local function two(second_body)
    return {
      ["migrations/versions/aaaa_one.lua"] = cli.revision("aaaa", nil, '  op.execute("CREATE TABLE one (id int)")'),
      ["migrations/versions/bbbb_two.lua"] = cli.revision("bbbb", "aaaa", second_body),
    }
  end

  it("reports a syntax error in a migration's first statement at its own position", function()
    setup(two('  op.execute("CREATE TABLE two (id int) garbage")'))
    local r = run("upgrade", "head")
    assert.equal(1, r.code)
    assert.truthy(r.err:find("bbbb_two.lua:9: upgrade aaaa -> bbbb failed: ERROR 42601: syntax error at or near \"garbage\"", 1, true), r.err)
    assert.truthy(r.err:find("statement: CREATE TABLE two (id int) garbage\n  position: 27\n", 1, true), r.err)
    assert.equal("aaaa", pg.psql(url, "SELECT version_num FROM luamigrate_version"))
    assert.equal("1", pg.psql(url, "SELECT count(*) FROM luamigrate_version_history"))
  end)

  it("refuses a first statement with nothing to run, as a lone one", function()
    setup(two('  op.execute("-- nothing here")'))
    local r = run("upgrade", "head")
    assert.equal(1, r.code)
    assert.truthy(r.err:find("upgrade aaaa -> bbbb failed: unexpected result status PGRES_EMPTY_QUERY", 1, true), r.err)
    assert.truthy(r.err:find("statement: -- nothing here", 1, true), r.err)
    assert.equal("aaaa", pg.psql(url, "SELECT version_num FROM luamigrate_version"))
  end)

  it("stops at a version row changed under the run, before the step commits", function()
    setup(two('  op.execute("CREATE TABLE two (id int)")\n  op.execute("DELETE FROM luamigrate_version")'))
    local r = run("upgrade", "head")
    assert.equal(1, r.code)
    assert.truthy(r.err:find("expected to match one row when updating 'aaaa' to 'bbbb' in \"luamigrate_version\"; 0 found (was the version table changed by hand?)", 1, true), r.err)
    assert.equal("aaaa", pg.psql(url, "SELECT version_num FROM luamigrate_version"))
    assert.equal("", pg.psql(url, "SELECT to_regclass('two')"))
    assert.equal("aaaa", pg.psql(url, "SELECT string_agg(revision, ',') FROM luamigrate_version_history"))
  end)

  it("applies a migration with no statements, inside its transaction", function()
    setup(two('  assert(op.get_bind():status() == "intrans", op.get_bind():status())'))
    local r = run("upgrade", "head")
    assert.equal(0, r.code, r.err)
    assert.equal("bbbb", pg.psql(url, "SELECT version_num FROM luamigrate_version"))
    assert.equal("aaaa,bbbb", pg.psql(url, "SELECT string_agg(revision, ',' ORDER BY id) FROM luamigrate_version_history"))
  end)

  it("names the SET LOCAL a bad migration_lock_timeout fails in", function()
    setup(two('  op.execute("CREATE TABLE two (id int)")'),
      'script_location = "migrations"\nmigration_lock_timeout = "soon"\n')
    local r = run("upgrade", "head")
    assert.equal(1, r.code)
    assert.truthy(r.err:find("invalid value for parameter \"lock_timeout\": \"soon\"", 1, true), r.err)
    assert.equal("", pg.psql(url, "SELECT coalesce(string_agg(version_num, ','), '') FROM luamigrate_version"))
  end)

  it("runs an autocommit block first thing in a migration", function()
    setup(two('  op.autocommit_block(function() op.execute("CREATE TABLE two (id int)") end)\n'
      .. '  op.execute("CREATE INDEX two_id ON two (id)")'))
    local r = run("upgrade", "head")
    assert.equal(0, r.code, r.err)
    assert.equal("bbbb", pg.psql(url, "SELECT version_num FROM luamigrate_version"))
    assert.equal("two_id", pg.psql(url, "SELECT to_regclass('two_id')"))
  end)
end)
