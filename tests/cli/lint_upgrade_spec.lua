-- upgrade lints what it is about to run (warnings first; lint.upgrade = "error" refuses,
-- "off" skips), and upgrade --dry-run --locks reports what each statement really locked and
-- which tables it rewrote.
local pg = require "helpers.pg"
local cli = require "helpers.cli"
local fixture = require "helpers.fixture"

local V = "migrations/versions/"

describe("upgrade and lint", function()
  local fx = fixture.new()
  local dir, url

  before_each(function()
    url = fx:new_db()
    pg.psql(url, "CREATE TABLE u (x bigint, c integer); INSERT INTO u SELECT g, g FROM generate_series(1, 100) g")
  end)

  local BODY = [[
  op.create_table("t", sa.Column("a", sa.BigInteger))
  op.create_index("ix_t_a", "t", { "a" })
  op.add_column("u", sa.Column("d", sa.BigInteger, { server_default = "0" }))
  op.alter_column("u", "c", { type_ = sa.BigInteger })
  op.create_index("ix_u_c", "u", { "c" })]]

  local function project(config)
    dir = fx:project { files = { [V .. "a1_x.lua"] = cli.revision("a1", nil, BODY) },
      config = 'script_location = "migrations"\n' .. (config or "") }
  end

  local run = fx.run

  it("prints the error-level findings as warnings before it runs, and runs", function()
    project()
    local r = run("upgrade", "head")
    assert.equal(0, r.code, r.err)
    local warn = "luamigrate: warning: " .. V .. "a1_x.lua:"
    assert.truthy(r.err:find(warn .. "12: lint[changing-column-type]: changing the type of u.c", 1, true), r.err)
    assert.truthy(r.err:find(warn .. "13: lint[require-concurrent-index-creation]", 1, true), r.err)
    -- warning-level findings only as a count, with -v
    assert.falsy(r.err:find("warning level", 1, true), r.err)
    assert.falsy(r.err:find("ix_t_a", 1, true), r.err) -- t is created in the same transaction
    assert.truthy(r.err:find("lint%[.-\nRunning upgrade  %-> a1"), r.err)
    assert.equal("a1", pg.psql(url, "SELECT version_num FROM luamigrate_version"))
    pg.psql(url, "DROP TABLE t; ALTER TABLE u DROP COLUMN d; TRUNCATE luamigrate_version")
    r = run("-v", "upgrade", "head")
    assert.truthy(r.err:find("lint: 1 more finding of warning level; 'luamigrate lint' lists them", 1, true), r.err)
  end)

  it("refuses to run with lint.upgrade = \"error\", and says nothing with \"off\"", function()
    project('lint = { upgrade = "error" }\n')
    local r = run("upgrade", "head")
    assert.equal(1, r.code)
    assert.truthy(r.err:find("upgrade refused: lint found 2 error-level findings in what it would run", 1, true), r.err)
    assert.falsy(r.err:find("Running upgrade", 1, true), r.err)
    assert.equal("", pg.psql(url, "SELECT coalesce(to_regclass('t')::text, '')"))
    cli.write(dir .. "/luamigrate.lua", 'script_location = "migrations"\nlint = { upgrade = "off" }\n')
    r = run("upgrade", "head")
    assert.equal(0, r.code, r.err)
    assert.falsy(r.err:find("lint", 1, true), r.err)
  end)

  it("reports with --dry-run --locks the locks each statement took and the tables it rewrote", function()
    project('lint = { upgrade = "off" }\n')
    local r = run("upgrade", "--dry-run", "--locks", "head")
    assert.equal(0, r.code, r.err)
    assert.truthy(r.out:find("CREATE INDEX ix_t_a ON t (a);\n--   locks: AccessExclusiveLock on ix_t_a, ShareLock on t\n", 1, true), r.out)
    assert.truthy(r.out:find("ALTER TABLE u ADD COLUMN d BIGINT DEFAULT '0';\n--   locks: AccessExclusiveLock on u\n", 1, true), r.out)
    assert.truthy(r.out:find("ALTER TABLE u ALTER COLUMN c TYPE BIGINT;\n%-%-   locks: [^\n]*; rewrote u\n"), r.out)
    -- adding a column with a constant default rewrites nothing (PostgreSQL 11+)
    assert.falsy(r.out:find("DEFAULT '0';\n%-%-   locks: [^\n]*rewrote"), r.out)
    assert.equal("", pg.psql(url, "SELECT coalesce(to_regclass('t')::text, '')"))
    r = run("upgrade", "--locks", "head")
    assert.equal(2, r.code)
    assert.truthy(r.err:find("--locks reports what --dry-run's statements lock; give --dry-run too", 1, true), r.err)
  end)
end)
