"""Tasks as tracked obligations: who leads a task, who supports it, by when, how it ends.

A task item of an assignment (``assignments[].tasks[]``) or a row of an appendix task
table (``task_tables[].rows[]``) may carry its own lead unit (chủ trì), supporting units
(phối hợp), time (``due``: the words of the document, "quý IV năm 2026", "2024 - 2025",
"thường xuyên") and what completes it (``completion``). A task with a ``due`` that names
a deadline is tracked like a report (``engine.tasks`` turns it into one); a task without
one stays text. Re-exported by ``engine.schema``.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal

from pydantic import BeforeValidator, Field, model_validator

from engine.schema_base import Model, Slug, Target
from engine.schema_time import DeadlineKind, DeadlinePolicy
from engine.task_window import Shape, Window, read_window


def _phrase_alone(value: object) -> object:
    """``due: "quý IV năm 2026"`` is ``due: {phrase: "quý IV năm 2026"}``."""
    if isinstance(value, str):
        return {"phrase": value}
    if isinstance(value, int) and not isinstance(value, bool):
        return {"phrase": str(value)}  # ``due: 2026``: the year, as the words "2026"
    return value


class Progress(Model):
    """The yearly progress report of a task done over several years ("2025 - 2030")."""

    day: int = Field(ge=1, le=31)
    month: int = Field(ge=1, le=12)
    phrase: str | None = Field(None, description="The plan's words, e.g. 'trước ngày 15/12'.")
    policy: DeadlinePolicy = DeadlinePolicy.exact
    deadline_kind: DeadlineKind | None = None

    @model_validator(mode="after")
    def _real_day(self) -> Progress:
        try:
            dt.date(2024, self.month, self.day)
        except ValueError:
            raise ValueError(f"{self.day}/{self.month} không phải là một ngày trong năm") from None
        return self


class TaskDue(Model):
    """When a task is done, in the document's words; the window's last day is its deadline.
    A task due in the plan's first year is in the one-off cycle; one due later ("2025 -
    2030") in that year's period, opened when the year starts (within ``end_year``)."""

    phrase: str = Field(
        description="As written: '30/6/2026', 'tháng 8/2024', 'quý IV năm 2026', "
        "'6 tháng đầu năm', 'năm 2026', '2024 - 2025', 'thường xuyên'."
    )
    year: int | None = Field(
        None, description="The year of words that name none ('quý IV'); default: the plan's."
    )
    policy: DeadlinePolicy = Field(
        DeadlinePolicy.exact, description="A last day that is not a working day."
    )
    deadline_kind: DeadlineKind | None = Field(
        None, description="A date's words only ('trước ngày 30/6/2026': exclusive)."
    )
    assumed: bool = Field(False, description="True where the document states no time.")
    note: str | None = None
    progress: Progress | None = Field(
        None, description="A range's yearly progress report (due each year but the last)."
    )

    @model_validator(mode="after")
    def _readable(self) -> TaskDue:
        # A year-less phrase is read with a stand-in year here; engine.tasks reads it
        # again with the plan's year.
        window = read_window(self.phrase, self.year if self.year is not None else 2000)
        if self.progress is not None and window.shape is not Shape.range:
            raise ValueError(
                "'progress' (báo cáo tiến độ hằng năm) chỉ dùng cho một giai đoạn nhiều năm "
                "('2024 - 2025'); bỏ 'progress' hoặc ghi giai đoạn"
            )
        if self.deadline_kind is not None and window.shape is not Shape.date:
            raise ValueError(
                "'deadline_kind' chỉ dùng cho một ngày ('trước ngày 30/6/2026'); hạn của "
                f"“{self.phrase}” là ngày cuối của khoảng thời gian đó; bỏ 'deadline_kind'"
            )
        return self

    def window(self, plan_year: int) -> Window:
        """The window, year-less words read in ``year`` or else ``plan_year``."""
        return read_window(self.phrase, self.year if self.year is not None else plan_year)


Due = Annotated[TaskDue, BeforeValidator(_phrase_alone)]


class Completion(Model):
    """What completes a tracked task: the lead's completion report through the portal, or
    a choice field of a periodic report the lead sends anyway (e.g. "Tình trạng nhiệm vụ
    LGSP: Đã hoàn thành")."""

    by: Literal["report", "periodic_report"] = Field(
        "report",
        description="report: the lead sends a completion report through the portal; "
        "periodic_report: also done when the lead's periodic report gives 'field' the value "
        "'done_when'.",
    )
    template: Slug | None = Field(
        None,
        description="Report template of the completion report (default: a short built-in "
        "one: result, status, attachment).",
    )
    to: Slug | None = Field(
        None, description="Registry id the completion report goes to (default: the issuer)."
    )
    review: bool = Field(False, description="The receiving unit accepts or returns it.")
    reminders: list[int] = Field(
        default_factory=lambda: [7, 3, 1], description="Days before the deadline."
    )
    deliverable: Slug | None = Field(
        None, description="periodic_report: the periodic report deliverable's id."
    )
    field: Slug | None = Field(
        None, description="periodic_report: the choice field of its template that tells."
    )
    done_when: str = Field(
        "Đã hoàn thành", description="periodic_report: the choice that means done."
    )

    @model_validator(mode="after")
    def _consistent(self) -> Completion:
        periodic = self.by == "periodic_report"
        if periodic and not (self.deliverable and self.field):
            raise ValueError(
                "by: periodic_report cần 'deliverable' (mã báo cáo định kỳ) và 'field' (mã "
                "trường lựa chọn cho biết nhiệm vụ đã hoàn thành)"
            )
        if not periodic and (self.deliverable or self.field):
            raise ValueError(
                "'deliverable' và 'field' chỉ dùng với 'by: periodic_report'; thêm 'by: "
                "periodic_report' hoặc bỏ hai trường này"
            )
        return self


class TrackedFields(Model):
    """What makes a task trackable (shared by task items and table rows)."""

    lead: Target | None = Field(
        None, description="The lead unit (chủ trì); default: the assignment's unit."
    )
    supporting: list[Target] = Field(
        default_factory=list, description="Supporting units (phối hợp): told, may contribute."
    )
    due: Due | None = Field(None, description="Time as written; without it the task is text.")
    completion: Completion | None = Field(
        None, description="What completes it (default: a completion report)."
    )
    deliverable_title: str | None = Field(
        None,
        max_length=40,
        description="The task as email subjects name it (default: its text, shortened).",
    )


class TaskRow(TrackedFields):
    """One row of an appendix task table: task / lead / supporting / time."""

    id: Slug
    number: str | None = Field(None, description="The row number as printed, e.g. '1', 'II.3'.")
    text: str
    lead: Target = Field(description="Đơn vị chủ trì.")


class TaskTable(Model):
    """An appendix task table (Phụ lục: Danh mục nhiệm vụ)."""

    id: Slug
    title: str = Field(description="As printed, e.g. 'Phụ lục I. Danh mục nhiệm vụ'.")
    section: str | None = None
    rows: list[TaskRow] = Field(min_length=1)
