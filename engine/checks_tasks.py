"""Domain checks of tracked tasks: their units, times, ids and completion.

Called by :class:`engine.checks.PlanChecker` like ``engine.checks_time``; every message
is Vietnamese and located at the task's own key (file:line:column).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator

from engine.checks_time import TimeChecks
from engine.periods import effective_date
from engine.schema import Plan, Target
from engine.schema_tasks import TrackedFields
from engine.task_window import Shape, Window
from engine.tasks import PROGRESS_SUFFIX, plan_year

Add = Callable[[tuple, str, str], None]


def _d(day: dt.date) -> str:
    return f"{day.day:02d}/{day.month:02d}/{day.year}"


def task_fields(plan: Plan) -> Iterator[tuple[tuple, str, TrackedFields]]:
    """(where, id, fields) of every task item and appendix row, in document order."""
    for a_index, assignment in enumerate(plan.assignments):
        for t_index, item in enumerate(assignment.tasks):
            yield ("assignments", a_index, "tasks", t_index), item.id, item
    for table_index, table in enumerate(plan.task_tables):
        for r_index, row in enumerate(table.rows):
            yield ("task_tables", table_index, "rows", r_index), row.id, row


class TaskChecks:
    def __init__(
        self,
        plan: Plan,
        add: Add,
        warn: Add,
        check_target: Callable[[tuple, Target], None],
        check_unit: Callable[[tuple, str], bool],
        time: TimeChecks,
        resolve: Callable[[Target], set[str]],
    ) -> None:
        self.plan = plan
        self.add = add
        self.warn = warn
        self.check_target = check_target
        self.check_unit = check_unit
        self.time = time
        self.resolve = resolve
        self.start = effective_date(plan)

    def run(self) -> None:
        taken = {d.id: "deliverables" for d in self.plan.deliverables}
        taken.update({c.id: "consolidations" for c in self.plan.consolidations})
        rows: dict[str, tuple] = {}
        for path, ident, fields in task_fields(self.plan):
            if path[0] == "task_tables":
                if ident in rows:
                    self.add(
                        (*path, "id"),
                        f"mã nhiệm vụ '{ident}' bị dùng hai lần; mã nhiệm vụ phải khác nhau "
                        "trong một kế hoạch",
                        "duplicate",
                    )
                rows.setdefault(ident, path)
            self.check_units(path, fields)
            window = self.check_due(path, fields)
            if window is None or window.shape is Shape.ongoing:
                continue
            for own in (ident, f"{ident}{PROGRESS_SUFFIX}"):
                if own in taken:
                    self.add(
                        (*path, "id"),
                        f"nhiệm vụ có thời hạn '{ident}' được theo dõi như một báo cáo mã "
                        f"'{own}', trùng mã trong {taken[own]}; đổi mã nhiệm vụ",
                        "duplicate",
                    )
        self.check_rows_against_items()

    def check_rows_against_items(self) -> None:
        items = {item.id for a in self.plan.assignments for item in a.tasks}
        for path, ident, _fields in task_fields(self.plan):
            if path[0] == "task_tables" and ident in items:
                self.add(
                    (*path, "id"),
                    f"mã '{ident}' đã là một nhiệm vụ trong 'assignments'; mỗi nhiệm vụ một mã",
                    "duplicate",
                )

    def check_units(self, path: tuple, fields: TrackedFields) -> None:
        if fields.lead is not None:
            self.check_target((*path, "lead"), fields.lead)
        for index, target in enumerate(fields.supporting):
            self.check_target((*path, "supporting", index), target)
        completion = fields.completion
        if completion is None:
            return
        if fields.due is None:
            self.add(
                (*path, "completion"),
                "'completion' chỉ có tác dụng với nhiệm vụ có thời hạn; thêm 'due' (thời "
                "gian thực hiện) hoặc bỏ 'completion'",
                "completion-without-due",
            )
        if completion.to is not None:
            self.check_unit((*path, "completion", "to"), completion.to)
        if completion.template is not None and self.plan.template(completion.template) is None:
            self.add(
                (*path, "completion", "template"),
                f"không có mẫu báo cáo '{completion.template}'; định nghĩa nó trong "
                "'report_templates' hoặc bỏ để dùng mẫu báo cáo kết quả có sẵn",
                "unknown-template",
            )
        if completion.by == "periodic_report":
            self.check_periodic((*path, "completion"), fields)
        if any(not 1 <= days <= 366 for days in completion.reminders):
            self.add(
                (*path, "completion", "reminders"),
                "reminders là số ngày trước hạn, phải từ 1 đến 366",
                "invalid",
            )

    def check_periodic(self, where: tuple, fields: TrackedFields) -> None:
        """The periodic report that completes a task: it exists, recurs, has the field
        as a choice with ``done_when`` among its choices, and the lead owes it."""
        completion = fields.completion
        assert completion is not None and completion.deliverable and completion.field
        found = next((d for d in self.plan.deliverables if d.id == completion.deliverable), None)
        template = self.plan.template(found.template or "") if found is not None else None
        if found is None or found.frequency.value == "once" or template is None:
            self.add(
                (*where, "deliverable"),
                f"'{completion.deliverable}' không phải là một báo cáo định kỳ (có mẫu báo "
                "cáo) của kế hoạch; dùng mã một báo cáo trong 'deliverables'",
                "unknown-deliverable",
            )
            return
        field = template.field(completion.field)
        if (
            field is None
            or field.type.value != "choice"
            or completion.done_when not in field.choices
        ):
            self.add(
                (*where, "field"),
                f"mẫu '{template.id}' cần một trường lựa chọn '{completion.field}' có giá trị "
                f"“{completion.done_when}” (done_when); thêm trường đó vào mẫu hoặc sửa 'field'",
                "unknown-field",
            )
        lead = fields.lead or self._heading_of(where)
        owing = set()
        for assignment in self.plan.assignments:
            if found.from_assignments == "all" or assignment.id in found.from_assignments:
                owing |= self.resolve(assignment.to)
        missing = sorted(self.resolve(lead) - owing) if lead is not None else []
        if missing:
            self.add(
                (*where, "deliverable"),
                f"đơn vị chủ trì {', '.join(missing)} không phải gửi '{found.id}', nên báo cáo "
                "đó không thể cho biết nhiệm vụ đã hoàn thành; chọn báo cáo mà đơn vị chủ trì "
                "phải gửi, hoặc bỏ 'by: periodic_report'",
                "periodic-not-owed",
            )

    def _heading_of(self, where: tuple) -> Target | None:
        if where[0] == "assignments":
            return self.plan.assignments[where[1]].to
        return None

    def check_due(self, path: tuple, fields: TrackedFields) -> Window | None:
        due = fields.due
        if due is None:
            return None
        where = (*path, "due")
        try:
            window = due.window(plan_year(self.plan))
        except ValueError as exc:
            self.add(where, str(exc), "task-due")
            return None
        if window.shape is Shape.ongoing:
            return window
        if not window.year_given:
            self.warn(
                where,
                f"“{due.phrase}” không ghi năm: tính là năm {window.start.year if window.start else ''} "
                "(năm đầu của kế hoạch); ghi năm vào lời văn hoặc 'year' để bỏ cảnh báo này",
                "task-due-year",
            )
        ident = fields_id(self.plan, path)
        for own, at in ((ident, where), (f"{ident}{PROGRESS_SUFFIX}", (*where, "progress"))):
            deliverable = self.plan.deliverable(own)
            if deliverable is not None and getattr(deliverable, "task_id", None) == ident:
                self.time.check_words(at, deliverable.deadline)
        assert window.end is not None
        if window.end < self.start:
            self.add(
                where,
                f"hạn {_d(window.end)} (“{due.phrase}”) trước ngày kế hoạch có hiệu lực "
                f"({_d(self.start)}); không có nghĩa vụ nào có hạn trước khi kế hoạch tồn tại",
                "due-before-plan",
            )
        last = self.plan.end_year
        if last is not None and window.end.year > last:
            self.add(
                where,
                f"hạn {_d(window.end)} (“{due.phrase}”) sau năm cuối của kế hoạch (end_year: "
                f"{last}): kỳ năm {window.end.year} của nhiệm vụ sẽ không được mở; sửa "
                f"'end_year' thành {window.end.year} hoặc sửa thời gian của nhiệm vụ",
                "due-after-plan",
            )
        if window.shape is Shape.range and due.progress is None:
            self.warn(
                where,
                f"giai đoạn “{due.phrase}” không có 'progress': chỉ theo dõi hạn cuối "
                f"{_d(window.end)}, không có báo cáo tiến độ hằng năm",
                "task-range-no-progress",
            )
        return window


def fields_id(plan: Plan, path: tuple) -> str:
    """The id of the task written at ``path``."""
    if path[0] == "assignments":
        return plan.assignments[path[1]].tasks[path[3]].id
    return plan.task_tables[path[1]].rows[path[3]].id
