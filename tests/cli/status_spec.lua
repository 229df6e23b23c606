-- status: where the database is, what is pending, what ran when and for how long, and which
-- applied files changed since; as text and as JSON. It reads only.
local pg = require "helpers.pg"
local cli = require "helpers.cli"
local fixture = require "helpers.fixture"

describe("status", function()
  local fx = fixture.new()
  local dir, url, ids

  before_each(function()
    local files
    files, ids = cli.chain(3)
    dir, url = fx:open { files = files }
  end)

  local run = fx.run

  it("describes a fresh database without creating anything", function()
    local r = run("status")
    assert.equal(0, r.code, r.err)
    assert.truthy(r.out:find("Current: <base> (nothing applied)", 1, true), r.out)
    assert.truthy(r.out:find("Pending: 3 migrations, in the order they will run:\n  " .. ids[1], 1, true), r.out)
    assert.equal("", pg.psql(url, "SELECT coalesce(to_regclass('luamigrate_version')::text, '')"))
  end)

  it("lists what ran, when and how long, and files changed since", function()
    assert.equal(0, run("upgrade", "+2").code)
    local path = ("%s/migrations/versions/%s_step_1.lua"):format(dir, ids[1])
    local f = assert(io.open(path, "a"))
    f:write("-- edited\n")
    f:close()
    local r = run("status")
    assert.equal(0, r.code, r.err)
    assert.truthy(r.out:find("Current: " .. ids[2] .. "\n", 1, true), r.out)
    assert.truthy(r.out:find("Pending: 1 migration, in the order they will run:\n  " .. ids[3], 1, true), r.out)
    assert.truthy(r.out:find("Applied: 2 migrations:\n  " .. ids[1] .. "  %d%d%d%d%-%d%d%-%d%d %d%d:%d%d:%d%d UTC +%d+ ms  revision "
      .. ids[1] .. "  %[file changed since%]\n"), r.out)
    assert.truthy(r.out:find("1 applied file changed since it ran", 1, true), r.out)
    r = run("status", "--json")
    assert.equal(0, r.code, r.err)
    assert.truthy(r.out:find('"current": ["' .. ids[2] .. '"]', 1, true), r.out)
    assert.truthy(r.out:find('"up_to_date": false', 1, true), r.out)
    assert.truthy(r.out:find('{"revision": "' .. ids[1] .. '", "message": "revision ' .. ids[1]
      .. '", "applied_at": "', 1, true), r.out)
    assert.truthy(r.out:find('"changed": true}', 1, true), r.out)
    assert.truthy(r.out:find('"pending": [{"revision": "' .. ids[3] .. '"', 1, true), r.out)
    -- the version table by its name, not SQL-quoted
    assert.truthy(r.out:find('"version_table": "luamigrate_version", ', 1, true), r.out)
    assert.equal(0, run("upgrade", "head").code)
    r = run("status")
    assert.truthy(r.out:find("Up to date: no migration pending.", 1, true), r.out)
  end)

  it("reports a version table holding a revision and its ancestor, which upgrade and downgrade refuse", function()
    assert.equal(0, run("upgrade", "+2").code)
    pg.psql(url, ("INSERT INTO luamigrate_version VALUES ('%s')"):format(ids[1]))
    local want = ("Requested revision %s overlaps with other requested revisions %s"):format(ids[2], ids[1])
    local r = run("status")
    assert.equal(0, r.code, r.err)
    assert.truthy(r.out:find("Problem: " .. want .. ": the version table holds a revision and its ancestor", 1, true), r.out)
    r = run("status", "--json")
    assert.truthy(r.out:find('"problem": "' .. want .. '"', 1, true), r.out)
    for _, cmd in ipairs { { "upgrade", "head" }, { "downgrade", "-1" }, { "downgrade", "base" } } do
      r = run(cmd[1], cmd[2])
      assert.equal(1, r.code, r.err)
      assert.truthy(r.err:find("luamigrate: " .. want .. "\n", 1, true), r.err)
      assert.truthy(r.err:find("stamp --purge REV", 1, true), r.err)
    end
    assert.equal("", pg.psql(url, "SELECT coalesce(to_regclass('t3')::text, '')"))
    assert.equal("2", pg.psql(url, "SELECT count(*) FROM luamigrate_version"))
    assert.equal(0, run("stamp", "--purge", ids[2]).code)
    assert.equal(0, run("upgrade", "head").code)
    r = run("status", "--json")
    assert.truthy(r.out:find('"problem": null', 1, true), r.out)
  end)

  it("gives current, heads, history and show as JSON that parses", function()
    local json = require "cjson"
    assert.equal(0, run("upgrade", "+1").code)
    local r = run("current", "--json")
    assert.equal(0, r.code, r.err)
    local cur = json.decode(r.out)
    assert.equal(1, #cur)
    assert.equal(ids[1], cur[1].revision)
    assert.same({}, cur[1].down_revisions)
    assert.is_false(cur[1].head)
    local heads = json.decode(run("heads", "--json").out)
    assert.equal(ids[3], heads[1].revision)
    assert.is_true(heads[1].head)
    assert.same({ ids[2] }, heads[1].down_revisions)
    local hist = json.decode(run("history", "--json").out)
    assert.same({ ids[3], ids[2], ids[1] }, { hist[1].revision, hist[2].revision, hist[3].revision })
    assert.equal("revision " .. ids[2], hist[2].message)
    local shown = json.decode(run("show", "--json", ids[2]:sub(1, 6)).out)
    assert.equal(ids[2], shown[1].revision)
    assert.truthy(shown[1].path:find(ids[2] .. "_step_2.lua", 1, true))
    local st = json.decode(run("status", "--json").out)
    assert.same({ ids[1] }, st.current)
    assert.equal(2, #st.pending)
    assert.equal(ids[1], st.applied[1].revision)
    assert.is_false(st.applied[1].changed)
    assert.is_number(st.applied[1].duration_ms)
    -- an unknown revision is still one clear error, not half a JSON document
    r = run("show", "--json", "ffffff")
    assert.not_equal(0, r.code)
    assert.equal("", r.out)
    assert.truthy(r.err:find("ffffff", 1, true), r.err)
  end)

  it("tells a stamped revision from one that ran", function()
    assert.equal(0, run("stamp", ids[2]).code)
    local r = run("status")
    assert.equal(0, r.code, r.err)
    assert.truthy(r.out:find("  " .. ids[1] .. "  (stamped; no record of it running)  revision " .. ids[1], 1, true), r.out)
    assert.truthy(r.out:find("Pending: 1 migration", 1, true), r.out)
  end)

  it("says a revision was applied before luamigrate kept history (a database Alembic built)", function()
    -- Alembic's own table: the version rows, no history of luamigrate's
    pg.psql(url, "CREATE TABLE luamigrate_version (version_num varchar(32) NOT NULL PRIMARY KEY); "
      .. "INSERT INTO luamigrate_version VALUES ('" .. ids[2] .. "')")
    local r = run("status")
    assert.equal(0, r.code, r.err)
    for i = 1, 2 do
      assert.truthy(r.out:find("  " .. ids[i] .. "  (applied before luamigrate kept history)  revision " .. ids[i], 1, true), r.out)
    end
    assert.falsy(r.out:find("stamped", 1, true), r.out)
    -- upgraded by luamigrate from there: the new one ran, the old ones still predate the history
    assert.equal(0, run("upgrade", "head").code)
    r = run("status")
    assert.truthy(r.out:find("  " .. ids[1] .. "  (applied before luamigrate kept history)", 1, true), r.out)
    assert.truthy(r.out:find("  " .. ids[3] .. "  %d%d%d%d%-"), r.out)
  end)
end)
