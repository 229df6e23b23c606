-- Through PgBouncer in transaction pooling mode (Debian's pgbouncer, started here), where a
-- session advisory lock does not hold: the session lock is refused before it is taken, and
-- lock = "table" and lock = "xact" keep every migration applied exactly once under
-- concurrent runs, with CREATE INDEX CONCURRENTLY in an autocommit block under "table".
local pg = require "helpers.pg"
local cli = require "helpers.cli"
local fixture = require "helpers.fixture"

local q = pg.shell_quote
local as_postgres = io.popen("id -u"):read("l") == "0" and "runuser -u postgres -- " or ""

local function sh(cmd)
  local p = assert(io.popen(cmd .. " 2>&1"))
  local out = p:read("a")
  return p:close(), out
end

-- Starts pgbouncer in front of the test server; returns its socket dir, port and a stop().
local function start_bouncer()
  local _, dir = sh("mktemp -d /tmp/lmbouncer.XXXXXX")
  dir = dir:gsub("%s+$", "")
  if as_postgres ~= "" then assert(sh("chown postgres " .. q(dir))) end
  local host = os.getenv("LUAMIGRATE_TEST_PGHOST") or os.getenv("PGHOST")
  local port = os.getenv("PGPORT") or "5432"
  for attempt = 1, 20 do
    local bport = tostring(16432 + math.random(0, 2000) + attempt)
    cli.write(dir .. "/pgbouncer.ini", table.concat({
      "[databases]",
      ("* = host=%s port=%s user=postgres"):format(host, port),
      "[pgbouncer]",
      "listen_addr = 127.0.0.1",
      "listen_port = " .. bport,
      "unix_socket_dir = " .. dir,
      "auth_type = any",
      "pool_mode = transaction",
      "default_pool_size = 4",
      "max_client_conn = 200",
      "logfile = " .. dir .. "/pgbouncer.log",
      "pidfile = " .. dir .. "/pgbouncer.pid",
      "",
    }, "\n"))
    if as_postgres ~= "" then sh("chown postgres " .. q(dir .. "/pgbouncer.ini")) end
    local ok = sh(pg.tool .. as_postgres .. "/usr/sbin/pgbouncer -d " .. q(dir .. "/pgbouncer.ini"))
    if ok then
      for _ = 1, 100 do
        if sh("test -S " .. q(dir .. "/.s.PGSQL." .. bport)) then
          return dir, bport, function()
            sh(("kill $(cat %s) 2>/dev/null; sleep 0.2"):format(q(dir .. "/pgbouncer.pid")))
            sh("rm -rf " .. q(dir))
          end
        end
        os.execute("sleep 0.05")
      end
    end
  end
  error("could not start pgbouncer: " .. select(2, sh("cat " .. q(dir .. "/pgbouncer.log"))))
end

describe("through PgBouncer in transaction pooling mode", function()
  local bdir, bport, stop_bouncer
  local fx = fixture.new()
  local dir, url, dbname, burl, ids

  setup(function() bdir, bport, stop_bouncer = start_bouncer() end)
  teardown(function() stop_bouncer() end)

  before_each(function()
    local files
    files, ids = cli.chain(20, { sleep = 0.02 })
    -- one migration builds an index concurrently, outside the transaction
    files["migrations/versions/21abcdef0123_index.lua"] = cli.revision("21abcdef0123", ids[20],
      "  op.autocommit_block(function() op.create_index('t1_id', 't1', { 'id' }, { postgresql_concurrently = true }) end)\n"
      .. "  op.execute(\"INSERT INTO migration_log (rev, direction) VALUES ($1, 'up')\", { revision })\n",
      "  op.drop_index('t1_id')\n")
    ids[21] = "21abcdef0123"
    -- and one has ops whose statements are pipelined (pipeline = true, the default)
    for path, text in pairs(files) do
      if path:find(ids[5], 1, true) then
        files[path] = text:gsub("function upgrade%(%)\n", "function upgrade()\n"
          .. "  op.create_table('p5', sa.Column('id', sa.Integer))\n"
          .. "  op.add_column('p5', sa.Column('v', sa.Text))\n"
          .. "  op.create_index('p5_v', 'p5', { 'v' })\n", 1)
          :gsub("function downgrade%(%)\n", "function downgrade()\n  op.drop_table('p5')\n", 1)
      end
    end
    dir, url, dbname = fx:open { files = files, prefix = "bouncer" }
    burl = ("host=%s port=%s dbname=%s user=postgres"):format(bdir, bport, dbname)
  end)

  it("answers read-only commands through the pooler without any lock", function()
    local r = cli.run({ "--url", burl, "current" }, { cwd = dir })
    assert.equal(0, r.code, r.err)
  end)

  it("refuses the session lock before taking it, and changes nothing", function()
    local r = cli.run({ "--url", burl, "upgrade", "head" }, { cwd = dir })
    assert.equal(2, r.code, r.err)
    assert.truthy(r.err:find('lock = "session" cannot hold through a connection pooler', 1, true), r.err)
    assert.truthy(r.err:find('set lock = "table"', 1, true), r.err)
    assert.equal("", pg.psql(url, "SELECT coalesce(to_regclass('luamigrate_version')::text, '')"))
    assert.equal("0", pg.psql(url, "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'"))
  end)

  for _, mode in ipairs { "table", "xact" } do
    it(("applies every migration once with 8 concurrent runs and lock = %q"):format(mode), function()
      if mode == "xact" then
        -- autocommit blocks are refused under xact: leave the index migration out
        os.remove(dir .. "/migrations/versions/21abcdef0123_index.lua")
      end
      local n = mode == "xact" and 20 or 21
      local runs = {}
      for i = 1, 8 do runs[i] = cli.spawn({ "--url", burl, "--lock", mode, "upgrade", "head" }, { cwd = dir }) end
      for i = 1, 8 do
        local r = runs[i].wait()
        assert.equal(0, r.code, r.err)
      end
      assert.equal(tostring(n), pg.psql(url, "SELECT count(*) FROM migration_log"))
      assert.equal(tostring(n), pg.psql(url, "SELECT count(DISTINCT rev) FROM migration_log"))
      assert.equal(ids[n], pg.psql(url, "SELECT version_num FROM luamigrate_version"))
      assert.equal(tostring(n), pg.psql(url, "SELECT count(*) FROM luamigrate_version_history"))
      assert.equal("t", pg.psql(url, "SELECT count(*) = 1 FROM pg_indexes WHERE indexname = 'p5_v'"))
      if mode == "table" then
        assert.equal("t", pg.psql(url, "SELECT indisvalid FROM pg_index WHERE indexrelid = 't1_id'::regclass"))
        assert.equal("0", pg.psql(url, "SELECT count(*) FROM luamigrate_version_lock"))
      end
      -- and back down through the pooler
      local r = cli.run({ "--url", burl, "--lock", mode, "downgrade", "base" }, { cwd = dir })
      assert.equal(0, r.code, r.err)
      assert.equal("0", pg.psql(url, "SELECT count(*) FROM luamigrate_version"))
      assert.equal("0", pg.psql(url, "SELECT count(*) FROM pg_tables WHERE tablename ~ '^t[0-9]+$'"))
      assert.equal("", pg.psql(url, "SELECT coalesce(to_regclass('p5')::text, '')"))
    end)
  end
end)
