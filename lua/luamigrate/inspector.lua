-- sa.inspect(bind): SQLAlchemy's Inspector over the migration's live connection, read from
-- pg_catalog, with the methods migrations call (get_table_names, has_table, get_columns,
-- get_indexes, get_foreign_keys, ...), each returning what SQLAlchemy's PostgreSQL dialect
-- returns, as Lua tables (a list of dicts is a sequence of tables keyed by the same names).
-- A schema left out is the connection's current_schema(), as SQLAlchemy's default schema.
-- Every method takes the schema positionally or in an options table ({ schema = "s" }),
-- the Python call's keyword argument. There is no database in --sql mode: sa.inspect fails.
-- The catalog rules it shares with autogenerate (foreign-key actions, a CHECK's condition,
-- a key's column names in one query) are luamigrate.autogen.inspect's; the engine's table
-- suffixes are core.version_table's.
local catalog = require "luamigrate.autogen.inspect"
local split_list = require("luamigrate.autogen.normalize").split_list

local M = {}

local Inspector = {}
Inspector.__index = Inspector
Inspector.__name = "luamigrate.Inspector"

local function schema_of(opts)
  if type(opts) == "table" then return opts.schema end
  return opts
end

function Inspector:rows(sql, ...)
  return (self.bind:query(sql, ...))
end

-- a list of one column's values
local function column(rows, name)
  local out = {}
  for i, r in ipairs(rows) do out[i] = r[name] end
  return out
end

-- luamigrate's own tables beside a version table (X plus one of core.version_table's
-- suffixes, next to a table X with a version_num column) are the tool's, not the
-- application's: Alembic's inspector never sees them, so a migration's inspector does not
-- either. (A migration is not told the configured version table's name, hence the test on
-- the version_num column.)
local function not_ours()
  local alts = {}
  for _, suffix in pairs(require("luamigrate.core").version_table.suffix) do
    alts[#alts + 1] = (suffix:gsub("[^%w_]", "\\%0"))
  end
  table.sort(alts)
  local re = "(" .. table.concat(alts, "|") .. ")$"
  return ([[
NOT (c.relname ~ '%s' AND EXISTS (SELECT 1 FROM pg_catalog.pg_class v
  JOIN pg_catalog.pg_attribute a ON a.attrelid = v.oid AND a.attname = 'version_num'
  WHERE v.relnamespace = c.relnamespace AND v.relname = regexp_replace(c.relname, '%s', '')))]]):format(re, re)
end
local NOT_OURS = not_ours()

-- relkinds: ordinary and partitioned tables (SQLAlchemy's get_table_names)
local RELS = [[
SELECT c.relname FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = coalesce($1, current_schema()) AND c.relkind = ANY (string_to_array($2, ','))
AND ]] .. NOT_OURS .. [[ ORDER BY c.relname]]

-- get_table_names, get_view_names, ...: the names of one kind of relation, sorted
for method, kinds in pairs { get_table_names = "r,p", get_view_names = "v", get_materialized_view_names = "m",
  get_sequence_names = "S" } do
  Inspector[method] = function(self, opts) return column(self:rows(RELS, schema_of(opts), kinds), "relname") end
end

function Inspector:get_schema_names()
  return column(self:rows([[SELECT nspname FROM pg_catalog.pg_namespace
    WHERE nspname NOT LIKE 'pg\_%' AND nspname <> 'information_schema' ORDER BY nspname]]), "nspname")
end

function Inspector:default_schema_name()
  return self:rows("SELECT current_schema() AS s")[1].s
end

local function has(self, sql, ...)
  return #self:rows(sql, ...) > 0
end

-- has_table: tables, views, materialized views and foreign tables, as SQLAlchemy 2.0's
function Inspector:has_table(name, opts)
  return has(self, [[SELECT 1 FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
    WHERE n.nspname = coalesce($2, current_schema()) AND c.relname = $1 AND c.relkind IN ('r','p','v','m','f')
    AND ]] .. NOT_OURS, name, schema_of(opts))
end

function Inspector:has_sequence(name, opts)
  return has(self, [[SELECT 1 FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
    WHERE n.nspname = coalesce($2, current_schema()) AND c.relname = $1 AND c.relkind = 'S']], name, schema_of(opts))
end

function Inspector:has_schema(name)
  return has(self, "SELECT 1 FROM pg_catalog.pg_namespace WHERE nspname = $1", name)
end

function Inspector:has_index(table_name, index_name, opts)
  return has(self, [[SELECT 1 FROM pg_catalog.pg_index x JOIN pg_catalog.pg_class t ON t.oid = x.indrelid
    JOIN pg_catalog.pg_class i ON i.oid = x.indexrelid JOIN pg_catalog.pg_namespace n ON n.oid = t.relnamespace
    WHERE n.nspname = coalesce($3, current_schema()) AND t.relname = $1 AND i.relname = $2]],
    table_name, index_name, schema_of(opts))
end

-- the table's oid, or an error naming it (SQLAlchemy's NoSuchTableError)
local function table_oid(self, name, opts)
  local r = self:rows([[SELECT c.oid::bigint AS oid FROM pg_catalog.pg_class c
    JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
    WHERE n.nspname = coalesce($2, current_schema()) AND c.relname = $1 AND c.relkind IN ('r','p','v','m','f')]],
    name, schema_of(opts))[1]
  if not r then
    local s = schema_of(opts)
    error(("NoSuchTableError: %s"):format(s and (s .. "." .. name) or name), 3)
  end
  return r.oid
end

-- get_columns: name, type (as PostgreSQL writes it: format_type), nullable, default (the
-- expression's text or nil), autoincrement (a serial's or identity column), comment
function Inspector:get_columns(name, opts)
  local oid = table_oid(self, name, opts)
  local rows = self:rows([[SELECT a.attname AS name, pg_catalog.format_type(a.atttypid, a.atttypmod) AS type,
      NOT a.attnotnull AS nullable, pg_catalog.pg_get_expr(d.adbin, d.adrelid) AS "default",
      a.attidentity <> '' AS identity, a.attgenerated <> '' AS generated,
      pg_catalog.col_description(a.attrelid, a.attnum) AS comment
    FROM pg_catalog.pg_attribute a
    LEFT JOIN pg_catalog.pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
    WHERE a.attrelid = $1 AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum]], oid)
  local out = {}
  for i, r in ipairs(rows) do
    local default = r.default
    if r.generated then default = nil end
    out[i] = { name = r.name, type = r.type, nullable = r.nullable, default = default, comment = r.comment,
      autoincrement = r.identity or (default ~= nil and default:match("^nextval%(") ~= nil) }
  end
  return out
end

-- the table's constraints of one type: name and key column names (in one query)
local function constraints(self, oid, contype)
  return self:rows([[SELECT conname, ]] .. catalog.column_names_sql("conkey", "conrelid") .. [[ AS cols
    FROM pg_catalog.pg_constraint WHERE conrelid = $1 AND contype = $2 ORDER BY conname]], oid, contype)
end

function Inspector:get_pk_constraint(name, opts)
  local oid = table_oid(self, name, opts)
  local r = constraints(self, oid, "p")[1]
  if not r then return { constrained_columns = {}, name = nil } end
  return { constrained_columns = split_list(r.cols), name = r.conname }
end

function Inspector:get_foreign_keys(name, opts)
  local oid = table_oid(self, name, opts)
  local rows = self:rows([[SELECT k.conname, ]] .. catalog.column_names_sql("k.conkey", "k.conrelid") .. [[ AS cols,
      ]] .. catalog.column_names_sql("k.confkey", "k.confrelid") .. [[ AS fcols, r.relname AS referred_table,
      CASE WHEN rn.nspname = current_schema() THEN NULL ELSE rn.nspname END AS referred_schema,
      k.confupdtype AS onupdate, k.confdeltype AS ondelete, k.condeferrable, k.condeferred
    FROM pg_catalog.pg_constraint k JOIN pg_catalog.pg_class r ON r.oid = k.confrelid
    JOIN pg_catalog.pg_namespace rn ON rn.oid = r.relnamespace
    WHERE k.conrelid = $1 AND k.contype = 'f' ORDER BY k.conname]], oid)
  local out = {}
  for i, r in ipairs(rows) do
    local options = { onupdate = catalog.FK_ACTION[r.onupdate], ondelete = catalog.FK_ACTION[r.ondelete] }
    if r.condeferrable then
      options.deferrable = true
      options.initially = r.condeferred and "DEFERRED" or "IMMEDIATE"
    end
    out[i] = { name = r.conname, constrained_columns = split_list(r.cols),
      referred_schema = r.referred_schema, referred_table = r.referred_table,
      referred_columns = split_list(r.fcols), options = options }
  end
  return out
end

-- get_indexes: every index but the primary key's (SQLAlchemy's); column_names holds nil for
-- an expression, whose text is in expressions
function Inspector:get_indexes(name, opts)
  local oid = table_oid(self, name, opts)
  -- each key column: its attnum (0: an expression), its name, and the expression's text,
  -- in one query (chr(31) between them, chr(30) between keys)
  local rows = self:rows([[SELECT i.relname, x.indisunique,
      (SELECT string_agg(k.attnum::text || chr(31) || coalesce(a.attname, '') || chr(31)
           || CASE WHEN k.attnum = 0 THEN pg_catalog.pg_get_indexdef(x.indexrelid, k.i::int, true) ELSE '' END,
           chr(30) ORDER BY k.i)
         FROM unnest(x.indkey::int2[]) WITH ORDINALITY AS k(attnum, i)
         LEFT JOIN pg_catalog.pg_attribute a ON a.attrelid = x.indrelid AND a.attnum = k.attnum
         WHERE k.i <= x.indnkeyatts) AS keys,
      pg_catalog.pg_get_expr(x.indpred, x.indrelid) AS pred, am.amname,
      EXISTS (SELECT 1 FROM pg_catalog.pg_constraint c
        WHERE c.conindid = x.indexrelid AND c.contype = 'u') AS dup
    FROM pg_catalog.pg_index x JOIN pg_catalog.pg_class i ON i.oid = x.indexrelid
    JOIN pg_catalog.pg_am am ON am.oid = i.relam
    WHERE x.indrelid = $1 AND NOT x.indisprimary ORDER BY i.relname]], oid)
  local out = {}
  for i, r in ipairs(rows) do
    local cols, exprs, n, has_expr = {}, {}, 0, false
    for key in ((r.keys or "") .. "\30"):gmatch("(.-)\30") do
      n = n + 1
      local attnum, col, e = key:match("^(%-?%d+)\31(.-)\31(.*)$")
      if attnum == "0" then
        exprs[n], has_expr = e, true
      else
        cols[n] = col
        exprs[n] = col
      end
    end
    local d = { name = r.relname, unique = r.indisunique, column_names = cols, dialect_options = {} }
    if r.pred then d.dialect_options.postgresql_where = r.pred end
    if r.amname ~= "btree" then d.dialect_options.postgresql_using = r.amname end
    if r.dup then d.duplicates_constraint = r.relname end
    if has_expr then d.expressions = exprs end
    out[i] = d
  end
  return out
end

function Inspector:get_unique_constraints(name, opts)
  local oid = table_oid(self, name, opts)
  local rows = constraints(self, oid, "u")
  local out = {}
  for i, r in ipairs(rows) do out[i] = { name = r.conname, column_names = split_list(r.cols) } end
  return out
end

-- get_check_constraints: sqltext is the condition without CHECK ( ... ), as SQLAlchemy's
function Inspector:get_check_constraints(name, opts)
  local oid = table_oid(self, name, opts)
  local rows = self:rows([[SELECT conname, pg_catalog.pg_get_constraintdef(oid, true) AS def
    FROM pg_catalog.pg_constraint WHERE conrelid = $1 AND contype = 'c' ORDER BY conname]], oid)
  local out = {}
  for i, r in ipairs(rows) do
    local text, not_valid, no_inherit = catalog.check_condition(r.def)
    local d = { name = r.conname, sqltext = text }
    -- SQLAlchemy's dialect_options of a reflected check
    if not_valid or no_inherit then
      d.dialect_options = { not_valid = not_valid or nil, no_inherit = no_inherit or nil }
    end
    out[i] = d
  end
  return out
end

function Inspector:get_table_comment(name, opts)
  local oid = table_oid(self, name, opts)
  return { text = self:rows("SELECT pg_catalog.obj_description($1::oid, 'pg_class') AS t", oid)[1].t }
end

-- get_enums([schema]): name, schema, visible, labels (in their order); no schema: the enums
-- visible on the search path, "*": all of them
function Inspector:get_enums(opts)
  local s = schema_of(opts)
  local rows = self:rows([[SELECT t.typname, n.nspname, pg_catalog.pg_type_is_visible(t.oid) AS visible,
      array_to_string(ARRAY(SELECT e.enumlabel FROM pg_catalog.pg_enum e WHERE e.enumtypid = t.oid
        ORDER BY e.enumsortorder), chr(1)) AS labels
    FROM pg_catalog.pg_type t JOIN pg_catalog.pg_namespace n ON n.oid = t.typnamespace
    WHERE t.typtype = 'e' AND CASE WHEN $1::text IS NULL THEN pg_catalog.pg_type_is_visible(t.oid)
      WHEN $1 = '*' THEN true ELSE n.nspname = $1 END
    ORDER BY n.nspname, t.typname]], s)
  local out = {}
  for i, r in ipairs(rows) do
    local labels = {}
    for l in (r.labels .. "\1"):gmatch("(.-)\1") do labels[#labels + 1] = l end
    if r.labels == "" then labels = {} end
    out[i] = { name = r.typname, schema = r.nspname, visible = r.visible, labels = labels }
  end
  return out
end

-- sa.inspect(bind) (or bind.engine); Inspector.from_engine(bind)
function M.inspect(bind)
  if type(bind) ~= "table" or type(bind.status) ~= "function" then
    error(("sa.inspect: pass the migration's connection (op.get_bind()), got %s"):format(type(bind)), 3)
  end
  if bind:status() == "offline" then
    error("sa.inspect: there is no database to inspect in --sql mode (Alembic's offline mode cannot "
      .. "inspect either); run this migration online", 3)
  end
  return setmetatable({ bind = bind }, Inspector)
end

return M
