-- SQL for the version table and the history table in --sql scripts, where there is no
-- server to quote identifiers: the statements the online run executes (version_table.c's,
-- through core.version_table), filled in with names and literals quoted in Lua.
local quote = require "luamigrate.quote"

local M = {}

-- The script's first statement: the client encoding its literals are quoted for, which
-- psql (or any client) then uses whatever its own setting (quote.script_encoding).
function M.preamble(client_encoding)
  return "SET client_encoding = " .. quote.literal(quote.script_encoding(client_encoding))
end

-- The engine's own statements and table suffixes, as src/version_table.c owns them.
local VT = require("luamigrate.core").version_table

-- "schema.table" or "table" -> quoted version, history and journal table names (a script
-- asks for them at every step: each name is quoted once).
local names_of = {}
function M.names(version_table)
  local n = names_of[version_table]
  if not n then
    local sch, tbl = version_table:match("^([^.]+)%.(.+)$")
    if not sch then tbl = version_table end
    n = { quote.qualified(sch, tbl), quote.qualified(sch, tbl .. VT.suffix.history),
      quote.qualified(sch, tbl .. VT.suffix.journal) }
    names_of[version_table] = n
  end
  return n[1], n[2], n[3]
end

-- A template of VT.sql cut at its placeholders once: its text between them, 0 for the
-- table name's %s, n for $n.
local cut = {}
local function parts_of(template)
  local p = cut[template]
  if p then return p end
  p = {}
  local from = 1
  for at, mark, what, after in template:gmatch("()([%%$])(%w)()") do
    local slot = mark == "%" and what == "s" and 0 or mark == "$" and tonumber(what)
    if slot then
      p[#p + 1] = template:sub(from, at - 1)
      p[#p + 1] = slot
      from = after
    end
  end
  p[#p + 1] = template:sub(from)
  cut[template] = p
  return p
end

-- A statement of VT.sql with the quoted table name for its %s and literals for its $n: the
-- template's own text only is read for placeholders, neither the name nor a value.
local function render(template, name, ...)
  local p, out = parts_of(template), {}
  for i = 1, #p do
    local x = p[i]
    if type(x) == "string" then
      out[i] = x
    elseif x == 0 then
      out[i] = name
    else
      out[i] = quote.literal((select(x, ...)))
    end
  end
  return table.concat(out)
end

-- The journal (src/journal.c) stays empty in a script's database: a script runs autocommit
-- blocks as plain COMMIT/BEGIN and records no statements.
function M.create_tables(version_table)
  local vt, hist, journal = M.names(version_table)
  return { render(VT.sql.create_version, vt), render(VT.sql.create_history, hist),
    render(VT.sql.create_journal, journal) }
end

-- A timeout the online run sets, as the script's statement: "local", SET LOCAL in each
-- migration's transaction (online set_config(name, value, true), the same thing);
-- "session", SET for an autocommit block's statements; "reset", RESET after the block.
function M.timeout(how, name, value)
  if how == "reset" then return "RESET " .. name end
  return (how == "local" and "SET LOCAL " or "SET ") .. name .. " = " .. quote.literal(value)
end

-- kind: "insert" (to), "delete" (from), "update" (from, to)
function M.version_row(version_table, kind, from, to)
  local vt = M.names(version_table)
  if kind == "insert" then return render(VT.sql.insert, vt, to) end
  if kind == "delete" then return render(VT.sql.delete, vt, from) end
  return render(VT.sql.update, vt, to, from)
end

local function array(ids)
  local q = {}
  for i, id in ipairs(ids) do q[i] = quote.literal(id) end
  return "ARRAY[" .. table.concat(q, ", ") .. "]::varchar(32)[]"
end

-- A history row for a step applied by the script. rec: revision, operation, from, to, version;
-- message, file and checksum (the SHA-256 in hex of the bytes that ran, as an online run
-- records it: the changed-file check compares it) when a file ran; timed
-- (one transaction per migration): started_at is the transaction's start, the duration
-- until the row is written. Without it (a stamp, or one transaction for the whole script)
-- the row is written at clock_timestamp() with duration 0.
function M.history_row(version_table, rec)
  local _, hist = M.names(version_table)
  local function text(v) return v and quote.literal(v) or "NULL" end
  return "INSERT INTO " .. hist .. " (revision, operation, from_revisions, to_revisions, message, "
    .. "file, checksum, started_at, duration_ms, luamigrate_version) VALUES ("
    .. quote.literal(rec.revision) .. ", " .. quote.literal(rec.operation) .. ", " .. array(rec.from)
    .. ", " .. array(rec.to) .. ", " .. text(rec.message) .. ", " .. text(rec.file) .. ", "
    .. text(rec.checksum) .. ", "
    .. (rec.timed and "now(), 1000 * extract(epoch FROM clock_timestamp() - now())"
      or "clock_timestamp(), 0")
    .. ", " .. quote.literal(rec.version) .. ")"
end

return M
