-- sa and postgresql types, and the autoincrement rule, against SQLAlchemy itself: each case
-- is a Lua expression and the Python SQLAlchemy writes for it; Debian's python3-sqlalchemy
-- (tests/helpers/sqlalchemy_ddl.py) compiles the Python, luamigrate renders the Lua, and the
-- two must agree. In-process, no database.
local sa = require "luamigrate.sa"
local postgresql = require "luamigrate.postgresql"
local render = require "luamigrate.render"
local schema = require "luamigrate.schema"
local src = os.getenv("LUAMIGRATE_SRC") or "."

-- Python lines in, one line of SQLAlchemy's output per line out.
local function sqlalchemy(lines)
  local tmp = os.tmpname()
  local f = assert(io.open(tmp, "w"))
  f:write(table.concat(lines, "\n"), "\n")
  f:close()
  local p = assert(io.popen(("/usr/bin/python3 %s/tests/helpers/sqlalchemy_ddl.py < %s 2>&1"):format(src, tmp)))
  local out = {}
  for l in p:lines() do out[#out + 1] = l end
  p:close()
  os.remove(tmp)
  return out
end

local function eval(lua)
  -- not a tail call, so an error is reported at the case's own line
  local chunk = assert(load("local v = table.pack(" .. lua .. ")\nreturn table.unpack(v, 1, v.n)", "=case", "t",
    { sa = sa, postgresql = postgresql, table = table }))
  return chunk()
end

-- Each {lua, message}: evaluating the Lua raises exactly the message, at the case's line.
local function refuses(cases)
  for _, c in ipairs(cases) do
    local ok, err = pcall(eval, c[1])
    assert.is_false(ok, c[1])
    assert.equal("case:1: " .. c[2], err)
  end
end

-- CREATE TABLE t as op.create_table writes it, on one line as the helper prints SQLAlchemy's.
local function create_table(...)
  local cols, cons = {}, {}
  for _, a in ipairs { ... } do
    if schema.is(a, "Column") then cols[#cols + 1] = a else cons[#cons + 1] = a end
  end
  local names, in_pk = schema.primary_key(cols, cons)
  local auto = schema.autoincrement_column(cols, names, cons)
  local lines = {}
  for _, c in ipairs(cols) do lines[#lines + 1] = render.column_def(c, c == auto, false, in_pk[c.name]) end
  lines[#lines + 1] = "PRIMARY KEY (" .. table.concat(schema.pk_order(names, cons, auto), ", ") .. ")"
  return "CREATE TABLE t ( " .. table.concat(lines, ", ") .. " )"
end

local TYPES = {
  { "sa.String(255)", "sa.String(255)" }, { "sa.String{length = 255}", "sa.String(length=255)" },
  { "sa.String(10, \"C\")", "sa.String(10, 'C')" }, { "sa.String", "sa.String()" },
  { "sa.Unicode(5)", "sa.Unicode(5)" }, { "sa.UnicodeText", "sa.UnicodeText()" },
  { "sa.Text{collation = \"C\"}", "sa.Text(collation='C')" },
  { "sa.DateTime(true)", "sa.DateTime(True)" }, { "sa.DateTime", "sa.DateTime()" },
  { "sa.Time{timezone = true}", "sa.Time(timezone=True)" },
  { "sa.Numeric(10, 2)", "sa.Numeric(10, 2)" }, { "sa.Numeric(10)", "sa.Numeric(10)" },
  { "sa.Numeric(nil, 2)", "sa.Numeric(None, 2)" }, { "sa.Numeric{precision = 8, asdecimal = false}", "sa.Numeric(precision=8, asdecimal=False)" },
  { "sa.Float(10)", "sa.Float(10)" }, { "sa.Float", "sa.Float()" },
  { "sa.Interval{second_precision = 3}", "sa.Interval(second_precision=3)" },
  { "sa.ARRAY(sa.Text, false, 2)", "sa.ARRAY(sa.Text, False, 2)" },
  { "sa.ARRAY(sa.String(5), {dimensions = 3})", "sa.ARRAY(sa.String(5), dimensions=3)" },
  { "sa.TIMESTAMP", "sa.TIMESTAMP()" }, { "sa.TIMESTAMP(true)", "sa.TIMESTAMP(True)" },
  { "sa.TIME", "sa.TIME()" }, { "sa.CHAR", "sa.CHAR()" }, { "sa.CHAR(3)", "sa.CHAR(3)" },
  { "sa.NCHAR(3)", "sa.NCHAR(3)" }, { "sa.NUMERIC(12, 4)", "sa.NUMERIC(12, 4)" },
  { "sa.DECIMAL(10, 2)", "sa.DECIMAL(10, 2)" }, { "sa.DECIMAL", "sa.DECIMAL()" },
  { "sa.SMALLINT", "sa.SMALLINT()" }, { "sa.BIGINT", "sa.BIGINT()" }, { "sa.INT", "sa.INT()" },
  { "sa.DATE", "sa.DATE()" }, { "sa.REAL", "sa.REAL()" }, { "sa.FLOAT(5)", "sa.FLOAT(5)" },
  { "sa.BOOLEAN", "sa.BOOLEAN()" }, { "sa.Boolean{create_constraint = true}", "sa.Boolean(create_constraint=True)" },
  { "sa.VARCHAR(20)", "sa.VARCHAR(20)" }, { "sa.TEXT", "sa.TEXT()" }, { "sa.JSON", "sa.JSON()" },
  { "sa.LargeBinary(10)", "sa.LargeBinary(10)" }, { "sa.Date", "sa.Date()" },
  { "sa.Enum(\"a\", \"b\", {name = \"e\"})", "sa.Enum('a', 'b', name='e')" },
  { "sa.Enum({\"a\", \"b\"}, {name = \"e\", schema = \"s\"})", "sa.Enum('a', 'b', name='e', schema='s')" },
  { "sa.Enum(\"a\", \"bcd\", {native_enum = false})", "sa.Enum('a', 'bcd', native_enum=False)" },
  { "postgresql.JSONB{astext_type = sa.Text()}", "postgresql.JSONB(astext_type=sa.Text())" },
  { "postgresql.JSON{none_as_null = true}", "postgresql.JSON(none_as_null=True)" },
  { "postgresql.UUID{as_uuid = true}", "postgresql.UUID(as_uuid=True)" },
  { "postgresql.ARRAY(postgresql.INTEGER)", "postgresql.ARRAY(postgresql.INTEGER)" },
  { "postgresql.ENUM(\"a\", {name = \"e\", create_type = false})", "postgresql.ENUM('a', name='e', create_type=False)" },
  { "postgresql.TIMESTAMP{timezone = true}", "postgresql.TIMESTAMP(timezone=True)" },
  { "postgresql.TIMESTAMP(true, 3)", "postgresql.TIMESTAMP(True, 3)" },
  { "postgresql.TIME{precision = 0}", "postgresql.TIME(precision=0)" },
  { "postgresql.INTERVAL{fields = \"DAY TO SECOND\", precision = 3}", "postgresql.INTERVAL(fields='DAY TO SECOND', precision=3)" },
  { "postgresql.INTERVAL", "postgresql.INTERVAL()" },
  { "postgresql.BIT", "postgresql.BIT()" }, { "postgresql.BIT(3, true)", "postgresql.BIT(3, True)" },
  { "postgresql.DOUBLE_PRECISION(10)", "postgresql.DOUBLE_PRECISION(10)" },
  { "postgresql.BYTEA", "postgresql.BYTEA()" }, { "postgresql.HSTORE", "postgresql.HSTORE()" },
  { "postgresql.TSVECTOR", "postgresql.TSVECTOR()" }, { "postgresql.INET", "postgresql.INET()" },
  { "postgresql.CIDR", "postgresql.CIDR()" }, { "postgresql.MACADDR", "postgresql.MACADDR()" },
  { "postgresql.MONEY", "postgresql.MONEY()" }, { "postgresql.OID", "postgresql.OID()" },
  { "postgresql.REGCLASS", "postgresql.REGCLASS()" }, { "postgresql.INT4RANGE", "postgresql.INT4RANGE()" },
  { "postgresql.TSTZRANGE", "postgresql.TSTZRANGE()" }, { "postgresql.NUMRANGE", "postgresql.NUMRANGE()" },
  { "postgresql.VARCHAR(9)", "postgresql.VARCHAR(9)" }, { "postgresql.NUMERIC(3, 1)", "postgresql.NUMERIC(3, 1)" },
}

-- Each with SQLAlchemy's Python for the same table.
local TABLES = {
  { [[sa.Column("id", sa.Integer, {nullable = false}), sa.PrimaryKeyConstraint("id")]],
    [[sa.Table("t", md, sa.Column("id", sa.Integer, nullable=False), sa.PrimaryKeyConstraint("id"))]] },
  { [[sa.Column("id", sa.BigInteger), sa.PrimaryKeyConstraint("id")]],
    [[sa.Table("t", md, sa.Column("id", sa.BigInteger), sa.PrimaryKeyConstraint("id"))]] },
  { [[sa.Column("id", sa.SmallInteger, {primary_key = true})]],
    [[sa.Table("t", md, sa.Column("id", sa.SmallInteger, primary_key=True))]] },
  { [[sa.Column("id", sa.Integer, {autoincrement = false}), sa.PrimaryKeyConstraint("id")]],
    [[sa.Table("t", md, sa.Column("id", sa.Integer, autoincrement=False), sa.PrimaryKeyConstraint("id"))]] },
  { [[sa.Column("id", sa.Integer, {server_default = "1"}), sa.PrimaryKeyConstraint("id")]],
    [[sa.Table("t", md, sa.Column("id", sa.Integer, server_default="1"), sa.PrimaryKeyConstraint("id"))]] },
  { [[sa.Column("id", sa.Integer, {primary_key = true, default = 5})]],
    [[sa.Table("t", md, sa.Column("id", sa.Integer, primary_key=True, default=5))]] },
  { [[sa.Column("id", sa.Integer, sa.ForeignKey("o.id")), sa.PrimaryKeyConstraint("id")]],
    [[sa.Table("t", md, sa.Column("id", sa.Integer, sa.ForeignKey("o.id")), sa.PrimaryKeyConstraint("id"))]] },
  -- a table-level ForeignKeyConstraint on the key column counts as the column's foreign key
  { [[sa.Column("id", sa.Integer, {nullable = false}), sa.ForeignKeyConstraint({"id"}, {"o.id"}),
      sa.PrimaryKeyConstraint("id")]],
    [[sa.Table("t", md, sa.Column("id", sa.Integer, nullable=False), sa.ForeignKeyConstraint(["id"], ["o.id"]), sa.PrimaryKeyConstraint("id"))]] },
  { [[sa.Column("id", sa.Integer, {autoincrement = "ignore_fk"}), sa.ForeignKeyConstraint({"id"}, {"o.id"}),
      sa.PrimaryKeyConstraint("id")]],
    [[sa.Table("t", md, sa.Column("id", sa.Integer, autoincrement="ignore_fk"), sa.ForeignKeyConstraint(["id"], ["o.id"]), sa.PrimaryKeyConstraint("id"))]] },
  { [[sa.Column("id", sa.Integer, sa.ForeignKey("o.id"), {primary_key = true, autoincrement = "ignore_fk"})]],
    [[sa.Table("t", md, sa.Column("id", sa.Integer, sa.ForeignKey("o.id"), primary_key=True, autoincrement="ignore_fk"))]] },
  { [[sa.Column("id", sa.Integer), sa.Column("b", sa.Integer), sa.PrimaryKeyConstraint("id", "b")]],
    [[sa.Table("t", md, sa.Column("id", sa.Integer), sa.Column("b", sa.Integer), sa.PrimaryKeyConstraint("id", "b"))]] },
  { [[sa.Column("id", sa.Integer, {primary_key = true}), sa.Column("b", sa.Integer, {primary_key = true, autoincrement = true})]],
    [[sa.Table("t", md, sa.Column("id", sa.Integer, primary_key=True), sa.Column("b", sa.Integer, primary_key=True, autoincrement=True))]] },
  { [[sa.Column("id", sa.Numeric(10, 2), {primary_key = true})]],
    [[sa.Table("t", md, sa.Column("id", sa.Numeric(10, 2), primary_key=True))]] },
  { [[sa.Column("id", sa.String(8), {primary_key = true})]],
    [[sa.Table("t", md, sa.Column("id", sa.String(8), primary_key=True))]] },
  { [[sa.Column("id", sa.Integer, {nullable = true}), sa.PrimaryKeyConstraint("id")]],
    [[sa.Table("t", md, sa.Column("id", sa.Integer, nullable=True), sa.PrimaryKeyConstraint("id"))]] },
  { [[sa.Column("id", postgresql.INTEGER, {primary_key = true})]],
    [[sa.Table("t", md, sa.Column("id", postgresql.INTEGER, primary_key=True))]] },
}

describe("sa and postgresql types", function()
  it("render what SQLAlchemy compiles for PostgreSQL", function()
    local py = {}
    for i, c in ipairs(TYPES) do py[i] = c[2] end
    local want = sqlalchemy(py)
    local got = {}
    for i, c in ipairs(TYPES) do got[i] = c[2] .. " => " .. eval(c[1]):sql() ; want[i] = c[2] .. " => " .. tostring(want[i]) end
    assert.same(want, got)
  end)

  it("make a lone integer primary key SERIAL exactly where SQLAlchemy does", function()
    local py = {}
    for i, c in ipairs(TABLES) do py[i] = c[2] end
    local want = sqlalchemy(py)
    local got = {}
    for i, c in ipairs(TABLES) do
      local body = want[i]:gsub(", FOREIGN KEY%b()[^,)]*%b()", "")
      want[i] = body
      got[i] = create_table(eval(c[1]))
    end
    assert.same(want, got)
  end)

  it("keep a named sa.ForeignKey's name in an added column's inline reference", function()
    -- Alembic adds it as ADD CONSTRAINT a_fk FOREIGN KEY(a): the constraint is named a_fk, not a_fkey
    local c = eval([[sa.Column("a", sa.Integer, sa.ForeignKey("o.id", {name = "a_fk", ondelete = "CASCADE"}))]])
    assert.equal("a INTEGER CONSTRAINT a_fk REFERENCES o (id) ON DELETE CASCADE", render.column_def(c, false, true, false))
    c = eval([[sa.Column("a", sa.Integer, sa.ForeignKey("o.id"))]])
    assert.equal("a INTEGER REFERENCES o (id)", render.column_def(c, false, true, false))
  end)

  it("refuse an argument the type does not take, naming it", function()
    local cases = {
      { "sa.Integer(5)", "sa.Integer takes no arguments (got 1)" },
      { "sa.DateTime(true, 3)", "sa.DateTime takes at most 1 positional argument (timezone), got 2" },
      { "sa.Text(200)", "sa.Text(200): PostgreSQL's TEXT takes no length (use sa.String(200) for VARCHAR(200))" },
      { "sa.Numeric(10, 2, true)", "sa.Numeric: decimal_return_scale must be a non-negative integer, got boolean "
        .. "(argument 3; the parameters are sa.Numeric(precision, scale, decimal_return_scale, asdecimal))" },
      { "sa.ARRAY(sa.Text, 2)", "sa.ARRAY: as_tuple must be a boolean, got number (argument 2; the parameters "
        .. "are sa.ARRAY(item_type, as_tuple, dimensions, zero_indexes))" },
      { "sa.String{lenght = 3}", "sa.String: unknown option 'lenght'; did you mean 'length'?" },
      { "sa.String(3, {length = 4})", "sa.String: 'length' given twice (positionally and as an option)" },
      { "sa.Strng", "sa.Strng does not exist; did you mean sa.String?" },
      { "postgresql.JSNB", "postgresql.JSNB does not exist; did you mean postgresql.JSONB?" },
      { "postgresql.UUID{as_uid = true}", "postgresql.UUID: unknown option 'as_uid'; did you mean 'as_uuid'?" },
      { "sa.Enum(\"a\", {nam = \"e\"})", "sa.Enum: unknown option 'nam'; did you mean 'name'?" },
    }
    refuses(cases)
  end)

  it("take an enum's values as varargs or as one list", function()
    local a = sa.Enum("x", "y", "z", { name = "e" })
    local b = sa.Enum({ "x", "y", "z" }, { name = "e" })
    assert.same({ "x", "y", "z" }, a.values)
    assert.same(a.values, b.values)
    assert.same({ "p", "q" }, postgresql.ENUM({ "p", "q" }, { name = "f", create_type = false }).values)
  end)
end)

-- The types and arguments SQLAlchemy's table above does not reach (types it has no PostgreSQL
-- compiler for, or where luamigrate's own message is the point), with the exact DDL or message.
describe("sa and postgresql types beyond SQLAlchemy's comparison", function()
  it("render their DDL", function()
    local cases = {
      { "sa.Uuid", "UUID" }, { "sa.Uuid{native_uuid = false}", "CHAR(32)" },
      { "sa.Double", "DOUBLE PRECISION" }, { "sa.Double(53)", "DOUBLE PRECISION" },
      { "postgresql.BIT(8, true)", "BIT VARYING(8)" }, { "postgresql.BIT{varying = true}", "BIT VARYING" },
      { "postgresql.CITEXT", "CITEXT" }, { "postgresql.TSTZMULTIRANGE", "TSTZMULTIRANGE" },
      { "postgresql.JSONPATH", "JSONPATH" }, { "postgresql.MACADDR8", "MACADDR8" },
      { "sa.Enum(\"a\", \"bcd\", {native_enum = false, length = 10})", "VARCHAR(10)" },
      { "sa.Enum(\"a\", {name = \"Mood\", schema = \"app\"})", "app.\"Mood\"" },
      { "sa.ARRAY(sa.Integer, {dimensions = 2})", "INTEGER[][]" },
      { "postgresql.INTERVAL{fields = \"day\"}", "INTERVAL DAY" },
      { "sa.String(5, \"de_DE\")", "VARCHAR(5) COLLATE \"de_DE\"" },
      { "sa.VARCHAR{collation = \"C\"}", "VARCHAR COLLATE \"C\"" },
    }
    for _, c in ipairs(cases) do assert.equal(c[2], eval(c[1]):sql(), c[1]) end
  end)

  it("refuse a missing, mistyped or out-of-range argument, naming it", function()
    local cases = {
      { "sa.ARRAY()", "sa.ARRAY: item_type is required" },
      { "sa.Enum(\"a\")", "sa.Enum: a name is required ({name = \"...\"}): PostgreSQL enum types are named" },
      { "sa.Enum(\"a\", 5, {name = \"e\"})", "sa.Enum: value 2 must be a string, got number" },
      { "sa.TEXT(5)", "TEXT(5): PostgreSQL's TEXT takes no length" },
      { "sa.String(-1)", "sa.String: length must be a non-negative integer, got number (argument 1; the parameters "
        .. "are sa.String(length, collation))" },
      { "sa.Numeric(10.5)", "sa.Numeric: precision must be a non-negative integer, got number (argument 1; the "
        .. "parameters are sa.Numeric(precision, scale, decimal_return_scale, asdecimal))" },
      { "sa.Boolean{name = 5}", "sa.Boolean: name must be a string, got number" },
      { "postgresql.TIMESTAMP(true, \"3\")", "postgresql.TIMESTAMP: precision must be a non-negative integer, got "
        .. "string (argument 2; the parameters are postgresql.TIMESTAMP(timezone, precision))" },
    }
    refuses(cases)
  end)

  it("give each call its own instance", function()
    local a, b = sa.String(5), sa.String(9)
    assert.equal("VARCHAR(5)", a:sql())
    assert.equal("VARCHAR(9)", b:sql())
    assert.equal("VARCHAR", sa.String:sql())
  end)
end)
