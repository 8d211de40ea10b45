"""The duties activation wants: one per assigned unit, deliverable and cycle, owed by
who exists when it falls due (an heir for a unit that ended; none recorded: the duty is
held), and the consolidation points' own duties; which of them nobody holds yet.

Nothing here writes: engine.lifecycle.activation stores what :func:`_not_held` leaves,
ad-hoc requests (engine.requests_adhoc) reuse the same steps, and :func:`foresee_ended`
tells ahead what activating would do about units that ended.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.calendar import CycleSpec, Deadline, WorkCalendar, cycles_in_year, deadline
from engine.context import PlanContext
from engine.ended import Ended, note_ended
from engine.periods import counting_from, effective_date, owed
from engine.schema import Deliverable, Frequency, Plan
from engine.states import ObligationStatus
from engine.store.models import Cycle, Obligation, PlanInstance


def _cycle_specs(plan: Plan, frequency: Frequency, years: Sequence[int]) -> list[CycleSpec]:
    if frequency is Frequency.once:
        return cycles_in_year(frequency, years[0] if years else 2000)
    specs = []
    for year in years:
        if plan.start_year is not None and year < plan.start_year:
            continue
        if plan.end_year is not None and year > plan.end_year:
            continue
        specs.extend(cycles_in_year(frequency, year))
    return specs


def _owed_specs(
    ctx: PlanContext, instance: PlanInstance, deliverable: Deliverable, years: Sequence[int]
) -> list[CycleSpec]:
    """The deliverable's periods in ``years`` that the plan owes (none due before it)."""
    specs = _cycle_specs(ctx.plan, deliverable.frequency, years)
    return owed(ctx.plan, deliverable, specs, instance.activated_on, ctx.calendar)


def _members(ctx: PlanContext, deliverable: Deliverable) -> dict[str, list[str]]:
    """Assigned unit id -> assignment ids, as of the plan date, in registry order (a
    tracked task: its lead units)."""
    plan = ctx.plan
    task = plan.tracked.task_of(deliverable.id)
    if task is not None:
        ids = [task.assignment_id] if task.assignment_id else []
        return {unit.id: list(ids) for unit in ctx.view.resolve(task.lead, plan.as_of)}
    if deliverable.from_assignments == "all":
        assignments = list(plan.assignments)
    else:
        chosen = set(deliverable.from_assignments)
        assignments = [a for a in plan.assignments if a.id in chosen]
    members: dict[str, list[str]] = {}
    for assignment in assignments:
        for unit in ctx.view.resolve(assignment.to, plan.as_of):
            members.setdefault(unit.id, [])
            if assignment.id not in members[unit.id]:
                members[unit.id].append(assignment.id)
    return members


def _holders(
    ctx: PlanContext, unit_id: str, day: dt.date, deliverable_id: str | None = None
) -> list[str]:
    """Who carries ``unit_id``'s duty on ``day``: itself, its heirs (a split may name
    several), or nobody."""
    return [u.id for u in ctx.view.heirs(unit_id, day, deliverable_id)]


def _holder(
    ctx: PlanContext, unit_id: str, day: dt.date, deliverable_id: str | None = None
) -> str | None:
    """The first of :func:`_holders`, or None."""
    return next(iter(_holders(ctx, unit_id, day, deliverable_id)), None)


def _route(ctx: PlanContext, unit_id: str | None, day: dt.date) -> str | None:
    if unit_id is None:
        return None
    return _holder(ctx, unit_id, day) or unit_id


Triple = tuple[int, str, str]  # (cycle id, owner, deliverable id)


class _Desired:
    """The obligations activation wants, keyed by (cycle id, owner, deliverable), with
    the assigned units each one stands for (a successor's duty may stand for several)."""

    def __init__(self, now: dt.datetime) -> None:
        self.now = now
        self.rows: dict[Triple, dict[str, Any]] = {}
        self.sources: dict[Triple, set[str]] = {}

    def want(
        self,
        cycle: Cycle,
        owner: str,
        deliverable_id: str,
        kind: str,
        dl: Deadline,
        assignment_ids: list[str],
        routing: tuple[str | None, str | None],
        source: str,
    ) -> None:
        key = (cycle.id, owner, deliverable_id)
        self.sources.setdefault(key, set()).add(source)
        if key in self.rows:
            row = self.rows[key]
            row["assignment_ids"] += [a for a in assignment_ids if a not in row["assignment_ids"]]
            if source == owner:
                row["transferred_from"] = None
            return
        to, via = routing
        self.rows[key] = {
            "cycle_id": cycle.id,
            "unit_id": owner,
            "deliverable_id": deliverable_id,
            "kind": kind,
            "assignment_ids": list(assignment_ids),
            "to_unit_id": to,
            "via_unit_id": via,
            "nominal_date": dl.nominal,
            "due_date": dl.due,
            "due_reason": dl.reason,
            "status": ObligationStatus.PENDING,
            "overdue": False,
            "transferred_from": None if source == owner else source,
            "token_version": 1,
            "created_at": self.now,
            "updated_at": self.now,
        }


def _want_reports(
    ctx: PlanContext,
    instance: PlanInstance,
    cycles: dict[str, Cycle],
    per_deliverable: dict[str, list[CycleSpec]],
    desired: _Desired,
    ended: dict[str, Ended],
) -> None:
    """One duty per assigned unit, deliverable and cycle, owed by who exists when it
    falls due; ``ended`` gets each assigned unit no longer valid then, with its heirs
    (none: the duty is held, not created)."""
    for deliverable in ctx.plan.all_deliverables:  # tracked tasks too
        members = _members(ctx, deliverable)
        for spec in per_deliverable[deliverable.id]:
            cycle = cycles[spec.key]
            dl = deadline(
                deliverable.deadline,
                spec,
                counting_from(ctx.plan, instance.activated_on),
                ctx.calendar,
            )
            day = dl.nominal  # who owes it: the units that exist when it falls due
            routing = (
                _route(ctx, deliverable.routing.to, day),
                _route(ctx, deliverable.routing.via, day),
            )
            for unit_id, assignment_ids in members.items():
                owners = _holders(ctx, unit_id, day, deliverable.id)
                if owners != [unit_id]:
                    # Ended: its heirs owe it; with none recorded (yet) the duty is held
                    # for the administrator (no obligation, email or link for the dead);
                    # activating again after `kehoach registry apply` creates it.
                    note_ended(ended, unit_id, day, owners, deliverable.id)
                for owner in owners:
                    desired.want(
                        cycle,
                        owner,
                        deliverable.id,
                        deliverable.kind.value,
                        dl,
                        assignment_ids,
                        routing,
                        unit_id,
                    )


def _want_consolidations(
    ctx: PlanContext,
    instance: PlanInstance,
    cycles: dict[str, Cycle],
    per_deliverable: dict[str, list[CycleSpec]],
    desired: _Desired,
    ended: dict[str, Ended],
) -> None:
    """The consolidation point's own duty, per cycle of the report it consolidates
    (owed by its heir once it ended; held when it has none)."""
    for consolidation in ctx.plan.consolidations:
        fed = ctx.plan.deliverable(consolidation.consolidates)
        if fed is None:
            continue
        for spec in per_deliverable.get(fed.id, []):
            dl = deadline(
                consolidation.deadline,
                spec,
                counting_from(ctx.plan, instance.activated_on),
                ctx.calendar,
            )
            owner = _holder(ctx, consolidation.by, dl.nominal, consolidation.id)
            if owner != consolidation.by:
                heirs = [owner] if owner else []
                note_ended(ended, consolidation.by, dl.nominal, heirs, consolidation.id)
            if owner is None:
                continue
            desired.want(
                cycles[spec.key],
                owner,
                consolidation.id,
                "consolidation",
                dl,
                [],
                (
                    _route(ctx, consolidation.routing.to, dl.nominal),
                    _route(ctx, consolidation.routing.via, dl.nominal),
                ),
                consolidation.by,
            )


def _not_held(
    session: Session, cycles: dict[str, Cycle], desired: _Desired
) -> tuple[list[dict[str, Any]], int]:
    """The desired rows nobody holds yet, and how many are held already.

    Existing obligations count by owner and by the unit they were transferred from: a
    duty already held (or already moved by a sweep) is never created twice."""
    cycle_ids = [c.id for c in cycles.values()]
    held: set[Triple] = set()
    if cycle_ids:
        for cycle_id, unit_id, deliverable_id, moved_from in session.execute(
            select(
                Obligation.cycle_id,
                Obligation.unit_id,
                Obligation.deliverable_id,
                Obligation.transferred_from,
            ).where(Obligation.cycle_id.in_(cycle_ids))
        ):
            held.add((cycle_id, unit_id, deliverable_id))
            if moved_from:
                held.add((cycle_id, moved_from, deliverable_id))
    rows = []
    existing = 0
    for triple, row in desired.rows.items():
        key_cycle, _owner, key_deliverable = triple
        sources = desired.sources[triple]
        if triple in held or any((key_cycle, s, key_deliverable) in held for s in sources):
            existing += 1
            continue
        rows.append(row)
    return rows, existing


def foresee_ended(
    plan: Plan,
    view: Any,
    calendar: Any,
    years: Sequence[int],
    activated_on: dt.date | None = None,
) -> dict[str, Ended]:
    """What activating ``plan`` for ``years`` would do about units that ended (their
    heirs, or nobody), worked out by the same steps as :func:`activate` without writing
    anything (``kehoach calendar``, ``simulate``, ``deploy``)."""
    ctx = PlanContext(
        version=None,  # type: ignore[arg-type]  # nothing stored is read
        plan=plan,
        view=view,
        calendar_loader=lambda: WorkCalendar(calendar),
    )
    instance = PlanInstance(activated_on=activated_on or effective_date(plan))
    per_deliverable = {d.id: _owed_specs(ctx, instance, d, years) for d in plan.deliverables}
    keys = sorted({s.key for specs in per_deliverable.values() for s in specs})
    cycles = {key: Cycle(id=index, key=key) for index, key in enumerate(keys)}
    desired = _Desired(dt.datetime.now(dt.UTC))
    ended: dict[str, Ended] = {}
    _want_reports(ctx, instance, cycles, per_deliverable, desired, ended)
    _want_consolidations(ctx, instance, cycles, per_deliverable, desired, ended)
    return ended
