"""What emails about a tracked task add: the task alone, its lead and supporting units.

A task's obligation belongs to its lead unit (chủ trì), which answers; the supporting
units (phối hợp) are told once, when the lead is assigned, in an email of their own
(``task_support``) that names the task, the lead, its contact and the deadline, without
the lead's private link: what they contribute goes to the lead.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy.orm import Session

from engine.outbox.builders import Draft, contact_of
from engine.outbox.kinds import MailKind
from engine.schema import Plan
from engine.store.models import Obligation
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


def task_context(draft_units: Any, supporting: list[str], task: TrackedTask) -> dict[str, Any]:
    return {
        "id": task.id,
        "text": task.text,
        "phrase": task.phrase,
        "supporting": [draft_units(u)["name"] for u in supporting],
    }


def build_task_support(d: Draft) -> None:
    """To the supporting units of the task; the lead's link is not theirs."""
    ids = [u for u in str(d.extra.pop("supporting_ids", "")).split(",") if u]
    emails: list[str] = []
    for unit_id in ids:
        emails += [e for e in d.units(unit_id)["emails"] if e not in emails]
    d.to_addrs = emails
    d.context["link"] = None
    d.context["lead"] = d.unit
    d.context["lead_contact"] = contact_of(d.unit)


def queue_supporting(
    session: Session, plan: Plan, registry_id: str, obligations: list[Obligation], now: dt.datetime
) -> int:
    """One ``task_support`` email per new task obligation that has supporting units."""
    from engine.outbox.requests import queue_many

    requests = []
    for obligation in obligations:
        task = plan.tracked.task_of(obligation.deliverable_id)
        if task is None or not task.supporting or obligation.deliverable_id != task.id:
            continue
        ids = [u for u in supporting_ids(session, plan, registry_id, task) if u != obligation.unit_id]
        if ids:
            requests.append((obligation, MailKind.TASK_SUPPORT.value, "", {"supporting_ids": ",".join(ids)}))
    return queue_many(session, requests, now, whole_registry=False)
