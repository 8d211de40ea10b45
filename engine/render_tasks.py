"""`kehoach show` for tracked tasks: each task's lead, supporting units, time and deadline,
and the appendix task tables (engine.render_plan calls these)."""

from __future__ import annotations

import datetime as dt
import textwrap

from engine import vntext
from engine.calendar import WorkCalendar, cycle_from_key, deadline
from engine.periods import counting_from
from engine.registry import RegistryView
from engine.schema import Plan, Target
from engine.tasks import TrackedTask


def _wrap(text: str, indent: str, width: int = 100) -> str:
    return textwrap.fill(
        " ".join(text.split()), width=width, initial_indent=indent, subsequent_indent=indent + "  "
    )


def _names(view: RegistryView, targets: tuple[Target, ...] | list[Target]) -> str:
    out = []
    for target in targets:
        if target.unit:
            unit = view.unit(target.unit)
            out.append(unit.name if unit else target.unit)
        else:
            group = view.groups.get(target.group or "")
            out.append(group.name if group else str(target.group))
    return ", ".join(out)


def _when(plan: Plan, task: TrackedTask, cal: WorkCalendar, activated_on: dt.date | None) -> str:
    """The time as written, and the deadline it gives (or that it gives none)."""
    if task.ongoing:
        periodic = ongoing_reports(plan, task)
        if periodic:
            return f"“{task.phrase}”: không có hạn riêng, báo cáo cùng {'; '.join(periodic)}"
        return f"“{task.phrase}”: không có hạn riêng; kế hoạch không có báo cáo định kỳ nào về nhiệm vụ này"
    deliverable = plan.deliverable(task.id)
    assert deliverable is not None
    start = counting_from(plan, activated_on or plan.as_of)
    due = deadline(deliverable.deadline, cycle_from_key("once"), start, cal)
    why = f" ({due.reason})" if due.reason else ""
    text = f"“{task.phrase}”: hạn {vntext.date_with_weekday(due.due)}{why}"
    progress = plan.deliverable(f"{task.id}-tien-do")
    if progress is not None and getattr(progress, "task_id", None) == task.id:
        years = task.window.years[:-1]
        span = f"năm {years[0]}" if len(years) == 1 else f"hằng năm {years[0]}–{years[-1]}"
        text += f"; báo cáo tiến độ {span}"
        if progress.deadline.phrase:
            text += f" (“{progress.deadline.phrase}”)"
    return text


def ongoing_reports(plan: Plan, task: TrackedTask) -> list[str]:
    """The periodic reports an ongoing task is reported with: those its lead owes through
    its assignment."""
    return [
        f"“{d.title}”"
        for d in plan.deliverables
        if d.frequency.value != "once"
        and d.kind.value == "report"
        and (d.from_assignments == "all" or (task.assignment_id or "") in d.from_assignments)
    ]


def task_detail(
    plan: Plan,
    view: RegistryView,
    task: TrackedTask,
    cal: WorkCalendar,
    activated_on: dt.date | None,
) -> list[str]:
    """The lines under one tracked task: lead, supporting units, time."""
    lines = [f"chủ trì: {_names(view, [task.lead])}"]
    if task.supporting:
        lines.append(f"phối hợp: {_names(view, task.supporting)}")
    lines.append(f"thời gian: {_when(plan, task, cal, activated_on)}")
    return lines


def task_table_lines(
    plan: Plan, view: RegistryView, cal: WorkCalendar, activated_on: dt.date | None
) -> list[str]:
    """Each appendix task table, row by row."""
    lines: list[str] = []
    tasks = {t.id: t for t in plan.tracked.tasks}
    for table in plan.task_tables:
        lines += ["", f"{table.title}:"]
        for row in table.rows:
            number = f"{row.number}. " if row.number else ""
            lines.append(_wrap(f"{number}[{row.id}] {row.text}", "  "))
            task = tasks.get(row.id)
            if task is None:
                lines.append(f"      chủ trì: {_names(view, [row.lead])}")
                continue
            lines += [
                _wrap(line, "      ") for line in task_detail(plan, view, task, cal, activated_on)
            ]
    return lines
