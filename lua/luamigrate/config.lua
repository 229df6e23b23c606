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
  targets = "table", -- fleets: { { name = ..., url = ... }, ... } or a function returning one (docs/fleet.md)
  lint = "table", -- luamigrate lint: { rules = { [id] = "off"|"warning"|"error" }, start_after = rev, ... }
}

-- The value of each setting a file leaves unset: the one list (src/config.c reads the
-- settings through M.resolve, defaults applied). Settings absent here default to none.
M.DEFAULTS = {
  script_location = "migrations",
  version_table = "luamigrate_version",
  transaction_per_migration = true,
  pipeline = true,
  on_changed_file = "warn",
  -- A migration waiting for a table lock makes every query behind it wait too: by default
  -- it gives up after a few seconds, rolls back and tries again with backoff
  -- (docs/safety.md).
  migration_lock_timeout = "5s",
  lock_retries = 3,
  lock = "session", -- its values are src/lock.c's (lm_lock_mode_parse), which also reads --lock
  lock_lease = 60,
}

-- What a setting's value must be beyond its type: setting -> check(value) -> message or nil.
local RULES = {
  on_changed_file = function(v)
    if v ~= "warn" and v ~= "error" then return ('on_changed_file must be "warn" or "error", got "%s"'):format(v) end
  end,
  -- whole before it is narrowed to C's int: 2^32 or 2.5 must not pass as 0
  lock_retries = function(v)
    if not (math.tointeger(v) and v >= 0 and v <= 20) then return "lock_retries must be a whole number from 0 to 20" end
  end,
  lock_lease = function(v)
    if not (v >= 5 and v <= 86400) then return "lock_lease must be from 5 to 86400 seconds" end
  end,
}
local RULE_ORDER = { "on_changed_file", "lock_retries", "lock_lease" }

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
      if v ~= nil and type(v) ~= want and not (v == false and M.MAY_BE_FALSE[k])
        and not (k == "targets" and type(v) == "function") then
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

-- settings[name], or its default when the file leaves it unset (false stays false).
function M.get(settings, name)
  local v = settings[name]
  if v == nil then return M.DEFAULTS[name] end
  return v
end

-- The settings a run uses: the file's (M.load), each value checked against RULES (an error
-- "<path>: <rule>"), then the defaults for the settings it leaves unset.
function M.resolve(path)
  local settings = M.load(path)
  local all = {}
  for k in pairs(M.KNOWN) do all[k] = M.get(settings, k) end
  for _, k in ipairs(RULE_ORDER) do
    local msg = RULES[k](all[k])
    if msg then error(path .. ": " .. msg, 0) end
  end
  if type(all.targets) == "table" then
    local _, msg = M.check_targets(all.targets)
    if msg then error(path .. ": " .. msg, 0) end
  end
  return all
end

local TARGET_KEYS = { name = true, url = true, schema = true }

-- The targets list checked: each entry a table with a unique non-empty string name, an
-- optional string url (nil: the project's) and no other key. Returns the list, or nil and
-- one message naming the first bad entry.
function M.check_targets(list)
  if type(list) ~= "table" then
    return nil, ("targets must be a list of { name = ..., url = ... } tables, got %s"):format(type(list))
  end
  local seen = {}
  for i, t in ipairs(list) do
    local at = ("targets[%d]"):format(i)
    if type(t) ~= "table" then
      return nil, ("%s must be a table { name = ..., url = ... }, got %s"):format(at, type(t))
    end
    if type(t.name) ~= "string" or t.name == "" then return nil, at .. " has no name (name = \"...\" is required)" end
    at = ("%s (%s)"):format(at, t.name)
    for k in pairs(t) do
      if not TARGET_KEYS[k] then
        return nil, ("%s: unknown key '%s' (known: name, url, schema)"):format(at, tostring(k))
      end
    end
    if t.url ~= nil and type(t.url) ~= "string" then
      return nil, ("%s: url must be a string, got %s"):format(at, type(t.url))
    end
    -- The schema goes into search_path as written (libpq's options): a lower-case SQL
    -- identifier needs no quoting there, and folds to itself.
    if t.schema ~= nil and (type(t.schema) ~= "string" or not t.schema:match("^[a-z_][a-z0-9_]*$")) then
      return nil, ("%s: schema must be a lower-case name (letters, digits, _), got %s"):format(at,
        type(t.schema) == "string" and ("'" .. t.schema .. "'") or type(t.schema))
    end
    if seen[t.name] then return nil, ("%s: the name is already used by targets[%d]"):format(at, seen[t.name]) end
    seen[t.name] = i
  end
  for k in pairs(list) do
    if math.type(k) ~= "integer" or k < 1 or k > #list then
      return nil, ("targets must be a list (an array), not a table with the key '%s'"):format(tostring(k))
    end
  end
  return list
end

-- The fleet's targets: the config's list, or what its function returns, checked. Raises
-- "<path>: <message>" when there are none or one is bad.
function M.targets(path)
  local t = M.load(path).targets
  if t == nil then error(path .. ": no targets configured (set targets = { { name = ..., url = ... } })", 0) end
  if type(t) == "function" then
    local ok, v = pcall(t)
    if not ok then error(("%s: targets(): %s"):format(path, tostring(v)), 0) end
    t = v
  end
  local list, msg = M.check_targets(t)
  if not list then error(path .. ": " .. msg, 0) end
  if #list == 0 then error(path .. ": no targets configured (the targets list is empty)", 0) end
  return list
end

return M
