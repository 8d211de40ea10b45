"""A task's time as documents write it: "quý IV năm 2026", "tháng 8/2024", "2024 - 2025".

:func:`read_window` turns the words of a "Thời gian thực hiện" cell (or the time in a
task's sentence) into a :class:`Window`: the period the task is done in, whose last day
is its deadline. "thường xuyên" is no deadline at all (an ongoing task, reported with
the periodic report). Words it cannot read are refused with the forms it can.
"""

from __future__ import annotations

import calendar as _stdcal
import datetime as dt
import re
import unicodedata
from dataclasses import dataclass
from enum import StrEnum

FORMS = (
    "một ngày ('30/6/2026'), 'tháng 8/2024', 'quý IV năm 2026', '6 tháng đầu năm 2026', "
    "'năm 2026', một giai đoạn ('2024 - 2025') hoặc 'thường xuyên'"
)
_ROMAN = {"i": 1, "ii": 2, "iii": 3, "iv": 4}
YEARS = (1900, 2200)  # the bounds of engine.checks.YEARS: no date computation overflows


class Shape(StrEnum):
    date = "date"
    month = "month"
    quarter = "quarter"
    half = "half"
    year = "year"
    range = "range"
    ongoing = "ongoing"


@dataclass(frozen=True)
class Window:
    """The period a task is done in; ``end`` is its last day (None: ongoing)."""

    shape: Shape
    start: dt.date | None
    end: dt.date | None
    year_given: bool = True  # False: the words name no year ("quý IV"), the plan's is used

    @property
    def years(self) -> list[int]:
        """The calendar years the window spans (a range: each of them)."""
        if self.start is None or self.end is None:
            return []
        return list(range(self.start.year, self.end.year + 1))


def _norm(text: str) -> str:
    text = unicodedata.normalize("NFC", text).casefold()
    return " ".join(text.replace("–", "-").replace("—", "-").split())


def _last(year: int, month: int) -> dt.date:
    return dt.date(year, month, _stdcal.monthrange(year, month)[1])


def _year(found: str | None, default: int | None) -> tuple[int, bool]:
    if found:
        return int(found), True
    if default is None:
        raise ValueError("không ghi năm; ghi năm (ví dụ 'quý IV năm 2026') hoặc 'year'")
    return default, False


def _check_year(year: int) -> int:
    if not YEARS[0] <= year <= YEARS[1]:
        raise ValueError(f"năm {year} ngoài khoảng {YEARS[0]}–{YEARS[1]}; kiểm tra lại")
    return year


def _date(text: str, default: int | None) -> Window | None:
    found = re.search(r"(\d{1,2})\s*/\s*(\d{1,2})(?:\s*/\s*(\d{4}))?", text) or re.search(
        r"ngày (\d{1,2}) tháng (\d{1,2})(?: năm (\d{4}))?", text
    )
    if not found or (found.group(3) is None and re.match(r"\s*\d", text[found.end() :])):
        return None
    day, month = int(found.group(1)), int(found.group(2))
    year, given = _year(found.group(3), default)
    try:
        when = dt.date(_check_year(year), month, day)
    except ValueError as exc:
        if "ngoài khoảng" in str(exc):
            raise
        raise ValueError(f"“{found.group(0)}” không phải là một ngày có thật") from None
    return Window(Shape.date, when, when, given)


def _range(text: str) -> Window | None:
    found = re.search(r"(\d{4})\s*(?:-|đến|tới)\s*(?:năm\s*)?(\d{4})", text)
    if not found:
        return None
    first, last = (_check_year(int(g)) for g in found.groups())
    if last <= first:
        raise ValueError(
            f"giai đoạn “{found.group(0)}” cần năm đầu trước năm cuối (ví dụ '2024 - 2025')"
        )
    return Window(Shape.range, dt.date(first, 1, 1), dt.date(last, 12, 31))


def _quarter(text: str, default: int | None) -> Window | None:
    found = re.search(r"quý\s*(iv|iii|ii|i|[1-4])\b(?:\s*(?:năm|/)\s*(\d{4}))?", text)
    if not found:
        return None
    number = _ROMAN.get(found.group(1)) or int(found.group(1))
    year, given = _year(found.group(2), default)
    year = _check_year(year)
    return Window(Shape.quarter, dt.date(year, 3 * number - 2, 1), _last(year, 3 * number), given)


def _half(text: str, default: int | None) -> Window | None:
    found = re.search(r"6 tháng (đầu|cuối) năm(?:\s*(\d{4}))?", text)
    if not found:
        return None
    year, given = _year(found.group(2), default)
    year = _check_year(year)
    if found.group(1) == "đầu":
        return Window(Shape.half, dt.date(year, 1, 1), dt.date(year, 6, 30), given)
    return Window(Shape.half, dt.date(year, 7, 1), dt.date(year, 12, 31), given)


def _month(text: str, default: int | None) -> Window | None:
    found = re.search(r"tháng\s*(\d{1,2})\b(?:\s*(?:năm|/)\s*(\d{4}))?", text)
    if not found:
        return None
    month = int(found.group(1))
    if not 1 <= month <= 12:
        raise ValueError(f"“{found.group(0)}”: tháng {month} không có; tháng từ 1 đến 12")
    year, given = _year(found.group(2), default)
    year = _check_year(year)
    return Window(Shape.month, dt.date(year, month, 1), _last(year, month), given)


def _whole_year(text: str) -> Window | None:
    found = re.search(r"(?:năm\s*)?\b(\d{4})\b", text)
    if not found:
        return None
    year = _check_year(int(found.group(1)))
    return Window(Shape.year, dt.date(year, 1, 1), dt.date(year, 12, 31))


def read_window(phrase: str, default_year: int | None = None) -> Window:
    """The window the words name; ``default_year`` for words without a year ("quý IV").

    Raises ValueError (Vietnamese, with the accepted forms) for words it cannot read."""
    text = _norm(phrase)
    if not text:
        raise ValueError(f"thời gian thực hiện để trống; ghi {FORMS}")
    if re.search(r"thường xuyên|liên tục|hằng ngày|hàng ngày", text):
        return Window(Shape.ongoing, None, None)
    window = _range(text)
    if window is not None:
        return window
    for read_with_year in (_date, _quarter, _half, _month):
        window = read_with_year(text, default_year)
        if window is not None:
            return window
    window = _whole_year(text)
    if window is not None:
        return window
    raise ValueError(f"không đọc được thời gian “{phrase}”; ghi {FORMS}")
