--[[ create users

Revision ID: 1975ea83b712
Revises:
Create Date: 2026-11-23 09:00:00
]]
revision = "1975ea83b712"
down_revision = nil
branch_labels = nil
depends_on = nil

function upgrade()
  op.create_enum("role_enum", { "SUPER_ADMIN", "ADMIN", "USER" })
  op.create_table("users",
    sa.Column("id", sa.Integer, { primary_key = true }),
    sa.Column("email", sa.String(255), { nullable = false, unique = true }),
    sa.Column("role", sa.Enum("SUPER_ADMIN", "ADMIN", "USER", { name = "role_enum", create_type = false }),
      { nullable = false, server_default = "USER" }),
    sa.Column("created_at", sa.DateTime { timezone = true },
      { nullable = false, server_default = sa.text("now()") }))
end

function downgrade()
  op.drop_table("users")
  op.drop_enum("role_enum")
end
