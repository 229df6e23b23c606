-- The examples in docs/*.md, executed (the marker convention is in tests/helpers/doctest.lua):
-- shell sessions against a fresh database, every op-reference example's SQL compared with
-- what `upgrade --sql` writes and then run on a database, and the reference checked against
-- the ops op.lua exports.
local pg = require "helpers.pg"
local cli = require "helpers.cli"
local doctest = require "helpers.doctest"

local q = pg.shell_quote
local PAGES = { "getting-started.md", "op-reference.md", "from-alembic.md" }

local function read_page(name)
  local text = cli.slurp(cli.src .. "/docs/" .. name)
  assert(text ~= "", "docs/" .. name .. " is missing or empty")
  return text
end

-- The one file in dir matching pattern (one "*" allowed).
local function resolve(dir, pattern)
  if not pattern:find("*", 1, true) then return dir .. "/" .. pattern end
  local p = assert(io.popen("cd " .. q(dir) .. " && ls -1d " .. pattern:gsub("[^*/%w_.-]", "\\%0") .. " 2>/dev/null"))
  local found = {}
  for l in p:lines() do found[#found + 1] = l end
  p:close()
  assert(#found == 1, ("%s matches %d files, not one"):format(pattern, #found))
  return dir .. "/" .. found[1]
end

local function diff_message(where, want, got)
  return ("%s: expected\n%s\n---- but got\n%s"):format(where, table.concat(want, "\n"), table.concat(got, "\n"))
end

-- A page's project directory, database and the wrapper that runs the binary under test.
local function new_session(page)
  local s = { page = page, norm_doc = doctest.normalizer(), norm_run = doctest.normalizer() }
  s.dir = cli.project { config = "-- replaced by the page\n" }
  os.remove(s.dir .. "/luamigrate.lua")
  os.execute("rmdir " .. q(s.dir .. "/migrations/versions") .. " " .. q(s.dir .. "/migrations"))
  s.url, s.dbname = pg.new_db("lmdocs")
  s.uri = ("postgresql:///%s?host=%s&port=%s&user=postgres"):format(s.dbname, pg.host, pg.port)
  -- `luamigrate` in a session is the binary under test (with the sanitizer preload, which
  -- psql must not get)
  s.bin = s.dir .. "/.bin"
  cli.mkdir_p(s.bin)
  cli.write(s.bin .. "/luamigrate", ("#!/bin/sh\nexec env LD_PRELOAD=%s %s \"$@\"\n")
    :format(q(os.getenv("LD_PRELOAD") or ""), q(cli.bin)))
  os.execute("chmod +x " .. q(s.bin .. "/luamigrate"))
  return s
end

local function close_session(s)
  if not s then return end
  os.execute("rm -rf " .. q(s.dir))
  pg.drop_db(s.dbname)
end

-- Runs a console block as one shell script in a terminal (so stdout and stderr interleave
-- as a user sees them); returns the transcript, "$ command" lines included.
local function run_console(s, step)
  local script = { "cd " .. q(s.dir) }
  for _, c in ipairs(doctest.commands(step.code)) do
    script[#script + 1] = "printf '%s\\n' " .. q("$ " .. c.cmd)
    script[#script + 1] = c.cmd
  end
  local file = s.dir .. "/.block.sh"
  cli.write(file, table.concat(script, "\n") .. "\n")
  local env = ("env -u LD_PRELOAD PATH=%s DATABASE_URL=%s PSQLRC=/dev/null PAGER=cat PSQL_PAGER=cat "
    .. "LUAMIGRATE_NO_CACHE=1 TZ=UTC"):format(q(s.bin .. ":" .. os.getenv("PATH")), q(s.uri))
  local p = assert(io.popen(("%s script -qec %s /dev/null </dev/null"):format(env, q("sh " .. file))))
  local out = p:read("a")
  p:close()
  -- every block starts by echoing its first command, so empty output means script(1)
  -- itself failed (no pseudo-terminal available)
  assert(out ~= "", "script(1) printed nothing: it needs a pseudo-terminal (/dev/ptmx)")
  return out
end

local function run_session_step(s, step)
  local where = ("docs/%s:%d"):format(s.page, step.line)
  local kind, path = step.kind, step.args[1]
  if kind == "console" then
    local got = s.norm_run(run_console(s, step))
    local want = s.norm_doc(step.code)
    assert(doctest.match(want, got), diff_message(where, want, got))
  elseif kind == "file" then
    if step.args[2] == "repo" then
      assert(cli.slurp(cli.src .. "/" .. path) == step.code,
        ("%s: the block differs from the repository's %s"):format(where, path))
    end
    cli.mkdir_p((s.dir .. "/" .. path):match("^(.*)/"))
    cli.write(s.dir .. "/" .. path, step.code)
  elseif kind == "copy" then
    cli.mkdir_p((s.dir .. "/" .. path):match("^(.*)/"))
    local text = cli.slurp(cli.src .. "/" .. path)
    assert(text ~= "", where .. ": nothing to copy at " .. path)
    cli.write(s.dir .. "/" .. path, text)
  elseif kind == "edit" then
    local file = resolve(s.dir, path)
    local text = cli.slurp(file)
    local first = step.code:match("^(.-)\n")
    local at = text:find("\n" .. first .. "\n", 1, true)
    assert(at, ("%s: %s has no line %q"):format(where, path, first))
    cli.write(file, text:sub(1, at) .. step.code)
  elseif kind == "shows" then
    local got = s.norm_run(cli.slurp(resolve(s.dir, path)))
    local want = s.norm_doc(step.code)
    assert(doctest.match(want, got), diff_message(where .. " (" .. path .. ")", want, got))
  else
    error(("%s: unknown doctest marker '%s'"):format(where, kind))
  end
end

-- The statements an op example emits: the --sql script between its "-- Running upgrade"
-- line and the version-table update.
local function emitted(script, rev)
  local from = script:find("-- Running upgrade fixture -> " .. rev .. "\n", 1, true)
  assert(from, "no step for " .. rev .. " in:\n" .. script)
  local body = script:sub(from):match("^[^\n]*\n(.-)\nUPDATE luamigrate_version SET")
  assert(body, "no version update after " .. rev .. " in:\n" .. script)
  return body
end

local function migration(id, down, body)
  return cli.revision(id, down, body, "")
end

describe("the documentation", function()
  local session
  after_each(function()
    close_session(session)
    session = nil
  end)

  for _, page in ipairs { "getting-started.md", "from-alembic.md" } do
    it("docs/" .. page .. ": the session runs as written", function()
      local steps = doctest.parse(read_page(page))
      assert(#steps >= 5, "docs/" .. page .. " has too few executed examples")
      session = new_session(page)
      for _, step in ipairs(steps) do run_session_step(session, step) end
    end)
  end

  it("docs/op-reference.md: every example writes the SQL shown and runs", function()
    local steps = doctest.parse(read_page("op-reference.md"))
    local setup
    for _, st in ipairs(steps) do if st.kind == "setup" then setup = st end end
    assert(setup, "docs/op-reference.md has no setup block")
    local s = new_session("op-reference.md")
    session = s
    -- each example shows its op's statements, not the run's SET LOCAL lock_timeout
    cli.write(s.dir .. "/luamigrate.lua", 'script_location = "migrations"\nmigration_lock_timeout = false\n')
    cli.mkdir_p(s.dir .. "/migrations/versions")
    cli.write(s.dir .. "/migrations/versions/fixture.lua", migration("fixture", nil, setup.code))
    local function lm(...)
      return cli.run({ "--url", s.url, ... }, { cwd = s.dir, env = { LUAMIGRATE_NO_CACHE = "1" } })
    end
    local r = lm("upgrade", "fixture")
    assert.equal(0, r.code, "setup block: " .. r.err)
    local n = 0
    for _, st in ipairs(steps) do
      if st.kind == "op" then
        n = n + 1
        local where = ("docs/op-reference.md:%d (%s)"):format(st.line, st.args[1])
        local rev = ("ex%03d"):format(n)
        local file = ("%s/migrations/versions/%s.lua"):format(s.dir, rev)
        cli.write(file, migration(rev, "fixture", st.code))
        local extra, db = {}, true
        for i = 2, #st.args do
          if st.args[i] == "x" then
            extra[#extra + 1] = "-x"
            extra[#extra + 1] = st.args[i + 1]
          elseif st.args[i] == "nodb" then
            db = false
          end
        end
        local args = {}
        for _, a in ipairs(extra) do args[#args + 1] = a end
        for _, a in ipairs { "upgrade", "fixture:" .. rev, "--sql" } do args[#args + 1] = a end
        r = lm(table.unpack(args))
        assert.equal(0, r.code, where .. ": " .. r.err)
        local norm = doctest.normalizer()
        local want, got = norm(st.sql), norm(emitted(r.out, rev))
        assert(doctest.match(want, got), diff_message(where, want, got))
        if db then
          args = {}
          for _, a in ipairs(extra) do args[#args + 1] = a end
          args[#args + 1] = "upgrade"
          args[#args + 1] = rev
          args[#args + 1] = "--dry-run"
          r = lm(table.unpack(args))
          assert.equal(0, r.code, where .. ": the example failed on the database:\n" .. r.out .. r.err)
        end
        os.remove(file)
      end
    end
    assert.equal("fixture", pg.psql(s.url, "SELECT version_num FROM luamigrate_version"))
  end)

  it("docs/op-reference.md covers every op op.lua exports, each with an executed example", function()
    local text = read_page("op-reference.md")
    local examples = {}
    for _, st in ipairs(doctest.parse(text)) do
      if st.kind == "op" then examples[st.args[1]] = true end
    end
    local op = require "luamigrate.op"
    local sa = require "luamigrate.sa"
    local missing = {}
    -- every example names a real op (op.x) or sa object (sa.X, sa.Enum:create)
    for name in pairs(examples) do
      local mod, key = name:match("^(%a+)%.([%w_]+)")
      local known = mod == "op" and op or mod == "sa" and rawget(sa, key or "") and sa or nil
      if not known or rawget(known, key) == nil then missing[#missing + 1] = name .. " (no such op)" end
    end
    for name, v in pairs(op) do
      if type(v) == "function" and not name:match("^_") and not examples["op." .. name] then
        missing[#missing + 1] = "op." .. name
      end
    end
    -- every op the page gives a heading has an executed example, and names a real op
    for name in text:gmatch("\n##+ `(op%.[%w_]+)") do
      if not examples[name] then missing[#missing + 1] = name .. " (heading without example)" end
      if op[name:sub(4)] == nil then missing[#missing + 1] = name .. " (not in op.lua)" end
    end
    table.sort(missing)
    assert.same({}, missing)
    -- the sa names a migration can use are all mentioned
    local unmentioned = {}
    for name in pairs(sa) do
      if not text:find("sa." .. name, 1, true) then unmentioned[#unmentioned + 1] = "sa." .. name end
    end
    table.sort(unmentioned)
    assert.same({}, unmentioned)
  end)

  it("README links every page", function()
    local readme = cli.slurp(cli.src .. "/README.md")
    for _, page in ipairs(PAGES) do
      assert.truthy(readme:find("(docs/" .. page .. ")", 1, true), "README does not link docs/" .. page)
    end
  end)
end)
