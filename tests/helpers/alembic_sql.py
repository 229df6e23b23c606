# Reference SQL from Debian's python3-alembic, for specs: runs the Python op calls on stdin
# (op, sa and postgresql in scope) in Alembic's offline mode for PostgreSQL, and prints
# the SQL Alembic writes for them, values inline (literal_binds, as its offline env.py sets).
import io
import sys

import sqlalchemy as sa
from alembic.operations import Operations
from alembic.runtime.migration import MigrationContext
from sqlalchemy.dialects import postgresql

buf = io.StringIO()
ctx = MigrationContext.configure(dialect_name="postgresql", opts={"as_sql": True, "output_buffer": buf, "literal_binds": True})
op = Operations(ctx)
exec(sys.stdin.read(), {"op": op, "sa": sa, "postgresql": postgresql})
sys.stdout.write(buf.getvalue())
