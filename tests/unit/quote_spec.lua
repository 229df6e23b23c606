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

describe("the encoding a --sql script is quoted for", function()
  it("is UTF8 unless PGCLIENTENCODING names another", function()
    assert.equal("UTF8", quote.script_encoding(nil))
    assert.equal("UTF8", quote.script_encoding(""))
    assert.equal("LATIN1", quote.script_encoding("LATIN1"))
    assert.equal("SET client_encoding = 'EUC_JP'", require("luamigrate.offline").preamble("EUC_JP"))
  end)

  it("refuses encodings in which a character's second byte can be a backslash", function()
    for _, name in ipairs { "SJIS", "Shift_JIS", "win932", "BIG5", "GBK", "GB18030", "UHC", "JOHAB", "SHIFT_JIS_2004" } do
      local ok, err = pcall(quote.script_encoding, name)
      assert.is_false(ok, name)
      assert.truthy(err:find("PGCLIENTENCODING=" .. name .. ": a script cannot be quoted safely", 1, true), err)
    end
    assert.is_false(pcall(quote.script_encoding, "UTF8'; DROP"))
  end)
end)
