-- Fleet runs (--targets): tenant databases spread over three PostgreSQL servers (the test
-- server and two started here), each migration logging itself into the tenant's
-- applied table, so every test can show that each migration ran exactly once per target.
local pg = require "helpers.pg"
local cli = require "helpers.cli"
local pgserver = require "helpers.pgserver"
local json = require "dkjson"

-- m1 creates the tenant's tables, m2 adds a column, m3 a constraint that a bad row breaks.
local FILES = {
  ["migrations/versions/m1_accounts.lua"] = cli.revision("m1", nil, [[
  op.execute("CREATE TABLE applied (rev text NOT NULL)")
  op.execute("CREATE TABLE accounts (id serial PRIMARY KEY, email text NOT NULL)")
  op.execute("INSERT INTO applied VALUES ('m1')")
]], [[  op.execute("DROP TABLE accounts")
  op.execute("DROP TABLE applied")]]),
  ["migrations/versions/m2_plan.lua"] = cli.revision("m2", "m1", [[
  op.execute("ALTER TABLE accounts ADD COLUMN plan text NOT NULL DEFAULT 'free'")
  op.execute("INSERT INTO applied VALUES ('m2')")
]], [[  op.execute("ALTER TABLE accounts DROP COLUMN plan")
  op.execute("DELETE FROM applied WHERE rev = 'm2'")]]),
  ["migrations/versions/m3_email_check.lua"] = cli.revision("m3", "m2", [[
  op.execute("ALTER TABLE accounts ADD CONSTRAINT email_has_at CHECK (email LIKE '%@%')")
  op.execute("INSERT INTO applied VALUES ('m3')")
]], [[  op.execute("ALTER TABLE accounts DROP CONSTRAINT email_has_at")
  op.execute("DELETE FROM applied WHERE rev = 'm3'")]]),
}

describe("a fleet run", function()
  local servers, tenants, dir = {}, {}, nil
  local counter = 0

  local function config(list)
    local t = { 'script_location = "migrations"', "targets = {" }
    for _, x in ipairs(list) do t[#t + 1] = ("  { name = %q, url = %q },"):format(x.name, x.url) end
    t[#t + 1] = "}"
    return table.concat(t, "\n") .. "\n"
  end

  -- Five tenants over three servers: the eu-* on the test server, us-1 on the second, us-2
  -- on the third (fresh databases for each test). With --parallel 2 (one run per server at
  -- once) the eu-* run one after another, and the us-* beside them from the start.
  local function fleet()
    counter = counter + 1
    tenants = {}
    local spread = { { "eu-1", 1 }, { "eu-2", 1 }, { "eu-3", 1 }, { "us-1", 2 }, { "us-2", 3 } }
    for _, s in ipairs(spread) do
      local db = ("fleet_%d_%s"):format(counter, s[1]:gsub("-", "_"))
      local srv = servers[s[2]]
      srv:psql("postgres", "CREATE DATABASE " .. db)
      tenants[#tenants + 1] = { name = s[1], url = srv:conninfo(db), server = srv, db = db }
    end
    dir = cli.project { files = FILES, config = config(tenants) }
  end

  local function log(t)
    if pg.psql(t.url, "SELECT to_regclass('applied') IS NULL") == "t" then return "" end
    return pg.psql(t.url, "SELECT coalesce(string_agg(rev, ',' ORDER BY rev), '') FROM applied")
  end
  local function version(t)
    if pg.psql(t.url, "SELECT to_regclass('luamigrate_version') IS NULL") == "t" then return "" end
    return pg.psql(t.url, "SELECT coalesce(string_agg(version_num, ','), '') FROM luamigrate_version")
  end
  local function run(args) return cli.run(args, { cwd = dir }) end

  setup(function()
    servers = { pgserver.test_server(), pgserver.start(), pgserver.start() }
  end)

  teardown(function()
    for _, s in ipairs(servers) do s:stop() end
  end)

  before_each(fleet)

  after_each(function()
    for _, t in ipairs(tenants) do t.server:psql("postgres", "DROP DATABASE IF EXISTS " .. t.db .. " WITH (FORCE)") end
    cli.remove(dir)
  end)

  it("upgrades every selected target once, a line each, then a summary; a re-run applies nothing", function()
    local r = run { "-t", "*", "upgrade", "head" }
    assert.equal(0, r.code, r.err)
    for _, t in ipairs(tenants) do
      assert.equal("m1,m2,m3", log(t))
      assert.equal("m3", version(t))
      assert.truthy(r.out:find("\n?" .. t.name:gsub("%-", "%%-") .. ": base %-> m3, 3 steps, %d+ ms\n"), r.out)
    end
    assert.truthy(r.out:find("5 upgraded, 0 already there, 0 failed, 0 not started", 1, true), r.out)
    r = run { "--targets", "*", "--parallel", "2", "upgrade", "head" }
    assert.equal(0, r.code, r.err)
    assert.truthy(r.out:find("eu-1: m3 -> m3, 0 steps", 1, true), r.out)
    assert.truthy(r.out:find("0 upgraded, 5 already there, 0 failed, 0 not started", 1, true), r.out)
    for _, t in ipairs(tenants) do assert.equal("m1,m2,m3", log(t)) end
  end)

  it("selects by comma-separated globs, and current and downgrade work over the selection", function()
    local r = run { "-t", "eu-*,us-2", "upgrade", "m2" }
    assert.equal(0, r.code, r.err)
    assert.equal("", version(tenants[4]), "us-1 was not selected")
    r = run { "-t", "us-*", "current" }
    assert.equal(0, r.code, r.err)
    assert.truthy(r.out:find("us-1: base\n", 1, true), r.out)
    assert.truthy(r.out:find("us-2: m2\n", 1, true), r.out)
    assert.falsy(r.out:find("eu-1", 1, true), r.out)
    r = run { "-t", "eu-1,eu-2", "downgrade", "-1" }
    assert.equal(0, r.code, r.err)
    assert.truthy(r.out:find("eu%-1: m2 %-> m1, 1 step, %d+ ms"), r.out)
    assert.truthy(r.out:find("2 downgraded, 0 already there", 1, true), r.out)
    assert.equal("m1", log(tenants[1]))
    assert.equal("m1,m2", log(tenants[3]))
  end)

  describe("with one target failing", function()
    before_each(function()
      local r = run { "-t", "*", "upgrade", "m2" }
      assert.equal(0, r.code, r.err)
      pg.psql(tenants[2].url, "INSERT INTO accounts (email) VALUES ('no-at-sign')")
    end)

    it("starts no new target after the failure by default, and says what was not started", function()
      local r = run { "-t", "*", "--parallel", "2", "upgrade", "head" }
      assert.equal(1, r.code, r.out .. r.err)
      assert.equal("m1,m2,m3", log(tenants[1]))
      assert.equal("m1,m2", log(tenants[2]))
      assert.equal("m2", version(tenants[2]))
      assert.equal("m1,m2", log(tenants[3]), "eu-3 waited for eu-2 on their server, and was not started")
      for i = 4, 5 do assert.equal("m1,m2,m3", log(tenants[i]), "started at once, on servers of their own") end
      assert.truthy(r.out:find("\neu%-2: FAILED: [^\n]*email_has_at"), r.out)
      assert.truthy(r.out:find("3 upgraded, 0 already there, 1 failed, 1 not started", 1, true), r.out)
      assert.truthy(r.out:find("failures:\neu-2: ", 1, true), r.out)
      assert.truthy(r.err:find("1 of 5 targets failed", 1, true), r.err)
    end)

    it("--keep-going starts all; the failed target alone is left behind, and a re-run finishes it", function()
      local r = run { "-t", "*", "--parallel", "2", "--keep-going", "upgrade", "head" }
      assert.equal(1, r.code, r.out .. r.err)
      assert.truthy(r.out:find("4 upgraded, 0 already there, 1 failed, 0 not started", 1, true), r.out)
      for i, t in ipairs(tenants) do assert.equal(i == 2 and "m1,m2" or "m1,m2,m3", log(t)) end
      pg.psql(tenants[2].url, "DELETE FROM accounts WHERE email = 'no-at-sign'")
      r = run { "-t", "*", "upgrade", "head" }
      assert.equal(0, r.code, r.out .. r.err)
      assert.truthy(r.out:find("eu-2: m2 -> m3, 1 step", 1, true), r.out)
      assert.truthy(r.out:find("1 upgraded, 4 already there, 0 failed, 0 not started", 1, true), r.out)
      for _, t in ipairs(tenants) do assert.equal("m1,m2,m3", log(t)) end
    end)

    it("--canary N runs the first N targets first, and the others only when those all succeeded", function()
      local r = run { "-t", "*", "--canary", "2", "--keep-going", "upgrade", "head" }
      assert.equal(1, r.code, r.out .. r.err)
      assert.equal("m1,m2,m3", log(tenants[1]))
      for i = 2, 5 do assert.equal("m1,m2", log(tenants[i])) end
      assert.truthy(r.out:find("1 upgraded, 0 already there, 1 failed, 3 not started", 1, true), r.out)
      assert.truthy(r.err:find("1 of the 2 canary targets failed: the other 3 were not started", 1, true), r.err)
      r = run { "-t", "eu-1,eu-3,us-*", "--canary", "1", "upgrade", "head" }
      assert.equal(0, r.code, r.out .. r.err)
      assert.truthy(r.out:find("3 upgraded, 1 already there, 0 failed, 0 not started", 1, true), r.out)
      assert.equal("m1,m2", log(tenants[2]))
      -- the canary is the first target that needs a run (eu-2), not eu-1, already there
      assert.equal(0, run({ "-t", "us-2", "downgrade", "m2" }).code)
      r = run { "-t", "*", "--canary", "1", "upgrade", "head" }
      assert.equal(1, r.code, r.out .. r.err)
      assert.truthy(r.out:find("0 upgraded, 3 already there, 1 failed, 1 not started", 1, true), r.out)
      assert.truthy(r.err:find("1 of the 1 canary targets failed: the other 1 were not started", 1, true), r.err)
      assert.equal("m1,m2", log(tenants[5]))
    end)

    it("--canary: a failed canary keeps the canaries not started yet from starting, and says so", function()
      -- eu-1, eu-2, eu-3 are the canaries, one at a time on their server: eu-3 never starts
      local r = run { "-t", "*", "--canary", "3", "--parallel", "2", "upgrade", "head" }
      assert.equal(1, r.code, r.out .. r.err)
      assert.truthy(r.out:find("1 upgraded, 0 already there, 1 failed, 3 not started", 1, true), r.out)
      assert.truthy(r.err:find("1 of the 3 canary targets failed: 3 were not started, 1 of them canaries", 1, true),
        r.err)
      for i = 3, 5 do assert.equal("m1,m2", log(tenants[i])) end
    end)

    it("--json prints one object per target with its status, revisions, steps, duration and error", function()
      local r = run { "-t", "*", "--parallel", "2", "--json", "upgrade", "head" }
      assert.equal(1, r.code, r.out .. r.err)
      local seen = {}
      for line in r.out:gmatch("[^\n]+") do
        local o = assert(json.decode(line), line)
        seen[o.target] = o
        for _, k in ipairs { "target", "status", "steps", "duration_ms" } do assert.is_not_nil(o[k], line) end
      end
      assert.equal("upgraded", seen["eu-1"].status)
      assert.same({ "m2", "m3", 1 }, { seen["eu-1"].from, seen["eu-1"].to, seen["eu-1"].steps })
      assert.is_nil(seen["eu-1"].error)
      assert.truthy(r.out:find('"target": "eu%-1", [^\n]*"error": null, "messages": null}'), r.out)
      assert.equal("failed", seen["eu-2"].status)
      assert.same({ "m2", "m2", 0 }, { seen["eu-2"].from, seen["eu-2"].to, seen["eu-2"].steps })
      assert.truthy(seen["eu-2"].error:find("email_has_at", 1, true), seen["eu-2"].error)
      assert.same({ "not_started", "upgraded", "upgraded" }, { seen["eu-3"].status, seen["us-1"].status,
        seen["us-2"].status })
    end)
  end)

  it("two fleet runs at once still apply each migration once per target", function()
    local a = cli.spawn({ "-t", "*", "upgrade", "head" }, { cwd = dir })
    local b = cli.spawn({ "-t", "*", "--parallel", "3", "upgrade", "head" }, { cwd = dir })
    local ra, rb = a:wait(), b:wait()
    assert.equal(0, ra.code, ra.out .. ra.err)
    assert.equal(0, rb.code, rb.out .. rb.err)
    for _, t in ipairs(tenants) do assert.equal("m1,m2,m3", log(t)) end
    local all = ra.out .. rb.out
    local _, ups = all:gsub("base %-> m3, 3 steps", "")
    local _, noops = all:gsub("m3 %-> m3, 0 steps", "")
    assert.same({ 5, 5 }, { ups, noops }, all)
  end)

  it("refuses usage errors with exit 2 and one message", function()
    local cases = {
      { { "-t", "asia-*", "upgrade", "head" }, "--targets: 'asia-*' matches no target" },
      { { "-t", "*", "history" },
        "--targets works with upgrade, downgrade, current, stamp, status, check and lint, not with history" },
      { { "-t", "*", "--parallel", "1", "upgrade", "head" },
        "--parallel 1: each target's run holds 2 connections to its server (a work and a lock connection, "
          .. "lock = session); give --parallel 2 or more" },
      { { "-t", "*", "upgrade", "--sql", "head" }, "--targets: upgrade --sql writes one SQL script for one database" },
      { { "-t", "*", "--parallel", "0", "upgrade", "head" }, "--parallel '0': expected a number from 1 to 1000" },
      { { "--keep-going", "upgrade", "head" }, "--keep-going needs --targets PATTERN" },
      { { "-t", "*", "--canary", "x", "upgrade", "head" }, "--canary 'x': expected a number of targets" },
    }
    for _, c in ipairs(cases) do
      local r = run(c[1])
      assert.equal(2, r.code, table.concat(c[1], " ") .. "\n" .. r.err)
      assert.truthy(r.err:find(c[2], 1, true), r.err)
    end
    -- a command line every target's run refuses, as a single-target run would (exit 2)
    for _, c in ipairs {
      { { "-t", "*", "upgrade", "nosuch" }, "eu-1: FAILED: Can't locate revision identified by 'nosuch'" },
      { { "-t", "*", "upgrade", "head", "extra" }, "eu-1: FAILED: upgrade: unexpected argument 'extra'" },
    } do
      local r = run(c[1])
      assert.equal(2, r.code, table.concat(c[1], " ") .. "\n" .. r.out .. r.err)
      assert.truthy(r.out:find(c[2], 1, true), r.out)
    end
    for _, t in ipairs(tenants) do assert.equal("", version(t)) end
    -- one target's own state is no usage error when another target succeeds: exit 1
    assert.equal(0, run({ "-t", "eu-1", "upgrade", "m1" }).code)
    pg.psql(tenants[1].url, "UPDATE luamigrate_version SET version_num = 'gone'")
    local r = run { "-t", "eu-1,eu-2", "--keep-going", "upgrade", "m1" }
    assert.equal(1, r.code, r.out .. r.err)
    assert.truthy(r.out:find("eu-1: FAILED: Can't locate revision identified by 'gone'", 1, true), r.out)
    assert.truthy(r.out:find("eu-2: base -> m1, 1 step", 1, true), r.out)
  end)
end)

describe("schema targets", function()
  local dir, url, dbname
  local N = 60

  before_each(function()
    url, dbname = pg.new_db("fleetschemas")
    local t, create = { 'script_location = "migrations"', ("url = %q"):format(url), "targets = {}" }, {}
    for i = 1, N do
      create[#create + 1] = ("CREATE SCHEMA tenant_%02d;"):format(i)
      t[#t + 1] = ("targets[#targets + 1] = { name = 't%02d', schema = 'tenant_%02d' }"):format(i, i)
    end
    t[#t + 1] = "targets[#targets + 1] = { name = 'missing', schema = 'tenant_none' }"
    pg.psql(url, table.concat(create, " "))
    dir = cli.project { files = FILES, config = table.concat(t, "\n") .. "\n" }
  end)

  after_each(function()
    cli.remove(dir)
    pg.drop_db(dbname)
  end)

  it("migrate each tenant's schema once, with luamigrate's tables in it; a missing schema fails alone", function()
    local r = cli.run({ "-t", "t*", "--parallel", "4", "upgrade", "head" }, { cwd = dir })
    assert.equal(0, r.code, r.out .. r.err)
    assert.truthy(r.out:find(N .. " upgraded, 0 already there, 0 failed, 0 not started", 1, true), r.out)
    local per = pg.psql(url, "SELECT count(DISTINCT table_schema) FROM information_schema.tables "
      .. "WHERE table_name IN ('applied', 'accounts', 'luamigrate_version', 'luamigrate_version_history')"
      .. " GROUP BY table_name ORDER BY 1")
    assert.equal((tostring(N) .. "\n"):rep(4):sub(1, -2), per)
    assert.equal("0", pg.psql(url, "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'"))
    local logs = {}
    for i = 1, N do logs[#logs + 1] = ("SELECT string_agg(rev, ',' ORDER BY rev) r FROM tenant_%02d.applied"):format(i) end
    assert.equal("m1,m2,m3|" .. N, pg.psql(url, "SELECT r, count(*) FROM (" .. table.concat(logs, " UNION ALL ")
      .. ") x GROUP BY r"))
    assert.equal("m3", pg.psql(url, "SELECT version_num FROM tenant_07.luamigrate_version"))
    r = cli.run({ "-t", "*", "--keep-going", "upgrade", "head" }, { cwd = dir })
    assert.equal(1, r.code, r.out .. r.err)
    assert.truthy(r.out:find("missing: FAILED: schema tenant_none does not exist in database " .. dbname, 1, true), r.out)
    assert.truthy(r.out:find("0 upgraded, " .. N .. " already there, 1 failed, 0 not started", 1, true), r.out)
    assert.equal("0", pg.psql(url, "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'"))
  end)

  it("--canary: a failure the probe found is no canary's, and blocks the rest only by default", function()
    -- the missing schema fails before any run: no canary runs, and the message says what failed
    local r = cli.run({ "-t", "*", "--canary", "2", "upgrade", "head" }, { cwd = dir })
    assert.equal(1, r.code, r.out .. r.err)
    assert.truthy(r.out:find("0 upgraded, 0 already there, 1 failed, " .. N .. " not started", 1, true), r.out)
    assert.truthy(r.err:find("1 of " .. (N + 1) .. " targets failed before any run; " .. N .. " not started", 1,
      true), r.err)
    assert.falsy(r.err:find("canary", 1, true), r.err)
    -- with --keep-going the canaries run, succeed, and the others follow
    r = cli.run({ "-t", "*", "--canary", "2", "--keep-going", "upgrade", "head" }, { cwd = dir })
    assert.equal(1, r.code, r.out .. r.err)
    assert.truthy(r.out:find(N .. " upgraded, 0 already there, 1 failed, 0 not started", 1, true), r.out)
    assert.truthy(r.err:find("1 of " .. (N + 1) .. " targets failed before any run", 1, true), r.err)
    assert.falsy(r.err:find("canary", 1, true), r.err)
    assert.equal("m3", pg.psql(url, "SELECT version_num FROM tenant_60.luamigrate_version"))
  end)
end)

describe("the targets setting", function()
  local dir
  after_each(function() cli.remove(dir) end)

  local function with(config, args)
    dir = cli.project { config = 'script_location = "migrations"\n' .. config }
    return cli.run(args or { "-t", "*", "current" }, { cwd = dir })
  end

  it("is checked: each bad entry named in one message, exit 2", function()
    local cases = {
      { 'targets = { { url = "x" } }', "targets[1] has no name" },
      { 'targets = { { name = "a" }, { name = "a" } }', "targets[2] (a): the name is already used by targets[1]" },
      { 'targets = { { name = "a", uri = "x" } }', "targets[1] (a): unknown key 'uri'" },
      { 'targets = { { name = "a", url = 5 } }', "targets[1] (a): url must be a string, got number" },
      { 'targets = { { name = "a", schema = "Tenant 1" } }',
        "targets[1] (a): schema must be a lower-case name (letters, digits, _), got 'Tenant 1'" },
      { 'targets = { { name = "a", schema = "a,b" } }',
        "targets[1] (a): schema must be a lower-case name (letters, digits, _), got 'a,b'" },
      { 'targets = { { name = "a", schema = [[a"b]] } }',
        "targets[1] (a): schema must be a lower-case name (letters, digits, _), got 'a\"b'" },
      { 'targets = { { name = "a", schema = "{x}" } }',
        "targets[1] (a): schema must be a lower-case name (letters, digits, _), got '{x}'" },
      { 'version_table = "public.v"\ntargets = { { name = "a", schema = "t1" } }',
        "target a has a schema, and version_table 'public.v' names one" },
      { 'targets = "a"', "setting 'targets' must be a table, got string" },
      { 'targets = function() return { { name = 1 } } end', "targets[1] has no name" },
      { 'targets = function() error("directory down") end', "targets(): " },
      { 'targets = {}', "no targets configured" },
      { "", "no targets configured" },
    }
    for _, c in ipairs(cases) do
      local r = with(c[1])
      assert.equal(2, r.code, c[1] .. "\n" .. r.err)
      assert.truthy(r.err:find(c[2], 1, true), c[1] .. "\n" .. r.err)
      cli.remove(dir)
    end
  end)

  it("a target that cannot be reached fails alone, its connection error its line", function()
    local url, name = pg.new_db("fleetreach")
    local r = with(("targets = { { name = 'gone', url = 'host=%s port=1 user=postgres dbname=x' }, "
      .. "{ name = 'here', url = %q } }\n"):format(pg.host, url), { "-t", "*", "--keep-going", "current" })
    assert.equal(1, r.code, r.out .. r.err)
    assert.truthy(("\n" .. r.out):find("\ngone: FAILED: cannot connect to [^\n]*:1/x"), r.out)
    assert.truthy(r.out:find("here: base\n", 1, true), r.out)
    assert.truthy(r.out:find("1 ok, 1 failed, 0 not started", 1, true), r.out)
    pg.drop_db(name)
  end)

  it("a function is stopped by SIGINT, the run ending with nothing started", function()
    -- busy for 3 s, then a list: the signal must stop it, not leave a fleet of none started
    dir = cli.project { config = 'script_location = "migrations"\n'
      .. "targets = function() local t = os.clock() while os.clock() - t < 3 do end return { { name = 'a' } } end\n" }
    local pid, errfile = cli.start({ "-t", "*", "upgrade", "head" }, dir)
    os.execute("sleep 0.5")
    os.execute(("kill -INT %d"):format(pid))
    cli.wait_exit(pid, 5)
    local alive = cli.alive(pid)
    if alive then os.execute(("kill -9 %d"):format(pid)) end
    local err = cli.slurp(errfile)
    os.remove(errfile)
    assert.is_false(alive, err)
    assert.truthy(err:find("luamigrate.lua: targets(): interrupted by signal while running the config file; nothing was "
      .. "changed\n", 1, true), err)
  end)

  it("may be a function: its list is the fleet, and a single-target run ignores it", function()
    local url, name = pg.new_db("fleetfn")
    local r = with(("targets = function() return { { name = 'only', url = %q } } end\n"):format(url))
    assert.equal(0, r.code, r.err)
    assert.equal("only: base\n", r.out:match("^[^\n]*\n"))
    r = cli.run({ "--url", url, "current" }, { cwd = dir })
    assert.equal(0, r.code, r.err)
    pg.drop_db(name)
  end)
end)

describe("targets sharing one database", function()
  local dir, url, dbname
  local function run(args) return cli.run(args, { cwd = dir }) end

  -- A database with the schemas `create` makes, and the config's targets `targets` (Lua).
  local function project(targets, create, files)
    url, dbname = pg.new_db("fleetshared")
    if create then pg.psql(url, create) end
    dir = cli.project { files = files or FILES,
      config = ('script_location = "migrations"\nurl = %q\ntargets = %s\n'):format(url, targets) }
  end

  after_each(function()
    cli.remove(dir)
    pg.drop_db(dbname)
  end)

  it("a target without a schema is probed through its own search_path, not a schema target's", function()
    project('{ { name = "t1", schema = "tenant_1" }, { name = "main" } }', "CREATE SCHEMA tenant_1")
    assert.equal(0, run({ "-t", "t1", "upgrade", "head" }).code)
    local r = run { "-t", "*", "current" }
    assert.equal(0, r.code, r.out .. r.err)
    assert.truthy(("\n" .. r.out):find("\nt1: m3\nmain: base\n", 1, true), r.out)
    r = run { "-t", "*", "upgrade", "head" }
    assert.equal(0, r.code, r.out .. r.err)
    assert.truthy(r.out:find("main: base %-> m3, 3 steps, %d+ ms\n"), r.out)
    assert.truthy(r.out:find("t1: m3 -> m3, 0 steps", 1, true), r.out)
    assert.truthy(r.out:find("1 upgraded, 1 already there, 0 failed, 0 not started", 1, true), r.out)
    assert.equal("m3", pg.psql(url, "SELECT version_num FROM public.luamigrate_version"))
    assert.equal("m1,m2,m3", pg.psql(url, "SELECT string_agg(rev, ',' ORDER BY rev) FROM public.applied"))
    assert.equal("m1,m2,m3", pg.psql(url, "SELECT string_agg(rev, ',' ORDER BY rev) FROM tenant_1.applied"))
  end)

  it("reads each schema's name as written, one named null among them", function()
    project('{ { name = "n", schema = "null" }, { name = "t1", schema = "tenant_1" } }',
      'CREATE SCHEMA "null"; CREATE SCHEMA tenant_1')
    local r = run { "-t", "*", "upgrade", "head" }
    assert.equal(0, r.code, r.out .. r.err)
    assert.truthy(r.out:find("n: base %-> m3, 3 steps"), r.out)
    assert.equal("m3", pg.psql(url, 'SELECT version_num FROM "null".luamigrate_version'))
    assert.equal("m1,m2,m3", pg.psql(url, 'SELECT string_agg(rev, \',\' ORDER BY rev) FROM "null".applied'))
    r = run { "-t", "*", "current" }
    assert.equal(0, r.code, r.out .. r.err)
    assert.truthy(("\n" .. r.out):find("\nn: m3\nt1: m3\n", 1, true), r.out)
    r = run { "-t", "*", "upgrade", "head" }
    assert.equal(0, r.code, r.out .. r.err)
    assert.truthy(r.out:find("0 upgraded, 2 already there, 0 failed, 0 not started", 1, true), r.out)
  end)

  it("a version row the probe cannot read whole is the target's run to judge, never 'already'", function()
    project('{ { name = "t1", schema = "tenant_1" } }', "CREATE SCHEMA tenant_1")
    assert.equal(0, run({ "-t", "*", "upgrade", "head" }).code)
    pg.psql(url, "ALTER TABLE tenant_1.luamigrate_version ALTER COLUMN version_num TYPE text; "
      .. "INSERT INTO tenant_1.luamigrate_version VALUES (repeat('z', 200))")
    local r = run { "-t", "*", "upgrade", "head" }
    assert.equal(1, r.code, r.out .. r.err)
    assert.truthy(r.out:find("t1: FAILED: ", 1, true), r.out)
    assert.truthy(r.out:find("0 upgraded, 0 already there, 1 failed, 0 not started", 1, true), r.out)
  end)

  it("prints each target's server notices, warnings and print()s in its own block, named", function()
    local files = {
      ["migrations/versions/n1.lua"] = cli.revision("n1", nil, [[
  op.execute("DO $x$ BEGIN RAISE NOTICE 'hello from %', current_schema(); END $x$")
  print("printed by n1")]],
        '  op.execute("SELECT 1")'),
    }
    project('{ { name = "t1", schema = "tenant_1" }, { name = "t2", schema = "tenant_2" } }',
      "CREATE SCHEMA tenant_1; CREATE SCHEMA tenant_2", files)
    local r = run { "-t", "*", "upgrade", "head" }
    assert.equal(0, r.code, r.out .. r.err)
    for _, t in ipairs { { "t1", "tenant_1" }, { "t2", "tenant_2" } } do
      assert.truthy(("\n" .. r.out):find(("\n%s: server NOTICE in n1: hello from %s\n"):format(t[1], t[2]), 1, true),
        r.out)
      assert.truthy(("\n" .. r.out):find(("\n%s: printed by n1\n"):format(t[1]), 1, true), r.out)
    end
    assert.falsy(r.err:find("hello from", 1, true), r.err)
    assert.falsy(r.err:find("printed by", 1, true), r.err)
    r = run { "-t", "t1", "--json", "downgrade", "base" }
    assert.equal(0, r.code, r.out .. r.err)
    local o = assert(json.decode(r.out:match("[^\n]+")), r.out)
    assert.equal("downgraded", o.status)
    assert.is_nil(o.messages)
    r = run { "-t", "t1", "--json", "upgrade", "head" }
    assert.equal(0, r.code, r.out .. r.err)
    o = assert(json.decode(r.out:match("[^\n]+")), r.out)
    assert.truthy(o.messages:find("server NOTICE in n1: hello from tenant_1\n", 1, true), r.out)
  end)

  it("reads revision ids with XML's special characters as they are", function()
    local files = {
      ["migrations/versions/amp.lua"] = cli.revision("a&b<c>'d\"", nil, '  op.execute("CREATE TABLE amp (id int)")',
        '  op.execute("DROP TABLE amp")'),
    }
    project('{ { name = "t1", schema = "tenant_1" }, { name = "main" } }', "CREATE SCHEMA tenant_1", files)
    local r = run { "-t", "*", "upgrade", "head" }
    assert.equal(0, r.code, r.out .. r.err)
    r = run { "-t", "*", "current" }
    assert.equal(0, r.code, r.out .. r.err)
    assert.truthy(("\n" .. r.out):find("\nt1: a&b<c>'d\"\nmain: a&b<c>'d\"\n", 1, true), r.out)
    r = run { "-t", "*", "upgrade", "head" }
    assert.equal(0, r.code, r.out .. r.err)
    assert.truthy(r.out:find("0 upgraded, 2 already there", 1, true), r.out)
  end)

  it("a schema target keeps the options its URL sets, in conninfo and URI form", function()
    local files = {
      ["migrations/versions/s1.lua"] = cli.revision("s1", nil,
        [[  op.execute("CREATE TABLE seen AS SELECT current_setting('work_mem') AS w, current_schema() AS s")]],
        '  op.execute("DROP TABLE seen")'),
    }
    url, dbname = pg.new_db("fleetoptions")
    pg.psql(url, "CREATE SCHEMA tenant_1; CREATE SCHEMA tenant_2")
    local uri = ("postgresql:///%s?host=%s&port=%s&user=postgres&options=-c%%20work_mem%%3D2345kB"):format(dbname,
      pg.host:gsub("/", "%%2F"), pg.port)
    dir = cli.project { files = files, config = ('script_location = "migrations"\ntargets = {\n'
      .. '  { name = "a", schema = "tenant_1", url = %q },\n  { name = "b", schema = "tenant_2", url = %q },\n}\n'):format(
      url .. " options='-c work_mem=1234kB'", uri) }
    local r = run { "-t", "*", "upgrade", "head" }
    assert.equal(0, r.code, r.out .. r.err)
    assert.equal("1234kB|tenant_1", pg.psql(url, "SELECT w || '|' || s FROM tenant_1.seen"))
    assert.equal("2345kB|tenant_2", pg.psql(url, "SELECT w || '|' || s FROM tenant_2.seen"))
  end)

  it("lists several heads in one order, whichever way they were read and whatever the collation", function()
    dbname = ("fleeticu_%d_%d"):format(os.time(), math.random(1, 1e6))
    pg.psql(pg.conninfo("postgres"), ("CREATE DATABASE %s TEMPLATE template0 LOCALE_PROVIDER icu ICU_LOCALE 'en' "
      .. "LOCALE 'C.UTF-8'"):format(dbname))
    url = pg.conninfo(dbname)
    local files = {
      ["migrations/versions/ax.lua"] = cli.revision("ax", nil, '  op.execute("CREATE TABLE a (id int)")',
        '  op.execute("DROP TABLE a")', 'branch_labels = { "a" }'),
      ["migrations/versions/Bx.lua"] = cli.revision("Bx", nil, '  op.execute("CREATE TABLE b (id int)")',
        '  op.execute("DROP TABLE b")', 'branch_labels = { "b" }'),
    }
    dir = cli.project { files = files,
      config = ('script_location = "migrations"\nurl = %q\ntargets = { { name = "db" } }\n'):format(url) }
    -- in this database's collation ax sorts before Bx; byte order (C) puts Bx first
    assert.equal("t", pg.psql(url, "SELECT 'ax' < 'Bx'"))
    local r = run { "-t", "*", "upgrade", "heads" }
    assert.equal(0, r.code, r.out .. r.err)
    assert.truthy(r.out:find("db: base -> Bx, ax, 2 steps", 1, true), r.out)
    r = run { "-t", "*", "upgrade", "heads" }
    assert.equal(0, r.code, r.out .. r.err)
    assert.truthy(r.out:find("db: Bx, ax -> Bx, ax, 0 steps", 1, true), r.out)
    r = run { "-t", "*", "current" }
    assert.truthy(r.out:find("db: Bx, ax\n", 1, true), r.out)
    r = run { "current" }
    assert.equal(0, r.code, r.out .. r.err)
    assert.truthy(r.out:find("Bx.*ax"), r.out)
  end)
end)
