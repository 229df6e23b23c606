---@meta
-- LuaLS annotations for the globals of a luamigrate revision file
-- (<script_location>/versions/<rev>_<slug>.lua) and the settings of luamigrate.lua.
-- Annotations only; the engine never loads this file.

---@alias luamigrate.RevisionList string|string[]|nil

--- This file's revision id (1 to 32 letters, digits or "_").
---@type string
revision = nil

--- The revision(s) this one follows: nil for a base, a table of ids for a merge.
---@type luamigrate.RevisionList
down_revision = nil

--- Branch labels that name this revision's branch (label@head).
---@type luamigrate.RevisionList
branch_labels = nil

--- Revisions that must be applied before this one, without being its parent.
---@type luamigrate.RevisionList
depends_on = nil

--- Applies this revision; the op.* calls run in the revision's transaction.
---@type fun()
upgrade = nil

--- Reverts this revision; the op.* calls run in the revision's transaction.
---@type fun()
downgrade = nil

---@alias luamigrate.LockMode "session"|"xact"|"table"

--- The settings of luamigrate.lua: top-level assignments, paths relative to the file.
---@class luamigrate.Config
---@field script_location? string holds versions/ and helpers (default "migrations")
---@field url? string libpq URI or key=value conninfo (--url and $DATABASE_URL beat it)
---@field version_table? string may be schema.table (default "luamigrate_version")
---@field transaction_per_migration? boolean false: the whole run is one transaction (default true)
---@field pipeline? boolean false: each op's statement waits for its result (default true)
---@field lock_timeout? number seconds to wait for another run's lock (default: forever)
---@field migration_lock_timeout? string|false SET LOCAL lock_timeout in each migration (default "5s"; false: none)
---@field migration_statement_timeout? string SET LOCAL statement_timeout in each migration
---@field lock_retries? number reruns of a migration that hit its lock timeout (default 3)
---@field lock? luamigrate.LockMode how concurrent runs exclude each other (default "session")
---@field lock_lease? number lock = "table": seconds the lease outlives its heartbeat (default 60)
---@field on_changed_file? "warn"|"error" an applied revision file edited since it ran
---@field target_schema? string the declared schema for autogenerate and check (default "schema.lua")
---@field include_schemas? string[] schemas autogenerate compares (default: the current one)
---@field include_name? fun(name: string, kind: string, parent: table?): boolean? false skips the object
---@field include_object? fun(name: string, kind: string, parent: table?): boolean? false skips the object
---@field process_revision_directives? fun(ops: table): table? rewrites the generated operations
---@field lint? luamigrate.LintSettings luamigrate lint: rule levels, a revision to start after
---@field targets? luamigrate.Target[]|fun(): luamigrate.Target[] the fleet that --targets selects from (docs/fleet.md)

---@class luamigrate.Target
---@field name string unique; what --targets PATTERN globs match
---@field url string|nil libpq URI or conninfo (default: the project's)
---@field schema string|nil a schema-per-tenant target: first on search_path, holds its version tables

---@class luamigrate.LintSettings
---@field rules table<string, "off"|"warning"|"error">|nil per rule id (squawk's names, docs/safety.md)
---@field start_after string|nil revisions up to and including this one are not judged
---@field postgres_version integer|nil the server major version an offline lint assumes (default 15)
---@field upgrade "warn"|"error"|"off"|nil what upgrade does with findings before it runs (default "warn")
