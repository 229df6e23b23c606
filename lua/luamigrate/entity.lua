-- Replaceable entities: the schema objects that are defined by a statement rather than
-- altered piece by piece (views, materialized views, functions, procedures, triggers,
-- row-level security policies, extensions, sequences, grants on tables; and domains,
-- composite and range types, which also alter in place), in the spirit of
-- alembic_utils' PGView, PGFunction, ... . A constructor (exported as sa.View, sa.Function,
-- ...) makes a plain description; op.create_entity / op.replace_entity / op.drop_entity
-- (op.lua's entity section) run the statements rendered here, and autogenerate compares
-- the ones a schema.lua registers (md:register(...)) with the database.
--
-- Definitions are SQL text as PostgreSQL takes it after the object's name: a view's query,
-- a function's "RETURNS ... LANGUAGE ... AS $$...$$", a trigger's "BEFORE UPDATE ON t FOR
-- EACH ROW EXECUTE FUNCTION f()", a policy's "AS PERMISSIVE FOR SELECT TO PUBLIC USING (...)".
local quote = require "luamigrate.quote"
local optcheck = require "luamigrate.options"

local M = {}

local function set(...)
  local s = {}
  for _, k in ipairs { ... } do s[k] = true end
  return s
end

local function options(what, allowed, opts)
  return optcheck.check(what, opts, allowed)
end

local function text_arg(what, name, v)
  if type(v) ~= "string" or v:match("^%s*$") then
    error(("%s: %s must be a non-empty string"):format(what, name), 3)
  end
  return v
end

local function entity(kind, fields)
  fields.entity = kind
  return setmetatable(fields, { __name = "sa." .. kind })
end

-- Whether v is an entity (of `kind`, when given).
function M.is(v, kind)
  return type(v) == "table" and getmetatable(v) ~= nil and type(v.entity) == "string"
    and (kind == nil or v.entity == kind)
end

-- Leading and trailing blanks and a final ';' are not part of a definition.
local function trim(s) return (s:gsub("^%s+", ""):gsub("[%s;]+$", "")) end

-- ---- constructors (sa.*) ------------------------------------------------------------

-- sa.View(name, definition, {schema})
function M.View(name, definition, opts)
  local o = options("sa.View", set("schema"), opts)
  return entity("View", { name = text_arg("sa.View", "the name", name), schema = o.schema,
    definition = trim(text_arg("sa.View", "the definition", definition)) })
end

-- sa.MaterializedView(name, definition, {schema, with_data = true, indexes = {sa.Index | sql, ...}})
-- indexes: its indexes, as sa.Index (the view's name is their table) or CREATE INDEX text.
function M.MaterializedView(name, definition, opts)
  local o = options("sa.MaterializedView", set("schema", "with_data", "indexes"), opts)
  local indexes = {}
  for i, ix in ipairs(o.indexes or {}) do
    if type(ix) ~= "string" and not (type(ix) == "table" and ix.kind == "Index") then
      error(("sa.MaterializedView(%q): index %d must be a sa.Index or a CREATE INDEX statement"):format(
        tostring(name), i), 2)
    end
    indexes[i] = ix
  end
  return entity("MaterializedView", { name = text_arg("sa.MaterializedView", "the name", name),
    schema = o.schema, with_data = o.with_data ~= false, indexes = indexes,
    definition = trim(text_arg("sa.MaterializedView", "the definition", definition)) })
end

local function routine(kind)
  return function(signature, definition, opts)
    local what = "sa." .. kind
    local o = options(what, set("schema"), opts)
    text_arg(what, "the signature", signature)
    if not signature:find("%(") then
      error(("%s(%q): the signature needs its argument list, e.g. \"f(a integer)\""):format(what, signature), 2)
    end
    return entity(kind, { name = trim(signature), schema = o.schema,
      definition = trim(text_arg(what, "the definition", definition)) })
  end
end
-- sa.Function("name(args)", "RETURNS ... LANGUAGE ... AS $$ ... $$", {schema})
M.Function = routine("Function")
-- sa.Procedure("name(args)", "LANGUAGE ... AS $$ ... $$", {schema})
M.Procedure = routine("Procedure")

-- sa.Trigger(name, table, "BEFORE UPDATE ON table FOR EACH ROW EXECUTE FUNCTION f()", {schema})
function M.Trigger(name, table_name, definition, opts)
  local o = options("sa.Trigger", set("schema"), opts)
  return entity("Trigger", { name = text_arg("sa.Trigger", "the name", name),
    table = text_arg("sa.Trigger", "the table", table_name), schema = o.schema,
    definition = trim(text_arg("sa.Trigger", "the definition", definition)) })
end

-- sa.Policy(name, table, "AS PERMISSIVE FOR SELECT TO PUBLIC USING (...)", {schema}): a row-level
-- security policy (the table also needs sa.RowLevelSecurity to enforce it).
function M.Policy(name, table_name, definition, opts)
  local o = options("sa.Policy", set("schema"), opts)
  return entity("Policy", { name = text_arg("sa.Policy", "the name", name),
    table = text_arg("sa.Policy", "the table", table_name), schema = o.schema,
    definition = trim(text_arg("sa.Policy", "the definition", definition)) })
end

-- sa.RowLevelSecurity(table, {schema, force}): ALTER TABLE ... ENABLE ROW LEVEL SECURITY.
function M.RowLevelSecurity(table_name, opts)
  local o = options("sa.RowLevelSecurity", set("schema", "force"), opts)
  local t = text_arg("sa.RowLevelSecurity", "the table", table_name)
  return entity("RowLevelSecurity", { name = t, table = t, schema = o.schema, force = o.force and true or false,
    definition = o.force and "FORCE" or "ENABLE" })
end

-- sa.Extension(name, {schema}): CREATE EXTENSION (database-wide; schema is where it
-- installs its objects).
function M.Extension(name, opts)
  local o = options("sa.Extension", set("schema"), opts)
  return entity("Extension", { name = text_arg("sa.Extension", "the name", name), schema = o.schema,
    definition = o.schema or "" })
end

-- sa.Sequence(name, {schema, as, start, increment, minvalue, maxvalue, cache, cycle})
local SEQ_OPTS = { { "as", "AS %s" }, { "increment", "INCREMENT BY %d" }, { "minvalue", "MINVALUE %d" },
  { "maxvalue", "MAXVALUE %d" }, { "start", "START WITH %d" }, { "cache", "CACHE %d" } }
function M.Sequence(name, opts)
  local o = options("sa.Sequence", set("schema", "as", "start", "increment", "minvalue", "maxvalue",
    "cache", "cycle"), opts)
  local parts = {}
  for _, kv in ipairs(SEQ_OPTS) do
    if o[kv[1]] ~= nil then parts[#parts + 1] = kv[2]:format(o[kv[1]]) end
  end
  if o.cycle ~= nil then parts[#parts + 1] = o.cycle and "CYCLE" or "NO CYCLE" end
  return entity("Sequence", { name = text_arg("sa.Sequence", "the name", name), schema = o.schema,
    options = o, definition = table.concat(parts, " ") })
end

-- sa.Grant(table, privileges, role, {schema}): GRANT privileges ON TABLE table TO role, e.g.
-- sa.Grant("accounts", {"SELECT", "INSERT"}, "reporting").
function M.Grant(table_name, privileges, role, opts)
  local o = options("sa.Grant", set("schema"), opts)
  if type(privileges) == "string" then privileges = { privileges } end
  if type(privileges) ~= "table" or #privileges == 0 then
    error("sa.Grant: privileges must be a list such as {\"SELECT\"}", 2)
  end
  local privs = {}
  for i, p in ipairs(privileges) do privs[i] = text_arg("sa.Grant", "each privilege", p):upper() end
  table.sort(privs)
  return entity("Grant", { table = text_arg("sa.Grant", "the table", table_name),
    role = text_arg("sa.Grant", "the role", role), schema = o.schema, privileges = privs,
    name = role .. " on " .. table_name, definition = table.concat(privs, ", ") })
end

-- sa.Partition(name, parent, "FOR VALUES FROM (...) TO (...)", {schema, partition_by}): a
-- partition of a table declared with postgresql_partition_by (its columns, keys and indexes
-- are the parent's). With partition_by ("LIST (kind)") it is partitioned in turn, and its
-- own partitions name it as their parent. The definition compared is the bound followed by
-- the partitioning, as `CREATE TABLE ... PARTITION OF` takes them.
function M.Partition(name, parent, bound, opts)
  local o = options("sa.Partition", set("schema", "partition_by"), opts)
  bound = trim(text_arg("sa.Partition", "the bound", bound))
  local by = o.partition_by and trim(text_arg("sa.Partition", "partition_by", o.partition_by)) or nil
  return entity("Partition", { name = text_arg("sa.Partition", "the name", name),
    table = text_arg("sa.Partition", "the parent table", parent), schema = o.schema,
    bound = bound, partition_by = by, definition = by and (bound .. " PARTITION BY " .. by) or bound })
end

-- ---- user-defined types: domains, composite types, range types ------------------------
-- Their `definition` is a normal form, one line per part, built here from the declared
-- fields and by autogenerate from the catalogs (so the two compare line by line, and a
-- change is an ALTER of the lines that differ): a domain's "AS <base>", "COLLATE <c>",
-- "DEFAULT <expr>", "NOT NULL", "CONSTRAINT <name> CHECK (...)" (by name); a composite
-- type's "<attribute>\t<type>" in order; a range type's "<option> = <value>".

local function type_text(what, t)
  if type(t) == "string" then return text_arg(what, "the type", t) end
  local types = require "luamigrate.types"
  if types.is_type(t) then return t:sql() end
  if M.is(t) and t.as_type then return t:as_type() end
  error(("%s: a type must be SQL text or a sa type, got %s"):format(what, type(t)), 4)
end

-- A type entity is also a column type: sa.Column("qty", posint).
local TypeEntity = {}
TypeEntity.__index = TypeEntity
function TypeEntity.as_type(e) return quote.qualified(e.schema, e.name) end
TypeEntity._sql = TypeEntity.as_type
TypeEntity.sql = TypeEntity.as_type

local function type_entity(kind, fields)
  fields.entity = kind
  return setmetatable(fields, { __name = "sa." .. kind, __index = TypeEntity })
end

-- PostgreSQL's name for a domain's unnamed check constraint.
local function check_name(domain, i) return domain .. "_check" .. (i > 1 and tostring(i - 1) or "") end

local function check_sql(what, c)
  local schema = require "luamigrate.schema"
  if type(c) == "string" then return c end
  if schema.is(c, "CheckConstraint") then return require("luamigrate.render").sqltext(c.sqltext), c.name end
  error(("%s: each constraint must be a sa.CheckConstraint or SQL text"):format(what), 4)
end

local function bracketed(s)
  s = trim(s)
  if s:sub(1, 1) == "(" and s:sub(-1) == ")" then return s end
  return "(" .. s .. ")"
end

-- The domain's lines (see above) from its fields.
local function domain_lines(e)
  local out = { "AS " .. e.type }
  if e.collation then out[#out + 1] = "COLLATE " .. quote.ident(e.collation) end
  if e.default then out[#out + 1] = "DEFAULT " .. e.default end
  if e.not_null then out[#out + 1] = "NOT NULL" end
  local checks = {}
  for i, c in ipairs(e.checks) do checks[i] = c end
  table.sort(checks, function(a, b) return a.name < b.name end)
  for _, c in ipairs(checks) do out[#out + 1] = ("CONSTRAINT %s CHECK %s"):format(quote.ident(c.name), c.check) end
  return table.concat(out, "\n")
end
M.domain_lines = domain_lines

-- sa.Domain(name, data_type, {schema, collation, default, not_null, check, constraint_name,
-- constraints = {sa.CheckConstraint("VALUE > 0", {name = ...}), ...}}): CREATE DOMAIN, in the
-- words of SQLAlchemy's postgresql.DOMAIN (check and constraint_name: one check; constraints:
-- more). Unnamed checks get PostgreSQL's names (<domain>_check, <domain>_check1, ...).
function M.Domain(name, data_type, opts)
  local what = "sa.Domain"
  local o = options(what, set("schema", "collation", "default", "not_null", "check", "constraint_name",
    "constraints"), opts)
  text_arg(what, "the name", name)
  local given = {}
  if o.check ~= nil then given[1] = { o.check, o.constraint_name } end
  for _, c in ipairs(o.constraints or {}) do
    local sql, cname = check_sql(what, c)
    given[#given + 1] = { sql, cname }
  end
  local checks, unnamed = {}, 0
  for i, g in ipairs(given) do
    local cname = g[2]
    if not cname then
      unnamed = unnamed + 1
      cname = check_name(name, unnamed)
    end
    checks[i] = { name = cname, check = bracketed(text_arg(what, "a check", g[1])) }
  end
  local default = o.default
  if default ~= nil and type(default) ~= "string" then default = require("luamigrate.render").default_sql(default) end
  local e = type_entity("Domain", { name = name, schema = o.schema, type = type_text(what, data_type),
    collation = o.collation, default = default, not_null = o.not_null and true or false, checks = checks })
  e.definition = domain_lines(e)
  return e
end

local function composite_lines(e)
  local out = {}
  for i, a in ipairs(e.attributes) do out[i] = quote.ident(a.name) .. "\t" .. a.type end
  return table.concat(out, "\n")
end
M.composite_lines = composite_lines

-- sa.CompositeType(name, {{"attribute", type}, ...}, {schema}): CREATE TYPE name AS (...);
-- a type is SQL text ('text COLLATE "C"') or a sa type.
function M.CompositeType(name, attributes, opts)
  local what = "sa.CompositeType"
  local o = options(what, set("schema"), opts)
  text_arg(what, "the name", name)
  if type(attributes) ~= "table" or #attributes == 0 then
    error(("%s(%q): the attributes must be a list of {name, type}"):format(what, tostring(name)), 2)
  end
  local attrs = {}
  for i, a in ipairs(attributes) do
    if type(a) ~= "table" or type(a[1]) ~= "string" or a[2] == nil then
      error(("%s(%q): attribute %d must be {name, type}"):format(what, name, i), 2)
    end
    attrs[i] = { name = a[1], type = type_text(what, a[2]) }
  end
  local e = type_entity("CompositeType", { name = name, schema = o.schema, attributes = attrs })
  e.definition = composite_lines(e)
  return e
end

local RANGE_OPTS = { "subtype_opclass", "collation", "canonical", "subtype_diff", "multirange_type_name" }

-- The multirange type PostgreSQL names for a range type: "range" in the name becomes
-- "multirange", else "_multirange" is appended.
function M.default_multirange(name)
  local i, j = name:find("range", 1, true)
  if i then return name:sub(1, i - 1) .. "multirange" .. name:sub(j + 1) end
  return name .. "_multirange"
end

local function range_lines(e)
  local out = { "subtype = " .. e.subtype }
  for _, k in ipairs(RANGE_OPTS) do
    local v = e.options[k]
    if k == "multirange_type_name" and v == M.default_multirange(e.name) then v = nil end
    if v then out[#out + 1] = k .. " = " .. v end
  end
  return table.concat(out, "\n")
end
M.range_lines = range_lines

-- sa.RangeType(name, subtype, {schema, subtype_opclass, collation, canonical, subtype_diff,
-- multirange_type_name}): CREATE TYPE name AS RANGE (...). PostgreSQL cannot alter one: a
-- change is a drop and a create, which autogenerate writes only while no column uses it.
function M.RangeType(name, subtype, opts)
  local what = "sa.RangeType"
  local o = options(what, set("schema", table.unpack(RANGE_OPTS)), opts)
  text_arg(what, "the name", name)
  local ro = {}
  for _, k in ipairs(RANGE_OPTS) do
    if o[k] ~= nil then ro[k] = text_arg(what, k, o[k]) end
  end
  local e = type_entity("RangeType", { name = name, schema = o.schema, subtype = type_text(what, subtype),
    options = ro })
  e.definition = range_lines(e)
  return e
end

-- The constructors sa exports.
M.CONSTRUCTORS = { "View", "MaterializedView", "Function", "Procedure", "Trigger", "Policy",
  "RowLevelSecurity", "Extension", "Sequence", "Grant", "Partition", "Domain", "CompositeType", "RangeType" }

-- The entity kinds in the order they are created (each may use the ones before it: a
-- domain over a range, a composite type of domains, a function an extension's types, a
-- trigger its function, a view a function, a policy the table's row-level security);
-- dropped in the reverse order.
M.KINDS = { "Extension", "Sequence", "RangeType", "Domain", "CompositeType", "Partition", "Function", "Procedure",
  "View", "MaterializedView", "Trigger", "RowLevelSecurity", "Policy", "Grant" }

-- ---- statements -----------------------------------------------------------------------

local function qname(e) return quote.qualified(e.schema, e.name) end
-- a routine's signature is SQL text: only the schema is quoted here
local function routine_name(e) return (e.schema and (quote.ident(e.schema) .. ".") or "") .. e.name end
local function trigger_table(e) return quote.qualified(e.schema, e.table) end

local function matview_indexes(e)
  local out = {}
  for _, ix in ipairs(e.indexes or {}) do
    if type(ix) == "string" then
      out[#out + 1] = trim(ix)
    else
      local o = {}
      for k, v in pairs(ix.options) do o[k] = v end
      o.schema = e.schema
      out[#out + 1] = require("luamigrate.render").create_index(ix.name, e.name, ix.expressions, o)
    end
  end
  return out
end

local function role(r) return r:upper() == "PUBLIC" and "PUBLIC" or quote.ident(r) end

local RENDER = {
  View = {
    create = function(e) return { ("CREATE VIEW %s AS %s"):format(qname(e), e.definition) } end,
    replace = function(e) return { ("CREATE OR REPLACE VIEW %s AS %s"):format(qname(e), e.definition) } end,
    drop = function(e, o) return { ("DROP VIEW %s%s%s"):format(o.if_exists and "IF EXISTS " or "", qname(e),
      o.cascade and " CASCADE" or "") } end,
  },
  MaterializedView = {
    create = function(e)
      local out = { ("CREATE MATERIALIZED VIEW %s AS %s WITH %sDATA"):format(qname(e), e.definition,
        e.with_data and "" or "NO ") }
      for _, ix in ipairs(matview_indexes(e)) do out[#out + 1] = ix end
      return out
    end,
    drop = function(e, o) return { ("DROP MATERIALIZED VIEW %s%s%s"):format(o.if_exists and "IF EXISTS " or "",
      qname(e), o.cascade and " CASCADE" or "") } end,
  },
  Function = {
    create = function(e) return { ("CREATE FUNCTION %s %s"):format(routine_name(e), e.definition) } end,
    replace = function(e) return { ("CREATE OR REPLACE FUNCTION %s %s"):format(routine_name(e), e.definition) } end,
    drop = function(e, o) return { ("DROP FUNCTION %s%s%s"):format(o.if_exists and "IF EXISTS " or "",
      routine_name(e), o.cascade and " CASCADE" or "") } end,
  },
  Procedure = {
    create = function(e) return { ("CREATE PROCEDURE %s %s"):format(routine_name(e), e.definition) } end,
    replace = function(e) return { ("CREATE OR REPLACE PROCEDURE %s %s"):format(routine_name(e), e.definition) } end,
    drop = function(e, o) return { ("DROP PROCEDURE %s%s%s"):format(o.if_exists and "IF EXISTS " or "",
      routine_name(e), o.cascade and " CASCADE" or "") } end,
  },
  Trigger = {
    create = function(e) return { ("CREATE TRIGGER %s %s"):format(quote.ident(e.name), e.definition) } end,
    replace = function(e) return { ("CREATE OR REPLACE TRIGGER %s %s"):format(quote.ident(e.name), e.definition) } end,
    drop = function(e, o) return { ("DROP TRIGGER %s%s ON %s%s"):format(o.if_exists and "IF EXISTS " or "",
      quote.ident(e.name), trigger_table(e), o.cascade and " CASCADE" or "") } end,
  },
  Policy = {
    create = function(e) return { ("CREATE POLICY %s ON %s %s"):format(quote.ident(e.name), trigger_table(e),
      e.definition) } end,
    drop = function(e, o) return { ("DROP POLICY %s%s ON %s"):format(o.if_exists and "IF EXISTS " or "",
      quote.ident(e.name), trigger_table(e)) } end,
  },
  RowLevelSecurity = {
    create = function(e)
      local out = { ("ALTER TABLE %s ENABLE ROW LEVEL SECURITY"):format(trigger_table(e)) }
      if e.force then out[2] = ("ALTER TABLE %s FORCE ROW LEVEL SECURITY"):format(trigger_table(e)) end
      return out
    end,
    replace = function(e) return { ("ALTER TABLE %s %sFORCE ROW LEVEL SECURITY"):format(trigger_table(e),
      e.force and "" or "NO ") } end,
    drop = function(e) return { ("ALTER TABLE %s NO FORCE ROW LEVEL SECURITY"):format(trigger_table(e)),
      ("ALTER TABLE %s DISABLE ROW LEVEL SECURITY"):format(trigger_table(e)) } end,
  },
  Extension = {
    create = function(e) return { ("CREATE EXTENSION %s%s"):format(quote.ident(e.name),
      e.schema and (" SCHEMA " .. quote.ident(e.schema)) or "") } end,
    replace = function(e) return { ("ALTER EXTENSION %s SET SCHEMA %s"):format(quote.ident(e.name),
      quote.ident(e.schema or "public")) } end,
    drop = function(e, o) return { ("DROP EXTENSION %s%s%s"):format(o.if_exists and "IF EXISTS " or "",
      quote.ident(e.name), o.cascade and " CASCADE" or "") } end,
  },
  Sequence = {
    create = function(e) return { ("CREATE SEQUENCE %s%s"):format(qname(e),
      e.definition ~= "" and (" " .. e.definition) or "") } end,
    -- ALTER SEQUENCE takes CREATE SEQUENCE's options; a new START WITH also restarts it
    -- only when asked, so the sequence keeps counting where it was
    replace = function(e) return { ("ALTER SEQUENCE %s%s"):format(qname(e),
      e.definition ~= "" and (" " .. e.definition) or "") } end,
    drop = function(e, o) return { ("DROP SEQUENCE %s%s%s"):format(o.if_exists and "IF EXISTS " or "", qname(e),
      o.cascade and " CASCADE" or "") } end,
  },
  Partition = {
    create = function(e) return { ("CREATE TABLE %s PARTITION OF %s %s"):format(qname(e), trigger_table(e),
      e.definition) } end,
    -- a new bound: detached and attached again (the server checks the rows fit)
    replace = function(e) return { ("ALTER TABLE %s DETACH PARTITION %s"):format(trigger_table(e), qname(e)),
      ("ALTER TABLE %s ATTACH PARTITION %s %s"):format(trigger_table(e), qname(e), e.bound or e.definition) } end,
    drop = function(e, o) return { ("DROP TABLE %s%s%s"):format(o.if_exists and "IF EXISTS " or "", qname(e),
      o.cascade and " CASCADE" or "") } end,
  },
  Domain = {
    create = function(e)
      local parts = { ("CREATE DOMAIN %s AS %s"):format(qname(e), e.type) }
      if e.collation then parts[#parts + 1] = "COLLATE " .. quote.ident(e.collation) end
      if e.default then parts[#parts + 1] = "DEFAULT " .. e.default end
      if e.not_null then parts[#parts + 1] = "NOT NULL" end
      for _, c in ipairs(e.checks) do
        parts[#parts + 1] = ("CONSTRAINT %s CHECK %s"):format(quote.ident(c.name), c.check)
      end
      return { table.concat(parts, " ") }
    end,
    drop = function(e, o) return { ("DROP DOMAIN %s%s%s"):format(o.if_exists and "IF EXISTS " or "", qname(e),
      o.cascade and " CASCADE" or "") } end,
  },
  CompositeType = {
    create = function(e)
      local attrs = {}
      for i, a in ipairs(e.attributes) do attrs[i] = quote.ident(a.name) .. " " .. a.type end
      return { ("CREATE TYPE %s AS (%s)"):format(qname(e), table.concat(attrs, ", ")) }
    end,
    drop = function(e, o) return { ("DROP TYPE %s%s%s"):format(o.if_exists and "IF EXISTS " or "", qname(e),
      o.cascade and " CASCADE" or "") } end,
  },
  RangeType = {
    create = function(e)
      local parts = { "SUBTYPE = " .. e.subtype }
      for _, k in ipairs(RANGE_OPTS) do
        local v = e.options[k]
        if v then
          -- the multirange is a type name; the others name an operator class, a collation, functions
          parts[#parts + 1] = ("%s = %s"):format(k:upper(), k == "multirange_type_name"
            and quote.qualified(e.schema, v) or k == "collation" and quote.ident(v) or v)
        end
      end
      return { ("CREATE TYPE %s AS RANGE (%s)"):format(qname(e), table.concat(parts, ", ")) }
    end,
    drop = function(e, o) return { ("DROP TYPE %s%s%s"):format(o.if_exists and "IF EXISTS " or "", qname(e),
      o.cascade and " CASCADE" or "") } end,
  },
  Grant = {
    create = function(e) return { ("GRANT %s ON TABLE %s TO %s"):format(table.concat(e.privileges, ", "),
      trigger_table(e), role(e.role)) } end,
    replace = function(e) return { ("REVOKE ALL ON TABLE %s FROM %s"):format(trigger_table(e), role(e.role)),
      ("GRANT %s ON TABLE %s TO %s"):format(table.concat(e.privileges, ", "), trigger_table(e), role(e.role)) } end,
    drop = function(e) return { ("REVOKE ALL ON TABLE %s FROM %s"):format(trigger_table(e), role(e.role)) } end,
  },
}

-- The statements that create, replace or drop e (a list). Replacing is CREATE OR REPLACE
-- where PostgreSQL has it, else a drop and a create.
function M.create_sql(e) return RENDER[e.entity].create(e) end

function M.replace_sql(e)
  local r = RENDER[e.entity]
  if r.replace then return r.replace(e) end
  local out = r.drop(e, {})
  for _, s in ipairs(r.create(e)) do out[#out + 1] = s end
  return out
end

function M.drop_sql(e, opts) return RENDER[e.entity].drop(e, opts or {}) end

-- ALTER DOMAIN statements: o = {schema, default = sql | false (drop), not_null = boolean,
-- drop_constraints = {name, ...}, add_constraints = {name = "VALUE > 0", ...}} (drops first,
-- so a constraint can be replaced under its name).
function M.alter_domain_sql(name, o)
  local q, out = quote.qualified(o.schema, name), {}
  for _, c in ipairs(o.drop_constraints or {}) do
    out[#out + 1] = ("ALTER DOMAIN %s DROP CONSTRAINT %s"):format(q, quote.ident(c))
  end
  if o.default == false then
    out[#out + 1] = ("ALTER DOMAIN %s DROP DEFAULT"):format(q)
  elseif o.default ~= nil then
    out[#out + 1] = ("ALTER DOMAIN %s SET DEFAULT %s"):format(q, o.default)
  end
  if o.not_null ~= nil then
    out[#out + 1] = ("ALTER DOMAIN %s %s NOT NULL"):format(q, o.not_null and "SET" or "DROP")
  end
  local names = {}
  for k in pairs(o.add_constraints or {}) do names[#names + 1] = k end
  table.sort(names)
  for _, c in ipairs(names) do
    out[#out + 1] = ("ALTER DOMAIN %s ADD CONSTRAINT %s CHECK %s"):format(q, quote.ident(c),
      bracketed(o.add_constraints[c]))
  end
  return out
end

-- One ALTER TYPE statement for a composite type: o = {schema, drop_attributes = {name, ...},
-- alter_attributes = {{name, type}, ...}, add_attributes = {{name, type}, ...}, cascade}.
function M.alter_composite_sql(name, o)
  local actions = {}
  for _, a in ipairs(o.drop_attributes or {}) do actions[#actions + 1] = "DROP ATTRIBUTE " .. quote.ident(a) end
  for _, a in ipairs(o.alter_attributes or {}) do
    actions[#actions + 1] = ("ALTER ATTRIBUTE %s TYPE %s"):format(quote.ident(a[1]), type_text("alter", a[2]))
  end
  for _, a in ipairs(o.add_attributes or {}) do
    actions[#actions + 1] = ("ADD ATTRIBUTE %s %s"):format(quote.ident(a[1]), type_text("alter", a[2]))
  end
  if #actions == 0 then return {} end
  return { ("ALTER TYPE %s %s%s"):format(quote.qualified(o.schema, name), table.concat(actions, ", "),
    o.cascade and " CASCADE" or "") }
end

-- A materialized view's CREATE INDEX statements.
M.index_sql = matview_indexes

-- A short description: "view public.active_users", "trigger touch on posts".
local WORDS = { View = "view", MaterializedView = "materialized view", Function = "function",
  Procedure = "procedure", Trigger = "trigger", Policy = "policy", RowLevelSecurity = "row level security",
  Extension = "extension", Sequence = "sequence", Grant = "grant", Partition = "partition", Domain = "domain",
  CompositeType = "composite type", RangeType = "range type" }

function M.describe(e)
  local where = e.schema and (e.schema .. ".") or ""
  if e.entity == "Partition" then
    return ("partition %s%s of %s"):format(where, e.name, e.table)
  elseif e.entity == "Trigger" or e.entity == "Policy" then
    return ("%s %s on %s%s"):format(WORDS[e.entity], e.name, where, e.table)
  elseif e.entity == "RowLevelSecurity" then
    return ("row level security on %s%s"):format(where, e.table)
  elseif e.entity == "Extension" then
    return "extension " .. e.name
  elseif e.entity == "Grant" then
    return ("grant %s on %s%s to %s"):format(e.definition, where, e.table, e.role)
  end
  return ("%s %s%s"):format(WORDS[e.entity], where, e.name)
end

return M
