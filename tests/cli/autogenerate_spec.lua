-- Autogenerate: a declared schema (schema.lua) is edited step by step; each step's
-- `revision --autogenerate` must write a migration that upgrades a database holding rows to
-- exactly the declared schema (`check` then reports nothing) and downgrades back to exactly
-- the schema before (compared as a pg_dump). Each step names the operations it must produce.
local pg = require "helpers.pg"
local cli = require "helpers.cli"
local fixture = require "helpers.fixture"

-- The schema's lines of a pg_dump, sorted (a column dropped and added back moves to the end
-- of its table; that is the same schema).
local schema_lines = require("helpers.autogen").schema_lines

local HEAD = [[
local md = sa.MetaData()
]]

-- Tables every step declares alike: every other sa type lives in ops.audit (with the
-- identity's kind as the one thing a step changes), and likes joins users and posts.
local function AUDIT(always)
  return ([[
sa.Table("audit", md,
  sa.Column("id", sa.Integer, %s, { primary_key = true }),
  sa.Column("what", sa.Text, { nullable = false }),
  sa.Column("small", sa.SmallInteger), sa.Column("ratio", sa.Float), sa.Column("blob", sa.LargeBinary),
  sa.Column("doc", sa.JSON), sa.Column("span", sa.Interval), sa.Column("at", sa.Time),
  sa.Column("at_tz", sa.Time { timezone = true }), sa.Column("label", sa.String), sa.Column("amount", sa.Numeric),
  sa.Column("stamp", sa.DateTime), sa.Column("audience", role, { server_default = "ADMIN" }),
  { schema = "ops" })
return md
]]):format(always and "sa.Identity { always = true }" or "sa.Identity()")
end

local LIKES = [[
sa.Table("likes", md,
  sa.Column("user_id", sa.Integer, sa.ForeignKey("users.id"), { primary_key = true }),
  sa.Column("post_id", sa.BigInteger, sa.ForeignKey("posts.id"), { primary_key = true }))
]]

-- Each step: the declaration (Lua, after HEAD; must return md), the op names the generated
-- upgrade() must contain, and SQL that puts rows in before the upgrade.
local steps = {
  { "a first schema: enums, tables, keys, foreign keys, checks, indexes, comments, schemas", [[
local role = sa.Enum("ADMIN", "USER", "GUEST", { name = "role_enum" })
sa.Table("users", md,
  sa.Column("id", sa.Integer, { primary_key = true }),
  sa.Column("email", sa.String(255), { nullable = false, unique = true }),
  sa.Column("role", role, { nullable = false, server_default = "USER" }),
  sa.Column("created_at", sa.DateTime { timezone = true }, { server_default = sa.text("now()") }),
  sa.Column("tags", sa.ARRAY(sa.Text)),
  sa.Column("score", sa.Numeric(10, 2), { comment = "points" }),
  sa.Column("profile", sa.JSONB),
  sa.Column("uid", sa.UUID),
  sa.Column("born", sa.Date),
  sa.Column("active", sa.Boolean, { nullable = false, server_default = sa.text("true") }),
  sa.Index("ix_users_lower_email", sa.text("lower(email)")),
  sa.Index("ix_users_active_role", "role", { postgresql_where = sa.text("active") }),
  { comment = "people" })
sa.Table("posts", md,
  sa.Column("id", sa.BigInteger, { primary_key = true }),
  sa.Column("user_id", sa.Integer, sa.ForeignKey("users.id", { ondelete = "CASCADE" }), { nullable = false }),
  sa.Column("body", sa.Text),
  sa.Column("price", sa.Numeric(10, 2)),
  sa.CheckConstraint("price >= 0", { name = "posts_price_positive" }),
  sa.Index("ix_posts_user", "user_id", "id", { unique = true }))
]] .. AUDIT(true), { "op.create_enum", "op.create_table", "op.create_index" } },

  { "an added nullable column and a new table referencing an old one", [[
local role = sa.Enum("ADMIN", "USER", "GUEST", { name = "role_enum" })
sa.Table("users", md,
  sa.Column("id", sa.Integer, { primary_key = true }),
  sa.Column("email", sa.String(255), { nullable = false, unique = true }),
  sa.Column("role", role, { nullable = false, server_default = "USER" }),
  sa.Column("created_at", sa.DateTime { timezone = true }, { server_default = sa.text("now()") }),
  sa.Column("tags", sa.ARRAY(sa.Text)),
  sa.Column("score", sa.Numeric(10, 2), { comment = "points" }),
  sa.Column("profile", sa.JSONB),
  sa.Column("uid", sa.UUID),
  sa.Column("born", sa.Date),
  sa.Column("active", sa.Boolean, { nullable = false, server_default = sa.text("true") }),
  sa.Column("nickname", sa.String(50)),
  sa.Index("ix_users_lower_email", sa.text("lower(email)")),
  sa.Index("ix_users_active_role", "role", { postgresql_where = sa.text("active") }),
  { comment = "people" })
sa.Table("posts", md,
  sa.Column("id", sa.BigInteger, { primary_key = true }),
  sa.Column("user_id", sa.Integer, sa.ForeignKey("users.id", { ondelete = "CASCADE" }), { nullable = false }),
  sa.Column("body", sa.Text),
  sa.Column("price", sa.Numeric(10, 2)),
  sa.CheckConstraint("price >= 0", { name = "posts_price_positive" }),
  sa.Index("ix_posts_user", "user_id", "id", { unique = true }))
]] .. LIKES .. AUDIT(true), { "op.add_column", "op.create_table" },
    "INSERT INTO users (email) SELECT 'u' || g || '@x' FROM generate_series(1, 50) g; "
    .. "INSERT INTO posts (user_id, body, price) SELECT id, 'hello', 1.5 FROM users" },

  { "type, nullability, default and comment changes; a dropped column; table comment", [[
local role = sa.Enum("ADMIN", "USER", "GUEST", { name = "role_enum" })
sa.Table("users", md,
  sa.Column("id", sa.Integer, { primary_key = true }),
  sa.Column("email", sa.String(320), { nullable = false, unique = true }),
  sa.Column("role", role, { nullable = false, server_default = "GUEST" }),
  sa.Column("created_at", sa.DateTime { timezone = true }, { nullable = false, server_default = sa.text("now()") }),
  sa.Column("tags", sa.ARRAY(sa.Text)),
  sa.Column("score", sa.Numeric(12, 2), { comment = "points earned" }),
  sa.Column("profile", sa.JSONB),
  sa.Column("uid", sa.UUID),
  sa.Column("active", sa.Boolean, { nullable = false }),
  sa.Column("nickname", sa.String(50)),
  sa.Index("ix_users_lower_email", sa.text("lower(email)")),
  sa.Index("ix_users_active_role", "role", { postgresql_where = sa.text("active") }),
  { comment = "the people" })
sa.Table("posts", md,
  sa.Column("id", sa.BigInteger, { primary_key = true }),
  sa.Column("user_id", sa.Integer, sa.ForeignKey("users.id", { ondelete = "CASCADE" }), { nullable = false }),
  sa.Column("body", sa.Text),
  sa.Column("price", sa.Numeric(10, 2)),
  sa.CheckConstraint("price >= 0", { name = "posts_price_positive" }),
  sa.Index("ix_posts_user", "user_id", "id", { unique = true }))
]] .. LIKES .. AUDIT(false), { "op.alter_column", "op.drop_column", "op.create_table_comment" },
    "UPDATE users SET born = '2000-01-01', nickname = 'n' || id" },

  { "constraints and indexes: dropped, added and changed", [[
local role = sa.Enum("ADMIN", "USER", "GUEST", { name = "role_enum" })
sa.Table("users", md,
  sa.Column("id", sa.Integer, { primary_key = true }),
  sa.Column("email", sa.String(320), { nullable = false }),
  sa.Column("role", role, { nullable = false, server_default = "GUEST" }),
  sa.Column("created_at", sa.DateTime { timezone = true }, { nullable = false, server_default = sa.text("now()") }),
  sa.Column("tags", sa.ARRAY(sa.Text)),
  sa.Column("score", sa.Numeric(12, 2), { comment = "points earned" }),
  sa.Column("profile", sa.JSONB),
  sa.Column("uid", sa.UUID),
  sa.Column("active", sa.Boolean, { nullable = false }),
  sa.Column("nickname", sa.String(50)),
  sa.UniqueConstraint("nickname", { name = "users_nickname_uq" }),
  sa.Index("ix_users_lower_email", sa.text("lower(email)"), { unique = true }),
  sa.Index("ix_users_tags", "tags", { postgresql_using = "gin" }),
  { comment = "the people" })
sa.Table("posts", md,
  sa.Column("id", sa.BigInteger, { primary_key = true }),
  sa.Column("user_id", sa.Integer, sa.ForeignKey("users.id", { ondelete = "RESTRICT" }), { nullable = false }),
  sa.Column("body", sa.Text),
  sa.Column("price", sa.Numeric(10, 2)),
  sa.CheckConstraint("price < 1000000", { name = "posts_price_sane" }),
  sa.Index("ix_posts_user", "user_id", { postgresql_include = { "price" } }))
]] .. LIKES .. AUDIT(true), { "op.drop_constraint", "op.create_unique_constraint", "op.create_foreign_key",
      "op.create_check_constraint", "op.drop_index", "op.create_index" } },

  { "an enum value added (no rewrite)", nil, { "op.add_enum_value" } },
  { "an enum value removed and the rest reordered, in two tables, with column defaults in use", nil,
    { "RENAME TO", "op.create_enum", "postgresql_using", "op.drop_enum" } },
  { "a table dropped and an enum no longer used", nil, { "op.drop_table" } },
}

-- steps 5..7 edit step 4's text
steps[5][2] = steps[4][2]:gsub('"ADMIN", "USER", "GUEST"', '"ADMIN", "EMPLOYEE", "USER", "GUEST", "BOT"')
steps[6][2] = steps[4][2]:gsub('"ADMIN", "USER", "GUEST"', '"GUEST", "EMPLOYEE", "USER", "ADMIN"')
  :gsub('server_default = "GUEST"', 'server_default = "EMPLOYEE"')
steps[7][2] = steps[6][2]:gsub('sa%.Table%("likes".-%)%)\n', "")

describe("revision --autogenerate", function()
  local fx = fixture.new { scope = "all" }
  local dir, url

  setup(function()
    dir, url = fx:open { prefix = "autogen" }
    pg.psql(url, "CREATE SCHEMA ops")
    -- the version tables exist from the start, so dumps before and after compare schemas only
    assert.equal(0, cli.run({ "--url", url, "stamp", "base" }, { cwd = dir }).code)
  end)

  local run = fx.run

  it("says so and writes nothing when nothing differs", function()
    cli.write(dir .. "/migrations/schema.lua", HEAD .. "return md\n")
    local r = run("revision", "--autogenerate", "-m", "nothing")
    assert.equal(0, r.code, r.err)
    assert.truthy(r.out:find("No changes in schema detected; no revision written.", 1, true), r.out)
    local p = io.popen("ls " .. pg.shell_quote(dir .. "/migrations/versions"))
    assert.equal("", p:read("a"))
    p:close()
    assert.equal(0, run("check").code)
  end)

  for i, s in ipairs(steps) do
    it(("step %d: %s"):format(i, s[1]), function()
      cli.write(dir .. "/migrations/schema.lua", HEAD .. s[2])
      local r = run("check")
      assert.equal(1, r.code, r.out .. r.err)
      assert.truthy(r.out:find("New upgrade operations detected:", 1, true), r.out)
      r = run("revision", "--autogenerate", "-m", "step " .. i)
      assert.equal(0, r.code, r.err)
      local path = r.out:match("Generating (%S+) %.%.%. done")
      assert.truthy(path, r.out)
      local f = assert(io.open(dir .. "/" .. path))
      local text = f:read("a")
      f:close()
      local up = text:match("function upgrade%(%)(.-)\nend")
      for _, needle in ipairs(s[3]) do
        assert.truthy(up:find(needle, 1, true), ("expected %s in upgrade():\n%s"):format(needle, text))
      end
      if s[4] then pg.psql(url, s[4]) end
      local before = schema_lines(url)
      r = run("upgrade", "head")
      assert.equal(0, r.code, r.err .. "\n" .. text)
      r = run("check")
      assert.equal(0, r.code, r.out .. r.err .. "\n" .. text)
      assert.truthy(r.out:find("No new upgrade operations detected.", 1, true))
      -- and back: the schema before, exactly; then forward again for the next step
      r = run("downgrade", "-1")
      assert.equal(0, r.code, r.err .. "\n" .. text)
      assert.equal(before, schema_lines(url))
      assert.equal(0, run("upgrade", "head").code)
    end)
  end

  it("refuses when the database is not at the heads", function()
    assert.equal(0, run("downgrade", "-1").code)
    local r = run("revision", "--autogenerate", "-m", "late")
    assert.equal(1, r.code)
    assert.truthy(r.err:find("Target database is not up to date.", 1, true), r.err)
    r = run("check")
    assert.equal(1, r.code)
    assert.truthy(r.err:find("Target database is not up to date.", 1, true), r.err)
    assert.equal(0, run("upgrade", "head").code)
  end)

  it("downgrades the whole history back to an empty database", function()
    assert.equal(0, run("downgrade", "base").code)
    assert.equal("0", pg.psql(url, "SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
      .. "WHERE n.nspname IN ('public', 'ops') AND c.relkind IN ('r', 'S', 'i') AND c.relname NOT LIKE 'luamigrate%'"))
    assert.equal("0", pg.psql(url, "SELECT count(*) FROM pg_type WHERE typname = 'role_enum'"))
  end)
end)

describe("autogenerate settings", function()
  local fx = fixture.new()
  local dir, url

  before_each(function()
    url = fx:new_db("autogen")
    dir = fx:project {
      config = table.concat({
        'script_location = "migrations"',
        'include_object = function(name, kind) return not (kind == "table" and name:match("^legacy_")) end',
        'process_revision_directives = function(ops)',
        '  local kept = {}',
        '  for _, o in ipairs(ops) do if o.op ~= "drop_column" then kept[#kept + 1] = o end end',
        '  return kept',
        'end',
      }, "\n") .. "\n",
    }
    assert.equal(0, cli.run({ "--url", url, "stamp", "base" }, { cwd = dir }).code)
  end)

  local run = fx.run

  it("names constraints by the naming convention, skips what include_object refuses, and lets process_revision_directives edit", function()
    pg.psql(url, "CREATE TABLE legacy_orders (id int); CREATE TABLE keep (id int PRIMARY KEY, old int)")
    cli.write(dir .. "/migrations/schema.lua", [[
local md = sa.MetaData { naming_convention = {
  pk = "pk_%(table_name)s", uq = "uq_%(table_name)s_%(column_0_N_name)s",
  fk = "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s", ix = "ix_%(column_0_label)s" } }
sa.Table("keep", md, sa.Column("id", sa.Integer, { primary_key = true, autoincrement = false }))
sa.Table("accounts", md,
  sa.Column("id", sa.Integer, { primary_key = true }),
  sa.Column("a", sa.Text), sa.Column("b", sa.Text),
  sa.Column("keep_id", sa.Integer, sa.ForeignKey("keep.id"), { index = true }),
  sa.UniqueConstraint("a", "b"))
return md
]])
    local r = run("revision", "--autogenerate", "-m", "conventions")
    assert.equal(0, r.code, r.err)
    assert.is_nil(r.out:find("legacy_orders", 1, true), r.out)
    assert.is_nil(r.out:find("removed column", 1, true), r.out)
    assert.equal(0, run("upgrade", "head").code)
    assert.equal("fk_accounts_keep_id_keep,pk_accounts,uq_accounts_a_b", pg.psql(url,
      "SELECT string_agg(conname, ',' ORDER BY conname) FROM pg_constraint WHERE conrelid = 'accounts'::regclass"))
    assert.equal("t", pg.psql(url, "SELECT to_regclass('ix_accounts_keep_id') IS NOT NULL"))
    assert.equal("t", pg.psql(url, "SELECT to_regclass('legacy_orders') IS NOT NULL"))
    -- keep.old is still there: the hook removed its drop, for check too (as Alembic's does)
    assert.equal("t", pg.psql(url, "SELECT count(*) = 1 FROM information_schema.columns WHERE table_name = 'keep' AND column_name = 'old'"))
    r = run("check")
    assert.equal(0, r.code, r.out)
  end)

  it("creates tables that reference each other, adding the foreign key that closes the cycle afterwards", function()
    cli.write(dir .. "/migrations/schema.lua", [[
local md = sa.MetaData()
sa.Table("a", md, sa.Column("id", sa.Integer, { primary_key = true }), sa.Column("b_id", sa.Integer, sa.ForeignKey("b.id")))
sa.Table("b", md, sa.Column("id", sa.Integer, { primary_key = true }), sa.Column("a_id", sa.Integer, sa.ForeignKey("a.id")))
return md
]])
    local r = run("revision", "--autogenerate", "-m", "cycle")
    assert.equal(0, r.code, r.err)
    assert.truthy(r.out:find("added foreign key", 1, true), r.out)
    r = run("upgrade", "head")
    assert.equal(0, r.code, r.err)
    assert.equal("a_b_id_fkey,b_a_id_fkey", pg.psql(url,
      "SELECT string_agg(conname, ',' ORDER BY conname) FROM pg_constraint WHERE contype = 'f'"))
    assert.equal(0, run("check").code)
    assert.equal(0, run("downgrade", "base").code)
    assert.equal("", pg.psql(url, "SELECT coalesce(string_agg(relname, ','), '') FROM pg_class WHERE relname IN ('a', 'b')"))
  end)

  it("finds a key declared by sa.PrimaryKeyConstraint, and a long convention name, the same as the migration made them", function()
    -- the database as an Alembic history builds it: the autogenerate form, a SERIAL key,
    -- and a convention name over 63 characters shortened as SQLAlchemy shortens it
    pg.psql(url, "CREATE TABLE widgets (id SERIAL NOT NULL, name text, CONSTRAINT pk_widgets PRIMARY KEY (id),"
      .. " CONSTRAINT uq_widgets_name_that_is_long_enough_to_need_shortening__e9f8 UNIQUE (name))")
    cli.write(dir .. "/migrations/schema.lua", [[
local md = sa.MetaData { naming_convention = { pk = "pk_%(table_name)s",
  uq = "uq_%(table_name)s_%(column_0_name)s_that_is_long_enough_to_need_shortening_by_sqlalchemy" } }
sa.Table("widgets", md,
  sa.Column("id", sa.Integer, { nullable = false }),
  sa.Column("name", sa.Text),
  sa.PrimaryKeyConstraint("id"),
  sa.UniqueConstraint("name"))
return md
]])
    local r = run("check")
    assert.equal(0, r.code, r.out .. r.err)
  end)

  it("finds the sa and postgresql types a migration created the same as schema.lua declares them", function()
    local cols = [[
  sa.Column("id", sa.Integer, { nullable = false }),
  sa.Column("a", sa.CHAR(3)), sa.Column("b", sa.NCHAR(2)), sa.Column("c", sa.DECIMAL(10, 2)),
  sa.Column("d", sa.FLOAT(10)), sa.Column("e", sa.FLOAT(40)), sa.Column("f", sa.REAL),
  sa.Column("g", postgresql.INTERVAL { fields = "DAY TO SECOND", precision = 3 }),
  sa.Column("h", sa.String(10, "C")), sa.Column("i", postgresql.TIMESTAMP(true, 3)),
  sa.Column("j", postgresql.BIT(3)), sa.Column("k", postgresql.TSVECTOR), sa.Column("l", postgresql.INET),
  sa.Column("m", sa.ARRAY(sa.Integer, { dimensions = 2 })), sa.Column("n", postgresql.JSONB { astext_type = sa.Text() }),
  sa.Column("o", sa.Uuid), sa.Column("p", sa.TIMESTAMP(true)), sa.Column("q", postgresql.MONEY),
  sa.Column("r", sa.Interval { second_precision = 2 }), sa.Column("s", postgresql.TIME(false, 2)),
  sa.Column("t", sa.Double), sa.Column("u", sa.SMALLINT), sa.Column("v", postgresql.DOUBLE_PRECISION),
  sa.Column("w", sa.Float(5)), sa.Column("x", postgresql.CIDR), sa.Column("y", postgresql.INT4RANGE),
  sa.Column("z", sa.Enum({ "p", "q" }, { name = "pq" })),
  sa.PrimaryKeyConstraint("id")]]
    cli.write(dir .. "/migrations/versions/ty01_types.lua", cli.revision("ty01", nil,
      '  op.create_table("ty",\n' .. cols .. ")\n", ""))
    cli.write(dir .. "/migrations/schema.lua", 'local md = sa.MetaData()\nsa.Table("ty", md,\n' .. cols
      .. ")\nreturn md\n")
    local r = run("upgrade", "head")
    assert.equal(0, r.code, r.err)
    r = run("check")
    assert.equal(0, r.code, r.out .. r.err)
  end)

  it("says where the declared schema should be when there is none", function()
    local r = run("check")
    assert.equal(2, r.code, r.out .. r.err)
    assert.truthy(r.err:find("migrations/schema.lua: no declared schema there", 1, true), r.err)
  end)

  it("refuses a project template without ${upgrades}, naming the placeholder, and writes nothing", function()
    cli.write(dir .. "/migrations/script.lua.tmpl", "revision = ${revision_lua}\ndown_revision = ${down_revision_lua}\n"
      .. "function upgrade()\nend\nfunction downgrade()\nend\n")
    cli.write(dir .. "/migrations/schema.lua", "local md = sa.MetaData()\n"
      .. "sa.Table('t', md, sa.Column('id', sa.Integer, { primary_key = true }))\nreturn md\n")
    local r = run("revision", "--autogenerate", "-m", "t")
    assert.equal(2, r.code, r.out .. r.err)
    assert.truthy(r.err:find("script.lua.tmpl has no ${upgrades} placeholder", 1, true), r.err)
    local p = io.popen("ls " .. pg.shell_quote(dir .. "/migrations/versions"))
    assert.equal("", p:read("a"))
    p:close()
  end)

  it("compares only the schemas in include_schemas, and include_name can leave names out", function()
    pg.psql(url, "CREATE SCHEMA other; CREATE TABLE other.stray (id int); CREATE TABLE skip_me (id int)")
    cli.write(dir .. "/luamigrate.lua", 'script_location = "migrations"\ninclude_schemas = { "public" }\n'
      .. 'include_name = function(name, kind) return name ~= "skip_me" end\n')
    cli.write(dir .. "/migrations/schema.lua", "return sa.MetaData()\n")
    local r = run("check")
    assert.equal(0, r.code, r.out .. r.err)
    cli.write(dir .. "/luamigrate.lua", 'script_location = "migrations"\ninclude_schemas = { "public", "other" }\n')
    r = run("check")
    assert.equal(1, r.code, r.out)
    assert.truthy(r.out:find("removed table other.stray", 1, true), r.out)
    assert.truthy(r.out:find("removed table public.skip_me", 1, true), r.out)
  end)
end)
