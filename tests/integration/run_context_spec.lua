-- The run context (luamigrate.Run) lives exactly as long as the migration it belongs to:
-- what a migration saved from core.context() raises "run has ended" when called later, and
-- the environment's own pcall neither swallows Ctrl-C nor leaks into the globals.
local pg = require "helpers.pg"
local cli = require "helpers.cli"

describe("the run context", function()
  local url, dbname = nil, nil
  setup(function()
    url, dbname = pg.new_db()
  end)
  teardown(function()
    pg.drop_db(dbname)
  end)
  before_each(function()
    pg.psql(url, "DROP TABLE IF EXISTS luamigrate_version, luamigrate_history, luamigrate_journal, "
      .. "one, two, spin, inside_t CASCADE")
  end)

  for _, field in ipairs { "autocommit_block", "journal_batches" } do
    it(("refuses a saved ctx.%s called after its migration ended"):format(field), function()
      local dir = cli.project { files = {
        ["migrations/versions/aaaa_save.lua"] = cli.revision("aaaa", nil, ([[
  op.create_table("one", sa.Column("id", sa.Integer))
  require("luamigrate.core").saved_fn = require("luamigrate.core").context().%s]]):format(field)),
        ["migrations/versions/bbbb_call.lua"] = cli.revision("bbbb", "aaaa", [[
  op.create_table("two", sa.Column("id", sa.Integer))
  require("luamigrate.core").saved_fn(function() op.execute("SELECT 1") end)]]),
      } }
      local r = cli.run({ "--url", url, "upgrade", "head" }, { cwd = dir })
      assert.equal(1, r.code, r.err)
      assert.truthy(r.err:find("bbbb_call.lua:%d+: .*run has ended"), r.err)
      assert.equal("aaaa", pg.psql(url, "SELECT version_num FROM luamigrate_version"))
      assert.equal("one", pg.psql(url, "SELECT coalesce(string_agg(tablename, ','), '') FROM pg_tables "
        .. "WHERE tablename IN ('one', 'two')"))
      cli.remove(dir)
    end)
  end

  it("gives migrations their own pcall: the globals stay Lua's", function()
    local dir = cli.project { files = {
      ["migrations/versions/aaaa_pcall.lua"] = cli.revision("aaaa", nil, [[
  assert(pcall ~= require("_G").pcall and pcall == require("luamigrate.core").pcall, "the run's pcall")
  assert(xpcall == require("luamigrate.core").xpcall, "the run's xpcall")
  op.create_table("one", sa.Column("id", sa.Integer))
  local ok, err = pcall(op.execute, "INSERT INTO nowhere VALUES (1)")
  assert(not ok and err.sqlstate == "42P01", "the statement's error, caught")]]),
    } }
    local r = cli.run({ "--url", url, "upgrade", "head" }, { cwd = dir })
    -- the caught failure left the transaction aborted: the step rolls back and says so
    assert.equal(1, r.code, r.err)
    assert.truthy(r.err:find("the error was caught; the transaction is aborted", 1, true), r.err)
    assert.equal("", pg.psql(url, "SELECT coalesce(to_regclass('one')::text, '')"))
    cli.remove(dir)
  end)

  it("stops a migration that pcall-loops over queued statements at SIGINT, rolled back and unlocked", function()
    local dir = cli.project { files = {
      ["migrations/versions/aaaa_loop.lua"] = cli.revision("aaaa", nil, [[
  op.autocommit_block(function() op.execute("CREATE TABLE spin (id int)") end)
  op.create_table("inside_t", sa.Column("id", sa.Integer))
  op.execute("INSERT INTO inside_t VALUES (1)")
  while true do
    pcall(function() local x = 0 for i = 1, 1e7 do x = x + i end end)
  end]]),
    }, config = 'script_location = "migrations"\nlint = { upgrade = "off" }\n' }
    local code_file = os.tmpname()
    local err_file = os.tmpname()
    local p = assert(io.popen(("cd %s && { %s --url %s upgrade head >/dev/null 2>%s & pid=$!; echo $pid; "
      .. "wait $pid; echo $? >%s; }"):format(pg.shell_quote(dir), pg.shell_quote(cli.bin), pg.shell_quote(url),
      err_file, code_file)))
    local pid = tonumber(p:read("l"))
    local ready = false
    for _ = 1, 400 do
      ready = pg.psql(url, "SELECT coalesce(to_regclass('spin')::text, '')") == "spin"
      if ready then break end
      os.execute("sleep 0.05")
    end
    if not ready then os.execute(("kill -9 %d"):format(pid)) end
    assert.is_true(ready, "the migration never reached its loop")
    os.execute("sleep 0.3") -- well inside the pcall loop
    os.execute(("kill -INT %d"):format(pid))
    p:close() -- waits for the run to end
    local code = tonumber(cli.slurp(code_file))
    local f = assert(io.open(err_file))
    local err = f:read("a")
    f:close()
    os.remove(code_file)
    os.remove(err_file)
    assert.equal(1, code, err)
    assert.truthy(err:find("aaaa_loop.lua:%d+: interrupted by signal: the migration in progress is rolled back"), err)
    assert.equal("", pg.psql(url, "SELECT coalesce(to_regclass('inside_t')::text, '')"))
    assert.equal("", pg.psql(url, "SELECT coalesce(string_agg(version_num, ','), '') FROM luamigrate_version"))
    assert.equal("0", pg.psql(url, "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'"))
    cli.remove(dir)
  end)
end)
