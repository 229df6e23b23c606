-- `sa`: the column types and schema objects migrations use, under SQLAlchemy's names, so a
-- Python migration's sa.Column(...), sa.String(255), sa.Enum(..., name=...) translate
-- line by line. A misspelled name is an error with the closest real one.
local types = require "luamigrate.types"
local schema = require "luamigrate.schema"
local quote = require "luamigrate.quote"
local expr = require "luamigrate.expr"

local M = {}
for _, k in ipairs(types.SA_NAMES) do M[k] = types.defs["sa." .. k] end
for _, k in ipairs { "Column", "ForeignKey", "Identity", "Computed", "PrimaryKeyConstraint",
  "UniqueConstraint", "CheckConstraint", "ForeignKeyConstraint", "ExcludeConstraint", "Index", "text", "MetaData",
  "Table" } do
  M[k] = schema[k]
end
-- SQL expressions and data-migration statements (luamigrate.expr). true and false are Lua
-- keywords: sa.true_() and sa.false_() (or sa["true"]()) are SQLAlchemy's sa.true()/false().
for _, k in ipairs { "table", "column", "select", "insert", "update", "delete", "and_", "or_",
  "not_", "func", "literal_column", "literal", "null", "true_", "false_", "cast", "distinct" } do
  M[k] = expr[k]
end
M["true"], M["false"] = expr.true_, expr.false_
-- sa.inspect(bind): an Inspector over the live connection (luamigrate.inspector)
function M.inspect(bind) return require("luamigrate.inspector").inspect(bind) end
M.Inspector = { from_engine = M.inspect }
-- Not SQLAlchemy's (it is postgresql.JSONB there), kept because migrations use it.
M.JSONB = types.defs["postgresql.JSONB"]
-- Replaceable entities (alembic_utils' PGView, PGFunction, ...), for op.create_entity & co.
local entity = require "luamigrate.entity"
for _, k in ipairs(entity.CONSTRUCTORS) do M[k] = entity[k] end

local names = {}
for k in pairs(M) do names[#names + 1] = k end
table.sort(names)

return setmetatable(M, {
  __index = function(_, k)
    local hint = type(k) == "string" and require("luamigrate.core").closest(k, names)
    quote.raise_plain(("sa.%s does not exist%s"):format(tostring(k),
      hint and ("; did you mean sa." .. hint .. "?") or ""))
  end,
})
