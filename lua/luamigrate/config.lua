-- Evaluates a luamigrate.lua config file. Top-level assignments are settings; a name that
-- is not a known setting, or a value of the wrong type, is an error at its file:line.
local M = {}

-- setting name -> expected Lua type
M.KNOWN = {
  script_location = "string",
  url = "string",
  version_table = "string",
  transaction_per_migration = "boolean",
  pipeline = "boolean", -- false: each op's statement waits for its result (default true)
  lock_timeout = "number",
  on_changed_file = "string", -- "warn" (default) or "error": an applied file edited since
  migration_lock_timeout = "string", -- SET LOCAL lock_timeout in each migration (default "5s"; false: none)
  migration_statement_timeout = "string", -- SET LOCAL statement_timeout, e.g. "10min" (default none)
  lock_retries = "number", -- retries of a migration that hit its lock_timeout (55P03)
  lock = "string", -- "session" (default), "xact" or "table": see docs/locking.md
  lock_lease = "number", -- lock = "table": seconds the lease lives without a heartbeat
  target_schema = "string", -- autogenerate: the declared schema, under script_location
  include_schemas = "table", -- autogenerate: schemas compared (default: the current one)
  include_name = "function", -- autogenerate: include_name(name, kind, parent) -> false skips
  include_object = "function", -- autogenerate: include_object(name, kind, parent) -> false skips
  process_revision_directives = "function", -- autogenerate: rewrite the operations list
  lint = "table", -- luamigrate lint: { rules = { [id] = "off"|"warning"|"error" }, start_after = rev, ... }
}

M.DEFAULTS = {
  script_location = "migrations",
  version_table = "luamigrate_version",
  transaction_per_migration = true,
  pipeline = true,
  -- A migration waiting for a table lock makes every query behind it wait too: by default
  -- it gives up after a few seconds, rolls back and tries again with backoff
  -- (docs/safety.md). The C side (src/config.c) reads these two from here.
  migration_lock_timeout = "5s",
  lock_retries = 3,
}

-- Settings that may also be false: "none" (a timeout turned off), unlike nil ("the default").
M.MAY_BE_FALSE = { migration_lock_timeout = true, migration_statement_timeout = true }

local function known_names()
  local names = {}
  for k in pairs(M.KNOWN) do names[#names + 1] = k end
  table.sort(names)
  return table.concat(names, ", ")
end

-- Returns the table of settings the file assigned (defaults not applied).
function M.load(path)
  local settings = {}
  local env = setmetatable({}, {
    __index = function(_, k)
      local v = settings[k]
      if v ~= nil then return v end
      return _G[k]
    end,
    __newindex = function(_, k, v)
      local want = M.KNOWN[k]
      if want == nil then
        error(("unknown setting '%s' (known settings: %s)"):format(tostring(k), known_names()), 2)
      end
      if v ~= nil and type(v) ~= want and not (v == false and M.MAY_BE_FALSE[k]) then
        error(("setting '%s' must be a %s%s, got %s"):format(k, want, M.MAY_BE_FALSE[k] and " or false" or "",
          type(v)), 2)
      end
      settings[k] = v
    end,
  })
  local chunk, err = loadfile(path, "t", env)
  if not chunk then error(err, 0) end
  chunk()
  return settings
end

return M
