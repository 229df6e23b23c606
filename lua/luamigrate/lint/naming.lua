-- Lint rules about names.
local KEYS = { relname = true, idxname = true, colname = true, conname = true, newname = true, schemaname = true,
  trigname = true, indexname = true, policy_name = true }

local function walk(v, out)
  if type(v) ~= "table" then return end
  for k, x in pairs(v) do
    if KEYS[k] and type(x) == "string" and #x > 63 then out[#out + 1] = x end
    walk(x, out)
  end
end

return {
  { id = "identifier-too-long", severity = "error",
    check = function(s)
      local long = {}
      walk(s.tree, long)
      if not long[1] then return nil end
      table.sort(long)
      return { message = ("identifier \"%s\" is %d bytes long: PostgreSQL silently cuts names to 63 bytes, so the "
          .. "object gets another name than the one written"):format(long[1], #long[1]),
        hint = "use a name of at most 63 bytes" }
    end },
}
