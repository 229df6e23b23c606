-- luamigrate.typed: PostgreSQL's array output and json text as Lua values, in-process.
-- (tests/cli/data_migration_spec.lua reads random arrays back from a real server.)
local typed = require "luamigrate.typed"

local function text(s) return s end
local function int(s) return math.tointeger(tonumber(s)) end

describe("typed values", function()
  it("parse arrays of one and more dimensions, quoted elements, NULL and bounds", function()
    assert.same({}, typed.parse_array("{}", text))
    assert.same({ 1, 2, 3 }, typed.parse_array("{1,2,3}", int))
    assert.same({ { 1, 2 }, { 3, 4 } }, typed.parse_array("{{1,2},{3,4}}", int))
    assert.same({ "a b", 'q"d', "\\", "NULL", "" }, typed.parse_array([[{"a b","q\"d","\\","NULL",""}]], text))
    local v = typed.parse_array("{x,NULL}", text)
    assert.equal("x", v[1])
    assert.equal(typed.NULL, v[2])
    assert.same({ 5, 6 }, typed.parse_array("[0:1]={5,6}", int))
  end)

  it("refuse malformed array text with a message, whatever the bytes", function()
    for _, bad in ipairs { "", "{", "}", "{1,2", "{1,,2}", "{\"a}", "{1}x", "[0:1]", "{{1},2", "x" } do
      local ok, err = pcall(typed.parse_array, bad, text)
      assert.is_false(ok, bad)
      assert.equal("string", type(err), bad)
      assert.truthy(err:find("malformed array", 1, true), err)
    end
    math.randomseed(7)
    local alphabet = { "{", "}", ",", '"', "\\", "a", "NULL", " ", "[", "]", ":", "=" }
    for _ = 1, 2000 do
      local parts = {}
      for i = 1, math.random(0, 12) do parts[i] = alphabet[math.random(#alphabet)] end
      local ok, err = pcall(typed.parse_array, table.concat(parts), text)
      assert.truthy(ok or type(err) == "string")
    end
  end)

  it("decode json with whole numbers as integers and null as nil or typed.NULL", function()
    assert.same({ a = 1, b = { 1.5, typed.NULL, "x" } }, typed.json('{"a": 1, "b": [1.5, null, "x"], "c": null}'))
    assert.is_nil(typed.json("null"))
    assert.equal(3, typed.json("3"))
    assert.equal("integer", math.type(typed.json("3")))
  end)

  it("decode only the columns whose types it knows", function()
    local rows = typed.rows({ { a = "{1,2}", b = "{1,2}", c = '{"k": true}', d = "12.50" } },
      { a = 1007, b = 99999, c = 3802, d = 1700 })
    assert.same({ { a = { 1, 2 }, b = "{1,2}", c = { k = true }, d = "12.50" } }, rows)
  end)
end)
