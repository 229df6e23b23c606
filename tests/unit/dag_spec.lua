-- The revision DAG through luamigrate.core.dag(), in-process: building graphs, heads,
-- resolving identifiers (heads, branches, prefixes, relative steps), plans, and the
-- messages a broken graph or a bad identifier gets. No database.
local core = require "luamigrate.core"
local err_of = require("helpers.raised").message

-- A finished graph from {id, down, labels, deps} rows.
local function graph(rows)
  local d = core.dag()
  for _, r in ipairs(rows) do d:add { id = r[1], down = r[2], labels = r[3], deps = r[4] } end
  return d:finish()
end

-- a1 <- b2 <- c3 (main) and b2 <- d4 (feature), merged by e5
local DIAMOND = {
  { "a1" }, { "b2", "a1" }, { "c3", "b2", "main" }, { "d4", "b2", "feature" }, { "e5", { "c3", "d4" } },
}

describe("core.dag", function()
  it("finds the one head of a merged graph and both heads of two roots", function()
    assert.same({ "e5" }, graph(DIAMOND):heads())
    assert.same({ "x", "y" }, graph { { "x" }, { "y" } }:heads())
    -- depends_on does not make a revision a non-head; down_revision does
    assert.same({ "r2", "r3" }, graph { { "r1" }, { "r2", "r1", nil, "r3" }, { "r3" } }:heads())
  end)

  it("resolves head, heads, base, ids, prefixes and branch@head", function()
    local d = graph(DIAMOND)
    assert.same({ "e5" }, d:resolve("head", "upgrade", {}))
    assert.same({ "e5" }, d:resolve("heads", "show", {}))
    assert.same({}, d:resolve("base", "downgrade", { "e5" }))
    assert.same({ "c3" }, d:resolve("c3", "show", {}))
    assert.same({ "b2" }, d:resolve("b", "show", {}))
    assert.same({ "e5" }, d:resolve("main@head", "upgrade", {}))
    assert.same({ "e5" }, d:resolve("e5", "stamp", {}))
  end)

  it("resolves relative steps from the current revisions", function()
    local d = graph(DIAMOND)
    assert.same({ "b2" }, d:resolve("+1", "upgrade", { "a1" }))
    assert.same({ "a1" }, d:resolve("-1", "downgrade", { "b2" }))
    assert.same({ "c3" }, d:resolve("c3", "downgrade", { "e5" }))
  end)

  it("plans upgrades parents first and downgrades children first", function()
    local d = graph(DIAMOND)
    -- an upgrade runs Alembic's walk down from the target reversed: a merge's last parent first
    assert.same({ "a1", "b2", "d4", "c3", "e5" }, d:plan("upgrade", {}, { "e5" }))
    assert.same({ "c3" }, d:plan("upgrade", { "b2" }, { "c3" }))
    -- a downgrade walks down from the rows as Alembic does: a merge's first parent first
    assert.same({ "e5", "c3", "d4" }, d:plan("downgrade", { "e5" }, { "b2" }))
    assert.same({ "e5", "c3", "d4", "b2", "a1" }, d:plan("downgrade", { "e5" }, {}))
    -- a dependency is applied before the revision that depends on it (Alembic runs it first:
    -- the walk from r2 reaches it last, r2's normalized down revisions being r1 then r3)
    assert.same({ "r3", "r1", "r2" }, graph { { "r1" }, { "r2", "r1", nil, "r3" }, { "r3" } }
      :plan("upgrade", {}, { "r2" }))
  end)

  it("refuses identifiers that name no revision, or more than one", function()
    local d = graph(DIAMOND)
    assert.equal("Can't locate revision identified by 'zz'", err_of(d.resolve, d, "zz", "show", {}))
    assert.equal("Ambiguous walk", err_of(d.resolve, d, "a1+2", "upgrade", {}))
    local two = graph { { "x" }, { "y" } }
    assert.equal("Multiple head revisions are present for given argument 'head'; please specify a specific "
      .. "target revision, '<branchname>@head' to narrow to a specific head, or 'heads' for all heads",
      err_of(two.resolve, two, "head", "upgrade", {}))
    local p = graph { { "abc1" }, { "abc2", "abc1" } }
    assert.equal("Multiple revisions start with 'abc': 'abc1', 'abc2'", err_of(p.resolve, p, "abc", "show", {}))
    assert.same({ "abc2" }, p:resolve("abc2", "show", {}))
    assert.equal("unknown revision 'nope'", err_of(d.plan, d, "upgrade", { "nope" }, {}))
    assert.truthy(err_of(d.resolve, d, "e5", "sideways", {}):find("invalid option 'sideways'", 1, true))
  end)

  it("refuses a graph with a duplicate id, a missing parent, a cycle or a reused branch label", function()
    local d = core.dag()
    d:add { id = "x", path = "versions/x1.lua" }
    assert.equal("Revision x is present more than once: in versions/x1.lua and in versions/x2.lua",
      err_of(d.add, d, { id = "x", path = "versions/x2.lua" }))
    d = core.dag()
    d:add { id = "y", down = "missing", path = "versions/y.lua" }
    assert.equal("Revision missing referenced from y (versions/y.lua) is not present", err_of(d.finish, d))
    d = core.dag()
    d:add { id = "p", down = "q" }
    d:add { id = "q", down = "p" }
    assert.equal("Cycle is detected in revisions (p, q)", err_of(d.finish, d))
    d = core.dag()
    d:add { id = "l1", labels = "x" }
    d:add { id = "l2", labels = "x" }
    assert.equal("Branch name 'x' in revision l2 already used by revision l1", err_of(d.finish, d))
  end)

  it("refuses fields of the wrong type, naming the field", function()
    local d = core.dag()
    assert.equal("field 'down' must be nil, a string or a table of strings", err_of(d.add, d, { id = "z", down = 5 }))
    assert.equal("field 'deps' must hold only strings", err_of(d.add, d, { id = "z", deps = { 1 } }))
  end)

  it("plans a long chain in order, its ids built as temporary strings", function()
    local d = core.dag()
    for i = 1, 2000 do
      d:add { id = ("r%04d"):format(i), down = i > 1 and ("r%04d"):format(i - 1) or nil }
    end
    d:finish()
    assert.same({ "r2000" }, d:heads())
    local plan = d:plan("upgrade", {}, { "r2000" })
    assert.equal(2000, #plan)
    assert.same({ "r0001", "r1000", "r2000" }, { plan[1], plan[1000], plan[2000] })
    assert.same({ "r1500" }, d:resolve("-500", "downgrade", { "r2000" }))
  end)

  it("refuses to be used once closed", function()
    local kept
    do
      local d <close> = graph { { "a1" } }
      kept = d
    end
    assert.equal("attempt to use a freed dag", err_of(kept.heads, kept))
  end)

  it("refuses a revision without an id, or a path or doc that is not a string, naming the field", function()
    local d = core.dag()
    assert.equal("field 'id' must be a string", err_of(d.add, d, {}))
    assert.equal("field 'id' must be a string", err_of(d.add, d, { id = 7 }))
    assert.equal("field 'path' must be nil or a string", err_of(d.add, d, { id = "a", path = {} }))
    assert.equal("field 'doc' must be nil or a string", err_of(d.add, d, { id = "a", doc = false }))
  end)
end)
