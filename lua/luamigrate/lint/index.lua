-- Lint rules about indexes: how they are built, dropped and rebuilt, and where.
local ast = require "luamigrate.lint.ast"
local sql = require "luamigrate.sql"

local IN_BLOCK = "inside op.autocommit_block(function() ... end), so it runs outside the migration's transaction"

return {
  { id = "require-concurrent-index-creation", severity = "error", scope = "lock",
    check = function(s)
      if s.node ~= "IndexStmt" or s.tree.concurrent then return nil end
      local t = ast.relname(s.tree.relation)
      return { table = t,
        message = ("CREATE INDEX without CONCURRENTLY holds a SHARE lock on %s while the index is built: "
          .. "every INSERT, UPDATE and DELETE on it waits until the build ends"):format(t),
        hint = "build it with op.create_index_concurrently(name, table, columns), which runs CREATE INDEX "
          .. "CONCURRENTLY in its own autocommit block" }
    end },
  { id = "require-concurrent-index-deletion", severity = "error", scope = "lock",
    check = function(s)
      if s.node ~= "DropStmt" or s.tree.removeType ~= "OBJECT_INDEX" or s.tree.concurrent then return nil end
      return { message = "DROP INDEX without CONCURRENTLY takes an ACCESS EXCLUSIVE lock on the index's table: "
          .. "reads and writes wait, and wait behind any long query already using it",
        hint = "drop it with op.drop_index_concurrently(name), which runs DROP INDEX CONCURRENTLY in its own "
          .. "autocommit block" }
    end },
  { id = "require-concurrent-reindex", severity = "error", scope = "lock",
    check = function(s, _, k)
      if s.node ~= "ReindexStmt" or k.version < 120000 then return nil end
      for _, e in ipairs(s.tree.params or {}) do
        if e.DefElem and e.DefElem.defname == "concurrently" then return nil end
      end
      if s.tree.kind == "REINDEX_OBJECT_SYSTEM" then return nil end -- cannot be concurrent
      return { table = s.tree.kind == "REINDEX_OBJECT_TABLE" and ast.relname(s.tree.relation) or nil,
        message = "REINDEX without CONCURRENTLY locks out writes to the table (and reads that would use the "
          .. "index, under an ACCESS EXCLUSIVE lock on it) until the rebuild ends",
        hint = "use REINDEX ... CONCURRENTLY (PostgreSQL 12+) " .. IN_BLOCK }
    end },
  { id = "ban-concurrent-index-creation-in-transaction", severity = "error", refused = true,
    check = function(s, r)
      if s.node ~= "IndexStmt" or not s.tree.concurrent or r.in_block then return nil end
      return { message = "CREATE INDEX CONCURRENTLY cannot run inside a transaction block, and the migration's "
          .. "transaction is open here: the run refuses it",
        hint = "put it " .. IN_BLOCK }
    end },
  { id = "non-transactional-in-transaction", severity = "error", refused = true,
    check = function(s, r)
      if r.in_block or (s.node == "IndexStmt" and s.tree.concurrent) then return nil end
      local what = sql.no_transaction(s)
      if not what then return nil end
      return { message = what .. " cannot run inside a transaction block, and the migration's transaction is "
          .. "open here: the run refuses it",
        hint = "put it " .. IN_BLOCK }
    end },
  { id = "index-too-many-columns", severity = "warning",
    check = function(s)
      if s.node ~= "IndexStmt" or s.tree.unique or s.tree.primary then return nil end
      local n = #(s.tree.indexParams or {})
      if n <= 3 then return nil end
      return { message = ("a non-unique index over %d columns: it is large and slow to maintain, and queries "
          .. "rarely use more than its first columns"):format(n),
        hint = "index at most three columns (the most selective first)" }
    end },
}
