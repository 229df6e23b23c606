-- Hostile and odd input, round two: os.exit in user code, writes that fail, special files in
-- versions/, byte order marks and CRLF line ends, bytes that are not UTF-8, and directory
-- names that are not plain. Each either works or fails with one message naming the thing,
-- a non-zero exit, and nothing half-done.
local pg = require "helpers.pg"
local cli = require "helpers.cli"
local fixture = require "helpers.fixture"

local V = "migrations/versions/"

describe("hostile input", function()
  local fx = fixture.new()
  local url

  before_each(function() url = fx:new_db("hostile") end)

  local function run(dir, args, opts)
    opts = opts or {}
    local t = { "--url", url }
    for _, a in ipairs(args) do t[#t + 1] = a end
    return cli.run(t, { cwd = dir, env = opts.env })
  end

  local function tables()
    return pg.psql(url, "SELECT coalesce(string_agg(tablename, ',' ORDER BY tablename), '') FROM pg_tables "
      .. "WHERE schemaname = 'public' AND tablename NOT LIKE 'luamigrate%'")
  end

  describe("os.exit", function()
    local cases = {
      { "in upgrade()", V .. "b_exit.lua", cli.revision("b", "a", '  op.execute("CREATE TABLE b_t (id int)")\n  os.exit(0)'),
        V .. "b_exit.lua:10: os.exit() called" },
      { "with status 1 in upgrade()", V .. "b_exit.lua", cli.revision("b", "a", "  os.exit(1)"),
        V .. "b_exit.lua:9: os.exit() called" },
      { "in a revision file at load time", V .. "b_exit.lua", cli.revision("b", "a", "", "", "os.exit(0)"),
        V .. "b_exit.lua: error while loading: " .. V .. "b_exit.lua:7: os.exit() called" },
      { "in the config", "luamigrate.lua", 'script_location = "migrations"\nos.exit(0)\n',
        "luamigrate.lua:2: os.exit() called" },
    }
    for _, c in ipairs(cases) do
      it("is an error naming the file and line, " .. c[1], function()
        local dir = cli.project { files = {
          [V .. "a_first.lua"] = cli.revision("a", nil, '  op.execute("CREATE TABLE a_t (id int)")'),
        } }
        assert.equal(0, run(dir, { "upgrade", "a" }).code)
        cli.write(dir .. "/" .. c[2], c[3])
        local r = run(dir, { "upgrade", "head" })
        cli.remove(dir)
        assert.is_true(r.code ~= 0, "exit status 0")
        assert.truthy(r.err:find(c[4], 1, true), r.err)
        assert.equal("a_t", tables()) -- nothing more applied, nothing half-done
        assert.equal("a", pg.psql(url, "SELECT version_num FROM luamigrate_version"))
      end)
    end
  end)

  it("an error({}) in the config names the config file", function()
    local dir = cli.project { config = 'script_location = "migrations"\nerror({})\n' }
    local r = run(dir, { "heads" })
    cli.remove(dir)
    assert.equal(2, r.code)
    assert.truthy(r.err:find("luamigrate.lua: error while loading", 1, true), r.err)
  end)

  describe("a failed write", function()
    -- Runs the binary with stdout on /dev/full: {code, err}.
    local function to_full(dir, args)
      local err = os.tmpname()
      local _, _, code = os.execute(("cd %s && %s %s >/dev/full 2>%s"):format(pg.shell_quote(dir),
        pg.shell_quote(cli.bin), args, err))
      local r = { code = code, err = cli.slurp(err) }
      os.remove(err)
      return r
    end

    it("of an --sql script to a full disk is an error, exit 1", function()
      local dir = cli.project { files = { [V .. "a_first.lua"] = cli.revision("a", nil, '  op.execute("SELECT 1")') } }
      local r = to_full(dir, "upgrade head --sql")
      cli.remove(dir)
      assert.equal(1, r.code)
      assert.truthy(r.err:find("cannot write to standard output", 1, true), r.err)
    end)

    it("of any command's output is an error", function()
      local dir = cli.project { files = { [V .. "a_first.lua"] = cli.revision("a", nil, "") } }
      local r = to_full(dir, "heads")
      cli.remove(dir)
      assert.equal(1, r.code)
      assert.truthy(r.err:find("cannot write to standard output", 1, true), r.err)
    end)
  end)

  it("a FIFO named *.lua in versions/ is refused by name, without hanging", function()
    local dir = cli.project { files = { [V .. "a_first.lua"] = cli.revision("a", nil, "") } }
    assert(os.execute("mkfifo " .. pg.shell_quote(dir .. "/" .. V .. "b_fifo.lua")))
    -- under timeout(1) first, so a hang fails the spec instead of stopping it
    local _, _, code = os.execute(("cd %s && timeout 10 %s heads >/dev/null 2>&1")
      :format(pg.shell_quote(dir), pg.shell_quote(cli.bin)))
    assert.is_true(code ~= 124, "timed out")
    local direct = run(dir, { "heads" })
    cli.remove(dir)
    assert.equal(2, direct.code)
    assert.truthy(direct.err:find(V .. "b_fifo.lua: not a regular file (a FIFO)", 1, true), direct.err)
  end)

  it("a UTF-8 byte order mark and CRLF line ends are accepted; the message is the first line", function()
    local text = cli.revision("a", nil, '  op.execute("CREATE TABLE bom_t (id int)")')
      :gsub("^%-%-%[==%[ revision a", "--[==[ first line")
    local dir = cli.project {
      config = '\239\187\191script_location = "migrations"\r\n',
      files = { [V .. "a_bom.lua"] = "\239\187\191" .. text:gsub("\n", "\r\n") },
    }
    local r = run(dir, { "upgrade", "head" })
    assert.equal(0, r.code, r.err)
    local h = run(dir, { "history" })
    cli.remove(dir)
    assert.equal("<base> -> a (head), first line\n", h.out)
    assert.equal("bom_t", tables())
    assert.equal("first line", pg.psql(url, "SELECT message FROM luamigrate_version_history"))
  end)

  -- Bytes that are not UTF-8 in the user's name, the script location, a file name and a
  -- docstring: recorded (each bad byte as \xNN), never an error after earlier steps applied,
  -- whatever the connection's client encoding.
  it("non-UTF-8 bytes in $USER, script_location, a file name and a docstring never fail a step", function()
    local dir = cli.project {
      config = 'script_location = "mig\233"\n',
      files = {
        ["mig\233/versions/a_first.lua"] = cli.revision("a", nil, '  op.execute("CREATE TABLE a_t (id int)")',
          '  op.execute("DROP TABLE a_t")'),
        ["mig\233/versions/b_caf\233.lua"] = cli.revision("b", "a", '  op.execute("CREATE TABLE b_t (id int)")',
          '  op.execute("DROP TABLE b_t")')
          :gsub("revision b", "caf\233 au lait", 1),
      },
    }
    for _, enc in ipairs { "UTF8", "SJIS" } do
      local r = run(dir, { "upgrade", "head" }, { env = { USER = "jos\233", PGCLIENTENCODING = enc } })
      assert.equal(0, r.code, r.err)
      assert.equal("a_t,b_t", tables())
      r = run(dir, { "downgrade", "base" }, { env = { USER = "jos\233", PGCLIENTENCODING = enc } })
      assert.equal(0, r.code, r.err)
    end
    assert.equal("caf\\xE9 au lait|mig\\xE9/versions/b_caf\\xE9.lua|jos\\xE9",
      pg.psql(url, "SELECT message || '|' || file || '|' || os_user FROM luamigrate_version_history "
        .. "WHERE revision = 'b' AND operation = 'upgrade' ORDER BY id LIMIT 1"))
    -- the same through --sql and psql: the script's history rows hold only UTF-8
    local other, otherdb = pg.new_db("hostile")
    local r = cli.run({ "upgrade", "head", "--sql" }, { cwd = dir })
    cli.remove(dir)
    assert.equal(0, r.code, r.err)
    local script = os.tmpname()
    cli.write(script, r.out)
    local _, _, code = os.execute(("%spsql -X -q -v ON_ERROR_STOP=1 -d %s -f %s >/dev/null 2>&1")
      :format(pg.tool, pg.shell_quote(other), pg.shell_quote(script)))
    os.remove(script)
    local msg = pg.psql(other, "SELECT message FROM luamigrate_version_history WHERE revision = 'b'")
    pg.drop_db(otherdb)
    assert.equal(0, code)
    assert.equal("caf\\xE9 au lait", msg)
  end)

  -- Damaged engine tables and odd session settings: the server's message gets which of
  -- luamigrate's tables, what luamigrate was doing and expected, and what to do.
  describe("damaged engine tables and odd settings", function()
    local dir
    before_each(function()
      dir = cli.project { files = {
        [V .. "a_first.lua"] = cli.revision("a", nil, ""),
        [V .. "b_second.lua"] = cli.revision("b", "a", ""),
      } }
      assert.equal(0, run(dir, { "upgrade", "a" }).code)
    end)
    after_each(function() cli.remove(dir) end)

    local function fails_with(r, message, hint)
      assert.is_true(r.code ~= 0, "exit status 0")
      assert.truthy(r.err:find(message, 1, true), r.err)
      assert.truthy(r.err:find("hint: " .. hint, 1, true), r.err)
    end

    it("a version table without version_num", function()
      pg.psql(url, "ALTER TABLE luamigrate_version RENAME version_num TO v")
      fails_with(run(dir, { "current" }),
        [[reading luamigrate's version table "luamigrate_version": column "version_num" does not exist]],
        [["luamigrate_version" is not the table luamigrate made (was it changed by hand?); the version table holds version_num]])
    end)

    it("a trigger raising on the version table or the history table", function()
      pg.psql(url, "CREATE FUNCTION boom() RETURNS trigger LANGUAGE plpgsql AS $$BEGIN RAISE 'no writes here'; END$$")
      pg.psql(url, "CREATE TRIGGER boom BEFORE INSERT OR UPDATE OR DELETE ON luamigrate_version FOR EACH ROW EXECUTE FUNCTION boom()")
      fails_with(run(dir, { "upgrade", "head" }), [[writing luamigrate's version table "luamigrate_version": no writes here]],
        [[a trigger or rule on "luamigrate_version" raised this]])
      pg.psql(url, "DROP TRIGGER boom ON luamigrate_version")
      pg.psql(url, "CREATE TRIGGER boom BEFORE INSERT ON luamigrate_version_history FOR EACH ROW EXECUTE FUNCTION boom()")
      fails_with(run(dir, { "upgrade", "head" }),
        [[writing luamigrate's history table "luamigrate_version_history": no writes here]],
        [[a trigger or rule on "luamigrate_version_history" raised this]])
      assert.equal("a", pg.psql(url, "SELECT version_num FROM luamigrate_version"))
    end)

    it("no schema selected to create in", function()
      local other, otherdb = pg.new_db("hostile")
      local r = cli.run({ "--url", other, "upgrade", "head" }, { cwd = dir, env = { PGOPTIONS = "-c search_path=nosuch" } })
      pg.drop_db(otherdb)
      fails_with(r, "luamigrate's journal table \"luamigrate_version_journal\": no schema has been selected to create in",
        "the search_path names no schema that exists")
    end)

    it("a statement_timeout from PGOPTIONS", function()
      -- another session holds the version table, so luamigrate's read of it waits
      local done = os.tmpname()
      os.execute(("(%spsql -XAtq -d %s -c 'BEGIN' -c 'LOCK TABLE luamigrate_version' -c 'SELECT pg_sleep(5)' "
        .. ">/dev/null 2>&1; echo >%s) &"):format(pg.tool, pg.shell_quote(url), done))
      for _ = 1, 100 do
        if pg.psql(url, "SELECT count(*) FROM pg_locks l JOIN pg_class c ON c.oid = l.relation "
          .. "WHERE c.relname = 'luamigrate_version' AND l.mode = 'AccessExclusiveLock' AND l.granted") == "1" then break end
        os.execute("sleep 0.05")
      end
      local r = run(dir, { "current" }, { env = { PGOPTIONS = "-c statement_timeout=300" } })
      pg.psql(url, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE query = 'SELECT pg_sleep(5)'")
      for _ = 1, 100 do
        if cli.slurp(done) ~= "" then break end
        os.execute("sleep 0.05")
      end
      os.remove(done)
      fails_with(r, [[reading luamigrate's version table "luamigrate_version": canceling statement due to statement timeout]],
        "a statement_timeout set for the session (PGOPTIONS, ALTER ROLE/DATABASE ... SET) also limits luamigrate's own")
    end)
  end)

  it("init quotes the directory it writes into luamigrate.lua", function()
    local p = assert(io.popen("mktemp -d /tmp/lmproj.XXXXXX"))
    local dir = p:read("l")
    p:close()
    local name = 'x" os.exit(7) --\\'
    local r = cli.run({ "init", name }, { cwd = dir })
    assert.equal(0, r.code, r.err)
    r = cli.run({ "heads" }, { cwd = dir })
    assert.equal(0, r.code, r.err)
    cli.write(dir .. "/" .. name .. "/versions/a_one.lua", cli.revision("a", nil, ""))
    r = cli.run({ "heads" }, { cwd = dir })
    cli.remove(dir)
    assert.equal(0, r.code, r.err)
    assert.equal("a (head)\n", r.out)
  end)
end)
