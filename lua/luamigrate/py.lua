-- Python's standard library as converted Alembic migrations use it: datetime (datetime, date,
-- timedelta, timezone.utc), uuid.uuid4() and json.dumps/loads, with Python's semantics where
-- a migration can see them (str() of a datetime, isoformat(), comparisons, arithmetic with
-- timedelta, AttributeError on a name the object has not). Only UTC is a time zone; the
-- clock has whole seconds (Lua's os.time), so now() has no microseconds.
--
-- Python's text of values lives here, once: repr() and str() of None, booleans, floats
-- (1.0, 1e-05, 0.1), strings, lists and dicts, and of the objects below; %-formatting (the
-- `%` of a string); and the arithmetic whose meaning differs from Lua's (`*` on strings and
-- lists, `**` of integers, division by zero). Results' rows (luamigrate.result), converted
-- migrations and json.dumps all write values through it.
local M = {}

-- the luamigrate.typed module, required when first used (it uses this module's float_repr)
local function typed() return require "luamigrate.typed" end

local function opts_of(args, n)
  local last = args[n]
  if type(last) == "table" and getmetatable(last) == nil then return last, n - 1 end
  return {}, n
end

local function no_attr(kind)
  return function(_, k)
    error(("AttributeError: '%s' object has no attribute '%s'"):format(kind, tostring(k)), 2)
  end
end

-- ---- Python's text of values ------------------------------------------------------------

-- Python's repr of a float: the shortest digits that read back the same, in fixed notation
-- for exponents -4..15 (always with a fraction: 1.0), else as 1e+16 / 1.5e-05; nan, inf.
function M.float_repr(v)
  if v ~= v then return "nan" end
  if v == math.huge then return "inf" end
  if v == -math.huge then return "-inf" end
  local s
  for p = 1, 17 do
    s = ("%." .. (p - 1) .. "e"):format(v)
    if tonumber(s) == v then break end
  end
  local sign, d1, rest, ex = s:match("^(%-?)(%d)%.?(%d*)e([-+]%d+)$")
  local digits, x = (d1 .. rest):gsub("0+$", ""), tonumber(ex)
  if digits == "" then digits = "0" end
  if x >= -4 and x < 16 then
    if x < 0 then return sign .. "0." .. ("0"):rep(-x - 1) .. digits end
    local int = digits:sub(1, x + 1) .. ("0"):rep(math.max(0, x + 1 - #digits))
    local frac = digits:sub(x + 2)
    return sign .. int .. "." .. (frac == "" and "0" or frac)
  end
  return sign .. digits:sub(1, 1) .. (#digits > 1 and ("." .. digits:sub(2)) or "")
    .. "e" .. (x < 0 and "-" or "+") .. ("%02d"):format(math.abs(x))
end

local STR_ESC = { ["\\"] = "\\\\", ["\n"] = "\\n", ["\r"] = "\\r", ["\t"] = "\\t" }

-- Python's repr of a str: single quotes unless the text has one and no double quote.
local function str_repr(s)
  local q = (s:find("'", 1, true) and not s:find('"', 1, true)) and '"' or "'"
  return q .. s:gsub("[%c\\" .. q .. "]", function(c)
    if c == q then return "\\" .. c end
    return STR_ESC[c] or ("\\x%02x"):format(c:byte())
  end) .. q
end

-- A Python list that may hold None (nil): a sequence that keeps its length, so #list,
-- table.unpack(list) and py.repr see every value after a hole (a result's :scalars() lists).
-- Appending (list[#list + 1] = v, table.insert, a converted append: None too) grows it.
local LIST_N = setmetatable({}, { __mode = "k" })
local List = { __name = "luamigrate.List" }
function List.__len(t) return LIST_N[t] end
function List.__newindex(t, k, v)
  rawset(t, k, v)
  local n = LIST_N[t]
  if math.type(k) == "integer" and ((k > n and v ~= nil) or k == n + 1) then LIST_N[t] = k end
end

-- t (its values 1..n, holes allowed) as such a list
function M.list(t, n)
  LIST_N[t] = n
  return setmetatable(t, List)
end

-- The length of a sequence that may hold NULLs (a result's scalars list has a __len: its
-- values are not lost after a hole), else nil when t is no plain list.
local function list_len(t)
  local mt = getmetatable(t)
  if mt == nil then
    if #t > 0 or next(t) == nil then return #t end
    return nil
  end
  if mt.__name == "luamigrate.List" then return #t end
  return nil
end
M.list_len = list_len

-- Python's repr(v): None, True, 'text', 1.0, [1, 'a'], {'k': None} (a Lua table's keys in
-- sorted order: it keeps no insertion order), an object's own __repr, else its tostring.
function M.repr(v)
  local t = type(v)
  if v == nil then return "None" end
  if t == "boolean" then return v and "True" or "False" end
  if t == "string" then return str_repr(v) end
  if math.type(v) == "float" then return M.float_repr(v) end
  if t ~= "table" then return tostring(v) end
  local mt = getmetatable(v)
  if mt and mt.__name == "luamigrate.NULL" then return "None" end
  if mt and mt.__repr then return mt.__repr(v) end
  local n = list_len(v)
  local parts = {}
  if n then
    for i = 1, n do parts[i] = M.repr(v[i]) end
    return "[" .. table.concat(parts, ", ") .. "]"
  end
  if mt ~= nil then return tostring(v) end
  local keys = {}
  for k in pairs(v) do keys[#keys + 1] = k end
  table.sort(keys, function(a, b) return tostring(a) < tostring(b) end)
  for i, k in ipairs(keys) do parts[i] = M.repr(k) .. ": " .. M.repr(v[k]) end
  return "{" .. table.concat(parts, ", ") .. "}"
end

-- Python's str(v): a string itself, an object's own text (a datetime's, a row's), else repr.
function M.str(v)
  if type(v) == "string" then return v end
  local mt = type(v) == "table" and getmetatable(v)
  if mt and mt.__tostring and mt.__name ~= "luamigrate.NULL" then return tostring(v) end
  return M.repr(v)
end

local function type_name(v)
  if v == nil then return "NoneType" end
  local t = math.type(v) or type(v)
  local mt = type(v) == "table" and getmetatable(v)
  if mt and mt.__name then return mt.__name end
  return ({ integer = "int", float = "float", string = "str", boolean = "bool", table = "list" })[t] or t
end

-- a number for %d and the like: Python's bool is an int; anything else is its TypeError
local function real(v, conv)
  if type(v) == "boolean" then return v and 1 or 0 end
  if type(v) ~= "number" then
    error(("TypeError: %%%s format: a real number is required, not %s"):format(conv, type_name(v)), 0)
  end
  return v
end

local function pad(text, flags, width)
  width = tonumber(width) or 0
  if #text >= width then return text end
  if flags:find("-", 1, true) then return text .. (" "):rep(width - #text) end
  return (" "):rep(width - #text) .. text
end

-- One %-conversion of v as Python writes it.
local function conversion(v, flags, width, prec, conv)
  if conv == "s" or conv == "r" or conv == "a" then
    local text = conv == "s" and M.str(v) or M.repr(v)
    if prec ~= "" then text = text:sub(1, tonumber(prec)) end
    return pad(text, flags, width)
  end
  if conv == "c" then
    if type(v) == "string" then
      if utf8.len(v) ~= 1 then error("TypeError: %c requires int or char", 0) end
      return pad(v, flags, width)
    end
    return pad(utf8.char(math.tointeger(real(v, conv)) or error("TypeError: %c requires int or char", 0)),
      flags, width)
  end
  local n = real(v, conv)
  local f = flags:gsub("#", "")
  local dot = prec ~= "" and ("." .. prec) or ""
  if conv == "d" or conv == "i" or conv == "u" then
    -- a float is truncated toward zero, as int() does
    if math.type(n) == "float" then
      if n ~= n or n == math.huge or n == -math.huge then
        error("ValueError: cannot convert float " .. M.float_repr(n) .. " to integer", 0)
      end
      n = n >= 0 and math.floor(n) or math.ceil(n)
      n = math.tointeger(n) or n
    end
    if math.type(n) == "float" then return pad(("%.0f"):format(n), flags, width) end
    return ("%" .. f .. width .. dot .. "d"):format(n)
  end
  if conv == "x" or conv == "X" or conv == "o" then
    if math.type(n) ~= "integer" then
      error(("TypeError: %%%s format: an integer is required, not %s"):format(conv, type_name(v)), 0)
    end
    -- Python writes a negative number with a sign (C would write its two's complement) and
    -- 0o for %#o
    local neg = n < 0
    local body = ("%" .. dot .. conv):format(neg and -n or n)
    if flags:find("#", 1, true) then body = (conv == "o" and "0o" or (conv == "x" and "0x" or "0X")) .. body end
    local sign = neg and "-" or (flags:find("+", 1, true) and "+" or (flags:find(" ", 1, true) and " " or ""))
    local w = tonumber(width) or 0
    if flags:find("0", 1, true) and not flags:find("-", 1, true) and #sign + #body < w then
      local prefix = body:match("^0[xXo]") or ""
      body = prefix .. ("0"):rep(w - #sign - #body) .. body:sub(#prefix + 1)
    end
    return pad(sign .. body, flags, width)
  end
  -- e, E, f, F, g, G: C's, which Python's are (six decimals by default)
  if conv == "F" then conv = "f" end
  local text = ("%" .. flags .. width .. dot .. conv):format(n + 0.0)
  if n ~= n or n == math.huge or n == -math.huge then text = text:gsub("%-?nan", "nan") end
  return text
end

-- Python's a % b. For a string a: its %-conversions (s r a d i u x X o e E f F g G c, %%)
-- filled from b, which is a tuple (a sequence: its items), a mapping (a table of string keys:
-- %(name)s fields) or one value, with Python's errors for too few or too many values. For
-- numbers: the remainder with the divisor's sign (Lua's % already is), and Python's
-- ZeroDivisionError; other operands (an SQL expression) keep their own %.
function M.mod(a, b)
  if type(a) ~= "string" then
    if type(a) == "number" and type(b) == "number" and b == 0 then
      error(math.type(a) == "integer" and math.type(b) == "integer" and "ZeroDivisionError: integer modulo by zero"
        or "ZeroDivisionError: float modulo", 2)
    end
    return a % b
  end
  local args, map
  if type(b) == "table" and getmetatable(b) == nil then
    if #b > 0 or next(b) == nil then args = b else map = b; args = { b } end
  else
    args = { b }
  end
  local nargs = type(b) == "table" and getmetatable(b) == nil and (#b > 0 or next(b) == nil) and #b or 1
  local i, used_map = 0, false
  local out, pos = {}, 1
  while true do
    local j = a:find("%", pos, true)
    if not j then out[#out + 1] = a:sub(pos); break end
    out[#out + 1] = a:sub(pos, j - 1)
    local key, flags, wp, conv, after
    if a:sub(j + 1, j + 1) == "(" then
      key, flags, wp, conv, after = a:match("^%%(%b())([-+ #0]*)(%d*%.?%d*)([%a%%])()", j)
      if key then key = key:sub(2, -2) end
    else
      flags, wp, conv, after = a:match("^%%([-+ #0]*)(%d*%.?%d*)([%a%%])()", j)
    end
    if not conv then error(("ValueError: incomplete or unsupported format in %s"):format(str_repr(a)), 2) end
    local width, prec = wp:match("^(%d*)%.?(%d*)$")
    if conv == "%" and not key then
      out[#out + 1] = "%"
    elseif not ("srauidxXoeEfFgGc"):find(conv, 1, true) then
      error(("ValueError: unsupported format character '%s' (0x%x)"):format(conv, conv:byte()), 2)
    else
      local v
      if key then
        if not map then error("TypeError: format requires a mapping", 2) end
        v = map[key]
        if v == nil then error(("KeyError: %s"):format(str_repr(key)), 2) end
        used_map = true
      else
        i = i + 1
        if i > nargs then error("TypeError: not enough arguments for format string", 2) end
        v = args[i]
      end
      local ok, text = pcall(conversion, v, flags, width, prec, conv)
      if not ok then error(text, 2) end
      out[#out + 1] = text
    end
    pos = after
  end
  if not used_map and not map and i < nargs then
    error("TypeError: not all arguments converted during string formatting", 2)
  end
  return table.concat(out)
end

local function is_int(v) return math.type(v) == "integer" or type(v) == "boolean" end
local function int_of(v) if type(v) == "boolean" then return v and 1 or 0 end return v end

-- Python's a * b: a string or a list repeated (an integer times), numbers (and SQL
-- expressions) multiplied.
function M.mul(a, b)
  if type(b) == "string" or (type(b) == "table" and getmetatable(b) == nil) then a, b = b, a end
  local ta = type(a)
  if ta == "string" or (ta == "table" and getmetatable(a) == nil) then
    if not is_int(b) then
      error(("TypeError: can't multiply sequence by non-int of type '%s'"):format(type_name(b)), 2)
    end
    local n = int_of(b)
    if ta == "string" then return n > 0 and a:rep(n) or "" end
    local r, len = {}, #a
    for k = 0, n - 1 do table.move(a, 1, len, k * len + 1, r) end
    return r
  end
  if type(a) == "boolean" then a = int_of(a) end
  if type(b) == "boolean" then b = int_of(b) end
  return a * b
end

local function zero(what, a, b)
  if type(b) == "number" and b == 0 and type(a) == "number" then error("ZeroDivisionError: " .. what, 3) end
end

-- Python's a / b: always a float (Lua's / is too), and ZeroDivisionError for a zero divisor.
function M.div(a, b)
  zero("division by zero", a, b)
  return a / b
end

-- Python's a // b: floored (Lua's // is), ZeroDivisionError for a zero divisor.
function M.floordiv(a, b)
  zero(math.type(a) == "integer" and math.type(b) == "integer" and "integer division or modulo by zero"
    or "float floor division by zero", a, b)
  return a // b
end

-- Python's a ** b: an integer to a non-negative integer power is an integer (Lua's ^ always
-- gives a float); 0 to a negative power is ZeroDivisionError.
function M.pow(a, b)
  if math.type(a) == "integer" and math.type(b) == "integer" and b >= 0 then
    local r, base, e = 1, a, b
    while e > 0 do
      if e % 2 == 1 then r = r * base end
      base, e = base * base, e // 2
    end
    if math.abs(a + 0.0) ^ b >= 2.0 ^ 63 then return (a + 0.0) ^ b end -- beyond Lua's integers
    return r
  end
  if type(a) == "number" and a == 0 and type(b) == "number" and b < 0 then
    error("ZeroDivisionError: 0.0 cannot be raised to a negative power", 2)
  end
  return a ^ b
end

-- days since 1970-01-01 of a proleptic Gregorian date, and back (H. Hinnant's algorithms)
local function days_from_civil(y, m, d)
  y = m <= 2 and y - 1 or y
  local era = (y >= 0 and y or y - 399) // 400
  local yoe = y - era * 400
  local doy = (153 * (m > 2 and m - 3 or m + 9) + 2) // 5 + d - 1
  local doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
  return era * 146097 + doe - 719468
end

local function civil_from_days(z)
  z = z + 719468
  local era = (z >= 0 and z or z - 146096) // 146097
  local doe = z - era * 146097
  local yoe = (doe - doe // 1460 + doe // 36524 - doe // 146096) // 365
  local y = yoe + era * 400
  local doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
  local mp = (5 * doy + 2) // 153
  local d = doy - (153 * mp + 2) // 5 + 1
  local m = mp < 10 and mp + 3 or mp - 9
  return m <= 2 and y + 1 or y, m, d
end

-- ---- timezone ---------------------------------------------------------------------------

local TZ = { __name = "datetime.timezone" }
local UTC = setmetatable({}, TZ)
TZ.__index = function(_, k)
  if k == "utcoffset" then return function() return M.timedelta(0) end end
  if k == "tzname" then return function() return "UTC" end end
  return no_attr("datetime.timezone")(nil, k)
end
TZ.__tostring = function() return "UTC" end
TZ.__repr = function() return "datetime.timezone.utc" end
M.timezone = setmetatable({ utc = UTC }, { __index = no_attr("type") })

-- ---- timedelta --------------------------------------------------------------------------

local TD = { __name = "datetime.timedelta" }
local TDm = {}

-- timedelta(days, seconds, microseconds, milliseconds, minutes, hours, weeks), positional
-- or keyword ({ hours = 2 })
function M.timedelta(...)
  local args = table.pack(...)
  local o, n = opts_of(args, args.n)
  local p = { "days", "seconds", "microseconds", "milliseconds", "minutes", "hours", "weeks" }
  local v = {}
  for i, name in ipairs(p) do v[name] = (i <= n and args[i]) or o[name] or 0 end
  local us = v.microseconds + v.milliseconds * 1000 + (v.seconds + v.minutes * 60 + v.hours * 3600
    + (v.days + v.weeks * 7) * 86400) * 1000000
  us = math.floor(us + 0.5)
  return setmetatable({ _us = math.tointeger(us) or us }, TD)
end

TD.__index = function(t, k)
  local us = rawget(t, "_us")
  if k == "days" then return us // 86400000000 end
  if k == "seconds" then return (us % 86400000000) // 1000000 end
  if k == "microseconds" then return us % 1000000 end
  if TDm[k] then return TDm[k] end
  return no_attr("datetime.timedelta")(t, k)
end
function TDm.total_seconds(t) return t._us / 1e6 end
TD.__eq = function(a, b) return a._us == b._us end
TD.__lt = function(a, b) return a._us < b._us end
TD.__le = function(a, b) return a._us <= b._us end
TD.__add = function(a, b)
  if getmetatable(b) ~= TD then return b + a end
  return M.timedelta { microseconds = a._us + b._us }
end
TD.__sub = function(a, b) return M.timedelta { microseconds = a._us - b._us } end
TD.__unm = function(a) return M.timedelta { microseconds = -a._us } end
TD.__tostring = function(t)
  local days, rest = t.days, t._us - t.days * 86400000000
  local s = rest // 1000000
  local text = ("%d:%02d:%02d"):format(s // 3600, s % 3600 // 60, s % 60)
  if rest % 1000000 ~= 0 then text = text .. (".%06d"):format(rest % 1000000) end
  if days ~= 0 then text = ("%d day%s, %s"):format(days, (days == 1 or days == -1) and "" or "s", text) end
  return text
end

-- datetime.timedelta(days=-1, seconds=5), as Python's repr names the fields that are not 0
TD.__repr = function(t)
  local parts = {}
  for _, f in ipairs { "days", "seconds", "microseconds" } do
    if t[f] ~= 0 then parts[#parts + 1] = f .. "=" .. t[f] end
  end
  return "datetime.timedelta(" .. (#parts > 0 and table.concat(parts, ", ") or "0") .. ")"
end

-- ---- datetime and date ------------------------------------------------------------------

local DT = { __name = "datetime.datetime" }
local DTm = {}
local D = { __name = "datetime.date" }
local Dm = {}
local new_date

-- a datetime from microseconds since the epoch (in its own zone's wall time) and a tzinfo
local function from_us(us, tz)
  local days = us // 86400000000
  local rest = us - days * 86400000000
  local y, m, d = civil_from_days(days)
  local s = rest // 1000000
  return setmetatable({ year = y, month = m, day = d, hour = s // 3600, minute = s % 3600 // 60, second = s % 60,
    microsecond = rest % 1000000, tzinfo = tz }, DT)
end

local function to_us(t)
  return ((days_from_civil(t.year, t.month, t.day) * 24 + t.hour) * 60 + t.minute) * 60000000
    + t.second * 1000000 + t.microsecond
end

local function check_range(name, v, lo, hi)
  if math.type(v) ~= "integer" then error(("TypeError: %s must be an integer, got %s"):format(name, type(v)), 4) end
  if v < lo or v > hi then error(("ValueError: %s must be in %d..%d, got %d"):format(name, lo, hi, v), 4) end
end

local DIM = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 }
local function month_days(y, m)
  if m == 2 and (y % 4 == 0 and (y % 100 ~= 0 or y % 400 == 0)) then return 29 end
  return DIM[m]
end

local function new_datetime(y, mo, d, h, mi, s, us, tz)
  check_range("year", y, 1, 9999)
  check_range("month", mo, 1, 12)
  check_range("day", d, 1, month_days(y, mo))
  check_range("hour", h, 0, 23)
  check_range("minute", mi, 0, 59)
  check_range("second", s, 0, 59)
  check_range("microsecond", us, 0, 999999)
  if tz ~= nil and tz ~= UTC then error("datetime: only timezone.utc is supported as tzinfo", 3) end
  return setmetatable({ year = y, month = mo, day = d, hour = h, minute = mi, second = s, microsecond = us,
    tzinfo = tz }, DT)
end

local DT_FIELDS = { "year", "month", "day", "hour", "minute", "second", "microsecond", "tzinfo" }

-- datetime(year, month, day[, hour, minute, second, microsecond, tzinfo]) or with keywords
local datetime = setmetatable({}, {
  __call = function(_, ...)
    local args = table.pack(...)
    local o, n = opts_of(args, args.n)
    local v = {}
    for i, name in ipairs(DT_FIELDS) do
      local x = i <= n and args[i] or o[name]
      if x == nil and i > 3 and i < 8 then x = 0 end
      v[i] = x
    end
    return new_datetime(v[1], v[2], v[3], v[4], v[5], v[6], v[7], v[8] or nil)
  end,
  __index = no_attr("type"),
})
M.datetime = { datetime = datetime, timezone = M.timezone, timedelta = M.timedelta }

-- datetime.now([tz]): the local wall time (naive), or UTC's with tzinfo; utcnow(): UTC naive
rawset(datetime, "now", function(tz)
  if type(tz) == "table" and getmetatable(tz) == nil then tz = tz.tz end -- now(tz=timezone.utc)
  local t = os.time()
  if tz ~= nil then
    if tz ~= UTC then error("datetime.now: only timezone.utc is supported", 2) end
    return from_us(t * 1000000, UTC)
  end
  local l = os.date("*t", t)
  return new_datetime(l.year, l.month, l.day, l.hour, l.min, l.sec, 0)
end)
rawset(datetime, "utcnow", function() return from_us(os.time() * 1000000, nil) end)
rawset(datetime, "today", function() return datetime.now() end)
-- Python's ISO 8601 forms: YYYY-MM-DD, then one separator character and HH[:MM[:SS[.f...]]]
-- (1 to 6 fraction digits), then Z or an offset of zero (only UTC is a time zone here);
-- anything else is Python's ValueError.
local function iso_parts(s)
  local function bad() error(("ValueError: Invalid isoformat string: %s"):format(M.repr(s)), 4) end
  if type(s) ~= "string" then
    error(("TypeError: fromisoformat: argument must be str, not %s"):format(type_name(s)), 3)
  end
  local y, mo, d, rest = s:match("^(%d%d%d%d)%-(%d%d)%-(%d%d)(.*)$")
  if not y then bad() end
  local v = { tonumber(y), tonumber(mo), tonumber(d), 0, 0, 0, 0 }
  if rest == "" then return v, nil end
  rest = rest:sub(utf8.offset(rest, 2) or #rest + 1) -- the separator: any one character
  local time, zone = rest:match("^([%d:.,]+)(.*)$")
  if not time then bad() end
  local h, tail = time:match("^(%d%d)(.*)$")
  if not h then bad() end
  v[4] = tonumber(h)
  local mi, sec, frac
  if tail ~= "" then
    mi, tail = tail:match("^:(%d%d)(.*)$")
    if not mi then bad() end
    v[5] = tonumber(mi)
    if tail ~= "" then
      sec, frac = tail:match("^:(%d%d)(.*)$")
      if not sec then bad() end
      v[6] = tonumber(sec)
      if frac ~= "" then
        frac = frac:match("^[.,](%d%d?%d?%d?%d?%d?)$")
        if not frac then bad() end
        v[7] = math.tointeger(tonumber((frac .. "000000"):sub(1, 6)))
      end
    end
  end
  if zone == "" then return v, nil end
  if zone == "Z" or zone:match("^[-+]00:?00$") or zone:match("^[-+]00:?00:?00$")
    or zone:match("^[-+]00:00:00%.0+$") then
    return v, UTC
  end
  if zone:match("^[-+]%d%d:?%d%d") then error("datetime.fromisoformat: only UTC offsets are supported", 3) end
  bad()
end

rawset(datetime, "fromisoformat", function(s)
  local v, zone = iso_parts(s)
  return new_datetime(v[1], v[2], v[3], v[4], v[5], v[6], v[7], zone)
end)

DT.__index = function(t, k)
  if DTm[k] then return DTm[k] end
  if k == "tzinfo" then return nil end -- naive
  return no_attr("datetime.datetime")(t, k)
end

function DTm.isoformat(t, sep)
  if type(sep) == "table" then sep = sep.sep end
  local s = ("%04d-%02d-%02d%s%02d:%02d:%02d"):format(t.year, t.month, t.day, sep or "T", t.hour, t.minute, t.second)
  if t.microsecond ~= 0 then s = s .. (".%06d"):format(t.microsecond) end
  if t.tzinfo then s = s .. "+00:00" end
  return s
end
DT.__tostring = function(t) return DTm.isoformat(t, " ") end
-- datetime.datetime(2024, 2, 29, 23, 59, 58, 120, tzinfo=datetime.timezone.utc): Python's
-- repr drops a zero microsecond, then a zero second
DT.__repr = function(t)
  local f = { t.year, t.month, t.day, t.hour, t.minute }
  if t.second ~= 0 or t.microsecond ~= 0 then f[#f + 1] = t.second end
  if t.microsecond ~= 0 then f[#f + 1] = t.microsecond end
  if t.tzinfo then f[#f + 1] = "tzinfo=datetime.timezone.utc" end
  return "datetime.datetime(" .. table.concat(f, ", ") .. ")"
end

-- replace(year=..., tzinfo=None): a tzinfo of false (the converter's None) or absent-but-named
function DTm.replace(t, o)
  o = o or {}
  local v = {}
  for i, name in ipairs(DT_FIELDS) do
    local x = o[name]
    if x == nil then x = t[name] end
    v[i] = x
  end
  if o.tzinfo == false then v[8] = nil end
  return new_datetime(v[1], v[2], v[3], v[4], v[5], v[6], v[7], v[8] or nil)
end

function DTm.date(t) return new_date(nil, t.year, t.month, t.day) end
function DTm.timestamp(t)
  local us = to_us(t)
  if not t.tzinfo then error("datetime.timestamp: a naive datetime's local offset is not known here", 2) end
  return us / 1e6
end
function DTm.strftime(t, fmt)
  return os.date("!" .. fmt, to_us(t) // 1000000)
end
function DTm.utcoffset(t) return t.tzinfo and M.timedelta(0) or nil end

local function same_kind(a, b)
  if getmetatable(b) ~= DT then error("TypeError: can't compare datetime.datetime to " .. type(b), 3) end
  if (a.tzinfo == nil) ~= (b.tzinfo == nil) then
    error("TypeError: can't compare offset-naive and offset-aware datetimes", 3)
  end
end
DT.__eq = function(a, b)
  return getmetatable(b) == DT and (a.tzinfo == nil) == (b.tzinfo == nil) and to_us(a) == to_us(b)
end
DT.__lt = function(a, b) same_kind(a, b); return to_us(a) < to_us(b) end
DT.__le = function(a, b) same_kind(a, b); return to_us(a) <= to_us(b) end
DT.__add = function(a, b)
  if getmetatable(a) == TD then a, b = b, a end
  if getmetatable(b) ~= TD then error("TypeError: unsupported operand type(s) for +: 'datetime.datetime'", 2) end
  return from_us(to_us(a) + b._us, a.tzinfo)
end
DT.__sub = function(a, b)
  if getmetatable(b) == TD then return from_us(to_us(a) - b._us, a.tzinfo) end
  same_kind(a, b)
  return M.timedelta { microseconds = to_us(a) - to_us(b) }
end

function new_date(_, ...)
  local args = table.pack(...)
  local o, n = opts_of(args, args.n)
  local y, m, d = n >= 1 and args[1] or o.year, n >= 2 and args[2] or o.month, n >= 3 and args[3] or o.day
  new_datetime(y, m, d, 0, 0, 0, 0) -- the same checks
  return setmetatable({ year = y, month = m, day = d }, D)
end
M.date = setmetatable({}, { __call = new_date, __index = no_attr("type") })
rawset(M.date, "today", function()
  local l = os.date("*t")
  return new_date(nil, l.year, l.month, l.day)
end)
M.datetime.date = M.date
D.__index = function(t, k)
  if Dm[k] then return Dm[k] end
  return no_attr("datetime.date")(t, k)
end
function Dm.isoformat(t) return ("%04d-%02d-%02d"):format(t.year, t.month, t.day) end
D.__tostring = Dm.isoformat
D.__repr = function(t) return ("datetime.date(%d, %d, %d)"):format(t.year, t.month, t.day) end
-- date + timedelta (its whole days, as Python's), date - timedelta, date - date
local function date_days(t) return days_from_civil(t.year, t.month, t.day) end
local function date_of_days(n)
  local y, m, d = civil_from_days(n)
  return new_date(nil, y, m, d)
end
D.__add = function(a, b)
  if getmetatable(a) == TD then a, b = b, a end
  if getmetatable(b) ~= TD then
    error(("TypeError: unsupported operand type(s) for +: 'datetime.date' and '%s'"):format(type_name(b)), 2)
  end
  return date_of_days(date_days(a) + b.days)
end
D.__sub = function(a, b)
  if getmetatable(b) == TD then return date_of_days(date_days(a) - b.days) end
  if getmetatable(a) == D and getmetatable(b) == D then return M.timedelta(date_days(a) - date_days(b)) end
  error(("TypeError: unsupported operand type(s) for -: '%s' and '%s'"):format(type_name(a), type_name(b)), 2)
end
rawset(M.date, "fromisoformat", function(s)
  local ok = type(s) == "string" and s:match("^%d%d%d%d%-%d%d%-%d%d$")
  if not ok then
    if type(s) ~= "string" then
      error(("TypeError: fromisoformat: argument must be str, not %s"):format(type_name(s)), 2)
    end
    error(("ValueError: Invalid isoformat string: %s"):format(M.repr(s)), 2)
  end
  local v = iso_parts(s)
  return new_date(nil, v[1], v[2], v[3])
end)
D.__eq = function(a, b) return getmetatable(b) == D and Dm.isoformat(a) == Dm.isoformat(b) end
D.__lt = function(a, b) return Dm.isoformat(a) < Dm.isoformat(b) end
D.__le = function(a, b) return Dm.isoformat(a) <= Dm.isoformat(b) end

-- ---- uuid -------------------------------------------------------------------------------

local UUID = { __name = "uuid.UUID" }
UUID.__index = function(t, k)
  if k == "hex" then return (rawget(t, "_s"):gsub("%-", "")) end
  return no_attr("UUID")(t, k)
end
UUID.__tostring = function(t) return t._s end
UUID.__repr = function(t) return "UUID('" .. t._s .. "')" end
UUID.__eq = function(a, b) return getmetatable(b) == UUID and a._s == b._s end
UUID.__concat = function(a, b) return tostring(a) .. tostring(b) end

local seeded = false
-- uuid4(): random (version 4, RFC 4122 variant), from /dev/urandom when there is one
local function uuid4()
  local bytes
  local f = io.open("/dev/urandom", "rb")
  if f then bytes = f:read(16); f:close() end
  if not bytes or #bytes < 16 then
    if not seeded then math.randomseed(os.time(), math.floor(os.clock() * 1e6)); seeded = true end
    local t = {}
    for i = 1, 16 do t[i] = string.char(math.random(0, 255)) end
    bytes = table.concat(t)
  end
  local b = { bytes:byte(1, 16) }
  b[7] = (b[7] & 0x0f) | 0x40
  b[9] = (b[9] & 0x3f) | 0x80
  local hex = ("%02x"):rep(16):format(table.unpack(b))
  return setmetatable({ _s = ("%s-%s-%s-%s-%s"):format(hex:sub(1, 8), hex:sub(9, 12), hex:sub(13, 16),
    hex:sub(17, 20), hex:sub(21, 32)) }, UUID)
end

-- uuid.UUID("...") or UUID(hex=...)
local function uuid_new(s)
  if type(s) == "table" then s = s.hex end
  local h = tostring(s):lower():gsub("[{}%-]", ""):gsub("^urn:uuid:", "")
  if not h:match("^" .. ("%x"):rep(32) .. "$") then error("ValueError: badly formed hexadecimal UUID string", 2) end
  return setmetatable({ _s = ("%s-%s-%s-%s-%s"):format(h:sub(1, 8), h:sub(9, 12), h:sub(13, 16), h:sub(17, 20),
    h:sub(21, 32)) }, UUID)
end
M.uuid = { uuid4 = uuid4, UUID = uuid_new }

-- ---- json -------------------------------------------------------------------------------

-- json.dumps(value): Python's separators (", " and ": "); a dict's keys sorted (a Lua table
-- keeps no insertion order); a datetime, UUID or other object is Python's TypeError
M.json = {
  dumps = function(v)
    local text, err = typed().encode_json(v)
    if not text then error(("TypeError: json.dumps: %s"):format(err), 2) end
    return text
  end,
  loads = function(s)
    if type(s) ~= "string" then error("TypeError: the JSON object must be str, not " .. type(s), 2) end
    return typed().json(s)
  end,
}

return M
