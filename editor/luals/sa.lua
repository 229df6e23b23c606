---@meta luamigrate.sa
-- LuaLS annotations for luamigrate's `sa`: column types and schema objects under
-- SQLAlchemy's names (the global `sa` in migration files and schema.lua, and
-- `require "luamigrate.sa"` in helpers). Annotations only; the engine never loads this file.

---@class luamigrate.Type
---@field kind string the SQLAlchemy name, e.g. "String"
local Type = {}

--- The type's PostgreSQL spelling, e.g. "VARCHAR(50)".
---@return string
function Type:sql() end

---@alias luamigrate.TypeArg luamigrate.Type|string a type object, bare or called, or raw SQL

---@class luamigrate.SimpleType : luamigrate.Type
---@overload fun(): luamigrate.Type

---@class luamigrate.StringType : luamigrate.Type
---@field length? integer
---@overload fun(length?: integer): luamigrate.StringType

---@class luamigrate.NumericType : luamigrate.Type
---@field precision? integer
---@field scale? integer
---@overload fun(precision?: integer, scale?: integer): luamigrate.NumericType

---@class luamigrate.TimeType : luamigrate.Type
---@field timezone boolean
---@overload fun(opts?: {timezone?: boolean}): luamigrate.TimeType

---@class luamigrate.TypeCtor : luamigrate.Type
---@overload fun(...: any): luamigrate.Type SQLAlchemy's positional parameters, then an options table

---@class luamigrate.ArrayType : luamigrate.Type
---@field item_type luamigrate.TypeArg
---@overload fun(item_type: luamigrate.TypeArg): luamigrate.ArrayType

---@class luamigrate.EnumOpts
---@field name string the type's name (required)
---@field schema? string
---@field create_type? boolean false: op.create_table does not create the type

---@class luamigrate.EnumType : luamigrate.Type
---@field name string
---@field schema? string
---@field values string[]
---@field create_type boolean
---@overload fun(...: string|luamigrate.EnumOpts): luamigrate.EnumType
local EnumType = {}

--- CREATE TYPE for this enum (checkfirst: only when missing), as SQLAlchemy's Enum.create.
---@param bind? luamigrate.Connection op.get_bind(), or nil
---@param opts? {checkfirst?: boolean}
function EnumType:create(bind, opts) end

--- DROP TYPE for this enum (checkfirst: only when present).
---@param bind? luamigrate.Connection op.get_bind(), or nil
---@param opts? {checkfirst?: boolean}
function EnumType:drop(bind, opts) end

---@class luamigrate.Text
---@field kind "text"
---@field text string
---@field params table<string, any>
local Text = {}

--- A copy of this text with more :name bind values.
---@param params table<string, any>
---@return luamigrate.Text
function Text:bindparams(params) end

---@class luamigrate.ColumnOpts
---@field primary_key? boolean
---@field nullable? boolean default: not primary_key
---@field unique? boolean
---@field index? boolean also create ix_<table>_<column>
---@field server_default? string|luamigrate.Text|luamigrate.InlineLiteral the column's DEFAULT
---@field comment? string
---@field autoincrement? boolean
---@field default? any accepted for SQLAlchemy parity (client-side; unused)
---@field doc? string accepted for SQLAlchemy parity
---@field key? string accepted for SQLAlchemy parity
---@field info? table accepted for SQLAlchemy parity
---@field quote? boolean accepted for SQLAlchemy parity
---@field system? boolean accepted for SQLAlchemy parity

---@class luamigrate.Column
---@field kind "Column"
---@field name string
---@field type luamigrate.TypeArg
---@field nullable boolean
---@field primary_key boolean
---@field foreign_keys luamigrate.ForeignKey[]

---@class luamigrate.ForeignKeyOptions : luamigrate.DeferrableOpts
---@field name? string constraint name
---@field ondelete? string
---@field onupdate? string
---@field match? string
---@field use_alter? boolean accepted for SQLAlchemy parity

---@class luamigrate.ForeignKey
---@field kind "ForeignKey"
---@field schema? string
---@field table string
---@field column string

---@class luamigrate.Identity
---@field kind "Identity"
---@field always? boolean GENERATED ALWAYS (default: BY DEFAULT)

---@class luamigrate.Computed
---@field kind "Computed"
---@field sqltext luamigrate.SqlText

---@class luamigrate.Constraint
---@field kind string "PrimaryKeyConstraint", "UniqueConstraint", "CheckConstraint" or "ForeignKeyConstraint"
---@field name? string

---@class luamigrate.Index
---@field kind "Index"
---@field name string
---@field expressions (string|luamigrate.Text)[]

---@class luamigrate.MetaData
---@field kind "MetaData"
---@field schema? string
---@field naming_convention table<string, string>
---@field tables table<string, luamigrate.Table>
---@field entities luamigrate.Entity[]
---@field enums luamigrate.Type[] enums registered (declared even when no column uses them)
---@field register fun(self: luamigrate.MetaData, ...: luamigrate.Entity|luamigrate.Type): luamigrate.Entity declares entities (views, functions, triggers, types) and enums for autogenerate

---@class luamigrate.Entity
---@field entity "View"|"MaterializedView"|"Function"|"Procedure"|"Trigger"|"Policy"|"RowLevelSecurity"|"Extension"|"Sequence"|"Grant"|"Partition"|"Domain"|"CompositeType"|"RangeType"
---@field name string the name (a routine's: its signature)
---@field schema? string
---@field definition string the SQL after the name
---@field table? string a trigger's, policy's or grant's table
---@field with_data? boolean a materialized view's
---@field indexes? (luamigrate.Index|string)[] a materialized view's
---@field sorted luamigrate.Table[] tables in declaration order

---@class luamigrate.Table
---@field kind "Table"
---@field name string
---@field schema? string
---@field columns luamigrate.Column[]
---@field constraints luamigrate.Constraint[]
---@field indexes luamigrate.Index[]

---@alias luamigrate.Value string|number|boolean|luamigrate.Expression|luamigrate.Text

---@class luamigrate.Expression an SQL expression: SQLAlchemy's operators as methods
local Expression = {}
--- = (IS NULL for nil).
---@param other luamigrate.Value|nil
---@return luamigrate.Expression
function Expression:eq(other) end
--- != (IS NOT NULL for nil).
---@param other luamigrate.Value|nil
---@return luamigrate.Expression
function Expression:ne(other) end
--- <.
---@param other luamigrate.Value
---@return luamigrate.Expression
function Expression:lt(other) end
--- <=.
---@param other luamigrate.Value
---@return luamigrate.Expression
function Expression:le(other) end
--- >.
---@param other luamigrate.Value
---@return luamigrate.Expression
function Expression:gt(other) end
--- >=.
---@param other luamigrate.Value
---@return luamigrate.Expression
function Expression:ge(other) end
--- IS (IS NULL for nil).
---@param other? luamigrate.Value
---@return luamigrate.Expression
function Expression:is_(other) end
--- IS NOT (IS NOT NULL for nil).
---@param other? luamigrate.Value
---@return luamigrate.Expression
function Expression:is_not(other) end
--- IN (list) or IN (select).
---@param list luamigrate.Value[]|luamigrate.Statement
---@return luamigrate.Expression
function Expression:in_(list) end
--- NOT IN.
---@param list luamigrate.Value[]|luamigrate.Statement
---@return luamigrate.Expression
function Expression:not_in(list) end
--- LIKE.
---@param pattern luamigrate.Value
---@return luamigrate.Expression
function Expression:like(pattern) end
--- ILIKE.
---@param pattern luamigrate.Value
---@return luamigrate.Expression
function Expression:ilike(pattern) end
--- NOT LIKE.
---@param pattern luamigrate.Value
---@return luamigrate.Expression
function Expression:not_like(pattern) end
--- LIKE s || '%'.
---@param s luamigrate.Value
---@return luamigrate.Expression
function Expression:startswith(s) end
--- LIKE '%' || s.
---@param s luamigrate.Value
---@return luamigrate.Expression
function Expression:endswith(s) end
--- LIKE '%' || s || '%'.
---@param s luamigrate.Value
---@return luamigrate.Expression
function Expression:contains(s) end
--- BETWEEN lo AND hi.
---@param lo luamigrate.Value
---@param hi luamigrate.Value
---@return luamigrate.Expression
function Expression:between(lo, hi) end
--- expr AS name (in a select).
---@param name string
---@return luamigrate.Expression
function Expression:label(name) end
--- ORDER BY ... DESC.
---@return luamigrate.Expression
function Expression:desc() end
--- ORDER BY ... ASC.
---@return luamigrate.Expression
function Expression:asc() end

---@class luamigrate.Statement : luamigrate.Expression an INSERT, UPDATE, DELETE or SELECT
local Statement = {}
--- Adds WHERE conditions (ANDed)..
---@param ... luamigrate.Expression
---@return luamigrate.Statement
function Statement:where(...) end
--- The values to set: {col = v} (or a list of such for a multi-row insert)..
---@param values table
---@return luamigrate.Statement
function Statement:values(values) end
--- RETURNING ....
---@param ... luamigrate.Expression
---@return luamigrate.Statement
function Statement:returning(...) end
--- ORDER BY ....
---@param ... luamigrate.Expression
---@return luamigrate.Statement
function Statement:order_by(...) end
--- LIMIT n.
---@param n integer
---@return luamigrate.Statement
function Statement:limit(n) end
--- FROM this table.
---@param t luamigrate.LightTable
---@return luamigrate.Statement
function Statement:select_from(t) end

---@class luamigrate.LightColumn : luamigrate.Expression
---@field kind "column"
---@field name string
---@field type? luamigrate.TypeArg

---@class luamigrate.LightTable
---@field kind "table"
---@field name string
---@field schema? string
---@field columns luamigrate.LightColumn[]
---@field c table<string, luamigrate.LightColumn> the columns by name: t.c.status
local LightTable = {}
--- INSERT INTO this table.
---@return luamigrate.Statement
function LightTable:insert() end
--- UPDATE this table.
---@return luamigrate.Statement
function LightTable:update() end
--- DELETE FROM this table.
---@return luamigrate.Statement
function LightTable:delete() end
--- SELECT its columns.
---@return luamigrate.Statement
function LightTable:select() end

---@class luamigrate.sa
sa = {}

--- INTEGER.
---@type luamigrate.SimpleType
sa.Integer = {}

--- BIGINT.
---@type luamigrate.SimpleType
sa.BigInteger = {}

--- SMALLINT.
---@type luamigrate.SimpleType
sa.SmallInteger = {}

--- VARCHAR or VARCHAR(length).
---@type luamigrate.StringType
sa.String = {}

--- TEXT.
---@type luamigrate.SimpleType
sa.Text = {}

--- BOOLEAN.
---@type luamigrate.SimpleType
sa.Boolean = {}

--- DATE.
---@type luamigrate.SimpleType
sa.Date = {}

--- TIMESTAMP WITHOUT TIME ZONE, or WITH TIME ZONE given {timezone = true}.
---@type luamigrate.TimeType
sa.DateTime = {}

--- TIME WITHOUT TIME ZONE, or WITH TIME ZONE given {timezone = true}.
---@type luamigrate.TimeType
sa.Time = {}

--- INTERVAL.
---@type luamigrate.SimpleType
sa.Interval = {}

--- NUMERIC, NUMERIC(precision) or NUMERIC(precision, scale).
---@type luamigrate.NumericType
sa.Numeric = {}

--- FLOAT.
---@type luamigrate.SimpleType
sa.Float = {}

--- BYTEA.
---@type luamigrate.SimpleType
sa.LargeBinary = {}

--- JSON.
---@type luamigrate.SimpleType
sa.JSON = {}

--- JSONB.
---@type luamigrate.SimpleType
sa.JSONB = {}

--- UUID.
---@type luamigrate.SimpleType
sa.UUID = {}

--- item_type[]: sa.ARRAY(sa.Integer).
---@type luamigrate.ArrayType
sa.ARRAY = {}

--- CHAR; parameters in order: length, collation.
---@type luamigrate.TypeCtor
sa.CHAR = {}

--- DATE.
---@type luamigrate.SimpleType
sa.DATE = {}

--- DECIMAL; parameters in order: precision, scale, decimal_return_scale, asdecimal.
---@type luamigrate.TypeCtor
sa.DECIMAL = {}

--- DOUBLE PRECISION; parameters in order: precision, asdecimal, decimal_return_scale.
---@type luamigrate.TypeCtor
sa.DOUBLE_PRECISION = {}

--- DOUBLE PRECISION; parameters in order: precision, asdecimal, decimal_return_scale.
---@type luamigrate.TypeCtor
sa.Double = {}

--- FLOAT; parameters in order: precision, asdecimal, decimal_return_scale.
---@type luamigrate.TypeCtor
sa.FLOAT = {}

--- INTEGER.
---@type luamigrate.SimpleType
sa.INT = {}

--- NCHAR; parameters in order: length, collation.
---@type luamigrate.TypeCtor
sa.NCHAR = {}

--- NUMERIC; parameters in order: precision, scale, decimal_return_scale, asdecimal.
---@type luamigrate.TypeCtor
sa.NUMERIC = {}

--- REAL; parameters in order: precision, asdecimal, decimal_return_scale.
---@type luamigrate.TypeCtor
sa.REAL = {}

--- SMALLINT.
---@type luamigrate.SimpleType
sa.SMALLINT = {}

--- TIME WITHOUT TIME ZONE; parameters in order: timezone.
---@type luamigrate.TypeCtor
sa.TIME = {}

--- TIMESTAMP WITHOUT TIME ZONE; parameters in order: timezone.
---@type luamigrate.TypeCtor
sa.TIMESTAMP = {}

--- UUID; parameters in order: as_uuid, native_uuid.
---@type luamigrate.TypeCtor
sa.Uuid = {}

--- A named enum type: sa.Enum("A", "B", {name = "role_enum"}) or sa.Enum({"A", "B"}, {name = ...}).
---@type luamigrate.EnumType
sa.Enum = {}

--- Alias of sa.String.
---@type luamigrate.StringType
sa.Unicode = {}

--- Alias of sa.Text.
---@type luamigrate.SimpleType
sa.UnicodeText = {}

--- Alias of sa.String.
---@type luamigrate.StringType
sa.VARCHAR = {}

--- Alias of sa.Text.
---@type luamigrate.SimpleType
sa.TEXT = {}

--- Alias of sa.Integer.
---@type luamigrate.SimpleType
sa.INTEGER = {}

--- Alias of sa.BigInteger.
---@type luamigrate.SimpleType
sa.BIGINT = {}

--- Alias of sa.Boolean.
---@type luamigrate.SimpleType
sa.BOOLEAN = {}

--- A column: sa.Column(name, type, [sa.ForeignKey...], [sa.Identity], [sa.Computed], {options}).
---@param name string
---@param ... luamigrate.TypeArg|luamigrate.ForeignKey|luamigrate.Identity|luamigrate.Computed|luamigrate.ColumnOpts
---@return luamigrate.Column
function sa.Column(name, ...) end

--- A column-level REFERENCES "table.column" or "schema.table.column".
---@param target string
---@param opts? luamigrate.ForeignKeyOptions
---@return luamigrate.ForeignKey
function sa.ForeignKey(target, opts) end

--- GENERATED {ALWAYS | BY DEFAULT} AS IDENTITY for a column.
---@param ... any SQLAlchemy's positionals (always, on_null, start, increment, minvalue, maxvalue, nominvalue, nomaxvalue, cycle, cache, order), then {always?: boolean, start?: integer, increment?: integer, minvalue?: integer, maxvalue?: integer, cycle?: boolean, cache?: integer, on_null?: boolean}
---@return luamigrate.Identity
function sa.Identity(...) end

--- GENERATED ALWAYS AS (sqltext) STORED for a column (PostgreSQL has no virtual ones).
---@param sqltext luamigrate.SqlText
---@param ... any persisted (true), then {persisted?: true}
---@return luamigrate.Computed
function sa.Computed(sqltext, ...) end

--- PRIMARY KEY (columns...).
---@param ... string|{name?: string} column names, then an optional {name = ...}
---@return luamigrate.Constraint
function sa.PrimaryKeyConstraint(...) end

--- UNIQUE (columns...).
---@param ... string|luamigrate.UniqueOpts column names, then optional options
---@return luamigrate.Constraint
function sa.UniqueConstraint(...) end

--- CHECK (sqltext).
---@param sqltext luamigrate.SqlText
---@param ... any name, deferrable, initially, then {name?: string, deferrable?: boolean, initially?: string}
---@return luamigrate.Constraint
function sa.CheckConstraint(sqltext, ...) end

--- FOREIGN KEY (cols) REFERENCES the "table.column" targets in refcols.
---@param cols string[]
---@param refcols string[]
---@param ... any name, onupdate, ondelete, deferrable, initially, use_alter, link_to_name, match, then luamigrate.ForeignKeyOptions
---@return luamigrate.Constraint
function sa.ForeignKeyConstraint(cols, refcols, ...) end

--- An index on columns or sa.text expressions, inside sa.Table or op.create_table.
---@param name string
---@param ... string|luamigrate.Text|luamigrate.IndexOpts expressions, then optional options
---@return luamigrate.Index
function sa.Index(name, ...) end

--- Raw SQL with optional :name bind values.
---@param sql string
---@param params? table<string, any>
---@return luamigrate.Text
function sa.text(sql, params) end

--- A lightweight table for data migrations and op.bulk_insert: sa.table(name, sa.column(...)..., {schema = ...}).
---@param name string
---@param ... luamigrate.LightColumn|{schema?: string}
---@return luamigrate.LightTable
function sa.table(name, ...) end

--- A lightweight column for sa.table (or by itself, in expressions).
---@param name string
---@param type_? luamigrate.TypeArg
---@return luamigrate.LightColumn
function sa.column(name, type_) end

--- The declared schema (schema.lua) that autogenerate and check compare with.
---@param opts? {schema?: string, naming_convention?: table<string, string>}
---@return luamigrate.MetaData
function sa.MetaData(opts) end

--- EXCLUDE USING gist (element WITH operator, ...) in a table (SQLAlchemy's postgresql.ExcludeConstraint).
---@param ... {[1]: string|luamigrate.Text, [2]: string}|{name?: string, using?: string, where?: luamigrate.SqlText, deferrable?: boolean, initially?: string} elements {column or sa.text, operator}, then the options
---@return luamigrate.Constraint
function sa.ExcludeConstraint(...) end

--- A table declared in a MetaData: sa.Table(name, metadata, columns, constraints, indexes..., {schema, comment, postgresql_partition_by}).
---@param name string
---@param metadata luamigrate.MetaData
---@param ... luamigrate.Column|luamigrate.Constraint|luamigrate.Index|{schema?: string, comment?: string, info?: table, postgresql_partition_by?: string}
---@return luamigrate.Table
function sa.Table(name, metadata, ...) end

--- A view: CREATE VIEW name AS definition (a query), for op.create_entity & co. and md:register.
---@param name string
---@param definition string the query
---@param opts? {schema?: string}
---@return luamigrate.Entity
function sa.View(name, definition, opts) end

--- A materialized view: CREATE MATERIALIZED VIEW name AS definition WITH [NO] DATA.
---@param name string
---@param definition string the query
---@param opts? {schema?: string, with_data?: boolean, indexes?: (luamigrate.Index|string)[]}
---@return luamigrate.Entity
function sa.MaterializedView(name, definition, opts) end

--- A function: CREATE FUNCTION signature definition, e.g. sa.Function("f(a integer)", "RETURNS integer LANGUAGE sql AS $$ SELECT a $$").
---@param signature string the name and argument list
---@param definition string RETURNS ..., LANGUAGE ..., AS ...
---@param opts? {schema?: string}
---@return luamigrate.Entity
function sa.Function(signature, definition, opts) end

--- A procedure: CREATE PROCEDURE signature definition.
---@param signature string the name and argument list
---@param definition string LANGUAGE ..., AS ...
---@param opts? {schema?: string}
---@return luamigrate.Entity
function sa.Procedure(signature, definition, opts) end

--- A trigger: CREATE TRIGGER name definition, e.g. sa.Trigger("t", "posts", "BEFORE UPDATE ON posts FOR EACH ROW EXECUTE FUNCTION f()").
---@param name string
---@param table_name string the table it is on
---@param definition string the SQL after the trigger's name
---@param opts? {schema?: string}
---@return luamigrate.Entity
function sa.Trigger(name, table_name, definition, opts) end

--- A row-level security policy: CREATE POLICY name ON table definition.
---@param name string
---@param table_name string
---@param definition string e.g. "AS PERMISSIVE FOR SELECT TO PUBLIC USING (owner = current_user)"
---@param opts? {schema?: string}
---@return luamigrate.Entity
function sa.Policy(name, table_name, definition, opts) end

--- Row-level security on a table: ALTER TABLE table ENABLE (and with force, FORCE) ROW LEVEL SECURITY.
---@param table_name string
---@param opts? {schema?: string, force?: boolean}
---@return luamigrate.Entity
function sa.RowLevelSecurity(table_name, opts) end

--- An extension: CREATE EXTENSION name [SCHEMA schema].
---@param name string
---@param opts? {schema?: string}
---@return luamigrate.Entity
function sa.Extension(name, opts) end

--- A sequence: CREATE SEQUENCE name [AS type] [INCREMENT BY ...] ... (not one a column owns).
---@param name string
---@param opts? {schema?: string, as?: string, start?: integer, increment?: integer, minvalue?: integer, maxvalue?: integer, cache?: integer, cycle?: boolean}
---@return luamigrate.Entity
function sa.Sequence(name, opts) end

--- Privileges on a table for a role: GRANT privileges ON TABLE table TO role.
---@param table_name string
---@param privileges string[] e.g. {"SELECT", "INSERT"}
---@param role string a role name, or "PUBLIC"
---@param opts? {schema?: string}
---@return luamigrate.Entity
function sa.Grant(table_name, privileges, role, opts) end

--- A partition of a table declared with postgresql_partition_by: CREATE TABLE name PARTITION OF parent bound.
---@param name string
---@param parent string the partitioned table
---@param bound string e.g. "FOR VALUES FROM ('2025-01-01') TO ('2026-01-01')"
---@param opts? {schema?: string}
---@return luamigrate.Entity
function sa.Partition(name, parent, bound, opts) end

--- A domain: CREATE DOMAIN name AS type (SQLAlchemy's postgresql.DOMAIN); also a column type.
---@param name string
---@param data_type string|luamigrate.Type the base type
---@param opts? {schema?: string, collation?: string, default?: string, not_null?: boolean, check?: string, constraint_name?: string, constraints?: (luamigrate.Constraint|string)[]}
---@return luamigrate.Entity
function sa.Domain(name, data_type, opts) end

--- A composite type: CREATE TYPE name AS (attribute type, ...); also a column type.
---@param name string
---@param attributes {[1]: string, [2]: string|luamigrate.Type}[] the attributes in order
---@param opts? {schema?: string}
---@return luamigrate.Entity
function sa.CompositeType(name, attributes, opts) end

--- A range type: CREATE TYPE name AS RANGE (SUBTYPE = subtype, ...); also a column type.
---@param name string
---@param subtype string|luamigrate.Type
---@param opts? {schema?: string, subtype_opclass?: string, collation?: string, canonical?: string, subtype_diff?: string, multirange_type_name?: string}
---@return luamigrate.Entity
function sa.RangeType(name, subtype, opts) end

--- SELECT cols... (FROM the tables they belong to): sa.select(t.c.id, t.c.name).
---@param ... luamigrate.Expression|luamigrate.LightTable
---@return luamigrate.Statement
function sa.select(...) end

--- t:insert(), as a function.
---@param t luamigrate.LightTable
---@return luamigrate.Statement
function sa.insert(t) end

--- t:update(), as a function.
---@param t luamigrate.LightTable
---@return luamigrate.Statement
function sa.update(t) end

--- t:delete(), as a function.
---@param t luamigrate.LightTable
---@return luamigrate.Statement
function sa.delete(t) end

--- a AND b AND ...
---@param ... luamigrate.Expression
---@return luamigrate.Expression
function sa.and_(...) end

--- a OR b OR ...
---@param ... luamigrate.Expression
---@return luamigrate.Expression
function sa.or_(...) end

--- NOT x
---@param x luamigrate.Expression
---@return luamigrate.Expression
function sa.not_(x) end

--- SQL functions: sa.func.lower(t.c.email), sa.func.now(), sa.func.count() (count(*)).
---@type table<string, fun(...: luamigrate.Value): luamigrate.Expression>
sa.func = {}

---@class luamigrate.Inspector
---@field get_table_names fun(self: luamigrate.Inspector, schema?: string|{schema?: string}): string[]
---@field get_view_names fun(self: luamigrate.Inspector, schema?: string|{schema?: string}): string[]
---@field get_schema_names fun(self: luamigrate.Inspector): string[]
---@field has_table fun(self: luamigrate.Inspector, name: string, schema?: string|{schema?: string}): boolean
---@field get_columns fun(self: luamigrate.Inspector, table: string, schema?: string|{schema?: string}): table[]
---@field get_indexes fun(self: luamigrate.Inspector, table: string, schema?: string|{schema?: string}): table[]
---@field get_unique_constraints fun(self: luamigrate.Inspector, table: string, schema?: string|{schema?: string}): table[]
---@field get_foreign_keys fun(self: luamigrate.Inspector, table: string, schema?: string|{schema?: string}): table[]
---@field get_pk_constraint fun(self: luamigrate.Inspector, table: string, schema?: string|{schema?: string}): table
---@field get_check_constraints fun(self: luamigrate.Inspector, table: string, schema?: string|{schema?: string}): table[]
---@field get_enums fun(self: luamigrate.Inspector, schema?: string|{schema?: string}): table[]

--- SQLAlchemy's inspector over the migration's live connection (an error in --sql mode).
---@param bind luamigrate.Connection op.get_bind() (or its .engine)
---@return luamigrate.Inspector
function sa.inspect(bind) end

--- SQLAlchemy's Inspector.from_engine(bind), the same as sa.inspect(bind).
sa.Inspector = {}

--- Raw SQL as an expression: sa.literal_column("'x'"), sa.literal_column("ARRAY[1,2]").
---@param sql string
---@return luamigrate.Expression
function sa.literal_column(sql) end

--- A value as an expression (bound online, a literal with --sql).
---@param value string|number|boolean
---@return luamigrate.Expression
function sa.literal(value) end

--- NULL (a comparison with it is IS NULL, as in SQLAlchemy).
---@return luamigrate.Expression
function sa.null() end

--- true: SQLAlchemy's sa.true() (true is a Lua keyword; sa["true"]() also works).
---@return luamigrate.Expression
function sa.true_() end

--- false: SQLAlchemy's sa.false() (sa["false"]() also works).
---@return luamigrate.Expression
function sa.false_() end

--- CAST(x AS type)
---@param x luamigrate.Value
---@param type_ luamigrate.TypeArg
---@return luamigrate.Expression
function sa.cast(x, type_) end

--- DISTINCT x
---@param x luamigrate.Value
---@return luamigrate.Expression
function sa.distinct(x) end

---@type fun(): luamigrate.Expression
sa["true"] = sa.true_

---@type fun(): luamigrate.Expression
sa["false"] = sa.false_

return sa
