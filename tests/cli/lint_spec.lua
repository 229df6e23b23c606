-- luamigrate lint as a user runs it: findings through ops and raw SQL with file:line, text
-- and --json, exit statuses, op.allow, config, offline from the files alone, and online
-- with what the database knows (which revisions are pending, table sizes), leaving the
-- database unchanged.
local pg = require "helpers.pg"
local cli = require "helpers.cli"
local fixture = require "helpers.fixture"
local cjson = require "cjson"

local V = "migrations/versions/"

local OPS = [[
function upgrade()
  op.create_index("ix_users_email", "users", { "email" })
  op.add_column("users", sa.Column("age", sa.BigInteger, { nullable = false }))
  op.alter_column("users", "name", { type_ = sa.Text, nullable = false })
  op.create_foreign_key("fk_orders_users", "orders", "users", { "user_id" }, { "id" })
  op.create_check_constraint("ck_orders_total", "orders", "total >= 0", { postgresql_not_valid = true })
  op.create_unique_constraint("uq_users_email", "users", { "email" })
  op.add_enum_value("mood", "meh")
  op.alter_column("orders", "note", { new_column_name = "remark" })
  op.allow("ban-drop-column", function()
    op.drop_column("users", "legacy")
  end)
  op.execute("-- luamigrate:allow renaming-table\nALTER TABLE orders RENAME TO purchases")
  op.autocommit_block(function()
    op.create_index("ix_users_name", "users", { "name" }, { postgresql_concurrently = true, if_not_exists = true })
  end)
end
]]

describe("luamigrate lint", function()
  local fx = fixture.new()
  local dir, url, dbname

  after_each(function() dir, dbname = nil, nil end)

  local function project(files, config)
    return fx:project { files = files, config = config }
  end

  local function run(...)
    return cli.run({ ... }, { cwd = dir })
  end

  it("reports each op's findings at its file:line, offline, and exits 1 on an error", function()
    dir = project { [V .. "a1_ops.lua"] = cli.revision("a1", nil, ""):gsub("function upgrade%(%)\n\nend\n", OPS) }
    local r = run("lint", "--offline")
    assert.equal(1, r.code, r.err)
    local f = V .. "a1_ops.lua:"
    local want = {
      { 9, "error[require-concurrent-index-creation]: CREATE INDEX without CONCURRENTLY holds a SHARE lock on users" },
      { 10, "error[adding-required-field]: adding the NOT NULL column age without a default" },
      { 11, "error[changing-column-type]: changing the type of users.name" },
      { 11, "error[adding-not-nullable-field]: SET NOT NULL on users.name scans the whole table" },
      { 12, "error[adding-foreign-key-constraint]: adding foreign key fk_orders_users scans orders" },
      { 12, "error[constraint-missing-not-valid]: adding constraint fk_orders_users without NOT VALID" },
      { 14, "error[disallowed-unique-constraint]: adding unique constraint uq_users_email" },
      { 15, "warning[require-enum-value-ordering]: ADD VALUE 'meh' without BEFORE or AFTER" },
      { 16, "error[renaming-column]: renaming column orders.note" },
      { 18, "allowed[ban-drop-column]: dropping column users.legacy" },
      { 20, "allowed[renaming-table]: renaming table orders to purchases" },
    }
    for _, w in ipairs(want) do
      assert.truthy(r.out:find(f .. w[1] .. ": " .. w[2], 1, true), w[2] .. "\n" .. r.out)
    end
    -- NOT VALID check, the concurrent index in its block: nothing to say
    assert.falsy(r.out:find("ck_orders_total", 1, true), r.out)
    assert.falsy(r.out:find("ix_users_name", 1, true), r.out)
    assert.truthy(r.out:find("  statement: CREATE INDEX ix_users_email ON users (email)\n  hint: build it with "
      .. "op.create_index_concurrently(name, table, columns)", 1, true), r.out)
    assert.truthy(r.err:find("lint: 8 errors, 2 warnings, 2 allowed in 1 revision (offline, PostgreSQL 15)", 1, true), r.err)
    assert.truthy(r.err:find("luamigrate: lint: error-level findings", 1, true), r.err)
  end)

  it("gives --json an array of findings with rule, severity, revision, file, line, statement, message, hint", function()
    dir = project { [V .. "a1_x.lua"] = cli.revision("a1", nil,
      '  op.execute("ALTER TABLE users ADD COLUMN born timestamp; DROP TABLE old_users")') }
    local r = run("lint", "--offline", "--json")
    assert.equal(1, r.code, r.err)
    local list = cjson.decode(r.out)
    local by = {}
    for _, x in ipairs(list) do by[x.rule] = x end
    local d = by["ban-drop-table"]
    assert.equal(9, d.line)
    d.line = nil
    assert.same({ rule = "ban-drop-table", severity = "error", revision = "a1", file = V .. "a1_x.lua",
      statement = "DROP TABLE old_users", allowed = false,
      message = "dropping table old_users loses its data for good and breaks the code still using it",
      hint = "deploy code that no longer uses it first; then drop it inside op.allow(\"ban-drop-table\", function() ... end)" }, d)
    assert.equal("warning", by["prefer-timestamptz"].severity)
  end)

  it("exits 0 with only warnings, and with no findings prints an empty array", function()
    dir = project { [V .. "a1_x.lua"] = cli.revision("a1", nil, '  op.execute("CREATE TABLE w (a integer)")') }
    local r = run("lint", "--offline")
    assert.equal(0, r.code, r.err)
    assert.truthy(r.out:find("warning[prefer-bigint-over-int]", 1, true), r.out)
    cli.write(dir .. "/" .. V .. "a1_x.lua", cli.revision("a1", nil, '  op.execute("CREATE TABLE w (a bigint)")'))
    r = run("lint", "--offline", "--json")
    assert.equal(0, r.code, r.err)
    assert.equal("[]\n", r.out)
  end)

  it("takes rule levels and a revision to start after from luamigrate.lua, and checks downgrades on request", function()
    local files = {
      [V .. "a1_x.lua"] = cli.revision("a1", nil, '  op.execute("DROP TABLE old")'),
      [V .. "a2_x.lua"] = cli.revision("a2", "a1", '  op.execute("CREATE TABLE w (a integer)")',
        '  op.drop_table("w")'),
    }
    dir = project(files, 'script_location = "migrations"\n'
      .. 'lint = { start_after = "a1", rules = { ["prefer-bigint-over-int"] = "error" } }\n')
    local r = run("lint", "--offline")
    assert.equal(1, r.code, r.err)
    assert.falsy(r.out:find("ban-drop-table", 1, true), r.out)
    assert.truthy(r.out:find(V .. "a2_x.lua:9: error[prefer-bigint-over-int]", 1, true), r.out)
    r = run("lint", "--offline", "--downgrade")
    assert.truthy(r.out:find(V .. "a2_x.lua:13: error[ban-drop-table]: dropping table w", 1, true), r.out)
    cli.write(dir .. "/luamigrate.lua", 'lint = { rules = { ["no-such-rule"] = "off" } }\n')
    r = run("lint", "--offline")
    assert.equal(2, r.code)
    assert.truthy(r.err:find("lint.rules: unknown rule 'no-such-rule'", 1, true), r.err)
  end)

  describe("online", function()
    before_each(function() url, dbname = fx:new_db() end)

    local FILES = {
      [V .. "b1_x.lua"] = cli.revision("b1", nil,
        '  op.execute("CREATE TABLE big (id bigint, v bigint); CREATE TABLE empty (id bigint)")'),
      [V .. "b2_x.lua"] = cli.revision("b2", "b1", [[
  op.create_index("ix_big_v", "big", { "v" })
  op.create_index("ix_empty_id", "empty", { "id" })
  op.create_table("fresh", sa.Column("id", sa.BigInteger))
  op.create_index("ix_fresh_id", "fresh", { "id" })]]),
    }

    it("lints only what is pending, with table sizes, and skips what cannot block anyone", function()
      dir = project(FILES)
      assert.equal(0, cli.run({ "--url", url, "upgrade", "b1" }, { cwd = dir }).code)
      pg.psql(url, "INSERT INTO big SELECT g, g FROM generate_series(1, 20000) g; ANALYZE big")
      local before = pg.dump(url)
      local r = run("--url", url, "lint")
      assert.equal(1, r.code, r.err)
      -- b1 was applied: not judged again
      assert.falsy(r.out:find("b1_x.lua", 1, true), r.out)
      assert.truthy(r.out:find(V .. "b2_x.lua:9: error[require-concurrent-index-creation]: CREATE INDEX without "
        .. "CONCURRENTLY holds a SHARE lock on big while the index is built: every INSERT, UPDATE and DELETE on it "
        .. "waits until the build ends (big: ~20k rows, ", 1, true), r.out)
      -- an empty table has nothing to scan; one created in the same transaction is seen by no one
      assert.falsy(r.out:find("ix_empty_id", 1, true), r.out)
      assert.falsy(r.out:find("ix_fresh_id", 1, true), r.out)
      assert.truthy(r.err:find("(online, PostgreSQL 15)", 1, true), r.err)
      assert.equal(before, pg.dump(url))
      -- offline, the empty table cannot be known to be empty
      r = run("lint", "--offline", "b1:head")
      assert.truthy(r.out:find("CREATE INDEX ix_empty_id", 1, true), r.out)
      assert.falsy(r.out:find("ix_fresh_id", 1, true), r.out)
    end)

    it("counts migration_lock_timeout in luamigrate.lua as the lock timeout in force", function()
      dir = project(FILES, 'script_location = "migrations"\nmigration_lock_timeout = false\n')
      local r = run("--url", url, "lint", "--json")
      local rules = {}
      for _, x in ipairs(cjson.decode(r.out)) do rules[x.rule] = true end
      assert.is_true(rules["require-lock-timeout"])
      cli.write(dir .. "/luamigrate.lua", 'script_location = "migrations"\nmigration_lock_timeout = "3s"\n')
      r = run("--url", url, "lint", "--json")
      rules = {}
      for _, x in ipairs(cjson.decode(r.out)) do rules[x.rule] = true end
      assert.is_nil(rules["require-lock-timeout"])
      assert.is_true(rules["require-statement-timeout"])
      -- a timeout the server sets for the database (or role) is in force too
      pg.psql(url, "ALTER DATABASE " .. dbname .. " SET statement_timeout = '1h'")
      r = run("--url", url, "lint", "--json")
      rules = {}
      for _, x in ipairs(cjson.decode(r.out)) do rules[x.rule] = true end
      assert.is_nil(rules["require-statement-timeout"])
    end)

    it("asks the server whether a default is volatile", function()
      pg.psql(url, "CREATE TABLE t (id bigint); INSERT INTO t VALUES (1); "
        .. "CREATE FUNCTION stable_one() RETURNS bigint STABLE LANGUAGE sql AS 'SELECT 1'")
      dir = project { [V .. "c1_x.lua"] = cli.revision("c1", nil,
        '  op.execute("ALTER TABLE t ADD COLUMN a bigint DEFAULT stable_one(), ADD COLUMN b float8 DEFAULT random()")') }
      local r = run("--url", url, "lint")
      assert.falsy(r.out:find("column a with", 1, true), r.out)
      assert.truthy(r.out:find("error[adding-field-with-default]: adding column b with a volatile default", 1, true), r.out)
      r = run("lint", "--offline")
      assert.truthy(r.out:find("adding column a with a volatile default", 1, true), r.out)
    end)
  end)
end)
