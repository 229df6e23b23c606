-- A reader for the subset of Python that Alembic migrations and env.py files are written
-- in: a tokenizer (indentation, every string form, numbers, comments) and a recursive-descent
-- parser giving a small syntax tree. It never runs anything. Compound statements it does not
-- model (async, match) are kept whole as "unsupported" nodes with their source
-- lines, so a caller can report them instead of failing the whole file.
--
-- M.parse(source, name) -> module | nil, "name:line:col: message"
--   module = { body = {stmt...}, comments = { [line] = "text" } }
-- Expression nodes: name, num, str (s, bytes), fstr (parts: strings and {expr, conv, spec}),
-- const (None/True/False), attr, call (args, kwargs = {{name, value}}, star, dstar), sub,
-- slice, list, tuple, set, dict (keys, values: in source order), unop, binop, boolop, cmp
-- (ops, operands), ifexp, lambda, listcomp (elt, target, iter, cond; set = true for a set
-- comprehension, key for a dict comprehension), starred. Statements: import, from, assign
-- (targets, value), augassign, annassign, expr, def, return, pass, if (tests, bodies, orelse),
-- for, while (test, body, orelse), class (name, bases, keywords, body), with (items: {expr,
-- as}), try (body, handlers = {{type, name, body, line}}, orelse, finalbody), assert (test,
-- msg), unsupported (keyword), and break/continue/raise.
-- Every node has `line`; statements also `last`, the last line they span.
local M = {}

local KEYWORDS = {}
for w in ([[False None True and as assert async await break class continue def del elif else
  except finally for from global if import in is lambda nonlocal not or pass raise return try
  while with yield]]):gmatch("%a+") do KEYWORDS[w] = true end
M.KEYWORDS = KEYWORDS

local function fail(name, line, col, msg)
  error({ python_error = true, text = ("%s:%d:%d: %s"):format(name, line, col, msg) }, 0)
end

-- ---- tokenizer ----------------------------------------------------------------------

local OPS3 = { ["**="] = true, ["//="] = true, [">>="] = true, ["<<="] = true, ["..."] = true }
local OPS2 = {}
for op in ("== != <= >= ** // -> += -= *= /= %= &= |= ^= << >> := <>"):gmatch("%S+") do OPS2[op] = true end
local OPS1 = {}
for c in ("()[]{},:.;@=+-*/%<>&|^~!"):gmatch(".") do OPS1[c] = true end

local ESCAPES = { n = "\n", t = "\t", r = "\r", ["\\"] = "\\", ["'"] = "'", ['"'] = '"',
  a = "\a", b = "\b", f = "\f", v = "\v", ["\n"] = "" }

-- Decodes the backslash escapes of a non-raw string body.
local function unescape(body, bytes, err)
  return (body:gsub("\\(.)([^\\]*)", function(c, rest)
    if ESCAPES[c] then return ESCAPES[c] .. rest end
    if c:match("[0-7]") then
      local oct = (c .. rest):match("^[0-7][0-7]?[0-7]?")
      return string.char(tonumber(oct, 8) % 256) .. (c .. rest):sub(#oct + 1)
    end
    if c == "x" then
      local h = rest:match("^%x%x")
      if not h then err("invalid \\x escape") end
      return string.char(tonumber(h, 16)) .. rest:sub(3)
    end
    if not bytes and (c == "u" or c == "U") then
      local n = c == "u" and 4 or 8
      local h = rest:match("^" .. ("%x"):rep(n))
      if not h then err("invalid \\" .. c .. " escape") end
      return utf8.char(tonumber(h, 16)) .. rest:sub(n + 1)
    end
    if not bytes and c == "N" then err("\\N{...} escapes are not supported") end
    return "\\" .. c .. rest -- Python keeps unknown escapes as they are
  end))
end

-- Returns the token list: {type, value, line, col, [prefix, raw]}; types: name, num, str,
-- op, newline, indent, dedent, eof. comments[line] = text (without "#").
local function tokenize(src, name)
  local toks, comments = {}, {}
  local pos, line, linestart = 1, 1, 1
  local indents = { 0 }
  local depth = 0 -- open brackets: newlines inside them are not tokens
  local at_line_start = true
  local n = #src
  local function add(t, v, l, c, extra)
    local tok = { type = t, value = v, line = l, col = c }
    if extra then for k, x in pairs(extra) do tok[k] = x end end
    toks[#toks + 1] = tok
    return tok
  end
  while true do
    if at_line_start and depth == 0 then
      -- measure indentation; blank and comment-only lines do not count
      local s, e = src:find("^[ \t\f]*", pos)
      local ws = src:sub(s, e)
      local nextc = src:sub(e + 1, e + 1)
      if nextc == "" then pos = e + 1; break end
      if nextc == "\n" or nextc == "#" or nextc == "\r" or (nextc == "\\" and src:sub(e + 2, e + 2) == "\n") then
        pos = e + 1
      else
        local width = 0
        for ch in ws:gmatch(".") do
          if ch == "\t" then width = width + 8 - width % 8 else width = width + 1 end
        end
        if width > indents[#indents] then
          indents[#indents + 1] = width
          add("indent", width, line, 1)
        else
          while width < indents[#indents] do
            indents[#indents] = nil
            add("dedent", width, line, 1)
          end
          if width ~= indents[#indents] then
            fail(name, line, e - linestart + 2, "unindent does not match any outer indentation level")
          end
        end
        pos = e + 1
      end
      at_line_start = false
    end
    if pos > n then break end
    local c = src:sub(pos, pos)
    local col = pos - linestart + 1
    if c == " " or c == "\t" or c == "\f" or c == "\r" then
      pos = pos + 1
    elseif c == "\n" then
      if depth == 0 and #toks > 0 and toks[#toks].type ~= "newline" and toks[#toks].type ~= "indent"
        and toks[#toks].type ~= "dedent" then
        add("newline", nil, line, col)
      end
      pos, line, linestart = pos + 1, line + 1, pos + 1
      at_line_start = depth == 0 -- inside brackets a line's indentation means nothing
    elseif c == "#" then
      local e = src:find("\n", pos, true) or n + 1
      comments[line] = src:sub(pos + 1, e - 1):gsub("\r$", "")
      pos = e
    elseif c == "\\" then
      if src:sub(pos + 1, pos + 1) == "\n" then
        pos, line, linestart = pos + 2, line + 1, pos + 2
      elseif src:sub(pos + 1, pos + 2) == "\r\n" then
        pos, line, linestart = pos + 3, line + 1, pos + 3
      else
        fail(name, line, col, "unexpected character after line continuation")
      end
    else
      -- a string, possibly with a prefix
      local prefix, q = src:match("^([rRbBuUfF][rRbBfF]?)(['\"])", pos)
      if not prefix then
        q = (c == "'" or c == '"') and c or nil
        prefix = ""
      end
      if q then
        local p = prefix:lower()
        if p ~= "" and not (p == "r" or p == "b" or p == "u" or p == "f" or p == "rb" or p == "br"
          or p == "fr" or p == "rf") then
          fail(name, line, col, "invalid string prefix '" .. prefix .. "'")
        end
        local start_line = line
        local i = pos + #prefix
        local triple = src:sub(i, i + 2) == q:rep(3)
        local delim = triple and q:rep(3) or q
        i = i + #delim
        local body_start = i
        local raw = p:find("r", 1, true) ~= nil
        while true do
          if i > n then fail(name, start_line, col, "unterminated string literal") end
          local ch = src:sub(i, i)
          if ch == "\\" then
            if src:sub(i + 1, i + 1) == "\n" then line, linestart = line + 1, i + 2 end
            i = i + 2
          elseif ch == "\n" then
            if not triple then fail(name, start_line, col, "unterminated string literal") end
            line, linestart = line + 1, i + 1
            i = i + 1
          elseif src:sub(i, i + #delim - 1) == delim then
            break
          else
            i = i + 1
          end
        end
        local body = src:sub(body_start, i - 1):gsub("\r\n", "\n")
        pos = i + #delim
        local bytes = p:find("b", 1, true) ~= nil
        local value = body
        if not raw and not p:find("f", 1, true) then
          value = unescape(body, bytes, function(msg) fail(name, start_line, col, msg) end)
        end
        add("str", value, start_line, col, { prefix = p, raw = body, endline = line })
      elseif c:match("[%a_]") then
        -- ASCII names only: Lua has no others, and migrations use no others
        local word = src:match("^[%w_]+", pos)
        add("name", word, line, col)
        pos = pos + #word
      elseif c:match("%d") or (c == "." and src:sub(pos + 1, pos + 1):match("%d")) then
        local num = src:match("^0[xX][%x_]+", pos) or src:match("^0[oO][0-7_]+", pos)
          or src:match("^0[bB][01_]+", pos)
        if not num then
          num = src:match("^[%d_]*%.?[%d_]*", pos)
          local exp = src:match("^[eE][+-]?[%d_]+", pos + #num)
          if exp then num = num .. exp end
        end
        if src:match("^[jJ]", pos + #num) then fail(name, line, col, "complex numbers are not supported") end
        if src:match("^[%a_]", pos + #num) then fail(name, line, col + #num, "invalid number literal") end
        add("num", num, line, col)
        pos = pos + #num
      else
        local op3, op2 = src:sub(pos, pos + 2), src:sub(pos, pos + 1)
        local op
        if OPS3[op3] then op = op3 elseif OPS2[op2] then op = op2 elseif OPS1[c] then op = c end
        if not op then
          local shown = c:match("^[%g]$") and c:byte() < 128 and c or ("\\x%02x"):format(c:byte())
          fail(name, line, col, ("unexpected character '%s'"):format(shown))
        end
        if op == "(" or op == "[" or op == "{" then depth = depth + 1
        elseif op == ")" or op == "]" or op == "}" then
          if depth == 0 then fail(name, line, col, "unmatched '" .. op .. "'") end
          depth = depth - 1
        end
        add("op", op, line, col)
        pos = pos + #op
      end
    end
  end
  if depth > 0 then fail(name, line, pos - linestart + 1, "unexpected end of file inside brackets") end
  if #toks > 0 and toks[#toks].type ~= "newline" and toks[#toks].type ~= "dedent" then
    add("newline", nil, line, pos - linestart + 1)
  end
  for _ = 2, #indents do add("dedent", 0, line, 1) end
  add("eof", nil, line, pos - linestart + 1)
  return toks, comments
end
M.tokenize = tokenize

-- ---- parser -----------------------------------------------------------------------------

local P = {}
P.__index = P

function P:peek(k) return self.toks[self.i + (k or 0)] end
function P:next()
  local t = self.toks[self.i]
  self.i = self.i + 1
  return t
end
function P:err(msg, tok)
  tok = tok or self:peek()
  fail(self.name, tok.line, tok.col, msg)
end
function P:isop(v, k)
  local t = self:peek(k)
  return t.type == "op" and t.value == v
end
function P:isname(v, k)
  local t = self:peek(k)
  return t.type == "name" and t.value == v
end
function P:accept(v)
  if self:isop(v) or self:isname(v) then return self:next() end
end
local function describe(t)
  if t.type == "eof" then return "end of file" end
  if t.type == "newline" then return "end of line" end
  if t.type == "indent" then return "an indented block" end
  if t.type == "dedent" then return "the end of a block" end
  if t.type == "str" then return "a string" end
  return "'" .. tostring(t.value) .. "'"
end
function P:expect(v)
  local t = self:accept(v)
  if not t then self:err(("expected '%s', found %s"):format(v, describe(self:peek()))) end
  return t
end
function P:guard()
  self.depth = self.depth + 1
  if self.depth > 150 then self:err("expression nested too deeply") end
end

-- String literals, with implicit concatenation of neighbours (f-strings included).
local function fstring_parts(self, tok)
  local parts, buf = {}, {}
  local s, i, n = tok.raw, 1, #tok.raw
  local raw = tok.prefix:find("r", 1, true) ~= nil
  local function flush()
    if #buf > 0 then
      local text = table.concat(buf)
      if not raw then text = unescape(text, false, function(msg) self:err(msg, tok) end) end
      parts[#parts + 1] = text
      buf = {}
    end
  end
  while i <= n do
    local c = s:sub(i, i)
    if c == "{" and s:sub(i + 1, i + 1) == "{" then
      buf[#buf + 1] = "{"; i = i + 2
    elseif c == "}" and s:sub(i + 1, i + 1) == "}" then
      buf[#buf + 1] = "}"; i = i + 2
    elseif c == "}" then
      self:err("f-string: single '}' is not allowed", tok)
    elseif c == "{" then
      flush()
      -- find the matching close brace, skipping nested brackets and strings
      local j, d, quote = i + 1, 0, nil
      local stop_expr, spec_start, conv
      while true do
        if j > n then self:err("f-string: expecting '}'", tok) end
        local ch = s:sub(j, j)
        if quote then
          if ch == quote then quote = nil end
        elseif ch == "'" or ch == '"' then quote = ch
        elseif ch == "(" or ch == "[" or ch == "{" then d = d + 1
        elseif (ch == ")" or ch == "]" or ch == "}") and d > 0 then d = d - 1
        elseif d == 0 and ch == "}" then break
        elseif d == 0 and ch == "!" and s:sub(j + 1, j + 1) ~= "=" and not stop_expr then
          stop_expr = j
          conv = s:sub(j + 1, j + 1)
        elseif d == 0 and ch == ":" and not spec_start then
          spec_start = j
          if not stop_expr then stop_expr = j end
        end
        j = j + 1
      end
      local expr_text = s:sub(i + 1, (stop_expr or j) - 1)
      if expr_text:match("^%s*$") then self:err("f-string: empty expression not allowed", tok) end
      local selfdoc = expr_text:match("=%s*$") and not expr_text:match("[=!<>]=%s*$")
      if selfdoc then expr_text = expr_text:gsub("=%s*$", "") end
      local sub = M.parse_expression(expr_text, self.name, tok.line, self.depth)
      parts[#parts + 1] = { expr = sub, conv = conv, spec = spec_start and s:sub(spec_start + 1, j - 1) or nil,
        selfdoc = selfdoc and expr_text or nil }
      i = j + 1
    else
      buf[#buf + 1] = c; i = i + 1
    end
  end
  flush()
  return parts
end

function P:strings()
  local first = self:peek()
  local parts, any_f, bytes = {}, false, nil
  while self:peek().type == "str" do
    local t = self:next()
    local isb = t.prefix:find("b", 1, true) ~= nil
    if bytes ~= nil and bytes ~= isb then self:err("cannot mix bytes and nonbytes literals", t) end
    bytes = isb
    if t.prefix:find("f", 1, true) then
      any_f = true
      for _, p in ipairs(fstring_parts(self, t)) do parts[#parts + 1] = p end
    else
      parts[#parts + 1] = t.value
    end
  end
  -- join neighbouring plain text
  local merged = {}
  for _, p in ipairs(parts) do
    if type(p) == "string" and type(merged[#merged]) == "string" then
      merged[#merged] = merged[#merged] .. p
    else
      merged[#merged + 1] = p
    end
  end
  if not any_f then
    return { k = "str", s = merged[1] or "", bytes = bytes, line = first.line }
  end
  return { k = "fstr", parts = merged, line = first.line }
end

function P:atom()
  local t = self:peek()
  if t.type == "name" then
    if t.value == "None" or t.value == "True" or t.value == "False" then
      self:next()
      return { k = "const", v = t.value, line = t.line }
    end
    if t.value == "lambda" then return self:lambda() end
    if KEYWORDS[t.value] then self:err(("unexpected keyword '%s'"):format(t.value)) end
    self:next()
    return { k = "name", id = t.value, line = t.line }
  elseif t.type == "num" then
    self:next()
    return { k = "num", v = t.value, line = t.line }
  elseif t.type == "str" then
    return self:strings()
  elseif t.type == "op" then
    if t.value == "(" then
      self:next()
      if self:accept(")") then return { k = "tuple", items = {}, line = t.line } end
      local e = self:expr_or_star()
      if self:isname("for") then
        local comp = self:comprehension(e, t.line)
        self:expect(")")
        return comp
      end
      if self:accept(",") then
        local items = { e }
        while not self:isop(")") do
          items[#items + 1] = self:expr_or_star()
          if not self:accept(",") then break end
        end
        self:expect(")")
        return { k = "tuple", items = items, line = t.line }
      end
      self:expect(")")
      e.paren = true
      return e
    elseif t.value == "[" then
      self:next()
      local items = {}
      if not self:isop("]") then
        local e = self:expr_or_star()
        if self:isname("for") then
          local comp = self:comprehension(e, t.line)
          self:expect("]")
          return comp
        end
        items[1] = e
        while self:accept(",") do
          if self:isop("]") then break end
          items[#items + 1] = self:expr_or_star()
        end
      end
      self:expect("]")
      return { k = "list", items = items, line = t.line }
    elseif t.value == "{" then
      self:next()
      local keys, values, items = {}, {}, {}
      local is_set = nil
      while not self:isop("}") do
        if self:accept("**") then
          if is_set then self:err("invalid syntax") end
          is_set = false
          keys[#keys + 1] = false
          values[#values + 1] = self:expr()
        else
          local k = self:expr()
          if is_set == nil then is_set = not self:isop(":") end
          if is_set then
            items[#items + 1] = k
          else
            self:expect(":")
            keys[#keys + 1] = k
            values[#values + 1] = self:expr()
          end
        end
        if (#keys == 1 or #items == 1) and self:isname("for") then
          -- {x for x in xs} and {k: v for k, v in xs}: a comprehension building a set or dict
          local comp
          if is_set then
            comp = self:comprehension(items[1], t.line)
            comp.set = true
          else
            comp = self:comprehension(values[1], t.line)
            comp.key = keys[1]
          end
          if comp.k ~= "listcomp" then
            self:skip_rest()
            self:expect("}")
            return comp
          end
          self:expect("}")
          return comp
        end
        if not self:accept(",") then break end
      end
      self:expect("}")
      if is_set then return { k = "set", items = items, line = t.line } end
      return { k = "dict", keys = keys, values = values, line = t.line }
    elseif t.value == "..." then
      self:next()
      return { k = "const", v = "Ellipsis", line = t.line }
    end
  end
  self:err(("unexpected %s"):format(describe(t)))
end

function P:comprehension(elt, line)
  self:expect("for")
  local target = self:target_list()
  self:expect("in")
  local iter = self:or_test()
  local cond
  if self:accept("if") then cond = self:or_test() end
  if self:isname("for") or self:isname("if") then
    self:skip_rest()
    return { k = "unsupported", what = "a comprehension with several for or if clauses", line = line }
  end
  return { k = "listcomp", elt = elt, target = target, iter = iter, cond = cond, line = line }
end

-- Skips what is left inside the current brackets (valid Python this reader does not model),
-- up to the closing bracket, which it leaves for the caller.
function P:skip_rest()
  local d = 0
  while true do
    local t = self:peek()
    if t.type == "eof" then self:err("unexpected end of file") end
    if t.type == "op" then
      if t.value == "(" or t.value == "[" or t.value == "{" then d = d + 1
      elseif t.value == ")" or t.value == "]" or t.value == "}" then
        if d == 0 then return end
        d = d - 1
      end
    end
    self:next()
  end
end

function P:lambda()
  local t = self:expect("lambda")
  local params = {}
  while not self:isop(":") do
    local p = self:next()
    if p.type ~= "name" then self:err("expected a parameter name", p) end
    params[#params + 1] = p.value
    if not self:accept(",") then break end
  end
  self:expect(":")
  return { k = "lambda", params = params, body = self:expr(), line = t.line }
end

function P:call_args(fn, line)
  local args, kwargs = {}, {}
  local node = { k = "call", fn = fn, args = args, kwargs = kwargs, line = line }
  while not self:isop(")") do
    if self:accept("*") then
      node.star = node.star or {}
      args[#args + 1] = { k = "starred", e = self:expr(), line = self:peek().line }
    elseif self:accept("**") then
      kwargs[#kwargs + 1] = { name = false, value = self:expr() }
    elseif self:peek().type == "name" and self:isop("=", 1) then
      local name = self:next().value
      self:next()
      kwargs[#kwargs + 1] = { name = name, value = self:expr() }
    else
      if #kwargs > 0 then self:err("positional argument follows keyword argument") end
      local e = self:expr()
      if self:isname("for") then e = self:comprehension(e, e.line) end
      args[#args + 1] = e
    end
    if not self:accept(",") then break end
  end
  self:expect(")")
  return node
end

function P:subscript()
  local function part()
    if self:isop(":") or self:isop("]") or self:isop(",") then return nil end
    return self:expr()
  end
  local lo = part()
  if self:accept(":") then
    local hi = part()
    local step
    if self:accept(":") then step = part() end
    return { k = "slice", lo = lo, hi = hi, step = step, line = self:peek().line }
  end
  if lo == nil then self:err("expected an index") end
  return lo
end

function P:trailers(e)
  while true do
    local t = self:peek()
    if self:isop("(") then
      self:next()
      e = self:call_args(e, t.line)
    elseif self:isop("[") then
      self:next()
      local idx = self:subscript()
      if self:isop(",") then
        local items = { idx }
        while self:accept(",") do
          if self:isop("]") then break end
          items[#items + 1] = self:subscript()
        end
        idx = { k = "tuple", items = items, line = t.line }
      end
      self:expect("]")
      e = { k = "sub", obj = e, index = idx, line = t.line }
    elseif self:isop(".") then
      self:next()
      local n = self:next()
      if n.type ~= "name" then self:err("expected an attribute name", n) end
      e = { k = "attr", obj = e, name = n.value, line = t.line }
    else
      return e
    end
  end
end

function P:power()
  self:guard()
  local t = self:peek()
  if self:isname("await") then self:err("await is not supported") end
  local e = self:trailers(self:atom())
  if self:accept("**") then
    e = { k = "binop", op = "**", l = e, r = self:unary(), line = t.line }
  end
  self.depth = self.depth - 1
  return e
end

function P:unary()
  local t = self:peek()
  if self:isop("-") or self:isop("+") or self:isop("~") then
    self:next()
    self:guard()
    local e = { k = "unop", op = t.value, e = self:unary(), line = t.line }
    self.depth = self.depth - 1
    return e
  end
  return self:power()
end

local BINARY = {
  { "|" }, { "^" }, { "&" }, { "<<", ">>" }, { "+", "-" }, { "*", "/", "//", "%", "@" },
}
local function binary_level(level)
  if level > #BINARY then return P.unary end
  local ops = {}
  for _, o in ipairs(BINARY[level]) do ops[o] = true end
  local sub = binary_level(level + 1)
  return function(self)
    local e = sub(self)
    while self:peek().type == "op" and ops[self:peek().value] do
      local t = self:next()
      e = { k = "binop", op = t.value, l = e, r = sub(self), line = t.line }
    end
    return e
  end
end
P.arith = binary_level(1)

local CMP = { ["<"] = true, [">"] = true, ["=="] = true, ["!="] = true, ["<="] = true, [">="] = true }
function P:comparison()
  local e = self:arith()
  local ops, operands = {}, { e }
  while true do
    local t = self:peek()
    local op
    if t.type == "op" and CMP[t.value] then self:next(); op = t.value
    elseif self:isname("in") then self:next(); op = "in"
    elseif self:isname("not") and self:isname("in", 1) then self:next(); self:next(); op = "not in"
    elseif self:isname("is") then
      self:next()
      if self:accept("not") then op = "is not" else op = "is" end
    else break end
    ops[#ops + 1] = op
    operands[#operands + 1] = self:arith()
  end
  if #ops == 0 then return e end
  return { k = "cmp", ops = ops, operands = operands, line = e.line }
end

function P:not_test()
  local t = self:peek()
  if self:accept("not") then
    self:guard()
    local e = { k = "unop", op = "not", e = self:not_test(), line = t.line }
    self.depth = self.depth - 1
    return e
  end
  return self:comparison()
end

function P:and_test()
  local e = self:not_test()
  while self:isname("and") do
    local t = self:next()
    e = { k = "boolop", op = "and", l = e, r = self:not_test(), line = t.line }
  end
  return e
end

function P:or_test()
  local e = self:and_test()
  while self:isname("or") do
    local t = self:next()
    e = { k = "boolop", op = "or", l = e, r = self:and_test(), line = t.line }
  end
  return e
end

function P:expr()
  self:guard()
  if self:isname("lambda") then
    local l = self:lambda()
    self.depth = self.depth - 1
    return l
  end
  local e = self:or_test()
  if self:isname("if") then
    self:next()
    local cond = self:or_test()
    self:expect("else")
    e = { k = "ifexp", cond = cond, a = e, b = self:expr(), line = e.line }
  end
  self.depth = self.depth - 1
  return e
end

function P:expr_or_star()
  local t = self:peek()
  if self:accept("*") then return { k = "starred", e = self:or_test(), line = t.line } end
  return self:expr()
end

-- a, b = ... / for a, b in ...: a tuple when there is a comma
function P:expr_list(item)
  local first = self:peek()
  local e = (item or P.expr_or_star)(self)
  if not self:isop(",") then return e end
  local items = { e }
  while self:accept(",") do
    local t = self:peek()
    if t.type == "newline" or (t.type == "op" and (t.value == "=" or t.value == ")" or t.value == ":"))
      or self:isname("in") then break end
    items[#items + 1] = (item or P.expr_or_star)(self)
  end
  return { k = "tuple", items = items, line = first.line }
end

function P:target_list()
  return self:expr_list(function(s)
    local t = s:peek()
    if s:accept("*") then return { k = "starred", e = s:arith(), line = t.line } end
    return s:arith()
  end)
end

-- ---- statements ---------------------------------------------------------------------

function P:end_simple()
  if self:accept(";") then
    if self:peek().type == "newline" then self:next() end
    return
  end
  local t = self:peek()
  if t.type == "newline" then self:next(); return end
  if t.type == "eof" or t.type == "dedent" then return end
  self:err(("expected end of line, found %s"):format(describe(t)))
end

function P:dotted()
  local t = self:next()
  if t.type ~= "name" then self:err("expected a module name", t) end
  local parts = { t.value }
  while self:accept(".") do
    local n = self:next()
    if n.type ~= "name" then self:err("expected a module name", n) end
    parts[#parts + 1] = n.value
  end
  return table.concat(parts, ".")
end

function P:simple_statement()
  local t = self:peek()
  if t.type == "name" then
    local w = t.value
    if w == "import" then
      self:next()
      local names = {}
      repeat
        local mod = self:dotted()
        local as
        if self:accept("as") then as = self:next().value end
        names[#names + 1] = { name = mod, as = as }
      until not self:accept(",")
      return { k = "import", names = names, line = t.line }
    elseif w == "from" then
      self:next()
      local dots = ""
      while self:isop(".") or self:isop("...") do dots = dots .. self:next().value end
      local mod = dots
      if not self:isname("import") then mod = dots .. self:dotted() end
      self:expect("import")
      local names = {}
      local paren = self:accept("(")
      if self:accept("*") then
        names[1] = { name = "*" }
      else
        repeat
          if paren and self:isop(")") then break end
          local n = self:next()
          if n.type ~= "name" then self:err("expected a name to import", n) end
          local as
          if self:accept("as") then as = self:next().value end
          names[#names + 1] = { name = n.value, as = as }
        until not self:accept(",")
      end
      if paren then self:expect(")") end
      return { k = "from", module = mod, names = names, line = t.line }
    elseif w == "pass" then self:next(); return { k = "pass", line = t.line }
    elseif w == "break" or w == "continue" then self:next(); return { k = w, line = t.line }
    elseif w == "return" then
      self:next()
      local v
      local nt = self:peek()
      if nt.type ~= "newline" and nt.type ~= "eof" and not self:isop(";") then v = self:expr_list() end
      return { k = "return", value = v, line = t.line }
    elseif w == "raise" then
      self:next()
      local v
      if self:peek().type ~= "newline" and self:peek().type ~= "eof" then
        v = self:expr()
        if self:accept("from") then self:expr() end
      end
      return { k = "raise", value = v, line = t.line }
    elseif w == "assert" then
      self:next()
      local test = self:expr()
      local msg
      if self:accept(",") then msg = self:expr() end
      return { k = "assert", test = test, msg = msg, line = t.line }
    elseif w == "global" or w == "nonlocal" or w == "del" or w == "yield" then
      -- kept as an unsupported statement: skip to the end of the line
      self:next()
      while self:peek().type ~= "newline" and self:peek().type ~= "eof" do self:next() end
      return { k = "unsupported", keyword = w, line = t.line, last = t.line }
    end
  end
  local e = self:expr_list()
  if self:isop(":") and (e.k == "name" or e.k == "attr" or e.k == "sub") then
    self:next()
    local ann = self:expr()
    local v
    if self:accept("=") then v = self:expr_list() end
    return { k = "annassign", target = e, annotation = ann, value = v, line = t.line }
  end
  local nt = self:peek()
  if nt.type == "op" and nt.value:match("^[-+*/%%&|^@<>]+=$") and nt.value ~= "==" and nt.value ~= "<="
    and nt.value ~= ">=" then
    self:next()
    return { k = "augassign", op = nt.value:sub(1, -2), target = e, value = self:expr_list(), line = t.line }
  end
  if self:isop("=") then
    local targets = { e }
    local value
    while self:accept("=") do
      value = self:expr_list()
      if self:isop("=") then targets[#targets + 1] = value end
    end
    return { k = "assign", targets = targets, value = value, line = t.line }
  end
  return { k = "expr", e = e, line = t.line }
end

-- A block after ':' — an indented suite or statements on the same line.
function P:block()
  self:expect(":")
  -- Python itself refuses more than 20 statically nested blocks
  self.blocks = (self.blocks or 0) + 1
  if self.blocks > 40 then self:err("blocks nested too deeply") end
  local body = self:block_body()
  self.blocks = self.blocks - 1
  return body
end

function P:block_body()
  if self:peek().type == "newline" then
    self:next()
    if self:peek().type ~= "indent" then self:err("expected an indented block") end
    self:next()
    local body = {}
    while self:peek().type ~= "dedent" and self:peek().type ~= "eof" do
      local s = self:statement()
      if s then body[#body + 1] = s end
    end
    self:accept_dedent()
    return body
  end
  local body = {}
  repeat
    local s = self:simple_statement()
    s.last = s.line
    body[#body + 1] = s
  until not (self:accept(";") and self:peek().type ~= "newline")
  if self:peek().type == "newline" then self:next() end
  return body
end

function P:accept_dedent()
  if self:peek().type == "dedent" then self:next() end
end

-- Skips a compound statement the reader does not model, with all its clauses.
function P:skip_compound(keyword, tok)
  local d = 0
  while true do
    local t = self:next()
    if t.type == "eof" then self.i = self.i - 1; break end
    if t.type == "indent" then d = d + 1 end
    if t.type == "dedent" then
      d = d - 1
      if d == 0 then
        local nt = self:peek()
        if not (nt.type == "name" and (nt.value == "except" or nt.value == "else" or nt.value == "finally"
          or nt.value == "elif")) then break end
      end
    end
    if t.type == "newline" and d == 0 then
      local nt = self:peek()
      if nt.type ~= "indent" and not (nt.type == "name" and (nt.value == "except" or nt.value == "else"
        or nt.value == "finally")) then break end
    end
  end
  return { k = "unsupported", keyword = keyword, line = tok.line }
end

function P:params()
  self:expect("(")
  local params = {}
  while not self:isop(")") do
    local kind = ""
    if self:accept("**") then kind = "**" elseif self:accept("*") then kind = "*" end
    if self:accept("/") then goto continue end
    if kind == "*" and self:isop(",") then goto continue end
    do
      local n = self:next()
      if n.type ~= "name" then self:err("expected a parameter name", n) end
      local p = { name = n.value, kind = kind }
      if self:accept(":") then p.annotation = self:expr() end
      if self:accept("=") then p.default = self:expr() end
      params[#params + 1] = p
    end
    ::continue::
    if not self:accept(",") then break end
  end
  self:expect(")")
  return params
end

function P:statement()
  local s = self:statement1()
  -- the last line the statement spans: its closing token (not the newline or dedent after it)
  local j = self.i - 1
  while j > 1 and (self.toks[j].type == "newline" or self.toks[j].type == "dedent"
    or self.toks[j].type == "indent") do j = j - 1 end
  s.last = math.max(s.last or s.line, self.toks[j].endline or self.toks[j].line)
  return s
end

function P:statement1()
  local t = self:peek()
  if t.type == "indent" then self:err("unexpected indent") end
  if t.type == "op" and t.value == "@" then
    local decorators = {}
    while self:accept("@") do
      decorators[#decorators + 1] = self:expr()
      if self:peek().type ~= "newline" then self:err("expected end of line after a decorator") end
      self:next()
    end
    local s = self:statement1()
    s.decorators = decorators
    return s
  end
  if t.type == "name" then
    local w = t.value
    if w == "def" then
      self:next()
      local n = self:next()
      if n.type ~= "name" then self:err("expected a function name", n) end
      local params = self:params()
      local returns
      if self:accept("->") then returns = self:expr() end
      local body = self:block()
      return { k = "def", name = n.value, params = params, returns = returns, body = body, line = t.line }
    elseif w == "if" then
      self:next()
      local tests, bodies = { self:expr() }, {}
      local lines = { t.line }
      bodies[1] = self:block()
      local orelse, else_line
      while true do
        if self:isname("elif") then
          lines[#lines + 1] = self:next().line
          tests[#tests + 1] = self:expr()
          bodies[#bodies + 1] = self:block()
        elseif self:isname("else") then
          else_line = self:next().line
          orelse = self:block()
          break
        else break end
      end
      return { k = "if", tests = tests, bodies = bodies, lines = lines, orelse = orelse, else_line = else_line,
        line = t.line }
    elseif w == "for" then
      self:next()
      local target = self:target_list()
      self:expect("in")
      local iter = self:expr_list()
      local body = self:block()
      if self:isname("else") then self:err("for ... else is not supported") end
      return { k = "for", target = target, iter = iter, body = body, line = t.line }
    elseif w == "with" then
      self:next()
      local items = {}
      repeat
        local e = self:expr()
        local as
        if self:accept("as") then as = self:arith() end
        items[#items + 1] = { expr = e, as = as }
      until not self:accept(",")
      local body = self:block()
      return { k = "with", items = items, body = body, line = t.line }
    elseif w == "try" then
      self:next()
      local body = self:block()
      local handlers, orelse, finalbody = {}, nil, nil
      while self:isname("except") do
        local h = { line = self:next().line }
        if self:isop("*") then self:err("except* is not supported") end
        if not self:isop(":") then
          h.type = self:expr()
          if self:accept("as") then
            local n = self:next()
            if n.type ~= "name" then self:err("expected a name after 'as'", n) end
            h.name = n.value
          end
        end
        h.body = self:block()
        handlers[#handlers + 1] = h
      end
      if #handlers > 0 and self:isname("else") then self:next(); orelse = self:block() end
      if self:isname("finally") then self:next(); finalbody = self:block() end
      if #handlers == 0 and not finalbody then self:err("expected 'except' or 'finally' after try") end
      return { k = "try", body = body, handlers = handlers, orelse = orelse, finalbody = finalbody, line = t.line }
    elseif w == "while" then
      self:next()
      local test = self:expr()
      local body = self:block()
      local orelse
      if self:isname("else") then self:next(); orelse = self:block() end
      return { k = "while", test = test, body = body, orelse = orelse, line = t.line }
    elseif w == "class" then
      -- read (application modules define TypeDecorator subclasses); a migration's own
      -- classes are the converter's to refuse
      self:next()
      local n = self:next()
      if n.type ~= "name" then self:err("expected a class name", n) end
      local bases = { k = "call", args = {}, kwargs = {}, line = t.line }
      if self:accept("(") then bases = self:call_args(nil, t.line) end
      local body = self:block()
      return { k = "class", name = n.value, bases = bases.args, keywords = bases.kwargs, body = body,
        line = t.line }
    elseif w == "async" or (w == "match" and self:peek(1).type == "name") then
      self:next()
      return self:skip_compound(w, t)
    end
  end
  local s = self:simple_statement()
  self:end_simple()
  return s
end

local function new_parser(src, name, depth)
  local toks, comments = tokenize(src, name)
  return setmetatable({ toks = toks, i = 1, name = name, comments = comments, depth = depth or 0 }, P)
end

-- Parses one expression (an f-string's replacement field); line numbers start at `line`.
function M.parse_expression(src, name, line, depth)
  local p = new_parser("(" .. src .. "\n)", name, depth)
  for _, t in ipairs(p.toks) do t.line = t.line + (line or 1) - 1 end
  p.fstring = true
  local e = p:expr()
  if p:peek().type == "newline" then p:next() end
  if p:peek().type ~= "eof" then p:err("invalid expression in f-string") end
  return e
end

local function protected(fn, ...)
  local ok, res = pcall(fn, ...)
  if ok then return res end
  if type(res) == "table" and res.python_error then return nil, res.text end
  error(res, 0)
end

function M.parse(src, name)
  name = name or "<input>"
  return protected(function()
    local p = new_parser(src, name)
    local body = {}
    while p:peek().type ~= "eof" do
      if p:peek().type == "newline" or p:peek().type == "dedent" then
        p:next()
      else
        body[#body + 1] = p:statement()
      end
    end
    return { body = body, comments = p.comments }
  end)
end

return M
