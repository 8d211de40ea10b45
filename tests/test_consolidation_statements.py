"""A consolidation's statements bind a handful of parameters, however many units answer.

On PostgreSQL an IN list or a VALUES list of every unit's answer costs a parameter a unit
before the server does any work; at 3,500 reports the consolidation took 4.17 s against
1.67 s with the lists as array parameters (benchmarks/bench_consolidation.py --database
postgres). The number of parameters is what this test checks, not the time."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from sqlalchemy import event, select

from engine.calendar import TZ
from engine.config import Settings
from engine.consolidation import consolidate
from engine.lifecycle import activate, record_submission
from engine.lifecycle.intake import intake_many
from engine.store import connect, session_scope
from engine.store.models import Obligation
from tests.lifecycle_factory import store_files, synthetic_files

UNITS = 90
PLAN = "quy-mo-3500"


def _answered(url: str, tmp: Path) -> None:
    store_files(url, *synthetic_files(tmp / "defs", provinces=3, communes=UNITS // 3))
    now = dt.datetime(2027, 9, 1, 9, tzinfo=TZ)
    with session_scope(url) as session:
        activate(session, PLAN, now=dt.datetime(2027, 1, 4, 9, tzinfo=TZ), years=[2027])
    with session_scope(url) as session:
        ids = session.scalars(
            select(Obligation.id).where(Obligation.deliverable_id == "bao-cao")
        ).all()
        recorded = [
            record_submission(session, oid, values={"so-vu": str(i % 4)}, now=now).id
            for i, oid in enumerate(ids)
        ]
        intake_many(session, recorded, now=now)
    assert len(ids) == UNITS


def test_no_statement_binds_a_parameter_a_unit(postgres_url: str, tmp_path: Path):
    _answered(postgres_url, tmp_path)
    bound: list[tuple[int, str]] = []

    def count(conn, cursor, statement, parameters, context, executemany):  # type: ignore[no-untyped-def]
        rows = parameters if executemany else [parameters]
        bound.append((max((len(r or ()) for r in rows), default=0), statement[:80]))

    engine = connect(postgres_url)
    event.listen(engine, "before_cursor_execute", count)
    try:
        with session_scope(postgres_url) as session:
            result = consolidate(
                session,
                PLAN,
                "2027",
                "tong-hop",
                now=dt.datetime(2027, 9, 27, 9, tzinfo=TZ),
                settings=Settings(home=tmp_path, portal_secret="k" * 48),
            )
    finally:
        event.remove(engine, "before_cursor_execute", count)
    assert not result.warnings and len(result.report.status_table) >= UNITS
    widest = max(bound)
    # The widest statements have a fixed width: the audit row's append binds 35; a list
    # of the units' answers would bind 90 or more.
    assert widest[0] <= 40, widest
