-- The DDL of Alembic migrations translated line by line, against Alembic itself: each case is
-- Python op calls and their Lua translation. Debian's python3-alembic writes the Python's SQL
-- (offline, tests/helpers/alembic_sql.py); `luamigrate upgrade --sql` must write the same
-- statements, and applying each side to a database of its own (Alembic's SQL with psql, the
-- Lua with a real `luamigrate upgrade`) must give the same schema.
local pg = require "helpers.pg"
local cli = require "helpers.cli"

local CASES = {
  { name = "an integer key declared with sa.PrimaryKeyConstraint is SERIAL (Alembic's autogenerate form)",
    py = [[
op.create_table("account",
    sa.Column("id", sa.Integer(), nullable=False),
    sa.Column("email", sa.String(length=255), nullable=False),
    sa.Column("created", sa.DateTime(True), server_default=sa.text("now()"), nullable=False),
    sa.PrimaryKeyConstraint("id", name=op.f("pk_account")),
    sa.UniqueConstraint("email", name=op.f("uq_account_email")))
op.create_table("big", sa.Column("id", sa.BigInteger(), nullable=False), sa.PrimaryKeyConstraint("id"))
op.create_table("link",
    sa.Column("account_id", sa.Integer(), nullable=False),
    sa.Column("n", sa.SmallInteger(), autoincrement=True, nullable=False),
    sa.ForeignKeyConstraint(["account_id"], ["account.id"]),
    sa.PrimaryKeyConstraint("account_id", "n"))
op.create_table("manual", sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
    sa.PrimaryKeyConstraint("id"))
op.create_table("ident",
    sa.Column("id", sa.BigInteger(), sa.Identity(True, None, 5, 2, nominvalue=True, cycle=True), primary_key=True),
    sa.Column("x", sa.Integer(), sa.Computed("id * 2", True)),
    sa.Column("big_id", sa.BigInteger()),
    sa.CheckConstraint("x > 0", "ck_ident_x"),
    sa.ForeignKeyConstraint(["big_id"], ["big.id"], "fk_ident_big", "CASCADE"))
op.add_column("big", sa.Column("extra", sa.Integer(), nullable=True))
]],
    lua = [[
  op.create_table("account",
    sa.Column("id", sa.Integer(), { nullable = false }),
    sa.Column("email", sa.String { length = 255 }, { nullable = false }),
    sa.Column("created", sa.DateTime(true), { server_default = sa.text("now()"), nullable = false }),
    sa.PrimaryKeyConstraint("id", { name = op.f("pk_account") }),
    sa.UniqueConstraint("email", { name = op.f("uq_account_email") }))
  op.create_table("big", sa.Column("id", sa.BigInteger(), { nullable = false }), sa.PrimaryKeyConstraint("id"))
  op.create_table("link",
    sa.Column("account_id", sa.Integer(), { nullable = false }),
    sa.Column("n", sa.SmallInteger(), { autoincrement = true, nullable = false }),
    sa.ForeignKeyConstraint({ "account_id" }, { "account.id" }),
    sa.PrimaryKeyConstraint("account_id", "n"))
  op.create_table("manual", sa.Column("id", sa.Integer(), { autoincrement = false, nullable = false }),
    sa.PrimaryKeyConstraint("id"))
  op.create_table("ident",
    sa.Column("id", sa.BigInteger(), sa.Identity(true, nil, 5, 2, { nominvalue = true, cycle = true }),
      { primary_key = true }),
    sa.Column("x", sa.Integer(), sa.Computed("id * 2", true)),
    sa.Column("big_id", sa.BigInteger()),
    sa.CheckConstraint("x > 0", "ck_ident_x"),
    sa.ForeignKeyConstraint({ "big_id" }, { "big.id" }, "fk_ident_big", "CASCADE"))
  op.add_column("big", sa.Column("extra", sa.Integer(), { nullable = true }))
]] },
  { name = "sa and postgresql types with SQLAlchemy's positional and keyword parameters",
    py = [[
op.execute("CREATE TYPE mood AS ENUM ('ok', 'meh')")
op.create_table("typed",
    sa.Column("a", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
    sa.Column("b", postgresql.UUID(as_uuid=True), nullable=False),
    sa.Column("c", postgresql.ARRAY(sa.String(length=20)), nullable=True),
    sa.Column("d", postgresql.TIMESTAMP(timezone=True), nullable=True),
    sa.Column("e", postgresql.TSVECTOR(), nullable=True),
    sa.Column("f", postgresql.INET(), nullable=True),
    sa.Column("g", postgresql.INTERVAL(fields="DAY TO SECOND", precision=3), nullable=True),
    sa.Column("h", postgresql.ENUM("ok", "meh", name="mood", create_type=False), nullable=True),
    sa.Column("i", sa.TIMESTAMP(timezone=True), nullable=True),
    sa.Column("j", sa.CHAR(3), nullable=True),
    sa.Column("k", sa.NUMERIC(10, 2), nullable=True),
    sa.Column("l", sa.DECIMAL(8), nullable=True),
    sa.Column("m", sa.SMALLINT(), nullable=True),
    sa.Column("n", sa.DATE(), nullable=True),
    sa.Column("o", postgresql.DOUBLE_PRECISION(precision=53), nullable=True),
    sa.Column("p", sa.ARRAY(sa.Integer(), dimensions=2), nullable=True),
    sa.Column("q", sa.Numeric(10, 2), nullable=True),
    sa.Column("r", postgresql.JSON(none_as_null=True), nullable=True),
    sa.Column("s", postgresql.TIMESTAMP(precision=3), nullable=True),
    sa.Column("t", sa.String(8, collation="C"), nullable=True),
    sa.Column("u", postgresql.BIT(4), nullable=True),
    sa.Column("v", postgresql.MONEY(), nullable=True),
    sa.Column("w", sa.Enum("x", "yz", name="xy"), nullable=True))
]],
    lua = [[
  op.execute("CREATE TYPE mood AS ENUM ('ok', 'meh')")
  op.create_table("typed",
    sa.Column("a", postgresql.JSONB { astext_type = sa.Text() }, { nullable = true }),
    sa.Column("b", postgresql.UUID { as_uuid = true }, { nullable = false }),
    sa.Column("c", postgresql.ARRAY(sa.String { length = 20 }), { nullable = true }),
    sa.Column("d", postgresql.TIMESTAMP { timezone = true }, { nullable = true }),
    sa.Column("e", postgresql.TSVECTOR(), { nullable = true }),
    sa.Column("f", postgresql.INET(), { nullable = true }),
    sa.Column("g", postgresql.INTERVAL { fields = "DAY TO SECOND", precision = 3 }, { nullable = true }),
    sa.Column("h", postgresql.ENUM("ok", "meh", { name = "mood", create_type = false }), { nullable = true }),
    sa.Column("i", sa.TIMESTAMP { timezone = true }, { nullable = true }),
    sa.Column("j", sa.CHAR(3), { nullable = true }),
    sa.Column("k", sa.NUMERIC(10, 2), { nullable = true }),
    sa.Column("l", sa.DECIMAL(8), { nullable = true }),
    sa.Column("m", sa.SMALLINT(), { nullable = true }),
    sa.Column("n", sa.DATE(), { nullable = true }),
    sa.Column("o", postgresql.DOUBLE_PRECISION { precision = 53 }, { nullable = true }),
    sa.Column("p", sa.ARRAY(sa.Integer(), { dimensions = 2 }), { nullable = true }),
    sa.Column("q", sa.Numeric(10, 2), { nullable = true }),
    sa.Column("r", postgresql.JSON { none_as_null = true }, { nullable = true }),
    sa.Column("s", postgresql.TIMESTAMP { precision = 3 }, { nullable = true }),
    sa.Column("t", sa.String(8, { collation = "C" }), { nullable = true }),
    sa.Column("u", postgresql.BIT(4), { nullable = true }),
    sa.Column("v", postgresql.MONEY(), { nullable = true }),
    sa.Column("w", sa.Enum({ "x", "yz" }, { name = "xy" }), { nullable = true }))
]] },
  { name = "op.f names, over-long ones shortened as SQLAlchemy does, and Alembic's positional forms",
    py = [[
op.create_table("t", sa.Column("id", sa.Integer(), primary_key=True), sa.Column("x", sa.Text()),
    sa.Column("y", sa.Integer()))
op.create_index(op.f("ix_t_x"), "t", ["x"], unique=False)
op.create_index(op.f("ix_t_" + "x" * 70), "t", ["x", "y"])
op.create_index("ix_t_y", "t", ["y"], None, True, postgresql_where=sa.text("y > 0"))
op.create_unique_constraint(op.f("uq_t_" + "y" * 70), "t", ["y"])
op.create_check_constraint(op.f("ck_t_" + "z" * 70), "t", "y > -1")
op.drop_constraint(op.f("uq_t_" + "y" * 70), "t", "unique")
op.drop_constraint(op.f("ck_t_" + "z" * 70), "t", type_="check")
op.drop_index("ix_t_y", "t", postgresql_where=sa.text("y > 0"))
op.drop_index(op.f("ix_t_" + "x" * 70), table_name="t")
op.alter_column("t", "y", False, server_default="0")
op.create_index("ix_t_lower", "t", [sa.func.lower(sa.column("x"))], unique=True)
op.create_check_constraint("ck_t_y", "t", sa.column("y") > -5)
op.add_column("t", sa.Column("at", sa.DateTime(), server_default=sa.func.now(), nullable=False))
op.alter_column("t", "x", nullable=True, type_=sa.String(length=50), existing_type=sa.Text())
with op.batch_alter_table("t", schema=None) as batch_op:
    batch_op.add_column(sa.Column("z", sa.Boolean(), nullable=True))
    batch_op.alter_column("z", existing_type=sa.Boolean(), nullable=False, server_default=sa.text("false"))
    batch_op.create_index(batch_op.f("ix_t_z"), ["z"], unique=False)
    batch_op.create_foreign_key("fk_t_self", "t", ["y"], ["id"], ondelete="CASCADE")
    batch_op.drop_constraint("fk_t_self", type_="foreignkey")
    batch_op.drop_index(batch_op.f("ix_t_z"))
    batch_op.drop_column("z")
op.drop_table("t")
]],
    lua = [[
  op.create_table("t", sa.Column("id", sa.Integer(), { primary_key = true }), sa.Column("x", sa.Text()),
    sa.Column("y", sa.Integer()))
  op.create_index(op.f("ix_t_x"), "t", { "x" }, { unique = false })
  op.create_index(op.f("ix_t_" .. ("x"):rep(70)), "t", { "x", "y" })
  op.create_index("ix_t_y", "t", { "y" }, nil, true, { postgresql_where = sa.text("y > 0") })
  op.create_unique_constraint(op.f("uq_t_" .. ("y"):rep(70)), "t", { "y" })
  op.create_check_constraint(op.f("ck_t_" .. ("z"):rep(70)), "t", "y > -1")
  op.drop_constraint(op.f("uq_t_" .. ("y"):rep(70)), "t", "unique")
  op.drop_constraint(op.f("ck_t_" .. ("z"):rep(70)), "t", { type_ = "check" })
  op.drop_index("ix_t_y", "t", { postgresql_where = sa.text("y > 0") })
  op.drop_index(op.f("ix_t_" .. ("x"):rep(70)), { table_name = "t" })
  op.alter_column("t", "y", false, { server_default = "0" })
  op.create_index("ix_t_lower", "t", { sa.func.lower(sa.column("x")) }, { unique = true })
  op.create_check_constraint("ck_t_y", "t", sa.column("y"):gt(-5))
  op.add_column("t", sa.Column("at", sa.DateTime(), { server_default = sa.func.now(), nullable = false }))
  op.alter_column("t", "x", { nullable = true, type_ = sa.String { length = 50 }, existing_type = sa.Text() })
  op.batch_alter_table("t", { schema = nil }, function(batch_op)
    batch_op.add_column(sa.Column("z", sa.Boolean(), { nullable = true }))
    batch_op.alter_column("z", { existing_type = sa.Boolean(), nullable = false, server_default = sa.text("false") })
    batch_op.create_index(op.f("ix_t_z"), { "z" }, { unique = false })
    batch_op.create_foreign_key("fk_t_self", "t", { "y" }, { "id" }, { ondelete = "CASCADE" })
    batch_op.drop_constraint("fk_t_self", { type_ = "foreignkey" })
    batch_op.drop_index(op.f("ix_t_z"))
    batch_op.drop_column("z")
  end)
  op.drop_table("t")
]] },
  { name = "positional parameters passed by name, and a literal_column index element written as it is",
    py = [[
op.create_table("k", sa.Column("id", sa.Integer(), nullable=False), sa.Column("name", sa.Text()),
    sa.Column("n", sa.Integer()), sa.PrimaryKeyConstraint("id"))
op.create_check_constraint("ck_k_n", table_name="k", condition="n > 0")
op.create_index("ix_k_name_id", "k", ["name", sa.literal_column("id DESC")], unique=False)
op.create_unique_constraint(constraint_name="uq_k_name", table_name="k", columns=["name"])
op.drop_constraint("uq_k_name", table_name="k", type_="unique")
]],
    lua = [[
  op.create_table("k", sa.Column("id", sa.Integer(), { nullable = false }), sa.Column("name", sa.Text()),
    sa.Column("n", sa.Integer()), sa.PrimaryKeyConstraint("id"))
  op.create_check_constraint("ck_k_n", "k", "n > 0")
  op.create_index("ix_k_name_id", "k", { "name", sa.literal_column("id DESC") }, { unique = false })
  op.create_unique_constraint("uq_k_name", "k", { "name" })
  op.drop_constraint("uq_k_name", "k", { type_ = "unique" })
]] },
}

-- The statements of an SQL script, each with its whitespace collapsed (Alembic writes
-- "id SERIAL NOT NULL, \n" where luamigrate writes "id SERIAL NOT NULL,\n").
local function statements(sql)
  local out = {}
  for stmt in (sql .. "\n"):gmatch("(.-);%s*\n") do
    local s = stmt:gsub("%s+", " "):gsub("%( ", "("):gsub(" %)", ")"):gsub("^ ", ""):gsub(" $", "")
    if s ~= "" then out[#out + 1] = s end
  end
  return out
end

local function alembic_sql(py)
  local tmp = os.tmpname()
  cli.write(tmp, py)
  local p = assert(io.popen(("/usr/bin/python3 %s/tests/helpers/alembic_sql.py < %s 2>&1"):format(cli.src, tmp)))
  local out = p:read("a")
  local ok = p:close()
  os.remove(tmp)
  assert(ok, "alembic failed: " .. out)
  return out
end

-- The migration's own statements from `upgrade --sql` (between its "-- Running upgrade"
-- line and the version-table update).
local function luamigrate_sql(dir, url)
  local r = cli.run({ "--url", url, "upgrade", "head", "--sql" }, { cwd = dir })
  assert.equal(0, r.code, r.err)
  local body = r.out:match("%-%- Running upgrade[^\n]*\n(.-)\nINSERT INTO luamigrate_version ")
  assert(body, r.out)
  return body
end

-- A schema dump without the tools' own tables (and the settings pg_dump writes only when
-- there are tables).
local function schema_of(url)
  local d = pg.schema_dump(url)
  local kept = {}
  for block in (d .. "\n\n"):gmatch("(.-)\n\n+") do
    if not block:find("luamigrate_version", 1, true) and not block:find("^SET default_table") then
      kept[#kept + 1] = block
    end
  end
  return table.concat(kept, "\n\n")
end

describe("Alembic migrations translated line by line", function()
  for i, case in ipairs(CASES) do
    it(case.name, function()
      local url_a, db_a = pg.new_db("ddl_alembic")
      local url_l, db_l = pg.new_db("ddl_lua")
      -- (the migration's SET LOCAL lock_timeout is luamigrate's own, not Alembic's DDL)
      local dir = cli.project { files = {
        [("migrations/versions/c%04d_case.lua"):format(i)] = cli.revision(("c%04d"):format(i), nil, case.lua, ""),
      }, config = 'script_location = "migrations"\nmigration_lock_timeout = false\n' }
      local want = alembic_sql(case.py)
      local got = luamigrate_sql(dir, url_l)
      assert.same(statements(want), statements(got))
      pg.psql(url_a, want)
      local r = cli.run({ "--url", url_l, "upgrade", "head" }, { cwd = dir })
      assert.equal(0, r.code, r.err)
      assert.equal(schema_of(url_a), schema_of(url_l))
      cli.remove(dir)
      pg.drop_db(db_a)
      pg.drop_db(db_l)
    end)
  end

  it("an sa.PrimaryKeyConstraint key gets its sequence: inserts number the rows", function()
    local url, db = pg.new_db("ddl_serial")
    local dir = cli.project { files = {
      ["migrations/versions/s0001_serial.lua"] = cli.revision("s0001", nil, [[
  op.create_table("t", sa.Column("id", sa.Integer, { nullable = false }), sa.Column("v", sa.Text),
    sa.PrimaryKeyConstraint("id"))
  op.execute("INSERT INTO t (v) VALUES ('a'), ('b')")
]], ""),
    } }
    local r = cli.run({ "--url", url, "upgrade", "head" }, { cwd = dir })
    assert.equal(0, r.code, r.err)
    assert.equal("1|a\n2|b", pg.psql(url, "SELECT id, v FROM t ORDER BY id"))
    assert.equal("public.t_id_seq", pg.psql(url, "SELECT pg_get_serial_sequence('t', 'id')"))
    cli.remove(dir)
    pg.drop_db(db)
  end)
end)
