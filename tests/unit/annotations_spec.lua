-- The LuaLS annotation files in editor/luals/ describe the real op, sa, migration globals and
-- config settings: every public name exported is annotated, every annotated name exists, the
-- parameter counts agree, and each annotated function has a description and its @params.
local src = os.getenv("LUAMIGRATE_SRC") or "."
local dir = src .. "/editor/luals/"

local function slurp(path)
  local f = assert(io.open(path, "rb"))
  local s = f:read("a")
  f:close()
  return s
end

-- Loads an annotation file as plain Lua; returns the global table it defines and its text.
local function load_meta(file, global)
  local text = slurp(dir .. file)
  local env = {}
  local chunk = assert(load(text, "@" .. file, "t", env))
  local ret = chunk()
  assert.equal(env[global], ret, file .. " must return the table it declares")
  return ret, text
end

local function sorted_keys(t, filter)
  local out = {}
  for k in next, t do
    if type(k) == "string" and (not filter or filter(k)) then out[#out + 1] = k end
  end
  table.sort(out)
  return out
end

local function public(k) return not k:match("^_") end

-- For every `function prefix.name(args)` or `prefix.name = ...` at the top level of text:
-- the comment block right above must hold a description line and, for functions, one
-- ---@param per argument. Returns a list of problems.
local function doc_problems(text, prefix)
  local problems, block = {}, {}
  for line in (text .. "\n"):gmatch("(.-)\n") do
    local name, args = line:match("^function " .. prefix .. "%.([%w_]+)%((.-)%)")
    local field = line:match("^" .. prefix .. "%.([%w_]+) = ")
    local what = name or field
    if what then
      local has_desc = false
      local params = {}
      for _, b in ipairs(block) do
        if b:match("^%-%-%- %S") then has_desc = true end
        local p = b:match("^%-%-%-@param ([%w_.]+)")
        if p then params[p] = true end
      end
      if not has_desc then problems[#problems + 1] = prefix .. "." .. what .. ": no description line" end
      for a in (args or ""):gmatch("[^,%s]+") do
        if not params[a] then
          problems[#problems + 1] = ("%s.%s: no ---@param for '%s'"):format(prefix, what, a)
        end
      end
    end
    if line:match("^%-%-%-") then block[#block + 1] = line else block = {} end
  end
  return problems
end

local function same_arity(real, meta, name)
  local ri, mi = debug.getinfo(real, "u"), debug.getinfo(meta, "u")
  assert.equal(ri.nparams, mi.nparams, name .. ": parameter count differs from the annotation")
  assert.equal(ri.isvararg, mi.isvararg, name .. ": varargs differ from the annotation")
end

describe("the LuaLS annotations", function()
  it("annotate every public op function and nothing that does not exist", function()
    local op = require "luamigrate.op"
    local meta, text = load_meta("op.lua", "op")
    assert.same(sorted_keys(op, public), sorted_keys(meta))
    for _, k in ipairs(sorted_keys(op, public)) do
      assert.equal(type(op[k]), type(meta[k]), "op." .. k)
      if type(op[k]) == "function" then same_arity(op._unwrapped[k] or op[k], meta[k], "op." .. k) end
    end
    assert.same({}, doc_problems(text, "op"))
  end)

  it("annotate every sa type and schema constructor and nothing more", function()
    local sa = require "luamigrate.sa"
    local meta, text = load_meta("sa.lua", "sa")
    assert.same(sorted_keys(sa, public), sorted_keys(meta))
    for _, k in ipairs(sorted_keys(sa, public)) do
      assert.equal(type(rawget(sa, k)), type(meta[k]), "sa." .. k)
      if type(rawget(sa, k)) == "function" then same_arity(rawget(sa, k), meta[k], "sa." .. k) end
    end
    assert.same({}, doc_problems(text, "sa"))
  end)

  it("annotate every postgresql type and nothing more", function()
    local postgresql = require "luamigrate.postgresql"
    local meta, text = load_meta("postgresql.lua", "postgresql")
    assert.same(sorted_keys(postgresql, public), sorted_keys(meta))
    assert.same({}, doc_problems(text, "postgresql"))
  end)

  it("annotate the migration globals and every config setting", function()
    local env = require "luamigrate.env"
    local config = require "luamigrate.config"
    local text = slurp(dir .. "migration.lua")
    local globals = {}
    for name in text:gmatch("\n([%a_][%w_]*) = nil\n") do globals[name] = true end
    assert.same(sorted_keys(env.MIGRATION_GLOBALS), sorted_keys(globals))
    local fields = {}
    for name in text:gmatch("\n%-%-%-@field ([%w_]+)%?") do fields[name] = true end
    assert.same(sorted_keys(config.KNOWN), sorted_keys(fields))
  end)

  it("notice a missing parameter annotation", function()
    local problems = doc_problems("--- Does a thing.\n---@param a string\nfunction op.f(a, b) end\n"
      .. "function op.g() end\n", "op")
    assert.same({ "op.f: no ---@param for 'b'", "op.g: no description line" }, problems)
  end)
end)
