"""After consolidation: reports that arrive or change after the consolidated report was
written are noticed, announced to the consolidating unit, and make a revision.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from engine.audit import write_audit
from engine.calendar import TZ, end_of_day, local_day
from engine.consolidation.consolidate import consolidate, cycle_and_version, duty_of
from engine.consolidation.document import newer_submissions, newest_report
from engine.consolidation.result import ConsolidationResult
from engine.context import PlanContext, plan_context, version_of_cycle
from engine.definitions_cache import plan_for_version
from engine.outbox.kinds import MailKind
from engine.outbox.requests import queue_mail
from engine.states import (
    InstanceStatus,
)
from engine.store.models import (
    ConsolidatedReport,
    Cycle,
    Obligation,
    OutboxMessage,
    PlanInstance,
    Submission,
)
from engine.vntext import short_date

LATE_NOTICE = MailKind.REPORT_AFTER_CONSOLIDATION


def stale_consolidations(
    session: Session, plan_id: str, today: dt.date
) -> list[tuple[str, str, list[int]]]:
    """(cycle key, consolidation id, [submission ids]) of every consolidated report of the
    plan's active instances with reports taken in after its newest revision (sent by the
    end of ``today``), oldest submission first."""
    found = session.execute(
        select(ConsolidatedReport, Cycle.key)
        .join(Cycle, ConsolidatedReport.cycle_id == Cycle.id)
        .join(PlanInstance, Cycle.instance_id == PlanInstance.id)
        .where(PlanInstance.plan_id == plan_id, PlanInstance.status == InstanceStatus.ACTIVE)
        .order_by(Cycle.id, ConsolidatedReport.consolidation_id, ConsolidatedReport.revision)
    ).all()
    newest: dict[tuple[int, str], tuple[ConsolidatedReport, str]] = {}
    for report, key in found:
        newest[(report.cycle_id, report.consolidation_id)] = (report, key)
    out: list[tuple[str, str, list[int]]] = []
    plans: dict[int, Any] = {}
    for (cycle_id, consolidation_id), (report, key) in newest.items():
        if cycle_id not in plans:
            plans[cycle_id] = plan_for_version(session, version_of_cycle(session, cycle_id))
        consolidation = next(
            (c for c in plans[cycle_id].consolidations if c.id == consolidation_id), None
        )
        if consolidation is None:
            continue
        newer = newer_submissions(session, report, consolidation.consolidates, end_of_day(today))
        if newer:
            out.append((key, consolidation_id, [s.id for s, _ in newer]))
    return out


@dataclass
class FollowUp:
    """What to do about reports taken in after a consolidation (docs/DECISIONS.md).

    ``automatic``: the consolidation duty's due date has not passed, so a new revision is
    written; otherwise the consolidating unit gets one notice per late submission and
    decides (``kehoach consolidate PLAN --cycle KEY --revise``).
    """

    plan_id: str
    cycle_key: str
    consolidation_id: str
    submission_ids: list[int]  # taken in after the newest revision
    due_date: dt.date | None  # of the consolidation duty
    automatic: bool
    unnoticed: list[int] = field(default_factory=list)  # late ones without a notice yet
    result: ConsolidationResult | None = None  # the revision written by follow_up()
    notices: list[int] = field(default_factory=list)  # submissions noticed by follow_up()

    @property
    def needed(self) -> bool:
        return self.automatic or bool(self.unnoticed)


def _notice_key(duty_id: int, submission_id: int) -> str:
    return f"obl:{duty_id}:{LATE_NOTICE}:{submission_id}"


def _plan_follow_up(
    session: Session,
    plan_id: str,
    cycle: Cycle,
    consolidation_id: str,
    submission_ids: list[int],
    today: dt.date,
) -> FollowUp:
    duty = duty_of(session, cycle.id, consolidation_id)
    automatic = duty is not None and today <= duty.due_date
    unnoticed: list[int] = []
    if duty is not None and not automatic and submission_ids:
        keys = {_notice_key(duty.id, sid): sid for sid in submission_ids}
        sent = set(
            session.scalars(
                select(OutboxMessage.idempotency_key).where(
                    OutboxMessage.idempotency_key.in_(list(keys))
                )
            )
        )
        unnoticed = [sid for key, sid in keys.items() if key not in sent]
    return FollowUp(
        plan_id,
        cycle.key,
        consolidation_id,
        list(submission_ids),
        duty.due_date if duty else None,
        automatic and bool(submission_ids),
        unnoticed,
    )


def pending_follow_ups(session: Session, plan_id: str, today: dt.date) -> list[FollowUp]:
    """The follow-ups due: a revision to write, or notices not sent yet (read only)."""
    out = []
    for cycle_key, consolidation_id, ids in stale_consolidations(session, plan_id, today):
        cycle, _ = cycle_and_version(session, plan_id, cycle_key)
        todo = _plan_follow_up(session, plan_id, cycle, consolidation_id, ids, today)
        if todo.needed:
            out.append(todo)
    return out


def follow_up(
    session: Session,
    plan_id: str,
    cycle_key: str,
    consolidation_id: str,
    *,
    now: dt.datetime,
    settings: Any = None,
) -> FollowUp:
    """Reports taken in after the newest revision: revise while the consolidation duty's
    due date has not passed, else queue one notice per late submission to the
    consolidating unit. Idempotent; nothing to do when the cycle is not consolidated."""
    today = local_day(now)
    cycle, version = cycle_and_version(session, plan_id, cycle_key)
    ctx = plan_context(session, version)
    consolidation = ctx.consolidation(consolidation_id)
    previous = newest_report(session, cycle.id, consolidation_id)
    if consolidation is None or previous is None:
        return FollowUp(plan_id, cycle_key, consolidation_id, [], None, False)
    newer = newer_submissions(session, previous, consolidation.consolidates)
    todo = _plan_follow_up(
        session, plan_id, cycle, consolidation_id, [s.id for s, _ in newer], today
    )
    if todo.automatic:
        todo.result = consolidate(
            session, plan_id, cycle_key, consolidation_id, now=now, settings=settings, revise=True
        )
        return todo
    duty = duty_of(session, cycle.id, consolidation_id)
    if duty is None:
        return todo
    command = f"kehoach consolidate {plan_id} --cycle {cycle_key} --revise"
    if len(ctx.plan.consolidations) > 1:
        command += f" --consolidation {consolidation_id}"
    for submission, obligation in newer:
        if submission.id not in todo.unnoticed:
            continue
        _notice(session, ctx, duty, previous, submission, obligation, cycle_key, command, now)
        todo.notices.append(submission.id)
    session.flush()
    return todo


def _notice(
    session: Session,
    ctx: PlanContext,
    duty: Obligation,
    previous: ConsolidatedReport,
    submission: Submission,
    obligation: Obligation,
    cycle_key: str,
    command: str,
    now: dt.datetime,
) -> None:
    """One notice to the consolidating unit: a report came after its consolidated report."""
    resent = session.scalar(
        select(func.count(Submission.id)).where(
            Submission.obligation_id == obligation.id,
            Submission.version < submission.version,
            Submission.submitted_at <= previous.created_at,
        )
    )
    queue_mail(
        session,
        duty,
        LATE_NOTICE,
        str(submission.id),
        {
            "late_report": {
                "unit_name": ctx.unit_name(obligation.unit_id),
                "day": short_date(local_day(submission.submitted_at)),
                "at": submission.submitted_at.astimezone(TZ).strftime("%H:%M"),
                "version": submission.version,
                "on_time": submission.on_time,
                "resent": bool(resent),
                "due": short_date(obligation.due_date),
            },
            "consolidated_report": {
                "revision": previous.revision,
                "day": short_date(local_day(previous.created_at)),
                "document_path": previous.document_path,
            },
            "command": command,
        },
        now,
    )
    write_audit(
        session,
        "consolidation.late_report_noticed",
        at=now,
        plan_id=ctx.plan_id,
        obligation_id=duty.id,
        cycle=cycle_key,
        consolidation=duty.deliverable_id,
        submission_id=submission.id,
        unit_id=obligation.unit_id,
        report_id=previous.id,
        revision=previous.revision,
    )
