-- Two runs in two threads of one process (tests/c/test_two_runs.c: lm_pmain_run twice,
-- started together), each on its own project and database: each database gets exactly its
-- own migrations, statements, journal and version row. Runs sharing anything mutable (the
-- held-back BEGIN, the pipeline queue, the run context, the interrupt slot) would send one
-- run's statements on the other's connection or fail.
local pg = require "helpers.pg"
local cli = require "helpers.cli"

local bin = cli.bin:gsub("[^/]*$", "") .. "test_two_runs"

-- A project of n revisions whose tables are named <tag>_<i>: queued ops, a caught failure
-- (the environment's pcall), an autocommit block (journaled) and a backfill every third.
local function project(tag, n)
  local files, prev = {}, nil
  for i = 1, n do
    local id = ("%s%03d"):format(tag, i)
    local up = ([[
  op.create_table("%s_%d", sa.Column("id", sa.Integer, { primary_key = true }), sa.Column("v", sa.Text))
  op.execute("INSERT INTO %s_%d (id, v) SELECT g, '%s' FROM generate_series(1, 50) g")
  local ok = pcall(function() error("caught") end)
  assert(not ok)
]]):format(tag, i, tag, i, tag)
    if i % 3 == 0 then
      up = up .. ([[
  op.autocommit_block(function()
    op.execute("CREATE INDEX CONCURRENTLY %s_%d_v ON %s_%d (v)")
  end)
  op.execute("UPDATE %s_%d SET v = v || '!'")
]]):format(tag, i, tag, i, tag, i)
    end
    files[("migrations/versions/%s_step.lua"):format(id)] =
      cli.revision(id, prev, up, ('  op.drop_table("%s_%d")'):format(tag, i))
    prev = id
  end
  return cli.project { files = files }, prev
end

local function tables(url)
  return pg.psql(url, "SELECT coalesce(string_agg(tablename, ',' ORDER BY tablename), '') FROM pg_tables "
    .. "WHERE schemaname = 'public' AND tablename NOT LIKE 'luamigrate%'")
end

local function expected(tag, n)
  local t = {}
  for i = 1, n do t[i] = ("%s_%d"):format(tag, i) end
  table.sort(t)
  return table.concat(t, ",")
end

describe("two runs in two threads of one process", function()
  local N = 12
  local url_a, db_a, url_b, db_b, dir_a, dir_b, head_a, head_b

  setup(function()
    url_a, db_a = pg.new_db()
    url_b, db_b = pg.new_db()
    dir_a, head_a = project("aa", N)
    dir_b, head_b = project("bb", N)
  end)

  teardown(function()
    cli.remove(dir_a)
    cli.remove(dir_b)
    pg.drop_db(db_a)
    pg.drop_db(db_b)
  end)

  local function both(...)
    local args = { bin, dir_a .. "/luamigrate.lua", url_a, dir_b .. "/luamigrate.lua", url_b, ... }
    for i, a in ipairs(args) do args[i] = pg.shell_quote(a) end
    local p = assert(io.popen(table.concat(args, " ") .. " 2>&1; echo \"exit $?\""))
    local out = p:read("a")
    p:close()
    return tonumber(out:match("exit (%d+)%s*$")), out
  end

  it("upgrades each database with exactly its own migrations, concurrently", function()
    for _ = 1, 3 do -- a few rounds: an interleaving that shares state shows up in one of them
      local code, out = both("upgrade", "head")
      assert.equal(0, code, out)
      assert.equal(expected("aa", N), tables(url_a))
      assert.equal(expected("bb", N), tables(url_b))
      assert.equal(head_a, pg.psql(url_a, "SELECT version_num FROM luamigrate_version"))
      assert.equal(head_b, pg.psql(url_b, "SELECT version_num FROM luamigrate_version"))
      for i = 3, N, 3 do -- the statements after each autocommit block ran in its database
        assert.equal("50", pg.psql(url_a, ("SELECT count(*) FROM aa_%d WHERE v = 'aa!'"):format(i)))
        assert.equal("50", pg.psql(url_b, ("SELECT count(*) FROM bb_%d WHERE v = 'bb!'"):format(i)))
      end
      assert.equal("0", pg.psql(url_b, "SELECT count(*) FROM pg_class WHERE relname LIKE 'aa%'"))
      assert.equal("0", pg.psql(url_a, "SELECT count(*) FROM pg_class WHERE relname LIKE 'bb%'"))
      code, out = both("downgrade", "base")
      assert.equal(0, code, out)
      assert.equal("", tables(url_a))
      assert.equal("", tables(url_b))
    end
  end)
end)
