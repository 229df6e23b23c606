-- An applied revision file edited afterwards is noticed: a warning naming the file and the
-- revision, or, with on_changed_file = "error", a refusal of a command that would run it;
-- `repair` records a reviewed edit.
local pg = require "helpers.pg"
local cli = require "helpers.cli"
local fixture = require "helpers.fixture"

describe("applied files that changed", function()
  local fx = fixture.new()
  local dir, url, files, ids

  before_each(function()
    files, ids = cli.chain(3)
    dir, url = fx:open { files = files }
    assert.equal(0, cli.run({ "--url", url, "upgrade", ids[2] }, { cwd = dir }).code)
  end)

  local function edit(i)
    local path = ("%s/migrations/versions/%s_step_%d.lua"):format(dir, ids[i], i)
    local f = assert(io.open(path, "a"))
    f:write("-- edited after it was applied\n")
    f:close()
    return ("migrations/versions/%s_step_%d.lua"):format(ids[i], i)
  end

  local run = fx.run

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

  it("refuses, under on_changed_file = \"error\", only a command that would run a changed file", function()
    cli.write(dir .. "/luamigrate.lua", 'script_location = "migrations"\non_changed_file = "error"\n')
    local path = edit(1)
    local before = pg.dump(url)
    -- downgrade base would run the edited file's downgrade(): refused, nothing changed
    local r = run("downgrade", "base")
    assert.equal(1, r.code)
    assert.truthy(r.err:find(("luamigrate: %s: revision %s was applied from a different version of this file")
      :format(path, ids[1]), 1, true), r.err)
    assert.truthy(r.err:find("restore the file as it was applied", 1, true), r.err)
    assert.truthy(r.err:find("'luamigrate repair'", 1, true), r.err)
    assert.equal(before, pg.dump(url))
    -- an unrelated downgrade -1 (revision 2) and the upgrade (revisions 2, 3) run, with the warning
    r = run("downgrade", "-1")
    assert.equal(0, r.code, r.err)
    assert.truthy(r.err:find(("luamigrate: warning: %s: revision %s was applied"):format(path, ids[1]), 1, true), r.err)
    assert.equal(ids[1], pg.psql(url, "SELECT version_num FROM luamigrate_version"))
    r = run("upgrade", "head")
    assert.equal(0, r.code, r.err)
    assert.equal(ids[3], pg.psql(url, "SELECT version_num FROM luamigrate_version"))
    cli.write(dir .. "/luamigrate.lua", 'script_location = "migrations"\non_changed_file = "sometimes"\n')
    r = run("upgrade", "head")
    assert.equal(2, r.code)
    assert.truthy(r.err:find('on_changed_file must be "warn" or "error", got "sometimes"', 1, true), r.err)
  end)

  it("repair records a reviewed edit, and the warning stops", function()
    local path1, path2 = edit(1), edit(2)
    local r = run("status")
    assert.truthy(r.out:find("2 applied files changed since they ran", 1, true), r.out)
    -- one revision named: only it
    r = run("repair", ids[1])
    assert.equal(0, r.code, r.err)
    assert.truthy(r.out:find(("^Recorded %s as revision %s's file %%(sha256 %%x+%%)\n$"):format(
      path1:gsub("%p", "%%%0"), ids[1])), r.out)
    r = run("status")
    assert.truthy(r.out:find("1 applied file changed since it ran", 1, true), r.out)
    -- then every changed file; the recorded checksum is the file's sha256
    r = run("repair")
    assert.equal(0, r.code, r.err)
    assert.truthy(r.out:find(("Recorded %s as revision %s's file"):format(path2, ids[2]), 1, true), r.out)
    local sha = io.popen("sha256sum " .. pg.shell_quote(dir .. "/" .. path2)):read("l"):match("^%x+")
    assert.equal(sha, pg.psql(url, ("SELECT checksum FROM luamigrate_version_history WHERE revision = '%s' "
      .. "AND operation = 'upgrade' ORDER BY id DESC LIMIT 1"):format(ids[2])))
    r = run("upgrade", "head")
    assert.equal(0, r.code, r.err)
    assert.falsy(r.err:find("warning", 1, true), r.err)
    r = run("repair")
    assert.equal(0, r.code, r.err)
    assert.equal("No applied file changed since it ran: nothing to record\n", r.out)
    -- on_changed_file = "error" lets the downgrade of a repaired file run
    cli.write(dir .. "/luamigrate.lua", 'script_location = "migrations"\non_changed_file = "error"\n')
    r = run("downgrade", "base")
    assert.equal(0, r.code, r.err)
  end)
end)
