-- Lint rules about names.
local KEYS = { relname = true, idxname = true, colname = true, conname = true, newname = true, schemaname = true,
  trigname = true, indexname = true, policy_name = true, sval = true }

-- The parser has already cut long names to 63 bytes (at a character boundary), as the
-- server does; a name in the tree that long, followed in the text by more name characters,
-- was written longer.
local function walk(v, text, lower, out)
  if type(v) ~= "table" then return end
  for k, x in pairs(v) do
    if KEYS[k] and type(x) == "string" and #x >= 60 and #x <= 63 then
      for _, hay in ipairs { text, lower } do
        local at = 1
        while true do
          local i, j = hay:find(x, at, true)
          if not i then break end
          if hay:sub(j + 1, j + 1):match("[%w_$\128-\255]") or (hay:sub(i - 1, i - 1) == '"'
            and hay:sub(j + 1, j + 1) ~= '"' and hay:sub(j + 1, j + 1) ~= "") then
            out[#out + 1] = hay:match('^"?([^"]*)', i - (hay:sub(i - 1, i - 1) == '"' and 1 or 0))
              or x
            break
          end
          at = j + 1
        end
      end
    end
    walk(x, text, lower, out)
  end
end

return {
  { id = "identifier-too-long", severity = "error",
    check = function(s)
      if s.long_strings == false then return nil end -- sql.parse saw no string that long
      local long = {}
      walk(s.tree, s.sql, s.sql:lower(), long)
      if not long[1] then return nil end
      local name = long[1]:match("^[%w_$\128-\255]+") or long[1]
      return { message = ("identifier \"%s\" is %d bytes long: PostgreSQL silently cuts names to 63 bytes, so the "
          .. "object gets another name than the one written"):format(name, #name),
        hint = "use a name of at most 63 bytes" }
    end },
}
