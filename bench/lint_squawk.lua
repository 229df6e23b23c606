-- Driver of bench/lint_squawk.sh: lints each case of bench/lint_cases.lua with luamigrate
-- (offline, and online against a database holding the fixture) and with squawk (on the
-- case's `upgrade --sql` script), and reports recall and precision of each against the
-- expected findings, over (case, rule) pairs.
--   lua5.4 bench/lint_squawk.lua LUAMIGRATE SQUAWK PGHOST
local cjson = require "cjson"
local cases = dofile("bench/lint_cases.lua")
local bin, squawk = arg[1], arg[2]

local function sh(cmd)
  local p = assert(io.popen(cmd .. " 2>/dev/null"))
  local out = p:read("a")
  local ok = p:close()
  return out, ok
end
local function q(s) return "'" .. s:gsub("'", "'\\''") .. "'" end
local function write(path, text)
  local f = assert(io.open(path, "w"))
  f:write(text)
  f:close()
end

-- The rules of the issue's list and luamigrate's own; squawk's other rules are not judged.
local JUDGED = {}
for id in ([[adding-field-with-default adding-foreign-key-constraint adding-not-nullable-field
  adding-required-field adding-serial-primary-key-field ban-char-field
  ban-concurrent-index-creation-in-transaction ban-drop-column ban-drop-table ban-drop-database
  ban-drop-not-null ban-truncate-cascade ban-uncommitted-transaction
  ban-alter-domain-with-add-constraint ban-create-domain-with-constraint changing-column-type
  constraint-missing-not-valid disallowed-unique-constraint identifier-too-long prefer-bigint-over-int
  prefer-bigint-over-smallint prefer-identity prefer-robust-stmts prefer-text-field prefer-timestamptz
  renaming-column renaming-table require-concurrent-index-creation require-concurrent-index-deletion
  require-concurrent-partition-detach require-concurrent-reindex require-enum-value-ordering
  require-lock-timeout require-statement-timeout transaction-nesting
  prefer-jsonb adding-auto-increment-column adding-exclusion-constraint renaming-schema
  renaming-enum-value index-too-many-columns backfill-in-ddl-transaction
  non-transactional-in-transaction]]):gmatch("%S+") do JUDGED[id] = true end
local SQUAWK_HAS = {} -- the squawk rules among them
for id in pairs(JUDGED) do SQUAWK_HAS[id] = true end
for id in ([[prefer-jsonb adding-auto-increment-column adding-exclusion-constraint renaming-schema
  renaming-enum-value index-too-many-columns backfill-in-ddl-transaction
  non-transactional-in-transaction]]):gmatch("%S+") do SQUAWK_HAS[id] = nil end

local work = sh("mktemp -d /tmp/lmlintbench.XXXXXX"):gsub("%s+$", "")
sh(("psql -XAtq -d postgres -c 'DROP DATABASE IF EXISTS lmbench_tpl' -c 'CREATE DATABASE lmbench_tpl'"))
local f = assert(io.popen("psql -XAtq -v ON_ERROR_STOP=1 -d lmbench_tpl >/dev/null", "w"))
f:write(cases.FIXTURE)
assert(f:close(), "the fixture failed")

local REV = [[
revision = %q
down_revision = %s
function upgrade()
  %s
end
function downgrade() end
]]

local tools = { "luamigrate offline", "luamigrate online", "squawk" }
local stats = {}
for _, t in ipairs(tools) do stats[t] = { tp = 0, fp = 0, fn = 0, misses = {}, extras = {} } end
local squawk_only = { tp = 0, fp = 0, fn = 0 } -- squawk on the cases of its own rules

local function judge(tool, name, expected, found, st)
  st = st or stats[tool]
  for id in pairs(expected) do
    if found[id] then st.tp = st.tp + 1 else
      st.fn = st.fn + 1
      if st.misses then st.misses[#st.misses + 1] = name .. ": " .. id end
    end
  end
  for id in pairs(found) do
    if not expected[id] then
      st.fp = st.fp + 1
      if st.extras then st.extras[#st.extras + 1] = name .. ": " .. id end
    end
  end
end

local function rules_of_lint(out)
  local ok, list = pcall(cjson.decode, out)
  local set = {}
  if not ok or type(list) ~= "table" then return set end
  for _, x in ipairs(list) do
    if JUDGED[x.rule] and not x.allowed then set[x.rule] = true end
  end
  return set
end

for i, c in ipairs(cases.CASES) do
  local name, body, want = c[1], c[2], c[3]
  local dir = ("%s/c%02d"):format(work, i)
  sh("mkdir -p " .. q(dir .. "/migrations/versions"))
  write(dir .. "/luamigrate.lua", 'script_location = "migrations"\nmigration_statement_timeout = "10min"\n'
    .. (c.config or ""))
  write(dir .. "/migrations/versions/r0_base.lua", REV:format("r0", "nil", ""))
  write(dir .. "/migrations/versions/r1_case.lua", REV:format("r1", '"r0"', body))
  local expected = {}
  for _, id in ipairs(want) do expected[id] = true end
  local cd = "cd " .. q(dir) .. " && "
  judge("luamigrate offline", name, expected, rules_of_lint(sh(cd .. q(bin) .. " lint --offline --json r0:r1")))
  local db = ("lmbench_%02d"):format(i)
  sh(("psql -XAtq -d postgres -c 'DROP DATABASE IF EXISTS %s' -c 'CREATE DATABASE %s TEMPLATE lmbench_tpl'")
    :format(db, db))
  sh(cd .. q(bin) .. " --url dbname=" .. db .. " stamp r0")
  local online = sh(cd .. q(bin) .. " --url dbname=" .. db .. " lint --json")
  judge("luamigrate online", name, expected, rules_of_lint(online))
  sh(("psql -XAtq -d postgres -c 'DROP DATABASE %s'"):format(db))
  local script = sh(cd .. q(bin) .. " upgrade --sql r0:r1")
  write(dir .. "/case.sql", script)
  local found = {}
  local cmd = q(squawk) .. " --pg-version=15.0 --reporter json " .. q(dir .. "/case.sql")
  local ok, list = pcall(cjson.decode, (sh(cmd)))
  if ok and type(list) == "table" then
    for _, x in ipairs(list) do
      local id = x.rule_name == "prefer-timestamp-tz" and "prefer-timestamptz" or x.rule_name
      if JUDGED[id] then found[id] = true end
    end
  end
  judge("squawk", name, expected, found)
  local own = {}
  for id in pairs(expected) do if SQUAWK_HAS[id] then own[id] = true end end
  local found_own = {}
  for id in pairs(found) do if SQUAWK_HAS[id] then found_own[id] = true end end
  judge(nil, name, own, found_own, squawk_only)
end
sh("psql -XAtq -d postgres -c 'DROP DATABASE lmbench_tpl'")
sh("rm -rf " .. q(work))

local function pct(a, b) return b == 0 and "n/a" or ("%.1f %%"):format(100 * a / b) end
print(("%d cases, %d expected findings\n"):format(#cases.CASES, stats["squawk"].tp + stats["squawk"].fn))
print("| tool | recall | precision | true pos. | false pos. | missed |")
print("|---|---:|---:|---:|---:|---:|")
for _, t in ipairs(tools) do
  local s = stats[t]
  print(("| %s | %s | %s | %d | %d | %d |"):format(t, pct(s.tp, s.tp + s.fn), pct(s.tp, s.tp + s.fp), s.tp, s.fp,
    s.fn))
end
local s = squawk_only
print(("| squawk, its own rules only | %s | %s | %d | %d | %d |"):format(pct(s.tp, s.tp + s.fn),
  pct(s.tp, s.tp + s.fp), s.tp, s.fp, s.fn))
for _, t in ipairs(tools) do
  if #stats[t].misses + #stats[t].extras > 0 then
    print("\n" .. t .. ":")
    for _, m in ipairs(stats[t].misses) do print("  missed   " .. m) end
    for _, m in ipairs(stats[t].extras) do print("  extra    " .. m) end
  end
end
