-- quote.has_nul, the one NUL-byte test of the Lua layer, and the refusals built on it.
-- In-process, no database.
local quote = require "luamigrate.quote"

describe("quote.has_nul", function()
  it("is true only for a string holding a NUL byte", function()
    assert.is_true(quote.has_nul("a\0b"))
    assert.is_true(quote.has_nul("\0"))
    assert.is_false(quote.has_nul("ab"))
    assert.is_false(quote.has_nul(""))
    assert.is_false(quote.has_nul(nil))
    assert.is_false(quote.has_nul({ "a\0" }))
    assert.is_false(quote.has_nul(0))
  end)

  it("makes names and literals refuse the byte", function()
    local ok, err = pcall(quote.ident, "us\0ers")
    assert.is_false(ok)
    assert.matches("identifier must not contain a NUL byte$", err)
    ok, err = pcall(quote.literal, "x\0")
    assert.is_false(ok)
    assert.matches("a string literal cannot contain a NUL byte$", err)
    assert.equal("'x'", quote.literal("x"))
  end)
end)

describe("core.nul_free, the first look op calls take at their arguments", function()
  local core = require "luamigrate.core"

  it("looks through values and string keys, tables to a depth of six, raw", function()
    assert.is_true(core.nul_free({ "a", { b = "c", { "d", 1, true } } }))
    assert.is_false(core.nul_free({ "a", { b = "c\0" } }))
    assert.is_false(core.nul_free({ ["k\0"] = 1 }))
    assert.is_true(core.nul_free({ [{ "t\0" }] = 1 })) -- a table as a key is not an argument's text
    assert.is_false(core.nul_free({ { { { { { "x\0" } } } } } })) -- in the sixth table
    assert.is_true(core.nul_free({ { { { { { { "x\0" } } } } } } })) -- in a seventh: not looked at
    local proxy = setmetatable({}, { __index = function() return "m\0" end, __pairs = error })
    assert.is_true(core.nul_free({ proxy }))
  end)

  it("gives up on a graph of shared tables too large to walk, and op then walks it itself", function()
    local t = { "ok" }
    for _ = 1, 4 do t = { t, t, t, t, t, t, t, t, t, t } end -- 10,000 paths to one table
    assert.is_nil(core.nul_free(t))
    local op = require "luamigrate.op"
    local sa = require "luamigrate.sa"
    local err_of = require("helpers.raised").message
    local msg = err_of(core.offline_run, function() end, {}, function()
      op.create_table("t", sa.Column("id", sa.Integer), { t, "n\0" })
    end)
    assert.truthy(msg:find("op.create_table: options[2] contains a NUL byte", 1, true), msg)
  end)
end)
