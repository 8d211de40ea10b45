"""The daily sweep: catch up intakes, move duties of abolished units, remind, mark
overdue, escalate, and Monday's digest. Idempotent for a day and safe after missed days.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, cast

from sqlalchemy import Table, bindparam, func, select, update
from sqlalchemy.orm import Session

from engine.audit import write_audit
from engine.audit_chain import append
from engine.audit_verify import tampered_waiting
from engine.calendar import (
    local_day,
    start_of_day,
)
from engine.context import PlanContext, plan_context
from engine.lifecycle.activation import opening_days
from engine.lifecycle.digest_days import (
    DIGEST_WEEKDAY,
    is_digest_day,
    near_their_units_deadline,
)
from engine.lifecycle.intake import take_in_waiting
from engine.lifecycle.sweep_days import (
    ASSIGNMENT_SENT,
    DEFAULT_REMINDERS,
    ESCALATE_AFTER_DAYS,
    ESCALATION_SENT,
    ESCALATION_STEP,
    OVERDUE_SENT,
    ladder_for,
    next_sweep_day,
    reminder_step,
    reminder_steps_sent,
)
from engine.outbox.kinds import MailKind
from engine.outbox.requests import MailRequest, queue_many
from engine.registry import RegistryView
from engine.states import (
    OBLIGATION_OPEN,
    CycleStatus,
    InstanceStatus,
    ObligationStatus,
)
from engine.store.models import (
    Cycle,
    Obligation,
    OutboxMessage,
    PlanInstance,
    PlanVersion,
)
from engine.successors import copy_for, queue_inheritance, reroute
from engine.transitions import move_obligation

log = logging.getLogger(__name__)

__all__ = ["DEFAULT_REMINDERS", "DIGEST_WEEKDAY", "ESCALATE_AFTER_DAYS", "SweepResult", "sweep"]

CHUNK = 500  # ids per IN list


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
    opened: list[int] = field(default_factory=list)  # assignment mailed as its period opened
    open_obligations: int = 0
    tampered: dict[int, str] = field(default_factory=dict)  # submission id → why refused
    # moved duties whose heir is told by one email (engine.successors.queue_inheritance)
    inherited: list[tuple[Obligation, str]] = field(default_factory=list)
    held: list[str] = field(default_factory=list)  # ended, no heir, open work: nobody owes it

    def summary(self) -> str:
        refused = (
            f", {len(self.tampered)} báo cáo không tiếp nhận vì không khớp nhật ký kiểm tra"
            if self.tampered
            else ""
        )
        return (
            f"{self.plan_id} {self.today}: {len(self.reminders)} nhắc hạn, "
            f"{len(self.overdue)} quá hạn mới, {len(self.escalations)} báo cáo lãnh đạo, "
            f"{len(self.transferred)} chuyển đơn vị kế thừa{refused}"
            + (
                f"; {len(self.held)} đơn vị đã không còn, chưa có đơn vị kế thừa — việc của "
                f"họ giữ lại chờ quản trị, không gửi email ({', '.join(self.held)})"
                if self.held
                else ""
            )
        )


def _active_versions(session: Session, plan_id: str) -> list[tuple[PlanInstance, PlanVersion]]:
    return [
        (i, v)
        for i, v in session.execute(
            select(PlanInstance, PlanVersion)
            .join(PlanVersion, PlanInstance.plan_version_id == PlanVersion.id)
            .where(PlanInstance.plan_id == plan_id, PlanInstance.status == InstanceStatus.ACTIVE)
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
    Only the duties with something due (``Obligation.next_sweep_on``, engine.lifecycle.
    sweep_days) or owed by a unit abolished by ``today`` are read, through indexes.
    """
    moment = now or start_of_day(today)
    result = SweepResult(plan_id=plan_id, today=today)
    instances = _active_versions(session, plan_id)
    if not instances:
        return result  # loaded but not activated yet: nothing is owed

    # Submissions recorded but never taken in (the intake flow did not run): take them in
    # first, so nobody is reminded about a report that is already in the database.
    # What it takes in is checked against the audit log first (one query): a submission
    # inserted or changed in the database after it was recorded stays waiting, named.
    instance_ids = [i.id for i, _ in instances]
    result.tampered = tampered_waiting(session, instance_ids)
    for submission_id, why in result.tampered.items():
        log.warning("%s: submission %s not taken in: %s", plan_id, submission_id, why)
    result.intakes += take_in_waiting(
        session, now=moment, instance_ids=instance_ids, skip=result.tampered
    )

    for instance, version in instances:
        _sweep_instance(session, plan_context(session, version), instance, today, moment, result)
    return result


_obligations = cast(Table, Obligation.__table__)
# The next day is the sweep's bookkeeping, not a change of the duty: updated_at stays.
_STORE_NEXT_DAY = (
    update(_obligations)
    .where(_obligations.c.id == bindparam("oid"))
    .values(next_sweep_on=bindparam("next_day"), updated_at=_obligations.c.updated_at)
)


class _AuditRows:
    """The sweep's own audit rows (reminded, overdue, escalated), gathered per pass.

    They keep their place among rows others add (a transfer's, a merge's): :meth:`write`
    queues them on the audit chain before those are added."""

    def __init__(self, session: Session, plan_id: str, at: dt.datetime) -> None:
        self.session, self.plan_id, self.at = session, plan_id, at
        self.rows: list[dict[str, Any]] = []

    def add(self, action: str, obligation_id: int, **data: Any) -> None:
        self.rows.append(
            {
                "at": self.at,
                "actor": "system",
                "action": action,
                "plan_id": self.plan_id,
                "obligation_id": obligation_id,
                "remote_addr": None,
                "data": data,
            }
        )

    def write(self) -> None:
        # Queued on the audit chain in order; chained and inserted together at commit.
        for row in self.rows:
            append(self.session, **row)
        self.rows = []


def _sweep_instance(
    session: Session,
    ctx: PlanContext,
    instance: PlanInstance,
    today: dt.date,
    moment: dt.datetime,
    result: SweepResult,
) -> None:
    open_in_cycle = (
        select(func.count())
        .where(Obligation.cycle_id == Cycle.id, Obligation.status.in_(OBLIGATION_OPEN))
        .scalar_subquery()
    )
    counts = session.execute(
        select(Cycle.id, Cycle.key, open_in_cycle).where(
            Cycle.instance_id == instance.id, Cycle.status != CycleStatus.CLOSED
        )
    ).all()
    if not counts:
        return
    keys = {cycle_id: key for cycle_id, key, _ in counts}
    result.open_obligations += sum(n for _, _, n in counts)
    is_open = (Obligation.cycle_id.in_(list(keys)), Obligation.status.in_(OBLIGATION_OPEN))
    duties: list[Any] = []
    if is_digest_day(ctx.calendar, today):  # the consolidation duties, before any change
        # Whatever the duty's state (drafted, in approval, sent upward): the digest goes
        # while its open cycle still misses a unit's report (near_their_units_deadline).
        duties = list(
            session.execute(
                select(Obligation.id, Obligation.deliverable_id, Obligation.cycle_id)
                .where(
                    Obligation.cycle_id.in_(list(keys)),
                    Obligation.deliverable_id.in_([c.id for c in ctx.plan.consolidations]),
                    Obligation.kind == "consolidation",
                )
                .order_by(Obligation.id)
            )
        )
        duties = near_their_units_deadline(session, ctx, duties, today)
    stored = dict(
        session.execute(
            select(Obligation.id, Obligation.next_sweep_on).where(
                *is_open, Obligation.next_sweep_on <= today
            )
        ).all()
    )
    ended = sorted(_abolished(ctx.view, today))
    if ended:  # "qua Công an huyện": to or through its heir now
        reroute(session, ctx, list(keys), today, moment)
    orphans = [
        u.id
        for u in ctx.view.units.values()
        if not u.valid_on(today) and not ctx.view.heirs(u.id, today)
    ]
    if orphans:
        result.held += sorted(
            set(
                session.scalars(
                    select(Obligation.unit_id).where(*is_open, Obligation.unit_id.in_(orphans))
                )
            )
            - set(result.held)
        )
    for chunk in _chunks(ended):
        stored.update(
            session.execute(
                select(Obligation.id, Obligation.next_sweep_on).where(
                    *is_open, Obligation.unit_id.in_(chunk)
                )
            ).all()
        )
    day = _Day(session, ctx, instance, keys, today, moment, result)
    if stored:
        day.sweep_rows(stored)
    if duties:  # those whose period is open
        opening = opening_days(ctx, instance, duties, keys)
        opened = [d.id for d in duties if (o := opening[d.id]) is None or o <= today]
        _weekly_digests(session, opened, today, moment, result)


@dataclass
class _Day:
    """One plan instance's sweep of one day."""

    session: Session
    ctx: PlanContext
    instance: PlanInstance
    keys: dict[int, str]  # the keys of its open cycles, by id
    today: dt.date
    moment: dt.datetime
    result: SweepResult

    def sweep_rows(self, stored: dict[int, dt.date | None]) -> None:
        """Transfers, assignments of periods that opened, reminders, overdue marks and
        escalations of these duties, in id order; each one's next day is stored."""
        session, ctx = self.session, self.ctx
        ids = sorted(stored)
        sent = _sent_keys(session, ids)
        mail: list[MailRequest] = []
        audit = _AuditRows(session, ctx.plan_id, self.moment)
        next_days = []
        for chunk in _chunks(ids):
            obligations = session.scalars(
                select(Obligation).where(Obligation.id.in_(chunk)).order_by(Obligation.id)
            ).all()
            opening = opening_days(ctx, self.instance, obligations, self.keys)
            for obligation in obligations:
                swept, day = self._one(obligation, opening[obligation.id], sent, mail, audit)
                if swept and day != stored[obligation.id]:
                    next_days.append({"oid": obligation.id, "next_day": day})
        audit.write()
        session.flush()  # state changes first, so the emails' context reads them
        if next_days:
            session.execute(_STORE_NEXT_DAY, next_days)
        queue_many(session, mail, self.moment)
        queue_inheritance(session, ctx, self.result.inherited, self.moment)
        self.result.inherited = []

    def _one(
        self,
        obligation: Obligation,
        opens: dt.date | None,
        sent: dict[int, set[str]],
        mail: list[MailRequest],
        audit: _AuditRows,
    ) -> tuple[bool, dt.date | None]:
        """One duty's day: (whether it was swept, its next day)."""
        ctx, today, moment, result = self.ctx, self.today, self.moment, self.result
        waiting = opens is not None and opens > today  # its period is not open yet
        _transfer_if_abolished(
            self.session, ctx, obligation, today, moment, result, audit, mail=not waiting
        )
        if waiting:
            return False, None  # what it stores is its opening day or later
        if opens is not None:
            _mail_when_opened(ctx, obligation, sent, mail, result)
        _sweep_one(ctx, obligation, today, moment, sent, result, mail, audit, opens)
        return True, next_sweep_day(
            _ladder(ctx, obligation),
            obligation.due_date,
            local_day(obligation.created_at),
            opens=opens,
            sent=sent.get(obligation.id, ()),
            overdue=bool(obligation.overdue),
            after=today,
        )


def _chunks(ids: Sequence[Any]) -> list[list[Any]]:
    return [list(ids[i : i + CHUNK]) for i in range(0, len(ids), CHUNK)]


def _abolished(view: RegistryView, today: dt.date) -> set[str]:
    """Units no longer valid on ``today`` whose duties a successor carries."""
    out = set()
    for unit in view.units.values():
        if unit.valid_on(today):
            continue
        successor = view.successor_on(unit.id, today)
        if successor is not None and successor.id != unit.id:
            out.add(unit.id)
    return out


def _weekly_digests(
    session: Session,
    duty_ids: Sequence[int],
    today: dt.date,
    moment: dt.datetime,
    result: SweepResult,
) -> None:
    """Once per ISO week, each consolidation duty's holder gets the state of its units and
    of its own report (engine.outbox.digest_state)."""
    year, week, _ = today.isocalendar()
    step = f"{year}-W{week:02d}"
    keys = {f"obl:{i}:digest:{step}": i for i in duty_ids}
    queued = set(
        session.scalars(
            select(OutboxMessage.idempotency_key).where(OutboxMessage.idempotency_key.in_(keys))
        )
    )  # this week's digests queued already
    ids = [i for key, i in keys.items() if key not in queued]
    if not ids:
        return
    wanted = session.scalars(
        select(Obligation).where(Obligation.id.in_(ids)).order_by(Obligation.id)
    ).all()
    # A digest reads its rows and their units' names itself (engine.outbox.builders):
    # the builder needs only the units each digest names, not the whole registry.
    digests: list[MailRequest] = [(o, MailKind.DIGEST, step, None) for o in wanted]
    queue_many(session, digests, moment, whole_registry=False)
    result.digests += [o.id for o in wanted]


def _mail_when_opened(
    ctx: PlanContext,
    obligation: Obligation,
    sent: dict[int, set[str]],
    mail: list[MailRequest],
    result: SweepResult,
) -> None:
    """A period that opened after activation: its assignment email, once."""
    mine = sent.setdefault(obligation.id, set())
    if ASSIGNMENT_SENT in mine:
        return
    extra = None
    if obligation.transferred_from:
        extra = {"transferred_from": ctx.unit_name(obligation.transferred_from)}
    mail.append((obligation, MailKind.ASSIGNMENT, "", extra))
    mine.add(ASSIGNMENT_SENT)
    result.opened.append(obligation.id)


def _sent_keys(session: Session, obligation_ids: Sequence[int]) -> dict[int, set[str]]:
    """Keys of assignment/reminder/overdue/escalation mails already queued, by obligation."""
    sent: dict[int, set[str]] = {}
    for chunk in _chunks(obligation_ids):
        for obligation_id, kind, key in session.execute(
            select(
                OutboxMessage.obligation_id, OutboxMessage.kind, OutboxMessage.idempotency_key
            ).where(
                OutboxMessage.obligation_id.in_(chunk),
                OutboxMessage.kind.in_(
                    (MailKind.ASSIGNMENT, MailKind.REMINDER, MailKind.OVERDUE, MailKind.ESCALATION)
                ),
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
    audit: _AuditRows,
    *,
    mail: bool = True,
) -> None:
    """An open duty of a unit abolished since activation moves to its successor (told at
    once, or, when ``mail`` is False, by the assignment its period sends when it opens)."""
    unit = ctx.view.unit(obligation.unit_id)
    if unit is None or unit.valid_on(today):
        return
    heirs = ctx.view.heirs(unit.id, today, obligation.deliverable_id)
    if not heirs or heirs[0].id == unit.id:
        return
    successor = heirs[0]
    audit.write()  # the rows of the duties before this one come first
    for other in heirs[1:]:  # a split where each successor owes its own copy
        copy = copy_for(session, obligation, other.id, now)
        if copy is not None:
            if mail:
                result.inherited.append((copy, obligation.unit_id))
            write_audit(
                session,
                "obligation.transferred",
                at=now,
                plan_id=ctx.plan_id,
                obligation_id=copy.id,
                from_unit=obligation.unit_id,
                to_unit=other.id,
                copy_of=obligation.id,
            )
            result.transferred.append((copy.id, obligation.unit_id, other.id))
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
        move_obligation(
            session,
            obligation,
            ObligationStatus.WAIVED,
            at=now,
            action="obligation.merged",
            plan_id=ctx.plan_id,
            unit_id=old,
            into=clash,
        )
        result.transferred.append((obligation.id, old, successor.id))
        held = session.get(Obligation, clash)
        if mail and held is not None and held.status.open:  # the heir is told it stands for both
            result.inherited.append((held, old))
        return
    obligation.unit_id = successor.id
    obligation.transferred_from = obligation.transferred_from or old
    obligation.token_version += 1  # links mailed to the abolished unit stop working
    obligation.updated_at = now
    session.flush()
    if mail:
        result.inherited.append((obligation, old))
    write_audit(
        session,
        "obligation.transferred",
        at=now,
        plan_id=ctx.plan_id,
        obligation_id=obligation.id,
        from_unit=old,
        to_unit=successor.id,
    )
    result.transferred.append((obligation.id, old, successor.id))


def transfer_ended(
    session: Session,
    ctx: PlanContext,
    obligations: Sequence[Obligation],
    today: dt.date,
    now: dt.datetime,
    result: SweepResult,
) -> None:
    """Move these open duties of ended units to their heirs now (``kehoach registry
    apply`` of a change already in effect), each heir told by one email."""
    audit = _AuditRows(session, ctx.plan_id, now)
    for obligation in obligations:
        _transfer_if_abolished(session, ctx, obligation, today, now, result, audit)
    audit.write()
    session.flush()
    queue_inheritance(session, ctx, result.inherited, now)
    result.inherited = []


def _ladder(ctx: PlanContext, obligation: Obligation) -> Sequence[int]:
    return ladder_for(ctx.plan, obligation.deliverable_id)


def _sweep_one(
    ctx: PlanContext,
    obligation: Obligation,
    today: dt.date,
    now: dt.datetime,
    sent: dict[int, set[str]],
    result: SweepResult,
    mail: list[MailRequest],
    audit: _AuditRows,
    opened_on: dt.date | None = None,
) -> None:
    if not obligation.status.open:
        return
    mine = sent.setdefault(obligation.id, set())
    days_left = (obligation.due_date - today).days
    if days_left >= 0:
        ladder = _ladder(ctx, obligation)
        done = reminder_steps_sent(mine)
        # A reminder older than the day the unit was first told is stale.
        told = max(local_day(obligation.created_at), opened_on or dt.date.min)
        step = reminder_step(ladder, days_left, told, obligation.due_date, done)
        if step is not None:
            mail.append((obligation, MailKind.REMINDER, str(step), {"days_left": days_left}))
            mine.add(f"reminder:{step}")
            audit.add("obligation.reminded", obligation.id, step=step, days_left=days_left)
            result.reminders.append((obligation.id, step))
        return
    days_late = -days_left
    if not obligation.overdue:
        obligation.overdue = True
        obligation.updated_at = now
        audit.add("obligation.overdue", obligation.id, due_date=obligation.due_date.isoformat())
        result.overdue.append(obligation.id)
    if OVERDUE_SENT not in mine:
        mail.append((obligation, MailKind.OVERDUE, "", {"days_overdue": days_late}))
        mine.add(OVERDUE_SENT)
    if days_late >= ESCALATE_AFTER_DAYS and ESCALATION_SENT not in mine:
        mail.append((obligation, MailKind.ESCALATION, ESCALATION_STEP, {"days_overdue": days_late}))
        mine.add(ESCALATION_SENT)
        audit.add("obligation.escalated", obligation.id, days_late=days_late)
        result.escalations.append(obligation.id)
