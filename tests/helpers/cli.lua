-- Runs the built luamigrate binary as a user would, and builds throwaway projects.
local pg = require "helpers.pg"

local M = {}

M.bin = os.getenv("LUAMIGRATE_BIN") or error("LUAMIGRATE_BIN is not set (run through ctest)", 0)
M.src = os.getenv("LUAMIGRATE_SRC") or "."
-- LUAMIGRATE_WRAPPER: a command line the binary runs under (the memcheck tier sets it to
-- valgrind with its options; scripts/test.sh). Shell words, inserted as they are.
M.wrapper = os.getenv("LUAMIGRATE_WRAPPER") or ""

local q = pg.shell_quote

local function slurp(path)
  local f = io.open(path, "rb")
  if not f then return "" end
  local s = f:read("a")
  f:close()
  return s
end
M.slurp = slurp

function M.write(path, text)
  local f = assert(io.open(path, "wb"))
  f:write(text)
  f:close()
end

-- run(args, {cwd=, env={K=V}, background=true}) -> {code=, out=, err=}
-- args: a list of arguments (each quoted) or a string (passed to the shell as is).
function M.run(args, opts)
  opts = opts or {}
  local argv = type(args) == "string" and args or table.concat((function()
    local t = {}
    for i, a in ipairs(args) do t[i] = q(a) end
    return t
  end)(), " ")
  local out, err = os.tmpname(), os.tmpname()
  local env = ""
  for k, v in pairs(opts.env or {}) do
    env = env .. ("%s=%s "):format(k, q(v))
  end
  local unset = ""
  for _, k in ipairs(opts.unset or {}) do unset = unset .. "-u " .. k .. " " end
  local cmd = ("cd %s && env %s%s%s %s %s >%s 2>%s; echo $?"):format(q(opts.cwd or "."), unset, env,
    M.wrapper, q(M.bin), argv, out, err)
  local p = assert(io.popen(cmd))
  local code = tonumber(p:read("a"):match("%d+"))
  p:close()
  local r = { code = code, out = slurp(out), err = slurp(err) }
  os.remove(out)
  os.remove(err)
  return r
end

-- run_tty(args, {cwd=, env={K=V}, unset={K}}) -> {code=, out=}: runs the binary with stdin,
-- stdout and stderr on a pseudo-terminal (util-linux script(1)); `out` is what the terminal
-- showed, stdout and stderr together, with the terminal's \r\n turned into \n. TERM is
-- xterm unless env sets it, so the result does not depend on the caller's terminal.
function M.run_tty(args, opts)
  opts = opts or {}
  local t = {}
  for i, a in ipairs(args) do t[i] = q(a) end
  local env = { TERM = "xterm" }
  for k, v in pairs(opts.env or {}) do env[k] = v end
  local keys = {}
  for k in pairs(env) do keys[#keys + 1] = k end
  table.sort(keys)
  local assign = ""
  for _, k in ipairs(keys) do assign = assign .. ("%s=%s "):format(k, q(env[k])) end
  local unset = ""
  for _, k in ipairs(opts.unset or {}) do unset = unset .. "-u " .. k .. " " end
  local inner = ("cd %s && exec env %s%s%s %s"):format(q(opts.cwd or "."), unset, assign, q(M.bin),
    table.concat(t, " "))
  local out = os.tmpname()
  local p = assert(io.popen(("script -qec %s /dev/null </dev/null >%s 2>&1; echo $?"):format(q(inner), out)))
  local code = tonumber(p:read("a"):match("%d+"))
  p:close()
  local r = { code = code, out = slurp(out):gsub("\r\n", "\n") }
  os.remove(out)
  return r
end

-- Starts the binary in the background with stdout discarded, for specs that signal it;
-- returns its pid and the file its stderr goes to (the caller removes it).
function M.start(args, cwd)
  local t = {}
  for i, a in ipairs(args) do t[i] = q(a) end
  local err = os.tmpname()
  local p = assert(io.popen(("cd %s && { %s %s >/dev/null 2>%s & echo $!; }"):format(q(cwd), q(M.bin),
    table.concat(t, " "), err)))
  local pid = tonumber(p:read("l"))
  p:close()
  return pid, err
end

-- Is process pid still running?
function M.alive(pid) return os.execute(("kill -0 %d 2>/dev/null"):format(pid)) == true end

-- Waits up to `seconds` for process pid to end; true when it has.
function M.wait_exit(pid, seconds)
  for _ = 1, math.ceil(seconds / 0.05) do
    if not M.alive(pid) then return true end
    os.execute("sleep 0.05")
  end
  return not M.alive(pid)
end

-- Starts the binary in the background; returns a handle whose :wait() gives the result and
-- whose :stderr() what it has written to stderr so far.
function M.spawn(args, opts)
  opts = opts or {}
  local t = {}
  for i, a in ipairs(args) do t[i] = q(a) end
  local out, err, rc = os.tmpname(), os.tmpname(), os.tmpname()
  local env = ""
  for k, v in pairs(opts.env or {}) do env = env .. ("%s=%s "):format(k, q(v)) end
  os.execute(("cd %s && (env %s%s %s %s >%s 2>%s; echo $? >%s) &"):format(q(opts.cwd or "."), env,
    M.wrapper, q(M.bin), table.concat(t, " "), out, err, rc))
  return {
    stderr = function() return slurp(err) end,
    wait = function()
      for _ = 1, 3600 do
        local s = slurp(rc)
        if s:match("%d") then
          local r = { code = tonumber(s:match("%d+")), out = slurp(out), err = slurp(err) }
          os.remove(out)
          os.remove(err)
          os.remove(rc)
          return r
        end
        os.execute("sleep 0.05")
      end
      error("background luamigrate did not finish in 180 s")
    end,
  }
end

local function mkdir_p(path) assert(os.execute("mkdir -p " .. q(path))) end
M.mkdir_p = mkdir_p

-- project{files = {["migrations/versions/x.lua"] = "...", ...}, config = "..."} -> dir
-- The config defaults to script_location = "migrations".
function M.project(spec)
  spec = spec or {}
  local p = assert(io.popen("mktemp -d /tmp/lmproj.XXXXXX"))
  local dir = p:read("l")
  p:close()
  mkdir_p(dir .. "/migrations/versions")
  M.write(dir .. "/luamigrate.lua", spec.config or 'script_location = "migrations"\n')
  for path, text in pairs(spec.files or {}) do
    mkdir_p((dir .. "/" .. path):match("^(.*)/"))
    if text then M.write(dir .. "/" .. path, text) end -- false: the spec makes it itself
  end
  return dir
end

function M.remove(dir)
  if dir and dir:match("^/tmp/lmproj%.") then os.execute("rm -rf " .. q(dir)) end
end

-- The text of a revision file.
function M.revision(id, down, body_up, body_down, extra)
  local down_lua = down == nil and "nil"
    or type(down) == "table" and ("{ " .. table.concat((function()
      local t = {}
      for i, d in ipairs(down) do t[i] = ("%q"):format(d) end
      return t
    end)(), ", ") .. " }")
    or ("%q"):format(down)
  return ([[
--[==[ revision %s

Revision ID: %s
]==]
revision = %q
down_revision = %s
%s
function upgrade()
%s
end

function downgrade()
%s
end
]]):format(id, id, id, down_lua, extra or "", body_up or "", body_down or "")
end

-- Files for a chain of n revisions r01..rNN: each creates table t<i> and logs itself into
-- migration_log(rev, direction), so specs can tell which migrations ran, and how often.
-- opts.sleep adds pg_sleep to each; opts.broken = i makes revision i fail at its
-- second statement.
function M.chain(n, opts)
  opts = opts or {}
  local files = {}
  local ids = {}
  for i = 1, n do
    local id = ("%02d%s"):format(i, ("abcdef0123"):sub(1, 10))
    ids[i] = id
    local up = ("  op.execute(\"CREATE TABLE IF NOT EXISTS migration_log (rev text, direction text, at timestamptz DEFAULT clock_timestamp())\")\n"
      .. "  op.execute(\"CREATE TABLE t%d (id int)\")\n"
      .. "  op.execute(\"INSERT INTO migration_log (rev, direction) VALUES ($1, 'up')\", { revision })\n"):format(i)
    if opts.sleep then up = up .. ("  op.execute(\"SELECT pg_sleep(%s)\")\n"):format(opts.sleep) end
    if opts.broken == i then up = up .. "  op.execute(\"INSERT INTO no_such_table VALUES (1)\")\n" end
    local down = ("  op.execute(\"DROP TABLE t%d\")\n"
      .. "  op.execute(\"INSERT INTO migration_log (rev, direction) VALUES ($1, 'down')\", { revision })\n"):format(i)
    files[("migrations/versions/%s_step_%d.lua"):format(id, i)] =
      M.revision(id, ids[i - 1], up, down)
  end
  return files, ids
end

return M
