-- Security: a password given in the URL (raw or percent-encoded), in the config file or in
-- PGPASSWORD never appears in anything a command prints, whether it succeeds or fails;
-- files luamigrate writes are never group- or world-writable, whatever the umask; and
-- nothing in the binary runs a shell or another program. (Migration files are the project's
-- own code and get Lua's whole os and io libraries, as Alembic's Python migrations can do
-- anything; the binary itself never starts a process.)
local pg = require "helpers.pg"
local cli = require "helpers.cli"
local fixture = require "helpers.fixture"

local q = pg.shell_quote

-- The password as typed in the URL (percent-encoded) and as libpq decodes it.
local ENCODED, DECODED = "Pw%21d%40%2Fzz9", "Pw!d@/zz9"
local ENV_PW = "EnvPassw0rdZQ"

local function assert_no_secret(r, what)
  local all = (r.out or "") .. (r.err or "")
  for _, secret in ipairs { ENCODED, DECODED, ENV_PW, "Pw!d", "zz9" } do
    assert.is_nil(all:find(secret, 1, true), what .. " printed a password (" .. secret .. "):\n" .. all)
  end
end

describe("passwords", function()
  local fx = fixture.new { scope = "all" }
  local url, dbname, dir, with_pw

  setup(function()
    url, dbname = fx:new_db("security")
    pg.psql(url, "DO $$ BEGIN CREATE ROLE lm_pw_user LOGIN SUPERUSER PASSWORD 'x'; "
      .. "EXCEPTION WHEN duplicate_object THEN NULL; END $$")
    with_pw = ("postgresql://lm_pw_user:%s@127.0.0.1:%s/%s"):format(ENCODED, pg.port, dbname)
    dir = fx:project { files = {
      ["migrations/versions/p1_ok.lua"] = cli.revision("p1", nil, [[
  op.create_table("pw_t", sa.Column("id", sa.Integer, { primary_key = true }))
  op.autocommit_block(function() op.execute("CREATE INDEX CONCURRENTLY pw_ix ON pw_t (id)") end)
]], 'op.drop_table("pw_t")'),
      ["migrations/versions/p2_fails.lua"] = cli.revision("p2", "p1", [[
  op.execute("SELECT 1/0")
]]),
    } }
  end)

  it("never appear in the output of any command, successful or failing", function()
    local runs = {
      { { "upgrade", "p1" }, 0 },
      { { "upgrade", "--dry-run", "head" }, 1 },
      { { "upgrade", "head" }, 1 }, -- p2 fails: the error names revision and statement
      { { "upgrade", "--sql", "head" }, 0 },
      { { "status" }, 0 },
      { { "status", "--json" }, 0 },
      { { "current", "-v" }, 0 },
      { { "history", "-v" }, 0 },
      { { "heads", "-v" }, 0 },
      { { "stamp", "p1" }, 0 },
      { { "downgrade", "base" }, 0 },
      { { "check" }, 1 }, -- refused: the database is not at the heads
    }
    for _, run in ipairs(runs) do
      local argv = { "--url", with_pw }
      for _, a in ipairs(run[1]) do argv[#argv + 1] = a end
      local r = cli.run(argv, { cwd = dir })
      local what = table.concat(run[1], " ")
      assert.equal(run[2], r.code, what .. ": " .. r.err)
      assert_no_secret(r, what)
    end
    -- the redacted form is what -v shows
    local r = cli.run({ "--url", with_pw, "current", "-v" }, { cwd = dir })
    assert.truthy(r.out:find("postgresql://lm_pw_user:***@127.0.0.1:" .. pg.port, 1, true), r.out)
  end)

  it("never appear in connection failures, from the URL, the config or PGPASSWORD", function()
    local cases = {
      { args = { "--url", ("postgresql://lm_pw_user:%s@127.0.0.1:1/%s?connect_timeout=2"):format(ENCODED, dbname),
        "upgrade", "head" }, code = 1, text = "cannot connect to postgresql://lm_pw_user:***@127.0.0.1:1/" },
      { args = { "--url", ("host=127.0.0.1 port=1 user=lm_pw_user password='%s' connect_timeout=2"):format(DECODED),
        "status" }, code = 1, text = "cannot connect to postgresql://lm_pw_user:***@127.0.0.1:1/" },
      { args = { "--url", ("postgresql://lm_pw_user:%s%%zz@127.0.0.1/x"):format(ENCODED), "upgrade", "head" },
        code = 2, text = "invalid database URL" },
      { args = { "--url", ("host=127.0.0.1 password='%s"):format(DECODED), "upgrade", "head" },
        code = 2, text = "invalid database URL" },
      { args = { "--url", "postgresql://lm_pw_user@127.0.0.1:1/x?connect_timeout=2", "upgrade", "head" },
        env = { PGPASSWORD = ENV_PW }, code = 1, text = "cannot connect to postgresql://lm_pw_user@127.0.0.1:1/x" },
      { args = { "--url", "postgresql://lm_nologin_pw@127.0.0.1:" .. pg.port .. "/" .. dbname, "upgrade", "head" },
        env = { PGPASSWORD = ENV_PW }, code = 1, text = "is not permitted to log in",
        db = "DO $$ BEGIN CREATE ROLE lm_nologin_pw NOLOGIN; EXCEPTION WHEN duplicate_object THEN NULL; END $$" },
    }
    for _, c in ipairs(cases) do
      if c.db then pg.psql(url, c.db) end
      local r = cli.run(c.args, { cwd = dir, env = c.env })
      assert.equal(c.code, r.code, r.err)
      assert.truthy(r.err:find(c.text, 1, true), "expected '" .. c.text .. "' in:\n" .. r.err)
      assert_no_secret(r, c.args[#c.args - 1])
    end
    -- libpq's message quotes a word that holds the password's characters: the "***" put
    -- in for the password must not run on into them and spell it again (found by fuzz_url)
    local stars = ("*"):rep(5) -- the word's 7: 5 hidden as "***", then 2 more make 5 again
    local r0 = cli.run({ "--url", "g" .. ("*"):rep(7) .. " password=" .. stars .. " password='", "current" },
      { cwd = dir })
    assert.equal(2, r0.code, r0.err)
    assert.falsy(r0.err:find(stars, 1, true), r0.err)
    assert.truthy(r0.err:find("invalid database URL or connection string: libpq cannot parse it", 1, true), r0.err)
    -- a config file's url, a bad port in it
    local cdir = cli.project { config = ('script_location = "migrations"\nurl = %q\n'):format(
      ("postgresql://lm_pw_user:%s@127.0.0.1:1/x?connect_timeout=2"):format(ENCODED)) }
    local r = cli.run({ "upgrade", "head" }, { cwd = cdir })
    assert.equal(1, r.code, r.err)
    assert_no_secret(r, "config url")
    cli.remove(cdir)
  end)
end)

describe("files luamigrate writes", function()
  local function mode(path)
    local p = assert(io.popen("stat -c %a " .. q(path)))
    local m = p:read("l")
    p:close()
    return m
  end

  -- Runs luamigrate under a umask (the helper's cli.run cannot set one).
  local function run_umask(umask, dir, args)
    local t = {}
    for i, a in ipairs(args) do t[i] = q(a) end
    return os.execute(("cd %s && umask %s && %s %s >/dev/null 2>&1"):format(q(dir), umask, q(cli.bin),
      table.concat(t, " ")))
  end

  for _, case in ipairs { { "022", "644" }, { "000", "644" }, { "077", "600" } } do
    it(("are 0644 at most under umask %s (%s)"):format(case[1], case[2]), function()
      local dir = cli.project()
      os.execute("rm -rf " .. q(dir .. "/migrations") .. " " .. q(dir .. "/luamigrate.lua"))
      assert.truthy(run_umask(case[1], dir, { "init", "migrations" }))
      assert.truthy(run_umask(case[1], dir, { "revision", "-m", "first", "--rev-id", "aaa1" }))
      assert.truthy(run_umask(case[1], dir, { "revision", "-m", "second", "--rev-id", "aaa2" }))
      assert.truthy(run_umask(case[1], dir, { "heads" })) -- writes the revision cache
      local written = {
        dir .. "/luamigrate.lua",
        dir .. "/migrations/script.lua.tmpl",
        dir .. "/migrations/versions/aaa1_first.lua",
        dir .. "/migrations/versions/aaa2_second.lua",
        dir .. "/migrations/versions/.luamigrate_cache",
      }
      for _, path in ipairs(written) do
        assert.equal(case[2], mode(path), path)
      end
      cli.remove(dir)
    end)
  end

  it("never replace an existing file or follow a symbolic link in its place", function()
    local dir = cli.project()
    local target = os.tmpname()
    local keep = cli.revision("zzz9", nil)
    cli.write(target, keep)
    os.execute(("ln -s %s %s"):format(q(target), q(dir .. "/migrations/versions/bbb1_x.lua")))
    local r = cli.run({ "revision", "-m", "x", "--rev-id", "bbb1" }, { cwd = dir })
    assert.equal(2, r.code, r.err)
    assert.truthy(r.err:find("cannot create", 1, true), r.err)
    assert.equal(keep, cli.slurp(target))
    os.remove(target)
    cli.remove(dir)
  end)
end)

describe("the binary", function()
  it("runs no shell and no other program (no system, popen, exec*, fork in src/ or lua/)", function()
    local p = assert(io.popen(("cd %s && find src lua include -type f \\( -name '*.c' -o -name '*.h' -o -name '*.lua' \\)")
      :format(q(cli.src))))
    local files = {}
    for line in p:lines() do files[#files + 1] = line end
    p:close()
    assert.truthy(#files > 20, "the sources were not found under " .. cli.src)
    local patterns = {
      "%f[%w_]system%s*%(", "%f[%w_]popen%s*%(", "os%.execute", "io%.popen", "%f[%w_]exec[lv]p?e?%s*%(",
      "%f[%w_]fork%s*%(", "posix_spawn", "%f[%w_]dlopen%s*%(", "package%.loadlib",
    }
    local found = {}
    for _, f in ipairs(files) do
      local text = cli.slurp(cli.src .. "/" .. f)
      for _, pat in ipairs(patterns) do
        if text:find(pat) then found[#found + 1] = f .. ": " .. pat end
      end
    end
    assert.same({}, found)
  end)
end)

-- A string literal is quoted for the encoding it is read in. In SJIS (and BIG5, GBK,
-- GB18030, UHC, JOHAB) 0x83 0x5C is one character: a quoting rule that takes the 0x5C for a
-- backslash and doubles it leaves a lone backslash that, with backslash_quote = on, escapes
-- the closing quote, and the rest of the value runs as SQL.
describe("string literals under a client encoding whose characters can end in 0x5C", function()
  local fx = fixture.new { scope = "all" }
  local url, dbname, dir
  local EVIL = "\x83\x5c'); DROP TABLE victim; --"

  setup(function()
    url, dbname = fx:new_db("sjis")
    pg.psql(url, ("ALTER DATABASE %s SET backslash_quote = on"):format(dbname))
    dir = fx:project { files = {
      ["migrations/versions/s1_insert.lua"] = cli.revision("s1", nil, ([[
  op.create_table("t", sa.Column("v", sa.Text))
  op.bulk_insert("t", { { v = %q } })
]]):format(EVIL), 'op.drop_table("t")'),
    } }
  end)

  before_each(function()
    pg.psql(url, "DROP TABLE IF EXISTS t; DROP TABLE IF EXISTS victim; CREATE TABLE victim (id int); "
      .. "DROP TABLE IF EXISTS luamigrate_version, luamigrate_version_history, luamigrate_version_journal")
  end)

  it("cannot drop a table online: the literal is escaped for the connection (PQescapeLiteral)", function()
    local r = cli.run({ "--url", url, "upgrade", "head" }, { cwd = dir, env = { PGCLIENTENCODING = "SJIS" } })
    assert.equal(0, r.code, r.err)
    assert.equal("0", pg.psql(url, "SELECT count(*) FROM victim")) -- raises if it was dropped
    -- the value went in whole: SJIS 0x83 0x5C is katakana SO
    assert.equal("\227\130\189'); DROP TABLE victim; --", pg.psql(url, "SELECT v FROM t"))
  end)

  it("cannot drop a table through --sql and psql: the script sets its encoding, and refuses SJIS", function()
    local r = cli.run({ "upgrade", "head", "--sql" }, { cwd = dir, env = { PGCLIENTENCODING = "SJIS" } })
    assert.equal(1, r.code)
    assert.truthy(r.err:find("PGCLIENTENCODING=SJIS: a script cannot be quoted safely", 1, true), r.err)
    assert.equal("", r.out)
    r = cli.run({ "upgrade", "head", "--sql" }, { cwd = dir })
    assert.equal(0, r.code, r.err)
    assert.truthy(r.out:find("^SET client_encoding = 'UTF8';\n\nBEGIN;\n"), r.out)
    local script = os.tmpname()
    cli.write(script, r.out)
    os.execute(("PGCLIENTENCODING=SJIS %spsql -X -q -v ON_ERROR_STOP=1 -d %s -f %s >/dev/null 2>&1")
      :format(pg.tool, q(url), q(script)))
    os.remove(script)
    assert.equal("0", pg.psql(url, "SELECT count(*) FROM victim")) -- raises if it was dropped
  end)
end)
