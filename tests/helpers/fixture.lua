-- The project-and-database fixture the CLI specs share: a temporary project directory
-- (luamigrate.lua, migrations/versions/ and any revision files) and a fresh database on
-- the test server, both removed when the test (or the describe block) ends, whatever it did.
--
--   local fixture = require "helpers.fixture"
--   describe("status", function()
--     local fx = fixture.new()              -- cleaned after each test; {scope = "all"}: after the block
--     local dir, url, dbname
--     before_each(function() dir, url, dbname = fx:open { files = cli.chain(3) } end)
--     local run = fx.run                    -- luamigrate --url <url> ... in <dir>
--     ...
local busted = require "busted"
local pg = require "helpers.pg"
local cli = require "helpers.cli"

local M = {}

local Fixture = {}
Fixture.__index = Fixture

-- A new project directory: cli.project's layout, or (spec.empty) an empty directory for
-- specs that run `init` themselves. Becomes fx.dir.
function Fixture:project(spec)
  spec = spec or {}
  local dir
  if spec.empty then
    local p = assert(io.popen("mktemp -d /tmp/lmproj.XXXXXX"))
    dir = p:read("l")
    p:close()
  else
    dir = cli.project { files = spec.files, config = spec.config }
  end
  self.dirs[#self.dirs + 1] = dir
  self.dir = dir
  return dir
end

-- A fresh database (pg.new_db); becomes fx.url and fx.dbname. Returns its conninfo and name.
function Fixture:new_db(prefix)
  local url, name = pg.new_db(prefix)
  self.dbs[#self.dbs + 1] = name
  self.url, self.dbname = url, name
  return url, name
end

-- A project and a database at once: spec as for :project, plus spec.prefix for the
-- database's name. Returns dir, url, dbname.
function Fixture:open(spec)
  spec = spec or {}
  local dir = self:project(spec)
  self:new_db(spec.prefix)
  return dir, self.url, self.dbname
end

-- Writes a revision file into fx.dir's versions: migrations/versions/<name>.lua holding
-- cli.revision(id, down, up, downgrade, extra); returns its path relative to the project.
function Fixture:revision(name, id, down, up, downgrade, extra)
  local rel = ("migrations/versions/%s.lua"):format(name)
  cli.write(self.dir .. "/" .. rel, cli.revision(id, down, up, downgrade, extra))
  return rel
end

-- Removes every directory and drops every database the fixture made (a database a test
-- dropped itself is passed over), and forgets them.
function Fixture:close()
  for _, dir in ipairs(self.dirs) do cli.remove(dir) end
  for _, name in ipairs(self.dbs) do pg.drop_db(name) end
  self.dirs, self.dbs = {}, {}
  self.dir, self.url, self.dbname = nil, nil, nil
end

-- new{scope = "each" | "all"}, called in a describe block: the fixture, closed after
-- each test of the block ("each", the default) or once after all of them ("all").
function M.new(opts)
  local scope = opts and opts.scope or "each"
  local fx = setmetatable({ dirs = {}, dbs = {} }, Fixture)
  -- luamigrate --url <fx.url> ARGS... in fx.dir, as the user would type it; the fixture's
  -- current project and database are read at each call
  fx.run = function(...) return cli.run({ "--url", fx.url, ... }, { cwd = fx.dir }) end
  fx.psql = function(sql) return pg.psql(fx.url, sql) end
  if scope == "all" then
    busted.teardown(function() fx:close() end)
  elseif scope == "each" then
    busted.after_each(function() fx:close() end)
  else
    error(("fixture.new: scope must be \"each\" or \"all\", got %s"):format(tostring(scope)), 2)
  end
  return fx
end

return M
