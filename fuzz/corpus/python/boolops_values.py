from alembic import op
import sqlalchemy as sa
revision = 'f1'
down_revision = None
def upgrade():
    bind = op.get_bind()
    x = bind.execute(sa.text("SELECT 1")).first() or None
    y = (x and x[0]) or ""
    while not y and y != 0:
        y = 1 if not x else 2
        if y:
            return
        return
    z = [a + b for a in [1] if a and not b]
    d = {}
    d.get("k", x or y)
    d.get("k")
    z.append(y or z)
    z.extend(sorted(z))
def downgrade():
    pass


def reads():
    conn = op.get_bind()
    for kid, name in conn.execute(sa.text("SELECT id, name FROM k")):
        print(kid, name or "-")
    row = conn.execute(sa.text("SELECT 1 AS one")).fetchone()
    n = conn.execute(sa.text("SELECT count(*) FROM k")).scalar()
    names = conn.execute(sa.text("SELECT name FROM k")).scalars().all()
    insp = sa.inspect(conn)
    if row[0] and row.one and row._mapping["one"] and names and n:
        print(insp.get_table_names(schema="public"), insp.has_table("k"))
