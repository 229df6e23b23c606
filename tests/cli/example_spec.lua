-- The example project in migrations/ (the users_db of the Alembic how-to): up to head with
-- the EMPLOYEE enum change, down to base, and the same schema through --sql and psql.
local pg = require "helpers.pg"
local cli = require "helpers.cli"
local fixture = require "helpers.fixture"

describe("the example project", function()
  local fx = fixture.new()
  local url

  before_each(function() url = fx:new_db("users_db") end)

  local function run(...)
    return cli.run({ "--url", url, ... }, { cwd = cli.src })
  end

  it("upgrades to head, adding EMPLOYEE while keeping rows and defaults", function()
    assert.equal(0, run("upgrade", "27133ce191df").code)
    pg.psql(url, "INSERT INTO users (email) VALUES ('a@example.com')")
    local r = run("upgrade", "head")
    assert.equal(0, r.code, r.err)
    assert.equal("{SUPER_ADMIN,ADMIN,USER,EMPLOYEE}", pg.psql(url, "SELECT enum_range(NULL::role_enum)::text"))
    assert.equal("USER", pg.psql(url, "SELECT role FROM users"))
    assert.equal("'USER'::role_enum", pg.psql(url, [[SELECT column_default FROM information_schema.columns
      WHERE table_name = 'users' AND column_name = 'role']]))
    pg.psql(url, "INSERT INTO users (email, role) VALUES ('e@example.com', 'EMPLOYEE')")
    assert.equal("", pg.psql(url, "SELECT coalesce(to_regtype('tmp_role_enum')::text, '')"))
    assert.equal("3c52d30040ed (head)\n", run("current").out)
    -- the declared schema (migrations/schema.lua) is what the migrations built
    r = run("check")
    assert.equal(0, r.code, r.out .. r.err)
    assert.equal("No new upgrade operations detected.\n", r.out)
  end)

  it("refuses to downgrade while a row holds EMPLOYEE, then downgrades to base", function()
    assert.equal(0, run("upgrade", "head").code)
    pg.psql(url, "INSERT INTO users (email, role) VALUES ('e@example.com', 'EMPLOYEE')")
    local r = run("downgrade", "-1")
    assert.equal(1, r.code)
    assert.truthy(r.err:find('invalid input value for enum role_enum: "EMPLOYEE"', 1, true), r.err)
    assert.equal("{SUPER_ADMIN,ADMIN,USER,EMPLOYEE}", pg.psql(url, "SELECT enum_range(NULL::role_enum)::text"))
    pg.psql(url, "DELETE FROM users")
    assert.equal(0, run("downgrade", "-1").code)
    assert.equal("{SUPER_ADMIN,ADMIN,USER}", pg.psql(url, "SELECT enum_range(NULL::role_enum)::text"))
    r = run("downgrade", "base")
    assert.equal(0, r.code, r.err)
    assert.equal("0", pg.psql(url, [[SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE n.nspname = 'public' AND c.relname IN ('users', 'role_permissions')]]))
    assert.equal("", pg.psql(url, "SELECT coalesce(to_regtype('role_enum')::text, '')"))
  end)

  it("gives the same schema online and through upgrade --sql applied by psql", function()
    assert.equal(0, run("upgrade", "head").code)
    local online = pg.schema_dump(url)
    local url2, db2 = pg.new_db("users_db_sql")
    local r = run("upgrade", "head", "--sql")
    assert.equal(0, r.code, r.err)
    assert.truthy(r.out:find("^SET client_encoding = 'UTF8';\n\nBEGIN;\n"))
    assert.truthy(r.out:find("-- Running upgrade 27133ce191df -> 3c52d30040ed\n", 1, true))
    local sqlfile = os.tmpname()
    cli.write(sqlfile, r.out)
    local ok = os.execute((pg.tool .. "psql -XAtq -v ON_ERROR_STOP=1 -d %s -f %s >/dev/null 2>&1"):format(pg.shell_quote(url2), sqlfile))
    os.remove(sqlfile)
    assert.is_true(ok)
    assert.equal(online, pg.schema_dump(url2))
    assert.equal("3c52d30040ed", pg.psql(url2, "SELECT version_num FROM luamigrate_version"))
    pg.drop_db(db2)
  end)
end)
