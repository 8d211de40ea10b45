"""The data cut-off period of a yearly report (Nghị định 09/2019/NĐ-CP, Điều 12):
which days its figures cover, in the consolidated report and in the emails about it
(stated in full with its basis in the assignment, one short line in the others). Only a
yearly report's year-relative period is supported; other shapes are refused by the
checks rather than ignored."""

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


# Điều 12's yearly period: from 15/12 of the year before to 14/12 of the report's year.
DECREE_YEARLY = (15, 12, True, 14, 12)
DECREE_BASIS = "theo Điều 12 Nghị định số 09/2019/NĐ-CP"


def _period(plan: Plan, deliverable_id: str) -> CutoffPeriod | None:
    deliverable = plan.deliverable(deliverable_id)
    return deliverable.cutoff if deliverable is not None else None


def cutoff_text(plan: Plan, deliverable_id: str, cycle_key: str) -> str | None:
    """'Số liệu tính từ ngày 1/9/2022 đến hết ngày 31/8/2023' (None without a cut-off)."""
    cutoff = _period(plan, deliverable_id)
    found = cutoff_range(cutoff, cycle_key) if cutoff is not None else None
    if found is None:
        return None
    first, last = found
    return f"Số liệu tính từ ngày {short_date(first)} đến hết ngày {short_date(last)}"


def cutoff_facts(plan: Plan, deliverable_id: str, cycle_key: str) -> dict[str, str | None] | None:
    """What the emails say of the cut-off (None without one): ``short``, the one line of
    every email ('từ 1/9/2022 đến 31/8/2023'); ``full``, the assignment's ('từ ngày
    1/9/2022 đến hết ngày 31/8/2023'); ``basis``, the decree's article when the period
    is its default; ``note``, the plan's own words about it (``phrase``)."""
    cutoff = _period(plan, deliverable_id)
    found = cutoff_range(cutoff, cycle_key) if cutoff is not None else None
    if cutoff is None or found is None:
        return None
    first, last = (short_date(day) for day in found)
    shape = (
        cutoff.start_day,
        cutoff.start_month,
        cutoff.start_in_previous_year,
        cutoff.end_day,
        cutoff.end_month,
    )
    return {
        "short": f"từ {first} đến {last}",
        "full": f"từ ngày {first} đến hết ngày {last}",
        "basis": DECREE_BASIS if shape == DECREE_YEARLY else None,
        "note": " ".join((cutoff.phrase or "").split()) or None,
    }


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
