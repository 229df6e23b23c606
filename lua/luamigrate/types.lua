-- Column types with SQLAlchemy's names (sqlalchemy.types and sqlalchemy.dialects.postgresql),
-- each rendered as SQLAlchemy 1.4/2.0 render it for PostgreSQL. A type is used bare
-- (sa.Integer) or called with SQLAlchemy's parameters: positionally in SQLAlchemy's order,
-- by keyword in a trailing options table, or both (sa.String(255), sa.String{length = 255},
-- sa.Numeric(10, 2), sa.DateTime(true) for timezone). Calling returns a new instance, so
-- types with arguments never share state. An argument the type does not take is an error
-- naming the type and the argument; parameters with no DDL effect (as_uuid, astext_type,
-- none_as_null, ...) are accepted, as SQLAlchemy accepts them, and change nothing.
local options = require "luamigrate.options"
local quote = require "luamigrate.quote"

local M = {}

local Type = {}
Type.__index = Type

function Type:sql() return self._sql(self) end
function Type:__tostring() return self.label .. " (" .. self:sql() .. ")" end

-- Enum instances have methods of their own (op.lua adds :create and :drop).
local EnumType = setmetatable({}, { __index = Type })
EnumType.__index = EnumType
EnumType.__tostring = Type.__tostring

local function is_options(v) return type(v) == "table" and getmetatable(v) == nil end

-- Raised at the migration's line (the first frame outside luamigrate's modules).
local raise = quote.raise_plain


-- Checks of a parameter's value, by the letter its spec gives it.
local CHECKS = {
  i = function(v) return math.type(v) == "integer" and v >= 0, "a non-negative integer" end,
  b = function(v) return type(v) == "boolean", "a boolean" end,
  s = function(v) return type(v) == "string", "a string" end,
  t = function(v) return M.is_type(v) or type(v) == "string", "a type" end,
  ["*"] = function() return true end,
}

-- Fills inst from the call's arguments: positionals in the order of `params` (a list of
-- "name:check" strings), then the options table; a parameter given both ways, a positional
-- beyond the list, an unknown keyword or a value of the wrong kind is an error.
local function bind_args(label, params, inst, args, opts)
  local names = {}
  for i, p in ipairs(params) do names[i] = p:match("^[^:]+") end
  if args.n > #params then
    if #params == 0 then
      raise(("%s takes no arguments (got %d)"):format(label, args.n))
    end
    raise(("%s takes at most %d positional argument%s (%s), got %d"):format(label, #params,
      #params == 1 and "" or "s", table.concat(names, ", "), args.n))
  end
  local given, positional = {}, {}
  for i = 1, args.n do
    if args[i] ~= nil then given[names[i]], positional[names[i]] = args[i], i end
  end
  options.check(label, opts, names)
  for k, v in pairs(opts) do
    if given[k] ~= nil then raise(("%s: '%s' given twice (positionally and as an option)"):format(label, k)) end
    given[k] = v
  end
  for _, p in ipairs(params) do
    local n, c = p:match("^([^:]+):?(.*)$")
    local v = given[n]
    if v ~= nil then
      local ok, want = CHECKS[c ~= "" and c or "*"](v)
      if not ok then
        raise(("%s: %s must be %s, got %s%s"):format(label, n, want, type(v), positional[n]
          and (" (argument %d; the parameters are %s(%s))"):format(positional[n], label, table.concat(names, ", "))
          or ""))
      end
      inst[n] = v
    end
  end
end

-- sa.Enum's keyword parameters (its values come positionally or as one list).
local ENUM_OPTS = { "name", "schema", "create_type", "native_enum", "create_constraint", "length",
  "metadata", "values_callable", "validate_strings", "inherit_schema", "quote",
  "sort_key_function", "omit_aliases", "_create_events" }

-- M.defs[label]: every type by the name it is called with ("sa.String", "postgresql.ENUM");
-- M.params[label]: its parameters in SQLAlchemy's order, "name:check" (docs, annotations).
M.defs, M.params = {}, {}

-- Defines a type. `spec.params` lists SQLAlchemy's parameters in order ("name:check");
-- `spec.render(t)` gives the SQL; `spec.kind(t)`, when given, names the generic class the
-- instance behaves as (autogenerate compares types by it); `spec.build(t, args, opts)`
-- replaces the generic argument binding (Enum's varargs).
local function define(label, spec)
  local function new(args, opts)
    local inst = setmetatable({ label = label, _sql = spec.render }, spec.methods or Type)
    if spec.required and args[1] == nil and opts[spec.required] == nil then
      raise(("%s: %s is required"):format(label, spec.required))
    end
    if spec.build then spec.build(inst, args, opts) else bind_args(label, spec.params or {}, inst, args, opts) end
    inst.kind = spec.kind and spec.kind(inst) or spec.generic or label:match("[%w_]+$")
    return inst
  end
  local proto
  if spec.build or spec.required then
    proto = { label = label, _sql = spec.render, kind = spec.generic or label:match("[%w_]+$") }
  else
    proto = new({ n = 0 }, {})
  end
  setmetatable(proto, {
    __index = spec.methods or Type,
    __tostring = Type.__tostring,
    __call = function(_, ...)
      local args = table.pack(...)
      local opts = {}
      if args.n > 0 and is_options(args[args.n]) and not (spec.list_arg and #args[args.n] > 0) then
        opts = args[args.n]
        args[args.n] = nil
        args.n = args.n - 1
      end
      return new(args, opts)
    end,
  })
  M.defs[label] = proto
  M.params[label] = spec.params or (spec.build and { "values...", table.unpack(ENUM_OPTS) }) or {}
  return proto
end
M.define = define

local function fixed(sql) return function() return sql end end

-- The string types' "(length)" and COLLATE, as SQLAlchemy's _render_string_type writes them.
local function string_type(name)
  return function(t)
    local s = name
    if t.length then s = s .. "(" .. t.length .. ")" end
    if t.collation then s = s .. " COLLATE " .. quote.ident(t.collation) end
    return s
  end
end

local function numeric(name)
  return function(t)
    if t.precision and t.scale then return ("%s(%d, %d)"):format(name, t.precision, t.scale) end
    if t.precision then return ("%s(%d)"):format(name, t.precision) end
    return name
  end
end

local function timestamp(name)
  return function(t)
    return name .. (t.precision and ("(" .. t.precision .. ")") or "")
      .. (t.timezone and " WITH TIME ZONE" or " WITHOUT TIME ZONE")
  end
end

local function array(t)
  return M.sql_of(t.item_type) .. ("[]"):rep(t.dimensions or 1)
end

-- Generic-class names autogenerate knows; an instance whose extra parameters change the
-- SQL (a collation, a precision) is compared by its SQL instead.
local function generic_unless(name, ...)
  local extra = { ... }
  return function(t)
    for _, f in ipairs(extra) do if t[f] ~= nil then return t.label end end
    return name
  end
end

local INTEGERS = { Integer = "INTEGER", BigInteger = "BIGINT", SmallInteger = "SMALLINT" }
M.INTEGER_KINDS = { Integer = true, BigInteger = true, SmallInteger = true }

-- sqlalchemy.types, the generic (CamelCase) classes.
for name, sql in pairs(INTEGERS) do define("sa." .. name, { render = fixed(sql), generic = name }) end
define("sa.Boolean", { params = { "create_constraint:b", "name:s" }, render = fixed("BOOLEAN"), generic = "Boolean" })
define("sa.Date", { render = fixed("DATE"), generic = "Date" })
define("sa.DateTime", { params = { "timezone:b" }, render = timestamp("TIMESTAMP"), generic = "DateTime" })
define("sa.Time", { params = { "timezone:b" }, render = timestamp("TIME"), generic = "Time" })
define("sa.Interval", { params = { "native:b", "second_precision:i", "day_precision:i" },
  render = function(t) return t.second_precision and ("INTERVAL (" .. t.second_precision .. ")") or "INTERVAL" end,
  kind = generic_unless("Interval", "second_precision") })
define("sa.Numeric", { params = { "precision:i", "scale:i", "decimal_return_scale:i", "asdecimal:b" },
  render = function(t)
    if t.precision == nil then return "NUMERIC" end -- Numeric(None, 2) is NUMERIC, as in SQLAlchemy
    return numeric("NUMERIC")(t)
  end, generic = "Numeric" })
define("sa.Float", { params = { "precision:i", "asdecimal:b", "decimal_return_scale:i" },
  render = function(t) return t.precision and ("FLOAT(" .. t.precision .. ")") or "FLOAT" end,
  kind = generic_unless("Float", "precision") })
define("sa.Double", { params = { "precision:i", "asdecimal:b", "decimal_return_scale:i" },
  render = fixed("DOUBLE PRECISION") })
for _, name in ipairs { "String", "Unicode" } do
  define("sa." .. name, { params = { "length:i", "collation:s" }, render = string_type("VARCHAR"),
    kind = generic_unless("String", "collation") })
end
-- TEXT takes no length on PostgreSQL: SQLAlchemy would write TEXT(200), which the server
-- refuses, so the length is refused here, at the migration's line.
for _, name in ipairs { "Text", "UnicodeText" } do
  define("sa." .. name, { params = { "length:i", "collation:s" }, render = string_type("TEXT"),
    kind = function(t)
      if t.length then
        raise(("sa.%s(%d): PostgreSQL's TEXT takes no length (use sa.String(%d) for VARCHAR(%d))")
          :format(name, t.length, t.length, t.length))
      end
      return t.collation and t.label or "Text"
    end })
end
define("sa.LargeBinary", { params = { "length:i" }, render = fixed("BYTEA"), generic = "LargeBinary" })
define("sa.JSON", { params = { "none_as_null:b" }, render = fixed("JSON"), generic = "JSON" })
define("sa.Uuid", { params = { "as_uuid:b", "native_uuid:b" },
  render = function(t) return t.native_uuid == false and "CHAR(32)" or "UUID" end,
  kind = function(t) return t.native_uuid == false and "Uuid" or "UUID" end })
define("sa.ARRAY", { params = { "item_type:t", "as_tuple:b", "dimensions:i", "zero_indexes:b" },
  render = array, kind = generic_unless("ARRAY", "dimensions"), required = "item_type" })

-- sa.Enum("A", "B", {name = "role_enum"}) or sa.Enum({"A", "B"}, {name = ...}): a named
-- PostgreSQL enum type; native_enum = false makes it VARCHAR(longest value), as SQLAlchemy.
local function enum_build(label)
  return function(t, args, opts)
    local values = {}
    if args.n == 1 and is_options(args[1]) then
      for i, v in ipairs(args[1]) do values[i] = v end
      args = { n = #values, table.unpack(values) }
    end
    for i = 1, args.n do
      if type(args[i]) ~= "string" then
        raise(("%s: value %d must be a string, got %s"):format(label, i, type(args[i])))
      end
      values[i] = args[i]
    end
    options.check(label, opts, ENUM_OPTS)
    t.values = values
    t.native_enum = opts.native_enum ~= false
    if t.native_enum and type(opts.name) ~= "string" then
      raise(("%s: a name is required ({name = \"...\"}): PostgreSQL enum types are named"):format(label))
    end
    t.name, t.schema = opts.name, opts.schema
    t.length = opts.length
    t.create_type = opts.create_type ~= false
  end
end
local function enum_render(t)
  if not t.native_enum then
    local n = t.length or 0
    for _, v in ipairs(t.values) do if #v > n then n = #v end end
    return "VARCHAR(" .. n .. ")"
  end
  return quote.qualified(t.schema, t.name)
end
local function enum_kind(t) return t.native_enum and "Enum" or "String" end
define("sa.Enum", { build = enum_build("sa.Enum"), render = enum_render, kind = enum_kind,
  generic = "Enum", list_arg = true, methods = EnumType })
define("postgresql.ENUM", { build = enum_build("postgresql.ENUM"), render = enum_render, kind = enum_kind,
  generic = "Enum", list_arg = true, methods = EnumType })

-- The uppercase classes: one SQL type each, in sqlalchemy.types and (most) in the dialect.
local UPPER = {
  BIGINT = { render = fixed("BIGINT"), generic = "BigInteger" },
  INTEGER = { render = fixed("INTEGER"), generic = "Integer" },
  SMALLINT = { render = fixed("SMALLINT"), generic = "SmallInteger" },
  BOOLEAN = { params = { "create_constraint:b", "name:s" }, render = fixed("BOOLEAN"), generic = "Boolean" },
  DATE = { render = fixed("DATE"), generic = "Date" },
  CHAR = { params = { "length:i", "collation:s" }, render = string_type("CHAR") },
  NCHAR = { params = { "length:i", "collation:s" }, render = string_type("NCHAR") },
  VARCHAR = { params = { "length:i", "collation:s" }, render = string_type("VARCHAR"),
    kind = generic_unless("String", "collation") },
  TEXT = { params = { "length:i", "collation:s" }, render = string_type("TEXT"),
    kind = function(t)
      if t.length then raise(("TEXT(%d): PostgreSQL's TEXT takes no length"):format(t.length)) end
      return t.collation and t.label or "Text"
    end },
  NUMERIC = { params = { "precision:i", "scale:i", "decimal_return_scale:i", "asdecimal:b" },
    render = numeric("NUMERIC"), generic = "Numeric" },
  DECIMAL = { params = { "precision:i", "scale:i", "decimal_return_scale:i", "asdecimal:b" },
    render = numeric("DECIMAL"), generic = "Numeric" },
  FLOAT = { params = { "precision:i", "asdecimal:b", "decimal_return_scale:i" },
    render = function(t) return t.precision and ("FLOAT(" .. t.precision .. ")") or "FLOAT" end,
    kind = generic_unless("Float", "precision") },
  REAL = { params = { "precision:i", "asdecimal:b", "decimal_return_scale:i" }, render = fixed("REAL") },
  DOUBLE_PRECISION = { params = { "precision:i", "asdecimal:b", "decimal_return_scale:i" },
    render = fixed("DOUBLE PRECISION") },
  TIMESTAMP = { params = { "timezone:b" }, render = timestamp("TIMESTAMP"), generic = "DateTime" },
  TIME = { params = { "timezone:b" }, render = timestamp("TIME"), generic = "Time" },
  JSON = { params = { "none_as_null:b" }, render = fixed("JSON"), generic = "JSON" },
  UUID = { params = { "as_uuid:b" }, render = fixed("UUID"), generic = "UUID" },
  ARRAY = { params = { "item_type:t", "as_tuple:b", "dimensions:i", "zero_indexes:b" },
    render = array, kind = generic_unless("ARRAY", "dimensions"), required = "item_type" },
}
for name, spec in pairs(UPPER) do define("sa." .. name, spec) end
M.defs["sa.INT"], M.params["sa.INT"] = M.defs["sa.INTEGER"], M.params["sa.INTEGER"]

-- sqlalchemy.dialects.postgresql: the uppercase classes again, where the dialect's take
-- more parameters (TIMESTAMP/TIME precision, JSON astext_type), and PostgreSQL's own types.
local PG = {}
for _, name in ipairs { "BIGINT", "INTEGER", "SMALLINT", "BOOLEAN", "DATE", "CHAR", "VARCHAR",
  "TEXT", "NUMERIC", "FLOAT", "REAL", "DOUBLE_PRECISION", "UUID", "ARRAY" } do
  PG[name] = UPPER[name]
end
PG.TIMESTAMP = { params = { "timezone:b", "precision:i" }, render = timestamp("TIMESTAMP"),
  kind = generic_unless("DateTime", "precision") }
PG.TIME = { params = { "timezone:b", "precision:i" }, render = timestamp("TIME"),
  kind = generic_unless("Time", "precision") }
PG.JSON = { params = { "none_as_null:b", "astext_type:t" }, render = fixed("JSON"), generic = "JSON" }
PG.JSONB = { params = { "none_as_null:b", "astext_type:t" }, render = fixed("JSONB"), generic = "JSONB" }
PG.INTERVAL = { params = { "precision:i", "fields:s" },
  render = function(t)
    return "INTERVAL" .. (t.fields and (" " .. t.fields:upper()) or "")
      .. (t.precision and (" (" .. t.precision .. ")") or "")
  end, kind = generic_unless("Interval", "precision", "fields") }
PG.BIT = { params = { "length:i", "varying:b" },
  render = function(t)
    if t.varying then return "BIT VARYING" .. (t.length and ("(" .. t.length .. ")") or "") end
    return "BIT(" .. (t.length or 1) .. ")"
  end }
PG.BYTEA = { params = { "length:i" }, render = fixed("BYTEA"), generic = "LargeBinary" }
PG.HSTORE = { params = { "text_type:t" }, render = fixed("HSTORE") }
for _, name in ipairs { "CIDR", "CITEXT", "INET", "MACADDR", "MACADDR8", "MONEY", "OID", "REGCLASS",
  "REGCONFIG", "TSQUERY", "TSVECTOR", "JSONPATH", "INT4RANGE", "INT8RANGE", "NUMRANGE", "DATERANGE",
  "TSRANGE", "TSTZRANGE", "INT4MULTIRANGE", "INT8MULTIRANGE", "NUMMULTIRANGE", "DATEMULTIRANGE",
  "TSMULTIRANGE", "TSTZMULTIRANGE" } do
  PG[name] = { render = fixed(name) }
end
for name, spec in pairs(PG) do
  if name ~= "ENUM" then define("postgresql." .. name, spec) end
end

-- The names each namespace exports, sorted.
local function names_of(prefix)
  local out = {}
  for label in pairs(M.defs) do
    local n = label:match("^" .. prefix .. "%.(.+)$")
    if n then out[#out + 1] = n end
  end
  table.sort(out)
  return out
end
M.SA_NAMES = names_of("sa")

-- The types SQLAlchemy gives integer or numeric affinity: the ones a lone primary key of
-- which becomes SERIAL (BIGSERIAL, SMALLSERIAL for the big and small integers).
M.AUTOINCREMENT_AFFINITY = {}
local SERIALS = {
  SERIAL = { "sa.Integer", "sa.INTEGER", "sa.INT", "postgresql.INTEGER", "sa.Numeric", "sa.NUMERIC",
    "sa.DECIMAL", "sa.Float", "sa.FLOAT", "sa.REAL", "sa.Double", "sa.DOUBLE_PRECISION",
    "postgresql.NUMERIC", "postgresql.FLOAT", "postgresql.REAL", "postgresql.DOUBLE_PRECISION" },
  BIGSERIAL = { "sa.BigInteger", "sa.BIGINT", "postgresql.BIGINT" },
  SMALLSERIAL = { "sa.SmallInteger", "sa.SMALLINT", "postgresql.SMALLINT" },
}
for serial, labels in pairs(SERIALS) do
  for _, l in ipairs(labels) do
    M.AUTOINCREMENT_AFFINITY[l] = serial
  end
end
M.PG_NAMES = names_of("postgresql")

-- The SQL of a type given as a type object, a bare constructor, or a string of raw SQL.
function M.sql_of(t)
  if type(t) == "string" then return t end
  if M.is_type(t) then return t:sql() end
  error(("expected a column type, got %s"):format(type(t)), 3)
end

function M.is_type(t)
  return type(t) == "table" and type(t._sql) == "function"
end

function M.is_enum(t)
  return M.is_type(t) and t.kind == "Enum"
end

-- json and jsonb (sa.JSON, postgresql.JSON/JSONB): the types whose values may be Lua tables.
function M.is_json(t)
  return M.is_type(t) and (t.kind == "JSON" or t.kind == "JSONB")
end

M.enum_methods = EnumType

-- The generic names older code reads (types.Integer, types.Enum, ...).
for label, proto in pairs(M.defs) do
  local n = label:match("^sa%.(.+)$")
  if n then M[n] = proto end
end
M.JSONB = M.defs["postgresql.JSONB"]

return M
