-- Bad input against a database that holds data: every case gets one clear message (naming
-- the file, line, revision or statement), a non-zero exit status, and leaves the database
-- exactly as it was (a pg_dump of schema and data before and after).
local pg = require "helpers.pg"
local cli = require "helpers.cli"
local fixture = require "helpers.fixture"

local V = "migrations/versions/"

describe("bad input leaves the database as it was", function()
  local files, ids = cli.chain(3)
  local fx = fixture.new()
  local url

  before_each(function()
    url = fx:new_db("bad")
    local dir = cli.project { files = files }
    assert.equal(0, cli.run({ "--url", url, "upgrade", "+2" }, { cwd = dir }).code)
    cli.remove(dir)
    pg.psql(url, "INSERT INTO t1 SELECT generate_series(1, 100)")
  end)

  local function with(extra, drop)
    local t = {}
    for k, v in pairs(files) do t[k] = v end
    for _, k in ipairs(drop or {}) do t[k] = nil end
    for k, v in pairs(extra or {}) do t[k] = v end
    return t
  end

  local step3 = V .. ids[3] .. "_step_3.lua"
  local bad3 = function(up, down) return { [step3] = cli.revision(ids[3], ids[2], up, down or "") } end
  local conn_to = function(db) return ("host=%s port=%s user=postgres dbname=%s"):format(pg.host, pg.port, db) end

  -- { name, files (or nil for the chain), args, expected exit status, text the message
  --   holds, opts = { config, url(url) -> url, db(url) -> nil (a change made before) } }
  local cases = {
    { "a Lua syntax error in a migration", with { [step3] = "revision = '03'\nfunction upgrade(\n" }, nil, 2,
      step3 .. ":3:" },
    { "a Lua runtime error while loading a migration", with { [step3] = "revision = 'x' .. nil\n" }, nil, 2,
      step3 .. ":1: attempt to concatenate a nil value" },
    { "a Lua runtime error in upgrade()", with(bad3("  local t = nil\n  t.x = 1\n")), nil, 1,
      "upgrade " .. ids[2] .. " -> " .. ids[3] .. " failed: " .. step3 .. ":10: attempt to index a nil value (local 't')" },
    { "an error() with a table value", with(bad3("  error({ code = 7 })\n")), nil, 1,
      "upgrade " .. ids[2] .. " -> " .. ids[3] .. " failed" },
    { "a Lua syntax error in the config", nil, nil, 2, "luamigrate.lua:2:",
      { config = 'script_location = "migrations"\nlock_timeout = = 3\n' } },
    { "a Lua runtime error in the config", nil, nil, 2, "luamigrate.lua:1:",
      { config = 'script_location = os.getenv("NOPE_NOT_SET"):lower()\n' } },
    { "a config setting of the wrong type", nil, nil, 2, "luamigrate.lua:2: setting 'lock_timeout' must be a number, got string",
      { config = 'script_location = "migrations"\nlock_timeout = "soon"\n' } },
    { "a missing upgrade()", with { [step3] = ("revision = %q\ndown_revision = %q\nfunction downgrade() end\n"):format(ids[3], ids[2]) },
      nil, 2, step3 .. ": missing function upgrade() (revision " .. ids[3] .. ")" },
    { "upgrade of the wrong type", with { [step3] = ("revision = %q\ndown_revision = %q\nupgrade = 'yes'\nfunction downgrade() end\n"):format(ids[3], ids[2]) },
      nil, 2, step3 .. ": 'upgrade' must be a function, got string" },
    { "branch_labels of the wrong type", with { [step3] = cli.revision(ids[3], ids[2], "", "", "branch_labels = 5\n") },
      nil, 2, step3 .. ": 'branch_labels' must be nil, a string or a table of strings, got number" },
    { "depends_on naming nothing", with { [step3] = cli.revision(ids[3], ids[2], "", "", "depends_on = 'nothere'\n") },
      nil, 2, "nothere" },
    { "duplicate ids", with { [V .. "dup_x.lua"] = cli.revision(ids[2], ids[1]) }, nil, 2,
      "Revision " .. ids[2] .. " is present more than once" },
    { "a cycle", with { [V .. ids[1] .. "_step_1.lua"] = cli.revision(ids[1], ids[3]) }, nil, 2,
      "Cycle is detected in revisions" },
    { "a missing parent", with({}, { V .. ids[2] .. "_step_2.lua" }), nil, 2,
      "Revision " .. ids[2] .. " referenced from " .. ids[3] .. " (" .. step3 .. ") is not present" },
    { "a revision in the database that no file defines", nil, nil, 1,
      "Can't locate revision identified by 'feedfacecafe'",
      { db = function(u) pg.psql(u, "UPDATE luamigrate_version SET version_num = 'feedfacecafe'") end } },
    { "a version table altered by hand", nil, nil, 1, "version_num",
      { db = function(u) pg.psql(u, "ALTER TABLE luamigrate_version RENAME COLUMN version_num TO v") end } },
    { "an ambiguous target", with { [V .. "03abcdef9999_x.lua"] = cli.revision("03abcdef9999", ids[2]) },
      { "upgrade", "03abcdef" }, 2, "Multiple revisions start with '03abcdef'" },
    { "an unknown target", nil, { "upgrade", "0badc0de" }, 2, "Can't locate revision identified by '0badc0de'" },
    { "a downgrade below base", nil, { "downgrade", "-5" }, 2, "Relative revision -5 didn't produce 5 migrations" },
    { "an upgrade past head", nil, { "upgrade", "+5" }, 2, "Relative revision +5 didn't produce 5 migrations" },
    { "a range without --sql", nil, { "upgrade", ids[1] .. ":head" }, 2, "Range revision not allowed" },
    { "a stamp of an unknown revision", nil, { "stamp", "0badc0de" }, 2, "Can't locate revision identified by '0badc0de'" },
    { "an unparsable URL (and its password is never shown)", nil, nil, 2,
      "invalid database URL or connection string: invalid percent-encoded token",
      { url = function() return "postgresql://postgres:s3cret%zz@localhost/x" end } },
    { "a URL with a bad port", nil, nil, 1, 'invalid integer value "port:what" for connection option "port"',
      { url = function() return "postgresql://host:port:what/db" end } },
    { "an unreachable server", nil, nil, 1, "cannot connect to postgresql://postgres@127.0.0.1:1/x",
      { url = function() return "postgresql://postgres@127.0.0.1:1/x?connect_timeout=2" end } },
    { "a role that may not log in (and its password is never shown)", nil, nil, 1,
      "is not permitted to log in",
      { url = function() return conn_to("postgres"):gsub("user=postgres", "user=lm_nologin password=s3cret") end,
        db = function(u) pg.psql(u, "DO $$ BEGIN CREATE ROLE lm_nologin NOLOGIN; EXCEPTION WHEN duplicate_object THEN NULL; END $$") end } },
    { "a missing database", nil, nil, 1, 'database "lm_no_such_db" does not exist',
      { url = function() return conn_to("lm_no_such_db") end } },
    { "permission denied", nil, nil, 1, "permission denied for schema public",
      { url = function(u) return u:gsub("user=postgres", "user=lm_weak") end,
        db = function(u)
          pg.psql(u, "DO $$ BEGIN CREATE ROLE lm_weak LOGIN; EXCEPTION WHEN duplicate_object THEN NULL; END $$")
          pg.psql(u, "ALTER TABLE luamigrate_version RENAME TO lm_v_old")
        end } },
    { "a SQL error", with(bad3("  op.execute('CREATE TABLE t3 (id int)')\n  op.execute('INSERT INTO t3 VALUES (1/0)')\n")), nil, 1,
      "ERROR 22012: division by zero" },
    { "a non-transactional statement inside the transaction",
      with(bad3("  op.execute('CREATE TABLE t3 (id int)')\n  op.execute('CREATE INDEX CONCURRENTLY t3_id ON t3 (id)')\n")), nil, 1,
      "CREATE INDEX CONCURRENTLY cannot run inside a transaction block" },
    { "a file that never assigns down_revision (not a second base)",
      with { [V .. "04abcdef0123_x.lua"] = 'revision = "04abcdef0123"\nfunction upgrade() end\nfunction downgrade() end\n' },
      nil, 2, V .. "04abcdef0123_x.lua: revision 04abcdef0123 never assigns 'down_revision'\n  hint: set it to" },
    { "a file whose revision is nil",
      with { [V .. "04abcdef0123_x.lua"] = 'revision = nil\ndown_revision = nil\nfunction upgrade() end\nfunction downgrade() end\n' },
      nil, 2, V .. "04abcdef0123_x.lua: 'revision' is nil" },
    { "a helper module that uses op without requiring it",
      with { ["migrations/helpers/tbl.lua"] = 'local M = {}\nfunction M.mk(t)\n  op.execute("CREATE TABLE " .. t .. " (id int)")\nend\nreturn M\n',
        [step3] = cli.revision(ids[3], ids[2], '  require("helpers.tbl").mk("t3")\n') }, nil, 1,
      "migrations/helpers/tbl.lua:3: attempt to index a nil value (global 'op')\n" },
    { "a helper module that uses op without requiring it: the hint",
      with { ["migrations/helpers/tbl.lua"] = 'local M = {}\nfunction M.mk(t)\n  op.execute("CREATE TABLE " .. t .. " (id int)")\nend\nreturn M\n',
        [step3] = cli.revision(ids[3], ids[2], '  require("helpers.tbl").mk("t3")\n') }, nil, 1,
      '  hint: only migration files get op as a global; a helper module requires it: local op = require "luamigrate.op"\n' },
    { "an unreadable revision file", with { [V .. "04abcdef0123_x.lua"] = false }, nil, 2, "04abcdef0123_x.lua" },
    { "a binary (precompiled) chunk", with { [step3] = "\27Lua\84\0\25\147\13\10\26\10" }, nil, 2, step3 },
    { "a file that is not a Lua text file", with { [step3] = ("\255\254\0\1"):rep(64) }, nil, 2,
      step3 .. ": not a Lua text file" },
    { "a huge revision file", with { [step3] = cli.revision(ids[3], ids[2], "  local s = [[" .. ("x"):rep(1024 * 1024) .. "]]\n  error('too big a migration ' .. #s)\n") },
      nil, 1, "too big a migration 1048576" },
    { "a non-UTF-8 file name", with { [V .. "\255\254_x.lua"] = "revision = \n" }, nil, 2, "_x.lua:2:" },
    { "a non-UTF-8 revision id", with { [V .. "x_x.lua"] = cli.revision("ab\255", ids[3]) }, nil, 2,
      "x_x.lua: revision identifier is not valid UTF-8 text" },
    { "an unknown command", nil, { "upgarde", "head" }, 2, "did you mean 'upgrade'" },
    { "an unknown option", nil, { "upgrade", "--sqll", "head" }, 2, "--sqll" },
    { "an unknown lock mode", nil, { "--lock", "advisory", "upgrade", "head" }, 2, '--lock: lock must be "session", "xact" or "table"' },
  }

  for _, c in ipairs(cases) do
    local name, cfiles, args, code, text, opts = c[1], c[2], c[3], c[4], c[5], c[6] or {}
    it("on " .. name, function()
      local dir = cli.project { files = cfiles or files, config = opts.config }
      for path, body in pairs(cfiles or {}) do
        if body == false then -- a dangling symbolic link: listed, cannot be read
          os.remove(dir .. "/" .. path)
          assert(os.execute(("ln -s /nonexistent/file %s"):format(pg.shell_quote(dir .. "/" .. path))))
        end
      end
      if opts.db then opts.db(url) end
      local before = pg.dump(url)
      local target = opts.url and opts.url(url) or url
      local argv = { "--url", target }
      for _, a in ipairs(args or { "upgrade", "head" }) do argv[#argv + 1] = a end
      local r = cli.run(argv, { cwd = dir })
      cli.remove(dir)
      assert.equal(code, r.code, r.err)
      assert.truthy(r.err:find(text, 1, true), "expected '" .. text .. "' in:\n" .. r.err)
      assert.equal(1, select(2, r.err:gsub("luamigrate: ", "")), "one message expected:\n" .. r.err)
      assert.is_nil(r.err:find("s3cret", 1, true), "a password was printed:\n" .. r.err)
      assert.equal(before, pg.dump(url), "the database changed")
    end)
  end

  it("holds at least 30 cases", function() assert.is_true(#cases >= 30, #cases .. " cases") end)
end)
