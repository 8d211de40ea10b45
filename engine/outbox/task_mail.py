"""What emails about a tracked task add: the task alone, its lead and supporting units.

A task's obligation belongs to its lead unit (chủ trì), which answers; the supporting
units (phối hợp) are told once, when the lead is assigned, in an email of their own
(``task_support``, queued by ``engine.outbox.requests.queue_supporting`` and completed
by ``engine.outbox.builders``) that names the task, the lead, its contact and the
deadline, without the lead's private link: what they contribute goes to the lead.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from engine.schema import Plan
from engine.tasks import TrackedTask


def supporting_ids(session: Session, plan: Plan, registry_id: str, task: TrackedTask) -> list[str]:
    """The supporting units of ``task`` as of the plan's date (groups expanded)."""
    from engine.applicability import registry_view

    view = registry_view(session, plan, registry_id)
    out: list[str] = []
    for target in task.supporting:
        for unit in view.resolve(target, plan.as_of):
            if unit.id not in out:
                out.append(unit.id)
    return out


def task_assignments(plan: Plan, task: TrackedTask) -> list[dict[str, Any]]:
    """The "tasks assigned" block of an email about one task: that task only."""
    assignment = plan.assignment(task.assignment_id) if task.assignment_id else None
    heading = assignment.heading if assignment is not None else (task.section or "")
    return [
        {
            "id": task.assignment_id or task.id,
            "section": task.section if assignment is None else assignment.section,
            "heading": heading,
            "mode": assignment.mode.value if assignment is not None else "order",
            "tasks": [task.text],
        }
    ]


def completed_by(plan: Plan, task: TrackedTask) -> str | None:
    """How a periodic report completes the task, in words; None for a completion report."""
    completion = task.completion
    report = plan.deliverable(completion.deliverable or "")
    if completion.by != "periodic_report" or report is None:
        return None
    template = plan.template(report.template or "")
    field = template.field(completion.field or "") if template is not None else None
    label = field.label if field is not None else completion.field
    return f"“{report.title}” ghi “{label}: {completion.done_when}”"


def task_context(
    plan: Plan, draft_units: Any, supporting: list[str], task: TrackedTask
) -> dict[str, Any]:
    return {
        "id": task.id,
        "text": task.text,
        "phrase": task.phrase,
        "supporting": [draft_units(u)["name"] for u in supporting],
        "completed_by": completed_by(plan, task),
    }
