"""x

Revision ID: b1
Revises:
"""
from alembic import op
import sqlalchemy as sa
revision = "b1"
down_revision = None

def upgrade():
    op.add_column("t", sa.Column("a", sa.Integer(), nullable=True.ARRAY(sa.String())))
