-- `sa`: the column types and schema objects migrations use, under SQLAlchemy's names, so a
-- Python migration's sa.Column(...), sa.String(255), sa.Enum(..., name=...) translate
-- line by line.
local types = require "luamigrate.types"
local schema = require "luamigrate.schema"

local M = {}
for _, k in ipairs { "Integer", "BigInteger", "SmallInteger", "String", "Text", "Boolean", "Date",
  "DateTime", "Time", "Interval", "Numeric", "Float", "LargeBinary", "JSON", "JSONB", "UUID",
  "ARRAY", "Enum" } do
  M[k] = types[k]
end
for _, k in ipairs { "Column", "ForeignKey", "Identity", "Computed", "PrimaryKeyConstraint",
  "UniqueConstraint", "CheckConstraint", "ForeignKeyConstraint", "ExcludeConstraint", "Index", "text", "table",
  "column", "MetaData", "Table" } do
  M[k] = schema[k]
end
-- Replaceable entities (alembic_utils' PGView, PGFunction, ...), for op.create_entity & co.
local entity = require "luamigrate.entity"
for _, k in ipairs(entity.CONSTRUCTORS) do M[k] = entity[k] end
-- Lowercase aliases SQLAlchemy also offers.
M.Unicode, M.UnicodeText, M.VARCHAR, M.TEXT = types.String, types.Text, types.String, types.Text
M.INTEGER, M.BIGINT, M.BOOLEAN = types.Integer, types.BigInteger, types.Boolean

return setmetatable(M, {
  __index = function(_, k) error(("sa.%s does not exist"):format(tostring(k)), 2) end,
})
