-- Autogenerate for replaceable entities (views, materialized views, functions, procedures,
-- triggers; luamigrate.entity): the live ones read from the catalogs with the definitions
-- the server prints, the declared ones built inside the comparison's transaction (in a
-- savepoint rolled back at the end) and read back the same way, so a definition is
-- compared as PostgreSQL normalises it, not as it was typed.
--
-- Entities are compared once a schema.lua registers at least one (md:register): a project
-- that registers none leaves the database's views, functions and triggers alone.
local quote = require "luamigrate.quote"
local entity = require "luamigrate.entity"
local dependents = require "luamigrate.dependents"

local M = {}

local function key_of(...) return table.concat({ ... }, ".") end

-- Objects an extension owns are the extension's, not the schema's.
local function not_extension(catalog, oid)
  return ("NOT EXISTS (SELECT 1 FROM pg_depend x WHERE x.classid = '%s'::regclass AND x.objid = %s "
    .. "AND x.deptype = 'e')"):format(catalog, oid)
end

local function trimmed(def) return (def:gsub("^%s+", ""):gsub("[%s;]+$", "")) end

-- Per kind: `sql`, a query whose rows have schema, name, oid, def (the definition as the
-- server prints it) and what `row` needs; `row(r)` -> key, def, the entity r describes;
-- `one(d)` -> the filter (on the query's columns) and parameters that find declared d once
-- it is built; `build`: how a declared one is built to be read back ("replace": CREATE OR
-- REPLACE in place, else a drop and a create; "fresh": drop and create; "scratch": created
-- under a scratch name; "none": not built, its definition is known).
local KIND = {}

KIND.View = {
  sql = [[
SELECT n.nspname AS schema, c.relname AS name, c.oid::int8 AS oid, pg_get_viewdef(c.oid) AS def
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind = 'v' AND ]] .. not_extension("pg_class", "c.oid"),
  row = function(r)
    local def = trimmed(r.def)
    return key_of(r.schema, r.name), def, entity.View(r.name, def, { schema = r.schema })
  end,
  one = function(d) return "schema = $1 AND name = $2", { d.schema, d.e.name } end,
  build = "replace",
}

KIND.MaterializedView = {
  sql = [[
SELECT n.nspname AS schema, c.relname AS name, c.oid::int8 AS oid, pg_get_viewdef(c.oid) AS def,
       c.relispopulated AS populated,
       (SELECT string_agg(pg_get_indexdef(i.indexrelid), chr(31) ORDER BY ic.relname) FROM pg_index i
          JOIN pg_class ic ON ic.oid = i.indexrelid WHERE i.indrelid = c.oid) AS indexes
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind = 'm' AND ]] .. not_extension("pg_class", "c.oid"),
  row = function(r)
    local def, indexes = trimmed(r.def), {}
    for ix in ((r.indexes or "") .. "\31"):gmatch("(.-)\31") do
      if ix ~= "" then indexes[#indexes + 1] = ix end
    end
    -- compared: the query, then each index as the server prints it
    return key_of(r.schema, r.name), def .. "\n" .. table.concat(indexes, "\n"),
      entity.MaterializedView(r.name, def, { schema = r.schema, with_data = r.populated, indexes = indexes })
  end,
  one = function(d) return "schema = $1 AND name = $2", { d.schema, d.e.name } end,
  build = "fresh",
}

KIND.Trigger = {
  sql = [[
SELECT n.nspname AS schema, c.relname AS tbl, t.tgname AS name, t.oid::int8 AS oid,
       pg_get_triggerdef(t.oid) AS def
FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE NOT t.tgisinternal AND t.tgparentid = 0 -- a partition's copy of its parent's trigger is the parent's
  AND ]] .. not_extension("pg_trigger", "t.oid"),
  row = function(r)
    local prefix = "CREATE TRIGGER " .. quote.ident(r.name) .. " "
    local def = r.def:sub(1, #prefix) == prefix and r.def:sub(#prefix + 1) or r.def
    return key_of(r.schema, r.tbl, r.name), r.def, entity.Trigger(r.name, r.tbl, def, { schema = r.schema })
  end,
  one = function(d) return "schema = $1 AND tbl = $2 AND name = $3", { d.schema, d.e.table, d.e.name } end,
  build = "replace",
}

local function routine(kind, prokind)
  return {
    sql = ([[
SELECT n.nspname AS schema, p.proname AS name, p.oid::int8 AS oid, p.xmin::text AS xmin,
       pg_get_function_identity_arguments(p.oid) AS ident, pg_get_function_arguments(p.oid) AS args,
       pg_get_functiondef(p.oid) AS def
FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
WHERE p.prokind = '%s' AND ]]):format(prokind) .. not_extension("pg_proc", "p.oid"),
    row = function(r)
      -- pg_get_functiondef: "CREATE OR REPLACE FUNCTION s.f(a integer)\n RETURNS ...\nAS ..."
      local body = r.def:match("^[^\n]*\n(.*)$") or r.def
      body = body:gsub("^%s+", ""):gsub("%s+$", "")
      return key_of(r.schema, r.name .. "(" .. r.ident .. ")"), r.def,
        entity[kind](quote.ident(r.name) .. "(" .. r.args .. ")", body, { schema = r.schema })
    end,
    -- the routine built is the one whose row changed (xmin) or is new: its signature as
    -- declared may name its arguments, which pg_proc keys do not
    one = function(d)
      local name = d.e.name:match("^%s*(.-)%s*%(")
      name = name:match('^"(.*)"$') and name:sub(2, -2):gsub('""', '"') or name:lower()
      return "schema = $1 AND name = $2", { d.schema, name }, true
    end,
    build = "replace",
  }
end
KIND.Function = routine("Function", "f")
KIND.Procedure = routine("Procedure", "p")

KIND.Policy = {
  sql = [[
SELECT n.nspname AS schema, c.relname AS tbl, pol.polname AS name, pol.oid::int8 AS oid,
       ]] .. dependents.POLICY_BODY .. [[ AS def
FROM pg_policy pol JOIN pg_class c ON c.oid = pol.polrelid JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE true]],
  row = function(r)
    return key_of(r.schema, r.tbl, r.name), r.def, entity.Policy(r.name, r.tbl, r.def, { schema = r.schema })
  end,
  one = function(d) return "schema = $1 AND tbl = $2 AND name = $3", { d.schema, d.e.table, d.e.name } end,
  build = "fresh",
}

KIND.RowLevelSecurity = {
  sql = [[
SELECT n.nspname AS schema, c.relname AS tbl, c.relname AS name, c.oid::int8 AS oid,
       CASE WHEN c.relforcerowsecurity THEN 'FORCE' ELSE 'ENABLE' END AS def
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'p') AND c.relrowsecurity]],
  row = function(r)
    return key_of(r.schema, r.tbl), r.def,
      entity.RowLevelSecurity(r.tbl, { schema = r.schema, force = r.def == "FORCE" })
  end,
  one = function(d) return "schema = $1 AND tbl = $2", { d.schema, d.e.table } end,
  build = "none",
}

KIND.Extension = {
  sql = [[
SELECT n.nspname AS schema, x.extname AS name, x.oid::int8 AS oid, n.nspname AS def
FROM pg_extension x JOIN pg_namespace n ON n.oid = x.extnamespace
WHERE x.extname <> 'plpgsql']],
  row = function(r) return r.name, r.def, entity.Extension(r.name, { schema = r.schema }) end,
  build = "none",
}

KIND.Sequence = {
  sql = [[
SELECT n.nspname AS schema, c.relname AS name, c.oid::int8 AS oid, format_type(s.seqtypid, NULL) AS as_,
       s.seqstart::text AS start, s.seqincrement::text AS increment, s.seqmin::text AS minvalue,
       s.seqmax::text AS maxvalue, s.seqcache::text AS cache, s.seqcycle AS cycle
FROM pg_sequence s JOIN pg_class c ON c.oid = s.seqrelid JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE ]] .. not_extension("pg_class", "c.oid") .. [[
  AND NOT EXISTS (SELECT 1 FROM pg_depend o WHERE o.classid = 'pg_class'::regclass AND o.objid = c.oid
                  AND o.refclassid = 'pg_class'::regclass AND o.deptype IN ('a', 'i'))]],
  row = function(r)
    local e = entity.Sequence(r.name, { schema = r.schema, as = r.as_, start = math.tointeger(r.start),
      increment = math.tointeger(r.increment), minvalue = math.tointeger(r.minvalue),
      maxvalue = math.tointeger(r.maxvalue), cache = math.tointeger(r.cache), cycle = r.cycle })
    return key_of(r.schema, r.name), e.definition, e
  end,
  one = function(d) return "schema = $1 AND name = 'luamigrate_autogen_seq'", { d.schema } end,
  build = "scratch",
}

KIND.Partition = {
  sql = [[
SELECT n.nspname AS schema, c.relname AS name, p.relname AS tbl, c.oid::int8 AS oid,
       pg_get_expr(c.relpartbound, c.oid) AS def
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
JOIN pg_inherits h ON h.inhrelid = c.oid JOIN pg_class p ON p.oid = h.inhparent
WHERE c.relispartition AND c.relkind = 'r']],
  row = function(r)
    return key_of(r.schema, r.name), r.def, entity.Partition(r.name, r.tbl, r.def, { schema = r.schema })
  end,
  one = function(d) return "schema = $1 AND name = $2", { d.schema, d.e.name } end,
  build = "fresh",
}

KIND.Grant = {
  sql = [[
SELECT n.nspname AS schema, c.relname AS tbl, c.oid::int8 AS oid,
       CASE WHEN a.grantee = 0 THEN 'PUBLIC' ELSE pg_get_userbyid(a.grantee) END AS name,
       string_agg(a.privilege_type, ', ' ORDER BY a.privilege_type) AS def
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace, aclexplode(c.relacl) a
WHERE c.relkind IN ('r', 'p', 'v', 'm') AND a.grantee <> c.relowner
GROUP BY 1, 2, 3, 4]],
  row = function(r)
    local privs = {}
    for p in (r.def .. ", "):gmatch("(.-), ") do privs[#privs + 1] = p end
    return key_of(r.schema, r.tbl, r.name), r.def, entity.Grant(r.tbl, privs, r.name, { schema = r.schema })
  end,
  one = function(d) return "schema = $1 AND tbl = $2 AND name = $3", { d.schema, d.e.table, d.e.role } end,
  build = "replace",
}

-- Kinds tables may use (a column of an extension's type, a default drawing on a sequence):
-- created before the tables, dropped after them.
local EARLY = { Extension = true, Sequence = true }

-- The catalog each kind lives in (for pg_depend).
local CATALOG = { View = "pg_class", MaterializedView = "pg_class", Function = "pg_proc", Partition = "pg_class",
  Procedure = "pg_proc", Trigger = "pg_trigger", Policy = "pg_policy", Sequence = "pg_class",
  Extension = "pg_extension" }

local function select_from(kind, filter)
  return ("SELECT * FROM (%s) q WHERE %s ORDER BY oid"):format(KIND[kind].sql, filter)
end

local function pg_array(list)
  local parts = {}
  for i, s in ipairs(list) do parts[i] = '"' .. s:gsub('[\\"]', "\\%0") .. '"' end
  return "{" .. table.concat(parts, ",") .. "}"
end

-- The kinds compared: all of them once the declared schema registers any entity, else
-- none. {kind = true}
function M.kinds(declared)
  local k = {}
  if #declared > 0 then
    for _, kind in ipairs(entity.KINDS) do k[kind] = true end
  end
  return k
end

-- The live entities as a declared list (for inspect: the database as a schema.lua), in the
-- order they can be created: by kind, then as they were (oids grow).
function M.as_declared(live)
  local list, rank = {}, {}
  for i, k in ipairs(entity.KINDS) do rank[k] = i end
  for _, l in pairs(live) do list[#list + 1] = l end
  table.sort(list, function(a, b)
    if a.kind ~= b.kind then return rank[a.kind] < rank[b.kind] end
    return a.oid < b.oid
  end)
  local out = {}
  for i, l in ipairs(list) do out[i] = { e = l.e, schema = l.e.schema, index = i } end
  return out
end

-- The declared entities, each {e = entity, schema = its schema or the default, index}.
function M.declared(md, default_schema)
  local out = {}
  for i, e in ipairs(md.entities or {}) do
    out[i] = { e = e, schema = e.schema or md.schema or default_schema, index = i }
  end
  return out
end

-- The live entities of the kinds wanted, in the schemas in scope: key -> {e, def, oid, kind}.
function M.inspect(conn, schemas, kinds)
  local live = {}
  for _, kind in ipairs(entity.KINDS) do
    if kinds[kind] then
      for _, r in ipairs(conn:query(select_from(kind, "schema = ANY ($1::text[])"), pg_array(schemas))) do
        local key, def, e = KIND[kind].row(r)
        live[kind .. ":" .. key] = { e = e, def = def, oid = tonumber(r.oid), kind = kind }
      end
    end
  end
  return live
end

-- Runs fn in a savepoint; keeps its effects when it succeeds (later entities may build on
-- them: a view on a view) unless `undo`, rolls them back and returns nil when it fails.
local function attempt(conn, fn, undo)
  conn:execute("SAVEPOINT luamigrate_entity")
  local ok, a, b = pcall(fn)
  if ok and not undo then
    conn:execute("RELEASE SAVEPOINT luamigrate_entity")
    return a, b
  end
  conn:execute("ROLLBACK TO SAVEPOINT luamigrate_entity")
  conn:execute("RELEASE SAVEPOINT luamigrate_entity")
  if ok then return a, b end
  return nil
end

local function run_all(conn, stmts) for _, s in ipairs(stmts) do conn:execute(s) end end

-- The declared entity as the server would store it, read back. Returns key, definition
-- and whether replacing it needs a drop; nil when it cannot be built here (it is then
-- treated as changed).
local function normalize(conn, d)
  local e, kind = d.e, d.e.entity
  local K = KIND[kind]
  local shadow = setmetatable({ schema = d.schema }, { __index = e })
  if K.build == "none" then
    if kind == "Extension" then return e.name, d.schema, false end
    return key_of(d.schema, e.table), e.definition, false
  end
  local filter, params, by_change = K.one(d)
  local before = {}
  if by_change then
    for _, r in ipairs(conn:query(select_from(kind, filter), table.unpack(params))) do before[r.oid] = r.xmin end
  end
  local function read()
    for _, r in ipairs(conn:query(select_from(kind, filter), table.unpack(params))) do
      if not by_change or before[r.oid] ~= r.xmin then
        local key, def = K.row(r)
        if K.build == "scratch" then key = key_of(d.schema, e.name) end
        return key, def
      end
    end
    error("not found", 0)
  end
  local function build(stmts)
    return function()
      run_all(conn, stmts)
      return read()
    end
  end
  if K.build == "scratch" then
    local scratch = setmetatable({ name = "luamigrate_autogen_seq" }, { __index = shadow })
    local key, def = attempt(conn, build(entity.create_sql(scratch)), true)
    if key then return key, def, false end
    return nil
  end
  if K.build == "replace" then
    local key, def = attempt(conn, build(entity.replace_sql(shadow)))
    if key then return key, def, false end
  end
  -- (what depends on it goes too, rolled back with the rest; an entity declared later is
  -- built again when its turn comes)
  local fresh = entity.drop_sql(shadow, { if_exists = true, cascade = true })
  for _, s in ipairs(entity.create_sql(shadow)) do fresh[#fresh + 1] = s end
  local key, def = attempt(conn, build(fresh))
  if key then return key, def, K.build == "replace" end
  return nil
end

-- Differences as ops, handed to put(bucket, op): "drop_entity" (before anything else
-- changes: nothing may depend on what is dropped) and "create_entity" (creates and
-- replaces, after the tables: views read them, triggers sit on them).
function M.compare(conn, declared, live, wanted, put)
  -- the declared ones, built in KINDS order then declaration order, in one savepoint
  local order = {}
  local rank = {}
  for i, k in ipairs(entity.KINDS) do rank[k] = i end
  for _, d in ipairs(declared) do order[#order + 1] = d end
  table.sort(order, function(a, b)
    if a.e.entity ~= b.e.entity then return rank[a.e.entity] < rank[b.e.entity] end
    return a.index < b.index
  end)
  conn:execute("SAVEPOINT luamigrate_entities")
  local ok, err = pcall(function()
    for _, d in ipairs(order) do
      d.key, d.def, d.needs_drop = normalize(conn, d)
      if d.key then
        d.key = d.e.entity .. ":" .. d.key
        -- whether the downgrade can put the live definition back in place (a view's
        -- columns can be added by CREATE OR REPLACE, not taken away)
        local l = live[d.key]
        if l and not d.needs_drop and d.e.entity ~= "MaterializedView" then
          d.down_needs_drop = not attempt(conn, function()
            run_all(conn, entity.replace_sql(l.e))
            return true
          end, true)
        end
      else
        local e = d.e
        local key = (e.entity == "Trigger" or e.entity == "Policy") and key_of(d.schema, e.table, e.name)
          or e.entity == "Grant" and key_of(d.schema, e.table, e.role)
          or e.entity == "RowLevelSecurity" and key_of(d.schema, e.table)
          or e.entity == "Extension" and e.name or key_of(d.schema, e.name)
        d.key = e.entity .. ":" .. key
      end
    end
  end)
  conn:execute("ROLLBACK TO SAVEPOINT luamigrate_entities")
  conn:execute("RELEASE SAVEPOINT luamigrate_entities")
  if not ok then error(err, 0) end

  local gone, replaced_by_drop = {}, {}
  local seen = {}
  for _, d in ipairs(order) do
    local l = live[d.key]
    seen[d.key] = true
    local what = entity.describe(setmetatable({ schema = d.schema }, { __index = d.e }))
    if wanted(d.e.entity:lower(), d.e.name, d.schema) then
      if not l then
        put(EARLY[d.e.entity] and "create_early" or "create_entity",
          { op = "create_entity", entity = d.e, text = "added " .. what })
      elseif d.def ~= l.def or (d.e.entity == "MaterializedView" and d.e.with_data ~= l.e.with_data) then
        local o = { op = "replace_entity", entity = d.e, old = l.e, needs_drop = d.needs_drop,
          down_needs_drop = d.down_needs_drop, text = "changed " .. what }
        put(EARLY[d.e.entity] and "create_early" or "create_entity", o)
        if o.needs_drop or o.down_needs_drop then replaced_by_drop[#replaced_by_drop + 1] = { o, l } end
      end
    end
  end
  for k, l in pairs(live) do
    if not seen[k] and wanted(l.kind:lower(), l.e.name, l.e.schema) then gone[#gone + 1] = l end
  end
  -- dependents first: later kinds first, and within a kind the newest first (an object can
  -- only have been built on older ones)
  table.sort(gone, function(a, b)
    if a.kind ~= b.kind then return rank[a.kind] > rank[b.kind] end
    return a.oid > b.oid
  end)
  local dropped = {}
  for _, l in ipairs(gone) do
    put(EARLY[l.kind] and "drop_late" or "drop_entity",
      { op = "drop_entity", entity = l.e, text = "removed " .. entity.describe(l.e) })
    dropped[entity.describe(l.e)] = true
  end
  -- an entity dropped and created again takes what depends on it along (the views on a
  -- view), unless the migration drops that anyway: their statements are read now
  for _, ol in ipairs(replaced_by_drop) do
    local o, l = ol[1], ol[2]
    local rebuild = {}
    for _, dep in ipairs(dependents.list_of_object(conn, CATALOG[l.kind], l.oid)) do
      if not dropped[dep.what] then rebuild[#rebuild + 1] = dep end
    end
    o.rebuild = rebuild
  end
end

return M
