-- What an error a call raises says, for specs that compare messages exactly.
local M = {}

-- The message of the error fn(...) raises: a structured error's .message, or the string
-- without the "chunk:line: " position it was raised at. Fails the spec if fn returns.
function M.message(fn, ...)
  local ok, e = pcall(fn, ...)
  assert(not ok, "expected an error, but the call returned")
  if type(e) == "table" and e.message then return e.message end
  return (tostring(e):gsub("^[^:\n]*:%d+: ", ""))
end

return M
