"""account status, backfilled

Revision ID: 7c2b9f40e1d6
Revises: 0a7d3e91c5b2
Create Date: 2025-04-22 09:48:13.667091

"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

# revision identifiers, used by Alembic.
revision: str = '7c2b9f40e1d6'
down_revision: Union[str, None] = '0a7d3e91c5b2'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None

account_status = postgresql.ENUM('active', 'suspended', 'closed', name='account_status', create_type=False)

accounts = sa.table(
    'accounts',
    sa.column('id', sa.Integer),
    sa.column('role', sa.String),
    sa.column('status', sa.String),
)


def upgrade() -> None:
    account_status.create(op.get_bind(), checkfirst=True)
    with op.batch_alter_table('accounts', schema=None) as batch_op:
        batch_op.add_column(sa.Column('status', account_status, nullable=True))
        batch_op.create_index(batch_op.f('ix_accounts_status'), ['status'], unique=False)

    op.execute(accounts.update().where(accounts.c.role == 'guest').values(status='suspended'))
    op.execute(accounts.update().where(accounts.c.status.is_(None)).values(status='active'))
    op.alter_column('accounts', 'status', existing_type=account_status, nullable=False)
    op.create_unique_constraint(op.f('uq_sessions_token'), 'sessions', ['token'])


def downgrade() -> None:
    op.drop_constraint(op.f('uq_sessions_token'), 'sessions', 'unique')
    with op.batch_alter_table('accounts', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_accounts_status'))
        batch_op.drop_column('status')

    account_status.drop(op.get_bind(), checkfirst=True)
