-- luamigrate.schema through `sa`, in-process: MetaData and Table declarations (what a
-- table records: schema, key, autoincrement column, indexes) and the message each kind
-- of bad declaration gets. No database.
local sa = require "luamigrate.sa"
local err_of = require("helpers.raised").message

describe("sa.MetaData and sa.Table", function()
  it("record a table's schema, columns, key, indexes and autoincrement column", function()
    local md = sa.MetaData { schema = "app" }
    local t = sa.Table("users", md, sa.Column("id", sa.Integer), sa.Column("email", sa.Text),
      sa.PrimaryKeyConstraint("id"), sa.Index("ix_email", "email", { unique = true }), { comment = "people" })
    assert.equal("app", t.schema)
    assert.equal("people", t.comment)
    assert.same({ "id", "email" }, { t.columns[1].name, t.columns[2].name })
    assert.equal(1, #t.constraints)
    assert.equal("ix_email", t.indexes[1].name)
    -- the constraint's column is the key: NOT NULL, and the table's autoincrement column
    assert.is_true(t.columns[1].primary_key)
    assert.is_false(t.columns[1].nullable)
    assert.equal("id", t.autoincrement_column.name)
    assert.equal(t, md.tables["app.users"])
    assert.equal(t, md.sorted[1])
  end)

  it("keep tables in declaration order and take a foreign key's target apart", function()
    local md = sa.MetaData()
    sa.Table("b", md, sa.Column("id", sa.Integer, { primary_key = true }))
    local s = sa.Table("a", md, sa.Column("id", sa.Integer, { primary_key = true }),
      sa.Column("o", sa.Integer, sa.ForeignKey("other.b.id")))
    assert.same({ "b", "a" }, { md.sorted[1].name, md.sorted[2].name })
    assert.is_nil(s.schema)
    local fk = s.columns[2].foreign_keys[1]
    assert.same({ "other", "b", "id" }, { fk.schema, fk.table, fk.column })
    assert.is_true(s.columns[2].nullable)
  end)

  it("merge sa.text bind parameters", function()
    local tx = sa.text("a = :x", { x = 1 }):bindparams { y = 2 }
    assert.equal("a = :x", tx.text)
    assert.same({ x = 1, y = 2 }, tx.params)
  end)

  it("refuse a bad table declaration, naming the table", function()
    local md = sa.MetaData { schema = "app" }
    sa.Table("users", md, sa.Column("id", sa.Integer))
    assert.equal("sa.Table: the first argument must be the table name", err_of(sa.Table, 5, md))
    assert.equal('sa.Table("x"): the second argument must be a sa.MetaData()', err_of(sa.Table, "x", {}))
    assert.equal('sa.Table("app.users"): declared twice in this MetaData',
      err_of(sa.Table, "users", md, sa.Column("id", sa.Integer), { schema = "app" }))
    assert.equal('sa.Table("u2"): column "id" is declared twice',
      err_of(sa.Table, "u2", md, sa.Column("id", sa.Integer), sa.Column("id", sa.Text)))
    assert.equal('sa.Table("u3"): argument 3 is not a column, constraint or index', err_of(sa.Table, "u3", md, "id"))
    assert.equal("sa.Table: unknown option 'shema'; did you mean 'schema'?",
      err_of(sa.Table, "u4", md, sa.Column("a", sa.Integer), { shema = "x" }))
    assert.equal('sa.Table("u5"): sa.Column("a"): autoincrement = true needs an integer type',
      err_of(sa.Table, "u5", md, sa.Column("a", sa.Text, { autoincrement = true, primary_key = true })))
    assert.equal('sa.Table("u6"): only one column may be marked autoincrement = true, found both a and b',
      err_of(sa.Table, "u6", md, sa.Column("a", sa.Integer, { autoincrement = true }),
        sa.Column("b", sa.Integer, { autoincrement = true }), sa.PrimaryKeyConstraint("a", "b")))
    assert.equal("sa.MetaData: unknown option 'schem'; did you mean 'schema'?", err_of(sa.MetaData, { schem = "x" }))
    assert.equal("md:register: argument 1 is not an entity (sa.View, sa.Function, sa.Trigger, ...)",
      err_of(md.register, md, 5))
    -- the refused declarations registered nothing
    assert.same({ "users" }, (function()
      local names = {}
      for _, t in ipairs(md.sorted) do names[#names + 1] = t.name end
      return names
    end)())
  end)

  it("refuse a bad column, key or constraint, naming the argument", function()
    assert.equal("sa.Column: the first argument must be the column name, got number", err_of(sa.Column, 5, sa.Integer))
    assert.equal('sa.Column("c"): a type is required', err_of(sa.Column, "c"))
    assert.equal('sa.Column("c"): unexpected argument 3 (number)', err_of(sa.Column, "c", sa.Integer, 7))
    assert.equal("sa.Column: unknown option 'nulable'; did you mean 'nullable'?",
      err_of(sa.Column, "c", sa.Integer, { nulable = true }))
    assert.equal('sa.Column("c"): autoincrement must be true, false, "auto" or "ignore_fk"',
      err_of(sa.Column, "c", sa.Integer, { autoincrement = "yes" }))
    assert.equal([[sa.ForeignKey: target 'nodot' must be "table.column" or "schema.table.column"]],
      err_of(sa.ForeignKey, "nodot"))
    assert.equal([[sa.ForeignKey: target must be "table.column"]], err_of(sa.ForeignKey, 5))
    assert.equal("sa.ForeignKey: unknown option 'ondelet'; did you mean 'ondelete'?",
      err_of(sa.ForeignKey, "a.b", { ondelet = "x" }))
    assert.equal("sa.Identity: order is Oracle's; PostgreSQL's identity columns have no ORDER option",
      err_of(sa.Identity, { order = true }))
    assert.equal("sa.Computed: PostgreSQL has only stored generated columns (persisted = false is not possible)",
      err_of(sa.Computed, "a", { persisted = false }))
    assert.equal("sa.Computed: the expression must be a string", err_of(sa.Computed, 5))
    assert.equal("sa.CheckConstraint: the condition must be a string, sa.text or an expression",
      err_of(sa.CheckConstraint, 5))
    assert.equal("sa.CheckConstraint: takes at most 3 optional positional arguments (name, deferrable, initially) "
      .. "before the options table, got 4", err_of(sa.CheckConstraint, "a", "n", true, "x", "extra"))
    assert.equal("sa.CheckConstraint: 'name' given twice", err_of(sa.CheckConstraint, "a", "n", { name = "m" }))
    assert.equal("sa.PrimaryKeyConstraint: column 2 must be a name, got number", err_of(sa.PrimaryKeyConstraint, "a", 5))
    assert.equal([[sa.ForeignKeyConstraint: give two lists of equal length: local columns and "table.column" targets]],
      err_of(sa.ForeignKeyConstraint, { "a" }, { "b.c", "b.d" }))
    assert.equal("sa.ExcludeConstraint: each element must be {column_or_expression, operator}",
      err_of(sa.ExcludeConstraint, "a"))
    assert.equal("sa.text: sql must be a string", err_of(sa.text, 5))
  end)
end)
