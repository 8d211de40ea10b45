"""Which consolidations of a plan to run now: on their due date, early, or a follow-up.

The intake, sweep and consolidate flows ask here and only carry the answer out:

- :func:`due_consolidations`: the consolidation's draft day has come: the first
  working day after the last due date of the units' answers it consolidates, never
  later than the duty's own due date (the upward date, as the calendar policy moved
  it, stored in the obligation row); the sweep and the consolidate flow run these.
  The consolidating unit then has the days up to the upward date to review, sign and
  send; an answer that comes later makes a revision (:func:`consolidated_before`).
- :func:`early_consolidations`: every unit of the fed deliverable has answered, so
  intake need not wait for the due date.
- :func:`consolidated_before`: the cycle was consolidated before these reports came;
  intake follows it up (``engine.consolidation.follow_up``: a revision while the duty
  is not due yet, a notice to the consolidating unit after).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.calendar import WorkCalendar, apply_policy
from engine.context import version_of_cycle
from engine.definitions_cache import current_calendar, plan_for_version
from engine.schema_time import DeadlinePolicy
from engine.states import CycleStatus, InstanceStatus, ObligationStatus
from engine.store.models import ConsolidatedReport, Cycle, Obligation, PlanInstance

Target = tuple[str, str, str]  # (plan id, cycle key, consolidation id)


@dataclass(frozen=True)
class Fed:
    """What one report taken in feeds (the fields of ``engine.lifecycle.IntakeResult``)."""

    plan_id: str
    cycle_key: str
    obligation_id: int
    consolidation_ids: Sequence[str]
    cycle_complete: bool  # every obligation of its deliverable in the cycle is done
    superseded: bool  # a newer version exists: this report changed nothing


def draft_day(calendar: WorkCalendar, upward: dt.date, answers_due: Iterable[dt.date]) -> dt.date:
    """The day a consolidation's first draft is written: the first working day after the
    latest of its units' due dates (``answers_due``), never after the upward date. When
    the units' deadline is not before the upward date (the loader refuses such a plan,
    "deadline-order"; an extension may still cause it), or no unit owes, the upward
    date itself."""
    latest = max(answers_due, default=None)
    if latest is None or latest >= upward:
        return upward
    after, _why = apply_policy(
        latest + dt.timedelta(days=1), DeadlinePolicy.next_working_day, calendar
    )
    return min(after, upward)


@dataclass(frozen=True)
class PendingConsolidation:
    """A consolidation duty of an open cycle not answered yet, and its draft day."""

    cycle_key: str
    consolidation_id: str
    draft_day: dt.date
    due_date: dt.date  # the upward date


def pending_consolidations(session: Session, plan_id: str) -> list[PendingConsolidation]:
    """The consolidation duties of the plan's open cycles still pending, each with its
    :func:`draft_day`, earliest draft first."""
    duties = session.execute(
        select(Cycle.id, Cycle.key, Obligation.deliverable_id, Obligation.due_date)
        .join(Cycle, Obligation.cycle_id == Cycle.id)
        .join(PlanInstance, Cycle.instance_id == PlanInstance.id)
        .where(
            PlanInstance.plan_id == plan_id,
            PlanInstance.status == InstanceStatus.ACTIVE,
            Obligation.kind == "consolidation",
            Obligation.status == ObligationStatus.PENDING,
            Cycle.status == CycleStatus.OPEN,
        )
    ).all()
    if not duties:
        return []
    calendar = WorkCalendar(current_calendar(session, "vn"))
    fed_of: dict[int, dict[str, str]] = {}
    out = []
    for cycle_id, key, consolidation_id, due in duties:
        if cycle_id not in fed_of:
            plan = plan_for_version(session, version_of_cycle(session, cycle_id))
            fed_of[cycle_id] = {c.id: c.consolidates for c in plan.consolidations}
        fed = fed_of[cycle_id].get(consolidation_id)
        answers_due = session.scalars(
            select(Obligation.due_date).where(
                Obligation.cycle_id == cycle_id,
                Obligation.deliverable_id == fed,
                Obligation.kind != "consolidation",
                Obligation.status != ObligationStatus.WAIVED,
            )
        ).all()
        out.append(
            PendingConsolidation(key, consolidation_id, draft_day(calendar, due, answers_due), due)
        )
    return sorted(out, key=lambda p: (p.draft_day, p.due_date, p.cycle_key))


def due_consolidations(session: Session, plan_id: str, day: dt.date) -> list[tuple[str, str]]:
    """(cycle key, consolidation id) of the open cycles whose consolidation duty is still
    pending and whose draft day (:func:`draft_day`) is on or before ``day``, earliest
    first."""
    return [
        (p.cycle_key, p.consolidation_id)
        for p in pending_consolidations(session, plan_id)
        if p.draft_day <= day
    ]


def consolidated(session: Session, obligation_id: int, consolidation_id: str) -> bool:
    """Whether the cycle of ``obligation_id`` has a report of ``consolidation_id``."""
    cycle_id = session.scalar(select(Obligation.cycle_id).where(Obligation.id == obligation_id))
    found = session.scalar(
        select(ConsolidatedReport.id).where(
            ConsolidatedReport.cycle_id == cycle_id,
            ConsolidatedReport.consolidation_id == consolidation_id,
        )
    )
    return found is not None


def early_consolidations(session: Session, taken: Iterable[Fed]) -> list[Target]:
    """The consolidations these reports completed and that are not written yet, once each
    (sorted): every unit has answered, so they may run before their due date."""
    complete = sorted(
        (fed.plan_id, fed.cycle_key, fed.obligation_id, c)
        for fed in taken
        if fed.cycle_complete and not fed.superseded
        for c in fed.consolidation_ids
    )
    seen: set[Target] = set()
    out: list[Target] = []
    for plan_id, cycle_key, obligation_id, consolidation_id in complete:
        target = (plan_id, cycle_key, consolidation_id)
        if target in seen:
            continue
        seen.add(target)
        if not consolidated(session, obligation_id, consolidation_id):
            out.append(target)
    return out


def consolidated_before(session: Session, taken: Iterable[Fed]) -> set[Target]:
    """The consolidations fed by these reports that were written before they came: each
    needs a follow-up (a revision, or a notice to the consolidating unit)."""
    fed = {
        (f.plan_id, f.cycle_key, c): f.obligation_id
        for f in taken
        if not f.superseded
        for c in f.consolidation_ids
    }
    return {target for target, oid in fed.items() if consolidated(session, oid, target[2])}
