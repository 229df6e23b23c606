"""indexes built concurrently; status column

Revision ID: e1f04d6b8a23
Revises: 5e9a1b7c4f08
Create Date: 2025-03-10 07:31:48.662050

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'e1f04d6b8a23'
down_revision = '5e9a1b7c4f08'
branch_labels = None
depends_on = '2d8f6c3a1e57'

STATUSES = ['open', 'paid', 'shipped', 'cancelled']


def upgrade() -> None:
    order_status = sa.Enum(*STATUSES, name='order_status')
    order_status.create(op.get_bind())
    op.add_column('orders', sa.Column('status', order_status, nullable=False, server_default='open'))
    op.create_check_constraint('ck_orders_placed_when_paid', 'orders', "status = 'open' OR placed_at IS NOT NULL")
    op.alter_column('orders', 'placed_at', existing_type=sa.DateTime(), nullable=True,
                    server_default=sa.text("now()"))
    with op.get_context().autocommit_block():
        op.create_index('ix_orders_status', 'orders', ['status'], unique=False,
                        postgresql_concurrently=True)
        op.create_index(
            'ix_orders_open', 'orders', ['placed_at'],
            postgresql_where=sa.text("status = 'open'"),
            postgresql_concurrently=True,
        )
    conn = op.get_bind()
    conn.execute(sa.text("UPDATE orders SET status = 'paid' WHERE total = 0"))


def downgrade() -> None:
    with op.get_context().autocommit_block():
        op.drop_index('ix_orders_open', table_name='orders', postgresql_concurrently=True)
        op.drop_index('ix_orders_status', table_name='orders', postgresql_concurrently=True)
    op.alter_column('orders', 'placed_at', existing_type=sa.DateTime(), server_default=None)
    op.drop_constraint('ck_orders_placed_when_paid', 'orders', type_='check')
    op.drop_column('orders', 'status')
    sa.Enum(name='order_status').drop(op.get_bind())
