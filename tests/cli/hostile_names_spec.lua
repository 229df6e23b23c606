-- Hostile identifiers and values through every op that takes names or values: quotes ' and
-- ", backslashes, dollar-quote tokens, semicolons, comments, keywords, newlines, multi-byte
-- and right-to-left text, emoji. A seeded generator makes a few hundred cases, all run by one
-- migration online and through --sql and psql; the catalog must then hold exactly the
-- intended names, comments, labels and values (compared hex-encoded, read back with the
-- server's own quoting), nothing else created or dropped. Names longer than PostgreSQL's 63
-- bytes and NUL bytes are refused with a message naming the op and the argument.
local pg = require "helpers.pg"
local cli = require "helpers.cli"

local CASES = tonumber(os.getenv("LUAMIGRATE_FUZZ_CASES") or "200")
local SEED = tonumber(os.getenv("LUAMIGRATE_FUZZ_SEED") or "20261126")

local FRAGMENTS = {
  "'", '"', "''", '""', "\\", "\\'", '\\"', "$$", "$luamigrate$", "$a$", ";", "--", "/*", "*/",
  " ", "\n", "\t", "%", "?", ":x", "$1", "é", "日本語", "שלום", "\u{202E}", "😀", "Ω", "ß",
  "DROP TABLE victim", "select", "user", "Mixed", "UPPER", "1", "a", "_", ".", "(", ")", ",", "E'",
  "U&", "\\x41", "\u{FEFF}",
}

local function hex(s)
  return (s:gsub(".", function(c) return ("%02x"):format(c:byte()) end))
end

-- A hostile string of 1 to 4 fragments (under 40 bytes, so a suffix keeps it under 63).
local function hostile()
  local parts = {}
  for i = 1, math.random(1, 4) do parts[i] = FRAGMENTS[math.random(#FRAGMENTS)] end
  local s = table.concat(parts)
  while #s > 36 do s = s:sub(1, -2) end
  while not utf8.len(s) do s = s:sub(1, -2) end -- cut at a whole character
  return s
end

local function lit(s) return ("%q"):format(s) end

-- What each case creates, and the Lua of the migration that creates it.
local function make_cases(n)
  math.randomseed(SEED)
  local cases, code = {}, {}
  for i = 1, n do
    local c = {
      t = hostile() .. "_t" .. i, t2 = hostile() .. "_r" .. i, c1 = hostile() .. "_a", c2 = hostile() .. "_b",
      c3 = hostile() .. "_c", c4 = hostile() .. "_d", ix = hostile() .. "_ix" .. i, ix2 = hostile() .. "_iy" .. i,
      uq = hostile() .. "_uq" .. i, ck = hostile() .. "_ck" .. i, e = hostile() .. "_e" .. i,
      l1 = hostile() .. "1", l2 = hostile() .. "2", l3 = hostile() .. "3", l4 = hostile() .. "4",
      v = hostile(), v2 = hostile(), v3 = hostile(), v4 = hostile(), v5 = hostile(),
      cm = hostile(), cm2 = hostile(), cm3 = hostile(), cm4 = hostile(),
    }
    if c.v3 == c.v then c.v3 = c.v3 .. "x" end -- rows 1 and 2 meet a unique constraint on c1
    cases[i] = c
    code[#code + 1] = ([[
  op.create_table(%s, sa.Column("id", sa.Integer, { primary_key = true }),
    sa.Column(%s, sa.Text, { server_default = %s, comment = %s }), { comment = %s })
  op.add_column(%s, sa.Column(%s, sa.Text))
  op.add_column(%s, sa.Column(%s, sa.Text))
  op.alter_column(%s, %s, { server_default = %s, comment = %s, new_column_name = %s })
  op.drop_column(%s, %s)
  op.create_index(%s, %s, { %s })
  op.create_index(%s, %s, { "id" })
  op.drop_index(%s)
  op.create_enum(%s, { %s, %s })
  op.add_enum_value(%s, %s)
  op.rename_enum_value(%s, %s, %s)
  op.bulk_insert(%s, { { id = 1, [%s] = %s } })
  op.rename_table(%s, %s)
  op.create_table_comment(%s, %s)
  op.create_unique_constraint(%s, %s, { %s })
  op.create_check_constraint(%s, %s, "id > 0")
  op.drop_constraint(%s, %s)
  op.execute("INSERT INTO hostile_log (n, v) VALUES ($1, $2)", { %d, %s })
  op.execute(sa.text("INSERT INTO hostile_log (n, v) VALUES (:n, :v)"), { n = %d, v = %s })
]]):format(lit(c.t), lit(c.c1), lit(c.v), lit(c.cm), lit(c.cm2),
      lit(c.t), lit(c.c2),
      lit(c.t), lit(c.c4),
      lit(c.t), lit(c.c2), lit(c.v2), lit(c.cm3), lit(c.c3),
      lit(c.t), lit(c.c4),
      lit(c.ix), lit(c.t), lit(c.c1),
      lit(c.ix2), lit(c.t),
      lit(c.ix2),
      lit(c.e), lit(c.l1), lit(c.l2),
      lit(c.e), lit(c.l3),
      lit(c.e), lit(c.l2), lit(c.l4),
      lit(c.t), lit(c.c1), lit(c.v3),
      lit(c.t), lit(c.t2),
      lit(c.t2), lit(c.cm4),
      lit(c.uq), lit(c.t2), lit(c.c1),
      lit(c.ck), lit(c.t2),
      lit(c.ck), lit(c.t2),
      2 * i, lit(c.v4), 2 * i + 1, lit(c.v5))
  end
  return cases, table.concat(code)
end

-- The facts the catalog must show, as sorted "kind|hex|hex..." lines.
local function expected(cases)
  local lines = {}
  local function add(...) lines[#lines + 1] = table.concat({ ... }, "|") end
  for i, c in ipairs(cases) do
    local t = hex(c.t2)
    add("table", t)
    add("column", t, hex("id"))
    add("column", t, hex(c.c1))
    add("column", t, hex(c.c3))
    add("index", hex(c.ix))
    add("index", hex(c.uq))
    add("constraint", t, hex(c.uq))
    add("tcomment", t, hex(c.cm4))
    add("ccomment", t, hex(c.c1), hex(c.cm))
    add("ccomment", t, hex(c.c3), hex(c.cm3))
    add("enum", hex(c.e), hex(c.l1), hex(c.l4), hex(c.l3))
    -- row 1 from bulk_insert (c3 takes its default), row 2 from defaults alone
    add("row", t, "1", hex(c.v3), hex(c.v2))
    add("row", t, "2", hex(c.v), hex(c.v2))
    add("log", tostring(2 * i), hex(c.v4))
    add("log", tostring(2 * i + 1), hex(c.v5))
  end
  table.sort(lines)
  return lines
end

-- Reads the catalog back with the server's quoting (format %I) and hex-encodes every name.
local READ = [[
CREATE OR REPLACE FUNCTION pg_temp.h(s text) RETURNS text LANGUAGE sql AS $f$ SELECT encode(convert_to(s, 'UTF8'), 'hex') $f$;
CREATE OR REPLACE FUNCTION pg_temp.facts() RETURNS SETOF text LANGUAGE plpgsql AS $f$
DECLARE r record; v record;
BEGIN
  FOR r IN SELECT c.oid, c.relname, c.relkind, obj_description(c.oid, 'pg_class') AS cm FROM pg_class c
           WHERE c.relnamespace = 'public'::regnamespace AND c.relname NOT LIKE 'luamigrate_version%'
             AND c.relname <> 'hostile_log' AND c.relname NOT LIKE 'hostile_log%' LOOP
    IF r.relkind = 'r' THEN
      RETURN NEXT 'table|' || pg_temp.h(r.relname);
      IF r.cm IS NOT NULL THEN RETURN NEXT 'tcomment|' || pg_temp.h(r.relname) || '|' || pg_temp.h(r.cm); END IF;
      RETURN QUERY SELECT 'column|' || pg_temp.h(r.relname) || '|' || pg_temp.h(a.attname) FROM pg_attribute a
        WHERE a.attrelid = r.oid AND a.attnum > 0 AND NOT a.attisdropped;
      RETURN QUERY SELECT 'ccomment|' || pg_temp.h(r.relname) || '|' || pg_temp.h(a.attname) || '|'
        || pg_temp.h(col_description(r.oid, a.attnum)) FROM pg_attribute a
        WHERE a.attrelid = r.oid AND a.attnum > 0 AND NOT a.attisdropped AND col_description(r.oid, a.attnum) IS NOT NULL;
      RETURN QUERY SELECT 'constraint|' || pg_temp.h(r.relname) || '|' || pg_temp.h(k.conname) FROM pg_constraint k
        WHERE k.conrelid = r.oid AND k.contype NOT IN ('p');
      EXECUTE format('INSERT INTO public.%I (id) VALUES (2)', r.relname);
      FOR v IN EXECUTE format('SELECT id::text AS id, (SELECT array_agg(pg_temp.h(x) ORDER BY o) FROM unnest(array[%s]) WITH ORDINALITY AS u(x, o)) AS vals FROM public.%I ORDER BY id',
          (SELECT string_agg(format('%I::text', a.attname), ', ' ORDER BY a.attnum) FROM pg_attribute a
           WHERE a.attrelid = r.oid AND a.attnum > 1 AND NOT a.attisdropped), r.relname) LOOP
        RETURN NEXT 'row|' || pg_temp.h(r.relname) || '|' || v.id || '|' || array_to_string(v.vals, '|', 'NULL');
      END LOOP;
    ELSIF r.relkind = 'i' AND r.relname !~ '_pkey$' THEN
      RETURN NEXT 'index|' || pg_temp.h(r.relname);
    ELSIF r.relkind NOT IN ('i', 'S') THEN
      RETURN NEXT 'other|' || r.relkind || '|' || pg_temp.h(r.relname);
    END IF;
  END LOOP;
  RETURN QUERY SELECT 'enum|' || pg_temp.h(t.typname) || '|' || string_agg(pg_temp.h(e.enumlabel), '|' ORDER BY e.enumsortorder)
    FROM pg_type t JOIN pg_enum e ON e.enumtypid = t.oid WHERE t.typnamespace = 'public'::regnamespace GROUP BY t.typname;
  RETURN QUERY SELECT 'log|' || l.n || '|' || pg_temp.h(l.v) FROM public.hostile_log AS l;
END $f$;
SELECT f FROM pg_temp.facts() AS f ORDER BY 1;
]]

local function facts(url)
  -- the read inserts a row of defaults into each table: done in a transaction rolled back
  local out = pg.psql(url, "BEGIN;\n" .. READ .. "\nROLLBACK;")
  local lines = {}
  for line in out:gmatch("[^\n]+") do lines[#lines + 1] = line end
  table.sort(lines)
  return lines
end

-- Where two sorted fact lists first differ (a readable failure instead of a wall of hex).
local function first_difference(want, got)
  local w, g = {}, {}
  for _, l in ipairs(want) do w[l] = true end
  for _, l in ipairs(got) do g[l] = true end
  for _, l in ipairs(want) do if not g[l] then return "missing: " .. l end end
  for _, l in ipairs(got) do if not w[l] then return "unexpected: " .. l end end
  return nil
end

local LOG = 'op.execute("CREATE TABLE hostile_log (n int PRIMARY KEY, v text)")\n'

-- The project's `upgrade --sql head` script, applied with psql to a new database; returns
-- that database's url and name.
local function apply_offline(dir)
  local sql = cli.run({ "upgrade", "--sql", "head" }, { cwd = dir })
  assert.equal(0, sql.code, sql.err)
  local url2, dbname2 = pg.new_db("hostile")
  local script = os.tmpname()
  cli.write(script, sql.out)
  local p = assert(io.popen(("%spsql -XAtq -v ON_ERROR_STOP=1 -d %s -f %s 2>&1"):format(pg.tool,
    pg.shell_quote(url2), pg.shell_quote(script))))
  local out = p:read("a")
  local ok = p:close()
  os.remove(script)
  assert.is_true(ok, out)
  return url2, dbname2
end

describe("hostile names and values", function()
  it(("through every op, online and through --sql, %d seeded cases (seed %d)"):format(CASES, SEED), function()
    local cases, code = make_cases(CASES)
    local dir = cli.project { files = {
      ["migrations/versions/h1_hostile.lua"] = cli.revision("h1", nil, LOG .. code),
    } }
    local url, dbname = pg.new_db("hostile")
    local r = cli.run({ "--url", url, "upgrade", "head" }, { cwd = dir })
    assert.equal(0, r.code, r.err)
    local want = expected(cases)
    local online = facts(url)
    assert.is_nil(first_difference(want, online))
    assert.same(want, online)

    local url2, dbname2 = apply_offline(dir)
    local offline = facts(url2)
    assert.is_nil(first_difference(want, offline))
    cli.remove(dir)
    pg.drop_db(dbname)
    pg.drop_db(dbname2)
  end)

  -- Each call refused before any SQL is sent; the migration records the messages.
  local L63 = ("n"):rep(63)
  local L64 = ("n"):rep(62) .. "é" -- 64 bytes, 63 characters
  local refused = {
    { 'op.create_table("a\\0b", sa.Column("id", sa.Integer))', "op.create_table: table_name contains a NUL byte" },
    { 'op.create_table("ok", sa.Column("i\\0d", sa.Integer))', "op.create_table: argument 2.name contains a NUL byte" },
    { 'op.create_table("ok", sa.Column("id", sa.Text, { server_default = "x\\0" }))',
      "op.create_table: argument 2.server_default contains a NUL byte" },
    { 'op.create_table("ok", sa.Column("id", sa.Integer), { comment = "c\\0" })',
      "op.create_table: options.comment contains a NUL byte" },
    { 'op.add_column("t\\0", sa.Column("x", sa.Text))', "op.add_column: table_name contains a NUL byte" },
    { 'op.add_column("t", sa.Column("x", sa.Text, { comment = "\\0" }))', "op.add_column: column.comment contains a NUL byte" },
    { 'op.alter_column("t", "x", { new_column_name = "y\\0" })', "op.alter_column: options.new_column_name contains a NUL byte" },
    { 'op.alter_column("t", "x", { server_default = "\\0" })', "op.alter_column: options.server_default contains a NUL byte" },
    { 'op.drop_column("t", "x\\0")', "op.drop_column: column_name contains a NUL byte" },
    { 'op.rename_table("t", "u\\0")', "op.rename_table: new_table_name contains a NUL byte" },
    { 'op.create_index("i\\0", "t", { "x" })', "op.create_index: index_name contains a NUL byte" },
    { 'op.create_index("i", "t", { "x\\0" })', "op.create_index: columns[1] contains a NUL byte" },
    { 'op.drop_index("i\\0")', "op.drop_index: index_name contains a NUL byte" },
    { 'op.create_enum("e", { "a", "b\\0" })', "op.create_enum: values[2] contains a NUL byte" },
    { 'op.add_enum_value("e", "\\0")', "op.add_enum_value: value contains a NUL byte" },
    { 'op.rename_enum_value("e", "a", "\\0")', "op.rename_enum_value: new contains a NUL byte" },
    { 'op.bulk_insert("t", { { x = "a\\0" } })', "op.bulk_insert: rows[1].x contains a NUL byte" },
    { 'op.create_table_comment("t", "\\0")', "op.create_table_comment: comment contains a NUL byte" },
    { 'op.create_unique_constraint("u\\0", "t", { "x" })', "op.create_unique_constraint: constraint_name contains a NUL byte" },
    { 'op.create_check_constraint("c", "t", "x\\0 > 0")', "op.create_check_constraint: condition contains a NUL byte" },
    { 'op.drop_constraint("c\\0", "t")', "op.drop_constraint: constraint_name contains a NUL byte" },
    { 'op.execute("SELECT 1\\0; DROP TABLE victim")', "op.execute: sql contains a NUL byte" },
    { 'op.execute("SELECT $1", { "a\\0b" })', "op.execute: params[1] contains a NUL byte" },
    { 'op.get_bind():execute("SELECT 1\\0; DROP TABLE victim")', "statement contains a NUL byte" },
    { 'op.get_bind():execute("SELECT $1::text", "a\\0b")', "parameter $1 contains a NUL byte" },
    { 'local t = sa.table("t", sa.column("x")) op.execute(t:update():values { x = "a\\0b" })',
      "op.execute: sql.rows[1].x contains a NUL byte" },
    { 'local t = sa.table("t", sa.column("x")) op.execute(t:delete():where(sa.and_(sa.or_(sa.not_(t.c.x:in_ { "a\\0b" })))))',
      "NUL byte" },
    { 'local t = sa.table("t", sa.column("x")) op.get_bind():execute(t:update():where(t.c.x:eq("a\\0b")):values { x = 1 })',
      "NUL byte" },
    { ('op.create_table(%q, sa.Column("id", sa.Integer))'):format(L64),
      "op.create_table: identifier \"" .. L64 .. "\" is 64 bytes long; PostgreSQL keeps 63" },
    { ('op.add_column("t", sa.Column(%q, sa.Text))'):format(L64), "op.add_column: identifier" },
    { ('op.create_index(%q, "t", { "x" })'):format(L64), "op.create_index: identifier" },
    { ('op.create_enum(%q, { "a" })'):format(L64), "op.create_enum: identifier" },
    { ('op.rename_table("t", %q)'):format(L64), "op.rename_table: identifier" },
  }

  it("refuses NUL bytes and names over 63 bytes, naming the op and the argument, online and offline", function()
    local code = { LOG, 'op.execute("CREATE TABLE victim (id int)")\n',
      ('op.create_table(%q, sa.Column("id", sa.Integer))\n'):format(L63) }
    for i, c in ipairs(refused) do
      code[#code + 1] = ("  do local ok, e = pcall(function() %s end)\n"
        .. "    op.execute(\"INSERT INTO hostile_log VALUES ($1, $2)\", { %d, ok and \"accepted\" or tostring(e) }) end\n")
        :format(c[1], i)
    end
    local dir = cli.project { files = {
      ["migrations/versions/n1_nul.lua"] = cli.revision("n1", nil, table.concat(code)),
    } }
    local url, dbname = pg.new_db("hostile")
    local r = cli.run({ "--url", url, "upgrade", "head" }, { cwd = dir })
    assert.equal(0, r.code, r.err)
    local function check(u)
      for i, c in ipairs(refused) do
        local msg = pg.psql(u, "SELECT v FROM hostile_log WHERE n = " .. i)
        assert.truthy(msg:find(c[2], 1, true), ("case %d (%s): expected %q in %q"):format(i, c[1], c[2], msg))
        assert.truthy(msg:find("n1_nul.lua:", 1, true), ("case %d: no file:line in %q"):format(i, msg))
      end
      assert.equal("1", pg.psql(u, "SELECT count(*) FROM victim") == "0" and "1" or "0")
      assert.equal(L63, pg.psql(u, "SELECT relname FROM pg_class WHERE relname LIKE 'nnnn%' AND relkind = 'r'"))
    end
    check(url)
    local url2, dbname2 = apply_offline(dir)
    check(url2)
    cli.remove(dir)
    pg.drop_db(dbname)
    pg.drop_db(dbname2)
  end)
end)
