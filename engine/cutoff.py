"""The data cut-off period of a yearly report (Nghị định 09/2019/NĐ-CP, Điều 12):
which days its figures cover, shown in every email about it and in the consolidated
report. Only a yearly report's year-relative period is supported; other shapes are
refused by the checks rather than ignored."""

from __future__ import annotations

import calendar as _stdcal
import datetime as dt
from collections.abc import Callable

from engine.schema import CutoffPeriod, Frequency, Plan
from engine.vntext import short_date

Add = Callable[[tuple, str, str], None]


def _day(year: int, month: int, day: int) -> dt.date:
    return dt.date(year, month, min(day, _stdcal.monthrange(year, month)[1]))


def cutoff_range(cutoff: CutoffPeriod, cycle_key: str) -> tuple[dt.date, dt.date] | None:
    """(first, last day) the figures of cycle ``cycle_key`` (a year) cover."""
    if not (len(cycle_key) == 4 and cycle_key.isdigit()):
        return None
    year = int(cycle_key)
    start_year = year - 1 if cutoff.start_in_previous_year else year
    return (
        _day(start_year, cutoff.start_month, cutoff.start_day),
        _day(year, cutoff.end_month, cutoff.end_day),
    )


def cutoff_text(
    plan: Plan, deliverable_id: str, cycle_key: str, *, words: bool = False
) -> str | None:
    """'Số liệu tính từ ngày 01/9/2022 đến hết ngày 31/8/2023' (None without a cut-off);
    ``words``: followed by the plan's own words about it (``phrase``), for the emails."""
    deliverable = plan.deliverable(deliverable_id)
    if deliverable is None or deliverable.cutoff is None:
        return None
    found = cutoff_range(deliverable.cutoff, cycle_key)
    if found is None:
        return None
    first, last = found
    text = f"Số liệu tính từ ngày {short_date(first)} đến hết ngày {short_date(last)}"
    phrase = " ".join((deliverable.cutoff.phrase or "").split())
    return f"{text} ({phrase})" if words and phrase else text


def check_cutoffs(plan: Plan, add: Add) -> None:
    """A cut-off is used as written or refused: yearly reports, period 'year', a start
    before the end."""
    for index, deliverable in enumerate(plan.deliverables):
        cutoff = deliverable.cutoff
        if cutoff is None:
            continue
        base = ("deliverables", index, "cutoff")
        if deliverable.frequency is not Frequency.yearly or cutoff.period != "year":
            add(
                (*base, "period") if cutoff.period != "year" else base,
                "thời gian chốt số liệu chỉ áp dụng được cho báo cáo hằng năm (frequency: "
                "yearly, period: year); với kỳ khác hãy bỏ 'cutoff' và ghi thời gian vào "
                "'text' của báo cáo",
                "cutoff-unsupported",
            )
            continue
        try:
            first, last = cutoff_range(cutoff, "2024") or (None, None)
        except ValueError:
            add(base, "ngày chốt số liệu không có thật; sửa ngày hoặc tháng", "cutoff-date")
            continue
        if first is not None and last is not None and first > last:
            add(
                (*base, "start_day"),
                f"ngày bắt đầu chốt số liệu ({first:%d/%m} năm "
                f"{'trước' if cutoff.start_in_previous_year else 'báo cáo'}) sau ngày kết "
                f"thúc ({last:%d/%m}); sửa ngày hoặc start_in_previous_year",
                "cutoff-order",
            )
