from alembic import context, op
import sqlalchemy as sa
revision = "a3"
down_revision = None
def upgrade():
    if context.is_offline_mode():
        op.execute("SELECT 1")
    else:
        bind = context.get_bind()
        n = bind.execute(sa.text("SELECT 1")).scalar()
    args = context.get_x_argument(as_dictionary=True)
    bind2 = op.get_context().bind
    print(f"{n} {True} {None}")
def downgrade():
    pass
