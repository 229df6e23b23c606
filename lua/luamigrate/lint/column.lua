-- Lint rules about columns: adding, dropping, retyping, renaming and their NOT NULL.
local ast = require "luamigrate.lint.ast"

-- Functions that are not volatile (provolatile <> 'v'), as far as offline linting knows; an
-- online lint asks pg_proc instead.
local NON_VOLATILE = {}
for name in ([[now current_timestamp current_date current_time localtime localtimestamp
  transaction_timestamp statement_timestamp lower upper length btrim trim abs coalesce nullif
  greatest least to_char to_date to_timestamp md5 concat jsonb_build_object json_build_object
  jsonb_build_array json_build_array array_length cardinality make_interval make_date
  date_trunc timezone current_user current_schema]]):gmatch("%S+") do NON_VOLATILE[name] = true end

local function volatile(expr, k)
  if expr == nil then return false end
  local node, e = next(expr)
  if node == "A_Const" or node == "SQLValueFunction" or node == "ParamRef" then return false end
  if node == "TypeCast" then return volatile(e.arg, k) end
  if node == "A_Expr" then return volatile(e.lexpr, k) or volatile(e.rexpr, k) end
  if node == "BoolExpr" or node == "A_ArrayExpr" or node == "RowExpr" or node == "CoalesceExpr"
    or node == "MinMaxExpr" then
    for _, a in ipairs(e.args or e.elements or {}) do
      if volatile(a, k) then return true end
    end
    return false
  end
  if node == "FuncCall" then
    for _, a in ipairs(e.args or {}) do
      if volatile(a, k) then return true end
    end
    local name = ast.last_name(e.funcname)
    local session = k.session
    if session and session.conn then
      local rows = session.conn:query(
        "SELECT bool_and(provolatile <> 'v') AS ok FROM pg_proc WHERE proname = $1", name)
      if rows[1] and rows[1].ok ~= nil then return not rows[1].ok end
    end
    return not NON_VOLATILE[name]
  end
  return true -- subqueries, column references, anything else: assume the worst
end

local SERIAL = { serial = true, serial4 = true, serial2 = true, smallserial = true, serial8 = true, bigserial = true }

-- A validated CHECK (col IS NOT NULL) known for table.col: from this lint run's statements or,
-- online, from pg_constraint.
local function proven_not_null(k, tbl, col)
  if k.not_null_checks and k.not_null_checks[tbl .. "." .. col] then return true end
  local session = k.session
  local regclass = ast.regclass(tbl)
  if session and session.conn and regclass then
    local rows = session.conn:query([[
SELECT count(*) AS n FROM pg_constraint
WHERE conrelid = to_regclass($1) AND contype = 'c' AND convalidated
  AND pg_get_constraintdef(oid) = format('CHECK ((%I IS NOT NULL))', $2::text)]], regclass, col)
    return rows[1] and tonumber(rows[1].n) > 0
  end
  return false
end

local function each_added(s, fn)
  local out = {}
  for _, c in ipairs(ast.columns(s)) do
    if c.added then
      local f = fn(c)
      if f then out[#out + 1] = f end
    end
  end
  return out[1] and out or nil
end

local REWRITE = "rewrites the whole table under an ACCESS EXCLUSIVE lock: reads and writes wait until it is done"

return {
  { id = "adding-field-with-default", severity = "error", scope = "lock",
    check = function(s, _, k)
      return each_added(s, function(c)
        local gen = ast.constraint(c.col, "CONSTR_GENERATED") or ast.constraint(c.col, "CONSTR_IDENTITY")
        if gen then
          return { table = c.table,
            message = ("adding the %s column %s %s"):format(gen.contype == "CONSTR_IDENTITY" and "identity"
              or "stored generated", c.col.colname, REWRITE),
            hint = "add a plain nullable column, backfill it in batches, and keep it up to date from the "
              .. "application or a trigger" }
        end
        local d = ast.constraint(c.col, "CONSTR_DEFAULT")
        if d and (k.version < 110000 or volatile(d.raw_expr, k)) then
          return { table = c.table,
            message = ("adding column %s with a %s default %s"):format(c.col.colname,
              k.version < 110000 and "(before PostgreSQL 11, any)" or "volatile", REWRITE),
            hint = "add the column without the default, set the default in a second statement (new rows "
              .. "only), then fill existing rows with op.backfill (committed batches outside the DDL "
              .. "transaction)" }
        end
      end)
    end },
  { id = "adding-not-nullable-field", severity = "error", scope = "lock",
    check = function(s, _, k)
      local out = {}
      local t = s.node == "AlterTableStmt" and ast.relname(s.tree.relation)
      for _, cmd in ipairs(ast.cmds(s)) do
        if cmd.subtype == "AT_SetNotNull" and (k.version < 120000 or not proven_not_null(k, t, cmd.name)) then
          out[#out + 1] = { table = t,
            message = ("SET NOT NULL on %s.%s scans the whole table under an ACCESS EXCLUSIVE lock to look "
              .. "for NULLs: reads and writes wait until it is done"):format(t, cmd.name),
            hint = ("use op.set_not_null(%q, %q): it adds CHECK (%s IS NOT NULL) NOT VALID, validates it "
              .. "without blocking writes, then SET NOT NULL needs no scan (PostgreSQL 12+)"):format(t, cmd.name,
              cmd.name) }
        end
      end
      return out[1] and out or nil
    end },
  { id = "adding-required-field", severity = "error", scope = "lock",
    check = function(s)
      return each_added(s, function(c)
        if ast.constraint(c.col, "CONSTR_NOTNULL") and not ast.constraint(c.col, "CONSTR_DEFAULT")
          and not ast.constraint(c.col, "CONSTR_GENERATED") and not ast.constraint(c.col, "CONSTR_IDENTITY")
          and not SERIAL[ast.type_of(c.col.typeName) or ""] then
          return { table = c.table,
            message = ("adding the NOT NULL column %s without a default fails on a table that has rows"):format(
              c.col.colname),
            hint = "give it a (non-volatile) server_default, or add it nullable, backfill, then make it NOT NULL "
              .. "through a validated check constraint" }
        end
      end)
    end },
  { id = "adding-serial-primary-key-field", severity = "error", scope = "lock",
    check = function(s)
      local out = {}
      for _, c in ipairs(ast.added_constraints(s)) do
        if c.con.contype == "CONSTR_PRIMARY" and not c.con.indexname then
          out[#out + 1] = { table = c.table,
            message = "adding a primary key builds its unique index under an ACCESS EXCLUSIVE lock: reads and "
              .. "writes wait until the build ends",
            hint = "build a unique index concurrently (op.create_index(..., { unique = true, "
              .. "postgresql_concurrently = true }) in an autocommit block), then ADD CONSTRAINT ... PRIMARY KEY "
              .. "USING INDEX" }
        end
      end
      local more = each_added(s, function(c)
        if ast.constraint(c.col, "CONSTR_PRIMARY") then
          return { table = c.table,
            message = ("adding the primary key column %s builds its index (and fills the column) under an "
              .. "ACCESS EXCLUSIVE lock: reads and writes wait"):format(c.col.colname),
            hint = "add the column, fill it in batches, build a unique index concurrently, then ADD CONSTRAINT "
              .. "... PRIMARY KEY USING INDEX" }
        end
      end)
      for _, f in ipairs(more or {}) do out[#out + 1] = f end
      return out[1] and out or nil
    end },
  { id = "adding-auto-increment-column", severity = "error", scope = "lock",
    check = function(s)
      return each_added(s, function(c)
        local tname = ast.type_of(c.col.typeName)
        if SERIAL[tname or ""] then -- identity columns: adding-field-with-default, as squawk has it
          return { table = c.table,
            message = ("adding the auto-increment column %s fills every existing row, which %s"):format(
              c.col.colname, REWRITE),
            hint = "add it on a new table, or add a nullable column, attach a sequence default for new rows and "
              .. "backfill existing rows in batches" }
        end
      end)
    end },
  { id = "ban-drop-column", severity = "error", scope = "breaking",
    check = function(s)
      local out = {}
      local t = s.node == "AlterTableStmt" and ast.relname(s.tree.relation)
      for _, cmd in ipairs(ast.cmds(s)) do
        if cmd.subtype == "AT_DropColumn" then
          out[#out + 1] = { table = t,
            message = ("dropping column %s.%s breaks the application code still reading or writing it, and takes "
              .. "an ACCESS EXCLUSIVE lock"):format(t, cmd.name),
            hint = "deploy code that no longer uses the column first; then drop it, inside "
              .. "op.allow(\"ban-drop-column\", function() ... end)" }
        end
      end
      return out[1] and out or nil
    end },
  { id = "ban-drop-not-null", severity = "error", scope = "breaking",
    check = function(s)
      local t = s.node == "AlterTableStmt" and ast.relname(s.tree.relation)
      for _, cmd in ipairs(ast.cmds(s)) do
        if cmd.subtype == "AT_DropNotNull" then
          return { table = t,
            message = ("dropping NOT NULL on %s.%s lets NULLs in that running code does not expect"):format(t,
              cmd.name),
            hint = "make sure every reader handles NULL before allowing it" }
        end
      end
    end },
  { id = "changing-column-type", severity = "error", scope = "lock",
    check = function(s)
      local out = {}
      for _, c in ipairs(ast.columns(s)) do
        if c.retyped then
          out[#out + 1] = { table = c.table,
            message = ("changing the type of %s.%s usually %s (and rebuilds its indexes)"):format(c.table,
              c.col.colname, REWRITE),
            hint = "add a new column of the new type, write both, backfill in batches, switch reads, then drop "
              .. "the old one" }
        end
      end
      return out[1] and out or nil
    end },
  { id = "renaming-column", severity = "error", scope = "breaking",
    check = function(s)
      if s.node ~= "RenameStmt" or s.tree.renameType ~= "OBJECT_COLUMN" then return nil end
      local t = ast.relname(s.tree.relation)
      return { table = t,
        message = ("renaming column %s.%s breaks the code still using the old name"):format(t, s.tree.subname),
        hint = "add the new column, write both, backfill, move the readers, then drop the old column" }
    end },
}
