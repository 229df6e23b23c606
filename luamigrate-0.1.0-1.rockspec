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
  CRYPTO = { library = "crypto" }, -- libcrypto's SHA-256 and MD5 (Debian libssl-dev)
  PG_QUERY = { header = "pg_query.h" }, -- PostgreSQL's parser (Debian libpg-query-dev)
}
build = {
  type = "builtin",
  modules = {
    ["luamigrate.core"] = {
      sources = {
        "src/dag.c",
        "src/dag_label.c",
        "src/dag_resolve.c",
        "src/dag_step.c",
        "src/dag_plan.c",
        "src/revset.c",
        "src/error.c",
        "src/conn.c",
        "src/conninfo.c",
        "src/lock.c",
        "src/lockwait.c",
        "src/lease.c",
        "src/version_table.c",
        "src/config.c",
        "src/loader.c",
        "src/revfile.c",
        "src/revcache.c",
        "src/revscan.c",
        "src/journal.c",
        "src/runner.c",
        "src/run_journal.c",
        "src/run_dry.c",
        "src/run_offline.c",
        "src/run_error.c",
        "src/tx.c",
        "src/cli.c",
        "src/cmdargs.c",
        "src/log.c",
        "src/cancel.c",
        "src/checksum.c",
        "src/sqlparse.c",
        "src/pmain.c",
        "src/fleet.c",
        "src/strbuf.c",
        "src/report.c",
        "src/workspace.c",
        "src/newfile.c",
        "src/cmd_migrate.c",
        "src/cmd_status.c",
        "src/cmd_show.c",
        "src/cmd_stamp.c",
        "src/cmd_revision.c",
        "src/cmd_autogen.c",
        "src/cmd_init.c",
        "src/cmd_lint.c",
        "src/cmd_convert.c",
        "src/cmd_repair.c",
        "src/bind/l_core.c",
        "src/bind/l_conn.c",
        "src/bind/l_dag.c",
        "src/bind/l_run.c",
        "src/bind/l_lock.c",
        "src/bind/l_sql.c",
        "src/bind/l_vt.c",
      },
      defines = { 'LM_VERSION="0.1.0"', "_POSIX_C_SOURCE=200809L", "_DEFAULT_SOURCE" },
      incdirs = { "include", "src", "$(PQ_INCDIR)", "$(PQ_INCDIR)/postgresql", "$(CRYPTO_INCDIR)",
        "$(PG_QUERY_INCDIR)" },
      libdirs = { "$(PQ_LIBDIR)", "$(CRYPTO_LIBDIR)", "$(PG_QUERY_LIBDIR)" },
      -- libpg_query is a static, position-independent archive: linked into core.so
      libraries = { "pq", "crypto", "pg_query", "pthread" },
    },
    ["luamigrate.autogen"] = "lua/luamigrate/autogen.lua",
    ["luamigrate.autogen.compare"] = "lua/luamigrate/autogen/compare.lua",
    ["luamigrate.autogen.declared"] = "lua/luamigrate/autogen/declared.lua",
    ["luamigrate.autogen.emit"] = "lua/luamigrate/autogen/emit.lua",
    ["luamigrate.autogen.entities"] = "lua/luamigrate/autogen/entities.lua",
    ["luamigrate.autogen.inspect"] = "lua/luamigrate/autogen/inspect.lua",
    ["luamigrate.autogen.normalize"] = "lua/luamigrate/autogen/normalize.lua",
    ["luamigrate.autogen.schemafile"] = "lua/luamigrate/autogen/schemafile.lua",
    ["luamigrate.config"] = "lua/luamigrate/config.lua",
    ["luamigrate.convert"] = "lua/luamigrate/convert.lua",
    ["luamigrate.dependents"] = "lua/luamigrate/dependents.lua",
    ["luamigrate.entity"] = "lua/luamigrate/entity.lua",
    ["luamigrate.env"] = "lua/luamigrate/env.lua",
    ["luamigrate.expr"] = "lua/luamigrate/expr.lua",
    ["luamigrate.helpers.enum"] = "lua/luamigrate/helpers/enum.lua",
    ["luamigrate.helpers.sync_enum"] = "lua/luamigrate/helpers/sync_enum.lua",
    ["luamigrate.lint"] = "lua/luamigrate/lint.lua",
    ["luamigrate.lint.ast"] = "lua/luamigrate/lint/ast.lua",
    ["luamigrate.lint.column"] = "lua/luamigrate/lint/column.lua",
    ["luamigrate.lint.constraint"] = "lua/luamigrate/lint/constraint.lua",
    ["luamigrate.lint.index"] = "lua/luamigrate/lint/index.lua",
    ["luamigrate.lint.naming"] = "lua/luamigrate/lint/naming.lua",
    ["luamigrate.lint.table"] = "lua/luamigrate/lint/table.lua",
    ["luamigrate.lint.transaction"] = "lua/luamigrate/lint/transaction.lua",
    ["luamigrate.lint.type"] = "lua/luamigrate/lint/type.lua",
    ["luamigrate.offline"] = "lua/luamigrate/offline.lua",
    ["luamigrate.op"] = "lua/luamigrate/op.lua",
    ["luamigrate.options"] = "lua/luamigrate/options.lua",
    ["luamigrate.postgresql"] = "lua/luamigrate/postgresql.lua",
    ["luamigrate.python"] = "lua/luamigrate/python.lua",
    ["luamigrate.quote"] = "lua/luamigrate/quote.lua",
    ["luamigrate.render"] = "lua/luamigrate/render.lua",
    ["luamigrate.revision"] = "lua/luamigrate/revision.lua",
    ["luamigrate.sa"] = "lua/luamigrate/sa.lua",
    ["luamigrate.schema"] = "lua/luamigrate/schema.lua",
    ["luamigrate.sql"] = "lua/luamigrate/sql.lua",
    ["luamigrate.template"] = "lua/luamigrate/template.lua",
    ["luamigrate.typed"] = "lua/luamigrate/typed.lua",
    ["luamigrate.result"] = "lua/luamigrate/result.lua",
    ["luamigrate.inspector"] = "lua/luamigrate/inspector.lua",
    ["luamigrate.py"] = "lua/luamigrate/py.lua",
    ["luamigrate.types"] = "lua/luamigrate/types.lua",
  },
}
