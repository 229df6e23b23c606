-- Typed values for op.get_bind():query(): the connection gives booleans, integers and floats
-- as Lua values and everything else as PostgreSQL's text, with each column's type OID; this
-- decodes json and jsonb (lua-cjson) and arrays of the built-in types (Lua sequences, nested
-- for more dimensions). numeric stays an exact string. NULL is nil, except where nil cannot
-- stand: an element of a sequence (an array's NULL, a JSON array's null) is M.NULL.
local M = {}

-- A NULL array element: nil cannot sit inside a Lua sequence.
M.NULL = setmetatable({}, { __tostring = function() return "NULL" end, __name = "luamigrate.NULL" })

local cjson_mod
local function cjson()
  if not cjson_mod then
    local ok, mod = pcall(require, "cjson.safe")
    if not ok then error("json values need lua-cjson (Debian: lua-cjson): " .. tostring(mod), 0) end
    cjson_mod = mod.new()
  end
  return cjson_mod
end

-- JSON text as a Lua value: objects and arrays as tables; null is nil at the top and in an
-- object (the key is absent), M.NULL in an array.
local function strip_nulls(v, null)
  if v == null then return nil end
  if type(v) == "table" then
    local n = #v
    for k, x in pairs(v) do
      if x == null and math.type(k) == "integer" and k >= 1 and k <= n then v[k] = M.NULL
      elseif math.type(x) == "float" and math.tointeger(x) then v[k] = math.tointeger(x) -- cjson gives floats
      else v[k] = strip_nulls(x, null) end
    end
  end
  return v
end

local function json(text)
  local c = cjson()
  local v, err = c.decode(text)
  if err then error("cannot decode a json value from the server: " .. err, 0) end
  if math.type(v) == "float" and math.tointeger(v) then return math.tointeger(v) end
  return strip_nulls(v, c.null)
end
M.json = json

-- A Lua value as JSON text, for a json/jsonb column's value (SQLAlchemy's JSON type runs
-- json.dumps on a dict or list). Deterministic, so a --sql script is the same each run: an
-- object's keys sorted (cjson's encode would follow pairs' order), Python's ", " and ": "
-- separators, floats as the shortest text that reads back the same; cjson escapes the strings.
-- A sequence is an array, a table of string keys an object, {} an empty object, M.NULL null.
-- Returns nil and the reason for what JSON cannot hold (NaN, a cycle, other keys or values).
function M.encode_json(v)
  local c = cjson()
  local seen = {}
  -- cjson writes "/" as "\/"; Python's json.dumps leaves it as is, and so does this (a json
  -- column keeps the text as written)
  local function str(x)
    return (c.encode(x):gsub("\\(.)", function(ch) if ch == "/" then return "/" end end))
  end
  local function enc(x, path)
    local t = type(x)
    if x == M.NULL then return "null" end
    if t == "string" then return str(x) end
    if t == "boolean" then return tostring(x) end
    if t == "number" then
      if math.type(x) == "integer" then return tostring(x) end
      if x ~= x or x == math.huge or x == -math.huge then
        error(("%s is %s, which JSON cannot hold"):format(path,
          x ~= x and "NaN" or (x > 0 and "Infinity" or "-Infinity")), 0)
      end
      return require("luamigrate.py").float_repr(x) -- Python's json.dumps writes a float's repr
    end
    local list = t == "table" and getmetatable(x) ~= nil and getmetatable(x).__name == "luamigrate.List"
    if t ~= "table" or (getmetatable(x) ~= nil and not list) then
      error(("%s is a %s, which JSON cannot hold"):format(path, getmetatable(x) and tostring(x) or t), 0)
    end
    if seen[x] then error(path .. " contains itself", 0) end
    seen[x] = true
    local n, keys, out = #x, {}, {}
    for k in pairs(x) do
      if not (math.type(k) == "integer" and k >= 1 and k <= n) then
        if type(k) ~= "string" then
          error(("%s has the key %s: give a sequence (an array) or string keys (an object)")
            :format(path, tostring(k)), 0)
        end
        keys[#keys + 1] = k
      end
    end
    local s
    if n > 0 or list then
      if #keys > 0 then error(("%s mixes a sequence with string keys (%s)"):format(path, keys[1]), 0) end
      -- a hole is None's null (a NULL in a result's values list, whose # counts it)
      for i = 1, n do out[i] = x[i] == nil and "null" or enc(x[i], path .. "[" .. i .. "]") end
      s = "[" .. table.concat(out, ", ") .. "]"
    else
      table.sort(keys)
      for i, k in ipairs(keys) do out[i] = str(k) .. ": " .. enc(x[k], path .. "." .. k) end
      s = "{" .. table.concat(out, ", ") .. "}"
    end
    seen[x] = nil
    return s
  end
  local ok, res = pcall(enc, v, "the value")
  if not ok then return nil, res end
  return res
end

local function integer(s) return math.tointeger(tonumber(s)) end
local function boolean(s) return s == "t" end
local function float(s)
  if s == "NaN" then return 0 / 0 end
  if s == "Infinity" then return math.huge end
  if s == "-Infinity" then return -math.huge end
  return tonumber(s)
end
local function text(s) return s end

-- Scalar decoders by type OID (pg_type.oid of the built-in types).
local SCALAR = {
  [16] = boolean, [20] = integer, [21] = integer, [23] = integer, [26] = integer,
  [700] = float, [701] = float, [114] = json, [3802] = json,
}
M.SCALAR = SCALAR

-- Array type OID -> element decoder.
local ARRAY = {
  [1000] = boolean, [1005] = integer, [1007] = integer, [1016] = integer, [1028] = integer,
  [1021] = float, [1022] = float, [199] = json, [3807] = json,
  [1009] = text, [1015] = text, [1014] = text, [1231] = text, [2951] = text, [1182] = text,
  [1115] = text, [1185] = text, [1183] = text, [1270] = text, [1187] = text, [651] = text,
  [1041] = text, [1040] = text, [1002] = text, [1001] = text,
}
M.ARRAY = ARRAY

-- Parses PostgreSQL's array output ({1,2,NULL}, {"a b","c\"d"}, {{1,2},{3,4}}, with an
-- optional [lo:hi]= dimension prefix) into nested sequences, each element through `decode`.
function M.parse_array(s, decode)
  local pos = 1
  if s:sub(1, 1) == "[" then
    local eq = s:find("=", 1, true)
    if not eq then error("malformed array: " .. s, 0) end
    pos = eq + 1
  end
  local function fail() error(("malformed array value at byte %d: %s"):format(pos, s), 0) end
  local parse
  function parse()
    if s:sub(pos, pos) ~= "{" then fail() end
    pos = pos + 1
    local out = {}
    if s:sub(pos, pos) == "}" then
      pos = pos + 1
      return out
    end
    while true do
      local ch = s:sub(pos, pos)
      if ch == "{" then
        out[#out + 1] = parse()
      elseif ch == '"' then
        local buf = {}
        pos = pos + 1
        while true do
          local c = s:sub(pos, pos)
          if c == "" then fail() end
          if c == "\\" then
            buf[#buf + 1] = s:sub(pos + 1, pos + 1)
            pos = pos + 2
          elseif c == '"' then
            pos = pos + 1
            break
          else
            buf[#buf + 1] = c
            pos = pos + 1
          end
        end
        out[#out + 1] = decode(table.concat(buf))
      else
        local stop = s:find("[,}]", pos)
        if not stop then fail() end
        local word = s:sub(pos, stop - 1)
        pos = stop
        if word == "" then fail() end
        if word == "NULL" then out[#out + 1] = M.NULL else out[#out + 1] = decode(word) end
      end
      local sep = s:sub(pos, pos)
      pos = pos + 1
      if sep == "}" then return out end
      if sep ~= "," then fail() end
    end
  end
  local v = parse()
  if pos <= #s then fail() end
  return v
end

-- Decodes the rows conn:query returned, given its column type OIDs, in place.
function M.rows(rows, oids)
  if not oids then return rows end
  local plan = {}
  for name, oid in pairs(oids) do
    if ARRAY[oid] then
      local elem = ARRAY[oid]
      plan[name] = function(v) return M.parse_array(v, elem) end
    elseif oid == 114 or oid == 3802 then
      plan[name] = json
    end
  end
  if next(plan) == nil then return rows end
  for _, row in ipairs(rows) do
    for name, f in pairs(plan) do
      local v = row[name]
      if v ~= nil then row[name] = f(v) end
    end
  end
  return rows
end

return M
