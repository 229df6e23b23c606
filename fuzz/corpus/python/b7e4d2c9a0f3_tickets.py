"""tickets, with welcome tickets

Revision ID: b7e4d2c9a0f3
Revises: a1c0e5f2b7d4
Create Date: 2025-06-09 16:02:45.778120

"""
import functools
import json

from alembic import op
import sqlalchemy as sa

from kiosk.models import db

# revision identifiers, used by Alembic.
revision = 'b7e4d2c9a0f3'
down_revision = 'a1c0e5f2b7d4'
branch_labels = None
depends_on = None

tickets = sa.table(
    'tickets',
    sa.column('id', db.Integer),
    sa.column('title', db.String),
    sa.column('meta', db.Text),
)


def postgresql_only(fn):
    """Runs the step on PostgreSQL only (the app's tests run it on SQLite)."""
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        if op.get_context().dialect.name != 'postgresql':
            return None
        return fn(*args, **kwargs)
    return wrapper


@postgresql_only
def upgrade():
    op.create_table(
        'tickets',
        db.Column('id', db.Integer, primary_key=True),
        db.Column('device_id', db.Integer, db.ForeignKey('devices.id', ondelete='CASCADE'),
                  nullable=True),
        db.Column('title', db.String(120), nullable=False),
        db.Column('meta', db.Text(), nullable=True),
        db.Column('opened', db.DateTime(timezone=True), server_default=db.func.now()),
    )
    for column in {'title', 'device_id'}:
        op.create_index(op.f('ix_tickets_%s' % column), 'tickets', [column])
    step = 0
    while step < 4:
        step += 1
        if step == 2:
            continue
        if step in {3, 5}:
            meta = json.dumps({"step": "third", "tags": ["a", "b"], "ratio": 0.25, "note": "caf\u00e9",
                               "seen": None, "ok": True, 7: [1.5e-05, 2e16]}, sort_keys=False, ensure_ascii=False)
        else:
            meta = json.dumps(["plain", {"indent": 2}], indent=2)
        op.execute(tickets.insert().values(title='welcome %d' % step, meta=meta))


def downgrade():
    op.drop_table('tickets')
