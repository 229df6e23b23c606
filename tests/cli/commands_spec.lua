-- init, revision, heads, history, show, current, stamp and --help, with Alembic's formats.
local pg = require "helpers.pg"
local cli = require "helpers.cli"
local fixture = require "helpers.fixture"

describe("the commands", function()
  local fx = fixture.new()
  local dir, url

  before_each(function()
    url = fx:new_db()
    dir = fx:project { empty = true }
  end)

  local run = fx.run

  it("two concurrent revision --rev-id X: one creates the file, the other says the id is taken", function()
    assert.equal(0, run("init", "migrations").code)
    -- The versions directory is locked until both runs wait for it (seen in /proc/locks as
    -- two waiters on its inode), so both have passed the check against the files they loaded
    -- before either writes -- however slowly they start (valgrind, a loaded machine).
    local versions = dir .. "/migrations/versions"
    local hold = dir .. "/hold"
    assert(io.open(hold, "w")):close()
    os.execute(("flock -x %s -c 'while [ -e %s ]; do sleep 0.05; done' &")
      :format(pg.shell_quote(versions), pg.shell_quote(hold)))
    local p = assert(io.popen("stat -c %i " .. pg.shell_quote(versions)))
    local inode = p:read("l")
    p:close()
    local function waiters()
      local n = 0
      for line in io.lines("/proc/locks") do
        if line:find("-> FLOCK", 1, true) and line:find(":" .. inode .. " ", 1, true) then n = n + 1 end
      end
      return n
    end
    local a = cli.spawn({ "revision", "-m", "first", "--rev-id", "same1" }, { cwd = dir })
    local b = cli.spawn({ "revision", "-m", "second", "--rev-id", "same1" }, { cwd = dir })
    local deadline = os.time() + 120
    while waiters() < 2 and os.time() < deadline do os.execute("sleep 0.05") end
    local seen = waiters()
    os.remove(hold)
    local ra, rb = a.wait(), b.wait()
    assert.equal(2, seen, "both runs should have waited for the versions directory")
    p = assert(io.popen("ls " .. pg.shell_quote(versions)))
    local files = p:read("a")
    p:close()
    local _, n = files:gsub("same1_", "")
    assert.equal(1, n, files)
    assert.equal(1, (ra.code == 0 and 1 or 0) + (rb.code == 0 and 1 or 0), ra.err .. rb.err)
    local loser = ra.code == 0 and rb or ra
    assert.equal(2, loser.code)
    assert.truthy(loser.err:find("Revision same1 already present: migrations/versions/same1_%a+%.lua was created meanwhile"), loser.err)
  end)

  it("init creates missing parents, and a directory it cannot make is a usage error (exit 2)", function()
    local r = run("init", "db/migrations")
    assert.equal(0, r.code, r.err)
    assert.equal("Creating directory db ... done\nCreating directory db/migrations ... done\n"
      .. "Creating directory db/migrations/versions ... done\n", r.out:match("^(.-)Generating"))
    assert.truthy(io.open(dir .. "/db/migrations/script.lua.tmpl"))
    assert.truthy(cli.slurp(dir .. "/luamigrate.lua"):find('script_location = "db/migrations"', 1, true))
    r = run("heads")
    assert.equal(0, r.code, r.err)
    -- a parent that is a file
    os.remove(dir .. "/luamigrate.lua")
    cli.write(dir .. "/afile", "")
    r = run("init", "afile/migrations")
    assert.equal(2, r.code, r.err)
    assert.truthy(r.err:find("luamigrate: cannot create afile/migrations: Not a directory", 1, true), r.err)
  end)

  it("init creates a project, revision adds files that upgrade", function()
    local r = run("init", "migrations")
    assert.equal(0, r.code, r.err)
    assert.truthy(r.out:find("Generating luamigrate.lua ... done", 1, true))
    assert.truthy(io.open(dir .. "/migrations/script.lua.tmpl"))
    r = run("init", "migrations")
    assert.equal(2, r.code)

    r = run("revision", "-m", "create account", "--rev-id", "aaaa1111")
    assert.equal(0, r.code, r.err)
    assert.equal("Generating migrations/versions/aaaa1111_create_account.lua ... done\n", r.out)
    r = run("revision", "-m", "Add a column!")
    assert.equal(0, r.code, r.err)
    local id = r.out:match("versions/(%x+)_add_a_column%.lua")
    assert.truthy(id and #id == 12, r.out)
    local text = cli.slurp(dir .. "/migrations/versions/" .. id .. "_add_a_column.lua")
    assert.truthy(text:find('down_revision = "aaaa1111"', 1, true))
    assert.truthy(text:find("Revises: aaaa1111", 1, true))
    local mode = io.popen("stat -c %a " .. dir .. "/migrations/versions/" .. id .. "_add_a_column.lua"):read("l")
    assert.equal("644", mode)

    -- fill in the first revision and run it
    local p1 = dir .. "/migrations/versions/aaaa1111_create_account.lua"
    cli.write(p1, (cli.slurp(p1):gsub("function upgrade%(%)\nend",
      'function upgrade()\n  op.execute("CREATE TABLE account (id serial PRIMARY KEY, name text)")\nend')))
    r = run("upgrade", "head")
    assert.equal(0, r.code, r.err)
    assert.equal(id, pg.psql(url, "SELECT version_num FROM luamigrate_version"))
    assert.equal("account", pg.psql(url, "SELECT to_regclass('account')::text"))

    r = run("heads")
    assert.equal(id .. " (head)\n", r.out)
    r = run("current")
    assert.equal(id .. " (head)\n", r.out)
    r = run("history")
    assert.equal("aaaa1111 -> " .. id .. " (head), Add a column!\n<base> -> aaaa1111, create account\n", r.out)
    r = run("history", "-r", "aaaa1111:aaaa1111")
    assert.equal("<base> -> aaaa1111, create account\n", r.out)
    r = run("history", "-r", "aaaa1111")
    assert.equal(2, r.code)
    assert.truthy(r.err:find("History range requires [start]:[end], [start]:, or :[end]", 1, true))
    r = run("show", "aaaa")
    assert.equal(0, r.code, r.err)
    assert.truthy(r.out:find("^Rev: aaaa1111\nParent: <base>\nPath: migrations/versions/aaaa1111_create_account.lua\n\n    create account\n"), r.out)
  end)

  it("revision refuses to guess between several heads", function()
    local files = {
      ["migrations/versions/aaaa_x.lua"] = cli.revision("aaaa", nil),
      ["migrations/versions/bbbb_x.lua"] = cli.revision("bbbb", "aaaa"),
      ["migrations/versions/cccc_x.lua"] = cli.revision("cccc", "aaaa"),
    }
    cli.remove(dir)
    dir = fx:project { files = files }
    local r = run("revision", "-m", "next")
    assert.equal(2, r.code)
    assert.truthy(r.err:find("Multiple heads are present; please specify the head revision", 1, true))
    r = run("revision", "-m", "on b", "--head", "bbbb", "--rev-id", "dddd")
    assert.equal(0, r.code, r.err)
    r = run("revision", "-m", "on a", "--head", "aaaa", "--rev-id", "eeee")
    assert.equal(2, r.code)
    assert.truthy(r.err:find("Revision aaaa is not a head revision; please specify --splice", 1, true))
    r = run("heads")
    assert.equal("cccc (head)\ndddd (head)\n", r.out)
  end)

  it("stamp sets the version table without running migrations", function()
    local files, ids = cli.chain(3)
    cli.remove(dir)
    dir = fx:project { files = files }
    local r = run("stamp", ids[2])
    assert.equal(0, r.code, r.err)
    assert.equal(ids[2], pg.psql(url, "SELECT version_num FROM luamigrate_version"))
    assert.equal("", pg.psql(url, "SELECT coalesce(to_regclass('t1')::text, '')"))
    assert.equal("stamp", pg.psql(url, "SELECT operation FROM luamigrate_version_history"))
    r = run("current")
    assert.equal(ids[2] .. "\n", r.out)
    r = run("stamp", "base")
    assert.equal(0, r.code, r.err)
    assert.equal("0", pg.psql(url, "SELECT count(*) FROM luamigrate_version"))
  end)

  it("current is empty and creates nothing on a fresh database", function()
    cli.remove(dir)
    dir = fx:project { files = { ["migrations/versions/aaaa_x.lua"] = cli.revision("aaaa", nil) } }
    local r = run("current")
    assert.equal(0, r.code, r.err)
    assert.equal("", r.out)
    assert.equal("", pg.psql(url, "SELECT coalesce(to_regclass('luamigrate_version')::text, '')"))
  end)

  it("has --help for every command and documents exit codes", function()
    local r = cli.run({ "--help" })
    assert.equal(0, r.code)
    assert.truthy(r.out:find("exit status:\n  0  success\n  1  a migration or database error", 1, true), r.out)
    assert.truthy(r.out:find("\n  2  a usage or config error", 1, true), r.out)
    for _, c in ipairs { "init", "revision", "upgrade", "downgrade", "current", "heads", "history", "show", "stamp" } do
      r = cli.run({ c, "--help" })
      assert.equal(0, r.code, c)
      assert.truthy(r.out:find("^usage: luamigrate " .. c), r.out)
      assert.truthy(r.out:find("example:", 1, true), c)
    end
    r = cli.run({ "--version" })
    assert.truthy(r.out:find("^luamigrate %d+%.%d+%.%d+\n$"))
  end)
end)
