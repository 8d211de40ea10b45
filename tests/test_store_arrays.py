"""``one_of`` and ``pairs_in`` select the same rows as IN lists, on both databases."""

from __future__ import annotations

from sqlalchemy import Column, Integer, MetaData, Table, insert, select
from sqlalchemy.orm import Session

from engine.store import connect
from engine.store.arrays import one_of, pairs_in

ROWS = [(a, b) for a in range(1, 40) for b in range(1, 4)]


def _table(url: str) -> Table:
    table = Table("arrays_probe", MetaData(), Column("a", Integer), Column("b", Integer))
    engine = connect(url)
    table.create(engine)
    with engine.begin() as conn:
        conn.execute(insert(table), [{"a": a, "b": b} for a, b in ROWS])
    return table


def test_one_of_and_pairs_in_pick_what_an_in_list_picks(db_url: str):
    t = _table(db_url)
    ids = [3, 5, 7, 1000]
    pairs = [(3, 1), (5, 3), (7, 4), (39, 2)]
    with Session(connect(db_url)) as session:
        got = session.execute(select(t.c.a, t.c.b).where(one_of(session, t.c.a, ids))).all()
        assert sorted(got) == sorted(r for r in ROWS if r[0] in ids)
        got = session.execute(select(t.c.a, t.c.b).where(pairs_in(session, t.c.a, t.c.b, pairs)))
        assert sorted(got.all()) == [(3, 1), (5, 3), (39, 2)]
        nothing = select(t.c.a).where(pairs_in(session, t.c.a, t.c.b, []))
        assert session.execute(nothing).all() == []
        assert session.execute(select(t.c.a).where(one_of(session, t.c.a, []))).all() == []
