-- The database side of autogenerate: the schemas in scope read from the catalogs into the
-- same normal form as the declared side.
local N = require "luamigrate.autogen.normalize"

local M = {}

local split_list, key_of, canon_sql = N.split_list, N.key_of, N.canon_sql

local function pg_array(list)
  local parts = {}
  for i, s in ipairs(list) do parts[i] = '"' .. s:gsub('[\\"]', "\\%0") .. '"' end
  return "{" .. table.concat(parts, ",") .. "}"
end

-- pg_constraint's confupdtype/confdeltype letters as the ON UPDATE/ON DELETE actions (NO
-- ACTION, the default, is nil); sa.inspect's foreign keys read them here too
local FK_ACTION = { a = nil, r = "RESTRICT", c = "CASCADE", n = "SET NULL", d = "SET DEFAULT" }
M.FK_ACTION = FK_ACTION

-- A CHECK constraint's condition from pg_get_constraintdef ("CHECK ((a > 0)) NOT VALID"):
-- the text inside CHECK ( ... ), as SQLAlchemy's reflection gives it, and whether it is
-- NOT VALID and NO INHERIT. Anything else is returned whole.
function M.check_condition(def)
  local rest, not_valid = def:gsub(" NOT VALID$", "")
  local rest2, no_inherit = rest:gsub(" NO INHERIT$", "")
  local cond = rest2:match("^CHECK %((.*)%)$")
  if not cond then return def, false, false end
  return cond, not_valid > 0, no_inherit > 0
end

-- The column names of an attnum array (conkey, confkey, indkey) of relation `rel`, in the
-- array's order, joined by chr(31) (split_list): SQL for one column of a catalog query,
-- so a constraint's or index's columns come with it instead of one query each.
function M.column_names_sql(array, rel)
  return ("(SELECT string_agg(a.attname, chr(31) ORDER BY x.i) FROM unnest(%s) WITH ORDINALITY AS x(num, i) "
    .. "JOIN pg_catalog.pg_attribute a ON a.attrelid = %s AND a.attnum = x.num)"):format(array, rel)
end

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
SELECT n.nspname AS schema, c.relname AS name, obj_description(c.oid, 'pg_class') AS comment,
       CASE WHEN c.relkind = 'p' THEN pg_get_partkeydef(c.oid) END AS partition_by
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'p') AND NOT c.relispartition AND n.nspname = ANY ($1::text[])
ORDER BY 1, 2]], arr)) do
    local k = key_of(r.schema, r.name)
    if not skip[k] then
      model.tables[k] = { schema = r.schema, name = r.name, comment = r.comment, partition_by = r.partition_by,
        columns = {},
        colorder = {}, uniques = {}, fks = {}, checks = {}, indexes = {}, excludes = {} }
      model.order[#model.order + 1] = k
    end
  end
  for _, r in ipairs(conn:query([[
SELECT n.nspname AS schema, c.relname AS tbl, a.attname AS name,
       format_type(a.atttypid, a.atttypmod) AS type, t.typtype, tn.nspname AS typschema,
       t.typname, et.typtype AS elemtype, etn.nspname AS elemschema, et.typname AS elemname,
       a.attnotnull AS notnull,
       (SELECT co.collname FROM pg_collation co WHERE co.oid = a.attcollation
          AND co.oid <> 'pg_catalog.default'::regcollation) AS collation,
       pg_get_expr(d.adbin, d.adrelid) AS default_,
       a.attidentity AS identity, a.attgenerated AS generated, col_description(c.oid, a.attnum) AS comment,
       s.seqstart::text AS id_start, s.seqincrement::text AS id_increment, s.seqmin::text AS id_minvalue,
       s.seqmax::text AS id_maxvalue, s.seqcache::text AS id_cache, s.seqcycle AS id_cycle,
       EXISTS (SELECT 1 FROM pg_depend sq JOIN pg_class sc ON sc.oid = sq.objid
               WHERE sq.classid = 'pg_class'::regclass AND sq.refclassid = 'pg_class'::regclass
                 AND sq.refobjid = c.oid AND sq.refobjsubid = a.attnum AND sq.deptype = 'a'
                 AND sc.relkind = 'S') AS owns_sequence
FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
JOIN pg_type t ON t.oid = a.atttypid JOIN pg_namespace tn ON tn.oid = t.typnamespace
LEFT JOIN pg_type et ON et.oid = t.typelem AND t.typcategory = 'A'
LEFT JOIN pg_namespace etn ON etn.oid = et.typnamespace
LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
LEFT JOIN pg_depend sd ON a.attidentity <> '' AND sd.classid = 'pg_class'::regclass
  AND sd.refclassid = 'pg_class'::regclass AND sd.refobjid = c.oid AND sd.refobjsubid = a.attnum AND sd.deptype = 'i'
LEFT JOIN pg_sequence s ON s.seqrelid = sd.objid
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
      local default, computed = r.default_, nil
      if r.generated == "s" then default, computed = nil, r.default_ end
      -- serial: the default draws on a sequence the column owns (not on a shared one)
      local serial = default ~= nil and r.owns_sequence and default:match("^nextval%('.*'::regclass%)$") ~= nil
        and (ct == "integer" or ct == "bigint" or ct == "smallint")
      T.columns[r.name] = { name = r.name, type = ct, enum = enum, nullable = not r.notnull,
        default = (not serial) and default or nil, serial = serial, computed = computed,
        identity = (r.identity ~= "" and r.identity) or nil, comment = r.comment, sqltype = r.type,
        collation = r.collation,
        identity_opts = r.identity ~= "" and r.id_start and {
          start = math.tointeger(r.id_start), increment = math.tointeger(r.id_increment),
          minvalue = math.tointeger(r.id_minvalue), maxvalue = math.tointeger(r.id_maxvalue),
          cache = math.tointeger(r.id_cache), cycle = r.id_cycle } or nil }
      T.colorder[#T.colorder + 1] = r.name
    end
  end
  for _, r in ipairs(conn:query([[
SELECT n.nspname AS schema, c.relname AS tbl, k.conname AS name, k.contype AS type,
       ]] .. M.column_names_sql("k.conkey", "k.conrelid") .. [[ AS cols,
       rn.nspname AS ref_schema, rc.relname AS ref_table,
       ]] .. M.column_names_sql("k.confkey", "k.confrelid") .. [[ AS ref_cols,
       k.confupdtype AS onupdate, k.confdeltype AS ondelete, k.condeferrable AS deferrable,
       k.condeferred AS deferred, pg_get_constraintdef(k.oid, true) AS def,
       coalesce((SELECT i.indnullsnotdistinct FROM pg_index i WHERE i.indexrelid = k.conindid), false) AS nnd,
       CASE WHEN k.contype = 'x' THEN (SELECT am.amname FROM pg_class ic JOIN pg_am am ON am.oid = ic.relam
                                       WHERE ic.oid = k.conindid) END AS ex_using,
       CASE WHEN k.contype = 'x' THEN (SELECT ]] .. N.INDEX_KEYS_SQL .. [[ FROM pg_index i
                                       WHERE i.indexrelid = k.conindid) END AS ex_keys,
       CASE WHEN k.contype = 'x' THEN (SELECT string_agg(o.oprname, chr(31) ORDER BY x.n)
                                       FROM unnest(k.conexclop) WITH ORDINALITY AS x(op, n)
                                       JOIN pg_operator o ON o.oid = x.op) END AS ex_ops,
       CASE WHEN k.contype = 'x' THEN (SELECT pg_get_expr(i.indpred, i.indrelid, true) FROM pg_index i
                                       WHERE i.indexrelid = k.conindid) END AS ex_where
FROM pg_constraint k JOIN pg_class c ON c.oid = k.conrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
LEFT JOIN pg_class rc ON rc.oid = k.confrelid LEFT JOIN pg_namespace rn ON rn.oid = rc.relnamespace
WHERE k.contype IN ('p', 'u', 'f', 'c', 'x') AND n.nspname = ANY ($1::text[])
ORDER BY 1, 2, 3]], arr)) do
    local T = model.tables[key_of(r.schema, r.tbl)]
    if T then
      local cols = split_list(r.cols)
      if r.type == "p" then
        T.pk = { name = r.name, cols = cols }
      elseif r.type == "u" then
        T.uniques[r.name] = { name = r.name, cols = cols, nulls_not_distinct = r.nnd or nil }
      elseif r.type == "f" then
        T.fks[r.name] = { name = r.name, cols = cols, ref_schema = r.ref_schema, ref_table = r.ref_table,
          ref_cols = split_list(r.ref_cols), ondelete = FK_ACTION[r.ondelete], onupdate = FK_ACTION[r.onupdate],
          deferrable = r.deferrable or nil, initially = r.deferred and "DEFERRED" or nil }
      elseif r.type == "x" then
        local keys, ops, elements = split_list(r.ex_keys), split_list(r.ex_ops), {}
        for i, key in ipairs(keys) do elements[i] = { key, ops[i] } end
        T.excludes[r.name] = { name = r.name, def = r.def, elements = elements, using = r.ex_using,
          where = r.ex_where }
      else
        T.checks[r.name] = { name = r.name, sqltext = (M.check_condition(r.def)) }
      end
    end
  end
  for _, r in ipairs(conn:query([[
SELECT n.nspname AS schema, c.relname AS tbl, ic.relname AS name, i.indisunique AS is_unique,
       am.amname AS method, pg_get_expr(i.indpred, i.indrelid, true) AS where_,
       ]] .. N.INDEX_KEYS_SQL .. [[ AS keys,
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

return M
