"""Activation: a plan version's instance, its cycles and one obligation per duty.

Idempotent: obligations are upserts keyed by (cycle, unit, deliverable) and every
assignment email carries a stable idempotency key written in the same transaction.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from engine.audit import write_audit
from engine.calendar import (
    CycleSpec,
    cycle_from_key,
    local_day,
)
from engine.config import settings
from engine.context import PlanContext, plan_context
from engine.ended import Ended, ended_notes, held_units
from engine.errors import KehoachError
from engine.lifecycle.duties import (
    Triple,
    _Desired,
    _not_held,
    _owed_specs,
    _want_consolidations,
    _want_reports,
)
from engine.lifecycle.sweep_days import ASSIGNMENT_SENT, ladder_for, next_sweep_day
from engine.outbox.context import ContextBuilder
from engine.outbox.plan_notice import queue_plan_notices
from engine.outbox.requests import queue_assignments, queue_supporting
from engine.periods import effective_date, opens_on
from engine.repository import (
    plan_version,
)
from engine.schema import Consolidation, Deliverable, Plan
from engine.states import (
    CycleStatus,
    InstanceStatus,
)
from engine.store.models import (
    Cycle,
    Obligation,
    PlanInstance,
    PlanVersion,
)

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
    # plan emails queued to the Nơi nhận (engine.outbox.plan_notice), first activation only
    notified: int = 0


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
    result = _materialize(session, ctx, instance, wanted, now)
    if not new:
        return result
    # The plan itself to its Nơi nhận, once, after the duties (whose units it skips).
    notices = queue_plan_notices(session, ctx, instance, now)
    for warning in notices.warnings:
        log.info("%s: %s", plan_id, warning)
    return replace(
        result, notified=len(notices.keys), warnings=[*result.warnings, *notices.warnings]
    )


def start_cycle(session: Session, plan_id: str, year: int, *, now: dt.datetime) -> ActivationResult:
    """The yearly cycle start: the year's cycles and obligations (upsert, like activate)."""
    return activate(session, plan_id, now=now, years=[year])


class ObligationBeforePlan(KehoachError):
    """An obligation due before the plan took effect: refused, nothing is written."""


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
