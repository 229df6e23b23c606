-- `luamigrate lint`: the statements each revision would run, rendered the way --sql renders
-- them (the same ops, the same context), judged by the rules in luamigrate/lint/*.lua with
-- what is known about where they will run: the server version, each touched table's size
-- (online), the tables created earlier in the same transaction, whether a statement runs in
-- the migration's transaction or in an autocommit block, and the timeouts the run sets.
--
-- The C command (src/cmd_lint.c) drives it: session = lint.new(opts); for each revision
-- session:begin(ctx, revision, file), run the migration function with that context,
-- session:finish_revision(ok, err); session:done(); then session:report() -> exit status.
local ast = require "luamigrate.lint.ast"
local sql = require "luamigrate.sql"

local M = {}

-- The rule modules, one noun each; every module is a list of rules
-- {id, severity, scope, refused, check(s, r, k) -> finding | {finding, ...} | nil} (refused:
-- the run refuses the statement anyway, so upgrade's lint does not repeat it) where `s` is the
-- parsed statement, `r` its record (revision, in_block, ...) and `k` the knowledge (below).
-- scope "lock": about a lock held or a scan/rewrite on an existing table, moot for a table
-- created in the same transaction or (online) one that is empty; "breaking": about code
-- that still uses the old shape, moot only for a table created in the same transaction.
local MODULES = { "index", "column", "constraint", "table", "type", "transaction", "naming" }

M.RULES, M.BY_ID = {}, {}
for _, name in ipairs(MODULES) do
  for _, rule in ipairs(require("luamigrate.lint." .. name)) do
    M.RULES[#M.RULES + 1] = rule
    M.BY_ID[rule.id] = rule
  end
end
-- The name squawk's documentation once used, accepted in config and allow marks.
local ALIASES = { ["prefer-timestamp-tz"] = "prefer-timestamptz" }
function M.canonical(id) return ALIASES[id] or id end

local LEVELS = { off = true, warning = true, error = true }
local SETTINGS = { rules = "table", start_after = "string", postgres_version = "number", upgrade = "string" }

-- The `lint` table of luamigrate.lua, checked: {rules = {id = level}, start_after = rev,
-- postgres_version = major, upgrade = "warn" | "error" | "off"}.
function M.settings(all, config_path)
  local s = all.lint or {}
  local where = (config_path or "luamigrate.lua") .. ": lint"
  for k, v in pairs(s) do
    if not SETTINGS[k] then
      error(("%s: unknown key '%s' (known: postgres_version, rules, start_after, upgrade)"):format(where,
        tostring(k)), 0)
    end
    if type(v) ~= SETTINGS[k] then error(("%s.%s must be a %s"):format(where, k, SETTINGS[k]), 0) end
  end
  for id, level in pairs(s.rules or {}) do
    if not M.BY_ID[M.canonical(id)] then error(("%s.rules: unknown rule '%s'"):format(where, tostring(id)), 0) end
    if not LEVELS[level] then
      error(("%s.rules['%s'] must be \"off\", \"warning\" or \"error\""):format(where, id), 0)
    end
  end
  if s.upgrade and not ({ warn = true, error = true, off = true })[s.upgrade] then
    error(("%s.upgrade must be \"warn\", \"error\" or \"off\""):format(where), 0)
  end
  return s
end

local function fmt_size(bytes)
  local units, i = { "bytes", "kB", "MB", "GB", "TB" }, 1
  while bytes >= 1024 and i < #units do bytes, i = bytes / 1024, i + 1 end
  return i == 1 and ("%d %s"):format(bytes, units[i]) or ("%.1f %s"):format(bytes, units[i])
end

local function fmt_rows(n)
  if n >= 1e6 then return ("%.1fM"):format(n / 1e6) end
  if n >= 1e4 then return ("%dk"):format(n // 1000) end
  return ("%d"):format(n)
end

-- opts: {settings = all config settings, config_path, conn = Conn or nil, downgrade}
function M.new(opts)
  local all = opts.settings or {}
  local ls = M.settings(all, opts.config_path)
  local self = setmetatable({}, { __index = M })
  self.opts, self.lint = opts, ls
  self.levels = {}
  for id, level in pairs(ls.rules or {}) do self.levels[M.canonical(id)] = level end
  self.findings, self.revisions = {}, 0
  self.ops_before = {}
  for k in pairs(require "luamigrate.op") do self.ops_before[k] = true end
  self.conn = opts.conn
  -- nil: the default (luamigrate.config.DEFAULTS); false: none
  local defaults = require("luamigrate.config").DEFAULTS
  local function timeout(name)
    local v = all[name]
    if v == nil then v = defaults[name] end
    return v or nil
  end
  self.lock_timeout = timeout("migration_lock_timeout")
  self.statement_timeout = timeout("migration_statement_timeout")
  self.per_migration = all.transaction_per_migration ~= false
  local version = (ls.postgres_version or 15) * 10000
  -- online, timeouts the server already applies to this role or database (ALTER ROLE ... SET
  -- lock_timeout, as behind a transaction pooler) hold everywhere, autocommit blocks included
  self.server_timeouts = {}
  if self.conn then
    local rows = self.conn:query("SELECT current_setting('server_version_num')::int AS v, "
      .. "current_setting('lock_timeout') AS lt, current_setting('statement_timeout') AS st")
    version = rows[1].v
    self.server_timeouts.lock_timeout = rows[1].lt ~= "0"
    self.server_timeouts.statement_timeout = rows[1].st ~= "0"
  end
  self.k = { version = version, online = self.conn ~= nil, created = {}, stats = {}, session = self,
    not_null_checks = {} }
  return self
end

-- A session for the config file at `config_path` (its settings read again: the C side keeps
-- only what it needs), online when `conn` is given.
function M.open(config_path, conn)
  local settings = require("luamigrate.config").load(config_path)
  return M.new { settings = settings, config_path = config_path, conn = conn }
end

-- After the last revision: ops that migrations added with op.register while being rendered
-- are removed again, so the run that follows can register them itself.
function M:done()
  local op = require "luamigrate.op"
  for k in pairs(op) do
    if not self.ops_before[k] then op[k] = nil end
  end
end

-- Online: {rows =, bytes =, heap =} of a table that exists now, or false.
function M:table_stats(name)
  local regclass = ast.regclass(name)
  if not self.conn or not regclass then return false end
  local hit = self.k.stats[name]
  if hit ~= nil then return hit end
  -- a partitioned table has no storage of its own: its partitions' counts
  local rows = self.conn:query([[
WITH t AS (SELECT c.oid FROM pg_class c WHERE c.oid = to_regclass($1)),
     parts AS (SELECT t.oid FROM t UNION ALL SELECT i.inhrelid FROM pg_inherits i JOIN t ON i.inhparent = t.oid)
SELECT sum(c.reltuples)::float8 AS rows, sum(pg_total_relation_size(c.oid))::float8 AS bytes,
       sum(pg_relation_size(c.oid))::float8 AS heap, min(c.reltuples)::float8 AS least
FROM parts JOIN pg_class c ON c.oid = parts.oid HAVING count(*) > 0]], regclass)
  local r = rows[1]
  local st = r and { rows = r.least < 0 and -1 or r.rows, bytes = r.bytes, heap = r.heap } or false
  self.k.stats[name] = st
  return st
end

local function where_in(file)
  for level = 3, 60 do
    local info = debug.getinfo(level, "Sl")
    if not info then break end
    if info.source == "@" .. file and info.currentline > 0 then return info.currentline end
  end
  for level = 3, 60 do
    local info = debug.getinfo(level, "Sl")
    if not info then break end
    if info.source:sub(1, 1) == "@" and info.currentline > 0
      and not info.source:find("/lua/luamigrate/", 1, true) then
      return info.currentline, info.short_src
    end
  end
  return 0
end

-- Sets up the run context `ctx` (made by the C side as for --sql) for one revision: ops emit
-- into this session, autocommit blocks only mark their statements, and the op layer's own
-- refusals become findings instead of errors.
function M:begin(ctx, revision, file)
  self.revisions = self.revisions + 1
  local rev = { id = revision, file = file, records = {}, allowed = {} }
  self.current = rev
  ctx.lint = true
  ctx.emit = function(text)
    local line, other = where_in(file)
    local allowed = {}
    for _, set in ipairs(rev.allowed) do
      for id in pairs(set) do allowed[id] = true end
    end
    rev.records[#rev.records + 1] = { text = text, line = line, file = other or file,
      in_block = ctx.in_autocommit_block == true, allowed = allowed, revision = revision }
  end
  ctx.autocommit_block = function(fn) fn() end
  -- op.allow(rules, fn) pushes its rules here while fn runs
  ctx.allow = function(ids, fn)
    local set = {}
    for _, id in ipairs(ids) do set[M.canonical(id)] = true end
    rev.allowed[#rev.allowed + 1] = set
    local _ <close> = setmetatable({}, { __close = function() table.remove(rev.allowed) end })
    return fn()
  end
end

local function add(self, rule, r, s, f, level)
  local msg, hint = f.message, f.hint
  local st = f.table and self.k.online and self:table_stats(f.table)
  if st then
    -- reltuples is -1 until the table is first vacuumed or analyzed
    msg = st.rows >= 0 and ("%s (%s: ~%s rows, %s)"):format(msg, f.table, fmt_rows(st.rows), fmt_size(st.bytes))
      or ("%s (%s: %s, not analyzed yet)"):format(msg, f.table, fmt_size(st.bytes))
  end
  self.findings[#self.findings + 1] = {
    rule = rule.id, severity = level, revision = r.revision, file = r.file, line = r.line,
    statement = s.sql, message = msg, hint = hint, allowed = (r.allowed[rule.id] or s.allow[rule.id]) or nil,
  }
end

-- "-- luamigrate:allow rule[, rule]" in a statement (the comments before it stay with it).
local function allow_marks(text)
  local set = {}
  for list in text:gmatch("luamigrate:allow%s+([%w%-_, ]+)") do
    for id in list:gmatch("[%w%-_]+") do set[M.canonical(id)] = true end
  end
  return set
end

-- A statement is moot for a rule of `scope` on `table`: created in this transaction (nobody
-- else can see it), or online, empty (nothing to scan or rewrite).
function M:moot(scope, table_name)
  if not scope or not table_name then return false end
  if self.k.created[table_name] then return true end
  if scope == "lock" and self.k.online then
    -- empty now, or not there yet: an earlier revision of the plan creates it, and it holds
    -- no more than the run puts in
    local st = self:table_stats(table_name)
    if not st or st.heap == 0 then return true end
  end
  return false
end

-- Judges the statements the revision emitted. A migration that failed to render (an
-- error in it, or reading data offline) is reported as a finding of its own.
function M:finish_revision(ok, err)
  local rev = self.current
  local k = self.k
  if self.per_migration then k.created = {} end
  local st = self.server_timeouts
  k.rev = { lock_timeout = self.lock_timeout ~= nil or st.lock_timeout,
    statement_timeout = self.statement_timeout ~= nil or st.statement_timeout,
    reported = {}, open_begin = nil, dropped_constraints = {}, not_valid = {}, ddl_tables = {}, in_block = false,
    -- the run sets its timeouts for the session around an autocommit block too
    block_lock_timeout = self.lock_timeout ~= nil or st.lock_timeout,
    block_statement_timeout = self.statement_timeout ~= nil or st.statement_timeout }
  for _, r in ipairs(rev.records) do
    if r.in_block ~= k.rev.in_block then
      -- an autocommit block commits the transaction: what was created in it is visible now,
      -- (the run's timeouts hold there too, as session settings: block_lock_timeout)
      k.created, k.rev.ddl_tables, k.rev.not_valid = {}, {}, {}
      k.rev.in_block = r.in_block
    end
    local stmts, msg = sql.parse(r.text)
    if not stmts then
      self.findings[#self.findings + 1] = { rule = "syntax-error", severity = "error", revision = r.revision,
        file = r.file, line = r.line, statement = r.text, message = "the parser rejects this statement: " .. msg,
        hint = "the server would reject it too; fix the SQL" }
      stmts = {}
    end
    for _, s in ipairs(stmts) do
      s.allow = allow_marks(s.sql)
      for _, rule in ipairs(M.RULES) do
        local level = self.levels[rule.id] or rule.severity
        if level ~= "off" then
          local res = rule.check(s, r, k)
          if res then
            if res.message then res = { res } end
            for _, f in ipairs(res) do
              if not self:moot(rule.scope, f.table) then add(self, rule, r, s, f, level) end
            end
          end
        end
      end
      M.track(s, r, k)
    end
  end
  if not ok then
    local msg = type(err) == "table" and err.message or tostring(err)
    self.findings[#self.findings + 1] = { rule = "unrenderable", severity = "warning", revision = rev.id,
      file = rev.file, line = type(err) == "table" and tonumber((err.where or ""):match(":(%d+)$")) or 0,
      statement = "", message = "the migration could not be rendered without running it: " .. msg,
      hint = "lint renders migrations as --sql does, with no data to read; fix the error, or move lint.start_after "
        .. "past this revision" }
  end
  if k.rev.open_begin then
    local r, s = k.rev.open_begin[1], k.rev.open_begin[2]
    add(self, M.BY_ID["ban-uncommitted-transaction"], r, s, {
      message = "BEGIN without a matching COMMIT: the transaction it opens is left open",
      hint = "leave transactions to the runner; for statements that cannot run in one use op.autocommit_block",
    }, self:level("ban-uncommitted-transaction"))
  end
  self.current = nil
end

function M:level(id)
  return self.levels[id] or M.BY_ID[id].severity
end

-- What a statement changes in the knowledge the next statements are judged with.
function M.track(s, r, k)
  local t = s.tree
  if s.node == "CreateStmt" or s.node == "CreateTableAsStmt" then
    local rv = t.relation or (t.into and t.into.rel)
    if rv then k.created[ast.relname(rv)] = true end
  elseif s.node == "VariableSetStmt" and (t.name == "lock_timeout" or t.name == "statement_timeout") then
    local key = (r.in_block and "block_" or "") .. t.name
    k.rev[key] = true
    if not r.in_block then k.rev[t.name] = true end
  elseif s.node == "TransactionStmt" then
    local kind = t.kind
    if kind == "TRANS_STMT_BEGIN" or kind == "TRANS_STMT_START" then
      k.rev.open_begin = { r, s }
    elseif kind == "TRANS_STMT_COMMIT" or kind == "TRANS_STMT_ROLLBACK" or kind == "TRANS_STMT_PREPARE" then
      k.rev.open_begin = nil
    end
  elseif s.node == "AlterTableStmt" then
    local name = ast.relname(t.relation)
    k.rev.ddl_tables[name] = true
    for _, c in ipairs(t.cmds or {}) do
      local cmd = c.AlterTableCmd or {}
      if cmd.subtype == "AT_DropConstraint" and cmd.name then k.rev.dropped_constraints[cmd.name] = true end
      local con = cmd.def and cmd.def.Constraint
      -- CHECK (col IS NOT NULL): once validated, SET NOT NULL needs no scan (PostgreSQL 12+)
      local nt = con and con.contype == "CONSTR_CHECK" and con.raw_expr and con.raw_expr.NullTest
      local col = nt and nt.nulltesttype == "IS_NOT_NULL" and nt.arg and nt.arg.ColumnRef
        and ast.last_name(nt.arg.ColumnRef.fields)
      if cmd.subtype == "AT_AddConstraint" and con then
        if con.skip_validation then
          if con.conname then k.rev.not_valid[con.conname] = { table = name, col = col } end
          if con.conname and col then k.pending_not_null = k.pending_not_null or {} end
          if con.conname and col then k.pending_not_null[con.conname] = name .. "." .. col end
        elseif col then
          k.not_null_checks[name .. "." .. col] = true
        end
      elseif cmd.subtype == "AT_ValidateConstraint" and k.pending_not_null and k.pending_not_null[cmd.name] then
        k.not_null_checks[k.pending_not_null[cmd.name]] = true
      end
    end
  elseif s.node == "IndexStmt" or s.node == "RenameStmt" then
    local name = ast.relname(t.relation)
    if name then k.rev.ddl_tables[name] = true end
  end
end

local function sorted_findings(self)
  local out = {}
  for i, f in ipairs(self.findings) do out[i] = f end
  return out
end

-- What upgrade shows before it runs: a line per error-level finding not allowed (the
-- warning-level ones only as a count, shown with -v); returns the lines, the number of
-- error-level findings and the count line (or nil).
function M:warnings()
  local lines, errors, warnings = {}, 0, 0
  for _, f in ipairs(self.findings) do
    local rule = M.BY_ID[f.rule]
    -- what the run refuses anyway (and SQL the server rejects, a migration that fails) is
    -- said once, by the run
    if not f.allowed and rule and not rule.refused then
      if f.severity == "error" then
        errors = errors + 1
        lines[#lines + 1] = ("%s:%d: lint[%s]: %s"):format(f.file, f.line, f.rule, f.message)
      else
        warnings = warnings + 1
      end
    end
  end
  local more = warnings > 0 and ("lint: %d more finding%s of warning level; 'luamigrate lint' lists them"):format(
    warnings, warnings == 1 and "" or "s") or nil
  return lines, errors, more
end

-- Prints the findings (text or --json) to stdout and a summary to stderr; returns the exit
-- status: 1 when an error-level finding is not allowed, else 0.
function M:report(json)
  local findings = sorted_findings(self)
  local errors, warnings, allowed = 0, 0, 0
  for _, f in ipairs(findings) do
    if f.allowed then allowed = allowed + 1
    elseif f.severity == "error" then errors = errors + 1
    else warnings = warnings + 1 end
  end
  if json then
    local cjson = require "cjson"
    local items = {}
    for i, f in ipairs(findings) do
      items[i] = cjson.encode({ rule = f.rule, severity = f.severity, revision = f.revision, file = f.file,
        line = f.line, statement = f.statement, message = f.message, hint = f.hint, allowed = f.allowed == true })
    end
    io.stdout:write("[", table.concat(items, ",\n "), "]\n")
  else
    for _, f in ipairs(findings) do
      io.stdout:write(("%s:%d: %s[%s]: %s\n"):format(f.file, f.line, f.allowed and "allowed" or f.severity, f.rule,
        f.message))
      if f.statement ~= "" then io.stdout:write("  statement: ", (f.statement:gsub("\n", "\n    ")), "\n") end
      io.stdout:write("  hint: ", f.hint, "\n")
    end
  end
  io.stdout:flush()
  io.stderr:write(("lint: %d error%s, %d warning%s, %d allowed in %d revision%s (%s, PostgreSQL %d)\n"):format(
    errors, errors == 1 and "" or "s", warnings, warnings == 1 and "" or "s", allowed, self.revisions,
    self.revisions == 1 and "" or "s", self.k.online and "online" or "offline", self.k.version // 10000))
  return errors > 0 and 1 or 0
end

return M
