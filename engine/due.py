"""Which consolidations of a plan to run now: on their due date, early, or a follow-up.

The intake, sweep and consolidate flows ask here and only carry the answer out:

- :func:`due_consolidations`: the consolidation duty's due date (as the calendar
  policy moved it, stored in the obligation row) has come; the sweep and the
  consolidate flow run these.
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


def due_consolidations(session: Session, plan_id: str, day: dt.date) -> list[tuple[str, str]]:
    """(cycle key, consolidation id) of the open cycles whose consolidation duty is still
    pending and due on or before ``day``, earliest first."""
    rows = session.execute(
        select(Cycle.key, Obligation.deliverable_id)
        .join(Cycle, Obligation.cycle_id == Cycle.id)
        .join(PlanInstance, Cycle.instance_id == PlanInstance.id)
        .where(
            PlanInstance.plan_id == plan_id,
            PlanInstance.status == InstanceStatus.ACTIVE,
            Obligation.kind == "consolidation",
            Obligation.status == ObligationStatus.PENDING,
            Obligation.due_date <= day,
            Cycle.status == CycleStatus.OPEN,
        )
        .order_by(Obligation.due_date, Cycle.key)
    ).all()
    return [(key, consolidation) for key, consolidation in rows]


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
