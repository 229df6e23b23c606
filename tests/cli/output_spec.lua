-- What a user sees while commands run: colour and a progress counter on a terminal only,
-- plain lines when piped, -q and -v, server notices named by revision, --help for every
-- command, and a suggestion for a mistyped option.
local pg = require "helpers.pg"
local cli = require "helpers.cli"
local fixture = require "helpers.fixture"

local ESC = "\27[" -- for plain finds; ESCP in patterns
local ESCP = "\27%["

describe("output", function()
  local fx = fixture.new()
  local dir, url, dbname, ids

  before_each(function()
    local files
    files, ids = cli.chain(5)
    files["migrations/versions/06abcdef0123_notice.lua"] = cli.revision("06abcdef0123", ids[5],
      "  op.execute(\"DO $$ BEGIN RAISE NOTICE 'hi'; END $$\")\n"
      .. "  op.execute(\"DO $$ BEGIN RAISE WARNING 'careful' USING HINT = 'mind the gap'; END $$\")\n")
    ids[6] = "06abcdef0123"
    dir, url, dbname = fx:open { files = files }
  end)

  local function run(args, opts)
    opts = opts or {}
    opts.cwd = dir
    opts.unset = { "NO_COLOR" }
    local argv = { "--url", url }
    for _, a in ipairs(args) do argv[#argv + 1] = a end
    return cli.run(argv, opts)
  end

  local function tty(args, opts)
    opts = opts or {}
    opts.cwd = dir
    if not (opts.env and opts.env.NO_COLOR) then opts.unset = { "NO_COLOR" } end
    local argv = { "--url", url }
    for _, a in ipairs(args) do argv[#argv + 1] = a end
    return cli.run_tty(argv, opts)
  end

  local function applied()
    return pg.psql(url, "SELECT coalesce(to_regclass('luamigrate_version')::text, '')") == ""
      and "" or pg.psql(url, "SELECT string_agg(version_num, ',') FROM luamigrate_version")
  end

  it("colours errors, step durations and (head) on a terminal", function()
    local r = tty { "upgrade", "no_such_rev" }
    assert.equal(2, r.code, r.out)
    assert.truthy(r.out:find(ESC .. "1;31mluamigrate:" .. ESC .. "0m Can't locate revision", 1, true), r.out)
    r = tty { "upgrade", "+1" }
    assert.equal(0, r.code, r.out)
    assert.truthy(r.out:find("Running upgrade  %-> " .. ids[1] .. ", revision " .. ids[1] .. " " .. ESCP
      .. "2m%(%d+ ms%)" .. ESCP .. "0m\n"), r.out)
    r = tty { "heads" }
    assert.equal(ids[6] .. " " .. ESC .. "32m(head)" .. ESC .. "0m\n", r.out)
  end)

  it("has no colour with NO_COLOR, TERM=dumb or --color=never, and colour with --color=always", function()
    for _, case in ipairs {
      { env = { NO_COLOR = "1" } },
      { env = { TERM = "dumb" } },
      { args = { "--color=never" } },
      { args = { "--color", "never" } },
    } do
      local args = {}
      for _, a in ipairs(case.args or {}) do args[#args + 1] = a end
      args[#args + 1] = "upgrade"
      args[#args + 1] = "no_such_rev"
      local r = tty(args, { env = case.env })
      assert.equal(2, r.code, r.out)
      assert.truthy(r.out:find("luamigrate: Can't locate revision", 1, true), r.out)
      assert.is_nil(r.out:find("\27", 1, true), r.out)
    end
    -- An empty NO_COLOR does not count (no-color.org).
    local r = tty({ "heads" }, { env = { NO_COLOR = "" } })
    assert.truthy(r.out:find(ESC .. "32m(head)", 1, true), r.out)
    r = run { "--color=always", "heads" }
    assert.equal(ids[6] .. " " .. ESC .. "32m(head)" .. ESC .. "0m\n", r.out)
    r = run { "--color=sometimes", "heads" }
    assert.equal(2, r.code)
    assert.truthy(r.err:find("--color: 'sometimes' is not auto, always or never", 1, true), r.err)
  end)

  it("counts steps on a terminal and keeps piped output plain", function()
    -- Piped: one plain line per step, as before.
    local r = run { "upgrade", "head" }
    assert.equal(0, r.code, r.err)
    assert.equal("", r.out)
    assert.is_nil(r.err:find("\27", 1, true), r.err)
    assert.is_nil(r.err:find("/6]", 1, true), r.err)
    assert.truthy(r.err:find("^Running upgrade  %-> " .. ids[1] .. ", revision " .. ids[1] .. " %(%d+ ms%)\n"), r.err)
    assert.truthy(r.err:find("\nRunning upgrade " .. ids[2] .. " %-> " .. ids[3] .. ", revision " .. ids[3]
      .. "\nserver NOTICE in " .. ids[3] .. ": relation \"migration_log\" already exists, skipping\n  %.%.%. %(%d+ ms%)\n"), r.err)
    assert.equal(0, run({ "downgrade", "base" }).code)
    r = tty { "upgrade", "head" }
    assert.equal(0, r.code, r.out)
    for i = 1, 6 do
      assert.truthy(r.out:find(ESC .. "2m[" .. i .. "/6]" .. ESC .. "0m Running upgrade ", 1, true), r.out)
    end
    r = tty({ "downgrade", "base" }, { env = { NO_COLOR = "1" } })
    assert.equal(0, r.code, r.out)
    assert.truthy(r.out:find("[1/6] Running downgrade " .. ids[6] .. " -> " .. ids[5], 1, true), r.out)
    assert.truthy(r.out:find("\n[6/6] Running downgrade " .. ids[1] .. " -> , revision", 1, true), r.out)
    -- One step: nothing to count.
    r = tty({ "upgrade", "+1" }, { env = { NO_COLOR = "1" } })
    assert.truthy(r.out:find("^Running upgrade  %-> " .. ids[1]), r.out)
  end)

  it("keeps a dry run's statements off the step line on a terminal and in a shared log", function()
    local r = tty({ "upgrade", "--dry-run", "+2" }, { env = { NO_COLOR = "1" } })
    assert.equal(0, r.code, r.out)
    assert.truthy(r.out:find("^%[1/2%] Running upgrade  %-> " .. ids[1] .. ", revision " .. ids[1]
      .. "\nCREATE TABLE IF NOT EXISTS migration_log"), r.out)
    assert.truthy(r.out:find("\n  %.%.%. %(%d+ ms%)\n%[2/2%] Running upgrade " .. ids[1]), r.out)
    local log = dir .. "/run.log"
    assert(os.execute(("cd %s && env -u NO_COLOR %s --url %s upgrade --dry-run +1 >%s 2>&1"):format(
      pg.shell_quote(dir), pg.shell_quote(cli.bin), pg.shell_quote(url), pg.shell_quote(log))))
    local text = cli.slurp(log)
    assert.truthy(text:find("^Running upgrade  %-> " .. ids[1] .. ", revision " .. ids[1]
      .. "\nCREATE TABLE IF NOT EXISTS migration_log"), text)
    -- Separate streams stay as they were: the step line is whole on stderr.
    r = run { "upgrade", "--dry-run", "+1" }
    assert.truthy(r.err:find("^Running upgrade  %-> " .. ids[1] .. ", revision " .. ids[1] .. " %(%d+ ms%)\n"), r.err)
    assert.equal("", applied())
  end)

  it("puts a migration's print on stderr, on a line of its own, and out of --sql scripts", function()
    cli.write(dir .. "/migrations/versions/07abcdef0123_talk.lua", cli.revision("07abcdef0123", ids[6],
      '  print("backfilling", 3, "rows")\n  op.execute("SELECT 1")\n'))
    assert.equal(0, run({ "upgrade", ids[6] }).code)
    local r = tty({ "--color=never", "upgrade", "head" })
    assert.equal(0, r.code, r.out)
    -- the step line ends before the migration's output; the duration follows on its own line
    assert.truthy(r.out:find("Running upgrade " .. ids[6] .. " -> 07abcdef0123, revision 07abcdef0123\n"
      .. "backfilling\t3\trows\n  ... (", 1, true), r.out)
    r = run({ "upgrade", "--sql", ids[6] .. ":head" })
    assert.equal(0, r.code, r.err)
    assert.falsy(r.out:find("backfilling", 1, true), r.out)
    assert.equal("backfilling\t3\trows\n", r.err)
  end)

  it("shows the user's frames in a traceback, luamigrate's own only with -v", function()
    cli.write(dir .. "/migrations/versions/07abcdef0123_bad.lua", cli.revision("07abcdef0123", ids[6],
      '  op.add_column("no_such_table", sa.Column("x", sa.Integer()))\n'))
    assert.equal(0, run({ "upgrade", ids[6] }).code)
    local r = run({ "upgrade", "head" })
    assert.equal(1, r.code, r.err)
    local tb = r.err:match("  stack traceback:\n(.*)$")
    assert.equal("  \tmigrations/versions/07abcdef0123_bad.lua:9: in function "
      .. "<migrations/versions/07abcdef0123_bad.lua:8>\n", tb)
    r = run({ "-v", "upgrade", "head" })
    assert.equal(1, r.code, r.err)
    tb = r.err:match("  stack traceback:\n(.*)$")
    assert.truthy(tb:find("[luamigrate]/luamigrate/op.lua:", 1, true), tb)
    assert.truthy(tb:find("migrations/versions/07abcdef0123_bad.lua:9:", 1, true), tb)
  end)

  it("shows server notices and warnings prefixed, naming the revision", function()
    local r = run { "upgrade", "head" }
    assert.equal(0, r.code, r.err)
    assert.truthy(r.err:find("\nserver NOTICE in " .. ids[6] .. ": hi\nserver WARNING in " .. ids[6]
      .. ": careful\n  hint: mind the gap\n", 1, true), r.err)
    -- -q silences the step lines, never what the server said.
    assert.equal(0, run({ "downgrade", ids[5] }).code)
    r = run { "-q", "upgrade", "head" }
    assert.equal(0, r.code, r.err)
    assert.equal("server NOTICE in " .. ids[6] .. ": hi\nserver WARNING in " .. ids[6]
      .. ": careful\n  hint: mind the gap\n", r.err)
  end)

  it("-v shows the connection, the lock and each statement with its parameters", function()
    for _, args in ipairs { { "-v", "upgrade", "+2" }, { "upgrade", "+2", "--verbose" } } do
      local r = run(args)
      assert.equal(0, r.code, r.err)
      assert.truthy(r.err:find("^Connected to postgresql://[^\n]*/" .. dbname .. "[^\n]* %(PostgreSQL %d+%.%d+%) in [%d.]+ ms\n"), r.err)
      assert.truthy(r.err:find("\nMigration lock %(session%) taken in [%d.]+ ms\n"), r.err)
      assert.truthy(r.err:find("\nRunning upgrade  %-> " .. ids[1] .. ", revision " .. ids[1] .. "\n  sql: CREATE TABLE IF NOT EXISTS migration_log"), r.err)
      assert.truthy(r.err:find("\n  sql: CREATE TABLE t2 %(id int%) %(%d+%.%d%d ms%)\n"), r.err)
      assert.truthy(r.err:find("\n  sql: INSERT INTO migration_log (rev, direction) VALUES ($1, 'up')\n       $1 = '"
        .. ids[2] .. "' (", 1, true), r.err)
      assert.equal(ids[2], applied())
      assert.equal(0, run({ "downgrade", "base" }).code)
    end
    -- The command's own -v stays the command's; before the command it is the global one.
    assert.equal(0, run({ "upgrade", "head" }).code)
    local r = run { "current", "-v" }
    assert.truthy(r.out:find("Rev: " .. ids[6] .. " (head)", 1, true), r.out)
    assert.is_nil(r.err:find("Connected to", 1, true), r.err)
    r = run { "-v", "current" }
    assert.equal(ids[6] .. " (head)\n", r.out)
    assert.truthy(r.err:find("^Connected to postgresql://"), r.err)
    r = run { "-q", "-v", "current" }
    assert.equal(2, r.code)
    assert.truthy(r.err:find("-q and -v contradict each other", 1, true), r.err)
  end)

  it("suggests the closest option, exits 2 and changes nothing", function()
    for _, case in ipairs {
      { { "upgrade", "--dryrun", "head" }, "upgrade: unknown option '--dryrun'", "did you mean '--dry-run'?" },
      { { "upgrade", "--sqll=x", "head" }, "upgrade: unknown option '--sqll=x'", "did you mean '--sql'?" },
      { { "history", "--indicate-curent" }, "history: unknown option '--indicate-curent'", "did you mean '--indicate-current'?" },
      { { "stamp", "--purg", "head" }, "stamp: unknown option '--purg'", "did you mean '--purge'?" },
      { { "upgrade", "--verbos", "head" }, "upgrade: unknown option '--verbos'", "did you mean '--verbose'?" },
      { { "upgrade", "--frobnicate", "head" }, "upgrade: unknown option '--frobnicate'", "hint: luamigrate upgrade --help lists its options" },
      { { "--verbos", "upgrade", "head" }, "unknown global option '--verbos'", "did you mean '--verbose'?" },
      { { "--lock-timout", "3", "upgrade", "head" }, "unknown global option '--lock-timout'", "did you mean '--lock-timeout'?" },
      { { "upgrade", "head", "--url", url }, "upgrade: '--url' is a global option: it goes before the command", "hint: luamigrate --url ... upgrade ..." },
    } do
      local r = run(case[1])
      assert.equal(2, r.code, r.err)
      assert.equal("", r.out)
      assert.truthy(r.err:find("luamigrate: " .. case[2], 1, true), r.err)
      assert.truthy(r.err:find(case[3], 1, true), r.err)
      assert.equal("", applied())
    end
  end)

  it("gives every command a --help with usage, options and an example", function()
    for _, c in ipairs { "init", "revision", "check", "upgrade", "downgrade", "current", "heads",
      "branches", "merge", "history", "show", "status", "repair", "stamp", "convert", "inspect", "lint" } do
      local r = cli.run({ c, "--help" })
      assert.equal(0, r.code, c .. ": " .. r.err)
      assert.equal("", r.err)
      assert.truthy(r.out:find("^usage: luamigrate " .. c), r.out)
      assert.truthy(r.out:find("\noptions:\n", 1, true), r.out)
      assert.truthy(r.out:find("\n  -h, --help ", 1, true), r.out)
      assert.truthy(r.out:find("\nexample:\n  luamigrate " .. c, 1, true), r.out)
      for line in r.out:gmatch("[^\n]*") do assert.truthy(#line <= 80, c .. " --help: " .. line) end
      -- help COMMAND, as git's, is the same text
      local h = cli.run({ "help", c })
      assert.equal(0, h.code, h.err)
      assert.equal(r.out, h.out)
    end
    local r = cli.run({ "--help" })
    assert.equal(0, r.code)
    for line in r.out:gmatch("[^\n]*") do assert.truthy(#line <= 80, "--help: " .. line) end
    assert.equal(r.out, cli.run({ "help" }).out)
    assert.equal(r.out, cli.run({ "help", "help" }).out)
    local h = cli.run({ "help", "upgrad" })
    assert.equal(2, h.code)
    assert.equal("luamigrate: help: unknown command 'upgrad'\n  hint: did you mean 'upgrade'?\n", h.err)
    -- the usage lines name --json where the command takes it
    for _, c in ipairs { "current", "heads", "history", "show", "status" } do
      assert.truthy(cli.run({ c, "--help" }).out:find("^usage: [^\n]*%[%-%-json%]"), c)
    end
    -- the branch forms of a target
    assert.truthy(cli.run({ "upgrade", "--help" }).out:find("on one branch: LABEL@head, LABEL@heads, LABEL@+N, LABEL@REV\n", 1, true))
    assert.truthy(cli.run({ "downgrade", "--help" }).out:find("on one branch: LABEL@base, LABEL@-N, LABEL@REV\n", 1, true))
    for _, text in ipairs { "\n  -v, --verbose ", "\n  -q, --quiet ", "\n  --color WHEN ", "\nexit status:\n  0  success\n",
      "\n  1  a migration or database error", "\n  2  a usage or config error", "\nexample:\n  luamigrate " } do
      assert.truthy(r.out:find(text, 1, true), text)
    end
  end)
end)
