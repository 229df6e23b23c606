-- Upgrading and downgrading a 30-revision project by every kind of target.
local pg = require "helpers.pg"
local cli = require "helpers.cli"
local fixture = require "helpers.fixture"

describe("upgrade and downgrade", function()
  local fx = fixture.new()
  local url, ids

  before_each(function()
    local files
    files, ids = cli.chain(30)
    fx:open { files = files }
    url = fx.url
  end)

  local run = fx.run

  local function version_rows()
    return pg.psql(url, "SELECT string_agg(version_num, ' ' ORDER BY version_num) FROM luamigrate_version")
  end

  local function tables()
    return tonumber(pg.psql(url, "SELECT count(*) FROM pg_tables WHERE tablename ~ '^t[0-9]+$'"))
  end

  it("upgrades to head, once per migration, and records every step", function()
    local r = run("upgrade", "head")
    assert.equal(0, r.code, r.err)
    assert.equal(30, tables())
    assert.equal(ids[30], version_rows())
    assert.equal("30", pg.psql(url, "SELECT count(*) FROM migration_log WHERE direction = 'up'"))
    assert.equal("30", pg.psql(url, "SELECT count(DISTINCT rev) FROM migration_log"))
    assert.equal("30", pg.psql(url, [[SELECT count(*) FROM luamigrate_version_history
      WHERE operation = 'upgrade' AND length(checksum) = 64 AND duration_ms >= 0]]))
    assert.truthy(r.err:find("Running upgrade  -> " .. ids[1] .. ", revision " .. ids[1], 1, true))
    assert.truthy(r.err:find("Running upgrade " .. ids[1] .. " -> " .. ids[2] .. ", revision " .. ids[2], 1, true))
  end)

  it("does nothing when already at head", function()
    assert.equal(0, run("upgrade", "head").code)
    local r = run("upgrade", "head")
    assert.equal(0, r.code, r.err)
    assert.falsy(r.err:find("Running upgrade", 1, true))
    assert.equal("30", pg.psql(url, "SELECT count(*) FROM migration_log"))
  end)

  it("upgrades by +N, REV+N and a partial id", function()
    assert.equal(0, run("upgrade", "+2").code)
    assert.equal(ids[2], version_rows())
    assert.equal(0, run("upgrade", ids[4] .. "+1").code)
    assert.equal(ids[5], version_rows())
    assert.equal(0, run("upgrade", ids[12]:sub(1, 4)).code)
    assert.equal(ids[12], version_rows())
    assert.equal(12, tables())
  end)

  it("downgrades by -N, a partial id and to base", function()
    assert.equal(0, run("upgrade", "head").code)
    local r = run("downgrade", "-3")
    assert.equal(0, r.code, r.err)
    assert.equal(ids[27], version_rows())
    assert.equal(27, tables())
    assert.truthy(r.err:find("Running downgrade " .. ids[30] .. " -> " .. ids[29], 1, true))
    assert.equal(0, run("downgrade", ids[10]:sub(1, 3)).code)
    assert.equal(ids[10], version_rows())
    assert.equal("20", pg.psql(url, "SELECT count(*) FROM migration_log WHERE direction = 'down'"))
    assert.equal(0, run("downgrade", "base").code)
    assert.equal(0, tables())
    assert.equal("", version_rows())
  end)

  it("refuses targets it cannot resolve, changing nothing", function()
    assert.equal(0, run("upgrade", ids[3]).code)
    local before = pg.dump(url)
    local cases = {
      { { "upgrade", "nope" }, "Can't locate revision identified by 'nope'" },
      { { "upgrade", "0" }, "Multiple revisions start with '0'" },
      { { "upgrade", "+40" }, "Relative revision +40 didn't produce 40 migrations" },
      { { "downgrade", "-4" }, "Relative revision -4 didn't produce 4 migrations" },
      { { "upgrade", "-1" }, "Relative revision -1 didn't produce 1 migrations" },
      { { "downgrade", ids[5] }, "Destination " .. ids[5] .. " is not a valid downgrade target" },
      { { "upgrade", "a:b" }, "Range revision not allowed" },
    }
    for _, c in ipairs(cases) do
      local r = run(table.unpack(c[1]))
      assert.are_not.equal(0, r.code)
      assert.truthy(r.err:find(c[2], 1, true), "expected " .. c[2] .. " in: " .. r.err)
    end
    assert.equal(before, pg.dump(url))
  end)
end)
