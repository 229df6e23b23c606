-- Finding the config, the URL's precedence, and passwords never shown.
local pg = require "helpers.pg"
local cli = require "helpers.cli"
local fixture = require "helpers.fixture"

describe("configuration", function()
  local fx = fixture.new()
  local dir, url, dbname

  before_each(function()
    url, dbname = fx:new_db()
    dir = fx:project { files = { ["migrations/versions/aaaa_x.lua"] = cli.revision("aaaa", nil, "") } }
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

  it("takes SQLAlchemy's postgresql+driver:// URL, saying so, and refuses other databases", function()
    -- a URL copied from alembic.ini: the driver part is dropped, with a note
    local sqla = ("postgresql+psycopg2://postgres@127.0.0.1:%s/%s"):format(pg.port, dbname)
    local r = cli.run({ "--url", sqla, "upgrade", "head" }, { cwd = dir })
    assert.equal(0, r.code, r.err)
    assert.truthy(r.err:find("--url: postgresql+psycopg2:// is SQLAlchemy's form of the URL; "
      .. "connecting with postgresql://", 1, true), r.err)
    assert.truthy(stamped())
    -- from DATABASE_URL too, naming it
    r = cli.run({ "current" }, { cwd = dir, env = { DATABASE_URL = sqla:gsub("psycopg2", "asyncpg") } })
    assert.equal(0, r.code, r.err)
    assert.equal("aaaa (head)\n", r.out)
    assert.truthy(r.err:find("DATABASE_URL: postgresql+asyncpg:// is SQLAlchemy's", 1, true), r.err)
    -- postgres+driver:// (and an empty driver) keep libpq's shorter postgres://
    for _, u in ipairs { (sqla:gsub("^postgresql%+psycopg2", "postgres+psycopg2")), (sqla:gsub("^postgresql%+psycopg2", "postgres+")) } do
      r = cli.run({ "--url", u, "current" }, { cwd = dir })
      assert.equal(0, r.code, r.err)
      assert.truthy(r.err:find("; connecting with postgres://\n", 1, true), r.err)
    end
    -- another database: one clear usage error, the password not in it
    for _, u in ipairs { "mysql://root:Sup3rS3cret@localhost/db", "mysql+pymysql://root:Sup3rS3cret@localhost/db",
      "sqlite:///app.db" } do
      r = cli.run({ "--url", u, "upgrade", "head" }, { cwd = dir })
      assert.equal(2, r.code, r.err)
      local scheme = u:match("^(%l+)")
      assert.truthy(r.err:find("luamigrate: --url: a " .. scheme .. ":// URL: luamigrate works with PostgreSQL only\n", 1, true), r.err)
      assert.falsy(r.err:find("Sup3rS3cret", 1, true))
    end
  end)

  it("shows libpq's reason for an unparsable URL with only the password hidden", function()
    local r = cli.run({ "--url", "postgresql://app:Sup3r%zz@localhost/db", "upgrade", "head" }, { cwd = dir })
    assert.equal(2, r.code, r.err)
    assert.truthy(r.err:find('invalid database URL or connection string: invalid percent-encoded token: "***"', 1, true), r.err)
    r = cli.run({ "--url", "postgresql://app@localhost/db?sslmode=%zz", "upgrade", "head" }, { cwd = dir })
    assert.equal(2, r.code, r.err)
    -- no password in it: nothing is hidden
    assert.truthy(r.err:find('invalid percent-encoded token: "%zz"', 1, true), r.err)
  end)

  it("names the database a changing command uses when no URL is given at all", function()
    local env = { PGHOST = pg.host, PGPORT = pg.port, PGUSER = "postgres", PGDATABASE = dbname }
    cli.write(dir .. "/luamigrate.lua", 'script_location = "migrations"\nurl = os.getenv("DATABASE_URL")\n')
    local r = cli.run({ "upgrade", "head" }, { cwd = dir, env = env, unset = { "DATABASE_URL" } })
    assert.equal(0, r.code, r.err)
    assert.truthy(r.err:find("No database URL given (--url, DATABASE_URL or the config's url): using "
      .. "libpq's defaults, postgresql://postgres@:" .. pg.port .. "/" .. dbname, 1, true), r.err)
    assert.truthy(stamped())
    -- reading commands stay quiet; a URL given keeps it quiet
    r = cli.run({ "current" }, { cwd = dir, env = env, unset = { "DATABASE_URL" } })
    assert.equal("", r.err)
    r = cli.run({ "--url", url, "downgrade", "base" }, { cwd = dir })
    assert.equal(0, r.code, r.err)
    assert.falsy(r.err:find("No database URL", 1, true), r.err)
  end)
end)
