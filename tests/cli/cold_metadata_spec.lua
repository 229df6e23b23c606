-- Cold metadata: with no revision cache (a fresh clone), a revision file in the plain form
-- `luamigrate revision` writes is read by the C scanner (src/revscan.c) instead of being
-- run; any other file is run as before. Either way a command prints the same thing.
local cli = require "helpers.cli"
local fixture = require "helpers.fixture"

describe("metadata without the revision cache", function()
  local fx = fixture.new()
  local dir

  local function versions(name) return dir .. "/migrations/versions/" .. (name or "") end
  local function nocache() os.remove(versions(".luamigrate_cache")) end
  local function outputs()
    local t = {}
    for _, cmd in ipairs { "heads", "history", "current", "branches", "show" } do
      local args = cmd == "show" and { "show", "m1" } or { cmd }
      local r = fx.run(table.unpack(args))
      assert.equal(0, r.code, r.err)
      t[cmd] = r.out
    end
    return t
  end

  -- a graph with a merge, a labeled second base, depends_on, escapes and both table forms
  local function plain_files()
    local files = {}
    local function put(name, text) files["migrations/versions/" .. name .. ".lua"] = text end
    put("a1_base", cli.revision("a1", nil, "", "", 'branch_labels = { "main" }\n'))
    put("b1_next", cli.revision("b1", "a1", "", ""))
    put("c1_side", cli.revision("c1", { "a1" }, "", "", "depends_on = nil;\n"))
    put("m1_merge", "--[==[ merge \"side\"\\n ]] and next\n\nRevision ID: m1\n]==]\n"
      .. 'revision = "m\\x31"\ndown_revision = { "b1", \'c1\'; }\nbranch_labels = nil\n'
      .. "depends_on = {}\n\nfunction upgrade()\nend\n\nfunction downgrade()\nend\n")
    put("z1_other", cli.revision("z1", nil, "", "", 'branch_labels = "other"\ndepends_on = { "a1" }\n'))
    return files
  end

  it("prints what the cache gives, and what running every file gives", function()
    dir = fx:open { files = plain_files() }
    assert.equal(0, fx.run("stamp", "m1").code)
    nocache()
    local cold = outputs()
    assert.truthy(cold.heads:find("m1 (main) (head)", 1, true), cold.heads)
    assert.truthy(cold.history:find('merge "side"\\n ]] and next', 1, true), cold.history)
    assert.truthy(io.open(versions(".luamigrate_cache")), "a cold command writes the cache")
    assert.same(cold, outputs()) -- from the cache
    -- the same files with a statement the scanner does not read: every file is run
    for name in pairs(plain_files()) do
      local f = assert(io.open(dir .. "/" .. name, "a"))
      f:write("local _ = 0\n")
      f:close()
    end
    nocache()
    assert.same(cold, outputs())
  end)

  it("runs a file whose header is computed", function()
    local files = plain_files()
    files["migrations/versions/n1_computed.lua"] = 'local PREV = "m" .. "1"\n'
      .. cli.revision("n1", nil, "", ""):gsub("down_revision = nil", "down_revision = PREV")
    dir = fx:open { files = files }
    nocache()
    local r = fx.run("heads")
    assert.equal(0, r.code, r.err)
    assert.truthy(r.out:find("n1 (main) (head)", 1, true), r.out)
    assert.falsy(r.out:find("m1", 1, true), r.out)
  end)

  it("reports a file that raises at load time as before", function()
    local files = plain_files()
    files["migrations/versions/n1_raises.lua"] = cli.revision("n1", "m1", "", "")
      .. 'error("refused at load")\n'
    dir = fx:open { files = files }
    nocache()
    local r = fx.run("heads")
    assert.equal(2, r.code)
    assert.truthy(r.err:find("n1_raises.lua: error while loading", 1, true), r.err)
    assert.truthy(r.err:find("n1_raises.lua:15: refused at load", 1, true), r.err)
  end)

  -- The documented choice (docs/performance.md): a syntax error inside a function of a
  -- plain file is not seen by the metadata commands; a run that includes that migration
  -- compiles every file of its plan first, so it refuses with file:line before any step.
  it("refuses a run whose plan holds a syntax error in a plain file, before any step", function()
    local files, ids = cli.chain(2)
    files[("migrations/versions/%s_broken.lua"):format("03bad")] =
      cli.revision("03bad", ids[2], '  op.execute("SELECT 1" +)', "")
    dir = fx:open { files = files }
    nocache()
    local r = fx.run("heads")
    assert.equal(0, r.code, r.err)
    assert.equal("03bad (head)\n", r.out)
    r = fx.run("upgrade", "head")
    assert.equal(2, r.code, r.err)
    assert.truthy(r.err:find("03bad_broken.lua:9: unexpected symbol near ')'", 1, true), r.err)
    assert.equal("", fx.psql("SELECT to_regclass('t1')"), "no step ran")
    assert.equal("0", fx.psql("SELECT count(*) FROM luamigrate_version"))
    r = fx.run("upgrade", "head", "--sql")
    assert.equal(2, r.code, r.err)
    assert.equal("", r.out, "no part of a script is written")
    -- up to the revision before it, the run goes ahead
    r = fx.run("upgrade", ids[2])
    assert.equal(0, r.code, r.err)
    assert.equal(ids[2], fx.psql("SELECT version_num FROM luamigrate_version"))
  end)
end)
