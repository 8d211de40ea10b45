"""The life of a plan instance: activation, cycles, sweeps, submissions, intake, review.

Every function takes an explicit session (one transaction, committed by the caller)
and an explicit time; none reads the wall clock.  Every one is idempotent: re-running
it for the same inputs creates no second row and queues no second email, because
obligations are upserts keyed by (cycle, unit, deliverable) and every email carries
a stable idempotency key written in the same transaction as the change causing it.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, cast

from sqlalchemy import Table, bindparam, func, insert, or_, select
from sqlalchemy.orm import Session, defer, make_transient_to_detached

from engine.calendar import (
    CycleSpec,
    Deadline,
    WorkCalendar,
    cycles_in_year,
    deadline,
    end_of_day,
    local_day,
    start_of_day,
)
from engine.definitions_cache import plan_for_key, plan_for_version, registry_view_for
from engine.errors import KehoachError, NotFound
from engine.registry import RegistryView
from engine.repository import (
    current_calendar,
    plan_version,
)
from engine.schema import Consolidation, Deliverable, DeliverableKind, Frequency, Plan
from engine.store.models import (
    AuditEvent,
    Cycle,
    Obligation,
    OutboxMessage,
    PlanInstance,
    PlanVersion,
    StoredFile,
    Submission,
)

log = logging.getLogger(__name__)

OPEN = ("pending",)
DONE = ("submitted", "accepted", "waived")
DEFAULT_REMINDERS = (7, 3, 1)
ESCALATE_AFTER_DAYS = 3
FORM_ERROR = "_form"  # key of SubmissionRejected.errors for problems not tied to a field


class SubmissionRejected(KehoachError):
    """A submission that cannot be recorded; ``errors`` maps field ids to Vietnamese messages."""

    def __init__(self, errors: Mapping[str, str]) -> None:
        self.errors = dict(errors)
        super().__init__("; ".join(self.errors.values()))


class ReviewError(KehoachError):
    """A review decision that cannot be made (no reason, not the newest version…)."""


# ---------------------------------------------------------------- context


@dataclass
class PlanContext:
    """A plan version with what it is resolved against: registry and calendar."""

    version: PlanVersion
    plan: Plan
    view: RegistryView
    # Read on first use (only activation and sweeps compute deadlines).
    calendar_loader: Callable[[], WorkCalendar] = field(repr=False, compare=False)

    @cached_property
    def calendar(self) -> WorkCalendar:
        return self.calendar_loader()

    @property
    def plan_id(self) -> str:
        return self.plan.id

    def unit_name(self, unit_id: str | None) -> str:
        unit = self.view.unit(unit_id) if unit_id else None
        return unit.name if unit else (unit_id or "")

    def consolidation(self, consolidation_id: str) -> Consolidation | None:
        return next((c for c in self.plan.consolidations if c.id == consolidation_id), None)

    def title(self, deliverable_id: str) -> str:
        deliverable = self.plan.deliverable(deliverable_id)
        if deliverable is not None:
            return deliverable.title
        consolidation = self.consolidation(deliverable_id)
        if consolidation is not None:
            fed = self.plan.deliverable(consolidation.consolidates)
            return "Báo cáo tổng hợp" + (f": {fed.title}" if fed else "")
        return deliverable_id


def plan_context(session: Session, version: PlanVersion) -> PlanContext:
    """The plan, registry view and calendar of a version: parsed once per process
    (engine.definitions_cache), the registry being the current one of the plan's id."""
    return PlanContext(
        version=version,
        plan=plan_for_version(session, version),
        view=registry_view_for(session, version),
        calendar_loader=lambda: WorkCalendar(current_calendar(session, "vn")),
    )


_VERSION_OF_CYCLE = (
    select(PlanVersion)
    .join(PlanInstance, PlanInstance.plan_version_id == PlanVersion.id)
    .join(Cycle, Cycle.instance_id == PlanInstance.id)
    .where(Cycle.id == bindparam("cycle_id"))
    .options(defer(PlanVersion.definition))
)


def version_of_cycle(session: Session, cycle_id: int) -> PlanVersion:
    """The plan version a cycle runs under, in one query; its stored definition is read
    only if the parsed plan is not cached yet (engine.definitions_cache)."""
    version = session.scalar(_VERSION_OF_CYCLE, {"cycle_id": cycle_id})
    if version is None:
        raise NotFound(f"cycle {cycle_id} does not exist")
    return version


def context_for_obligation(session: Session, obligation: Obligation) -> PlanContext:
    return plan_context(session, version_of_cycle(session, obligation.cycle_id))


# ---------------------------------------------------------------- email + audit


def _queue(
    session: Session,
    obligation: Obligation,
    kind: str,
    step: str = "",
    extra: dict[str, Any] | None = None,
    now: dt.datetime | None = None,
) -> Any:
    """Queue one email about ``obligation`` in the caller's transaction (once per key)."""
    from notifications import outbox  # imported late: engine must load without it

    return outbox.enqueue_for_obligation(session, obligation, kind, step=step, extra=extra, now=now)


def _audit(
    session: Session,
    action: str,
    *,
    at: dt.datetime,
    plan_id: str | None,
    obligation_id: int | None = None,
    actor: str = "system",
    remote_addr: str | None = None,
    **data: Any,
) -> None:
    session.add(
        AuditEvent(
            at=at,
            actor=actor,
            action=action,
            plan_id=plan_id,
            obligation_id=obligation_id,
            remote_addr=remote_addr,
            data=data,
        )
    )


# ---------------------------------------------------------------- activation


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
        status="active",
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
        _audit(
            session,
            "plan.activated",
            at=now,
            plan_id=plan_id,
            version=row.version,
            instance_id=instance.id,
        )
    wanted = sorted(set(years)) if years is not None else [local_day(now).year]
    return _materialize(session, ctx, instance, wanted, now)


def cmd_activate(args: Any) -> int:
    """``kehoach activate PLAN [--year Y ...] [--at DATE]``: activate without Prefect (the
    deployed ``activate`` flow does the same on its schedule); idempotent."""
    from engine.clock import clock_from_env
    from engine.config import settings
    from engine.store.db import migrate, session_scope

    url = getattr(args, "database_url", None) or settings().database
    migrate(url)
    now = start_of_day(args.at) if getattr(args, "at", None) else clock_from_env().now()
    with session_scope(url) as session:
        result = activate(session, args.plan, now=now, years=getattr(args, "years", None))
    print(
        f"{result.plan_id} v{result.plan_version}: {result.created} nghĩa vụ mới, "
        f"{result.existing} đã có, {result.units} đơn vị, kỳ {', '.join(result.cycles)}, "
        f"{result.queued} email giao nhiệm vụ xếp hàng (gửi: kehoach dispatch)"
    )
    for warning in result.warnings:
        print(f"  lưu ý: {warning}")
    return 0


def start_cycle(session: Session, plan_id: str, year: int, *, now: dt.datetime) -> ActivationResult:
    """The yearly cycle start: the year's cycles and obligations (upsert, like activate)."""
    return activate(session, plan_id, now=now, years=[year])


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


def _members(ctx: PlanContext, deliverable: Deliverable) -> dict[str, list[str]]:
    """Assigned unit id -> assignment ids, as of the plan date, in registry order."""
    plan = ctx.plan
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


def _holder(ctx: PlanContext, unit_id: str, day: dt.date) -> str | None:
    """Who carries ``unit_id``'s duty on ``day``: itself, its successor, or nobody."""
    unit = ctx.view.unit(unit_id)
    if unit is None:
        return None
    if unit.valid_on(day):
        return unit.id
    successor = ctx.view.successor_on(unit_id, day)
    return successor.id if successor is not None else None


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

    # Cycles: running cycles keep the version they started with, so a key already
    # owned by another active instance of this plan is left to that instance.
    taken = set(
        session.scalars(
            select(Cycle.key)
            .join(PlanInstance, Cycle.instance_id == PlanInstance.id)
            .where(
                PlanInstance.plan_id == plan.id,
                PlanInstance.id != instance.id,
                PlanInstance.status == "active",
            )
        )
    )
    cycles = {
        c.key: c for c in session.scalars(select(Cycle).where(Cycle.instance_id == instance.id))
    }
    wanted: dict[str, CycleSpec] = {}
    per_deliverable: dict[str, list[CycleSpec]] = {}
    for deliverable in plan.deliverables:
        specs = [s for s in _cycle_specs(plan, deliverable.frequency, years) if s.key not in taken]
        per_deliverable[deliverable.id] = specs
        for spec in specs:
            wanted[spec.key] = spec
    skipped = sorted(
        {s.key for d in plan.deliverables for s in _cycle_specs(plan, d.frequency, years)} & taken
    )
    if skipped:
        warnings.append(f"cycles {', '.join(skipped)} run under an earlier version; left there")
    for key, spec in wanted.items():
        if key not in cycles:
            cycle = Cycle(
                instance_id=instance.id,
                key=key,
                period_start=spec.start,
                period_end=spec.end,
                status="open",
            )
            session.add(cycle)
            cycles[key] = cycle
    session.flush()

    # Desired obligations, keyed by (cycle id, unit, deliverable).
    desired: dict[tuple[int, str, str], dict[str, Any]] = {}
    sources: dict[tuple[int, str, str], set[str]] = {}

    def want(
        cycle: Cycle,
        owner: str,
        deliverable_id: str,
        kind: str,
        dl: Deadline,
        assignment_ids: list[str],
        to: str | None,
        via: str | None,
        source: str,
    ) -> None:
        key = (cycle.id, owner, deliverable_id)
        sources.setdefault(key, set()).add(source)
        if key in desired:
            row = desired[key]
            row["assignment_ids"] += [a for a in assignment_ids if a not in row["assignment_ids"]]
            if source == owner:
                row["transferred_from"] = None
            return
        desired[key] = {
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
            "status": "pending",
            "overdue": False,
            "transferred_from": None if source == owner else source,
            "token_version": 1,
            "created_at": now,
            "updated_at": now,
        }

    orphans: dict[str, dt.date] = {}
    for deliverable in plan.deliverables:
        members = _members(ctx, deliverable)
        for spec in per_deliverable[deliverable.id]:
            cycle = cycles[spec.key]
            dl = deadline(deliverable.deadline, spec, instance.activated_on, ctx.calendar)
            day = dl.nominal  # who owes it: the units that exist when it falls due
            to = _route(ctx, deliverable.routing.to, day)
            via = _route(ctx, deliverable.routing.via, day)
            for unit_id, assignment_ids in members.items():
                owner = _holder(ctx, unit_id, day)
                if owner is None:
                    # No successor recorded (yet): the duty stays with the unit, flagged,
                    # rather than vanishing; a sweep moves it once the registry names one.
                    orphans.setdefault(unit_id, day)
                    owner = unit_id
                want(
                    cycle,
                    owner,
                    deliverable.id,
                    deliverable.kind.value,
                    dl,
                    assignment_ids,
                    to,
                    via,
                    unit_id,
                )

    for unit_id, day in orphans.items():
        warnings.append(
            f"{unit_id} is not valid on {day} and the registry names no valid successor; "
            "its obligations stay with it until a successor is recorded"
        )

    for consolidation in plan.consolidations:
        fed = plan.deliverable(consolidation.consolidates)
        if fed is None:
            continue
        for spec in per_deliverable.get(fed.id, []):
            cycle = cycles[spec.key]
            dl = deadline(consolidation.deadline, spec, instance.activated_on, ctx.calendar)
            owner = _holder(ctx, consolidation.by, dl.nominal) or consolidation.by
            want(
                cycle,
                owner,
                consolidation.id,
                "consolidation",
                dl,
                [],
                _route(ctx, consolidation.routing.to, dl.nominal),
                _route(ctx, consolidation.routing.via, dl.nominal),
                consolidation.by,
            )

    # Existing obligations, by owner and by the unit they were transferred from: a
    # duty already held (or already moved by a sweep) is never created twice.
    cycle_ids = [c.id for c in cycles.values()]
    held: set[tuple[int, str, str]] = set()
    existing_count = 0
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
    for triple, row in desired.items():
        key_cycle, _owner, key_deliverable = triple
        if triple in held or any((key_cycle, s, key_deliverable) in held for s in sources[triple]):
            existing_count += 1
            continue
        rows.append(row)

    new_obligations: list[Obligation] = []
    if rows:
        new_obligations = list(session.scalars(insert(Obligation).returning(Obligation), rows))
    queued = _queue_assignments(session, new_obligations, now)
    transferred = sum(1 for o in new_obligations if o.transferred_from)

    units = {key[1] for key in desired}
    if new_obligations:
        _audit(
            session,
            "cycle.started",
            at=now,
            plan_id=plan.id,
            instance_id=instance.id,
            cycles=sorted(wanted),
            created=len(new_obligations),
            transferred=transferred,
            # successor obligations that took over from several abolished units
            merged={
                f"{o.unit_id}:{o.deliverable_id}:{o.cycle_id}": sorted(
                    sources[(o.cycle_id, o.unit_id, o.deliverable_id)] - {o.unit_id}
                )
                for o in new_obligations
                if len(sources[(o.cycle_id, o.unit_id, o.deliverable_id)] - {o.unit_id}) > 1
            },
        )
        for warning in warnings:
            log.warning("%s: %s", plan.id, warning)
    return ActivationResult(
        plan_id=plan.id,
        plan_version=ctx.version.version,
        instance_id=instance.id,
        created=len(new_obligations),
        existing=existing_count,
        units=len(units),
        cycles=sorted(wanted),
        queued=queued,
        transferred=transferred,
        new_obligation_ids=[o.id for o in new_obligations],
        warnings=warnings,
    )


MailRequest = tuple[Obligation, str, str, "dict[str, Any] | None"]  # obligation, kind, step, extra


def _queue_assignments(session: Session, obligations: list[Obligation], now: dt.datetime) -> int:
    """One 'assignment' email per new obligation, in bulk (thousands in well under a second)."""
    return _queue_many(session, [(o, "assignment", "", None) for o in obligations], now)


def _queue_many(session: Session, requests: list[MailRequest], now: dt.datetime) -> int:
    """Queue many emails at once; returns how many rows were new.

    ``enqueue_for_obligation`` costs a few queries per email (fine for one, 15 s for
    7,000); the outbox's bulk form reads the registry once and inserts with one
    executemany. Requests are grouped by kind, step and extra context (e.g. the days
    left of a reminder), which are few per sweep.
    """
    from notifications import outbox  # imported late: engine must load without it

    groups: dict[tuple[str, str, tuple[tuple[str, Any], ...]], list[Obligation]] = {}
    for obligation, kind, step, extra in requests:
        key = (kind, step, tuple(sorted((extra or {}).items())))
        groups.setdefault(key, []).append(obligation)
    new = 0
    for (kind, step, extra_items), obligations in groups.items():
        keys = outbox.enqueue_many_for_obligations(
            session, obligations, kind, step=step, extra=dict(extra_items) or None, now=now
        )
        new += len(keys)
    return new


# ---------------------------------------------------------------- sweep


@dataclass
class SweepResult:
    plan_id: str
    today: dt.date
    reminders: list[tuple[int, int]] = field(default_factory=list)  # (obligation id, days step)
    overdue: list[int] = field(default_factory=list)  # newly marked overdue
    escalations: list[int] = field(default_factory=list)
    transferred: list[tuple[int, str, str]] = field(default_factory=list)  # (id, from, to)
    intakes: list[int] = field(default_factory=list)  # submissions taken in late (catch-up)
    digests: list[int] = field(default_factory=list)  # consolidation duties sent a digest
    open_obligations: int = 0

    @property
    def changed(self) -> bool:
        return bool(
            self.reminders or self.overdue or self.escalations or self.transferred or self.intakes
        )

    def summary(self) -> str:
        return (
            f"{self.plan_id} {self.today}: {len(self.reminders)} nhắc hạn, "
            f"{len(self.overdue)} quá hạn mới, {len(self.escalations)} báo cáo lãnh đạo, "
            f"{len(self.transferred)} chuyển đơn vị kế thừa"
        )


def _reminder_step(
    ladder: Sequence[int], days_left: int, created_day: dt.date, due: dt.date, sent: set[int]
) -> int | None:
    """The most urgent reminder due and not sent yet; stale earlier steps are skipped."""
    due_steps = [
        step
        for step in ladder
        if step > 0 and days_left <= step and due - dt.timedelta(days=step) > created_day
    ]
    if days_left < 0 or not due_steps:
        return None
    step = min(due_steps)
    if step in sent or any(s in sent for s in ladder if s < step):
        return None
    return step


def _active_versions(session: Session, plan_id: str) -> list[tuple[PlanInstance, PlanVersion]]:
    return [
        (i, v)
        for i, v in session.execute(
            select(PlanInstance, PlanVersion)
            .join(PlanVersion, PlanInstance.plan_version_id == PlanVersion.id)
            .where(PlanInstance.plan_id == plan_id, PlanInstance.status == "active")
            .order_by(PlanInstance.id)
        ).all()
    ]


def sweep(
    session: Session, plan_id: str, *, today: dt.date, now: dt.datetime | None = None
) -> SweepResult:
    """Daily: catch up intakes, move duties of abolished units, remind, mark overdue, escalate.

    ``now`` (default: the start of ``today`` in Viet Nam) stamps the rows written.
    Idempotent for a day, and safe after missed days: only the most urgent reminder
    not yet sent goes out, overdue and escalation mails go once per obligation.
    """
    moment = now or start_of_day(today)
    result = SweepResult(plan_id=plan_id, today=today)
    instances = _active_versions(session, plan_id)
    if not instances:
        return result  # loaded but not activated yet: nothing is owed

    # Submissions recorded but never taken in (the intake flow did not run): take them in
    # first, so nobody is reminded about a report that is already in the database.
    result.intakes += take_in_waiting(
        session, now=moment, instance_ids=[i.id for i, _ in instances]
    )

    for instance, version in instances:
        ctx = plan_context(session, version)
        obligations = list(
            session.scalars(
                select(Obligation)
                .join(Cycle, Obligation.cycle_id == Cycle.id)
                .where(
                    Cycle.instance_id == instance.id,
                    Cycle.status != "closed",
                    Obligation.status.in_(OPEN),
                )
                .order_by(Obligation.id)
            )
        )
        result.open_obligations += len(obligations)
        if not obligations:
            continue
        sent = _sent_keys(session, instance.id)
        mail: list[MailRequest] = []
        for obligation in obligations:
            _transfer_if_abolished(session, ctx, obligation, today, moment, result)
            _sweep_one(session, ctx, obligation, today, moment, sent, result, mail)
        session.flush()  # state changes first, so the emails' context reads them
        _queue_many(session, mail, moment)
        if today.weekday() == DIGEST_WEEKDAY:
            _weekly_digests(session, obligations, today, moment, result)
    return result


DIGEST_WEEKDAY = 0  # Monday: the consolidating unit's week starts with who owes what


def _weekly_digests(
    session: Session,
    obligations: Sequence[Obligation],
    today: dt.date,
    moment: dt.datetime,
    result: SweepResult,
) -> None:
    """Once per ISO week, each open consolidation duty's holder gets the state of its units."""
    year, week, _ = today.isocalendar()
    step = f"{year}-W{week:02d}"
    for obligation in obligations:
        if obligation.kind != "consolidation":
            continue
        key = f"obl:{obligation.id}:digest:{step}"
        if session.scalar(select(OutboxMessage.id).where(OutboxMessage.idempotency_key == key)):
            continue  # this week's digest is queued already
        _queue(session, obligation, "digest", step=step, now=moment)
        result.digests.append(obligation.id)


def _sent_keys(session: Session, instance_id: int) -> dict[int, set[str]]:
    """Keys of reminder/overdue/escalation mails already queued, by obligation."""
    sent: dict[int, set[str]] = {}
    for obligation_id, kind, key in session.execute(
        select(OutboxMessage.obligation_id, OutboxMessage.kind, OutboxMessage.idempotency_key)
        .join(Obligation, OutboxMessage.obligation_id == Obligation.id)
        .join(Cycle, Obligation.cycle_id == Cycle.id)
        .where(
            Cycle.instance_id == instance_id,
            OutboxMessage.kind.in_(("reminder", "overdue", "escalation")),
        )
    ):
        if obligation_id is not None:
            sent.setdefault(obligation_id, set()).add(f"{kind}:{key.rsplit(':', 1)[-1]}")
    return sent


def _transfer_if_abolished(
    session: Session,
    ctx: PlanContext,
    obligation: Obligation,
    today: dt.date,
    now: dt.datetime,
    result: SweepResult,
) -> None:
    """An open duty of a unit abolished since activation moves to its successor."""
    unit = ctx.view.unit(obligation.unit_id)
    if unit is None or unit.valid_on(today):
        return
    successor = ctx.view.successor_on(unit.id, today)
    if successor is None or successor.id == unit.id:
        return
    clash = session.scalar(
        select(Obligation.id).where(
            Obligation.cycle_id == obligation.cycle_id,
            Obligation.unit_id == successor.id,
            Obligation.deliverable_id == obligation.deliverable_id,
        )
    )
    old = obligation.unit_id
    if clash is not None:
        # The successor already owes the same report: one answer covers both.
        obligation.status = "waived"
        obligation.updated_at = now
        _audit(
            session,
            "obligation.merged",
            at=now,
            plan_id=ctx.plan_id,
            obligation_id=obligation.id,
            unit_id=old,
            into=clash,
        )
        result.transferred.append((obligation.id, old, successor.id))
        return
    obligation.unit_id = successor.id
    obligation.transferred_from = obligation.transferred_from or old
    obligation.token_version += 1  # links mailed to the abolished unit stop working
    obligation.updated_at = now
    session.flush()
    _queue(
        session,
        obligation,
        "assignment",
        f"transfer-{successor.id}",
        {"transferred_from": ctx.unit_name(old)},
        now,
    )
    _audit(
        session,
        "obligation.transferred",
        at=now,
        plan_id=ctx.plan_id,
        obligation_id=obligation.id,
        from_unit=old,
        to_unit=successor.id,
    )
    result.transferred.append((obligation.id, old, successor.id))


def _ladder(ctx: PlanContext, obligation: Obligation) -> Sequence[int]:
    deliverable = ctx.plan.deliverable(obligation.deliverable_id)
    if deliverable is not None:
        return deliverable.reminders
    return DEFAULT_REMINDERS


def _sweep_one(
    session: Session,
    ctx: PlanContext,
    obligation: Obligation,
    today: dt.date,
    now: dt.datetime,
    sent: dict[int, set[str]],
    result: SweepResult,
    mail: list[MailRequest],
) -> None:
    if obligation.status not in OPEN:
        return
    mine = sent.setdefault(obligation.id, set())
    days_left = (obligation.due_date - today).days
    if days_left >= 0:
        ladder = _ladder(ctx, obligation)
        done = {
            int(k.split(":", 1)[1])
            for k in mine
            if k.startswith("reminder:") and k.split(":", 1)[1].isdigit()
        }
        step = _reminder_step(
            ladder, days_left, local_day(obligation.created_at), obligation.due_date, done
        )
        if step is not None:
            mail.append((obligation, "reminder", str(step), {"days_left": days_left}))
            mine.add(f"reminder:{step}")
            _audit(
                session,
                "obligation.reminded",
                at=now,
                plan_id=ctx.plan_id,
                obligation_id=obligation.id,
                step=step,
                days_left=days_left,
            )
            result.reminders.append((obligation.id, step))
        return
    days_late = -days_left
    if not obligation.overdue:
        obligation.overdue = True
        obligation.updated_at = now
        _audit(
            session,
            "obligation.overdue",
            at=now,
            plan_id=ctx.plan_id,
            obligation_id=obligation.id,
            due_date=obligation.due_date.isoformat(),
        )
        result.overdue.append(obligation.id)
    if "overdue:" not in mine:
        mail.append((obligation, "overdue", "", {"days_overdue": days_late}))
        mine.add("overdue:")
    escalation = f"overdue-{ESCALATE_AFTER_DAYS}"
    if days_late >= ESCALATE_AFTER_DAYS and f"escalation:{escalation}" not in mine:
        mail.append((obligation, "escalation", escalation, {"days_overdue": days_late}))
        mine.add(f"escalation:{escalation}")
        _audit(
            session,
            "obligation.escalated",
            at=now,
            plan_id=ctx.plan_id,
            obligation_id=obligation.id,
            days_late=days_late,
        )
        result.escalations.append(obligation.id)


# ---------------------------------------------------------------- submissions


def submission_refusal(
    obligation: Obligation, history: Sequence[Submission], now: dt.datetime
) -> str | None:
    """Why a new version may not be sent now (Vietnamese), or None when it may.

    A unit may send again before the deadline (versions are kept) and after its report
    was returned for revision; never after it was accepted or waived.

    ``history``: the versions sent (anything with ``version`` and ``review_state``).
    Only the newest version and the accepted ones decide, so the rows of
    :func:`deciding_versions` give the same answer as the whole history.
    """
    newest = max(history, key=lambda s: s.version, default=None)
    if obligation.status == "waived":
        return "Nghĩa vụ này đã được miễn; không cần gửi báo cáo."
    if obligation.status == "accepted" or any(s.review_state == "accepted" for s in history):
        return "Báo cáo đã được chấp nhận; không thể gửi lại."
    if (
        newest is not None
        and newest.review_state != "returned"
        and now > end_of_day(obligation.due_date)
    ):
        return "Đã quá hạn; chỉ gửi lại được khi báo cáo bị trả lại để hoàn thiện."
    return None


# The statements of record_submission are built once, in plain SQL expressions on the
# tables: on SQLite, building a statement or going through the ORM costs more than the
# query itself, and a portal POST runs each of them.
_submissions = cast(Table, Submission.__table__)
_NEWEST_VERSION = (
    select(func.max(_submissions.c.version))
    .where(_submissions.c.obligation_id == bindparam("obligation_id"))
    .scalar_subquery()
)
_DECIDING_VERSIONS = select(_submissions.c.version, _submissions.c.review_state).where(
    _submissions.c.obligation_id == bindparam("obligation_id"),
    or_(_submissions.c.version == _NEWEST_VERSION, _submissions.c.review_state == "accepted"),
)


def deciding_versions(session: Session, obligation_id: int) -> Sequence[Any]:
    """(version, review_state) of the versions :func:`submission_refusal` depends on: the
    newest one and any accepted one (not the whole history, which grows with each
    resubmission); empty when nothing was sent."""
    session.flush()  # a plain SQL statement does not autoflush
    return session.execute(_DECIDING_VERSIONS, {"obligation_id": obligation_id}).all()


# What record_submission needs of the obligation, and its plan version's cache key, in
# one SELECT (the row stays locked until commit on databases with row locks).
_obligations = Obligation.__table__
_cycles = Cycle.__table__
_instances = PlanInstance.__table__
_plan_versions = PlanVersion.__table__
_OBLIGATION_FOR_UPDATE = (
    select(
        _obligations.c.id,
        _obligations.c.cycle_id,
        _obligations.c.unit_id,
        _obligations.c.deliverable_id,
        _obligations.c.status,
        _obligations.c.due_date,
        _cycles.c.status.label("cycle_status"),
        _plan_versions.c.id.label("plan_version_id"),
        _plan_versions.c.content_hash.label("plan_hash"),
    )
    .join(_cycles, _cycles.c.id == _obligations.c.cycle_id)
    .join(_instances, _instances.c.id == _cycles.c.instance_id)
    .join(_plan_versions, _plan_versions.c.id == _instances.c.plan_version_id)
    .where(_obligations.c.id == bindparam("obligation_id"))
    .with_for_update(of=_obligations)
)
_INSERT_SUBMISSION = insert(_submissions)
_CYCLE_STATUS = select(_cycles.c.status).where(_cycles.c.id == bindparam("cycle_id"))
_INSERT_AUDIT = insert(cast(Table, AuditEvent.__table__))


def _insert_submission(session: Session, **row: Any) -> Submission:
    """INSERT one submission at once and return it as a persistent object of ``session``.

    The same row and object as ``session.add`` + ``flush()``, without the unit of work's
    cost (the larger part of a portal POST): pending objects are flushed first, so rows
    keep their order; a clashing version raises IntegrityError here, as a flush would.
    """
    session.flush()
    key = session.connection().execute(_INSERT_SUBMISSION, row).inserted_primary_key
    assert key is not None
    submission = Submission(
        id=key[0],
        review_reason=None,
        reviewed_at=None,
        reviewed_by=None,
        **row,
    )
    make_transient_to_detached(submission)  # every attribute set counts as loaded
    session.add(submission)  # persistent: later changes are flushed as usual
    return submission


def record_submission(
    session: Session,
    obligation_id: int,
    *,
    values: Mapping[str, Any] | None,
    summary: str | None = None,
    file_ids: Sequence[int] = (),
    source: str = "portal",
    now: dt.datetime,
    actor: str | None = None,
    remote_addr: str | None = None,
    strict: bool = True,
) -> Submission:
    """Store a new version of a unit's answer; raise SubmissionRejected when it cannot be.

    Reports are validated against their template, sub-plans need a summary and at least
    one file.  A unit may send again before the deadline (every version is kept) and
    after its report was returned for revision; after it was accepted, or once its
    cycle is closed, no more.
    ``strict=False`` (reports handed upward) keeps only the values that fit.
    """
    from engine.reports import validate_values

    session.flush()  # a plain SQL statement does not autoflush
    obligation = session.execute(_OBLIGATION_FOR_UPDATE, {"obligation_id": obligation_id}).first()
    if obligation is None:
        raise NotFound(f"obligation {obligation_id} does not exist")
    # Only the plan is needed here (no registry, no calendar): cached per process.
    plan = plan_for_key(session, obligation.plan_version_id, obligation.plan_hash)
    history = deciding_versions(session, obligation.id)
    deadline_at = end_of_day(obligation.due_date)
    refused = submission_refusal(obligation, history, now)  # type: ignore[arg-type]
    cycle_status = obligation.cycle_status
    if session.get_bind().dialect.name == "postgresql":
        # The SELECT above may have waited for the row lock of a closing (which locks the
        # cycle's obligations) while its snapshot still said 'open': read the status again
        # now that the lock is held (READ COMMITTED: a new snapshot per statement).
        cycle_status = session.scalar(_CYCLE_STATUS, {"cycle_id": obligation.cycle_id})
    if cycle_status == "closed":
        refused = (
            "Kỳ báo cáo đã đóng; không nhận thêm báo cáo. "
            "Nếu cần gửi, đề nghị cơ quan tổng hợp mở lại kỳ (kehoach reopen)."
        )
    if refused:
        raise SubmissionRejected({FORM_ERROR: refused})

    errors: dict[str, str] = {}
    clean: dict[str, Any] = {}
    text = (summary or "").strip() or None
    deliverable = plan.deliverable(obligation.deliverable_id)
    if deliverable is not None and deliverable.kind is DeliverableKind.report:
        template = plan.template(deliverable.template or "")
        if template is None:  # pragma: no cover - the loader checks templates
            raise NotFound(f"report template '{deliverable.template}' is not in the plan")
        clean, errors = validate_values(template, values or {})
        if not strict:
            errors = {}
    elif deliverable is not None and deliverable.kind is DeliverableKind.sub_plan and strict:
        if not text:
            errors["summary"] = "Trường 'Tóm tắt kế hoạch' là bắt buộc"
        if not file_ids:
            errors["files"] = "Cần đính kèm ít nhất một tệp kế hoạch"
    ids = [int(i) for i in file_ids]
    if ids:
        known = set(session.scalars(select(StoredFile.id).where(StoredFile.id.in_(ids))))
        if set(ids) - known:
            errors["files"] = "Tệp đính kèm không tồn tại; hãy tải lên lại"
    if errors:
        raise SubmissionRejected(errors)

    version = (max((s.version for s in history), default=0)) + 1
    submission = _insert_submission(
        session,
        obligation_id=obligation.id,
        version=version,
        values=clean,
        summary=text,
        file_ids=ids,
        submitted_at=now,
        source=source,
        on_time=now <= deadline_at,
        review_state="received",
        intake_done=False,
    )
    # Written at once (like the submission), so it precedes rows the caller adds next.
    session.connection().execute(
        _INSERT_AUDIT,
        {
            "at": now,
            "actor": actor or f"unit:{obligation.unit_id}",
            "action": "submission.recorded",
            "plan_id": plan.id,
            "obligation_id": obligation.id,
            "remote_addr": remote_addr,
            "data": {
                "submission_id": submission.id,
                "version": version,
                "source": source,
                "on_time": submission.on_time,
            },
        },
    )
    return submission


@dataclass(frozen=True)
class IntakeResult:
    submission_id: int
    obligation_id: int
    plan_id: str
    plan_title: str
    unit_id: str
    unit_name: str
    deliverable_id: str
    deliverable_title: str
    kind: str
    cycle_key: str
    version: int
    on_time: bool
    already_done: bool  # intake had run before: nothing changed
    superseded: bool  # a newer version exists: this one changed nothing
    cycle_complete: bool  # every obligation of this deliverable in the cycle is done
    consolidation_ids: list[str]  # consolidations fed by this deliverable


def intake(session: Session, submission_id: int, *, now: dt.datetime) -> IntakeResult:
    """Take a recorded submission in: mark the obligation done, acknowledge, audit.

    Idempotent (``Submission.intake_done``).  ``cycle_complete`` tells the flow every
    unit of that deliverable and cycle has answered, so consolidation may start early.
    """
    submission = session.get(Submission, submission_id)
    if submission is None:
        raise NotFound(f"submission {submission_id} does not exist")
    obligation = session.scalar(
        select(Obligation).where(Obligation.id == submission.obligation_id).with_for_update()
    )
    assert obligation is not None
    ctx = context_for_obligation(session, obligation)
    cycle = session.get(Cycle, obligation.cycle_id)
    assert cycle is not None
    newest = session.scalar(
        select(func.max(Submission.version)).where(Submission.obligation_id == obligation.id)
    )
    already = submission.intake_done
    superseded = submission.version != newest
    if not already:
        submission.intake_done = True
        if not superseded:
            obligation.status = "submitted"
            obligation.submitted_at = submission.submitted_at
            obligation.on_time = submission.on_time
            obligation.updated_at = now
            if submission.review_state == "received":
                submission.review_state = "validated"
            _queue(session, obligation, "receipt", str(submission.version), None, now)
        _audit(
            session,
            "submission.intake",
            at=now,
            plan_id=ctx.plan_id,
            obligation_id=obligation.id,
            submission_id=submission.id,
            version=submission.version,
            on_time=submission.on_time,
            superseded=superseded,
        )
        session.flush()
    open_left = session.scalar(
        select(func.count(Obligation.id)).where(
            Obligation.cycle_id == obligation.cycle_id,
            Obligation.deliverable_id == obligation.deliverable_id,
            Obligation.status.not_in(DONE),
        )
    )
    return IntakeResult(
        submission_id=submission.id,
        obligation_id=obligation.id,
        plan_id=ctx.plan_id,
        plan_title=ctx.plan.document.summary,
        unit_id=obligation.unit_id,
        unit_name=ctx.unit_name(obligation.unit_id),
        deliverable_id=obligation.deliverable_id,
        deliverable_title=ctx.title(obligation.deliverable_id),
        kind=obligation.kind,
        cycle_key=cycle.key,
        version=submission.version,
        on_time=submission.on_time,
        already_done=already,
        superseded=superseded,
        cycle_complete=open_left == 0,
        consolidation_ids=[
            c.id for c in ctx.plan.consolidations if c.consolidates == obligation.deliverable_id
        ],
    )


def take_in_waiting(
    session: Session,
    *,
    now: dt.datetime,
    instance_ids: Sequence[int] | None = None,
    cycle_id: int | None = None,
    deliverable_id: str | None = None,
    sent_by: dt.datetime | None = None,
) -> list[int]:
    """Take in the recorded, not yet taken-in submissions of some plan instances or of a
    cycle (optionally of one deliverable, optionally only those sent by ``sent_by``);
    returns their ids. The sweep, closing and consolidation call it before they decide
    anything, since intake runs after the portal, in batches."""
    query = (
        select(Submission.id)
        .join(Obligation, Submission.obligation_id == Obligation.id)
        .where(Submission.intake_done.is_(False))
        .order_by(Submission.id)
    )
    if instance_ids is not None:
        query = query.join(Cycle, Obligation.cycle_id == Cycle.id).where(
            Cycle.instance_id.in_(list(instance_ids))
        )
    if cycle_id is not None:
        query = query.where(Obligation.cycle_id == cycle_id)
    if deliverable_id is not None:
        query = query.where(Obligation.deliverable_id == deliverable_id)
    if sent_by is not None:
        query = query.where(Submission.submitted_at <= sent_by)
    waiting = list(session.scalars(query))
    for submission_id in waiting:
        intake(session, submission_id, now=now)
    if waiting:
        session.flush()
    return waiting


def review(
    session: Session,
    submission_id: int,
    *,
    decision: str,
    reason: str | None = None,
    by: str,
    now: dt.datetime,
) -> Submission:
    """Accept or return (with a reason, mailed to the unit) the newest version of a report.

    Returning puts the obligation back to pending so the unit can send a new version.
    Repeating the same decision is a no-op; changing a decision already made is refused.
    """
    if decision not in ("accept", "return"):
        raise ReviewError(f"decision must be 'accept' or 'return', not {decision!r}")
    text = (reason or "").strip()
    if decision == "return" and not text:
        raise ReviewError("returning a report needs a reason (lý do trả lại) for the unit")
    submission = session.get(Submission, submission_id)
    if submission is None:
        raise NotFound(f"submission {submission_id} does not exist")
    obligation = session.scalar(
        select(Obligation).where(Obligation.id == submission.obligation_id).with_for_update()
    )
    assert obligation is not None
    target = "accepted" if decision == "accept" else "returned"
    if submission.review_state == target:
        return submission
    if submission.review_state in ("accepted", "returned"):
        raise ReviewError(
            f"version {submission.version} was already {submission.review_state}; "
            "a decision is not changed"
        )
    newest = session.scalar(
        select(func.max(Submission.version)).where(Submission.obligation_id == obligation.id)
    )
    if submission.version != newest:
        raise ReviewError(
            f"version {submission.version} is not the newest (v{newest}); review that one"
        )
    if not submission.intake_done:
        intake(session, submission.id, now=now)
    ctx = context_for_obligation(session, obligation)
    submission.review_state = target
    submission.review_reason = text or None
    submission.reviewed_at = now
    submission.reviewed_by = by
    obligation.updated_at = now
    if target == "accepted":
        obligation.status = "accepted"
    else:
        obligation.status = "pending"
        obligation.submitted_at = None
        obligation.on_time = None
        session.flush()
        _queue(session, obligation, "returned", str(submission.version), {"reason": text}, now)
    _audit(
        session,
        f"submission.{target}",
        at=now,
        plan_id=ctx.plan_id,
        obligation_id=obligation.id,
        actor=by,
        submission_id=submission.id,
        version=submission.version,
        reason=text or None,
    )
    session.flush()
    return submission


# ---------------------------------------------------------------- consolidation


def consolidate(
    session: Session,
    plan_id: str,
    cycle_key: str,
    consolidation_id: str,
    *,
    now: dt.datetime,
    settings: Any = None,
) -> Any:
    """See :func:`engine.consolidation.consolidate`."""
    from engine.consolidation import consolidate as _consolidate

    return _consolidate(session, plan_id, cycle_key, consolidation_id, now=now, settings=settings)
