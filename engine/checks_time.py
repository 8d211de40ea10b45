"""Domain checks of a plan's time: effective date, first periods, deadline words.

Called by :class:`engine.checks.PlanChecker`; errors stop the load, warnings are kept in
``Catalog.warnings`` and printed once by `kehoach validate` / `kehoach load`.  Messages
are Vietnamese and located (file:line:column), like every problem of a definition.
"""

from __future__ import annotations

import datetime as dt
import os
import re
from collections.abc import Callable

from engine.calendar import CycleSpec, WorkCalendar, cycle_from_key
from engine.config_given import FIRST_DEADLINE_WARN_DAYS, nothing_given
from engine.deadline_words import read_phrase
from engine.periods import due_of, effective_date, first_owed
from engine.schema import DeadlineKind, Deliverable, FixedDate, Frequency, Plan

Add = Callable[[tuple, str, str], None]

_KEY_SHAPE = {
    Frequency.yearly: (r"^\d{4}$", "'2026'"),
    Frequency.half_yearly: (r"^\d{4}-H[12]$", "'2026-H1' hoặc '2026-H2'"),
    Frequency.quarterly: (r"^\d{4}-Q[1-4]$", "'2026-Q2'"),
    Frequency.monthly: (r"^\d{4}-\d{2}$", "'2026-04'"),
}


def _d(day: dt.date) -> str:
    return f"{day.day:02d}/{day.month:02d}/{day.year}"


class TimeChecks:
    def __init__(self, plan: Plan, cal: WorkCalendar, add: Add, warn: Add, warn_days: int) -> None:
        self.plan = plan
        self.cal = cal
        self.add = add
        self.warn = warn
        self.warn_days = max(0, warn_days)
        self.start = effective_date(plan)

    def run(self) -> None:
        self.check_effective_date()
        for index, deliverable in enumerate(self.plan.deliverables):
            base = ("deliverables", index)
            self.check_words((*base, "deadline"), deliverable.deadline)
            self.check_fixed((*base, "deadline"), deliverable.deadline)
            if deliverable.first_period is not None and not self.check_first_period(
                base, deliverable
            ):
                continue
            self.warn_first_deadline(base, deliverable)
        for index, consolidation in enumerate(self.plan.consolidations):
            where = ("consolidations", index, "deadline")
            self.check_words(where, consolidation.deadline)
            self.check_fixed(where, consolidation.deadline)
        for index, event in enumerate(self.plan.events):
            if event.date is not None and event.date.deadline_kind is not None:
                self.add(
                    ("events", index, "date", "deadline_kind"),
                    "sự kiện là một ngày diễn ra, không phải hạn nộp; bỏ 'deadline_kind'",
                    "event-deadline-kind",
                )

    def check_effective_date(self) -> None:
        plan = self.plan
        if plan.effective_date is None:
            return
        if plan.document.date is not None and plan.effective_date < plan.document.date:
            self.add(
                ("effective_date",),
                f"ngày hiệu lực {_d(plan.effective_date)} trước ngày ban hành "
                f"{_d(plan.document.date)} (document.date): kế hoạch không thể đòi báo cáo "
                "trước khi ban hành; ghi ngày từ ngày ban hành trở đi, hoặc bỏ trường này",
                "effective-before-issue",
            )

    def check_words(self, path: tuple, rule) -> None:
        """``deadline_kind`` against the phrase's own words."""
        read = read_phrase(rule.phrase)
        stated = rule.deadline_kind
        if stated is None:
            # a request's date is the request's own: nothing to read from the words
            if rule.phrase and read.kind is None and not rule.assumed and rule.rule != "on_request":
                self.warn(
                    (*path, "phrase"),
                    f"không đọc được từ lời văn “{rule.phrase}” hạn có tính cả ngày ghi hay "
                    "không; hệ thống tính đến hết ngày đó (inclusive). Ghi 'deadline_kind: "
                    "inclusive' hoặc 'exclusive' để bỏ cảnh báo này",
                    "deadline-kind-unread",
                )
            return
        if read.kind is None or read.kind == stated:
            return
        if read.certain:
            self.add(
                (*path, "deadline_kind"),
                f"'{stated.value}' trái với lời văn “{read.words}” (trong “{rule.phrase}”), "
                "vốn tính cả ngày ghi; ghi 'inclusive' hoặc bỏ 'deadline_kind'",
                "deadline-kind-disagrees",
            )
        elif stated is DeadlineKind.inclusive and not rule.note:
            self.add(
                (*path, "deadline_kind"),
                f"'inclusive' trái với nghĩa đen của “{read.words}” (trong “{rule.phrase}”: "
                "không tính ngày ghi); nếu kế hoạch này hiểu là tính cả ngày đó, ghi lý do "
                "vào 'note' (được nêu cùng hạn trong thư và cổng), nếu không thì bỏ "
                "'deadline_kind'",
                "deadline-kind-disagrees",
            )

    def check_fixed(self, path: tuple, rule) -> None:
        if isinstance(rule, FixedDate) and rule.date < self.start:
            self.add(
                (*path, "date"),
                f"hạn {_d(rule.date)} trước ngày kế hoạch có hiệu lực ({_d(self.start)}); "
                "không có nghĩa vụ nào có hạn trước khi kế hoạch tồn tại",
                "due-before-plan",
            )

    def check_first_period(self, base: tuple, deliverable: Deliverable) -> bool:
        path = (*base, "first_period")
        key = deliverable.first_period or ""
        if deliverable.frequency is Frequency.once:
            self.add(
                path,
                "'first_period' chỉ dùng cho báo cáo định kỳ; nội dung này chỉ gửi một lần "
                "(frequency: once), bỏ trường này",
                "first-period-once",
            )
            return False
        if deliverable.frequency is Frequency.on_request:
            return False  # a request has no periods: engine.checks_requests says so
        shape, example = _KEY_SHAPE[deliverable.frequency]
        if not re.match(shape, key):
            self.add(
                path,
                f"'{key}' không phải một kỳ {deliverable.frequency.value}; viết như {example}",
                "first-period-shape",
            )
            return False
        spec = cycle_from_key(key)
        year = int(key[:4])
        plan = self.plan
        if (plan.start_year and year < plan.start_year) or (plan.end_year and year > plan.end_year):
            self.add(
                path,
                f"kỳ '{key}' nằm ngoài các năm của kế hoạch (start_year {plan.start_year}, "
                f"end_year {plan.end_year})",
                "first-period-years",
            )
            return False
        due = self._due(deliverable, spec)
        if due is not None and due < self.start:
            self.add(
                path,
                f"kỳ '{key}' có hạn {_d(due)}, trước ngày kế hoạch có hiệu lực "
                f"({_d(self.start)}); chọn một kỳ có hạn từ ngày đó trở đi",
                "first-period-before-plan",
            )
            return False
        return True

    def _due(self, deliverable: Deliverable, spec: CycleSpec) -> dt.date | None:
        """The period's due date; None where the rule does not fit the frequency (a
        problem ``check_rule_fits`` reports)."""
        try:
            return due_of(self.plan, deliverable.deadline, spec, self.start, self.cal)
        except (ValueError, TypeError):
            return None

    def warn_first_deadline(self, base: tuple, deliverable: Deliverable) -> None:
        try:
            first = first_owed(self.plan, deliverable, self.start, self.cal)
        except (ValueError, TypeError):
            return  # the rule does not fit the frequency: reported by check_rule_fits
        due = self._due(deliverable, first) if first is not None else None
        if first is None or due is None:
            return
        days = (due - self.start).days
        if days > self.warn_days:
            return
        where = "first_period" if deliverable.first_period else "deadline"
        self.warn(
            (*base, where),
            f"hạn đầu tiên ({first.key}: {_d(due)}) chỉ cách ngày kế hoạch có hiệu lực "
            f"({_d(self.start)}) {days} ngày (ngưỡng KEHOACH_FIRST_DEADLINE_WARN_DAYS = "
            f"{self.warn_days}); nếu kế hoạch cho kỳ sau mới bắt đầu, ghi 'first_period'",
            "first-deadline-soon",
        )


def first_deadline_warn_days() -> int:
    """The ``first_deadline_warn_days`` setting, without pydantic-settings: its default
    when nothing is given (engine.config_given), else what is given, every setting
    validated as engine.config validates it (engine.settings_fields: a malformed one,
    this or another, is the same ConfigError, exit 2, as in every command)."""
    if nothing_given(os.environ):
        return FIRST_DEADLINE_WARN_DAYS
    from engine.settings_fields import SettingsFields, read_given

    return read_given(os.environ, SettingsFields).first_deadline_warn_days
