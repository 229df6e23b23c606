-- The declared side of autogenerate: a sa.MetaData of sa.Table read into the normal form
-- (tables -> columns, keys, constraints, indexes, comment; enums -> values).
local quote = require "luamigrate.quote"
local schema = require "luamigrate.schema"
local render = require "luamigrate.render"
local N = require "luamigrate.autogen.normalize"
local entities = require "luamigrate.autogen.entities"

local M = {}

local SEP, key_of, canon_type, choose_name = N.SEP, N.key_of, N.canon_type, N.choose_name

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
  local model = { tables = {}, order = {}, enums = {}, entities = entities.declared(md, default_schema) }
  local function add_enum(e)
    local k = key_of(e.schema, e.name)
    local prev = model.enums[k]
    if prev and table.concat(prev.values, SEP) ~= table.concat(e.values, SEP) then
      error(("enum %s is declared with two different lists of values"):format(k), 0)
    end
    model.enums[k] = model.enums[k] or { schema = e.schema, name = e.name, values = e.values }
  end
  for _, t in ipairs(md.enums or {}) do
    local _, enum = canon_type(t, default_schema)
    add_enum(enum)
  end
  for _, t in ipairs(md.sorted) do
    local sch = t.schema or default_schema
    local T = { schema = sch, name = t.name, comment = t.comment, partition_by = t.partition_by,
      columns = {}, colorder = {},
      uniques = {}, fks = {}, checks = {}, indexes = {}, excludes = {} }
    local pkcols = {}
    for _, c in ipairs(t.columns) do
      if c.primary_key then pkcols[#pkcols + 1] = c.name end
    end
    for _, c in ipairs(t.columns) do
      local ct, enum = canon_type(c.type, default_schema)
      if enum then add_enum(enum) end
      local C = { name = c.name, type = ct, enum = enum, nullable = c.nullable, collation = N.collation_of(c.type),
        default = default_text(c.server_default), comment = c.comment,
        computed = c.computed and render.sqltext(c.computed.sqltext) or nil,
        -- SERIAL as op.create_table writes it (schema.autoincrement_column, set by sa.Table)
        serial = c == t.autoincrement_column and not c.identity and c.default == nil,
        identity = c.identity and (c.identity.always and "a" or "d") or nil,
        identity_opts = c.identity and { start = c.identity.start, increment = c.identity.increment,
          minvalue = c.identity.minvalue, maxvalue = c.identity.maxvalue, cache = c.identity.cache,
          cycle = c.identity.cycle } or nil,
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
        T.uniques[n] = { name = n, cols = k.columns, nulls_not_distinct = k.nulls_not_distinct and true or nil }
      elseif schema.is(k, "ForeignKeyConstraint") then
        local n = choose_name(md, "fk", t.name, k.columns, k.ref_table, k.name)
        T.fks[n] = { name = n, cols = k.columns, ref_schema = k.ref_schema or sch, ref_table = k.ref_table,
          ref_cols = k.ref_columns, ondelete = k.ondelete, onupdate = k.onupdate,
          deferrable = k.deferrable, initially = k.initially }
      elseif schema.is(k, "ExcludeConstraint") then
        -- unnamed: PostgreSQL's name, <table>_<columns>_excl
        local cols = {}
        for i, e in ipairs(k.elements) do cols[i] = type(e[1]) == "string" and e[1] or "expr" end
        local n = k.name or N.truncate(t.name .. "_" .. table.concat(cols, "_") .. "_excl")
        T.excludes[n] = { name = n, def = render.exclude_def(k.elements, k), elements = k.elements,
          using = k.using or "gist", where = k.where and render.sqltext(k.where) or nil }
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

return M
