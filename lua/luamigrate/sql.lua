-- SQL text as PostgreSQL's own parser sees it (libpg_query, through luamigrate.core): raw
-- SQL split into statements, statements parsed into the server's raw parse tree, and the
-- facts about a statement the run needs before sending it: whether it cannot run inside a
-- transaction block, and whether it is transaction control, which would end or open the
-- migration's transaction behind the runner's back.
local core = require "luamigrate.core"

local M = {}

-- lua-cjson, loaded on first use: a Lua that only renders ops never needs it. (cjson's null
-- is a light userdata; absent keys read as nil anyway.)
local decode

-- Parse results by text: ops render the same statements again (lint, then the run), and
-- data migrations repeat one statement many times. Bounded, so a long run does not keep
-- every statement it sent.
local cache, cache_n = {}, 0

-- M.split(text) -> {{sql = stmt, offset = byte (1-based), line = line of text}, ...}, or
-- nil, message, position (1-based character) on a syntax error. Comments before a
-- statement stay with it; a text of only comments gives an empty list.
function M.split(text)
  local stmts, offsets, pos = core.sql_split(text)
  if not stmts then return nil, offsets, pos end
  local out, line, at = {}, 1, 1
  for i, s in ipairs(stmts) do
    local off = offsets[i]
    for _ in text:sub(at, off - 1):gmatch("\n") do line = line + 1 end
    at = off
    out[i] = { sql = s, offset = off, line = line }
  end
  return out
end

local LONG_STRING = '"' .. string.rep('[^"]', 60)

-- M.parse(text) -> {{node = "IndexStmt", tree = {...}, sql = text of it}, ...} or nil,
-- message, position. `tree` is the statement node's fields as the server's parser names
-- them (src/include/nodes/parsenodes.h); `long_strings` is false when no string in the
-- trees can be 60 bytes or longer (lint's long-name rule looks only then).
function M.parse(text)
  local hit = cache[text]
  if hit then return hit end
  local json, msg, pos = core.sql_parse(text)
  if not json then return nil, msg, pos end
  decode = decode or require("cjson").decode
  -- a JSON string of 60 bytes or more has that many bytes without a quote between, unless
  -- it holds an escaped quote
  local long_strings = json:find(LONG_STRING) ~= nil or json:find('\\"', 1, true) ~= nil
  local out = {}
  for i, raw in ipairs(decode(json).stmts) do
    local node, tree = next(raw.stmt)
    local from = (raw.stmt_location or 0) + 1
    local len = raw.stmt_len or 0
    local sql = len > 0 and text:sub(from, from + len - 1) or text:sub(from)
    out[i] = { node = node, tree = tree, sql = sql:match("^%s*(.-)%s*$"), long_strings = long_strings }
  end
  if cache_n > 4096 then
    cache, cache_n = {}, 0
  end
  cache[text] = out
  cache_n = cache_n + 1
  return out
end

local function has_option(list, name)
  for _, e in ipairs(list or {}) do
    if e.DefElem and e.DefElem.defname == name then return true end
  end
  return false
end

-- What cannot run inside a transaction block ("... cannot run inside a transaction block",
-- PreventInTransactionBlock in the server): the name of the command, or nil.
function M.no_transaction(s)
  local t = s.tree
  if s.node == "IndexStmt" and t.concurrent then return "CREATE INDEX CONCURRENTLY" end
  if s.node == "DropStmt" and t.concurrent then return "DROP INDEX CONCURRENTLY" end
  if s.node == "ReindexStmt" then
    if has_option(t.params, "concurrently") then return "REINDEX CONCURRENTLY" end
    if t.kind == "REINDEX_OBJECT_SYSTEM" or t.kind == "REINDEX_OBJECT_DATABASE" then
      return "REINDEX " .. t.kind:match("_(%u+)$")
    end
  end
  if s.node == "AlterTableStmt" then
    for _, c in ipairs(t.cmds or {}) do
      local cmd = c.AlterTableCmd
      if cmd and cmd.subtype == "AT_DetachPartition" and cmd.def and cmd.def.PartitionCmd
        and cmd.def.PartitionCmd.concurrent then
        return "ALTER TABLE ... DETACH PARTITION ... CONCURRENTLY"
      end
    end
  end
  if s.node == "VacuumStmt" and t.is_vacuumcmd then return "VACUUM" end
  if s.node == "ClusterStmt" and not t.relation then return "CLUSTER (of every table)" end
  if s.node == "AlterSystemStmt" then return "ALTER SYSTEM" end
  if s.node == "CreatedbStmt" then return "CREATE DATABASE" end
  if s.node == "DropdbStmt" then return "DROP DATABASE" end
  if s.node == "CreateTableSpaceStmt" then return "CREATE TABLESPACE" end
  if s.node == "DropTableSpaceStmt" then return "DROP TABLESPACE" end
  if s.node == "CreateSubscriptionStmt" then return "CREATE SUBSCRIPTION" end
  return nil
end

local CONTROL = {
  TRANS_STMT_BEGIN = "BEGIN", TRANS_STMT_START = "START TRANSACTION", TRANS_STMT_COMMIT = "COMMIT",
  TRANS_STMT_ROLLBACK = "ROLLBACK", TRANS_STMT_PREPARE = "PREPARE TRANSACTION",
  TRANS_STMT_COMMIT_PREPARED = "COMMIT PREPARED", TRANS_STMT_ROLLBACK_PREPARED = "ROLLBACK PREPARED",
  TRANS_STMT_SAVEPOINT = "SAVEPOINT", TRANS_STMT_RELEASE = "RELEASE SAVEPOINT",
  TRANS_STMT_ROLLBACK_TO = "ROLLBACK TO SAVEPOINT",
}
local SAVEPOINT = {
  TRANS_STMT_SAVEPOINT = true, TRANS_STMT_RELEASE = true, TRANS_STMT_ROLLBACK_TO = true,
}

-- Transaction control: the command's name and whether it is a savepoint statement, or nil.
-- (END and ABORT parse as COMMIT and ROLLBACK.)
function M.transaction_control(s)
  if s.node ~= "TransactionStmt" then return nil end
  return CONTROL[s.tree.kind] or s.tree.kind, SAVEPOINT[s.tree.kind] or false
end

-- Words without which a statement is neither of the above: most statements a data
-- migration repeats contain none of them, and are sent without being parsed here.
local WORDS = { "concurrently", "vacuum", "system", "database", "tablespace", "subscription",
  "cluster", "begin", "start", "commit", "end", "rollback", "abort", "prepare", "savepoint",
  "release" }

local function may_matter(text)
  local lower = text:lower()
  for _, w in ipairs(WORDS) do
    if lower:find(w, 1, true) then return true end
  end
  return false
end

local HINT_BLOCK = "run it inside op.autocommit_block(function() ... end), which commits the "
  .. "migration's transaction first and opens a new one after it"

-- M.check(opname, text, in_block): raises (an error table with message, statement, hint)
-- when a statement of `text` must not be sent where it is about to go: transaction control
-- anywhere (the runner owns the transaction; savepoints only inside the migration's
-- transaction, where they cannot end it), and a statement that cannot run in a transaction
-- outside an autocommit block. Text the parser rejects is left to the server, whose error
-- says more than a second opinion would. The error is raised at level 0: the run's message
-- handler names the migration's file:line.
function M.check(opname, text, in_block)
  if not may_matter(text) then return end
  local stmts = M.parse(text)
  if not stmts then return end
  for _, s in ipairs(stmts) do
    local control, savepoint = M.transaction_control(s)
    if control and not (savepoint and not in_block) then
      error({
        message = ("%s: %s is transaction control, which a migration must not issue: the "
          .. "runner owns the transaction%s"):format(opname, control,
          savepoint and " (an autocommit block has none to hold a savepoint)"
            or " (it commits or rolls back the migration together with its version row)"),
        statement = s.sql,
        hint = savepoint and "use savepoints only inside the migration's transaction, not in an "
          .. "autocommit block"
          or "leave COMMIT/BEGIN to the runner; for statements that cannot run in a transaction, "
          .. "use op.autocommit_block(function() ... end)",
      }, 0)
    end
    local nt = not in_block and M.no_transaction(s)
    if nt then
      error({
        message = ("%s: %s cannot run inside a transaction block, and the migration's "
          .. "transaction is open here"):format(opname, nt),
        statement = s.sql,
        hint = HINT_BLOCK,
      }, 0)
    end
  end
end

return M
