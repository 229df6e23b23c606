-- Lint rules about whole tables, schemas and databases: dropping, truncating, renaming,
-- detaching partitions, and data changes in the transaction that altered the table.
local ast = require "luamigrate.lint.ast"

local function rename(kind)
  return function(s) return s.node == "RenameStmt" and s.tree.renameType == kind end
end
local is_table_rename, is_schema_rename = rename("OBJECT_TABLE"), rename("OBJECT_SCHEMA")

return {
  { id = "ban-drop-table", severity = "error", scope = "breaking",
    check = function(s)
      if s.node ~= "DropStmt" or s.tree.removeType ~= "OBJECT_TABLE" then return nil end
      local out = {}
      for _, o in ipairs(s.tree.objects or {}) do
        local t = ast.listname(o.List and o.List.items)
        out[#out + 1] = { table = t,
          message = ("dropping table %s loses its data for good and breaks the code still using it"):format(t),
          hint = "deploy code that no longer uses it first; then drop it inside "
            .. "op.allow(\"ban-drop-table\", function() ... end)" }
      end
      return out[1] and out or nil
    end },
  { id = "ban-drop-database", severity = "error",
    check = function(s)
      if s.node ~= "DropdbStmt" then return nil end
      return { message = ("dropping database %s from a migration"):format(s.tree.dbname),
        hint = "drop databases by hand, not in a migration" }
    end },
  { id = "ban-truncate-cascade", severity = "error",
    check = function(s)
      if s.node ~= "TruncateStmt" or s.tree.behavior ~= "DROP_CASCADE" then return nil end
      return { message = "TRUNCATE ... CASCADE also empties every table with a foreign key to these, "
          .. "recursively, under ACCESS EXCLUSIVE locks",
        hint = "truncate the tables you mean by name" }
    end },
  { id = "renaming-table", severity = "error", scope = "breaking",
    check = function(s)
      if not is_table_rename(s) then return nil end
      local t = ast.relname(s.tree.relation)
      return { table = t,
        message = ("renaming table %s to %s breaks the code still using the old name"):format(t, s.tree.newname),
        hint = "create a view under one name during the switch, or move the code first (expand, then contract)" }
    end },
  { id = "renaming-schema", severity = "error",
    check = function(s)
      if not is_schema_rename(s) then return nil end
      return { message = ("renaming schema %s to %s breaks every query naming it"):format(s.tree.subname,
          s.tree.newname),
        hint = "create the new schema and move objects over while both names work" }
    end },
  { id = "require-concurrent-partition-detach", severity = "error", scope = "lock",
    check = function(s, _, k)
      if k.version < 140000 then return nil end
      local t = s.node == "AlterTableStmt" and ast.relname(s.tree.relation)
      for _, cmd in ipairs(ast.cmds(s)) do
        local pc = cmd.def and cmd.def.PartitionCmd
        if cmd.subtype == "AT_DetachPartition" and pc and not pc.concurrent then
          return { table = t,
            message = ("DETACH PARTITION without CONCURRENTLY takes an ACCESS EXCLUSIVE lock on %s: reads and "
              .. "writes of every partition wait"):format(t),
            hint = "use ALTER TABLE ... DETACH PARTITION ... CONCURRENTLY (PostgreSQL 14+) inside "
              .. "op.autocommit_block(function() ... end)" }
        end
      end
    end },
  { id = "backfill-in-ddl-transaction", severity = "error", scope = "lock",
    check = function(s, r, k)
      if r.in_block then return nil end
      local rv = (s.node == "UpdateStmt" or s.node == "DeleteStmt") and s.tree.relation
        or (s.node == "InsertStmt" and s.tree.selectStmt and s.tree.selectStmt.SelectStmt
          and not s.tree.selectStmt.SelectStmt.valuesLists and s.tree.relation)
      local t = rv and ast.relname(rv)
      if not t or not k.rev.ddl_tables[t] then return nil end
      return { table = t,
        message = ("changing rows of %s in the transaction that altered it keeps the ALTER's ACCESS EXCLUSIVE "
          .. "lock for the whole backfill: reads and writes wait until the migration commits"):format(t),
        hint = "backfill with op.backfill(table, { set = ..., where = ... }): committed batches outside the DDL "
          .. "transaction" }
    end },
}
