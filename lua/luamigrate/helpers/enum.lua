-- Changing the values of a PostgreSQL enum type that columns already use: the
-- rename-and-swap of the Alembic how-to, as a plain Lua module any migration can require
-- (`local enum = require "luamigrate.helpers.enum"`; the example project's
-- migrations/helpers/enum.lua hands it on, so `require "helpers.enum"` works there too).
--
-- PostgreSQL cannot drop or reorder enum values in place, so the type is renamed to
-- tmp_<name>, a new type with the wanted values is created under the old name, every
-- column is converted with USING col::text::<name>, and the old type is dropped. Column
-- defaults (like role DEFAULT 'USER') would block the conversion, so each one is set
-- aside first and put back afterwards. Objects whose definitions name the type (partial
-- and expression indexes, checks, views, generated columns, domains, functions, ...) would
-- block it too: luamigrate.dependents finds them in pg_depend when the migration runs,
-- drops them and creates them again from their own definitions after the swap (a NOTICE
-- names each one). The whole change runs in the migration's transaction: if a row holds a
-- value the new type lacks, nothing is changed.
local op = require "luamigrate.op"
local sa = require "luamigrate.sa"
local quote = require "luamigrate.quote"
local dependents = require "luamigrate.dependents"

local M = {}

-- The {table, column} pairs to convert, in a fixed order: a list of pairs as given
-- ({ { "users", "role" }, { "role_permissions", "role" } }), or a {table = column} map by
-- sorted table name. Never pairs() order, which changes from run to run: the statements, the
-- --sql script and what --resume compares must be the same every time.
local function ordered(table_column_dict)
  local out = {}
  if table_column_dict[1] ~= nil then
    for i, p in ipairs(table_column_dict) do out[i] = { p[1], p[2] } end
    return out
  end
  for t in pairs(table_column_dict) do out[#out + 1] = { t } end
  table.sort(out, function(a, b) return a[1] < b[1] end)
  for _, p in ipairs(out) do p[2] = table_column_dict[p[1]] end
  return out
end

-- Saves a column's default (as text, in a transaction-local setting) and drops it.
local function set_aside_default(i, tbl, column)
  op.execute(([[
DO $$
DECLARE d text;
BEGIN
  SELECT pg_get_expr(ad.adbin, ad.adrelid) INTO d
  FROM pg_attrdef ad JOIN pg_attribute a ON a.attrelid = ad.adrelid AND a.attnum = ad.adnum
  WHERE ad.adrelid = %s::regclass AND a.attname = %s;
  PERFORM set_config('luamigrate.enum_default_%d', coalesce(d, ''), true);
  IF d IS NOT NULL THEN
    ALTER TABLE %s ALTER COLUMN %s DROP DEFAULT;
  END IF;
END $$]]):format(quote.literal(quote.ident(tbl)), quote.literal(column), i, quote.ident(tbl),
    quote.ident(column)))
end

-- Puts a default set aside by set_aside_default back (it names the type by its name, which
-- now means the new type).
local function restore_default(i, tbl, column)
  op.execute(([[
DO $$
DECLARE d text := current_setting('luamigrate.enum_default_%d', true);
BEGIN
  IF d <> '' THEN
    EXECUTE format('ALTER TABLE %%s ALTER COLUMN %%s SET DEFAULT %%s', %s, %s, d);
  END IF;
END $$]]):format(i, quote.literal(quote.ident(tbl)), quote.literal(quote.ident(column))))
end

-- change_enum_and_alter_tables("role_enum", {"SUPER_ADMIN", ...}, {users = "role", ...}), or
-- with an ordered list of pairs: {{"users", "role"}, {"role_permissions", "role"}}
function M.change_enum_and_alter_tables(enum_name, enum_values, table_column_dict)
  local conn = op.get_bind()
  local args = { table.unpack(enum_values) }
  args[#args + 1] = { name = enum_name }
  local new_type = sa.Enum(table.unpack(args))
  local columns = ordered(table_column_dict)

  op.execute(dependents.set_aside_sql(quote.ident(enum_name)))
  for i, p in ipairs(columns) do set_aside_default(i, p[1], p[2]) end

  -- rename to tmp_ so a new type can take the name, with the new values
  op.execute(("ALTER TYPE %s RENAME TO %s"):format(quote.ident(enum_name), quote.ident("tmp_" .. enum_name)))
  new_type:create(conn)

  for _, p in ipairs(columns) do
    local tbl, column = p[1], p[2]
    op.alter_column(tbl, column, {
      type_ = new_type,
      postgresql_using = ("%s::text::%s"):format(quote.ident(column), quote.ident(enum_name)),
    })
  end

  for i, p in ipairs(columns) do restore_default(i, p[1], p[2]) end
  op.execute(dependents.put_back_sql())

  op.execute(("DROP TYPE %s"):format(quote.ident("tmp_" .. enum_name)))
end

return M
