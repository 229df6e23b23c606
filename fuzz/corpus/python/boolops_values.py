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
