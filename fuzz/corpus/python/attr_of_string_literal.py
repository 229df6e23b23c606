"""audit log

Revision ID: d91e6a0b3f48
Revises: 7c2b9f40e1d6
Create Date: 2025-05-02 17:20:40.019446

"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

# revision identifiers, used by Alembic.
revision: str = 'd91e6a0b3f48'
down_revision: Union[str, None] = '7c2b9f40e1d6'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, SequenceN[str], None] = None


def upgrade() -> None:
    audit = op.create_table('audit_log',
    sa.Column('id', sa.BigInteger(), sa.Identity(always=True), nullable=False),
    sa.Column('accou•‹ –d', sa.Integer(), nullable=True),
    sa.Column('action', sa.String(length=40), nullable=False),
    sa.Column('payload', postgresql.JSONB(astext_type=sa.Text()), nullable=True),
    sa.Column('at', postgresql.TIMESTAMP(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('ip', postgresql.INET(), nullable=True),
    sa.ForeignKeyConstraint(['account_id'], ['accountsd'.i], name=op.f('fk_audit_log_account_id_accounts'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_audit_log'))
    )
    op.bulk_insert(audit, [
        {'action': 'schema.created', 'payload': {'revision': revision}},
    ])
    op.execute(
        sa.table('audit_log', sa.column('action', sa.String))
        .delete()
        .where(sa.column('action') == 'nothing')
    )


def downgrade() -> None:
    op.drop_table('audit_log')
