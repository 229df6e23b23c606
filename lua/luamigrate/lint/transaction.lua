-- Lint rules about transactions and timeouts: transaction control in a migration, statements
-- that cannot be re-run outside a transaction, and lock/statement timeouts.
local ast = require "luamigrate.lint.ast"

-- Statements that may wait for a lock or run long (squawk's "possibly slow").
local SLOW = { AlterTableStmt = true, IndexStmt = true, ClusterStmt = true, LockStmt = true,
  RefreshMatViewStmt = true, ReindexStmt = true, TruncateStmt = true, VacuumStmt = true,
  AlterDomainStmt = true }
local function slow(s)
  if SLOW[s.node] then return true end
  if s.node == "DropStmt" then
    local t = s.tree.removeType
    return t == "OBJECT_TABLE" or t == "OBJECT_INDEX" or t == "OBJECT_VIEW" or t == "OBJECT_MATVIEW"
  end
  return s.node == "RenameStmt" and (s.tree.renameType == "OBJECT_TABLE" or s.tree.renameType == "OBJECT_COLUMN")
end

local LOCK_OF = { IndexStmt = "SHARE", ReindexStmt = "ACCESS EXCLUSIVE", VacuumStmt = "SHARE UPDATE EXCLUSIVE" }

-- Statements whose lock (SHARE UPDATE EXCLUSIVE) lets reads and writes go on: waiting for it
-- holds up only other schema changes, and a timeout would only cut short a build that is
-- meant to take long (leaving an INVALID index behind).
local function gentle(s)
  local t = s.tree
  if (s.node == "IndexStmt" or s.node == "DropStmt") and t.concurrent then return true end
  if s.node == "ReindexStmt" then
    for _, e in ipairs(t.params or {}) do
      if e.DefElem and e.DefElem.defname == "concurrently" then return true end
    end
  end
  if s.node == "VacuumStmt" then
    for _, e in ipairs(t.options or {}) do
      if e.DefElem and e.DefElem.defname == "full" then return false end
    end
    return true
  end
  if s.node == "AlterTableStmt" then
    for _, c in ipairs(t.cmds or {}) do
      local cmd = c.AlterTableCmd or {}
      local pc = cmd.def and cmd.def.PartitionCmd
      local detach = cmd.subtype == "AT_DetachPartition" and pc and pc.concurrent
      if not (cmd.subtype == "AT_ValidateConstraint" or detach) then return false end
    end
    return true
  end
  return false
end

local function timeout_rule(id, severity, name, setting, default_hint)
  return { id = id, severity = severity,
    check = function(s, r, k)
      if not slow(s) or gentle(s) or k.rev.reported[id] then return nil end
      local in_force = r.in_block and k.rev["block_" .. name] or (not r.in_block and k.rev[name])
      if in_force then return nil end
      k.rev.reported[id] = true
      local lock = s.node == "IndexStmt" and s.tree.concurrent and "SHARE UPDATE EXCLUSIVE" or LOCK_OF[s.node]
        or "ACCESS EXCLUSIVE"
      return { message = ("no %s is in force%s before this statement, which %s"):format(name,
          r.in_block and " in this autocommit block (the run's SET LOCAL holds only in its transactions)" or "",
          name == "lock_timeout" and ("may wait for its " .. lock .. " lock, and every query on the table "
            .. "that comes after it waits behind it for as long") or "may run for a long time while holding its locks"),
        hint = r.in_block and ("SET " .. name .. " first inside the block (op.execute(\"SET " .. name .. " = '"
          .. default_hint .. "'\"))")
          or ("set " .. setting .. " = \"" .. default_hint .. "\" in luamigrate.lua (each migration's "
            .. "transaction then starts with SET LOCAL " .. name .. ")") }
    end }
end

local ROBUST = {
  CreateStmt = function(t) return not t.if_not_exists, "CREATE TABLE without IF NOT EXISTS" end,
  IndexStmt = function(t) return not t.if_not_exists and t.idxname ~= nil, "CREATE INDEX without IF NOT EXISTS" end,
  DropStmt = function(t) return not t.missing_ok, "DROP without IF EXISTS" end,
}

return {
  { id = "transaction-nesting", severity = "error", refused = true,
    check = function(s, r)
      if s.node ~= "TransactionStmt" then return nil end
      local kind = s.tree.kind
      local savepoint = kind == "TRANS_STMT_SAVEPOINT" or kind == "TRANS_STMT_RELEASE"
        or kind == "TRANS_STMT_ROLLBACK_TO"
      if savepoint and not r.in_block then return nil end
      return { message = r.in_block
          and "transaction control inside an autocommit block: the block runs outside any transaction, and a "
            .. "BEGIN here would leave its work uncommitted"
          or "transaction control inside a migration: the runner already holds the migration's transaction and "
            .. "commits it together with the version row; this would end or nest it (the run refuses it)",
        hint = "leave BEGIN/COMMIT to the runner; statements that cannot run in a transaction go in "
          .. "op.autocommit_block(function() ... end)" }
    end },
  { id = "ban-uncommitted-transaction", severity = "error", refused = true,
    check = function() return nil end }, -- judged at the end of each revision (lint.lua)
  { id = "prefer-robust-stmts", severity = "warning",
    check = function(s, r, k)
      if not r.in_block then return nil end -- the migration's transaction rolls back as a whole
      local f = ROBUST[s.node]
      local bad, what = false, nil
      if f then bad, what = f(s.tree) end
      if s.node == "AlterTableStmt" then
        for _, cmd in ipairs(ast.cmds(s)) do
          if cmd.subtype == "AT_AddColumn" and not cmd.missing_ok then
            bad, what = true, "ADD COLUMN without IF NOT EXISTS"
          elseif (cmd.subtype == "AT_DropColumn" or cmd.subtype == "AT_DropConstraint") and not cmd.missing_ok then
            bad, what = true, (cmd.subtype == "AT_DropColumn" and "DROP COLUMN" or "DROP CONSTRAINT")
              .. " without IF EXISTS"
          elseif cmd.subtype == "AT_AddConstraint" and cmd.def and cmd.def.Constraint
            and not (cmd.def.Constraint.conname and k.rev.dropped_constraints[cmd.def.Constraint.conname]) then
            bad, what = true, "ADD CONSTRAINT (without a DROP CONSTRAINT IF EXISTS before it)"
          elseif cmd.subtype == "AT_ValidateConstraint" then
            if not k.rev.dropped_constraints[cmd.name] then bad, what = true, "VALIDATE CONSTRAINT" end
          elseif not (cmd.missing_ok or cmd.subtype == "AT_AddColumn" or cmd.subtype == "AT_DropColumn"
            or cmd.subtype == "AT_DropConstraint" or cmd.subtype == "AT_AddConstraint") then
            -- any other change (a failed DETACH ... CONCURRENTLY, say, needs FINALIZE to go on)
            bad, what = true, "ALTER TABLE"
          end
        end
      end
      if not bad then return nil end
      return { message = what .. " outside a transaction: if the block fails part way, running it again fails here",
        hint = "make it re-runnable (IF NOT EXISTS / IF EXISTS), or keep it in the migration's transaction" }
    end },
  timeout_rule("require-lock-timeout", "warning", "lock_timeout", "migration_lock_timeout", "5s"),
  timeout_rule("require-statement-timeout", "warning", "statement_timeout", "migration_statement_timeout", "10min"),
}
