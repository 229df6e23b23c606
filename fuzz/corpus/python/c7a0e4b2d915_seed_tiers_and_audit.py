"""seed price plans; audit trigger

Revision ID: c7a0e4b2d915
Revises: 9b3e5d1f0a42
Create Date: 2025-03-01 08:40:02.104577

"""
from alembic import op
import sqlalchemy as sa
from sqlalchemy.sql import table, column


# revision identifiers, used by Alembic.
revision = 'c7a0e4b2d915'
down_revision = '9b3e5d1f0a42'
branch_labels = None
depends_on = None

PLANS = [
    {'code': 'free', 'monthly_cents': 0, 'seats': 1},
    {'code': 'pro', 'monthly_cents': 1900, 'seats': 5},
    {'code': 'enterprise', 'monthly_cents': 99000, 'seats': 500},
]

AUDITED = ("customers", "orders")


def trigger_name(table_name):
    return f"trg_{table_name}_touch"


def upgrade():
    plans = op.create_table(
        "plans",
        sa.Column("code", sa.String(20), primary_key=True),
        sa.Column("monthly_cents", sa.Integer, nullable=False),
        sa.Column("seats", sa.SmallInteger, nullable=False, server_default="1"),
    )
    op.bulk_insert(plans, PLANS)

    price_table = table(
        "plans",
        column("code", sa.String),
        column("monthly_cents", sa.Integer),
    )
    op.bulk_insert(price_table, [{"code": "student", "monthly_cents": 500}])

    op.execute(
        """
        CREATE FUNCTION touch_updated_at() RETURNS trigger AS $$
        BEGIN
            NEW.updated_at := now();
            RETURN NEW;
        END;
        $$ LANGUAGE plpgsql
        """
    )
    for name in AUDITED:
        op.add_column(name, sa.Column("updated_at", sa.DateTime(timezone=True), nullable=True))
        op.execute(
            "CREATE TRIGGER %s BEFORE UPDATE ON %s "
            "FOR EACH ROW EXECUTE FUNCTION touch_updated_at()" % (trigger_name(name), name)
        )


def downgrade():
    for name in AUDITED:
        op.execute(f"DROP TRIGGER {trigger_name(name)} ON {name}")
        op.drop_column(name, "updated_at")
    op.execute("DROP FUNCTION touch_updated_at()")
    op.drop_table("plans")
