-- The text of a revision file from a template: text with ${name} placeholders; the
-- project's own <script_location>/script.lua.tmpl wins over the built-in one (the file as a
-- whole, with its name, is luamigrate.revision's). The built-in one carries
-- LuaLS ---@type lines for the migration globals, as Alembic's carries Python type hints.
local M = {}

M.DEFAULT = [[
--${doc_open} ${message}

Revision ID: ${revision}
Revises: ${revises}
Create Date: ${create_date}
${doc_close}
-- revision identifiers, used by luamigrate (---@type: annotations for editors).
---@type string
revision = ${revision_lua}
---@type string|string[]|nil
down_revision = ${down_revision_lua}
---@type string|string[]|nil
branch_labels = ${branch_labels_lua}
---@type string|string[]|nil
depends_on = ${depends_on_lua}

function upgrade()
${upgrades}end

function downgrade()
${downgrades}end
]]

local function lua_literal(v)
  if v == nil then return "nil" end
  if type(v) == "string" then return ("%q"):format(v) end
  if #v == 0 then return "nil" end
  local parts = {}
  for i, s in ipairs(v) do parts[i] = ("%q"):format(s) end
  return "{ " .. table.concat(parts, ", ") .. " }"
end

-- The shortest long-bracket level that the message cannot close early.
local function bracket_level(text)
  local level = 0
  while text:find("]" .. ("="):rep(level) .. "]", 1, true) do level = level + 1 end
  return ("="):rep(level)
end

-- vars: message, revision, down_revision (nil | string | array), branch_labels, depends_on,
-- create_date. Returns the file's text.
function M.render(vars, template)
  local down = vars.down_revision
  if type(down) == "table" and #down == 1 then down = down[1] end
  local revises = down == nil and "" or (type(down) == "table" and table.concat(down, ", ") or down)
  local level = bracket_level(vars.message or "")
  local values = {
    message = vars.message or "",
    revision = vars.revision,
    revises = revises,
    create_date = vars.create_date,
    doc_open = "[" .. level .. "[",
    doc_close = "]" .. level .. "]",
    revision_lua = lua_literal(vars.revision),
    down_revision_lua = lua_literal(down),
    branch_labels_lua = lua_literal(vars.branch_labels),
    depends_on_lua = lua_literal(vars.depends_on),
    upgrades = vars.upgrades or "",
    downgrades = vars.downgrades or "",
  }
  if vars.upgrades and template and not template:find("${upgrades}", 1, true) then
    error("revision template: script.lua.tmpl has no ${upgrades} placeholder for the generated "
      .. "operations (put ${upgrades} and ${downgrades} inside upgrade() and downgrade())", 0)
  end
  return ((template or M.DEFAULT):gsub("%${([%w_]+)}", function(name)
    local v = values[name]
    if v == nil then error(("revision template: unknown placeholder ${%s}"):format(name), 0) end
    return v
  end))
end

return M
