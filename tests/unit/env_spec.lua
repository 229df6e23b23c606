-- The environment migration files run in.
local env = require "luamigrate.env"

describe("the migration environment", function()
  local function run(src)
    local e = env.migration()
    local chunk = assert(load(src, "@versions/x.lua", "t", e))
    chunk()
    return e
  end

  it("exposes op and the standard library", function()
    local e = run('revision = "a"\nlocal n = string.format("%d", 3)\nk = type(op.execute)\n')
    assert.equal("a", rawget(e, "revision"))
    assert.equal("function", rawget(e, "k"))
  end)

  it("reads unset migration globals as nil", function()
    local e = run('revision = "a"\nx = down_revision == nil and depends_on == nil\n')
    assert.is_true(rawget(e, "x"))
  end)

  it("raises on an undefined name with file:line", function()
    local ok, err = pcall(run, 'revision = "a"\n\nlocal v = reviison\n')
    assert.is_false(ok)
    assert.equal("versions/x.lua:3: undefined name 'reviison'", err)
  end)

  it("gives each file its own globals", function()
    run('revision = "a"\nTYPE_NAME = "x"\n')
    local ok = pcall(run, 'revision = "b"\nlocal t = TYPE_NAME\n')
    assert.is_false(ok)
  end)
end)
