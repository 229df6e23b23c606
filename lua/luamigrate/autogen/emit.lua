-- Rendering autogenerate's operations as the upgrade() and downgrade() bodies of a new
-- revision written with the op API.
local quote = require "luamigrate.quote"
local N = require "luamigrate.autogen.normalize"
local entity = require "luamigrate.entity"
local enum_users = require("luamigrate.autogen.compare").enum_users

local M = {}

local key_of = N.key_of

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

-- A string type with its collation: sa.String(n, "C"), sa.Text({ collation = "C" }), else
-- the SQL text with COLLATE.
local function collated_lua(ct, coll)
  local n = ct:match("^character varying%((%d+)%)$")
  if n then return ("sa.String(%s, %s)"):format(n, lit(coll)) end
  if ct == "character varying" then return ("sa.String({ collation = %s })"):format(lit(coll)) end
  if ct == "text" then return ("sa.Text({ collation = %s })"):format(lit(coll)) end
  return (lit(ct .. " COLLATE " .. quote.ident(coll)))
end

local function type_lua(ct, enums, default_schema, coll)
  if coll and ct:sub(-2) ~= "[]" and ct:sub(1, 5) ~= "enum:" then return collated_lua(ct, coll) end
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

-- A statement as a Lua string: a long bracket when it spans lines (a view's or a
-- function's definition reads as the server prints it), else a quoted one.
local function stmt_lit(s)
  if not s:find("\n", 1, true) then return (lit(s)) end
  local eq = ""
  while s:find("]" .. eq .. "]", 1, true) or s:sub(-#eq - 1) == "]" .. eq do eq = eq .. "=" end
  return "[" .. eq .. "[\n" .. s .. "]" .. eq .. "]"
end

local function column_lua(C, pkcols, enums, ds)
  local args = { lit(C.name) }
  local in_pk = pkcols[C.name]
  if C.serial then
    args[2] = C.type == "bigint" and "sa.BigInteger()" or C.type == "smallint" and "sa.SmallInteger()" or "sa.Integer()"
    if not in_pk then
      args[2] = lit(C.type == "bigint" and "BIGSERIAL" or C.type == "smallint" and "SMALLSERIAL" or "SERIAL")
    end
  else
    args[2] = type_lua(C.type, enums, ds, C.collation)
  end
  if C.computed then args[#args + 1] = ("sa.Computed(%s)"):format(lit(C.computed)) end
  if C.identity then
    local ot = opts_text(N.identity_pairs(C))
    args[#args + 1] = ot and ("sa.Identity(" .. ot .. ")") or "sa.Identity()"
  end
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

-- op.create_exclude_constraint for an exclusion constraint of the normal form.
local function exclude_lua(x, T, ds)
  local elems = {}
  for i, e in ipairs(x.elements) do
    local key = type(e[1]) == "table" and e[1].text or e[1]
    local plain = key:match('^[%l_][%l%d_$]*$') or key:match('^"(.*)"$')
    elems[i] = ("{ %s, %s }"):format(plain and lit((plain:gsub('""', '"'))) or sqltext_lua(key), lit(e[2]))
  end
  local o = opts_text { { "using", x.using and x.using ~= "gist" and lit(x.using) or nil },
    { "where", x.where and sqltext_lua(x.where) or nil }, { "schema", schema_opt(T.schema, ds) } }
  return ("op.create_exclude_constraint(%s, %s, %s%s)"):format(lit(x.name), lit(T.name), table.concat(elems, ", "),
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
  local sorted_keys = N.sorted_keys
  for _, n in ipairs(sorted_keys(T.uniques)) do
    local a = {}
    for i, c in ipairs(T.uniques[n].cols) do a[i] = lit(c) end
    lines[#lines + 1] = ("sa.UniqueConstraint(%s, { name = %s%s })"):format(table.concat(a, ", "), lit(n),
      T.uniques[n].nulls_not_distinct and ", postgresql_nulls_not_distinct = true" or "")
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
  local o = opts_text { { "schema", schema_opt(T.schema, ds) }, { "comment", T.comment and lit(T.comment) or nil },
    { "postgresql_partition_by", T.partition_by and lit(T.partition_by) or nil } }
  if o then lines[#lines + 1] = o end
  local out = { ("  op.create_table(%s,\n    %s\n  )"):format(lit(T.name), table.concat(lines, ",\n    ")) }
  for _, n in ipairs(sorted_keys(T.indexes)) do out[#out + 1] = "  " .. index_lua(T.indexes[n], T, ds) end
  for _, n in ipairs(sorted_keys(T.excludes or {})) do out[#out + 1] = "  " .. exclude_lua(T.excludes[n], T, ds) end
  return table.concat(out, "\n")
end

local function enum_opts(e, ds, extra)
  local o = extra or {}
  table.insert(o, 1, { "schema", schema_opt(e.schema, ds) })
  return opts_text(o)
end

-- The schema as a trailing options table, or as one more field of one.
local function in_schema(T, ds)
  local s = schema_opt(T.schema, ds)
  return tail(s and ("{ schema = " .. s .. " }"))
end
local function and_schema(T, ds)
  local s = schema_opt(T.schema, ds)
  return s and (", schema = " .. s) or ""
end

-- The op line that creates a constraint or index v of table T (x: "pk", "unique", "fk",
-- "check", "index", "exclude"), and the one that drops it.
local function create_line(x, v, T, ds)
  if x == "pk" then
    return ("  op.create_primary_key(%s, %s, %s%s)"):format(lit(v.name), lit(T.name), lua_list(v.cols),
      in_schema(T, ds))
  elseif x == "unique" then
    return ("  op.create_unique_constraint(%s, %s, %s%s)"):format(lit(v.name), lit(T.name),
      lua_list(v.cols), tail(opts_text { { "schema", schema_opt(T.schema, ds) },
        { "postgresql_nulls_not_distinct", v.nulls_not_distinct and "true" or nil } }))
  elseif x == "fk" then
    local fo = opts_text(fk_opts(v, T, ds))
    return ("  op.create_foreign_key(%s, %s, %s, %s, %s%s)"):format(lit(v.name), lit(T.name), lit(v.ref_table),
      lua_list(v.cols), lua_list(v.ref_cols), tail(fo))
  elseif x == "check" then
    return ("  op.create_check_constraint(%s, %s, %s%s)"):format(lit(v.name), lit(T.name),
      sqltext_lua(v.sqltext), in_schema(T, ds))
  elseif x == "index" then
    return "  " .. index_lua(v, T, ds)
  elseif x == "exclude" then
    return "  " .. exclude_lua(v, T, ds)
  end
end
local function drop_line(x, v, T, ds)
  if x == "index" then
    return ("  op.drop_index(%s, { table_name = %s%s })"):format(lit(v.name), lit(T.name),
      and_schema(T, ds))
  end
  if x == "exclude" then
    return ("  op.drop_constraint(%s, %s%s)"):format(lit(v.name), lit(T.name), in_schema(T, ds))
  end
  local tname = ({ pk = "primary", unique = "unique", fk = "foreignkey", check = "check" })[x]
  return ("  op.drop_constraint(%s, %s, { type_ = %s%s })"):format(lit(v.name), lit(T.name), lit(tname),
    and_schema(T, ds))
end

-- The pieces a rename-swap (of an enum, of a domain) shares, each adding lines through L:
-- the objects in the way dropped, the defaults of the columns converted set aside, those
-- defaults put back (`defaults`: the declared ones by "table.column", else the column's
-- own), the objects created again.
local function user_schema(u, ds) return u.table.schema ~= ds and (", schema = " .. lit(u.table.schema)) or "" end

local function deps_aside(L, deps)
  if #deps > 0 then
    L("-- objects that name the type (or use its columns where a type change cannot follow)")
    L("-- are dropped first and created again afterwards from the definitions they had when")
    L("-- this migration was generated")
  end
  for _, d in ipairs(deps) do
    if d.drop then
      L(("op.execute(%s) -- %s"):format(stmt_lit(d.drop), d.what))
    else
      L(("-- cannot rebuild %s around the swap: drop it before and create it again after, by hand"):format(d.what))
    end
  end
end

local function defaults_aside(L, users, ds)
  for _, u in ipairs(users) do
    if u.column.default then
      L(("op.alter_column(%s, %s, { server_default = false%s })"):format(lit(u.table.name), lit(u.column.name),
        user_schema(u, ds)))
    end
  end
end

local function defaults_back(L, users, defaults, ds)
  for _, u in ipairs(users) do
    local d = defaults and defaults[u.table.name .. "." .. u.column.name]
    if d == nil then d = u.column.default end
    if d then
      L(("op.alter_column(%s, %s, { server_default = %s%s })"):format(lit(u.table.name), lit(u.column.name),
        sqltext_lua(d), user_schema(u, ds)))
    end
  end
end

local function deps_back(L, deps)
  for i = #deps, 1, -1 do
    for _, stmt in ipairs(deps[i].creates) do L(("op.execute(%s)"):format(stmt_lit(stmt))) end
  end
end

-- The rename-swap of an enum whose values lose or reorder members: columns using it lose
-- their defaults, the type is renamed aside, created anew, the columns converted through
-- text, the defaults put back, the old type dropped.
local function swap_enum_lua(e, users, defaults, ds, deps)
  local out = {}
  local qname = e.schema ~= ds and (quote.ident(e.schema) .. ".") or ""
  local function L(s) out[#out + 1] = "  " .. s end
  L(("-- enum %s: PostgreSQL cannot remove or reorder values in place, so the type is"):format(e.name))
  L("-- renamed aside, created anew, and every column using it converted through text")
  deps = deps or {}
  deps_aside(L, deps)
  defaults_aside(L, users, ds)
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
      user_schema(u, ds)))
  end
  defaults_back(L, users, defaults, ds)
  deps_back(L, deps)
  L(("op.drop_enum(%s%s)"):format(lit(e.name .. "_old"),
    e.schema ~= ds and (", { schema = " .. lit(e.schema) .. " }") or ""))
  return table.concat(out, "\n")
end

-- An entity as the sa constructor call that makes it.
local function entity_lua(e, ds)
  local k = e.entity
  local args, o = {}, { { "schema", schema_opt(e.schema, ds) } }
  if k == "RowLevelSecurity" then
    args[1] = lit(e.table)
    o[#o + 1] = { "force", e.force and "true" or nil }
  elseif k == "Extension" then
    args[1] = lit(e.name)
  elseif k == "Sequence" then
    args[1] = lit(e.name)
    for _, name in ipairs { "as", "start", "increment", "minvalue", "maxvalue", "cache", "cycle" } do
      local v = e.options[name]
      o[#o + 1] = { name, v ~= nil and (type(v) == "string" and lit(v) or tostring(v)) or nil }
    end
  elseif k == "Grant" then
    args = { (lit(e.table)), lua_list(e.privileges), (lit(e.role)) }
  elseif k == "Domain" then
    args = { (lit(e.name)), (lit(e.type)) }
    o[#o + 1] = { "collation", e.collation and lit(e.collation) or nil }
    o[#o + 1] = { "default", e.default and lit(e.default) or nil }
    o[#o + 1] = { "not_null", e.not_null and "true" or nil }
    local function check(c)
      local t = c.check
      while t:match("^%b()$") do t = t:sub(2, -2) end
      return (lit(t))
    end
    if #e.checks == 1 then
      o[#o + 1] = { "check", check(e.checks[1]) }
      o[#o + 1] = { "constraint_name", e.checks[1].name ~= e.name .. "_check" and lit(e.checks[1].name) or nil }
    elseif #e.checks > 1 then
      local cs = {}
      for i, c in ipairs(e.checks) do
        cs[i] = ("sa.CheckConstraint(%s, { name = %s })"):format(check(c), lit(c.name))
      end
      o[#o + 1] = { "constraints", "{ " .. table.concat(cs, ", ") .. " }" }
    end
  elseif k == "CompositeType" then
    local attrs = {}
    for i, a in ipairs(e.attributes) do attrs[i] = lua_list { a.name, a.type } end
    args = { (lit(e.name)), "{ " .. table.concat(attrs, ", ") .. " }" }
  elseif k == "RangeType" then
    args = { (lit(e.name)), (lit(e.subtype)) }
    for _, name in ipairs { "subtype_opclass", "collation", "canonical", "subtype_diff", "multirange_type_name" } do
      local v = e.options[name]
      if name == "multirange_type_name" and v == entity.default_multirange(e.name) then v = nil end
      o[#o + 1] = { name, v and lit(v) or nil }
    end
  else
    args[1] = lit(e.name)
    if k == "Trigger" or k == "Policy" or k == "Partition" then args[2] = lit(e.table) end
    args[#args + 1] = stmt_lit(k == "Partition" and e.bound or e.definition)
    if k == "Partition" then o[#o + 1] = { "partition_by", e.partition_by and lit(e.partition_by) or nil } end
    if k == "MaterializedView" then
      o[#o + 1] = { "with_data", not e.with_data and "false" or nil }
      local ix = entity.index_sql(e)
      o[#o + 1] = { "indexes", #ix > 0 and lua_list(ix) or nil }
    end
  end
  local ot = opts_text(o)
  if ot then args[#args + 1] = ot end
  return ("sa.%s(%s)"):format(k, table.concat(args, ", "))
end

-- The rename-swap of a domain or a composite type (in schema `sch`) from `from` to `to`
-- (a domain's new base type or collation, a composite type's attributes reordered or
-- retyped): the new one is created under a scratch name, the columns converted to it (a
-- domain's through the new base type, a composite's attribute by attribute, by name), the
-- old one dropped and the new one renamed (given the old one's `comment`), with defaults
-- and the objects in the way set aside and put back as for an enum.
local function swap_type_lua(to, from, sch, users, defaults, ds, deps, exprs, models, comment)
  local out = {}
  local function L(s) out[#out + 1] = "  " .. s end
  local again = {}
  for _, x in ipairs(exprs) do
    for _, tables in ipairs(models) do
      local T = tables[key_of(x.schema, x.table)]
      local v = T and (x.kind == "check" and T.checks or T.indexes)[x.name]
      if v then
        again[#again + 1] = { x.kind, v, T }
        break
      end
    end
  end
  local scratch = to.name .. "_new"
  local qscratch = (sch ~= ds and (quote.ident(sch) .. ".") or "") .. quote.ident(scratch)
  local domain = to.entity == "Domain"
  if domain then
    L(("-- domain %s: PostgreSQL cannot change a domain's base type or collation in place, so a"):format(to.name))
  else
    L(("-- composite type %s: PostgreSQL cannot reorder or retype the attributes of a type a"):format(to.name))
    L("-- column uses in place, so a")
  end
  L("-- new one is created under a scratch name, every column using it converted, the old one")
  L("-- dropped and the new one renamed")
  local function using(col, arr)
    local c = quote.ident(col)
    if domain then return ("%s::%s%s"):format(c, to.type, arr) end
    local had, fields = {}, {}
    for _, a in ipairs(from.attributes) do had[a.name] = true end
    for i, a in ipairs(to.attributes) do
      fields[i] = had[a.name] and ("(%s).%s::%s"):format(c, quote.ident(a.name), a.type) or ("NULL::" .. a.type)
    end
    -- (a NULL stays NULL, not a row of NULLs)
    return ("CASE WHEN %s::text IS NULL THEN NULL ELSE ROW(%s)::%s END"):format(c, table.concat(fields, ", "),
      qscratch)
  end
  deps_aside(L, deps)
  if #again > 0 then
    L("-- checks and indexes on the columns would keep the old type's casts: created again after")
  end
  for _, a in ipairs(again) do out[#out + 1] = drop_line(a[1], a[2], a[3], ds) end
  defaults_aside(L, users, ds)
  L(("op.create_entity(%s)"):format(entity_lua(setmetatable({ name = scratch, schema = sch }, { __index = to }), ds)))
  for _, u in ipairs(users) do
    local arr = u.column.array and "[]" or ""
    L(("op.alter_column(%s, %s, { type_ = %s, postgresql_using = %s%s })"):format(lit(u.table.name),
      lit(u.column.name), lit(qscratch .. arr), lit(using(u.column.name, arr)),
      user_schema(u, ds)))
  end
  L(("op.drop_entity(%s)"):format(entity_lua(setmetatable({ schema = sch }, { __index = from }), ds)))
  L(("op.execute(%s)"):format(lit(("ALTER %s %s RENAME TO %s"):format(domain and "DOMAIN" or "TYPE", qscratch,
    quote.ident(to.name)))))
  if comment then
    L(("op.execute(%s)"):format(lit(("COMMENT ON %s %s IS %s"):format(domain and "DOMAIN" or "TYPE",
      (sch ~= ds and (quote.ident(sch) .. ".") or "") .. quote.ident(to.name), quote.literal(comment)))))
  end
  defaults_back(L, users, defaults, ds)
  for _, a in ipairs(again) do out[#out + 1] = create_line(a[1], a[2], a[3], ds) end
  deps_back(L, deps)
  return table.concat(out, "\n")
end

-- The pieces inspect's schema.lua writer shares.
M.lua = { lit = lit, list = lua_list, opts = opts_text, schema_opt = schema_opt, type = type_lua,
  sqltext = sqltext_lua, stmt = stmt_lit, entity = entity_lua }

-- op.alter_domain's / op.alter_composite_type's options table.
local function type_alter_lua(o, sch)
  local function pairs_list(list)
    local t = {}
    for i, a in ipairs(list) do t[i] = lua_list(a) end
    return "{ " .. table.concat(t, ", ") .. " }"
  end
  local adds
  if o.add_constraints then
    local names, t = {}, {}
    for n in pairs(o.add_constraints) do names[#names + 1] = n end
    table.sort(names)
    for i, n in ipairs(names) do t[i] = ("[%s] = %s"):format(lit(n), lit(o.add_constraints[n])) end
    adds = "{ " .. table.concat(t, ", ") .. " }"
  end
  return opts_text {
    { "schema", sch },
    { "default", o.default == false and "false" or o.default and lit(o.default) or nil },
    { "not_null", o.not_null ~= nil and tostring(o.not_null) or nil },
    { "drop_constraints", o.drop_constraints and lua_list(o.drop_constraints) or nil },
    { "add_constraints", adds },
    { "drop_attributes", o.drop_attributes and lua_list(o.drop_attributes) or nil },
    { "alter_attributes", o.alter_attributes and pairs_list(o.alter_attributes) or nil },
    { "add_attributes", o.add_attributes and pairs_list(o.add_attributes) or nil },
  } or "{}"
end

-- The statements that give a rebuilt object its grants and owner back, as op.execute lines.
local function grants_lua(grants)
  local out = {}
  for _, g in ipairs(grants or {}) do out[#out + 1] = ("  op.execute(%s)"):format(stmt_lit(g)) end
  return out
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
  -- the declared defaults of a swap's columns (where schema.lua declares the column), by
  -- "table.column"
  local function declared_defaults(users)
    local defaults = {}
    for _, u in ipairs(users) do
      local WT = want.tables[key_of(u.table.schema, u.table.name)]
      local wc = WT and WT.columns[u.column.name]
      if wc and wc.default then defaults[u.table.name .. "." .. u.column.name] = wc.default end
    end
    return defaults
  end
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
        D(swap_enum_lua(o.old, enum_users(live, key_of(o.old.schema, o.old.name)), nil, ds, o.old.dependents))
      end
    elseif o.op == "change_enum" then
      U(swap_enum_lua(o.enum, o.users, declared_defaults(o.users), ds, o.old.dependents))
      D(swap_enum_lua(o.old, o.users, nil, ds, o.old.dependents))
    elseif o.op == "swap_type" then
      U(swap_type_lua(o.entity, o.old, o.schema, o.users, declared_defaults(o.users), ds, o.up_dependents, o.exprs,
        { want.tables, live.tables }, o.comment))
      D(swap_type_lua(o.old, o.entity, o.schema, o.users, nil, ds, o.dependents, o.exprs, { live.tables }, o.comment))
    elseif o.op == "create_entity" then
      U(("  op.create_entity(%s)"):format(entity_lua(o.entity, ds)))
      D(("  op.drop_entity(%s)"):format(entity_lua(o.entity, ds)))
    elseif o.op == "drop_entity" then
      U(("  op.drop_entity(%s)"):format(entity_lua(o.entity, ds)))
      D(("  op.create_entity(%s)"):format(entity_lua(o.entity, ds)))
    elseif o.op == "replace_entity" then
      local new, old = entity_lua(o.entity, ds), entity_lua(o.old, ds)
      -- where CREATE OR REPLACE cannot make the change (a view losing columns, a function
      -- changing its result type), a drop and a create
      -- (with what depends on it dropped before and created again after, as it was when
      -- this migration was generated)
      local function rebuilt(from, to)
        local out = {}
        for _, d in ipairs(o.rebuild or {}) do
          out[#out + 1] = d.drop and ("  op.execute(%s) -- %s"):format(stmt_lit(d.drop), d.what)
            or ("  -- cannot rebuild %s: drop it before and create it again after, by hand"):format(d.what)
        end
        out[#out + 1] = ("  op.drop_entity(%s)\n  op.create_entity(%s)"):format(from, to)
        for _, g in ipairs(grants_lua(o.grants)) do out[#out + 1] = g end
        for i = #(o.rebuild or {}), 1, -1 do
          for _, stmt in ipairs(o.rebuild[i].creates) do out[#out + 1] = ("  op.execute(%s)"):format(stmt_lit(stmt)) end
        end
        return table.concat(out, "\n")
      end
      -- (a materialized view is replaced by a drop and a create: its grants follow it)
      local function replaced(e)
        local out = { ("  op.replace_entity(%s)"):format(e) }
        if not o.needs_drop then
          for _, g in ipairs(grants_lua(o.grants)) do out[#out + 1] = g end
        end
        return table.concat(out, "\n")
      end
      U(o.needs_drop and rebuilt(old, new) or replaced(new))
      D((o.needs_drop or o.down_needs_drop) and rebuilt(new, old) or replaced(old))
    elseif o.op == "alter_domain" or o.op == "alter_composite_type" then
      local e, es = o.entity, schema_opt(o.entity.schema, ds)
      U(("  op.%s(%s, %s)"):format(o.op, lit(e.name), type_alter_lua(o.up, es)))
      D(("%s  op.%s(%s, %s)"):format(o.down_note and ("  -- " .. o.down_note .. "\n") or "", o.op, lit(e.name),
        type_alter_lua(o.down, es)))
    elseif o.op == "type_refused" then
      U("  -- " .. o.text)
    elseif o.op == "create_table" then
      U(create_table_lua(T, enums, ds, true))
      D(("  op.drop_table(%s%s)"):format(lit(T.name), in_schema(T, ds)))
    elseif o.op == "drop_table" then
      U(("  op.drop_table(%s%s)"):format(lit(T.name), in_schema(T, ds)))
      D(create_table_lua(T, enums, ds, false))
    elseif o.op == "add_column" then
      local pk = {}
      U(("  op.add_column(%s, %s%s)"):format(lit(T.name), column_lua(o.column, pk, enums, ds),
        in_schema(T, ds)))
      D(("  op.drop_column(%s, %s%s)"):format(lit(T.name), lit(o.column.name),
        in_schema(T, ds)))
    elseif o.op == "drop_column" then
      U(("  op.drop_column(%s, %s%s)"):format(lit(T.name), lit(o.column.name),
        in_schema(T, ds)))
      D(("  op.add_column(%s, %s%s)"):format(lit(T.name), column_lua(o.column, {}, enums, ds),
        in_schema(T, ds)))
    elseif o.op == "regenerate_column" then
      local drop = ("  op.drop_column(%s, %s%s)"):format(lit(T.name), lit(o.column.name), in_schema(T, ds))
      U(drop)
      U(("  op.add_column(%s, %s%s)"):format(lit(T.name), column_lua(o.column, {}, enums, ds), in_schema(T, ds)))
      D(("  op.add_column(%s, %s%s)"):format(lit(T.name), column_lua(o.live, {}, enums, ds), in_schema(T, ds)))
      D(drop)
    elseif o.op == "alter_column" then
      local c, l, ch = o.column, o.live, o.changes
      local function alter(to, from, dir)
        local using
        if ch.type and to.type:sub(1, 5) == "enum:" then
          local e = enums[to.type:gsub("%[%]$", ""):sub(6)]
          using = lit(("%s::text::%s%s"):format(quote.ident(c.name),
            e.schema ~= ds and (quote.ident(e.schema) .. ".") or "", quote.ident(e.name)))
        elseif ch.type then
          local u = dir == "up" and o.using or dir == "down" and o.down_using
          if u then using = lit(u) end
          if dir == "up" and o.using_unknown then
            U(("  -- PostgreSQL has no cast from %s to %s: write postgresql_using below"):format(from.sqltype
              or from.type, to.type))
          end
        end
        -- a new type is written with the collation the column is to have (else ALTER TYPE
        -- would reset it to the type's default): the declared one, or the one it keeps
        local coll, was = l.collation, c.collation
        if dir == "up" then coll, was = c.collation or l.collation, l.collation end
        local retype = ch.type or ch.collation
        local x = opts_text {
          { "type_", retype and type_lua(to.type, enums, ds, coll) or nil },
          { "postgresql_using", using },
          { "existing_type", (not ch.type) and type_lua(to.type, enums, ds,
            ch.collation and was or nil) or nil },
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
      if ch.type or ch.collation or ch.nullable or ch.default or ch.comment then
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
              lit(c.name), to == "a" and "{ always = true }" or "", and_schema(T, ds))
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
      if ch.identity_options then
        -- ALTER COLUMN ... SET <sequence option>: each that differs, to the other side's
        local function set_options(to, from)
          local a, b = N.identity_options(to.identity_opts, to.type), N.identity_options(from.identity_opts, from.type)
          local words = { start = "START WITH %s", increment = "INCREMENT BY %s", minvalue = "MINVALUE %s",
            maxvalue = "MAXVALUE %s", cache = "CACHE %s" }
          local parts = {}
          for _, key in ipairs(N.IDENTITY_KEYS) do
            if a[key] ~= b[key] then
              parts[#parts + 1] = "SET " .. (key == "cycle" and (a.cycle and "CYCLE" or "NO CYCLE")
                or words[key]:format(a[key]))
            end
          end
          return ("  op.execute(%s)"):format(lit(("ALTER TABLE %s ALTER COLUMN %s %s"):format(
            quote.qualified(T.schema ~= ds and T.schema or nil, T.name), quote.ident(c.name),
            table.concat(parts, " "))))
        end
        U(set_options(c, l))
        D(set_options(l, c))
      end
    elseif o.op == "partitioning" then
      U(("  -- %s: PostgreSQL cannot change a table's partitioning (%s -> %s) in place: create the"):format(
        T.name, o.old or "none", o.new or "none"))
      U("  -- new table, move the rows, swap the names; written by hand")
    elseif o.op == "table_comment" then
      if o.new then
        U(("  op.create_table_comment(%s, %s%s)"):format(lit(T.name), lit(o.new),
          in_schema(T, ds)))
      else
        U(("  op.drop_table_comment(%s%s)"):format(lit(T.name), in_schema(T, ds)))
      end
      if o.old then
        D(("  op.create_table_comment(%s, %s%s)"):format(lit(T.name), lit(o.old),
          in_schema(T, ds)))
      else
        D(("  op.drop_table_comment(%s%s)"):format(lit(T.name), in_schema(T, ds)))
      end
    else
      local kind, x = o.op:match("^(%a+)_(.*)$")
      if kind == "create" then
        U(create_line(x, o.obj, T, ds))
        D(drop_line(x, o.obj, T, ds))
      else
        U(drop_line(x, o.obj, T, ds))
        D(create_line(x, o.obj, T, ds))
      end
    end
  end
  return table.concat(up, "\n") .. "\n", table.concat(down, "\n") .. "\n"
end

return M
