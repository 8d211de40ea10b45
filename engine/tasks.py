"""Tracked tasks as deliverables: the same obligations, emails, sweep and portal as reports.

A task item (``assignments[].tasks[]``) or an appendix row (``task_tables[].rows[]``)
whose ``due`` names a deadline becomes a :class:`TaskDeliverable`: a one-off report of
the lead unit (the completion report, cycle ``once``), due on the last day of the
task's window, answered through the portal with the completion template; a task due
in a later year than the plan's first falls in that year's period instead (a cycle
closes when its last deadline has passed, engine.closing: "2025 - 2030" must not hold
the 2024 tasks' cycle open until 2031). A range
("2025 - 2030") with ``progress`` also owes a yearly progress report in each year of the
range but the last. "thường xuyên" tasks are ongoing: kept as text, listed as reported
with the periodic report, never a deadline. Nothing here is stored: it is derived from
the plan (``Plan.tracked``) wherever the plan is read.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any

from engine.schema_base import Target
from engine.schema_tasks import Completion, TrackedFields
from engine.schema_templates import ReportTemplate
from engine.schema_time import DeadlineKind
from engine.task_window import Shape, Window

COMPLETION_TEMPLATE = "ket-qua-nhiem-vu"
PROGRESS_SUFFIX = "-tien-do"
STATUS_CHOICES = ["Đã hoàn thành", "Hoàn thành một phần", "Chưa hoàn thành"]


@cache
def built_in_template() -> ReportTemplate:
    """The completion report a task owes unless its plan writes one of that id, made on
    first use: validating it builds ReportTemplate's own validator, which `kehoach
    validate` does not otherwise need (the models' validators are built on first use,
    engine.schema_base.Model)."""
    return ReportTemplate.model_validate(
        {
            "id": COMPLETION_TEMPLATE,
            "title": "Báo cáo kết quả thực hiện nhiệm vụ",
            "fields": [
                {
                    "id": "muc-do",
                    "label": "Mức độ hoàn thành",
                    "type": "choice",
                    "choices": STATUS_CHOICES,
                    "aggregate": "count",  # a consolidation counts the leads per choice
                },
                {"id": "ket-qua", "label": "Kết quả thực hiện", "type": "text"},
                {
                    "id": "kien-nghi",
                    "label": "Khó khăn, vướng mắc, kiến nghị",
                    "type": "text",
                    "required": False,
                },
            ],
        }
    )


@dataclass(frozen=True)
class TrackedTask:
    """One task with its own lead, supporting units and time."""

    id: str
    text: str
    number: str | None
    lead: Target
    supporting: tuple[Target, ...]
    assignment_id: str | None
    section: str | None
    window: Window
    phrase: str
    path: tuple[str | int, ...]  # where it is written: ("task_tables", 0, "rows", 2)
    completion: Completion

    @property
    def ongoing(self) -> bool:
        return self.window.shape is Shape.ongoing


@dataclass(frozen=True)
class Tracked:
    """The plan's tasks with a time: tracked ones (deadline) and ongoing ones."""

    tasks: tuple[TrackedTask, ...]
    deliverables: Sequence[Any]  # engine.schema.TaskDeliverable, built by Plan.tracked
    templates: tuple[ReportTemplate, ...]

    def task_of(self, deliverable_id: str) -> TrackedTask | None:
        """The task a (completion or progress) deliverable is made from."""
        found = next((d for d in self.deliverables if d.id == deliverable_id), None)
        if found is None:
            return None
        return next((t for t in self.tasks if t.id == found.task_id), None)

    @property
    def ongoing(self) -> list[TrackedTask]:
        return [t for t in self.tasks if t.ongoing]


def plan_year(plan: Any) -> int:
    """The year words without one ("quý IV") are read in: the plan's first year."""
    return plan.start_year or plan.takes_effect.year


def _short(text: str, width: int = 40) -> str:
    text = " ".join(text.split())
    if len(text) <= width:
        return text
    cut = text[: width - 1].rsplit(" ", 1)[0]
    return re.sub(r"[,;:.\s]+$", "", cut) + "…"


def _task(
    plan: Any,
    fields: TrackedFields,
    *,
    ident: str,
    text: str,
    number: str | None,
    assignment: Any,
    section: str | None,
    path: tuple[str | int, ...],
) -> TrackedTask | None:
    if fields.due is None:
        return None
    try:
        window = fields.due.window(plan_year(plan))
    except ValueError:
        return None  # refused by engine.checks_tasks, located
    lead = fields.lead or (assignment.to if assignment is not None else None)
    if lead is None:
        return None
    return TrackedTask(
        id=ident,
        text=text,
        number=number,
        lead=lead,
        supporting=tuple(fields.supporting),
        assignment_id=assignment.id if assignment is not None else None,
        section=section,
        window=window,
        phrase=fields.due.phrase,
        path=path,
        completion=fields.completion or Completion.model_validate({}),
    )


def _tasks(plan: Any) -> list[tuple[TrackedTask, TrackedFields]]:
    found: list[tuple[TrackedTask, TrackedFields]] = []
    for a_index, assignment in enumerate(plan.assignments):
        for t_index, item in enumerate(assignment.tasks):
            task = _task(
                plan,
                item,
                ident=item.id,
                text=item.text,
                number=None,
                assignment=assignment,
                section=assignment.section,
                path=("assignments", a_index, "tasks", t_index),
            )
            if task is not None:
                found.append((task, item))
    for table_index, table in enumerate(plan.task_tables):
        for r_index, row in enumerate(table.rows):
            where = table.section or table.title
            task = _task(
                plan,
                row,
                ident=row.id,
                text=row.text,
                number=row.number,
                assignment=None,
                section=f"{where}, mục {row.number}" if row.number else where,
                path=("task_tables", table_index, "rows", r_index),
            )
            if task is not None:
                found.append((task, row))
    return found


def _deliverables(plan: Any, task: TrackedTask, fields: TrackedFields) -> list[dict[str, Any]]:
    """The deliverables a tracked task owes, as the data of ``engine.schema.TaskDeliverable``."""
    due = fields.due
    assert due is not None and task.window.end is not None
    completion = task.completion
    kind = due.deadline_kind if task.window.shape is Shape.date else DeadlineKind.inclusive
    common = {
        "kind": "report",
        "section": task.section,
        "text": task.text,
        "from_assignments": [task.assignment_id] if task.assignment_id else [],
        "routing": {"to": completion.to or plan.document.issuer_unit},
        "template": completion.template or COMPLETION_TEMPLATE,
        "review": completion.review,
        "reminders": list(completion.reminders),
        "task_id": task.id,
    }
    short = fields.deliverable_title or _short(task.text)
    made = [
        {
            "id": task.id,
            "title": f"Báo cáo kết quả thực hiện nhiệm vụ: {task.text}",
            "short_title": short,
            **_completion_period(plan, task),
            "deadline": {
                "rule": "fixed",
                "date": task.window.end,
                "phrase": due.phrase,
                "policy": due.policy,
                "deadline_kind": kind,
                "assumed": due.assumed,
                "note": due.note,
            },
            **common,
        }
    ]
    progress = due.progress
    if progress is not None and task.window.shape is Shape.range:
        years = task.window.years
        made.append(
            {
                "id": f"{task.id}{PROGRESS_SUFFIX}",
                "title": f"Báo cáo tiến độ thực hiện nhiệm vụ: {task.text}",
                "short_title": _short(f"Tiến độ: {short}"),
                "frequency": "yearly",
                "deadline": {"rule": "yearly", **progress.model_dump()},
                "first_period": str(years[0]),
                "last_period": str(years[-2]),
                **common,
            }
        )
    return made


def _completion_period(plan: Any, task: TrackedTask) -> dict[str, Any]:
    """The cycle a completion report falls in: ``once`` when the task is due in the plan's
    first year; else the yearly period of the year it is due ("2025 - 2030": 2030), so a
    task running for years does not keep the first year's tasks' cycle open with it."""
    assert task.window.end is not None
    year = task.window.end.year
    if year <= plan_year(plan):
        return {"frequency": "once"}
    return {"frequency": "yearly", "first_period": str(year), "last_period": str(year)}


def tracked_tasks(
    plan: Any,
) -> tuple[list[TrackedTask], list[dict[str, Any]], tuple[ReportTemplate, ...]]:
    """The plan's tasks with a time, the data of the deliverables its tracked ones owe,
    and the built-in completion template when one of them uses it."""
    pairs = _tasks(plan)
    deliverables: list[dict[str, Any]] = []
    for task, fields in pairs:
        if not task.ongoing:
            deliverables.extend(_deliverables(plan, task, fields))
    wants_built_in = any(d["template"] == COMPLETION_TEMPLATE for d in deliverables)
    own = any(t.id == COMPLETION_TEMPLATE for t in plan.report_templates)
    templates = (built_in_template(),) if wants_built_in and not own else ()
    return [t for t, _ in pairs], deliverables, templates


def is_last_or_before(deliverable: Any, cycle_key: str) -> bool:
    """Whether ``cycle_key`` is within a progress report's years (any for others)."""
    last = getattr(deliverable, "last_period", None)
    return last is None or cycle_key[:4] <= last
