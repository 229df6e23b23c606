-- luamigrate.options, the one check of op.*, sa.* constructor and type options tables:
-- the same message, hint and migration line from each. In-process, no database.
local options = require "luamigrate.options"
local sa = require "luamigrate.sa"

-- The message of calling f, raised as a migration line would see it (this file's line).
local function message(f)
  local ok, err = pcall(f)
  assert.is_false(ok)
  return err
end

describe("options.check", function()
  it("returns the table, or {} for nil", function()
    local t = { schema = "s" }
    assert.equal(t, options.check("op.x", t, { schema = true }))
    assert.same({}, options.check("op.x", nil, { schema = true }))
  end)

  it("names the callee and the key, with the closest allowed key, at the caller's line", function()
    local err = message(function() options.check("op.x", { shema = "s" }, { schema = true, cascade = true }) end)
    assert.matches("options_spec%.lua:%d+: op%.x: unknown option 'shema'; did you mean 'schema'%?$", err)
  end)

  it("takes the allowed keys as a list too", function()
    local err = message(function() options.check("sa.String", { lenght = 1 }, { "length", "collation" }) end)
    assert.matches("sa%.String: unknown option 'lenght'; did you mean 'length'%?$", err)
  end)

  it("gives no hint for a key nothing is close to, or a key that is not a string", function()
    assert.matches("op%.x: unknown option 'zzzzzzzz'$",
      message(function() options.check("op.x", { zzzzzzzz = 1 }, { schema = true }) end))
    assert.matches("op%.x: unknown option '1'$", message(function() options.check("op.x", { 7 }, { schema = true }) end))
  end)

  it("refuses options that are not a plain table", function()
    assert.matches("op%.x: options must be a table, got string$",
      message(function() options.check("op.x", "schema", { schema = true }) end))
  end)
end)

describe("op, schema and types", function()
  it("report a misspelt option the same way", function()
    assert.matches("options_spec%.lua:%d+: sa%.Column: unknown option 'nulable'; did you mean 'nullable'%?$",
      message(function() return sa.Column("id", sa.Integer, { nulable = false }) end))
    assert.matches("options_spec%.lua:%d+: sa%.String: unknown option 'lenght'; did you mean 'length'%?$",
      message(function() return sa.String { lenght = 3 } end))
    assert.matches("options_spec%.lua:%d+: sa%.Enum: unknown option 'shema'; did you mean 'schema'%?$",
      message(function() return sa.Enum("a", { name = "e", shema = "s" }) end))
    assert.matches("options_spec%.lua:%d+: sa%.Identity: unknown option 'stat'; did you mean 'start'%?$",
      message(function() return sa.Identity { stat = 1 } end))
  end)
end)
