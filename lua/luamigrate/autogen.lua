-- Autogenerate: the schema declared in Lua (a sa.MetaData of sa.Table) against the live
-- database read from the catalogs, as a list of differences, rendered as the upgrade() and
-- downgrade() of a new revision written with the op API.
--
-- Both sides become one normal form first (tables -> columns, primary key, unique, foreign
-- key and check constraints, indexes, comment; enums -> values), with types spelled as
-- format_type spells them and unnamed constraints named as PostgreSQL or the metadata's
-- naming_convention names them. Differences are then plain comparisons; column defaults
-- that differ in text are compared by the server (each is stored in a rolled-back
-- temporary table and read back). Renames are never guessed: a renamed table or column is
-- a drop and an add, which the reviewer turns into op.rename_* by hand.
local quote = require "luamigrate.quote"
local types = require "luamigrate.types"
local schema = require "luamigrate.schema"
local render = require "luamigrate.render"

local M = {}

local SEP = "\31" -- joins lists inside one catalog column

local function split_list(s)
  local t = {}
  if s == nil or s == "" then return t end
  for part in (s .. SEP):gmatch("(.-)" .. SEP) do t[#t + 1] = part end
  return t
end

local function key_of(sch, name) return sch .. "." .. name end

-- ---- types --------------------------------------------------------------------------

local SIMPLE = { Integer = "integer", BigInteger = "bigint", SmallInteger = "smallint",
  Text = "text", Boolean = "boolean", Date = "date", Interval = "interval",
  Float = "double precision", LargeBinary = "bytea", JSON = "json", JSONB = "jsonb", UUID = "uuid" }

local ALIASES = {
  int = "integer", int4 = "integer", integer = "integer", int8 = "bigint", bigint = "bigint",
  int2 = "smallint", smallint = "smallint", bool = "boolean", boolean = "boolean",
  text = "text", varchar = "character varying", ["character varying"] = "character varying",
  timestamptz = "timestamp with time zone", timestamp = "timestamp without time zone",
  ["timestamp with time zone"] = "timestamp with time zone",
  ["timestamp without time zone"] = "timestamp without time zone",
  timetz = "time with time zone", time = "time without time zone", float8 = "double precision",
  ["double precision"] = "double precision", float = "double precision", float4 = "real",
  real = "real", numeric = "numeric", decimal = "numeric", char = "character", nchar = "character",
  bpchar = "character", character = "character", bytea = "bytea", json = "json",
  jsonb = "jsonb", uuid = "uuid", date = "date", interval = "interval",
}

-- A type written as SQL text, in format_type's spelling where it is a common one.
-- (Collations are not compared, as Alembic does not; PostgreSQL keeps no array dimensions,
-- so int[][] is int[]; float(p) is real up to 24 bits of precision, as PostgreSQL maps it.)
local function canon_sql(s)
  local t = s:lower():gsub(' collate ("?)[^"]*%1$', ""):gsub("^%s+", ""):gsub("%s+$", ""):gsub("%s+", " ")
  local arr = ""
  while t:sub(-2) == "[]" do
    arr = "[]"
    t = t:sub(1, -3):gsub("%s+$", "")
  end
  local base, args = t:match("^([%a_ ]-)%s*(%b())$")
  base = base or t
  base = ALIASES[base] or base
  if base == "double precision" and args then
    return (tonumber(args:match("%d+")) <= 24 and "real" or "double precision") .. arr
  end
  if args then
    args = args:gsub("%s", ""):gsub(",", ",")
    if base == "numeric" and not args:find(",") then args = args:sub(1, -2) .. ",0)" end
    return base .. args .. arr
  end
  return base .. arr
end

-- The canonical spelling of a declared type, and the enum it names (if any).
local function canon_type(t, default_schema)
  if type(t) == "string" then return canon_sql(t) end
  if not types.is_type(t) then return canon_sql(types.sql_of(t)) end
  if SIMPLE[t.kind] then return SIMPLE[t.kind] end
  if t.kind == "String" then
    return t.length and ("character varying(%d)"):format(t.length) or "character varying"
  elseif t.kind == "Numeric" then
    if t.precision then return ("numeric(%d,%d)"):format(t.precision, t.scale or 0) end
    return "numeric"
  elseif t.kind == "DateTime" then
    return t.timezone and "timestamp with time zone" or "timestamp without time zone"
  elseif t.kind == "Time" then
    return t.timezone and "time with time zone" or "time without time zone"
  elseif t.kind == "ARRAY" then
    local inner, e = canon_type(t.item_type, default_schema)
    return inner .. "[]", e
  elseif t.kind == "Enum" then
    local e = { schema = t.schema or default_schema, name = t.name, values = t.values }
    return "enum:" .. key_of(e.schema, e.name), e
  end
  return canon_sql(t:sql())
end

-- ---- naming -------------------------------------------------------------------------

local function truncate(name) return #name > 63 and name:sub(1, 63) or name end

-- A constraint or index name from the naming_convention (SQLAlchemy's tokens), else as
-- PostgreSQL names an unnamed one.
local function choose_name(md, kind, tname, cols, refs, given)
  local conv = md.naming_convention[kind]
  if given and not (conv and conv:find("%(constraint_name)s", 1, true)) then return given end
  if conv then
    local tokens = {
      table_name = tname, column_0_name = cols[1] or "", column_0N_name = table.concat(cols, ""),
      column_0_N_name = table.concat(cols, "_"), column_0_label = tname .. "_" .. (cols[1] or ""),
      referred_table_name = refs or "", constraint_name = given or "",
    }
    -- a convention's name is SQLAlchemy's conv(): shortened as SQLAlchemy shortens it
    return quote.conv_name((conv:gsub("%%%(([%w_]+)%)s", function(tok)
      if tokens[tok] == nil then error(("naming_convention %s: unknown token %%(%s)s"):format(kind, tok), 0) end
      return tokens[tok]
    end)))
  end
  if kind == "pk" then return truncate(tname .. "_pkey") end
  if kind == "uq" then return truncate(tname .. "_" .. table.concat(cols, "_") .. "_key") end
  if kind == "fk" then return truncate(tname .. "_" .. table.concat(cols, "_") .. "_fkey") end
  if kind == "ck" then return truncate(tname .. "_check") end
  return truncate("ix_" .. tname .. "_" .. table.concat(cols, "_"))
end

-- ---- the declared side --------------------------------------------------------------

local function default_text(v)
  if v == nil then return nil end
  return render.default_sql(v)
end


local function index_key(e)
  if type(e) == "string" then return quote.ident(e) end
  if schema.is(e, "text") then return e.text end
  if schema.is(e, "Column") then return quote.ident(e.name) end
  error("sa.Index: each key must be a column name or sa.text", 0)
end

function M.declared(md, default_schema)
  local model = { tables = {}, order = {}, enums = {} }
  local function add_enum(e)
    local k = key_of(e.schema, e.name)
    local prev = model.enums[k]
    if prev and table.concat(prev.values, SEP) ~= table.concat(e.values, SEP) then
      error(("enum %s is declared with two different lists of values"):format(k), 0)
    end
    model.enums[k] = model.enums[k] or { schema = e.schema, name = e.name, values = e.values }
  end
  for _, t in ipairs(md.sorted) do
    local sch = t.schema or default_schema
    local T = { schema = sch, name = t.name, comment = t.comment, columns = {}, colorder = {},
      uniques = {}, fks = {}, checks = {}, indexes = {} }
    local pkcols = {}
    for _, c in ipairs(t.columns) do
      if c.primary_key then pkcols[#pkcols + 1] = c.name end
    end
    for _, c in ipairs(t.columns) do
      local ct, enum = canon_type(c.type, default_schema)
      if enum then add_enum(enum) end
      local C = { name = c.name, type = ct, enum = enum, nullable = c.nullable,
        default = default_text(c.server_default), comment = c.comment,
        -- SERIAL as op.create_table writes it (schema.autoincrement_column, set by sa.Table)
        serial = c == t.autoincrement_column and not c.identity and c.default == nil,
        identity = c.identity and (c.identity.always and "a" or "d") or nil,
        pk = c.primary_key }
      if C.serial or C.identity or C.pk then C.nullable = false end
      T.columns[c.name] = C
      T.colorder[#T.colorder + 1] = c.name
      if c.unique and not c.index then
        local n = choose_name(md, "uq", t.name, { c.name })
        T.uniques[n] = { name = n, cols = { c.name } }
      end
      if c.index then
        local n = choose_name(md, "ix", t.name, { c.name })
        T.indexes[n] = { name = n, keys = { quote.ident(c.name) }, cols = { c.name },
          unique = c.unique and true or false }
      end
      for _, fk in ipairs(c.foreign_keys) do
        local n = choose_name(md, "fk", t.name, { c.name }, fk.table, fk.name)
        T.fks[n] = { name = n, cols = { c.name }, ref_schema = fk.schema or sch, ref_table = fk.table,
          ref_cols = { fk.column }, ondelete = fk.ondelete, onupdate = fk.onupdate,
          deferrable = fk.deferrable, initially = fk.initially }
      end
    end
    for _, k in ipairs(t.constraints) do
      if schema.is(k, "PrimaryKeyConstraint") then
        pkcols = k.columns
        T.pk = { name = choose_name(md, "pk", t.name, k.columns, nil, k.name), cols = k.columns }
        for _, cn in ipairs(k.columns) do
          if T.columns[cn] then T.columns[cn].nullable = false end
        end
      elseif schema.is(k, "UniqueConstraint") then
        local n = choose_name(md, "uq", t.name, k.columns, nil, k.name)
        T.uniques[n] = { name = n, cols = k.columns }
      elseif schema.is(k, "ForeignKeyConstraint") then
        local n = choose_name(md, "fk", t.name, k.columns, k.ref_table, k.name)
        T.fks[n] = { name = n, cols = k.columns, ref_schema = k.ref_schema or sch, ref_table = k.ref_table,
          ref_cols = k.ref_columns, ondelete = k.ondelete, onupdate = k.onupdate,
          deferrable = k.deferrable, initially = k.initially }
      elseif schema.is(k, "CheckConstraint") then
        local n = choose_name(md, "ck", t.name, {}, nil, k.name)
        T.checks[n] = { name = n, sqltext = render.sqltext(k.sqltext) }
      else
        error(("sa.Table(%q): %s is not supported by autogenerate"):format(t.name, tostring(k.kind)), 0)
      end
    end
    if not T.pk and #pkcols > 0 then
      T.pk = { name = choose_name(md, "pk", t.name, pkcols), cols = pkcols }
    end
    for _, ix in ipairs(t.indexes) do
      local keys, cols = {}, {}
      for i, e in ipairs(ix.expressions) do
        keys[i] = index_key(e)
        cols[i] = type(e) == "string" and e or nil
      end
      local o = ix.options
      local n = ix.name or choose_name(md, "ix", t.name, cols)
      T.indexes[n] = { name = n, keys = keys, exprs = ix.expressions, unique = o.unique and true or false,
        where = o.postgresql_where and render.sqltext(o.postgresql_where) or nil,
        using = o.postgresql_using, include = o.postgresql_include }
    end
    local k = key_of(sch, t.name)
    model.tables[k] = T
    model.order[#model.order + 1] = k
  end
  return model
end

-- ---- the database side ----------------------------------------------------------------

local function pg_array(list)
  local parts = {}
  for i, s in ipairs(list) do parts[i] = '"' .. s:gsub('[\\"]', "\\%0") .. '"' end
  return "{" .. table.concat(parts, ",") .. "}"
end

local FK_ACTION = { a = nil, r = "RESTRICT", c = "CASCADE", n = "SET NULL", d = "SET DEFAULT" }

function M.inspect(conn, schemas, skip)
  local arr = pg_array(schemas)
  local model = { tables = {}, order = {}, enums = {} }
  for _, r in ipairs(conn:query([[
SELECT n.nspname AS schema, t.typname AS name,
       string_agg(e.enumlabel, chr(31) ORDER BY e.enumsortorder) AS labels
FROM pg_type t JOIN pg_enum e ON e.enumtypid = t.oid JOIN pg_namespace n ON n.oid = t.typnamespace
WHERE n.nspname = ANY ($1::text[]) GROUP BY 1, 2 ORDER BY 1, 2]], arr)) do
    model.enums[key_of(r.schema, r.name)] = { schema = r.schema, name = r.name, values = split_list(r.labels) }
  end
  for _, r in ipairs(conn:query([[
SELECT n.nspname AS schema, c.relname AS name, obj_description(c.oid, 'pg_class') AS comment
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'p') AND NOT c.relispartition AND n.nspname = ANY ($1::text[])
ORDER BY 1, 2]], arr)) do
    local k = key_of(r.schema, r.name)
    if not skip[k] then
      model.tables[k] = { schema = r.schema, name = r.name, comment = r.comment, columns = {},
        colorder = {}, uniques = {}, fks = {}, checks = {}, indexes = {} }
      model.order[#model.order + 1] = k
    end
  end
  for _, r in ipairs(conn:query([[
SELECT n.nspname AS schema, c.relname AS tbl, a.attname AS name,
       format_type(a.atttypid, a.atttypmod) AS type, t.typtype, tn.nspname AS typschema,
       t.typname, et.typtype AS elemtype, etn.nspname AS elemschema, et.typname AS elemname,
       a.attnotnull AS notnull, pg_get_expr(d.adbin, d.adrelid) AS default_,
       a.attidentity AS identity, col_description(c.oid, a.attnum) AS comment
FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
JOIN pg_type t ON t.oid = a.atttypid JOIN pg_namespace tn ON tn.oid = t.typnamespace
LEFT JOIN pg_type et ON et.oid = t.typelem AND t.typcategory = 'A'
LEFT JOIN pg_namespace etn ON etn.oid = et.typnamespace
LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
WHERE c.relkind IN ('r', 'p') AND n.nspname = ANY ($1::text[]) AND a.attnum > 0
  AND NOT a.attisdropped
ORDER BY 1, 2, a.attnum]], arr)) do
    local T = model.tables[key_of(r.schema, r.tbl)]
    if T then
      local ct, enum = canon_sql(r.type), nil
      if r.typtype == "e" then
        enum = model.enums[key_of(r.typschema, r.typname)]
        ct = "enum:" .. key_of(r.typschema, r.typname)
      elseif r.elemtype == "e" then
        enum = model.enums[key_of(r.elemschema, r.elemname)]
        ct = "enum:" .. key_of(r.elemschema, r.elemname) .. "[]"
      end
      local default = r.default_
      local serial = default ~= nil and default:match("^nextval%('.*'::regclass%)$") ~= nil
        and (ct == "integer" or ct == "bigint" or ct == "smallint")
      T.columns[r.name] = { name = r.name, type = ct, enum = enum, nullable = not r.notnull,
        default = (not serial) and default or nil, serial = serial,
        identity = (r.identity ~= "" and r.identity) or nil, comment = r.comment, sqltype = r.type }
      T.colorder[#T.colorder + 1] = r.name
    end
  end
  for _, r in ipairs(conn:query([[
SELECT n.nspname AS schema, c.relname AS tbl, k.conname AS name, k.contype AS type,
       (SELECT string_agg(a.attname, chr(31) ORDER BY x.i)
          FROM unnest(k.conkey) WITH ORDINALITY AS x(num, i)
          JOIN pg_attribute a ON a.attrelid = k.conrelid AND a.attnum = x.num) AS cols,
       rn.nspname AS ref_schema, rc.relname AS ref_table,
       (SELECT string_agg(a.attname, chr(31) ORDER BY x.i)
          FROM unnest(k.confkey) WITH ORDINALITY AS x(num, i)
          JOIN pg_attribute a ON a.attrelid = k.confrelid AND a.attnum = x.num) AS ref_cols,
       k.confupdtype AS onupdate, k.confdeltype AS ondelete, k.condeferrable AS deferrable,
       k.condeferred AS deferred, pg_get_constraintdef(k.oid, true) AS def
FROM pg_constraint k JOIN pg_class c ON c.oid = k.conrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
LEFT JOIN pg_class rc ON rc.oid = k.confrelid LEFT JOIN pg_namespace rn ON rn.oid = rc.relnamespace
WHERE k.contype IN ('p', 'u', 'f', 'c') AND n.nspname = ANY ($1::text[])
ORDER BY 1, 2, 3]], arr)) do
    local T = model.tables[key_of(r.schema, r.tbl)]
    if T then
      local cols = split_list(r.cols)
      if r.type == "p" then
        T.pk = { name = r.name, cols = cols }
      elseif r.type == "u" then
        T.uniques[r.name] = { name = r.name, cols = cols }
      elseif r.type == "f" then
        T.fks[r.name] = { name = r.name, cols = cols, ref_schema = r.ref_schema, ref_table = r.ref_table,
          ref_cols = split_list(r.ref_cols), ondelete = FK_ACTION[r.ondelete], onupdate = FK_ACTION[r.onupdate],
          deferrable = r.deferrable or nil, initially = r.deferred and "DEFERRED" or nil }
      else
        local cond = r.def:match("^CHECK %((.*)%)$") or r.def
        T.checks[r.name] = { name = r.name, sqltext = cond }
      end
    end
  end
  for _, r in ipairs(conn:query([[
SELECT n.nspname AS schema, c.relname AS tbl, ic.relname AS name, i.indisunique AS is_unique,
       am.amname AS method, pg_get_expr(i.indpred, i.indrelid, true) AS where_,
       (SELECT string_agg(pg_get_indexdef(i.indexrelid, k, true), chr(31) ORDER BY k)
          FROM generate_series(1, i.indnkeyatts) AS k) AS keys,
       (SELECT string_agg(pg_get_indexdef(i.indexrelid, k, true), chr(31) ORDER BY k)
          FROM generate_series(i.indnkeyatts + 1, i.indnatts) AS k) AS include
FROM pg_index i JOIN pg_class ic ON ic.oid = i.indexrelid
JOIN pg_class c ON c.oid = i.indrelid JOIN pg_namespace n ON n.oid = c.relnamespace
JOIN pg_am am ON am.oid = ic.relam
WHERE c.relkind IN ('r', 'p') AND n.nspname = ANY ($1::text[])
  AND NOT EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conindid = i.indexrelid
                  AND k.conrelid = i.indrelid AND k.contype IN ('p', 'u', 'x'))
ORDER BY 1, 2, 3]], arr)) do
    local T = model.tables[key_of(r.schema, r.tbl)]
    if T then
      local include = split_list(r.include)
      T.indexes[r.name] = { name = r.name, keys = split_list(r.keys), unique = r.is_unique,
        where = r.where_, using = r.method ~= "btree" and r.method or nil,
        include = #include > 0 and include or nil }
    end
  end
  return model
end

-- ---- comparing ----------------------------------------------------------------------

local function norm_sql(s)
  if s == nil then return nil end
  s = s:lower():gsub("%s+", "")
  while s:match("^%b()$") do s = s:sub(2, -2) end
  return s
end

local function same_list(a, b)
  if #a ~= #b then return false end
  for i = 1, #a do if a[i] ~= b[i] then return false end end
  return true
end

local function norm_keys(keys)
  local t = {}
  for i, k in ipairs(keys) do t[i] = norm_sql(k) end
  return t
end

local function same_index(a, b)
  return a.unique == b.unique and same_list(norm_keys(a.keys), norm_keys(b.keys))
    and norm_sql(a.where) == norm_sql(b.where) and (a.using or "btree") == (b.using or "btree")
    and same_list(a.include or {}, b.include or {})
end

local function same_fk(a, b)
  return same_list(a.cols, b.cols) and a.ref_schema == b.ref_schema and a.ref_table == b.ref_table
    and same_list(a.ref_cols, b.ref_cols) and (a.ondelete or "NO ACTION") == (b.ondelete or "NO ACTION")
    and (a.onupdate or "NO ACTION") == (b.onupdate or "NO ACTION")
    and (a.deferrable and true or false) == (b.deferrable and true or false)
end

-- Server-side comparison of a declared default with the database's: the declared one is
-- stored on a temporary column of the live column's type and read back.
local function server_default_equal(conn, sqltype, declared, live)
  local ok, same = pcall(function()
    conn:execute("SAVEPOINT luamigrate_autogen")
    local okc, res = pcall(function()
      conn:execute(("CREATE TEMPORARY TABLE luamigrate_autogen_default (c %s DEFAULT %s)"):format(sqltype, declared))
      local rows = conn:query([[
SELECT pg_get_expr(d.adbin, d.adrelid) AS expr FROM pg_attrdef d
WHERE d.adrelid = 'luamigrate_autogen_default'::regclass]])
      return rows[1] and rows[1].expr
    end)
    conn:execute("ROLLBACK TO SAVEPOINT luamigrate_autogen")
    conn:execute("RELEASE SAVEPOINT luamigrate_autogen")
    if not okc then return false end
    return res == live
  end)
  return ok and same
end

-- Server-side comparison of a declared index with a live one whose text differs: the
-- declared index is built on an empty copy of the table and read back as the server
-- spells it.
local function server_index_equal(conn, T, want, live)
  local ok, same = pcall(function()
    local keys = {}
    for i, k in ipairs(want.keys) do keys[i] = k end
    conn:execute("SAVEPOINT luamigrate_autogen")
    local okc, res = pcall(function()
      conn:execute(("CREATE TEMPORARY TABLE luamigrate_autogen_ix (LIKE %s)"):format(quote.qualified(T.schema, T.name)))
      conn:execute(("CREATE %sINDEX luamigrate_autogen_ix_i ON luamigrate_autogen_ix%s (%s)%s"):format(
        want.unique and "UNIQUE " or "", want.using and (" USING " .. want.using) or "",
        table.concat(keys, ", "), want.where and (" WHERE " .. want.where) or ""))
      return conn:query([[
SELECT pg_get_expr(i.indpred, i.indrelid, true) AS where_,
       (SELECT string_agg(pg_get_indexdef(i.indexrelid, k, true), chr(31) ORDER BY k)
          FROM generate_series(1, i.indnkeyatts) AS k) AS keys
FROM pg_index i WHERE i.indexrelid = 'luamigrate_autogen_ix_i'::regclass]])[1]
    end)
    conn:execute("ROLLBACK TO SAVEPOINT luamigrate_autogen")
    conn:execute("RELEASE SAVEPOINT luamigrate_autogen")
    if not okc then return false end
    return same_list(split_list(res.keys), live.keys) and res.where_ == live.where
  end)
  return ok and same
end

local function enum_only_added(old, new)
  -- every old value still there, in the same order
  local pos = {}
  for i, v in ipairs(new) do pos[v] = i end
  local last = 0
  for _, v in ipairs(old) do
    local p = pos[v]
    if not p or p < last then return false end
    last = p
  end
  return true
end

-- Columns of the live database that use an enum: {table record, column record}.
local function enum_users(live, ekey)
  local users = {}
  for _, k in ipairs(live.order) do
    local T = live.tables[k]
    for _, cn in ipairs(T.colorder) do
      local C = T.columns[cn]
      if C.type == "enum:" .. ekey then users[#users + 1] = { table = T, column = C } end
    end
  end
  return users
end

-- The differences, as a list of operations in upgrade order. Each is a table with `op`
-- (what), the objects, and `text` (one line for check and the summary).
-- Upgrade order: enum changes; foreign keys, then other constraints and indexes, dropped;
-- columns added and altered; constraints and indexes (not foreign keys) created; new
-- tables; foreign keys created (they may point at new tables); columns dropped; tables
-- dropped; enums dropped.
local BUCKETS = { "enum", "drop_fk", "drop_other", "add_column", "alter", "create_other",
  "create_table", "create_fk", "drop_column", "drop_table", "drop_enum" }

function M.compare(conn, want, live, filter)
  local ops = {}
  local buckets = {}
  for _, b in ipairs(BUCKETS) do buckets[b] = {} end
  local function put(bucket, o) table.insert(buckets[bucket], o) end
  local function add(o) ops[#ops + 1] = o end
  local function wanted(kind, name, parent) return filter(kind, name, parent) end

  -- enums first
  local ekeys = {}
  for k in pairs(want.enums) do ekeys[#ekeys + 1] = k end
  table.sort(ekeys)
  for _, k in ipairs(ekeys) do
    local e, l = want.enums[k], live.enums[k]
    if wanted("enum", e.name, e.schema) then
      if not l then
        add { op = "create_enum", enum = e, text = ("added enum %s (%s)"):format(k, table.concat(e.values, ", ")) }
      elseif not same_list(e.values, l.values) then
        if enum_only_added(l.values, e.values) then
          local have = {}
          for _, v in ipairs(l.values) do have[v] = true end
          for i, v in ipairs(e.values) do
            if not have[v] then
              add { op = "add_enum_value", enum = e, old = l, value = v,
                after = e.values[i - 1], before = (i == 1) and e.values[i + 1] or nil,
                text = ("added value %q to enum %s"):format(v, k) }
              have[v] = true
            end
          end
        else
          add { op = "change_enum", enum = e, old = l, users = enum_users(live, k),
            text = ("changed enum %s: (%s) -> (%s)"):format(k, table.concat(l.values, ", "),
              table.concat(e.values, ", ")) }
        end
      end
    end
  end

  -- columns of swapped enums get their defaults back from the swap itself
  local swapped = {}
  for _, o in ipairs(ops) do if o.op == "change_enum" then swapped["enum:" .. key_of(o.enum.schema,
    o.enum.name)] = true end end

  -- new tables, referenced ones first
  local new_tables = {}
  for _, k in ipairs(want.order) do
    local T = want.tables[k]
    if not live.tables[k] and wanted("table", T.name, T.schema) then new_tables[#new_tables + 1] = T end
  end
  local placed, sorted = {}, {}
  local function place(T, stack)
    local k = key_of(T.schema, T.name)
    if placed[k] then return end
    stack[k] = true
    local names = {}
    for n in pairs(T.fks) do names[#names + 1] = n end
    table.sort(names)
    for _, n in ipairs(names) do
      local fk = T.fks[n]
      local rk = key_of(fk.ref_schema, fk.ref_table)
      local R = want.tables[rk]
      if R and not live.tables[rk] and not placed[rk] then
        if stack[rk] then fk.deferred_create = true else place(R, stack) end
      end
    end
    stack[k] = nil
    placed[k] = true
    sorted[#sorted + 1] = T
  end
  for _, T in ipairs(new_tables) do place(T, {}) end
  for _, T in ipairs(sorted) do
    put("create_table", { op = "create_table", table = T, text = ("added table %s"):format(key_of(T.schema, T.name)) })
  end
  for _, T in ipairs(sorted) do
    local names = {}
    for n, fk in pairs(T.fks) do if fk.deferred_create then names[#names + 1] = n end end
    table.sort(names)
    for _, n in ipairs(names) do
      put("create_fk", { op = "create_fk", table = T, obj = T.fks[n],
        text = ("added foreign key %s on %s"):format(n, T.name) })
    end
  end

  -- tables on both sides
  for _, k in ipairs(want.order) do
    local W, L = want.tables[k], live.tables[k]
    if L and wanted("table", W.name, W.schema) then
      local tk = key_of(W.schema, W.name)
      for _, cn in ipairs(W.colorder) do
        local c = W.columns[cn]
        if not L.columns[cn] and wanted("column", cn, W.name) then
          put("add_column", { op = "add_column", table = W, column = c, text = ("added column %s.%s"):format(tk, cn) })
        end
      end
      for _, cn in ipairs(W.colorder) do
        local c, l = W.columns[cn], L.columns[cn]
        if l and wanted("column", cn, W.name) then
          local ch = {}
          if c.type ~= l.type and not (c.serial and l.serial) then ch.type = true end
          if c.nullable ~= l.nullable then ch.nullable = true end
          if c.serial ~= l.serial and not ch.type then
            -- serial on one side only: the default differs
            if not (c.serial and l.serial) then ch.default = true end
          elseif not c.serial and c.default ~= l.default then
            if c.default == nil or l.default == nil then ch.default = true
            elseif not server_default_equal(conn, l.sqltype, c.default, l.default) then ch.default = true end
          end
          if ch.default and not ch.type and swapped[c.type] then ch.default = nil end
          if (c.identity or false) ~= (l.identity or false) then ch.identity = true end
          if c.comment ~= l.comment then ch.comment = true end
          if next(ch) then
            local what = {}
            for _, w in ipairs { "type", "nullable", "default", "identity", "comment" } do
              if ch[w] then what[#what + 1] = w end
            end
            put("alter", { op = "alter_column", table = W, column = c, live = l, changes = ch,
              text = ("changed %s of column %s.%s"):format(table.concat(what, ", "), tk, cn) })
          end
        end
      end
      if (W.comment or nil) ~= (L.comment or nil) then
        put("alter", { op = "table_comment", table = W, old = L.comment, new = W.comment,
          text = ("changed comment of table %s"):format(tk) })
      end
      -- constraints and indexes: dropped or changed first, then created
      local function diff(kindname, wset, lset, same, label)
        local names = {}
        for n in pairs(lset) do names[#names + 1] = n end
        table.sort(names)
        for _, n in ipairs(names) do
          if wanted(kindname, n, W.name) and (not wset[n] or not same(wset[n], lset[n])) then
            put(kindname == "fk" and "drop_fk" or "drop_other", { op = "drop_" .. kindname, table = W,
              obj = lset[n], live = true,
              text = ("%s %s %s on %s"):format(wset[n] and "changed" or "removed", label, n, tk) })
          end
        end
        names = {}
        for n in pairs(wset) do names[#names + 1] = n end
        table.sort(names)
        for _, n in ipairs(names) do
          if wanted(kindname, n, W.name) and (not lset[n] or not same(wset[n], lset[n])) then
            put(kindname == "fk" and "create_fk" or "create_other", { op = "create_" .. kindname, table = W,
              obj = wset[n],
              text = (not lset[n]) and ("added %s %s on %s"):format(label, n, tk) or nil })
          end
        end
      end
      diff("pk", W.pk and { [W.pk.name] = W.pk } or {}, L.pk and { [L.pk.name] = L.pk } or {},
        function(a, b) return same_list(a.cols, b.cols) end, "primary key")
      diff("unique", W.uniques, L.uniques, function(a, b) return same_list(a.cols, b.cols) end, "unique constraint")
      diff("fk", W.fks, L.fks, same_fk, "foreign key")
      diff("check", W.checks, L.checks, function() return true end, "check constraint")
      diff("index", W.indexes, L.indexes, function(a, b)
        if same_index(a, b) then return true end
        return a.unique == b.unique and (a.using or "btree") == (b.using or "btree")
          and same_list(a.include or {}, b.include or {}) and server_index_equal(conn, L, a, b)
      end, "index")
      for _, cn in ipairs(L.colorder) do
        if not W.columns[cn] and wanted("column", cn, W.name) then
          put("drop_column", { op = "drop_column", table = W, live_table = L, column = L.columns[cn],
            text = ("removed column %s.%s"):format(tk, cn) })
        end
      end
    end
  end

  -- tables only in the database, referencing ones first
  local gone = {}
  for _, k in ipairs(live.order) do
    local T = live.tables[k]
    if not want.tables[k] and wanted("table", T.name, T.schema) then gone[#gone + 1] = T end
  end
  local dplaced, dsorted = {}, {}
  local function dplace(T, stack)
    local k = key_of(T.schema, T.name)
    if dplaced[k] then return end
    stack[k] = true
    -- tables that reference T are dropped before it
    for _, O in ipairs(gone) do
      local ok = key_of(O.schema, O.name)
      if ok ~= k and not dplaced[ok] and not stack[ok] then
        for _, fk in pairs(O.fks) do
          if key_of(fk.ref_schema, fk.ref_table) == k then dplace(O, stack) break end
        end
      end
    end
    stack[k] = nil
    dplaced[k] = true
    dsorted[#dsorted + 1] = T
  end
  for _, T in ipairs(gone) do dplace(T, {}) end
  for _, T in ipairs(dsorted) do
    put("drop_table", { op = "drop_table", table = T, text = ("removed table %s"):format(key_of(T.schema, T.name)) })
  end

  -- enums only in the database, once nothing uses them
  local lkeys = {}
  for k in pairs(live.enums) do lkeys[#lkeys + 1] = k end
  table.sort(lkeys)
  for _, k in ipairs(lkeys) do
    local e = live.enums[k]
    if not want.enums[k] and wanted("enum", e.name, e.schema) then
      put("drop_enum", { op = "drop_enum", enum = e, text = ("removed enum %s"):format(k) })
    end
  end
  for _, b in ipairs(BUCKETS) do
    for _, o in ipairs(buckets[b]) do ops[#ops + 1] = o end
  end
  return ops
end

-- ---- rendering ----------------------------------------------------------------------

local function lit(s) return ("%q"):format(s):gsub("\\\n", "\\n") end

local function lua_list(list)
  local t = {}
  for i, s in ipairs(list) do t[i] = lit(s) end
  return "{ " .. table.concat(t, ", ") .. " }"
end

-- opts table text from an ordered list of {key, value-text} pairs (nil values left out)
local function opts_text(pairs_)
  local t = {}
  for _, kv in ipairs(pairs_) do
    if kv[2] ~= nil then t[#t + 1] = kv[1] .. " = " .. kv[2] end
  end
  if #t == 0 then return nil end
  return "{ " .. table.concat(t, ", ") .. " }"
end

-- ", <opts>" when there are options, else nothing
local function tail(opts) return opts and (", " .. opts) or "" end

local function schema_opt(sch, default_schema)
  if sch and sch ~= default_schema then return lit(sch) end
  return nil
end

local TYPE_LUA = {
  integer = "sa.Integer()", bigint = "sa.BigInteger()", smallint = "sa.SmallInteger()",
  text = "sa.Text()", boolean = "sa.Boolean()", date = "sa.Date()", interval = "sa.Interval()",
  ["double precision"] = "sa.Float()", bytea = "sa.LargeBinary()", json = "sa.JSON()",
  jsonb = "sa.JSONB()", uuid = "sa.UUID()", ["character varying"] = "sa.String()",
  ["timestamp without time zone"] = "sa.DateTime()",
  ["timestamp with time zone"] = "sa.DateTime({ timezone = true })",
  ["time without time zone"] = "sa.Time()", ["time with time zone"] = "sa.Time({ timezone = true })",
  numeric = "sa.Numeric()",
}

local function type_lua(ct, enums, default_schema)
  if ct:sub(-2) == "[]" then return "sa.ARRAY(" .. type_lua(ct:sub(1, -3), enums, default_schema) .. ")" end
  if ct:sub(1, 5) == "enum:" then
    local e = enums[ct:sub(6)]
    local sch = schema_opt(e.schema, default_schema)
    local vals = {}
    for i, v in ipairs(e.values) do vals[i] = lit(v) end
    return ("sa.Enum(%s, { name = %s%s, create_type = false })"):format(table.concat(vals, ", "),
      lit(e.name), sch and (", schema = " .. sch) or "")
  end
  if TYPE_LUA[ct] then return TYPE_LUA[ct] end
  local n = ct:match("^character varying%((%d+)%)$")
  if n then return ("sa.String(%s)"):format(n) end
  local p, s = ct:match("^numeric%((%d+),(%d+)%)$")
  if p then return ("sa.Numeric(%s, %s)"):format(p, s) end
  return lit(ct)
end

local function sqltext_lua(s) return ("sa.text(%s)"):format(lit(s)) end

local function column_lua(C, pkcols, enums, ds)
  local args = { lit(C.name) }
  local in_pk = pkcols[C.name]
  if C.serial then
    args[2] = C.type == "bigint" and "sa.BigInteger()" or C.type == "smallint" and "sa.SmallInteger()" or "sa.Integer()"
    if not in_pk then
      args[2] = lit(C.type == "bigint" and "BIGSERIAL" or C.type == "smallint" and "SMALLSERIAL" or "SERIAL")
    end
  else
    args[2] = type_lua(C.type, enums, ds)
  end
  if C.identity then args[#args + 1] = C.identity == "a" and "sa.Identity({ always = true })" or "sa.Identity()" end
  local o = opts_text {
    { "primary_key", in_pk and "true" or nil },
    { "autoincrement", (in_pk and not C.serial and not C.identity
      and (C.type == "integer" or C.type == "bigint" or C.type == "smallint")) and "false" or nil },
    { "nullable", (not C.nullable and not in_pk) and "false" or nil },
    { "server_default", C.default and sqltext_lua(C.default) or nil },
    { "comment", C.comment and lit(C.comment) or nil },
  }
  if o then args[#args + 1] = o end
  return "sa.Column(" .. table.concat(args, ", ") .. ")"
end

local function fk_opts(fk, T, ds)
  return {
    { "ondelete", fk.ondelete and lit(fk.ondelete) or nil },
    { "onupdate", fk.onupdate and lit(fk.onupdate) or nil },
    { "deferrable", fk.deferrable and "true" or nil },
    { "initially", fk.initially and lit(fk.initially) or nil },
    { "source_schema", schema_opt(T.schema, ds) },
    { "referent_schema", schema_opt(fk.ref_schema, ds) },
  }
end

local function index_lua(ix, T, ds)
  local keys = {}
  for i, k in ipairs(ix.keys) do
    local plain = k:match('^[%l_][%l%d_$]*$') or k:match('^"(.*)"$')
    keys[i] = plain and lit(plain:gsub('""', '"')) or sqltext_lua(k)
  end
  local o = opts_text {
    { "unique", ix.unique and "true" or nil },
    { "postgresql_using", ix.using and lit(ix.using) or nil },
    { "postgresql_include", ix.include and lua_list(ix.include) or nil },
    { "postgresql_where", ix.where and sqltext_lua(ix.where) or nil },
    { "schema", schema_opt(T.schema, ds) },
  }
  return ("op.create_index(%s, %s, { %s }%s)"):format(lit(ix.name), lit(T.name), table.concat(keys, ", "),
    tail(o))
end

local function create_table_lua(T, enums, ds, skip_fk)
  local lines = {}
  local pkcols = {}
  for _, c in ipairs(T.pk and T.pk.cols or {}) do pkcols[c] = true end
  for _, cn in ipairs(T.colorder) do lines[#lines + 1] = column_lua(T.columns[cn], pkcols, enums, ds) end
  if T.pk then
    local a = {}
    for i, c in ipairs(T.pk.cols) do a[i] = lit(c) end
    lines[#lines + 1] = ("sa.PrimaryKeyConstraint(%s, { name = %s })"):format(table.concat(a, ", "), lit(T.pk.name))
  end
  local function sorted_keys(t)
    local ks = {}
    for k in pairs(t) do ks[#ks + 1] = k end
    table.sort(ks)
    return ks
  end
  for _, n in ipairs(sorted_keys(T.uniques)) do
    local a = {}
    for i, c in ipairs(T.uniques[n].cols) do a[i] = lit(c) end
    lines[#lines + 1] = ("sa.UniqueConstraint(%s, { name = %s })"):format(table.concat(a, ", "), lit(n))
  end
  for _, n in ipairs(sorted_keys(T.fks)) do
    local fk = T.fks[n]
    if not (skip_fk and fk.deferred_create) then
      local refs = {}
      for i, c in ipairs(fk.ref_cols) do
        refs[i] = lit((fk.ref_schema ~= ds and (fk.ref_schema .. ".") or "") .. fk.ref_table .. "." .. c)
      end
      local o = opts_text {
        { "name", lit(n) },
        { "ondelete", fk.ondelete and lit(fk.ondelete) or nil },
        { "onupdate", fk.onupdate and lit(fk.onupdate) or nil },
        { "deferrable", fk.deferrable and "true" or nil },
        { "initially", fk.initially and lit(fk.initially) or nil },
      }
      lines[#lines + 1] = ("sa.ForeignKeyConstraint(%s, { %s }, %s)"):format(lua_list(fk.cols),
        table.concat(refs, ", "), o)
    end
  end
  for _, n in ipairs(sorted_keys(T.checks)) do
    lines[#lines + 1] = ("sa.CheckConstraint(%s, { name = %s })"):format(lit(T.checks[n].sqltext), lit(n))
  end
  local o = opts_text { { "schema", schema_opt(T.schema, ds) }, { "comment", T.comment and lit(T.comment) or nil } }
  if o then lines[#lines + 1] = o end
  local out = { ("  op.create_table(%s,\n    %s\n  )"):format(lit(T.name), table.concat(lines, ",\n    ")) }
  for _, n in ipairs(sorted_keys(T.indexes)) do out[#out + 1] = "  " .. index_lua(T.indexes[n], T, ds) end
  return table.concat(out, "\n")
end

local function enum_opts(e, ds, extra)
  local o = extra or {}
  table.insert(o, 1, { "schema", schema_opt(e.schema, ds) })
  return opts_text(o)
end

-- The rename-swap of an enum whose values lose or reorder members: columns using it lose
-- their defaults, the type is renamed aside, created anew, the columns converted through
-- text, the defaults put back, the old type dropped.
local function swap_enum_lua(e, users, defaults, ds)
  local out = {}
  local qname = e.schema ~= ds and (quote.ident(e.schema) .. ".") or ""
  local function L(s) out[#out + 1] = "  " .. s end
  L(("-- enum %s: PostgreSQL cannot remove or reorder values in place, so the type is"):format(e.name))
  L("-- renamed aside, created anew, and every column using it converted through text")
  for _, u in ipairs(users) do
    if u.column.default then
      L(("op.alter_column(%s, %s, { server_default = false%s })"):format(lit(u.table.name), lit(u.column.name),
        u.table.schema ~= ds and (", schema = " .. lit(u.table.schema)) or ""))
    end
  end
  L(("op.execute(%s)"):format(lit(("ALTER TYPE %s%s RENAME TO %s"):format(qname, quote.ident(e.name),
    quote.ident(e.name .. "_old")))))
  L(("op.create_enum(%s, %s%s)"):format(lit(e.name), lua_list(e.values),
    tail(enum_opts(e, ds))))
  local tlua = type_lua("enum:" .. key_of(e.schema, e.name), { [key_of(e.schema, e.name)] = e }, ds)
  for _, u in ipairs(users) do
    local cn = u.column.name
    local arr = u.column.type:sub(-2) == "[]"
    L(("op.alter_column(%s, %s, { type_ = %s, postgresql_using = %s%s })"):format(lit(u.table.name), lit(cn),
      arr and ("sa.ARRAY(" .. tlua .. ")") or tlua,
      lit(("%s::text%s::%s%s%s"):format(quote.ident(cn), arr and "[]" or "", qname, quote.ident(e.name),
        arr and "[]" or "")),
      u.table.schema ~= ds and (", schema = " .. lit(u.table.schema)) or ""))
  end
  for _, u in ipairs(users) do
    local d = defaults and defaults[u.table.name .. "." .. u.column.name]
    if d == nil then d = u.column.default end
    if d then
      L(("op.alter_column(%s, %s, { server_default = %s%s })"):format(lit(u.table.name), lit(u.column.name),
        sqltext_lua(d), u.table.schema ~= ds and (", schema = " .. lit(u.table.schema)) or ""))
    end
  end
  L(("op.drop_enum(%s%s)"):format(lit(e.name .. "_old"),
    e.schema ~= ds and (", { schema = " .. lit(e.schema) .. " }") or ""))
  return table.concat(out, "\n")
end

-- upgrade and downgrade text for the operations.
function M.render(ops, want, live, ds)
  local enums = {}
  for k, e in pairs(live.enums) do enums[k] = e end
  for k, e in pairs(want.enums) do enums[k] = e end
  local up, down = {}, {}
  local function U(s) up[#up + 1] = s end
  local function D(s) table.insert(down, 1, s) end
  local function sch(T) return schema_opt(T.schema, ds) end
  -- the schema as a trailing options table, or as one more field of one
  local function in_schema(T) return tail(sch(T) and ("{ schema = " .. sch(T) .. " }")) end
  local function and_schema(T) return sch(T) and (", schema = " .. sch(T)) or "" end
  for _, o in ipairs(ops) do
    local T = o.table
    if o.op == "create_enum" then
      U(("  op.create_enum(%s, %s%s)"):format(lit(o.enum.name), lua_list(o.enum.values),
        tail(enum_opts(o.enum, ds))))
      D(("  op.drop_enum(%s%s)"):format(lit(o.enum.name), tail(enum_opts(o.enum, ds))))
    elseif o.op == "drop_enum" then
      U(("  op.drop_enum(%s%s)"):format(lit(o.enum.name), tail(enum_opts(o.enum, ds))))
      D(("  op.create_enum(%s, %s%s)"):format(lit(o.enum.name), lua_list(o.enum.values),
        tail(enum_opts(o.enum, ds))))
    elseif o.op == "add_enum_value" then
      local x = enum_opts(o.enum, ds, { { "after", o.after and lit(o.after) or nil }, { "before",
        o.before and lit(o.before) or nil } })
      U(("  op.add_enum_value(%s, %s%s)"):format(lit(o.enum.name), lit(o.value), tail(x)))
      if not o.old.swapped_back then
        o.old.swapped_back = true
        -- PostgreSQL cannot drop an enum value: going back swaps in the old list
        D(swap_enum_lua(o.old, enum_users(live, key_of(o.old.schema, o.old.name)), nil, ds))
      end
    elseif o.op == "change_enum" then
      local defaults = {}
      for _, u in ipairs(o.users) do
        local WT = want.tables[key_of(u.table.schema, u.table.name)]
        local wc = WT and WT.columns[u.column.name]
        if wc then defaults[u.table.name .. "." .. u.column.name] = wc.default or false end
      end
      for k, v in pairs(defaults) do if v == false then defaults[k] = nil end end
      U(swap_enum_lua(o.enum, o.users, defaults, ds))
      D(swap_enum_lua(o.old, o.users, nil, ds))
    elseif o.op == "create_table" then
      U(create_table_lua(T, enums, ds, true))
      D(("  op.drop_table(%s%s)"):format(lit(T.name), in_schema(T)))
    elseif o.op == "drop_table" then
      U(("  op.drop_table(%s%s)"):format(lit(T.name), in_schema(T)))
      D(create_table_lua(T, enums, ds, false))
    elseif o.op == "add_column" then
      local pk = {}
      U(("  op.add_column(%s, %s%s)"):format(lit(T.name), column_lua(o.column, pk, enums, ds),
        in_schema(T)))
      D(("  op.drop_column(%s, %s%s)"):format(lit(T.name), lit(o.column.name),
        in_schema(T)))
    elseif o.op == "drop_column" then
      U(("  op.drop_column(%s, %s%s)"):format(lit(T.name), lit(o.column.name),
        in_schema(T)))
      D(("  op.add_column(%s, %s%s)"):format(lit(T.name), column_lua(o.column, {}, enums, ds),
        in_schema(T)))
    elseif o.op == "alter_column" then
      local c, l, ch = o.column, o.live, o.changes
      local function alter(to, from, dir)
        local using
        if ch.type and to.type:sub(1, 5) == "enum:" then
          local e = enums[to.type:gsub("%[%]$", ""):sub(6)]
          using = lit(("%s::text::%s%s"):format(quote.ident(c.name),
            e.schema ~= ds and (quote.ident(e.schema) .. ".") or "", quote.ident(e.name)))
        end
        local x = opts_text {
          { "type_", ch.type and type_lua(to.type, enums, ds) or nil },
          { "postgresql_using", using },
          { "existing_type", (not ch.type) and type_lua(to.type, enums, ds) or nil },
          { "nullable", ch.nullable and tostring(to.nullable) or nil },
          { "server_default", ch.default and (to.default and sqltext_lua(to.default) or "false") or nil },
          { "existing_server_default", (not ch.default and to.default) and sqltext_lua(to.default) or nil },
          { "comment", ch.comment and (to.comment and lit(to.comment) or "false") or nil },
          { "existing_nullable", (not ch.nullable) and tostring(from.nullable) or nil },
          { "schema", sch(T) },
        }
        local line = ("  op.alter_column(%s, %s, %s)"):format(lit(T.name), lit(c.name), x)
        if dir == "up" then U(line) else D(line) end
      end
      if ch.type or ch.nullable or ch.default or ch.comment then
        alter(c, l, "up")
        alter(l, c, "down")
      end
      if ch.identity then
        -- from identity `from` to identity `to` ("a", "d" or nil)
        local function identity(from, to)
          local target = quote.qualified(T.schema ~= ds and T.schema or nil, T.name)
          local col = quote.ident(c.name)
          if to and not from then
            return ("  op.alter_column(%s, %s, { server_default = sa.Identity(%s)%s })"):format(lit(T.name),
              lit(c.name), to == "a" and "{ always = true }" or "", and_schema(T))
          elseif from and not to then
            return ("  op.execute(%s)"):format(
              lit(("ALTER TABLE %s ALTER COLUMN %s DROP IDENTITY"):format(target, col)))
          end
          return ("  op.execute(%s)"):format(lit(("ALTER TABLE %s ALTER COLUMN %s SET GENERATED %s"):format(
            target, col, to == "a" and "ALWAYS" or "BY DEFAULT")))
        end
        U(identity(l.identity, c.identity))
        D(identity(c.identity, l.identity))
      end
    elseif o.op == "table_comment" then
      if o.new then
        U(("  op.create_table_comment(%s, %s%s)"):format(lit(T.name), lit(o.new),
          in_schema(T)))
      else
        U(("  op.drop_table_comment(%s%s)"):format(lit(T.name), in_schema(T)))
      end
      if o.old then
        D(("  op.create_table_comment(%s, %s%s)"):format(lit(T.name), lit(o.old),
          in_schema(T)))
      else
        D(("  op.drop_table_comment(%s%s)"):format(lit(T.name), in_schema(T)))
      end
    else
      local kind, x = o.op:match("^(%a+)_(.*)$")
      local function create_line(v)
        if x == "pk" then
          return ("  op.create_primary_key(%s, %s, %s%s)"):format(lit(v.name), lit(T.name), lua_list(v.cols),
            in_schema(T))
        elseif x == "unique" then
          return ("  op.create_unique_constraint(%s, %s, %s%s)"):format(lit(v.name), lit(T.name),
            lua_list(v.cols), in_schema(T))
        elseif x == "fk" then
          local fo = opts_text(fk_opts(v, T, ds))
          return ("  op.create_foreign_key(%s, %s, %s, %s, %s%s)"):format(lit(v.name), lit(T.name), lit(v.ref_table),
            lua_list(v.cols), lua_list(v.ref_cols), tail(fo))
        elseif x == "check" then
          return ("  op.create_check_constraint(%s, %s, %s%s)"):format(lit(v.name), lit(T.name),
            sqltext_lua(v.sqltext), in_schema(T))
        elseif x == "index" then
          return "  " .. index_lua(v, T, ds)
        end
      end
      local function drop_line(v)
        if x == "index" then
          return ("  op.drop_index(%s, { table_name = %s%s })"):format(lit(v.name), lit(T.name),
            and_schema(T))
        end
        local tname = ({ pk = "primary", unique = "unique", fk = "foreignkey", check = "check" })[x]
        return ("  op.drop_constraint(%s, %s, { type_ = %s%s })"):format(lit(v.name), lit(T.name), lit(tname),
          and_schema(T))
      end
      if kind == "create" then
        U(create_line(o.obj))
        D(drop_line(o.obj))
      else
        U(drop_line(o.obj))
        D(create_line(o.obj))
      end
    end
  end
  return table.concat(up, "\n") .. "\n", table.concat(down, "\n") .. "\n"
end

-- ---- the entry point the C core calls -------------------------------------------------

local function load_metadata(path)
  local env = setmetatable({ sa = require "luamigrate.sa", postgresql = require "luamigrate.postgresql" },
    { __index = _G })
  local f = io.open(path)
  if not f then
    error(("%s: no declared schema there (autogenerate and check read the file named by "
      .. "target_schema, default schema.lua under script_location)"):format(path), 0)
  end
  f:close()
  local chunk, err = loadfile(path, "t", env)
  if not chunk then error(err, 0) end
  local ok, md = pcall(chunk)
  if not ok then error(md, 0) end
  if not schema.is(md, "MetaData") then
    error(("%s: must return a sa.MetaData() (got %s)"):format(path, type(md)), 0)
  end
  return md
end

-- generate(conn, {config = path, script_location = dir, version_table = name})
--   -> { ops = {text...}, upgrade = text, downgrade = text } ; ops empty when no change
function M.generate(conn, args)
  local settings = require("luamigrate.config").load(args.config)
  local target = settings.target_schema or "schema.lua"
  local path = target:sub(1, 1) == "/" and target or (args.script_location .. "/" .. target)
  local md = load_metadata(path)
  local ds = conn:query("SELECT current_schema() AS s")[1].s
  local schemas = settings.include_schemas or { ds }
  if md.schema then schemas[#schemas + 1] = md.schema end
  for _, t in ipairs(md.sorted) do
    if t.schema then
      local seen = false
      for _, s in ipairs(schemas) do if s == t.schema then seen = true end end
      if not seen then schemas[#schemas + 1] = t.schema end
    end
  end
  -- luamigrate's own tables are never part of the comparison
  local vt = args.version_table
  local vs, vn = vt:match("^(.-)%.(.*)$")
  vs, vn = vs or ds, vn or vt
  local skip = { [key_of(vs, vn)] = true, [key_of(vs, vn .. "_history")] = true, [key_of(vs, vn .. "_lock")] = true,
    [key_of(vs, vn .. "_journal")] = true }
  local include_name, include_object = settings.include_name, settings.include_object
  local function filter(kind, name, parent)
    if include_name and include_name(name, kind, parent) == false then return false end
    if include_object and include_object(name, kind, parent) == false then return false end
    return true
  end
  local want = M.declared(md, ds)
  conn:execute("BEGIN ISOLATION LEVEL REPEATABLE READ") -- rolled back: it only reads
  local ok, res = pcall(function()
    local live = M.inspect(conn, schemas, skip)
    return { live = live, ops = M.compare(conn, want, live, filter) }
  end)
  conn:execute("ROLLBACK")
  if not ok then error(res, 0) end
  local ops = res.ops
  if settings.process_revision_directives then
    local r = settings.process_revision_directives(ops)
    if type(r) == "table" then ops = r end
  end
  local texts = {}
  for _, o in ipairs(ops) do texts[#texts + 1] = o.text end
  if #ops == 0 then return { ops = texts } end
  local up, down = M.render(ops, want, res.live, ds)
  return { ops = texts, upgrade = up, downgrade = down }
end

return M
