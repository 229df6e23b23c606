-- `sa`: the column types and schema objects migrations use, under SQLAlchemy's names, so a
-- Python migration's sa.Column(...), sa.String(255), sa.Enum(..., name=...) translate
-- line by line. A misspelled name is an error with the closest real one.
local types = require "luamigrate.types"
local schema = require "luamigrate.schema"
local quote = require "luamigrate.quote"

local M = {}
for _, k in ipairs(types.SA_NAMES) do M[k] = types.defs["sa." .. k] end
for _, k in ipairs { "Column", "ForeignKey", "Identity", "Computed", "PrimaryKeyConstraint",
  "UniqueConstraint", "CheckConstraint", "ForeignKeyConstraint", "Index", "text", "table",
  "column", "MetaData", "Table" } do
  M[k] = schema[k]
end
-- Not SQLAlchemy's (it is postgresql.JSONB there), kept because migrations use it.
M.JSONB = types.defs["postgresql.JSONB"]

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
