-- SQLAlchemy itself (Debian's python3-sqlalchemy) as the reference for data-migration
-- statements: the literal SQL it compiles for Python statements over
-- t(id, a, b) = sa.table('t', sa.column('id'), sa.column('a', sa.Integer), sa.column('b', sa.String)).
local M = {}

-- Runs the Python program `src` with Debian's python3 (warnings off); its output lines.
function M.python(src)
  local tmp = os.tmpname()
  local f = assert(io.open(tmp, "w"))
  f:write(src)
  f:close()
  local p = assert(io.popen("/usr/bin/python3 -W ignore " .. tmp .. " 2>&1"))
  local out = {}
  for l in p:lines() do out[#out + 1] = l end
  p:close()
  os.remove(tmp)
  return out
end

-- One line of SQL (whitespace collapsed) per Python expression in `lines`.
function M.literal_sql(lines)
  local py = { "import sqlalchemy as sa", "from sqlalchemy.dialects import postgresql",
    "t = sa.table('t', sa.column('id'), sa.column('a', sa.Integer), sa.column('b', sa.String))" }
  for _, l in ipairs(lines) do
    py[#py + 1] = ("print(' '.join(str((%s).compile(dialect=postgresql.dialect(), "
      .. "compile_kwargs={'literal_binds': True})).replace('%%%%', '%%').split()))"):format(l)
  end
  return M.python(table.concat(py, "\n") .. "\n")
end

return M
