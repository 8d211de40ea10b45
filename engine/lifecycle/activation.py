"""Activation: a plan version's instance, its cycles and one obligation per duty.

Idempotent: obligations are upserts keyed by (cycle, unit, deliverable) and every
assignment email carries a stable idempotency key written in the same transaction.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from engine.audit import write_audit
from engine.calendar import (
    CycleSpec,
    Deadline,
    cycle_from_key,
    cycles_in_year,
    deadline,
    local_day,
)
from engine.config import settings
from engine.context import PlanContext, plan_context
from engine.errors import KehoachError
from engine.lifecycle.sweep_days import ASSIGNMENT_SENT, ladder_for, next_sweep_day
from engine.outbox.context import ContextBuilder
from engine.outbox.requests import queue_assignments, queue_supporting
from engine.periods import counting_from, effective_date, opens_on, owed
from engine.repository import (
    plan_version,
)
from engine.schema import Consolidation, Deliverable, Frequency, Plan
from engine.states import (
    CycleStatus,
    InstanceStatus,
    ObligationStatus,
)
from engine.store.models import (
    Cycle,
    Obligation,
    PlanInstance,
    PlanVersion,
)
from engine.ended import Ended, ended_notes, held_units, note_ended

log = logging.getLogger(__name__)
# New obligations are written and mailed this many at a time (bounded memory).
CHUNK = 2000


@dataclass(frozen=True)
class ActivationResult:
    plan_id: str
    plan_version: int
    instance_id: int
    created: int  # obligations created by this call
    existing: int  # obligations that were already there (untouched)
    units: int  # distinct units owing something in the cycles touched
    cycles: list[str]  # cycle keys touched
    queued: int  # assignment emails queued
    transferred: int  # new obligations owed by a successor of an assigned unit
    new_obligation_ids: list[int] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    # units that ended with no successor: their duties are held, owed by nobody
    held: list[str] = field(default_factory=list)


def _instance(
    session: Session, version: PlanVersion, now: dt.datetime
) -> tuple[PlanInstance, bool]:
    instance = session.scalar(
        select(PlanInstance).where(
            PlanInstance.plan_id == version.plan_id, PlanInstance.plan_version_id == version.id
        )
    )
    if instance is not None:
        return instance, False
    instance = PlanInstance(
        plan_id=version.plan_id,
        plan_version_id=version.id,
        activated_at=now,
        activated_on=local_day(now),
        status=InstanceStatus.ACTIVE,
    )
    session.add(instance)
    session.flush()
    return instance, True


def activate(
    session: Session,
    plan_id: str,
    *,
    now: dt.datetime,
    years: Iterable[int] | None = None,
    version: int | None = None,
) -> ActivationResult:
    """Create (or complete) the plan's instance, its cycles and one obligation per duty.

    ``years`` defaults to the year of ``now`` in Viet Nam; one-off deliverables (sub-plans)
    get the 'once' cycle.  Assigned groups expand against the registry as of the plan's
    ``as_of``; a unit no longer valid on a cycle's deadline passes its duty to its
    successor (``transferred_from``).  Re-running creates nothing and queues nothing.
    """
    row = plan_version(session, plan_id, version)
    ctx = plan_context(session, row)
    instance, new = _instance(session, row, now)
    if new:
        write_audit(
            session,
            "plan.activated",
            at=now,
            plan_id=plan_id,
            version=row.version,
            instance_id=instance.id,
        )
    wanted = sorted(set(years)) if years is not None else [local_day(now).year]
    return _materialize(session, ctx, instance, wanted, now)


def start_cycle(session: Session, plan_id: str, year: int, *, now: dt.datetime) -> ActivationResult:
    """The yearly cycle start: the year's cycles and obligations (upsert, like activate)."""
    return activate(session, plan_id, now=now, years=[year])


class ObligationBeforePlan(KehoachError):
    """An obligation due before the plan took effect: refused, nothing is written."""


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


def _fed(plan: Plan, deliverable_id: str) -> Deliverable | None:
    """The deliverable whose periods a duty follows (a consolidation: the one it gathers)."""
    found = plan.deliverable(deliverable_id)
    if found is not None:
        return found
    duty: Consolidation | None = next(
        (c for c in plan.consolidations if c.id == deliverable_id), None
    )
    return plan.deliverable(duty.consolidates) if duty is not None else None


def opening_days(
    ctx: PlanContext,
    instance: PlanInstance,
    obligations: Sequence[Obligation],
    cycle_keys: dict[int, str],
) -> dict[int, dt.date | None]:
    """Obligation id -> the day its period opens (None: open from activation), computed
    once per deliverable and cycle key."""
    seen: dict[tuple[str, str], dt.date | None] = {}
    return {
        o.id: _from_its_start(
            ctx,
            instance,
            getattr(o, "unit_id", None),  # the digest passes (id, deliverable, cycle) rows
            _opening_day(ctx, instance, o.deliverable_id, cycle_keys[o.cycle_id], seen),
        )
        for o in obligations
    }


def _from_its_start(
    ctx: PlanContext, instance: PlanInstance, unit_id: str | None, opens: dt.date | None
) -> dt.date | None:
    """A duty owed by a unit that does not exist yet (the heir of a merger to come)
    opens the day the unit begins: it is told then, never before (engine.successors)."""
    unit = ctx.view.unit(unit_id) if unit_id else None
    if unit is not None and unit.valid_from > (opens or instance.activated_on):
        return unit.valid_from
    return opens


def _opening_day(
    ctx: PlanContext,
    instance: PlanInstance,
    deliverable_id: str,
    cycle_key: str,
    seen: dict[tuple[str, str], dt.date | None],
) -> dt.date | None:
    """The day a duty's period opens (None: open from activation), once per key."""
    fed = _fed(ctx.plan, deliverable_id)
    if fed is None:
        return None
    if (fed.id, cycle_key) not in seen:
        seen[(fed.id, cycle_key)] = opens_on(
            ctx.plan, fed, cycle_from_key(cycle_key), instance.activated_on, ctx.calendar
        )
    return seen[(fed.id, cycle_key)]


def _first_sweep_days(
    ctx: PlanContext,
    instance: PlanInstance,
    rows: list[dict[str, Any]],
    cycle_keys: dict[int, str],
    today: dt.date,
) -> None:
    """Each new duty's first day the sweep has something to do for it (next_sweep_on);
    a period open by ``today`` has its assignment mailed now, the others on opening."""
    seen: dict[tuple[str, str], dt.date | None] = {}
    for row in rows:
        opens = _from_its_start(
            ctx,
            instance,
            row["unit_id"],
            _opening_day(ctx, instance, row["deliverable_id"], cycle_keys[row["cycle_id"]], seen),
        )
        told = (ASSIGNMENT_SENT,) if opens is not None and opens <= today else ()
        row["next_sweep_on"] = next_sweep_day(
            ladder_for(ctx.plan, row["deliverable_id"]),
            row["due_date"],
            today,
            opens=opens,
            sent=told,
        )


def open_now(
    ctx: PlanContext,
    instance: PlanInstance,
    obligations: Sequence[Obligation],
    cycle_keys: dict[int, str],
    today: dt.date,
) -> list[Obligation]:
    """The obligations whose period is open on ``today``."""
    days = opening_days(ctx, instance, obligations, cycle_keys)
    return [o for o in obligations if (day := days[o.id]) is None or day <= today]


def _check_not_before_plan(plan: Plan, rows: list[dict[str, Any]]) -> None:
    """The invariant: no obligation is due before the plan takes effect."""
    start = effective_date(plan)
    early = [r for r in rows if r["due_date"] < start]
    if early:
        first = min(early, key=lambda r: r["due_date"])
        raise ObligationBeforePlan(
            f"{plan.id}: {len(early)} nghĩa vụ có hạn trước ngày kế hoạch có hiệu lực "
            f"({start:%d/%m/%Y}), ví dụ '{first['deliverable_id']}' của {first['unit_id']} hạn "
            f"{first['due_date']:%d/%m/%Y}; không ghi gì. Kiểm tra first_period, deadline "
            "hoặc effective_date của kế hoạch (kehoach validate)."
        )


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


def _materialize(
    session: Session,
    ctx: PlanContext,
    instance: PlanInstance,
    years: Sequence[int],
    now: dt.datetime,
) -> ActivationResult:
    plan = ctx.plan
    warnings: list[str] = []
    cycles, per_deliverable, wanted = _cycles(session, ctx, instance, years, warnings)
    desired = _Desired(now)
    ended: dict[str, Ended] = {}
    _want_reports(ctx, instance, cycles, per_deliverable, desired, ended)
    _want_consolidations(ctx, instance, cycles, per_deliverable, desired, ended)
    warnings += ended_notes(ctx.view, ended)
    rows, existing_count = _not_held(session, cycles, desired)
    _check_not_before_plan(plan, rows)
    keys = {c.id: c.key for c in cycles.values()}
    late = sorted({keys[r["cycle_id"]] for r in rows if r["due_date"] < local_day(now)})
    if late:
        warnings.append(
            f"kỳ {', '.join(late)} đã quá hạn khi kích hoạt: các đơn vị được giao ngay và bị "
            "tính là quá hạn từ lần quét hạn tới"
        )
    _first_sweep_days(ctx, instance, rows, keys, local_day(now))
    made = _write_in_chunks(session, ctx, instance, rows, keys, now, desired.sources)
    if made.ids:
        write_audit(
            session,
            "cycle.started",
            at=now,
            plan_id=plan.id,
            instance_id=instance.id,
            cycles=sorted(wanted),
            created=len(made.ids),
            transferred=made.transferred,
            # successor obligations that took over from several abolished units
            merged=made.merged,
        )
        for warning in warnings:  # the caller shows them once, in Vietnamese
            log.info("%s: %s", plan.id, warning)
    return ActivationResult(
        plan_id=plan.id,
        plan_version=ctx.version.version,
        instance_id=instance.id,
        created=len(made.ids),
        existing=existing_count,
        units=len({key[1] for key in desired.rows}),
        cycles=sorted(wanted),
        queued=made.queued,
        transferred=made.transferred,
        new_obligation_ids=made.ids,
        warnings=warnings,
        held=held_units(ended),
    )


@dataclass
class _Made:
    """What the chunks wrote: the new obligations' ids, emails queued, successors."""

    ids: list[int] = field(default_factory=list)
    queued: int = 0
    transferred: int = 0
    merged: dict[str, list[str]] = field(default_factory=dict)


def _write_in_chunks(
    session: Session,
    ctx: PlanContext,
    instance: PlanInstance,
    rows: list[dict[str, Any]],
    keys: dict[int, str],
    now: dt.datetime,
    sources: dict[Triple, set[str]],
) -> _Made:
    """Insert the new obligations and queue the assignments of the open periods, CHUNK
    rows at a time, letting each chunk's objects go: memory holds one chunk, whatever
    the number of units (35,000 units held them all: 850 MB, issue 14)."""
    made = _Made()
    builder = ContextBuilder(session, settings(), now)  # the registry is read once
    today = local_day(now)
    for start in range(0, len(rows), CHUNK):
        chunk = list(
            session.scalars(insert(Obligation).returning(Obligation), rows[start : start + CHUNK])
        )
        # Periods not open yet are mailed by the sweep on the day they open.
        opened = open_now(ctx, instance, chunk, keys, today)
        made.queued += queue_assignments(session, opened, now, builder)
        made.queued += queue_supporting(session, ctx.plan, ctx.version.registry_id, opened, now)
        for o in chunk:
            made.ids.append(o.id)
            made.transferred += 1 if o.transferred_from else 0
            others = sources[(o.cycle_id, o.unit_id, o.deliverable_id)] - {o.unit_id}
            if len(others) > 1:
                made.merged[f"{o.unit_id}:{o.deliverable_id}:{o.cycle_id}"] = sorted(others)
            session.expunge(o)
    return made


def _cycles(
    session: Session,
    ctx: PlanContext,
    instance: PlanInstance,
    years: Sequence[int],
    warnings: list[str],
) -> tuple[dict[str, Cycle], dict[str, list[CycleSpec]], dict[str, CycleSpec]]:
    """The instance's cycles of ``years`` (created when missing), the specs of each
    deliverable, and the specs wanted by key.

    Running cycles keep the version they started with, so a key already owned by
    another active instance of this plan is left to that instance."""
    plan = ctx.plan
    taken = set(
        session.scalars(
            select(Cycle.key)
            .join(PlanInstance, Cycle.instance_id == PlanInstance.id)
            .where(
                PlanInstance.plan_id == plan.id,
                PlanInstance.id != instance.id,
                PlanInstance.status == InstanceStatus.ACTIVE,
            )
        )
    )
    cycles = {
        c.key: c for c in session.scalars(select(Cycle).where(Cycle.instance_id == instance.id))
    }
    wanted: dict[str, CycleSpec] = {}
    per_deliverable: dict[str, list[CycleSpec]] = {}
    owed_specs = {d.id: _owed_specs(ctx, instance, d, years) for d in plan.all_deliverables}
    for deliverable in plan.all_deliverables:
        specs = [s for s in owed_specs[deliverable.id] if s.key not in taken]
        per_deliverable[deliverable.id] = specs
        for spec in specs:
            wanted[spec.key] = spec
    skipped = sorted({s.key for specs in owed_specs.values() for s in specs} & taken)
    if skipped:
        warnings.append(f"cycles {', '.join(skipped)} run under an earlier version; left there")
    for key, spec in wanted.items():
        if key not in cycles:
            cycle = Cycle(
                instance_id=instance.id,
                key=key,
                period_start=spec.start,
                period_end=spec.end,
                status=CycleStatus.OPEN,
            )
            session.add(cycle)
            cycles[key] = cycle
    session.flush()
    return cycles, per_deliverable, wanted


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
    from engine.calendar import WorkCalendar

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
