"""Intake: a recorded answer marks its obligation done, is acknowledged and audited.

Runs after the portal, per answer or in batches; the sweep, closing and consolidation
take in what is waiting before they decide anything (:func:`take_in_waiting`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Sequence
from dataclasses import dataclass, replace
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from engine.audit import write_audit
from engine.config import settings
from engine.context import PlanContext, context_for_obligation
from engine.errors import NotFound
from engine.lifecycle.task_completion import completed_tasks
from engine.outbox.context import ContextBuilder
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


class _Batch:
    """What the answers of one batch share, read in one query each instead of one per
    answer: the submissions, their obligations (locked), the newest version of each,
    the plan context of each cycle (issue 14: 4-5 ms of CPU an answer were these)."""

    def __init__(self, session: Session, submission_ids: Sequence[int]) -> None:
        ids = list(submission_ids)
        self.submissions = {
            s.id: s for s in session.scalars(select(Submission).where(Submission.id.in_(ids)))
        }
        owed = sorted({s.obligation_id for s in self.submissions.values()})
        # ordered, so two batches lock their rows in the same order
        self.obligations = {
            o.id: o
            for o in session.scalars(
                select(Obligation)
                .where(Obligation.id.in_(owed))
                .order_by(Obligation.id)
                .with_for_update()
            )
        }
        self.newest: dict[int, int] = {
            oid: version
            for oid, version in session.execute(
                select(Submission.obligation_id, func.max(Submission.version))
                .where(Submission.obligation_id.in_(owed))
                .group_by(Submission.obligation_id)
            )
        }
        self.contexts: dict[int, PlanContext] = {}
        self.cycles: dict[int, Cycle] = {}

    def context(self, session: Session, obligation: Obligation) -> tuple[PlanContext, Cycle]:
        cycle_id = obligation.cycle_id
        if cycle_id not in self.contexts:
            self.contexts[cycle_id] = context_for_obligation(session, obligation)
            cycle = session.get(Cycle, cycle_id)
            assert cycle is not None
            self.cycles[cycle_id] = cycle
        return self.contexts[cycle_id], self.cycles[cycle_id]


def intake(
    session: Session,
    submission_id: int,
    *,
    now: dt.datetime,
    receipts: list[MailRequest] | None = None,
    batch: _Batch | None = None,
) -> IntakeResult:
    """Take a recorded submission in: mark the obligation done, acknowledge, audit.

    Idempotent (``Submission.intake_done``).  ``cycle_complete`` tells the flow every
    unit of that deliverable and cycle has answered, so consolidation may start early.
    With ``receipts`` the receipt is added there for the caller to queue with others
    (:func:`intake_many`), else it is queued at once; ``batch``: the rows read for
    :func:`intake_many`.
    """
    alone = batch is None
    batch = batch or _Batch(session, [submission_id])
    submission = batch.submissions.get(submission_id)
    if submission is None:
        raise NotFound(f"submission {submission_id} does not exist")
    obligation = batch.obligations[submission.obligation_id]
    ctx, cycle = batch.context(session, obligation)
    newest = batch.newest[obligation.id]
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
    complete = False  # intake_many asks once per cycle and deliverable, after the batch
    if alone:
        session.flush()
        complete = _complete(session, obligation.cycle_id, obligation.deliverable_id)
    return _result(ctx, cycle.key, obligation, submission, already, superseded, complete)


def _complete(session: Session, cycle_id: int, deliverable_id: str) -> bool:
    """Every obligation of ``deliverable_id`` in the cycle is done (an index seek)."""
    left = session.scalar(
        select(Obligation.id)
        .where(
            Obligation.cycle_id == cycle_id,
            Obligation.deliverable_id == deliverable_id,
            Obligation.status.in_(NOT_DONE),
        )
        .limit(1)
    )
    return left is None


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
    """:func:`intake` of each submission in turn, their receipts queued in one insert.

    ``cycle_complete`` is the state after the whole batch: asked once per cycle and
    deliverable, not once per answer."""
    receipts: list[MailRequest] = []
    batch = _Batch(session, submission_ids)
    results = [
        intake(session, sid, now=now, receipts=receipts, batch=batch) for sid in submission_ids
    ]
    session.flush()
    # A batch of the intake flow (20) names a few units of a registry of thousands.
    builder = ContextBuilder(
        session, settings(), now, whole_registry=len(receipts) >= WHOLE_REGISTRY_FROM
    )
    for cycle_id, ctx in batch.contexts.items():  # read once for the batch, not again
        builder.know_plan(batch.cycles[cycle_id], ctx.version, ctx.plan)
    builder.know_submissions(batch.submissions.values())
    queue_many(session, receipts, now, builder=builder)
    complete: dict[tuple[int, str], bool] = {}
    out = []
    for result in results:
        obligation = batch.obligations[result.obligation_id]
        key = (obligation.cycle_id, obligation.deliverable_id)
        if key not in complete:
            complete[key] = _complete(session, *key)
        out.append(replace(result, cycle_complete=complete[key]))
    return out


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
