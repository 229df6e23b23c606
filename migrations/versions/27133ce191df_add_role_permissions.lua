--[[ add role permissions

Revision ID: 27133ce191df
Revises: 1975ea83b712
Create Date: 2026-11-23 09:30:00
]]
revision = "27133ce191df"
down_revision = "1975ea83b712"
branch_labels = nil
depends_on = nil

function upgrade()
  op.create_table("role_permissions",
    sa.Column("id", sa.Integer, { primary_key = true }),
    sa.Column("role", sa.Enum("SUPER_ADMIN", "ADMIN", "USER", { name = "role_enum", create_type = false }),
      { nullable = false }),
    sa.Column("permission", sa.String(100), { nullable = false }),
    sa.UniqueConstraint("role", "permission", { name = "uq_role_permissions_role_permission" }))
  op.bulk_insert(sa.table("role_permissions", sa.column("role"), sa.column("permission")), {
    { role = "SUPER_ADMIN", permission = "users:delete" },
    { role = "ADMIN", permission = "users:write" },
    { role = "USER", permission = "users:read" },
  })
end

function downgrade()
  op.drop_table("role_permissions")
end
