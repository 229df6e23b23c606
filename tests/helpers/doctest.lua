-- Runs the examples in docs/*.md, so the pages cannot drift from what luamigrate does.
--
-- A code block is executed only when an HTML comment (invisible on GitHub) stands on the
-- line before its opening fence; every other block is prose and stays unexecuted:
--
--   <!-- doctest: console -->       ```console block: each "$ command" line is run by sh in
--                                    the page's project directory (luamigrate is the built
--                                    binary, DATABASE_URL a fresh database); the lines up to
--                                    the next "$ " are the expected output (stdout and stderr
--                                    as a terminal shows them). A line "..." matches any lines.
--   <!-- doctest: file PATH [repo] --> the block is written to PATH in the project directory
--                                    (repo: and must equal the repository's PATH).
--   <!-- doctest: edit PATH -->      PATH's text from the first line equal to the block's first
--                                    line on is replaced by the block ("function upgrade()").
--   <!-- doctest: shows PATH -->     PATH's text must equal the block.
--   <!-- doctest: copy PATH -->      (no block) copies PATH from the repository.
--   <!-- doctest: setup -->          op-reference: the upgrade() body every example runs on.
--   <!-- doctest: op NAME [x K=V] [nodb] -->
--                                    a lua block (an upgrade() body) followed by a sql block:
--                                    the sql block must equal what `upgrade --sql` writes for
--                                    it; then it runs with `upgrade --dry-run` on a database
--                                    at the setup revision (unless nodb). x K=V passes -x K=V.
-- PATH in edit and shows may hold one "*" (generated revision ids). Outputs are compared
-- after normalize(): 12-hex revision ids, dates, durations, URLs and the version vary.
local M = {}

-- parse(text) -> list of {kind=, args={...}, line=, lang=, code=, sql=, sql_line=}
function M.parse(text)
  local lines = {}
  for l in (text:gsub("\r", "") .. (text:sub(-1) == "\n" and "" or "\n")):gmatch("(.-)\n") do
    lines[#lines + 1] = l
  end
  -- fenced blocks first: {start=, lang=, code=}
  local blocks, by_start = {}, {}
  local i = 1
  while i <= #lines do
    local lang = lines[i]:match("^```(%S*)%s*$")
    if lang then
      local body, j = {}, i + 1
      while j <= #lines and not lines[j]:match("^```%s*$") do
        body[#body + 1] = lines[j]
        j = j + 1
      end
      if j > #lines then error(("line %d: code block never closed"):format(i), 0) end
      local b = { start = i, lang = lang, code = table.concat(body, "\n") .. "\n" }
      blocks[#blocks + 1] = b
      by_start[i] = #blocks
      i = j + 1
    else
      i = i + 1
    end
  end
  local function next_block(after)
    for k, b in ipairs(blocks) do if b.start > after then return b, k end end
  end
  local out = {}
  for n, l in ipairs(lines) do
    local spec = l:match("^<!%-%- doctest: (.-) %-%->%s*$")
    if spec then
      local args = {}
      for w in spec:gmatch("%S+") do args[#args + 1] = w end
      local step = { kind = table.remove(args, 1), args = args, line = n }
      if step.kind ~= "copy" then
        if not by_start[n + 1] then
          error(("line %d: a doctest marker must stand right above a code block"):format(n), 0)
        end
        local b = blocks[by_start[n + 1]]
        step.lang, step.code = b.lang, b.code
        if step.kind == "op" then
          local s = next_block(b.start)
          if not s or s.lang ~= "sql" then
            error(("line %d: op %s: the lua block must be followed by a sql block"):format(n, tostring(args[1])), 0)
          end
          step.sql, step.sql_line = s.code, s.start
        end
      end
      out[#out + 1] = step
    elseif l:match("^<!%-%-%s*doctest") then
      error(("line %d: malformed doctest marker: %s"):format(n, l), 0)
    end
  end
  return out
end

-- The commands of a console block: {{cmd=, expected=}...}
function M.commands(code)
  local cmds = {}
  for l in code:gmatch("(.-)\n") do
    local c = l:match("^%$ (.*)$")
    if c then cmds[#cmds + 1] = { cmd = c, expected = {} }
    elseif #cmds == 0 then error("a console block must start with a '$ ' line", 0)
    else table.insert(cmds[#cmds].expected, l) end
  end
  return cmds
end

-- A normalizer keeps its own id map, so a page's ids must correspond in order of first
-- appearance (the docs' 1975ea83b712 is whatever id the run generated first).
function M.normalizer()
  local ids, n = {}, 0
  return function(text)
    text = text:gsub("\r", "")
    -- colour is a terminal's decoration: the pages show the text under it
    text = text:gsub("\27%[[%d;]*m", "")
    text = text:gsub("%f[%w](%x%x%x%x%x%x%x%x%x%x%x%x)%f[^%w]", function(id)
      if id:find("[g-zA-Z]") then return id end
      if not ids[id] then
        n = n + 1
        ids[id] = "<rev" .. n .. ">"
      end
      return ids[id]
    end)
    text = text:gsub("%d%d%d%d%-%d%d%-%d%d[ T]%d%d:%d%d:%d%d[%.%d]*", "<date>")
    text = text:gsub("%(%d[%d.]* ms%)", "(<n> ms)")
    text = text:gsub(" *%d[%d.]* ms%f[^%w]", " <n> ms")
    text = text:gsub("postgresql://%S+", "<url>")
    text = text:gsub("'%d+%.%d+%.%d+'", "'<version>'")
    local out = {}
    for l in (text .. "\n"):gmatch("(.-)\n") do out[#out + 1] = (l:gsub("%s+$", "")) end
    while #out > 0 and out[#out] == "" do out[#out] = nil end
    while #out > 0 and out[1] == "" do table.remove(out, 1) end
    return out
  end
end

-- Does the list of lines `got` match `want`, where a "..." line in want matches any lines?
function M.match(want, got)
  local memo = {}
  local function m(i, j)
    local key = i * 100000 + j
    if memo[key] ~= nil then return memo[key] end
    local r
    if i > #want then r = j > #got
    elseif want[i] == "..." then r = m(i + 1, j) or (j <= #got and m(i, j + 1))
    else r = j <= #got and want[i] == got[j] and m(i + 1, j + 1) end
    memo[key] = r
    return r
  end
  return m(1, 1)
end

return M
