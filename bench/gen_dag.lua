-- Writes a luamigrate project with N generated revisions, for the benchmarks.
--   lua5.4 bench/gen_dag.lua DIR N linear|branched [SEED]
-- linear: one chain. branched: a graph that keeps branching and merging (a branch point
-- every ~8 revisions, merges that keep 1 to 4 heads open), several labeled bases and
-- depends_on edges, so every DAG walk meets the hard cases. Each file is a real migration
-- (one CREATE TABLE), the shape a project of that size has.
local dir, n, shape, seed = arg[1], tonumber(arg[2]), arg[3], tonumber(arg[4] or "1")
assert(dir and n and (shape == "linear" or shape == "branched"),
  "usage: lua5.4 bench/gen_dag.lua DIR N linear|branched [SEED]")
math.randomseed(seed)
assert(os.execute("mkdir -p '" .. dir .. "/migrations/versions'"))
local cfg = assert(io.open(dir .. "/luamigrate.lua", "w"))
cfg:write('script_location = "migrations"\n')
cfg:close()

local ids, heads = {}, {}
local function remove_head(id)
  for i, h in ipairs(heads) do
    if h == id then
      table.remove(heads, i)
      return
    end
  end
end

for i = 1, n do
  local id = ("%012x"):format(i * 2654435761 % 0xffffffffffff)
  local down, labels, deps = {}, nil, nil
  if i == 1 or (shape == "branched" and i % 2500 == 0) then
    labels = { "line" .. i } -- a new labeled base
  elseif shape == "linear" then
    down = { ids[i - 1] }
  else
    local r = math.random()
    if #heads >= 2 and (r < 0.12 or #heads > 4) then
      local a = table.remove(heads, math.random(#heads))
      local b = table.remove(heads, math.random(#heads))
      down = { a, b }
    elseif r < 0.25 and i > 20 then
      down = { ids[i - math.random(1, 15)] } -- branch off a recent revision
    else
      down = { heads[#heads] or ids[i - 1] }
    end
    if i > 100 and math.random() < 0.03 then deps = { ids[i - math.random(50, 99)] } end
  end
  for _, d in ipairs(down) do remove_head(d) end
  heads[#heads + 1] = id
  ids[i] = id
  local function list(t)
    if not t then return "nil" end
    local s = {}
    for k, v in ipairs(t) do s[k] = ("%q"):format(v) end
    return "{ " .. table.concat(s, ", ") .. " }"
  end
  local f = assert(io.open(("%s/migrations/versions/%s_step_%d.lua"):format(dir, id, i), "w"))
  f:write(([==[
--[[ step %d

Revision ID: %s
]]
revision = %q
down_revision = %s
branch_labels = %s
depends_on = %s

function upgrade()
  op.execute("CREATE TABLE t_%s (id integer PRIMARY KEY)")
end

function downgrade()
  op.execute("DROP TABLE t_%s")
end
]==]):format(i, id, id, #down == 0 and "nil" or #down == 1 and ("%q"):format(down[1]) or list(down),
    list(labels), list(deps), id, id))
  f:close()
end
