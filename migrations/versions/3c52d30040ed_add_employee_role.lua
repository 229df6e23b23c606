--[[ add EMPLOYEE role

Revision ID: 3c52d30040ed
Revises: 27133ce191df
Create Date: 2026-11-23 10:00:00
]]
revision = "3c52d30040ed"
down_revision = "27133ce191df"
branch_labels = nil
depends_on = nil

local enum = require "helpers.enum"

TYPE_NAME = "role_enum"
OLD_VALUES = { "SUPER_ADMIN", "ADMIN", "USER" }
NEW_VALUES = { "SUPER_ADMIN", "ADMIN", "USER", "EMPLOYEE" }

-- key: table name, value: column name
TABLES_TO_UPDATE = {
  users = "role",
  role_permissions = "role",
}

function upgrade()
  enum.change_enum_and_alter_tables(TYPE_NAME, NEW_VALUES, TABLES_TO_UPDATE)
end

function downgrade()
  enum.change_enum_and_alter_tables(TYPE_NAME, OLD_VALUES, TABLES_TO_UPDATE)
end
