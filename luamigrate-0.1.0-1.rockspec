-- LuaRocks build of the luamigrate Lua module: luamigrate.core (the C core, linking libpq;
-- the host Lua provides the Lua API) and the Lua layer, for a Lua program that runs its
-- migrations in-process:
--   luarocks make --tree DIR luamigrate-0.1.0-1.rockspec
--   require("luamigrate.core").main{ "--url", url, "upgrade", "head" }  --> exit status
-- The C sources are the ones CMakeLists.txt compiles into lm_core (tests/cli/rockspec_spec.lua
-- checks the two lists agree).
rockspec_format = "3.0"
package = "luamigrate"
version = "0.1.0-1"
source = {
  url = "git+https://github.com/luamigrate/luamigrate",
  tag = "v0.1.0",
}
description = {
  summary = "PostgreSQL schema migrations written in Lua, in Alembic's style",
  detailed = [[
luamigrate runs migration files written in Lua 5.4 against PostgreSQL, with an op API
modelled on Alembic's. This rock is the engine as a Lua module: a program can run
luamigrate's commands in-process (require("luamigrate.core").main{...}) at start-up.
]],
  license = "MIT",
}
dependencies = { "lua >= 5.4, < 5.5" }
external_dependencies = {
  PQ = { library = "pq" },
}
build = {
  type = "builtin",
  modules = {
    ["luamigrate.core"] = {
      sources = {
        "src/error.c",
        "src/dag.c",
        "src/conn.c",
        "src/lock.c",
        "src/version_table.c",
        "src/config.c",
        "src/loader.c",
        "src/journal.c",
        "src/runner.c",
        "src/commands.c",
        "src/cli.c",
        "src/log.c",
        "src/cancel.c",
        "src/pmain.c",
        "src/bind/l_core.c",
        "src/bind/l_conn.c",
        "src/bind/l_dag.c",
        "src/bind/l_ctx.c",
        "src/bind/l_lock.c",
      },
      defines = { 'LM_VERSION="0.1.0"', "_POSIX_C_SOURCE=200809L", "_DEFAULT_SOURCE" },
      incdirs = { "include", "src", "$(PQ_INCDIR)", "$(PQ_INCDIR)/postgresql" },
      libdirs = { "$(PQ_LIBDIR)" },
      libraries = { "pq", "pthread" },
    },
    ["luamigrate.autogen"] = "lua/luamigrate/autogen.lua",
    ["luamigrate.config"] = "lua/luamigrate/config.lua",
    ["luamigrate.env"] = "lua/luamigrate/env.lua",
    ["luamigrate.helpers.enum"] = "lua/luamigrate/helpers/enum.lua",
    ["luamigrate.offline"] = "lua/luamigrate/offline.lua",
    ["luamigrate.op"] = "lua/luamigrate/op.lua",
    ["luamigrate.quote"] = "lua/luamigrate/quote.lua",
    ["luamigrate.render"] = "lua/luamigrate/render.lua",
    ["luamigrate.sa"] = "lua/luamigrate/sa.lua",
    ["luamigrate.schema"] = "lua/luamigrate/schema.lua",
    ["luamigrate.template"] = "lua/luamigrate/template.lua",
    ["luamigrate.types"] = "lua/luamigrate/types.lua",
  },
}
