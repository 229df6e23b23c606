"""loops and wrappers

Revision ID: f00dcafe0001
Revises:
Create Date: 2025-07-01 00:00:00.000000

"""
import functools
import json

from alembic import op

revision = 'f00dcafe0001'
down_revision = None


def logged(fn):
    @functools.wraps(fn)
    def inner(*args, **kwargs):
        return fn(*args, **kwargs)
    return inner


@logged
def upgrade():
    names = {'a', 'b'}
    i = 0
    while i < 3:
        i += 1
        if i in {2}:
            continue
        elif i > 9:
            break
    else:
        pass
    op.execute("SELECT %s" % json.dumps({"k": [1, 2.5, None, True], 3: {}}, indent=2, sort_keys=False))


class Helper(object, metaclass=type):
    x = 1


def downgrade():
    pass
