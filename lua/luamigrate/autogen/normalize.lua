-- Autogenerate's normal form: the spellings both sides are brought to before they are
-- compared (types as format_type spells them, constraint and index names as PostgreSQL or
-- the metadata's naming_convention chooses them, SQL fragments with case and spacing
-- folded), and the small list helpers every stage shares.
local quote = require "luamigrate.quote"
local types = require "luamigrate.types"

local M = {}

local SEP = "\31" -- joins lists inside one catalog column

local function split_list(s)
  local t = {}
  if s == nil or s == "" then return t end
  for part in (s .. SEP):gmatch("(.-)" .. SEP) do t[#t + 1] = part end
  return t
end

local function key_of(sch, name) return sch .. "." .. name end

-- ---- types --------------------------------------------------------------------------

local SIMPLE = { Integer = "integer", BigInteger = "bigint", SmallInteger = "smallint",
  Text = "text", Boolean = "boolean", Date = "date", Interval = "interval",
  Float = "double precision", LargeBinary = "bytea", JSON = "json", JSONB = "jsonb", UUID = "uuid" }

local ALIASES = {
  int = "integer", int4 = "integer", integer = "integer", int8 = "bigint", bigint = "bigint",
  int2 = "smallint", smallint = "smallint", bool = "boolean", boolean = "boolean",
  text = "text", varchar = "character varying", ["character varying"] = "character varying",
  timestamptz = "timestamp with time zone", timestamp = "timestamp without time zone",
  ["timestamp with time zone"] = "timestamp with time zone",
  ["timestamp without time zone"] = "timestamp without time zone",
  timetz = "time with time zone", time = "time without time zone", float8 = "double precision",
  ["double precision"] = "double precision", float = "double precision", float4 = "real",
  real = "real", numeric = "numeric", decimal = "numeric", char = "character", nchar = "character",
  bpchar = "character", character = "character", bytea = "bytea", json = "json",
  jsonb = "jsonb", uuid = "uuid", date = "date", interval = "interval",
}

-- A type written as SQL text, in format_type's spelling where it is a common one.
-- (A collation is compared apart, see collation_of; PostgreSQL keeps no array dimensions,
-- so int[][] is int[]; float(p) is real up to 24 bits of precision, as PostgreSQL maps it.)
local function canon_sql(s)
  local t = s:lower():gsub(' collate ("?)[^"]*%1$', ""):gsub("^%s+", ""):gsub("%s+$", ""):gsub("%s+", " ")
  local arr = ""
  while t:sub(-2) == "[]" do
    arr = "[]"
    t = t:sub(1, -3):gsub("%s+$", "")
  end
  local base, args = t:match("^([%a_ ]-)%s*(%b())$")
  base = base or t
  base = ALIASES[base] or base
  if base == "double precision" and args then
    return (tonumber(args:match("%d+")) <= 24 and "real" or "double precision") .. arr
  end
  if args then
    args = args:gsub("%s", ""):gsub(",", ",")
    if base == "numeric" and not args:find(",") then args = args:sub(1, -2) .. ",0)" end
    return base .. args .. arr
  end
  return base .. arr
end

-- The canonical spelling of a declared type, and the enum it names (if any).
local function canon_type(t, default_schema)
  if type(t) == "string" then return canon_sql(t) end
  if not types.is_type(t) then return canon_sql(types.sql_of(t)) end
  if SIMPLE[t.kind] then return SIMPLE[t.kind] end
  if t.kind == "String" then
    return t.length and ("character varying(%d)"):format(t.length) or "character varying"
  elseif t.kind == "Numeric" then
    if t.precision then return ("numeric(%d,%d)"):format(t.precision, t.scale or 0) end
    return "numeric"
  elseif t.kind == "DateTime" then
    return t.timezone and "timestamp with time zone" or "timestamp without time zone"
  elseif t.kind == "Time" then
    return t.timezone and "time with time zone" or "time without time zone"
  elseif t.kind == "ARRAY" then
    local inner, e = canon_type(t.item_type, default_schema)
    return inner .. "[]", e
  elseif t.kind == "Enum" then
    local e = { schema = t.schema or default_schema, name = t.name, values = t.values }
    return "enum:" .. key_of(e.schema, e.name), e
  end
  return canon_sql(t:sql())
end

-- The collation a declared type names (sa.String(10, "C"), 'text COLLATE "C"'), nil when
-- it names none: such a column keeps whatever the database gives it and is not compared,
-- so projects that never declare one (as Alembic, which compares none) see no noise.
local function collation_of(t)
  if type(t) == "string" then
    local q, name = t:match('%s[Cc][Oo][Ll][Ll][Aa][Tt][Ee]%s+("?)(.-)%1%s*$')
    if not q then return nil end
    return q == "" and name:lower() or name
  end
  if type(t) == "table" and type(t.collation) == "string" then return t.collation end
  return nil
end

-- ---- naming -------------------------------------------------------------------------

local function truncate(name) return #name > 63 and name:sub(1, 63) or name end

-- A constraint or index name from the naming_convention (SQLAlchemy's tokens), else as
-- PostgreSQL names an unnamed one.
local function choose_name(md, kind, tname, cols, refs, given)
  local conv = md.naming_convention[kind]
  if given and not (conv and conv:find("%(constraint_name)s", 1, true)) then return given end
  if conv then
    local tokens = {
      table_name = tname, column_0_name = cols[1] or "", column_0N_name = table.concat(cols, ""),
      column_0_N_name = table.concat(cols, "_"), column_0_label = tname .. "_" .. (cols[1] or ""),
      referred_table_name = refs or "", constraint_name = given or "",
    }
    -- a convention's name is SQLAlchemy's conv(): shortened as SQLAlchemy shortens it
    return quote.conv_name((conv:gsub("%%%(([%w_]+)%)s", function(tok)
      if tokens[tok] == nil then error(("naming_convention %s: unknown token %%(%s)s"):format(kind, tok), 0) end
      return tokens[tok]
    end)))
  end
  if kind == "pk" then return truncate(tname .. "_pkey") end
  if kind == "uq" then return truncate(tname .. "_" .. table.concat(cols, "_") .. "_key") end
  if kind == "fk" then return truncate(tname .. "_" .. table.concat(cols, "_") .. "_fkey") end
  if kind == "ck" then return truncate(tname .. "_check") end
  return truncate("ix_" .. tname .. "_" .. table.concat(cols, "_"))
end


local function norm_sql(s)
  if s == nil then return nil end
  s = s:lower():gsub("%s+", "")
  while s:match("^%b()$") do s = s:sub(2, -2) end
  return s
end

local function same_list(a, b)
  if #a ~= #b then return false end
  for i = 1, #a do if a[i] ~= b[i] then return false end end
  return true
end

-- An identity's sequence options with PostgreSQL's defaults filled in for the column's
-- type (an ascending sequence): what declared and live identities are compared by.
local INT_MAX = { smallint = 32767, integer = 2147483647, bigint = math.maxinteger }
function M.identity_options(o, sqltype)
  o = o or {}
  local inc = o.increment or 1
  local max = INT_MAX[sqltype] or math.maxinteger
  local minv = o.minvalue or (inc > 0 and 1 or -max - 1)
  local maxv = o.maxvalue or (inc > 0 and max or -1)
  return { start = o.start or (inc > 0 and minv or maxv), increment = inc, minvalue = minv, maxvalue = maxv,
    cache = o.cache or 1, cycle = o.cycle and true or false }
end
M.IDENTITY_KEYS = { "start", "increment", "minvalue", "maxvalue", "cache", "cycle" }

-- The keys of t, sorted: the one order in which generated text walks a keyed table.
function M.sorted_keys(t)
  local ks = {}
  for k in pairs(t) do ks[#ks + 1] = k end
  table.sort(ks)
  return ks
end

-- The sa.Identity options of column C (an inspected or declared column with .identity
-- "a"/"d" and .identity_opts) that differ from PostgreSQL's defaults for its type, as
-- {key, Lua text} pairs in sa.Identity's order; a nil text means the option is left out.
function M.identity_pairs(C)
  local given, dflt = M.identity_options(C.identity_opts, C.type), M.identity_options(nil, C.type)
  local o = { { "always", C.identity == "a" and "true" or nil } }
  for _, key in ipairs(M.IDENTITY_KEYS) do
    if given[key] ~= dflt[key] then o[#o + 1] = { key, tostring(given[key]) } end
  end
  return o
end

-- An index's key columns (of pg_index row `i`) as SQL text joined by SEP: each as
-- pg_get_indexdef prints one column, with what that leaves out put back (a non-default
-- operator class, DESC, NULLS FIRST / LAST), so the keys recreate the index.
M.INDEX_KEYS_SQL = [[(SELECT string_agg(pg_get_indexdef(i.indexrelid, k, true)
            || coalesce((SELECT ' ' || quote_ident(oc.opcname) FROM pg_opclass oc
                         WHERE oc.oid = i.indclass[k - 1] AND NOT oc.opcdefault), '')
            || CASE i.indoption[k - 1] & 3 WHEN 1 THEN ' DESC NULLS LAST' WHEN 3 THEN ' DESC'
                 WHEN 2 THEN ' NULLS FIRST' ELSE '' END, chr(31) ORDER BY k)
          FROM generate_series(1, i.indnkeyatts) AS k)]]

M.SEP, M.split_list, M.key_of = SEP, split_list, key_of
M.canon_sql, M.canon_type, M.truncate, M.choose_name = canon_sql, canon_type, truncate, choose_name
M.norm_sql, M.same_list, M.collation_of = norm_sql, same_list, collation_of

return M
