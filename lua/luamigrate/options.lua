-- The options tables of op.*, the schema constructors (sa.Column, ...) and the types
-- (sa.String, ...): keyword arguments as one trailing table, whose keys must be ones the
-- callee takes. One check, so every misspelt key reads the same: "<what>: unknown option
-- 'k'; did you mean 'key'?", at the migration's line.
local quote = require "luamigrate.quote"

local M = {}

-- allowed: a set (name -> true) or a list of names; a list keeps its order, which decides
-- between equally close names.
local function names_of(allowed)
  if allowed[1] ~= nil then return allowed end
  local cands = {}
  for k in pairs(allowed) do cands[#cands + 1] = k end
  table.sort(cands)
  return cands
end

local function is_allowed(allowed, k)
  if allowed[k] == true then return true end
  for _, n in ipairs(allowed) do if n == k then return true end end
  return false
end

-- "; did you mean 'x'?" for a misspelt name of `allowed`, or "". The closest-name search is
-- the core's (types and schema load without it in a plain interpreter: no hint then).
function M.did_you_mean(name, allowed)
  if type(name) ~= "string" then return "" end
  local ok, core = pcall(require, "luamigrate.core")
  local best = ok and core.closest(name, names_of(allowed))
  return best and ("; did you mean '" .. best .. "'?") or ""
end

-- Checks opts (nil reads as {}) against `allowed` and returns it; `what` names the callee
-- ("op.create_index", "sa.Column"). Raises at the migration's line.
function M.check(what, opts, allowed)
  if opts == nil then return {} end
  if type(opts) ~= "table" or getmetatable(opts) ~= nil then
    quote.raise_plain(("%s: options must be a table, got %s"):format(what, type(opts)))
  end
  for k in pairs(opts) do
    if not is_allowed(allowed, k) then
      quote.raise_plain(("%s: unknown option '%s'%s"):format(what, tostring(k), M.did_you_mean(k, allowed)))
    end
  end
  return opts
end

return M
