-- The objects that stand in the way of an enum's rename-swap, and how to rebuild them.
--
-- Converting a column from the renamed-aside enum to the new one (ALTER COLUMN ... TYPE
-- ... USING col::text::enum) re-parses everything stored with the column's old type: an
-- index predicate or expression, a check constraint, a view, a generated column, a domain,
-- a function signature that names the type (or its array type) then fails with "operator
-- does not exist: t = t_old" or "cannot alter type of a column used by a view". So, before
-- the swap, every such object is found in pg_depend (with whatever depends on it in turn:
-- a view on the view, an index on a generated column, a trigger on the function), dropped
-- deepest first, and created again after the swap, shallowest first, from the definition
-- the server itself prints (pg_get_indexdef, pg_get_constraintdef, pg_get_viewdef,
-- pg_get_functiondef, pg_get_triggerdef, ...).
--
-- One query does the finding; autogenerate runs it when it writes a migration (the
-- statements go into the file, so --sql shows them), and helpers/enum.lua runs it inside
-- the migration's transaction (a DO block, so it works offline too).
local quote = require "luamigrate.quote"

local M = {}

-- Columns the swap converts itself (of the type or its array, in tables) are not rebuilt,
-- nor their defaults (the swap sets those aside). Each row: what (the object's kind and
-- name), depth (1 = names the type or uses a converted column; n + 1 = depends on one of
-- depth n), drop_sql (NULL when the object is of a kind this cannot rebuild) and creates
-- (text[]: the definition, then its comment). ":type" is replaced by the type, a literal,
-- or NULL; ":object" by a query for one (classid, objid) whose dependents are wanted in
-- the same way (a view dropped and created again: the views on it), or by none.
local QUERY = [[
WITH RECURSIVE
target AS (
  SELECT t.oid FROM pg_type t WHERE t.oid = :type::regtype
  UNION ALL SELECT t.typarray FROM pg_type t WHERE t.oid = :type::regtype AND t.typarray <> 0
),
seed(cls, oid) AS (:object),
converted AS (
  SELECT a.attrelid, a.attnum FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
  WHERE c.relkind IN ('r', 'p') AND a.attnum > 0 AND NOT a.attisdropped
    AND a.atttypid IN (SELECT oid FROM target)
),
edge AS ( -- pg_depend, each dependent as it is rebuilt: a view's rule or column is the view,
          -- a generated column's expression is the column, a domain's check is the domain
  SELECT d.refclassid, d.refobjid, d.refobjsubid, d.deptype, d.classid AS rawclass,
         ad.adrelid, ad.adnum, ga.attgenerated = 's' AS adgen, k.contypid,
         CASE WHEN d.classid = 'pg_rewrite'::regclass OR (d.classid = 'pg_attrdef'::regclass
                AND ga.attgenerated = 's') THEN 'pg_class'::regclass::oid
              WHEN k.contypid <> 0 THEN 'pg_type'::regclass::oid ELSE d.classid END AS cls,
         CASE WHEN d.classid = 'pg_rewrite'::regclass THEN rw.ev_class
              WHEN d.classid = 'pg_attrdef'::regclass AND ga.attgenerated = 's' THEN ad.adrelid
              WHEN k.contypid <> 0 THEN k.contypid
              ELSE d.objid END AS oid,
         CASE WHEN d.classid = 'pg_rewrite'::regclass OR k.contypid <> 0 THEN 0
              WHEN d.classid = 'pg_attrdef'::regclass AND ga.attgenerated = 's' THEN ad.adnum
              WHEN d.classid = 'pg_class'::regclass AND rc.relkind IN ('v', 'm', 'i') THEN 0
              ELSE d.objsubid END AS sub,
         d.classid = 'pg_class'::regclass AND rc.relkind IN ('r', 'p') AND d.objsubid > 0 AS tablecol
  FROM pg_depend d
  LEFT JOIN pg_rewrite rw ON d.classid = 'pg_rewrite'::regclass AND rw.oid = d.objid
  LEFT JOIN pg_attrdef ad ON d.classid = 'pg_attrdef'::regclass AND ad.oid = d.objid
  LEFT JOIN pg_attribute ga ON ga.attrelid = ad.adrelid AND ga.attnum = ad.adnum
  LEFT JOIN pg_class rc ON d.classid = 'pg_class'::regclass AND rc.oid = d.objid
  LEFT JOIN pg_constraint k ON d.classid = 'pg_constraint'::regclass AND k.oid = d.objid
  WHERE d.deptype IN ('n', 'a')
),
dep(cls, oid, sub, depth) AS (
  SELECT e.cls, e.oid, e.sub, 1 FROM edge e
  WHERE e.refclassid = 'pg_type'::regclass AND e.refobjid IN (SELECT oid FROM target) AND e.deptype = 'n'
    AND NOT e.tablecol
    AND NOT (e.rawclass = 'pg_attrdef'::regclass AND NOT e.adgen
             AND (e.adrelid, e.adnum) IN (SELECT attrelid, attnum FROM converted))
  UNION
  SELECT e.cls, e.oid, e.sub, 1 FROM edge e
  WHERE e.refclassid = 'pg_class'::regclass
    AND (e.refobjid, e.refobjsubid) IN (SELECT attrelid, attnum FROM converted)
    AND (e.rawclass IN ('pg_rewrite'::regclass, 'pg_policy'::regclass, 'pg_trigger'::regclass) OR e.adgen)
  UNION
  SELECT e.cls, e.oid, e.sub, 1 FROM edge e JOIN seed s ON e.refclassid = s.cls AND e.refobjid = s.oid
  WHERE (e.cls, e.oid) <> (s.cls, s.oid)
  UNION
  SELECT e.cls, e.oid, e.sub, p.depth + 1 FROM dep p
  JOIN edge e ON e.refclassid = p.cls AND e.refobjid = p.oid AND (p.sub = 0 OR e.refobjsubid = p.sub)
  WHERE p.depth < 32 AND (e.cls, e.oid, e.sub) <> (p.cls, p.oid, p.sub)
),
obj AS (
  SELECT d.cls, d.oid, d.sub, max(d.depth) AS depth, (pg_identify_object(d.cls, d.oid, d.sub)).*
  FROM dep d GROUP BY d.cls, d.oid, d.sub
),
rebuilt AS (
  SELECT o.depth, CASE WHEN dt.typtype = 'd' THEN 'domain' ELSE o.type END || ' ' || o.identity AS what,
    CASE
      WHEN o.type = 'index' AND NOT EXISTS (SELECT 1 FROM pg_constraint x WHERE x.conindid = o.oid)
        THEN ARRAY['DROP INDEX ' || o.identity, pg_get_indexdef(o.oid)]
      WHEN o.type IN ('view', 'materialized view') THEN ARRAY['DROP ' || upper(o.type) || ' ' || o.identity,
        format('CREATE %s %s%s AS %s%s', upper(o.type), o.identity,
          CASE WHEN c.reloptions IS NULL THEN '' ELSE ' WITH (' || array_to_string(c.reloptions, ', ') || ')' END,
          rtrim(pg_get_viewdef(o.oid), ';'),
          CASE WHEN o.type = 'view' THEN '' WHEN c.relispopulated THEN ' WITH DATA' ELSE ' WITH NO DATA' END)]
      WHEN o.type = 'table column' AND a.attgenerated = 's' THEN ARRAY[
        format('ALTER TABLE %s DROP COLUMN %I', tbl.name, a.attname),
        format('ALTER TABLE %s ADD COLUMN %I %s GENERATED ALWAYS AS (%s) STORED%s', tbl.name, a.attname,
          format_type(a.atttypid, a.atttypmod), pg_get_expr(ad.adbin, ad.adrelid),
          CASE WHEN a.attnotnull THEN ' NOT NULL' ELSE '' END)]
      WHEN o.type = 'table column' AND ty.typtype = 'd' THEN ARRAY[
        format('ALTER TABLE %s ALTER COLUMN %I TYPE text', tbl.name, a.attname),
        format('ALTER TABLE %s ALTER COLUMN %I TYPE %s USING %I::%3$s', tbl.name, a.attname,
          format_type(a.atttypid, a.atttypmod), a.attname)]
      WHEN o.type = 'table constraint' THEN ARRAY[
        format('ALTER TABLE %s DROP CONSTRAINT %I', tbl.name, k.conname),
        format('ALTER TABLE %s ADD CONSTRAINT %I %s', tbl.name, k.conname, pg_get_constraintdef(k.oid))]
      WHEN o.type = 'default value' THEN ARRAY[
        format('ALTER TABLE %s ALTER COLUMN %I DROP DEFAULT', tbl.name, da.attname),
        format('ALTER TABLE %s ALTER COLUMN %I SET DEFAULT %s', tbl.name, da.attname,
          pg_get_expr(ad.adbin, ad.adrelid))]
      WHEN dt.typtype = 'd' THEN ARRAY['DROP DOMAIN ' || o.identity,
        format('CREATE DOMAIN %s AS %s%s%s%s', o.identity, format_type(dt.typbasetype, dt.typtypmod),
          CASE WHEN dt.typdefault IS NULL THEN '' ELSE ' DEFAULT ' || dt.typdefault END,
          CASE WHEN dt.typnotnull THEN ' NOT NULL' ELSE '' END,
          (SELECT coalesce(string_agg(format(' CONSTRAINT %I %s', x.conname, pg_get_constraintdef(x.oid)),
             '' ORDER BY x.conname), '') FROM pg_constraint x WHERE x.contypid = o.oid AND x.contype = 'c'))]
      WHEN o.type IN ('function', 'procedure') THEN ARRAY['DROP ' || upper(o.type) || ' ' || o.identity,
        rtrim(pg_get_functiondef(o.oid), E'\n')]
      WHEN o.type = 'trigger' THEN ARRAY['DROP TRIGGER ' || o.identity, pg_get_triggerdef(o.oid)]
      WHEN o.type = 'policy' THEN ARRAY['DROP POLICY ' || o.identity,
        format('CREATE POLICY %I ON %s ', pol.polname, tbl.name) || :policy_body]
    END AS stmts,
    (SELECT format('COMMENT ON %s %s IS %L',
              upper(CASE WHEN dt.typtype = 'd' THEN 'domain' ELSE replace(o.type, 'table ', '') END),
              o.identity, ds.description)
       FROM pg_description ds WHERE ds.classoid = o.cls AND ds.objoid = o.oid AND ds.objsubid = o.sub
         AND o.type <> 'table column') AS comment,
    :grants AS grants
  FROM obj o
  LEFT JOIN pg_class c ON o.cls = 'pg_class'::regclass AND c.oid = o.oid
  LEFT JOIN pg_attribute a ON o.cls = 'pg_class'::regclass AND o.sub > 0 AND a.attrelid = o.oid AND a.attnum = o.sub
  LEFT JOIN pg_type ty ON ty.oid = a.atttypid
  LEFT JOIN pg_constraint k ON o.cls = 'pg_constraint'::regclass AND k.oid = o.oid
  LEFT JOIN pg_attrdef ad ON (o.cls = 'pg_attrdef'::regclass AND ad.oid = o.oid)
                          OR (a.attgenerated = 's' AND ad.adrelid = a.attrelid AND ad.adnum = a.attnum)
  LEFT JOIN pg_attribute da ON o.cls = 'pg_attrdef'::regclass AND da.attrelid = ad.adrelid AND da.attnum = ad.adnum
  LEFT JOIN pg_type dt ON o.cls = 'pg_type'::regclass AND dt.oid = o.oid
  LEFT JOIN pg_policy pol ON o.cls = 'pg_policy'::regclass AND pol.oid = o.oid
  LEFT JOIN LATERAL (SELECT format('%I.%I', n.nspname, r.relname) AS name FROM pg_class r
    JOIN pg_namespace n ON n.oid = r.relnamespace
    WHERE r.oid = coalesce(a.attrelid, k.conrelid, ad.adrelid, pol.polrelid)) tbl ON true
  WHERE (o.type <> 'index' OR NOT EXISTS (SELECT 1 FROM pg_constraint x WHERE x.conindid = o.oid))
    -- what belongs to another object (a range type's constructors) goes and comes with it
    AND NOT EXISTS (SELECT 1 FROM pg_depend i WHERE i.classid = o.cls AND i.objid = o.oid AND i.objsubid = 0
                    AND o.sub = 0 AND i.deptype = 'i')
)
SELECT depth, what, stmts[1] AS drop_sql, stmts[2:2] || CASE WHEN comment IS NULL THEN '{}'::text[]
       ELSE ARRAY[comment] END || grants AS creates
FROM rebuilt]]

-- A policy's definition after "CREATE POLICY name ON table" (pol: its pg_policy row), as
-- SQL: also what autogenerate compares policies by.
M.POLICY_BODY = [[format('AS %s FOR %s TO %s%s%s',
          CASE WHEN pol.polpermissive THEN 'PERMISSIVE' ELSE 'RESTRICTIVE' END,
          CASE pol.polcmd WHEN 'r' THEN 'SELECT' WHEN 'a' THEN 'INSERT' WHEN 'w' THEN 'UPDATE'
            WHEN 'd' THEN 'DELETE' ELSE 'ALL' END,
          (SELECT string_agg(CASE WHEN r = 0 THEN 'PUBLIC' ELSE quote_ident(pg_get_userbyid(r)) END, ', ')
             FROM unnest(pol.polroles) r),
          ' USING (' || pg_get_expr(pol.polqual, pol.polrelid) || ')',
          ' WITH CHECK (' || pg_get_expr(pol.polwithcheck, pol.polrelid) || ')')]]

-- The statements that give a view, materialized view, function or procedure (:cls, :oid, its
-- kind :type and name :ident as pg_identify_object prints them) its owner, when that is not
-- the role generating the migration, and its grants back once it is dropped and created
-- again (text[]; empty for other objects). A routine whose ACL lacks PUBLIC had PUBLIC's
-- EXECUTE revoked, which a new routine has again.
local GRANTS = [[ARRAY(
  SELECT g.stmt
  FROM (SELECT c.relowner AS owner, c.relacl AS acl, 'TABLE' AS on_kw, false AS routine FROM pg_class c
        WHERE :cls = 'pg_class'::regclass AND c.oid = :oid AND :type IN ('view', 'materialized view')
        UNION ALL
        SELECT p.proowner, p.proacl, upper(:type), true FROM pg_proc p
        WHERE :cls = 'pg_proc'::regclass AND p.oid = :oid AND :type IN ('function', 'procedure')) x
  CROSS JOIN LATERAL (
    SELECT 0 AS ord, format('ALTER %s %s OWNER TO %I', upper(:type), :ident, pg_get_userbyid(x.owner)) AS stmt
    WHERE x.owner <> (SELECT r.oid FROM pg_roles r WHERE r.rolname = current_user)
    UNION ALL
    SELECT 1, format('REVOKE ALL ON %s %s FROM PUBLIC', x.on_kw, :ident)
    WHERE x.routine AND x.acl IS NOT NULL AND NOT EXISTS (SELECT 1 FROM aclexplode(x.acl) p WHERE p.grantee = 0)
    UNION ALL
    SELECT 2, format('GRANT %s ON %s %s TO %s%s', string_agg(a.privilege_type, ', ' ORDER BY a.privilege_type),
      x.on_kw, :ident, CASE WHEN a.grantee = 0 THEN 'PUBLIC' ELSE quote_ident(pg_get_userbyid(a.grantee)) END,
      CASE WHEN a.is_grantable THEN ' WITH GRANT OPTION' ELSE '' END)
    FROM aclexplode(x.acl) a WHERE a.grantee <> x.owner AND NOT (x.routine AND a.grantee = 0)
    GROUP BY a.grantee, a.is_grantable) g
  ORDER BY g.ord, g.stmt)]]

local function grants_sql(cls, oid, kind, ident)
  return (GRANTS:gsub(":(%a+)", { cls = cls, oid = oid, type = kind, ident = ident }))
end

local NO_OBJECT = "SELECT NULL::oid, NULL::oid WHERE false"

-- The query for `type_name` (a name as SQL would write it, e.g. `public.post_status`), or
-- for the object (catalog, oid) given instead.
function M.query(type_name, catalog, oid)
  local lit = type_name and quote.literal(type_name) or "NULL"
  local object = catalog and ("SELECT %s::regclass::oid, %d::oid"):format(quote.literal(catalog), oid)
    or NO_OBJECT
  return (QUERY:gsub(":type", function() return lit end):gsub(":object", function() return object end)
    :gsub(":policy_body", function() return M.POLICY_BODY end)
    :gsub(":grants", function() return grants_sql("o.cls", "o.oid", "o.type", "o.identity") end))
end

-- The owner and grant statements (above) of one object, read before it is dropped and
-- created again: { stmt, ... }.
function M.grants(conn, catalog, oid)
  local q = ("SELECT array_to_string(%s, chr(31)) AS g FROM pg_identify_object(%s::regclass, %d, 0) i")
    :format(grants_sql(quote.literal(catalog) .. "::regclass", tostring(math.tointeger(oid) or oid), "i.type",
      "i.identity"), quote.literal(catalog), math.tointeger(oid) or oid)
  local out = {}
  for g in ((conn:query(q)[1].g or "") .. "\31"):gmatch("(.-)\31") do
    if g ~= "" then out[#out + 1] = g end
  end
  return out
end

local function list(conn, query)
  local rows = conn:query(("SELECT what, drop_sql, array_to_string(creates, chr(31)) AS creates FROM (%s) q "
    .. "ORDER BY depth DESC, what"):format(query))
  local out = {}
  for i, r in ipairs(rows) do
    local creates = {}
    for s in ((r.creates or "") .. "\31"):gmatch("(.-)\31") do
      if s ~= "" then creates[#creates + 1] = s end
    end
    out[i] = { what = r.what, drop = r.drop_sql, creates = creates }
  end
  return out
end

-- The objects to rebuild around a swap of `type_name`, in the order they are dropped
-- (deepest first): { what =, drop =, creates = { stmt, ... } }; drop is nil for an object
-- this cannot rebuild. Recreate them in the reverse order.
function M.list(conn, type_name) return list(conn, M.query(type_name)) end

-- The same for what depends on one object (catalog name, oid): a view on a view.
function M.list_of_object(conn, catalog, oid) return list(conn, M.query(nil, catalog, oid)) end

-- Two DO blocks for a swap run inside the migration (helpers/enum.lua): the first, before
-- the rename, keeps the objects' definitions in a temporary table, reports each with a
-- NOTICE and drops it (or raises, naming an object it cannot rebuild); the second, after
-- the swap, creates them again. The table goes with the transaction. (The variables have
-- names the query's own aliases cannot take.)
function M.set_aside_sql(type_name)
  return "DO $luamigrate$\nDECLARE rebuild_row record;\nBEGIN\n"
    .. "  CREATE TEMPORARY TABLE luamigrate_enum_rebuild ON COMMIT DROP AS\n" .. M.query(type_name) .. ";\n"
    .. "  FOR rebuild_row IN SELECT * FROM luamigrate_enum_rebuild ORDER BY depth DESC, what LOOP\n"
    .. "    IF rebuild_row.drop_sql IS NULL THEN\n"
    .. "      RAISE EXCEPTION 'enum %: cannot rebuild % around the swap', " .. quote.literal(type_name)
    .. ", rebuild_row.what\n"
    .. "        USING HINT = 'drop it before the enum change and create it again after';\n"
    .. "    END IF;\n"
    .. "    RAISE NOTICE 'enum %: rebuilding %', " .. quote.literal(type_name) .. ", rebuild_row.what;\n"
    .. "    EXECUTE rebuild_row.drop_sql;\n"
    .. "  END LOOP;\nEND $luamigrate$"
end

function M.put_back_sql()
  return "DO $luamigrate$\nDECLARE rebuild_row record; rebuild_stmt text;\nBEGIN\n"
    .. "  FOR rebuild_row IN SELECT * FROM luamigrate_enum_rebuild ORDER BY depth, what DESC LOOP\n"
    .. "    FOREACH rebuild_stmt IN ARRAY rebuild_row.creates LOOP EXECUTE rebuild_stmt; END LOOP;\n"
    .. "  END LOOP;\n  DROP TABLE luamigrate_enum_rebuild;\nEND $luamigrate$"
end

return M
