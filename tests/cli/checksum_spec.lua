-- An applied revision file edited afterwards is noticed: a warning naming the file and the
-- revision, or, with on_changed_file = "error", a refusal before anything runs.
local pg = require "helpers.pg"
local cli = require "helpers.cli"

describe("applied files that changed", function()
  local dir, url, dbname, files, ids

  before_each(function()
    files, ids = cli.chain(3)
    dir = cli.project { files = files }
    url, dbname = pg.new_db()
    assert.equal(0, cli.run({ "--url", url, "upgrade", ids[2] }, { cwd = dir }).code)
  end)

  after_each(function()
    cli.remove(dir)
    pg.drop_db(dbname)
  end)

  local function edit(i)
    local path = ("%s/migrations/versions/%s_step_%d.lua"):format(dir, ids[i], i)
    local f = assert(io.open(path, "a"))
    f:write("-- edited after it was applied\n")
    f:close()
    return ("migrations/versions/%s_step_%d.lua"):format(ids[i], i)
  end

  local function run(...) return cli.run({ "--url", url, ... }, { cwd = dir }) end

  it("says nothing while the files are as they were applied", function()
    local r = run("upgrade", "head")
    assert.equal(0, r.code, r.err)
    assert.falsy(r.err:find("warning", 1, true), r.err)
  end)

  it("warns, naming the file and the revision, and goes on", function()
    local path = edit(2)
    edit(3) -- not applied yet: nothing to say about it
    local r = run("upgrade", "head")
    assert.equal(0, r.code, r.err)
    assert.truthy(r.err:find(("luamigrate: warning: %s: revision %s was applied from a different version of this file")
      :format(path, ids[2]), 1, true), r.err)
    assert.falsy(r.err:find(ids[3] .. " was applied", 1, true), r.err)
    assert.equal(ids[3], pg.psql(url, "SELECT version_num FROM luamigrate_version"))
  end)

  -- The checksum is computed by luamigrate itself (no round trip per file); it is the same
  -- hex SHA-256 the server's sha256() gives for the file's bytes, which is what databases
  -- migrated by earlier versions hold, so their rows still compare equal.
  it("records the SHA-256 of the file's bytes, equal to the server's sha256()", function()
    local rel = ("migrations/versions/%s_step_%d.lua"):format(ids[1], 1)
    local hex = cli.slurp(dir .. "/" .. rel):gsub(".", function(c) return ("%02x"):format(c:byte()) end)
    local server = pg.psql(url, ("SELECT encode(sha256(decode('%s', 'hex')), 'hex')"):format(hex))
    local p = assert(io.popen("sha256sum " .. pg.shell_quote(dir .. "/" .. rel)))
    local tool = p:read("a"):match("^(%x+)")
    p:close()
    local recorded = pg.psql(url, ("SELECT checksum FROM luamigrate_version_history WHERE revision = '%s'")
      :format(ids[1]))
    assert.equal(tool, server)
    assert.equal(server, recorded)
    -- a row written the old way (by the server) compares equal: no warning
    pg.psql(url, ("UPDATE luamigrate_version_history SET checksum = encode(sha256(decode('%s', 'hex')), 'hex') "
      .. "WHERE revision = '%s'"):format(hex, ids[1]))
    local r = run("upgrade", "head")
    assert.equal(0, r.code, r.err)
    assert.falsy(r.err:find("warning", 1, true), r.err)
  end)

  -- A file whose mtime is older than its run (cp -p, rsync -a, tar, a checkout's dates) is
  -- still compared: the content alone decides.
  it("notices an edited file whose mtime is older than its run", function()
    local path = edit(2)
    assert(os.execute(("touch -d '2001-01-01' %s/%s"):format(dir, path)))
    local r = run("upgrade", "head")
    assert.equal(0, r.code, r.err)
    assert.truthy(r.err:find(("luamigrate: warning: %s: revision %s was applied from a different version of this file")
      :format(path, ids[2]), 1, true), r.err)
  end)

  it("refuses to run anything under on_changed_file = \"error\"", function()
    cli.write(dir .. "/luamigrate.lua", 'script_location = "migrations"\non_changed_file = "error"\n')
    local path = edit(1)
    local before = pg.dump(url)
    local r = run("upgrade", "head")
    assert.equal(1, r.code)
    assert.truthy(r.err:find(("luamigrate: %s: revision %s was applied from a different version of this file")
      :format(path, ids[1]), 1, true), r.err)
    assert.truthy(r.err:find("restore the file as it was applied", 1, true), r.err)
    assert.equal(before, pg.dump(url))
    cli.write(dir .. "/luamigrate.lua", 'script_location = "migrations"\non_changed_file = "sometimes"\n')
    r = run("upgrade", "head")
    assert.equal(2, r.code)
    assert.truthy(r.err:find('on_changed_file must be "warn" or "error", got "sometimes"', 1, true), r.err)
  end)
end)
