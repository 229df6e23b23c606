-- Lint rules about table constraints: how foreign keys, checks, unique and exclusion
-- constraints are added to tables that already have rows.
local ast = require "luamigrate.lint.ast"

local function each_constraint(s, fn)
  local out = {}
  for _, c in ipairs(ast.added_constraints(s)) do
    local f = fn(c.con, c.table)
    if f then out[#out + 1] = f end
  end
  return out
end

local function done(out) return out[1] and out or nil end

return {
  { id = "adding-foreign-key-constraint", severity = "error", scope = "lock",
    check = function(s)
      local out = each_constraint(s, function(con, t)
        if con.contype == "CONSTR_FOREIGN" and not con.skip_validation then
          return { table = t,
            message = ("adding foreign key %s scans %s to validate it while holding a SHARE ROW EXCLUSIVE lock on "
              .. "it and on %s: writes to both wait"):format(con.conname or "", t, ast.relname(con.pktable)),
            hint = "add it NOT VALID (op.create_foreign_key(..., { postgresql_not_valid = true })), then "
              .. "op.validate_constraint in a later migration, which lets writes go on" }
        end
      end)
      for _, c in ipairs(ast.columns(s)) do
        local fk = c.added and ast.constraint(c.col, "CONSTR_FOREIGN")
        if fk then
          out[#out + 1] = { table = c.table,
            message = ("adding column %s with REFERENCES %s takes a SHARE ROW EXCLUSIVE lock on both tables"):format(
              c.col.colname, ast.relname(fk.pktable)),
            hint = "add the column plain, then the foreign key NOT VALID, then VALIDATE it in a later migration" }
        end
      end
      return done(out)
    end },
  { id = "constraint-missing-not-valid", severity = "error", scope = "lock",
    check = function(s, r, k)
      local out = each_constraint(s, function(con, t)
        if (con.contype == "CONSTR_CHECK" or con.contype == "CONSTR_FOREIGN") and not con.skip_validation then
          return { table = t,
            message = ("adding constraint %s without NOT VALID scans all of %s under its lock to check every row")
              :format(con.conname or "", t),
            hint = "add it NOT VALID (postgresql_not_valid = true), then op.validate_constraint in a later "
              .. "migration (SHARE UPDATE EXCLUSIVE: reads and writes go on)" }
        end
      end)
      local t = s.node == "AlterTableStmt" and ast.relname(s.tree.relation)
      for _, cmd in ipairs(ast.cmds(s)) do
        if cmd.subtype == "AT_ValidateConstraint" and not r.in_block and k.rev.not_valid[cmd.name] then
          out[#out + 1] = { table = t,
            message = ("validating %s in the transaction that added it NOT VALID keeps the add's lock through the "
              .. "validation scan: nothing is gained"):format(cmd.name),
            hint = "validate it in a later migration (or after an op.autocommit_block boundary)" }
        end
      end
      return done(out)
    end },
  { id = "disallowed-unique-constraint", severity = "error", scope = "lock",
    check = function(s)
      local out = each_constraint(s, function(con, t)
        if con.contype == "CONSTR_UNIQUE" and not con.indexname then
          return { table = t,
            message = ("adding unique constraint %s builds its index under an ACCESS EXCLUSIVE lock on %s: reads "
              .. "and writes wait"):format(con.conname or "", t),
            hint = "build a unique index concurrently (in an autocommit block), then ADD CONSTRAINT ... UNIQUE "
              .. "USING INDEX" }
        end
      end)
      for _, c in ipairs(ast.columns(s)) do
        if c.added and ast.constraint(c.col, "CONSTR_UNIQUE") then
          out[#out + 1] = { table = c.table,
            message = ("adding the UNIQUE column %s builds its index under an ACCESS EXCLUSIVE lock"):format(
              c.col.colname),
            hint = "add the column, build a unique index concurrently, then ADD CONSTRAINT ... UNIQUE USING INDEX" }
        end
      end
      return done(out)
    end },
  { id = "adding-exclusion-constraint", severity = "error", scope = "lock",
    check = function(s)
      return done(each_constraint(s, function(con, t)
        if con.contype == "CONSTR_EXCLUSION" then
          return { table = t,
            message = ("adding exclusion constraint %s builds its index and checks every row under an ACCESS "
              .. "EXCLUSIVE lock on %s: reads and writes wait"):format(con.conname or "", t),
            hint = "an exclusion constraint cannot be added NOT VALID or from an index built concurrently; add it "
              .. "while the table is new or small, or in a maintenance window" }
        end
      end))
    end },
}
