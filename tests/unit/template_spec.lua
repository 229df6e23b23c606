-- The revision template, as `luamigrate revision` renders it (through luamigrate.revision).
local template = require "luamigrate.template"

describe("the default revision template", function()
  local function render(vars)
    local text = template.render(vars)
    local env = {}
    local chunk = assert(load(text, "=rev", "t", env))
    chunk()
    return text, env
  end

  it("renders a file that loads and sets the migration globals", function()
    local text, env = render {
      message = "add EMPLOYEE role", revision = "3c52d30040ed",
      down_revision = { "27133ce191df" }, create_date = "2026-11-23 10:00:00",
    }
    assert.equal("3c52d30040ed", env.revision)
    assert.equal("27133ce191df", env.down_revision)
    assert.is_nil(env.branch_labels)
    assert.is_function(env.upgrade)
    assert.is_function(env.downgrade)
    assert.truthy(text:find("Revises: 27133ce191df", 1, true))
    assert.truthy(text:find("^%-%-%[%[ add EMPLOYEE role"))
    -- each migration global carries its LuaLS type, so editors check and complete it
    assert.truthy(text:find('\n---@type string\nrevision = "3c52d30040ed"\n', 1, true), text)
    assert.truthy(text:find('\n---@type string|string%[%]|nil\ndown_revision = '), text)
  end)

  it("renders a base revision with down_revision = nil and an empty Revises", function()
    local text, env = render { message = "first", revision = "aaaa", create_date = "x" }
    assert.is_nil(env.down_revision)
    assert.truthy(text:find("Revises: \n", 1, true))
  end)

  it("renders merges, labels and dependencies as tables", function()
    local _, env = render {
      message = "m", revision = "cccc", create_date = "x", down_revision = { "aaaa", "bbbb" },
      branch_labels = { "net" }, depends_on = { "dddd" },
    }
    assert.same({ "aaaa", "bbbb" }, env.down_revision)
    assert.same({ "net" }, env.branch_labels)
    assert.same({ "dddd" }, env.depends_on)
  end)

  it("keeps a message holding ]] inside the doc comment", function()
    local text, env = render { message = "close ]] early", revision = "abcd", create_date = "x" }
    assert.equal("abcd", env.revision)
    assert.truthy(text:find("--[=[ close ]] early", 1, true))
  end)

  it("rejects an unknown placeholder in a project template", function()
    assert.has_error(function()
      template.render({ revision = "a", create_date = "x" }, "${nope}")
    end, "revision template: unknown placeholder ${nope}")
  end)
end)
