-- Autogenerate for replaceable entities (views, materialized views, functions, procedures,
-- triggers, ..., and the user-defined types: domains, composite and range types;
-- luamigrate.entity): the live ones read from the catalogs with the definitions
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
WHERE p.prokind = '%s'
  -- a range type's constructors are the type's
  AND NOT EXISTS (SELECT 1 FROM pg_depend i WHERE i.classid = 'pg_proc'::regclass AND i.objid = p.oid
                  AND i.deptype = 'i')
  AND ]]):format(prokind) .. not_extension("pg_proc", "p.oid"),
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
       pg_get_expr(c.relpartbound, c.oid) AS def,
       CASE WHEN c.relkind = 'p' THEN pg_get_partkeydef(c.oid) END AS partition_by
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
JOIN pg_inherits h ON h.inhrelid = c.oid JOIN pg_class p ON p.oid = h.inhparent
WHERE c.relispartition AND c.relkind IN ('r', 'p')]],
  -- a partition partitioned in turn (relkind 'p') is one too, with its partitioning
  row = function(r)
    local e = entity.Partition(r.name, r.tbl, r.def, { schema = r.schema, partition_by = r.partition_by })
    return key_of(r.schema, r.name), e.definition, e
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

-- ---- user-defined types (their definitions: luamigrate.entity's line forms) ----------

local SCRATCH_TYPE = "luamigrate_autogen_type"

-- A name as quote_ident printed it, unquoted.
local function unident(s)
  if s:sub(1, 1) == '"' then return (s:sub(2, -2):gsub('""', '"')) end
  return s
end

local function lines_of(def)
  local out = {}
  for l in ((def or "") .. "\n"):gmatch("(.-)\n") do if l ~= "" then out[#out + 1] = l end end
  return out
end

-- A type kind: its query, and make(r), the entity a row describes; built under the scratch
-- name to be read back.
local function type_kind(sql, make, extra)
  local k = { sql = sql, build = "scratch",
    row = function(r)
      local e = make(r)
      return key_of(r.schema, r.name), e.definition, e
    end,
    one = function(d) return "schema = $1 AND name = $2", { d.schema, SCRATCH_TYPE } end }
  for key, v in pairs(extra or {}) do k[key] = v end
  return k
end

KIND.Domain = type_kind([[
SELECT n.nspname AS schema, t.typname AS name, t.oid::int8 AS oid,
       format_type(t.typbasetype, t.typtypmod) AS base,
       CASE WHEN t.typcollation <> 0 AND t.typcollation <> bt.typcollation THEN co.collname END AS collation,
       t.typdefault AS default_, t.typnotnull AS notnull,
       (SELECT string_agg(k.conname || chr(30) || pg_get_constraintdef(k.oid), chr(31) ORDER BY k.conname)
          FROM pg_constraint k WHERE k.contypid = t.oid AND k.contype = 'c') AS checks
FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace JOIN pg_type bt ON bt.oid = t.typbasetype
LEFT JOIN pg_collation co ON co.oid = t.typcollation
WHERE t.typtype = 'd' AND ]] .. not_extension("pg_type", "t.oid"),
  function(r)
    local checks = {}
    for c in ((r.checks or "") .. "\31"):gmatch("(.-)\31") do
      local name, def = c:match("^(.-)\30CHECK (.*)$")
      if name then checks[#checks + 1] = require("luamigrate.schema").CheckConstraint(def, { name = name }) end
    end
    return entity.Domain(r.name, r.base, { schema = r.schema, collation = r.collation, default = r.default_,
      not_null = r.notnull, constraints = checks })
  end)

KIND.CompositeType = type_kind([[
SELECT n.nspname AS schema, t.typname AS name, t.oid::int8 AS oid,
       (SELECT string_agg(quote_ident(a.attname) || chr(9) || format_type(a.atttypid, a.atttypmod)
                 || CASE WHEN a.attcollation <> 0 AND a.attcollation <> at.typcollation
                         THEN ' COLLATE ' || quote_ident(co.collname) ELSE '' END, chr(10) ORDER BY a.attnum)
          FROM pg_attribute a JOIN pg_type at ON at.oid = a.atttypid
          LEFT JOIN pg_collation co ON co.oid = a.attcollation
          WHERE a.attrelid = t.typrelid AND a.attnum > 0 AND NOT a.attisdropped) AS def
FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace JOIN pg_class c ON c.oid = t.typrelid
WHERE t.typtype = 'c' AND c.relkind = 'c' AND ]] .. not_extension("pg_type", "t.oid"),
  function(r)
    local attrs = {}
    for i, l in ipairs(lines_of(r.def)) do
      local name, ty = l:match("^(.-)\t(.*)$")
      attrs[i] = { unident(name), ty }
    end
    return entity.CompositeType(r.name, attrs, { schema = r.schema })
  end)

-- pg_range.rngmultitypid (and multirange types) came with PostgreSQL 14: before it the
-- query leaves the multirange out (its rows then have no multirange_type_name).
local MULTIRANGE = 140000

-- The range types' query for a server of version `version` (server_version_num).
function M.range_sql(version)
  local multi = version >= MULTIRANGE
  return [[
SELECT n.nspname AS schema, t.typname AS name, t.oid::int8 AS oid, format_type(r.rngsubtype, NULL) AS subtype,
       CASE WHEN NOT opc.opcdefault THEN quote_ident(opc.opcname) END AS subtype_opclass,
       CASE WHEN r.rngcollation <> 0 AND r.rngcollation <> st.typcollation THEN co.collname END AS collation,
       NULLIF(r.rngcanonical::text, '-') AS canonical, NULLIF(r.rngsubdiff::text, '-') AS subtype_diff]]
    .. (multi and ",\n       mt.typname AS multirange_type_name" or "") .. [[

FROM pg_range r JOIN pg_type t ON t.oid = r.rngtypid JOIN pg_namespace n ON n.oid = t.typnamespace
JOIN pg_type st ON st.oid = r.rngsubtype JOIN pg_opclass opc ON opc.oid = r.rngsubopc
]] .. (multi and "JOIN pg_type mt ON mt.oid = r.rngmultitypid " or "") .. [[
LEFT JOIN pg_collation co ON co.oid = r.rngcollation
WHERE ]] .. not_extension("pg_type", "t.oid")
end

-- The server's version_num, read once per connection.
local versions = setmetatable({}, { __mode = "k" })
local function server_version(conn)
  if not versions[conn] then
    versions[conn] = math.tointeger(tonumber(conn:query("SELECT current_setting('server_version_num')::int AS v")[1].v))
  end
  return versions[conn]
end

KIND.RangeType = type_kind(M.range_sql, function(r)
    return entity.RangeType(r.name, r.subtype, { schema = r.schema, subtype_opclass = r.subtype_opclass,
      collation = r.collation, canonical = r.canonical, subtype_diff = r.subtype_diff,
      multirange_type_name = r.multirange_type_name })
  end, {
  -- built under the scratch name with PostgreSQL's multirange name (the declared one may be
  -- taken by the live type): the declared multirange name is put back after (from
  -- PostgreSQL 14, which has multiranges)
  scratch = function(e)
    local o = {}
    for k, v in pairs(e.options) do if k ~= "multirange_type_name" then o[k] = v end end
    return { options = o }
  end,
  fix = function(d, def, version)
    local m = d.e.options.multirange_type_name
    if m and m ~= entity.default_multirange(d.e.name) and version >= MULTIRANGE then
      def = def .. "\nmultirange_type_name = " .. m
    end
    return def
  end,
})

-- The changes between a domain's lines `from` and `to` as op.alter_domain options, or nil
-- when ALTER DOMAIN cannot make them (another base type or collation).
local function domain_alter(from, to)
  local function parts(def)
    local p = { checks = {} }
    for _, l in ipairs(lines_of(def)) do
      if l:match("^AS ") or l:match("^COLLATE ") then p.fixed = (p.fixed or "") .. l .. "\n"
      elseif l:match("^DEFAULT ") then p.default = l:sub(9)
      elseif l == "NOT NULL" then p.not_null = true
      else
        local name, check = l:match("^CONSTRAINT (.-) CHECK (.*)$")
        if name then p.checks[unident(name)] = check end
      end
    end
    return p
  end
  local a, b = parts(from), parts(to)
  if a.fixed ~= b.fixed then return nil end
  local o = {}
  if a.default ~= b.default then o.default = b.default or false end
  if (a.not_null or false) ~= (b.not_null or false) then o.not_null = b.not_null or false end
  local drops, adds = {}, {}
  for n, c in pairs(a.checks) do if b.checks[n] ~= c then drops[#drops + 1] = n end end
  for n, c in pairs(b.checks) do if a.checks[n] ~= c then adds[n] = c end end
  table.sort(drops)
  if #drops > 0 then o.drop_constraints = drops end
  if next(adds) then o.add_constraints = adds end
  return o
end

-- The changes between a composite type's lines as op.alter_composite_type options, or nil
-- when ALTER TYPE cannot make them (attributes reordered, or one inserted before the last
-- kept one, unless `anywhere`: it then comes last). `used`: a column uses the type (then no
-- attribute may change its type).
local function composite_alter(from, to, used, anywhere)
  local function attrs(def)
    local list, by = {}, {}
    for _, l in ipairs(lines_of(def)) do
      local name, ty = l:match("^(.-)\t(.*)$")
      list[#list + 1] = name
      by[name] = ty
    end
    return list, by
  end
  local al, ab = attrs(from)
  local bl, bb = attrs(to)
  local kept_a, kept_b = {}, {}
  for _, n in ipairs(al) do if bb[n] then kept_a[#kept_a + 1] = n end end
  local last_kept = 0
  for i, n in ipairs(bl) do
    if ab[n] then
      kept_b[#kept_b + 1] = n
      last_kept = i
    end
  end
  if table.concat(kept_a, "\n") ~= table.concat(kept_b, "\n") then return nil end
  local o = { drop_attributes = {}, alter_attributes = {}, add_attributes = {} }
  for _, n in ipairs(al) do if not bb[n] then o.drop_attributes[#o.drop_attributes + 1] = unident(n) end end
  for i, n in ipairs(bl) do
    if not ab[n] then
      if i < last_kept and not anywhere then return nil end
      o.add_attributes[#o.add_attributes + 1] = { unident(n), bb[n] }
    elseif ab[n] ~= bb[n] then
      if used then return nil end
      o.alter_attributes[#o.alter_attributes + 1] = { unident(n), bb[n] }
    end
  end
  for k, v in pairs(o) do if #v == 0 then o[k] = nil end end
  return o
end

-- The query for the columns (and domains) that use type $1, its array or (from
-- PostgreSQL 14) its multirange, on a server of version `version`: rows of `what`.
function M.type_users_sql(version)
  local multi = version >= MULTIRANGE and [[
  UNION SELECT r.rngmultitypid FROM pg_range r WHERE r.rngtypid = $1::oid
  UNION SELECT m.typarray FROM pg_range r JOIN pg_type m ON m.oid = r.rngmultitypid WHERE r.rngtypid = $1::oid]]
    or ""
  return [[
WITH ty AS (
  SELECT t.oid FROM pg_type t WHERE t.oid = $1::oid
  UNION SELECT t.typarray FROM pg_type t WHERE t.oid = $1::oid AND t.typarray <> 0]] .. multi .. [[)
SELECT format('column %s.%s.%s', n.nspname, c.relname, a.attname) AS what
FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE a.atttypid IN (SELECT oid FROM ty) AND a.attnum > 0 AND NOT a.attisdropped
  AND c.relkind IN ('r', 'p', 'v', 'm', 'c', 'f')
UNION ALL
SELECT format('domain %s.%s', n.nspname, d.typname) FROM pg_type d JOIN pg_namespace n ON n.oid = d.typnamespace
WHERE d.typtype = 'd' AND d.typbasetype IN (SELECT oid FROM ty)
ORDER BY 1]]
end

-- The columns (and domains) that use type `oid`: "column public.t.c", "domain public.d", ...
local function type_users(conn, oid)
  local out = {}
  for _, r in ipairs(conn:query(M.type_users_sql(server_version(conn)), tostring(math.tointeger(oid) or oid))) do
    out[#out + 1] = r.what
  end
  return out
end

-- Kinds tables may use (a column of an extension's type, a default drawing on a sequence):
-- created before the tables, dropped after them.
local EARLY = { Extension = true, Sequence = true }

-- The catalog each kind lives in (for pg_depend).
local CATALOG = { View = "pg_class", MaterializedView = "pg_class", Function = "pg_proc", Partition = "pg_class",
  Procedure = "pg_proc", Trigger = "pg_trigger", Policy = "pg_policy", Sequence = "pg_class",
  Extension = "pg_extension", Domain = "pg_type", CompositeType = "pg_type", RangeType = "pg_type" }

-- User-defined types: created after the enums (a domain over one) and before the tables
-- (a column of one); dropped after the tables and before the enums.
local TYPE = { Domain = true, CompositeType = true, RangeType = true }

local function select_from(conn, kind, filter)
  local sql = KIND[kind].sql
  if type(sql) == "function" then sql = sql(server_version(conn)) end
  return ("SELECT * FROM (%s) q WHERE %s ORDER BY oid"):format(sql, filter)
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
      for _, r in ipairs(conn:query(select_from(conn, kind, "schema = ANY ($1::text[])"), pg_array(schemas))) do
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

-- A declared range type compared as written (one with a canonical function cannot be built
-- under the scratch name: the function takes the type itself), its subtype and functions
-- named as the server prints them: format_type, and regproc's output (schema-qualified
-- only when not on the search_path), so that an unchanged declaration compares equal.
local function range_as_declared(conn, d, version)
  local e = d.e
  -- (a name the server cannot parse is kept as written)
  local function server_text(sql, ...)
    local args = { ... }
    return attempt(conn, function() return conn:query(sql, table.unpack(args))[1].v end, true)
  end
  local subtype = server_text("SELECT format_type(to_regtype($1), NULL) AS v", e.subtype) or e.subtype
  local function proc(name, args)
    if not name then return nil end
    return server_text("SELECT coalesce(to_regprocedure($1)::oid::regproc::text, to_regproc($2)::oid::regproc::text) "
      .. "AS v", name .. "(" .. table.concat(args, ", ") .. ")", name) or name
  end
  local o = {}
  for k, v in pairs(e.options) do o[k] = v end
  o.canonical = proc(o.canonical, { quote.qualified(d.schema, e.name) })
  o.subtype_diff = proc(o.subtype_diff, { subtype, subtype })
  if version < MULTIRANGE then o.multirange_type_name = nil end
  return entity.range_lines { name = e.name, subtype = subtype, options = o }
end

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
    for _, r in ipairs(conn:query(select_from(conn, kind, filter), table.unpack(params))) do before[r.oid] = r.xmin end
  end
  local function read()
    for _, r in ipairs(conn:query(select_from(conn, kind, filter), table.unpack(params))) do
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
    local fields = K.scratch and K.scratch(e) or {}
    fields.name = TYPE[kind] and SCRATCH_TYPE or "luamigrate_autogen_seq"
    local scratch = setmetatable(fields, { __index = shadow })
    local key, def = attempt(conn, build(entity.create_sql(scratch)), true)
    if key then return key, K.fix and K.fix(d, def, server_version(conn)) or def, false end
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

-- The table columns of type `oid` (a domain, a composite type) or of its array, each as the
-- enum swap's users are:
-- {table = {schema, name}, column = {name, default, array}} (a partition's and an
-- inheritor's columns follow their parent's).
local function type_columns(conn, oid)
  local out = {}
  for _, r in ipairs(conn:query([[
SELECT n.nspname AS schema, c.relname AS tbl, a.attname AS col, a.atttypid <> $1::oid AS arr,
       pg_get_expr(ad.adbin, ad.adrelid) AS default_
FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace
LEFT JOIN pg_attrdef ad ON ad.adrelid = a.attrelid AND ad.adnum = a.attnum AND a.attgenerated = ''
WHERE a.atttypid IN (SELECT $1::oid UNION SELECT t.typarray FROM pg_type t WHERE t.oid = $1::oid)
  AND c.relkind IN ('r', 'p') AND a.attnum > 0 AND NOT a.attisdropped AND a.attinhcount = 0
ORDER BY 1, 2, a.attnum]], tostring(math.tointeger(oid) or oid))) do
    out[#out + 1] = { table = { schema = r.schema, name = r.tbl },
      column = { name = r.col, default = r.default_, array = r.arr } }
  end
  return out
end

-- The table checks and the indexes with an expression or a predicate on the columns of
-- type `oid` (or of its array): {schema, table, kind = "check" | "index", name}. The
-- server keeps their definitions with the old base type's casts ((n)::integer < 10) across
-- the conversion, so the swap creates them again.
local function type_exprs(conn, oid)
  local out = {}
  for _, r in ipairs(conn:query([[
WITH col AS (
  SELECT a.attrelid, a.attnum FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
  WHERE a.atttypid IN (SELECT $1::oid UNION SELECT t.typarray FROM pg_type t WHERE t.oid = $1::oid)
    AND c.relkind IN ('r', 'p') AND a.attnum > 0 AND NOT a.attisdropped AND a.attinhcount = 0)
SELECT DISTINCT n.nspname AS schema, c.relname AS tbl,
       CASE WHEN k.oid IS NOT NULL THEN 'check' ELSE 'index' END AS kind, coalesce(k.conname, ic.relname) AS name
FROM pg_depend d JOIN col ON d.refclassid = 'pg_class'::regclass AND d.refobjid = col.attrelid
  AND d.refobjsubid = col.attnum
JOIN pg_class c ON c.oid = col.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace
LEFT JOIN pg_constraint k ON d.classid = 'pg_constraint'::regclass AND k.oid = d.objid AND k.contype = 'c'
LEFT JOIN pg_class ic ON d.classid = 'pg_class'::regclass AND ic.oid = d.objid AND ic.relkind IN ('i', 'I')
LEFT JOIN pg_index i ON i.indexrelid = ic.oid
WHERE k.oid IS NOT NULL
   OR (ic.oid IS NOT NULL AND (i.indexprs IS NOT NULL OR i.indpred IS NOT NULL)
       AND NOT EXISTS (SELECT 1 FROM pg_constraint x WHERE x.conindid = ic.oid))
ORDER BY 1, 2, 3, 4]], tostring(math.tointeger(oid) or oid))) do
    out[#out + 1] = { schema = r.schema, table = r.tbl, kind = r.kind, name = r.name }
  end
  return out
end

-- A changed domain, composite or range type: op.alter_domain / op.alter_composite_type
-- where PostgreSQL can alter it in place; else a drop and a create while nothing uses it;
-- for a domain's new base type or collation and a composite type's attributes reordered or
-- retyped, the enum's rename-swap (a new type under a scratch name, the columns converted
-- to it, the old one dropped, the new one renamed, what stands in the way rebuilt around
-- it); else a refusal, named in the migration and in `check`.
-- The objects to rebuild around a swap as the upgrade creates them again: a view or a
-- domain schema.lua declares, unchanged, from its declaration (its printed definition would keep the
-- old type's casts: `(n)::integer + 1`), others as they are. `declared`: the declared
-- entities by kind and qualified name.
local function as_declared(deps, declared)
  local out = {}
  for i, dep in ipairs(deps) do
    local kind, name = dep.what:match("^(%a+) (.*)$")
    local d = dep.drop and declared[(kind == "view" and "View" or kind == "domain" and "Domain" or "") .. ":" .. name]
    if d then
      local creates = entity.create_sql(setmetatable({ schema = d.schema }, { __index = d.e }))
      for j = 2, #dep.creates do creates[#creates + 1] = dep.creates[j] end
      out[i] = { what = dep.what, drop = dep.drop, creates = creates }
    else
      out[i] = dep
    end
  end
  return out
end

local function type_change(conn, d, l, what, declared)
  local kind = d.e.entity
  local users = type_users(conn, l.oid)
  local up, down
  if kind == "Domain" then
    up, down = domain_alter(l.def, d.def), domain_alter(d.def, l.def)
  elseif kind == "CompositeType" then
    up, down = composite_alter(l.def, d.def, #users > 0), composite_alter(d.def, l.def, #users > 0)
  end
  local note
  if up and not down and kind == "CompositeType" and #users > 0 then
    -- an attribute dropped from the middle comes back last on the way down (a column keeps
    -- its rows either way, where a drop and a create would lose them all)
    down = composite_alter(d.def, l.def, true, true)
    note = down and "PostgreSQL adds an attribute at the end: those dropped come back after the others"
  end
  if up and down then
    return { op = kind == "Domain" and "alter_domain" or "alter_composite_type", entity = d.e, old = l.e,
      up = up, down = down, down_note = note, text = "changed " .. what }
  end
  if (kind == "Domain" or kind == "CompositeType") and #users > 0 then
    local deps, stuck = dependents.list(conn, quote.qualified(l.e.schema, l.e.name)), {}
    for _, dep in ipairs(deps) do if not dep.drop then stuck[#stuck + 1] = dep.what end end
    local columns = type_columns(conn, l.oid)
    for _, u in ipairs(columns) do
      -- (a transform expression cannot take an array apart)
      if u.column.array and kind == "CompositeType" then
        stuck[#stuck + 1] = ("column %s.%s.%s (an array of the type)"):format(u.table.schema, u.table.name,
          u.column.name)
      end
    end
    if #stuck == 0 then
      -- (a new type has no comment: the old one's goes over to it)
      local comment = conn:query("SELECT obj_description($1::oid, 'pg_type') AS c",
        tostring(math.tointeger(l.oid) or l.oid))[1].c
      return { op = "swap_type", entity = d.e, schema = d.schema, old = l.e, users = columns, dependents = deps,
        up_dependents = as_declared(deps, declared),
        exprs = type_exprs(conn, l.oid), comment = comment,
        text = ("changed %s: %s, so created anew and %d column(s) converted to it"):format(what,
          kind == "Domain" and "a new base type or collation" or "attributes reordered or retyped", #columns) }
    end
    users = stuck
  end
  if #users > 0 then
    return { op = "type_refused", entity = d.e, users = users,
      text = ("changed %s: not applied, PostgreSQL cannot %s in place and %s uses it (change it by hand)")
        :format(what, kind == "RangeType" and "alter a range type" or "make this change", table.concat(users, ", ")) }
  end
  return { op = "replace_entity", entity = d.e, old = l.e, needs_drop = true, down_needs_drop = true,
    text = "changed " .. what .. " (dropped and created: nothing uses it)" }
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
        -- a type not built here (it uses one this migration creates) compares as declared
        if e.entity == "RangeType" then
          d.def = range_as_declared(conn, d, server_version(conn))
        elseif TYPE[e.entity] then
          d.def = e.definition
        end
      end
    end
  end)
  conn:execute("ROLLBACK TO SAVEPOINT luamigrate_entities")
  conn:execute("RELEASE SAVEPOINT luamigrate_entities")
  if not ok then error(err, 0) end

  -- (only those unchanged: a changed one may use what this migration adds after the swap,
  -- and is replaced later anyway)
  local declared_by_name = {}
  for _, d in ipairs(order) do
    if live[d.key] and live[d.key].def == d.def then
      declared_by_name[d.e.entity .. ":" .. quote.qualified(d.schema, d.e.name)] = d
    end
  end
  local gone, replaced_by_drop = {}, {}
  local seen = {}
  for _, d in ipairs(order) do
    local l = live[d.key]
    seen[d.key] = true
    local what = entity.describe(setmetatable({ schema = d.schema }, { __index = d.e }))
    if wanted(d.e.entity:lower(), d.e.name, d.schema) then
      if not l then
        put(TYPE[d.e.entity] and "create_type" or EARLY[d.e.entity] and "create_early" or "create_entity",
          { op = "create_entity", entity = d.e, text = "added " .. what })
      elseif TYPE[d.e.entity] then
        if d.def ~= l.def then
          local o = type_change(conn, d, l, what, declared_by_name)
          put("create_type", o)
          if o.needs_drop then replaced_by_drop[#replaced_by_drop + 1] = { o, l } end
        end
      elseif d.def ~= l.def or (d.e.entity == "MaterializedView" and d.e.with_data ~= l.e.with_data) then
        local o = { op = "replace_entity", entity = d.e, old = l.e, needs_drop = d.needs_drop,
          down_needs_drop = d.down_needs_drop, text = "changed " .. what }
        put(EARLY[d.e.entity] and "create_early" or "create_entity", o)
        if o.needs_drop or o.down_needs_drop then
          replaced_by_drop[#replaced_by_drop + 1] = { o, l }
        elseif d.e.entity == "MaterializedView" then
          -- replaced by a drop and a create too: its grants and owner go back after it
          o.grants = dependents.grants(conn, "pg_class", l.oid)
        end
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
    put(TYPE[l.kind] and "drop_type" or EARLY[l.kind] and "drop_late" or "drop_entity",
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
    -- and its owner and grants, which a new object would not have
    if CATALOG[l.kind] == "pg_class" or CATALOG[l.kind] == "pg_proc" then
      o.grants = dependents.grants(conn, CATALOG[l.kind], l.oid)
    end
  end
end

return M
