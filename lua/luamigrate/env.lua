-- The private environment each migration file runs in: the documented migration
-- globals, `op`, `sa`, `postgresql` and the standard library (its print writes to stderr).
-- Reading any other undefined name raises at file:line, so a typo fails loudly instead of
-- silently reading nil.
local M = {}

local STDLIB = {
  "assert", "error", "ipairs", "next", "pairs", "pcall", "print", "rawequal", "rawget",
  "rawlen", "rawset", "select", "setmetatable", "getmetatable", "tonumber", "tostring",
  "type", "xpcall", "require", "load", "string", "table", "math", "utf8", "os", "io",
  "coroutine", "_VERSION",
}

-- Globals a migration may leave unset and still read (they then read as nil).
M.MIGRATION_GLOBALS = {
  revision = true, down_revision = true, branch_labels = true, depends_on = true,
  upgrade = true, downgrade = true,
}

local base
local function base_names()
  if not base then
    base = { op = require "luamigrate.op", sa = require "luamigrate.sa",
      postgresql = require "luamigrate.postgresql" }
    for _, k in ipairs(STDLIB) do base[k] = _G[k] end
    local core = require "luamigrate.core"
    -- print goes to stderr: stdout is the --sql script's (and command output's)
    base.print = core.print
    -- the run's own pcall and xpcall: while it pipelines, what is queued is collected first
    -- and the protected function's statements each wait for their result
    base.pcall, base.xpcall = core.pcall, core.xpcall
  end
  return base
end

-- Returns a fresh environment table for one migration file. Its metatable's __assigned
-- records each migration global the file assigned, nil included, so the loader tells a file
-- that says `down_revision = nil` (a base) from one that never says it (a mistake).
function M.migration()
  local names = base_names()
  local assigned = {}
  return setmetatable({}, {
    __assigned = assigned,
    __newindex = function(t, k, v)
      if M.MIGRATION_GLOBALS[k] then assigned[k] = true end
      rawset(t, k, v)
    end,
    __index = function(_, k)
      local v = names[k]
      if v ~= nil or M.MIGRATION_GLOBALS[k] then return v end
      error(("undefined name '%s'"):format(tostring(k)), 2)
    end,
  })
end

return M
