-- SQL rendering for PostgreSQL: pure functions from op arguments to a list of statements.
-- Identifiers are quoted by luamigrate.quote; DDL cannot take bind parameters, so values
-- that end up in DDL (defaults, comments, enum labels) are rendered as escaped literals.
local quote = require "luamigrate.quote"
local types = require "luamigrate.types"
local schema = require "luamigrate.schema"
local expr = require "luamigrate.expr"

local M = {}
local ident, qualified, literal = quote.ident, quote.qualified, quote.literal

local function idents(list)
  local out = {}
  for i, c in ipairs(list) do out[i] = ident(c) end
  return table.concat(out, ", ")
end
M.idents = idents

-- Raw SQL from a string or sa.text; values of other types become literals.
local function sqltext(v)
  if type(v) == "string" then return v end
  if schema.is(v, "text") then return v.text end
  if expr.is_expr(v) then return expr.inline_sql(v, M.value) end
  error(("expected SQL text, got %s"):format(type(v)), 3)
end

-- A Lua value as an SQL literal (inline_literal, offline bulk_insert).
function M.value(v)
  local t = type(v)
  if v == nil then return "NULL" end
  if t == "boolean" then return v and "true" or "false" end
  if t == "number" then
    if math.type(v) == "integer" then return tostring(v) end
    if v ~= v or v == math.huge or v == -math.huge then
      return "'" .. (v ~= v and "NaN" or (v > 0 and "Infinity" or "-Infinity")) .. "'::float8"
    end
    return ("%.17g"):format(v)
  end
  if t == "string" then return literal(v) end
  if t == "table" and v.kind == "inline_literal" then return M.value(v.value) end
  if schema.is(v, "text") then return v.text end
  error(("cannot render a %s value as SQL"):format(t), 3)
end

-- server_default: a string is a literal value ('x'); sa.text, sa.func.now(), sa.null() ... are
-- expressions.
local function default_sql(d)
  if schema.is(d, "text") then return d.text end
  if expr.is_expr(d) then return expr.inline_sql(d, M.value) end
  if type(d) == "string" then return literal(d) end
  if type(d) == "number" or type(d) == "boolean" then return M.value(d) end
  error(("server_default must be a string, a number, a boolean, sa.text or an expression, got %s"):format(type(d)), 3)
end
M.default_sql = default_sql

-- The options in the order SQLAlchemy's compiler writes them (get_identity_options).
local function identity_sql(id)
  local parts = {}
  if id.increment then parts[#parts + 1] = "INCREMENT BY " .. tostring(id.increment) end
  if id.start then parts[#parts + 1] = "START WITH " .. tostring(id.start) end
  if id.minvalue then parts[#parts + 1] = "MINVALUE " .. tostring(id.minvalue) end
  if id.nominvalue then parts[#parts + 1] = "NO MINVALUE" end
  if id.maxvalue then parts[#parts + 1] = "MAXVALUE " .. tostring(id.maxvalue) end
  if id.nomaxvalue then parts[#parts + 1] = "NO MAXVALUE" end
  if id.cache then parts[#parts + 1] = "CACHE " .. tostring(id.cache) end
  if id.cycle then parts[#parts + 1] = "CYCLE" end
  local s = "GENERATED " .. (id.always and "ALWAYS" or "BY DEFAULT") .. " AS IDENTITY"
  if #parts > 0 then s = s .. " (" .. table.concat(parts, " ") .. ")" end
  return s
end

local function fk_tail(fk)
  local s = ""
  if fk.match then s = s .. " MATCH " .. fk.match:upper() end
  if fk.ondelete then s = s .. " ON DELETE " .. fk.ondelete:upper() end
  if fk.onupdate then s = s .. " ON UPDATE " .. fk.onupdate:upper() end
  if fk.deferrable ~= nil then s = s .. (fk.deferrable and " DEFERRABLE" or " NOT DEFERRABLE") end
  if fk.initially then s = s .. " INITIALLY " .. fk.initially:upper() end
  return s
end

-- The type of a column: SERIAL (BIGSERIAL, SMALLSERIAL) for the table's autoincrement
-- column (schema.autoincrement_column), as SQLAlchemy's PostgreSQL compiler writes it,
-- unless the column has an identity or a client-side default.
local function column_type(col, serial)
  local t = col.type
  if t == nil then error(("column %s needs a type"):format(col.name), 4) end
  if serial and not col.identity and col.default == nil then
    return types.AUTOINCREMENT_AFFINITY[t.label]
  end
  return types.sql_of(t)
end

-- One column definition, as in CREATE TABLE / ADD COLUMN. `serial`: the column is the
-- table's autoincrement column; `in_pk`: it is in the primary key (NOT NULL unless the
-- column says nullable = true, as SQLAlchemy); `inline` adds PRIMARY KEY / REFERENCES for
-- add_column, where there is no table-level constraint list.
function M.column_def(col, serial, inline, in_pk)
  local s = ident(col.name) .. " " .. column_type(col, serial)
  if col.server_default ~= nil then s = s .. " DEFAULT " .. default_sql(col.server_default) end
  if col.identity then s = s .. " " .. identity_sql(col.identity) end
  if col.computed then s = s .. " GENERATED ALWAYS AS (" .. sqltext(col.computed.sqltext) .. ") STORED" end
  local nullable = col.nullable
  if in_pk and not col.nullable_given then nullable = false end
  -- an identity column is NOT NULL by definition, and SQLAlchemy does not write it
  if not nullable and not col.identity then s = s .. " NOT NULL" end
  if inline then
    if col.primary_key then s = s .. " PRIMARY KEY" end
    if col.unique then s = s .. " UNIQUE" end
    -- a named sa.ForeignKey keeps its name (Alembic adds it as CONSTRAINT name FOREIGN KEY)
    for _, fk in ipairs(col.foreign_keys) do
      s = s .. (fk.name and (" CONSTRAINT " .. ident(fk.name)) or "") .. " REFERENCES "
        .. qualified(fk.schema, fk.table) .. " (" .. ident(fk.column) .. ")" .. fk_tail(fk)
    end
  end
  return s
end

local function constraint_name(c)
  return c.name and ("CONSTRAINT " .. ident(c.name) .. " ") or ""
end

local function deferrable(c)
  local s = ""
  if c.deferrable ~= nil then s = s .. (c.deferrable and " DEFERRABLE" or " NOT DEFERRABLE") end
  if c.initially then s = s .. " INITIALLY " .. c.initially:upper() end
  return s
end

-- EXCLUDE USING method (element WITH operator, ...) [WHERE (...)] [DEFERRABLE ...], from a
-- list of {column name or sa.text, operator} and {using, where, deferrable, initially}.
function M.exclude_def(elements, o)
  local elems = {}
  for i, e in ipairs(elements) do
    elems[i] = (schema.is(e[1], "text") and e[1].text or ident(e[1])) .. " WITH " .. e[2]
  end
  return "EXCLUDE USING " .. (o.using or "gist") .. " (" .. table.concat(elems, ", ") .. ")"
    .. (o.where and (" WHERE (" .. sqltext(o.where) .. ")") or "") .. deferrable(o)
end

function M.constraint_def(c)
  if schema.is(c, "PrimaryKeyConstraint") then
    return constraint_name(c) .. "PRIMARY KEY (" .. idents(c.columns) .. ")"
  elseif schema.is(c, "UniqueConstraint") then
    return constraint_name(c) .. "UNIQUE " .. M.nulls_distinct(c.nulls_not_distinct, " ")
      .. "(" .. idents(c.columns) .. ")" .. deferrable(c)
  elseif schema.is(c, "CheckConstraint") then
    return constraint_name(c) .. "CHECK (" .. sqltext(c.sqltext) .. ")"
  elseif schema.is(c, "ExcludeConstraint") then
    return constraint_name(c) .. M.exclude_def(c.elements, c)
  elseif schema.is(c, "ForeignKeyConstraint") then
    return constraint_name(c) .. "FOREIGN KEY(" .. idents(c.columns) .. ") REFERENCES "
      .. qualified(c.ref_schema, c.ref_table) .. " (" .. idents(c.ref_columns) .. ")" .. fk_tail(c)
  end
  error(("not a constraint: %s"):format(tostring(c and c.kind or c)), 3)
end

-- The statements creating an enum type.
function M.create_enum(name, values, opts)
  local vals = {}
  for i, v in ipairs(values) do vals[i] = literal(v) end
  return "CREATE TYPE " .. qualified(opts.schema, name) .. " AS ENUM (" .. table.concat(vals, ", ") .. ")"
end

-- postgresql_nulls_not_distinct as SQLAlchemy 2.0 writes it (PostgreSQL 15): true "NULLS NOT
-- DISTINCT", false "NULLS DISTINCT", nil nothing; `sep` goes after it (constraints) or
-- before it (indexes).
function M.nulls_distinct(v, sep, before)
  if v == nil then return "" end
  local s = v and "NULLS NOT DISTINCT" or "NULLS DISTINCT"
  if before then return sep .. s end
  return s .. sep
end

-- Index creation from normalised parts.
function M.create_index(name, table_name, exprs, o)
  local cols = {}
  for i, e in ipairs(exprs) do
    if schema.is(e, "text") then cols[i] = e.text
    elseif expr.is_expr(e) and e.k == "func" then cols[i] = expr.inline_sql(e, M.value) -- as SQLAlchemy
    -- sa.literal_column("id DESC") is a column to SQLAlchemy: written as it is, not grouped
    elseif expr.is_expr(e) and e.k == "raw" and not e.null then cols[i] = e.sql
    elseif expr.is_expr(e) and e.k ~= "column" then cols[i] = "(" .. expr.inline_sql(e, M.value) .. ")"
    elseif expr.is_expr(e) then cols[i] = ident(e.name)
    elseif type(e) == "string" then cols[i] = ident(e)
    elseif schema.is(e, "Column") then cols[i] = ident(e.name)
    else error(("create_index: column %d must be a name or sa.text"):format(i), 4) end
    if o.postgresql_ops and type(e) == "string" and o.postgresql_ops[e] then
      cols[i] = cols[i] .. " " .. o.postgresql_ops[e]
    end
  end
  local s = "CREATE " .. (o.unique and "UNIQUE " or "") .. "INDEX "
    .. (o.postgresql_concurrently and "CONCURRENTLY " or "")
    .. (o.if_not_exists and "IF NOT EXISTS " or "")
    .. (name and (ident(name) .. " ") or "")
    .. "ON " .. qualified(o.schema, table_name)
    .. (o.postgresql_using and (" USING " .. o.postgresql_using) or "")
    .. " (" .. table.concat(cols, ", ") .. ")"
  if o.postgresql_include then s = s .. " INCLUDE (" .. idents(o.postgresql_include) .. ")" end
  s = s .. M.nulls_distinct(o.postgresql_nulls_not_distinct, " ", true)
  s = s .. M.with_clause(o.postgresql_with)
  if o.postgresql_where then s = s .. " WHERE " .. sqltext(o.postgresql_where) end
  return s
end

-- " WITH (k = v, ...)" storage parameters, keys sorted so output is stable; "" for nil.
function M.with_clause(params)
  if not params then return "" end
  local w, keys = {}, {}
  for k in pairs(params) do keys[#keys + 1] = k end
  table.sort(keys)
  for i, k in ipairs(keys) do w[i] = ident(k) .. " = " .. tostring(params[k]) end
  return " WITH (" .. table.concat(w, ", ") .. ")"
end

function M.comment_on(kind, target, comment)
  return "COMMENT ON " .. kind .. " " .. target .. " IS " .. (comment == nil and "NULL" or literal(comment))
end

M.sqltext = sqltext
M.fk_tail = fk_tail
M.deferrable = deferrable
return M
