-- Extra throwaway PostgreSQL servers, for specs that need more than the test server (fleets
-- spread over several): scripts/pg.sh start DIR, its exports read back, stop removes it.
--   local server = pgserver.start()   -- server.host, server.port
--   server:conninfo("db"), server:psql("db", sql), server:stop()
--   pgserver.test_server()            -- the test command's own server, as one of them
local pg = require "helpers.pg"
local cli = require "helpers.cli"

local Server = {}
Server.__index = Server
local M = {}

function Server:conninfo(dbname)
  return ("host=%s port=%s user=postgres dbname=%s"):format(self.host, self.port, dbname or "postgres")
end

function Server:psql(dbname, sql) return pg.psql(self:conninfo(dbname), sql) end

function Server:stop()
  if not self.dir then return end -- the test server outlives the spec
  os.execute(("%sbash %s stop %s >/dev/null 2>&1"):format(pg.tool, pg.shell_quote(cli.src .. "/scripts/pg.sh"),
    pg.shell_quote(self.dir)))
  os.remove(self.root)
end

-- Starts a server in a new directory under /tmp; raises with pg.sh's message when it cannot.
function M.start()
  local p = assert(io.popen("mktemp -d /tmp/lmpgx.XXXXXX"))
  local dir = p:read("l")
  p:close()
  os.execute("chmod 755 " .. pg.shell_quote(dir)) -- as root the server runs as postgres
  p = assert(io.popen(("%sbash %s start %s 2>&1"):format(pg.tool, pg.shell_quote(cli.src .. "/scripts/pg.sh"),
    pg.shell_quote(dir .. "/pg"))))
  local out = p:read("a")
  local ok = p:close()
  local host, port = out:match("PGHOST=(%S+) PGPORT=(%d+)")
  if not ok or not host then
    os.execute("rm -rf " .. pg.shell_quote(dir))
    error("scripts/pg.sh start failed: " .. out, 2)
  end
  return setmetatable({ dir = dir .. "/pg", root = dir, host = host, port = port }, Server)
end

function M.test_server() return setmetatable({ host = pg.host, port = pg.port }, Server) end

return M
