-- luamigrate.config.resolve: the settings a run uses, with the one list of defaults applied
-- and the one set of value rules checked (src/config.c keeps neither). In-process.
local config = require "luamigrate.config"
local write = require("helpers.cli").write

-- config.resolve of a file holding `text`: ok, the settings or the error, the file's path.
local function resolve(text)
  local path = os.tmpname()
  write(path, text)
  local ok, res = pcall(config.resolve, path)
  os.remove(path)
  return ok, res, path
end

describe("config.resolve", function()
  it("fills every setting the file leaves unset from DEFAULTS", function()
    local ok, s = resolve('version_table = "v"\n')
    assert.is_true(ok)
    assert.equal("v", s.version_table)
    for k, v in pairs(config.DEFAULTS) do
      if k ~= "version_table" then assert.equal(v, s[k], k) end
    end
    assert.equal("migrations", s.script_location)
    assert.equal("session", s.lock)
    assert.equal(60, s.lock_lease)
  end)

  it("keeps false (none) for a timeout the file turns off", function()
    local ok, s = resolve('migration_lock_timeout = false\n')
    assert.is_true(ok)
    assert.is_false(s.migration_lock_timeout)
  end)

  it("refuses values outside each setting's rule, naming the file", function()
    local cases = {
      { 'on_changed_file = "stop"', 'on_changed_file must be "warn" or "error", got "stop"' },
      { "lock_retries = 2.5", "lock_retries must be a whole number from 0 to 20" },
      { "lock_retries = 21", "lock_retries must be a whole number from 0 to 20" },
      { "lock_retries = -1", "lock_retries must be a whole number from 0 to 20" },
      { "lock_lease = 4", "lock_lease must be from 5 to 86400 seconds" },
      { "lock_lease = 0/0", "lock_lease must be from 5 to 86400 seconds" },
    }
    for _, c in ipairs(cases) do
      local ok, err, path = resolve(c[1] .. "\n")
      assert.is_false(ok, c[1])
      assert.equal(path .. ": " .. c[2], err)
    end
  end)

  it("accepts the rules' edges", function()
    for _, text in ipairs { "lock_retries = 0", "lock_retries = 20.0", "lock_lease = 5", "lock_lease = 86400",
      'on_changed_file = "error"' } do
      local ok, err = resolve(text .. "\n")
      assert.is_true(ok, tostring(err))
    end
  end)
end)
