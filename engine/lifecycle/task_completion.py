"""A tracked task completed through the lead's periodic report (``completion.by:
periodic_report``): when intake takes in a report whose ``field`` holds ``done_when``,
the task's own obligation gets a submission of the completion template, recorded and
taken in like any answer (same states, audit, receipt), in the same transaction.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.context import PlanContext
from engine.lifecycle.submissions import SubmissionRejected, record_submission
from engine.states import OBLIGATION_DONE
from engine.store.models import Cycle, Obligation, Submission
from engine.tasks import COMPLETION_TEMPLATE, STATUS_CHOICES

SOURCE = "periodic_report"
log = logging.getLogger(__name__)


def _task_obligation(
    session: Session, instance_id: int, unit_id: str, task_id: str
) -> Obligation | None:
    return session.scalar(
        select(Obligation)
        .join(Cycle, Obligation.cycle_id == Cycle.id)
        .where(
            Cycle.instance_id == instance_id,  # one cycle: once, or the year it is due in
            Obligation.unit_id == unit_id,
            Obligation.deliverable_id == task_id,
        )
    )


def completed_tasks(
    session: Session,
    ctx: PlanContext,
    obligation: Obligation,
    submission: Submission,
    now: dt.datetime,
) -> list[int]:
    """Record the completion of every task the report says is done; the ids of the new
    submissions (for the caller to take in)."""
    values: dict[str, Any] = submission.values if isinstance(submission.values, dict) else {}
    cycle = session.get(Cycle, obligation.cycle_id)
    made: list[int] = []
    for task in ctx.plan.tracked.tasks:
        completion = task.completion
        if (
            completion.by != "periodic_report"
            or completion.deliverable != obligation.deliverable_id
        ):
            continue
        if values.get(completion.field or "") != completion.done_when or cycle is None:
            continue
        target = _task_obligation(session, cycle.instance_id, obligation.unit_id, task.id)
        if target is None or target.status in OBLIGATION_DONE:
            continue
        title = ctx.title(obligation.deliverable_id)
        answer = {
            "muc-do": STATUS_CHOICES[0],
            "ket-qua": f"Báo cáo trong “{title}”, kỳ {cycle.key}.",
        }
        own = ctx.plan.deliverable(task.id)
        if own is None or own.template != COMPLETION_TEMPLATE:
            answer = {}  # a plan's own template: what it asks is not in the report
        try:
            recorded = record_submission(
                session,
                target.id,
                values=answer,
                summary=f"Hoàn thành theo báo cáo định kỳ (bản nộp {submission.id})",
                source=SOURCE,
                now=now,
                actor=f"unit:{obligation.unit_id}",
                strict=False,
            )
        except SubmissionRejected as exc:  # e.g. its cycle closed: the report still counts
            log.warning("task %s of %s not completed by report: %s", task.id, target.unit_id, exc)
            continue
        made.append(recorded.id)
    return made
