"""The daily sweep: catch up intakes, move duties of abolished units, remind, mark
overdue, escalate, and Monday's digest. Idempotent for a day and safe after missed days.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.audit import write_audit
from engine.audit_verify import tampered_waiting
from engine.calendar import (
    local_day,
    start_of_day,
)
from engine.context import PlanContext, plan_context
from engine.lifecycle.activation import opening_days
from engine.lifecycle.intake import take_in_waiting
from engine.outbox.kinds import MailKind
from engine.outbox.requests import MailRequest, queue_mail, queue_many
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
from engine.transitions import move_obligation

log = logging.getLogger(__name__)

DEFAULT_REMINDERS = (7, 3, 1)


ESCALATE_AFTER_DAYS = 3


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
        ctx = plan_context(session, version)
        obligations = list(
            session.scalars(
                select(Obligation)
                .join(Cycle, Obligation.cycle_id == Cycle.id)
                .where(
                    Cycle.instance_id == instance.id,
                    Cycle.status != CycleStatus.CLOSED,
                    Obligation.status.in_(OBLIGATION_OPEN),
                )
                .order_by(Obligation.id)
            )
        )
        result.open_obligations += len(obligations)
        if not obligations:
            continue
        sent = _sent_keys(session, instance.id)
        keys = {
            cycle_id: key
            for cycle_id, key in session.execute(
                select(Cycle.id, Cycle.key).where(Cycle.instance_id == instance.id)
            )
        }
        opening = opening_days(ctx, instance, obligations, keys)
        mail: list[MailRequest] = []
        opened: list[Obligation] = []
        for obligation in obligations:
            day = opening[obligation.id]
            waiting = day is not None and day > today  # its period is not open yet
            _transfer_if_abolished(
                session, ctx, obligation, today, moment, result, mail=not waiting
            )
            if waiting:
                continue
            opened.append(obligation)
            if day is not None:
                _mail_when_opened(ctx, obligation, sent, mail, result)
            _sweep_one(session, ctx, obligation, today, moment, sent, result, mail, day)
        session.flush()  # state changes first, so the emails' context reads them
        queue_many(session, mail, moment)
        if today.weekday() == DIGEST_WEEKDAY:
            _weekly_digests(session, opened, today, moment, result)
    return result


def _mail_when_opened(
    ctx: PlanContext,
    obligation: Obligation,
    sent: dict[int, set[str]],
    mail: list[MailRequest],
    result: SweepResult,
) -> None:
    """A period that opened after activation: its assignment email, once."""
    mine = sent.setdefault(obligation.id, set())
    if "assignment:" in mine:
        return
    extra = None
    if obligation.transferred_from:
        extra = {"transferred_from": ctx.unit_name(obligation.transferred_from)}
    mail.append((obligation, MailKind.ASSIGNMENT, "", extra))
    mine.add("assignment:")
    result.opened.append(obligation.id)


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
        queue_mail(session, obligation, MailKind.DIGEST, step=step, now=moment)
        result.digests.append(obligation.id)


def _sent_keys(session: Session, instance_id: int) -> dict[int, set[str]]:
    """Keys of assignment/reminder/overdue/escalation mails already queued, by obligation."""
    sent: dict[int, set[str]] = {}
    for obligation_id, kind, key in session.execute(
        select(OutboxMessage.obligation_id, OutboxMessage.kind, OutboxMessage.idempotency_key)
        .join(Obligation, OutboxMessage.obligation_id == Obligation.id)
        .join(Cycle, Obligation.cycle_id == Cycle.id)
        .where(
            Cycle.instance_id == instance_id,
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
    *,
    mail: bool = True,
) -> None:
    """An open duty of a unit abolished since activation moves to its successor (told at
    once, or, when ``mail`` is False, by the assignment its period sends when it opens)."""
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
        return
    obligation.unit_id = successor.id
    obligation.transferred_from = obligation.transferred_from or old
    obligation.token_version += 1  # links mailed to the abolished unit stop working
    obligation.updated_at = now
    session.flush()
    if mail:
        queue_mail(
            session,
            obligation,
            MailKind.ASSIGNMENT,
            f"transfer-{successor.id}",
            {"transferred_from": ctx.unit_name(old)},
            now,
        )
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
    opened_on: dt.date | None = None,
) -> None:
    if not obligation.status.open:
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
        # A reminder older than the day the unit was first told is stale.
        told = max(local_day(obligation.created_at), opened_on or dt.date.min)
        step = _reminder_step(ladder, days_left, told, obligation.due_date, done)
        if step is not None:
            mail.append((obligation, MailKind.REMINDER, str(step), {"days_left": days_left}))
            mine.add(f"reminder:{step}")
            write_audit(
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
        write_audit(
            session,
            "obligation.overdue",
            at=now,
            plan_id=ctx.plan_id,
            obligation_id=obligation.id,
            due_date=obligation.due_date.isoformat(),
        )
        result.overdue.append(obligation.id)
    if "overdue:" not in mine:
        mail.append((obligation, MailKind.OVERDUE, "", {"days_overdue": days_late}))
        mine.add("overdue:")
    escalation = f"overdue-{ESCALATE_AFTER_DAYS}"
    if days_late >= ESCALATE_AFTER_DAYS and f"escalation:{escalation}" not in mine:
        mail.append((obligation, MailKind.ESCALATION, escalation, {"days_overdue": days_late}))
        mine.add(f"escalation:{escalation}")
        write_audit(
            session,
            "obligation.escalated",
            at=now,
            plan_id=ctx.plan_id,
            obligation_id=obligation.id,
            days_late=days_late,
        )
        result.escalations.append(obligation.id)
