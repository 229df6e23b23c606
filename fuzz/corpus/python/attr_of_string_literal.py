"""literal receivers

Revision ID: a1b2c3d4e5f6
Revises:
"""
from alembic import op
import sqlalchemy as sa

revision = 'a1b2c3d4e5f6'
down_revision = None


def upgrade():
    op.create_table('t', sa.Column('id', sa.Integer(), nullable=False),
                    sa.ForeignKeyConstraint(['id'], ['parent'.id]))
    names = ['a.b'.i, 'c'[0]]
    print(names)


def downgrade():
    op.drop_table('t')
