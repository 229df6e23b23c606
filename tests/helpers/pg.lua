-- The throwaway PostgreSQL the test command started (scripts/test.sh exports PGHOST,
-- PGPORT and LUAMIGRATE_TEST_PGHOST). A missing server is a failure, never a skip.
local M = {}

local host = os.getenv("LUAMIGRATE_TEST_PGHOST")
local port = os.getenv("PGPORT") or "5432"
if not host or host == "" then
  error("LUAMIGRATE_TEST_PGHOST is not set: run the database tests through scripts/test.sh, "
    .. "which starts a throwaway PostgreSQL", 0)
end
M.host, M.port = host, port

local function shell_quote(s)
  return "'" .. tostring(s):gsub("'", "'\\''") .. "'"
end
M.shell_quote = shell_quote

-- Under the sanitizer run the busted process has libasan preloaded; libpq's own client
-- programs deadlock at exit with it, so PostgreSQL tools always run without it.
M.tool = os.getenv("LD_PRELOAD") and "env -u LD_PRELOAD " or ""

-- Runs sql with psql against conninfo; returns trimmed stdout, or raises with stderr.
function M.psql(conninfo, sql)
  local errfile = os.tmpname()
  local cmd = (M.tool .. "psql -XAtq -v ON_ERROR_STOP=1 -d %s -c %s 2>%s"):format(
    shell_quote(conninfo), shell_quote(sql), errfile)
  local p = assert(io.popen(cmd))
  local out = p:read("a")
  local ok = p:close()
  local f = io.open(errfile)
  local err = f and f:read("a") or ""
  if f then f:close() end
  os.remove(errfile)
  if not ok then error("psql failed: " .. err .. "\nSQL: " .. sql, 2) end
  return (out:gsub("%s+$", ""))
end

function M.conninfo(dbname)
  return ("host=%s port=%s user=postgres dbname=%s"):format(host, port, dbname)
end

local counter = 0
-- Creates a fresh database and returns its conninfo string (and name).
function M.new_db(prefix)
  counter = counter + 1
  local name = ("%s_%d_%d_%d"):format(prefix or "lmtest", os.time(), counter, math.random(1, 1e6))
  M.psql(M.conninfo("postgres"), "CREATE DATABASE " .. name)
  return M.conninfo(name), name
end

function M.drop_db(name)
  M.psql(M.conninfo("postgres"), "DROP DATABASE IF EXISTS " .. name .. " WITH (FORCE)")
end

-- pg_dump output without the random \restrict token newer pg_dump versions add.
local function dump(conninfo, flags)
  local p = assert(io.popen((M.tool .. "pg_dump %s --no-owner --no-privileges -d %s 2>&1"):format(flags,
    shell_quote(conninfo))))
  local out = p:read("a")
  assert(p:close(), "pg_dump failed: " .. out)
  return (out:gsub("\n\\u?n?restrict [^\n]*", ""))
end

-- A dump of schema and data, for before/after comparisons.
function M.dump(conninfo) return dump(conninfo, "") end

function M.schema_dump(conninfo) return dump(conninfo, "--schema-only") end

return M
