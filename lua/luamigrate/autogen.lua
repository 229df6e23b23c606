-- Autogenerate: the schema declared in Lua (a sa.MetaData of sa.Table) against the live
-- database read from the catalogs, as a list of differences, rendered as the upgrade() and
-- downgrade() of a new revision written with the op API.
--
-- Both sides become one normal form first (tables -> columns, primary key, unique, foreign
-- key and check constraints, indexes, comment; enums -> values), with types spelled as
-- format_type spells them and unnamed constraints named as PostgreSQL or the metadata's
-- naming_convention names them. Differences are then plain comparisons; column defaults
-- that differ in text are compared by the server (each is stored in a rolled-back
-- temporary table and read back). Renames are never guessed: a renamed table or column is
-- a drop and an add, which the reviewer turns into op.rename_* by hand.
--
-- The stages live in autogen/: normalize (the shared normal form), declared (schema.lua),
-- inspect (the catalogs), compare (the differences) and emit (the op calls).
local schema = require "luamigrate.schema"

local M = {}

M.declared = require("luamigrate.autogen.declared").declared
M.inspect = require("luamigrate.autogen.inspect").inspect
M.compare = require("luamigrate.autogen.compare").compare
M.render = require("luamigrate.autogen.emit").render

local key_of = require("luamigrate.autogen.normalize").key_of
local entities = require "luamigrate.autogen.entities"
local schemafile = require "luamigrate.autogen.schemafile"

-- ---- the entry point the C core calls -------------------------------------------------

local function load_metadata(path)
  local env = setmetatable({ sa = require "luamigrate.sa", postgresql = require "luamigrate.postgresql" },
    { __index = _G })
  local f = io.open(path)
  if not f then
    error(("%s: no declared schema there (autogenerate and check read the file named by "
      .. "target_schema, default schema.lua under script_location)"):format(path), 0)
  end
  f:close()
  local chunk, err = loadfile(path, "t", env)
  if not chunk then error(err, 0) end
  local ok, md = pcall(chunk)
  if not ok then error(md, 0) end
  if not schema.is(md, "MetaData") then
    error(("%s: must return a sa.MetaData() (got %s)"):format(path, type(md)), 0)
  end
  return md
end

-- luamigrate's own tables, never part of a comparison: {key = true}
local function own_tables(vt, ds)
  local vs, vn = vt:match("^(.-)%.(.*)$")
  vs, vn = vs or ds, vn or vt
  local own = { [key_of(vs, vn)] = true }
  for _, suffix in pairs(require("luamigrate.core").version_table.suffix) do own[key_of(vs, vn .. suffix)] = true end
  return own
end

-- include_name and include_object as one filter(kind, name, parent) -> boolean
local function object_filter(settings)
  local include_name, include_object = settings.include_name, settings.include_object
  return function(kind, name, parent)
    if include_name and include_name(name, kind, parent) == false then return false end
    if include_object and include_object(name, kind, parent) == false then return false end
    return true
  end
end

-- generate(conn, {config = path, script_location = dir, version_table = name})
--   -> { ops = {text...}, upgrade = text, downgrade = text } ; ops empty when no change
function M.generate(conn, args)
  local settings = require("luamigrate.config").load(args.config)
  local target = settings.target_schema or "schema.lua"
  local path = target:sub(1, 1) == "/" and target or (args.script_location .. "/" .. target)
  local md = load_metadata(path)
  local ds = conn:query("SELECT current_schema() AS s")[1].s
  local schemas = settings.include_schemas or { ds }
  if md.schema then schemas[#schemas + 1] = md.schema end
  for _, t in ipairs(md.sorted) do
    if t.schema then
      local seen = false
      for _, s in ipairs(schemas) do if s == t.schema then seen = true end end
      if not seen then schemas[#schemas + 1] = t.schema end
    end
  end
  local skip, filter = own_tables(args.version_table, ds), object_filter(settings)
  local want = M.declared(md, ds)
  conn:execute("BEGIN ISOLATION LEVEL REPEATABLE READ") -- rolled back: it only reads
  local ok, res = pcall(function()
    local live = M.inspect(conn, schemas, skip)
    live.entities = entities.inspect(conn, schemas, entities.kinds(want.entities))
    return { live = live, ops = M.compare(conn, want, live, filter) }
  end)
  conn:execute("ROLLBACK")
  if not ok then error(res, 0) end
  local ops = res.ops
  if settings.process_revision_directives then
    local r = settings.process_revision_directives(ops)
    if type(r) == "table" then ops = r end
  end
  local texts = {}
  for _, o in ipairs(ops) do texts[#texts + 1] = o.text end
  if #ops == 0 then return { ops = texts } end
  local up, down = M.render(ops, want, res.live, ds)
  return { ops = texts, upgrade = up, downgrade = down }
end

-- inspect_schema(conn, {config, version_table, baseline = bool})
--   -> { schema = text of a schema.lua declaring the database, upgrade =, downgrade = the
--        bodies of a first revision creating it all (with baseline) }
-- The schemas read are include_schemas (default: the current one); include_name and
-- include_object leave objects out as they do for autogenerate.
function M.inspect_schema(conn, args)
  local settings = require("luamigrate.config").load(args.config)
  local ds = conn:query("SELECT current_schema() AS s")[1].s
  local schemas = settings.include_schemas or { ds }
  local skip, filter = own_tables(args.version_table, ds), object_filter(settings)
  conn:execute("BEGIN ISOLATION LEVEL REPEATABLE READ") -- rolled back: it only reads
  local ok, res = pcall(function()
    local live = M.inspect(conn, schemas, skip)
    -- what the filter leaves out is not declared
    for k, T in pairs(live.tables) do
      if not filter("table", T.name, T.schema) then live.tables[k] = nil end
    end
    local order = {}
    for _, k in ipairs(live.order) do if live.tables[k] then order[#order + 1] = k end end
    live.order = order
    local all = {}
    for _, kind in ipairs(require("luamigrate.entity").KINDS) do all[kind] = true end
    live.entities = entities.inspect(conn, schemas, all)
    for k, l in pairs(live.entities) do
      if not filter(l.kind:lower(), l.e.name, l.e.schema) then live.entities[k] = nil end
    end
    live.entity_list = entities.as_declared(live.entities)
    local dbname = conn:query("SELECT current_database() AS d")[1].d
    local out = { schema = schemafile.render(live, ds, ("-- The schema of database %s, as `luamigrate inspect` "
      .. "read it. `luamigrate check` compares\n-- it with the database; edit it, then `luamigrate revision "
      .. "--autogenerate`.\n"):format(dbname)) }
    if args.baseline then
      -- the first revision: everything, from nothing
      local want = { tables = live.tables, order = live.order, enums = live.enums, entities = live.entity_list }
      local empty = { tables = {}, order = {}, enums = {}, entities = {} }
      local ops = M.compare(conn, want, empty, filter)
      out.upgrade, out.downgrade = M.render(ops, want, empty, ds)
    end
    return out
  end)
  conn:execute("ROLLBACK")
  if not ok then error(res, 0) end
  return res
end

return M
