-- Reading the server's parse tree (luamigrate.sql.parse) for the lint rules: names, column
-- definitions, constraints and the commands of an ALTER TABLE.
local M = {}

-- The quoted form of each name relname has returned, for to_regclass: names are shown as
-- written ("schema.name"), but may hold dots, quotes and anything else.
M.QUOTED = setmetatable({}, { __mode = "k" })

local quote = require "luamigrate.quote"
local function quoted(schema, name)
  local ok, q = pcall(quote.qualified, schema, name)
  return ok and q or nil
end

-- "schema.name" of a RangeVar (as the parser folded it).
function M.relname(rv)
  if not rv then return nil end
  local shown = rv.schemaname and (rv.schemaname .. "." .. rv.relname) or rv.relname
  M.QUOTED[shown] = M.QUOTED[shown] or quoted(rv.schemaname, rv.relname)
  return shown
end

-- A name from a list of String nodes (DROP TABLE's objects), shown and registered as relname.
function M.listname(items)
  local parts = {}
  for i, n in ipairs(items or {}) do parts[i] = n.String and n.String.sval or "?" end
  local shown = table.concat(parts, ".")
  if #parts == 1 then M.QUOTED[shown] = M.QUOTED[shown] or quoted(nil, parts[1]) end
  if #parts == 2 then M.QUOTED[shown] = M.QUOTED[shown] or quoted(parts[1], parts[2]) end
  return shown
end

-- The text to_regclass() takes for a name relname or listname returned (nil: none).
function M.regclass(shown)
  return shown and M.QUOTED[shown]
end

-- The last name of a list of String nodes (type names, function names).
function M.last_name(list)
  local last = list and list[#list]
  return last and last.String and last.String.sval
end

-- The type of a TypeName node: its last name ("int4", "varchar", "serial"), and whether it
-- has type modifiers (a length).
function M.type_of(tn)
  if not tn then return nil end
  return M.last_name(tn.names), tn.typmods ~= nil, tn.arrayBounds ~= nil
end

-- The ALTER TABLE subcommands of a statement, as {subtype =, name =, def =, missing_ok =}.
-- Every rule asks for these, so a statement keeps them once made; callers only read them.
function M.cmds(s)
  local out = s.cmds_
  if out then return out end
  out = {}
  s.cmds_ = out
  if s.node ~= "AlterTableStmt" then return out end
  for _, c in ipairs(s.tree.cmds or {}) do
    if c.AlterTableCmd then out[#out + 1] = c.AlterTableCmd end
  end
  return out
end

-- Column definitions a statement introduces or retypes: {col = ColumnDef, table =, added =,
-- retyped =} for CREATE TABLE columns, ADD COLUMN and ALTER COLUMN TYPE.
function M.columns(s)
  local out = s.columns_
  if out then return out end
  out = {}
  s.columns_ = out
  if s.node == "CreateStmt" then
    local t = M.relname(s.tree.relation)
    for _, e in ipairs(s.tree.tableElts or {}) do
      if e.ColumnDef then out[#out + 1] = { col = e.ColumnDef, table = t } end
    end
  elseif s.node == "AlterTableStmt" then
    local t = M.relname(s.tree.relation)
    for _, cmd in ipairs(M.cmds(s)) do
      local def = cmd.def and cmd.def.ColumnDef
      if cmd.subtype == "AT_AddColumn" and def then
        out[#out + 1] = { col = def, table = t, added = true, cmd = cmd }
      elseif cmd.subtype == "AT_AlterColumnType" and def then
        def.colname = def.colname or cmd.name
        out[#out + 1] = { col = def, table = t, retyped = true, cmd = cmd }
      end
    end
  end
  return out
end

-- The constraints of a ColumnDef with contype `kind` ("CONSTR_DEFAULT", ...), first one.
function M.constraint(col, kind)
  for _, c in ipairs(col.constraints or {}) do
    if c.Constraint and c.Constraint.contype == kind then return c.Constraint end
  end
  return nil
end

-- Constraints a statement adds to an existing table: {con = Constraint, table =, cmd =}.
function M.added_constraints(s)
  local out = {}
  local t = s.node == "AlterTableStmt" and M.relname(s.tree.relation)
  for _, cmd in ipairs(M.cmds(s)) do
    if cmd.subtype == "AT_AddConstraint" and cmd.def and cmd.def.Constraint then
      out[#out + 1] = { con = cmd.def.Constraint, table = t, cmd = cmd }
    end
  end
  return out
end

return M
