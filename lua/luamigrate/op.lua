-- The `op` API migrations call, with Alembic's names and arguments (keyword arguments as
-- one trailing options table). Each op renders its SQL through luamigrate.render and hands
-- the statements to the run in progress: executed on the connection online, written out
-- in --sql mode. Calling an op outside a migration raises.
local core = require "luamigrate.core"
local quote = require "luamigrate.quote"
local render = require "luamigrate.render"
local schema = require "luamigrate.schema"
local sql_check = require("luamigrate.sql").check
local types = require "luamigrate.types"
local expr = require "luamigrate.expr"
local typed = require "luamigrate.typed"
local opts_check = require "luamigrate.options"

local M = {}
local ident, qualified, literal = quote.ident, quote.qualified, quote.literal
local has_text_nul = quote.has_nul

local function set(...)
  local s = {}
  for _, k in ipairs { ... } do s[k] = true end
  return s
end

local function check(opname, argname, value, want, optional)
  if value == nil and optional then return end
  if type(value) ~= want then
    error(("op.%s: %s must be a %s, got %s"):format(opname, argname, want, type(value)), 3)
  end
end

local did_you_mean = opts_check.did_you_mean
M._did_you_mean = did_you_mean

local function options(opname, opts, allowed) return opts_check.check("op." .. opname, opts, allowed) end

-- Alembic's optional positional parameters of each op, in Alembic's order (operations/ops.py),
-- with the check each value must pass ("s" string, "b" boolean, "t" a type, "*" anything);
-- after them (or instead of any of them) comes the options table.
local POSITIONAL = {
  drop_table = { "schema:s" }, rename_table = { "schema:s" }, add_column = { "schema:s" },
  drop_column = { "schema:s" },
  alter_column = { "nullable:b", "comment:*", "server_default:*", "new_column_name:s", "type_:t",
    "existing_type:t", "existing_server_default:*", "existing_nullable:b", "existing_comment:*",
    "schema:s" },
  create_index = { "schema:s", "unique:b" }, drop_index = { "table_name:s", "schema:s" },
  create_primary_key = { "schema:s" }, create_unique_constraint = { "schema:s" },
  create_foreign_key = { "onupdate:s", "ondelete:s", "deferrable:b", "initially:s", "match:s",
    "source_schema:s", "referent_schema:s" },
  create_check_constraint = { "schema:s" }, drop_constraint = { "type_:s", "schema:s" },
  create_table_comment = { "existing_comment:s", "schema:s" },
  drop_table_comment = { "existing_comment:s", "schema:s" },
  bulk_insert = { "multiinsert:b" },
  batch_alter_table = { "schema:s", "recreate:s", "partial_reordering:*", "copy_from:*", "table_args:*",
    "table_kwargs:*", "reflect_args:*", "reflect_kwargs:*", "naming_convention:*" },
}
M._POSITIONAL = POSITIONAL

local VALUE_OK = {
  s = function(v) return type(v) == "string" or quote.is_conv(v), "a string" end,
  b = function(v) return type(v) == "boolean", "a boolean" end,
  t = function(v) return types.is_type(v) or type(v) == "string", "a type" end,
  ["*"] = function() return true end,
}

local function describe(v)
  if types.is_type(v) then return v.label end
  if type(v) == "table" and v.kind then return tostring(v.kind) end
  return type(v)
end

-- The options of op `opname` from the arguments after its required ones (`first` is the
-- number of the first of them): positionals by Alembic's order, then the options table.
local function trailing(opname, allowed, first, ...)
  local names = POSITIONAL[opname] or {}
  local n = select("#", ...)
  local given, opts = {}, nil
  for i = 1, n do
    local v = select(i, ...)
    if v ~= nil then
      if opts ~= nil then
        error(("op.%s: argument %d comes after the options table, which must be last"):format(opname, first + i - 1), 3)
      end
      if type(v) == "table" and getmetatable(v) == nil then
        opts = v
      else
        local spec = names[i]
        if not spec then
          local list = {}
          for j, p in ipairs(names) do list[j] = p:match("^[^:]+") end
          error(("op.%s: argument %d (%s) is not a parameter: %s"):format(opname, first + i - 1, describe(v),
            #list > 0
              and ("the optional positional ones are " .. table.concat(list, ", ") .. ", then the options table")
              or "only the options table may follow"), 3)
        end
        local pname, c = spec:match("^([^:]+):(.*)$")
        local ok, want = VALUE_OK[c](v)
        if not ok then
          -- name the later parameter the value fits, the one the writer most likely meant
          local list, meant = {}, pname
          for j, p in ipairs(names) do
            local pn, pc = p:match("^([^:]+):(.*)$")
            list[j] = pn
            if j > i and meant == pname and pc ~= "*" and VALUE_OK[pc](v) then meant = pn end
          end
          error(("op.%s: %s (argument %d) must be %s, got %s; Alembic's parameters after the required ones are %s; "
            .. "give the one you mean by name in the options table: {%s = ...}"):format(opname, pname, first + i - 1,
            want, describe(v), table.concat(list, ", "), meant), 3)
        end
        given[pname] = v
      end
    end
  end
  local o = options(opname, opts, allowed)
  if next(given) == nil then return o end
  local merged = {}
  for k, v in pairs(o) do merged[k] = v end
  for k, v in pairs(given) do
    if o[k] ~= nil then
      error(("op.%s: '%s' given twice (positionally and in the options table)"):format(opname, k), 3)
    end
    merged[k] = v
  end
  return merged
end

-- A constraint or index name: a string, or op.f(name).
local function check_name(opname, argname, value, optional)
  if value == nil and optional then return end
  if type(value) ~= "string" and not quote.is_conv(value) then
    error(("op.%s: %s must be a string, got %s"):format(opname, argname, type(value)), 3)
  end
end

-- Runs (or, offline, emits) each statement for op `opname`; ctx.queue sends without waiting.
-- Each statement is first checked by the parser (luamigrate.sql.check): transaction control
-- and, outside an autocommit block, what cannot run in a transaction are refused, the same
-- online, in --sql and in --dry-run.
local function run(opname, ...)
  local ctx = core.context("op." .. opname)
  for i = 1, select("#", ...) do
    local sql = select(i, ...)
    if not ctx.lint then sql_check("op." .. opname, sql, ctx.in_autocommit_block) end
    if ctx.emit then ctx.emit(sql) else (ctx.queue or ctx.conn):execute(sql) end
  end
end
M._run = run

-- sa.text's :name parameters (not ::cast) as $1, $2, ...: each distinct name gets one number,
-- its value from the text's params or `params`. Returns the SQL and the values (with .n).
local function text_binds(sql, params, level)
  local names, n = {}, 0
  local values = { n = 0 }
  local merged = {}
  for k, v in pairs(sql.params) do merged[k] = v end
  for k, v in pairs(params or {}) do merged[k] = v end
  local text = sql.text:gsub("(:?):([%a_][%w_]*)", function(colon, name)
    if colon == ":" then return nil end
    if merged[name] == nil and not names[name] then
      error(("op.execute: no value for bind parameter :%s"):format(name), level + 1)
    end
    if not names[name] then
      n = n + 1
      names[name] = n
      values[n] = merged[name]
      values.n = n
    end
    return "$" .. names[name]
  end)
  return text, values
end

-- op.execute(sql | sa.text [, params]): params is an array bound as $1, $2, ... (with
-- params.n for trailing nils), or with sa.text, named :name binds from the text's params.
function M.execute(sql, params)
  local ctx = core.context("op.execute")
  -- Alembic's execution_options change nothing here (there is no SQLAlchemy engine)
  if type(params) == "table" and getmetatable(params) == nil and params.execution_options ~= nil then
    local only = true
    for k in pairs(params) do if k ~= "execution_options" then only = false end end
    if only then params = nil end
  end
  local text, values = sql, params
  if expr.is_statement(sql) then
    if params ~= nil then error("op.execute: a statement carries its own values; params must be nil", 2) end
    text, values = expr.compile(sql, ctx.emit ~= nil, render.value)
    for i = 1, values.n do
      local v = values[i]
      if has_text_nul(v) then
        error(("op.execute: the statement's value $%d contains a NUL byte, which PostgreSQL text cannot hold")
          :format(i), 2)
      end
    end
  elseif schema.is(sql, "text") then
    text, values = text_binds(sql, params, 4)
  else
    check("execute", "sql", sql, "string")
    check("execute", "params", params, "table", true)
  end
  if not ctx.lint then sql_check("op.execute", text, ctx.in_autocommit_block) end
  if ctx.emit then
    if values and (values.n or #values) > 0 then
      text = text:gsub("%$(%d+)", function(d) return render.value(values[tonumber(d)]) end)
    end
    ctx.emit(text)
    return 0
  end
  if values and (values.n or #values) > 0 then
    return ctx.conn:execute(text, table.unpack(values, 1, values.n or #values))
  end
  return ctx.conn:execute(text)
end

local bind_for
-- In --sql mode op.get_bind() returns this stand-in: statements are written to the script
-- (parameters rendered inline), and reading data is an error, since there is no database.
local OfflineConn = {}
OfflineConn.__index = OfflineConn

-- The connection's refusals of a statement and its parameters (a NUL byte, which libpq would
-- cut the text at; a value it cannot bind), raised at the caller of get_bind()'s
-- :execute/:query (level 3 from here).
local function refuse_params(sql, ...)
  if has_text_nul(sql) then error("statement contains a NUL byte", 3) end
  for i = 1, select("#", ...) do
    local v = select(i, ...)
    local t = type(v)
    if has_text_nul(v) then
      error(("parameter $%d contains a NUL byte"):format(i), 3)
    elseif t ~= "string" and t ~= "number" and t ~= "boolean" and t ~= "nil" then
      error(("parameter $%d: cannot bind a %s value"):format(i, t), 3)
    end
  end
end

function OfflineConn:execute(sql, ...)
  if expr.is_statement(sql) then sql = expr.compile(sql, true, render.value) end
  if schema.is(sql, "text") then return M.execute(sql, ...) end
  check("get_bind():execute", "sql", sql, "string")
  refuse_params(sql, ...)
  local n = select("#", ...)
  if n > 0 then
    local params = table.pack(...)
    sql = sql:gsub("%$(%d+)", function(d) return render.value(params[tonumber(d)]) end)
  end
  self.emit(sql)
  return 0
end

function OfflineConn.query(_, sql)
  if expr.is_statement(sql) then sql = expr.compile(sql, true, render.value) end
  if schema.is(sql, "text") then sql = sql.text end
  error(("op.get_bind():query: there is no database in --sql mode, so a migration that reads "
    .. "data cannot be rendered offline (query: %s)"):format(tostring(sql)), 2)
end

function OfflineConn.status() return "offline" end

-- :result in --sql mode: the statement goes into the script (as with :execute) and its
-- result cannot be read: there is no database.
function OfflineConn:result(sql, ...)
  -- a statement is compiled once, here: :execute takes the SQL it gives
  if expr.is_statement(sql) then sql = (expr.compile(sql, true, render.value)) end
  self:execute(sql, ...)
  return require("luamigrate.result").offline(schema.is(sql, "text") and sql.text or sql)
end

-- Online, op.get_bind() is the migration's connection seen through this: :execute and
-- :query also take sa statements and sa.text (compiled to $n parameters), and :query
-- returns typed values (luamigrate.typed); every other method is the connection's own.
local Bind = {}
function Bind:__index(k)
  local v = Bind[k]
  if v ~= nil then return v end
  -- SQLAlchemy's connection.engine: sa.inspect(bind.engine) inspects this connection
  if k == "engine" then return self end
  local conn = rawget(self, "conn")
  local m = conn[k]
  if type(m) == "function" then return function(_, ...) return m(conn, ...) end end
  return m
end

local function bind_args(sql, ...)
  if expr.is_statement(sql) then
    local text, params = expr.compile(sql, false, render.value)
    return text, table.unpack(params, 1, params.n)
  end
  if schema.is(sql, "text") then
    local text, values = text_binds(sql, (...), 5)
    return text, table.unpack(values, 1, values.n)
  end
  return sql, ...
end

-- A statement or sa.text is compiled, then run as SQL text through a tail call, so the
-- refusals here (which the connection would report against this file) name the migration's
-- line.
function Bind:execute(sql, ...)
  if type(sql) ~= "string" then return self:execute(bind_args(sql, ...)) end
  refuse_params(sql, ...)
  return self.conn:execute(sql, ...)
end
function Bind:query(sql, ...)
  if type(sql) ~= "string" then return self:query(bind_args(sql, ...)) end
  refuse_params(sql, ...)
  local rows, oids = self.conn:query(sql, ...)
  return require("luamigrate.typed").rows(rows, oids)
end

-- :result(sql, ...): runs the statement and returns its result with SQLAlchemy's methods
-- (luamigrate.result: fetchone, fetchall, first, scalar, scalars, rowcount, ...), the rows
-- typed as :query's. The statement is sent and waited for on its own (never pipelined).
function Bind:result(sql, ...)
  if type(sql) ~= "string" then return self:result(bind_args(sql, ...)) end
  refuse_params(sql, ...)
  local rows, oids, names, count = self.conn:query(sql, ...)
  return require("luamigrate.result").new(typed.rows(rows, oids), names, count, sql)
end

function bind_for(conn)
  return setmetatable({ conn = conn }, Bind)
end

-- op.get_bind(): the migration's connection (:execute, :query); in --sql mode a stand-in
-- that writes statements to the script and refuses to read.
function M.get_bind()
  local ctx = core.context("op.get_bind")
  if ctx.emit then
    local b = setmetatable({ emit = ctx.emit }, OfflineConn)
    b.engine = b -- SQLAlchemy's connection.engine (sa.inspect(bind.engine))
    return b
  end
  return bind_for(ctx.conn)
end

-- op.get_x_argument(): the -x KEY=VALUE pairs of the command line, as a table.
function M.get_x_argument()
  return core.context("op.get_x_argument").x
end

-- op.inline_literal(value): a value rendered inline (safe offline).
function M.inline_literal(value)
  return setmetatable({ kind = "inline_literal", value = value }, {
    __tostring = function(self) return render.value(self.value) end,
    __concat = function(a, b) return tostring(a) .. tostring(b) end,
  })
end

-- op.autocommit_block(fn): commits the migration's transaction, runs fn outside any
-- transaction (CREATE INDEX CONCURRENTLY, ALTER TYPE ... ADD VALUE on old servers), then
-- begins a new one, by the run's one protocol (ctx.autocommit_block): online upgrades
-- journal what the COMMIT makes permanent and each statement of fn (docs/resume.md), --sql
-- writes it as a script, dry runs list fn's statements, lock = "xact" refuses.
function M.autocommit_block(fn)
  check("autocommit_block", "fn", fn, "function")
  local ctx = core.context("op.autocommit_block")
  -- ops inside fn know they run outside a transaction (luamigrate.sql.check); a
  -- to-be-closed mark, so an error leaves fn with its where and traceback intact
  local body = fn
  fn = function()
    ctx.in_autocommit_block = true
    local _ <close> = setmetatable({}, { __close = function() ctx.in_autocommit_block = nil end })
    return body()
  end
  -- the run's protocol (src/bind/l_run.c): online it journals what the COMMIT makes
  -- permanent, --sql writes the COMMIT and BEGIN, dry runs list fn's statements
  return ctx.autocommit_block(fn)
end

-- op.allow(rules, fn): runs fn; `luamigrate lint` (and the lint before upgrade) reports
-- the findings of those rules (a rule id or a list of them) on fn's statements as allowed
-- instead of as warnings or errors. Outside linting it only runs fn.
function M.allow(rules, fn)
  local ctx = core.context("op.allow")
  local ids = type(rules) == "string" and { rules } or rules
  if type(ids) ~= "table" or #ids == 0 then
    error("op.allow: rules must be a rule id or a list of rule ids", 2)
  end
  for _, id in ipairs(ids) do check("allow", "rule id", id, "string") end
  check("allow", "fn", fn, "function")
  if ctx.allow then return ctx.allow(ids, fn) end
  return fn()
end

-- Enum types are first-class.
local function create_enum_sql(name, values, o)
  return render.create_enum(name, values, o)
end

function M.create_enum(name, values, opts)
  check("create_enum", "name", name, "string")
  check("create_enum", "values", values, "table")
  local o = options("create_enum", opts, set("schema", "if_not_exists"))
  local sql = create_enum_sql(name, values, o)
  if o.if_not_exists then
    sql = "DO $luamigrate$ BEGIN " .. sql .. "; EXCEPTION WHEN duplicate_object THEN NULL; END $luamigrate$"
  end
  run("create_enum", sql)
end

function M.drop_enum(name, opts)
  check("drop_enum", "name", name, "string")
  local o = options("drop_enum", opts, set("schema", "if_exists", "cascade"))
  run("drop_enum", "DROP TYPE " .. (o.if_exists and "IF EXISTS " or "") .. qualified(o.schema, name)
    .. (o.cascade and " CASCADE" or ""))
end

function M.add_enum_value(name, value, opts)
  check("add_enum_value", "name", name, "string")
  check("add_enum_value", "value", value, "string")
  local o = options("add_enum_value", opts, set("schema", "before", "after", "if_not_exists"))
  if o.before and o.after then error("op.add_enum_value: give before or after, not both", 2) end
  local s = "ALTER TYPE " .. qualified(o.schema, name) .. " ADD VALUE "
    .. (o.if_not_exists and "IF NOT EXISTS " or "") .. literal(value)
  if o.before then s = s .. " BEFORE " .. literal(o.before) end
  if o.after then s = s .. " AFTER " .. literal(o.after) end
  run("add_enum_value", s)
end

function M.rename_enum_value(name, old, new, opts)
  check("rename_enum_value", "name", name, "string")
  check("rename_enum_value", "old", old, "string")
  check("rename_enum_value", "new", new, "string")
  local o = options("rename_enum_value", opts, set("schema"))
  run("rename_enum_value", "ALTER TYPE " .. qualified(o.schema, name) .. " RENAME VALUE "
    .. literal(old) .. " TO " .. literal(new))
end

-- Enum type objects (sa.Enum) get :create(bind) / :drop(bind) as SQLAlchemy's do; `bind`
-- is op.get_bind()'s connection (or nil), the statement goes through the run either way.
do
  local proto = types.enum_methods
  function proto.create(self, _, opts)
    local o = opts or {}
    local sql = create_enum_sql(self.name, self.values, { schema = self.schema })
    if o.checkfirst then
      sql = "DO $luamigrate$ BEGIN " .. sql .. "; EXCEPTION WHEN duplicate_object THEN NULL; END $luamigrate$"
    end
    run("Enum:create", sql)
  end
  function proto.drop(self, _, opts)
    local o = opts or {}
    run("Enum:drop", "DROP TYPE " .. (o.checkfirst and "IF EXISTS " or "") .. qualified(self.schema, self.name))
  end
end

local function enum_types_of(cols)
  local out, seen = {}, {}
  for _, c in ipairs(cols) do
    local t = c.type
    if types.is_type(t) and t.kind == "ARRAY" then t = t.item_type end
    if types.is_enum(t) and t.create_type then
      local key = (t.schema or "") .. "." .. t.name
      if not seen[key] then
        seen[key] = true
        out[#out + 1] = t
      end
    end
  end
  return out
end

-- op.create_table(name, columns_and_constraints..., {schema, if_not_exists, comment})
function M.create_table(name, ...)
  check("create_table", "name", name, "string")
  local args, o = schema.split("op.create_table", set("schema", "if_not_exists", "comment",
    "postgresql_partition_by", "postgresql_inherits", "postgresql_with"), ...)
  local cols, cons, pk, stmts = {}, {}, {}, {}
  local tname = qualified(o.schema, name)
  for i = 1, args.n do
    local a = args[i]
    if schema.is(a, "Column") then
      cols[#cols + 1] = a
      if a.primary_key then pk[#pk + 1] = a.name end
    elseif schema.is(a, "Index") then
      cons[#cons + 1] = a
    elseif type(a) == "table" and a.kind and a.kind:match("Constraint$") then
      cons[#cons + 1] = a
    else
      error(("op.create_table(%q): argument %d is not a column or constraint"):format(name, i + 1), 2)
    end
  end
  for _, t in ipairs(enum_types_of(cols)) do
    stmts[#stmts + 1] = create_enum_sql(t.name, t.values, { schema = t.schema })
  end
  local lines, indexes = {}, {}
  local pk_names, in_pk = schema.primary_key(cols, cons)
  local ok, autoinc = pcall(schema.autoincrement_column, cols, pk_names, cons)
  if not ok then error(("op.create_table(%q): %s"):format(name, autoinc), 2) end
  for _, c in ipairs(cols) do
    lines[#lines + 1] = render.column_def(c, c == autoinc, false, in_pk[c.name])
  end
  -- SQLAlchemy's order: the primary key, the constraints given as arguments in their order,
  -- then those the columns make (each column's UNIQUE, then its foreign keys), since
  -- CREATE TABLE lists constraints by creation order and the table creates the columns' last.
  local pkc
  for _, c in ipairs(cons) do
    if schema.is(c, "PrimaryKeyConstraint") then pkc = pkc or c end
  end
  if pkc then
    lines[#lines + 1] = render.constraint_def(pkc)
  elseif #pk > 0 then
    lines[#lines + 1] = "PRIMARY KEY (" .. render.idents(schema.pk_order(pk, cons, autoinc)) .. ")"
  end
  for _, c in ipairs(cons) do
    if schema.is(c, "Index") then indexes[#indexes + 1] = c
    elseif c ~= pkc then lines[#lines + 1] = render.constraint_def(c) end
  end
  for _, c in ipairs(cols) do
    if c.unique and not c.index then lines[#lines + 1] = "UNIQUE (" .. ident(c.name) .. ")" end
    for _, fk in ipairs(c.foreign_keys) do
      lines[#lines + 1] = (fk.name and ("CONSTRAINT " .. ident(fk.name) .. " ") or "")
        .. "FOREIGN KEY(" .. ident(c.name) .. ") REFERENCES " .. qualified(fk.schema, fk.table)
        .. " (" .. ident(fk.column) .. ")" .. render.fk_tail(fk)
    end
  end
  local s = "CREATE TABLE " .. (o.if_not_exists and "IF NOT EXISTS " or "") .. tname
    .. " (\n    " .. table.concat(lines, ",\n    ") .. "\n)"
  if o.postgresql_inherits then s = s .. " INHERITS (" .. qualified(o.schema, o.postgresql_inherits) .. ")" end
  if o.postgresql_partition_by then s = s .. " PARTITION BY " .. o.postgresql_partition_by end
  s = s .. render.with_clause(o.postgresql_with)
  stmts[#stmts + 1] = s
  if o.comment ~= nil then stmts[#stmts + 1] = render.comment_on("TABLE", tname, o.comment) end
  for _, c in ipairs(cols) do
    if c.comment ~= nil then
      stmts[#stmts + 1] = render.comment_on("COLUMN", tname .. "." .. ident(c.name), c.comment)
    end
    if c.index then
      stmts[#stmts + 1] = render.create_index("ix_" .. name .. "_" .. c.name, name, { c.name },
        { schema = o.schema, unique = c.unique })
    end
  end
  for _, ix in ipairs(indexes) do
    local io = {}
    for k, v in pairs(ix.options) do io[k] = v end
    io.schema = o.schema
    stmts[#stmts + 1] = render.create_index(ix.name, name, ix.expressions, io)
  end
  run("create_table", table.unpack(stmts))
  local targs = { n = #cols + 1 }
  for i, c in ipairs(cols) do targs[i] = expr.column(c.name, c.type) end
  targs[#cols + 1] = { schema = o.schema }
  return expr.table(name, table.unpack(targs, 1, targs.n))
end

function M.drop_table(name, ...)
  check("drop_table", "name", name, "string")
  local o = trailing("drop_table", set("schema", "if_exists", "cascade"), 2, ...)
  run("drop_table", "DROP TABLE " .. (o.if_exists and "IF EXISTS " or "") .. qualified(o.schema, name)
    .. (o.cascade and " CASCADE" or ""))
end

function M.rename_table(old, new, ...)
  check("rename_table", "old_table_name", old, "string")
  check("rename_table", "new_table_name", new, "string")
  local o = trailing("rename_table", set("schema"), 3, ...)
  run("rename_table", "ALTER TABLE " .. qualified(o.schema, old) .. " RENAME TO " .. ident(new))
end

-- op.add_column(table, sa.Column(...), {schema, if_not_exists})
function M.add_column(table_name, column, ...)
  check("add_column", "table_name", table_name, "string")
  if not schema.is(column, "Column") then error("op.add_column: the second argument must be sa.Column(...)", 2) end
  local o = trailing("add_column", set("schema", "if_not_exists", "inline_references", "inline_primary_key"), 3, ...)
  local tname = qualified(o.schema, table_name)
  local stmts = {}
  -- Alembic adds the column to a table of its own, so a primary-key column is that table's
  -- lone key and autoincrements by SQLAlchemy's rule (ADD COLUMN id SERIAL NOT NULL).
  local autoinc = column.primary_key and schema.autoincrement_column({ column }, { column.name })
  stmts[#stmts + 1] = "ALTER TABLE " .. tname .. " ADD COLUMN " .. (o.if_not_exists and "IF NOT EXISTS " or "")
    .. render.column_def(column, autoinc == column, true, column.primary_key)
  if column.comment ~= nil then
    stmts[#stmts + 1] = render.comment_on("COLUMN", tname .. "." .. ident(column.name), column.comment)
  end
  if column.index then
    stmts[#stmts + 1] = render.create_index("ix_" .. table_name .. "_" .. column.name, table_name,
      { column.name }, { schema = o.schema, unique = column.unique })
  end
  run("add_column", table.unpack(stmts))
end

function M.drop_column(table_name, column_name, ...)
  check("drop_column", "table_name", table_name, "string")
  check("drop_column", "column_name", column_name, "string")
  local o = trailing("drop_column", set("schema", "if_exists", "cascade", "existing_type",
    "existing_server_default", "existing_nullable", "existing_comment"), 3, ...)
  run("drop_column", "ALTER TABLE " .. qualified(o.schema, table_name) .. " DROP COLUMN "
    .. (o.if_exists and "IF EXISTS " or "") .. ident(column_name) .. (o.cascade and " CASCADE" or ""))
end

local ALTER_COLUMN_OPTS = set("nullable", "comment", "server_default", "new_column_name", "type_",
  "existing_type", "existing_server_default", "existing_nullable", "existing_comment", "schema",
  "autoincrement", "existing_autoincrement", "postgresql_using")

-- op.alter_column(table, column, {type_, postgresql_using, nullable, server_default,
-- new_column_name, comment, existing_*}). Statements in Alembic's order: type, nullability,
-- default, comment, rename. Lua cannot tell an absent key from nil, so where Python passes
-- server_default=None (drop the default) or comment=None (remove the comment), Lua passes
-- false (or op.DROP_DEFAULT); leaving the key out changes nothing.
M.DROP_DEFAULT = setmetatable({}, { __tostring = function() return "op.DROP_DEFAULT" end })

function M.alter_column(table_name, column_name, ...)
  check("alter_column", "table_name", table_name, "string")
  check("alter_column", "column_name", column_name, "string")
  local o = trailing("alter_column", ALTER_COLUMN_OPTS, 3, ...)
  if o.postgresql_using and o.type_ == nil then
    error("op.alter_column: postgresql_using must be used with the type_ parameter", 2)
  end
  local tname = qualified(o.schema, table_name)
  local prefix = "ALTER TABLE " .. tname .. " ALTER COLUMN " .. ident(column_name)
  local stmts = {}
  if o.type_ ~= nil then
    local s = prefix .. " TYPE " .. types.sql_of(o.type_)
    if o.postgresql_using then s = s .. " USING " .. render.sqltext(o.postgresql_using) end
    stmts[#stmts + 1] = s
  end
  if o.nullable ~= nil then
    stmts[#stmts + 1] = prefix .. (o.nullable and " DROP NOT NULL" or " SET NOT NULL")
  end
  if o.server_default == M.DROP_DEFAULT or o.server_default == false then
    stmts[#stmts + 1] = prefix .. " DROP DEFAULT"
  elseif o.server_default ~= nil then
    if schema.is(o.server_default, "Identity") then
      stmts[#stmts + 1] = prefix .. " ADD GENERATED "
        .. (o.server_default.always and "ALWAYS" or "BY DEFAULT") .. " AS IDENTITY"
    else
      stmts[#stmts + 1] = prefix .. " SET DEFAULT " .. render.default_sql(o.server_default)
    end
  end
  if o.comment ~= nil then
    local c = o.comment
    if c == false or c == M.DROP_DEFAULT then c = nil end
    stmts[#stmts + 1] = render.comment_on("COLUMN", tname .. "." .. ident(column_name), c)
  end
  if o.new_column_name then
    stmts[#stmts + 1] = "ALTER TABLE " .. tname .. " RENAME " .. ident(column_name) .. " TO "
      .. ident(o.new_column_name)
  end
  if #stmts == 0 then error(("op.alter_column(%q, %q): nothing to change"):format(table_name, column_name), 2) end
  run("alter_column", table.unpack(stmts))
end

local function as_list(opname, v)
  if type(v) == "string" then return { v } end
  if type(v) == "table" then return v end
  error(("op.%s: columns must be a name or a list of names"):format(opname), 3)
end

local INDEX_PG_OPTS = { "postgresql_where", "postgresql_using", "postgresql_include",
  "postgresql_concurrently", "postgresql_with", "postgresql_ops", "postgresql_nulls_not_distinct" }

function M.create_index(name, table_name, columns, ...)
  check_name("create_index", "index_name", name, true)
  check("create_index", "table_name", table_name, "string")
  local o = trailing("create_index", set("schema", "unique", "if_not_exists", table.unpack(INDEX_PG_OPTS)), 4, ...)
  local cols = (type(columns) == "table" and not schema.is(columns, "text") and not expr.is_expr(columns))
    and columns or { columns }
  if name == nil then
    local parts = {}
    for _, c in ipairs(cols) do parts[#parts + 1] = type(c) == "string" and c or "expr" end
    name = "ix_" .. table_name .. "_" .. table.concat(parts, "_")
  end
  run("create_index", render.create_index(name, table_name, cols, o))
end

-- op.drop_index(name, table_name, schema, {...}): the index options autogenerate writes into
-- downgrades (postgresql_where, _using, _ops, ...) are accepted and, as by Alembic, ignored:
-- DROP INDEX needs only the name. postgresql_concurrently is kept.
function M.drop_index(name, ...)
  check_name("drop_index", "index_name", name)
  local o = trailing("drop_index", set("table_name", "schema", "if_exists", "cascade", "unique",
    table.unpack(INDEX_PG_OPTS)), 2, ...)
  run("drop_index", "DROP INDEX " .. (o.postgresql_concurrently and "CONCURRENTLY " or "")
    .. (o.if_exists and "IF EXISTS " or "") .. qualified(o.schema, name) .. (o.cascade and " CASCADE" or ""))
end

local function add_constraint(opname, table_name, schema_name, name, body)
  run(opname, "ALTER TABLE " .. qualified(schema_name, table_name) .. " ADD "
    .. (name and ("CONSTRAINT " .. ident(name) .. " ") or "") .. body)
end

function M.create_primary_key(name, table_name, columns, ...)
  check_name("create_primary_key", "constraint_name", name, true)
  check("create_primary_key", "table_name", table_name, "string")
  local o = trailing("create_primary_key", set("schema"), 4, ...)
  add_constraint("create_primary_key", table_name, o.schema, name,
    "PRIMARY KEY (" .. render.idents(as_list("create_primary_key", columns)) .. ")")
end

function M.create_unique_constraint(name, table_name, columns, ...)
  check_name("create_unique_constraint", "constraint_name", name, true)
  check("create_unique_constraint", "table_name", table_name, "string")
  local o = trailing("create_unique_constraint", set("schema", "deferrable", "initially",
    "postgresql_nulls_not_distinct"), 4, ...)
  add_constraint("create_unique_constraint", table_name, o.schema, name,
    "UNIQUE " .. render.nulls_distinct(o.postgresql_nulls_not_distinct, " ") .. "("
    .. render.idents(as_list("create_unique_constraint", columns)) .. ")" .. render.deferrable(o))
end

function M.create_foreign_key(name, source, referent, local_cols, remote_cols, ...)
  check_name("create_foreign_key", "constraint_name", name, true)
  check("create_foreign_key", "source_table", source, "string")
  check("create_foreign_key", "referent_table", referent, "string")
  local o = trailing("create_foreign_key", set("onupdate", "ondelete", "deferrable", "initially",
    "match", "source_schema", "referent_schema", "postgresql_not_valid"), 6, ...)
  local body = "FOREIGN KEY(" .. render.idents(as_list("create_foreign_key", local_cols)) .. ") REFERENCES "
    .. qualified(o.referent_schema, referent) .. " ("
    .. render.idents(as_list("create_foreign_key", remote_cols)) .. ")"
    .. render.fk_tail(o) .. (o.postgresql_not_valid and " NOT VALID" or "")
  add_constraint("create_foreign_key", source, o.source_schema, name, body)
end

function M.create_check_constraint(name, table_name, condition, ...)
  check_name("create_check_constraint", "constraint_name", name, true)
  check("create_check_constraint", "table_name", table_name, "string")
  local o = trailing("create_check_constraint", set("schema", "postgresql_not_valid"), 4, ...)
  add_constraint("create_check_constraint", table_name, o.schema, name,
    "CHECK (" .. render.sqltext(condition) .. ")" .. (o.postgresql_not_valid and " NOT VALID" or ""))
end

-- op.create_exclude_constraint(name, table, {"period", "&&"}, {"grp", "="}, ..., {using, where, ...})
function M.create_exclude_constraint(name, table_name, ...)
  check("create_exclude_constraint", "table_name", table_name, "string")
  local args, o = schema.split_elements("op.create_exclude_constraint", set("using", "where", "deferrable",
    "initially", "schema"), ...)
  local elems = {}
  for i = 1, args.n do
    local e = args[i]
    if type(e) ~= "table" or #e ~= 2 then
      error("op.create_exclude_constraint: each element must be {column_or_expression, operator}", 2)
    end
    elems[i] = e
  end
  add_constraint("create_exclude_constraint", table_name, o.schema, name, render.exclude_def(elems, o))
end

function M.drop_constraint(name, table_name, ...)
  check_name("drop_constraint", "constraint_name", name)
  check("drop_constraint", "table_name", table_name, "string")
  local o = trailing("drop_constraint", set("type_", "schema", "if_exists", "cascade"), 3, ...)
  local kinds = set("foreignkey", "primary", "unique", "check")
  if o.type_ ~= nil and not kinds[o.type_] then
    error(("op.drop_constraint: type_ must be one of foreignkey, primary, unique, check, got %q%s")
      :format(tostring(o.type_), did_you_mean(o.type_, kinds)), 2)
  end
  run("drop_constraint", "ALTER TABLE " .. qualified(o.schema, table_name) .. " DROP CONSTRAINT "
    .. (o.if_exists and "IF EXISTS " or "") .. ident(name) .. (o.cascade and " CASCADE" or ""))
end

function M.create_table_comment(table_name, comment, ...)
  check("create_table_comment", "table_name", table_name, "string")
  check("create_table_comment", "comment", comment, "string")
  local o = trailing("create_table_comment", set("schema", "existing_comment"), 3, ...)
  run("create_table_comment", render.comment_on("TABLE", qualified(o.schema, table_name), comment))
end

function M.drop_table_comment(table_name, ...)
  check("drop_table_comment", "table_name", table_name, "string")
  local o = trailing("drop_table_comment", set("schema", "existing_comment"), 2, ...)
  run("drop_table_comment", render.comment_on("TABLE", qualified(o.schema, table_name), nil))
end

-- op.bulk_insert(sa.table(...) | "name", rows, {multiinsert, schema}): one multi-row INSERT
-- (multiinsert = false: one INSERT per row), values as literals so the same statements serve
-- online and offline.
function M.bulk_insert(tbl, rows, ...)
  local o = trailing("bulk_insert", set("multiinsert", "schema"), 3, ...)
  local name, sch, cols, col_types = tbl, o.schema, nil, {}
  check("bulk_insert", "rows", rows, "table")
  if schema.is(tbl, "table") then
    name, sch = tbl.name, tbl.schema or o.schema
    -- the table's columns that some row gives a value, as Alembic lists the rows' keys, so a
    -- column no row mentions keeps its server default (a row's nil there is NULL)
    local used = {}
    for _, row in ipairs(rows) do for k in pairs(row) do used[k] = true end end
    cols = {}
    for _, c in ipairs(tbl.columns) do
      if used[c.name] then cols[#cols + 1] = c.name end
      col_types[c.name] = c.type
    end
  end
  check("bulk_insert", "table", name, "string")
  if #rows == 0 then return end
  if not cols then
    cols = {}
    for k in pairs(rows[1]) do cols[#cols + 1] = k end
    table.sort(cols)
  end
  local head = "INSERT INTO " .. qualified(sch, name) .. " (" .. render.idents(cols) .. ") VALUES "
  local stmts = {}
  -- a plain Lua table is JSON text for a json/jsonb column the table object types, as
  -- SQLAlchemy serializes a dict or list for its JSON type
  local function json_text(row_no, c, x)
    local where = ("op.bulk_insert into %s: row %d, column %s"):format(name, row_no, c)
    if not types.is_json(col_types[c]) then
      quote.raise_plain(("%s: a table value needs a json or jsonb column, and %s (give op.create_table's "
        .. "result or sa.table(%q, sa.column(%q, postgresql.JSONB), ...))"):format(where,
        col_types[c] and "this one is " .. types.sql_of(col_types[c]) or "the table does not type it",
        name, c))
    end
    local text, err = typed.encode_json(x)
    if not text then quote.raise_plain(where .. ": " .. err) end
    return text
  end
  local function tuple(row, row_no)
    local v = {}
    for i, c in ipairs(cols) do
      local x = row[c]
      if type(x) == "table" and getmetatable(x) == nil then x = json_text(row_no, c, x) end
      v[i] = expr.is_expr(x) and expr.inline_sql(x, render.value) or render.value(x)
    end
    return "(" .. table.concat(v, ", ") .. ")"
  end
  if o.multiinsert == false then
    for i, row in ipairs(rows) do stmts[i] = head .. tuple(row, i) end
  else
    local tuples = {}
    for i, row in ipairs(rows) do tuples[i] = tuple(row, i) end
    stmts[1] = head .. table.concat(tuples, ", ")
  end
  run("bulk_insert", table.unpack(stmts))
end


-- op.batch_alter_table(table, [options,] function(batch_op) ... end): Alembic's batch mode.
-- On PostgreSQL Alembic's "auto" recreate mode is a plain series of ALTERs, so each batch_op
-- call is the op of the same name on this table (and the batch's schema), with Alembic's
-- BatchOperations parameters: batch_op.add_column(column), batch_op.alter_column(name, {...}),
-- batch_op.create_index(name, columns, {...}), batch_op.drop_constraint(name, type_), ...
-- insert_before/insert_after are accepted and ignored: PostgreSQL cannot reorder columns.
local BATCH = {
  -- op name = { position of the table argument, BatchOperations' optional positionals }
  add_column = { 1, { "insert_before", "insert_after" } },
  alter_column = { 1, { "nullable", "comment", "server_default", "new_column_name", "type_", "existing_type",
    "existing_server_default", "existing_nullable", "existing_comment", "insert_before", "insert_after" } },
  drop_column = { 1, {} },
  create_index = { 2, {} },
  drop_index = { 2, {} },
  create_primary_key = { 2, {} },
  create_unique_constraint = { 2, {} },
  create_foreign_key = { 2, { "referent_schema", "onupdate", "ondelete", "deferrable", "initially", "match" } },
  create_check_constraint = { 2, {} },
  create_exclude_constraint = { 2, nil },
  drop_constraint = { 2, { "type_" } },
  create_table_comment = { 1, { "existing_comment" } },
  drop_table_comment = { 1, { "existing_comment" } },
}
-- How many required arguments each batch op takes before its optional ones (the table
-- not counted).
local BATCH_REQUIRED = { add_column = 1, alter_column = 1, drop_column = 1, create_index = 2, drop_index = 1,
  create_primary_key = 2, create_unique_constraint = 2, create_foreign_key = 4, create_check_constraint = 2,
  create_exclude_constraint = 1, drop_constraint = 1, create_table_comment = 1, drop_table_comment = 0 }

local function batch_op_for(table_name, bschema)
  local b = {}
  for opname, spec in pairs(BATCH) do
    local tpos, extra = spec[1], spec[2]
    b[opname] = function(...)
      local args = table.pack(...)
      local req = BATCH_REQUIRED[opname]
      local out, opts = {}, nil
      for i = 1, req do out[i] = args[i] end
      local rest = {}
      for i = req + 1, args.n do
        local v = args[i]
        if type(v) == "table" and getmetatable(v) == nil and (extra ~= nil or (i == args.n and v[1] == nil)) then
          opts = v
        elseif v ~= nil then
          rest[#rest + 1] = { i - req, v }
        end
      end
      local o = {}
      for k, v in pairs(opts or {}) do o[k] = v end
      if extra then
        for _, r in ipairs(rest) do
          local pname = extra[r[1]]
          if not pname then
            error(("batch_op.%s: argument %d is not a parameter"):format(opname, req + r[1]), 2)
          end
          if o[pname] ~= nil then error(("batch_op.%s: '%s' given twice"):format(opname, pname), 2) end
          o[pname] = r[2]
        end
      else
        for _, r in ipairs(rest) do out[#out + 1] = r[2] end
      end
      o.insert_before, o.insert_after = nil, nil
      local schema_key = opname == "create_foreign_key" and "source_schema" or "schema"
      if bschema ~= nil and o[schema_key] == nil then o[schema_key] = bschema end
      table.insert(out, tpos, table_name)
      out[#out + 1] = o
      return M[opname](table.unpack(out, 1, #out))
    end
  end
  b.execute = function(sql, params) return M.execute(sql, params) end
  b.f = quote.conv
  return b
end

function M.batch_alter_table(table_name, ...)
  check("batch_alter_table", "table_name", table_name, "string")
  local n = select("#", ...)
  local fn = select(n, ...)
  if type(fn) ~= "function" then
    error("op.batch_alter_table: the last argument must be a function(batch_op) ... end", 2)
  end
  local o = trailing("batch_alter_table", set("schema", "recreate", "partial_reordering", "copy_from",
    "table_args", "table_kwargs", "reflect_args", "reflect_kwargs", "naming_convention"), 2,
    table.unpack(table.pack(...), 1, n - 1))
  if o.recreate == "always" then
    error("op.batch_alter_table: recreate = \"always\" copies the table, which luamigrate does not do; "
      .. "on PostgreSQL batch mode is a series of ALTERs (recreate = \"auto\")", 2)
  end
  fn(batch_op_for(table_name, o.schema))
end

-- ---- the safe ways (docs/safety.md): what lint's hints name -------------------------------

-- fn inside an autocommit block: its own, unless one is running already.
local function in_block(fn)
  local ctx = core.context("op.autocommit_block")
  if ctx.in_autocommit_block then return fn() end
  return M.autocommit_block(fn)
end

-- op.validate_constraint(name, table, {schema}): VALIDATE CONSTRAINT, for a constraint added
-- NOT VALID in an earlier migration (SHARE UPDATE EXCLUSIVE: reads and writes go on).
function M.validate_constraint(name, table_name, opts)
  check("validate_constraint", "constraint_name", name, "string")
  check("validate_constraint", "table_name", table_name, "string")
  local o = options("validate_constraint", opts, set("schema"))
  run("validate_constraint", "ALTER TABLE " .. qualified(o.schema, table_name) .. " VALIDATE CONSTRAINT "
    .. ident(name))
end

-- op.create_index_concurrently(name, table, columns, {...create_index's options}): CREATE
-- INDEX CONCURRENTLY IF NOT EXISTS in an autocommit block: writes go on while it builds.
function M.create_index_concurrently(name, table_name, columns, opts)
  local o = {}
  for k, v in pairs(opts or {}) do o[k] = v end
  if o.postgresql_concurrently ~= nil then
    error("op.create_index_concurrently: postgresql_concurrently is implied", 2)
  end
  o.postgresql_concurrently, o.if_not_exists = true, o.if_not_exists ~= false
  in_block(function() M.create_index(name, table_name, columns, o) end)
end

-- op.drop_index_concurrently(name, {schema, if_exists = true}): DROP INDEX CONCURRENTLY in an
-- autocommit block.
function M.drop_index_concurrently(name, opts)
  local o = options("drop_index_concurrently", opts, set("schema", "if_exists", "table_name"))
  in_block(function()
    M.drop_index(name, { schema = o.schema, table_name = o.table_name, if_exists = o.if_exists ~= false,
      postgresql_concurrently = true })
  end)
end

-- op.set_not_null(table, column, {schema, name}): SET NOT NULL without a scan under ACCESS
-- EXCLUSIVE: a CHECK (col IS NOT NULL) added NOT VALID (a brief lock, under the migration's
-- lock_timeout), validated in an autocommit block (SHARE UPDATE EXCLUSIVE: reads and writes
-- go on), then SET NOT NULL, which PostgreSQL 12+ proves from the validated check without a
-- scan, and the check dropped again. Called inside an autocommit block, all of it runs there.
function M.set_not_null(table_name, column_name, opts)
  check("set_not_null", "table_name", table_name, "string")
  check("set_not_null", "column_name", column_name, "string")
  local o = options("set_not_null", opts, set("schema", "name"))
  local t = "ALTER TABLE " .. qualified(o.schema, table_name)
  local c = ident(o.name or (table_name .. "_" .. column_name .. "_not_null"))
  run("set_not_null", t .. " DROP CONSTRAINT IF EXISTS " .. c,
    t .. " ADD CONSTRAINT " .. c .. " CHECK (" .. ident(column_name) .. " IS NOT NULL) NOT VALID")
  in_block(function() run("set_not_null", t .. " VALIDATE CONSTRAINT " .. c) end)
  run("set_not_null", t .. " ALTER COLUMN " .. ident(column_name) .. " SET NOT NULL",
    t .. " DROP CONSTRAINT IF EXISTS " .. c)
end

-- op.backfill(table, {set = {col = sql | value, ...} | "col = sql, ...", where = sql,
-- batch_size = 1000, schema}): fills existing rows outside the migration's transaction, in
-- batches that each commit, so no lock is held for long. `where` selects the rows still to
-- fill and `set` must make a row leave it: that is what makes the backfill idempotent, and
-- a killed run (upgrade --resume) go on where it stopped. A string in `set` is an SQL
-- expression (sa.text too); numbers and booleans are literals (op.inline_literal for text).
-- Online each batch is one statement; in --sql and --dry-run the same loop is a DO block
-- that commits after each batch.
function M.backfill(table_name, opts)
  check("backfill", "table_name", table_name, "string")
  local o = options("backfill", opts, set("set", "where", "batch_size", "schema"))
  local assigns
  if type(o.set) == "string" or schema.is(o.set, "text") then
    assigns = render.sqltext(o.set)
  elseif type(o.set) == "table" and next(o.set) ~= nil then
    local cols = {}
    for k in pairs(o.set) do cols[#cols + 1] = k end
    table.sort(cols)
    local parts = {}
    for i, k in ipairs(cols) do
      local v = o.set[k]
      local sqlv = (type(v) == "string" or schema.is(v, "text")) and render.sqltext(v) or render.value(v)
      parts[i] = ident(k) .. " = " .. sqlv
    end
    assigns = table.concat(parts, ", ")
  else
    error("op.backfill: set must be a table of column = value or an SQL assignment list", 2)
  end
  if type(o.where) ~= "string" and not schema.is(o.where, "text") then
    error("op.backfill: where must say which rows are still to fill (SQL): it makes the backfill "
      .. "idempotent and resumable", 2)
  end
  local n = o.batch_size or 1000
  if math.type(n) ~= "integer" or n < 1 then error("op.backfill: batch_size must be a whole number above 0", 2) end
  local tname = qualified(o.schema, table_name)
  local where = render.sqltext(o.where)
  local batch = ("UPDATE %s SET %s WHERE ctid = ANY (ARRAY(SELECT ctid FROM %s WHERE %s LIMIT %d))")
    :format(tname, assigns, tname, where, n)
  in_block(function()
    local ctx = core.context("op.backfill")
    if ctx.emit then
      run("backfill", "DO $luamigrate$\nDECLARE n bigint;\nBEGIN\n  LOOP\n    " .. batch
        .. ";\n    GET DIAGNOSTICS n = ROW_COUNT;\n    EXIT WHEN n = 0;\n    COMMIT;\n  END LOOP;\nEND $luamigrate$")
      return
    end
    local conn, total, batches = ctx.conn, 0, 0
    local label = "backfill " .. table_name
    -- RETURNING tells whether the rows a batch changed left `where`, without which the loop
    -- would never end
    local stmt = batch .. " RETURNING (" .. where .. ") IS TRUE AS left_behind"
    -- upgrade --resume: the batches the interrupted run committed are skipped as one (the
    -- journal records each); `where` finds the rows still to fill
    if ctx.journal_batches then
      local done, finished = ctx.journal_batches(stmt)
      if finished then return end
      batches = done
    end
    if ctx.progress then ctx.progress(label, 0, batches) end
    while true do
      -- each batch commits on its own, with its record in the journal
      local _, rows = conn:execute(stmt)
      if not rows or #rows == 0 then break end
      for _, r in ipairs(rows) do
        if r.left_behind then
          error(("op.backfill(%q): rows it updated still match where (%s): set must make them leave it, "
            .. "or the backfill never ends"):format(table_name, where), 0)
        end
      end
      total, batches = total + #rows, batches + 1
      -- a live line on a terminal (nothing when piped); what follows ends it
      if ctx.progress then ctx.progress(label, total, batches) end
    end
  end)
end

-- Every op first looks through its arguments (nested tables included: columns, options,
-- rows) for a NUL byte, which no PostgreSQL text can hold and which the C layer would cut a
-- statement at, and refuses it naming the op and the argument; then it names itself to
-- luamigrate.quote, which refuses identifiers PostgreSQL would truncate.
local PARAMS = {
  execute = { "sql", "params" },
  create_table = { "table_name" },
  drop_table = { "table_name" },
  rename_table = { "old_table_name", "new_table_name" },
  add_column = { "table_name", "column" },
  drop_column = { "table_name", "column_name" },
  alter_column = { "table_name", "column_name" },
  create_index = { "index_name", "table_name", "columns" },
  drop_index = { "index_name" },
  create_primary_key = { "constraint_name", "table_name", "columns" },
  create_unique_constraint = { "constraint_name", "table_name", "columns" },
  create_foreign_key = { "constraint_name", "source_table", "referent_table", "local_cols", "remote_cols" },
  create_check_constraint = { "constraint_name", "table_name", "condition" },
  create_exclude_constraint = { "constraint_name", "table_name" },
  drop_constraint = { "constraint_name", "table_name" },
  create_table_comment = { "table_name", "comment" },
  drop_table_comment = { "table_name" },
  bulk_insert = { "table", "rows" },
  batch_alter_table = { "table_name" },
  create_enum = { "name", "values", "options" },
  drop_enum = { "name", "options" },
  add_enum_value = { "name", "value", "options" },
  rename_enum_value = { "name", "old", "new", "options" },
  inline_literal = { "value" },
  allow = { "rules", "fn" },
  validate_constraint = { "constraint_name", "table_name", "options" },
  create_index_concurrently = { "index_name", "table_name", "columns", "options" },
  drop_index_concurrently = { "index_name", "options" },
  set_not_null = { "table_name", "column_name", "options" },
  backfill = { "table_name", "options" },
}

-- ---- replaceable entities (views, functions, triggers, ...: luamigrate.entity) --------
-- op.create_entity(e), op.replace_entity(e), op.drop_entity(e, {if_exists, cascade}), e made
-- by sa.View, sa.MaterializedView, sa.Function, sa.Procedure, sa.Trigger, sa.Domain, ... A
-- downgrade restores a replaced definition by replacing it with the old one. A domain and a
-- composite type also change in place: op.alter_domain, op.alter_composite_type.
local entity = require "luamigrate.entity"

local function entity_arg(opname, e)
  if not entity.is(e) then
    error(("op.%s: the argument must be an entity (sa.View, sa.Function, sa.Trigger, ...), got %s")
      :format(opname, type(e)), 3)
  end
end

function M.create_entity(e)
  entity_arg("create_entity", e)
  run("create_entity", table.unpack(entity.create_sql(e)))
end

function M.replace_entity(e)
  entity_arg("replace_entity", e)
  run("replace_entity", table.unpack(entity.replace_sql(e)))
end

function M.drop_entity(e, opts)
  entity_arg("drop_entity", e)
  local o = options("drop_entity", opts, set("if_exists", "cascade"))
  run("drop_entity", table.unpack(entity.drop_sql(e, o)))
end
PARAMS.create_entity, PARAMS.replace_entity, PARAMS.drop_entity = { "entity" }, { "entity" }, { "entity", "options" }

-- op.alter_domain(name, {schema, default = sql | false, not_null, drop_constraints, add_constraints})
function M.alter_domain(name, opts)
  if type(name) ~= "string" then error("op.alter_domain: the domain name must be a string", 2) end
  local o = options("alter_domain", opts, set("schema", "default", "not_null", "drop_constraints", "add_constraints"))
  if o.default ~= nil and o.default ~= false and type(o.default) ~= "string" then
    error("op.alter_domain: default must be SQL text, or false to drop it", 2)
  end
  run("alter_domain", table.unpack(entity.alter_domain_sql(name, o)))
end

-- op.alter_composite_type(name, {schema, drop_attributes, alter_attributes, add_attributes, cascade})
function M.alter_composite_type(name, opts)
  if type(name) ~= "string" then error("op.alter_composite_type: the type name must be a string", 2) end
  local o = options("alter_composite_type", opts, set("schema", "drop_attributes", "alter_attributes",
    "add_attributes", "cascade"))
  run("alter_composite_type", table.unpack(entity.alter_composite_sql(name, o)))
end
PARAMS.alter_domain, PARAMS.alter_composite_type = { "name", "options" }, { "name", "options" }
-- ---- end of replaceable entities ------------------------------------------------------

local UNGUARDED = set("get_bind", "get_x_argument", "register", "autocommit_block", "_run")

-- The path of the first string holding a NUL in v ("" for v itself), or nil. The array
-- part is searched in order, then the other keys. Every op call scans its arguments, so
-- this is written for the common case of finding nothing: raw reads (an argument's
-- metamethods are not the op's to run), strings tested where they are met rather than in
-- a call of their own, and a key's path built only when it is returned.
local find, rawlen, rawget, next, math_type = string.find, rawlen, rawget, next, math.type
local function key_step(k)
  return math_type(k) == "integer" and ("[" .. k .. "]") or ("." .. tostring(k))
end
local function nul_path(v, depth, seen)
  if type(v) == "string" then return find(v, "\0", 1, true) and "" or nil end
  if type(v) ~= "table" or depth > 6 or seen[v] then return nil end
  seen[v] = true
  local n = rawlen(v)
  for i = 1, n do
    local x = rawget(v, i)
    local tx = type(x)
    if tx == "string" then
      if find(x, "\0", 1, true) then return "[" .. i .. "]" end
    elseif tx == "table" then
      local sub = nul_path(x, depth + 1, seen)
      if sub then return "[" .. i .. "]" .. sub end
    end
  end
  for k, x in next, v do
    if not (math_type(k) == "integer" and k >= 1 and k <= n) then
      if type(k) == "string" and find(k, "\0", 1, true) then return key_step(k) end
      local tx = type(x)
      if tx == "string" then
        if find(x, "\0", 1, true) then return key_step(k) end
      elseif tx == "table" then
        local sub = nul_path(x, depth + 1, seen)
        if sub then return key_step(k) .. sub end
      end
    end
  end
  return nil
end

-- Raises the NUL refusal for argument i (of n) of op `opname`, at the op's caller.
local function refuse(opname, i, n, v)
  local path = type(v) == "string" and "" or nul_path(v, 1, {})
  local names = {}
  for _, p in ipairs(PARAMS[opname] or {}) do names[#names + 1] = p end
  for _, p in ipairs(POSITIONAL[opname] or {}) do names[#names + 1] = p:match("^[^:]+") end
  local arg = (type(v) == "table" and getmetatable(v) == nil and v.kind == nil and i > #(PARAMS[opname] or {})
    and "options") or names[i]
    or (i == n and type(v) == "table" and getmetatable(v) == nil and v.kind == nil and "options")
    or ("argument " .. i)
  error(("op.%s: %s%s contains a NUL byte, which PostgreSQL text cannot hold"):format(opname, arg, path), 3)
end

local nul_free = core.nul_free
local function has_nul(v)
  local t = type(v)
  if t == "string" then return has_text_nul(v) end
  if t ~= "table" or nul_free(v) then return false end
  return nul_path(v, 1, {}) ~= nil
end

-- Ops with a fixed parameter list get a wrapper without varargs (a vararg call costs Lua
-- several times more, and op.execute runs once per statement of a data migration).
local function guard(opname, fn)
  local qualified_name = "op." .. opname
  -- the most arguments the op takes: its required ones, Alembic's optional positional ones,
  -- and the options table
  local most = PARAMS[opname] and (#PARAMS[opname] + #(POSITIONAL[opname] or {}) + 1)
  local fixed = most and most <= 6 and opname ~= "create_table" and opname ~= "create_exclude_constraint"
    and opname ~= "batch_alter_table"
  if fixed then
    return function(a1, a2, a3, a4, a5, a6)
      if a1 ~= nil and has_nul(a1) then refuse(opname, 1, 6, a1) end
      if a2 ~= nil and has_nul(a2) then refuse(opname, 2, 6, a2) end
      if a3 ~= nil and has_nul(a3) then refuse(opname, 3, 6, a3) end
      if a4 ~= nil and has_nul(a4) then refuse(opname, 4, 6, a4) end
      if a5 ~= nil and has_nul(a5) then refuse(opname, 5, 6, a5) end
      if a6 ~= nil and has_nul(a6) then refuse(opname, 6, 6, a6) end
      quote.context = qualified_name
      return fn(a1, a2, a3, a4, a5, a6) -- a tail call: the op's level-2 errors point at its caller
    end
  end
  return function(...)
    local n = select("#", ...)
    for i = 1, n do
      local v = select(i, ...)
      if has_nul(v) then refuse(opname, i, n, v) end
    end
    quote.context = qualified_name
    return fn(...)
  end
end

-- The ops as written, before guard() wrapped them: their parameter lists are what editors'
-- annotations describe (tests/unit/annotations_spec.lua compares the two).
local unwrapped = {}
for name, fn in pairs(M) do
  if type(fn) == "function" and not UNGUARDED[name] then
    unwrapped[name] = fn
    M[name] = guard(name, fn)
  end
end
M._unwrapped = unwrapped

-- op.register(name, fn): adds op.<name>; fn receives op as its first argument.
function M.register(name, fn)
  check("register", "name", name, "string")
  check("register", "fn", fn, "function")
  if rawget(M, name) ~= nil then error(("op.register: op.%s already exists"):format(name), 2) end
  M[name] = guard(name, function(...) return fn(M, ...) end)
end

-- op.f(name): the name as final (SQLAlchemy's conv): see quote.conv.
M.f = quote.conv

-- A misspelt op is an error naming the closest real one, at the migration's line.
return setmetatable(M, {
  __index = function(_, k)
    local cands = {}
    for name in pairs(M) do if not name:match("^_") then cands[#cands + 1] = name end end
    table.sort(cands)
    local best = type(k) == "string" and core.closest(k, cands)
    quote.raise_plain(("op.%s does not exist%s"):format(tostring(k),
      best and ("; did you mean op." .. best .. "?") or ""))
  end,
})

