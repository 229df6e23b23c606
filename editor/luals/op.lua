---@meta luamigrate.op
-- LuaLS annotations for luamigrate's `op` API: the global `op` in migration files, and
-- `require "luamigrate.op"` in helpers. Annotations only; the engine never loads this file.

---@alias luamigrate.ColumnList string|string[]
---@alias luamigrate.SqlText string|luamigrate.Text

---@class luamigrate.SchemaOpts
---@field schema? string the schema the object lives in (default: the search_path's)

---@class luamigrate.CreateEnumOpts : luamigrate.SchemaOpts
---@field if_not_exists? boolean do nothing when the type exists

---@class luamigrate.DropOpts : luamigrate.SchemaOpts
---@field if_exists? boolean do nothing when the object is missing
---@field cascade? boolean drop dependent objects too

---@class luamigrate.AddEnumValueOpts : luamigrate.SchemaOpts
---@field before? string place the value before this one
---@field after? string place the value after this one
---@field if_not_exists? boolean do nothing when the value exists

---@class luamigrate.CreateTableOpts : luamigrate.SchemaOpts
---@field if_not_exists? boolean CREATE TABLE IF NOT EXISTS
---@field comment? string the table's comment
---@field postgresql_partition_by? string PARTITION BY clause, e.g. "RANGE (created_at)"
---@field postgresql_inherits? string INHERITS (parent)
---@field postgresql_with? table storage parameters

---@class luamigrate.AddColumnOpts : luamigrate.SchemaOpts
---@field if_not_exists? boolean ADD COLUMN IF NOT EXISTS

---@class luamigrate.DropColumnOpts : luamigrate.DropOpts
---@field existing_type? luamigrate.TypeArg accepted for Alembic parity, unused
---@field existing_server_default? any accepted for Alembic parity, unused
---@field existing_nullable? boolean accepted for Alembic parity, unused
---@field existing_comment? string accepted for Alembic parity, unused

---@class luamigrate.AlterColumnOpts : luamigrate.SchemaOpts
---@field type_? luamigrate.TypeArg new type (ALTER COLUMN ... TYPE)
---@field postgresql_using? luamigrate.SqlText USING expression for the type change
---@field nullable? boolean false: SET NOT NULL; true: DROP NOT NULL
---@field server_default? string|luamigrate.Text|luamigrate.Identity|false new default; false or op.DROP_DEFAULT drops it
---@field new_column_name? string rename the column
---@field comment? string|false new comment; false removes it
---@field existing_type? luamigrate.TypeArg the current type (documentation only)
---@field existing_server_default? any the current default (documentation only)
---@field existing_nullable? boolean the current nullability (documentation only)
---@field existing_comment? string the current comment (documentation only)
---@field autoincrement? boolean accepted for Alembic parity
---@field existing_autoincrement? boolean accepted for Alembic parity

---@class luamigrate.IndexOpts : luamigrate.SchemaOpts
---@field unique? boolean CREATE UNIQUE INDEX
---@field if_not_exists? boolean CREATE INDEX IF NOT EXISTS
---@field postgresql_where? luamigrate.SqlText partial index predicate
---@field postgresql_using? string index method, e.g. "gin"
---@field postgresql_include? string[] INCLUDE columns
---@field postgresql_concurrently? boolean CONCURRENTLY (inside op.autocommit_block)
---@field postgresql_with? table storage parameters
---@field postgresql_ops? table<string, string> operator class per column
---@field postgresql_nulls_not_distinct? boolean NULLS NOT DISTINCT (true) or NULLS DISTINCT (false), PostgreSQL 15

---@class luamigrate.DropIndexOpts : luamigrate.DropOpts
---@field table_name? string accepted for Alembic parity
---@field postgresql_concurrently? boolean DROP INDEX CONCURRENTLY
---@field postgresql_where? any accepted and ignored, as by Alembic (autogenerate writes it into downgrades)
---@field postgresql_using? string accepted and ignored
---@field postgresql_ops? table accepted and ignored

---@class luamigrate.DeferrableOpts
---@field deferrable? boolean DEFERRABLE
---@field initially? string "DEFERRED" or "IMMEDIATE"

---@class luamigrate.UniqueOpts : luamigrate.SchemaOpts, luamigrate.DeferrableOpts
---@field postgresql_nulls_not_distinct? boolean UNIQUE NULLS NOT DISTINCT

---@class luamigrate.ForeignKeyOpts : luamigrate.DeferrableOpts
---@field ondelete? string ON DELETE action, e.g. "CASCADE"
---@field onupdate? string ON UPDATE action
---@field match? string MATCH type, e.g. "FULL"
---@field source_schema? string the source table's schema
---@field referent_schema? string the referenced table's schema
---@field postgresql_not_valid? boolean NOT VALID

---@class luamigrate.CheckOpts : luamigrate.SchemaOpts
---@field postgresql_not_valid? boolean NOT VALID

---@class luamigrate.ExcludeOpts : luamigrate.SchemaOpts, luamigrate.DeferrableOpts
---@field using? string index method (default "gist")
---@field where? luamigrate.SqlText predicate

---@class luamigrate.DropConstraintOpts : luamigrate.DropOpts
---@field type_? string accepted for Alembic parity ("foreignkey", "unique", ...)

---@class luamigrate.TableCommentOpts : luamigrate.SchemaOpts
---@field existing_comment? string the current comment (documentation only)

---@class luamigrate.BulkInsertOpts : luamigrate.SchemaOpts
---@field multiinsert? boolean false: one INSERT per row (default: one multi-row INSERT)

---@class luamigrate.InlineLiteral
---@field kind "inline_literal"
---@field value any

---@class luamigrate.Connection
local Connection = {}

--- Runs a statement with `$1, $2, ...` bound to the extra arguments (or an sa statement, or sa.text with named values).
---@param sql string|luamigrate.Statement|luamigrate.Text
---@param ... any parameters bound as $1, $2, ... (nil is NULL); with sa.text, one table of named values
---@return integer affected rows affected (0 when the command reports none)
function Connection:execute(sql, ...) end

--- Runs a query with `$1, $2, ...` bound to the extra arguments (or an sa statement, or sa.text with named values).
---@param sql string|luamigrate.Statement|luamigrate.Text
---@param ... any parameters bound as $1, $2, ... (nil is NULL); with sa.text, one table of named values
---@return table<string, any>[] rows each row keyed by column name, typed: NULL is nil, booleans, integers, floats, numeric as exact strings, json decoded, arrays as sequences
function Connection:query(sql, ...) end

--- The transaction state: "idle", "active", "intrans", "inerror", "unknown", "closed" or "offline".
---@return string
function Connection:status() end

--- Runs a statement and returns its result with SQLAlchemy's methods (fetchone, fetchall, first, scalar, scalars, rowcount, ...).
---@param sql string|luamigrate.Statement|luamigrate.Text
---@param ... any parameters bound as $1, $2, ... (nil is NULL); with sa.text, one table of named values
---@return luamigrate.Result result the rows not yet fetched are its sequence; in --sql mode reading it is an error
function Connection:result(sql, ...) end

---@class luamigrate.Connection
---@field engine luamigrate.Connection SQLAlchemy's connection.engine: the connection itself

---@class luamigrate.Row
---@field _mapping table<string, any> the values keyed by column name
---@field _fields string[] the column names, in order

---@class luamigrate.Result
---@field rowcount integer the rows the statement returned or affected
---@field fetchone fun(self: luamigrate.Result): luamigrate.Row|nil
---@field fetchmany fun(self: luamigrate.Result, size?: integer): luamigrate.Row[]
---@field fetchall fun(self: luamigrate.Result): luamigrate.Row[]
---@field all fun(self: luamigrate.Result): luamigrate.Row[]
---@field first fun(self: luamigrate.Result): luamigrate.Row|nil
---@field one fun(self: luamigrate.Result): luamigrate.Row
---@field one_or_none fun(self: luamigrate.Result): luamigrate.Row|nil
---@field scalar fun(self: luamigrate.Result): any
---@field scalar_one fun(self: luamigrate.Result): any
---@field scalar_one_or_none fun(self: luamigrate.Result): any
---@field scalars fun(self: luamigrate.Result, index?: integer|string): luamigrate.Result
---@field mappings fun(self: luamigrate.Result): luamigrate.Result
---@field keys fun(self: luamigrate.Result): string[]

---@class luamigrate.op
op = {}

--- Runs SQL; with a plain string, params bind as $1, $2, ...; with sa.text, :name binds; an sa statement binds its own values.
---@param sql luamigrate.SqlText|luamigrate.Statement
---@param params? table positional values ({..., n = N} for trailing nils) or, with sa.text, named values
---@return integer affected rows affected (0 in --sql mode)
function op.execute(sql, params) end

--- The migration's connection; in --sql mode a stand-in that writes statements and refuses to read.
---@return luamigrate.Connection
function op.get_bind() end

--- The -x KEY=VALUE pairs given on the command line.
---@return table<string, string>
function op.get_x_argument() end

--- A value rendered inline as an SQL literal (safe in --sql mode).
---@param value any
---@return luamigrate.InlineLiteral
function op.inline_literal(value) end

--- Commits the migration's transaction, runs fn outside any transaction, then begins a new one.
---@param fn fun()
function op.autocommit_block(fn) end

--- Creates an entity (sa.View, sa.MaterializedView, sa.Function, sa.Procedure, sa.Trigger).
---@param entity luamigrate.Entity
function op.create_entity(entity) end

--- Replaces an entity's definition: CREATE OR REPLACE where PostgreSQL has it, else a drop and a create.
---@param entity luamigrate.Entity
function op.replace_entity(entity) end

--- Drops an entity.
---@param entity luamigrate.Entity
---@param opts? {if_exists?: boolean, cascade?: boolean}
function op.drop_entity(entity, opts) end

--- ALTER DOMAIN: a new default (false drops it), NOT NULL set or dropped, checks dropped and added.
---@param name string
---@param opts? {schema?: string, default?: string|false, not_null?: boolean, drop_constraints?: string[], add_constraints?: table<string, string>}
function op.alter_domain(name, opts) end

--- ALTER TYPE name DROP/ALTER/ADD ATTRIBUTE ..., one statement for a composite type.
---@param name string
---@param opts? {schema?: string, drop_attributes?: string[], alter_attributes?: {[1]: string, [2]: string|luamigrate.Type}[], add_attributes?: {[1]: string, [2]: string|luamigrate.Type}[], cascade?: boolean}
function op.alter_composite_type(name, opts) end

--- ALTER TABLE ... VALIDATE CONSTRAINT name (for one added NOT VALID earlier).
---@param name string
---@param table_name string
---@param opts? luamigrate.SchemaOpts
function op.validate_constraint(name, table_name, opts) end

--- CREATE INDEX CONCURRENTLY IF NOT EXISTS, in its own autocommit block.
---@param name string?
---@param table_name string
---@param columns string|(string|luamigrate.SqlText)[]
---@param opts? luamigrate.IndexOpts
function op.create_index_concurrently(name, table_name, columns, opts) end

--- DROP INDEX CONCURRENTLY IF EXISTS, in its own autocommit block.
---@param name string
---@param opts? table schema, table_name, if_exists (default true)
function op.drop_index_concurrently(name, opts) end

--- SET NOT NULL through a validated CHECK constraint, without a scan under ACCESS EXCLUSIVE.
---@param table_name string
---@param column_name string
---@param opts? table schema, name (of the temporary check constraint)
function op.set_not_null(table_name, column_name, opts) end

--- Fills existing rows in committed batches outside the migration's transaction.
---@param table_name string
---@param opts table set (column = SQL expression or value), where (SQL: rows still to fill), batch_size, schema
function op.backfill(table_name, opts) end

--- Runs fn; `luamigrate lint` reports the findings of these rules on its statements as allowed.
---@param rules string|string[] rule ids, e.g. "ban-drop-column"
---@param fn fun()
---@return any
function op.allow(rules, fn) end

--- CREATE TYPE name AS ENUM (values...).
---@param name string
---@param values string[]
---@param opts? luamigrate.CreateEnumOpts
function op.create_enum(name, values, opts) end

--- DROP TYPE name.
---@param name string
---@param opts? luamigrate.DropOpts
function op.drop_enum(name, opts) end

--- ALTER TYPE name ADD VALUE value.
---@param name string
---@param value string
---@param opts? luamigrate.AddEnumValueOpts
function op.add_enum_value(name, value, opts) end

--- ALTER TYPE name RENAME VALUE old TO new.
---@param name string
---@param old string
---@param new string
---@param opts? luamigrate.SchemaOpts
function op.rename_enum_value(name, old, new, opts) end

--- CREATE TABLE from columns, constraints and indexes (enum types are created first).
---@param name string
---@param ... luamigrate.Column|luamigrate.Constraint|luamigrate.Index|luamigrate.CreateTableOpts columns, constraints, indexes, then an optional options table
---@return luamigrate.LightTable table a sa.table() for op.bulk_insert
function op.create_table(name, ...) end

--- DROP TABLE name.
---@param name string
---@param ... any Alembic's optional positional parameters (schema), then the options table (luamigrate.DropOpts)
function op.drop_table(name, ...) end

--- ALTER TABLE old RENAME TO new.
---@param old string
---@param new string
---@param ... any Alembic's optional positional parameters (schema), then the options table (luamigrate.SchemaOpts)
function op.rename_table(old, new, ...) end

--- ALTER TABLE ... ADD COLUMN from a sa.Column.
---@param table_name string
---@param column luamigrate.Column
---@param ... any Alembic's optional positional parameters (schema), then the options table (luamigrate.AddColumnOpts)
function op.add_column(table_name, column, ...) end

--- ALTER TABLE ... DROP COLUMN.
---@param table_name string
---@param column_name string
---@param ... any Alembic's optional positional parameters (schema), then the options table (luamigrate.DropColumnOpts)
function op.drop_column(table_name, column_name, ...) end

--- Passed as server_default (or comment) to op.alter_column: drop the default (or comment).
---@type table
op.DROP_DEFAULT = {}

--- ALTER TABLE ... ALTER COLUMN: type, nullability, default, comment, then rename.
---@param table_name string
---@param column_name string
---@param ... any Alembic's optional positional parameters (nullable, comment, server_default, new_column_name, type_, existing_type, existing_server_default, existing_nullable, existing_comment, schema), then the options table (luamigrate.AlterColumnOpts)
function op.alter_column(table_name, column_name, ...) end

--- CREATE INDEX; name nil gives ix_<table>_<columns>.
---@param name string|nil
---@param table_name string
---@param columns luamigrate.ColumnList|luamigrate.Text|(string|luamigrate.Text)[]
---@param ... any Alembic's optional positional parameters (schema, unique), then the options table (luamigrate.IndexOpts)
function op.create_index(name, table_name, columns, ...) end

--- DROP INDEX name.
---@param name string
---@param ... any Alembic's optional positional parameters (table_name, schema), then the options table (luamigrate.DropIndexOpts)
function op.drop_index(name, ...) end

--- ALTER TABLE ... ADD CONSTRAINT name PRIMARY KEY (columns).
---@param name string|nil
---@param table_name string
---@param columns luamigrate.ColumnList
---@param ... any Alembic's optional positional parameters (schema), then the options table (luamigrate.SchemaOpts)
function op.create_primary_key(name, table_name, columns, ...) end

--- ALTER TABLE ... ADD CONSTRAINT name UNIQUE (columns).
---@param name string|nil
---@param table_name string
---@param columns luamigrate.ColumnList
---@param ... any Alembic's optional positional parameters (schema), then the options table (luamigrate.UniqueOpts)
function op.create_unique_constraint(name, table_name, columns, ...) end

--- ALTER TABLE source ADD CONSTRAINT name FOREIGN KEY (local_cols) REFERENCES referent (remote_cols).
---@param name string|nil
---@param source string
---@param referent string
---@param local_cols luamigrate.ColumnList
---@param remote_cols luamigrate.ColumnList
---@param ... any Alembic's optional positional parameters (onupdate, ondelete, deferrable, initially, match, source_schema, referent_schema), then the options table (luamigrate.ForeignKeyOpts)
function op.create_foreign_key(name, source, referent, local_cols, remote_cols, ...) end

--- ALTER TABLE ... ADD CONSTRAINT name CHECK (condition).
---@param name string|nil
---@param table_name string
---@param condition luamigrate.SqlText
---@param ... any Alembic's optional positional parameters (schema), then the options table (luamigrate.CheckOpts)
function op.create_check_constraint(name, table_name, condition, ...) end

--- ALTER TABLE ... ADD CONSTRAINT name EXCLUDE USING gist ({column, operator}, ...).
---@param name string|nil
---@param table_name string
---@param ... {[1]: string|luamigrate.Text, [2]: string}|luamigrate.ExcludeOpts elements, then an optional options table
function op.create_exclude_constraint(name, table_name, ...) end

--- ALTER TABLE ... DROP CONSTRAINT name.
---@param name string
---@param table_name string
---@param ... any Alembic's optional positional parameters (type_, schema), then the options table (luamigrate.DropConstraintOpts)
function op.drop_constraint(name, table_name, ...) end

--- COMMENT ON TABLE ... IS comment.
---@param table_name string
---@param comment string
---@param ... any Alembic's optional positional parameters (existing_comment, schema), then the options table (luamigrate.TableCommentOpts)
function op.create_table_comment(table_name, comment, ...) end

--- COMMENT ON TABLE ... IS NULL.
---@param table_name string
---@param ... any Alembic's optional positional parameters (existing_comment, schema), then the options table (luamigrate.TableCommentOpts)
function op.drop_table_comment(table_name, ...) end

--- INSERTs rows (tables keyed by column name) with the values as literals.
---@param tbl luamigrate.LightTable|string a sa.table(...) or a table name
---@param rows table<string, any>[]
---@param ... any Alembic's optional positional parameters (multiinsert), then the options table (luamigrate.BulkInsertOpts)
function op.bulk_insert(tbl, rows, ...) end

--- Adds op.<name>, calling fn(op, ...): how projects add their own operations.
---@param name string
---@param fn fun(op: luamigrate.op, ...): any
function op.register(name, fn) end

--- Alembic's batch mode: fn(batch_op) runs batch_op.add_column(column), .alter_column(name, {...}),
--- .drop_column(name), .create_index(name, columns, {...}), .drop_constraint(name, type_), ... on this
--- table; on PostgreSQL a plain series of ALTERs.
---@param table_name string
---@param ... any optional schema, recreate, ... (or an options table), then function(batch_op)
function op.batch_alter_table(table_name, ...) end

--- Marks a name as final (SQLAlchemy's conv): used as given, or, when longer than 63 characters,
--- shortened as SQLAlchemy shortens it (55 characters, "_", 4 hex digits of its MD5).
---@param name string
---@return string
function op.f(name) end

return op
