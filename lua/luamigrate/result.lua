-- The result of a statement run through op.get_bind():result(sql, ...), with the methods of
-- SQLAlchemy's CursorResult and Row that migrations call (a converted Alembic migration's
-- `bind.execute(...).fetchall()` is `bind:result(...):fetchall()`). The rows not yet fetched
-- are the result's own sequence, so `for _, row in ipairs(result)` walks them; fetchone()
-- takes the first one off, as a cursor moves on. A row holds its values by position
-- (row[1], Python's row[0]) and by column name (row.name, row._mapping.name); #row is its
-- length. A NULL is nil, so the values of :scalars() may have holes: the result and the
-- lists it gives keep their count (#res, #values), and no value after a NULL is lost.
local py = require "luamigrate.py"
local repr = py.repr

local M = {}

-- each result's state: names, rowcount, sql, offline, values (a :scalars() result) and n,
-- the number of rows (or values) not yet fetched, which #self cannot give once a value is nil
local STATE = setmetatable({}, { __mode = "k" })

local function raise(fmt, ...) error(fmt:format(...), 3) end


-- One metatable per result: the names of its columns, for the errors and _mapping.
local function row_meta(names)
  local index = {}
  for i, n in ipairs(names) do index[n] = i end
  local meta = { __name = "luamigrate.Row" }
  function meta.__len() return #names end
  function meta.__index(row, k)
    if k == "_mapping" then
      local m = {}
      for _, n in ipairs(names) do m[n] = rawget(row, n) end
      return m
    elseif k == "_fields" then
      return table.move(names, 1, #names, 1, {})
    elseif k == "keys" then -- SQLAlchemy 1.x's row.keys()
      return function() return table.move(names, 1, #names, 1, {}) end
    elseif k == "_asdict" then
      return function(self) return self._mapping end
    elseif k == "_tuple" then
      return function(self)
        return table.move(self, 1, #names, 1, {})
      end
    elseif math.type(k) == "integer" then
      if k < 1 or k > #names then error(("IndexError: tuple index out of range (row[%d] of %d columns)")
        :format(k - 1, #names), 2) end
      return nil
    elseif index[k] then
      return nil -- a NULL
    end
    error(("AttributeError: the row has no column %q (its columns: %s)"):format(tostring(k),
      table.concat(names, ", ")), 2)
  end
  function meta.__tostring(row)
    local parts = {}
    for i = 1, #names do parts[i] = repr(rawget(row, i)) end
    return "(" .. table.concat(parts, ", ") .. (#names == 1 and ",)" or ")")
  end
  return meta
end

-- rows keyed by column name (typed values), names in the statement's order
local function make_rows(rows, names)
  local meta = row_meta(names)
  local out = {}
  for i, r in ipairs(rows) do
    local row = {}
    for j, n in ipairs(names) do
      local v = r[n]
      row[j] = v
      row[n] = v
    end
    out[i] = setmetatable(row, meta)
  end
  return out
end

local Result = {}
local ResultMeta = { __name = "luamigrate.Result" }
-- the rows (values) not yet fetched, NULLs counted
function ResultMeta.__len(self) return STATE[self].n end

function ResultMeta.__index(self, k)
  local m = Result[k]
  if m ~= nil then return m end
  local st = STATE[self]
  if k == "rowcount" then
    if st.offline then raise("result.rowcount: there is no database in --sql mode (%s)", st.sql) end
    return st.rowcount
  elseif k == "returns_rows" then
    return st.names ~= nil and #st.names > 0
  end
  if math.type(k) == "integer" then return nil end
  error(("AttributeError: a result has no attribute %q"):format(tostring(k)), 2)
end

local function state(self, what)
  local st = STATE[self]
  if not st then error(("result:%s: call it with ':' on a result"):format(what), 3) end
  if st.offline then
    error(("result:%s(): there is no database in --sql mode, so the rows of this statement cannot be "
      .. "read (%s)"):format(what, st.sql), 3)
  end
  return st
end

-- The first n rows (values) off the result, as a cursor fetches them: a list (a values list
-- for :scalars()), the rest moved up.
local function take(self, n)
  local st = STATE[self]
  local out = {}
  local have = st.n
  n = math.min(n, have)
  for i = 1, n do out[i] = rawget(self, i) end
  table.move(self, n + 1, have + n, 1)
  st.n = have - n
  -- a :scalars() result's values: NULLs are holes, and the list keeps its length (py.list)
  if st.values then return py.list(out, n) end
  return out
end

function Result:fetchone()
  state(self, "fetchone")
  return take(self, 1)[1]
end

function Result:fetchmany(size)
  state(self, "fetchmany")
  return take(self, size or 1)
end

function Result:fetchall()
  state(self, "fetchall")
  return take(self, STATE[self].n)
end
Result.all = Result.fetchall

-- first(): the first row or nil, and the rest discarded (SQLAlchemy closes the result)
function Result:first()
  state(self, "first")
  local row = rawget(self, 1)
  take(self, STATE[self].n)
  return row
end

local function one(self, what, none_ok)
  local n = state(self, what).n
  if n == 0 and not none_ok then raise("NoResultFound: No row was found when one was required") end
  if n > 1 then raise("MultipleResultsFound: Multiple rows were found when exactly one was required") end
  return take(self, n)[1]
end

function Result:one() return one(self, "one", false) end
function Result:one_or_none() return one(self, "one_or_none", true) end

-- scalar(): the first column of the first row (nil without rows)
function Result:scalar()
  state(self, "scalar")
  local row = Result.first(self)
  if STATE[self].values or row == nil then return row end
  return row[1]
end

function Result:scalar_one()
  local row = one(self, "scalar_one", false)
  if STATE[self].values then return row end
  return row[1]
end

function Result:scalar_one_or_none()
  local row = one(self, "scalar_one_or_none", true)
  if STATE[self].values or row == nil then return row end
  return row[1]
end

local function derived(rows, n, st)
  st.n = n
  STATE[rows] = st
  return setmetatable(rows, ResultMeta)
end

-- scalars([index]): a result of one column's values (index counted from 0, as SQLAlchemy's;
-- or a column name); a NULL value is nil, which ends an ipairs walk (#res counts it:
-- `for i = 1, #res` sees every value)
function Result:scalars(index)
  local st = state(self, "scalars")
  local col = 1
  if math.type(index) == "integer" then col = index + 1
  elseif type(index) == "string" then col = index end
  local n = st.n
  local rows = take(self, n)
  local vals = {}
  for i = 1, n do vals[i] = rows[i][col] end
  return derived(vals, n, { names = st.names, rowcount = st.rowcount, sql = st.sql, values = true })
end

-- mappings(): the rows as tables keyed by column name
function Result:mappings()
  local st = state(self, "mappings")
  local n = st.n
  local rows = take(self, n)
  for i = 1, n do rows[i] = rows[i]._mapping end
  return derived(rows, n, { names = st.names, rowcount = st.rowcount, sql = st.sql })
end

function Result:keys()
  local st = state(self, "keys")
  return table.move(st.names, 1, #st.names, 1, {})
end

function Result:close()
  if STATE[self] and not STATE[self].offline then take(self, STATE[self].n) end
end

-- A result of the rows conn:query returned (typed), its column names and rowcount.
function M.new(rows, names, rowcount, sql)
  names = names or {}
  local out = make_rows(rows or {}, names)
  local n = #out
  local r = setmetatable(out, ResultMeta)
  STATE[r] = { names = names, rowcount = rowcount or 0, sql = sql, n = n }
  return r
end

-- In --sql mode: the statement was written to the script; reading it is an error.
function M.offline(sql)
  local r = setmetatable({}, ResultMeta)
  STATE[r] = { offline = true, sql = sql, names = {}, n = 0 }
  return r
end

function M.is(v) return STATE[v] ~= nil end

return M
