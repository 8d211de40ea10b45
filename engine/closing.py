"""Closing a cycle: when it closes, what closing does, and the admin commands.

The rule (data, per plan): a cycle closes ``close_after_days`` (default 60, also the
grace of a signed link past its deadline) after its *last due date*, the latest due date among its
obligations, the consolidation duty included. That day is stored on the cycle as
``closes_on`` the first time a sweep sees the cycle without one, so the portal's links
expire at its end; the first sweep after it (``today > closes_on``) closes the cycle.
An administrator can close by hand (``kehoach close``) and reopen until a new date
(``kehoach reopen``), which sets ``closes_on`` again.

Closing (:func:`close_cycle`, one transaction, idempotent):

- submissions recorded but not taken in are taken in first (``engine.lifecycle.intake``);
- the cycle's status becomes ``closed`` (reopening restores ``open`` or ``consolidated``);
- obligations never answered keep their status ``pending`` (in the four-state table
  they stay "Chưa hoàn thành, quá hạn"): they are *missing*, listed by unit in the
  ``cycle.closed`` audit event, with who closed, when, and the counts;
- each consolidating unit (the unit the reports go through: via, else to) gets one
  closing summary email (kind ``cycle_closed``, key ``cycle:<id>:closed:<unit>:<day>``).

Like engine.lifecycle, every function takes the caller's session and an explicit time.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, cast

from sqlalchemy import CursorResult, func, select, update
from sqlalchemy.orm import Session, defer

from engine import audit_anchor
from engine.audit import write_audit
from engine.calendar import local_day, start_of_day
from engine.config import settings
from engine.context import PlanContext, context_for_obligation, plan_context, version_of_cycle
from engine.errors import KehoachError, NotFound
from engine.lifecycle.intake import take_in_waiting
from engine.outbox.closing_summary import queue_closing_summaries
from engine.outbox.kinds import MailKind
from engine.states import (
    OBLIGATION_OPEN,
    CycleStatus,
    InstanceStatus,
    ObligationStatus,
    OutboxStatus,
    ReviewState,
)
from engine.store.models import (
    Cycle,
    Obligation,
    OutboxMessage,
    PlanInstance,
    PlanVersion,
    Submission,
)
from engine.transitions import move_cycle

# How long after its last due date a cycle closes, unless the plan says; also how long
# a signed link stays valid after its deadline (portal.access).
DEFAULT_CLOSE_AFTER_DAYS = 60


class ClosingRefused(KehoachError):
    """A close or reopen that is not done (already closed, not closed, …); exit 1."""

    exit_code = 1


# ---------------------------------------------------------------- the rule


def last_due_date(session: Session, cycle_id: int) -> dt.date | None:
    """The latest due date among the cycle's obligations (None when it has none)."""
    return session.scalar(
        select(func.max(Obligation.due_date)).where(Obligation.cycle_id == cycle_id)
    )


def closes_on_for(last_due: dt.date, close_after_days: int | None) -> dt.date:
    """The day a cycle closes after: its last due date plus the plan's ``close_after_days``."""
    days = DEFAULT_CLOSE_AFTER_DAYS if close_after_days is None else close_after_days
    return last_due + dt.timedelta(days=days)


def _version(session: Session, instance_id: int) -> PlanVersion:
    version = session.scalar(
        select(PlanVersion)
        .join(PlanInstance, PlanInstance.plan_version_id == PlanVersion.id)
        .where(PlanInstance.id == instance_id)
        .options(defer(PlanVersion.definition))
    )
    assert version is not None  # an instance always has its version (foreign key)
    return version


def _close_after_days(session: Session, cycle: Cycle) -> int:
    from engine.definitions_cache import plan_for_version

    return plan_for_version(session, _version(session, cycle.instance_id)).close_after_days


def computed_closes_on(session: Session, cycle: Cycle) -> dt.date | None:
    """``closes_on`` by the plan's rule (None when the cycle owes nothing yet)."""
    last = last_due_date(session, cycle.id)
    if last is None:
        return None
    return closes_on_for(last, _close_after_days(session, cycle))


def ensure_closes_on(session: Session, cycle: Cycle, *, now: dt.datetime) -> bool:
    """Store ``closes_on`` by the rule when the cycle has none; True when it was set."""
    if cycle.closes_on is not None:
        return False
    day = computed_closes_on(session, cycle)
    if day is None:
        return False
    cycle.closes_on = day
    plan_id = session.scalar(
        select(PlanInstance.plan_id).where(PlanInstance.id == cycle.instance_id)
    )
    write_audit(
        session,
        "cycle.closes_on",
        at=now,
        actor="system",
        plan_id=plan_id,
        cycle=cycle.key,
        cycle_id=cycle.id,
        closes_on=day.isoformat(),
    )
    session.flush()
    return True


# ---------------------------------------------------------------- finding a cycle


def find_cycle(session: Session, plan_id: str, cycle_key: str) -> Cycle:
    """The cycle ``cycle_key`` of the plan's active instances.

    Raises NotFound (exit 4) when the plan is not loaded or has no such cycle."""
    from engine.repository import plan_version

    plan_version(session, plan_id)  # NotFound with a hint when the plan is unknown
    cycle = session.scalar(
        select(Cycle)
        .join(PlanInstance, Cycle.instance_id == PlanInstance.id)
        .where(
            PlanInstance.plan_id == plan_id,
            PlanInstance.status == InstanceStatus.ACTIVE,
            Cycle.key == str(cycle_key),
        )
        .order_by(PlanInstance.id.desc())
        .limit(1)
    )
    if cycle is None:
        known = session.scalars(
            select(Cycle.key)
            .join(PlanInstance, Cycle.instance_id == PlanInstance.id)
            .where(PlanInstance.plan_id == plan_id, PlanInstance.status == InstanceStatus.ACTIVE)
            .order_by(Cycle.key)
        ).all()
        hint = (
            f"các kỳ hiện có / existing cycles: {', '.join(known)}"
            if known
            else (
                f"kế hoạch chưa được kích hoạt / the plan is not activated: "
                f"run `kehoach activate {plan_id}` (or its activate flow)"
            )
        )
        raise NotFound(
            f"Kỳ '{cycle_key}' của kế hoạch {plan_id} không tồn tại / "
            f"cycle '{cycle_key}' of plan {plan_id} does not exist; {hint}"
        )
    return cycle


# ---------------------------------------------------------------- closing

# Queued emails about a deadline: cancelled when their cycle closes before they go out.
STALE_WHEN_CLOSED = (MailKind.REMINDER, MailKind.OVERDUE, MailKind.ESCALATION, MailKind.DIGEST)


@dataclass(frozen=True)
class Missing:
    obligation_id: int
    unit_id: str
    unit_name: str
    deliverable_id: str
    deliverable_title: str
    kind: str
    due_date: dt.date
    returned: bool  # sent once, returned for revision, never sent again

    def as_dict(self) -> dict[str, Any]:
        return {
            "obligation_id": self.obligation_id,
            "unit_id": self.unit_id,
            "unit_name": self.unit_name,
            "deliverable_id": self.deliverable_id,
            "kind": self.kind,
            "due_date": self.due_date.isoformat(),
            "returned": self.returned,
        }


@dataclass(frozen=True)
class ClosingResult:
    plan_id: str
    cycle_id: int
    cycle_key: str
    closed: bool  # this call closed the cycle
    already_closed: bool  # it was closed before: nothing changed
    closes_on: dt.date | None
    by: str
    counts: dict[str, int] = field(default_factory=dict)
    missing: list[Missing] = field(default_factory=list)
    intakes: list[int] = field(default_factory=list)  # submissions taken in first
    emails: list[str] = field(default_factory=list)  # outbox keys queued by this call
    forced: bool = False

    @property
    def label(self) -> str:
        return f"{self.plan_id} · {self.cycle_key}"

    def summary(self) -> str:
        c = self.counts
        return (
            f"{self.plan_id} kỳ {self.cycle_key} đã đóng: {c.get('total', 0)} nghĩa vụ, "
            f"{c.get('on_time', 0)} đúng hạn, {c.get('late', 0)} quá hạn, "
            f"{c.get('waived', 0)} được miễn, {c.get('missing', 0)} không nộp"
        )


def pending_consolidations(session: Session, cycle_id: int) -> list[Obligation]:
    return list(
        session.scalars(
            select(Obligation)
            .where(
                Obligation.cycle_id == cycle_id,
                Obligation.kind == "consolidation",
                Obligation.status.in_(OBLIGATION_OPEN),
            )
            .order_by(Obligation.id)
        )
    )


def close_cycle(
    session: Session,
    cycle_id: int,
    *,
    now: dt.datetime,
    by: str = "system",
    force: bool = True,
    reason: str | None = None,
) -> ClosingResult:
    """Close one cycle in the caller's transaction; a closed cycle is left as it is.

    ``force=False`` refuses (ClosingRefused) while a consolidation duty of the cycle is
    still pending; the daily sweep closes with ``force=True`` (60 days after the last
    due date a pending consolidation is missing like any other report).
    """
    cycle = session.scalar(
        select(Cycle)
        .where(Cycle.id == cycle_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    if cycle is None:
        raise ClosingRefused(f"cycle {cycle_id} does not exist")
    version = version_of_cycle(session, cycle.id)
    plan_id = version.plan_id
    if cycle.status is CycleStatus.CLOSED:
        return ClosingResult(plan_id, cycle.id, cycle.key, False, True, cycle.closes_on, by)
    if not force:
        _refuse_while_consolidation_pending(session, cycle, plan_id)

    intakes = _lock_and_take_in(session, cycle, now)
    ctx = plan_context(session, version)
    rows = list(
        session.scalars(
            select(Obligation).where(Obligation.cycle_id == cycle.id).order_by(Obligation.id)
        )
    )
    missing = _missing(session, ctx, rows)
    counts = _counts(rows, missing)
    if cycle.closes_on is None:
        cycle.closes_on = computed_closes_on(session, cycle)
    previous = cycle.status
    # closed although its consolidation never ran (only with force=True)
    forced = bool(pending_consolidations(session, cycle.id))
    cancelled = _cancel_stale_emails(session, cycle, rows)
    record: dict[str, Any] = {
        "cycle": cycle.key,
        "cycle_id": cycle.id,
        "closed_on": local_day(now).isoformat(),
        "closes_on": cycle.closes_on.isoformat() if cycle.closes_on else None,
        "previous_status": previous,
        "counts": counts,
        "missing": [m.as_dict() for m in missing],
        "missing_units": sorted({m.unit_id for m in missing}),
        "intakes": intakes,
        "forced": forced,
        "cancelled_emails": cancelled,
        "reason": (reason or "").strip() or None,
    }
    move_cycle(
        session, cycle, CycleStatus.CLOSED, at=now, action="cycle.closed", actor=by,
        plan_id=plan_id, **record,
    )  # fmt: skip
    session.flush()
    emails = queue_closing_summaries(session, ctx, cycle, rows, missing, counts, now, by)
    audit_anchor.after_commit(session, settings(), reason=f"đóng kỳ {plan_id} {cycle.key}", now=now)
    return ClosingResult(
        plan_id=plan_id,
        cycle_id=cycle.id,
        cycle_key=cycle.key,
        closed=True,
        already_closed=False,
        closes_on=cycle.closes_on,
        by=by,
        counts=counts,
        missing=missing,
        intakes=intakes,
        emails=emails,
        forced=forced,
    )


def _lock_and_take_in(session: Session, cycle: Cycle, now: dt.datetime) -> list[int]:
    # Lock the cycle's obligations first (PostgreSQL): an answer being recorded holds its
    # obligation's lock, so it commits before closing looks for waiting answers, and one
    # that comes later waits for this transaction. (On SQLite one writer at a time.)
    session.execute(
        select(Obligation.id).where(Obligation.cycle_id == cycle.id).with_for_update()
    ).all()
    # Answers already in the database are taken in before the cycle closes on them.
    return take_in_waiting(session, now=now, cycle_id=cycle.id)


def _refuse_while_consolidation_pending(session: Session, cycle: Cycle, plan_id: str) -> None:
    pending = pending_consolidations(session, cycle.id)
    if not pending:
        return
    ctx = context_for_obligation(session, pending[0])
    names = ", ".join(
        f"{ctx.title(o.deliverable_id)} ({ctx.unit_name(o.unit_id)})" for o in pending
    )
    raise ClosingRefused(
        f"Kỳ {cycle.key} của {plan_id} còn báo cáo tổng hợp chưa thực hiện: {names} / "
        f"cycle {cycle.key} still has a pending consolidation; consolidate first "
        "or close with --force"
    )


def _missing(session: Session, ctx: PlanContext, rows: Sequence[Obligation]) -> list[Missing]:
    """The duties nobody answered (or answered, was returned, and did not send again)."""
    returned = set(
        session.scalars(
            select(Submission.obligation_id).where(
                Submission.obligation_id.in_([o.id for o in rows if o.status.open] or [-1]),
                Submission.review_state == ReviewState.RETURNED,
            )
        )
    )
    return [
        Missing(
            obligation_id=o.id,
            unit_id=o.unit_id,
            unit_name=ctx.unit_name(o.unit_id),
            deliverable_id=o.deliverable_id,
            deliverable_title=ctx.title(o.deliverable_id),
            kind=o.kind,
            due_date=o.due_date,
            returned=o.id in returned,
        )
        for o in rows
        if o.status.open
    ]


def _counts(rows: Sequence[Obligation], missing: Sequence[Missing]) -> dict[str, int]:
    return {
        "total": len(rows),
        "on_time": sum(1 for o in rows if o.status.answered and o.on_time),
        "late": sum(1 for o in rows if o.status.answered and o.on_time is False),
        "waived": sum(1 for o in rows if o.status is ObligationStatus.WAIVED),
        "missing": len(missing),
    }


def _cancel_stale_emails(session: Session, cycle: Cycle, rows: Sequence[Obligation]) -> int:
    """Reminders and the like not sent yet speak of a deadline that no longer counts."""
    done = session.execute(
        update(OutboxMessage)
        .where(
            OutboxMessage.obligation_id.in_([o.id for o in rows] or [-1]),
            OutboxMessage.status == OutboxStatus.PENDING,
            OutboxMessage.kind.in_(STALE_WHEN_CLOSED),
        )
        .values(status=OutboxStatus.CANCELLED, last_error=f"cycle {cycle.key} closed")
        .execution_options(synchronize_session=False)
    )
    return int(cast(CursorResult[Any], done).rowcount)


# ---------------------------------------------------------------- reopening


def reopen_cycle(
    session: Session,
    plan_id: str,
    cycle_key: str,
    *,
    until: dt.date,
    reason: str,
    by: str,
    now: dt.datetime,
) -> Cycle:
    """Reopen a closed cycle until the end of ``until`` (its new ``closes_on``)."""
    text = (reason or "").strip()
    if not text:
        raise ClosingRefused("Cần nêu lý do mở lại kỳ / a reason (--reason) is required")
    found = find_cycle(session, plan_id, cycle_key)
    cycle = session.scalar(
        select(Cycle)
        .where(Cycle.id == found.id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    assert cycle is not None
    if cycle.status is not CycleStatus.CLOSED:
        raise ClosingRefused(
            f"Kỳ {cycle.key} của {plan_id} chưa đóng / cycle {cycle.key} of {plan_id} is not "
            f"closed (status {cycle.status}, closes after {cycle.closes_on or 'not set yet'})"
        )
    today = local_day(now)
    if until < today:
        raise ClosingRefused(
            f"Ngày --until {until.isoformat()} đã qua / --until {until.isoformat()} is in the "
            f"past (today is {today.isoformat()}); give today or a later day"
        )
    before = cycle.closes_on
    status = CycleStatus.CONSOLIDATED if cycle.consolidated_at is not None else CycleStatus.OPEN
    cycle.closes_on = until
    move_cycle(
        session,
        cycle,
        status,
        reopen=True,
        at=now,
        action="cycle.reopened",
        actor=by,
        plan_id=plan_id,
        cycle=cycle.key,
        cycle_id=cycle.id,
        until=until.isoformat(),
        previous_closes_on=before.isoformat() if before else None,
        status=status,
        reason=text,
    )
    session.flush()
    return cycle


# ---------------------------------------------------------------- the sweep's step


@dataclass
class DueClosing:
    plan_id: str
    today: dt.date
    closes_on_set: list[tuple[str, dt.date]] = field(default_factory=list)  # (cycle, day)
    due: list[tuple[int, str]] = field(default_factory=list)  # (cycle id, key) to close
    closed: list[ClosingResult] = field(default_factory=list)


def cycles_due(
    session: Session, plan_id: str, *, today: dt.date, now: dt.datetime | None = None
) -> DueClosing:
    """Store ``closes_on`` on the plan's open cycles that have none; list those past it."""
    moment = now or start_of_day(today)
    result = DueClosing(plan_id=plan_id, today=today)
    cycles = list(
        session.scalars(
            select(Cycle)
            .join(PlanInstance, Cycle.instance_id == PlanInstance.id)
            .where(
                PlanInstance.plan_id == plan_id,
                PlanInstance.status == InstanceStatus.ACTIVE,
                Cycle.status != CycleStatus.CLOSED,
            )
            .order_by(Cycle.key, Cycle.id)
        )
    )
    for cycle in cycles:
        if ensure_closes_on(session, cycle, now=moment):
            assert cycle.closes_on is not None
            result.closes_on_set.append((cycle.key, cycle.closes_on))
        if cycle.closes_on is not None and today > cycle.closes_on:
            result.due.append((cycle.id, cycle.key))
    return result


def close_due_cycles(
    session: Session, plan_id: str, *, today: dt.date, now: dt.datetime | None = None
) -> DueClosing:
    """After the daily sweep: store missing ``closes_on`` days, close cycles past theirs
    (the day after ``closes_on``). Idempotent: ``closes_on`` is set once, a cycle closed
    once. The sweep flow does the same in two steps, one named task run per cycle."""
    moment = now or start_of_day(today)
    result = cycles_due(session, plan_id, today=today, now=moment)
    for cycle_id, _key in result.due:
        result.closed.append(close_cycle(session, cycle_id, now=moment, by="system"))
    return result
