-- Schema objects with SQLAlchemy's names: Column, ForeignKey, Identity, the table-level
-- constraints, Index, text, MetaData and Table (the lightweight sa.table/sa.column of data
-- migrations are luamigrate.expr's).
-- Each constructor takes SQLAlchemy's positional arguments and its keyword arguments as one
-- trailing options table; an unknown option key is an error naming the constructor.
local options = require "luamigrate.options"
local types = require "luamigrate.types"

local M = {}

local function is_options(v) return type(v) == "table" and getmetatable(v) == nil end

-- Splits (..., opts) into the positional list and the options table, checking keys.
local function split(what, allowed, ...)
  local args = table.pack(...)
  local opts = {}
  if args.n > 0 and is_options(args[args.n]) then
    opts = args[args.n]
    args[args.n] = nil
    args.n = args.n - 1
  end
  return args, options.check(what, opts, allowed)
end
M.split = split

-- split() for a list of {column_or_expression, operator} elements: a trailing element is
-- an element, not the options table.
function M.split_elements(what, allowed, ...)
  local given = table.pack(...)
  if type(given[given.n]) == "table" and getmetatable(given[given.n]) == nil and #given[given.n] == 2 then
    given.n = given.n + 1
    given[given.n] = {}
  end
  return split(what, allowed, table.unpack(given, 1, given.n))
end

-- SQLAlchemy's optional positional parameters of a constructor (`names`, in its order), then
-- the options table: sa.CheckConstraint("x > 0", "ck_x") is sa.CheckConstraint("x > 0",
-- {name = "ck_x"}). Returns the merged options.
local function positional(what, names, allowed, ...)
  local args, o = split(what, allowed, ...)
  if args.n > #names then
    error(("%s: takes at most %d optional positional argument%s (%s) before the options table, got %d")
      :format(what, #names, #names == 1 and "" or "s", table.concat(names, ", "), args.n), 3)
  end
  for i = 1, args.n do
    if args[i] ~= nil then
      if o[names[i]] ~= nil then error(("%s: '%s' given twice"):format(what, names[i]), 3) end
      o[names[i]] = args[i]
    end
  end
  return o
end

local function set(...)
  local s = {}
  for _, k in ipairs { ... } do s[k] = true end
  return s
end

local function object(kind, fields)
  fields.kind = kind
  return setmetatable(fields, { __name = "sa." .. kind })
end

function M.is(v, kind)
  return type(v) == "table" and v.kind == kind and getmetatable(v) ~= nil
end

-- sa.text("sql", {bind = value, ...}) — raw SQL; :bindparams{...} as in SQLAlchemy.
function M.text(sql, params)
  if type(sql) ~= "string" then error("sa.text: sql must be a string", 2) end
  local t = object("text", { text = sql, params = params or {} })
  getmetatable(t).__index = {
    bindparams = function(self, p)
      local merged = {}
      for k, v in pairs(self.params) do merged[k] = v end
      for k, v in pairs(p) do merged[k] = v end
      return M.text(self.text, merged)
    end,
  }
  return t
end

-- sa.ForeignKey("table.column" | "schema.table.column", {ondelete, onupdate, ...})
function M.ForeignKey(target, opts)
  opts = opts or {}
  local _, o = split("sa.ForeignKey", set("name", "ondelete", "onupdate", "deferrable",
    "initially", "match", "use_alter"), opts)
  if type(target) ~= "string" then error("sa.ForeignKey: target must be \"table.column\"", 2) end
  local parts = {}
  for p in target:gmatch("[^.]+") do parts[#parts + 1] = p end
  if #parts < 2 or #parts > 3 then
    error(("sa.ForeignKey: target '%s' must be \"table.column\" or \"schema.table.column\""):format(target), 2)
  end
  return object("ForeignKey", {
    schema = #parts == 3 and parts[1] or nil, table = parts[#parts - 1], column = parts[#parts],
    name = o.name, ondelete = o.ondelete, onupdate = o.onupdate, deferrable = o.deferrable,
    initially = o.initially, match = o.match,
  })
end

-- sa.Identity{always = false, start = 1, increment = 1, ...}
-- sa.Identity(always, on_null, start, increment, minvalue, maxvalue, nominvalue, nomaxvalue,
-- cycle, cache, order) or sa.Identity{...}
local IDENTITY = { "always", "on_null", "start", "increment", "minvalue", "maxvalue", "nominvalue",
  "nomaxvalue", "cycle", "cache", "order" }
function M.Identity(...)
  local o = positional("sa.Identity", IDENTITY, set(table.unpack(IDENTITY)), ...)
  if o.order ~= nil then
    error("sa.Identity: order is Oracle's; PostgreSQL's identity columns have no ORDER option", 2)
  end
  return object("Identity", { always = o.always, start = o.start, increment = o.increment,
    minvalue = o.minvalue, maxvalue = o.maxvalue, cycle = o.cycle, cache = o.cache,
    nominvalue = o.nominvalue, nomaxvalue = o.nomaxvalue })
end

-- sa.Computed("expr", {persisted = true})
function M.Computed(sqltext, ...)
  local o = positional("sa.Computed", { "persisted" }, set("persisted"), ...)
  if type(sqltext) ~= "string" and not M.is(sqltext, "text") and not require("luamigrate.expr").is_expr(sqltext) then
    error("sa.Computed: the expression must be a string", 2)
  end
  if o.persisted == false then
    error("sa.Computed: PostgreSQL has only stored generated columns (persisted = false is not possible)", 2)
  end
  return object("Computed", { sqltext = sqltext })
end

local COLUMN_OPTS = set("primary_key", "nullable", "unique", "index", "server_default",
  "comment", "autoincrement", "default", "doc", "key", "info", "quote", "system")

-- sa.Column(name, type, [ForeignKey...], [Identity], {primary_key, nullable, ...})
function M.Column(name, ...)
  local args, o = split("sa.Column", COLUMN_OPTS, ...)
  if type(name) ~= "string" then
    error(("sa.Column: the first argument must be the column name, got %s"):format(type(name)), 2)
  end
  local col = object("Column", {
    name = name, foreign_keys = {}, primary_key = o.primary_key and true or false,
    unique = o.unique, index = o.index, server_default = o.server_default, comment = o.comment,
    autoincrement = o.autoincrement, default = o.default, nullable_given = o.nullable ~= nil,
  })
  if o.autoincrement ~= nil and type(o.autoincrement) ~= "boolean" and o.autoincrement ~= "auto"
    and o.autoincrement ~= "ignore_fk" then
    error(("sa.Column(%q): autoincrement must be true, false, \"auto\" or \"ignore_fk\""):format(name), 2)
  end
  for i = 1, args.n do
    local a = args[i]
    if types.is_type(a) or type(a) == "string" and i == 1 then
      col.type = a
    elseif M.is(a, "ForeignKey") then
      col.foreign_keys[#col.foreign_keys + 1] = a
    elseif M.is(a, "Identity") then
      col.identity = a
    elseif M.is(a, "Computed") then
      col.computed = a
    else
      error(("sa.Column(%q): unexpected argument %d (%s)"):format(name, i + 1, type(a)), 2)
    end
  end
  if col.type == nil and #col.foreign_keys == 0 then
    error(("sa.Column(%q): a type is required"):format(name), 2)
  end
  if o.nullable == nil then col.nullable = not col.primary_key else col.nullable = o.nullable end
  return col
end

-- The primary key of a table's columns and constraints, as SQLAlchemy decides it: the
-- columns a sa.PrimaryKeyConstraint names (it wins over primary_key = true flags), else the
-- columns flagged primary_key. Returns the list of names and a set of them.
function M.primary_key(cols, constraints)
  local names = {}
  for _, c in ipairs(constraints) do
    if M.is(c, "PrimaryKeyConstraint") then
      for i, n in ipairs(c.columns) do names[i] = n end
      break
    end
  end
  if #names == 0 then
    for _, c in ipairs(cols) do if c.primary_key then names[#names + 1] = c.name end end
  end
  local set_ = {}
  for _, n in ipairs(names) do set_[n] = true end
  return names, set_
end

-- Whether a column's type may autoincrement: SQLAlchemy's integer and numeric affinity.
local function autoinc_type(t)
  return types.is_type(t) and types.AUTOINCREMENT_AFFINITY[t.label] ~= nil
end

-- The table's autoincrement column (SQLAlchemy's PrimaryKeyConstraint._autoincrement_column):
-- with a one-column primary key, that column unless autoincrement = false, or (when
-- autoincrement is not true) its type is not integer or numeric, it has a client-side
-- default or a server_default, or a foreign key (autoincrement = "ignore_fk" overrides
-- the last); with a composite key, only the column marked autoincrement = true. nil if none.
-- `constraints`: the table's; a column a ForeignKeyConstraint names has a foreign key too
-- (SQLAlchemy adds the constraint's keys to Column.foreign_keys).
function M.autoincrement_column(cols, pk_names, constraints)
  local by_name, fk_named = {}, {}
  for _, c in ipairs(cols) do by_name[c.name] = c end
  for _, k in ipairs(constraints or {}) do
    if M.is(k, "ForeignKeyConstraint") then
      for _, n in ipairs(k.columns) do fk_named[n] = true end
    end
  end
  local function valid(c, forced)
    if not autoinc_type(c.type) then
      if forced then
        error(("sa.Column(%q): autoincrement = true needs an integer type"):format(c.name), 0)
      end
      return false
    end
    if forced then return true end
    if c.default ~= nil then return false end
    if c.server_default ~= nil and not M.is(c.server_default, "Identity") then return false end
    if (#c.foreign_keys > 0 or fk_named[c.name]) and c.autoincrement ~= "ignore_fk" then return false end
    return true
  end
  if #pk_names == 1 then
    local c = by_name[pk_names[1]]
    if not c or c.autoincrement == false then return nil end
    if valid(c, c.autoincrement == true) then return c end
    return nil
  end
  local found
  for _, n in ipairs(pk_names) do
    local c = by_name[n]
    if c and c.autoincrement == true then
      valid(c, true)
      if found then
        error(("only one column may be marked autoincrement = true, found both %s and %s")
          :format(found.name, c.name), 0)
      end
      found = c
    end
  end
  return found
end

-- The primary key's columns in the order CREATE TABLE lists them: a PrimaryKeyConstraint's
-- as given; a key made of primary_key = true flags with the autoincrement column first, as
-- SQLAlchemy's columns_autoinc_first.
function M.pk_order(pk_names, constraints, autoinc)
  for _, c in ipairs(constraints) do
    if M.is(c, "PrimaryKeyConstraint") then return pk_names end
  end
  if not autoinc then return pk_names end
  local out = { autoinc.name }
  for _, n in ipairs(pk_names) do if n ~= autoinc.name then out[#out + 1] = n end end
  return out
end

local function columns_of(what, args)
  local cols = {}
  for i = 1, args.n do
    if type(args[i]) ~= "string" then
      error(("%s: column %d must be a name, got %s"):format(what, i, type(args[i])), 3)
    end
    cols[i] = args[i]
  end
  return cols
end

function M.PrimaryKeyConstraint(...)
  local args, o = split("sa.PrimaryKeyConstraint", set("name"), ...)
  return object("PrimaryKeyConstraint", { columns = columns_of("sa.PrimaryKeyConstraint", args), name = o.name })
end

function M.UniqueConstraint(...)
  local args, o = split("sa.UniqueConstraint", set("name", "deferrable", "initially",
    "postgresql_nulls_not_distinct"), ...)
  return object("UniqueConstraint", { columns = columns_of("sa.UniqueConstraint", args),
    name = o.name, deferrable = o.deferrable, initially = o.initially,
    nulls_not_distinct = o.postgresql_nulls_not_distinct })
end

-- sa.CheckConstraint(sqltext, name, deferrable, initially, {...})
function M.CheckConstraint(sqltext, ...)
  local o = positional("sa.CheckConstraint", { "name", "deferrable", "initially" },
    set("name", "deferrable", "initially", "info"), ...)
  if type(sqltext) ~= "string" and not M.is(sqltext, "text") and not require("luamigrate.expr").is_expr(sqltext) then
    error("sa.CheckConstraint: the condition must be a string, sa.text or an expression", 2)
  end
  return object("CheckConstraint", { sqltext = sqltext, name = o.name })
end

-- sa.ExcludeConstraint({column_or_sa_text, operator}..., {name, using = "gist", where,
-- deferrable, initially}): SQLAlchemy's postgresql.ExcludeConstraint.
function M.ExcludeConstraint(...)
  local args, o = M.split_elements("sa.ExcludeConstraint", set("name", "using", "where", "deferrable",
    "initially"), ...)
  local elements = {}
  for i = 1, args.n do
    local e = args[i]
    if type(e) ~= "table" or getmetatable(e) ~= nil or #e ~= 2 then
      error("sa.ExcludeConstraint: each element must be {column_or_expression, operator}", 2)
    end
    elements[i] = e
  end
  return object("ExcludeConstraint", { elements = elements, name = o.name, using = o.using, where = o.where,
    deferrable = o.deferrable, initially = o.initially })
end

-- sa.ForeignKeyConstraint({"col"}, {"table.col"}, {name, ondelete, ...})
-- (SQLAlchemy's optional positionals: name, onupdate, ondelete, deferrable, initially,
-- use_alter, link_to_name, match)
local FKC = { "name", "onupdate", "ondelete", "deferrable", "initially", "use_alter", "link_to_name", "match" }
function M.ForeignKeyConstraint(cols, refcols, ...)
  local o = positional("sa.ForeignKeyConstraint", FKC, set(table.unpack(FKC)), ...)
  if type(cols) ~= "table" or type(refcols) ~= "table" or #cols == 0 or #cols ~= #refcols then
    error("sa.ForeignKeyConstraint: give two lists of equal length: local columns and \"table.column\" targets", 2)
  end
  local fk = M.ForeignKey(refcols[1], {})
  local remote = {}
  for i, r in ipairs(refcols) do remote[i] = M.ForeignKey(r, {}).column end
  return object("ForeignKeyConstraint", { columns = cols, ref_schema = fk.schema,
    ref_table = fk.table, ref_columns = remote, name = o.name, ondelete = o.ondelete,
    onupdate = o.onupdate, deferrable = o.deferrable, initially = o.initially, match = o.match })
end

-- sa.Index(name, col_or_text..., {unique, postgresql_where, postgresql_using, ...})
function M.Index(name, ...)
  local args, o = split("sa.Index", set("unique", "postgresql_where", "postgresql_using",
    "postgresql_include", "postgresql_concurrently", "postgresql_with", "postgresql_ops",
    "postgresql_nulls_not_distinct", "info", "quote", "_table"), ...)
  local exprs = {}
  for i = 1, args.n do exprs[i] = args[i] end
  return object("Index", { name = name, expressions = exprs, options = o })
end

-- md:register(entity, ...): declares views, functions, triggers (sa.View, sa.Function, ...)
-- in the schema, in the order given; returns the first. A sa.Enum registered is declared
-- even when no column uses it (a domain over it).
local function register(md, ...)
  local entity = require "luamigrate.entity"
  for i = 1, select("#", ...) do
    local e = select(i, ...)
    if types.is_enum(e) then
      md.enums[#md.enums + 1] = e
    elseif not entity.is(e) then
      error(("md:register: argument %d is not an entity (sa.View, sa.Function, sa.Trigger, ...)"):format(i), 2)
    else
      md.entities[#md.entities + 1] = e
    end
  end
  return (...)
end

-- sa.MetaData{schema = ..., naming_convention = {ix = ..., uq = ..., ck = ..., fk = ..., pk = ...}}:
-- the declared schema autogenerate compares against the database. Tables register
-- themselves in it, in declaration order; entities through md:register(...).
function M.MetaData(opts)
  local _, o = split("sa.MetaData", set("schema", "naming_convention"), opts or {})
  local md = object("MetaData", { schema = o.schema, naming_convention = o.naming_convention or {},
    tables = {}, sorted = {}, entities = {}, enums = {}, register = register })
  return md
end

local TABLE_DATA = {}
for _, m in ipairs { "insert", "update", "delete", "select" } do
  TABLE_DATA[m] = function(self) return self.lite[m](self.lite) end
end

-- sa.Table(name, metadata, columns_constraints_and_indexes..., {schema, comment,
-- postgresql_partition_by = "RANGE (col)"}); its partitions are sa.Partition entities.
function M.Table(name, metadata, ...)
  if type(name) ~= "string" then error("sa.Table: the first argument must be the table name", 2) end
  if not M.is(metadata, "MetaData") then
    error(("sa.Table(%q): the second argument must be a sa.MetaData()"):format(name), 2)
  end
  local args, o = split("sa.Table", set("schema", "comment", "info", "postgresql_partition_by"), ...)
  local t = object("Table", { name = name, schema = o.schema or metadata.schema, comment = o.comment,
    partition_by = o.postgresql_partition_by,
    columns = {}, constraints = {}, indexes = {}, metadata = metadata })
  local seen = {}
  for i = 1, args.n do
    local a = args[i]
    if M.is(a, "Column") then
      if seen[a.name] then error(("sa.Table(%q): column %q is declared twice"):format(name, a.name), 2) end
      seen[a.name] = true
      t.columns[#t.columns + 1] = a
    elseif M.is(a, "Index") then
      t.indexes[#t.indexes + 1] = a
    elseif type(a) == "table" and type(a.kind) == "string" and a.kind:match("Constraint$") then
      t.constraints[#t.constraints + 1] = a
    else
      error(("sa.Table(%q): argument %d is not a column, constraint or index"):format(name, i + 2), 2)
    end
  end
  -- As SQLAlchemy: a PrimaryKeyConstraint's columns are the primary key (NOT NULL unless a
  -- column says otherwise), and the table knows its autoincrement column.
  local pk_names, in_pk = M.primary_key(t.columns, t.constraints)
  for _, c in ipairs(t.columns) do
    if in_pk[c.name] then
      c.primary_key = true
      if not c.nullable_given then c.nullable = false end
    end
  end
  local ok, auto = pcall(M.autoincrement_column, t.columns, pk_names, t.constraints)
  if not ok then error(("sa.Table(%q): %s"):format(name, auto), 2) end
  t.autoincrement_column = auto
  local key = (t.schema and (t.schema .. ".") or "") .. name
  if metadata.tables[key] then error(("sa.Table(%q): declared twice in this MetaData"):format(key), 2) end
  metadata.tables[key] = t
  metadata.sorted[#metadata.sorted + 1] = t
  -- As in SQLAlchemy, a Table serves data migrations too: t.c.<name>, t:insert(), :update(),
  -- :delete(), :select() and sa.select(t) are those of sa.table(name, its columns...).
  local lite_args = { table.unpack(t.columns) }
  lite_args[#lite_args + 1] = { schema = t.schema }
  t.lite = require("luamigrate.expr").table(name, table.unpack(lite_args))
  t.c = t.lite.c
  getmetatable(t).__index = TABLE_DATA
  return t
end

return M
