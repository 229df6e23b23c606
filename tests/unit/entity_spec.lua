-- Replaceable entities (luamigrate.entity, as sa.View & co.): the statements each kind
-- creates, replaces and drops with, names quoted as everywhere, and bad declarations
-- refused with a message naming the constructor; the dependents query (luamigrate.
-- dependents) for a type and for one object.
local entity = require "luamigrate.entity"
local sa = require "luamigrate.sa"
local dependents = require "luamigrate.dependents"

local function sql(list) return table.concat(list, ";\n") end

describe("entity statements", function()
  it("views replace in place; materialized views (with their indexes) are dropped and created", function()
    local v = sa.View("Active Users", "select 1 as one;  ", { schema = "app" })
    assert.equal('CREATE VIEW app."Active Users" AS select 1 as one', sql(entity.create_sql(v)))
    assert.equal('CREATE OR REPLACE VIEW app."Active Users" AS select 1 as one', sql(entity.replace_sql(v)))
    assert.equal('DROP VIEW IF EXISTS app."Active Users" CASCADE',
      sql(entity.drop_sql(v, { if_exists = true, cascade = true })))
    local m = sa.MaterializedView("counts", "SELECT 1 AS n", { with_data = false,
      indexes = { sa.Index("ix_counts_n", "n", { unique = true }), "CREATE INDEX ix_raw ON counts (n)" } })
    assert.equal("DROP MATERIALIZED VIEW counts;\nCREATE MATERIALIZED VIEW counts AS SELECT 1 AS n WITH NO DATA;\n"
      .. "CREATE UNIQUE INDEX ix_counts_n ON counts (n);\nCREATE INDEX ix_raw ON counts (n)", sql(entity.replace_sql(m)))
  end)

  it("functions, procedures and triggers", function()
    local f = sa.Function("add_one(a integer)", "RETURNS integer LANGUAGE sql AS $$ SELECT a + 1 $$")
    assert.equal("CREATE OR REPLACE FUNCTION add_one(a integer) RETURNS integer LANGUAGE sql AS $$ SELECT a + 1 $$",
      sql(entity.replace_sql(f)))
    assert.equal("DROP PROCEDURE billing.close_month(m date)", sql(entity.drop_sql(
      sa.Procedure("close_month(m date)", "LANGUAGE sql AS $$ SELECT 1 $$", { schema = "billing" }))))
    local t = sa.Trigger("touch", "Order", "BEFORE UPDATE ON \"Order\" FOR EACH ROW EXECUTE FUNCTION touch()")
    assert.equal('CREATE OR REPLACE TRIGGER touch BEFORE UPDATE ON "Order" FOR EACH ROW EXECUTE FUNCTION touch()',
      sql(entity.replace_sql(t)))
    assert.equal('DROP TRIGGER touch ON "Order"', sql(entity.drop_sql(t)))
    assert.equal("trigger touch on Order", entity.describe(t))
  end)

  it("policies, row-level security, extensions, sequences, grants, partitions", function()
    local p = sa.Policy("own", "accounts", "FOR SELECT TO PUBLIC USING (owner = current_user)")
    assert.equal("DROP POLICY own ON accounts;\nCREATE POLICY own ON accounts FOR SELECT TO PUBLIC USING "
      .. "(owner = current_user)", sql(entity.replace_sql(p)))
    local rls = sa.RowLevelSecurity("accounts", { force = true })
    assert.equal("ALTER TABLE accounts ENABLE ROW LEVEL SECURITY;\nALTER TABLE accounts FORCE ROW LEVEL SECURITY",
      sql(entity.create_sql(rls)))
    assert.equal("ALTER TABLE accounts NO FORCE ROW LEVEL SECURITY;\nALTER TABLE accounts DISABLE ROW LEVEL SECURITY",
      sql(entity.drop_sql(rls)))
    assert.equal("CREATE EXTENSION pg_trgm SCHEMA ext", sql(entity.create_sql(sa.Extension("pg_trgm", { schema = "ext" }))))
    local s = sa.Sequence("tickets", { start = 100, increment = -1, cycle = false, as = "integer" })
    assert.equal("CREATE SEQUENCE tickets AS integer INCREMENT BY -1 START WITH 100 NO CYCLE", sql(entity.create_sql(s)))
    assert.equal("ALTER SEQUENCE tickets AS integer INCREMENT BY -1 START WITH 100 NO CYCLE", sql(entity.replace_sql(s)))
    local g = sa.Grant("accounts", { "select", "INSERT" }, "Reporting")
    assert.equal('REVOKE ALL ON TABLE accounts FROM "Reporting";\nGRANT INSERT, SELECT ON TABLE accounts TO "Reporting"',
      sql(entity.replace_sql(g)))
    assert.equal("GRANT SELECT ON TABLE accounts TO PUBLIC", sql(entity.create_sql(sa.Grant("accounts", "SELECT", "public"))))
    local part = sa.Partition("log_2025", "log", "FOR VALUES FROM ('2025-01-01') TO ('2026-01-01')")
    assert.equal("ALTER TABLE log DETACH PARTITION log_2025;\nALTER TABLE log ATTACH PARTITION log_2025 FOR VALUES "
      .. "FROM ('2025-01-01') TO ('2026-01-01')", sql(entity.replace_sql(part)))
  end)

  it("refuses bad declarations, naming the constructor", function()
    assert.has_error(function() sa.View("v", "SELECT 1", { shema = "x" }) end,
      "sa.View: unknown option 'shema'; did you mean 'schema'?")
    assert.has_error(function() sa.View("v", "  ") end, "sa.View: the definition must be a non-empty string")
    assert.has_error(function() sa.Function("f", "RETURNS int AS 'SELECT 1' LANGUAGE sql") end,
      'sa.Function("f"): the signature needs its argument list, e.g. "f(a integer)"')
    assert.has_error(function() sa.Grant("t", {}, "r") end, 'sa.Grant: privileges must be a list such as {"SELECT"}')
    assert.has_error(function() sa.MaterializedView("m", "SELECT 1", { indexes = { 42 } }) end,
      'sa.MaterializedView("m"): index 1 must be a sa.Index or a CREATE INDEX statement')
    local md = sa.MetaData()
    assert.has_error(function() md:register(sa.View("v", "SELECT 1"), "SELECT 2") end,
      "md:register: argument 2 is not an entity (sa.View, sa.Function, sa.Trigger, ...)")
  end)
end)

describe("sa.ExcludeConstraint", function()
  it("takes elements with or without a trailing options table", function()
    local render = require "luamigrate.render"
    local bare = sa.ExcludeConstraint({ "during", "&&" })
    assert.equal("EXCLUDE USING gist (during WITH &&)", render.constraint_def(bare))
    local named = sa.ExcludeConstraint({ "room", "=" }, { sa.text("tstzrange(starts, ends)"), "&&" },
      { name = "no_double_booking", where = sa.text("NOT cancelled") })
    assert.equal("CONSTRAINT no_double_booking EXCLUDE USING gist (room WITH =, tstzrange(starts, ends) WITH &&) "
      .. "WHERE (NOT cancelled)", render.constraint_def(named))
    assert.has_error(function() sa.ExcludeConstraint({ "during" }, { name = "x" }) end,
      "sa.ExcludeConstraint: each element must be {column_or_expression, operator}")
  end)
end)

describe("the dependents query", function()
  it("takes a type, or one object, quoted as literals", function()
    local q = dependents.query("public.post_status")
    assert.truthy(q:find("'public.post_status'::regtype", 1, true))
    assert.truthy(q:find("SELECT NULL::oid, NULL::oid WHERE false", 1, true))
    assert.is_nil(q:find(":type", 1, true))
    local o = dependents.query(nil, "pg_class", 16384)
    assert.truthy(o:find("NULL::regtype", 1, true))
    assert.truthy(o:find("SELECT 'pg_class'::regclass::oid, 16384::oid", 1, true))
  end)

  it("reports and raises from its DO blocks, naming the type", function()
    local s = dependents.set_aside_sql('"Mood"')
    assert.truthy(s:find([[RAISE NOTICE 'enum %: rebuilding %', '"Mood"', rebuild_row.what;]], 1, true), s)
    assert.truthy(s:find("cannot rebuild % around the swap", 1, true))
    assert.truthy(dependents.put_back_sql():find("DROP TABLE luamigrate_enum_rebuild", 1, true))
  end)
end)
