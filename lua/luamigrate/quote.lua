-- Quoting for PostgreSQL, in pure Lua so offline (--sql) output needs no server. The rules
-- follow PostgreSQL's own client-side quoting: an identifier is left bare only when it is
-- all lowercase ASCII letters, digits and underscores, starts with a letter or underscore,
-- and is not a keyword the grammar reserves in any position; otherwise it is double-quoted
-- with embedded double quotes doubled. Literals are single-quoted with quotes doubled, and
-- written as E'...' with backslashes doubled when they hold a backslash.
--
-- That literal rule is right only where a backslash byte is always a backslash: in every
-- server encoding and most client ones, but not in SJIS, BIG5, GBK, GB18030, UHC or JOHAB,
-- where 0x5C can be the second byte of a character (and doubling it lets a quote through).
-- So online, while a migration runs, luamigrate.core hands this module the connection
-- (M.conn) and libpq escapes each literal for its client encoding; a --sql script states
-- the encoding it was quoted for at its top and refuses those encodings (M.script_encoding).
local M = {}

-- PostgreSQL 15's keywords outside the UNRESERVED category (pg_get_keywords() catcode
-- <> 'U'): these cannot stand bare as a column or table name everywhere.
local KEYWORDS = {}
for _, w in ipairs {
  "all", "analyse", "analyze", "and", "any", "array", "as", "asc", "asymmetric",
  "authorization", "between", "bigint", "binary", "bit", "boolean", "both", "case", "cast",
  "char", "character", "check", "coalesce", "collate", "collation", "column", "concurrently",
  "constraint", "create", "cross", "current_catalog", "current_date", "current_role",
  "current_schema", "current_time", "current_timestamp", "current_user", "dec", "decimal",
  "default", "deferrable", "desc", "distinct", "do", "else", "end", "except", "exists",
  "extract", "false", "fetch", "float", "for", "foreign", "freeze", "from", "full", "grant",
  "greatest", "group", "grouping", "having", "ilike", "in", "initially", "inner", "inout",
  "int", "integer", "intersect", "interval", "into", "is", "isnull", "join", "lateral",
  "leading", "least", "left", "like", "limit", "localtime", "localtimestamp", "national",
  "natural", "nchar", "none", "normalize", "not", "notnull", "null", "nullif", "numeric",
  "offset", "on", "only", "or", "order", "out", "outer", "overlaps", "overlay", "placing",
  "position", "precision", "primary", "real", "references", "returning", "right", "row",
  "select", "session_user", "setof", "similar", "smallint", "some", "substring", "symmetric",
  "table", "tablesample", "then", "time", "timestamp", "to", "trailing", "treat", "trim",
  "true", "union", "unique", "user", "using", "values", "varchar", "variadic", "verbose",
  "when", "where", "window", "with", "xmlattributes", "xmlconcat", "xmlelement", "xmlexists",
  "xmlforest", "xmlnamespaces", "xmlparse", "xmlpi", "xmlroot", "xmlserialize", "xmltable"
} do KEYWORDS[w] = true end
M.KEYWORDS = KEYWORDS

-- The op being rendered ("op.create_table"), set by luamigrate.op as each op starts, so a
-- name refused here is reported against the op that was given it.
M.context = nil

-- PostgreSQL keeps NAMEDATALEN - 1 bytes of a name and silently truncates the rest (two
-- long names can then collide), so longer identifiers are refused.
M.MAX_IDENT_BYTES = 63

-- The level, as error() counts from its caller's caller, of the innermost frame outside
-- luamigrate's own modules (the migration file's line).
local function user_level()
  local level = 3 -- error() and debug.getinfo() count levels alike: 3 is our caller's caller
  while true do
    local info = debug.getinfo(level, "S")
    if not info then return 2 end
    if info.what ~= "C" and not info.short_src:find("luamigrate/[%w_]+%.lua$") then return level - 1 end
    level = level + 1
  end
end

-- Raises msg at the migration's line, prefixed with the op being rendered.
local function raise(msg)
  error((M.context and (M.context .. ": ") or "") .. msg, user_level())
end

-- Raises msg at the migration's line, unprefixed: for constructors (sa.String(...)) that
-- run before the op they are arguments of.
function M.raise_plain(msg)
  error(msg, user_level())
end

-- op.f(name): a name marked as final, as SQLAlchemy's conv(): a naming convention leaves it
-- alone, and when it is longer than PostgreSQL keeps it is shortened the way SQLAlchemy
-- shortens such names (compiler._truncate_and_render_maxlen_name: the first 55 characters,
-- "_", the last 4 hex digits of the MD5 of the whole name), so it matches the databases
-- Alembic built. A plain string that is too long is refused instead.
local Conv = { __name = "op.f" }
Conv.__index = Conv
Conv.__tostring = function(self) return self.name end
Conv.__concat = function(a, b) return tostring(a) .. tostring(b) end

function M.conv(name)
  if M.is_conv(name) then return name end
  if type(name) ~= "string" then raise(("op.f: name must be a string, got %s"):format(type(name))) end
  return setmetatable({ kind = "conv", name = name }, Conv)
end

function M.is_conv(v) return getmetatable(v) == Conv end

-- A convention name as SQLAlchemy renders it: unchanged when it fits, else shortened as above.
-- Lengths count characters, as Python's len() does.
function M.conv_name(name)
  local max = M.MAX_IDENT_BYTES
  local n = utf8.len(name) or #name
  if n <= max then return name end
  local cut = utf8.len(name) and (utf8.offset(name, max - 8 + 1) - 1) or (max - 8)
  return name:sub(1, cut) .. "_" .. require("luamigrate.core").md5_hex(name):sub(-4)
end

-- Whether v is a string holding a NUL byte, which no PostgreSQL text can hold and at which
-- libpq would cut a statement or a value short: the one test of luamigrate's Lua (op.*, the
-- offline connection, names and literals), each caller naming what held it. The C side
-- refuses the same at its boundary (src/bind/l_conn.c, the --sql emit).
local find = string.find
function M.has_nul(v) return type(v) == "string" and find(v, "\0", 1, true) ~= nil end

-- Quotes one identifier when it needs it. Raises on a NUL byte, an empty name, or one longer
-- than PostgreSQL keeps; an op.f() name is shortened (conv_name) instead.
function M.ident(name)
  if M.is_conv(name) then name = M.conv_name(name.name) end
  if type(name) ~= "string" then raise(("identifier must be a string, got %s"):format(type(name))) end
  if name == "" then raise("identifier must not be empty") end
  if M.has_nul(name) then raise("identifier must not contain a NUL byte") end
  if #name > M.MAX_IDENT_BYTES then
    raise(('identifier "%s" is %d bytes long; PostgreSQL keeps %d and would silently truncate it')
      :format(name, #name, M.MAX_IDENT_BYTES))
  end
  if name:match("^[a-z_][a-z0-9_]*$") and not KEYWORDS[name] then return name end
  return '"' .. name:gsub('"', '""') .. '"'
end

-- "schema"."name", or just the name when schema is nil.
function M.qualified(schema, name)
  if schema == nil then return M.ident(name) end
  return M.ident(schema) .. "." .. M.ident(name)
end

-- The connection a migration's statements go to, set by the run (nil offline).
M.conn = nil

-- A string literal, safe under any standard_conforming_strings setting (and, online, for
-- the connection's client encoding).
function M.literal(s)
  if type(s) ~= "string" then raise(("literal must be a string, got %s"):format(type(s))) end
  local conn = M.conn
  if not find(s, "[\0'\\]") then -- most literals: nothing to refuse, double or escape
    if conn then return conn:literal(s) end
    return "'" .. s .. "'"
  end
  if M.has_nul(s) then raise("a string literal cannot contain a NUL byte") end
  if conn then return conn:literal(s) end
  local body = s:gsub("'", "''")
  if body:find("\\", 1, true) then return "E'" .. body:gsub("\\", "\\\\") .. "'" end
  return "'" .. body .. "'"
end

-- Client encodings in which the second byte of a character can be 0x5C (PostgreSQL's
-- names and aliases, compared as PostgreSQL does: case and punctuation ignored). PostgreSQL
-- allows none of them as a server encoding for the same reason.
M.UNSAFE_ENCODINGS = {}
for _, name in ipairs {
  "sjis", "shiftjis", "mskanji", "win932", "windows932", "shiftjis2004", "big5", "win950",
  "windows950", "gbk", "win936", "windows936", "cp936", "gb18030", "uhc", "win949", "windows949",
  "johab",
} do M.UNSAFE_ENCODINGS[name] = true end

-- The client encoding a --sql script is quoted for and sets at its top: `name` (the
-- PGCLIENTENCODING the script is made under) or UTF8. Raises for an encoding in which
-- offline quoting cannot be safe.
function M.script_encoding(name)
  if name == nil or name == "" then return "UTF8" end
  local key = name:lower():gsub("[^%w]", "")
  if M.UNSAFE_ENCODINGS[key] then
    error(("--sql: PGCLIENTENCODING=%s: a script cannot be quoted safely for this encoding "
      .. "(a character's second byte can be a backslash); unset PGCLIENTENCODING to write "
      .. "the script in UTF8, or run the migrations online"):format(name), 0)
  end
  if not name:match("^[%w_%-]+$") then
    error(("--sql: PGCLIENTENCODING=%s is not an encoding name"):format(name), 0)
  end
  return name
end

return M
