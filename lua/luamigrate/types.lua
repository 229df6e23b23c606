-- Column types with SQLAlchemy's names. Each type is a table with :sql() giving its
-- PostgreSQL spelling. A type can be used bare (sa.Integer) or called (sa.Integer(),
-- sa.String(255), sa.Numeric(10, 2), sa.DateTime{timezone = true}); calling returns a new
-- instance, so types with arguments never share state.
local quote = require "luamigrate.quote"

local M = {}

local Type = {}
Type.__index = Type

function Type:sql() return self._sql(self) end
function Type:__tostring() return "sa." .. self.kind .. " (" .. self:sql() .. ")" end

local function is_options(v) return type(v) == "table" and getmetatable(v) == nil end

local function check_options(kind, opts, allowed)
  for k in pairs(opts) do
    if not allowed[k] then
      error(("sa.%s: unknown option '%s'"):format(kind, tostring(k)), 4)
    end
  end
end

-- Defines a type: `build(args, opts)` fills instance fields from call arguments.
local function define(kind, render, build, allowed)
  local proto = setmetatable({ kind = kind, _sql = render }, Type)
  setmetatable(proto, {
    __index = Type,
    __call = function(_, ...)
      local args = table.pack(...)
      local opts = {}
      if args.n > 0 and is_options(args[args.n]) then
        opts = args[args.n]
        args.n = args.n - 1
      end
      check_options(kind, opts, allowed or {})
      local inst = setmetatable({ kind = kind, _sql = render }, Type)
      if build then build(inst, args, opts) end
      return inst
    end,
  })
  M[kind] = proto
  return proto
end

local function fixed(sql) return function() return sql end end

define("Integer", fixed("INTEGER"))
define("BigInteger", fixed("BIGINT"))
define("SmallInteger", fixed("SMALLINT"))
define("Text", fixed("TEXT"))
define("Boolean", fixed("BOOLEAN"))
define("Date", fixed("DATE"))
define("Interval", fixed("INTERVAL"))
define("Float", fixed("FLOAT"))
define("LargeBinary", fixed("BYTEA"))
define("JSON", fixed("JSON"))
define("JSONB", fixed("JSONB"))
define("UUID", fixed("UUID"))

local function int_arg(kind, v, what)
  if v ~= nil and math.type(v) ~= "integer" then
    error(("sa.%s: %s must be an integer, got %s"):format(kind, what, type(v)), 4)
  end
  return v
end

define("String", function(t)
  if t.length then return ("VARCHAR(%d)"):format(t.length) end
  return "VARCHAR"
end, function(t, args) t.length = int_arg("String", args[1], "length") end)

define("Numeric", function(t)
  if t.precision and t.scale then return ("NUMERIC(%d, %d)"):format(t.precision, t.scale) end
  if t.precision then return ("NUMERIC(%d)"):format(t.precision) end
  return "NUMERIC"
end, function(t, args)
  t.precision = int_arg("Numeric", args[1], "precision")
  t.scale = int_arg("Numeric", args[2], "scale")
end)

define("DateTime", function(t)
  return t.timezone and "TIMESTAMP WITH TIME ZONE" or "TIMESTAMP WITHOUT TIME ZONE"
end, function(t, _, opts) t.timezone = opts.timezone and true or false end, { timezone = true })

define("Time", function(t)
  return t.timezone and "TIME WITH TIME ZONE" or "TIME WITHOUT TIME ZONE"
end, function(t, _, opts) t.timezone = opts.timezone and true or false end, { timezone = true })

define("ARRAY", function(t) return M.sql_of(t.item_type) .. "[]" end, function(t, args)
  if args[1] == nil then error("sa.ARRAY: an item type is required", 4) end
  t.item_type = args[1]
end)

-- sa.Enum("A", "B", {name = "role_enum", schema = ..., create_type = true})
define("Enum", function(t) return quote.qualified(t.schema, t.name) end, function(t, args, opts)
  t.values = {}
  for i = 1, args.n do
    if type(args[i]) ~= "string" then
      error(("sa.Enum: value %d must be a string, got %s"):format(i, type(args[i])), 4)
    end
    t.values[i] = args[i]
  end
  if type(opts.name) ~= "string" then error("sa.Enum: a name is required ({name = \"...\"})", 4) end
  t.name, t.schema = opts.name, opts.schema
  t.create_type = opts.create_type ~= false
end, { name = true, schema = true, create_type = true })

-- The SQL of a type given as a type object, a bare constructor, or a string of raw SQL.
function M.sql_of(t)
  if type(t) == "string" then return t end
  if getmetatable(t) == Type or (type(t) == "table" and t._sql) then return t:sql() end
  error(("expected a column type, got %s"):format(type(t)), 3)
end

function M.is_type(t)
  return type(t) == "table" and type(t._sql) == "function"
end

function M.is_enum(t)
  return M.is_type(t) and t.kind == "Enum"
end

return M
