-- The man page man/luamigrate.1 renders without warnings and documents every command and
-- every option that `luamigrate --help` and `luamigrate COMMAND --help` print.
local cli = require "helpers.cli"
local pg = require "helpers.pg"
local q = pg.shell_quote

local page = cli.src .. "/man/luamigrate.1"

local function sh(cmd)
  local p = assert(io.popen(cmd .. " 2>&1"))
  local out = p:read("a")
  local ok = p:close()
  return ok, out
end

describe("the man page", function()
  it("renders with groff without a warning", function()
    local ok, out = sh(pg.tool .. "groff -man -ww -z " .. q(page))
    assert.is_true(ok, out)
    assert.equal("", out)
  end)

  it("documents every command and option of --help", function()
    local text = cli.slurp(page):gsub("\\%-", "-")
    -- the options an options block of --help lists: "  -m, --message MESSAGE   what it does"
    local function options_of(block)
      local out = {}
      for line in (block .. "\n"):gmatch("(.-)\n") do
        local head = line:match("^  (%-.-)%s%s") or line:match("^  (%-%S+)$")
        for opt in (head or ""):gmatch("%-%-?[%w-]+") do out[#out + 1] = opt end
      end
      return out
    end
    local r = cli.run({ "--help" })
    assert.equal(0, r.code, r.err)
    local commands = {}
    for name in ("\n" .. r.out:match("\ncommands:\n(.-)\n\n")):gmatch("\n  (%l+) ") do commands[#commands + 1] = name end
    -- --help lists every command there is: the same set as the bash completion's list (a
    -- separate file, kept by hand), so a command missing from one of them fails here
    local bash = cli.slurp(cli.src .. "/completions/luamigrate.bash"):match('local commands="([^"]+)"')
    local listed = {}
    for name in bash:gmatch("%S+") do listed[#listed + 1] = name end
    local sorted = { table.unpack(commands) }
    table.sort(sorted)
    table.sort(listed)
    assert.same(listed, sorted)
    local global = options_of(r.out:match("global options:\n(.-)\n\n"))
    assert.equal(20, #global, r.out)
    for _, opt in ipairs(global) do assert.truthy(text:find(opt, 1, true), "global option " .. opt) end
    -- the SYNOPSIS names the options the usage line does
    local synopsis = text:match("\n%.SH SYNOPSIS\n(.-)\n%.SH ")
    for _, opt in ipairs { "-c", "--url", "-x", "--lock-timeout", "--lock", "-q", "-v", "--color" } do
      assert.truthy(synopsis:find("\n.RB [ " .. opt .. "\n", 1, true) or synopsis:find("\n.RB [ " .. opt .. " ", 1, true)
        or synopsis:find(" " .. opt .. " ]", 1, true), "SYNOPSIS lacks " .. opt)
    end
    for _, c in ipairs(commands) do
      assert.truthy(text:find('\n.SS "' .. c, 1, true), "command " .. c .. " has no .SS section")
      local h = cli.run({ c, "--help" })
      assert.equal(0, h.code, h.err)
      for _, opt in ipairs(options_of(h.out:match("\noptions:\n(.-)\n\n") or "")) do
        assert.truthy(text:find(opt, 1, true), c .. " " .. opt)
      end
    end
  end)
end)
