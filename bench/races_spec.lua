-- Bounded stress for the lock and the journal (not part of the suite; run by hand):
--   LM_DEV_PG=/tmp/x LUAMIGRATE_RACES=30 LUAMIGRATE_KILLS=40 bash scripts/spec.sh bench/races_spec.lua
-- 1. `downgrade -1` racing `upgrade head` in every lock mode: the downgrade undoes exactly one
--    step of whatever it finds, never the upgrade's work.
-- 2. `stamp` racing `upgrade head` in every lock mode: never a revision and its ancestor.
-- 3. kill -9 at a random moment of a migration whose autocommit block increments counters,
--    then `upgrade --resume`: every counter ends at exactly 1.
local pg = require "helpers.pg"
local cli = require "helpers.cli"

local races = tonumber(os.getenv("LUAMIGRATE_RACES") or "5")
local kills = tonumber(os.getenv("LUAMIGRATE_KILLS") or "5")
local modes = { "session", "xact", "table" }

local function net_consistent(url, ids)
  local version = pg.psql(url, "SELECT coalesce(string_agg(version_num, ','), '') FROM luamigrate_version")
  local k = 0
  for i, id in ipairs(ids) do if id == version then k = i end end
  local nets = pg.psql(url, "SELECT coalesce(string_agg(rev || '=' || net, ',' ORDER BY rev), '') FROM "
    .. "(SELECT rev, sum(CASE direction WHEN 'up' THEN 1 ELSE -1 END) AS net FROM migration_log GROUP BY rev) s "
    .. "WHERE net <> 0")
  local expect = {}
  for i = 1, k do expect[#expect + 1] = ids[i] .. "=1" end
  return nets == table.concat(expect, ","), k, version
end

describe("races", function()
  for _, mode in ipairs(modes) do
    it(("downgrade -1 racing upgrade head, lock = %q (%d trials)"):format(mode, races), function()
      local files, ids = cli.chain(8, { sleep = 0.01 })
      local dir = cli.project { files = files, config = 'script_location = "migrations"\nlock_lease = 5\n' }
      local failures = 0
      for t = 1, races do
        local url, dbname = pg.new_db("race")
        assert.equal(0, cli.run({ "--url", url, "--lock", mode, "upgrade", "+4" }, { cwd = dir }).code)
        local a = cli.spawn({ "--url", url, "--lock", mode, "downgrade", "-1" }, { cwd = dir })
        local b = cli.spawn({ "--url", url, "--lock", mode, "upgrade", "head" }, { cwd = dir })
        local ra, rb = a.wait(), b.wait()
        local ok, k = net_consistent(url, ids)
        local downs = tonumber(pg.psql(url, "SELECT count(*) FROM migration_log WHERE direction = 'down'"))
        if not (ok and downs == 1 and (k == 7 or k == 8) and ra.code == 0 and rb.code == 0) then
          failures = failures + 1
          print(("trial %d: consistent=%s k=%d downs=%d codes=%d,%d %s %s"):format(t, tostring(ok), k, downs,
            ra.code, rb.code, ra.err:match("luamigrate: [^\n]*") or "", rb.err:match("luamigrate: [^\n]*") or ""))
        end
        pg.drop_db(dbname)
      end
      print(("downgrade/upgrade races, lock = %s: %d trials, %d failures"):format(mode, races, failures))
      cli.remove(dir)
      assert.equal(0, failures)
    end)

    it(("stamp racing upgrade head, lock = %q (%d trials)"):format(mode, races), function()
      local files, ids = cli.chain(8)
      local dir = cli.project { files = files, config = 'script_location = "migrations"\nlock_lease = 5\n' }
      local failures = 0
      for _ = 1, races do
        local url, dbname = pg.new_db("race")
        local a = cli.spawn({ "--url", url, "--lock", mode, "stamp", ids[3] }, { cwd = dir })
        local b = cli.spawn({ "--url", url, "--lock", mode, "upgrade", "head" }, { cwd = dir })
        a.wait()
        b.wait()
        if pg.psql(url, "SELECT count(*) FROM luamigrate_version") ~= "1" then failures = failures + 1 end
        pg.drop_db(dbname)
      end
      print(("stamp/upgrade races, lock = %s: %d trials, %d failures"):format(mode, races, failures))
      cli.remove(dir)
      assert.equal(0, failures)
    end)
  end

  it(("kill -9 inside an autocommit block, then --resume: each statement once (%d kills)"):format(kills), function()
    local body = { '  op.execute("CREATE TABLE counters (i int PRIMARY KEY, n int NOT NULL DEFAULT 0)")',
      '  op.execute("INSERT INTO counters (i) SELECT g FROM generate_series(1, 6) g")',
      '  op.autocommit_block(function()' }
    for i = 1, 6 do
      body[#body + 1] = ('    op.execute("UPDATE counters SET n = n + 1 FROM pg_sleep(0.02 + random() * 0.05) WHERE i = %d")'):format(i)
    end
    body[#body + 1] = "  end)"
    local dir = cli.project { config = 'script_location = "migrations"\nlock_lease = 5\n', files = {
      ["migrations/versions/k1_block.lua"] = cli.revision("k1", nil, table.concat(body, "\n"), 'op.drop_table("counters")'),
    } }
    local failures, killed_inside = 0, 0
    for t = 1, kills do
      local url, dbname = pg.new_db("kill")
      local mode = t % 2 == 0 and "table" or "session"
      local pid = cli.start({ "--url", url, "--lock", mode, "upgrade", "head" }, dir)
      os.execute(("sleep %.3f"):format(0.05 + math.random() * 0.35))
      os.execute(("kill -9 %d 2>/dev/null"):format(pid))
      os.execute("sleep 0.05")
      local r = cli.run({ "--url", url, "--lock", mode, "upgrade", "--resume", "head" }, { cwd = dir })
      if r.err:find("Resuming revision k1", 1, true) then killed_inside = killed_inside + 1 end
      local counts = pg.psql(url, "SELECT string_agg(n::text, ',' ORDER BY i) FROM counters")
      if r.code ~= 0 or counts ~= "1,1,1,1,1,1" then
        failures = failures + 1
        print(("kill %d (%s): code %d, counters %s: %s"):format(t, mode, r.code, counts, r.err:match("luamigrate: [^\n]*") or ""))
      end
      pg.drop_db(dbname)
    end
    print(("kills inside blocks: %d kills (%d left the revision half-done), %d failures"):format(kills, killed_inside, failures))
    cli.remove(dir)
    assert.equal(0, failures)
  end)
end)
