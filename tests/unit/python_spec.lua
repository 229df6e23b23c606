-- The Python reader (luamigrate.python) and the statement translation of
-- luamigrate.convert, on small inputs: what each construct reads as, what it becomes in Lua,
-- and where a bad input is reported.
local python = require "luamigrate.python"
local convert = require "luamigrate.convert"

local function expr(src)
  local m = assert(python.parse("x = " .. src .. "\n", "t.py"))
  return m.body[1].value
end

local function parse_error(src)
  local m, err = python.parse(src, "t.py")
  assert.is_nil(m)
  return err
end

describe("python reader", function()
  it("reads every string form", function()
    assert.same({ k = "str", s = "a\nb'\"", bytes = false, line = 1 }, expr([['a\nb\'"']]))
    assert.equal([[\d+\n]], expr([[r'\d+\n']]).s)
    assert.equal("\0\255", expr([[b'\x00\xff']]).s)
    assert.is_true(expr([[b'x']]).bytes)
    assert.equal("é", expr([['\u00e9']]).s)
    assert.equal("\nline 1\n  line 2\n", expr('"""\nline 1\n  line 2\n"""').s)
    assert.equal("it's", expr([['''it's''']]).s)
    assert.equal("ab", expr("('a'\n 'b')").s)
    assert.equal("one two", expr([['one \
two']]).s)
  end)

  it("reads f-strings into text and fields, including format specs and escaped braces", function()
    local e = expr([[f"a{b}c{d!r:>10}{{e}}" 'x']])
    assert.equal("fstr", e.k)
    assert.equal("a", e.parts[1])
    assert.equal("b", e.parts[2].expr.id)
    assert.equal("c", e.parts[3])
    assert.equal("r", e.parts[4].conv)
    assert.equal(">10", e.parts[4].spec)
    assert.equal("{e}x", e.parts[5])
    local nested = expr([[f"{t['k']}-{fn(1, 2)}"]])
    assert.equal("sub", nested.parts[1].expr.k)
    assert.equal("call", nested.parts[3].expr.k)
  end)

  it("reads numbers, constants, containers and operators with Python's precedence", function()
    assert.equal("1_000", expr("1_000").v)
    assert.equal("0x1F", expr("0x1F").v)
    assert.equal("1.5e3", expr("1.5e3").v)
    assert.same({ k = "const", v = "None", line = 1 }, expr("None"))
    local d = expr("{'b': 1, 'a': 2}")
    assert.equal("b", d.keys[1].s) -- in source order
    assert.equal("a", d.keys[2].s)
    assert.equal("tuple", expr("(1,)").k)
    assert.equal("list", expr("[1, 2,]").k)
    local e = expr("-a ** 2 + b * c")
    assert.equal("+", e.op)
    assert.equal("unop", e.l.k)
    assert.equal("**", e.l.e.op)
    local c = expr("a is not None and not b in c")
    assert.equal("and", c.op)
    assert.same({ "is not" }, c.l.ops)
    assert.equal("not", c.r.op)
    assert.same({ "in" }, c.r.e.ops)
    assert.equal("ifexp", expr("a if b else c").k)
    assert.equal("listcomp", expr("[x * 2 for x in xs if x]").k)
  end)

  it("reads calls with keyword arguments in order, *args and **kwargs", function()
    local e = expr("f(1, *rest, key=2, other=None, **kw)")
    assert.equal(2, #e.args)
    assert.equal("starred", e.args[2].k)
    assert.equal("key", e.kwargs[1].name)
    assert.equal("other", e.kwargs[2].name)
    assert.is_false(e.kwargs[3].name)
    assert.equal("positional argument follows keyword argument", parse_error("f(a=1, 2)\n"):match(": (.*)$"))
  end)

  it("reads statements: imports, annotated assignments, def, if/elif/else, for, with", function()
    local m = assert(python.parse(table.concat({
      "from typing import Sequence, Union",
      "import sqlalchemy as sa",
      "revision: str = 'abc'",
      "def upgrade() -> None:",
      "    # a comment",
      "    with op.batch_alter_table('t', schema=None) as batch_op:",
      "        batch_op.drop_column('c')",
      "    for a, b in pairs:",
      "        if a: pass",
      "        elif b:",
      "            return",
      "        else:",
      "            x += 1",
      "",
    }, "\n"), "t.py"))
    local kinds = {}
    for i, s in ipairs(m.body) do kinds[i] = s.k end
    assert.same({ "from", "import", "annassign", "def" }, kinds)
    assert.equal("sa", m.body[2].names[1].as)
    local def = m.body[4]
    assert.equal(4, def.line)
    assert.equal(13, def.last)
    assert.equal("with", def.body[1].k)
    assert.equal("batch_op", def.body[1].items[1].as.id)
    assert.equal("for", def.body[2].k)
    assert.equal(2, #def.body[2].body[1].tests)
    assert.equal(" a comment", m.comments[5])
  end)

  it("reads set and dict comprehensions, and comprehensions it does not model as unsupported", function()
    local d = expr("{k: v for k, v in xs if v}")
    assert.equal("listcomp", d.k)
    assert.same({ "k", "v", "v" }, { d.key.id, d.elt.id, d.cond.id })
    local st = expr("{x for x in xs}")
    assert.is_true(st.set)
    assert.equal("unsupported", expr("[a for b in c for a in b]").k)
    assert.equal("unsupported", expr("{a for b in c for a in b}").k)
  end)

  it("keeps compound statements it does not model whole, with their lines", function()
    local m = assert(python.parse("async def a():\n    b()\n    c()\n\n    e()\nd()\n", "t.py"))
    assert.equal("unsupported", m.body[1].k)
    assert.equal("async", m.body[1].keyword)
    assert.equal(1, m.body[1].line)
    assert.equal(5, m.body[1].last)
    assert.equal("expr", m.body[2].k)
  end)

  it("reads while loops with their else clause, and classes with bases, keywords and body", function()
    local m = assert(python.parse("while a():\n    b()\nelse:\n    c()\n\n    e()\nd()\n"
      .. "class J(types.TypeDecorator, metaclass=M):\n    impl = types.TEXT\n    cache_ok = True\n", "t.py"))
    local w = m.body[1]
    assert.equal("while", w.k)
    assert.equal("a", w.test.fn.id)
    assert.equal(1, #w.body)
    assert.equal(2, #w.orelse)
    assert.equal(6, w.last)
    local c = m.body[3]
    assert.equal("class", c.k)
    assert.equal("J", c.name)
    assert.equal("TypeDecorator", c.bases[1].name)
    assert.equal("metaclass", c.keywords[1].name)
    assert.equal("impl", c.body[1].targets[1].id)
    assert.equal(10, c.last)
  end)

  it("reads try with its except, else and finally clauses", function()
    local m = assert(python.parse("try:\n    a()\nexcept (E, F) as err:\n    b()\nexcept:\n    pass\n"
      .. "else:\n    c()\nfinally:\n    d()\ne()\n", "t.py"))
    local t = m.body[1]
    assert.equal("try", t.k)
    assert.equal("a", t.body[1].e.fn.id)
    assert.equal(2, #t.handlers)
    assert.same({ 3, "tuple", "err" }, { t.handlers[1].line, t.handlers[1].type.k, t.handlers[1].name })
    assert.is_nil(t.handlers[2].type)
    assert.equal("c", t.orelse[1].e.fn.id)
    assert.equal("d", t.finalbody[1].e.fn.id)
    assert.equal(10, t.last)
    assert.equal("e", m.body[2].e.fn.id)
  end)

  it("names file, line and column of a syntax error", function()
    assert.equal("t.py:1:8: unterminated string literal", parse_error("x = 1; 'abc\n"))
    assert.equal("t.py:3:1: unterminated string literal", parse_error("a = 1\n\n'''never\nclosed\n"))
    assert.equal("t.py:2:10: expected ')', found '3'", parse_error("f()\nop.f('x' 3)\n"))
    assert.equal("t.py:3:3: unindent does not match any outer indentation level",
      parse_error("if a:\n    b()\n  c()\n"))
    assert.equal("t.py:1:5: unmatched ')'", parse_error("a = )\n"))
    assert.equal("t.py:2:1: unexpected indent", parse_error("a = 1\n    b = 2\n"))
    assert.equal("t.py:1:10: unexpected end of file inside brackets", parse_error("f(a, [b, "))
    assert.equal("t.py:1:5: invalid string prefix 'ub'", parse_error("x = ub'a'\n"))
    assert.equal("t.py:1:3: f-string: single '}' is not allowed", parse_error("x(f'a}')\n"))
    assert.equal("t.py:1:6: unexpected character '$'", parse_error("a = b$\n"))
    assert.equal([[t.py:1:8: unexpected character '\xc3']], parse_error("x = café\n"))
  end)

  it("refuses deep nesting instead of overflowing the C stack", function()
    local err = parse_error("x = " .. ("(" ):rep(300) .. "1" .. (")"):rep(300) .. "\n")
    assert.truthy(err:find("nested too deeply", 1, true), err)
    local lines = {}
    for i = 1, 60 do lines[i] = (" "):rep(i - 1) .. "if a:" end
    lines[61] = (" "):rep(60) .. "pass"
    assert.equal("t.py:41:46: blocks nested too deeply", parse_error(table.concat(lines, "\n") .. "\n"))
  end)
end)

-- The Lua text of upgrade()'s body for a revision whose upgrade() is `body` (Python lines).
local function upgrade_of(body, header)
  local src = (header or "from alembic import op\nimport sqlalchemy as sa\n")
    .. "revision = 'r1'\ndown_revision = None\n\ndef upgrade():\n" .. body .. "\n\ndef downgrade():\n    pass\n"
  local r = convert.revision(src, "r1.py")
  return r.text:match("\nfunction upgrade%(%)\n(.-)\nend\n"), r
end

describe("convert: translation", function()
  it("turns keyword arguments into a trailing options table", function()
    assert.equal([[  op.add_column("t", sa.Column("id", sa.Integer(), { nullable = false }))]],
      upgrade_of("    op.add_column('t', sa.Column('id', sa.Integer(), nullable=False))"))
    assert.equal([[  op.drop_index(op.f("ix_t_a"), { table_name = "t" })]],
      upgrade_of("    op.drop_index(op.f('ix_t_a'), table_name='t')"))
  end)

  it("moves keywords naming an op's positional parameters into their places", function()
    assert.equal(table.concat({
      '  op.create_check_constraint("ck", "t", "n > 0")',
      '  op.drop_constraint("ck", "t", { type_ = "check" })',
      '  op.create_unique_constraint("uq", "t", { "a" }, { schema = "s" })',
    }, "\n"), upgrade_of(table.concat({
      "    op.create_check_constraint('ck', table_name='t', condition='n > 0')",
      "    op.drop_constraint('ck', table_name='t', type_='check')",
      "    op.create_unique_constraint(constraint_name='uq', schema='s', table_name='t', columns=['a'])",
    }, "\n")))
    -- a parameter after a missing one stays an option (luamigrate's op names it then)
    assert.equal([[  op.create_index("ix", { columns = { "a" } })]], upgrade_of("    op.create_index('ix', columns=['a'])"))
  end)

  it("takes bind.commit() (SQLAlchemy 2.0) as the end of the migration's transaction: an empty autocommit block",
    function()
      assert.equal("  op.autocommit_block(function() end)", upgrade_of("    op.get_bind().commit()"))
      assert.equal("  local conn = op.get_bind()\n  op.autocommit_block(function() end)",
        upgrade_of("    conn = op.get_bind()\n    conn.commit()"))
    end)

  it("writes alembic_postgresql_enum's op.sync_enum_values as luamigrate.helpers.sync_enum's", function()
    local body, r = upgrade_of(table.concat({
      "    op.sync_enum_values(enum_schema='public', enum_name='st', new_values=['a', 'b'],",
      "        affected_columns=[TableReference(table_schema='public', table_name='t', column_name='c',",
      "            column_type=ColumnType.ARRAY)], enum_values_to_rename=[])",
      "    op.sync_enum_values('public', 'st', ['a'], [('t', 'c')], enum_values_to_rename=[('b', 'a')])",
    }, "\n"), "from alembic import op\nfrom alembic_postgresql_enum import ColumnType, TableReference\n")
    assert.same({}, r.notes)
    assert.truthy(r.text:find('\nlocal sync_enum = require "luamigrate.helpers.sync_enum"\n', 1, true), r.text)
    assert.truthy(body:find('sync_enum.TableReference(\n', 1, true) and body:find("sync_enum.ColumnType.ARRAY", 1, true),
      body)
    assert.truthy(body:gsub("%s+", " "):find('sync_enum.sync_enum_values("public", "st", { "a" }, { { "t", "c" } }, '
      .. '{ enum_values_to_rename = { { "b", "a" } } })', 1, true), body)
    -- a name the library has that luamigrate has not
    local _, r2 = upgrade_of("    x = Other()", "from alembic import op\nfrom alembic_postgresql_enum import Other\n")
    assert.equal("'Other' comes from alembic_postgresql_enum.Other, which has no Lua translation", r2.notes[1].reason)
  end)

  it("leaves out other databases' options, which SQLAlchemy ignores on PostgreSQL", function()
    assert.equal([[  op.create_table("t", sa.Column("id", sa.Integer()), { comment = "x" })]],
      upgrade_of("    op.create_table('t', sa.Column('id', sa.Integer()), mysql_engine='InnoDB',"
        .. " mysql_charset='utf8', comment='x', sqlite_autoincrement=True)"))
  end)

  it("gives server_default=None and comment=None in alter_column Lua's spelling, false", function()
    assert.equal([[  op.alter_column("t", "c", { server_default = false, comment = false, nullable = true })]],
      upgrade_of("    op.alter_column('t', 'c', server_default=None, comment=None, nullable=True)"))
  end)

  it("maps imported names to op, sa and postgresql", function()
    local header = "from alembic import op\nfrom sqlalchemy import Column, Integer as Int\n"
      .. "from sqlalchemy.dialects import postgresql as pg\nfrom sqlalchemy.dialects.postgresql import JSONB\n"
    assert.equal([[  op.add_column("t", sa.Column("a", sa.Integer, postgresql.UUID(), postgresql.JSONB))]],
      upgrade_of("    op.add_column('t', Column('a', Int, pg.UUID(), JSONB))", header))
  end)

  it("parenthesizes a literal before an attribute, an index or a method, as Lua requires", function()
    local body, r = upgrade_of("    x = ['a.b'.i, 'c'[0]]\n    print(x)")
    assert.truthy(body:find('("a.b").i', 1, true), body)
    assert.truthy(body:find('("c")[1]', 1, true), body)
    assert.truthy(load(r.text, "=r1.lua", "t", {}), r.text)
    -- True, False and None become Lua's reserved words, which no more stand there
    body, r = upgrade_of("    x = [True.real, None.y(1), False[0]]\n    print(x)")
    assert.truthy(body:find("(true).real", 1, true), body)
    assert.truthy(body:find("(nil):y(1)", 1, true) or body:find("(nil).y(1)", 1, true), body)
    assert.truthy(load(r.text, "=r1.lua", "t", {}), r.text)
  end)

  it("passes *values and options through py_unpack, so every value arrives", function()
    local body, r = upgrade_of("    sa.Enum(*VALUES, name='e').create(op.get_bind())")
    assert.equal([[  sa.Enum(py_unpack(VALUES, { name = "e" })):create(op.get_bind())]], body)
    assert.truthy(r.text:find("local function py_unpack", 1, true))
    -- and the helper does what Python's call does
    local py_unpack = assert(load(r.text:match("(local function py_unpack.-\nend\n)") .. "return py_unpack"))()
    assert.same({ "a", "b", "c", { name = "e" } }, { py_unpack({ "a", "b", "c" }, { name = "e" }) })
  end)

  it("inlines batch_alter_table as plain ops on its table and schema", function()
    assert.equal(table.concat({
      [[  -- batch_alter_table("t"): on PostgreSQL, plain ALTERs]],
      "  do",
      [[    op.add_column("t", sa.Column("x", sa.Text()), { schema = "s" })]],
      [[    op.create_index(op.f("ix_t_x"), "t", { "x" }, { unique = false, schema = "s" })]],
      [[    op.drop_constraint("fk", "t", { type_ = "foreignkey", schema = "s" })]],
      [[    op.drop_index("ix_old", { table_name = "t", schema = "s" })]],
      "  end",
    }, "\n"), upgrade_of(table.concat({
      "    with op.batch_alter_table('t', schema='s') as batch_op:",
      "        batch_op.add_column(sa.Column('x', sa.Text()))",
      "        batch_op.create_index(batch_op.f('ix_t_x'), ['x'], unique=False)",
      "        batch_op.drop_constraint('fk', type_='foreignkey')",
      "        batch_op.drop_index('ix_old')",
    }, "\n")))
  end)

  it("turns the autocommit block into op.autocommit_block(function() ... end)", function()
    assert.equal("  op.autocommit_block(function()\n    op.execute(\"VACUUM\")\n  end)",
      upgrade_of("    with op.get_context().autocommit_block():\n        op.execute('VACUUM')"))
  end)

  it("translates loops, conditions, f-strings and % formatting", function()
    assert.equal(table.concat({
      "  for _, name in ipairs({ \"a\", \"b\" }) do",
      "    if name == \"a\" then",
      "      op.execute(\"DROP \" .. tostring(name))",
      "    elseif name ~= nil then",
      "      op.execute((\"ALTER %s\"):format(name))",
      "    end",
      "  end",
      "  for i = 0, 3 - 1 do",
      "    print(i)",
      "  end",
    }, "\n"), upgrade_of(table.concat({
      "    for name in ['a', 'b']:",
      "        if name == 'a':",
      "            op.execute(f'DROP {name}')",
      "        elif name is not None:",
      "            op.execute('ALTER %s' % name)",
      "    for i in range(3):",
      "        print(i)",
    }, "\n")))
  end)

  it("gives Python's meaning to %, *, /, //, ** and str() where Lua's differs, through luamigrate.py", function()
    local body, r = upgrade_of(table.concat({
      "    n = 3",
      "    a = '%r %s' % (name, n)",
      "    b = 'DROP %s' % name",
      "    c = '-' * n",
      "    d = n * 2 + n // 2 - n % 2",
      "    e = n / k + n // k + n ** 2",
      "    f = str(n) + str(x)",
      "    g = fmt % n",
    }, "\n"))
    assert.equal(table.concat({
      "  local n = 3",
      '  local a = py.mod("%r %s", { name, n })',
      '  local b = py.mod("DROP %s", name)', -- name may be None: formatted at run time
      '  local c = py.mul("-", n)',
      "  local d = ((n * 2) + (n // 2)) - (n % 2)",
      "  local e = (py.div(n, k) + py.floordiv(n, k)) + py.pow(n, 2)",
      "  local f = tostring(n) .. py.str(x)",
      "  local g = py.mod(fmt, n)",
    }, "\n"), body)
    assert.truthy(r.text:find('\nlocal py = require "luamigrate.py"\n', 1, true), r.text)
  end)

  it("evaluates an assert's message only when the assertion fails, as Python does", function()
    assert.equal('  if not (n == 0) then error("AssertionError: " .. py.str(log:describe(n)), 0) end\n'
      .. '  if not py_bool(rows) then error("AssertionError at r1.py:8", 0) end',
      (upgrade_of("    assert n == 0, log.describe(n)\n    assert rows")))
  end)

  it("translates `in` on computed containers through py_contains, Python's three meanings", function()
    local body, r = upgrade_of("    if 'users' not in names:\n        op.execute('x')")
    assert.equal("  if not py_contains(names, \"users\") then\n    op.execute(\"x\")\n  end", body)
    local py_contains = assert(load(r.text:match("(local function py_contains.-\nend\n)") .. "return py_contains"))()
    assert.is_true(py_contains({ "a", "users" }, "users"))
    assert.is_true(py_contains({ users = 1 }, "users"))
    assert.is_true(py_contains("all users", "users"))
    assert.is_false(py_contains({ "a" }, "users"))
    assert.equal([[  local x = (a == 1 or a == 2)]], (upgrade_of("    x = a in (1, 2)")))
  end)

  it("calls str's methods through py_str: Python's meaning on a string, the object's own method else", function()
    local body, r = upgrade_of("    if url.startswith('postgres') and name.strip().endswith('_old'):\n"
      .. "        op.execute(name.replace('_old', '').upper())")
    assert.equal("  if py_str(url, \"startswith\", \"postgres\") and py_str(py_str(name, \"strip\"), \"endswith\", "
      .. "\"_old\") then\n    op.execute(py_str(py_str(name, \"replace\", \"_old\", \"\"), \"upper\"))\n  end", body)
    local py_str = assert(load(r.text:match("(local py_str\ndo\n.-\nend\n)") .. "return py_str"))()
    assert.is_true(py_str("postgresql://x", "startswith", "postgres"))
    assert.is_false(py_str("sqlite://", "startswith", "postgres"))
    assert.is_true(py_str("t_old", "endswith", "_old"))
    assert.is_true(py_str("t", "endswith", ""))
    assert.equal("a b", py_str(" \t a b \n", "strip"))
    assert.equal("b", py_str("xxbxx", "strip", "x"))
    assert.equal("a.]", py_str("]]a.]", "lstrip", "]"))
    assert.equal("a%b", py_str("a.b", "replace", ".", "%"))
    assert.equal("-a-b-", py_str("ab", "replace", "", "-"))
    assert.equal("T", py_str("t", "upper"))
    local obj = { startswith = function(_, p) return "like " .. p end }
    assert.equal("like x", py_str(obj, "startswith", "x"))
  end)

  it("gives bool() Python's truthiness, and set(), frozenset() and list() of literals their elements", function()
    local body, r = upgrade_of("    ok = bool(rows)\n    names = set(['a', 'b'])\n    frozen = frozenset(('c',))\n"
      .. "    empty = set()\n    nothing = bool()")
    assert.equal("  local ok = py_bool(rows)\n  local names = { \"a\", \"b\" }\n  local frozen = { \"c\" }\n"
      .. "  local empty = {}\n  local nothing = false", body)
    local py_bool = assert(load(r.text:match("(local function py_bool.-\nend\n)") .. "return py_bool"))()
    for _, v in ipairs { false, 0, 0.0, "", {} } do assert.is_false(py_bool(v), tostring(v)) end
    assert.is_false(py_bool(nil))
    for _, v in ipairs { true, 1, -2, "0", " ", { 0 }, { a = false } } do assert.is_true(py_bool(v), tostring(v)) end
    -- of anything else, Python's set() at run time: each element once
    local b2, r2 = upgrade_of("    s = set(rows)")
    assert.equal("  local s = py_set(rows)", b2)
    assert.same({}, r2.notes)
  end)

  it("gives logging a small stand-in: warnings to stderr, info dropped", function()
    local header = "from alembic import op\nimport logging\nlogger = logging.getLogger(__name__)\n"
    local body, r = upgrade_of("    logger.info('quiet')\n    logger.warning('skipping %s', 't')", header)
    assert.equal("  logger:info(\"quiet\")\n  logger:warning(\"skipping %s\", \"t\")", body)
    assert.truthy(r.text:find('\nlocal logger = py_logging.getLogger("r1")\n', 1, true), r.text)
    assert.same({}, r.notes)
    local lines = {}
    local env = setmetatable({ io = { stderr = { write = function(_, t) lines[#lines + 1] = t end } },
      py = require "luamigrate.py" }, { __index = _G })
    local chunk = assert(load(r.text:match("(local py_logging = {}.-\nend\n)") .. "return py_logging", "h", "t", env))
    local log = chunk().getLogger("alembic")
    log:info("no")
    log:warning("skipping %s", "users")
    log:error("%r is %s", "t", 1.0) -- %-formatted as Python's logging does
    assert.same({ "WARNING [alembic] skipping users\n", "ERROR [alembic] 't' is 1.0\n" }, lines)
  end)

  it("knows the dialect is postgresql", function()
    assert.equal("  op.execute(\"y\")",
      upgrade_of("    if op.get_context().dialect.name == 'mysql':\n        op.execute('x')\n    op.execute('y')"))
    assert.equal("  local bind = op.get_bind()\n  local d = \"postgresql\"",
      upgrade_of("    bind = op.get_bind()\n    d = bind.dialect.name"))
  end)

  it("keeps only the branch PostgreSQL takes of a test on the dialect or the URL", function()
    local mysql = "from alembic import op\nimport sqlalchemy as sa\nfrom sqlalchemy.dialects import mysql\n"
    -- the other databases' branches name modules Lua has none of; they are left out
    local body, r = upgrade_of("    bind = op.get_bind()\n    if bind.dialect.name == 'mysql':\n"
      .. "        op.alter_column('t', 'c', type_=mysql.DATETIME(fsp=6))\n"
      .. "    elif bind.engine.name == 'oracle':\n        op.execute('o')\n"
      .. "    elif bind.dialect.name != 'sqlite':\n        op.execute('pg')\n    else:\n        op.execute('lite')",
      mysql)
    assert.equal("  local bind = op.get_bind()\n  if bind.engine.name == \"oracle\" then\n    op.execute(\"o\")\n"
      .. "  else\n    op.execute(\"pg\")\n  end", body)
    assert.same({}, r.notes)
    body, r = upgrade_of("    url = str(op.get_bind().engine.url)\n    if url.startswith('mysql'):\n"
      .. "        op.alter_column('t', 'c', type_=mysql.DATETIME(fsp=0))\n"
      .. "    if not url.startswith('postgres'):\n        op.execute('no')\n"
      .. "    if op.get_bind().dialect.name in ('postgresql', 'sqlite'):\n        op.execute('yes')", mysql)
    assert.equal("  local url = \"postgresql://\"\n  do\n    op.execute(\"yes\")\n  end", body)
    assert.same({}, r.notes)
    -- once reassigned, the name is no longer the URL
    body = upgrade_of("    url = str(op.get_bind().engine.url)\n    url = 'mysql://x'\n"
      .. "    if url.startswith('mysql'):\n        op.execute('m')")
    assert.truthy(body:find('if py_str(url, "startswith", "mysql")', 1, true), body)
  end)

  it("runs a try block whose except clauses catch database errors, and refuses other handlers", function()
    local hdr = "from alembic import op\nimport sqlalchemy as sa\nfrom sqlalchemy.exc import ProgrammingError\n"
    local body, r = upgrade_of("    try:\n        op.add_column('t', sa.Column('flag', sa.Boolean))\n"
      .. "        n = 1\n    except (ProgrammingError, sa.exc.OperationalError) as e:\n        print(str(e))\n"
      .. "        exit()\n    else:\n        op.execute('UPDATE t SET flag = true')\n    op.execute(str(n))", hdr)
    assert.equal("  local n\n  -- try: on PostgreSQL a database error aborts the transaction and stops the migration;"
      .. " the except clause at line 11 is left out\n  do\n"
      .. "    op.add_column(\"t\", sa.Column(\"flag\", sa.Boolean))\n    n = 1\n"
      .. "    op.execute(\"UPDATE t SET flag = true\")\n  end\n  op.execute(tostring(n))", body)
    assert.same({}, r.notes)
    body, r = upgrade_of("    try:\n        op.execute('x')\n    except KeyError:\n        pass", hdr)
    assert.equal(1, #r.notes)
    assert.equal(8, r.notes[1].line)
    assert.matches("other than a database error", r.notes[1].reason)
    assert.matches('error%("not converted', body)
    body, r = upgrade_of("    with op.get_context().autocommit_block():\n        try:\n            op.execute('x')\n"
      .. "        except ProgrammingError:\n            pass", hdr)
    assert.matches("autocommit", r.notes[1].reason)
    assert.matches('error%("not converted', body)
    assert.matches("expected 'except' or 'finally'", parse_error("try:\n    x = 1\ny = 2\n"))
  end)

  it("writes the MySQL types PostgreSQL renders generically as sa's, and refuses MySQL's own", function()
    local hdr = "from alembic import op\nimport sqlalchemy as sa\nfrom sqlalchemy.dialects import mysql\n"
      .. "from sqlalchemy.dialects.mysql import INTEGER, TINYINT\n"
    local body, r = upgrade_of("    op.alter_column('nodes', 'name', existing_type=mysql.VARCHAR(length=63),"
      .. " type_=sa.String(length=255))\n    op.add_column('t', sa.Column('n', INTEGER(), nullable=True))\n"
      .. "    op.add_column('t', sa.Column('p', mysql.NUMERIC(10, 2)))", hdr)
    assert.equal("  op.alter_column(\"nodes\", \"name\", { existing_type = sa.VARCHAR({ length = 63 }),"
      .. " type_ = sa.String({ length = 255 }) })\n  op.add_column(\"t\", sa.Column(\"n\", sa.INTEGER(),"
      .. " { nullable = true }))\n  op.add_column(\"t\", sa.Column(\"p\", sa.NUMERIC(10, 2)))", body)
    assert.same({}, r.notes)
    for src, why in pairs {
      ["    op.add_column('t', sa.Column('b', TINYINT(1)))"] = "mysql.TINYINT, a MySQL type",
      ["    op.add_column('t', sa.Column('b', mysql.DATETIME(fsp=6)))"] = "mysql.DATETIME, a MySQL type",
      ["    op.add_column('t', sa.Column('b', mysql.INTEGER(11)))"] = "mysql.INTEGER with 1 positional",
      ["    op.add_column('t', sa.Column('b', mysql.VARCHAR(8, charset='utf8')))"] = "MySQL%-only option charset=",
    } do
      body, r = upgrade_of(src, hdr)
      assert.equal(1, #r.notes, src)
      assert.matches(why, r.notes[1].reason)
      assert.matches('error%("not converted', body)
    end
  end)

  it("walks a dict in one order on every run (sorted keys), not pairs()'s", function()
    local body, r = upgrade_of("    for t, c in TABLES.items():\n        op.drop_column(t, c)")
    assert.equal("  for t, c in py_items(TABLES) do\n    op.drop_column(t, c)\n  end", body)
    local py_items = assert(load(r.text:match("(local function py_items.-\nend\n)") .. "return py_items"))()
    local seen = {}
    for k, v in py_items({ users = "role", accounts = "kind", b = 1 }) do seen[#seen + 1] = k .. "=" .. v end
    assert.same({ "accounts=kind", "b=1", "users=role" }, seen)
  end)

  it("turns continue into a goto to the end of the loop body", function()
    local body = upgrade_of("    for t in ts:\n        if t == 'a':\n            continue\n        op.drop_table(t)")
    assert.equal(table.concat({
      "  for _, t in ipairs(ts) do",
      "    if t == \"a\" then",
      "      goto continue",
      "    end",
      "    op.drop_table(t)",
      "    ::continue::",
      "  end",
    }, "\n"), body)
  end)

  it("declares names assigned in nested blocks at the top of the function", function()
    assert.equal("  local kind\n  if py_bool(flag) then\n    kind = \"a\"\n  else\n    kind = \"b\"\n  end\n"
      .. "  op.execute(kind)", upgrade_of("    if flag:\n        kind = 'a'\n    else:\n        kind = 'b'\n"
      .. "    op.execute(kind)"))
  end)

  it("writes long strings as long brackets, keeping their text exactly", function()
    local body = upgrade_of('    op.execute("""\n    SELECT 1 ]]\n    """)')
    assert.equal('  op.execute([=[\n\n    SELECT 1 ]]\n    ]=])', body)
    assert.equal("\n    SELECT 1 ]]\n    ", load("return " .. body:match("%((.*)%)"))())
  end)

  it("makes column comparisons the expressions' methods, not Lua's boolean ==", function()
    assert.equal([[  op.execute(t:update():where(t.c.id:eq(1)):values({ name = "x" }))]],
      upgrade_of("    op.execute(t.update().where(t.c.id == 1).values(name='x'))"))
    assert.equal([[  op.execute(t:delete():where(t.c.id:gt(5), sa.true_()))]],
      upgrade_of("    op.execute(t.delete().where(5 < t.c.id, sa.true()))"))
  end)

  it("translates data-migration statements into Lua that writes SQLAlchemy's SQL", function()
    local sa = require "luamigrate.sa"
    local expr_mod = require "luamigrate.expr"
    local render = require "luamigrate.render"
    local py = {
      [[t.update().where(t.c.id == 1).values(b='x')]],
      [[t.delete().where(t.c.a != None, 5 < t.c.a, t.c.a <= 9, 3 >= t.c.id)]],
      [[t.delete().where(sa.or_(t.c.b == None, sa.column('b') != 'y'))]],
      [[t.update().where(t.c.a.op('=')(7), t.c.b.op('~*')('^a')).values(a=t.c.a + 1)]],
      [[t.update().where(t.c.b.is_(None)).values(b=sa.false())]],
      [[t.delete().where(sa.true())]],
      [[t.delete().where(t.c.a.in_([1, 2]), t.c.id.op('%', precedence=8)(2) == 0)]],
      [[t.delete().where(sa.func.lower(t.c.b) == 'x', t.c.a + 1 > t.c.id, sa.cast(t.c.b, sa.Integer) != 2)]],
    }
    local t = sa.table("t", sa.column("id"), sa.column("a", sa.Integer), sa.column("b", sa.String))
    local got = {}
    for i, p in ipairs(py) do
      local body = upgrade_of("    op.execute(" .. p .. ")")
      local lua = assert(body:match("^  op%.execute%((.*)%)$"), body)
      local stmt = assert(load("return " .. lua, "=" .. p, "t", { sa = sa, t = t }))()
      got[i] = (expr_mod.compile(stmt, true, render.value))
    end
    assert.same(require("helpers.sqlalchemy").literal_sql(py), got)
  end)

  it("keeps what it cannot translate as commented Python and an error naming file:line", function()
    local body, r = upgrade_of("    op.execute('a')\n    x = [a for b in c for a in b]\n    op.execute('b')")
    assert.equal(table.concat({
      [[  op.execute("a")]],
      [[  -- not converted (a comprehension with several for or if clauses):]],
      "  --       x = [a for b in c for a in b]",
      [[  error("not converted: r1.py:8: a comprehension with several for or if clauses")]],
      [[  op.execute("b")]],
    }, "\n"), body)
    assert.same({ { file = "r1.py", line = 8, reason = "a comprehension with several for or if clauses" } }, r.notes)
  end)

  it("raises for module-level code it cannot translate from upgrade() and downgrade()", function()
    local _, r = upgrade_of("    pass", "from alembic import op\nfrom myapp import models\nX = models.thing\n")
    assert.truthy(r.text:find([[error("not converted: r1.py:3: 'models' comes from myapp.models]], 1, true), r.text)
    local _, n = r.text:gsub("error%(\"not converted: r1.py:3", "")
    assert.equal(2, n)
  end)

  it("reads the revision's identity, labels and message", function()
    local r = convert.revision(table.concat({
      '"""add things',
      "",
      "Revision ID: b2",
      "Revises: a1, a2",
      "Create Date: 2024-05-06 07:08:09.101112",
      '"""',
      "revision = 'b2'",
      "down_revision = ('a1', 'a2')",
      "branch_labels = ('feature',)",
      "depends_on = 'c3'",
      "def upgrade(): pass",
      "def downgrade(): pass",
    }, "\n"), "b2.py")
    assert.equal("b2", r.revision)
    assert.same({ "a1", "a2" }, r.down_revision)
    assert.same({ "feature" }, r.branch_labels)
    assert.equal("c3", r.depends_on)
    assert.equal("add things", r.message)
    assert.truthy(r.text:find('down_revision = { "a1", "a2" }', 1, true))
    assert.truthy(r.text:find("Create Date: 2024-05-06 07:08:09.101112", 1, true))
    -- the result is Lua that loads
    assert.truthy(load(r.text, "b2.lua", "t", {}))
  end)

  it("refuses a file without a revision, and computed revision identifiers", function()
    local ok, err = pcall(convert.revision, "x = 1\n", "n.py")
    assert.is_false(ok)
    assert.equal("n.py:1: no revision = \"...\" assignment: this is not an Alembic revision file", err)
    ok, err = pcall(convert.revision, "revision = 'a'\ndown_revision = f()\n", "n.py")
    assert.is_false(ok)
    assert.equal("n.py:2: down_revision must be a string, None or a tuple of strings (found an expression)", err)
  end)
end)

-- Python (Debian's python3, with SQLAlchemy, sqlalchemy_utils and oslo.db): the output lines
-- of a program.
local python3 = require("helpers.sqlalchemy").python

-- A directory holding the files of `tree` (path = text), removed by the caller.
local function app_tree(tree)
  local dir = os.tmpname()
  os.remove(dir)
  for path, text in pairs(tree) do
    local full = dir .. "/" .. path
    assert(os.execute("mkdir -p '" .. full:match("^(.*)/[^/]*$") .. "'"))
    local f = assert(io.open(full, "w"))
    f:write(text)
    f:close()
  end
  return dir
end

-- The Lua an expression of upgrade() becomes: op.execute(<expr>)'s argument.
local function lua_of(py, header, resolver)
  local src = (header or "from alembic import op\nimport sqlalchemy as sa\n")
    .. "revision = 'r1'\ndown_revision = None\n\ndef upgrade():\n    op.execute(" .. py .. ")\n"
  local r = convert.revision(src, "r1.py", resolver)
  local body = r.text:match("\nfunction upgrade%(%)\n(.-)\nend\n")
  return body:match("^  op%.execute%((.*)%)$") or body, r
end

describe("convert: other libraries' and the application's types", function()
  local sa = require "luamigrate.sa"
  local postgresql = require "luamigrate.postgresql"

  local function ddl_of(lua)
    local t = assert(load("return " .. lua, "=type", "t", { sa = sa, postgresql = postgresql }))()
    return t:sql()
  end

  it("gives sqlalchemy_utils' and oslo.db's types the DDL SQLAlchemy renders for them on PostgreSQL", function()
    local header = "from alembic import op\nimport sqlalchemy as sa\nimport sqlalchemy_utils as su\n"
      .. "from oslo_db.sqlalchemy import types as ot\n"
    local cases = { "su.UUIDType()", "su.UUIDType(binary=False)", "su.JSONType()", "su.EmailType()",
      "su.EmailType(100)", "su.EmailType(length=60)", "su.URLType()", "su.TSVectorType('a', 'b', regconfig='simple')",
      "su.ChoiceType([('a', 'A')])", "su.ChoiceType([(1, 'A')], impl=sa.Integer())", "su.CountryType()",
      "su.CurrencyType()", "su.LocaleType()", "su.TimezoneType(backend='pytz')", "su.IPAddressType()",
      "su.IPAddressType(max_length=80)", "su.ScalarListType(int)", "su.ArrowType()", "su.ArrowType(timezone=True)",
      "su.WeekDaysType()", "ot.JsonEncodedDict()", "ot.JsonEncodedList(mysql_as_long=True)",
      "ot.JsonEncodedDict(mysql_as_medium=True).impl", "ot.SoftDeleteInteger()", "ot.String(64)",
      "ot.String(255, mysql_ndb_length=64)", "su.types.ts_vector.TSVectorType()", "su.types.json.JSONType()" }
    local py = { "import sqlalchemy as sa, sqlalchemy_utils as su", "from oslo_db.sqlalchemy import types as ot",
      "from sqlalchemy.dialects import postgresql", "from sqlalchemy.schema import CreateTable" }
    local got = {}
    for i, c in ipairs(cases) do
      py[#py + 1] = ("print(str(CreateTable(sa.Table('t', sa.MetaData(), sa.Column('c', %s)))"
        .. ".compile(dialect=postgresql.dialect())).split('\\n')[2].strip()[2:].rstrip(', '))"):format(c)
      local lua, r = lua_of(c, header)
      assert.same({}, r.notes, c)
      got[i] = ddl_of(lua)
    end
    assert.same(python3(table.concat(py, "\n") .. "\n"), got)
  end)

  it("refuses a library type's argument it has not, or one that leaves PostgreSQL's type", function()
    local header = "from alembic import op\nfrom sqlalchemy_utils import UUIDType, EmailType\n"
    local _, r = lua_of("UUIDType(native=False)", header)
    assert.equal("UUIDType(native=...) other than True: BINARY(16), which PostgreSQL has not", r.notes[1].reason)
    _, r = lua_of("EmailType(size=3)", header)
    assert.equal("sqlalchemy_utils.EmailType has no parameter size=", r.notes[1].reason)
    _, r = lua_of("su.PasswordType()", "from alembic import op\nimport sqlalchemy_utils as su\n")
    assert.equal("sqlalchemy_utils.PasswordType has no Lua translation", r.notes[1].reason)
  end)

  it("reads the application's TypeDecorator subclasses from its source, as SQLAlchemy builds them", function()
    local dir = app_tree({
      ["app/__init__.py"] = "from .types import *  # noqa\nfrom .types import JSONDict, Short as ShortText\n",
      ["app/types.py"] = table.concat({
        "import sqlalchemy as sa",
        "from sqlalchemy import types",
        "from sqlalchemy.dialects import postgresql",
        "class JSONDict(sa.types.TypeDecorator):",
        "    impl = types.TEXT",
        "    cache_ok = True",
        "class Short(types.TypeDecorator):",
        "    impl = sa.String",
        "class Fixed(types.TypeDecorator):",
        "    impl = sa.String(30)",
        "class Keeps(types.TypeDecorator):",
        "    impl = sa.Numeric",
        "    def __init__(self, *args, **kwargs):",
        "        super().__init__(*args, **kwargs)",
        "class Drops(types.TypeDecorator):",
        "    impl = sa.Numeric",
        "    def __init__(self, scale):",
        "        self.scale = scale",
        "        super().__init__()",
        "class Builds(types.TypeDecorator):",
        "    impl = sa.String",
        "    def __init__(self, n):",
        "        super().__init__()",
        "        self.impl = sa.String(n * 2)",
        "class GUID(types.TypeDecorator):",
        "    impl = sa.CHAR",
        "    def load_dialect_impl(self, dialect):",
        "        if dialect.name in ('postgresql', 'cockroachdb'):",
        "            return dialect.type_descriptor(postgresql.UUID())",
        "        return dialect.type_descriptor(sa.CHAR(32))",
        "class Sniffs(types.TypeDecorator):",
        "    impl = sa.Text",
        "    def load_dialect_impl(self, dialect):",
        "        if dialect.server_version_info > (12,):",
        "            return postgresql.JSONB()",
        "        return self.impl",
        "class Child(JSONDict):",
        "    '''no DDL of its own'''",
        "class NotAType:",
        "    impl = sa.Text",
        "LIMIT = 40",
      }, "\n") .. "\n",
    })
    local res = convert.new_resolver({ dir })
    local header = "from alembic import op\nimport sqlalchemy as sa\nfrom app import JSONDict, ShortText\n"
      .. "from app.types import Fixed, Keeps, Drops, Builds, GUID, Sniffs, Child, NotAType, LIMIT, Missing\n"
      .. "from app import types as app_types\nfrom other.pkg import Thing\n"
    local cases = {
      { "JSONDict()", "sa.TEXT" }, { "JSONDict", "sa.TEXT" }, { "ShortText(length=LIMIT)", "sa.String({ length = 40 })" },
      { "ShortText", "sa.String" }, { "Fixed(80)", "sa.String(30)" }, { "Keeps(10, 2)", "sa.Numeric(10, 2)" },
      { "Drops(4)", "sa.Numeric" }, { "GUID()", "postgresql.UUID()" }, { "Child()", "sa.TEXT" },
      { "app_types.Fixed()", "sa.String(30)" }, { "sa.Column('x', JSONDict, nullable=False)",
        'sa.Column("x", sa.TEXT, { nullable = false })' },
    }
    for _, c in ipairs(cases) do
      local lua, r = lua_of(c[1], header, res)
      assert.same({}, r.notes, c[1])
      assert.equal(c[2], lua, c[1])
    end
    local path = dir .. "/app/types.py"
    local refused = {
      { "Builds(3)", "Builds (" .. path .. ":20)'s __init__ builds its impl in a way the converter cannot follow" },
      { "Sniffs()", "Sniffs (" .. path .. ":31)'s load_dialect_impl has no plain PostgreSQL branch" },
      { "NotAType()", "NotAType (" .. path .. ":39) is not a TypeDecorator subclass" },
      { "Missing()", path .. " defines no Missing the converter can find" },
      { "Thing()", nil },
    }
    for _, c in ipairs(refused) do
      local _, r = lua_of(c[1], header, res)
      assert.equal(1, #r.notes, c[1])
      local name = c[1]:match("^%a+")
      assert.truthy(r.notes[1].reason:find("'" .. name .. "' comes from ", 1, true), r.notes[1].reason)
      if c[2] then assert.truthy(r.notes[1].reason:find(c[2], 1, true), r.notes[1].reason) end
    end
    -- `import app` (or `import app.types`): autogenerate's spelling of a custom type
    for _, imp in ipairs { "import app\n", "import app.types\n" } do
      local lua, r = lua_of("sa.Column('x', app.types.Keeps(10, 2), nullable=True)",
        "from alembic import op\nimport sqlalchemy as sa\n" .. imp, res)
      assert.same({}, r.notes, imp)
      assert.equal('sa.Column("x", sa.Numeric(10, 2), { nullable = true })', lua, imp)
      _, r = lua_of("app.types.Missing()", "from alembic import op\n" .. imp, res)
      assert.equal("app.types.Missing has no Lua translation (" .. path .. " defines no Missing the converter can find)",
        r.notes[1].reason, imp)
    end
    -- a package that is not in the tree stays another library's
    local _, r = lua_of("other.Thing()", "from alembic import op\nimport other\n", res)
    assert.equal("'other' comes from other, which has no Lua translation", r.notes[1].reason)
    os.execute("rm -rf '" .. dir .. "'")
  end)

  it("reads Flask-SQLAlchemy's db as sa, for SQLAlchemy's own names only", function()
    local dir = app_tree({
      ["web/__init__.py"] = "",
      ["web/ext.py"] = "from flask_sqlalchemy import SQLAlchemy\ndb = SQLAlchemy(session_options={})\n",
      ["web/models.py"] = "from .ext import db\ndb2 = object()\n",
    })
    local res = convert.new_resolver({ dir })
    local lua, r = lua_of("db.Column('n', db.String(80), db.ForeignKey('u.id'))",
      "from alembic import op\nfrom web.models import db\n", res)
    assert.same({}, r.notes)
    assert.equal('sa.Column("n", sa.String(80), sa.ForeignKey("u.id"))', lua)
    lua = lua_of("db.func.now()", "from alembic import op\nfrom web.models import db\n", res)
    assert.equal("sa.func.now()", lua)
    -- the module is not in the tree: db taken by its name, for SQLAlchemy's names
    lua, r = lua_of("db.Text()", "from alembic import op\nfrom elsewhere import db\n", res)
    assert.same({}, r.notes)
    assert.equal("sa.Text()", lua)
    r = select(2, lua_of("db.session.execute('x')", "from alembic import op\nfrom web.models import db\n", res))
    assert.equal("db.session: not one of SQLAlchemy's names that luamigrate's sa has", r.notes[1].reason)
    r = select(2, lua_of("db2.Text()", "from alembic import op\nfrom web.models import db2\n", res))
    assert.truthy(r.notes[1].reason:find("'db2' comes from web.models.db2", 1, true), r.notes[1].reason)
    os.execute("rm -rf '" .. dir .. "'")
  end)
end)

describe("convert: smaller constructs", function()
  it("writes json.dumps of literal data as the text Python's json.dumps gives", function()
    local cases = { [=[{"a": [1, 2.5, None, True, False], "b": {"c": "d"}}]=], [=[["x", -3, 1e-05, 2e16, 0.1, 1.0, 123456789.125]]=],
      [=[{"k": "caf\u00e9 \U0001F600 \"q\" \\ \n\t"}]=], [=[{"k": "caf\u00e9"}, ensure_ascii=False]=],
      [=[{2: "b", 1: "a", True: 1, None: 2}]=], [=[{"b": 1, "a": [1, {"z": 2}]}, sort_keys=True, indent=2]=],
      [=[[], separators=(",", ":")]=], [=[{"a": (1, 2), "b": [], "c": {}}, indent=4]=], [=[{"a": 1, "a": 2, "b": 3}]=] }
    local py, got = { "import json" }, {}
    for i, c in ipairs(cases) do
      py[#py + 1] = ("print(repr(json.dumps(%s)))"):format(c)
      local lua = lua_of("json.dumps(" .. c .. ")", "from alembic import op\nimport json\n")
      got[i] = ("%q"):format(assert(load("return " .. lua))())
    end
    local want = python3(table.concat(py, "\n") .. "\n")
    -- Python's repr quotes as Lua's %q does not: compare the values
    for i, w in ipairs(want) do
      local v = assert(load("return " .. w:gsub("\\x(%x%x)", "\\x%1")))()
      want[i] = ("%q"):format(v)
    end
    assert.same(want, got)
    -- other data: Python's json.dumps at run time
    local lua, r = lua_of("json.dumps({'a': x})", "from alembic import op\nimport json\n")
    assert.same({}, r.notes)
    assert.equal("py.json.dumps({ a = x })", lua)
    local _, r2 = lua_of("json.dumps([99999999999999999999])", "from alembic import op\nimport json\n")
    assert.equal("json.dumps of an integer beyond 64 bits", r2.notes[1].reason)
  end)

  it("translates while loops with break and continue, sets as sequences", function()
    local body = upgrade_of(table.concat({
      "    n = 0",
      "    while True:",
      "        n += 1",
      "        if n in {2, 3}:",
      "            continue",
      "        if n > 5:",
      "            break",
      "        op.execute('x')",
      "    for t in {'a'}:",
      "        op.drop_table(t)",
    }, "\n"))
    assert.equal(table.concat({
      "  local n",
      "  n = 0",
      "  while true do",
      "    n = n + 1",
      "    if (n == 2 or n == 3) then",
      "      goto continue",
      "    end",
      "    if n > 5 then",
      "      break",
      "    end",
      "    op.execute(\"x\")",
      "    ::continue::",
      "  end",
      "  for _, t in ipairs({ \"a\" }) do",
      "    op.drop_table(t)",
      "  end",
    }, "\n"), body)
    local calls = 0
    assert(load(body, "=body", "t", { op = { execute = function() calls = calls + 1 end, drop_table = function() end },
      ipairs = ipairs }))()
    assert.equal(3, calls) -- n = 1, 4, 5
    local _, r = upgrade_of("    while a:\n        pass\n    else:\n        pass")
    assert.equal("while ... else", r.notes[1].reason)
  end)

  it("reads sqlalchemy's submodules (sqlalchemy.types, .sql, .schema) as sa itself", function()
    local lua, r = lua_of("sql.table('t', sql.column('x', types.TEXT), sa.column('y', sa.types.Integer()))",
      "from alembic import op\nimport sqlalchemy as sa\nfrom sqlalchemy import sql, types\n")
    assert.same({}, r.notes)
    assert.equal('sa.table("t", sa.column("x", sa.TEXT), sa.column("y", sa.Integer()))', lua)
  end)

  it("renames variables that would hide Lua's globals, and copies lists with tuple()/list()", function()
    local body = upgrade_of("    for table in TABLES:\n        op.execute(' '.join(['DROP TABLE', table]))\n"
      .. "    names = tuple(TABLES)", "from alembic import op\nTABLES = ['a', 'b']\n")
    assert.equal(table.concat({
      "  for _, table_ in ipairs(TABLES) do",
      "    op.execute(table.concat({ \"DROP TABLE\", table_ }, \" \"))",
      "  end",
      "  local names = { table.unpack(TABLES) }",
    }, "\n"), body)
    -- a dict's keys (Python's list(d)), at run time
    local b2, r = upgrade_of("    x = list(d)", "from alembic import op\nd = {'a': 1}\n")
    assert.equal("  local x = py_list(d)", b2)
    assert.same({}, r.notes)
  end)

  it("reads the environment through os.environ.get and os.getenv, and refuses the rest of os", function()
    local body, r = upgrade_of("    salt = os.environ.get('SALT')\n    b = os.getenv('B', 'x')\n    op.execute(salt + b)",
      "import os\nfrom alembic import op\n")
    assert.same({}, r.notes)
    assert.truthy(body:find('local salt = os.getenv("SALT")\n  local b = (os.getenv("B") or "x")', 1, true), body)
    local _, r2 = upgrade_of("    op.execute(os.environ['X'])", "import os\nfrom alembic import op\n")
    assert.equal("'os' (Python's os) other than os.environ.get() and os.getenv()", r2.notes[1].reason)
  end)

  it("takes next(iter(x)) as x's first element, with Python's default and StopIteration", function()
    local body, r = upgrade_of(table.concat({
      "    conn = op.get_bind()",
      "    n = next(iter(conn.execute(sa.text('SELECT count(*) FROM t'))))[0]",
      "    op.execute(n)",
      "    op.execute(next(iter([5, 6])))",
      "    op.execute(next(iter([]), 7))",
      "    op.execute(next(iter([])))",
    }, "\n"))
    assert.same({}, r.notes)
    assert.truthy(body:find('local n = py_next(conn:result(sa.text("SELECT count(*) FROM t")))[1]', 1, true), body)
    local seen = {}
    local result = setmetatable({}, { __name = "luamigrate.Result",
      __index = { fetchall = function() return { { 3 } } end } })
    local env = { op = { get_bind = function() return { result = function() return result end } end,
      execute = function(v) seen[#seen + 1] = v end },
      sa = { text = function(s) return s end } }
    setmetatable(env, { __index = _G }) -- Lua's own functions, require included (the file gets luamigrate.py)
    assert(load(r.text, "=r1", "t", env))()
    local ok, err = pcall(env.upgrade)
    assert.same({ 3, 5, 7 }, seen)
    assert.falsy(ok)
    assert.truthy(tostring(err):find("StopIteration: next() of an empty iterator", 1, true), tostring(err))
    local _, r2 = upgrade_of("    x = next(rows)")
    assert.equal("call of next() on anything but iter(x)", r2.notes[1].reason)
  end)

  it("applies decorators that are functions of the file, and drops functools.wraps", function()
    local _, r = upgrade_of("    helper('x')", table.concat({
      "import functools",
      "from alembic import op",
      "def twice(fn):",
      "    @functools.wraps(fn)",
      "    def wrapper(*args, **kwargs):",
      "        fn(*args, **kwargs)",
      "        return fn(*args, **kwargs)",
      "    return wrapper",
      "@twice",
      "def helper(name):",
      "    op.execute(name)",
      "",
    }, "\n"))
    assert.same({}, r.notes)
    local text = r.text
    local calls = {}
    local env = { op = { execute = function(s) calls[#calls + 1] = s end }, table = table, error = error }
    assert(load(text, "=r1", "t", env))()
    env.upgrade()
    assert.same({ "x", "x" }, calls)
    assert.truthy(text:find("\nupgrade = twice(upgrade)\n", 1, true) == nil)
    assert.truthy(text:find("\nhelper = twice(helper)\n", 1, true), text)
    _, r = upgrade_of("    pass", "from alembic import op\nimport contextlib\n@contextlib.contextmanager\ndef f():\n    pass\n")
    assert.equal("a function decorated with something other than a function of this file", r.notes[1].reason)
  end)
end)

describe("convert: project files", function()
  it("reads alembic.ini's [alembic] section with %(here)s", function()
    local ini = convert.read_ini("[alembic]\nscript_location = %(here)s/alembic\nversion_locations = %(here)s/a"
      .. " %(here)s/b\n# comment\n[other]\nx = 1\n", "/p")
    assert.equal("/p/alembic", ini.alembic.script_location)
    assert.equal("/p/a /p/b", ini.alembic.version_locations)
  end)

  it("reads pyproject.toml's [tool.alembic] table", function()
    local t = convert.read_pyproject('[project]\nname = "x"\n[tool.alembic]\nscript_location = "%(here)s/m"\n'
      .. 'version_locations = [\n  "%(here)s/v1",\n  "%(here)s/v2",\n]\n[tool.other]\nscript_location = "no"\n', "/p")
    assert.equal("/p/m", t.script_location)
    assert.same({ "/p/v1", "/p/v2" }, t.version_locations)
  end)

  it("finds the version table and schema env.py configures", function()
    local env = table.concat({
      "from alembic import context",
      "VT = 'app_version'",
      "def run():",
      "    context.configure(connection=c, version_table=VT, version_table_schema='meta',",
      "                      transaction_per_migration=True)",
    }, "\n")
    local f = convert.scan_env(env, "env.py")
    assert.equal("app_version", f.version_table)
    assert.equal("meta", f.version_table_schema)
    assert.is_true(f.transaction_per_migration)
  end)
end)
