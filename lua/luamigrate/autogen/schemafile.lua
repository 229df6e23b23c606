-- `luamigrate inspect`: a live model (autogen/inspect.lua, entities) written as the
-- schema.lua a person would write for it: a local per enum, sa.Table with sa.Column and
-- the sa constructors, keys and checks by name only where the names are not the ones
-- PostgreSQL (and so the declared side) would choose, then md:register(...) for views,
-- functions, triggers and the rest. Declared again, it is the same model: `check` against
-- the database it came from finds nothing.
local N = require "luamigrate.autogen.normalize"
local emit = require "luamigrate.autogen.emit"

local M = {}

local lua = emit.lua
local lit, list, opts, schema_opt = lua.lit, lua.list, lua.opts, lua.schema_opt

local KEYWORDS = {}
for w in ([[and break do else elseif end false for function goto if in local nil not or repeat
  return then true until while md sa]]):gmatch("%S+") do KEYWORDS[w] = true end

local sorted_keys = N.sorted_keys

-- A Lua local's name for each enum: its own name where that is one.
local function enum_locals(model)
  local names, used = {}, {}
  for _, k in ipairs(sorted_keys(model.enums)) do
    local base = model.enums[k].name:gsub("[^%w_]", "_")
    if base:match("^%d") or KEYWORDS[base] then base = "enum_" .. base end
    local name, i = base, 2
    while used[name] do name, i = base .. "_" .. i, i + 1 end
    used[name] = true
    names[k] = name
  end
  return names
end

local function column_type(ct, locals, model, ds, coll)
  if ct:sub(-2) == "[]" then return "sa.ARRAY(" .. column_type(ct:sub(1, -3), locals, model, ds) .. ")" end
  if ct:sub(1, 5) == "enum:" then return locals[ct:sub(6)] end
  -- house style: a type without arguments is written bare (sa.Integer, not sa.Integer())
  return (lua.type(ct, model.enums, ds, coll):gsub("^(sa%.%a+)%(%)$", "%1"))
end

local INTEGER = { integer = true, bigint = true, smallint = true }

-- The text of a schema.lua declaring `model` (default schema `ds`); `header` opens it.
function M.render(model, ds, header)
  local out = { header, "local md = sa.MetaData()", "" }
  local function add(s) out[#out + 1] = s end
  local locals = enum_locals(model)
  local ekeys = sorted_keys(model.enums)
  for _, k in ipairs(ekeys) do
    local e = model.enums[k]
    local vals = {}
    for i, v in ipairs(e.values) do vals[i] = lit(v) end
    local o = opts { { "name", lit(e.name) }, { "schema", schema_opt(e.schema, ds) } }
    add(("local %s = sa.Enum(%s, %s)"):format(locals[k], table.concat(vals, ", "), o))
  end
  if #ekeys > 0 then add("") end

  for _, tk in ipairs(model.order) do
    local T = model.tables[tk]
    local lines = {}
    local pkcols = {}
    for _, c in ipairs(T.pk and T.pk.cols or {}) do pkcols[c] = true end
    -- single-column keys with PostgreSQL's own names go on their column
    local col_unique, col_fk, done = {}, {}, {}
    for n, u in pairs(T.uniques) do
      if #u.cols == 1 and not u.nulls_not_distinct and n == N.choose_name({ naming_convention = {} }, "uq",
        T.name, u.cols) then
        col_unique[u.cols[1]], done[n] = true, true
      end
    end
    for n, fk in pairs(T.fks) do
      if #fk.cols == 1 and n == N.choose_name({ naming_convention = {} }, "fk", T.name, fk.cols) then
        col_fk[fk.cols[1]] = col_fk[fk.cols[1]] or {}
        table.insert(col_fk[fk.cols[1]], fk)
        done[n] = true
      end
    end
    for _, cn in ipairs(T.colorder) do
      local C = T.columns[cn]
      local in_pk = pkcols[cn]
      local args = { (lit(cn)), column_type(C.type, locals, model, ds, C.collation) }
      for _, fk in ipairs(col_fk[cn] or {}) do
        local ref = (fk.ref_schema ~= T.schema and (fk.ref_schema .. ".") or "") .. fk.ref_table .. "."
          .. fk.ref_cols[1]
        local fo = opts { { "ondelete", fk.ondelete and lit(fk.ondelete) or nil },
          { "onupdate", fk.onupdate and lit(fk.onupdate) or nil }, { "deferrable", fk.deferrable and "true" or nil },
          { "initially", fk.initially and lit(fk.initially) or nil } }
        args[#args + 1] = ("sa.ForeignKey(%s%s)"):format(lit(ref), fo and (", " .. fo) or "")
      end
      if C.computed then args[#args + 1] = ("sa.Computed(%s)"):format(lit(C.computed)) end
      if C.identity then
        local ot = opts(N.identity_pairs(C))
        args[#args + 1] = ot and ("sa.Identity " .. ot) or "sa.Identity()"
      end
      local single_pk = in_pk and #T.pk.cols == 1
      local o = opts {
        { "primary_key", in_pk and "true" or nil },
        { "autoincrement", (single_pk and not C.serial and not C.identity and INTEGER[C.type]) and "false" or nil },
        { "nullable", (not C.nullable and not in_pk) and "false" or nil },
        { "unique", col_unique[cn] and "true" or nil },
        { "server_default", C.default and lua.sqltext(C.default) or nil },
        { "comment", C.comment and lit(C.comment) or nil },
      }
      if o then args[#args + 1] = o end
      lines[#lines + 1] = "sa.Column(" .. table.concat(args, ", ") .. ")"
    end
    if T.pk and T.pk.name ~= N.choose_name({ naming_convention = {} }, "pk", T.name, T.pk.cols) then
      local a = {}
      for i, c in ipairs(T.pk.cols) do a[i] = lit(c) end
      lines[#lines + 1] = ("sa.PrimaryKeyConstraint(%s, { name = %s })"):format(table.concat(a, ", "), lit(T.pk.name))
    end
    for _, n in ipairs(sorted_keys(T.uniques)) do
      if not done[n] then
        local u, a = T.uniques[n], {}
        for i, c in ipairs(u.cols) do a[i] = lit(c) end
        lines[#lines + 1] = ("sa.UniqueConstraint(%s, %s)"):format(table.concat(a, ", "), opts {
          { "name", lit(n) }, { "postgresql_nulls_not_distinct", u.nulls_not_distinct and "true" or nil } })
      end
    end
    for _, n in ipairs(sorted_keys(T.fks)) do
      if not done[n] then
        local fk, refs = T.fks[n], {}
        for i, c in ipairs(fk.ref_cols) do
          refs[i] = lit((fk.ref_schema ~= T.schema and (fk.ref_schema .. ".") or "") .. fk.ref_table .. "." .. c)
        end
        lines[#lines + 1] = ("sa.ForeignKeyConstraint(%s, { %s }, %s)"):format(list(fk.cols), table.concat(refs, ", "),
          opts { { "name", lit(n) }, { "ondelete", fk.ondelete and lit(fk.ondelete) or nil },
            { "onupdate", fk.onupdate and lit(fk.onupdate) or nil }, { "deferrable", fk.deferrable and "true" or nil },
            { "initially", fk.initially and lit(fk.initially) or nil } })
      end
    end
    for _, n in ipairs(sorted_keys(T.checks)) do
      lines[#lines + 1] = ("sa.CheckConstraint(%s, { name = %s })"):format(lit(T.checks[n].sqltext), lit(n))
    end
    for _, n in ipairs(sorted_keys(T.excludes or {})) do
      local x, elems = T.excludes[n], {}
      for i, e in ipairs(x.elements) do
        local plain = e[1]:match('^[%l_][%l%d_$]*$') or e[1]:match('^"(.*)"$')
        elems[i] = ("{ %s, %s }"):format(plain and lit((plain:gsub('""', '"'))) or lua.sqltext(e[1]), lit(e[2]))
      end
      elems[#elems + 1] = opts { { "name", lit(n) }, { "using", x.using ~= "gist" and lit(x.using) or nil },
        { "where", x.where and lua.sqltext(x.where) or nil } }
      lines[#lines + 1] = ("sa.ExcludeConstraint(%s)"):format(table.concat(elems, ", "))
    end
    for _, n in ipairs(sorted_keys(T.indexes)) do
      local ix, keys = T.indexes[n], { (lit(n)) }
      for _, k in ipairs(ix.keys) do
        local plain = k:match('^[%l_][%l%d_$]*$') or k:match('^"(.*)"$')
        keys[#keys + 1] = plain and lit((plain:gsub('""', '"'))) or lua.sqltext(k)
      end
      local o = opts { { "unique", ix.unique and "true" or nil },
        { "postgresql_using", ix.using and lit(ix.using) or nil },
        { "postgresql_include", ix.include and list(ix.include) or nil },
        { "postgresql_where", ix.where and lua.sqltext(ix.where) or nil } }
      if o then keys[#keys + 1] = o end
      lines[#lines + 1] = ("sa.Index(%s)"):format(table.concat(keys, ", "))
    end
    local o = opts { { "schema", schema_opt(T.schema, ds) }, { "comment", T.comment and lit(T.comment) or nil },
      { "postgresql_partition_by", T.partition_by and lit(T.partition_by) or nil } }
    if o then lines[#lines + 1] = o end
    add(("sa.Table(%s, md,\n  %s)"):format(lit(T.name), table.concat(lines, ",\n  ")))
    add("")
  end

  -- an enum no column uses (a domain's) is registered, or it would not be declared
  local used, es = {}, {}
  for _, T in pairs(model.tables) do
    for _, C in pairs(T.columns) do
      if C.type:sub(1, 5) == "enum:" then used[(C.type:sub(6):gsub("%[%]$", ""))] = true end
    end
  end
  for _, k in ipairs(ekeys) do
    if not used[k] then es[#es + 1] = locals[k] end
  end
  for _, d in ipairs(model.entity_list or {}) do es[#es + 1] = lua.entity(d.e, ds) end
  if #es > 0 then
    add("md:register(\n  " .. table.concat(es, ",\n  ") .. ")")
    add("")
  end
  add("return md")
  return table.concat(out, "\n") .. "\n"
end

return M
