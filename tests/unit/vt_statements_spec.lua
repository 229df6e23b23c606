-- The bookkeeping statements src/version_table.c owns (core.version_table) as the --sql
-- script writes them through luamigrate.offline: the same text, names and literals filled
-- in. In-process, no database.
local core = require "luamigrate.core"
local offline = require "luamigrate.offline"

describe("core.version_table", function()
  it("names the engine's own tables' suffixes", function()
    assert.same({ history = "_history", lock = "_lock", journal = "_journal" }, core.version_table.suffix)
  end)

  it("holds each statement as a template with one %s for the table", function()
    local sql = core.version_table.sql
    for _, k in ipairs { "create_version", "create_history", "create_journal", "insert", "delete", "update" } do
      assert.is_string(sql[k], k)
      local _, n = sql[k]:gsub("%%s", "")
      assert.equal(1, n, k)
    end
    assert.equal("UPDATE %s SET version_num = $1 WHERE version_num = $2", sql.update)
  end)
end)

describe("offline bookkeeping", function()
  it("creates the three tables under the suffixed, quoted names", function()
    local t = offline.create_tables("Ops.luamigrate_version")
    assert.equal(3, #t)
    assert.equal('CREATE TABLE IF NOT EXISTS "Ops".luamigrate_version (\n    version_num varchar(32) NOT NULL PRIMARY KEY\n)',
      t[1])
    assert.matches('^CREATE TABLE IF NOT EXISTS "Ops"%.luamigrate_version_history %(\n    id bigint', t[2])
    assert.matches('^CREATE TABLE IF NOT EXISTS "Ops"%.luamigrate_version_journal %(\n    revision varchar', t[3])
    assert.equal(core.version_table.sql.create_journal:gsub("%%s", '"Ops".luamigrate_version_journal', 1), t[3])
  end)

  it("writes version rows with literals, the update's new id first in the text as in the online bind", function()
    assert.equal("INSERT INTO v (version_num) VALUES ('b')", offline.version_row("v", "insert", "", "b"))
    assert.equal("DELETE FROM v WHERE version_num = 'a'", offline.version_row("v", "delete", "a", ""))
    assert.equal("UPDATE v SET version_num = 'b' WHERE version_num = 'a'", offline.version_row("v", "update", "a", "b"))
  end)

  it("reads neither a name nor a value as a placeholder", function()
    assert.equal([[UPDATE "t$1%s" SET version_num = '%s$2' WHERE version_num = '$1''']],
      offline.version_row("t$1%s", "update", "$1'", "%s$2"))
  end)
end)
