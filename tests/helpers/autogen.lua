-- What the autogenerate specs share: a project with its own database stamped at base, the
-- database's schema as sorted pg_dump -s lines (to compare a downgrade with the schema
-- before), and one autogenerate round (schema.lua written, `check` finds a difference,
-- the revision written and read back).
local pg = require "helpers.pg"
local cli = require "helpers.cli"

local M = {}

-- (busted's assert is the spec's, not this module's)
local function expect(code, r, what)
  if r.code ~= code then error(("%s: exit %d, expected %d\n%s%s"):format(what, r.code, code, r.out, r.err), 3) end
end

function M.schema_lines(url)
  local lines = {}
  for l in pg.schema_dump(url):gmatch("[^\n]+") do
    if not l:match("^%-%-") and not l:match("^SET ") and not l:match("^SELECT pg_catalog") then
      lines[#lines + 1] = (l:gsub(",$", ""))
    end
  end
  table.sort(lines)
  return table.concat(lines, "\n")
end

-- A project and a new database: { dir, url, dbname, run = function(...) -> result }; `close`
-- removes both.
function M.project(prefix, stamp)
  local p = { dir = cli.project {} }
  p.url, p.dbname = pg.new_db(prefix)
  function p.run(...) return cli.run({ "--url", p.url, ... }, { cwd = p.dir }) end
  function p.close()
    cli.remove(p.dir)
    pg.drop_db(p.dbname)
  end
  if stamp ~= false then expect(0, p.run("stamp", "base"), "stamp base") end
  return p
end

-- Writes schema.lua, expects `check` to report a difference, generates a revision; returns
-- its text, its upgrade() body and its path.
function M.generate(p, schema, message)
  cli.write(p.dir .. "/migrations/schema.lua", schema)
  expect(1, p.run("check"), "check before " .. message)
  local r = p.run("revision", "--autogenerate", "-m", message)
  expect(0, r, "revision --autogenerate -m " .. message)
  local path = p.dir .. "/" .. r.out:match("Generating (%S+) %.%.%. done")
  local text = cli.slurp(path)
  return text, text:match("function upgrade%(%)(.-)\nend"), path
end

return M
