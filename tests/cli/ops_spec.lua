-- The op API against the real server: a project that uses nearly every op, checked through
-- the catalogs, then the same project through --sql + psql, which must give the same schema,
-- then downgraded to an empty database again (online and offline).
local pg = require "helpers.pg"
local cli = require "helpers.cli"

local HOSTILE_TABLE = 'Order "Items";--'

local M1 = [==[
function upgrade()
  op.execute("CREATE SCHEMA app")
  op.create_enum("status", { "new", "paid", "it's shipped" }, { schema = "app" })
  local mood = sa.Enum("happy", "sad", { name = "mood" })
  mood:create(op.get_bind())
  op.create_table("account",
    sa.Column("id", sa.Integer, { primary_key = true }),
    sa.Column("email", sa.String(255), { nullable = false, unique = true, comment = "login" }),
    sa.Column("name", sa.Text),
    sa.Column("active", sa.Boolean, { server_default = sa.text("true"), nullable = false }),
    sa.Column("born", sa.Date),
    sa.Column("created_at", sa.DateTime({ timezone = true }), { server_default = sa.text("now()") }),
    sa.Column("wake", sa.Time),
    sa.Column("trial", sa.Interval),
    sa.Column("balance", sa.Numeric(12, 2), { server_default = "0" }),
    sa.Column("score", sa.Float),
    sa.Column("avatar", sa.LargeBinary),
    sa.Column("prefs", sa.JSON),
    sa.Column("meta", sa.JSONB),
    sa.Column("token", sa.UUID),
    sa.Column("tags", sa.ARRAY(sa.String(20))),
    sa.Column("small", sa.SmallInteger),
    sa.Column("big", sa.BigInteger, { index = true }),
    sa.Column("mood", sa.Enum("happy", "sad", { name = "mood", create_type = false })),
    sa.CheckConstraint("score >= 0", { name = "ck_account_score" }),
    { comment = "people who log in", schema = "app" })
  op.create_table("order",
    sa.Column("id", sa.BigInteger, sa.Identity({ always = true }), { primary_key = true }),
    sa.Column("account_id", sa.Integer, sa.ForeignKey("app.account.id", { ondelete = "CASCADE" }), { nullable = false }),
    sa.Column("status", sa.Enum("new", "paid", "it's shipped", { name = "status", schema = "app", create_type = false }),
      { server_default = "new" }),
    sa.Column("during", sa.Text),
    sa.UniqueConstraint("account_id", "during", { name = "uq_order_account_during" }),
    { schema = "app" })
end

function downgrade()
  op.drop_table("order", { schema = "app" })
  op.drop_table("account", { schema = "app" })
  sa.Enum("happy", "sad", { name = "mood" }):drop(op.get_bind())
  op.drop_enum("status", { schema = "app" })
  op.execute("DROP SCHEMA app")
end
]==]

local M2 = [==[
function upgrade()
  op.add_column("account", sa.Column("nickname", sa.String(50), { comment = "shown" }), { schema = "app" })
  op.alter_column("account", "name", { schema = "app", type_ = sa.String(100), existing_type = sa.Text,
    postgresql_using = "left(name, 100)", nullable = false, server_default = "anon",
    new_column_name = "full_name", comment = "display name" })
  op.alter_column("account", "balance", { schema = "app", server_default = false })
  op.create_index("ix_account_lower_email", "account", { sa.text("lower(email)") },
    { schema = "app", unique = true })
  op.create_index("ix_account_active_name", "account", { "full_name" },
    { schema = "app", postgresql_where = sa.text("active"), postgresql_include = { "email" } })
  op.create_index("ix_account_meta", "account", { "meta" }, { schema = "app", postgresql_using = "gin" })
  op.create_index("ix_account_small", "account", { "small" }, { schema = "app", if_not_exists = true })
  op.create_index("ix_account_small", "account", { "small" }, { schema = "app", if_not_exists = true })
  op.create_check_constraint("ck_order_during", "order", "length(during) < 200",
    { schema = "app", postgresql_not_valid = true })
  op.create_table_comment("order", "what people buy", { schema = "app" })
  op.add_enum_value("status", "refunded", { schema = "app", after = "paid" })
  op.add_enum_value("status", "draft", { schema = "app", before = "new" })
  op.add_enum_value("status", "draft", { schema = "app", if_not_exists = true })
  op.rename_enum_value("mood", "sad", "blue")
  op.autocommit_block(function()
    op.create_index("ix_order_status", "order", { "status" },
      { schema = "app", postgresql_concurrently = true })
  end)
end

function downgrade()
  op.drop_index("ix_order_status", { schema = "app" })
  op.rename_enum_value("mood", "blue", "sad")
  op.drop_table_comment("order", { schema = "app" })
  op.drop_constraint("ck_order_during", "order", { schema = "app" })
  op.drop_index("ix_account_small", { schema = "app", if_exists = true })
  op.drop_index("ix_account_meta", { schema = "app" })
  op.drop_index("ix_account_active_name", { schema = "app" })
  op.drop_index("ix_account_lower_email", { schema = "app" })
  op.alter_column("account", "balance", { schema = "app", server_default = "0" })
  op.alter_column("account", "full_name", { schema = "app", type_ = sa.Text, nullable = true,
    server_default = false, new_column_name = "name", comment = false })
  op.drop_column("account", "nickname", { schema = "app" })
end
]==]

-- Hostile names and values, in the public schema; a user op and a helper module.
local M3 = ([==[
local HOSTILE = %q

function upgrade()
  op.register("touch", function(o, tbl) o.execute("COMMENT ON TABLE " .. tbl .. " IS 'touched'") end)
  local t = op.create_table(HOSTILE,
    sa.Column("select", sa.Integer, { primary_key = true }),
    sa.Column("Ünïcode Name", sa.Text, { server_default = "it's \\ fine" }),
    sa.Column("user", sa.String(30)))
  op.bulk_insert(t, {
    { ["select"] = 1, ["Ünïcode Name"] = "O'Brien; DROP TABLE x;--", user = "a\\b" },
    { ["select"] = 2, ["Ünïcode Name"] = "line1\nline2", user = "日本" },
    { ["select"] = 3, user = op.inline_literal("x'y") },
  })
  op.execute(sa.text('INSERT INTO "Order ""Items"";--" ("select", "user") VALUES (:n, :u)'),
    { n = 4, u = "$1 :not_a_bind" })
  op.execute('INSERT INTO "Order ""Items"";--" ("select", "user") VALUES ($1, $2)', { 5, "tab\there" })
  op.create_unique_constraint("uq \"odd\" name", HOSTILE, { "user" })
  op.create_table("Parent",
    sa.Column("K", sa.Integer, { primary_key = true }),
    sa.Column("Period", sa.Text))
  op.create_foreign_key('fk to "Parent"', HOSTILE, "Parent", { "select" }, { "K" },
    { ondelete = "SET NULL", onupdate = "CASCADE", deferrable = true, initially = "DEFERRED",
      postgresql_not_valid = true })
  op.execute("CREATE EXTENSION IF NOT EXISTS btree_gist")
  op.create_exclude_constraint("ex_parent_period", "Parent", { "Period", "=" }, { using = "gist" })
  op.rename_table("Parent", "Parent Table")
  op.touch('"Parent Table"')
  op.create_primary_key("pk_log", "log", "id")
end

function downgrade()
  op.drop_table("Parent Table", { cascade = true })
  op.drop_table(HOSTILE)
end
]==]):format(HOSTILE_TABLE)

local function rev(id, down, body)
  return ("--[[ %s ]]\nrevision = %q\ndown_revision = %s\n\n%s"):format(id, id,
    down and ("%q"):format(down) or "nil", body)
end

local function project()
  -- op.create_primary_key needs a table without one
  local m3 = M3:gsub("  op.create_primary_key", function()
    return '  op.execute("CREATE TABLE log (id int NOT NULL)")\n  op.create_primary_key'
  end):gsub("function downgrade%(%)\n", function() return 'function downgrade()\n  op.drop_table("log")\n' end)
  return cli.project { files = {
    ["migrations/versions/aaaa0001_schema.lua"] = rev("aaaa0001", nil, M1),
    ["migrations/versions/aaaa0002_alter.lua"] = rev("aaaa0002", "aaaa0001", M2),
    ["migrations/versions/aaaa0003_hostile.lua"] = rev("aaaa0003", "aaaa0002", m3),
  } }
end

local function apply_sql(url, sql)
  local file = os.tmpname()
  cli.write(file, sql)
  local errfile = os.tmpname()
  local ok = os.execute((pg.tool .. "psql -XAtq -v ON_ERROR_STOP=1 -d %s -f %s >/dev/null 2>%s")
    :format(pg.shell_quote(url), file, errfile))
  local f = io.open(errfile)
  local err = f:read("a")
  f:close()
  os.remove(file)
  os.remove(errfile)
  return ok, err
end

describe("the op API", function()
  local dir, url, dbname, url2, db2

  setup(function()
    dir = project()
    url, dbname = pg.new_db("ops_online")
    url2, db2 = pg.new_db("ops_offline")
  end)

  teardown(function()
    cli.remove(dir)
    pg.drop_db(dbname)
    pg.drop_db(db2)
  end)

  local function run(...)
    return cli.run({ "--url", url, ... }, { cwd = dir })
  end

  local function one(sql) return pg.psql(url, sql) end

  it("upgrades online and every object is in the catalogs", function()
    local r = run("upgrade", "head")
    assert.equal(0, r.code, r.err)
    -- types and enums
    assert.equal("{draft,new,paid,refunded,\"it's shipped\"}", one("SELECT enum_range(NULL::app.status)::text"))
    assert.equal("{happy,blue}", one("SELECT enum_range(NULL::mood)::text"))
    local cols = one([[SELECT string_agg(column_name || ':' || data_type || ':' || is_nullable, ' ' ORDER BY ordinal_position)
      FROM information_schema.columns WHERE table_schema = 'app' AND table_name = 'account']])
    assert.equal("id:integer:NO email:character varying:NO full_name:character varying:NO "
      .. "active:boolean:NO born:date:YES created_at:timestamp with time zone:YES "
      .. "wake:time without time zone:YES trial:interval:YES balance:numeric:YES "
      .. "score:double precision:YES avatar:bytea:YES prefs:json:YES meta:jsonb:YES "
      .. "token:uuid:YES tags:ARRAY:YES small:smallint:YES big:bigint:YES mood:USER-DEFINED:YES "
      .. "nickname:character varying:YES", cols)
    assert.equal("character varying(100)", one([[SELECT format_type(atttypid, atttypmod) FROM pg_attribute
      WHERE attrelid = 'app.account'::regclass AND attname = 'full_name']]))
    assert.equal("numeric(12,2)", one([[SELECT format_type(atttypid, atttypmod) FROM pg_attribute
      WHERE attrelid = 'app.account'::regclass AND attname = 'balance']]))
    assert.equal("character varying(20)[]", one([[SELECT format_type(atttypid, atttypmod) FROM pg_attribute
      WHERE attrelid = 'app.account'::regclass AND attname = 'tags']]))
    -- defaults: set, dropped, renamed column keeps its new one
    assert.equal("'anon'::character varying", one([[SELECT column_default FROM information_schema.columns
      WHERE table_schema = 'app' AND table_name = 'account' AND column_name = 'full_name']]))
    assert.equal("", one([[SELECT coalesce(column_default, '') FROM information_schema.columns
      WHERE table_schema = 'app' AND table_name = 'account' AND column_name = 'balance']]))
    assert.equal("'new'::app.status", one([[SELECT column_default FROM information_schema.columns
      WHERE table_schema = 'app' AND table_name = 'order' AND column_name = 'status']]))
    assert.equal("ALWAYS", one([[SELECT identity_generation FROM information_schema.columns
      WHERE table_schema = 'app' AND table_name = 'order' AND column_name = 'id']]))
    -- comments
    assert.equal("people who log in|login|display name|shown|what people buy", one([[SELECT
      obj_description('app.account'::regclass) || '|' || col_description('app.account'::regclass, 2)
      || '|' || col_description('app.account'::regclass, 3) || '|'
      || col_description('app.account'::regclass, 19) || '|' || obj_description('app."order"'::regclass)]]))
    -- constraints
    local cons = one([[SELECT string_agg(conname || ':' || contype::text || ':' || convalidated, ' ' ORDER BY conname)
      FROM pg_constraint WHERE conrelid IN ('app.account'::regclass, 'app."order"'::regclass)]])
    assert.equal("account_email_key:u:true account_pkey:p:true ck_account_score:c:true "
      .. "ck_order_during:c:false order_account_id_fkey:f:true order_pkey:p:true "
      .. "uq_order_account_during:u:true", cons)
    assert.equal("FOREIGN KEY (account_id) REFERENCES app.account(id) ON DELETE CASCADE",
      one("SELECT pg_get_constraintdef(oid) FROM pg_constraint WHERE conname = 'order_account_id_fkey'"))
    -- indexes
    local ix = one([[SELECT string_agg(indexdef, E'\n' ORDER BY indexname) FROM pg_indexes
      WHERE schemaname = 'app' AND indexname LIKE 'ix_%']])
    assert.equal(table.concat({
      "CREATE INDEX ix_account_active_name ON app.account USING btree (full_name) INCLUDE (email) WHERE active",
      "CREATE INDEX ix_account_big ON app.account USING btree (big)",
      "CREATE UNIQUE INDEX ix_account_lower_email ON app.account USING btree (lower((email)::text))",
      "CREATE INDEX ix_account_meta ON app.account USING gin (meta)",
      "CREATE INDEX ix_account_small ON app.account USING btree (small)",
      "CREATE INDEX ix_order_status ON app.\"order\" USING btree (status)",
    }, "\n"), ix)
    assert.equal("t", one([[SELECT indisvalid FROM pg_index WHERE indexrelid = 'app.ix_order_status'::regclass]]))
  end)

  it("round-trips hostile identifiers and values", function()
    local t = '"Order ""Items"";--"'
    assert.equal("select|Ünïcode Name|user", one(([[SELECT string_agg(attname, '|' ORDER BY attnum)
      FROM pg_attribute WHERE attrelid = '%s'::regclass AND attnum > 0]]):format(t:gsub("'", "''"))))
    -- a key missing from a bulk_insert row is NULL (Lua tables cannot hold nil)
    local rows = one(("SELECT string_agg(\"select\" || '=' || coalesce(\"Ünïcode Name\", '-') || '=' || coalesce(\"user\", '-'), '#' ORDER BY \"select\") FROM %s"):format(t))
    assert.equal("1=O'Brien; DROP TABLE x;--=a\\b#2=line1\nline2=日本#3=-=x'y#"
      .. "4=it's \\ fine=$1 :not_a_bind#5=it's \\ fine=tab\there", rows)
    assert.equal('uq "odd" name', one(("SELECT conname FROM pg_constraint WHERE conrelid = '%s'::regclass AND contype = 'u'")
      :format(t:gsub("'", "''"))))
    assert.equal('FOREIGN KEY ("select") REFERENCES "Parent Table"("K") ON UPDATE CASCADE ON DELETE SET NULL DEFERRABLE INITIALLY DEFERRED NOT VALID',
      one([[SELECT pg_get_constraintdef(oid) FROM pg_constraint WHERE conname = 'fk to "Parent"']]))
    assert.equal("EXCLUDE USING gist (\"Period\" WITH =)",
      one([[SELECT pg_get_constraintdef(oid) FROM pg_constraint WHERE conname = 'ex_parent_period']]))
    assert.equal("touched", one([[SELECT obj_description('"Parent Table"'::regclass)]]))
    assert.equal("PRIMARY KEY (id)", one([[SELECT pg_get_constraintdef(oid) FROM pg_constraint WHERE conname = 'pk_log']]))
  end)

  it("gives the same schema through --sql and psql", function()
    local r = run("upgrade", "head", "--sql")
    assert.equal(0, r.code, r.err)
    -- (the block's statements run with the migration's lock_timeout, set for the session)
    assert.truthy(r.out:find("COMMIT;\n\nSET lock_timeout = '5s';\n\nCREATE INDEX CONCURRENTLY ix_order_status", 1, true), r.out)
    local ok, err = apply_sql(url2, r.out)
    assert.is_true(ok, err)
    assert.equal(pg.schema_dump(url), pg.schema_dump(url2))
    -- and the same rows, hostile values included
    local t = '"Order ""Items"";--"'
    local q = ("SELECT string_agg(\"select\" || coalesce(\"Ünïcode Name\", '-') || coalesce(\"user\", '-'), '#' ORDER BY \"select\") FROM %s"):format(t)
    assert.equal(pg.psql(url, q), pg.psql(url2, q))
  end)

  it("downgrades to an empty database, online and through --sql", function()
    local r = run("downgrade", "base")
    assert.equal(0, r.code, r.err)
    local leftovers = [[SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE n.nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast')
      AND c.relname NOT LIKE 'luamigrate_version%']]
    assert.equal("0", one(leftovers))
    assert.equal("0", one("SELECT count(*) FROM pg_type WHERE typname IN ('mood', 'status')"))
    assert.equal("0", one("SELECT count(*) FROM pg_namespace WHERE nspname = 'app'"))
    r = run("downgrade", "aaaa0003:base", "--sql")
    assert.equal(0, r.code, r.err)
    local ok, err = apply_sql(url2, r.out)
    assert.is_true(ok, err)
    assert.equal("0", pg.psql(url2, leftovers))
    assert.equal(pg.schema_dump(url), pg.schema_dump(url2))
  end)
end)

describe("op.create_table primary keys", function()
  it("makes only a single-column integer primary key SERIAL, as SQLAlchemy does", function()
    local d = cli.project { files = { ["migrations/versions/pk01_x.lua"] = rev("pk01", nil, [[
function upgrade()
  op.create_table("single", sa.Column("id", sa.Integer, { primary_key = true }))
  op.create_table("pair",
    sa.Column("a", sa.Integer, { primary_key = true }),
    sa.Column("b", sa.BigInteger, { primary_key = true }))
end
function downgrade()
  op.drop_table("pair")
  op.drop_table("single")
end
]]) } }
    local u, db = pg.new_db("ops_pk")
    local r = cli.run({ "--url", u, "upgrade", "head" }, { cwd = d })
    assert.equal(0, r.code, r.err)
    assert.equal("single_id_seq", pg.psql(u, "SELECT string_agg(relname, ',') FROM pg_class WHERE relkind = 'S' AND relname NOT LIKE 'luamigrate%'"))
    assert.equal("a,b", pg.psql(u, [[SELECT string_agg(a.attname, ',' ORDER BY a.attnum) FROM pg_attribute a
      WHERE a.attrelid = 'pair'::regclass AND a.attnum > 0 AND a.attnotnull]]))
    cli.remove(d)
    pg.drop_db(db)
  end)
end)
