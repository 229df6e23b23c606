-- Autogenerate for replaceable entities: views (and a view on a view), materialized views,
-- functions, procedures and triggers registered in schema.lua (md:register) are created,
-- changed and dropped step by step; each step's migration runs over rows, `check` is clean
-- after it, and its downgrade restores exactly the schema before (compared as a pg_dump).
local pg = require "helpers.pg"
local cli = require "helpers.cli"
local fixture = require "helpers.fixture"

local schema_lines = require("helpers.autogen").schema_lines

local TABLES = [[
local md = sa.MetaData()
sa.Table("accounts", md,
  sa.Column("id", sa.Integer, { primary_key = true }),
  sa.Column("email", sa.Text, { nullable = false }),
  sa.Column("active", sa.Boolean, { nullable = false, server_default = sa.text("true") }),
  sa.Column("updated_at", sa.DateTime { timezone = true }))
]]

-- Each step: the entities (Lua after TABLES, ending with return md), the op calls the
-- upgrade must hold, and SQL run before the upgrade.
local steps = {
  { "views, a view on a view, a materialized view, a function, a procedure and a trigger created", [[
md:register(
  sa.Function("lower_email()", [==[RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN NEW.email := lower(NEW.email); NEW.updated_at := now(); RETURN NEW; END $$]==]),
  sa.Procedure("deactivate(who integer)", "LANGUAGE sql AS $$ UPDATE accounts SET active = false WHERE id = who $$"),
  sa.View("active_accounts", "select id, email from accounts where active"),
  sa.View("active_emails", "SELECT email FROM active_accounts"),
  sa.MaterializedView("account_counts", "SELECT active, count(*) AS n FROM accounts GROUP BY active"),
  sa.Trigger("accounts_lower_email", "accounts",
    "BEFORE INSERT ON accounts FOR EACH ROW EXECUTE FUNCTION lower_email()"))
return md
]], { "op.create_table", "op.create_entity(sa.View", "op.create_entity(sa.Function",
      "op.create_entity(sa.Trigger", "op.create_entity(sa.MaterializedView" } },

  { "definitions changed: replaced in place, or dropped and created when PostgreSQL cannot replace", [[
md:register(
  sa.Function("lower_email()", [==[RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN NEW.email := lower(trim(NEW.email)); NEW.updated_at := now(); RETURN NEW; END $$]==]),
  sa.Procedure("deactivate(who integer)", "LANGUAGE sql AS $$ UPDATE accounts SET active = false WHERE id = who $$"),
  sa.View("active_accounts", "SELECT id, email, updated_at FROM accounts WHERE active"),
  sa.View("active_emails", "SELECT email FROM active_accounts"),
  sa.MaterializedView("account_counts", "SELECT active, count(*) AS n, max(id) AS last FROM accounts GROUP BY active"),
  sa.Trigger("accounts_lower_email", "accounts",
    "BEFORE INSERT OR UPDATE OF email ON accounts FOR EACH ROW EXECUTE FUNCTION lower_email()"))
return md
]], { "op.replace_entity(sa.Function", "op.replace_entity(sa.View", "op.replace_entity(sa.Trigger",
      "op.replace_entity(sa.MaterializedView" },
    "INSERT INTO accounts (email) SELECT 'User' || g || '@X' FROM generate_series(1, 20) g; "
    .. "UPDATE accounts SET active = false WHERE id % 4 = 0" },

  { "a view whose columns change (dropped and created) and a view on it removed", [[
md:register(
  sa.Function("lower_email()", [==[RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN NEW.email := lower(trim(NEW.email)); NEW.updated_at := now(); RETURN NEW; END $$]==]),
  sa.Procedure("deactivate(who integer)", "LANGUAGE sql AS $$ UPDATE accounts SET active = false WHERE id = who $$"),
  sa.View("active_accounts", "SELECT id FROM accounts WHERE active"),
  sa.MaterializedView("account_counts", "SELECT active, count(*) AS n, max(id) AS last FROM accounts GROUP BY active"),
  sa.Trigger("accounts_lower_email", "accounts",
    "BEFORE INSERT OR UPDATE OF email ON accounts FOR EACH ROW EXECUTE FUNCTION lower_email()"))
return md
]], { "op.drop_entity(sa.View(\"active_emails\"", "op.drop_entity(sa.View(\"active_accounts\"",
      "op.create_entity(sa.View(\"active_accounts\"" } },

  { "the trigger, its function and the procedure removed", [[
md:register(
  sa.View("active_accounts", "SELECT id FROM accounts WHERE active"),
  sa.MaterializedView("account_counts", "SELECT active, count(*) AS n, max(id) AS last FROM accounts GROUP BY active"))
return md
]], { "op.drop_entity(sa.Trigger", "op.drop_entity(sa.Function", "op.drop_entity(sa.Procedure" } },
}

describe("revision --autogenerate with entities", function()
  local fx = fixture.new { scope = "all" }
  local dir, url

  setup(function()
    dir, url = fx:open { prefix = "entities" }
    assert.equal(0, cli.run({ "--url", url, "stamp", "base" }, { cwd = dir }).code)
  end)

  local run = fx.run

  for i, s in ipairs(steps) do
    it(("step %d: %s"):format(i, s[1]), function()
      cli.write(dir .. "/migrations/schema.lua", TABLES .. s[2])
      local r = run("check")
      assert.equal(1, r.code, r.out .. r.err)
      r = run("revision", "--autogenerate", "-m", "step " .. i)
      assert.equal(0, r.code, r.err)
      local text = cli.slurp(dir .. "/" .. r.out:match("Generating (%S+) %.%.%. done"))
      local up = text:match("function upgrade%(%)(.-)\nend")
      for _, needle in ipairs(s[3]) do
        assert.truthy(up:find(needle, 1, true), ("expected %s in upgrade():\n%s"):format(needle, text))
      end
      if s[4] then pg.psql(url, s[4]) end
      local function rows()
        return i > 1 and pg.psql(url, "SELECT string_agg(id || email || active, ',' ORDER BY id) FROM accounts")
      end
      local before, data = schema_lines(url), rows()
      r = run("upgrade", "head")
      assert.equal(0, r.code, r.err .. "\n" .. text)
      assert.equal(data, rows())
      r = run("check")
      assert.equal(0, r.code, r.out .. r.err .. "\n" .. text)
      if i == 2 then
        -- the entities work: the replaced trigger fires on update, the views read, the
        -- procedure runs (in a transaction rolled back, so the dumps still compare)
        assert.equal("mixed@case.org|0|14", pg.psql(url, "BEGIN; UPDATE accounts SET email = '  Mixed@Case.ORG ' "
          .. "WHERE id = 1; CALL deactivate(2); REFRESH MATERIALIZED VIEW account_counts; "
          .. "SELECT (SELECT email FROM accounts WHERE id = 1), (SELECT count(*) FROM accounts WHERE id = 2 AND active), "
          .. "(SELECT count(*) FROM active_emails); ROLLBACK"))
      end
      r = run("downgrade", "-1")
      assert.equal(0, r.code, r.err .. "\n" .. text)
      assert.equal(before, schema_lines(url))
      assert.equal(0, run("upgrade", "head").code)
    end)
  end

  it("reports an undeclared function once entities are registered, and leaves it alone when none are", function()
    pg.psql(url, "CREATE FUNCTION unmanaged() RETURNS int LANGUAGE sql AS 'SELECT 1'")
    local r = run("check")
    assert.equal(1, r.code, r.out .. r.err)
    assert.truthy(r.out:find("removed function public.unmanaged()", 1, true), r.out)
    cli.write(dir .. "/migrations/schema.lua", TABLES .. "return md\n")
    r = run("check")
    assert.truthy(not r.out:find("unmanaged", 1, true), r.out)
    pg.psql(url, "DROP FUNCTION unmanaged()")
  end)

  it("downgrades the whole history back to an empty schema", function()
    assert.equal(0, run("downgrade", "base").code)
    assert.equal("0", pg.psql(url, "SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
      .. "WHERE n.nspname = 'public' AND c.relkind IN ('r', 'v', 'm') AND c.relname NOT LIKE 'luamigrate%'"))
  end)
end)

-- Policies with row-level security, an extension, a sequence, grants, a materialized
-- view's indexes and a partition of a partitioned table: created, changed (the partition
-- holding rows, detached and attached with its new bound), dropped. Grants are outside pg_dump -s --no-privileges,
-- so they are checked by what the role may do.
local ROLE = "lm_entities_reader"

local steps2 = {
  { "created", [[
sa.Table("events", md, sa.Column("day", sa.Date, { nullable = false }), sa.Column("what", sa.Text),
  { postgresql_partition_by = "RANGE (day)" })
md:register(
  sa.Partition("events_2025", "events", "FOR VALUES FROM ('2025-01-01') TO ('2026-01-01')"),
  sa.Extension("pg_trgm"),
  sa.Sequence("invoice_numbers", { start = 1000, increment = 10 }),
  sa.RowLevelSecurity("accounts"),
  sa.Policy("active_rows", "accounts", "FOR SELECT TO PUBLIC USING (active)"),
  sa.Grant("accounts", { "SELECT" }, "]] .. ROLE .. [["),
  sa.MaterializedView("account_counts", "SELECT active, count(*) AS n FROM accounts GROUP BY active",
    { indexes = { sa.Index("ix_account_counts_active", "active", { unique = true }) } }))
return md
]], { "op.create_entity(sa.Extension", "op.create_entity(sa.Sequence", "op.create_entity(sa.RowLevelSecurity",
      "op.create_entity(sa.Policy", "op.create_entity(sa.Grant", "CREATE UNIQUE INDEX ix_account_counts_active",
      "op.create_entity(sa.Partition", 'postgresql_partition_by = "RANGE (day)"' },
    "SELECT" },
  { "changed", [[
sa.Table("events", md, sa.Column("day", sa.Date, { nullable = false }), sa.Column("what", sa.Text),
  { postgresql_partition_by = "RANGE (day)" })
md:register(
  sa.Partition("events_2025", "events", "FOR VALUES FROM ('2025-01-01') TO ('2027-01-01')"),
  sa.Extension("pg_trgm"),
  sa.Sequence("invoice_numbers", { start = 1000, increment = 5 }),
  sa.RowLevelSecurity("accounts", { force = true }),
  sa.Policy("active_rows", "accounts", "FOR SELECT TO PUBLIC USING (active AND id > 0)"),
  sa.Grant("accounts", { "SELECT", "INSERT" }, "]] .. ROLE .. [["),
  sa.MaterializedView("account_counts", "SELECT active, count(*) AS n FROM accounts GROUP BY active",
    { indexes = { sa.Index("ix_account_counts_active", "active", { unique = true }),
      sa.Index("ix_account_counts_n", "n") } }))
return md
]], { "op.replace_entity(sa.Sequence", "op.replace_entity(sa.RowLevelSecurity", "op.replace_entity(sa.Policy",
      "op.replace_entity(sa.Grant", "op.replace_entity(sa.MaterializedView", "op.replace_entity(sa.Partition" },
    "INSERT, SELECT", "INSERT INTO events VALUES ('2025-06-01', 'kept')" },
  { "dropped", [[
sa.Table("events", md, sa.Column("day", sa.Date, { nullable = false }), sa.Column("what", sa.Text),
  { postgresql_partition_by = "RANGE (day)" })
md:register(sa.View("all_accounts", "SELECT id FROM accounts"))
return md
]], { "op.drop_entity(sa.Extension", "op.drop_entity(sa.Sequence", "op.drop_entity(sa.RowLevelSecurity",
      "op.drop_entity(sa.Policy", "op.drop_entity(sa.Grant", "op.drop_entity(sa.MaterializedView",
      "op.drop_entity(sa.Partition" }, "" },
}

describe("revision --autogenerate with policies, extensions, sequences, grants", function()
  local fx = fixture.new { scope = "all" }
  local dir, url

  setup(function()
    dir, url = fx:open { prefix = "entities2" }
    pg.psql(url, ("DO $$ BEGIN CREATE ROLE %s; EXCEPTION WHEN duplicate_object THEN NULL; END $$"):format(ROLE))
    assert.equal(0, cli.run({ "--url", url, "stamp", "base" }, { cwd = dir }).code)
    cli.write(dir .. "/migrations/schema.lua", TABLES .. "return md\n")
    local r = cli.run({ "--url", url, "revision", "--autogenerate", "-m", "tables" }, { cwd = dir })
    assert.equal(0, r.code, r.err)
    assert.equal(0, cli.run({ "--url", url, "upgrade", "head" }, { cwd = dir }).code)
    pg.psql(url, "INSERT INTO accounts (email, active) SELECT 'a' || g, g % 2 = 0 FROM generate_series(1, 10) g")
  end)

  -- after the fixture's teardown has dropped the database that holds the role's grants
  teardown(function()
    pg.psql(pg.conninfo("postgres"), "DROP ROLE IF EXISTS " .. ROLE)
  end)

  local run = fx.run
  local function privileges()
    local got = {}
    for _, p in ipairs { "INSERT", "SELECT" } do
      if pg.psql(url, ("SELECT has_table_privilege('%s', 'accounts', '%s')"):format(ROLE, p)) == "t" then
        got[#got + 1] = p
      end
    end
    return table.concat(got, ", ")
  end

  for i, s in ipairs(steps2) do
    it(("step %d: %s"):format(i, s[1]), function()
      cli.write(dir .. "/migrations/schema.lua", TABLES .. s[2])
      local r = run("check")
      assert.equal(1, r.code, r.out .. r.err)
      r = run("revision", "--autogenerate", "-m", "step " .. i)
      assert.equal(0, r.code, r.err)
      local text = cli.slurp(dir .. "/" .. r.out:match("Generating (%S+) %.%.%. done"))
      local up = text:match("function upgrade%(%)(.-)\nend")
      for _, needle in ipairs(s[3]) do
        assert.truthy(up:find(needle, 1, true), ("expected %s in upgrade():\n%s"):format(needle, text))
      end
      if s[5] then pg.psql(url, s[5]) end
      local before, had = schema_lines(url), privileges()
      r = run("upgrade", "head")
      assert.equal(0, r.code, r.err .. "\n" .. text)
      assert.equal(s[4], privileges())
      if s[5] then assert.equal("kept", pg.psql(url, "SELECT what FROM events_2025")) end
      r = run("check")
      assert.equal(0, r.code, r.out .. r.err .. "\n" .. text)
      r = run("downgrade", "-1")
      assert.equal(0, r.code, r.err .. "\n" .. text)
      assert.equal(before, schema_lines(url))
      assert.equal(had, privileges())
      assert.equal(0, run("upgrade", "head").code)
    end)
  end
end)

-- A view and a function that autogenerate drops and creates again (a view losing a column,
-- a function changing its result type), and a view on that view rebuilt with it, keep what
-- was granted on them and who owns them: the migration reads their ACLs and owner when it
-- is generated and puts them back after the create, both ways.
local READER, OWNER = "lm_rebuild_reader", "lm_rebuild_owner"

describe("revision --autogenerate rebuilding granted views and functions", function()
  local fx = fixture.new { scope = "all" }
  local dir, url

  local function schema(view, returns, counts)
    return TABLES .. ([[
md:register(
  sa.Function("score(a integer)", "RETURNS %s LANGUAGE sql AS $$ SELECT a * 2 $$"),
  sa.View("report", %q),
  sa.View("report_ids", "SELECT id FROM report"),
  sa.MaterializedView("report_counts", %q),
  sa.Grant("report", { "SELECT" }, %q),
  sa.Grant("report_ids", { "SELECT" }, %q),
  sa.Grant("report_counts", { "SELECT" }, %q))
return md
]]):format(returns, view, counts, READER, READER, READER)
  end

  setup(function()
    dir, url = fx:open { prefix = "entities3" }
    for _, role in ipairs { READER, OWNER } do
      pg.psql(url, ("DO $$ BEGIN CREATE ROLE %s; EXCEPTION WHEN duplicate_object THEN NULL; END $$"):format(role))
    end
    assert.equal(0, cli.run({ "--url", url, "stamp", "base" }, { cwd = dir }).code)
    cli.write(dir .. "/migrations/schema.lua", schema("SELECT id, email FROM accounts", "integer", "SELECT count(*) AS n FROM report"))
    local r = cli.run({ "--url", url, "revision", "--autogenerate", "-m", "first" }, { cwd = dir })
    assert.equal(0, r.code, r.err)
    assert.equal(0, cli.run({ "--url", url, "upgrade", "head" }, { cwd = dir }).code)
    pg.psql(url, ("REVOKE EXECUTE ON FUNCTION score(integer) FROM PUBLIC; GRANT EXECUTE ON FUNCTION score(integer) "
      .. "TO %s WITH GRANT OPTION; ALTER FUNCTION score(integer) OWNER TO %s"):format(READER, OWNER))
  end)

  -- after the fixture's teardown has dropped the database that holds the roles' grants
  teardown(function()
    pg.psql(pg.conninfo("postgres"), ("DROP ROLE IF EXISTS %s; DROP ROLE IF EXISTS %s"):format(READER, OWNER))
  end)

  local run = fx.run
  -- what the roles may do, and who owns the function
  local function rights()
    return pg.psql(url, ([[SELECT has_table_privilege('%s', 'report', 'SELECT'), has_table_privilege('%s', 'report_ids',
      'SELECT'), has_table_privilege('%s', 'report_counts', 'SELECT'),
      has_function_privilege('%s', 'score(integer)', 'EXECUTE WITH GRANT OPTION'),
      has_function_privilege('lm_nobody_ag', 'score(integer)', 'EXECUTE'),
      (SELECT pg_get_userbyid(proowner) FROM pg_proc WHERE proname = 'score')]]):format(READER, READER, READER, READER))
  end

  it("keeps a role's SELECT on a rebuilt view (and on the view on it) and EXECUTE on a rebuilt function", function()
    pg.psql(url, "DO $$ BEGIN CREATE ROLE lm_nobody_ag; EXCEPTION WHEN duplicate_object THEN NULL; END $$")
    local granted = "t|t|t|t|f|" .. OWNER
    assert.equal(granted, rights())
    cli.write(dir .. "/migrations/schema.lua", schema("SELECT id FROM accounts WHERE active", "bigint",
      "SELECT count(*) AS n, max(id) AS top FROM report"))
    local r = run("revision", "--autogenerate", "-m", "rebuild")
    assert.equal(0, r.code, r.err)
    local text = cli.slurp(dir .. "/" .. r.out:match("Generating (%S+) %.%.%. done"))
    for _, needle in ipairs { ("GRANT SELECT ON TABLE public.report TO %s"):format(READER),
      ("GRANT SELECT ON TABLE public.report_counts TO %s"):format(READER),
      ("GRANT SELECT ON TABLE public.report_ids TO %s"):format(READER),
      ("ALTER FUNCTION public.score(integer) OWNER TO %s"):format(OWNER),
      "REVOKE ALL ON FUNCTION public.score(integer) FROM PUBLIC",
      ("GRANT EXECUTE ON FUNCTION public.score(integer) TO %s WITH GRANT OPTION"):format(READER) } do
      assert.truthy(text:find(needle, 1, true), ("expected %s in:\n%s"):format(needle, text))
    end
    -- the materialized view replaced (a drop and a create) gets its grant right after
    local up = text:match("function upgrade%(%)(.-)\nend")
    local replaced = up:match('op%.replace_entity%(sa%.MaterializedView%("report_counts".-\n(  op%.execute[^\n]*)')
    assert.equal(('  op.execute("GRANT SELECT ON TABLE public.report_counts TO %s")'):format(READER), replaced)
    r = run("upgrade", "head")
    assert.equal(0, r.code, r.err .. "\n" .. text)
    assert.equal("bigint", pg.psql(url, "SELECT format_type(prorettype, NULL) FROM pg_proc WHERE proname = 'score'"))
    assert.equal(granted, rights())
    r = run("check")
    assert.equal(0, r.code, r.out .. r.err)
    r = run("downgrade", "-1")
    assert.equal(0, r.code, r.err .. "\n" .. text)
    assert.equal("integer", pg.psql(url, "SELECT format_type(prorettype, NULL) FROM pg_proc WHERE proname = 'score'"))
    assert.equal(granted, rights())
    pg.psql(url, "DROP OWNED BY lm_nobody_ag; DROP ROLE lm_nobody_ag")
  end)
end)
