-- Finding the config, the URL's precedence, and passwords never shown.
local pg = require "helpers.pg"
local cli = require "helpers.cli"

describe("configuration", function()
  local dir, url, dbname

  before_each(function()
    url, dbname = pg.new_db()
    dir = cli.project { files = { ["migrations/versions/aaaa_x.lua"] = cli.revision("aaaa", nil, "") } }
  end)

  after_each(function()
    cli.remove(dir)
    pg.drop_db(dbname)
  end)

  local function stamped()
    return pg.psql(url, "SELECT coalesce(to_regclass('luamigrate_version')::text, '')") ~= ""
  end

  it("finds luamigrate.lua from a subdirectory", function()
    cli.mkdir_p(dir .. "/sub/deeper")
    local r = cli.run({ "--url", url, "upgrade", "head" }, { cwd = dir .. "/sub/deeper" })
    assert.equal(0, r.code, r.err)
    assert.truthy(stamped())
    r = cli.run({ "--url", url, "show", "head" }, { cwd = dir .. "/sub/deeper" })
    assert.truthy(r.out:find("Path: ../../migrations/versions/aaaa_x.lua", 1, true), r.out)
  end)

  it("takes -c and LUAMIGRATE_CONFIG", function()
    local r = cli.run({ "-c", dir .. "/luamigrate.lua", "--url", url, "heads" }, { cwd = "/" })
    assert.equal(0, r.code, r.err)
    assert.equal("aaaa (head)\n", r.out)
    r = cli.run({ "heads" }, { cwd = "/", env = { LUAMIGRATE_CONFIG = dir .. "/luamigrate.lua" } })
    assert.equal("aaaa (head)\n", r.out)
    r = cli.run({ "-c", "/nonexistent/luamigrate.lua", "heads" }, { cwd = "/" })
    assert.equal(2, r.code)
    assert.truthy(r.err:find("config file '/nonexistent/luamigrate.lua' not found", 1, true))
  end)

  it("refuses a lock_retries that is not a whole number from 0 to 20", function()
    for _, v in ipairs { "2.5", "-1", "21", "4294967296", "0/0" } do
      cli.write(dir .. "/luamigrate.lua", ('script_location = "migrations"\nlock_retries = %s\n'):format(v))
      local r = cli.run({ "--url", url, "upgrade", "head" }, { cwd = dir })
      assert.equal(2, r.code, v .. ": " .. r.err)
      assert.truthy(r.err:find("luamigrate.lua: lock_retries must be a whole number from 0 to 20", 1, true), r.err)
    end
    assert.is_false(stamped())
    cli.write(dir .. "/luamigrate.lua", 'script_location = "migrations"\nlock_retries = 20\n')
    assert.equal(0, cli.run({ "--url", url, "upgrade", "head" }, { cwd = dir }).code)
  end)

  it("says how to start when there is no config", function()
    local r = cli.run({ "heads" }, { cwd = "/", unset = { "LUAMIGRATE_CONFIG" } })
    assert.equal(2, r.code)
    assert.truthy(r.err:find("no luamigrate.lua found", 1, true))
  end)

  it("prefers --url over DATABASE_URL over the config's url", function()
    local bad = "host=" .. pg.host .. " port=" .. pg.port .. " user=postgres dbname=no_such_db_xyz"
    cli.write(dir .. "/luamigrate.lua", 'script_location = "migrations"\nurl = "' .. bad .. '"\n')
    local r = cli.run({ "upgrade", "head" }, { cwd = dir, unset = { "DATABASE_URL" } })
    assert.equal(1, r.code)
    assert.truthy(r.err:find("no_such_db_xyz", 1, true))
    r = cli.run({ "upgrade", "head" }, { cwd = dir, env = { DATABASE_URL = url } })
    assert.equal(0, r.code, r.err)
    pg.psql(url, "DELETE FROM luamigrate_version")
    r = cli.run({ "--url", url, "upgrade", "head" }, { cwd = dir, env = { DATABASE_URL = bad } })
    assert.equal(0, r.code, r.err)
  end)

  it("never prints a password", function()
    pg.psql(url, "DO $$ BEGIN CREATE ROLE lm_secret_user LOGIN PASSWORD 'Sup3rS3cret'; "
      .. "EXCEPTION WHEN duplicate_object THEN NULL; END $$")
    local with_pw = ("postgresql://lm_secret_user:Sup3rS3cret@127.0.0.1:%s/%s"):format(pg.port, dbname)
    local r = cli.run({ "--url", with_pw, "current", "-v" }, { cwd = dir })
    assert.equal(0, r.code, r.err)
    assert.truthy(r.out:find("Current revision(s) for postgresql://lm_secret_user:***@127.0.0.1:" .. pg.port, 1, true), r.out)
    assert.falsy((r.out .. r.err):find("Sup3rS3cret", 1, true))
    local unreachable = "postgresql://lm_secret_user:Sup3rS3cret@127.0.0.1:1/" .. dbname
    r = cli.run({ "--url", unreachable, "upgrade", "head" }, { cwd = dir })
    assert.equal(1, r.code)
    assert.truthy(r.err:find("cannot connect to postgresql://lm_secret_user:***@127.0.0.1:1/", 1, true), r.err)
    assert.falsy((r.out .. r.err):find("Sup3rS3cret", 1, true))
  end)
end)
