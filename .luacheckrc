-- luacheck: lua/ is the shipped code; tests/ are busted specs (long expected strings allowed).
std = "lua54"
max_line_length = 120
files["tests"] = { std = "+busted", max_line_length = false }
