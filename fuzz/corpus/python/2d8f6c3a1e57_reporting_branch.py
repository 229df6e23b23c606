"""reporting: daily totals

Revision ID: 2d8f6c3a1e57
Revises: 4f1c2a9b7d30
Create Date: 2025-02-12 11:20:31.902113

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '2d8f6c3a1e57'
down_revision = '4f1c2a9b7d30'
branch_labels = ('reporting',)
depends_on = None

SCHEMA = "reporting"


def upgrade() -> None:
    op.execute(f"CREATE SCHEMA {SCHEMA}")
    op.create_table(
        "daily_totals",
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("customer_id", sa.Integer(), sa.ForeignKey("public.customers.id"), nullable=False),
        sa.Column("amount", sa.Numeric(14, 2), server_default=sa.text("0"), nullable=False),
        sa.PrimaryKeyConstraint("day", "customer_id", name="pk_daily_totals"),
        schema=SCHEMA,
    )
    op.create_table_comment("daily_totals", "one row per customer and day", schema=SCHEMA)
    op.alter_column(
        "daily_totals", "amount", comment="in the customer's currency", schema=SCHEMA
    )


def downgrade() -> None:
    op.drop_table("daily_totals", schema=SCHEMA)
    op.execute("DROP SCHEMA " + SCHEMA)
