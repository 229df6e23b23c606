-- luamigrate.revision.new, in-process: the file name and the whole text of a new revision
-- (what `luamigrate revision`, `merge` and `revision --autogenerate` write), for a base, a
-- child, a merge, labels and dependencies, awkward messages and project templates. No
-- database, no files.
local revision = require "luamigrate.revision"
local err_of = require("helpers.raised").message

local DATE = "2026-12-04 19:40:00"

-- The text loaded as a migration file would be: its globals in a table.
local function globals_of(text)
  local env = {}
  assert(load(text, "=rev", "t", env))()
  return env
end

describe("revision.new", function()
  it("writes a base revision: the whole file, byte for byte", function()
    local name, text = revision.new { id = "1a2b3c4d5e6f", message = "create account", create_date = DATE }
    assert.equal("1a2b3c4d5e6f_create_account.lua", name)
    assert.equal(table.concat({
      "--[[ create account",
      "",
      "Revision ID: 1a2b3c4d5e6f",
      "Revises: ",
      "Create Date: 2026-12-04 19:40:00",
      "]]",
      "-- revision identifiers, used by luamigrate (---@type: annotations for editors).",
      "---@type string",
      'revision = "1a2b3c4d5e6f"',
      "---@type string|string[]|nil",
      "down_revision = nil",
      "---@type string|string[]|nil",
      "branch_labels = nil",
      "---@type string|string[]|nil",
      "depends_on = nil",
      "",
      "function upgrade()",
      "end",
      "",
      "function downgrade()",
      "end",
      "",
    }, "\n"), text)
  end)

  it("writes a child on one parent, given as an id or as a one-element list", function()
    local _, as_list = revision.new { id = "bbbb", message = "m", down_revision = { "aaaa" }, create_date = DATE }
    local _, as_id = revision.new { id = "bbbb", message = "m", down_revision = "aaaa", create_date = DATE }
    assert.equal(as_id, as_list)
    assert.truthy(as_id:find("\nRevises: aaaa\n", 1, true))
    assert.truthy(as_id:find('\ndown_revision = "aaaa"\n', 1, true))
    assert.equal("aaaa", globals_of(as_id).down_revision)
  end)

  it("writes a merge with every parent in Revises and in down_revision", function()
    local name, text = revision.new {
      id = "cccc", message = "merge heads", down_revision = { "aaaa", "bbbb" }, create_date = DATE,
    }
    assert.equal("cccc_merge_heads.lua", name)
    assert.truthy(text:find("\nRevises: aaaa, bbbb\n", 1, true))
    assert.truthy(text:find('\ndown_revision = { "aaaa", "bbbb" }\n', 1, true))
    assert.same({ "aaaa", "bbbb" }, globals_of(text).down_revision)
  end)

  it("writes branch labels and dependencies as lists", function()
    local _, text = revision.new {
      id = "dddd", message = "net", down_revision = { "aaaa" }, branch_labels = { "net" },
      depends_on = { "bbbb", "billing" }, create_date = DATE,
    }
    assert.truthy(text:find('\nbranch_labels = { "net" }\n', 1, true))
    assert.truthy(text:find('\ndepends_on = { "bbbb", "billing" }\n', 1, true))
    local g = globals_of(text)
    assert.same({ "net" }, g.branch_labels)
    assert.same({ "bbbb", "billing" }, g.depends_on)
  end)

  it("keeps a message with quotes, newlines and ]] inside the doc comment", function()
    local message = 'say "hi" and \'bye\'\nsecond line ]] and ]=] too'
    local name, text = revision.new { id = "eeee", message = message, create_date = DATE }
    assert.equal("eeee_say_hi_and_bye_second_line_and_too.lua", name)
    -- the shortest long bracket the message cannot close: neither ]] nor ]=] is in ]==]
    assert.truthy(text:find("--[==[ " .. message .. "\n\nRevision ID: eeee\n", 1, true), text)
    assert.truthy(text:find("\n]==]\n", 1, true))
    local g = globals_of(text)
    assert.equal("eeee", g.revision)
    assert.is_function(g.upgrade)
  end)

  it("names files after the slug of odd messages", function()
    local function name(message) return (revision.new { id = "ffff", message = message, create_date = DATE }) end
    assert.equal("ffff_.lua", name(""))
    assert.equal("ffff_.lua", name("?!"))
    assert.equal("ffff_.lua", (revision.new { id = "ffff", create_date = DATE }))
    assert.equal("ffff_add_employee_role.lua", name("Add EMPLOYEE role!"))
    assert.equal("ffff_keep_under_scores_and_2_digits.lua", name("keep under_scores  and 2 digits"))
    -- bytes that are not ASCII letters or digits separate words, as in Alembic's \w under C
    assert.equal("ffff_caf_cr_me.lua", name("café crème"))
    assert.equal("ffff_etc.lua", name("../etc"))
    -- longer than 40: cut at the last "_" within 40 and ended with "_"
    assert.equal("ffff_this_is_a_very_long_message_that_goes_.lua",
      name("this is a very long message that goes on and on and on"))
    assert.equal("ffff_" .. ("x"):rep(40) .. "_.lua", name(("x"):rep(50)))
  end)

  it("puts generated bodies inside upgrade() and downgrade()", function()
    local _, text = revision.new {
      id = "abab", message = "add t", create_date = DATE,
      upgrades = '  op.create_table("t")\n', downgrades = '  op.drop_table("t")\n',
    }
    assert.truthy(text:find('\nfunction upgrade()\n  op.create_table("t")\nend\n', 1, true), text)
    assert.truthy(text:find('\nfunction downgrade()\n  op.drop_table("t")\nend\n', 1, true), text)
    local _, no_down = revision.new { id = "abab", message = "x", create_date = DATE, upgrades = "  -- u\n" }
    assert.truthy(no_down:find("\nfunction downgrade()\nend\n", 1, true))
  end)

  it("renders the project's template", function()
    local tmpl = "-- ${message} (${revision} on ${revises})\nrevision = ${revision_lua}\n"
      .. "down_revision = ${down_revision_lua}\nfunction upgrade()\n${upgrades}end\n"
      .. "function downgrade()\n${downgrades}end\n"
    local name, text = revision.new {
      id = "acac", message = "own", down_revision = { "aaaa" }, create_date = DATE, template_text = tmpl,
    }
    assert.equal("acac_own.lua", name)
    assert.equal('-- own (acac on aaaa)\nrevision = "acac"\ndown_revision = "aaaa"\n'
      .. "function upgrade()\nend\nfunction downgrade()\nend\n", text)
  end)

  it("refuses generated bodies for a template with no ${upgrades}, and takes it without them", function()
    local tmpl = "revision = ${revision_lua}\nfunction upgrade() end\nfunction downgrade() end\n"
    assert.equal("revision template: script.lua.tmpl has no ${upgrades} placeholder for the generated "
      .. "operations (put ${upgrades} and ${downgrades} inside upgrade() and downgrade())",
      err_of(revision.new, { id = "adad", create_date = DATE, template_text = tmpl, upgrades = "  -- u\n" }))
    -- an empty body (inspect --baseline of an empty database) is a generated body too
    assert.has_error(function()
      revision.new { id = "adad", create_date = DATE, template_text = tmpl, upgrades = "" }
    end)
    local _, text = revision.new { id = "adad", create_date = DATE, template_text = tmpl }
    assert.equal('revision = "adad"\nfunction upgrade() end\nfunction downgrade() end\n', text)
  end)

  it("refuses a template's unknown placeholder", function()
    assert.equal("revision template: unknown placeholder ${imports}",
      err_of(revision.new, { id = "aeae", create_date = DATE, template_text = "${imports}\n" }))
  end)

  it("dates the file now when no create_date is given", function()
    local before = os.date("%Y-%m-%d %H:%M:%S")
    local _, text = revision.new { id = "afaf", message = "now" }
    local date = text:match("\nCreate Date: ([^\n]*)\n")
    assert.matches("^%d%d%d%d%-%d%d%-%d%d %d%d:%d%d:%d%d$", date)
    assert.is_true(date >= before and date <= os.date("%Y-%m-%d %H:%M:%S"))
  end)

  it("refuses arguments it does not take, or of the wrong type", function()
    assert.matches("^revision%.new: unknown option 'mesage'",
      err_of(revision.new, { id = "a", mesage = "typo" }))
    assert.equal("revision.new: id must be a string, got nil", err_of(revision.new, { message = "x" }))
    assert.equal("revision.new: id must be a string, got nil", err_of(revision.new))
    assert.equal("revision.new: message must be a string, got number",
      err_of(revision.new, { id = "a", message = 5 }))
    assert.equal("revision.new: down_revision[2] must be a string, got number",
      err_of(revision.new, { id = "a", down_revision = { "b", 3 } }))
    assert.equal("revision.new: depends_on must be a string or a list of strings, got boolean",
      err_of(revision.new, { id = "a", depends_on = true }))
  end)
end)
