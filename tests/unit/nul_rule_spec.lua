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
