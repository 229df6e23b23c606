-- The rockspec: `luarocks make --tree DIR` builds luamigrate.core and installs the Lua layer
-- into a temporary tree, and a plain lua5.4 program loading them from there runs its
-- migrations in-process (core.main) against the test server.
local pg = require "helpers.pg"
local cli = require "helpers.cli"
local q = pg.shell_quote

local function sh(cmd)
  local p = assert(io.popen(cmd .. " 2>&1"))
  local out = p:read("a")
  local ok = p:close()
  return ok, out
end

local function rockspec()
  local p = assert(io.popen("cd " .. q(cli.src) .. " && ls luamigrate-*-1.rockspec"))
  local name = p:read("l")
  p:close()
  return name
end

describe("the rockspec", function()
  local root, tree, url, dbname

  setup(function()
    root = cli.project {}
    url, dbname = pg.new_db()
  end)

  teardown(function()
    cli.remove(root)
    pg.drop_db(dbname)
  end)

  it("names the version CMakeLists.txt builds, and every C source and Lua module", function()
    local name = rockspec()
    local cmake = cli.slurp(cli.src .. "/CMakeLists.txt")
    assert.equal("luamigrate-" .. cmake:match("project%(luamigrate VERSION ([%d.]+)") .. "-1.rockspec", name)
    local spec = cli.slurp(cli.src .. "/" .. name)
    -- lm_core's sources, ${VAR}s of set(VAR ...) expanded, against the rockspec's list
    local core = {}
    for src in cmake:match("add_library%(lm_core OBJECT\n(.-)%)"):gmatch("%S+") do
      local var = src:match("^%${([%w_]+)}$")
      if var then
        for s in cmake:match("set%(" .. var .. "%s(.-)%)"):gmatch("%S+") do
          core[#core + 1] = (s:gsub("^%${CMAKE_SOURCE_DIR}/", ""))
        end
      else
        core[#core + 1] = src
      end
    end
    local listed = {}
    for src in spec:match("sources = (%b{})"):gmatch('"([^"]+)"') do listed[#listed + 1] = src end
    table.sort(core)
    table.sort(listed)
    assert.same(core, listed)
    local p = assert(io.popen("cd " .. q(cli.src .. "/lua") .. " && find luamigrate -name '*.lua' | sort"))
    for path in p:lines() do
      local mod = path:gsub("%.lua$", ""):gsub("/", ".")
      assert.truthy(spec:find(('["%s"] = "lua/%s"'):format(mod, path), 1, true), mod .. " is not in " .. name)
    end
    p:close()
  end)

  it("builds with luarocks make --tree and runs migrations in-process from the tree", function()
    -- a copy of the sources: the builtin build compiles where the sources are
    local src = root .. "/src-copy"
    tree = root .. "/tree"
    local ok, out = sh(("mkdir -p %s && cd %s && cp -R src include lua %s %s"):format(q(src), q(cli.src),
      q(rockspec()), q(src)))
    assert.is_true(ok, out)
    ok, out = sh(("cd %s && %sluarocks --lua-version=5.4 make --tree %s %s"):format(q(src), pg.tool, q(tree),
      q(rockspec())))
    assert.is_true(ok, out)
    local _, found = sh("cd " .. q(tree) .. " && find . -name core.so -o -name enum.lua | sort")
    assert.equal("./lib/lua/5.4/luamigrate/core.so\n./share/lua/5.4/luamigrate/helpers/enum.lua\n", found)

    -- the example project, migrated by a Lua program at its start-up
    local proj = root .. "/app"
    ok, out = sh(("mkdir -p %s && cp -R %s %s %s && rm -f %s"):format(q(proj), q(cli.src .. "/luamigrate.lua"),
      q(cli.src .. "/migrations"), q(proj), q(proj .. "/migrations/versions/.luamigrate_cache")))
    assert.is_true(ok, out)
    local program = ([[
package.path = %q .. ";" .. package.path
package.cpath = %q .. ";" .. package.cpath
local core = require "luamigrate.core"
local status = core.main { "--url", %q, "upgrade", "head" }
print("status", status, package.searchpath("luamigrate.op", package.path))
]]):format(tree .. "/share/lua/5.4/?.lua", tree .. "/lib/lua/5.4/?.so", url)
    cli.write(proj .. "/app.lua", program)
    ok, out = sh(("cd %s && env -u LUA_PATH -u LUA_CPATH -u LUA_PATH_5_4 -u LUA_CPATH_5_4 %slua5.4 app.lua"):format(
      q(proj), pg.tool))
    assert.is_true(ok, out)
    assert.truthy(out:find("Running upgrade 27133ce191df -> 3c52d30040ed, add EMPLOYEE role", 1, true), out)
    assert.truthy(out:find("status\t0\t" .. tree .. "/share/lua/5.4/luamigrate/op.lua\n", 1, true), out)
    assert.equal("3c52d30040ed", pg.psql(url, "SELECT version_num FROM luamigrate_version"))
    assert.equal("t", pg.psql(url, "SELECT 'EMPLOYEE' = ANY (enum_range(NULL::role_enum)::text[])"))
    -- a second start-up finds nothing to do; a bad target is its exit status, not a crash
    cli.write(proj .. "/app.lua", program:gsub('"head"', '"nosuchrev"'))
    ok, out = sh(("cd %s && %slua5.4 app.lua"):format(q(proj), pg.tool))
    assert.is_true(ok, out)
    assert.truthy(out:find("Can't locate revision identified by 'nosuchrev'", 1, true), out)
    assert.truthy(out:find("status\t2\t", 1, true), out)
  end)
end)
