"""merge reporting into the main line

Revision ID: 5e9a1b7c4f08
Revises: c7a0e4b2d915, 2d8f6c3a1e57
Create Date: 2025-03-04 16:55:10.000913

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '5e9a1b7c4f08'
down_revision = ('c7a0e4b2d915', '2d8f6c3a1e57')
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
