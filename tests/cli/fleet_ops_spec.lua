-- Fleet runs killed and repeated, two at once, and the reporting commands (status, current,
-- stamp, check) over a fleet of nine tenant databases spread over three servers and twelve
-- tenant schemas in one more database. The migrations (cli.chain) log themselves into the
-- tenant's migration_log, so each test can count how often each ran on each target.
local pg = require "helpers.pg"
local cli = require "helpers.cli"
local pgserver = require "helpers.pgserver"
local json = require "dkjson"
local core = require "luamigrate.core"

local FILES, IDS = cli.chain(5, { sleep = 0.05 })
-- What the chain's migrations create, for check.
FILES["migrations/schema.lua"] = [[
local md = sa.MetaData()
for i = 1, 5 do sa.Table("t" .. i, md, sa.Column("id", sa.Integer)) end
sa.Table("migration_log", md, sa.Column("rev", sa.Text), sa.Column("direction", sa.Text),
  sa.Column("at", sa.DateTime { timezone = true }, { server_default = sa.text("clock_timestamp()") }))
return md
]]

describe("fleet runs", function()
  local servers, targets, dbs, dir = {}, {}, {}, nil
  local seq = 0

  local function run(args) return cli.run(args, { cwd = dir }) end
  local function sql(t, text) return pg.psql(t.url, text) end
  local function qualified(t, name) return t.schema and (t.schema .. "." .. name) or name end

  -- "rev:times,..." of the upgrades the target's migration_log holds ("" for none).
  local function log(t)
    if sql(t, ("SELECT to_regclass('%s') IS NULL"):format(qualified(t, "migration_log"))) == "t" then return "" end
    return sql(t, ("SELECT coalesce(string_agg(rev || ':' || n, ',' ORDER BY rev), '') FROM (SELECT rev, count(*) n "
      .. "FROM %s WHERE direction = 'up' GROUP BY rev) x"):format(qualified(t, "migration_log")))
  end
  local function version(t)
    if sql(t, ("SELECT to_regclass('%s') IS NULL"):format(qualified(t, "luamigrate_version"))) == "t" then return "" end
    return sql(t, "SELECT coalesce(string_agg(version_num, ','), '') FROM " .. qualified(t, "luamigrate_version"))
  end
  local function applied(k)
    local t = {}
    for i = 1, k do t[i] = IDS[i] .. ":1" end
    return table.concat(t, ",")
  end

  -- the test command's server and two more, for the whole file
  setup(function() servers = { pgserver.test_server(), pgserver.start(), pgserver.start() } end)
  teardown(function() for _, s in ipairs(servers) do s:stop() end end)

  before_each(function()
    seq = seq + 1
    targets, dbs = {}, {}
    local lines = { 'script_location = "migrations"', "targets = {" }
    for i = 1, 9 do
      local srv = servers[(i - 1) % 3 + 1]
      local db = ("fops_%d_d%d"):format(seq, i)
      srv:psql("postgres", "CREATE DATABASE " .. db)
      dbs[#dbs + 1] = { srv, db }
      targets[#targets + 1] = { name = ("d%d"):format(i), url = srv:conninfo(db) }
    end
    local sdb = ("fops_%d_schemas"):format(seq)
    servers[1]:psql("postgres", "CREATE DATABASE " .. sdb)
    dbs[#dbs + 1] = { servers[1], sdb }
    local create = {}
    for i = 1, 12 do
      local schema = ("tenant_%02d"):format(i)
      create[#create + 1] = "CREATE SCHEMA " .. schema .. ";"
      targets[#targets + 1] = { name = ("s%02d"):format(i), url = servers[1]:conninfo(sdb), schema = schema }
    end
    servers[1]:psql(sdb, table.concat(create, " "))
    for _, t in ipairs(targets) do
      lines[#lines + 1] = ("  { name = %q, url = %q%s },"):format(t.name, t.url,
        t.schema and (", schema = %q"):format(t.schema) or "")
    end
    lines[#lines + 1] = "}"
    dir = cli.project { files = FILES, config = table.concat(lines, "\n") .. "\n" }
  end)

  after_each(function()
    for _, d in ipairs(dbs) do d[1]:psql("postgres", "DROP DATABASE IF EXISTS " .. d[2] .. " WITH (FORCE)") end
    cli.remove(dir)
  end)

  it("killed with -9 half way, leaves every target consistent, and a re-run finishes the job once", function()
    local pid, errfile = cli.start({ "-t", "*", "--parallel", "2", "upgrade", "head" }, dir)
    local started = false
    for _ = 1, 400 do -- until some target has applied a migration
      for _, t in ipairs(targets) do
        if log(t) ~= "" then started = true break end
      end
      if started then break end
      os.execute("sleep 0.02")
    end
    assert.is_true(started, "the fleet run applied nothing")
    assert(os.execute("kill -9 " .. pid))
    while cli.alive(pid) do os.execute("sleep 0.02") end
    os.remove(errfile)
    local unfinished = 0
    for _, t in ipairs(targets) do
      -- each migration and its version row commit together: the log and the row agree
      local l, v = log(t), version(t)
      local k = 0
      while k < 5 and l ~= applied(k) do k = k + 1 end
      assert.equal(applied(k), l, t.name)
      assert.equal(k == 0 and "" or IDS[k], v, t.name)
      if k < 5 then unfinished = unfinished + 1 end
    end
    assert.is_true(unfinished > 0, "the kill came after the whole fleet was done")
    local r = run { "-t", "*", "upgrade", "head" }
    assert.equal(0, r.code, r.out .. r.err)
    for _, t in ipairs(targets) do
      assert.equal(applied(5), log(t), t.name)
      assert.equal(IDS[5], version(t), t.name)
    end
    assert.truthy(r.out:find(("%d upgraded, %d already there, 0 failed, 0 not started"):format(unfinished,
      #targets - unfinished), 1, true), r.out)
  end)

  it("SIGINT stops every running target's statement waiting on a lock, however many run at once", function()
    assert.equal(0, run({ "-t", "*", "upgrade", IDS[1] }).code)
    -- the migrations wait for their locks for as long as it takes
    cli.write(dir .. "/luamigrate.lua", cli.slurp(dir .. "/luamigrate.lua") .. "migration_lock_timeout = false\n")
    -- each target's migration_log locked by another session: all 21 runs wait on it at once, in
    -- their second migration's INSERT (the probe, reading only luamigrate's tables, passes)
    local blockers = {}
    for i = 1, 9 do
      local b = core.connect(targets[i].url)
      b:execute("BEGIN")
      b:execute("LOCK TABLE migration_log IN ACCESS EXCLUSIVE MODE")
      blockers[#blockers + 1] = b
    end
    local b = core.connect(targets[10].url)
    b:execute("BEGIN")
    for i = 10, #targets do
      b:execute(("LOCK TABLE %s.migration_log IN ACCESS EXCLUSIVE MODE"):format(targets[i].schema))
    end
    blockers[#blockers + 1] = b
    local function waiting()
      local n = 0
      for _, srv in ipairs(servers) do
        n = n + tonumber(srv:psql("postgres", "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
          .. "AND query LIKE 'INSERT INTO migration_log%'"))
      end
      return n
    end
    local pid, errfile = cli.start({ "-t", "*", "--parallel", "60", "upgrade", "head" }, dir)
    for _ = 1, 400 do
      if waiting() == #targets then break end
      os.execute("sleep 0.05")
    end
    local ready = waiting()
    os.execute(("kill -INT %d"):format(pid))
    cli.wait_exit(pid, 5)
    local alive = cli.alive(pid)
    for _, x in ipairs(blockers) do
      x:execute("COMMIT")
      x:close()
    end
    cli.wait_exit(pid, 5)
    if cli.alive(pid) then os.execute(("kill -9 %d"):format(pid)) end
    local err = cli.slurp(errfile)
    os.remove(errfile)
    assert.equal(#targets, ready, err)
    assert.is_false(alive, "a run still waited on its lock 5 s after SIGINT: " .. err)
    assert.truthy(err:find(("%d of %d targets failed"):format(#targets, #targets), 1, true), err)
    for _, t in ipairs(targets) do assert.equal(applied(1), log(t), t.name) end
  end)

  it("two fleet runs at once apply each migration once per target", function()
    local deploys = {}
    for _, args in ipairs { { "-t", "*", "upgrade", "head" }, { "-t", "s*,d1,d2", "--parallel", "4", "upgrade", "head" } } do
      deploys[#deploys + 1] = cli.spawn(args, { cwd = dir })
    end
    for _, d in ipairs(deploys) do
      local r = d:wait()
      assert.equal(0, r.code, r.out .. r.err)
    end
    for _, t in ipairs(targets) do assert.equal(applied(5), log(t), t.name) end
  end)

  it("recognises the targets already there with one connection per database, none of them run", function()
    assert.equal(0, run({ "-t", "s*", "upgrade", "head" }).code)
    local sdb = dbs[#dbs][2]
    local function sessions()
      return tonumber(servers[1]:psql("postgres",
        ("SELECT sessions FROM pg_stat_database WHERE datname = '%s'"):format(sdb)))
    end
    local before = sessions()
    local r = run { "-t", "s*", "upgrade", "head" }
    assert.equal(0, r.code, r.out .. r.err)
    assert.truthy(r.out:find("0 upgraded, 12 already there", 1, true), r.out)
    assert.truthy(r.out:find("s07: " .. IDS[5] .. " -> " .. IDS[5] .. ", 0 steps", 1, true), r.out)
    for _ = 1, 50 do -- the server counts a session when it ends
      if sessions() >= before + 1 then break end
      os.execute("sleep 0.02")
    end
    assert.equal(before + 1, sessions(), "one probe connection for the twelve schemas")
  end)

  it("current, status, stamp and check report per target, each line named", function()
    assert.equal(0, run({ "-t", "d*", "upgrade", IDS[3] }).code)
    local r = run { "-t", "*", "current" }
    assert.equal(0, r.code, r.err)
    assert.truthy(("\n" .. r.out):find("\nd4: " .. IDS[3] .. "\n", 1, true), r.out)
    assert.truthy(("\n" .. r.out):find("\ns12: base\n", 1, true), r.out)
    assert.truthy(r.out:find("21 ok, 0 failed, 0 not started", 1, true), r.out)
    -- with an option each target runs current: --check-heads fails the targets behind
    r = run { "-t", "d1,s01", "--keep-going", "current", "--check-heads" }
    assert.equal(1, r.code, r.out .. r.err)
    assert.truthy(("\n" .. r.out):find("\nd1: " .. IDS[3] .. "\nd1: FAILED: Database is not on all head revisions\n", 1,
      true), r.out)
    assert.truthy(r.out:find("s01: FAILED: Database is not on all head revisions", 1, true), r.out)
    assert.truthy(r.out:find("0 ok, 2 failed, 0 not started", 1, true), r.out)

    r = run { "-t", "d1,s01", "status" }
    assert.equal(0, r.code, r.err)
    local text = "\n" .. r.out
    assert.truthy(text:find("\nd1: Current: " .. IDS[3], 1, true), r.out)
    assert.truthy(text:find("\nd1: Pending: 2 migrations, in the order they will run:\n", 1, true), r.out)
    assert.truthy(text:find("\ns01: Current: <base> (nothing applied)\n", 1, true), r.out)
    assert.truthy(text:find("\ns01: ok, %d+ ms\n"), r.out)
    for line in r.out:match("^(.-)\n\n"):gmatch("[^\n]+") do
      assert.truthy(line:find("^d1: ") or line:find("^s01: "), "every line of a report names its target: " .. line)
    end

    r = run { "-t", "s0*", "stamp", IDS[2] }
    assert.equal(0, r.code, r.out .. r.err)
    assert.truthy(r.out:find("s03: base %-> " .. IDS[2] .. ", stamped, %d+ ms"), r.out)
    assert.truthy(r.out:find("9 stamped, 0 failed, 0 not started", 1, true), r.out)
    for i = 10, 21 do
      assert.equal(i <= 18 and IDS[2] or "", version(targets[i]), targets[i].name)
      assert.equal("", log(targets[i]), "stamp runs no migration")
    end

    -- check: d1's t5 dropped by hand differs from the declared schema
    assert.equal(0, run({ "-t", "s1*,d1", "upgrade", "head" }).code)
    sql(targets[1], "DROP TABLE t5")
    r = run { "-t", "s1*,d1", "--keep-going", "check" }
    assert.equal(1, r.code, r.out .. r.err)
    assert.truthy(("\n" .. r.out):find("\nd1: New upgrade operations detected:\nd1:   added table public.t5\n", 1,
      true), r.out)
    assert.truthy(r.out:find("d1: FAILED: the database differs from the declared schema", 1, true), r.out)
    assert.truthy(r.out:find("s10: No new upgrade operations detected.\ns10: ok", 1, true), r.out)
    assert.truthy(r.out:find("3 ok, 1 failed, 0 not started", 1, true), r.out)
    assert.truthy(r.err:find("1 of 4 targets failed", 1, true), r.err)
    assert.equal(0, run({ "-t", "s1*", "check" }).code)
    r = run { "-t", "s1*,d1", "--json", "current", "--check-heads" }
    assert.equal(0, r.code, r.out .. r.err)
    for line in r.out:gmatch("[^\n]+") do
      local o = assert(json.decode(line), line)
      assert.same({ "ok", IDS[5] }, { o.status, o.report[1].revision })
    end
  end)

  it("--json: one object per target, the same keys each, a status's report inside", function()
    local r = run { "-t", "d1,d2,s01", "--json", "upgrade", IDS[2] }
    assert.equal(0, r.code, r.err)
    local n = 0
    for line in r.out:gmatch("[^\n]+") do
      local o = assert(json.decode(line), line)
      n = n + 1
      local keys = {}
      for k in pairs(o) do keys[#keys + 1] = k end
      table.sort(keys)
      assert.same({ "duration_ms", "from", "messages", "status", "steps", "target", "to" }, keys) -- error: null
      assert.truthy(line:find('"error": null, "messages": '), line)
      -- the second migration's CREATE TABLE IF NOT EXISTS: the server's notice, the target's
      assert.truthy(o.messages:find('relation "migration_log" already exists, skipping', 1, true), line)
      assert.same({ "upgraded", "base", IDS[2], 2 }, { o.status, o.from, o.to, o.steps })
      assert.equal("number", type(o.duration_ms))
    end
    assert.equal(3, n)
    r = run { "-t", "d1,s02", "--json", "status" }
    assert.equal(0, r.code, r.err)
    local seen = {}
    for line in r.out:gmatch("[^\n]+") do
      local o = assert(json.decode(line), line)
      seen[o.target] = o
    end
    assert.same({ IDS[2] }, seen.d1.report.current)
    assert.same({}, seen.s02.report.current)
    assert.equal(5, #seen.s02.report.pending)
    assert.equal("ok", seen.s02.status)
    -- check adds its text as "output" (d1 lacks the declared t5)
    assert.equal(0, run({ "-t", "d1", "upgrade", "head" }).code)
    sql(targets[1], "DROP TABLE t5")
    r = run { "-t", "d1", "--json", "check" }
    assert.equal(1, r.code, r.out .. r.err)
    local o = assert(json.decode(r.out:match("[^\n]+")), r.out)
    assert.equal("failed", o.status)
    assert.truthy(o.output:find("added table public.t5", 1, true), r.out)
    assert.is_nil(o.report)
  end)

  it("exit statuses: 0 all succeeded, 1 one failed, 2 a usage error; a live counter only on a terminal", function()
    assert.equal(0, run({ "-t", "d1", "upgrade", "head" }).code)
    sql(targets[2], "CREATE TABLE t3 (id int)") -- d2's third migration will fail
    local r = run { "-t", "d1,d2", "upgrade", "head" }
    assert.equal(1, r.code, r.out .. r.err)
    assert.truthy(r.out:find("d2: FAILED: [^\n]*t3"), r.out)
    assert.truthy(r.out:find("\nfailures:\nd2: [^\n]*t3[^\n]*already exists"), r.out)
    assert.equal(applied(2), log(targets[2]))
    -- lock = xact: a run holds one connection, so --parallel 1 is one run per server
    r = run { "-t", "d3,d4", "--lock", "xact", "--parallel", "1", "upgrade", "head" }
    assert.equal(0, r.code, r.out .. r.err)
    assert.equal(applied(5), log(targets[4]))
    r = run { "-t", "d5", "--parallel", "1", "upgrade", "head" }
    assert.equal(2, r.code, r.err)
    assert.truthy(r.err:find("--parallel 1: each target's run holds 2 connections", 1, true), r.err)
    r = run { "-t", "d9,nope", "upgrade", "head" }
    assert.equal(2, r.code, r.err)
    assert.truthy(r.err:find("--targets: 'nope' matches no target", 1, true), r.err)
    assert.equal("", version(targets[9]))
    assert.falsy(r.out:find("[#", 1, true), r.out)
    local t = cli.run_tty({ "-t", "d*", "current" }, { cwd = dir })
    assert.equal(0, t.code, t.out)
    assert.truthy(t.out:find("[9/9] [" .. ("#"):rep(30) .. "]", 1, true), t.out)
    assert.truthy(t.out:find("[1/9] [###...", 1, true), t.out)
  end)
end)
