-- `cmake --install` into a temporary prefix puts every file where it belongs, and the
-- installed binary runs the repository's example project against the test server.
-- (pg.tool keeps a sanitizer LD_PRELOAD away from system programs; lua5.4 keeps it, since it
-- loads the instrumented core.so.)
local pg = require "helpers.pg"
local cli = require "helpers.cli"
local q = pg.shell_quote

local builddir = cli.bin:match("^(.*)/[^/]*$")

local function sh(cmd)
  local p = assert(io.popen(cmd .. " 2>&1"))
  local out = p:read("a")
  local ok = p:close()
  return ok, out
end

local function exists(path)
  local f = io.open(path, "rb")
  if f then f:close() end
  return f ~= nil
end

describe("the installed tree", function()
  local root, prefix, bin, url, dbname

  setup(function()
    root = cli.project {}
    prefix = root .. "/prefix"
    local ok, out = sh(("cmake --install %s --prefix %s"):format(q(builddir), q(prefix)))
    assert.is_true(ok, out)
    bin = prefix .. "/bin/luamigrate"
    url, dbname = pg.new_db()
  end)

  teardown(function()
    cli.remove(root)
    pg.drop_db(dbname)
  end)

  local function run(cwd, ...)
    local saved = cli.bin
    cli.bin = bin
    local r = cli.run({ ... }, { cwd = cwd })
    cli.bin = saved
    return r
  end

  it("has every file where it belongs", function()
    for _, f in ipairs {
      "bin/luamigrate",
      "share/lua/5.4/luamigrate/op.lua", "share/lua/5.4/luamigrate/sa.lua",
      "share/lua/5.4/luamigrate/autogen.lua", "share/lua/5.4/luamigrate/autogen/emit.lua",
      "share/luamigrate/luals/op.lua", "share/luamigrate/luals/sa.lua",
      "share/luamigrate/luals/migration.lua",
      "share/man/man1/luamigrate.1.gz", "share/doc/luamigrate/copyright",
      "share/lua/5.4/luamigrate/helpers/enum.lua",
      "share/bash-completion/completions/luamigrate",
      "share/zsh/vendor-completions/_luamigrate",
      "share/doc/luamigrate/README.md", "share/doc/luamigrate/locking.md",
    } do
      assert.is_true(exists(prefix .. "/" .. f), f)
    end
    local _, found = sh("cd " .. q(prefix) .. " && find . -name core.so")
    assert.truthy(found:match("^%./lib[^\n]*/lua/5%.4/luamigrate/core%.so\n$"), found)
    local ok, out = sh(pg.tool .. "man --warnings -l " .. q(prefix .. "/share/man/man1/luamigrate.1.gz") .. " | head -n 3")
    assert.is_true(ok, out)
    assert.truthy(out:find("LUAMIGRATE(1)", 1, true), out)
    -- the man page is gzipped (Debian policy), the licence installed as Debian's copyright file
    ok, out = sh("gzip -t " .. q(prefix .. "/share/man/man1/luamigrate.1.gz"))
    assert.is_true(ok, out)
    local copyright = cli.slurp(prefix .. "/share/doc/luamigrate/copyright")
    assert.truthy(copyright:find("License: Expat\n MIT License\n .\n Copyright (c) 2026 the luamigrate authors\n", 1, true), copyright)
    assert.truthy(copyright:find(" SOFTWARE.\n$"), copyright)
  end)

  it("ships the helpers as a module: require \"luamigrate.helpers.enum\" in lua5.4", function()
    local _, found = sh("cd " .. q(prefix) .. " && find . -name core.so")
    local libdir = prefix .. "/" .. found:match("^%./(.*)/luamigrate/core%.so")
    local ok, out = sh(("env LUA_PATH=%s LUA_CPATH=%s lua5.4 -e %s"):format(
      q(prefix .. "/share/lua/5.4/?.lua"), q(libdir .. "/?.so"),
      q('print(type(require("luamigrate.helpers.enum").change_enum_and_alter_tables))')))
    assert.is_true(ok, out)
    assert.equal("function\n", out)
  end)

  it("loads the installed Lua modules and core.so into lua5.4", function()
    local _, found = sh("cd " .. q(prefix) .. " && find . -name core.so")
    local libdir = prefix .. "/" .. found:match("^%./(.*)/luamigrate/core%.so")
    local ok, out = sh(("env LUA_PATH=%s LUA_CPATH=%s lua5.4 -e %s"):format(
      q(prefix .. "/share/lua/5.4/?.lua"), q(libdir .. "/?.so"),
      q('local op = require "luamigrate.op"; local sa = require "luamigrate.sa"; '
        .. 'print(type(op.create_table), sa.String(20):sql(), type(require("luamigrate.autogen").render))')))
    assert.is_true(ok, out)
    assert.equal("function\tVARCHAR(20)\tfunction\n", out)
  end)

  it("runs the example project: upgrade head, current, check", function()
    local proj = root .. "/example"
    local ok, out = sh(("mkdir -p %s && cp -R %s %s %s && rm -f %s"):format(q(proj),
      q(cli.src .. "/luamigrate.lua"), q(cli.src .. "/migrations"), q(proj),
      q(proj .. "/migrations/versions/.luamigrate_cache")))
    assert.is_true(ok, out)
    local r = run(proj, "--url", url, "upgrade", "head")
    assert.equal(0, r.code, r.err)
    assert.truthy((r.out .. r.err):find("Running upgrade 27133ce191df -> 3c52d30040ed", 1, true), r.out .. r.err)
    r = run(proj, "--url", url, "current")
    assert.equal(0, r.code, r.err)
    assert.equal("3c52d30040ed (head)\n", r.out)
    r = run(proj, "--url", url, "check")
    assert.equal(0, r.code, r.out .. r.err)
    assert.equal("t", pg.psql(url, "SELECT 'EMPLOYEE' = ANY (enum_range(NULL::role_enum)::text[])"))
  end)

  it("init writes a .luarc.json pointing at the installed annotations, once", function()
    local proj = root .. "/fresh"
    assert.is_true(os.execute("mkdir " .. q(proj)))
    local r = run(proj, "init", "migrations")
    assert.equal(0, r.code, r.err)
    assert.truthy(r.out:find("Generating ./.luarc.json ... done", 1, true) or
      r.out:find("Generating .luarc.json ... done", 1, true), r.out)
    local _, real = sh("realpath " .. q(prefix .. "/share/luamigrate/luals"))
    real = real:gsub("\n$", "")
    assert.equal('{\n  "runtime.version": "Lua 5.4",\n  "workspace.library": ["' .. real .. '"]\n}\n',
      cli.slurp(proj .. "/.luarc.json"))
    -- the library is outside the project and not in a standard place: the path is this machine's
    assert.truthy(r.out:find("Note: ./.luarc.json names the LuaLS library by where this machine has it", 1, true)
      or r.out:find("Note: .luarc.json names the LuaLS library by where this machine has it", 1, true), r.out)
    -- a project that has one keeps it
    os.execute("rm -rf " .. q(proj .. "/migrations") .. " " .. q(proj .. "/luamigrate.lua"))
    cli.write(proj .. "/.luarc.json", "{}\n")
    r = run(proj, "init", "migrations")
    assert.equal(0, r.code, r.err)
    assert.truthy(r.out:find("Leaving the existing .luarc.json", 1, true), r.out)
    assert.equal("{}\n", cli.slurp(proj .. "/.luarc.json"))
  end)

  it("init names a library installed inside the project relative to it, for teammates", function()
    local proj = root .. "/vendored"
    assert.is_true(os.execute("mkdir " .. q(proj)))
    local ok, out = sh(("cmake --install %s --prefix %s"):format(q(builddir), q(proj .. "/tools")))
    assert.is_true(ok, out)
    local saved = cli.bin
    cli.bin = proj .. "/tools/bin/luamigrate"
    local r = cli.run({ "init", "migrations" }, { cwd = proj })
    cli.bin = saved
    assert.equal(0, r.code, r.err)
    assert.equal('{\n  "runtime.version": "Lua 5.4",\n  "workspace.library": ["tools/share/luamigrate/luals"]\n}\n',
      cli.slurp(proj .. "/.luarc.json"))
    assert.falsy(r.out:find("Note:", 1, true), r.out)
  end)
end)
