-- Bad revision files and bad configs: one clear message naming the file, exit code 2, and
-- the database untouched.
local pg = require "helpers.pg"
local cli = require "helpers.cli"
local fixture = require "helpers.fixture"

describe("bad input", function()
  local fx = fixture.new { scope = "all" }
  local url

  setup(function() url = fx:new_db() end)

  local function try(files, args, config)
    local dir = cli.project { files = files, config = config }
    local before = pg.dump(url)
    local r = cli.run({ "--url", url, table.unpack(args or { "upgrade", "head" }) }, { cwd = dir })
    cli.remove(dir)
    assert.equal(before, pg.dump(url))
    return r
  end

  local ok_rev = cli.revision("aaaa", nil, "")

  local cases = {
    { "a Lua syntax error", { ["migrations/versions/aaaa_x.lua"] = "revision = 'aaaa'\nfunction upgrade(\n" },
      "migrations/versions/aaaa_x.lua:3:" },
    { "a missing revision", { ["migrations/versions/aaaa_x.lua"] = "function upgrade() end\nfunction downgrade() end\n" },
      "migrations/versions/aaaa_x.lua: missing 'revision'" },
    { "a revision of the wrong type", { ["migrations/versions/aaaa_x.lua"] = "revision = 12\n" },
      "migrations/versions/aaaa_x.lua: 'revision' must be a string, got number" },
    { "a down_revision of the wrong type", { ["migrations/versions/aaaa_x.lua"] = "revision = 'aaaa'\ndown_revision = true\n" },
      "migrations/versions/aaaa_x.lua: 'down_revision' must be nil, a string or a table of strings, got boolean" },
    { "a missing downgrade()", { ["migrations/versions/aaaa_x.lua"] = "revision = 'aaaa'\ndown_revision = nil\nfunction upgrade() end\n" },
      "migrations/versions/aaaa_x.lua: missing function downgrade() (revision aaaa)" },
    { "duplicate ids", { ["migrations/versions/aaaa_x.lua"] = ok_rev, ["migrations/versions/aaaa_y.lua"] = ok_rev },
      "Revision aaaa is present more than once: in migrations/versions/aaaa_x.lua and in migrations/versions/aaaa_y.lua" },
    { "an unknown down_revision", { ["migrations/versions/bbbb_x.lua"] = cli.revision("bbbb", "zzzz") },
      "Revision zzzz referenced from bbbb (migrations/versions/bbbb_x.lua) is not present" },
    { "a cycle", { ["migrations/versions/aaaa_x.lua"] = cli.revision("aaaa", "bbbb"),
      ["migrations/versions/bbbb_x.lua"] = cli.revision("bbbb", "aaaa") }, "Cycle is detected in revisions (aaaa, bbbb)" },
    { "bad characters in an id", { ["migrations/versions/a_x.lua"] = cli.revision("a-b", nil) },
      "Character(s) '-' not allowed in revision identifier 'a-b'" },
    { "an undefined name at load time", { ["migrations/versions/aaaa_x.lua"] = "revision = 'aaaa'\nlocal x = donw_revision\n" },
      "migrations/versions/aaaa_x.lua:2: undefined name 'donw_revision'" },
    { "a binary file", { ["migrations/versions/aaaa_x.lua"] = "revision = 'aaaa'\0\1\2" },
      "migrations/versions/aaaa_x.lua: not a Lua text file (it holds NUL bytes)" },
    { "op called at load time", { ["migrations/versions/aaaa_x.lua"] = "revision = 'aaaa'\nop.execute('SELECT 1')\n" },
      "op.execute called outside a migration" },
  }

  for _, c in ipairs(cases) do
    it("rejects " .. c[1], function()
      local r = try(c[2])
      assert.equal(2, r.code, r.err)
      assert.truthy(r.err:find(c[3], 1, true), "expected '" .. c[3] .. "' in:\n" .. r.err)
      assert.equal(1, select(2, r.err:gsub("luamigrate: ", "")), "one message expected:\n" .. r.err)
    end)
  end

  it("rejects an unknown config setting with file:line", function()
    local r = try({ ["migrations/versions/aaaa_x.lua"] = ok_rev }, nil, 'script_location = "migrations"\nversion_tabel = "x"\n')
    assert.equal(2, r.code)
    assert.truthy(r.err:find("luamigrate.lua:2: unknown setting 'version_tabel'", 1, true), r.err)
  end)

  it("rejects a missing versions directory", function()
    local r = try({}, nil, 'script_location = "elsewhere"\n')
    assert.equal(2, r.code)
    assert.truthy(r.err:find("cannot open the versions directory elsewhere/versions", 1, true), r.err)
  end)

  it("suggests the closest command", function()
    local r = try({ ["migrations/versions/aaaa_x.lua"] = ok_rev }, { "upgrad", "head" })
    assert.equal(2, r.code)
    assert.truthy(r.err:find("unknown command 'upgrad'", 1, true))
    assert.truthy(r.err:find("did you mean 'upgrade'?", 1, true))
  end)

  it("rejects an unknown option", function()
    local r = try({ ["migrations/versions/aaaa_x.lua"] = ok_rev }, { "upgrade", "--bogus", "head" })
    assert.equal(2, r.code)
    assert.truthy(r.err:find("upgrade: unknown option '--bogus'", 1, true))
  end)

  it("names a revision stored in the database that no file defines", function()
    local dir = cli.project { files = { ["migrations/versions/aaaa_x.lua"] = ok_rev } }
    assert.equal(0, cli.run({ "--url", url, "stamp", "aaaa" }, { cwd = dir }).code)
    pg.psql(url, "UPDATE luamigrate_version SET version_num = 'deadbeef0000'")
    local r = cli.run({ "--url", url, "upgrade", "head" }, { cwd = dir })
    assert.equal(1, r.code)
    assert.truthy(r.err:find("Can't locate revision identified by 'deadbeef0000'", 1, true), r.err)
    assert.truthy(r.err:find("stamp --purge", 1, true), r.err)
    r = cli.run({ "--url", url, "stamp", "--purge", "aaaa" }, { cwd = dir })
    assert.equal(0, r.code, r.err)
    assert.equal("aaaa", pg.psql(url, "SELECT version_num FROM luamigrate_version"))
    pg.psql(url, "DROP TABLE luamigrate_version, luamigrate_version_history")
    cli.remove(dir)
  end)
end)
