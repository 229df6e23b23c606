-- Evaluating luamigrate.lua: settings, types, unknown names.
local config = require "luamigrate.config"

local function write(text)
  local path = os.tmpname()
  local f = assert(io.open(path, "w"))
  f:write(text)
  f:close()
  return path
end

describe("config files", function()
  it("returns the settings the file assigns", function()
    local p = write('script_location = "db"\nversion_table = "v"\ntransaction_per_migration = false\n')
    local s = config.load(p)
    os.remove(p)
    assert.same({ script_location = "db", version_table = "v", transaction_per_migration = false }, s)
  end)

  it("lets settings use the standard library and earlier settings", function()
    local p = write('script_location = "m"\nurl = os.getenv("LUAMIGRATE_NO_SUCH_VAR") or (script_location .. "x")\n')
    local s = config.load(p)
    os.remove(p)
    assert.equal("mx", s.url)
  end)

  it("rejects an unknown setting with file:line", function()
    local p = write('script_location = "m"\nscript_locaton = "typo"\n')
    local ok, err = pcall(config.load, p)
    os.remove(p)
    assert.is_false(ok)
    assert.truthy(err:find(p .. ":2: unknown setting 'script_locaton'", 1, true), err)
  end)

  it("rejects a setting of the wrong type", function()
    local p = write('lock_timeout = "soon"\n')
    local ok, err = pcall(config.load, p)
    os.remove(p)
    assert.is_false(ok)
    assert.truthy(err:find("setting 'lock_timeout' must be a number, got string", 1, true), err)
  end)

  it("reports a syntax error with file:line", function()
    local p = write('url = \n = 3\n')
    local ok, err = pcall(config.load, p)
    os.remove(p)
    assert.is_false(ok)
    assert.truthy(err:find(p .. ":2:", 1, true), err)
  end)
end)
