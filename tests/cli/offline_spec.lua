-- --sql: scripts for a range, for stamp, in one transaction when configured so, and a clear
-- refusal for migrations that need to read the database.
local pg = require "helpers.pg"
local cli = require "helpers.cli"
local fixture = require "helpers.fixture"

describe("--sql", function()
  local fx = fixture.new()
  local dir, url

  local function run(...) return cli.run({ ... }, { cwd = dir }) end

  local function apply(sql)
    local file = os.tmpname()
    cli.write(file, sql)
    local ok = os.execute((pg.tool .. "psql -XAtq -v ON_ERROR_STOP=1 -d %s -f %s >/dev/null 2>&1")
      :format(pg.shell_quote(url), file))
    os.remove(file)
    return ok
  end

  it("writes a range A:B that continues a database at A", function()
    local files, ids = cli.chain(4)
    dir = fx:project { files = files }
    url = fx:new_db()
    assert.equal(0, cli.run({ "--url", url, "upgrade", ids[2] }, { cwd = dir }).code)
    local r = run("upgrade", ids[2] .. ":" .. ids[4], "--sql")
    assert.equal(0, r.code, r.err)
    assert.falsy(r.out:find("CREATE TABLE IF NOT EXISTS luamigrate_version", 1, true))
    assert.truthy(r.out:find(("-- Running upgrade %s -> %s\n"):format(ids[2], ids[3]), 1, true))
    assert.truthy(r.out:find(("UPDATE luamigrate_version SET version_num = '%s' WHERE version_num = '%s';")
      :format(ids[4], ids[3]), 1, true))
    local _, begins = r.out:gsub("BEGIN;\n", "")
    assert.equal(2, begins)
    assert.is_true(apply(r.out))
    assert.equal(ids[4], pg.psql(url, "SELECT version_num FROM luamigrate_version"))
    assert.equal("4", pg.psql(url, "SELECT count(*) FROM pg_tables WHERE tablename ~ '^t[0-9]$'"))
    -- and back down
    r = run("downgrade", ids[4] .. ":" .. ids[1], "--sql")
    assert.equal(0, r.code, r.err)
    assert.is_true(apply(r.out))
    assert.equal(ids[1], pg.psql(url, "SELECT version_num FROM luamigrate_version"))
    assert.equal("1", pg.psql(url, "SELECT count(*) FROM pg_tables WHERE tablename ~ '^t[0-9]$'"))
  end)

  it("uses one transaction for the whole script when transaction_per_migration is false", function()
    local files = cli.chain(3)
    dir = fx:project { files = files, config = 'script_location = "migrations"\ntransaction_per_migration = false\n' }
    local r = run("upgrade", "head", "--sql")
    assert.equal(0, r.code, r.err)
    local _, begins = r.out:gsub("BEGIN;\n", "")
    local _, commits = r.out:gsub("COMMIT;\n", "")
    assert.equal(1, begins)
    assert.equal(1, commits)
  end)

  it("stamps with --sql, creating the version table from base", function()
    local files, ids = cli.chain(2)
    dir = fx:project { files = files }
    url = fx:new_db()
    local r = run("stamp", "--sql", ids[2])
    assert.equal(0, r.code, r.err)
    assert.truthy(r.out:find(("INSERT INTO luamigrate_version (version_num) VALUES ('%s');"):format(ids[2]), 1, true))
    assert.is_true(apply(r.out))
    assert.equal(ids[2], pg.psql(url, "SELECT version_num FROM luamigrate_version"))
    assert.equal("0", pg.psql(url, "SELECT count(*) FROM pg_tables WHERE tablename ~ '^t[0-9]$'"))
    -- the history row an online stamp writes
    assert.equal(("%s|stamp|{}|{%s}"):format(ids[2], ids[2]), pg.psql(url,
      "SELECT revision, operation, from_revisions, to_revisions FROM luamigrate_version_history"))
    -- and a stamp from there down to base
    r = run("stamp", "--sql", ids[2] .. ":base")
    assert.equal(0, r.code, r.err)
    assert.is_true(apply(r.out))
    assert.equal("base|stamp|{%s}|{}", (pg.psql(url, "SELECT revision, operation, from_revisions, to_revisions "
      .. "FROM luamigrate_version_history ORDER BY id DESC LIMIT 1"):gsub(ids[2], "%%s")))
  end)

  it("records in the history each file's sha256 and the migration's duration, as an online run does", function()
    local files, ids = cli.chain(2)
    dir = fx:project { files = files }
    url = fx:new_db()
    local r = run("upgrade", "head", "--sql")
    assert.equal(0, r.code, r.err)
    assert.is_true(apply(r.out))
    for i, id in ipairs(ids) do
      local path = ("%s/migrations/versions/%s_step_%d.lua"):format(dir, id, i)
      local sha = io.popen("sha256sum " .. pg.shell_quote(path)):read("l"):match("^%x+")
      assert.equal(sha .. "|t", pg.psql(url, ("SELECT checksum, duration_ms > 0 FROM luamigrate_version_history "
        .. "WHERE revision = '%s'"):format(id)))
    end
    -- so changed-file detection works on a database a DBA upgraded from the script
    local f = assert(io.open(("%s/migrations/versions/%s_step_1.lua"):format(dir, ids[1]), "a"))
    f:write("-- edited\n")
    f:close()
    r = cli.run({ "--url", url, "status" }, { cwd = dir })
    assert.equal(0, r.code, r.err)
    assert.truthy(r.out:find("1 applied file changed since it ran", 1, true), r.out)
  end)

  it("gets the enum helper's statements in a fixed order: pairs as listed, a map sorted", function()
    local function body(columns)
      return '  require("luamigrate.helpers.enum").change_enum_and_alter_tables("mood", { "ok", "sad" }, '
        .. columns .. ')\n'
    end
    dir = fx:project { files = {
      ["migrations/versions/aaaa_pairs.lua"] = cli.revision("aaaa", nil,
        body('{ { "zebra", "m" }, { "apple", "m" }, { "mango", "m" } }')),
      ["migrations/versions/bbbb_map.lua"] = cli.revision("bbbb", "aaaa",
        body('{ zebra = "m", apple = "m", mango = "m", kiwi = "m", fig = "m" }')),
    } }
    local function altered(sql)
      local t = {}
      for tbl in sql:gmatch("ALTER TABLE (%l+) ALTER COLUMN m TYPE") do t[#t + 1] = tbl end
      return table.concat(t, " ")
    end
    local r = run("upgrade", "--sql", "aaaa")
    assert.equal(0, r.code, r.err)
    assert.equal("zebra apple mango", altered(r.out))
    local first
    for _ = 1, 5 do -- pairs() order would differ between runs; this must not
      r = run("upgrade", "--sql", "aaaa:bbbb")
      assert.equal(0, r.code, r.err)
      assert.equal("apple fig kiwi mango zebra", altered(r.out))
      first = first or r.out
      assert.equal(first, r.out)
    end
  end)

  it("refuses a migration that reads the database, naming the file and the query", function()
    dir = fx:project { files = {
      ["migrations/versions/aaaa_reads.lua"] = cli.revision("aaaa", nil,
        '  local rows = op.get_bind():query("SELECT count(*) AS n FROM pg_class")\n', ""),
    } }
    local r = run("upgrade", "head", "--sql")
    assert.equal(1, r.code)
    assert.truthy(r.err:find("aaaa_reads.lua:", 1, true), r.err)
    assert.truthy(r.err:find("there is no database in --sql mode", 1, true), r.err)
    assert.truthy(r.err:find("SELECT count(*) AS n FROM pg_class", 1, true), r.err)
  end)

  it("passes -x arguments to migrations, online and in --sql", function()
    dir = fx:project { files = {
      ["migrations/versions/aaaa_seed.lua"] = cli.revision("aaaa", nil,
        '  op.execute("CREATE TABLE seen AS SELECT " .. tostring(op.inline_literal(op.get_x_argument().tenant or "none")) .. "::text AS tenant")\n', ""),
    } }
    local r = run("-x", "tenant=acme", "upgrade", "head", "--sql")
    assert.equal(0, r.code, r.err)
    assert.truthy(r.out:find("\nCREATE TABLE seen AS SELECT 'acme'::text AS tenant;\n", 1, true), r.out)
    url = fx:new_db()
    r = run("--url", url, "-x", "tenant=acme", "upgrade", "head")
    assert.equal(0, r.code, r.err)
    assert.equal("acme", pg.psql(url, "SELECT tenant FROM seen"))
  end)

  it("needs a range for downgrade", function()
    dir = fx:project { files = cli.chain(1) }
    local r = run("downgrade", "base", "--sql")
    assert.equal(2, r.code)
    assert.truthy(r.err:find("downgrade with --sql requires <fromrev>:<torev>", 1, true), r.err)
  end)
end)
