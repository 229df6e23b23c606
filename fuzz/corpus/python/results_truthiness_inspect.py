"""derive notes from what is there

Revision ID: 8e4f2b6a0c13
Revises: 3a9c1d7e5b20
Create Date: 2025-06-09 16:30:05.551870

"""
import datetime
import json
import uuid
from datetime import timezone

from alembic import op
import sqlalchemy as sa
from sqlalchemy.engine.reflection import Inspector

# revision identifiers, used by Alembic.
revision = "8e4f2b6a0c13"
down_revision = "3a9c1d7e5b20"
branch_labels = None
depends_on = None

kinds = sa.table("kinds", sa.column("id", sa.Integer), sa.column("name", sa.String), sa.column("rank", sa.Integer))
notes = sa.table("notes", sa.column("k", sa.String), sa.column("v", sa.Text))


def note(bind, k, v):
    bind.execute(notes.insert().values(k=k, v=v))


def describe(value):
    # Python's truthiness: 0, "", None and empty lists are false
    if value:
        return "yes"
    elif value is None:
        return "none"
    return "no"


def upgrade():
    bind = op.get_bind()
    names = bind.execute(sa.text("SELECT name FROM kinds ORDER BY id")).scalars().all()
    note(bind, "names", ",".join(names))
    first = bind.execute(sa.select(kinds.c.id, kinds.c.name).order_by(kinds.c.id)).first()
    note(bind, "first", "{} {}".format(first[0], first.name))
    row = bind.execute(sa.text("SELECT id, name, rank FROM kinds WHERE name = :n"), {"n": "washer"}).fetchone()
    note(bind, "mapping", "%s:%s" % (row._mapping["name"], describe(row.rank)))
    pairs = []
    for kid, kname in bind.execute(sa.text("SELECT id, name FROM kinds ORDER BY id")):
        pairs.append(f"{kid}={kname}")
    note(bind, "pairs", ";".join(pairs))
    ranks = []
    for r in bind.execute(sa.text("SELECT rank, note FROM kinds ORDER BY id")).fetchall():
        ranks.append(describe(r[0]) + "/" + describe(r.note))
    note(bind, "ranks", " ".join(ranks))
    count = bind.execute(sa.text("SELECT count(*) FROM kinds")).scalar()
    one = bind.execute(sa.text("SELECT max(id) FROM kinds")).scalar_one()
    note(bind, "counts", "%d of %d" % (one, count))
    missing = bind.execute(sa.text("SELECT id FROM kinds WHERE name = 'gear'")).first()
    note(bind, "missing", describe(missing) + " " + (missing and "found" or "absent"))
    empty = bind.execute(sa.text("SELECT id FROM kinds WHERE id < 0")).fetchall()
    note(bind, "empty", describe(empty) + " " + str(len(empty)))
    res = bind.execute(sa.text("UPDATE kinds SET note = note || '!' WHERE note <> ''"))
    note(bind, "rowcount", str(res.rowcount))
    label = describe("") + describe("x") + describe(0) + describe(2) + describe([]) + describe({})
    note(bind, "truth", label)
    chosen = "" or "fallback"
    kept = "kept" or "other"
    zero = 0 and "never"
    note(bind, "or-and", "%s %s %s" % (chosen, kept, zero))
    n = 3
    steps = []
    while n:
        steps.append(str(n))
        n -= 1
    note(bind, "while", "".join(steps) if steps else "none")

    insp = sa.inspect(bind)
    tables = insp.get_table_names()
    note(bind, "tables", ",".join(sorted(tables)))
    note(bind, "has", describe(insp.has_table("items")) + describe(insp.has_table("gears")))
    cols = insp.get_columns("kinds")
    note(bind, "columns", ",".join([c["name"] + ("?" if c["nullable"] else "!") for c in cols]))
    note(bind, "pk", ",".join(insp.get_pk_constraint("kinds")["constrained_columns"]))
    fks = insp.get_foreign_keys("items")
    note(bind, "fk", "%s->%s(%s) %s" % (fks[0]["name"], fks[0]["referred_table"],
                                      ",".join(fks[0]["referred_columns"]), fks[0]["options"]["ondelete"]))
    note(bind, "indexes", ",".join([i["name"] for i in insp.get_indexes("items")]))
    note(bind, "uniques", ",".join([u["name"] for u in insp.get_unique_constraints("kinds")]))
    note(bind, "checks", ",".join([c["name"] for c in insp.get_check_constraints("kinds")]))
    enums = Inspector.from_engine(bind).get_enums()
    note(bind, "enums", ",".join([e["name"] + "=" + "|".join(e["labels"]) for e in enums]))

    stamp = datetime.datetime(2024, 2, 29, 13, 5, 9, tzinfo=timezone.utc)
    note(bind, "datetime", str(stamp) + " " + stamp.isoformat() + " " + str(stamp.replace(tzinfo=None)))
    later = stamp + datetime.timedelta(days=1, hours=12)
    note(bind, "timedelta", later.isoformat() + " " + str(later - stamp))
    now = datetime.datetime.now(timezone.utc)
    note(bind, "now", describe(now.year >= 2024))
    note(bind, "uuid", str(len(str(uuid.uuid4()))) + " " + str(len(uuid.uuid4().hex)))
    payload = {"names": names, "n": count}
    note(bind, "json", json.dumps(payload, sort_keys=True) + " " + json.dumps(json.loads('{"a": [1, 2]}')["a"]))
    if not tables:
        return
    note(bind, "after-return", "reached")
    if "notes" in tables:
        return
    note(bind, "unreached", "wrong")


def downgrade():
    op.execute("DELETE FROM notes")
    op.execute("UPDATE kinds SET note = rtrim(note, '!')")
