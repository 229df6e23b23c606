-- `postgresql`: sqlalchemy.dialects.postgresql's types (JSONB, UUID, ARRAY, ENUM, TIMESTAMP,
-- TSVECTOR, CITEXT, INET, INTERVAL, ...), so `postgresql.JSONB(astext_type = sa.Text())`
-- translates line by line. A global in every migration; `require "luamigrate.postgresql"`
-- elsewhere.
local types = require "luamigrate.types"
local quote = require "luamigrate.quote"

local M = {}
for _, k in ipairs(types.PG_NAMES) do M[k] = types.defs["postgresql." .. k] end

return setmetatable(M, {
  __index = function(_, k)
    local hint = type(k) == "string" and require("luamigrate.core").closest(k, types.PG_NAMES)
    quote.raise_plain(("postgresql.%s does not exist%s"):format(tostring(k),
      hint and ("; did you mean postgresql." .. hint .. "?") or ""))
  end,
})
