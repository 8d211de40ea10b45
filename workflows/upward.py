"""A consolidated report handed upward, as Prefect shows it: where it went (the parent
plan's cycle and unit, when it became that plan's submission) and the events saying so.

Shared by the consolidate flow (a report of before approval, handed upward by the
consolidation itself) and the approval flow (workflows/approve_report.py: approved,
signed, its email sent).
"""

from __future__ import annotations

from typing import Any

from engine.store.models import Obligation, Submission
from workflows.artifacts import publish_status
from workflows.common import add_run_tags, obligations, plan_tag, unit_tag
from workflows.events import (
    REPORT_HANDED_UPWARD,
    SUBMISSION_RECEIVED,
    cycle_resource,
    emit,
    related_resources,
    submission_resource,
)


def upward_of(session: Any, submission_id: int | None) -> dict[str, Any]:
    """Where a report handed upward went: the parent plan, its cycle, the duty's label
    and (unit id, name) of the submission ``submission_id`` (all None without one)."""
    found: dict[str, Any] = dict.fromkeys(
        ("upward_plan", "upward_cycle", "upward_label", "upward_unit")
    )
    submission = session.get(Submission, submission_id) if submission_id is not None else None
    obligation = session.get(Obligation, submission.obligation_id) if submission else None
    if obligation is not None:
        [info] = obligations(session, ids=[obligation.id])
        found.update(
            upward_plan=info.plan_id,
            upward_cycle=info.cycle_key,
            upward_label=info.label,
            upward_unit=(info.unit_id, info.unit_name),
        )
    return found


def emit_handed_upward(
    url: str, plan_id: str, key: str, result: dict[str, Any], payload: dict[str, Any], day: Any
) -> None:
    """:data:`REPORT_HANDED_UPWARD` on the cycle, about the parent plan's cycle and unit
    when the report became its submission (then also :data:`SUBMISSION_RECEIVED` there,
    the run tagged and the parent's status republished), else about the sender."""
    resource = cycle_resource(plan_id, key)
    if not result["upward_plan"]:
        emit(REPORT_HANDED_UPWARD, resource, related_resources(plan_id, key), payload)
        return
    parent, parent_cycle = result["upward_plan"], result["upward_cycle"]
    unit_id, unit_name = result["upward_unit"]
    related = related_resources(parent, parent_cycle, unit_id, unit_name)
    emit(REPORT_HANDED_UPWARD, resource, related, {"parent_plan": parent, **payload})
    emit(
        SUBMISSION_RECEIVED,
        submission_resource(result["upward_submission_id"], f"nộp · {result['upward_label']}"),
        related,
        {"source": "upward", "from_plan": plan_id},
    )
    add_run_tags(plan_tag(parent), unit_tag(unit_id))
    publish_status(url, parent, parent_cycle, day)
