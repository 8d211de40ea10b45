"""One district report cycle, end to end, that can be killed anywhere and run again.

The crash harness (tests/test_crash_harness.py) runs :func:`run` in a forked child with
one kill point armed (engine/faults.py), lets the child die by SIGKILL, then runs
:func:`run` again from the start in a fresh child, as an operator restarting the
process would, and compares :func:`end_state` with that of a run never interrupted.

Every step is written the way its real caller behaves after a restart: the flows
re-run their step (activation, intake, sweep, consolidation and closing are
idempotent), the dispatcher takes what is still due, and a unit whose answer was
acknowledged sees its receipt and does not send it again — a unit whose answer was
not acknowledged sends it again. Acknowledged answers are appended to ``acks`` (one
line each, flushed to disk) only after the transaction that stored them committed.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from engine import faults
from engine.closing import close_cycle
from engine.config import Settings
from engine.consolidation import consolidate
from engine.lifecycle import activate, intake, record_submission, review, sweep
from engine.states import OutboxStatus
from engine.store import session_scope
from engine.store.models import (
    AuditEvent,
    ConsolidatedReport,
    Cycle,
    Obligation,
    OutboxMessage,
    Submission,
    utcnow,
)
from notifications.dispatch import RetryPolicy, dispatch_pending_sync
from tests.lifecycle_factory import (
    CONSOLIDATION,
    DISTRICT,
    GOOD_REPORT,
    REPORT,
    obligation,
    vn,
)

ACTIVATED = vn(2027, 1, 4, 9)  # a Monday
# A lease runs out in real time (notifications.dispatch): one second, so that a restarted
# run's catch-up waits a second, not ten minutes, for what a killed dispatcher held.
POLICY = RetryPolicy(base_seconds=60, max_seconds=600, lease_seconds=1.0)
# (unit, moment, values): on time, on time, late, returned then corrected; xa-moi
# never answers; phong-kt answers on the deadline's eve.
ANSWERS: list[tuple[str, dt.datetime, dict[str, str]]] = [
    ("ca-huyen", vn(2027, 9, 1), {**GOOD_REPORT, "so-vu-chay": "3"}),
    ("phong-vh", vn(2027, 9, 2), {**GOOD_REPORT, "so-vu-chay": "0"}),
    ("phong-kt", vn(2027, 9, 9, 16), {**GOOD_REPORT, "so-vu-chay": "1"}),
    ("xa-a", vn(2027, 9, 14), {**GOOD_REPORT, "so-vu-chay": "4"}),
    ("xa-b", vn(2027, 9, 3), {**GOOD_REPORT, "so-vu-chay": "7"}),
]
RETURNED = "xa-b"
CORRECTED = {**GOOD_REPORT, "so-vu-chay": "5", "ghi-chu": "Đã sửa số vụ cháy theo yêu cầu"}
SWEEP_DAYS = [dt.date(2027, 9, d) for d in (6, 8, 10, 11, 13, 15)]
CONSOLIDATED = vn(2027, 9, 24, 8)
CLOSED = vn(2027, 11, 30, 8)


# Called with each step's name as the scenario enters it (the outage tests stop and
# start servers there).
HOOKS: list[Callable[[str], None]] = []


def _enter(step: str) -> None:
    faults.phase(step)
    for hook in HOOKS:
        hook(step)


def _dispatch(url: str, conf: Settings, now: dt.datetime) -> None:
    _enter("dispatch")
    dispatch_pending_sync(url, conf, now=now, policy=POLICY)


def _acked(acks: Path) -> set[str]:
    return set(acks.read_text(encoding="utf-8").split()) if acks.exists() else set()


def _ack(acks: Path, tag: str) -> None:
    with acks.open("a", encoding="utf-8") as out:
        out.write(tag + "\n")
        out.flush()
        os.fsync(out.fileno())


def _answer(url: str, acks: Path, unit: str, when: dt.datetime, values: dict[str, str]) -> None:
    """Send one answer unless it was acknowledged; take it in (idempotent)."""
    _enter("intake")
    tag = f"{unit}:{values['so-vu-chay']}"
    with session_scope(url) as session:
        target = obligation(session, unit, REPORT)
        fires = values["so-vu-chay"]  # unique per answer in ANSWERS
        stored = [s for s in target.submissions if str(s.values.get("so-vu-chay")) == fires]
        if tag in _acked(acks) or stored:
            # acknowledged, or stored but the unit never saw the receipt: a real unit
            # reloads its link and finds the answer there.
            submission_id = stored[-1].id if stored else None
        else:
            submission_id = record_submission(session, target.id, values=values, now=when).id
    if submission_id is None:
        raise AssertionError(f"acknowledged answer {tag} is not in the store")
    if tag not in _acked(acks):
        _ack(acks, tag)
    with session_scope(url) as session:
        intake(session, submission_id, now=when)


def _decide(url: str, unit: str, fires: str, decision: str, when: dt.datetime) -> None:
    """Decide on the answer that reported ``fires`` fires, unless that is done."""
    _enter("review")
    with session_scope(url) as session:
        [newest] = [
            s
            for s in obligation(session, unit, REPORT).submissions
            if str(s.values.get("so-vu-chay")) == fires
        ]
        if newest.review_state.decided:
            return
        reason = "Số vụ cháy chưa khớp với sổ theo dõi" if decision == "return" else None
        review(session, newest.id, decision=decision, reason=reason, by="ca-huyen", now=when)


def run(url: str, conf: Settings, acks: Path) -> None:
    """The whole cycle on a store holding the plans (``prepared``), from activation to
    closing; safe to run again."""
    _enter("activation")
    with session_scope(url) as session:
        activate(session, DISTRICT, now=ACTIVATED)
    _dispatch(url, conf, ACTIVATED)
    for unit, when, values in ANSWERS:
        _answer(url, acks, unit, when, values)
        if unit == RETURNED:
            _decide(url, unit, values["so-vu-chay"], "return", when + dt.timedelta(hours=2))
            _answer(url, acks, unit, when + dt.timedelta(days=1), CORRECTED)
    for unit, _, values in ANSWERS:
        final = CORRECTED if unit == RETURNED else values
        _decide(url, unit, final["so-vu-chay"], "accept", vn(2027, 9, 16))
    for day in SWEEP_DAYS:
        _enter("sweep")
        with session_scope(url) as session:
            sweep(session, DISTRICT, today=day)
        _dispatch(url, conf, vn(day.year, day.month, day.day, 10))
    _enter("consolidation")
    with session_scope(url) as session:
        consolidate(session, DISTRICT, "2027", CONSOLIDATION, now=CONSOLIDATED, settings=conf)
    _dispatch(url, conf, CONSOLIDATED + dt.timedelta(hours=1))
    _enter("closing")
    with session_scope(url) as session:
        cycle = session.scalar(select(Cycle.id).where(Cycle.key == "2027"))
        close_cycle(session, cycle, now=CLOSED)
    _dispatch(url, conf, CLOSED + dt.timedelta(hours=1))


def catch_up(url: str, conf: Settings) -> None:
    """What the next day's scheduled dispatch does: send what a dead process left leased
    (once its lease has run out, in real time: a real day later, it has)."""
    with session_scope(url) as session:
        until = session.scalar(
            select(func.max(OutboxMessage.next_attempt_at)).where(
                OutboxMessage.status == OutboxStatus.SENDING
            )
        )
    if until is not None:
        left = (until.replace(tzinfo=until.tzinfo or dt.UTC) - utcnow()).total_seconds()
        time.sleep(max(0.0, min(left, POLICY.lease_seconds)) + 0.05)
    _dispatch(url, conf, CLOSED + dt.timedelta(days=1))


def _jsonable(value: Any) -> Any:
    return json.loads(json.dumps(value, sort_keys=True, default=str))


def _named(session: Any, state: dict[str, Any]) -> dict[str, Any]:
    """``state`` with row ids replaced by what they name (cycle key, unit/deliverable):
    PostgreSQL's sequences skip the ids a rolled-back transaction took, so a run whose
    transactions failed and were run again has other ids for the same rows."""
    obligations = {
        o.id: f"{o.cycle.key}/{o.unit_id}/{o.deliverable_id}"
        for o in session.scalars(select(Obligation))
    }
    cycles = {c.id: c.key for c in session.scalars(select(Cycle))}
    text = json.dumps(state, sort_keys=True, default=str, ensure_ascii=False)
    text = re.sub(r"\bobl:(\d+):", lambda m: f"obl:{obligations[int(m[1])]}:", text)
    text = re.sub(r"\bcycle:(\d+):", lambda m: f"cycle:{cycles[int(m[1])]}:", text)
    text = re.sub(
        r'"obligation_id": (\d+)', lambda m: f'"obligation_id": "{obligations[int(m[1])]}"', text
    )
    named: dict[str, Any] = json.loads(text)
    named["outbox"] = sorted(named["outbox"])
    named["audit"] = sorted(
        [*row[:3], obligations.get(int(row[3]), row[3]) if row[3].isdigit() else row[3]]
        for row in named["audit"]
    )
    return named


def end_state(url: str) -> dict[str, Any]:
    """What a run leaves behind, without the wall-clock times it was written at and
    without row ids (:func:`_named`); Message-IDs are their idempotency key's."""
    with session_scope(url) as session:
        obligations = [
            (o.cycle.key, o.unit_id, o.deliverable_id, str(o.status), o.due_date.isoformat())
            for o in session.scalars(select(Obligation).order_by(Obligation.id))
        ]
        submissions = [
            (
                s.obligation.unit_id,
                s.obligation.deliverable_id,
                s.version,
                _jsonable(s.values),
                s.on_time,
                str(s.review_state),
                s.intake_done,
            )
            for s in session.scalars(select(Submission).order_by(Submission.id))
        ]
        outbox = sorted(
            (m.idempotency_key, m.message_id.strip("<>").partition("@")[0], m.kind, str(m.status))
            for m in session.scalars(select(OutboxMessage))
        )
        audit = sorted(
            (a.action, a.plan_id or "", a.actor, str(a.obligation_id))
            for a in session.scalars(select(AuditEvent))
        )
        reports = [
            (r.consolidation_id, r.revision, _jsonable(r.aggregates), _jsonable(r.status_table))
            for r in session.scalars(select(ConsolidatedReport).order_by(ConsolidatedReport.id))
        ]
        return _named(
            session,
            {
                "reports": reports,
                "obligations": obligations,
                "submissions": submissions,
                "outbox": outbox,
                "audit": audit,
            },
        )
