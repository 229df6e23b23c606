# Reference DDL from Debian's python3-sqlalchemy, for specs: reads lines of Python, each an
# expression giving a type or a Table, and prints one line per input: the type compiled for
# PostgreSQL, or CREATE TABLE on one line; "!! <error class>" when SQLAlchemy refuses it.
import sys
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.schema import CreateTable

dialect = postgresql.dialect()
for line in sys.stdin:
    line = line.strip()
    if not line:
        continue
    try:
        md = sa.MetaData()
        sa.Table("o", md, sa.Column("id", sa.Integer, primary_key=True))
        env = {"sa": sa, "postgresql": postgresql, "md": md}
        obj = eval(line, env)
        if isinstance(obj, sa.Table):
            text = str(CreateTable(obj).compile(dialect=dialect))
            print(" ".join(text.split()))
        else:
            print(obj.compile(dialect=dialect))
    except Exception as e:  # the spec compares refusals too
        print("!!", type(e).__name__)
