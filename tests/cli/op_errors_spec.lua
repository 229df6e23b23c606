-- Bad arguments to op.* and sa.*: one clear message naming the op (or constructor) and the
-- key or argument, a non-zero exit, and the database exactly as it was.
local pg = require "helpers.pg"
local cli = require "helpers.cli"
local fixture = require "helpers.fixture"

local CASES = {
  { 'op.create_table("t", sa.Column("id", sa.Integer), { bogus = 1 })', "op.create_table: unknown option 'bogus'" },
  { 'op.add_column("t", sa.Column("x", sa.Text), { schmea = "app" })', "op.add_column: unknown option 'schmea'" },
  { 'op.alter_column("t", "x", { nulable = false })', "op.alter_column: unknown option 'nulable'" },
  { 'op.alter_column("t", "x", { postgresql_using = "x::int" })', "op.alter_column: postgresql_using must be used with the type_ parameter" },
  { 'op.alter_column("t", "x", {})', 'op.alter_column("t", "x"): nothing to change' },
  { 'op.create_index("ix", "t", { "x" }, { unqiue = true })', "op.create_index: unknown option 'unqiue'" },
  { 'op.drop_table(42)', "op.drop_table: name must be a string, got number" },
  { 'op.execute({ "SELECT 1" })', "op.execute: sql must be a string, got table" },
  { 'op.execute("SELECT $1", "x")', "op.execute: params must be a table, got string" },
  { 'op.execute(sa.text("SELECT :missing"))', "op.execute: no value for bind parameter :missing" },
  { 'op.add_enum_value("e", "x", { before = "a", after = "b" })', "op.add_enum_value: give before or after, not both" },
  { 'op.create_foreign_key("fk", "t", "u", { "a" }, { "b" }, { on_delete = "CASCADE" })', "op.create_foreign_key: unknown option 'on_delete'" },
  { 'sa.Column("x", sa.Text, { nullabel = true })', "sa.Column: unknown option 'nullabel'" },
  { 'sa.String(10, { lenght = 2 })', "sa.String: unknown option 'lenght'" },
  { 'sa.Bogus()', "sa.Bogus does not exist" },
  { 'op.no_such_op()', "op.no_such_op does not exist" },
  { 'op.crate_table("t")', "op.crate_table does not exist; did you mean op.create_table?" },
  { 'op.drop_table("t", { cascde = true })', "op.drop_table: unknown option 'cascde'; did you mean 'cascade'?" },
  { 'sa.Strng(5)', "sa.Strng does not exist; did you mean sa.String?" },
  { 'postgresql.JSNB()', "postgresql.JSNB does not exist; did you mean postgresql.JSONB?" },
  { 'sa.Integer(5)', "sa.Integer takes no arguments (got 1)" },
  { 'sa.DateTime(true, 3)', "sa.DateTime takes at most 1 positional argument (timezone), got 2" },
  { 'op.alter_column("users", "email", sa.Text)', "op.alter_column: nullable (argument 3) must be a boolean, got "
    .. "sa.Text; Alembic's parameters after the required ones are nullable, comment, server_default, "
    .. "new_column_name, type_, existing_type, existing_server_default, existing_nullable, existing_comment, "
    .. "schema; give the one you mean by name in the options table: {type_ = ...}" },
  { 'op.create_index("ix", "t", { "x" }, true)', "op.create_index: schema (argument 4) must be a string, got "
    .. "boolean; Alembic's parameters after the required ones are schema, unique; give the one you mean by "
    .. "name in the options table: {unique = ...}" },
  { 'op.drop_constraint("c", "t", "uniq")', "op.drop_constraint: type_ must be one of foreignkey, primary, "
    .. "unique, check, got \"uniq\"; did you mean 'unique'?" },
  { 'op.drop_index("ix", "t", "public", "x")', "op.drop_index: argument 4 (string) is not a parameter: the "
    .. "optional positional ones are table_name, schema, then the options table" },
  { 'op.drop_table("t", "s", { schema = "s" })', "op.drop_table: 'schema' given twice (positionally and in the options table)" },
  { 'op.batch_alter_table("t", { recreate = "always" }, function() end)', "op.batch_alter_table: recreate = \"always\" copies the table" },
  { 'op.create_index(op.f("ix_" .. ("x"):rep(70)), "no_such_table", { "x" })', 'relation "no_such_table" does not exist' },
  { 'op.create_index("ix_" .. ("x"):rep(70), "t", { "x" })', "is 73 bytes long; PostgreSQL keeps 63 and would silently truncate it" },
  { 'op.register("execute", function() end)', "op.register: op.execute already exists" },
  { 'sa.Column("d", sa.Date, sa.Computed("now()::date", { persisted = false }))', "sa.Computed: PostgreSQL has only stored generated columns" },
  { 'sa.Computed(42)', "sa.Computed: the expression must be a string" },
  { 'op.create_table("t", "not a column")', 'op.create_table("t"): argument 2 is not a column or constraint' },
}

describe("bad arguments to ops", function()
  local fx = fixture.new { scope = "all" }
  local dir, url

  setup(function()
    url = fx:new_db("op_errors")
    dir = fx:project { files = {
      ["migrations/versions/base0001_base.lua"] = cli.revision("base0001", nil,
        '  op.execute("CREATE TABLE keep (id int)")\n  op.execute("INSERT INTO keep VALUES (1)")\n',
        '  op.drop_table("keep")\n'),
    } }
    assert.equal(0, cli.run({ "--url", url, "upgrade", "head" }, { cwd = dir }).code)
  end)

  for i, case in ipairs(CASES) do
    it(("reports %s"):format(case[2]), function()
      local id = ("bad%05d"):format(i)
      local path = dir .. "/migrations/versions/" .. id .. "_bad.lua"
      cli.write(path, cli.revision(id, "base0001",
        '  op.execute("CREATE TABLE half_done (id int)")\n  ' .. case[1] .. "\n", ""))
      local before = pg.dump(url)
      local r = cli.run({ "--url", url, "upgrade", "head" }, { cwd = dir })
      os.remove(path)
      assert.equal(1, r.code, r.err)
      assert.truthy(r.err:find(case[2], 1, true), r.err)
      -- the message names the file and line of the call, and the revision
      assert.truthy(r.err:find(id .. "_bad.lua:", 1, true), r.err)
      assert.truthy(r.err:find("upgrade base0001 -> " .. id .. " failed", 1, true), r.err)
      assert.equal(before, pg.dump(url))
    end)
  end
end)
