"""Intake: a recorded answer marks its obligation done, is acknowledged and audited.

Runs after the portal, per answer or in batches; the sweep, closing and consolidation
take in what is waiting before they decide anything (:func:`take_in_waiting`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from engine.audit import write_audit
from engine.context import PlanContext, context_for_obligation
from engine.errors import NotFound
from engine.lifecycle.task_completion import completed_tasks
from engine.outbox.kinds import MailKind
from engine.outbox.requests import MailRequest, queue_mail, queue_many
from engine.states import (
    OBLIGATION_DONE,
    ObligationStatus,
    ReviewState,
)
from engine.store.models import (
    Cycle,
    Obligation,
    Submission,
)
from engine.transitions import move_obligation, move_review


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


# Duties still owed, spelled as the states they may hold, so the question "is
# any left?" is an index seek (ix_obligations_cycle_deliverable_status), not a count.
NOT_DONE = tuple(s for s in ObligationStatus if s not in OBLIGATION_DONE)
WHOLE_REGISTRY_FROM = 200  # receipts from which reading every unit at once is cheaper


def intake(
    session: Session,
    submission_id: int,
    *,
    now: dt.datetime,
    receipts: list[MailRequest] | None = None,
) -> IntakeResult:
    """Take a recorded submission in: mark the obligation done, acknowledge, audit.

    Idempotent (``Submission.intake_done``).  ``cycle_complete`` tells the flow every
    unit of that deliverable and cycle has answered, so consolidation may start early.
    With ``receipts`` the receipt is added there for the caller to queue with others
    (:func:`intake_many`), else it is queued at once.
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
        record: dict[str, Any] = {
            "submission_id": submission.id,
            "version": submission.version,
            "on_time": submission.on_time,
            "superseded": superseded,
        }
        if superseded:  # nothing changes state: the intake is only recorded
            write_audit(
                session,
                "submission.intake",
                at=now,
                plan_id=ctx.plan_id,
                obligation_id=obligation.id,
                **record,
            )
        else:
            move_obligation(
                session,
                obligation,
                ObligationStatus.SUBMITTED,
                at=now,
                action="submission.intake",
                plan_id=ctx.plan_id,
                **record,
            )
            obligation.submitted_at = submission.submitted_at
            obligation.on_time = submission.on_time
            if submission.review_state is ReviewState.RECEIVED:
                # recorded in the 'submission.intake' row above
                move_review(
                    session, submission, ReviewState.VALIDATED, at=now, action=None, plan_id=None
                )
            _acknowledge(session, ctx, obligation, submission, now, receipts)
        session.flush()
    left = session.scalar(
        select(Obligation.id)
        .where(
            Obligation.cycle_id == obligation.cycle_id,
            Obligation.deliverable_id == obligation.deliverable_id,
            Obligation.status.in_(NOT_DONE),
        )
        .limit(1)
    )
    return _result(ctx, cycle.key, obligation, submission, already, superseded, left is None)


def _acknowledge(
    session: Session,
    ctx: PlanContext,
    obligation: Obligation,
    submission: Submission,
    now: dt.datetime,
    receipts: list[MailRequest] | None,
) -> None:
    """The receipt (queued now, or added to ``receipts``), and the tasks the report says
    are done (``completion.by: periodic_report``), taken in in turn."""
    receipt: MailRequest = (obligation, MailKind.RECEIPT, str(submission.version), None)
    if receipts is None:
        queue_mail(session, *receipt, now)
    else:
        receipts.append(receipt)
    for task_submission in completed_tasks(session, ctx, obligation, submission, now):
        intake(session, task_submission, now=now, receipts=receipts)


def intake_many(
    session: Session, submission_ids: Sequence[int], *, now: dt.datetime
) -> list[IntakeResult]:
    """:func:`intake` of each submission in turn, their receipts queued in one insert."""
    receipts: list[MailRequest] = []
    results = [intake(session, sid, now=now, receipts=receipts) for sid in submission_ids]
    # A batch of the intake flow (20) names a few units of a registry of thousands.
    queue_many(session, receipts, now, whole_registry=len(receipts) >= WHOLE_REGISTRY_FROM)
    return results


def _result(
    ctx: PlanContext,
    cycle_key: str,
    obligation: Obligation,
    submission: Submission,
    already: bool,
    superseded: bool,
    complete: bool,
) -> IntakeResult:
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
        cycle_key=cycle_key,
        version=submission.version,
        on_time=submission.on_time,
        already_done=already,
        superseded=superseded,
        cycle_complete=complete,
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
    skip: Collection[int] = (),
) -> list[int]:
    """Take in the recorded, not yet taken-in submissions of some plan instances or of a
    cycle (optionally of one deliverable, optionally only those sent by ``sent_by``);
    returns their ids. The sweep, closing and consolidation call it before they decide
    anything, since intake runs after the portal, in batches. ``skip``: ids left waiting
    (the sweep's submissions that fail the audit check)."""
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
    if skip:
        query = query.where(Submission.id.not_in(list(skip)))
    waiting = list(session.scalars(query))
    intake_many(session, waiting, now=now)
    if waiting:
        session.flush()
    return waiting
