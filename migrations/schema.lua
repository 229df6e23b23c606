-- The schema the migrations in versions/ build, declared with the same sa constructors
-- (a SQLAlchemy model file translates line by line). `luamigrate check` compares it with
-- the database; after an edit, `luamigrate revision --autogenerate -m "..."` writes the
-- migration that gets there.
local md = sa.MetaData()

local role = sa.Enum("SUPER_ADMIN", "ADMIN", "USER", "EMPLOYEE", { name = "role_enum" })

sa.Table("users", md,
  sa.Column("id", sa.Integer, { primary_key = true }),
  sa.Column("email", sa.String(255), { nullable = false, unique = true }),
  sa.Column("role", role, { nullable = false, server_default = "USER" }),
  sa.Column("created_at", sa.DateTime { timezone = true }, { nullable = false, server_default = sa.text("now()") }))

sa.Table("role_permissions", md,
  sa.Column("id", sa.Integer, { primary_key = true }),
  sa.Column("role", role, { nullable = false }),
  sa.Column("permission", sa.String(100), { nullable = false }),
  sa.UniqueConstraint("role", "permission", { name = "uq_role_permissions_role_permission" }))

return md
