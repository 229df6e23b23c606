---@meta luamigrate.postgresql
-- LuaLS annotations for luamigrate's `postgresql`: sqlalchemy.dialects.postgresql's types
-- (the global `postgresql` in migration files, `require "luamigrate.postgresql"` elsewhere).
-- Annotations only; the engine never loads this file.

---@class luamigrate.postgresql
postgresql = {}

--- item_type[]; parameters in order: item_type, as_tuple, dimensions, zero_indexes.
---@type luamigrate.TypeCtor
postgresql.ARRAY = {}

--- BIGINT.
---@type luamigrate.SimpleType
postgresql.BIGINT = {}

--- BIT(1); parameters in order: length, varying.
---@type luamigrate.TypeCtor
postgresql.BIT = {}

--- BOOLEAN; parameters in order: create_constraint, name.
---@type luamigrate.TypeCtor
postgresql.BOOLEAN = {}

--- BYTEA; parameters in order: length.
---@type luamigrate.TypeCtor
postgresql.BYTEA = {}

--- CHAR; parameters in order: length, collation.
---@type luamigrate.TypeCtor
postgresql.CHAR = {}

--- CIDR.
---@type luamigrate.SimpleType
postgresql.CIDR = {}

--- CITEXT.
---@type luamigrate.SimpleType
postgresql.CITEXT = {}

--- DATE.
---@type luamigrate.SimpleType
postgresql.DATE = {}

--- DATEMULTIRANGE.
---@type luamigrate.SimpleType
postgresql.DATEMULTIRANGE = {}

--- DATERANGE.
---@type luamigrate.SimpleType
postgresql.DATERANGE = {}

--- DOUBLE PRECISION; parameters in order: precision, asdecimal, decimal_return_scale.
---@type luamigrate.TypeCtor
postgresql.DOUBLE_PRECISION = {}

--- A named enum type: postgresql.ENUM("a", "b", {name = "e", create_type = false}) or a list of values.
---@type luamigrate.EnumType
postgresql.ENUM = {}

--- FLOAT; parameters in order: precision, asdecimal, decimal_return_scale.
---@type luamigrate.TypeCtor
postgresql.FLOAT = {}

--- HSTORE; parameters in order: text_type.
---@type luamigrate.TypeCtor
postgresql.HSTORE = {}

--- INET.
---@type luamigrate.SimpleType
postgresql.INET = {}

--- INT4MULTIRANGE.
---@type luamigrate.SimpleType
postgresql.INT4MULTIRANGE = {}

--- INT4RANGE.
---@type luamigrate.SimpleType
postgresql.INT4RANGE = {}

--- INT8MULTIRANGE.
---@type luamigrate.SimpleType
postgresql.INT8MULTIRANGE = {}

--- INT8RANGE.
---@type luamigrate.SimpleType
postgresql.INT8RANGE = {}

--- INTEGER.
---@type luamigrate.SimpleType
postgresql.INTEGER = {}

--- INTERVAL; parameters in order: precision, fields.
---@type luamigrate.TypeCtor
postgresql.INTERVAL = {}

--- JSON; parameters in order: none_as_null, astext_type.
---@type luamigrate.TypeCtor
postgresql.JSON = {}

--- JSONB; parameters in order: none_as_null, astext_type.
---@type luamigrate.TypeCtor
postgresql.JSONB = {}

--- JSONPATH.
---@type luamigrate.SimpleType
postgresql.JSONPATH = {}

--- MACADDR.
---@type luamigrate.SimpleType
postgresql.MACADDR = {}

--- MACADDR8.
---@type luamigrate.SimpleType
postgresql.MACADDR8 = {}

--- MONEY.
---@type luamigrate.SimpleType
postgresql.MONEY = {}

--- NUMERIC; parameters in order: precision, scale, decimal_return_scale, asdecimal.
---@type luamigrate.TypeCtor
postgresql.NUMERIC = {}

--- NUMMULTIRANGE.
---@type luamigrate.SimpleType
postgresql.NUMMULTIRANGE = {}

--- NUMRANGE.
---@type luamigrate.SimpleType
postgresql.NUMRANGE = {}

--- OID.
---@type luamigrate.SimpleType
postgresql.OID = {}

--- REAL; parameters in order: precision, asdecimal, decimal_return_scale.
---@type luamigrate.TypeCtor
postgresql.REAL = {}

--- REGCLASS.
---@type luamigrate.SimpleType
postgresql.REGCLASS = {}

--- REGCONFIG.
---@type luamigrate.SimpleType
postgresql.REGCONFIG = {}

--- SMALLINT.
---@type luamigrate.SimpleType
postgresql.SMALLINT = {}

--- TEXT; parameters in order: length, collation.
---@type luamigrate.TypeCtor
postgresql.TEXT = {}

--- TIME WITHOUT TIME ZONE; parameters in order: timezone, precision.
---@type luamigrate.TypeCtor
postgresql.TIME = {}

--- TIMESTAMP WITHOUT TIME ZONE; parameters in order: timezone, precision.
---@type luamigrate.TypeCtor
postgresql.TIMESTAMP = {}

--- TSMULTIRANGE.
---@type luamigrate.SimpleType
postgresql.TSMULTIRANGE = {}

--- TSQUERY.
---@type luamigrate.SimpleType
postgresql.TSQUERY = {}

--- TSRANGE.
---@type luamigrate.SimpleType
postgresql.TSRANGE = {}

--- TSTZMULTIRANGE.
---@type luamigrate.SimpleType
postgresql.TSTZMULTIRANGE = {}

--- TSTZRANGE.
---@type luamigrate.SimpleType
postgresql.TSTZRANGE = {}

--- TSVECTOR.
---@type luamigrate.SimpleType
postgresql.TSVECTOR = {}

--- UUID; parameters in order: as_uuid.
---@type luamigrate.TypeCtor
postgresql.UUID = {}

--- VARCHAR; parameters in order: length, collation.
---@type luamigrate.TypeCtor
postgresql.VARCHAR = {}

return postgresql
