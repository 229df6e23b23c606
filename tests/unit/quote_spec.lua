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

describe("names PostgreSQL would truncate", function()
  local LONG = "ix_" .. ("long_column_name_"):rep(4) -- 71 characters

  it("refuses a plain identifier longer than 63 bytes", function()
    assert.has_error(function() quote.ident(LONG) end,
      'identifier "' .. LONG .. '" is 71 bytes long; PostgreSQL keeps 63 and would silently truncate it')
    assert.equal(("a"):rep(63), quote.ident(("a"):rep(63)))
  end)

  it("shortens an op.f() name as SQLAlchemy does: 55 characters, _, the MD5's last 4 hex digits", function()
    -- the expected name computed by Python's hashlib, as SQLAlchemy's compiler computes it
    assert.equal("ix_long_column_name_long_column_name_long_column_name_l_c416", quote.ident(quote.conv(LONG)))
    assert.equal("short", quote.ident(quote.conv("short")))
    assert.is_true(quote.is_conv(quote.conv(quote.conv("x"))))
  end)

  it("still refuses an op.f() name whose shortened form is over 63 bytes", function()
    -- 55 two-byte characters: SQLAlchemy counts characters, PostgreSQL bytes
    local ok, err = pcall(quote.ident, quote.conv(("ü"):rep(70)))
    assert.is_false(ok)
    assert.truthy(err:find("is 115 bytes long; PostgreSQL keeps 63", 1, true), err)
  end)

  it("refuses values that are not strings, and NUL bytes in literals", function()
    assert.has_error(function() quote.ident(5) end, "identifier must be a string, got number")
    assert.has_error(function() quote.literal(true) end, "literal must be a string, got boolean")
    assert.has_error(function() quote.literal("a\0b") end, "a string literal cannot contain a NUL byte")
    assert.has_error(function() quote.conv(5) end, "op.f: name must be a string, got number")
  end)
end)
