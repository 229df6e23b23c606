-- Replaceable entities: the schema objects that are defined by a statement rather than
-- altered piece by piece (views, materialized views, functions, procedures, triggers,
-- row-level security policies, extensions, sequences, grants on tables), in the spirit of
-- alembic_utils' PGView, PGFunction, ... . A constructor (exported as sa.View, sa.Function,
-- ...) makes a plain description; op.create_entity / op.replace_entity / op.drop_entity
-- (op.lua's entity section) run the statements rendered here, and autogenerate compares
-- the ones a schema.lua registers (md:register(...)) with the database.
--
-- Definitions are SQL text as PostgreSQL takes it after the object's name: a view's query,
-- a function's "RETURNS ... LANGUAGE ... AS $$...$$", a trigger's "BEFORE UPDATE ON t FOR
-- EACH ROW EXECUTE FUNCTION f()", a policy's "AS PERMISSIVE FOR SELECT TO PUBLIC USING (...)".
local quote = require "luamigrate.quote"

local M = {}

local function set(...)
  local s = {}
  for _, k in ipairs { ... } do s[k] = true end
  return s
end

local function options(what, allowed, opts)
  if opts == nil then return {} end
  if type(opts) ~= "table" then error(("%s: the options must be a table"):format(what), 3) end
  for k in pairs(opts) do
    if not allowed[k] then error(("%s: unknown option '%s'"):format(what, tostring(k)), 3) end
  end
  return opts
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

-- sa.MaterializedView(name, definition, {schema, with_data = true})
function M.MaterializedView(name, definition, opts)
  local o = options("sa.MaterializedView", set("schema", "with_data"), opts)
  return entity("MaterializedView", { name = text_arg("sa.MaterializedView", "the name", name),
    schema = o.schema, with_data = o.with_data ~= false,
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

-- The constructors sa exports.
M.CONSTRUCTORS = { "View", "MaterializedView", "Function", "Procedure", "Trigger" }

-- The entity kinds in the order they are created (each may use the ones before it: a
-- trigger its function, a view a function); dropped in the reverse order.
M.KINDS = { "Function", "Procedure", "View", "MaterializedView", "Trigger" }

-- ---- statements -----------------------------------------------------------------------

local function qname(e) return quote.qualified(e.schema, e.name) end
-- a routine's signature is SQL text: only the schema is quoted here
local function routine_name(e) return (e.schema and (quote.ident(e.schema) .. ".") or "") .. e.name end
local function trigger_table(e) return quote.qualified(e.schema, e.table) end

local RENDER = {
  View = {
    create = function(e) return { ("CREATE VIEW %s AS %s"):format(qname(e), e.definition) } end,
    replace = function(e) return { ("CREATE OR REPLACE VIEW %s AS %s"):format(qname(e), e.definition) } end,
    drop = function(e, o) return { ("DROP VIEW %s%s%s"):format(o.if_exists and "IF EXISTS " or "", qname(e),
      o.cascade and " CASCADE" or "") } end,
  },
  MaterializedView = {
    create = function(e)
      return { ("CREATE MATERIALIZED VIEW %s AS %s WITH %sDATA"):format(qname(e), e.definition,
        e.with_data and "" or "NO ") }
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

-- A short description: "view public.active_users", "trigger touch on posts".
function M.describe(e)
  local words = { View = "view", MaterializedView = "materialized view", Function = "function",
    Procedure = "procedure", Trigger = "trigger" }
  local where = e.schema and (e.schema .. ".") or ""
  if e.entity == "Trigger" then return ("trigger %s on %s%s"):format(e.name, where, e.table) end
  return ("%s %s%s"):format(words[e.entity], where, e.name)
end

return M
