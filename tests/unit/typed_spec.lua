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

  it("encode json as Python's json.dumps(sort_keys=True) writes it, the same text each run", function()
    local cases = {
      { { b = 1, a = { 1, 2.5, 0.1, 1e300, -3.0 }, ["é k"] = "line\n\"q\" \1", c = {}, d = { e = false } },
        [[{"b": 1, "a": [1, 2.5, 0.1, 1e300, -3.0], "\u00e9 k": "line\n\"q\" \u0001", "c": {}, "d": {"e": False}}]] },
      { { typed.NULL, "x", { y = "z" } }, [=[[None, "x", {"y": "z"}]]=] },
      { "a/b \\/", [["a/b \\/"]] }, { 7, "7" }, { true, "True" },
      -- floats as Python's repr writes them (fixed notation up to 1e16)
      { { 1e15, 1e16, 0.1 + 0.2, 1e-05, 123456789.125 }, "[1e15, 1e16, 0.1 + 0.2, 1e-05, 123456789.125]" },
    }
    local py = { "import json" }
    for i, c in ipairs(cases) do
      py[i + 1] = ("print(json.dumps(%s, sort_keys=True, ensure_ascii=False))"):format(c[2])
    end
    local tmp = os.tmpname()
    local f = assert(io.open(tmp, "w"))
    f:write(table.concat(py, "\n"), "\n")
    f:close()
    local p = assert(io.popen("/usr/bin/python3 " .. tmp .. " 2>&1"))
    local want = {}
    for l in p:lines() do want[#want + 1] = l end
    p:close()
    os.remove(tmp)
    local got = {}
    for i, c in ipairs(cases) do
      got[i] = assert(typed.encode_json(c[1]))
      assert.same(c[1], typed.json(got[i]) or typed.NULL) -- and reads back as the same value
    end
    assert.same(want, got)
  end)

  it("refuse to encode what JSON cannot hold, saying where in the value", function()
    local cyc = {}
    cyc.self = cyc
    for _, c in ipairs {
      { { a = { math.huge } }, "the value.a[1] is Infinity, which JSON cannot hold" },
      { { [true] = 1 }, "the value has the key true: give a sequence (an array) or string keys (an object)" },
      { { -math.huge, 0 / 0 }, "the value[1] is -Infinity, which JSON cannot hold" },
      { { 1, x = 2 }, "the value mixes a sequence with string keys (x)" },
      { { f = print }, "the value.f is a function, which JSON cannot hold" },
      { cyc, "the value.self contains itself" },
    } do
      local v, err = typed.encode_json(c[1])
      assert.is_nil(v)
      assert.equal(c[2], err)
    end
  end)

  it("decode only the columns whose types it knows", function()
    local rows = typed.rows({ { a = "{1,2}", b = "{1,2}", c = '{"k": true}', d = "12.50" } },
      { a = 1007, b = 99999, c = 3802, d = 1700 })
    assert.same({ { a = { 1, 2 }, b = "{1,2}", c = { k = true }, d = "12.50" } }, rows)
  end)
end)
