-- A run reads each revision file once, when it loads the project: the bytes that run (and
-- whose SHA-256 the history records) are the ones read then, even if the file changes on
-- disk while the run goes on. Each use of a revision runs its compiled chunk in a new
-- environment: nothing set by one file, or by an earlier use of the same file, is seen.
local pg = require "helpers.pg"
local cli = require "helpers.cli"
local fixture = require "helpers.fixture"

describe("each file read once per run", function()
  local fx = fixture.new()
  local dir, url
  local run = fx.run
  local b_rel = "migrations/versions/02_b.lua"

  -- Revision b as written before the run: creates b_original.
  local b_before = cli.revision("bbbb00000002", "aaaa00000001",
    '  op.execute("CREATE TABLE b_original (id int)")', '  op.execute("DROP TABLE b_original")')
  -- What a's upgrade() writes over b's file while the run goes on.
  local b_after = cli.revision("bbbb00000002", "aaaa00000001",
    '  op.execute("CREATE TABLE b_rewritten (id int)")', '  op.execute("DROP TABLE b_rewritten")')

  before_each(function()
    dir, url = fx:open()
    local rewrite = ("  local f = assert(io.open(%q, 'wb'))\n  f:write(%q)\n  f:close()\n")
      :format(b_rel, b_after)
    fx:revision("01_a", "aaaa00000001", nil,
      '  op.execute("CREATE TABLE a_done (id int)")\n' .. rewrite, '  op.execute("DROP TABLE a_done")')
    cli.write(dir .. "/" .. b_rel, b_before)
  end)

  local function sha256(text)
    local path = os.tmpname()
    cli.write(path, text)
    local p = assert(io.popen("sha256sum " .. pg.shell_quote(path)))
    local sum = p:read("a"):match("^(%x+)")
    p:close()
    os.remove(path)
    return sum
  end

  it("runs and records the bytes read at the start when a migration rewrites a later file", function()
    local r = run("upgrade", "head")
    assert.equal(0, r.code, r.err)
    assert.equal(b_after, cli.slurp(dir .. "/" .. b_rel)) -- the rewrite did happen
    assert.equal("b_original", pg.psql(url,
      "SELECT string_agg(relname, ',') FROM pg_class WHERE relname IN ('b_original', 'b_rewritten')"))
    assert.equal(sha256(b_before), pg.psql(url,
      "SELECT checksum FROM luamigrate_version_history WHERE revision = 'bbbb00000002'"))
    -- the file on disk is no longer what ran, and the next command says so
    local s = run("status")
    assert.equal(0, s.code, s.err)
    assert.truthy(s.out:find("bbbb00000002  %[file changed since%]"), s.out)
  end)

  it("writes the bytes read at the start into a --sql script", function()
    local r = cli.run({ "upgrade", "head", "--sql" }, { cwd = dir })
    assert.equal(0, r.code, r.err)
    assert.truthy(r.out:find("CREATE TABLE b_original", 1, true), r.out)
    assert.falsy(r.out:find("b_rewritten", 1, true), r.out)
  end)

  it("gives each use of a revision a new environment", function()
    cli.write(dir .. "/" .. b_rel, cli.revision("bbbb00000002", "aaaa00000001",
      '  if rawget(_ENV, "from_a") ~= nil then error("a global of revision a leaked") end\n'
        .. "  uses = uses + 1\n"
        .. '  if uses > 1 then error("the environment of an earlier use was reused") end\n'
        .. '  op.execute("CREATE TABLE b_ran (id int)")',
      '  op.execute("DROP TABLE b_ran")', "uses = 0\n"))
    cli.write(dir .. "/migrations/versions/01_a.lua", cli.revision("aaaa00000001", nil,
      '  op.execute("CREATE TABLE a_done (id int)")', '  op.execute("DROP TABLE a_done")',
      "from_a = true\n"))
    -- lint renders every step before the run executes it: two uses of each file
    local r = run("upgrade", "head")
    assert.equal(0, r.code, r.err)
    assert.equal("1", pg.psql(url, "SELECT count(*) FROM pg_class WHERE relname = 'b_ran'"))
    local d = run("downgrade", "base")
    assert.equal(0, d.code, d.err)
    r = run("upgrade", "head")
    assert.equal(0, r.code, r.err)
  end)
end)
