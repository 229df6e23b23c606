-- luamigrate configuration for the example project (the users_db of the Alembic how-to).
-- Top-level assignments are settings; paths are relative to this file.
script_location = "migrations"
-- A libpq URI or key=value conninfo; PG* variables and ~/.pgpass also apply.
url = os.getenv("DATABASE_URL")
version_table = "luamigrate_version"
transaction_per_migration = true
