-- Identifier and literal quoting used by every op and by --sql output.
local quote = require "luamigrate.quote"

describe("identifier quoting", function()
  it("leaves plain lowercase names bare", function()
    assert.equal("users", quote.ident("users"))
    assert.equal("_t2", quote.ident("_t2"))
  end)

  it("quotes capitals, spaces, leading digits and non-ASCII", function()
    assert.equal('"Users"', quote.ident("Users"))
    assert.equal('"my table"', quote.ident("my table"))
    assert.equal('"1abc"', quote.ident("1abc"))
    assert.equal('"café"', quote.ident("café"))
  end)

  it("quotes reserved words but not unreserved ones", function()
    assert.equal('"select"', quote.ident("select"))
    assert.equal('"user"', quote.ident("user"))
    assert.equal('"order"', quote.ident("order"))
    assert.equal("name", quote.ident("name"))
    assert.equal("role", quote.ident("role"))
  end)

  it("doubles embedded double quotes", function()
    assert.equal('"a""b; DROP TABLE x; --"', quote.ident('a"b; DROP TABLE x; --'))
  end)

  it("refuses empty names and NUL bytes", function()
    assert.has_error(function() quote.ident("") end, "identifier must not be empty")
    assert.has_error(function() quote.ident("a\0b") end, "identifier must not contain a NUL byte")
  end)

  it("qualifies with a schema", function()
    assert.equal('app."Role"', quote.qualified("app", "Role"))
    assert.equal("t", quote.qualified(nil, "t"))
  end)
end)

describe("literal quoting", function()
  it("doubles single quotes", function()
    assert.equal("'it''s'", quote.literal("it's"))
  end)

  it("uses E'' with doubled backslashes when a backslash is present", function()
    assert.equal("E'a\\\\b'", quote.literal("a\\b"))
  end)

  it("keeps unicode as is", function()
    assert.equal("'ünï'", quote.literal("ünï"))
  end)
end)
