-- op in --sql mode, in-process: each op call hands the run the statements the script will
-- hold, an autocommit block ends and begins the transaction around its statements, the
-- stand-in connection writes and refuses to read, and bad calls fail with messages naming
-- the op and the argument. No database.
local op = require "luamigrate.op"
local sa = require "luamigrate.sa"
local err_of = require("helpers.raised").message

local core = require "luamigrate.core"
local X = { env = "staging" } -- the -x arguments of these runs

-- fn(...) run as a migration of a --sql run (core.offline_run): the statements its op calls
-- emitted, then what fn returned.
local emitted
local function statements(fn, ...)
  emitted = {}
  return emitted, core.offline_run(function(s) emitted[#emitted + 1] = s end, X, fn, ...)
end

-- The message of the error fn(...) raises inside such a run.
local function err_in_run(fn, ...)
  emitted = {}
  return err_of(core.offline_run, function(s) emitted[#emitted + 1] = s end, X, fn, ...)
end

describe("op in --sql mode", function()
  it("renders create_table with SERIAL, NOT NULL, defaults and the key", function()
    assert.same({ "CREATE TABLE users (\n    id SERIAL NOT NULL,\n    name VARCHAR(50) NOT NULL,\n"
      .. "    \"Email\" TEXT DEFAULT 'x',\n    PRIMARY KEY (id)\n)" }, statements(function()
      op.create_table("users", sa.Column("id", sa.Integer, { primary_key = true }),
        sa.Column("name", sa.String(50), { nullable = false }), sa.Column("Email", sa.Text, { server_default = "x" }))
    end))
  end)

  it("renders column and table changes", function()
    assert.same({
      "ALTER TABLE users ADD COLUMN age INTEGER",
      "ALTER TABLE \"App\".t ADD COLUMN c INTEGER DEFAULT '0' UNIQUE REFERENCES o (id)",
      "ALTER TABLE users DROP COLUMN age",
      "ALTER TABLE s.t DROP COLUMN c",
      "ALTER TABLE users ALTER COLUMN name TYPE TEXT",
      "ALTER TABLE users ALTER COLUMN name DROP NOT NULL",
      "ALTER TABLE users RENAME name TO full_name",
      "ALTER TABLE users RENAME TO people",
      "ALTER TABLE s.t RENAME TO u",
      "DROP TABLE people",
      "DROP TABLE s.t",
      "COMMENT ON TABLE a IS 'it is a'",
      "COMMENT ON TABLE a IS NULL",
    }, statements(function()
      op.add_column("users", sa.Column("age", sa.Integer))
      op.add_column("t", sa.Column("c", sa.Integer, sa.ForeignKey("o.id"), { server_default = "0", unique = true }),
        { schema = "App" })
      op.drop_column("users", "age")
      op.drop_column("t", "c", { schema = "s" })
      op.alter_column("users", "name", { nullable = true, type_ = sa.Text })
      op.alter_column("users", "name", { new_column_name = "full_name" })
      op.rename_table("users", "people")
      op.rename_table("t", "u", { schema = "s" })
      op.drop_table("people")
      op.drop_table("t", "s") -- schema as Alembic's optional positional
      op.create_table_comment("a", "it is a")
      op.drop_table_comment("a")
    end))
  end)

  it("renders indexes and constraints", function()
    assert.same({
      "CREATE UNIQUE INDEX ix_people_name ON people (name)",
      "DROP INDEX ix_people_name",
      "DROP INDEX IF EXISTS ix",
      "ALTER TABLE a ADD CONSTRAINT fk_a FOREIGN KEY(b_id) REFERENCES b (id) ON DELETE CASCADE",
      "ALTER TABLE a ADD CONSTRAINT fk FOREIGN KEY(x) REFERENCES b (y) DEFERRABLE INITIALLY DEFERRED",
      "ALTER TABLE a ADD CONSTRAINT uq_a UNIQUE (x, y)",
      "ALTER TABLE a ADD CONSTRAINT ck_a CHECK (x > 0)",
      "ALTER TABLE a ADD CONSTRAINT pk_a PRIMARY KEY (id)",
      "ALTER TABLE r ADD CONSTRAINT ex EXCLUDE USING gist (p WITH &&)",
      "ALTER TABLE a DROP CONSTRAINT ck_a",
      "ALTER TABLE s.a DROP CONSTRAINT fk",
    }, statements(function()
      op.create_index("ix_people_name", "people", { "name" }, { unique = true })
      op.drop_index("ix_people_name")
      op.drop_index("ix", "t", { if_exists = true })
      op.create_foreign_key("fk_a", "a", "b", { "b_id" }, { "id" }, { ondelete = "CASCADE" })
      op.create_foreign_key("fk", "a", "b", { "x" }, { "y" }, nil, nil, true, "deferred")
      op.create_unique_constraint("uq_a", "a", { "x", "y" })
      op.create_check_constraint("ck_a", "a", "x > 0")
      op.create_primary_key("pk_a", "a", { "id" })
      op.create_exclude_constraint("ex", "r", { "p", "&&" }, { using = "gist" })
      op.drop_constraint("ck_a", "a", { type_ = "check" })
      op.drop_constraint("fk", "a", "foreignkey", "s")
    end))
  end)

  it("renders enum types", function()
    assert.same({
      "CREATE TYPE mood AS ENUM ('happy', 'sad')",
      "ALTER TYPE mood ADD VALUE 'meh' AFTER 'happy'",
      "DROP TYPE mood",
    }, statements(function()
      op.create_enum("mood", { "happy", "sad" })
      op.add_enum_value("mood", "meh", { after = "happy" })
      op.drop_enum("mood")
    end))
  end)

  it("writes parameters and data inline as literals", function()
    assert.same({
      "UPDATE a SET x = 'it''s'",
      "UPDATE t SET a = 1 WHERE b = 'x'",
      "INSERT INTO a (x, y) VALUES (1, 'q'), (2, NULL)",
      "DELETE FROM a WHERE x = 3",
    }, statements(function()
      op.execute("UPDATE a SET x = $1", { "it's" })
      op.execute(sa.text("UPDATE t SET a = :v WHERE b = :w"), { v = 1, w = "x" })
      op.bulk_insert(sa.table("a", sa.column("x", sa.Integer), sa.column("y", sa.String)),
        { { x = 1, y = "q" }, { x = 2, y = nil } })
      op.get_bind():execute("DELETE FROM a WHERE x = $1", 3)
    end))
  end)

  it("ends the transaction around an autocommit block's statements", function()
    assert.same({ "COMMIT", "CREATE INDEX CONCURRENTLY ix_c ON a (x)", "BEGIN" }, statements(function()
      op.autocommit_block(function()
        op.create_index("ix_c", "a", { "x" }, { postgresql_concurrently = true })
      end)
    end))
  end)

  it("refuses what cannot run in the migration's transaction", function()
    assert.equal("op.execute: BEGIN is transaction control, which a migration must not issue: the runner owns "
      .. "the transaction (it commits or rolls back the migration together with its version row)",
      err_in_run(op.execute, "BEGIN"))
    assert.truthy(err_in_run(op.execute, "CREATE INDEX CONCURRENTLY ix ON t (a)"):find("CONCURRENTLY", 1, true))
    assert.equal("op.execute: sql contains a NUL byte, which PostgreSQL text cannot hold",
      err_in_run(op.execute, "SELECT 1\0"))
    assert.same({}, emitted)
  end)

  it("gives the -x arguments and a connection that writes but cannot read", function()
    local _, env, status = statements(function() return op.get_x_argument().env, op.get_bind():status() end)
    assert.equal("staging", env)
    assert.equal("offline", status)
    assert.equal("op.get_bind():query: there is no database in --sql mode, so a migration that reads data "
      .. "cannot be rendered offline (query: SELECT 1)", err_in_run(function() return op.get_bind():query("SELECT 1") end))
  end)

  it("writes a data-migration statement given to :result once, compiling it once", function()
    local expr = require "luamigrate.expr"
    local compile, compiled = expr.compile, 0
    expr.compile = function(...) compiled = compiled + 1; return compile(...) end
    local t = sa.table("t", sa.column("id"), sa.column("name"))
    local ok, out = pcall(statements, function()
      op.get_bind():result(t:update():where(t.c.id:eq(1)):values { name = "x" })
    end)
    expr.compile = compile
    assert.is_true(ok, out)
    assert.same({ "UPDATE t SET name='x' WHERE t.id = 1" }, out)
    assert.equal(1, compiled)
  end)

  it("names the op and the argument of a bad call", function()
    assert.equal("op.drop_table: name must be a string, got number", err_in_run(op.drop_table, 5))
    assert.equal("op.add_column: the second argument must be sa.Column(...)", err_in_run(op.add_column, "t"))
    assert.equal("op.create_index: unknown option 'uniqe'; did you mean 'unique'?",
      err_in_run(op.create_index, "ix", "t", { "a" }, { uniqe = true }))
    assert.equal("op.add_column: argument 5 comes after the options table, which must be last",
      err_in_run(op.add_column, "t", sa.Column("c", sa.Integer), "s", {}, 3))
    assert.equal("op.alter_column: type_ (argument 7) must be a type, got number; Alembic's parameters after the "
      .. "required ones are nullable, comment, server_default, new_column_name, type_, existing_type, "
      .. "existing_server_default, existing_nullable, existing_comment, schema; give the one you mean by name in "
      .. "the options table: {type_ = ...}", err_in_run(op.alter_column, "t", "c", true, nil, nil, nil, 5))
    assert.same({}, emitted)
  end)
end)

describe("core.offline_run", function()
  it("closes the run when fn returns or raises: op and a saved autocommit_block fail after it", function()
    local saved
    statements(function() saved = core.context("test").autocommit_block end)
    assert.equal("op.drop_table called outside a migration: op.* works only inside upgrade() and downgrade()",
      err_of(op.drop_table, "t"))
    assert.equal("run has ended: this function belonged to a migration that finished", err_of(saved, function() end))
    assert.equal("boom", err_in_run(function() error("boom", 0) end))
    assert.equal("op.execute called outside a migration: op.* works only inside upgrade() and downgrade()",
      err_of(op.execute, "SELECT 1"))
  end)

  it("gives fn's results back, and an error emit raises stops the run", function()
    local _, a, b = statements(function(x, y) return y, x end, 1, 2)
    assert.same({ 2, 1 }, { a, b })
    assert.equal("full", err_of(core.offline_run, function() error("full", 0) end, nil, function()
      op.drop_table("t")
    end))
  end)
end)

describe("op outside a run", function()
  it("raises, saying op.* works only inside upgrade() and downgrade()", function()
    assert.equal("op.execute called outside a migration: op.* works only inside upgrade() and downgrade()",
      err_of(op.execute, "SELECT 1"))
  end)
end)
