"""The sweep reads only what is due (issue 14): the stored next day, the rows loaded,
digests, receipts and link serializers in bulk, and the migration that adds the day.

The behaviour itself (reminder ladder, overdue, escalation, transfers, digests) is
checked by tests/test_lifecycle*.py, unchanged; these check that the work follows
what is due and that the day stored is exactly the first day the sweep acts.
"""

from __future__ import annotations

import datetime as dt
import random

import pytest
from sqlalchemy import event, inspect, select, text, update

from engine.config import Settings
from engine.lifecycle import activate, intake, intake_many, record_submission, sweep
from engine.lifecycle.sweep_days import (
    ASSIGNMENT_SENT,
    ESCALATE_AFTER_DAYS,
    ESCALATION_SENT,
    OVERDUE_SENT,
    next_sweep_day,
    reminder_step,
    reminder_steps_sent,
)
from engine.links import _serializers
from engine.outbox import enqueue_for_obligation
from engine.store import session_scope
from engine.store.db import _alembic_config, connect, migrate
from engine.store.models import SWEEP_AT_ONCE, Obligation, OutboxMessage
from tests.lifecycle_factory import (
    CONSOLIDATION,
    DEFINITIONS,
    DISTRICT,
    GOOD_REPORT,
    obligation,
    obligations,
    prepared,
    store_files,
    vn,
)

# ---------------------------------------------------------------- the day stored


def _acts(duty, state, day) -> bool:
    """What the sweep does for an open duty on ``day`` (engine.lifecycle.sweep: the
    assignment of a period that opened, then _sweep_one), applied to ``state`` (sent
    keys, overdue mark); True when it did anything."""
    ladder, due, created, opens = duty
    sent, overdue = state
    if opens is not None and opens > day:
        return False  # its period is not open yet
    acted = False
    if opens is not None and ASSIGNMENT_SENT not in sent:
        sent.add(ASSIGNMENT_SENT)
        acted = True
    days_left = (due - day).days
    if days_left >= 0:
        told = max(created, opens or dt.date.min)
        step = reminder_step(ladder, days_left, told, due, reminder_steps_sent(sent))
        if step is not None:
            sent.add(f"reminder:{step}")
            acted = True
        return acted
    if not overdue[0]:
        overdue[0] = acted = True
    if OVERDUE_SENT not in sent:
        sent.add(OVERDUE_SENT)
        acted = True
    if -days_left >= ESCALATE_AFTER_DAYS and ESCALATION_SENT not in sent:
        sent.add(ESCALATION_SENT)
        acted = True
    return acted


def _first_acting_day(duty, state, start):
    day, last = start, max(duty[1] + dt.timedelta(days=ESCALATE_AFTER_DAYS), duty[3] or start)
    while day <= last:  # nothing happens later
        if _acts(duty, (set(state[0]), list(state[1])), day):
            return day
        day += dt.timedelta(days=1)
    return None


def test_the_day_stored_is_the_first_day_the_sweep_acts():
    """Against the sweep's own decision, day by day, for random ladders, creation days,
    opening days, mails already queued and sweeps on random days (missed days included)."""
    rng = random.Random(14)
    due = dt.date(2027, 9, 10)
    for _ in range(1000):
        ladder = [rng.randint(0, 12) for _ in range(rng.randint(0, 4))]  # unsorted, repeats
        created = due + dt.timedelta(days=rng.randint(-25, 4))
        opens = None if rng.random() < 0.5 else due + dt.timedelta(days=rng.randint(-13, 6))
        duty = (ladder, due, created, opens)
        sent = {f"reminder:{s}" for s in range(13) if rng.random() < 0.1}
        sent |= {k for k in (ASSIGNMENT_SENT, OVERDUE_SENT, ESCALATION_SENT) if rng.random() < 0.1}
        state = (sent, [rng.random() < 0.1])
        start = due - dt.timedelta(days=14)
        expected = _first_acting_day(duty, state, start)
        day = next_sweep_day(ladder, due, created, opens=opens, sent=sent, overdue=state[1][0])
        assert day == expected, duty
        today = start
        while today < due + dt.timedelta(days=8):
            today += dt.timedelta(days=rng.randint(1, 4))
            _acts(duty, state, today)
            expected = _first_acting_day(duty, state, today + dt.timedelta(days=1))
            assert (
                next_sweep_day(
                    ladder,
                    due,
                    created,
                    opens=opens,
                    sent=state[0],
                    overdue=state[1][0],
                    after=today,
                )
                == expected
            ), (duty, state, today)


# ---------------------------------------------------------------- what the sweep reads

ACTIVATED = vn(2027, 1, 4, 9)


@pytest.fixture
def url(sqlite_url: str) -> str:
    prepared(sqlite_url)
    with session_scope(sqlite_url) as session:
        activate(session, DISTRICT, now=ACTIVATED)
    return sqlite_url


def _sweep_counting_loads(url: str, day: dt.date, plan_id: str = DISTRICT):
    loaded: set[int] = set()

    def count(target, _context) -> None:
        loaded.add(target.id)

    event.listen(Obligation, "load", count)
    try:
        with session_scope(url) as session:
            result = sweep(session, plan_id, today=day)
    finally:
        event.remove(Obligation, "load", count)
    return result, loaded


def test_the_sweep_loads_only_the_duties_it_changes(url):
    """A quiet day loads no obligation; a busy day loads the ones it reminds, marks,
    escalates, moves or digests (before: every open one, every day)."""
    days = [(1, 28), (1, 29), (2, 4), (2, 8), (3, 1), (3, 2), (7, 1), (7, 2), (9, 3), (9, 13)]
    quiet = 0
    for month, day in days:
        result, loaded = _sweep_counting_loads(url, dt.date(2027, month, day))
        changed = (
            {o for o, _ in result.reminders}
            | set(result.overdue)
            | set(result.escalations)
            | {o for o, _, _ in result.transferred}
            | set(result.digests)
            | set(result.opened)
        )
        assert loaded == changed, f"{day}/{month}: {len(loaded)} loaded, {len(changed)} changed"
        quiet += not changed
        assert result.open_obligations > 0
    assert quiet >= 3  # e.g. 29/1, 2/3, 2/7: nothing due, nothing read


def test_periods_opening_later_are_read_on_the_day_they_open(sqlite_url):
    """A monthly plan (plan_definitions/examples): each month's duties are read on the
    day the month opens (its assignment) and on their reminder days, not before."""
    examples = DEFINITIONS / "examples"
    store_files(
        sqlite_url,
        examples / "registry_cao_bang_2026.yaml",
        DEFINITIONS / "calendar_vn.yaml",
        examples / "cao_bang_dau_tu_cong_2026.yaml",
    )
    with session_scope(sqlite_url) as session:
        activate(session, "cao-bang-dau-tu-cong-2026", now=vn(2026, 3, 26, 9))
    opened = 0
    for month, day in [(4, 13), (4, 14), (4, 20), (4, 21), (4, 22), (5, 12), (5, 21)]:
        result, loaded = _sweep_counting_loads(
            sqlite_url, dt.date(2026, month, day), "cao-bang-dau-tu-cong-2026"
        )
        changed = (
            {o for o, _ in result.reminders}
            | set(result.overdue)
            | set(result.escalations)
            | set(result.digests)
            | set(result.opened)
        )
        assert loaded == changed, f"{day}/{month}: {len(loaded)} loaded, {len(changed)} changed"
        opened += len(result.opened)
    assert opened >= 13  # May's duties, mailed on 21/4


def test_rows_written_without_a_day_are_swept_once_and_get_theirs(url):
    """Rows stored before the migration (or written without the column) hold
    SWEEP_AT_ONCE: the next sweep looks at them, acts as before and stores their day."""
    with session_scope(url) as session:
        target = obligation(session, "phong-vh")
        assert target.next_sweep_on == dt.date(2027, 9, 3)  # 7 days before 10/9
        session.execute(update(Obligation).values(next_sweep_on=SWEEP_AT_ONCE))
    with session_scope(url) as session:
        first = sweep(session, DISTRICT, today=dt.date(2027, 9, 3))
    assert (target.id, 7) in first.reminders
    with session_scope(url) as session:
        assert session.get(Obligation, target.id).next_sweep_on == dt.date(2027, 9, 7)
        days = {o.unit_id: o.next_sweep_on for o in obligations(session, deliverable="bao-cao-nam")}
    assert set(days.values()) == {dt.date(2027, 9, 7)}  # every report: its 3-day step next


# ---------------------------------------------------------------- digests, receipts, links


def _count_statements(url: str, needle: str):
    seen: list[str] = []

    def before(_conn, _cursor, statement, _params, _context, _many) -> None:
        if needle in statement:
            seen.append(statement)

    engine = connect(url)
    event.listen(engine, "before_cursor_execute", before)
    return seen, lambda: event.remove(engine, "before_cursor_execute", before)


def test_a_digest_reads_its_rows_and_units_in_one_query_each(url):
    conf = Settings(portal_secret="s" * 32)
    seen, stop = _count_statements(url, "FROM registry_units")
    try:
        with session_scope(url) as session:
            duty = obligation(session, "ca-huyen", CONSOLIDATION)
            row = enqueue_for_obligation(
                session, duty, "digest", "2027-W36", now=vn(2027, 9, 6, 7), settings=conf
            )
    finally:
        stop()
    assert len(row.context["rows"]) >= 6  # every unit reporting through the police
    assert len(seen) <= 2  # the duty's own units, then the rows' (before: one per row)


def test_intake_many_queues_the_receipts_in_one_insert(url):
    units = ["phong-vh", "phong-kt", "xa-a"]
    with session_scope(url) as session:
        ids = [
            record_submission(
                session, obligation(session, u).id, values=GOOD_REPORT, now=vn(2027, 9, 1)
            ).id
            for u in units
        ]
    seen, stop = _count_statements(url, "INSERT INTO outbox")
    try:
        with session_scope(url) as session:
            results = intake_many(session, ids, now=vn(2027, 9, 1, 10))
    finally:
        stop()
    assert len(seen) == 1
    assert [r.unit_id for r in results] == units
    assert not any(r.cycle_complete for r in results)
    with session_scope(url) as session:
        receipts = session.scalars(
            select(OutboxMessage.idempotency_key).where(OutboxMessage.kind == "receipt")
        ).all()
        assert sorted(receipts) == sorted(f"obl:{r.obligation_id}:receipt:1" for r in results)
        # The last unit's answer completes the deliverable of the cycle.
        rest = [
            o for o in obligations(session, deliverable="bao-cao-nam") if o.unit_id not in units
        ]
        more = [
            record_submission(session, o.id, values=GOOD_REPORT, now=vn(2027, 9, 2)).id
            for o in rest
        ]
    with session_scope(url) as session:
        done = [intake(session, sid, now=vn(2027, 9, 2, 10)) for sid in more]
    assert [r.cycle_complete for r in done] == [False] * (len(done) - 1) + [True]


def test_link_serializers_are_built_once_per_set_of_keys():
    conf = Settings(portal_secret="a" * 32, portal_old_secrets="b" * 32)
    assert _serializers(conf)[0] is _serializers(conf)[0]
    other = Settings(portal_secret="c" * 32)
    assert _serializers(other)[0] is not _serializers(conf)[0]
    assert len(_serializers(conf)) == 2 and len(_serializers(other)) == 1


# ---------------------------------------------------------------- the migration


def test_the_migration_gives_stored_rows_a_day_and_goes_back(db_url: str):
    from alembic import command
    from alembic.script import ScriptDirectory

    before = (
        ScriptDirectory.from_config(_alembic_config(db_url))
        .get_revision("0008_sweep_index")
        .down_revision
    )
    assert isinstance(before, str)

    def to(revision: str, down: bool = False) -> None:
        with connect(db_url).begin() as connection:
            cfg = _alembic_config(db_url)
            cfg.attributes["connection"] = connection
            (command.downgrade if down else command.upgrade)(cfg, revision)

    to(before)
    with connect(db_url).begin() as connection:
        for statement in (
            "INSERT INTO plan_versions (id, plan_id, version, content_hash, registry_id, "
            "source_text, definition, loaded_at, \"current\") VALUES (1, 'p', 1, 'h', 'r', '', "
            "'{}', '2027-01-01 00:00:00', true)",
            "INSERT INTO plan_instances (id, plan_id, plan_version_id, activated_at, "
            "activated_on, status) VALUES (1, 'p', 1, '2027-01-01 00:00:00', '2027-01-01', "
            "'active')",
            "INSERT INTO cycles (id, instance_id, key, status) VALUES (1, 1, '2027', 'open')",
            "INSERT INTO obligations (id, cycle_id, unit_id, deliverable_id, kind, "
            "assignment_ids, nominal_date, due_date, status, overdue, token_version, "
            "created_at, updated_at) VALUES (1, 1, 'u', 'd', 'report', '[]', '2027-09-10', "
            "'2027-09-10', 'pending', false, 1, '2027-01-01 00:00:00', '2027-01-01 00:00:00')",
        ):
            connection.execute(text(statement))
    migrate(db_url)
    with session_scope(db_url) as session:
        assert session.get(Obligation, 1).next_sweep_on == SWEEP_AT_ONCE
    indexes = {i["name"] for i in inspect(connect(db_url)).get_indexes("obligations")}
    assert {"ix_obligations_sweep", "ix_obligations_cycle_deliverable_status"} <= indexes
    connect(db_url).dispose()
    to(before, down=True)
    columns = {c["name"] for c in inspect(connect(db_url)).get_columns("obligations")}
    assert "next_sweep_on" not in columns and "due_date" in columns
    connect(db_url).dispose()
