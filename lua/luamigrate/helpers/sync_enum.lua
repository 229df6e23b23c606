-- The alembic_postgresql_enum library's op.sync_enum_values, for histories that use it
-- (its autogenerate writes it whenever an enum's values change), with the statements that
-- library runs: the type is renamed to <name>_old, created again with the new values,
-- `=` and `!=` between the new and the old type are defined for the time of the change
-- (so that indexes and constraints comparing the column keep working), each affected column
-- is converted (USING col::text::type, a CASE for renamed values, text[] for arrays) with its
-- existing_server_default dropped first and put back renamed, then the operators and the old
-- type go. `luamigrate convert` writes calls of it for op.sync_enum_values, TableReference
-- and ColumnType; a Lua migration can call it too:
--   local sync_enum = require "luamigrate.helpers.sync_enum"
--   sync_enum.sync_enum_values("public", "status", { "a", "b" },
--     { sync_enum.TableReference("orders", "status", { existing_server_default = "'a'::status" }) })
local op = require "luamigrate.op"
local quote = require "luamigrate.quote"

local M = {}

-- ColumnType.COMMON (a column of the enum type) and ColumnType.ARRAY (of an array of it)
M.ColumnType = { COMMON = "COMMON", ARRAY = "ARRAY" }

local Ref = { __name = "luamigrate.TableReference" }
Ref.__index = Ref

-- Python's call f(a, b, key=value): the positional arguments by the names of `params`, then
-- the trailing options table (string keys) by key; an unknown or repeated name is an error.
local function named(fname, params, ...)
  local n, args, out = select("#", ...), { ... }, {}
  local last = args[n]
  local opts
  if type(last) == "table" and getmetatable(last) == nil and next(last) ~= nil and last[1] == nil then
    opts, n = last, n - 1
  end
  if n > #params then error(("%s() takes %d positional arguments, %d given"):format(fname, #params, n), 3) end
  local known = {}
  for i, p in ipairs(params) do
    known[p] = true
    if i <= n then out[p] = args[i] end
  end
  for k, v in pairs(opts or {}) do
    if not known[k] then error(("%s() got an unexpected keyword argument '%s'"):format(fname, tostring(k)), 3) end
    if out[k] ~= nil then error(("%s() got multiple values for argument '%s'"):format(fname, k), 3) end
    out[k] = v
  end
  return out
end

-- TableReference(table_name, column_name, table_schema, column_type, existing_server_default),
-- each also by name in a trailing options table
function M.TableReference(...)
  local a = named("TableReference", { "table_name", "column_name", "table_schema", "column_type",
    "existing_server_default" }, ...)
  if type(a.table_name) ~= "string" or type(a.column_name) ~= "string" then
    error("TableReference() needs a table_name and a column_name", 2)
  end
  local ct = a.column_type or M.ColumnType.COMMON
  if ct ~= M.ColumnType.COMMON and ct ~= M.ColumnType.ARRAY then
    error(("TableReference(): column_type must be ColumnType.COMMON or ColumnType.ARRAY, got %s")
      :format(tostring(ct)), 2)
  end
  return setmetatable({ table_name = a.table_name, column_name = a.column_name, table_schema = a.table_schema,
    column_type = ct, existing_server_default = a.existing_server_default }, Ref)
end

local function ident(name) return '"' .. name:gsub('"', '""') .. '"' end

local function table_of(ref)
  local prefix = (ref.table_schema and ref.table_schema ~= "") and (ident(ref.table_schema) .. ".") or ""
  return prefix .. ident(ref.table_name)
end

-- 'old' and "old" in a default's text become the new names, as the library renames them
local function rename_quoted(text, renames)
  for _, r in ipairs(renames) do
    for _, q in ipairs { "'", '"' } do
      local old, new = q .. r[1] .. q, q .. r[2] .. q
      text = text:gsub(old:gsub("%p", "%%%0"), (new:gsub("%%", "%%%%")))
    end
  end
  return text
end

-- The default put back after the change: the old default's value, cast to the new type
local function renamed_default(schema, name, default, renames)
  local new_enum = (schema and schema ~= "") and (schema .. "." .. name) or name
  if default:sub(1, 6) == "ARRAY[" then
    return (rename_quoted(default, renames):gsub("::[%w_.]+", "::" .. new_enum:gsub("%%", "%%%%")))
  end
  local cut = default:find("::", 1, true)
  local value = rename_quoted(cut and default:sub(1, cut - 1) or default, renames)
  return value .. "::" .. new_enum .. (default:sub(-2) == "[]" and "[]" or "")
end

local OPERATORS = { { "!=", "new_old_not_equals" }, { "=", "new_old_equals" } }

-- sync_enum_values(enum_schema, enum_name, new_values, affected_columns, enum_values_to_rename),
-- each also by name in a trailing options table. affected_columns: TableReference(...)s, or
-- {table, column[, column_type]} lists (whose current default is read from the database).
function M.sync_enum_values(...)
  local a = named("sync_enum_values", { "enum_schema", "enum_name", "new_values", "affected_columns",
    "enum_values_to_rename" }, ...)
  local schema, name = a.enum_schema, a.enum_name
  if type(schema) ~= "string" or type(name) ~= "string" or type(a.new_values) ~= "table"
    or type(a.affected_columns) ~= "table" then
    error("sync_enum_values() needs enum_schema, enum_name, new_values and affected_columns", 2)
  end
  local renames = {}
  for i, r in ipairs(a.enum_values_to_rename or {}) do renames[i] = { r[1], r[2] } end
  local refs = {}
  for i, c in ipairs(a.affected_columns) do
    if getmetatable(c) == Ref then
      refs[i] = c.table_schema ~= nil and c or setmetatable({ table_name = c.table_name, column_name = c.column_name,
        table_schema = schema, column_type = c.column_type, existing_server_default = c.existing_server_default }, Ref)
    elseif type(c) == "table" and type(c[1]) == "string" and type(c[2]) == "string" then
      local default = op.get_bind():result("SELECT column_default FROM information_schema.columns "
        .. "WHERE table_schema = $1 AND table_name = $2 AND column_name = $3", schema, c[1], c[2]):scalar()
      refs[i] = M.TableReference(c[1], c[2], schema, c[3], default)
    else
      error("sync_enum_values(): affected columns must be TableReference(...)s or {table, column} lists", 2)
    end
  end
  local type_name = ident(schema) .. "." .. ident(name)
  local old_type = ident(schema) .. "." .. ident(name .. "_old")
  op.execute(("ALTER TYPE %s RENAME TO %s"):format(type_name, ident(name .. "_old")))
  local values = {}
  for i, v in ipairs(a.new_values) do values[i] = quote.literal(v) end
  op.execute(("CREATE TYPE %s AS ENUM(%s)"):format(type_name, table.concat(values, ", ")))
  local function case_of(col, cast, with_else)
    local whens = {}
    for i, r in ipairs(renames) do
      whens[i] = ("WHEN %s::text = %s THEN %s%s"):format(col, quote.literal(r[1]), quote.literal(r[2]), cast)
    end
    return ("CASE %s ELSE %s::text%s END"):format(table.concat(whens, " "), col, with_else and cast or "")
  end
  for _, o in ipairs(OPERATORS) do
    local cmp = #renames > 0 and ("new_enum_val::text %s %s"):format(o[1], case_of("old_enum_val", "", false))
      or ("new_enum_val::text %s old_enum_val::text"):format(o[1])
    op.execute(("CREATE FUNCTION %s(new_enum_val %s, old_enum_val %s) RETURNS boolean AS $$ SELECT %s; $$ "
      .. "LANGUAGE SQL IMMUTABLE"):format(o[2], type_name, old_type, cmp))
    op.execute(("CREATE OPERATOR %s (leftarg = %s, rightarg = %s, procedure = %s)")
      :format(o[1], type_name, old_type, o[2]))
  end
  for _, ref in ipairs(refs) do
    local tbl, col = table_of(ref), ident(ref.column_name)
    if ref.existing_server_default ~= nil then
      op.execute(("ALTER TABLE %s ALTER COLUMN %s DROP DEFAULT"):format(tbl, col))
    end
    if ref.column_type == M.ColumnType.ARRAY then
      local cast = col .. "::text[]"
      for _, r in ipairs(renames) do
        cast = ("array_replace(%s, %s, %s)"):format(cast, quote.literal(r[1]), quote.literal(r[2]))
      end
      op.execute(("ALTER TABLE %s ALTER COLUMN %s TYPE %s[] USING %s::%s[]")
        :format(tbl, col, type_name, cast, type_name))
    elseif #renames > 0 then
      op.execute(("ALTER TABLE %s ALTER COLUMN %s TYPE %s USING %s"):format(tbl, col, type_name,
        case_of(col, "::" .. type_name, true)))
    else
      op.execute(("ALTER TABLE %s ALTER COLUMN %s TYPE %s USING %s::text::%s")
        :format(tbl, col, type_name, col, type_name))
    end
    if ref.existing_server_default ~= nil then
      op.execute(("ALTER TABLE %s ALTER COLUMN %s SET DEFAULT %s"):format(tbl, col,
        renamed_default(schema, name, ref.existing_server_default, renames)))
    end
  end
  for _, o in ipairs(OPERATORS) do
    op.execute(("DROP FUNCTION %s(new_enum_val %s, old_enum_val %s) CASCADE"):format(o[2], type_name, old_type))
  end
  op.execute("DROP TYPE " .. old_type)
end

return M
