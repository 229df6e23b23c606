-- Python's standard library as converted Alembic migrations use it: datetime (datetime, date,
-- timedelta, timezone.utc), uuid.uuid4() and json.dumps/loads, with Python's semantics where
-- a migration can see them (str() of a datetime, isoformat(), comparisons, arithmetic with
-- timedelta, AttributeError on a name the object has not). Only UTC is a time zone; the
-- clock has whole seconds (Lua's os.time), so now() has no microseconds.
local typed = require "luamigrate.typed"

local M = {}

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
rawset(datetime, "fromisoformat", function(s)
  local y, mo, d, rest = tostring(s):match("^(%d%d%d%d)%-(%d%d)%-(%d%d)(.*)$")
  if not y then error(("ValueError: Invalid isoformat string: %q"):format(tostring(s)), 2) end
  local h, mi, sec, frac, tz = rest:match("^[T ](%d%d):(%d%d):?(%d*)%.?(%d*)(.*)$")
  local us = frac and frac ~= "" and math.tointeger(tonumber((frac .. "000000"):sub(1, 6))) or 0
  local zone
  if tz == "Z" or tz == "+00:00" then zone = UTC
  elseif tz and tz ~= "" then error("datetime.fromisoformat: only UTC offsets are supported", 2) end
  return new_datetime(math.tointeger(tonumber(y)), math.tointeger(tonumber(mo)), math.tointeger(tonumber(d)),
    math.tointeger(tonumber(h or 0)), math.tointeger(tonumber(mi or 0)),
    math.tointeger(tonumber(sec ~= "" and sec or 0)) or 0, us, zone)
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
    local text, err = typed.encode_json(v)
    if not text then error(("TypeError: json.dumps: %s"):format(err), 2) end
    return text
  end,
  loads = function(s)
    if type(s) ~= "string" then error("TypeError: the JSON object must be str, not " .. type(s), 2) end
    return typed.json(s)
  end,
}

return M
