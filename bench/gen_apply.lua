-- Writes a luamigrate project of N revisions in one chain, for the apply benchmark.
--   lua5.4 bench/gen_apply.lua DIR N
-- Each revision creates one table the way a real project's first years look: an identity
-- key, four to six typed columns (some NOT NULL with server defaults), a foreign key to an
-- earlier table every third revision, and an index on every other one.
local dir, n = arg[1], tonumber(arg[2])
assert(dir and n, "usage: lua5.4 bench/gen_apply.lua DIR N")
assert(os.execute("mkdir -p '" .. dir .. "/migrations/versions'"))
local cfg = assert(io.open(dir .. "/luamigrate.lua", "w"))
cfg:write('script_location = "migrations"\n')
cfg:close()

local extra = {
  'sa.Column("email", sa.String(255), { nullable = false })',
  'sa.Column("note", sa.Text)',
  'sa.Column("amount", sa.Numeric(12, 2), { server_default = "0", nullable = false })',
  'sa.Column("active", sa.Boolean, { server_default = sa.text("true"), nullable = false })',
  'sa.Column("payload", sa.JSONB)',
  'sa.Column("born", sa.Date)',
}

local prev
for i = 1, n do
  local id = ("%012x"):format(i * 2654435761 % 0xffffffffffff)
  local name = ("t%05d"):format(i)
  local cols = {
    'sa.Column("id", sa.BigInteger, sa.Identity(), { primary_key = true })',
    'sa.Column("name", sa.String(100), { nullable = false })',
    'sa.Column("created_at", sa.DateTime({ timezone = true }),'
      .. ' { server_default = sa.text("now()"), nullable = false })',
  }
  for k = 1, 2 + i % 3 do cols[#cols + 1] = extra[(i + k) % #extra + 1] end
  if i > 1 and i % 3 == 0 then
    cols[#cols + 1] = ('sa.Column("parent_id", sa.BigInteger, sa.ForeignKey("t%05d.id"))'):format(i - 1)
  end
  local index = i % 2 == 0
      and ('  op.create_index("ix_%s_name", "%s", { "name" })\n'):format(name, name) or ""
  local f = assert(io.open(("%s/migrations/versions/%s_create_%s.lua"):format(dir, id, name), "w"))
  f:write(([==[
--[[ create %s

Revision ID: %s
]]
revision = %q
down_revision = %s
branch_labels = nil
depends_on = nil

function upgrade()
  op.create_table("%s",
    %s)
%send

function downgrade()
  op.drop_table("%s")
end
]==]):format(name, id, id, prev and ("%q"):format(prev) or "nil", name,
    table.concat(cols, ",\n    "), index, name))
  f:close()
  prev = id
end
