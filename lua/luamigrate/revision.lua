-- A new revision file, whole: its name (<id>_<slug>.lua) and its text, rendered through
-- luamigrate.template. The C side of `revision`, `merge` and `inspect --baseline` resolves
-- the revisions, checks and claims the id, reads the project's template and writes the file;
-- what the file is called and what it says is decided here, in one call.
local options = require "luamigrate.options"
local template = require "luamigrate.template"

local M = {}

-- Alembic's slug: the words of the message joined by "_" and lowercased; when longer than
-- `limit`, cut at the last "_" within the limit and ended with "_".
function M.slug(message, limit)
  limit = limit or 40
  local words = {}
  for w in message:gmatch("[%w_]+") do words[#words + 1] = w end
  local slug = table.concat(words, "_"):lower()
  if #slug > limit then
    local cut = slug:sub(1, limit)
    local last = cut:match("^.*()_")
    slug = (last and cut:sub(1, last - 1) or cut) .. "_"
  end
  return slug
end

local KEYS = { "id", "message", "down_revision", "branch_labels", "depends_on", "create_date",
  "upgrades", "downgrades", "template_text" }

-- An identifier field: nil, a string or a list of strings.
local function check_ids(key, v)
  if v == nil or type(v) == "string" then return end
  if type(v) ~= "table" then
    error(("revision.new: %s must be a string or a list of strings, got %s"):format(key, type(v)), 3)
  end
  for i, s in ipairs(v) do
    if type(s) ~= "string" then
      error(("revision.new: %s[%d] must be a string, got %s"):format(key, i, type(s)), 3)
    end
  end
end

local function check_string(key, v, required)
  if v == nil and not required then return end
  if type(v) ~= "string" then
    error(("revision.new: %s must be a string, got %s"):format(key, type(v)), 3)
  end
end

-- args: id (checked by the caller against the id rule), message, down_revision (nil | id |
-- list: a one-element list reads as its id), branch_labels, depends_on (nil | string |
-- list), create_date (default: now, local time, as Alembic writes it), upgrades and
-- downgrades (autogenerate's bodies; given, a project template must place ${upgrades}),
-- template_text (the project's script.lua.tmpl; nil: the built-in one).
-- Returns the file name and the file's text.
function M.new(args)
  args = options.check("revision.new", args, KEYS)
  check_string("id", args.id, true)
  for _, key in ipairs { "message", "create_date", "upgrades", "downgrades", "template_text" } do
    check_string(key, args[key])
  end
  for _, key in ipairs { "down_revision", "branch_labels", "depends_on" } do check_ids(key, args[key]) end
  local message = args.message or ""
  local text = template.render({
    message = message,
    revision = args.id,
    down_revision = args.down_revision,
    branch_labels = args.branch_labels,
    depends_on = args.depends_on,
    create_date = args.create_date or os.date("%Y-%m-%d %H:%M:%S"),
    upgrades = args.upgrades,
    downgrades = args.downgrades,
  }, args.template_text)
  return ("%s_%s.lua"):format(args.id, M.slug(message)), text
end

return M
