-- Comparing the declared model with the live one: the differences, as a list of
-- operations in upgrade order. Text that differs is handed to the server (in a savepoint
-- rolled back at once) to learn whether it means the same thing.
local quote = require "luamigrate.quote"
local dependents = require "luamigrate.dependents"
local entities = require "luamigrate.autogen.entities"
local N = require "luamigrate.autogen.normalize"

local M = {}

local split_list, key_of, norm_sql, same_list = N.split_list, N.key_of, N.norm_sql, N.same_list

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
SELECT pg_get_expr(i.indpred, i.indrelid, true) AS where_, ]] .. N.INDEX_KEYS_SQL .. [[ AS keys
FROM pg_index i WHERE i.indexrelid = 'luamigrate_autogen_ix_i'::regclass]])[1]
    end)
    conn:execute("ROLLBACK TO SAVEPOINT luamigrate_autogen")
    conn:execute("RELEASE SAVEPOINT luamigrate_autogen")
    if not okc then return false end
    return same_list(split_list(res.keys), live.keys) and res.where_ == live.where
  end)
  return ok and same
end

-- Whether a declared column's generation expression (GENERATED ALWAYS AS) differs from
-- the live one's: text that differs is added to an empty copy of the table, read back.
local function generated_differs(conn, T, want, live)
  if (want.computed == nil) ~= (live.computed == nil) then return true end
  if want.computed == nil or want.computed == live.computed then return false end
  local ok, expr = pcall(function()
    conn:execute("SAVEPOINT luamigrate_autogen")
    local okc, res = pcall(function()
      conn:execute(("CREATE TEMPORARY TABLE luamigrate_autogen_gen (LIKE %s)")
        :format(quote.qualified(T.schema, T.name)))
      conn:execute(("ALTER TABLE luamigrate_autogen_gen ADD COLUMN luamigrate_g %s GENERATED ALWAYS AS (%s) STORED")
        :format(live.sqltype, want.computed))
      return conn:query([[
SELECT pg_get_expr(d.adbin, d.adrelid) AS expr FROM pg_attrdef d JOIN pg_attribute a
  ON a.attrelid = d.adrelid AND a.attnum = d.adnum
WHERE d.adrelid = 'luamigrate_autogen_gen'::regclass AND a.attname = 'luamigrate_g']])[1].expr
    end)
    conn:execute("ROLLBACK TO SAVEPOINT luamigrate_autogen")
    conn:execute("RELEASE SAVEPOINT luamigrate_autogen")
    if not okc then error(res, 0) end
    return res
  end)
  return not ok or expr ~= live.computed
end

-- A declared constraint's definition (CHECK (...), EXCLUDE ...) as the server prints it:
-- added to an empty copy of the table, read back, rolled back. nil when it cannot be built.
local function server_constraint_def(conn, T, def)
  local ok, res = pcall(function()
    conn:execute("SAVEPOINT luamigrate_autogen")
    local okc, r = pcall(function()
      conn:execute(("CREATE TEMPORARY TABLE luamigrate_autogen_ck (LIKE %s)"):format(quote.qualified(T.schema, T.name)))
      conn:execute(("ALTER TABLE luamigrate_autogen_ck ADD CONSTRAINT luamigrate_autogen_ck_c %s"):format(def))
      return conn:query([[
SELECT pg_get_constraintdef(k.oid, true) AS def FROM pg_constraint k
WHERE k.conrelid = 'luamigrate_autogen_ck'::regclass AND k.conname = 'luamigrate_autogen_ck_c']])[1].def
    end)
    conn:execute("ROLLBACK TO SAVEPOINT luamigrate_autogen")
    conn:execute("RELEASE SAVEPOINT luamigrate_autogen")
    return okc and r or nil
  end)
  return ok and res or nil
end

-- Server-side comparison of a declared check condition with a live one whose text differs.
local function server_check_equal(conn, T, want, live)
  local res = server_constraint_def(conn, T, ("CHECK (%s)"):format(want.sqltext))
  return res ~= nil and (res:match("^CHECK %((.*)%)$") or res) == live.sqltext
end

-- The USING a column type change needs, inferred: none when PostgreSQL casts the old type
-- to the new one in an assignment (varchar(50) -> text, integer -> bigint), else an
-- explicit cast of the column (text -> integer), which is what the server would ask for;
-- nil, false when it has no cast at all (the reviewer writes the expression).
local function infer_using(conn, column, old_type, new_type)
  local r = conn:query([[
SELECT (SELECT c.castcontext FROM pg_cast c WHERE c.castsource = $1::regtype AND c.casttarget = $2::regtype)
         AS context,
       $1::regtype = $2::regtype AS same_base,
       (SELECT t.typcategory FROM pg_type t WHERE t.oid = $1::regtype) AS from_cat,
       (SELECT t.typcategory FROM pg_type t WHERE t.oid = $2::regtype) AS to_cat]], old_type, new_type)[1]
  if r.same_base or r.context == "a" or r.context == "i" then return nil end
  -- an explicit cast, or the I/O conversion every type has to and from text
  if r.context == "e" or r.from_cat == "S" or r.to_cat == "S" then
    return ("%s::%s"):format(quote.ident(column), new_type)
  end
  return nil, false
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

-- Columns of the live database that use an enum or an array of it: {table record, column record}.
local function enum_users(live, ekey)
  local users = {}
  for _, k in ipairs(live.order) do
    local T = live.tables[k]
    for _, cn in ipairs(T.colorder) do
      local C = T.columns[cn]
      if C.type == "enum:" .. ekey or C.type == "enum:" .. ekey .. "[]" then
        users[#users + 1] = { table = T, column = C }
      end
    end
  end
  return users
end

-- The differences, as a list of operations in upgrade order. Each is a table with `op`
-- (what), the objects, and `text` (one line for check and the summary).
-- Upgrade order: extensions and sequences created (columns use them); enum changes;
-- domains, composite and range types created and altered (columns use them, a domain may
-- be over an enum); entities (views, functions, triggers) dropped; foreign keys,
-- then other constraints and indexes, dropped; columns added and altered; constraints and
-- indexes (not foreign keys) created; new tables; foreign keys created (they may point at
-- new tables); entities created and replaced; columns dropped; tables dropped; types
-- dropped; enums dropped; sequences and extensions dropped.
local BUCKETS = { "create_early", "enum", "create_type", "drop_entity", "drop_fk", "drop_other", "add_column",
  "alter", "create_other", "create_table", "create_fk", "create_entity", "drop_column", "drop_table", "drop_type",
  "drop_enum", "drop_late" }

function M.compare(conn, want, live, filter)
  local ops = {}
  local buckets = {}
  for _, b in ipairs(BUCKETS) do buckets[b] = {} end
  local function put(bucket, o) table.insert(buckets[bucket], o) end
  local function add(o) ops[#ops + 1] = o end
  local function wanted(kind, name, parent) return filter(kind, name, parent) end

  -- The objects a swap of live enum `l` (either way) drops and recreates, read now: the
  -- migration carries their statements, so --sql shows them and review sees them.
  local function rebuilt(l)
    l.dependents = l.dependents or dependents.list(conn, quote.qualified(l.schema, l.name))
  end

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
        rebuilt(l)
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
        if l and wanted("column", cn, W.name) and generated_differs(conn, L, c, l) then
          -- a generation expression cannot be altered (before PostgreSQL 17): the
          -- column is dropped and added again
          put("alter", { op = "regenerate_column", table = W, column = c, live = l,
            text = ("changed generation expression of column %s.%s"):format(tk, cn) })
        elseif l and wanted("column", cn, W.name) then
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
          if c.identity and l.identity then
            local a, b = N.identity_options(c.identity_opts, c.type), N.identity_options(l.identity_opts, l.type)
            for _, key in ipairs(N.IDENTITY_KEYS) do
              if a[key] ~= b[key] then ch.identity_options = true end
            end
          end
          if c.comment ~= l.comment then ch.comment = true end
          -- only a declared collation is compared ("default" declares the database's own)
          if c.collation and (c.collation ~= "default" and c.collation or nil) ~= l.collation then
            ch.collation = true
          end
          if next(ch) then
            local what = {}
            for _, w in ipairs { "type", "collation", "nullable", "default", "identity", "identity_options",
              "comment" } do
              if ch[w] then what[#what + 1] = (w:gsub("_", " ")) end
            end
            local using, down_using, known = nil, nil, true
            if ch.type and c.type:sub(1, 5) ~= "enum:" and l.type:sub(1, 5) ~= "enum:" and not c.serial then
              local ok, u, found = pcall(infer_using, conn, cn, l.sqltype, c.type)
              if ok then using, known = u, found ~= false end
              ok, u = pcall(infer_using, conn, cn, c.type, l.sqltype)
              if ok then down_using = u end
            end
            put("alter", { op = "alter_column", table = W, column = c, live = l, changes = ch,
              using = using, down_using = down_using, using_unknown = not known,
              text = ("changed %s of column %s.%s"):format(table.concat(what, ", "), tk, cn) })
          end
        end
      end
      if N.norm_sql(W.partition_by) ~= N.norm_sql(L.partition_by) then
        -- a table's partitioning cannot be altered: say so, and let the reviewer move the rows
        put("alter", { op = "partitioning", table = W, old = L.partition_by, new = W.partition_by,
          text = ("changed partitioning of table %s: %s -> %s (rebuild it by hand)"):format(tk,
            L.partition_by or "none", W.partition_by or "none") })
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
      diff("unique", W.uniques, L.uniques, function(a, b)
        return same_list(a.cols, b.cols) and (a.nulls_not_distinct or false) == (b.nulls_not_distinct or false)
      end, "unique constraint")
      diff("fk", W.fks, L.fks, same_fk, "foreign key")
      diff("check", W.checks, L.checks, function(a, b)
        return norm_sql(a.sqltext) == norm_sql(b.sqltext) or server_check_equal(conn, L, a, b)
      end, "check constraint")
      diff("exclude", W.excludes or {}, L.excludes or {}, function(a, b)
        return norm_sql(a.def) == norm_sql(b.def) or server_constraint_def(conn, L, a.def) == b.def
      end, "exclusion constraint")
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

  entities.compare(conn, want.entities or {}, live.entities or {}, wanted, put)

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

M.enum_users = enum_users

return M
