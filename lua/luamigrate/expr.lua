-- SQL expressions and statements in SQLAlchemy Core's style, for data migrations:
-- sa.table/sa.column, t:insert():values{...}, t:update():where(...):values{...},
-- t:delete():where(...), sa.select(...), column comparisons (t.c.status:eq("x"), :in_,
-- :is_(nil), :like, ...: SQLAlchemy's method names, since Lua's == and < cannot build
-- expressions), sa.and_/or_/not_, sa.func.<name>(...), sa.literal_column, sa.null/true_/false_,
-- sa.cast. A statement compiles to SQL with $n parameters (online) or with the values written
-- as literals (--sql); op.execute and op.get_bind():execute/query take them.
local quote = require "luamigrate.quote"
local options = require "luamigrate.options"
local types = require "luamigrate.types"
local typed = require "luamigrate.typed"

local M = {}
local ident, qualified = quote.ident, quote.qualified

local Expr = { __name = "sa expression" }
Expr.__index = Expr

local function node(fields) return setmetatable(fields, Expr) end

local Stmt -- statements are expressions too (a select in in_() or as a scalar)
function M.is_expr(v)
  local mt = getmetatable(v)
  return mt == Expr or (mt ~= nil and mt == Stmt)
end

-- A Lua value, an expression, or sa.text, as an expression node.
local function coerce(v)
  if M.is_expr(v) then return v end
  if type(v) == "table" and v.kind == "text" and getmetatable(v) ~= nil then
    return node { k = "raw", sql = v.text, prec = 0 }
  end
  if type(v) == "table" and v.kind == "inline_literal" then
    return node { k = "bind", value = v.value, inline = true }
  end
  if v ~= nil and type(v) ~= "string" and type(v) ~= "number" and type(v) ~= "boolean" then
    quote.raise_plain(("cannot use a %s as an SQL value"):format(type(v)))
  end
  return node { k = "bind", value = v }
end
M.coerce = coerce

-- Precedence, as SQLAlchemy's operators module orders them: a child binding less tightly
-- than its parent is parenthesised.
local PREC = { OR = 2, AND = 3, NOT = 4, IS = 5, CMP = 5, LIKE = 5, IN = 5, BETWEEN = 5,
  CONCAT = 6, ADD = 7, MUL = 8, NEG = 9 }

local function binary(op, prec, left, right)
  return node { k = "binary", op = op, prec = prec, left = coerce(left), right = coerce(right) }
end

-- Comparisons. A comparison with nil (SQLAlchemy's == None) is IS NULL.
local CMP = { eq = "=", ne = "!=", lt = "<", le = "<=", gt = ">", ge = ">=" }
for name, op in pairs(CMP) do
  Expr[name] = function(self, other)
    if other == nil and (name == "eq" or name == "ne") then
      return node { k = "is", x = self, right = node { k = "raw", sql = "NULL", prec = 10 }, negate = name == "ne" }
    end
    return binary(op, PREC.CMP, self, other)
  end
end

function Expr:is_(other)
  return node { k = "is", x = self,
    right = other == nil and node { k = "raw", sql = "NULL", prec = 10 } or coerce(other) }
end
function Expr:is_not(other)
  return node { k = "is", x = self, negate = true,
    right = other == nil and node { k = "raw", sql = "NULL", prec = 10 } or coerce(other) }
end
Expr.isnot = Expr.is_not
function Expr:is_distinct_from(other) return binary("IS DISTINCT FROM", PREC.IS, self, other) end
function Expr:is_not_distinct_from(other) return binary("IS NOT DISTINCT FROM", PREC.IS, self, other) end
function Expr:like(pattern) return binary("LIKE", PREC.LIKE, self, pattern) end
function Expr:ilike(pattern) return binary("ILIKE", PREC.LIKE, self, pattern) end
function Expr:not_like(pattern) return binary("NOT LIKE", PREC.LIKE, self, pattern) end
function Expr:not_ilike(pattern) return binary("NOT ILIKE", PREC.LIKE, self, pattern) end
Expr.notlike, Expr.notilike = Expr.not_like, Expr.not_ilike
function Expr:startswith(s)
  return binary("LIKE", PREC.LIKE, self, binary("||", PREC.CONCAT, s, M.literal_column("'%'")))
end
function Expr:endswith(s)
  return binary("LIKE", PREC.LIKE, self, binary("||", PREC.CONCAT, M.literal_column("'%'"), s))
end
function Expr:contains(s)
  return binary("LIKE", PREC.LIKE, self,
    binary("||", PREC.CONCAT, binary("||", PREC.CONCAT, M.literal_column("'%'"), s), M.literal_column("'%'")))
end
function Expr:between(lo, hi)
  return node { k = "between", x = self, lo = coerce(lo), hi = coerce(hi), prec = PREC.BETWEEN }
end

-- :in_({values}) or :in_(sa.select(...)); an empty list is false, as SQLAlchemy 1.4 renders it.
local function in_(self, list, negate)
  if getmetatable(list) == Stmt and list.k == "select" then
    return node { k = "in", x = self, sub = list, negate = negate, prec = PREC.IN }
  end
  if type(list) ~= "table" or getmetatable(list) ~= nil then
    quote.raise_plain("in_: give a list of values or a sa.select(...)")
  end
  local items = {}
  for i = 1, #list do items[i] = coerce(list[i]) end
  return node { k = "in", x = self, items = items, negate = negate, prec = PREC.IN }
end
function Expr:in_(list) return in_(self, list, false) end
function Expr:not_in(list) return in_(self, list, true) end
Expr.notin_ = Expr.not_in

function Expr:label(name) return node { k = "label", x = self, name = name } end
function Expr:desc() return node { k = "order", x = self, dir = "DESC" } end
function Expr:asc() return node { k = "order", x = self, dir = "ASC" } end
function Expr:concat(other) return binary("||", PREC.CONCAT, self, other) end
-- column:op("@>")(value), as SQLAlchemy's column.op("@>")(value): the operator's function
-- takes the other operand alone. Its precedence is SQLAlchemy's default for a custom
-- operator, 0 (parenthesised inside any other operator), unless given:
-- column:op("@>", { precedence = 5, is_comparison = true }).
function Expr:op(operator, o)
  if type(operator) ~= "string" then quote.raise_plain("op: the operator must be a string") end
  local prec = 0
  if type(o) == "table" then
    options.check(("op(%q)"):format(operator), o, { "precedence", "is_comparison", "return_type" })
    prec = o.precedence or 0
  elseif o ~= nil then
    prec = o
  end
  if math.type(prec) ~= "integer" then quote.raise_plain(("op(%q): precedence must be an integer"):format(operator)) end
  return function(other) return binary(operator, prec, self, other) end
end

Expr.__add = function(a, b) return binary("+", PREC.ADD, a, b) end
Expr.__sub = function(a, b) return binary("-", PREC.ADD, a, b) end
Expr.__mul = function(a, b) return binary("*", PREC.MUL, a, b) end
Expr.__div = function(a, b) return binary("/", PREC.MUL, a, b) end
Expr.__mod = function(a, b) return binary("%", PREC.MUL, a, b) end
Expr.__concat = function(a, b) return binary("||", PREC.CONCAT, a, b) end
Expr.__unm = function(a) return node { k = "neg", x = a, prec = PREC.NEG } end

-- sa.and_(...), sa.or_(...), sa.not_(x)
local function boolean(op)
  return function(...)
    local items = {}
    for i = 1, select("#", ...) do
      local v = select(i, ...)
      if v ~= nil then items[#items + 1] = coerce(v) end
    end
    return node { k = "bool", op = op, items = items, prec = PREC[op] }
  end
end
M.and_, M.or_ = boolean("AND"), boolean("OR")
function M.not_(x) return node { k = "not", x = coerce(x), prec = PREC.NOT } end

function M.literal_column(sql)
  if type(sql) ~= "string" then quote.raise_plain("sa.literal_column: the SQL must be a string") end
  return node { k = "raw", sql = sql, prec = 10 }
end
-- sa.literal(value): a bound value.
function M.literal(value) return coerce(value) end
function M.null() return node { k = "raw", sql = "NULL", prec = 10, null = true } end
function M.true_() return node { k = "raw", sql = "true", prec = 10 } end
function M.false_() return node { k = "raw", sql = "false", prec = 10 } end
function M.cast(x, type_) return node { k = "cast", x = coerce(x), type = type_, prec = 10 } end
function M.distinct(x) return node { k = "distinct", x = coerce(x), prec = 10 } end

-- sa.func.<name>(...): a SQL function call; sa.func.count() is count(*) as in SQLAlchemy.
M.func = setmetatable({}, {
  __index = function(_, name)
    return function(...)
      local args = {}
      for i = 1, select("#", ...) do args[i] = coerce((select(i, ...))) end
      return node { k = "func", name = name, args = args, prec = 10 }
    end
  end,
})

-- ---- tables and columns --------------------------------------------------------------------

-- sa.column(name [, type]): a column, by itself or in sa.table(...).
function M.column(name, type_)
  if type(name) ~= "string" then quote.raise_plain("sa.column: the name must be a string") end
  return node { k = "column", name = name, type = type_, prec = 10, kind = "column" }
end

local Table = { __name = "sa.table" }
Table.__index = Table

-- sa.table(name, sa.column(...)..., {schema}): the lightweight table data migrations use;
-- t.c.<name> (and t.c[name]) are its columns, bound to it.
function M.table(name, ...)
  if type(name) ~= "string" then quote.raise_plain("sa.table: the name must be a string") end
  local n = select("#", ...)
  local opts = {}
  local last = select(n > 0 and n or 1, ...)
  if n > 0 and type(last) == "table" and getmetatable(last) == nil then
    opts = last
    n = n - 1
  end
  options.check("sa.table", opts, { "schema" })
  local t = setmetatable({ kind = "table", name = name, schema = opts.schema, columns = {} }, Table)
  local c = {}
  for i = 1, n do
    local col = select(i, ...)
    -- an sa.Column serves too, as in SQLAlchemy (its name and type)
    local is_column = type(col) == "table" and getmetatable(col) ~= nil and col.kind == "Column"
    if not (M.is_expr(col) and col.k == "column") and not is_column then
      quote.raise_plain(("sa.table(%q): argument %d must be sa.column(...)"):format(name, i + 1))
    end
    local bound = node { k = "column", name = col.name, type = col.type, table = t, prec = 10, kind = "column" }
    t.columns[#t.columns + 1] = bound
    c[col.name] = bound
  end
  t.c = setmetatable(c, {
    __index = function(_, k)
      quote.raise_plain(("sa.table(%q) has no column %s"):format(name, tostring(k)))
    end,
  })
  return t
end

function M.is_table(v) return getmetatable(v) == Table end

Stmt = setmetatable({}, { __index = Expr })
Stmt.__index = Stmt
Stmt.__name = "sa statement"

local function stmt(fields)
  fields.prec = 10
  return setmetatable(fields, Stmt)
end
M.is_statement = function(v) return getmetatable(v) == Stmt end

local function copy(s, changes)
  local t = {}
  for k, v in pairs(s) do t[k] = v end
  for k, v in pairs(changes) do t[k] = v end
  return setmetatable(t, Stmt)
end

-- :where(...) may be called more than once; the conditions are ANDed.
function Stmt:where(...)
  local w = {}
  for _, c in ipairs(self.wheres or {}) do w[#w + 1] = c end
  for i = 1, select("#", ...) do w[#w + 1] = coerce((select(i, ...))) end
  return copy(self, { wheres = w })
end
Stmt.filter = Stmt.where

-- :values{col = v, ...} (insert, update) or :values{{...}, {...}} (a multi-row insert).
function Stmt:values(v)
  if type(v) ~= "table" or getmetatable(v) ~= nil then
    quote.raise_plain(("%s():values: give a table of column = value"):format(self.k))
  end
  if v[1] ~= nil then
    if self.k ~= "insert" then quote.raise_plain("update():values takes one table of column = value") end
    return copy(self, { rows = v })
  end
  return copy(self, { rows = { v } })
end

function Stmt:returning(...)
  local r = {}
  for i = 1, select("#", ...) do r[i] = coerce((select(i, ...))) end
  return copy(self, { returns = r })
end

function Stmt:order_by(...)
  local r = {}
  for i = 1, select("#", ...) do r[i] = coerce((select(i, ...))) end
  return copy(self, { orders = r })
end
function Stmt:distinct() return copy(self, { is_distinct = true }) end
function Stmt:limit(n) return copy(self, { limit_n = n }) end
function Stmt:offset(n) return copy(self, { offset_n = n }) end
function Stmt:select_from(t) return copy(self, { froms = { t } }) end

function Table:insert() return stmt { k = "insert", table = self } end
function Table:update() return stmt { k = "update", table = self } end
function Table:delete() return stmt { k = "delete", table = self } end
function Table:select() return stmt { k = "select", cols = self.columns, froms = { self } } end

function M.insert(t) return t:insert() end
function M.update(t) return t:update() end
function M.delete(t) return t:delete() end

-- sa.select(col_or_table...) (SQLAlchemy 1.4/2.0 style; a list as the one argument works too).
function M.select(...)
  local args = table.pack(...)
  if args.n == 1 and type(args[1]) == "table" and getmetatable(args[1]) == nil then
    args = table.pack(table.unpack(args[1]))
  end
  local cols, froms, seen = {}, {}, {}
  local function from(t)
    if t and not seen[t] then
      seen[t] = true
      froms[#froms + 1] = t
    end
  end
  for i = 1, args.n do
    local a = args[i]
    if type(a) == "table" and a.kind == "Table" and M.is_table(rawget(a, "lite")) then a = a.lite end -- an sa.Table
    if M.is_table(a) then
      for _, c in ipairs(a.columns) do cols[#cols + 1] = c end
      from(a)
    else
      cols[#cols + 1] = coerce(a)
    end
  end
  return stmt { k = "select", cols = cols, froms = froms, find_froms = true }
end

-- ---- compiling -------------------------------------------------------------------------------

-- A compiler: `literal` writes values inline (--sql); else they become $1, $2, ...
local function compiler(literal, render_value)
  local C = { params = { n = 0 } }

  local function value(v, inline)
    if literal or inline then return render_value(v) end
    local n = C.params.n + 1
    C.params[n], C.params.n = v, n
    return "$" .. n
  end

  local function table_name(t) return qualified(t.schema, t.name) end

  local expr
  local function sub(x, parent, right)
    local s = expr(x)
    local p = x.prec or 10
    if p < parent or (right and p == parent and parent >= PREC.ADD) then return "(" .. s .. ")" end
    return s
  end

  -- the tables columns come from, for a select without select_from
  local function collect(x, acc, seen)
    if type(x) ~= "table" then return end
    if M.is_expr(x) and x.k == "column" and x.table and not seen[x.table] then
      seen[x.table] = true
      acc[#acc + 1] = x.table
    end
    if getmetatable(x) == Stmt then return end
    for k, v in pairs(x) do
      if k ~= "table" and type(v) == "table" and (M.is_expr(v) or getmetatable(v) == nil) then
        collect(v, acc, seen)
      end
    end
  end

  function expr(x)
    local k = x.k
    if k == "bind" then return value(x.value, x.inline)
    elseif k == "raw" then return x.sql
    elseif k == "column" then
      if x.table and not C.bare_columns then return table_name(x.table) .. "." .. ident(x.name) end
      return ident(x.name)
    elseif k == "binary" then
      if (x.right.null or x.right.k == "bind" and x.right.value == nil) and (x.op == "=" or x.op == "!=") then
        return sub(x.left, PREC.IS) .. (x.op == "=" and " IS NULL" or " IS NOT NULL")
      end
      return sub(x.left, x.prec) .. " " .. x.op .. " " .. sub(x.right, x.prec, true)
    elseif k == "is" then
      return sub(x.x, PREC.IS) .. (x.negate and " IS NOT " or " IS ") .. sub(x.right, PREC.IS, true)
    elseif k == "bool" then
      if #x.items == 0 then return x.op == "AND" and "true" or "false" end
      local parts = {}
      for i, it in ipairs(x.items) do parts[i] = sub(it, x.prec) end
      return table.concat(parts, " " .. x.op .. " ")
    elseif k == "not" then
      local inner = x.x
      if inner.k == "binary" and inner.op == "LIKE" then
        return sub(inner.left, PREC.LIKE) .. " NOT LIKE " .. sub(inner.right, PREC.LIKE, true)
      end
      if inner.k == "in" then
        return expr(setmetatable({ k = "in", x = inner.x, items = inner.items, sub = inner.sub,
          negate = not inner.negate, prec = inner.prec }, Expr))
      end
      return "NOT " .. sub(inner, PREC.NOT + 1)
    elseif k == "neg" then return "-" .. sub(x.x, PREC.NEG)
    elseif k == "between" then
      return sub(x.x, PREC.BETWEEN) .. " BETWEEN " .. sub(x.lo, PREC.BETWEEN) .. " AND " .. sub(x.hi, PREC.BETWEEN)
    elseif k == "in" then
      local body
      if x.sub then
        body = C.statement(x.sub)
      elseif #x.items == 0 then
        return x.negate and "true" or "false"
      else
        local parts = {}
        for i, it in ipairs(x.items) do parts[i] = expr(it) end
        body = table.concat(parts, ", ")
      end
      return sub(x.x, PREC.IN) .. (x.negate and " NOT IN (" or " IN (") .. body .. ")"
    elseif k == "func" then
      local parts = {}
      for i, a in ipairs(x.args) do parts[i] = expr(a) end
      if #parts == 0 and x.name == "count" then return "count(*)" end
      return x.name .. "(" .. table.concat(parts, ", ") .. ")"
    elseif k == "cast" then
      return "CAST(" .. expr(x.x) .. " AS " .. types.sql_of(x.type) .. ")"
    elseif k == "distinct" then return "DISTINCT " .. expr(x.x)
    elseif k == "label" then return expr(x.x) .. " AS " .. ident(x.name)
    elseif k == "order" then return expr(x.x) .. " " .. x.dir
    elseif getmetatable(x) == Stmt then return "(" .. C.statement(x) .. ")"
    end
    error("cannot compile expression " .. tostring(k), 0)
  end

  local function where_sql(s)
    if not s.wheres or #s.wheres == 0 then return "" end
    local w = #s.wheres == 1 and s.wheres[1] or M.and_(table.unpack(s.wheres))
    return " WHERE " .. expr(w)
  end

  local function returning_sql(s)
    if not s.returns then return "" end
    local parts = {}
    for i, r in ipairs(s.returns) do parts[i] = expr(r) end
    return " RETURNING " .. table.concat(parts, ", ")
  end

  -- The table's columns that the rows set, in the table's column order, as SQLAlchemy lists
  -- them; a key that is not a column is an error (SQLAlchemy's "Unconsumed column names").
  local function set_columns(s, row)
    local t = s.table
    local known, order = {}, {}
    for _, c in ipairs(t.columns) do known[c.name] = true end
    for key in pairs(row) do
      if not known[key] then
        quote.raise_plain(("%s on sa.table(%q): %s is not one of its columns"):format(s.k, t.name, tostring(key)))
      end
    end
    for _, c in ipairs(t.columns) do
      if row[c.name] ~= nil then order[#order + 1] = c.name end
    end
    return order
  end

  -- A value an insert or update gives column `name`: a plain Lua table is JSON text for a json
  -- or jsonb column, as SQLAlchemy's JSON type serializes a dict or list; else as coerce takes it.
  local function column_value(s, name, v)
    if type(v) ~= "table" or getmetatable(v) ~= nil then return coerce(v) end
    local col
    for _, c in ipairs(s.table.columns) do if c.name == name then col = c end end
    local where = ("%s on sa.table(%q), column %s"):format(s.k, s.table.name, name)
    if not types.is_json(col.type) then
      quote.raise_plain(("%s: a table value needs a json or jsonb column (sa.column(%q, sa.JSON) or "
        .. "postgresql.JSONB)"):format(where, name))
    end
    local text, err = typed.encode_json(v)
    if not text then quote.raise_plain(("%s: %s"):format(where, err)) end
    return node { k = "bind", value = text }
  end

  local function with_bare(fn)
    local was = C.bare_columns
    C.bare_columns = true
    local s = fn()
    C.bare_columns = was
    return s
  end

  function C.statement(s)
    if s.k == "insert" then
      local rows = s.rows or { {} }
      local cols = set_columns(s, rows[1])
      local head = "INSERT INTO " .. table_name(s.table)
      if #cols == 0 then return head .. " DEFAULT VALUES" .. returning_sql(s) end
      local names, tuples = {}, {}
      for i, c in ipairs(cols) do names[i] = ident(c) end
      for r, row in ipairs(rows) do
        local vals = {}
        for i, c in ipairs(cols) do
          if row[c] == nil then
            quote.raise_plain(("insert on sa.table(%q): row %d has no value for %s (every row needs the "
              .. "first row's columns; sa.null() writes NULL)"):format(s.table.name, r, c))
          end
          vals[i] = expr(column_value(s, c, row[c]))
        end
        tuples[r] = "(" .. table.concat(vals, ", ") .. ")"
      end
      return head .. " (" .. table.concat(names, ", ") .. ") VALUES " .. table.concat(tuples, ", ")
        .. returning_sql(s)
    elseif s.k == "update" then
      local row = (s.rows or {})[1]
      if not row or next(row) == nil then
        quote.raise_plain(("update on sa.table(%q): nothing to set (:values{...})"):format(s.table.name))
      end
      local sets = {}
      for i, c in ipairs(set_columns(s, row)) do
        local v = column_value(s, c, row[c])
        local rhs = expr(v)
        if v.k == "binary" then rhs = "(" .. rhs .. ")" end
        sets[i] = ident(c) .. "=" .. rhs
      end
      return "UPDATE " .. table_name(s.table) .. " SET " .. table.concat(sets, ", ") .. where_sql(s)
        .. returning_sql(s)
    elseif s.k == "delete" then
      return "DELETE FROM " .. table_name(s.table) .. where_sql(s) .. returning_sql(s)
    elseif s.k == "select" then
      local parts = {}
      for i, c in ipairs(s.cols) do parts[i] = expr(c) end
      local froms = s.froms
      if s.find_froms then
        local acc, seen = {}, {}
        for _, f in ipairs(froms) do seen[f] = true; acc[#acc + 1] = f end
        collect(s.cols, acc, seen)
        collect(s.wheres or {}, acc, seen)
        froms = acc
      end
      local sql = (s.is_distinct and "SELECT DISTINCT " or "SELECT ") .. table.concat(parts, ", ")
      if #froms > 0 then
        local f = {}
        for i, t in ipairs(froms) do f[i] = table_name(t) end
        sql = sql .. " FROM " .. table.concat(f, ", ")
      end
      sql = sql .. where_sql(s)
      if s.orders then
        local o = {}
        for i, x in ipairs(s.orders) do o[i] = expr(x) end
        sql = sql .. " ORDER BY " .. table.concat(o, ", ")
      end
      if s.limit_n then sql = sql .. " LIMIT " .. value(s.limit_n) end
      if s.offset_n then sql = sql .. " OFFSET " .. value(s.offset_n) end
      return sql
    end
    error("not a statement", 0)
  end
  C.with_bare = with_bare
  C.expr = expr
  return C
end

-- Compiles a statement: (sql, params) with $n parameters, or (sql) with literals when
-- `literal`. render_value writes one Lua value as an SQL literal (luamigrate.render.value).
function M.compile(s, literal, render_value)
  local C = compiler(literal, render_value)
  local sql = C.statement(s)
  return sql, C.params
end

-- An expression (not a statement) as SQL with its values inline and its columns bare: for
-- server_default and the WHERE of indexes and constraints, which DDL cannot parameterise.
function M.inline_sql(x, render_value)
  local C = compiler(true, render_value)
  C.bare_columns = true
  return C.expr(coerce(x))
end

return M
