-- The shell completions in completions/: the bash one is sourced into bash and driven as
-- bash drives it (COMP_WORDS, COMP_CWORD, then COMPREPLY); the zsh one must parse.
local cli = require "helpers.cli"
local pg = require "helpers.pg"
local fixture = require "helpers.fixture"
local q = pg.shell_quote

local bindir = cli.bin:match("^(.*)/[^/]*$")
local script = cli.src .. "/completions/luamigrate.bash"

-- complete(cwd, words...) -> the candidates bash would offer for the last word.
local function complete(cwd, ...)
  local words = { ... }
  local quoted = {}
  for i, w in ipairs(words) do quoted[i] = q(w) end
  local cmd = ("cd %s && PATH=%s:$PATH %sbash --norc --noprofile -c %s"):format(q(cwd), q(bindir), pg.tool, q(
    ("source %s; COMP_WORDS=(%s); COMP_CWORD=%d; _luamigrate; printf '%%s\\n' \"${COMPREPLY[@]}\"")
      :format(q(script), table.concat(quoted, " "), #words - 1)))
  local p = assert(io.popen(cmd))
  local out = {}
  for line in p:lines() do
    if line ~= "" then out[#out + 1] = line end
  end
  assert(p:close())
  table.sort(out)
  return out
end

describe("bash completion", function()
  local fx = fixture.new { scope = "all" }
  local dir, empty, ids

  setup(function()
    local files
    files, ids = cli.chain(3)
    dir = fx:project { files = files }
    empty = fx:project {}
    os.execute("rm -f " .. q(empty .. "/luamigrate.lua"))
  end)

  it("completes commands and global options", function()
    assert.same({ "heads", "help", "history" }, complete(dir, "luamigrate", "h"))
    assert.same({ "--lock", "--lock-timeout" }, complete(dir, "luamigrate", "--lo"))
    assert.same({ "session", "table", "xact" }, complete(dir, "luamigrate", "--lock", ""))
    assert.same({ "stamp", "status" }, complete(dir, "luamigrate", "-q", "--lock", "xact", "st"))
    assert.same({ "always", "auto" }, complete(dir, "luamigrate", "--color", "a"))
    assert.same({ "stamp", "status" }, complete(dir, "luamigrate", "--color", "never", "-v", "st"))
    assert.same({ "--verbose", "--version" }, complete(dir, "luamigrate", "--ver"))
  end)

  it("completes each command's options", function()
    assert.same({ "--autogenerate" }, complete(dir, "luamigrate", "revision", "--au"))
    assert.same({ "--dry-run" }, complete(dir, "luamigrate", "upgrade", "--d"))
    assert.same({ "--check-heads" }, complete(dir, "luamigrate", "current", "--ch"))
    assert.same({ "--indicate-current" }, complete(dir, "luamigrate", "history", "--in"))
    assert.same({ "--purge" }, complete(dir, "luamigrate", "stamp", "--p"))
    assert.same({ "--output" }, complete(dir, "luamigrate", "convert", "--ou"))
    assert.same({ "alembic" }, complete(dir, "luamigrate", "convert", "a"))
  end)

  it("completes revision targets from the project", function()
    local want = { "head", "heads" }
    for _, id in ipairs(ids) do want[#want + 1] = id end
    table.sort(want)
    assert.same(want, complete(dir, "luamigrate", "upgrade", ""))
    assert.same({ ids[2] }, complete(dir, "luamigrate", "downgrade", ids[2]:sub(1, 2)))
    assert.same({ "base" }, complete(dir, "luamigrate", "downgrade", "ba"))
    assert.same({ ids[1] .. ":" .. ids[3] },
      complete(dir, "luamigrate", "history", "-r", ids[1] .. ":" .. ids[3]:sub(1, 2)))
    assert.same({ ids[3] }, complete(dir, "luamigrate", "revision", "--head", ids[3]:sub(1, 2)))
  end)

  it("offers branch labels as targets, and commands after help", function()
    local V = "migrations/versions/"
    local labelled = cli.project { files = {
      [V .. "aaaa_a.lua"] = cli.revision("aaaa", nil, nil, nil, 'branch_labels = { "billing" }\n'),
      [V .. "bbbb_b.lua"] = cli.revision("bbbb", nil, nil, nil, 'branch_labels = { "auth" }\n'),
    } }
    assert.same({ "auth@head", "billing@head", "head", "heads" },
      (function()
        local t = {}
        for _, c in ipairs(complete(labelled, "luamigrate", "upgrade", "")) do
          if not c:match("^%x%x%x%x$") then t[#t + 1] = c end
        end
        return t
      end)())
    assert.same({ "billing@head" }, complete(labelled, "luamigrate", "upgrade", "bi"))
    assert.same({ "billing@base" }, complete(labelled, "luamigrate", "downgrade", "bi"))
    assert.same({ "billing", "billing@head" }, complete(labelled, "luamigrate", "show", "bi"))
    assert.same({ "aaaa" }, complete(labelled, "luamigrate", "repair", "a"))
    cli.remove(labelled)
    assert.same({ "repair", "revision" }, complete(dir, "luamigrate", "help", "re"))
    assert.same({ "heads", "help", "history" }, complete(dir, "luamigrate", "h"))
  end)

  it("reads the project named by -c from anywhere", function()
    assert.same({ ids[1] }, complete("/", "luamigrate", "-c", dir .. "/luamigrate.lua", "show", ids[1]:sub(1, 2)))
  end)

  it("offers only the fixed targets, silently, without a project", function()
    assert.same({ "head", "heads" }, complete(empty, "luamigrate", "upgrade", ""))
    assert.same({}, complete(empty, "luamigrate", "show", "0"))
  end)
end)

describe("zsh completion", function()
  local fx = fixture.new { scope = "all" }
  local dir, ids, labelled

  setup(function()
    local files
    files, ids = cli.chain(2)
    dir = fx:project { files = files }
    labelled = fx:project { files = {
      ["migrations/versions/aaaa_a.lua"] = cli.revision("aaaa", nil, nil, nil, 'branch_labels = { "billing" }\n'),
    } }
  end)

  -- What the terminal shows after typing line and two TABs in an interactive zsh.
  local function zcomplete(cwd, line)
    local p = assert(io.popen(("%stimeout 60 zsh %s %s %s %s %s"):format(pg.tool,
      q(cli.src .. "/tests/helpers/zcomplete.zsh"), q(cli.src .. "/completions"), q(bindir), q(cwd), q(line))))
    local out = p:read("a")
    assert.is_true(p:close(), out)
    return out
  end

  it("parses", function()
    assert.is_true(os.execute("command -v zsh >/dev/null"), "zsh is missing (scripts/deps.sh installs it)")
    assert.is_true(os.execute(pg.tool .. "zsh -n " .. q(cli.src .. "/completions/_luamigrate")))
  end)

  it("completes commands, option values and revision targets", function()
    assert.truthy(zcomplete(dir, "luamigrate upg"):find(">luamigrate upgrade ", 1, true))
    local out = zcomplete(dir, "luamigrate --lock ")
    assert.truthy(out:find("session%s+table%s+xact"), out)
    out = zcomplete(dir, "luamigrate upgrade ")
    assert.truthy(out:find(ids[1] .. "%s+" .. ids[2] .. "%s+head%s+heads"), out)
    out = zcomplete(dir, "luamigrate --color ")
    assert.truthy(out:find("always%s+auto%s+never"), out)
    out = zcomplete(labelled, "luamigrate upgrade ")
    assert.truthy(out:find("billing@head", 1, true), out)
    out = zcomplete(labelled, "luamigrate downgrade ")
    assert.truthy(out:find("billing@base", 1, true), out)
    out = zcomplete("/", "luamigrate --lock xact --color never -c " .. dir .. "/luamigrate.lua downgrade ")
    assert.truthy(out:find(ids[1] .. "%s+" .. ids[2] .. "%s+base"), out)
  end)
end)
