-- `luamigrate convert alembic PATH [-o DIR]`: an Alembic project becomes a luamigrate
-- project. Reads alembic.ini (or pyproject.toml's [tool.alembic]), the version table env.py
-- configures and every versions/*.py (through luamigrate.python: nothing Python runs), and
-- writes luamigrate.lua plus one .lua per revision with the same id, parents, labels,
-- dependencies and message, each statement translated. What cannot be translated is kept
-- as commented Python with an error("not converted: ...") at that spot, so the revision
-- fails loudly, and is listed in the report.
-- str's methods that converted migrations call through py_str (HELPERS.str).
local PY_STR_METHODS = { startswith = true, endswith = true, lower = true, upper = true, strip = true,
  lstrip = true, rstrip = true, replace = true }

local python = require "luamigrate.python"
local py = require "luamigrate.py"
local template = require "luamigrate.template"
local sa_types = require "luamigrate.types"

local M = {}

-- ---- Lua text -------------------------------------------------------------------------

local LUA_RESERVED = {}
for w in ([[and break do else elseif end false for function goto if in local nil not or
  repeat return then true until while]]):gmatch("%a+") do LUA_RESERVED[w] = true end

-- Lua's globals the translations call (table.concat, tostring, ipairs, ...): a Python
-- variable of that name (`for table in TABLES`) must not hide them.
local LUA_GLOBALS = {}
for w in ([[table string math utf8 os io tostring tonumber ipairs pairs error select type next
  print load require setmetatable getmetatable rawget rawset rawequal rawlen pcall assert py]]):gmatch("%a+") do
  LUA_GLOBALS[w] = true
end

local function lua_name(id)
  if LUA_RESERVED[id] or LUA_GLOBALS[id] then return id .. "_" end
  return id
end

local function is_ident(s)
  return type(s) == "string" and s:match("^[%a_][%w_]*$") ~= nil and not LUA_RESERVED[s]
end

-- A short Lua string literal, escaped ("%q" would write a newline as a backslash-newline).
local function quoted(s)
  return '"' .. s:gsub('[%c"\\\128-\255]', function(c)
    if c == "\n" then return "\\n" elseif c == "\t" then return "\\t" elseif c == '"' then return '\\"'
    elseif c == "\\" then return "\\\\" elseif c == "\r" then return "\\r" end
    local b = c:byte()
    if b >= 128 then return c end -- UTF-8 text stays readable
    return ("\\%03d"):format(b)
  end) .. '"'
end

-- ---- the "not converted" signal ----------------------------------------------------------

local NC = {}
local function not_converted(line, fmt, ...)
  error(setmetatable({ line = line, reason = fmt:format(...) }, NC), 0)
end

-- ---- translation context -------------------------------------------------------------

-- What a name imported at module level stands for: "op", "sa", "postgresql", a member of one
-- ("sa.Column"), or a module Lua has no copy of.
local SA_MODULES = { sqlalchemy = true, ["sqlalchemy.sql"] = true, ["sqlalchemy.sql.expression"] = true,
  ["sqlalchemy.types"] = true, ["sqlalchemy.schema"] = true, ["sqlalchemy.sql.schema"] = true,
  ["sqlalchemy.sql.sqltypes"] = true, ["sqlalchemy.sql.functions"] = true,
  -- from sqlalchemy.engine.reflection import Inspector; from sqlalchemy import inspect
  ["sqlalchemy.engine"] = true, ["sqlalchemy.engine.reflection"] = true }
local PG_MODULES = { ["sqlalchemy.dialects.postgresql"] = true }
-- sqlalchemy.dialects.mysql's classes that SQLAlchemy's PostgreSQL compiler renders as the
-- generic uppercase type (autogenerate on MySQL writes them, e.g. as existing_type=): the
-- positional arguments each takes in sa's order, and the MySQL-only options that make it
-- something PostgreSQL has not.
local MYSQL_MODULES = { ["sqlalchemy.dialects.mysql"] = true }
local MYSQL_TYPES = { VARCHAR = 1, CHAR = 1, NCHAR = 1, TEXT = 0, INTEGER = 0, BIGINT = 0, SMALLINT = 0,
  BOOLEAN = 0, DATE = 0, TIME = 1, TIMESTAMP = 1, NUMERIC = 2, DECIMAL = 2, FLOAT = 1, JSON = 0 }
local MYSQL_ONLY = { charset = true, collation = true, national = true, binary = true, ascii = true,
  unicode = true, unsigned = true, zerofill = true, display_width = true, fsp = true }
-- What Flask-SQLAlchemy's db object has of SQLAlchemy's that luamigrate's sa has too (db.Table
-- and db.MetaData are Flask-SQLAlchemy's own, bound to the application's metadata).
local FLASK_SA = {}
for _, n in ipairs(sa_types.SA_NAMES) do FLASK_SA[n] = true end
for n in ([[Column ForeignKey Identity Computed PrimaryKeyConstraint UniqueConstraint CheckConstraint
  ForeignKeyConstraint Index text table column select insert update delete and_ or_ not_ func
  literal_column literal null true false cast distinct]]):gmatch("%S+") do FLASK_SA[n] = true end
-- Python's standard library a converted migration gets from luamigrate.py, by module: the
-- names it has
local PY_MODULES = {
  datetime = { datetime = true, date = true, timedelta = true, timezone = true },
  uuid = { uuid4 = true, UUID = true },
  json = { loads = true },
}
-- alembic_postgresql_enum's names (luamigrate.helpers.sync_enum has them); importing the
-- package itself (as env.py does, to register op.sync_enum_values) has no effect of its own
local SYNC_ENUM_NAMES = { TableReference = true, ColumnType = true }
local IGNORED_MODULES = { typing = true, __future__ = true, ["collections.abc"] = true,
  ["typing_extensions"] = true, alembic_postgresql_enum = true }

local Cx = {}
Cx.__index = Cx

local function new_cx(file, src)
  local lines = {}
  for l in (src .. "\n"):gmatch("([^\n]*)\n") do lines[#lines + 1] = l end
  return setmetatable({ file = file, lines = lines, aliases = {}, notes = {}, strings = {}, raw = {},
    scopes = {}, batch = {}, binds = {}, kinds = {}, helpers = {}, converted = 0, typerefs = {}, why = {} }, Cx)
end

function Cx:declared(id)
  for i = #self.scopes, 1, -1 do if self.scopes[i][id] then return true end end
  return false
end

-- Long strings go in as placeholders and are put back after indentation, so indenting the
-- code never changes a string's content.
function Cx:str(s)
  if s:find("\n", 1, true) and not s:find("\r", 1, true) then
    local level = ""
    while s:find("]" .. level .. "]", 1, true) or s:sub(-#level - 1) == "]" .. level do level = level .. "=" end
    self.strings[#self.strings + 1] = "[" .. level .. "[\n" .. s .. "]" .. level .. "]"
    self.raw[#self.strings] = s
    return "\1" .. #self.strings .. "\2"
  end
  return quoted(s)
end

-- ---- expressions --------------------------------------------------------------------

local expr
local foreign_expr
local is_result_read

-- The module an attribute chain starts at ("op", "sa", "postgresql"), or nil.
local function root_module(cx, e)
  while e.k == "attr" do e = e.obj end
  if e.k == "name" then
    local a = cx.aliases[e.id]
    if a and (a == "op" or a == "sa" or a == "postgresql" or a == "py_logging" or a:match("^sa%.")
      or a:match("^postgresql%.") or a:match("^py%.") or a == "py_json") and not cx:declared(e.id) then
      return a
    end
  end
  return nil
end

-- The root of fn is op, or alembic's context (`from alembic import context`), whose
-- get_bind() and get_context() are op's.
local function op_or_context(cx, fn)
  local root = root_module(cx, fn)
  if root == "op" then return true end
  local base = fn
  while base.k == "attr" do base = base.obj end
  return base.k == "name" and cx.aliases[base.id] == "alembic_context" and not cx:declared(base.id)
end

-- op.get_bind().dialect.name, op.get_context().dialect.name, bind.dialect.name: luamigrate
-- runs on PostgreSQL only, so the dialect is a constant and branches for other databases
-- are left out (see dialect_test).
local function is_bind_source(cx, src)
  return (src.k == "name" and cx.binds[src.id]) or (src.k == "call" and src.fn.k == "attr"
    and (src.fn.name == "get_bind" or src.fn.name == "get_context") and op_or_context(cx, src.fn))
end

local function is_dialect_name(cx, e)
  return e.k == "attr" and e.name == "name" and e.obj.k == "attr" and e.obj.name == "dialect"
    and is_bind_source(cx, e.obj.obj) or false
end

-- str(bind.engine.url): the database URL, which on luamigrate's only database starts with
-- "postgresql"; a name assigned it is of kind "dburl".
local function is_db_url(cx, e)
  if e.k == "name" then return cx.kinds[e.id] == "dburl" and not cx.binds[e.id] end
  return e.k == "call" and e.fn.k == "name" and e.fn.id == "str" and not cx:declared("str")
    and #e.args == 1 and #e.kwargs == 0 and e.args[1].k == "attr" and e.args[1].name == "url"
    and e.args[1].obj.k == "attr" and e.args[1].obj.name == "engine" and is_bind_source(cx, e.args[1].obj.obj)
end

-- What a test on the dialect is on PostgreSQL: true, false, or nil when the test is not one
-- (`dialect.name == "mysql"`, `!=`, `in (...)`, `url.startswith("sqlite")`, `not`, and/or).
-- The comparison `NAME == "mysql"` (!=, in, not in) on PostgreSQL, where is_name(x) says
-- whether x is the dialect's name; nil when e is no such comparison.
local function name_test(e, is_name)
  if #e.ops ~= 1 then return nil end
  local l, r, op = e.operands[1], e.operands[2], e.ops[1]
  if is_name(r) and l.k == "str" and (op == "==" or op == "!=") then l, r = r, l end
  if not is_name(l) then return nil end
  if (op == "==" or op == "!=") and r.k == "str" then return (r.s == "postgresql") == (op == "==") end
  if (op == "in" or op == "not in") and (r.k == "tuple" or r.k == "list" or r.k == "set") then
    local found = false
    for _, it in ipairs(r.items) do
      if it.k ~= "str" then return nil end
      if it.s == "postgresql" then found = true end
    end
    return found == (op == "in")
  end
  return nil
end

local function dialect_test(cx, e)
  if e.k == "cmp" then
    return name_test(e, function(x) return is_dialect_name(cx, x) end)
  elseif e.k == "call" and e.fn.k == "attr" and e.fn.name == "startswith" and #e.args == 1
    and #e.kwargs == 0 and e.args[1].k == "str" and is_db_url(cx, e.fn.obj) then
    local prefix = e.args[1].s
    if ("postgresql"):sub(1, #prefix) == prefix then return true end
    return false
  elseif e.k == "unop" and e.op == "not" then
    local v = dialect_test(cx, e.e)
    if v == nil then return nil end
    return not v
  end
  return nil
end

local STR_RESULTS = { join = true, format = true, strip = true, lstrip = true, rstrip = true, lower = true,
  upper = true, replace = true, isoformat = true, strftime = true, title = true, capitalize = true }
local function is_stringish(cx, e)
  if e.k == "str" or e.k == "fstr" then return true end
  if e.k == "name" and cx.kinds[e.id] == "str" then return true end
  if e.k == "binop" and e.op == "%" and is_stringish(cx, e.l) then return true end
  if e.k == "binop" and e.op == "+" then return is_stringish(cx, e.l) or is_stringish(cx, e.r) end
  if e.k == "call" and e.fn.k == "attr" and e.fn.name == "format" and e.fn.obj.k == "str" then return true end
  -- str(x), and str's methods that give a string ("-".join(...), s.strip(), d.isoformat())
  if e.k == "call" and e.fn.k == "name" and (e.fn.id == "str" or e.fn.id == "repr") and not cx:declared(e.fn.id) then
    return true
  end
  if e.k == "call" and e.fn.k == "attr" and STR_RESULTS[e.fn.name] then return true end
  return false
end

local function number(e)
  local v = e.v:gsub("_", "")
  local lower = v:lower()
  if lower:match("^0o") then return tostring(tonumber(v:sub(3), 8)) end
  if lower:match("^0b") then return tostring(tonumber(v:sub(3), 2)) end
  if lower:match("^0x") then return v end
  if v:match("^%.") then v = "0" .. v end
  if v:match("%.$") then v = v .. "0" end
  if v:match("^0%d") then return tostring(tonumber(v)) end
  return v
end

-- a number for sure: a literal, len(), int(), float(), or arithmetic on such
local function is_numeric(cx, e)
  if e.k == "num" then return true end
  if e.k == "name" and (cx.kinds[e.id] == "num" or cx.kinds[e.id] == "int") then return true end
  if e.k == "unop" and e.op == "-" then return is_numeric(cx, e.e) end
  if e.k == "call" and e.fn.k == "name" and (e.fn.id == "len" or e.fn.id == "int" or e.fn.id == "float")
    and not cx:declared(e.fn.id) then
    return true
  end
  -- -, /, //, ** on strings fail in both; * repeats a string or a list
  if e.k == "binop" and (e.op == "*" or e.op == "+") then return is_numeric(cx, e.l) and is_numeric(cx, e.r) end
  if e.k == "binop" and e.op == "%" then return is_numeric(cx, e.l) end
  if e.k == "binop" and e.op ~= "+" and e.op ~= "%" then return true end
  return false
end

-- an integer for sure (tostring of it is Python's str): an integer literal, len(), int(),
-- or +, -, *, // and % of such
local function is_integer(cx, e)
  if e.k == "num" then return math.type(tonumber(number(e))) == "integer" end
  if e.k == "name" then return cx.kinds[e.id] == "int" end
  if e.k == "unop" and e.op == "-" then return is_integer(cx, e.e) end
  if e.k == "call" and e.fn.k == "name" and (e.fn.id == "len" or e.fn.id == "int") and not cx:declared(e.fn.id) then
    return true
  end
  if e.k == "binop" and (e.op == "+" or e.op == "-" or e.op == "*" or e.op == "//" or e.op == "%") then
    return is_integer(cx, e.l) and is_integer(cx, e.r)
  end
  return false
end

-- The text of a call of luamigrate.py's fname (Python's semantics at run time: py.str,
-- py.mod, py.mul, ...); the file gets `local py = require "luamigrate.py"`.
local function py_call(cx, fname, ...)
  cx.helpers.py = true
  return "py." .. fname .. "(" .. table.concat({ ... }, ", ") .. ")"
end

-- SQLAlchemy's constructors of a column-like expression: sa.column("x"), sa.cast(...), ...
local SA_VALUE_EXPRS = { column = true, literal_column = true, literal = true, cast = true }

-- An SQL expression whose comparisons build SQL: a column of a sa.table() (t.c.name,
-- t.c["name"]), sa.column("x"), sa.func.f(...), sa.cast(...), and what is built on one:
-- arithmetic, a method's result (t.c.b.concat("x")), a custom operator's (t.c.a.op("%")(2)).
local function is_column_expr(cx, e)
  if e.k == "attr" and e.obj.k == "attr" and e.obj.name == "c" then return true end
  if e.k == "sub" and e.obj.k == "attr" and e.obj.name == "c" then return true end
  if e.k == "call" and e.fn.k == "attr" and root_module(cx, e.fn) == "sa"
    and (SA_VALUE_EXPRS[e.fn.name] or (e.fn.obj.k == "attr" and e.fn.obj.name == "func")) then return true end
  if e.k == "call" and ((e.fn.k == "attr" and is_column_expr(cx, e.fn.obj))
    or (e.fn.k == "call" and is_column_expr(cx, e.fn))) then return true end
  if e.k == "binop" then return is_column_expr(cx, e.l) or is_column_expr(cx, e.r) end
  return false
end

-- Whether s is a Lua prefix expression (a name, field, index or call chain), which needs no
-- parentheses as an operand or a method receiver.
local function is_prefixexp(s)
  local i = s:match("^[%a_][%w_]*()")
  -- a reserved word (true, nil, not ...) starts no prefix expression
  if i and LUA_RESERVED[s:sub(1, i - 1)] then return false end
  if not i then
    if s:match("^%b()$") then return true end
    return false
  end
  while i <= #s do
    local j = s:match("^%.[%a_][%w_]*()", i) or s:match("^:[%a_][%w_]*%b()()", i)
      or s:match("^%b()()", i) or s:match("^%b[]()", i)
    if not j then return false end
    i = j
  end
  return true
end

local function wrap(s)
  if is_prefixexp(s) or s:match("^%-?[%d.]+$") or s:match('^"[^"\\]*"$') then return s end
  return "(" .. s .. ")"
end

-- s as what Lua lets stand before ".name", "[k]" or ":m(...)": a literal ("text", 1) there is
-- a syntax error, so anything but a prefix expression is parenthesized.
local function prefix(s)
  if is_prefixexp(s) then return s end
  return "(" .. s .. ")"
end

-- Calls laid out like the Python: on one line when short, else one argument per line.
local function call_text(fn, args)
  local one = fn .. "(" .. table.concat(args, ", ") .. ")"
  if #one <= 96 and not one:find("\n", 1, true) then return one end
  -- the leading plain arguments (a table name, a column name) stay on the first line, the
  -- rest go one per line
  local head, i = fn .. "(", 1
  while i < #args and not args[i]:find("[\n(){]") and #head + #args[i] + 2 <= 72 do
    head = head .. args[i] .. ", "
    i = i + 1
  end
  if i == 1 then head = fn .. "(" end
  local lines = {}
  for j = i, #args do
    lines[#lines + 1] = "  " .. args[j]:gsub("\n", "\n  ") .. (j < #args and "," or "")
  end
  if i > 1 and #lines == 1 and not args[#args]:find("\n", 1, true) then
    return head .. args[#args] .. ")"
  end
  return head:gsub(" $", "") .. "\n" .. table.concat(lines, "\n") .. ")"
end

local function table_text(items)
  if #items == 0 then return "{}" end
  local one = "{ " .. table.concat(items, ", ") .. " }"
  if #one <= 96 and not one:find("\n", 1, true) then return one end
  local lines = {}
  for i, a in ipairs(items) do lines[i] = "  " .. a:gsub("\n", "\n  ") .. "," end
  return "{\n" .. table.concat(lines, "\n") .. "\n}"
end

local function key_text(k)
  if is_ident(k) then return k end
  return "[" .. quoted(k) .. "]"
end


-- Python's format-spec mini language, for the specs that have a printf twin.
local function printf_spec(spec)
  if spec == "" then return nil end
  local flags, width, prec, conv = spec:match("^([<>0+-]?)(%d*)%.?(%d*)([dfsxXeEgG]?)$")
  if not flags then return false end
  if flags == "<" then flags = "-" elseif flags == ">" then flags = "" end
  if conv == "" then conv = prec ~= "" and "g" or "s" end
  return "%" .. flags .. width .. (prec ~= "" and ("." .. prec) or "") .. conv
end

local function fstring(cx, parts, line)
  local out = {}
  for _, p in ipairs(parts) do
    if type(p) == "string" then
      out[#out + 1] = cx:str(p)
    else
      if p.selfdoc then not_converted(line, "f-string self-documenting '=' field") end
      local v = expr(cx, p.expr)
      if p.spec and p.spec ~= "" then
        if p.conv == "r" or p.conv == "a" then
          not_converted(line, "f-string conversion !%s with a format spec", p.conv)
        end
        local fmt = printf_spec(p.spec)
        if not fmt then not_converted(line, "f-string format spec ':%s'", p.spec) end
        -- Python's format() of the value: %-formatting has the same conversions
        out[#out + 1] = py_call(cx, "mod", quoted(fmt), "{ " .. v .. " }")
      elseif p.conv == "r" or p.conv == "a" then
        out[#out + 1] = py_call(cx, "repr", v)
      elseif p.expr.k == "str" then
        out[#out + 1] = v
      elseif is_stringish(cx, p.expr) or is_integer(cx, p.expr) then
        out[#out + 1] = "tostring(" .. v .. ")"
      else
        -- None, True, a float, a list: Python's str() text
        out[#out + 1] = py_call(cx, "str", v)
      end
    end
  end
  if #out == 0 then return '""' end
  return table.concat(out, " .. ")
end

-- "...{}...{0}...{name}...".format(...) as an f-string's parts.
local function format_parts(cx, s, args, kwargs, line)
  local parts, auto = {}, 0
  local named = {}
  for _, kw in ipairs(kwargs) do
    if not kw.name then not_converted(line, "str.format(**...)") end
    named[kw.name] = kw.value
  end
  local i = 1
  local buf = {}
  while i <= #s do
    local c = s:sub(i, i)
    if c == "{" and s:sub(i + 1, i + 1) == "{" then buf[#buf + 1] = "{"; i = i + 2
    elseif c == "}" and s:sub(i + 1, i + 1) == "}" then buf[#buf + 1] = "}"; i = i + 2
    elseif c == "{" then
      local j = s:find("}", i, true)
      if not j then not_converted(line, "str.format: unbalanced '{'") end
      local field = s:sub(i + 1, j - 1)
      local fname, spec = field:match("^([^:!]*)(.*)$")
      if spec:sub(1, 1) == "!" then not_converted(line, "str.format conversion '%s'", spec) end
      spec = spec:sub(2)
      local e
      if fname == "" then auto = auto + 1; e = args[auto]
      elseif fname:match("^%d+$") then e = args[tonumber(fname) + 1]
      else e = named[fname] end
      if not e then not_converted(line, "str.format field '{%s}'", field) end
      if #buf > 0 then parts[#parts + 1] = table.concat(buf); buf = {} end
      parts[#parts + 1] = { expr = e, spec = spec }
      i = j + 1
    else buf[#buf + 1] = c; i = i + 1 end
  end
  if #buf > 0 then parts[#parts + 1] = table.concat(buf) end
  return fstring(cx, parts, line)
end

-- The positional arguments' Lua texts. A trailing *list is table.unpack(list); when the
-- options table has to follow it (`opts`: its text), both go through py_unpack, since Lua
-- keeps only the first value of a call that is not the last argument.
local function args_list(cx, args, line, opts)
  local out = {}
  for i, a in ipairs(args) do
    if a.k == "starred" then
      if i ~= #args then not_converted(line, "*args before other positional arguments") end
      if opts then
        cx.helpers.unpack = true
        out[#out + 1] = "py_unpack(" .. expr(cx, a.e) .. ", " .. opts .. ")"
        return out, true
      end
      out[#out + 1] = "table.unpack(" .. expr(cx, a.e) .. ")"
    else
      out[#out + 1] = expr(cx, a)
    end
  end
  if opts then out[#out + 1] = opts end
  return out, false
end

local OTHER_DIALECTS = { mysql = true, mariadb = true, sqlite = true, mssql = true, oracle = true }

-- kwargs -> {key, lua} pairs; None values left out (an absent key is Lua's None), except
-- where the op gives None a meaning of its own (`false` stands for it: op.alter_column).
local function kw_pairs(cx, kwargs, line, none_is_false)
  local out = {}
  for _, kw in ipairs(kwargs) do
    if not kw.name and kw.value.k == "name" and cx:declared("\0dstar:" .. kw.value.id) then
      goto continue -- passed on with *args (see params_text)
    end
    if not kw.name then not_converted(line, "**kwargs in a call") end
    -- mysql_engine=..., sqlite_autoincrement=...: SQLAlchemy ignores them on PostgreSQL
    local other_dialect = OTHER_DIALECTS[kw.name:match("^(%l+)_") or ""]
    local none = kw.value.k == "const" and kw.value.v == "None"
    if not other_dialect and none and none_is_false and none_is_false[kw.name] then
      out[#out + 1] = { kw.name, "false" }
    elseif not other_dialect and not none then
      out[#out + 1] = { kw.name, expr(cx, kw.value) }
    end
    ::continue::
  end
  return out
end

local function options_text(pairs_)
  local items = {}
  for i, p in ipairs(pairs_) do items[i] = key_text(p[1]) .. " = " .. p[2] end
  return table_text(items)
end

-- Calls whose trailing plain table is taken for the options table.
local VARARGS = {}
for name in ([[op.create_table op.create_exclude_constraint sa.Column sa.PrimaryKeyConstraint
  sa.UniqueConstraint sa.Index sa.table sa.Table sa.Enum postgresql.ENUM sa.tuple_ sa.and_
  sa.or_ sa.select]]):gmatch("%S+") do VARARGS[name] = true end

local NONE_MEANS = {
  ["op.alter_column"] = { server_default = true, comment = true },
}

-- Alembic's ops' positional parameters, which Python may pass by name
-- (op.create_check_constraint("ck", table_name="t", condition="x > 0")): luamigrate's ops take
-- them by position, so a keyword naming the next one moves into its place.
local OP_POSITIONAL = {}
for name, params in pairs {
  create_check_constraint = "constraint_name table_name condition",
  create_foreign_key = "constraint_name source_table referent_table local_cols remote_cols",
  create_index = "index_name table_name columns",
  create_primary_key = "constraint_name table_name columns",
  create_unique_constraint = "constraint_name table_name columns",
  create_exclude_constraint = "constraint_name table_name",
  drop_constraint = "constraint_name table_name",
  add_column = "table_name column",
  drop_column = "table_name column_name",
  alter_column = "table_name column_name",
  rename_table = "old_table_name new_table_name",
  drop_table = "table_name",
  create_table = "table_name",
  execute = "sqltext",
  bulk_insert = "table rows",
} do
  local list = {}
  for w in params:gmatch("%S+") do list[#list + 1] = w end
  OP_POSITIONAL["op." .. name] = list
end

-- e's positional arguments and keyword arguments, with the keywords that name the next
-- positional parameters of `params` moved into place
local function positional_kwargs(e, params)
  if not params or #e.kwargs == 0 then return e.args, e.kwargs end
  local args, kwargs = { table.unpack(e.args) }, { table.unpack(e.kwargs) }
  local moved = true
  while moved and params[#args + 1] do
    moved = false
    for i, kw in ipairs(kwargs) do
      if kw.name == params[#args + 1] then
        args[#args + 1] = kw.value
        table.remove(kwargs, i)
        moved = true
        break
      end
    end
  end
  return args, kwargs
end

-- batch_op.<method>(...) on PostgreSQL is the plain op on the batch's table.
local BATCH = {
  add_column = { op = "add_column", table_at = 1, drop = { insert_before = true, insert_after = true } },
  drop_column = { op = "drop_column", table_at = 1 },
  alter_column = { op = "alter_column", table_at = 1, drop = { insert_before = true, insert_after = true } },
  create_index = { op = "create_index", table_at = 2 },
  drop_index = { op = "drop_index", table_kw = "table_name" },
  create_unique_constraint = { op = "create_unique_constraint", table_at = 2 },
  create_primary_key = { op = "create_primary_key", table_at = 2 },
  create_foreign_key = { op = "create_foreign_key", table_at = 2, schema_kw = "source_schema" },
  create_check_constraint = { op = "create_check_constraint", table_at = 2 },
  create_exclude_constraint = { op = "create_exclude_constraint", table_at = 2 },
  drop_constraint = { op = "drop_constraint", table_at = 2 },
  create_table_comment = { op = "create_table_comment", table_at = 1 },
  drop_table_comment = { op = "drop_table_comment", table_at = 1 },
  execute = { op = "execute" },
}

local function batch_call(cx, b, method, e)
  if method == "f" then return call_text("op.f", args_list(cx, e.args, e.line)) end
  local spec = BATCH[method]
  if not spec then not_converted(e.line, "batch_op.%s", method) end
  local opname = "op." .. spec.op
  for _, a in ipairs(e.args) do
    if a.k == "starred" then not_converted(e.line, "*args in batch_op.%s", method) end
  end
  if spec.op == "execute" then return call_text(opname, (args_list(cx, e.args, e.line))) end
  local args = args_list(cx, e.args, e.line)
  if spec.table_at then
    if #args < spec.table_at - 1 then not_converted(e.line, "batch_op.%s with keyword-only arguments", method) end
    table.insert(args, spec.table_at, b.table)
  end
  local kws = kw_pairs(cx, e.kwargs, e.line, NONE_MEANS[opname])
  local kept = {}
  for _, p in ipairs(kws) do if not (spec.drop and spec.drop[p[1]]) then kept[#kept + 1] = p end end
  if spec.table_kw then table.insert(kept, 1, { spec.table_kw, b.table }) end
  if b.schema then kept[#kept + 1] = { spec.schema_kw or "schema", b.schema } end
  if #kept > 0 then args[#args + 1] = options_text(kept) end
  return call_text(opname, args)
end

-- ---- column types of other libraries and of the application ------------------------------

-- A type record: { label, render = function(cx, call_or_nil) -> Lua text }, what a use of the
-- name becomes, bare (`sa.Column("x", JSONDict)`) or called (`JSONDict(length = 20)`).

-- The call's arguments by parameter name (positional in `params` order, then keywords);
-- an argument the type does not take is not converted, naming it.
local function type_args(e, label, params)
  local got = {}
  if not e then return got end
  for i, a in ipairs(e.args) do
    if a.k == "starred" or not params[i] then
      not_converted(e.line, "%s with %d positional arguments", label, #e.args)
    end
    got[params[i]] = a
  end
  for _, kw in ipairs(e.kwargs) do
    if not kw.name then not_converted(e.line, "%s(**...)", label) end
    local known = false
    for _, p in ipairs(params) do if p == kw.name then known = true end end
    if not known then not_converted(e.line, "%s has no parameter %s=", label, kw.name) end
    got[kw.name] = kw.value
  end
  return got
end

local function is_none(v) return v == nil or (v.k == "const" and v.v == "None") end

-- Types whose PostgreSQL DDL is fixed whatever the arguments (read from the libraries'
-- sources and checked against SQLAlchemy 1.4's PostgreSQL compiler): params, in order, and
-- the Lua type, or a function of the arguments giving it.
local function fixed_type(lua, params)
  return { params = params or {}, lua = function() return lua end }
end
local function length_type(lua_fmt, param, default)
  return { params = { param }, lua = function(cx, a)
    return lua_fmt:format(is_none(a[param]) and tostring(default) or expr(cx, a[param]))
  end }
end
local LIBRARY_TYPES = {
  -- oslo.db: the JSON-encoded types are Text (mysql_as_* choose a MySQL variant only)
  ["oslo_db.sqlalchemy.types"] = {
    JsonEncodedType = fixed_type("sa.Text", { "mysql_as_long", "mysql_as_medium" }),
    JsonEncodedDict = fixed_type("sa.Text", { "mysql_as_long", "mysql_as_medium" }),
    JsonEncodedList = fixed_type("sa.Text", { "mysql_as_long", "mysql_as_medium" }),
    SoftDeleteInteger = fixed_type("sa.Integer"),
    -- oslo.db's String: sa.String plus MySQL NDB options
    String = { params = { "length", "mysql_ndb_length", "mysql_ndb_type" }, lua = function(cx, a)
      return is_none(a.length) and "sa.String" or ("sa.String(" .. expr(cx, a.length) .. ")")
    end },
  },
  sqlalchemy_utils = {
    -- native UUID on PostgreSQL unless native=False (then BINARY(16), which PostgreSQL has not)
    UUIDType = { params = { "binary", "native" }, lua = function(_, a, e)
      if not (is_none(a.native) or (a.native.k == "const" and a.native.v == "True")) then
        not_converted(e.line, "UUIDType(native=...) other than True: BINARY(16), which PostgreSQL has not")
      end
      return "postgresql.UUID"
    end },
    JSONType = fixed_type("sa.JSON"),
    EmailType = length_type("sa.Unicode(%s)", "length", 255),
    URLType = fixed_type("sa.UnicodeText"),
    TSVectorType = { params = {}, varargs = true, kwargs = { regconfig = true },
      lua = function() return "postgresql.TSVECTOR" end },
    ChoiceType = { params = { "choices", "impl" }, lua = function(cx, a)
      return is_none(a.impl) and "sa.Unicode(255)" or expr(cx, a.impl)
    end },
    CountryType = fixed_type("sa.String(2)"),
    CurrencyType = fixed_type("sa.String(3)"),
    LocaleType = fixed_type("sa.Unicode(10)"),
    TimezoneType = fixed_type("sa.Unicode(50)", { "backend" }),
    IPAddressType = length_type("sa.Unicode(%s)", "max_length", 50),
    ScalarListType = fixed_type("sa.UnicodeText", { "coerce_func", "separator" }),
    ArrowType = { params = { "timezone" }, lua = function(cx, a)
      return is_none(a.timezone) and "sa.DateTime" or ("sa.DateTime(" .. expr(cx, a.timezone) .. ")")
    end },
    WeekDaysType = fixed_type("postgresql.BIT(7)"),
  },
}

-- The library table for a module path (sqlalchemy_utils.types.uuid is sqlalchemy_utils's).
local function library_of(mod)
  if mod == "oslo_db.sqlalchemy.types" then return LIBRARY_TYPES[mod], mod end
  if mod == "sqlalchemy_utils" or mod:match("^sqlalchemy_utils%.types") then
    return LIBRARY_TYPES.sqlalchemy_utils, "sqlalchemy_utils"
  end
  return nil
end

local function library_type(lib, libname, name)
  local spec = lib[name]
  if not spec then return nil end
  local label = libname .. "." .. name
  return { label = label, render = function(cx, e, line)
    local a = {}
    if spec.varargs and e then
      for _, x in ipairs(e.args) do if x.k ~= "str" then not_converted(e.line, "%s of a non-string", label) end end
      for _, kw in ipairs(e.kwargs) do
        if not (kw.name and spec.kwargs[kw.name]) then not_converted(e.line, "%s has no parameter %s=", label,
          tostring(kw.name)) end
      end
    else
      a = type_args(e, label, spec.params)
    end
    return spec.lua(cx, a, e or { line = line })
  end }
end

-- Another library's module as a record: its types, and its submodules by their dotted path
-- (autogenerate writes `sqlalchemy_utils.types.ts_vector.TSVectorType()`)
local function library_module(lib, libname)
  return { label = libname, member = function(name)
    local t = library_type(lib, libname, name)
    if t then return t end
    local sub = library_of(libname .. "." .. name)
    if sub then return library_module(sub, libname .. "." .. name) end
    return nil
  end }
end

-- ---- the application's own modules ------------------------------------------------------

-- Alembic runs inside the application, so `from myapp.orm import JSONDict` names a module of
-- its source tree. The resolver finds that module's file as Python's sys.path would, from
-- the Alembic project's directory or one above it (the repository root), reads it with
-- luamigrate.python, and says what a name there is when that is plain from the source: a
-- TypeDecorator subclass whose impl is a type the converter knows, Flask-SQLAlchemy's db
-- object, a literal constant, or a name imported from elsewhere (followed). Nothing runs.
local imports

local function readable(path)
  local f = io.open(path, "rb")
  if not f then return nil end
  local s = f:read("a")
  f:close()
  return s
end

function M.new_resolver(roots)
  return { roots = roots, modules = {}, loading = {} }
end

-- sqlalchemy.types, sqlalchemy.sql, ...: their names are sa's (sa.types.Text is sa.Text).
local SA_SUBMODULES = { types = true, sql = true, schema = true, expression = true, sqltypes = true,
  elements = true, functions = true, engine = true, reflection = true }

-- The dotted name e stands for when it is one of sa's or postgresql's ("sa.TypeDecorator").
local function qualname(cx, e)
  if e.k == "name" then
    local a = not cx:declared(e.id) and cx.aliases[e.id]
    if a and (a == "sa" or a == "postgresql" or a:match("^sa%.") or a:match("^postgresql%.")) then return a end
    return nil
  elseif e.k == "attr" then
    local q = qualname(cx, e.obj)
    if not q then return nil end
    if q == "sa" and SA_SUBMODULES[e.name] then return q end
    return q .. "." .. e.name
  end
  return nil
end

local function module_file(res, modname)
  local rel = modname:gsub("%.", "/")
  for _, root in ipairs(res.roots) do
    local f = root .. "/" .. rel .. ".py"
    local src = readable(f)
    if src then return f, src, false end
    f = root .. "/" .. rel .. "/__init__.py"
    src = readable(f)
    if src then return f, src, true end
  end
end

-- A module of the application: { name, path, cx (its imports), body }, or nil.
local function load_module(res, modname)
  if res.modules[modname] ~= nil then return res.modules[modname] or nil end
  if res.loading[modname] or modname == "" then return nil end
  local path, src, is_pkg = module_file(res, modname)
  local info = false
  if path then
    res.loading[modname] = true
    local mod = python.parse(src, path)
    if mod then
      local cx = new_cx(path, src)
      cx.display, cx.resolver, cx.lazy = path, res, true
      cx.package = is_pkg and modname or (modname:match("^(.*)%.[^.]+$") or "")
      cx.module_names, cx.scopes = {}, { {} }
      info = { name = modname, path = path, cx = cx, body = mod.body }
      for _, s in ipairs(mod.body) do
        if s.k == "import" or s.k == "from" then pcall(imports, cx, s) end
      end
    end
    res.loading[modname] = nil
  end
  res.modules[modname] = info
  return info or nil
end

-- `from ..x import y` inside package `pkg`: the absolute module.
local function absolute(package, mod)
  local dots, rest = mod:match("^(%.*)(.*)$")
  if #dots == 0 then return mod end
  local base = package
  for _ = 2, #dots do base = base:match("^(.*)%.[^.]+$") or "" end
  if rest == "" then return base end
  return base == "" and rest or (base .. "." .. rest)
end

local lookup

-- What `name` imported in cx stands for: a record, or nil (then cx.why says why, if known).
local function binding(cx, id)
  if cx:declared(id) then return nil end
  local r = cx.typerefs[id]
  if r == nil and cx.pending and cx.pending[id] then
    local p = cx.pending[id]
    r = lookup(cx.resolver, p.module, p.name, p.depth or 1) or false
    cx.typerefs[id] = r
  end
  return r or nil
end

-- Flask-SQLAlchemy's `db = SQLAlchemy(...)`.
local function is_flask_sqlalchemy(cx, v)
  if v.k ~= "call" then return false end
  local fn = v.fn
  local a
  if fn.k == "name" then a = cx.aliases[fn.id]
  elseif fn.k == "attr" and fn.name == "SQLAlchemy" and fn.obj.k == "name" then
    a = cx.aliases[fn.obj.id] and (cx.aliases[fn.obj.id] .. ".SQLAlchemy")
  end
  return a == "foreign:flask_sqlalchemy.SQLAlchemy" or a == "foreign:flask_sqlalchemy.extension.SQLAlchemy"
    or a == "foreign:flask.ext.sqlalchemy.SQLAlchemy"
end

-- __init__ of a TypeDecorator subclass: "passes" when it hands its own *args, **kwargs to
-- TypeDecorator's (which builds the impl with them), "drops" when it calls it with none,
-- nil when the impl depends on anything else.
local function init_kind(def)
  local star, dstar
  for _, p in ipairs(def.params) do
    if p.kind == "*" then star = p.name elseif p.kind == "**" then dstar = p.name end
  end
  local kind, bad = nil, false
  local function walk(v)
    if type(v) ~= "table" or bad then return end
    if v.k == "assign" then
      for _, t in ipairs(v.targets) do
        if t.k == "attr" and t.name == "impl" then bad = true end
      end
    end
    if v.k == "call" and v.fn.k == "attr" and v.fn.name == "__init__" then
      local args = v.args
      local self_first = v.fn.obj.k ~= "call" -- TypeDecorator.__init__(self, ...)
      if self_first then args = { table.unpack(args, 2) } end
      local k
      if #args == 0 and #v.kwargs == 0 then k = "drops"
      elseif #args == 1 and args[1].k == "starred" and args[1].e.k == "name" and args[1].e.id == star
        and #v.kwargs == 1 and not v.kwargs[1].name and v.kwargs[1].value.k == "name"
        and v.kwargs[1].value.id == dstar then k = "passes"
      else bad = true end
      if kind and kind ~= k then bad = true end
      kind = k
    end
    for _, x in pairs(v) do walk(x) end
  end
  walk(def.body)
  if bad then return nil end
  return kind
end

-- load_dialect_impl(self, dialect): the expression its PostgreSQL branch returns (through
-- dialect.type_descriptor), when its tests are on dialect.name only.
local function pg_dialect_impl(def)
  local dialect = def.params[2] and def.params[2].name
  local function is_name(x)
    return x.k == "attr" and x.name == "name" and x.obj.k == "name" and x.obj.id == dialect
  end
  local function test(t)
    if t.k == "cmp" then
      return name_test(t, is_name)
    elseif t.k == "unop" and t.op == "not" then
      local v = test(t.e)
      if v ~= nil then return not v end
    end
    return nil
  end
  local function run(stmts)
    for _, s in ipairs(stmts) do
      if s.k == "return" then
        local v = s.value
        if v and v.k == "call" and v.fn.k == "attr" and v.fn.name == "type_descriptor" and #v.args == 1 then
          v = v.args[1]
        end
        return v or false
      elseif s.k == "if" then
        local taken = s.orelse
        for i, t in ipairs(s.tests) do
          local r = test(t)
          if r == nil then return false end
          if r then taken = s.bodies[i]; break end
        end
        if taken then
          local v = run(taken)
          if v ~= nil then return v end
        end
      elseif not (s.k == "pass" or (s.k == "expr" and s.e.k == "str")) then
        return false
      end
    end
    return nil
  end
  return run(def.body) or nil
end

local function is_self_impl(v)
  return v.k == "attr" and v.name == "impl" and v.obj.k == "name" and v.obj.id == "self"
end

local call
local typeref

-- A TypeDecorator subclass of the application: its record, or nil and why not.
local function class_record(res, info, cls, depth)
  local label = ("%s (%s:%d)"):format(cls.name, info.path, cls.line)
  local td, base = false, nil
  for _, b in ipairs(cls.bases) do
    local q = qualname(info.cx, b)
    if q == "sa.TypeDecorator" then td = true
    elseif q then return nil, ("%s derives from %s, not TypeDecorator"):format(label, q)
    elseif b.k == "name" then
      local r = lookup(res, info.name, b.id, depth + 1)
      if not (r and r.render) then
        return nil, ("%s derives from %s, which is not a type the converter can read"):format(label, b.id)
      end
      base = base or r
    else
      return nil, ("%s has a base the converter cannot read"):format(label)
    end
  end
  if not td and not base then return nil, label .. " is not a TypeDecorator subclass" end
  local impl, init, dialect_impl = base and base.impl, base and base.init, base and base.dialect_impl
  local own = false
  for _, s in ipairs(cls.body) do
    if s.k == "assign" and #s.targets == 1 and s.targets[1].k == "name" and s.targets[1].id == "impl" then
      impl, own = { node = s.value, cx = info.cx }, true
    elseif s.k == "def" and s.name == "__init__" then
      init = init_kind(s)
      own = true
      if not init then return nil, label .. "'s __init__ builds its impl in a way the converter cannot follow" end
    elseif s.k == "def" and s.name == "load_dialect_impl" then
      local v = pg_dialect_impl(s)
      if not v then return nil, label .. "'s load_dialect_impl has no plain PostgreSQL branch" end
      dialect_impl, own = not is_self_impl(v) and { node = v, cx = info.cx } or nil, true
    end
  end
  -- a subclass of a library's type that changes nothing of its DDL is that type
  if base and not own and not base.impl then return { label = label, render = base.render } end
  if not impl and not dialect_impl then return nil, label .. " has no impl = ..." end
  local rec = { label = label, impl = impl, init = init, dialect_impl = dialect_impl }
  function rec.render(cx, e, line)
    local function tr(fn, ...)
      local ok, r = pcall(fn, ...)
      if ok then return r end
      if getmetatable(r) == NC then not_converted(line, "%s: %s", label, r.reason) end
      error(r, 0)
    end
    local t = dialect_impl or impl
    local sub = tr(typeref, t.cx, t.node)
    local with_args = e and (#e.args > 0 or #e.kwargs > 0)
    if dialect_impl or not with_args or init == "drops" or t.node.k == "call" then
      -- no arguments reach the impl (an impl instance ignores them, as SQLAlchemy's does)
      if sub then return sub.render(cx, nil, line) end
      return tr(expr, t.cx, t.node)
    end
    if sub then return sub.render(cx, e, line) end
    -- TypeDecorator(*args, **kwargs) builds impl(*args, **kwargs)
    cx.aliases["\0impl"] = tr(expr, t.cx, t.node)
    return call(cx, { k = "call", fn = { k = "name", id = "\0impl", line = e.line }, args = e.args,
      kwargs = e.kwargs, line = e.line })
  end
  return rec
end

local function module_record(res, info)
  return { label = info.name, member = function(name) return lookup(res, info.name, name, 2) end }
end

-- What `name` of application module `modname` is: a record ({render} for a type, {flaskdb},
-- {const = Lua text}, {member} for a module), or nil and why.
function lookup(res, modname, name, depth)
  if depth > 8 then return nil end
  local lib, libname = library_of(modname)
  if lib then return library_type(lib, libname, name) end
  if library_of(modname .. "." .. name) then
    local l2, n2 = library_of(modname .. "." .. name)
    return library_module(l2, n2)
  end
  local info = load_module(res, modname)
  local found
  for _, s in ipairs(info and info.body or {}) do
    if s.k == "class" and s.name == name then found = s
    elseif (s.k == "assign" and #s.targets == 1 and s.targets[1].k == "name" and s.targets[1].id == name)
      or (s.k == "annassign" and s.value and s.target.k == "name" and s.target.id == name) then
      found = s
    elseif s.k == "from" then
      for _, n in ipairs(s.names) do if (n.as or n.name) == name then found = { k = "from", s = s, n = n } end end
    end
  end
  if not found then
    local sub = load_module(res, modname .. "." .. name)
    if sub then return module_record(res, sub) end
    if info then return nil, ("%s defines no %s the converter can find"):format(info.path, name) end
    return nil
  end
  if found.k == "class" then return class_record(res, info, found, depth) end
  if found.k == "from" then
    local target = absolute(info.cx.package, found.s.module)
    if SA_MODULES[target] or PG_MODULES[target] then return nil end
    return lookup(res, target, found.n.name, depth + 1)
  end
  local v = found.value
  if is_flask_sqlalchemy(info.cx, v) then return { flaskdb = true } end
  -- meta = MetaData(naming_convention={...}): its literal arguments
  if v.k == "call" and qualname(info.cx, v.fn) == "sa.MetaData" and #v.args == 0 then
    local kws = {}
    for _, kw in ipairs(v.kwargs) do if kw.name then kws[kw.name] = { node = kw.value, cx = info.cx } end end
    return { metadata = kws, label = info.name .. "." .. name }
  end
  if v.k == "str" or v.k == "num" or (v.k == "const" and v.v ~= "Ellipsis") then
    return { const = foreign_expr(info.cx, v) }
  end
  if v.k == "name" then return lookup(res, modname, v.id, depth + 1) end
  return nil, ("%s:%d: %s is computed"):format(info.path, found.line, name)
end

-- e translated in another module's context ocx, for use in this one: a multi-line string
-- there is a placeholder into ocx's strings, so it is written here as a quoted string (a
-- long bracket would get the indentation of the line it lands on)
function foreign_expr(ocx, e)
  return (expr(ocx, e):gsub("\1(%d+)\2", function(n) return quoted(ocx.raw[tonumber(n)]) end))
end

-- An import in cx of `name` from `mod` (not sa's, alembic's): its record, or nil and why.
local function resolve_import(cx, mod, name)
  local lib, libname = library_of(mod)
  if lib then return library_type(lib, libname, name) end
  lib, libname = library_of(mod .. "." .. name)
  if lib then return library_module(lib, libname) end
  if not cx.resolver then return nil end
  if cx.package then mod = absolute(cx.package, mod) end
  if cx.lazy then return nil, nil, { module = mod, name = name } end
  return lookup(cx.resolver, mod, name, 1)
end

-- What e names when it is something of another library or of the application: its record
-- (a name bound by an import, an attribute of a module or of a MetaData), or nil.
local function record_of(cx, e)
  if e.k == "name" then return binding(cx, e.id) end
  if e.k ~= "attr" or (e.obj.k ~= "name" and e.obj.k ~= "attr") then return nil end
  local m = record_of(cx, e.obj)
  if not m then return nil end
  if m.member then
    local r, why = m.member(e.name)
    if not r then
      not_converted(e.line, "%s.%s has no Lua translation%s", m.label, e.name, why and (" (" .. why .. ")") or "")
    end
    return r
  end
  if m.metadata then
    local v = m.metadata[e.name]
    if not v then not_converted(e.line, "%s.%s has no Lua translation", m.label, e.name) end
    return { const = foreign_expr(v.cx, v.node), label = m.label .. "." .. e.name }
  end
  return nil
end

-- The record of e when e names a column type.
function typeref(cx, e)
  local r = record_of(cx, e)
  return r and r.render and r or nil
end

-- ---- json.dumps of literal data --------------------------------------------------------

local JSON_ESC = { ['"'] = '\\"', ["\\"] = "\\\\", ["\n"] = "\\n", ["\r"] = "\\r", ["\t"] = "\\t",
  ["\b"] = "\\b", ["\f"] = "\\f" }

local function json_string(s, ascii, line)
  if not utf8.len(s) then not_converted(line, "json.dumps of a string that is not UTF-8") end
  local out = {}
  for _, c in utf8.codes(s) do
    local ch = utf8.char(c)
    if JSON_ESC[ch] then out[#out + 1] = JSON_ESC[ch]
    elseif c < 0x20 or (ascii and c > 0x7e and c ~= 0x7f) then
      if c > 0xffff then
        c = c - 0x10000
        out[#out + 1] = ("\\u%04x\\u%04x"):format(0xd800 + (c >> 10), 0xdc00 + (c & 0x3ff))
      else
        out[#out + 1] = ("\\u%04x"):format(c)
      end
    else out[#out + 1] = ch end
  end
  return '"' .. table.concat(out) .. '"'
end

-- A literal's value as Python's json.dumps writes it (separators ", " and ": ", or the
-- separators= given; indent= an integer; sort_keys; ensure_ascii).
local function json_dumps(e)
  if #e.args ~= 1 then not_converted(e.line, "json.dumps with %d positional arguments", #e.args) end
  local o = { item = ", ", key = ": ", ascii = true }
  for _, kw in ipairs(e.kwargs) do
    local v = kw.value
    if kw.name == "sort_keys" and v.k == "const" and v.v ~= "None" then o.sort = v.v == "True"
    elseif kw.name == "ensure_ascii" and v.k == "const" and v.v ~= "None" then o.ascii = v.v == "True"
    elseif kw.name == "indent" and v.k == "num" and number(v):match("^%d+$") then o.indent = tonumber(number(v))
    elseif kw.name == "indent" and v.k == "const" and v.v == "None" then o.indent = nil
    elseif kw.name == "separators" and (v.k == "tuple" or v.k == "list") and #v.items == 2
      and v.items[1].k == "str" and v.items[2].k == "str" then
      o.sep_item, o.key = v.items[1].s, v.items[2].s
    else
      not_converted(e.line, "json.dumps(%s=...)", tostring(kw.name))
    end
  end
  o.item = o.sep_item or (o.indent and "," or ", ")
  local function enc(v, level)
    local k = v.k
    local function nl(l) return o.indent and ("\n" .. (" "):rep(o.indent * l)) or "" end
    local function seq(open, close, parts)
      if #parts == 0 then return open .. close end
      return open .. nl(level + 1) .. table.concat(parts, o.item .. nl(level + 1)) .. nl(level) .. close
    end
    if k == "str" and not v.bytes then return json_string(v.s, o.ascii, e.line)
    elseif k == "const" and v.v ~= "Ellipsis" then
      return ({ None = "null", True = "true", False = "false" })[v.v]
    elseif k == "num" or (k == "unop" and v.op == "-" and v.e.k == "num") then
      local n = tonumber(number(k == "num" and v or v.e))
      if not n then not_converted(e.line, "json.dumps of this number") end
      if k == "unop" then n = -n end
      if math.type(n) == "integer" then return tostring(n) end
      local text = (k == "num" and v or v.e).v
      if not text:find("[.eE]") or text:lower():find("^0x") then
        not_converted(e.line, "json.dumps of an integer beyond 64 bits")
      end
      return py.float_repr(n)
    elseif k == "list" or k == "tuple" then
      local parts = {}
      for i, it in ipairs(v.items) do parts[i] = enc(it, level + 1) end
      return seq("[", "]", parts)
    elseif k == "dict" then
      -- Python's dict: equal keys are one (True is 1), the first one's spelling and place kept
      local shown, order, values = {}, {}, {}
      for i, key in ipairs(v.keys) do
        local ks, id
        if key and key.k == "str" then ks, id = key.s, "s" .. key.s
        elseif key and key.k == "const" and key.v ~= "Ellipsis" then
          ks = ({ None = "null", True = "true", False = "false" })[key.v]
          id = ({ None = "none", True = "n1", False = "n0" })[key.v]
        elseif key and key.k == "num" and number(key):match("^%d+$") then ks = number(key); id = "n" .. ks
        else not_converted(e.line, "json.dumps of a dict with this key") end
        if o.sort and key.k ~= "str" then not_converted(e.line, "json.dumps(sort_keys=True) of other keys") end
        if not shown[id] then shown[id] = ks; order[#order + 1] = id end
        values[id] = v.values[i]
      end
      if o.sort then table.sort(order) end
      local parts = {}
      for i, id in ipairs(order) do
        parts[i] = json_string(shown[id], o.ascii, e.line) .. o.key .. enc(values[id], level + 1)
      end
      return seq("{", "}", parts)
    end
    not_converted(e.line, "json.dumps of something other than literal data")
  end
  return enc(e.args[1], 0)
end

local BUILTIN_CALLS = {
  len = function(cx, a) return "#" .. wrap(expr(cx, a[1])) end,
  str = function(cx, a)
    if #a == 0 then return '""' end
    if is_stringish(cx, a[1]) or is_integer(cx, a[1]) then return "tostring(" .. expr(cx, a[1]) .. ")" end
    return py_call(cx, "str", expr(cx, a[1]))
  end,
  repr = function(cx, a, e)
    if #a ~= 1 then not_converted(e.line, "repr() with %d arguments", #a) end
    return py_call(cx, "repr", expr(cx, a[1]))
  end,
  int = function(cx, a) return "math.tointeger(tonumber(" .. expr(cx, a[1]) .. "))" end,
  float = function(cx, a) return "tonumber(" .. expr(cx, a[1]) .. ")" end,
  print = function(cx, a) return call_text("print", args_list(cx, a)) end,
  sorted = function(cx, a)
    if #a ~= 1 then not_converted(a.line or 0, "sorted() with %d arguments", #a) end
    cx.helpers.sorted = true
    return "py_sorted(" .. expr(cx, a[1]) .. ")"
  end,
  bool = function(cx, a)
    if #a == 0 then return "false" end
    cx.helpers.bool = true
    return "py_bool(" .. expr(cx, a[1]) .. ")"
  end,
  list = function(cx, a, e)
    if #a == 0 then return "{}" end
    if #a == 1 and (a[1].k == "list" or a[1].k == "tuple" or a[1].k == "set") then return expr(cx, a[1]) end
    -- a copy of a name known to hold a list (a dict's or a string's would be its keys or characters)
    if #a == 1 and a[1].k == "name" and cx.kinds[a[1].id] == "list" then
      return "{ table.unpack(" .. expr(cx, a[1]) .. ") }"
    end
    if #a ~= 1 then not_converted(e.line, "%s() with %d arguments", e.fn.id, #a) end
    -- anything else: Python's list(x) at run time (a result's rows, a dict's keys, a
    -- string's characters, a list's copy); set(x) keeps each element once
    local name = (e.fn.id == "set" or e.fn.id == "frozenset") and "py_set" or "py_list"
    cx.helpers.list = true
    return name .. "(" .. expr(cx, a[1]) .. ")"
  end,
  any = function(cx, a)
    if #a ~= 1 then not_converted(a.line or 0, "any() with %d arguments", #a) end
    cx.helpers.list, cx.helpers.bool = true, true
    return "py_any(" .. expr(cx, a[1]) .. ")"
  end,
  all = function(cx, a)
    if #a ~= 1 then not_converted(a.line or 0, "all() with %d arguments", #a) end
    cx.helpers.list, cx.helpers.bool = true, true
    return "py_all(" .. expr(cx, a[1]) .. ")"
  end,
  min = function(cx, a)
    cx.helpers.list = true
    return call_text("py_min", args_list(cx, a))
  end,
  max = function(cx, a)
    cx.helpers.list = true
    return call_text("py_max", args_list(cx, a))
  end,
  sum = function(cx, a)
    if #a ~= 1 then not_converted(a.line or 0, "sum() with %d arguments", #a) end
    cx.helpers.list = true
    return "py_sum(" .. expr(cx, a[1]) .. ")"
  end,
  -- next(iter(x)) and next(iter(x), default): x's first element (a result's first row, a
  -- list's first item); StopIteration when there is none and no default
  next = function(cx, a, e)
    local it = a[1]
    if #a < 1 or #a > 2 or it.k ~= "call" or it.fn.k ~= "name" or it.fn.id ~= "iter" or #it.args ~= 1
      or cx:declared("iter") then
      not_converted(e.line, "call of next() on anything but iter(x)")
    end
    cx.helpers.list, cx.helpers.next = true, true
    return call_text("py_next", { expr(cx, it.args[1]), a[2] and expr(cx, a[2]) or nil })
  end,
}
BUILTIN_CALLS.tuple = BUILTIN_CALLS.list
-- a set's elements as a sequence, as set literals are translated (membership and iteration
-- are what migrations use; Python gives a set no order to keep)
BUILTIN_CALLS.set = BUILTIN_CALLS.list
BUILTIN_CALLS.frozenset = BUILTIN_CALLS.list

-- mysql.VARCHAR(32) and the like: the name of the MySQL type called, or nil.
local function mysql_type(cx, fn)
  if fn.k == "attr" and fn.obj.k == "name" and cx.aliases[fn.obj.id] == "mysql" and not cx:declared(fn.obj.id) then
    return fn.name
  end
  local a = fn.k == "name" and not cx:declared(fn.id) and cx.aliases[fn.id]
  return a and a:match("^mysql%.(.*)") or nil
end

function call(cx, e)
  local fn = e.fn
  local tr = typeref(cx, fn)
  if tr then return tr.render(cx, e, e.line) end
  if (fn.k == "attr" and fn.name == "dumps" and fn.obj.k == "name" and cx.aliases[fn.obj.id] == "py_json"
    and not cx:declared(fn.obj.id)) or (fn.k == "name" and cx.aliases[fn.id] == "py_json.dumps"
    and not cx:declared(fn.id)) then
    local ok, text = pcall(json_dumps, e)
    if ok then return cx:str(text) end
    if getmetatable(text) ~= NC or text.reason ~= "json.dumps of something other than literal data"
      or #e.args ~= 1 or #e.kwargs > 1
      or (#e.kwargs == 1 and not (e.kwargs[1].name == "sort_keys" and e.kwargs[1].value.k == "const")) then
      error(text, 0)
    end
    -- not literal data: Python's json.dumps at run time (luamigrate.py)
    cx.helpers.py = true
    return "py.json.dumps(" .. expr(cx, e.args[1]) .. ")"
  end
  local my = mysql_type(cx, fn)
  if my then
    if not MYSQL_TYPES[my] then not_converted(e.line, "mysql.%s, a MySQL type PostgreSQL has not", my) end
    if #e.args > MYSQL_TYPES[my] then
      not_converted(e.line, "mysql.%s with %d positional arguments (MySQL's own parameters)", my, #e.args)
    end
    for _, kw in ipairs(e.kwargs) do
      if MYSQL_ONLY[kw.name] then not_converted(e.line, "mysql.%s's MySQL-only option %s=", my, kw.name) end
    end
    -- then translated as the call of sa's class of that name
    cx.aliases["\0sa"] = "sa"
    local c = setmetatable({ fn = { k = "attr", obj = { k = "name", id = "\0sa", line = fn.line }, name = my,
      line = fn.line } }, { __index = e })
    return call(cx, c)
  end
  if fn.k == "attr" and fn.obj.k == "name" and cx.aliases[fn.obj.id] == "alembic_context"
    and not cx:declared(fn.obj.id) then
    -- alembic's context inside a migration: what op has of it
    if fn.name == "is_offline_mode" and #e.args == 0 then return '(op.get_bind():status() == "offline")' end
    if fn.name == "get_bind" and #e.args == 0 then return "op.get_bind()" end
    if fn.name == "get_x_argument" and #e.kwargs == 1 and e.kwargs[1].name == "as_dictionary"
      and e.kwargs[1].value.k == "const" and e.kwargs[1].value.v == "True" then
      return "op.get_x_argument()"
    end
    not_converted(e.line, "context.%s(...) (luamigrate's op has get_bind, get_x_argument(as_dictionary=True) "
      .. "and is_offline_mode)", fn.name)
  end
  -- op.sync_enum_values(...), the op alembic_postgresql_enum registers: its statements, from
  -- luamigrate.helpers.sync_enum
  if fn.k == "attr" and fn.name == "sync_enum_values" and fn.obj.k == "name" and cx.aliases[fn.obj.id] == "op"
    and not cx:declared(fn.obj.id) then
    cx.helpers.sync_enum = true
    local kws = kw_pairs(cx, e.kwargs, e.line)
    local opts = #kws > 0 and options_text(kws) or nil
    return call_text("sync_enum.sync_enum_values", (args_list(cx, e.args, e.line, opts)))
  end
  -- os.environ.get(k[, default]) and os.getenv(k[, default]): Lua's os.getenv
  if fn.k == "attr" and (fn.name == "get" or fn.name == "getenv") then
    local o = fn.obj
    if fn.name == "get" then o = o.k == "attr" and o.name == "environ" and o.obj or {} end
    if o.k == "name" and cx.aliases[o.id] == "py_os" and not cx:declared(o.id) then
      if #e.kwargs > 0 or #e.args < 1 or #e.args > 2 then
        not_converted(e.line, "os.%s with these arguments", fn.name)
      end
      local v = "os.getenv(" .. expr(cx, e.args[1]) .. ")"
      return e.args[2] and ("(%s or %s)"):format(v, expr(cx, e.args[2])) or v
    end
  end
  if fn.k == "attr" then
    local obj = fn.obj
    -- batch_op.add_column(...) inside `with op.batch_alter_table(...) as batch_op:`
    if obj.k == "name" and cx.batch[obj.id] then return batch_call(cx, cx.batch[obj.id], fn.name, e) end
    -- bind.execute(...) with bind = op.get_bind(): a statement whose result is dropped is
    -- op.execute (which runs it the same way, and in --sql); one whose result is read
    -- (.fetchall(), .scalar(), rows = ...) is the bind's :result, SQLAlchemy's CursorResult
    local is_bind = (obj.k == "name" and cx.binds[obj.id]) or (obj.k == "call" and obj.fn.k == "attr"
      and obj.fn.name == "get_bind" and op_or_context(cx, obj.fn))
    -- bind.commit() (SQLAlchemy 2.0): ends the migration's transaction there and begins a new
    -- one, which is what an empty autocommit block does
    if fn.name == "commit" and is_bind and #e.args == 0 and #e.kwargs == 0 and cx.discarded == e then
      return "op.autocommit_block(function() end)"
    end
    if fn.name == "execute" and #e.kwargs == 0 and not root_module(cx, fn) then
      if is_bind and cx.discarded == e then return call_text("op.execute", args_list(cx, e.args, e.line)) end
      if cx.discarded ~= e then
        return call_text(prefix(expr(cx, obj)) .. ":result", args_list(cx, e.args, e.line))
      end
    end
    if obj.k == "str" then
      if fn.name == "join" and #e.args == 1 and #e.kwargs == 0 then
        return "table.concat(" .. expr(cx, e.args[1]) .. ", " .. cx:str(obj.s) .. ")"
      elseif fn.name == "format" then
        return format_parts(cx, obj.s, e.args, e.kwargs, e.line)
      end
      not_converted(e.line, "str.%s()", fn.name)
    end
    local root = root_module(cx, fn)
    local base = obj
    while base.k == "attr" do base = base.obj end
    local fb = base.k == "name" and binding(cx, base.id)
    if fb and fb.flaskdb then root = "sa" end -- db.Column(...), db.func.now()
    if root then
      local name = expr(cx, fn)
      local e_args, e_kwargs = positional_kwargs(e, OP_POSITIONAL[name])
      e = setmetatable({ args = e_args, kwargs = e_kwargs }, { __index = e })
      local kws = kw_pairs(cx, e.kwargs, e.line, NONE_MEANS[name])
      local opts
      if #kws > 0 then
        opts = options_text(kws)
      elseif VARARGS[name] and #e.args > 0 and (e.args[#e.args].k == "list"
        or e.args[#e.args].k == "tuple" or e.args[#e.args].k == "dict") then
        -- a trailing list would read as the options table: give an empty one
        opts = "{}"
      end
      return call_text(name, (args_list(cx, e.args, e.line, opts)))
    end
    -- a list's append/extend and a dict's get: Lua's tables have no methods (an object that
    -- has a get of its own keeps it: py_get)
    if fn.name == "append" and #e.args == 1 and #e.kwargs == 0 then
      return "table.insert(" .. expr(cx, obj) .. ", " .. expr(cx, e.args[1]) .. ")"
    end
    if (fn.name == "extend" and #e.args == 1 or fn.name == "get" and (#e.args == 1 or #e.args == 2))
      and #e.kwargs == 0 then
      cx.helpers[fn.name] = true
      return call_text("py_" .. fn.name, { expr(cx, obj), table.unpack((args_list(cx, e.args, e.line))) })
    end
    -- one of str's methods: the receiver may be a string (Lua's strings have none of them
    -- by these names) or an object that has a method of that name
    if PY_STR_METHODS[fn.name] and #e.kwargs == 0 then
      cx.helpers.str = true
      return call_text("py_str", { expr(cx, obj), cx:str(fn.name), table.unpack((args_list(cx, e.args, e.line))) })
    end
    -- a method: the receiver is an object (a sa.table, a connection, a result); a datetime's
    -- replace(tzinfo=None) gets false, Lua's None in an options table
    local kws = kw_pairs(cx, e.kwargs, e.line, fn.name == "replace" and { tzinfo = true } or nil)
    local args = args_list(cx, e.args, e.line, #kws > 0 and options_text(kws) or nil)
    return call_text(prefix(expr(cx, obj)) .. ":" .. fn.name, args)
  end
  if fn.k == "name" and not cx:declared(fn.id) and not cx.aliases[fn.id] then
    local b = BUILTIN_CALLS[fn.id]
    if b then
      if #e.kwargs > 0 then not_converted(e.line, "%s() with keyword arguments", fn.id) end
      return b(cx, e.args, e)
    end
    -- dict(row), dict(row._mapping), dict(d), dict(pairs): a new dict of its keys and values
    if fn.id == "dict" and #e.args == 1 and #e.kwargs == 0 then
      cx.helpers.dict = true
      return "py_dict(" .. expr(cx, e.args[1]) .. ")"
    end
    if fn.id == "dict" and #e.args == 0 then
      return options_text(kw_pairs(cx, e.kwargs, e.line))
    end
    if not cx.module_names[fn.id] then
      not_converted(e.line, "call of %s(), which has no Lua translation", fn.id)
    end
  end
  local kws = kw_pairs(cx, e.kwargs, e.line)
  local args = args_list(cx, e.args, e.line, #kws > 0 and options_text(kws) or nil)
  return call_text(wrap(expr(cx, fn)), args)
end

local CMP_OPS = { ["=="] = "==", ["!="] = "~=", ["<"] = "<", [">"] = ">", ["<="] = "<=", [">="] = ">=" }
-- SQLAlchemy builds SQL from column comparisons; Lua's == always gives a boolean, so a column
-- comparison becomes the method of luamigrate's expressions that SQLAlchemy's operator calls
-- (column == None is IS NULL there too), with the column as the receiver.
local SQL_OPS = { ["=="] = "eq", ["!="] = "ne", ["<"] = "lt", [">"] = "gt", ["<="] = "le", [">="] = "ge" }
-- the same comparison with its operands swapped (1 < t.c.x is t.c.x > 1)
local SWAPPED = { ["=="] = "==", ["!="] = "!=", ["<"] = ">", [">"] = "<", ["<="] = ">=", [">="] = "<=" }

local function compare(cx, e)
  if #e.ops > 1 then not_converted(e.line, "a chained comparison") end
  local op, l, r = e.ops[1], e.operands[1], e.operands[2]
  if is_column_expr(cx, l) or is_column_expr(cx, r) then
    if not SQL_OPS[op] then
      if op == "is" or op == "is not" then
        return wrap(expr(cx, l)) .. (op == "is" and ":is_(" or ":is_not(") .. expr(cx, r) .. ")"
      end
      not_converted(e.line, "the column comparison '%s'", op)
    end
    if is_column_expr(cx, r) and not is_column_expr(cx, l) then l, r, op = r, l, SWAPPED[op] end
    return prefix(expr(cx, l)) .. ":" .. SQL_OPS[op] .. "(" .. expr(cx, r) .. ")"
  end
  if op == "is" or op == "is not" then
    local rhs = (r.k == "const" and r.v == "None") and "nil" or nil
    if not rhs then
      if r.k == "const" then rhs = expr(cx, r) else not_converted(e.line, "'is' between objects") end
    end
    return wrap(expr(cx, l)) .. (op == "is" and " == " or " ~= ") .. rhs
  end
  if op == "in" or op == "not in" then
    if (r.k ~= "list" and r.k ~= "tuple" and r.k ~= "set")
      or (l.k ~= "name" and l.k ~= "str" and l.k ~= "num" and l.k ~= "attr") then
      -- a list, a dict's keys or a substring, as Python's `in` on each
      cx.helpers.contains = true
      local test = "py_contains(" .. expr(cx, r) .. ", " .. expr(cx, l) .. ")"
      return op == "in" and test or ("not " .. test)
    end
    local lhs = expr(cx, l)
    local parts = {}
    for i, it in ipairs(r.items) do parts[i] = lhs .. (op == "in" and " == " or " ~= ") .. expr(cx, it) end
    if #parts == 0 then return op == "in" and "false" or "true" end
    return "(" .. table.concat(parts, op == "in" and " or " or " and ") .. ")"
  end
  return wrap(expr(cx, l)) .. " " .. CMP_OPS[op] .. " " .. wrap(expr(cx, r))
end

-- "fmt" % args with a literal fmt: Lua's string.format when every field is a %s of a value
-- known to be a string or a %d of an integer (they write the same there), else py.mod,
-- Python's %-formatting at run time (None, True, 1.0, [1, 'a'], %r, %d of a float, ...).
local function percent_format(cx, e)
  local fmt = e.l.s
  local items = e.r.k == "tuple" and e.r.items or { e.r }
  local args = args_list(cx, items, e.line)
  local plain, n = not fmt:find("%%%("), 0
  for f, conv in fmt:gmatch("%%([-+ #0]*%d*%.?%d*)(.)") do
    if conv ~= "%" then
      n = n + 1
      local it = items[n]
      -- Lua's format refuses widths of three digits and these flags on %s
      if not it or it.k == "starred" or f:find("[+ #0]") or f:find("%d%d%d")
        or not ((conv == "s" and is_stringish(cx, it)) or ((conv == "d" or conv == "i") and is_integer(cx, it))) then
        plain = false
      end
    elseif f ~= "" then
      plain = false
    end
  end
  if plain and n == #items then return "(" .. cx:str(fmt) .. "):format(" .. table.concat(args, ", ") .. ")" end
  if e.r.k == "tuple" then return py_call(cx, "mod", cx:str(fmt), table_text(args)) end
  -- one value: Python formats it as the only argument unless it is a tuple or a mapping,
  -- which only a value known at run time may be
  local known_single = ({ list = true, set = true, listcomp = true, str = true, fstr = true, num = true,
    const = true })[e.r.k]
  return py_call(cx, "mod", cx:str(fmt), known_single and ("{ " .. args[1] .. " }") or args[1])
end

-- a number literal other than 0 (a divisor Lua and Python treat alike)
local function nonzero_literal(e)
  if e.k == "unop" and e.op == "-" then e = e.e end
  return e.k == "num" and tonumber(number(e)) ~= nil and tonumber(number(e)) ~= 0
end

local function binop(cx, e)
  local op = e.op
  -- "fk_%(table_name)s" % dict(...) / % {...}: the mapping's fields
  if op == "%" and (e.r.k == "dict" or (e.r.k == "call" and e.r.fn.k == "name" and e.r.fn.id == "dict"
    and not cx:declared("dict") and #e.r.args == 0)) then
    return py_call(cx, "mod", expr(cx, e.l), expr(cx, e.r))
  end
  if op == "%" and e.l.k == "str" then return percent_format(cx, e) end
  -- fmt % args with fmt not a literal (a constant, a parameter): Python formats a string,
  -- takes the remainder of a number (ZeroDivisionError for 0); which one is known when it
  -- runs, unless a number is taken modulo a literal
  if op == "%" and not is_column_expr(cx, e.l) and not (is_numeric(cx, e.l) and nonzero_literal(e.r)) then
    local r = e.r.k == "tuple" and table_text(args_list(cx, e.r.items, e.line)) or expr(cx, e.r)
    return py_call(cx, "mod", expr(cx, e.l), r)
  end
  if op == "+" and (is_stringish(cx, e.l) or is_stringish(cx, e.r)) then
    return expr(cx, e.l) .. " .. " .. expr(cx, e.r)
  end
  if op == "+" and (e.l.k == "list" or e.r.k == "list" or e.l.k == "tuple" or e.r.k == "tuple") then
    cx.helpers.concat = true
    return "py_concat(" .. expr(cx, e.l) .. ", " .. expr(cx, e.r) .. ")"
  end
  -- a + b of values of unknown types: Python's + concatenates strings and lists, adds numbers
  if op == "+" and not (is_numeric(cx, e.l) or is_numeric(cx, e.r) or is_column_expr(cx, e.l)
    or is_column_expr(cx, e.r)) then
    cx.helpers.add = true
    cx.helpers.concat = true
    return "py_add(" .. expr(cx, e.l) .. ", " .. expr(cx, e.r) .. ")"
  end
  local lua_op = ({ ["+"] = "+", ["-"] = "-", ["*"] = "*", ["/"] = "/", ["//"] = "//", ["%"] = "%", ["**"] = "^" })[op]
  if not lua_op then not_converted(e.line, "the operator '%s'", op) end
  -- where Python's operator means what Lua's does: SQL expressions (their own operators),
  -- numbers multiplied, divided by a literal that is not 0, subtracted; else Python's at run
  -- time: * repeats a string or a list, / and // of 0 raise, ** of integers is an integer
  local l, r = expr(cx, e.l), expr(cx, e.r)
  local sql = is_column_expr(cx, e.l) or is_column_expr(cx, e.r)
  if not sql then
    if op == "*" and not (is_numeric(cx, e.l) and is_numeric(cx, e.r)) then return py_call(cx, "mul", l, r) end
    if op == "/" and not nonzero_literal(e.r) then return py_call(cx, "div", l, r) end
    if op == "//" and not nonzero_literal(e.r) then return py_call(cx, "floordiv", l, r) end
    if op == "**" then return py_call(cx, "pow", l, r) end
  end
  return wrap(l) .. " " .. lua_op .. " " .. wrap(r)
end

local function sequence(cx, items, line)
  local has_star = false
  for _, it in ipairs(items) do if it.k == "starred" then has_star = true end end
  if not has_star then return table_text(args_list(cx, items, line)) end
  -- [*a, "x", *b]: the runs of plain items and the starred sequences, concatenated
  cx.helpers.concat = true
  local groups, run = {}, {}
  for _, it in ipairs(items) do
    if it.k == "starred" then
      if #run > 0 then groups[#groups + 1] = table_text(run); run = {} end
      groups[#groups + 1] = expr(cx, it.e)
    else
      run[#run + 1] = expr(cx, it)
    end
  end
  if #run > 0 then groups[#groups + 1] = table_text(run) end
  return "py_concat(" .. table.concat(groups, ", ") .. ")"
end

local function subscript(cx, e)
  local idx = e.index
  local obj = expr(cx, e.obj)
  if idx.k == "slice" then not_converted(e.line, "a slice") end
  if idx.k == "str" then
    if is_ident(idx.s) then return prefix(obj) .. "." .. idx.s end
    return prefix(obj) .. "[" .. quoted(idx.s) .. "]"
  end
  if idx.k == "num" and number(idx):match("^%d+$") then
    return prefix(obj) .. "[" .. (tonumber(number(idx)) + 1) .. "]"
  end
  if idx.k == "unop" and idx.op == "-" and idx.e.k == "num" and e.obj.k == "name" then
    return obj .. "[#" .. obj .. " - " .. (tonumber(number(idx.e)) - 1) .. "]"
  end
  if e.obj.k == "name" and cx.kinds[e.obj.id] == "dict" then
    return obj .. "[" .. expr(cx, idx) .. "]"
  end
  not_converted(e.line, "a subscript whose index may count from 0")
end

-- Python's truthiness. A value whose type is not known to be boolean (a list, a string, a
-- count, a row, None) is tested through py_bool, as Python tests it (0, "", [], {}, None are
-- false; Lua's `if` takes all but nil and false as true); comparisons, `not`, isinstance()
-- and the like are booleans and stay plain.
local BOOL_BUILTINS = { bool = true, isinstance = true, issubclass = true, hasattr = true, callable = true,
  any = true, all = true }
local BOOL_METHODS = { startswith = true, endswith = true, isdigit = true, isalpha = true, isalnum = true,
  isspace = true, islower = true, isupper = true, isidentifier = true, has_table = true, has_index = true,
  has_sequence = true, has_schema = true, is_offline_mode = true, issubset = true, issuperset = true,
  isdisjoint = true }

local function is_boolean(cx, e)
  local k = e.k
  if k == "cmp" then return not (is_column_expr(cx, e.operands[1]) or is_column_expr(cx, e.operands[2])) end
  if k == "unop" then return e.op == "not" end
  if k == "const" then return e.v == "True" or e.v == "False" end
  if k == "boolop" then return is_boolean(cx, e.l) and is_boolean(cx, e.r) end
  if k == "call" then
    local fn = e.fn
    if fn.k == "name" then return BOOL_BUILTINS[fn.id] and not cx:declared(fn.id) and not cx.aliases[fn.id] or false end
    if fn.k == "attr" then return BOOL_METHODS[fn.name] or false end
  end
  return false
end

-- e as the condition of an if, elif, while, a conditional expression or a comprehension's if
local function cond(cx, e)
  if e.k == "unop" and e.op == "not" then return "not " .. wrap(cond(cx, e.e)) end
  if e.k == "boolop" and not (is_column_expr(cx, e.l) or is_column_expr(cx, e.r)) then
    return wrap(cond(cx, e.l)) .. " " .. e.op .. " " .. wrap(cond(cx, e.r))
  end
  if e.k == "const" and e.v == "None" then return "false" end
  if is_boolean(cx, e) then return expr(cx, e) end
  cx.helpers.bool = true
  return "py_bool(" .. expr(cx, e) .. ")"
end
M._cond = cond

-- an operand that may be evaluated whether or not it is used (no call, no side effect)
local function is_plain(e)
  local k = e.k
  if k == "const" or k == "num" or k == "str" or k == "name" then return true end
  if k == "attr" then return is_plain(e.obj) end
  if k == "list" or k == "tuple" then
    for _, it in ipairs(e.items) do if not is_plain(it) then return false end end
    return true
  end
  return k == "dict" and #e.keys == 0
end

-- `a or b`, `a and b` as values: Python's give back an operand, picked by its truthiness
local function boolop_value(cx, e)
  local l, r = expr(cx, e.l), expr(cx, e.r)
  if is_boolean(cx, e.l) then return wrap(l) .. " " .. e.op .. " " .. wrap(r) end
  cx.helpers.bool = true
  if is_plain(e.r) then
    cx.helpers["bool_" .. e.op] = true -- after "bool" in the sorted prelude: they call py_bool
    return ("py_%s(%s, %s)"):format(e.op, l, r)
  end
  if e.op == "or" then
    return ("(function() local v_ = %s if py_bool(v_) then return v_ end return %s end)()"):format(l, r)
  end
  return ("(function() local v_ = %s if not py_bool(v_) then return v_ end return %s end)()"):format(l, r)
end

function expr(cx, e)
  local k = e.k
  if k == "name" then
    local b = binding(cx, e.id)
    if b then
      if b.const then return b.const end
      if b.render then return b.render(cx, nil, e.line) end
      if b.flaskdb then not_converted(e.line, "'%s' (Flask-SQLAlchemy's db) used as a value", e.id) end
      not_converted(e.line, "the module %s used as a value", b.label)
    end
    local a = cx.aliases[e.id]
    if a and not cx:declared(e.id) then
      if a:match("^foreign:") then
        not_converted(e.line, "'%s' comes from %s, which has no Lua translation%s", e.id, a:sub(9),
          cx.why[e.id] and (" (" .. cx.why[e.id] .. ")") or "")
      end
      if a == "py_json" then cx.helpers.py = true; return "py.json" end
      if a == "py_json.dumps" then cx.helpers.py = true; return "py.json.dumps" end
      if a:match("^py%.") then cx.helpers.py = true end
      if a == "mysql" then not_converted(e.line, "'%s' (sqlalchemy.dialects.mysql) used as a value", e.id) end
      if a:match("^mysql%.") then
        local t = a:sub(7)
        if not MYSQL_TYPES[t] then not_converted(e.line, "mysql.%s, a MySQL type PostgreSQL has not", t) end
        return "sa." .. t
      end
      if a == "py_logging" then cx.helpers.logging, cx.helpers.py = true, true end
      if a:match("^sync_enum%.") then cx.helpers.sync_enum = true end
      if a == "py_os" then
        not_converted(e.line, "'%s' (Python's os) other than os.environ.get() and os.getenv()", e.id)
      end
      if a == "alembic_context" then
        not_converted(e.line, "alembic's context other than get_bind(), get_x_argument(as_dictionary=True), "
          .. "is_offline_mode(), get_context().bind and .dialect.name")
      end
      if a == "sa.true" or a == "sa.false" then return a .. "_" end -- from sqlalchemy import true
      return a
    end
    if e.id == "self" then not_converted(e.line, "self") end
    if cx:declared("\0dstar:" .. e.id) then not_converted(e.line, "**%s used other than passed on", e.id) end
    if e.id == "__name__" and not cx:declared(e.id) then return quoted(cx.module_name) end
    return lua_name(e.id)
  elseif k == "const" then
    local v = ({ None = "nil", True = "true", False = "false" })[e.v]
    if v then return v end
    not_converted(e.line, "the constant %s", e.v)
  elseif k == "num" then
    return number(e)
  elseif k == "str" then
    return cx:str(e.s)
  elseif k == "fstr" then
    return fstring(cx, e.parts, e.line)
  elseif k == "attr" then
    local obj = e.obj
    local rec = record_of(cx, e)
    if rec and rec.render then return rec.render(cx, nil, e.line) end
    if rec and rec.const then return rec.const end
    if rec then not_converted(e.line, "%s used as a value", rec.label or e.name) end
    local tr
    -- JsonEncodedDict(...).impl: the type the decorator's DDL is
    if e.name == "impl" then
      tr = typeref(cx, obj) or (obj.k == "call" and typeref(cx, obj.fn))
      if tr then return tr.render(cx, obj.k == "call" and obj or nil, e.line) end
    end
    local b = obj.k == "name" and binding(cx, obj.id)
    if b and b.flaskdb then
      if not FLASK_SA[e.name] then
        not_converted(e.line, "%s.%s: not one of SQLAlchemy's names that luamigrate's sa has", obj.id, e.name)
      end
      if e.name == "true" or e.name == "false" then return "sa." .. e.name .. "_" end
      return "sa." .. e.name
    end
    if SA_SUBMODULES[e.name] and qualname(cx, obj) == "sa" then return expr(cx, obj) end
    if is_dialect_name(cx, e) then return '"postgresql"' end
    -- op.get_context().bind, context.get_context().connection: the migration's connection
    if (e.name == "bind" or e.name == "connection") and obj.k == "call" and obj.fn.k == "attr"
      and obj.fn.name == "get_context" and #obj.args == 0 and op_or_context(cx, obj.fn) then
      return "op.get_bind()"
    end
    if obj.k == "name" and cx.aliases[obj.id] == "mysql" and not cx:declared(obj.id) then
      if not MYSQL_TYPES[e.name] then not_converted(e.line, "mysql.%s, a MySQL type PostgreSQL has not", e.name) end
      return "sa." .. e.name
    end
    if obj.k == "name" and cx.batch[obj.id] then not_converted(e.line, "batch_op.%s used as a value", e.name) end
    -- sa.true(), sa.false(): Lua's keywords, so luamigrate's sa spells them true_/false_
    if (e.name == "true" or e.name == "false") and obj.k == "name" and root_module(cx, obj) == "sa" then
      return expr(cx, obj) .. "." .. e.name .. "_"
    end
    if LUA_RESERVED[e.name] then return prefix(expr(cx, obj)) .. "[" .. quoted(e.name) .. "]" end
    return prefix(expr(cx, obj)) .. "." .. e.name
  elseif k == "call" then
    return call(cx, e)
  elseif k == "sub" then
    return subscript(cx, e)
  elseif k == "list" or k == "tuple" then
    return sequence(cx, e.items, e.line)
  elseif k == "set" then
    -- a sequence: Python's iteration order of a set is arbitrary, and the source's is one
    return sequence(cx, e.items, e.line)
  elseif k == "dict" then
    local items = {}
    for i, key in ipairs(e.keys) do
      if key == false then not_converted(e.line, "**mapping in a dict") end
      local v = expr(cx, e.values[i])
      if key.k == "str" then
        items[i] = key_text(key.s) .. " = " .. v
      else
        items[i] = "[" .. expr(cx, key) .. "] = " .. v
      end
    end
    return table_text(items)
  elseif k == "unop" then
    if e.op == "not" then return cond(cx, e) end
    if e.op == "-" then return "-" .. wrap(expr(cx, e.e)) end
    if e.op == "+" then return expr(cx, e.e) end
    not_converted(e.line, "the operator '%s'", e.op)
  elseif k == "binop" then
    return binop(cx, e)
  elseif k == "boolop" then
    if is_column_expr(cx, e.l) or is_column_expr(cx, e.r) then
      not_converted(e.line, "'%s' on SQL expressions (use sa.%s_)", e.op, e.op)
    end
    return boolop_value(cx, e)
  elseif k == "cmp" then
    return compare(cx, e)
  elseif k == "ifexp" then
    return ("(function() if %s then return %s end return %s end)()"):format(cond(cx, e.cond),
      expr(cx, e.a), expr(cx, e.b))
  elseif k == "lambda" then
    cx.scopes[#cx.scopes + 1] = {}
    local ps = {}
    for i, p in ipairs(e.params) do ps[i] = lua_name(p); cx.scopes[#cx.scopes][p] = true end
    local body = expr(cx, e.body)
    cx.scopes[#cx.scopes] = nil
    return "function(" .. table.concat(ps, ", ") .. ") return " .. body .. " end"
  elseif k == "listcomp" then
    -- [elt for target in iter if cond], {elt for ...} (a set: each element once, first seen
    -- first), {key: elt for ...} (a dict); the target a name or a tuple of names; over
    -- d.items() the dict's pairs, over a dict its keys (sorted, as loops over dicts are)
    local t, it = e.target, e.iter
    local names = {}
    local targets = t.k == "tuple" and t.items or { t }
    for i, x in ipairs(targets) do
      if x.k ~= "name" then not_converted(e.line, "a comprehension over nested tuples") end
      names[i] = x.id
    end
    local head
    local scope = {}
    for _, n in ipairs(names) do scope[n] = true end
    local lnames = {}
    for i, n in ipairs(names) do lnames[i] = lua_name(n) end
    if it.k == "call" and it.fn.k == "attr" and it.fn.name == "items" and #it.args == 0 and #names == 2 then
      cx.helpers.items = true
      head = ("for %s, %s in py_items(%s) do "):format(lnames[1], lnames[2], expr(cx, it.fn.obj))
    elseif it.k == "name" and cx.kinds[it.id] == "dict" and #names == 1 then
      cx.helpers.items = true
      head = ("for %s in py_items(%s) do "):format(lnames[1], expr(cx, it))
    elseif #names == 1 then
      head = ("for _, %s in ipairs(%s) do "):format(lnames[1], expr(cx, it))
    else
      local idx = {}
      for i = 1, #names do idx[i] = "item_[" .. i .. "]" end
      head = ("for _, item_ in ipairs(%s) do local %s = %s "):format(expr(cx, it), table.concat(lnames, ", "),
        table.concat(idx, ", "))
    end
    cx.scopes[#cx.scopes + 1] = scope
    local elt = expr(cx, e.elt)
    local key = e.key and expr(cx, e.key)
    local test = e.cond and cond(cx, e.cond)
    cx.scopes[#cx.scopes] = nil
    -- out_, seen_, v_: names the translation's own (a Python target named r is common)
    local add = "out_[#out_ + 1] = " .. elt
    if key then
      add = "out_[" .. key .. "] = " .. elt
    elseif e.set then
      add = "local v_ = " .. elt .. " if not seen_[v_] then seen_[v_] = true out_[#out_ + 1] = v_ end"
    end
    if test then add = "if " .. test .. " then " .. add .. " end" end
    return ("(function() local out_%s = {}%s %s%s end return out_ end)()"):format(e.set and ", seen_" or "",
      e.set and ", {}" or "", head, add)
  elseif k == "starred" then
    not_converted(e.line, "*unpacking here")
  elseif k == "unsupported" then
    not_converted(e.line, e.what)
  end
  not_converted(e.line, "this expression")
end

-- ---- statements ---------------------------------------------------------------------

local block

local function emit(out, depth, text)
  local pad = ("  "):rep(depth)
  out[#out + 1] = pad .. text:gsub("\n", "\n" .. pad)
end

-- The source lines first..last as Lua comments, plus the error() that makes the revision
-- fail at this spot; the place is noted for the report.
local function not_converted_here(cx, out, depth, first, last, reason)
  local where = ("%s:%d"):format(cx.display, first)
  cx.notes[#cx.notes + 1] = { file = cx.display, line = first, reason = reason }
  emit(out, depth, "-- not converted (" .. reason .. "):")
  for l = first, last do emit(out, depth, "--   " .. (cx.lines[l] or "")) end
  emit(out, depth, ("error(%s)"):format(quoted(("not converted: %s: %s"):format(where, reason))))
end

-- Comments on the lines before a statement are carried over.
local function carry_comments(cx, out, depth, upto)
  for l = cx.comment_cursor, upto - 1 do
    local c = cx.comments[l]
    if c then emit(out, depth, "--" .. c) end
  end
  if upto > cx.comment_cursor then cx.comment_cursor = upto end
end

-- Names a function body assigns inside nested blocks: declared at its top, since a Lua
-- local made inside an if or for is gone after it.
local function nested_assigned(body)
  local names, order = {}, {}
  local function target(t)
    if t.k == "name" then
      if not names[t.id] then names[t.id] = true; order[#order + 1] = t.id end
    elseif t.k == "tuple" or t.k == "list" then
      for _, it in ipairs(t.items) do target(it) end
    end
  end
  local function walk(stmts, nested)
    for _, s in ipairs(stmts) do
      if nested and (s.k == "assign") then for _, t in ipairs(s.targets) do target(t) end end
      if nested and (s.k == "annassign" or s.k == "augassign") and s.value then target(s.target) end
      if s.k == "if" then
        for _, b in ipairs(s.bodies) do walk(b, true) end
        if s.orelse then walk(s.orelse, true) end
      elseif s.k == "for" or s.k == "with" or s.k == "while" then
        walk(s.body, true)
      elseif s.k == "try" then
        walk(s.body, true)
        if s.orelse then walk(s.orelse, true) end
      end
    end
  end
  walk(body, false)
  return order
end

local function assign_target(cx, t, line)
  if t.k == "name" then return lua_name(t.id) end
  if t.k == "attr" or t.k == "sub" then return expr(cx, t) end
  not_converted(line, "assignment to this target")
end

-- oslo.db's enginefacade.reader.get_engine() / writer's: the engine of the database the
-- migration runs on (OpenStack's migrations read its dialect from it).
local function is_oslo_engine(cx, v)
  if not (v.k == "call" and #v.args == 0 and #v.kwargs == 0 and v.fn.k == "attr" and v.fn.name == "get_engine") then
    return false
  end
  local o = v.fn.obj
  if o.k == "attr" and (o.name == "reader" or o.name == "writer") then o = o.obj end
  return o.k == "name" and not cx:declared(o.id) and cx.aliases[o.id] == "foreign:oslo_db.sqlalchemy.enginefacade"
end

local function assignment(cx, out, depth, s, target, value)
  local scope = cx.scopes[#cx.scopes]
  local names = {}
  local targets = target.k == "tuple" and target.items or { target }
  local fresh = true
  for i, t in ipairs(targets) do
    if t.k == "starred" then not_converted(s.line, "starred assignment") end
    names[i] = assign_target(cx, t, s.line)
    if t.k ~= "name" or cx:declared(t.id) then fresh = false end
  end
  local rhs
  if target.k == "tuple" then
    if value.k == "tuple" and #value.items == #targets then
      rhs = table.concat(args_list(cx, value.items, s.line), ", ")
    else
      rhs = "table.unpack(" .. expr(cx, value) .. ")"
    end
  elseif #targets == 1 and is_oslo_engine(cx, value) then
    rhs = "op.get_bind()" -- the migration's database, as the engine oslo.db gives is
  elseif #targets == 1 and is_db_url(cx, value) then
    rhs = '"postgresql://"' -- only its dialect is read (dialect_test); luamigrate has no engine URL
  else
    rhs = expr(cx, value)
  end
  -- remember what a name holds, for translations that depend on it
  for _, t in ipairs(targets) do
    if t.k == "name" then
      cx.binds[t.id] = nil
      if #targets == 1 then
        if (value.k == "call" and value.fn.k == "attr" and value.fn.name == "get_bind"
          and op_or_context(cx, value.fn)) or is_oslo_engine(cx, value) then
          cx.binds[t.id] = true
        end
        cx.kinds[t.id] = nil -- what it held before is gone
        if is_db_url(cx, value) then cx.kinds[t.id] = "dburl"
        elseif is_integer(cx, value) then cx.kinds[t.id] = "int"
        elseif is_numeric(cx, value) then cx.kinds[t.id] = "num"
        elseif is_stringish(cx, value) then cx.kinds[t.id] = "str"
        elseif value.k == "dict" or (value.k == "listcomp" and value.key) then cx.kinds[t.id] = "dict"
        elseif value.k == "listcomp" then cx.kinds[t.id] = "list"
        elseif is_result_read(cx, value) then cx.kinds[t.id] = "values"
        elseif value.k == "list" or value.k == "tuple" or value.k == "set" then cx.kinds[t.id] = "list" end
      end
    end
  end
  if fresh and not cx.module_level then
    for _, t in ipairs(targets) do scope[t.id] = true end
    emit(out, depth, "local " .. table.concat(names, ", ") .. " = " .. rhs)
  elseif fresh and cx.module_level and not cx.module_declared then
    for _, t in ipairs(targets) do scope[t.id] = true end
    emit(out, depth, "local " .. table.concat(names, ", ") .. " = " .. rhs)
  else
    emit(out, depth, table.concat(names, ", ") .. " = " .. rhs)
  end
end

local function params_text(cx, params, line)
  local names, defaults = {}, {}
  local scope = cx.scopes[#cx.scopes]
  local star = false
  for _, p in ipairs(params) do if p.kind == "*" then star = true end end
  for _, p in ipairs(params) do
    -- def wrapper(*args, **kwargs): Lua's ... carries both (the options table is the last
    -- value), so **kwargs is only ever passed on, with *args
    if p.kind == "**" and not star then not_converted(line, "**kwargs parameters without *args") end
    if p.kind == "**" then
      scope["\0dstar:" .. p.name] = true
    elseif p.kind == "*" then
      names[#names + 1] = "..."
      defaults[#defaults + 1] = "local " .. lua_name(p.name) .. " = { ... }"
    else
      names[#names + 1] = lua_name(p.name)
      if p.default then
        defaults[#defaults + 1] = ("if %s == nil then %s = %s end"):format(lua_name(p.name),
          lua_name(p.name), expr(cx, p.default))
      end
    end
    if p.kind ~= "**" then scope[p.name] = true end
  end
  return table.concat(names, ", "), defaults
end

local function is_call_to(cx, e, module, ...)
  if e.k ~= "call" then return false end
  local names = { ... }
  local fn = e.fn
  for i = #names, 1, -1 do
    if fn.k ~= "attr" or fn.name ~= names[i] then return false end
    fn = fn.obj
    if i > 1 and fn.k == "call" then fn = fn.fn end
  end
  return fn.k == "name" and cx.aliases[fn.id] == module and not cx:declared(fn.id)
end

local function with_statement(cx, out, depth, s)
  if #s.items ~= 1 then not_converted(s.line, "'with' over several items") end
  local item = s.items[1]
  local e = item.expr
  if is_call_to(cx, e, "op", "batch_alter_table") then
    if #e.args < 1 then not_converted(s.line, "op.batch_alter_table without a table name") end
    local b = { table = expr(cx, e.args[1]) }
    for _, kw in ipairs(e.kwargs) do
      if kw.name == "schema" and not (kw.value.k == "const" and kw.value.v == "None") then
        b.schema = expr(cx, kw.value)
      elseif kw.name == "recreate" and kw.value.k == "str" and kw.value.s == "always" then
        not_converted(s.line, "op.batch_alter_table(recreate=\"always\") copies the table")
      end
    end
    if e.args[2] then b.schema = expr(cx, e.args[2]) end
    local var = item.as and item.as.k == "name" and item.as.id
    if not var then not_converted(s.line, "op.batch_alter_table without 'as NAME'") end
    local saved = cx.batch[var]
    cx.batch[var] = b
    emit(out, depth, "-- batch_alter_table(" .. b.table:gsub("\1%d+\2", "...") .. "): on PostgreSQL, plain ALTERs")
    emit(out, depth, "do")
    block(cx, out, depth + 1, s.body, false)
    emit(out, depth, "end")
    cx.batch[var] = saved
    return
  end
  if is_call_to(cx, e, "op", "get_context", "autocommit_block") and #e.args == 0 then
    emit(out, depth, "op.autocommit_block(function()")
    cx.scopes[#cx.scopes + 1] = {}
    local saved = cx.autocommit
    cx.autocommit = true
    block(cx, out, depth + 1, s.body, false)
    cx.autocommit = saved
    cx.scopes[#cx.scopes] = nil
    emit(out, depth, "end)")
    return
  end
  not_converted(s.line, "this 'with' statement")
end

-- The exception classes a database error is raised as (SQLAlchemy's sqlalchemy.exc and the
-- DB-API's; oslo.db's DB... ones).
local DB_ERRORS = { DBAPIError = true, DatabaseError = true, ProgrammingError = true, OperationalError = true,
  IntegrityError = true, InternalError = true, DataError = true, NotSupportedError = true,
  SQLAlchemyError = true, InterfaceError = true }

local function is_db_error(e)
  if e.k == "tuple" then
    for _, it in ipairs(e.items) do if not is_db_error(it) then return false end end
    return #e.items > 0
  end
  local name = (e.k == "name" and e.id) or (e.k == "attr" and e.name)
  return name and (DB_ERRORS[name] or name:match("^DB%u") ~= nil) or false
end

-- try: body except <database error>: ... On PostgreSQL the migration runs in one transaction
-- that a database error aborts: no statement after it can run, so what Alembic's handler
-- does on PostgreSQL ends in a failed migration too. luamigrate lets the error stop the
-- migration (rolled back) and leaves the handlers out; other exceptions, and try outside a
-- transaction (autocommit blocks), are not converted.
local function try_statement(cx, out, depth, s)
  if cx.autocommit then not_converted(s.line, "'try' inside an autocommit block") end
  if s.finalbody then not_converted(s.line, "'try' with 'finally'") end
  for _, h in ipairs(s.handlers) do
    if not (h.type and is_db_error(h.type)) then
      not_converted(h.line, "'except' of an error other than a database error")
    end
  end
  local lines = {}
  for i, h in ipairs(s.handlers) do lines[i] = tostring(h.line) end
  emit(out, depth, "-- try: on PostgreSQL a database error aborts the transaction and stops the migration;"
    .. " the except clause at line " .. table.concat(lines, ", ") .. " is left out")
  emit(out, depth, "do")
  cx.scopes[#cx.scopes + 1] = {}
  block(cx, out, depth + 1, s.body, false)
  if s.orelse then block(cx, out, depth + 1, s.orelse, false) end
  cx.scopes[#cx.scopes] = nil
  emit(out, depth, "end")
end

-- A loop's body; Python's continue is a goto to its end (a label there is outside every
-- local's scope).
local function loop_body(cx, out, depth, body)
  cx.loops = cx.loops or {}
  local loop = {}
  cx.loops[#cx.loops + 1] = loop
  block(cx, out, depth + 1, body, false)
  cx.loops[#cx.loops] = nil
  if loop.continued then emit(out, depth + 1, "::continue::") end
end

-- A result's values (bind.execute(...).scalars(), .scalars().all(), .fetchall(), or a name
-- given one), which hold a NULL as nil: a loop over one goes through py_iter.
local RESULT_READS = { scalars = true, all = true, fetchall = true, fetchmany = true }
function is_result_read(cx, e)
  if e.k == "name" then return cx.kinds[e.id] == "values" end
  return e.k == "call" and e.fn.k == "attr" and RESULT_READS[e.fn.name] == true and not root_module(cx, e.fn)
end

local function for_statement(cx, out, depth, s)
  local t, it = s.target, s.iter
  local scope = {}
  cx.scopes[#cx.scopes + 1] = scope
  local head
  local unpack_line
  local function tname(x)
    if x.k ~= "name" then not_converted(s.line, "this loop target") end
    scope[x.id] = true
    return lua_name(x.id)
  end
  if it.k == "call" and it.fn.k == "name" and it.fn.id == "range" and not cx:declared("range") then
    local a = it.args
    local lo, hi, step = "0", a[1], nil
    if #a > 1 then lo, hi, step = expr(cx, a[1]), a[2], a[3] end
    local hi_text = wrap(expr(cx, hi)) .. " - 1"
    if t.k == "name" then cx.kinds[t.id] = "int" end -- range() gives integers only
    if step then
      if step.k == "unop" and step.op == "-" then hi_text = wrap(expr(cx, hi)) .. " + 1" end
      head = ("for %s = %s, %s, %s do"):format(tname(t), lo, hi_text, expr(cx, step))
    else
      head = ("for %s = %s, %s do"):format(tname(t), lo, hi_text)
    end
  elseif it.k == "call" and it.fn.k == "attr" and #it.args == 0 and #it.kwargs == 0
    and (it.fn.name == "items" or it.fn.name == "keys" or it.fn.name == "values") then
    local obj = expr(cx, it.fn.obj)
    cx.helpers.items = true
    if it.fn.name == "items" then
      if t.k ~= "tuple" or #t.items ~= 2 then not_converted(s.line, "this loop over .items()") end
      head = ("for %s, %s in py_items(%s) do"):format(tname(t.items[1]), tname(t.items[2]), obj)
    elseif it.fn.name == "keys" then
      head = ("for %s in py_items(%s) do"):format(tname(t), obj)
    else
      head = ("for _, %s in py_items(%s) do"):format(tname(t), obj)
    end
  elseif it.k == "call" and it.fn.k == "name" and it.fn.id == "enumerate" and not cx:declared("enumerate") then
    if t.k ~= "tuple" or #t.items ~= 2 or #it.args ~= 1 then not_converted(s.line, "this enumerate()") end
    local i = tname(t.items[1])
    head = ("for %s_, %s in ipairs(%s) do"):format(i, tname(t.items[2]), expr(cx, it.args[1]))
    unpack_line = ("local %s = %s_ - 1"):format(i, i)
  else
    local src = expr(cx, it)
    if it.k == "name" and cx.kinds[it.id] == "dict" then
      cx.helpers.items = true
      head = ("for %s in py_items(%s) do"):format(tname(t), src)
    elseif t.k == "tuple" then
      local names = {}
      for i, x in ipairs(t.items) do names[i] = tname(x) end
      head = ("for _, item_ in ipairs(%s) do"):format(src)
      local idx = {}
      for i = 1, #names do idx[i] = "item_[" .. i .. "]" end
      unpack_line = "local " .. table.concat(names, ", ") .. " = " .. table.concat(idx, ", ")
    elseif is_result_read(cx, it) then
      cx.helpers.iter = true
      head = ("for _, %s in py_iter(%s) do"):format(tname(t), src)
    else
      head = ("for _, %s in ipairs(%s) do"):format(tname(t), src)
      -- over a literal list of strings, the target is a string (`"DROP %s" % name` formats plainly)
      local all_str = (it.k == "list" or it.k == "tuple" or it.k == "set") and #it.items > 0
      for _, x in ipairs(all_str and it.items or {}) do if x.k ~= "str" then all_str = false end end
      cx.kinds[t.id] = all_str and "str" or nil
    end
  end
  emit(out, depth, head)
  if unpack_line then emit(out, depth + 1, unpack_line) end
  loop_body(cx, out, depth, s.body)
  emit(out, depth, "end")
  cx.scopes[#cx.scopes] = nil
end

local function def_statement(cx, out, depth, s, global)
  cx.scopes[#cx.scopes + 1] = {}
  local saved_module = cx.module_level
  cx.module_level = false
  local head
  local ok, err = pcall(function()
    local params, defaults = params_text(cx, s.params, s.line)
    if global then
      head = "function " .. lua_name(s.name) .. "(" .. params .. ")"
    elseif cx.module_level_def then
      head = "function " .. lua_name(s.name) .. "(" .. params .. ")"
    else
      head = "local function " .. lua_name(s.name) .. "(" .. params .. ")"
    end
    return defaults
  end)
  if not ok then
    cx.scopes[#cx.scopes] = nil
    cx.module_level = saved_module
    error(err, 0)
  end
  local defaults = err
  emit(out, depth, head)
  for _, d in ipairs(defaults) do emit(out, depth + 1, d) end
  if s.name == "upgrade" or s.name == "downgrade" then
    for _, note in ipairs(cx.module_notes or {}) do
      emit(out, depth + 1, ("error(%s)"):format(quoted(("not converted: %s:%d: %s"):format(note.file,
        note.line, note.reason))))
    end
  end
  local pre = nested_assigned(s.body)
  local declared = {}
  for _, n in ipairs(pre) do
    if not cx:declared(n) then declared[#declared + 1] = lua_name(n); cx.scopes[#cx.scopes][n] = true end
  end
  if #declared > 0 then emit(out, depth + 1, "local " .. table.concat(declared, ", ")) end
  local saved_def = cx.module_level_def
  cx.module_level_def = false
  block(cx, out, depth + 1, s.body, true)
  carry_comments(cx, out, depth + 1, s.last + 1)
  cx.module_level_def = saved_def
  emit(out, depth, "end")
  cx.scopes[#cx.scopes] = nil
  cx.module_level = saved_module
end

function imports(cx, s)
  if s.k == "import" then
    for _, n in ipairs(s.names) do
      local bound = n.as or n.name:match("^[^.]+")
      cx.typerefs[bound], cx.why[bound] = nil, nil
      if cx.pending then cx.pending[bound] = nil end
      local lib, libname = library_of(n.name)
      if n.name == "sqlalchemy" and (n.as or true) then cx.aliases[bound] = "sa"
      elseif SA_MODULES[n.name] and n.as then cx.aliases[bound] = "sa"
      elseif PG_MODULES[n.name] and n.as then cx.aliases[bound] = "postgresql"
      elseif MYSQL_MODULES[n.name] and n.as then cx.aliases[bound] = "mysql"
      elseif n.name == "alembic.op" and n.as then cx.aliases[bound] = "op"
      elseif n.name == "logging" then cx.aliases[bound] = "py_logging"
      elseif n.name == "os" and not n.as then cx.aliases[bound] = "py_os"
      elseif n.name == "json" and not n.as then cx.aliases[bound] = "py_json"
      elseif n.name == "json" then cx.aliases[bound] = "py.json"
      elseif PY_MODULES[n.name] then cx.aliases[bound] = "py." .. n.name
      elseif IGNORED_MODULES[n.name] then cx.aliases[bound] = nil
      else
        cx.aliases[bound] = "foreign:" .. n.name
        if lib and (n.as or not n.name:find(".", 1, true)) then
          cx.typerefs[bound] = library_module(lib, libname)
        elseif not lib and cx.resolver then
          -- `import myapp` (or `import myapp.types`, which binds myapp too): the application's
          -- package, whose attributes are looked up when used, as autogenerate writes a custom
          -- type (`myapp.types.JSONDict()`)
          local mod, res = n.as and n.name or bound, cx.resolver
          if module_file(res, mod) then
            cx.typerefs[bound] = { label = mod, member = function(name) return lookup(res, mod, name, 1) end }
          end
        end
      end
    end
    return
  end
  local mod = s.module
  for _, n in ipairs(s.names) do
    local bound = n.as or n.name
    cx.typerefs[bound], cx.why[bound] = nil, nil
    if cx.pending then cx.pending[bound] = nil end
    if n.name == "*" then
      if not (mod == "alembic" or IGNORED_MODULES[mod]) then
        not_converted(s.line, "'from %s import *'", mod)
      end
    elseif mod == "alembic" and n.name == "op" then cx.aliases[bound] = "op"
    elseif mod == "alembic" and n.name == "context" then cx.aliases[bound] = "alembic_context"
    elseif mod == "sqlalchemy.dialects" and n.name == "postgresql" then cx.aliases[bound] = "postgresql"
    elseif PG_MODULES[mod] then cx.aliases[bound] = "postgresql." .. n.name
    elseif mod == "sqlalchemy.dialects" and n.name == "mysql" then cx.aliases[bound] = "mysql"
    elseif MYSQL_MODULES[mod] then cx.aliases[bound] = "mysql." .. n.name
    -- from sqlalchemy import types: its names are sa's
    elseif SA_MODULES[mod] and SA_MODULES[mod .. "." .. n.name] then cx.aliases[bound] = "sa"
    elseif SA_MODULES[mod] then cx.aliases[bound] = "sa." .. n.name
    elseif mod == "alembic_postgresql_enum" then
      cx.aliases[bound] = SYNC_ENUM_NAMES[n.name] and ("sync_enum." .. n.name) or ("foreign:" .. mod .. "." .. n.name)
    elseif IGNORED_MODULES[mod] then cx.aliases[bound] = nil
    elseif mod == "json" and n.name == "dumps" then cx.aliases[bound] = "py_json.dumps"
    elseif PY_MODULES[mod] and PY_MODULES[mod][n.name] then cx.aliases[bound] = "py." .. mod .. "." .. n.name
    else
      cx.aliases[bound] = "foreign:" .. (mod .. "." .. n.name)
      local r, why, pending = resolve_import(cx, mod, n.name)
      if pending then
        cx.pending = cx.pending or {}
        cx.pending[bound] = pending
      elseif r then
        cx.typerefs[bound] = r
      elseif why then
        cx.why[bound] = why
      elseif n.name == "db" and not mod:match("^flask") then
        -- the application's module is not in the tree: Flask-SQLAlchemy's db by its name,
        -- taken only for SQLAlchemy's own attributes
        cx.typerefs[bound] = { flaskdb = "unverified" }
      end
    end
  end
end

local function statement(cx, out, depth, s, is_last)
  local k = s.k
  if k == "import" or k == "from" then
    imports(cx, s)
  elseif k == "pass" then
    return
  elseif k == "expr" then
    local e = s.e
    if e.k == "str" then
      for l in (e.s .. "\n"):gmatch("([^\n]*)\n") do emit(out, depth, ("-- " .. l):gsub("%s+$", "")) end
      return
    end
    if e.k == "const" and e.v == "Ellipsis" then return end
    if e.k ~= "call" then not_converted(s.line, "an expression statement that is not a call") end
    cx.discarded = e
    emit(out, depth, expr(cx, e))
  elseif k == "assign" then
    if #s.targets > 1 then not_converted(s.line, "chained assignment") end
    assignment(cx, out, depth, s, s.targets[1], s.value)
  elseif k == "annassign" then
    if s.value then assignment(cx, out, depth, s, s.target, s.value) end
  elseif k == "augassign" then
    local t = assign_target(cx, s.target, s.line)
    local e = { k = "binop", op = s.op, l = s.target, r = s.value, line = s.line }
    emit(out, depth, t .. " = " .. binop(cx, e))
    -- n /= 2 leaves a float where an integer was
    if s.target.k == "name" and cx.kinds[s.target.id] == "int" and not is_integer(cx, e) then
      cx.kinds[s.target.id] = "num"
    end
  elseif k == "return" then
    local v = ""
    if s.value then
      if s.value.k == "tuple" then v = " " .. table.concat(args_list(cx, s.value.items, s.line), ", ")
      else v = " " .. expr(cx, s.value) end
    end
    emit(out, depth, is_last and ("return" .. v) or ("do return" .. v .. " end"))
  elseif k == "if" then
    -- branches on the dialect: only the one PostgreSQL takes is kept
    local tests, bodies, orelse = {}, {}, s.orelse
    for i, t in ipairs(s.tests) do
      local v = dialect_test(cx, t)
      if v == true then orelse = s.bodies[i]; break end
      if v == nil then
        tests[#tests + 1] = cond(cx, t)
        bodies[#bodies + 1] = s.bodies[i]
      end
    end
    if #tests == 0 then
      if orelse then
        emit(out, depth, "do")
        cx.scopes[#cx.scopes + 1] = {}
        block(cx, out, depth + 1, orelse, false)
        cx.scopes[#cx.scopes] = nil
        emit(out, depth, "end")
      end
      return
    end
    for i, body in ipairs(bodies) do
      emit(out, depth, (i == 1 and "if " or "elseif ") .. tests[i] .. " then")
      cx.scopes[#cx.scopes + 1] = {}
      block(cx, out, depth + 1, body, false)
      cx.scopes[#cx.scopes] = nil
    end
    if orelse then
      emit(out, depth, "else")
      cx.scopes[#cx.scopes + 1] = {}
      block(cx, out, depth + 1, orelse, false)
      cx.scopes[#cx.scopes] = nil
    end
    emit(out, depth, "end")
  elseif k == "for" then
    for_statement(cx, out, depth, s)
  elseif k == "while" then
    if s.orelse then not_converted(s.line, "while ... else") end
    emit(out, depth, "while " .. cond(cx, s.test) .. " do")
    cx.scopes[#cx.scopes + 1] = {}
    loop_body(cx, out, depth, s.body)
    cx.scopes[#cx.scopes] = nil
    emit(out, depth, "end")
  elseif k == "class" then
    not_converted(s.line, "'class' statements")
  elseif k == "try" then
    try_statement(cx, out, depth, s)
  elseif k == "with" then
    with_statement(cx, out, depth, s)
  elseif k == "def" then
    -- @deco def f(): f = deco(f), the decorator nearest the def first; functools.wraps only
    -- copies the name and docstring
    local wrappers = {}
    for _, d in ipairs(s.decorators or {}) do
      local wraps = d.k == "call" and ((d.fn.k == "name" and cx.aliases[d.fn.id] == "foreign:functools.wraps")
        or (d.fn.k == "attr" and d.fn.name == "wraps" and d.fn.obj.k == "name"
          and cx.aliases[d.fn.obj.id] == "foreign:functools"))
      if not wraps then
        if d.k ~= "name" or not (cx:declared(d.id) or cx.module_names[d.id]) then
          not_converted(s.line, "a function decorated with something other than a function of this file")
        end
        table.insert(wrappers, 1, lua_name(d.id))
      end
    end
    local name = lua_name(s.name)
    if not cx:declared(s.name) and not cx.module_level then
      cx.scopes[#cx.scopes][s.name] = true
      def_statement(cx, out, depth, s, false)
    else
      def_statement(cx, out, depth, s, cx.module_level and (s.name == "upgrade" or s.name == "downgrade"))
    end
    for _, w in ipairs(wrappers) do emit(out, depth, ("%s = %s(%s)"):format(name, w, name)) end
  elseif k == "break" then
    emit(out, depth, "break")
  elseif k == "continue" then
    local loop = cx.loops and cx.loops[#cx.loops]
    if not loop then not_converted(s.line, "'continue' outside a loop") end
    loop.continued = true
    emit(out, depth, "goto continue")
  elseif k == "raise" then
    local v = s.value
    if v and v.k == "call" and #v.args == 1 and #v.kwargs == 0 then
      emit(out, depth, "error(" .. expr(cx, v.args[1]) .. ", 0)")
    else
      emit(out, depth, ("error(%s, 0)"):format(quoted(("raised at %s:%d"):format(cx.display, s.line))))
    end
  elseif k == "assert" then
    -- the message is evaluated only when the test fails, as Python's
    local msg = s.msg and ('"AssertionError: " .. ' .. py_call(cx, "str", expr(cx, s.msg)))
      or quoted(("AssertionError at %s:%d"):format(cx.display, s.line))
    emit(out, depth, "if not " .. wrap(cond(cx, s.test)) .. " then error(" .. msg .. ", 0) end")
  elseif k == "unsupported" then
    not_converted(s.line, "'" .. s.keyword .. "' statements")
  else
    not_converted(s.line, "'" .. k .. "' statements")
  end
end

-- Translates stmts; each statement that cannot be translated becomes its commented source
-- and an error() (inside functions) or a note raised in upgrade/downgrade (module level).
function block(cx, out, depth, stmts, function_body)
  for i, s in ipairs(stmts) do
    carry_comments(cx, out, depth, s.line)
    local buf = {}
    local saved = {}
    for j, sc in ipairs(cx.scopes) do
      saved[j] = {}
      for name in pairs(sc) do saved[j][name] = true end
    end
    local ok, err = pcall(statement, cx, buf, depth, s, function_body and i == #stmts)
    if ok then
      for _, l in ipairs(buf) do out[#out + 1] = l end
      if s.k ~= "def" and s.k ~= "import" and s.k ~= "from" then cx.converted = cx.converted + 1 end
    elseif getmetatable(err) == NC then
      for j in ipairs(cx.scopes) do cx.scopes[j] = saved[j] end
      if cx.module_level then
        cx.module_notes[#cx.module_notes + 1] = { file = cx.display, line = s.line, reason = err.reason }
        local where = ("%s:%d"):format(cx.display, s.line)
        cx.notes[#cx.notes + 1] = { file = cx.display, line = s.line, reason = err.reason }
        emit(out, depth, "-- not converted (" .. err.reason .. "; upgrade() and downgrade() raise): " .. where)
        for l = s.line, s.last do emit(out, depth, "--   " .. (cx.lines[l] or "")) end
      else
        not_converted_here(cx, out, depth, s.line, s.last, err.reason)
      end
      cx.failed = cx.failed + 1
    else
      error(err, 0)
    end
    if s.last + 1 > cx.comment_cursor then cx.comment_cursor = s.last + 1 end
  end
end

-- ---- one revision file ----------------------------------------------------------------

local META = { revision = true, down_revision = true, branch_labels = true, depends_on = true }

-- A metadata value: nil, a string, or a list of strings (tuple, list or set), else an error.
local function meta_value(display, name, e)
  if e.k == "const" and e.v == "None" then return nil end
  if e.k == "str" then return e.s end
  if e.k == "tuple" or e.k == "list" or e.k == "set" then
    local out = {}
    for i, it in ipairs(e.items) do
      if it.k ~= "str" then
        error(("%s:%d: %s must be a string, None or a tuple of strings"):format(display, e.line, name), 0)
      end
      out[i] = it.s
    end
    return out
  end
  error(("%s:%d: %s must be a string, None or a tuple of strings (found an expression)"):format(display,
    e.line, name), 0)
end

-- The docstring's message and Create Date (Alembic's layout: message, blank line,
-- Revision ID / Revises / Create Date).
local function docstring(doc)
  if not doc then return "", nil end
  local message = doc:match("^(.-)\n%s*Revision ID:") or doc
  message = message:gsub("^%s+", ""):gsub("%s+$", "")
  local date = doc:match("Create Date:[ \t]*([^\n]*)")
  return message, date and date:gsub("%s+$", "") or nil
end

local HELPERS = {
  bool = [[
-- Python's bool(x): None, False, zero, "" and an empty list or dict are false.
local function py_bool(v)
  if v == nil or v == false or v == 0 or v == "" then return false end
  if type(v) == "table" and next(v) == nil then
    -- an empty list or dict; a result's values list (luamigrate.List) counts its NULLs
    local mt = getmetatable(v)
    if mt == nil or (mt.__name == "luamigrate.List" and #v == 0) then return false end
  end
  return true
end
]],
  py = [[
-- Python's datetime, uuid and json, and its str(), repr(), % and arithmetic where they
-- differ from Lua's (py.str, py.mod, py.mul, ...), as the migration uses them.
local py = require "luamigrate.py"
]],
  dict = [[
-- Python's dict(x) of a result's row (its columns), a dict, or a list of pairs: a new dict.
local function py_dict(x)
  if getmetatable(x) and getmetatable(x).__name == "luamigrate.Row" then return x._mapping end
  local r = {}
  if #x > 0 and type(x[1]) == "table" then
    for _, p in ipairs(x) do
      local k, v = p[1], p[2]
      r[k] = v
    end
    return r
  end
  for k, v in pairs(x) do r[k] = v end
  return r
end
]],
  list = [==[
-- Python's list(x), set(x), any, all, min, max and sum over what a migration iterates: a
-- list, a result's rows, a dict's keys (sorted: a Lua table keeps no order), a string's
-- characters.
local function py_list(x)
  if type(x) == "string" then
    local r = {}
    for ch in x:gmatch(utf8.charpattern) do r[#r + 1] = ch end
    return r
  end
  local mt = getmetatable(x)
  if mt and mt.__name == "luamigrate.Result" then return x:fetchall() end
  if mt and mt.__name == "luamigrate.Row" then return { table.unpack(x) } end
  if mt and mt.__name == "luamigrate.List" then return py.list(table.move(x, 1, #x, 1, {}), #x) end
  if next(x) ~= nil and #x == 0 then
    local keys = {}
    for k in pairs(x) do keys[#keys + 1] = k end
    table.sort(keys, function(a, b) return tostring(a) < tostring(b) end)
    return keys
  end
  return table.move(x, 1, #x, 1, {})
end
local function py_set(x)
  local r, seen = {}, {}
  for _, v in ipairs(py_list(x)) do
    if not seen[v] then seen[v] = true; r[#r + 1] = v end
  end
  return r
end
local function py_any(x)
  for _, v in ipairs(py_list(x)) do if py_bool(v) then return true end end
  return false
end
local function py_all(x)
  for _, v in ipairs(py_list(x)) do if not py_bool(v) then return false end end
  return true
end
local function py_pick(better, ...)
  local xs = select("#", ...) == 1 and py_list((...)) or { ... }
  if #xs == 0 then error("ValueError: arg is an empty sequence", 3) end
  local best = xs[1]
  for i = 2, #xs do if better(xs[i], best) then best = xs[i] end end
  return best
end
local function py_min(...) return py_pick(function(a, b) return a < b end, ...) end
local function py_max(...) return py_pick(function(a, b) return a > b end, ...) end
local function py_sum(x)
  local s = 0
  for _, v in ipairs(py_list(x)) do s = s + v end
  return s
end
]==],
  iter = [[
-- Python's for over a result or the list of its values: every value up to its length (#),
-- a NULL (nil) included, where ipairs would stop at the first nil.
local function py_iter(t)
  local i, n = 0, #t
  return function()
    if i < n then
      i = i + 1
      return i, t[i]
    end
  end
end
]],
  sorted = [[
-- Python's sorted(list): a sorted copy.
local function py_sorted(t)
  local r = table.move(t, 1, #t, 1, {})
  table.sort(r)
  return r
end
]],
  get = [[
-- Python's d.get(key, default): a dict's value or the default; an object's own get method.
local function py_get(d, key, default)
  if type(d) == "table" and getmetatable(d) == nil then
    local v = d[key]
    if v == nil then return default end
    return v
  end
  return d:get(key, default)
end
]],
  extend = [[
-- Python's list.extend(values): the values appended in order.
local function py_extend(t, values)
  table.move(values, 1, #values, #t + 1, t)
end
]],
  add = [[
-- Python's a + b: strings and lists concatenate, numbers (and SQL expressions) add.
local function py_add(a, b)
  local ta, tb = type(a), type(b)
  if ta == "string" and tb == "string" then return a .. b end
  if ta == "table" and tb == "table" and getmetatable(a) == nil and getmetatable(b) == nil then
    return py_concat(a, b)
  end
  if ta == "string" or tb == "string" then
    error(("TypeError: unsupported operand type(s) for +: %s and %s"):format(ta, tb), 2)
  end
  return a + b
end
]],
  bool_or = [[
-- Python's `a or b`: a when it is true (py_bool), else b.
local function py_or(a, b)
  if py_bool(a) then return a end
  return b
end
]],
  bool_and = [[
-- Python's `a and b`: a when it is false (py_bool), else b.
local function py_and(a, b)
  if not py_bool(a) then return a end
  return b
end
]],
  next = [[
-- Python's next(iter(x)[, default]): x's first element (py_list), or default; without one,
-- StopIteration when x is empty.
local function py_next(x, ...)
  local first = py_list(x)[1]
  if first == nil then
    if select("#", ...) == 0 then error("StopIteration: next() of an empty iterator", 2) end
    return (...)
  end
  return first
end
]],
  sync_enum = [[
local sync_enum = require "luamigrate.helpers.sync_enum"
]],
  str = [[
-- Python's str methods a migration calls (s.startswith(p), s.strip(), ...): on a string,
-- Python's meaning; on anything else, that object's own method of the name.
local py_str
do
  local function strip_set(chars) return chars and ("[" .. chars:gsub("[%]%^%-%%]", "%%%0") .. "]") or "%s" end
  local M = {
    startswith = function(s, p) return s:sub(1, #p) == p end,
    endswith = function(s, p) return #p == 0 or s:sub(-#p) == p end,
    lower = string.lower,
    upper = string.upper,
    strip = function(s, c) local k = strip_set(c); return (s:gsub("^" .. k .. "+", ""):gsub(k .. "+$", "")) end,
    lstrip = function(s, c) return (s:gsub("^" .. strip_set(c) .. "+", "")) end,
    rstrip = function(s, c) return (s:gsub(strip_set(c) .. "+$", "")) end,
    replace = function(s, a, b) return (s:gsub(a:gsub("%p", "%%%0"), (b:gsub("%%", "%%%%")))) end,
  }
  function py_str(s, name, ...)
    if type(s) == "string" then return M[name](s, ...) end
    return s[name](s, ...)
  end
end
]],
  logging = [[
-- Python's logging as migrations use it: a logger's warnings and errors go to stderr (as
-- with Alembic's default logging configuration), %-formatted as Python's; debug and info
-- are dropped.
local py_logging = {}
do
  local Logger = {}
  Logger.__index = Logger
  local shown = { warning = true, warn = true, error = true, exception = true, critical = true }
  for _, level in ipairs { "debug", "info", "warning", "warn", "error", "exception", "critical" } do
    Logger[level] = function(self, msg, ...)
      if not shown[level] then return end
      local text = select("#", ...) > 0 and py.mod(py.str(msg), { ... }) or py.str(msg)
      io.stderr:write(("%s [%s] %s\n"):format(level:upper(), self.name, text))
    end
    py_logging[level] = function(...) return Logger[level]({ name = "root" }, ...) end
  end
  function py_logging.getLogger(name) return setmetatable({ name = name or "root" }, Logger) end
end
]],
  items = [[
-- A dict's keys and values, in the order of the sorted keys: a Lua table keeps no order,
-- and pairs() would give a different one on every run (and a different --sql script).
local function py_items(t)
  local keys = {}
  for k in pairs(t) do keys[#keys + 1] = k end
  table.sort(keys, function(a, b) return tostring(a) < tostring(b) end)
  local i = 0
  return function()
    i = i + 1
    local k = keys[i]
    if k ~= nil then return k, t[k] end
  end
end
]],
  contains = [[
-- Python's `x in c`: a substring of a string, an element of a list, a key of a dict.
local function py_contains(c, x)
  if type(c) == "string" then return c:find(x, 1, true) ~= nil end
  for _, v in ipairs(c) do
    if v == x then return true end
  end
  return c[x] ~= nil
end
]],
  unpack = [[
-- Python's f(*values, key=...): the values, then the options table.
local function py_unpack(values, options)
  local r = table.move(values, 1, #values, 1, {})
  r[#r + 1] = options
  return table.unpack(r, 1, #r)
end
]],
  concat = [[
-- Python's list concatenation ([*a, b], a + b): the elements of each list in turn.
local function py_concat(...)
  local r = {}
  for i = 1, select("#", ...) do
    for _, v in ipairs((select(i, ...))) do r[#r + 1] = v end
  end
  return r
end
]],
}

local function r_name(path) return (path:match("([^/]+)$")) end

-- Returns { revision, down_revision, branch_labels, depends_on, message, text, notes,
-- converted, failed } or raises "file:line: message" for a file that is no revision.
-- `resolver` (M.new_resolver): where the application's modules are found, if anywhere.
function M.revision(src, display, resolver)
  local mod, perr = python.parse(src, display)
  if not mod then error(perr, 0) end
  local cx = new_cx(display, src)
  cx.display = display
  cx.resolver = resolver
  cx.module_name = r_name(display):gsub("%.py$", "")
  cx.comments = mod.comments
  cx.comment_cursor = 1
  cx.module_notes = {}
  cx.failed = 0
  local meta, doc = {}, nil
  local body = {}
  for i, s in ipairs(mod.body) do
    if i == 1 and s.k == "expr" and s.e.k == "str" then
      doc = s.e.s
      cx.comment_cursor = s.last + 1
    elseif (s.k == "assign" and #s.targets == 1 and s.targets[1].k == "name" and META[s.targets[1].id])
      or (s.k == "annassign" and s.target.k == "name" and META[s.target.id] and s.value) then
      local name = s.k == "assign" and s.targets[1].id or s.target.id
      meta[name] = { value = meta_value(display, name, s.value) }
      s.skip = true
      body[#body + 1] = s
    else
      body[#body + 1] = s
    end
  end
  if not meta.revision or type(meta.revision.value) ~= "string" then
    error(("%s:1: no revision = \"...\" assignment: this is not an Alembic revision file"):format(display), 0)
  end
  local message, date = docstring(doc)
  -- module-level names: helpers and constants, visible to every function
  cx.module_names = {}
  local module_scope = {}
  cx.scopes = { module_scope }
  for _, s in ipairs(body) do
    if s.k == "def" and s.name ~= "upgrade" and s.name ~= "downgrade" then cx.module_names[s.name] = true end
  end
  local out = {}
  local defs = {}
  for name in pairs(cx.module_names) do defs[#defs + 1] = lua_name(name); module_scope[name] = true end
  table.sort(defs)
  local has = {}
  cx.module_level = true
  cx.module_level_def = true
  for _, s in ipairs(body) do
    if s.k == "def" then has[s.name] = true end
    if s.skip then
      if s.last + 1 > cx.comment_cursor then cx.comment_cursor = s.last + 1 end
    else
      block(cx, out, 0, { s }, false)
      if s.k ~= "def" then out[#out + 1] = "" end
    end
    if s.k == "def" then out[#out + 1] = "" end
  end
  carry_comments(cx, out, 0, #cx.lines + 1)
  -- A revision without one of them is not a translation problem: Alembic fails when it
  -- would call the missing function, and so does the converted file, at the same step.
  for _, fn in ipairs { "upgrade", "downgrade" } do
    if not has[fn] then
      out[#out + 1] = ("function %s()"):format(fn)
      out[#out + 1] = ("  error(%s, 0)"):format(quoted(("%s has no %s() (nor had the Alembic revision)")
        :format(r_name(display), fn)))
      out[#out + 1] = "end"
      out[#out + 1] = ""
    end
  end
  -- collapse runs of blank lines
  local code = table.concat(out, "\n"):gsub("\n\n\n+", "\n\n"):gsub("^\n+", ""):gsub("\n+$", "") .. "\n"
  code = code:gsub("\1(%d+)\2", function(n) return cx.strings[tonumber(n)] end)
  local prelude = {}
  if #defs > 0 then prelude[#prelude + 1] = "local " .. table.concat(defs, ", ") .. "\n" end
  local used = {}
  if cx.helpers.list then cx.helpers.py = true end -- py_list copies a result's list with py.list
  for name in pairs(cx.helpers) do used[#used + 1] = name end
  -- the same file on every run; py, py_bool and py_concat first, as other helpers use them
  local first = { py = 1, bool = 2, concat = 3 }
  table.sort(used, function(a, b)
    local ra, rb = first[a] or 4, first[b] or 4
    if ra ~= rb then return ra < rb end
    return a < b
  end)
  for _, name in ipairs(used) do prelude[#prelude + 1] = HELPERS[name] end
  local function v(name) return meta[name] and meta[name].value end
  local labels = v("branch_labels")
  if type(labels) == "string" then labels = { labels } end
  local header = template.render({
    message = message, revision = v("revision"), down_revision = v("down_revision"),
    branch_labels = labels, depends_on = v("depends_on"), create_date = date or "",
    upgrades = "", downgrades = "",
  })
  header = header:match("^(.-)\nfunction upgrade%(%)") or header
  local text = header .. "\n" .. (#prelude > 0 and (table.concat(prelude, "\n") .. "\n") or "") .. code
  return {
    revision = v("revision"), down_revision = v("down_revision"), branch_labels = labels,
    depends_on = v("depends_on"), message = message, text = text, notes = cx.notes,
    converted = cx.converted, failed = cx.failed,
  }
end

-- ---- the project ------------------------------------------------------------------------

local function slurp(path)
  local f, err = io.open(path, "rb")
  if not f then return nil, err end
  local s = f:read("a")
  f:close()
  return s
end

local function exists(path)
  local f = io.open(path, "rb")
  if f then f:close() return true end
  return false
end

local function is_dir(path)
  local ok, lfs = pcall(require, "lfs")
  if ok then return lfs.attributes(path, "mode") == "directory" end
  return exists(path .. "/.")
end

local function dirname(path)
  local d = path:match("^(.*)/[^/]*$")
  if d == nil then return "." end
  if d == "" then return "/" end
  return d
end

local function join(a, b)
  if b:sub(1, 1) == "/" then return b end
  if a == "." then return b end
  return a .. "/" .. b
end

-- INI as Python's configparser reads alembic.ini: sections, key = value or key: value,
-- continuation lines indented, # and ; comments; %(here)s interpolated.
function M.read_ini(text, here)
  local sections, cur, lastkey = {}, nil, nil
  for line in (text .. "\n"):gmatch("([^\n]*)\n") do
    line = line:gsub("\r$", "")
    if line:match("^%s*[#;]") or line:match("^%s*$") then
      lastkey = line:match("^%s*$") and lastkey or lastkey
    elseif line:match("^%[") then
      local name = line:match("^%[([^%]]+)%]")
      cur = {}
      sections[name] = cur
      lastkey = nil
    elseif line:match("^%s") and cur and lastkey then
      cur[lastkey] = cur[lastkey] .. "\n" .. line:gsub("^%s+", "")
    elseif cur then
      local k, v = line:match("^([^=:]-)%s*[=:]%s*(.*)$")
      if k then
        k = k:lower()
        cur[k] = v
        lastkey = k
      end
    end
  end
  for _, sec in pairs(sections) do
    for k, v in pairs(sec) do
      sec[k] = v:gsub("%%%(here%)s", here):gsub("%%%%", "%%")
    end
  end
  return sections
end

-- The [tool.alembic] table of a pyproject.toml: string and string-array values.
function M.read_pyproject(text, here)
  local out, inside = nil, false
  local pending_key, pending = nil, nil
  for line in (text .. "\n"):gmatch("([^\n]*)\n") do
    local l = line:gsub("%s+#.*$", ""):gsub("^%s+", ""):gsub("%s+$", "")
    if pending_key then
      pending = pending .. " " .. l
      if l:find("]", 1, true) then
        local arr = {}
        for s in pending:gmatch('"([^"]*)"') do arr[#arr + 1] = s end
        out[pending_key] = arr
        pending_key = nil
      end
    elseif l:match("^%[") then
      inside = l == "[tool.alembic]"
      if inside then out = out or {} end
    elseif inside then
      local k, v = l:match("^([%w_%-]+)%s*=%s*(.*)$")
      if k then
        if v:match('^"') then
          out[k] = v:match('^"(.-)"'):gsub("%%%(here%)s", here)
        elseif v:match("^'") then
          out[k] = v:match("^'(.-)'"):gsub("%%%(here%)s", here)
        elseif v:match("^%[") then
          if v:find("]", 1, true) then
            local arr = {}
            for s in v:gmatch('"([^"]*)"') do arr[#arr + 1] = (s:gsub("%%%(here%)s", here)) end
            out[k] = arr
          else
            pending_key, pending = k, v
          end
        end
      end
    end
  end
  if out then
    for k, v in pairs(out) do
      if type(v) == "table" then for i, s in ipairs(v) do v[i] = s:gsub("%%%(here%)s", here) end end
      out[k] = v
    end
  end
  return out
end

-- The version table env.py configures: version_table= and version_table_schema= passed to
-- context.configure (string literals, or module-level string constants), and whether it
-- asks for transaction_per_migration.
function M.scan_env(text, display)
  local found = { version_table = nil, version_table_schema = nil, transaction_per_migration = nil, notes = {} }
  local mod = python.parse(text, display)
  if not mod then
    -- an env.py this reader cannot parse: a plain text scan
    found.version_table = text:match("version_table%s*=%s*[\"']([^\"']+)[\"']")
    found.version_table_schema = text:match("version_table_schema%s*=%s*[\"']([^\"']+)[\"']")
    if text:match("transaction_per_migration%s*=%s*True") then found.transaction_per_migration = true end
    return found
  end
  local consts = {}
  local function walk(v)
    if type(v) ~= "table" then return end
    if v.k == "assign" and #v.targets == 1 and v.targets[1].k == "name" and v.value.k == "str" then
      consts[v.targets[1].id] = v.value.s
    end
    if v.k == "call" then
      for _, kw in ipairs(v.kwargs) do
        if kw.name == "version_table" or kw.name == "version_table_schema" then
          local val = kw.value
          if val.k == "str" then found[kw.name] = val.s
          elseif val.k == "name" and consts[val.id] then found[kw.name] = consts[val.id]
          elseif not (val.k == "const" and val.v == "None") then
            found.notes[#found.notes + 1] = { file = display, line = val.line,
              reason = kw.name .. "= is computed; set version_table in luamigrate.lua by hand" }
          end
        elseif kw.name == "transaction_per_migration" and kw.value.k == "const" then
          found.transaction_per_migration = kw.value.v == "True"
        end
      end
    end
    for _, x in pairs(v) do walk(x) end
  end
  for _, s in ipairs(mod.body) do walk(s) end
  return found
end

-- Finds the Alembic config: an alembic.ini, a pyproject.toml, or a directory with one.
local function locate(path)
  if is_dir(path) then
    if exists(join(path, "alembic.ini")) then return join(path, "alembic.ini"), "ini" end
    if exists(join(path, "pyproject.toml")) then return join(path, "pyproject.toml"), "toml" end
    -- the script location itself, for an application that writes its alembic.ini when it
    -- runs (JupyterHub's)
    if exists(join(path, "env.py")) and is_dir(join(path, "versions")) then return path, "dir" end
    error(("%s holds neither alembic.ini nor pyproject.toml"):format(path), 0)
  end
  if not exists(path) then error(("%s: no such file or directory"):format(path), 0) end
  if path:match("%.toml$") then return path, "toml" end
  return path, "ini"
end

local function list_py(dir)
  local ok, lfs = pcall(require, "lfs")
  if not ok then error("convert needs LuaFileSystem", 0) end
  local out = {}
  if lfs.attributes(dir, "mode") ~= "directory" then
    error(("%s: the versions directory does not exist"):format(dir), 0)
  end
  for name in lfs.dir(dir) do
    if name:match("%.py$") and not name:match("^%.") and name ~= "__init__.py" then out[#out + 1] = name end
  end
  table.sort(out)
  return out
end

local function split_locations(s)
  if type(s) == "table" then return s end
  local out = {}
  for p in s:gmatch("[^%s,:;]+") do out[#out + 1] = p end
  return out
end

-- Reads the Alembic project at `path`: { config, kind, script_location, versions = {dir...},
-- version_table, schema, transaction_per_migration, notes }.
function M.read_project(path)
  local cfg, kind = locate(path)
  if cfg:sub(1, 1) ~= "/" then cfg = require("lfs").currentdir() .. "/" .. cfg:gsub("^%./", "") end
  local here = dirname(cfg)
  local text = kind ~= "dir" and assert(slurp(cfg))
  local settings
  if kind == "dir" then
    cfg = cfg:gsub("/+$", "")
    here = dirname(cfg)
    settings = { script_location = cfg:match("([^/]+)$") }
  elseif kind == "toml" then
    settings = M.read_pyproject(text, here)
    if not settings then error(("%s has no [tool.alembic] table"):format(cfg), 0) end
  else
    local ini = M.read_ini(text, here)
    settings = ini.alembic
    if not settings then error(("%s has no [alembic] section"):format(cfg), 0) end
  end
  local sl = settings.script_location
  if (sl == nil or sl == "") and exists(join(here, "env.py")) then
    sl = here -- Flask-Migrate's layout: alembic.ini beside env.py, the location passed in code
  end
  if type(sl) ~= "string" or sl == "" then error(("%s: no script_location"):format(cfg), 0) end
  if sl:match("^[%w_.]+:") then
    error(("%s: script_location %q names a Python package; give it as a path"):format(cfg, sl), 0)
  end
  local script = join(here, sl)
  local versions = { join(script, "versions") }
  if settings.version_locations then
    versions = {}
    for _, p in ipairs(split_locations(settings.version_locations)) do versions[#versions + 1] = join(here, p) end
  end
  local project = { config = cfg, kind = kind, script_location = script, script_name = sl,
    versions = versions, notes = {}, version_table = "alembic_version" }
  local envpath = join(script, "env.py")
  local envtext = slurp(envpath)
  if envtext then
    local found = M.scan_env(envtext, envpath)
    project.version_table = found.version_table or "alembic_version"
    project.schema = found.version_table_schema
    project.transaction_per_migration = found.transaction_per_migration
    for _, n in ipairs(found.notes) do project.notes[#project.notes + 1] = n end
  end
  return project
end

local function write_file(path, text)
  local f, err = io.open(path, "wb")
  if not f then error(("cannot create %s: %s"):format(path, err), 0) end
  f:write(text)
  f:close()
end

local function mkdir_p(path)
  local lfs = require "lfs"
  local acc = path:sub(1, 1) == "/" and "" or nil
  for part in path:gmatch("[^/]+") do
    acc = acc and (acc .. "/" .. part) or part
    if lfs.attributes(acc, "mode") == nil then
      local ok, err = lfs.mkdir(acc)
      if not ok then error(("cannot create %s: %s"):format(acc, err), 0) end
    end
  end
end

-- Converts the project at `path` into `outdir`. Returns the summary: { revisions, statements,
-- converted, notes }; raises a message for what stops the conversion (nothing written then).
function M.convert(path, outdir)
  local project = M.read_project(path)
  local results, seen = {}, {}
  local roots, have = {}, {}
  for _, start in ipairs { dirname(project.config), project.script_location } do
    local d = start
    while d and not have[d] do
      have[d] = true
      roots[#roots + 1] = d
      local up = dirname(d)
      if up == d then break end
      d = up
    end
  end
  local resolver = M.new_resolver(roots)
  for _, dir in ipairs(project.versions) do
    for _, name in ipairs(list_py(dir)) do
      local file = join(dir, name)
      local src = assert(slurp(file))
      local r = M.revision(src, file, resolver)
      if seen[r.revision] then
        error(("%s: revision %s is also defined in %s"):format(file, r.revision, seen[r.revision]), 0)
      end
      seen[r.revision] = file
      r.name = name:gsub("%.py$", ".lua")
      if seen[r.name] then
        error(("%s: %s is also the name of %s; both cannot go to one versions directory")
          :format(file, name, seen[r.name]), 0)
      end
      seen[r.name] = file
      results[#results + 1] = r
    end
  end
  local cfgpath = join(outdir, "luamigrate.lua")
  if exists(cfgpath) then error(("%s already exists; not overwriting it"):format(cfgpath), 0) end
  local sl = project.script_name:gsub("^%./", ""):gsub("/+$", "")
  if sl:sub(1, 1) == "/" or sl:find("..", 1, true) then sl = sl:match("([^/]+)$") end
  local versions_out = join(join(outdir, sl), "versions")
  for _, r in ipairs(results) do
    if exists(join(versions_out, r.name)) then
      error(("%s already exists; not overwriting it"):format(join(versions_out, r.name)), 0)
    end
  end
  mkdir_p(versions_out)
  local vt = project.version_table
  if project.schema then vt = project.schema .. "." .. vt end
  local tpm = project.transaction_per_migration == true
  write_file(cfgpath, table.concat({
    "-- Converted from the Alembic project " .. project.config .. " by luamigrate convert alembic.",
    "-- Top-level assignments are settings; paths are relative to this file.",
    "script_location = " .. quoted(sl),
    "-- A libpq URI or key=value conninfo; PG* variables and ~/.pgpass also apply.",
    "url = os.getenv(\"DATABASE_URL\")",
    "-- Alembic's version table: on the database Alembic built, the revisions it applied",
    "-- are not applied again.",
    "version_table = " .. quoted(vt),
    tpm and "transaction_per_migration = true"
      or "-- env.py ran every migration of a command in one transaction, as Alembic does by default\n"
      .. "transaction_per_migration = false",
    "",
  }, "\n"))
  local summary = { revisions = #results, statements = 0, converted = 0, notes = {}, out = versions_out }
  for _, n in ipairs(project.notes) do summary.notes[#summary.notes + 1] = n end
  for _, r in ipairs(results) do
    write_file(join(versions_out, r.name), r.text)
    summary.converted = summary.converted + r.converted
    summary.statements = summary.statements + r.converted + r.failed
    for _, n in ipairs(r.notes) do summary.notes[#summary.notes + 1] = n end
    r.clean = #r.notes == 0
    if r.clean then summary.clean = (summary.clean or 0) + 1 end
  end
  summary.clean = summary.clean or 0
  summary.config = cfgpath
  return summary
end

local USAGE = "usage: luamigrate convert alembic PATH [-o DIR]"

-- The command: args are the words after `convert`. Prints the report; returns nil when
-- everything converted, else the one-line summary the caller reports as the error (exit 1).
-- Raises a message for a usage error or a project that cannot be read (exit 2).
function M.main(args)
  local pos, outdir = {}, "."
  local i = 1
  while i <= #args do
    local a = args[i]
    if a == "-o" or a == "--output" then
      outdir = args[i + 1] or error("convert: option " .. a .. " needs a value", 0)
      i = i + 1
    elseif a:match("^%-%-output=") then
      outdir = a:match("^%-%-output=(.*)$")
    elseif a:match("^%-") and a ~= "-" then
      error(("convert: unknown option '%s' (%s)"):format(a, USAGE), 0)
    else
      pos[#pos + 1] = a
    end
    i = i + 1
  end
  if pos[1] ~= "alembic" then
    error(("convert: %s (%s)"):format(pos[1] and ("unknown source '" .. pos[1] .. "': only alembic")
      or "missing the source (alembic)", USAGE), 0)
  end
  if not pos[2] then error("convert: missing PATH (" .. USAGE .. ")", 0) end
  if pos[3] then error(("convert: unexpected argument '%s' (%s)"):format(pos[3], USAGE), 0) end
  local s = M.convert(pos[2], outdir)
  io.stdout:write(("Generating %s ... done\n"):format(s.config))
  io.stdout:write(("Converted %d revision%s into %s: %d of %d statements translated (%d revision%s untouched)\n")
    :format(s.revisions, s.revisions == 1 and "" or "s", s.out, s.converted, s.statements, s.clean,
    s.clean == 1 and "" or "s"))
  for _, n in ipairs(s.notes) do
    io.stderr:write(("%s:%d: not converted: %s\n"):format(n.file, n.line, n.reason))
  end
  if #s.notes > 0 then
    return ("convert: %d place%s not converted (listed above); those revisions raise "
      .. "\"not converted\" until edited"):format(#s.notes, #s.notes == 1 and "" or "s")
  end
  return nil
end

return M
