"""The days a simulation sweeps besides the pending duties' own (workflows.simulate): the
day a next period opens, the day after a cycle's close, the day a consolidation is
drafted, and the review-by day of a report still in draft; and the morning mail held
outside the sending window goes."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

from sqlalchemy import select

from engine.calendar import WorkCalendar
from engine.config import settings
from engine.definitions_cache import current_calendar
from engine.outbox.timing import SendingWindow
from engine.states import CycleStatus, InstanceStatus, OutboxStatus
from engine.store.db import session_scope
from engine.store.models import ConsolidatedReport, Cycle, Obligation, OutboxMessage, PlanInstance


def sweep_days(url: str, plans: Iterable[str]) -> list[tuple[dt.date, str]]:
    """(day, plan id) of each such sweep."""
    plans = list(plans)
    return (
        _closing_days(url, plans)
        + _opening_days(url, plans)
        + _consolidation_days(url, plans)
        + _draft_days(url, plans)
        + _digest_days(url, plans)
    )


def _digest_days(url: str, plans: Iterable[str]) -> list[tuple[dt.date, str]]:
    """The first working day of each week from six days before a consolidation duty's
    units' first reminder to the duty's own due date, and while a unit still owes its
    report to the cycle's close (``closes_on``, once a sweep stored it): a daily sweep
    makes the week's digest then (engine.lifecycle.digest_days), and the simulation
    sweeps only on the days something is due."""
    from engine.lifecycle.digest_days import is_digest_day
    from engine.lifecycle.sweep_days import ladder_for
    from engine.repository import current_plan

    days: set[tuple[dt.date, str]] = set()
    with session_scope(url) as session:
        calendar = WorkCalendar(current_calendar(session, "vn"))
        for plan_id in plans:
            plan = current_plan(session, plan_id)
            if plan is None:
                continue
            for consolidation in plan.consolidations:
                rows = session.execute(
                    select(
                        Cycle.id,
                        Obligation.kind,
                        Obligation.due_date,
                        Obligation.status,
                        Cycle.closes_on,
                    )
                    .join(Cycle, Obligation.cycle_id == Cycle.id)
                    .join(PlanInstance, Cycle.instance_id == PlanInstance.id)
                    .where(
                        PlanInstance.plan_id == plan_id,
                        Cycle.status != CycleStatus.CLOSED,
                        Obligation.deliverable_id.in_(
                            [consolidation.id, consolidation.consolidates]
                        ),
                    )
                ).all()
                ahead = max(ladder_for(plan, consolidation.consolidates), default=0) + 6
                for cycle_id in {row[0] for row in rows}:
                    mine = [r for r in rows if r[0] == cycle_id]
                    units = [r.due_date for r in mine if r.kind != "consolidation"]
                    duty = [r.due_date for r in mine if r.kind == "consolidation"]
                    if not units or not duty:
                        continue
                    # a unit still owing: the digest goes on until the cycle closes
                    owing = any(r.kind != "consolidation" and r.status.open for r in mine)
                    until = max(duty)
                    if owing and mine[0].closes_on is not None:
                        until = max(until, mine[0].closes_on)
                    day = min(units) - dt.timedelta(days=ahead)
                    while day <= until:
                        if is_digest_day(calendar, day):
                            days.add((day, plan_id))
                        day += dt.timedelta(days=1)
    return sorted(days)


def _opening_days(url: str, plans: Iterable[str]) -> list[tuple[dt.date, str]]:
    """The day after a due date of a deliverable with more than one period: its next
    period opens then and the sweep mails its assignments (engine.periods.opens_on)."""
    with session_scope(url) as session:
        rows = session.execute(
            select(PlanInstance.plan_id, Obligation.deliverable_id, Obligation.due_date)
            .join(Cycle, Obligation.cycle_id == Cycle.id)
            .join(PlanInstance, Cycle.instance_id == PlanInstance.id)
            .where(
                PlanInstance.plan_id.in_(list(plans)),
                PlanInstance.status == InstanceStatus.ACTIVE,
            )
            .distinct()
        ).all()
    dues: dict[tuple[str, str], set[dt.date]] = {}
    for plan_id, deliverable_id, due in rows:
        dues.setdefault((plan_id, deliverable_id), set()).add(due)
    return [
        (due + dt.timedelta(days=1), plan_id)
        for (plan_id, _deliverable), days in dues.items()
        if len(days) > 1
        for due in sorted(days)[:-1]  # the last period opens nothing after it
    ]


def _closing_days(url: str, plans: Iterable[str]) -> list[tuple[dt.date, str]]:
    """The day after each open cycle's ``closes_on`` (stored by its first sweep): the
    sweep closes the cycle then."""
    with session_scope(url) as session:
        rows = session.execute(
            select(Cycle.closes_on, PlanInstance.plan_id)
            .join(PlanInstance, Cycle.instance_id == PlanInstance.id)
            .where(
                PlanInstance.plan_id.in_(list(plans)),
                PlanInstance.status == InstanceStatus.ACTIVE,
                Cycle.status != CycleStatus.CLOSED,
                Cycle.closes_on.is_not(None),
            )
        ).all()
    return [
        (closes_on + dt.timedelta(days=1), plan_id)
        for closes_on, plan_id in rows
        if closes_on is not None  # the query asks for it; the type does not know
    ]


def _consolidation_days(url: str, plans: Iterable[str]) -> list[tuple[dt.date, str]]:
    """The draft day of each pending consolidation (engine.due.draft_day: the first
    working day after its units' last due date): the sweep of that day writes it."""
    from engine.due import pending_consolidations

    with session_scope(url) as session:
        return [
            (p.draft_day, plan_id)
            for plan_id in plans
            for p in pending_consolidations(session, plan_id)
        ]


def _draft_days(url: str, plans: Iterable[str]) -> list[tuple[dt.date, str]]:
    """The review-by day (engine.approval_deadlines) of each consolidated report still a
    draft: the sweep of that day approves and sends it (approve_drafts), as the
    consolidating unit does by then; a draft written on the upward date itself is due
    for review that day."""
    from engine.approval_deadlines import step_deadlines, stored_calendar
    from engine.states import ReportApproval

    with session_scope(url) as session:
        rows = session.execute(
            select(Obligation.due_date, PlanInstance.plan_id, ConsolidatedReport)
            .join(Cycle, Obligation.cycle_id == Cycle.id)
            .join(PlanInstance, Cycle.instance_id == PlanInstance.id)
            .join(
                ConsolidatedReport,
                (ConsolidatedReport.cycle_id == Cycle.id)
                & (ConsolidatedReport.consolidation_id == Obligation.deliverable_id),
            )
            .where(
                PlanInstance.plan_id.in_(list(plans)),
                Obligation.kind == "consolidation",
                ConsolidatedReport.approval == ReportApproval.DRAFT,
            )
        ).all()
        calendar = stored_calendar(session)
        return sorted(
            {
                (step_deadlines(session, due, report, calendar).review_by, plan_id)
                for due, plan_id, report in rows
            }
        )


def held_mail_opens(url: str, now: dt.datetime) -> dt.datetime | None:
    """When mail waiting now for the sending window (KEHOACH_MAIL_HOURS: a night, a Sunday,
    Tết) may go: the window's next opening, or None when none waits or the window is open.
    A running dispatcher sends it then; the simulation, which sends only at its own
    moments, would otherwise hold the plan's assignments until its next event (in the
    demo, 65 assignments of 1/1 reached the units on 27/1, after their first answers)."""
    with session_scope(url) as session:
        waiting = session.scalar(
            select(OutboxMessage.id).where(OutboxMessage.status == OutboxStatus.PENDING).limit(1)
        )
        if waiting is None:
            return None
        window = SendingWindow.from_text(
            settings().mail_hours, WorkCalendar(current_calendar(session, "vn"))
        )
    if window.is_open(now):
        return None
    return window.next_open(now)
