"""Deadline and period phrases as plans write them → the schema's rules.

"trước ngày 10/9/ hằng năm" → yearly 10/9; "trước ngày 20 hằng tháng" → monthly 20;
"định kỳ 6 tháng" → half-yearly; "quý IV năm 2026", "Tháng 8/2024" → a one-off due at the
period's end; "2024 - 2025" → ongoing until 2025; "thường xuyên" → ongoing; "đột xuất",
"khi có yêu cầu" → on request.  Whether the named day is included is read by
:mod:`engine.deadline_words`, the same reading every message uses.
"""

from __future__ import annotations

import calendar
import datetime as dt
import re
from dataclasses import dataclass
from typing import Any

from engine.deadline_kind import DeadlineKind
from engine.deadline_words import read_phrase

_EACH = r"(?:của\s+)?(?:hằng|hàng|mỗi)"
_LEAD = r"(?:trước hoặc trong|trước|chậm nhất(?: là)?|muộn nhất(?: là)?|hạn cuối|không quá|trong)"
_ROMAN_QUARTER = {"i": 1, "ii": 2, "iii": 3, "iv": 4, "1": 1, "2": 2, "3": 3, "4": 4}


@dataclass(frozen=True)
class Timing:
    """What one phrase says about when."""

    phrase: str
    frequency: str  # once, yearly, half_yearly, quarterly, monthly, ongoing, on_request
    rule: dict[str, Any] | None = None  # a deadline rule for the schema, where one is stated
    due: dt.date | None = None  # a one-off's last day ("quý IV năm 2026" → 31/12/2026)
    until: dt.date | None = None  # "2024 - 2025": ongoing until 31/12/2025
    start: int = 0
    end: int = 0
    relative: str | None = None  # "trong vòng 05 ngày làm việc sau khi kết thúc …": from what

    def doubt(self) -> str | None:
        """What the administrator must check about this phrase, or None."""
        if self.frequency == "on_request":
            return (
                f"“{self.phrase}”: báo cáo khi có yêu cầu; lược đồ hiện chưa có kiểu này, "
                "phần dưới để ở dạng chú thích"
            )
        if self.relative is not None:
            return (
                f"“{self.phrase}”: hạn tính từ {self.relative}; lược đồ chỉ tính số ngày (theo lịch) "
                "kể từ khi kích hoạt kế hoạch (after_activation); xem lại số ngày"
            )
        if self.rule is None and self.frequency in {
            "yearly",
            "half_yearly",
            "quarterly",
            "monthly",
        }:
            return f"“{self.phrase}”: kế hoạch không nêu ngày hạn; hạn dưới đây là tạm định"
        if self.rule is not None:
            reading = read_phrase(self.phrase)
            if reading.kind is DeadlineKind.exclusive and not reading.certain:
                day = _named_day(self.rule)
                return (
                    f"“{self.phrase}”: theo nghĩa đen hạn cuối là ngày liền trước {day}; nếu "
                    f"ngày {day} vẫn được tính, ghi deadline_kind: inclusive và lý do ở note"
                )
        return None


def _named_day(rule: dict[str, Any]) -> str:
    if rule["rule"] == "yearly":
        return f"{rule['day']}/{rule['month']}"
    if rule["rule"] == "fixed":
        day: dt.date = rule["date"]
        return f"{day.day}/{day.month}/{day.year}"
    return str(rule.get("day"))


def _month_end(year: int, month: int) -> dt.date:
    return dt.date(year, month, calendar.monthrange(year, month)[1])


def _safe(make: Any, *args: int) -> Any:
    try:
        return make(*args)
    except ValueError:
        return None


def _yearly_or_fixed(m: re.Match[str]) -> Timing | None:
    day, month = int(m["d"]), int(m["m"])
    if m["y"]:
        date = _safe(dt.date, int(m["y"]), month, day)
        if date is None:
            return None
        return Timing(m[0], "once", {"rule": "fixed", "date": date}, due=date)
    if _safe(dt.date, 2024, month, day) is None:
        return None
    frequency = "yearly" if m["each"] else "once"
    if frequency == "once":  # "trước ngày 15/10" without a year: the year is the plan's
        return Timing(m[0], "once", {"rule": "yearly", "day": day, "month": month})
    return Timing(m[0], "yearly", {"rule": "yearly", "day": day, "month": month})


def _monthly(m: re.Match[str]) -> Timing | None:
    day = int(m["d"])
    return Timing(m[0], "monthly", {"rule": "monthly", "day": day}) if 1 <= day <= 31 else None


def _quarter(m: re.Match[str]) -> Timing | None:
    quarter = _ROMAN_QUARTER[m["q"].lower()]
    if not m["y"]:  # "trong quý IV": a task's time, in the plan's year (engine.task_window)
        return Timing(m[0], "once")
    due = _month_end(int(m["y"]), quarter * 3)
    return Timing(m[0], "once", due=due)


def _half(m: re.Match[str]) -> Timing:
    year = int(m["y"])
    due = dt.date(year, 6, 30) if m["h"].lower() == "đầu" else dt.date(year, 12, 31)
    return Timing(m[0], "once", due=due)


def _month(m: re.Match[str]) -> Timing | None:
    month, year = int(m["m"]), int(m["y"])
    return Timing(m[0], "once", due=_month_end(year, month)) if 1 <= month <= 12 else None


def _span(m: re.Match[str]) -> Timing | None:
    first, last = int(m["a"]), int(m["b"])
    if not 1900 < first <= last < 2200:
        return None
    return Timing(m[0], "ongoing", until=dt.date(last, 12, 31))


def _year(m: re.Match[str]) -> Timing:
    year = int(m["y"])
    return Timing(m[0], "once", due=dt.date(year, 12, 31))


def _within(m: re.Match[str]) -> Timing | None:
    days = int(m["n"])
    if not 0 < days <= 3650:
        return None
    relative = (m["after"] or "").strip() or "khi kích hoạt"
    if m["work"]:
        relative += " (ngày làm việc)"
    return Timing(m[0], "once", {"rule": "after_activation", "days": days}, relative=relative)


def _plain(frequency: str) -> Any:
    return lambda m: Timing(m[0], frequency)


# In order: the first pattern that matches at a place wins there.
_PATTERNS: list[tuple[re.Pattern[str], Any]] = [
    (
        re.compile(
            rf"{_LEAD}\s+(?:ngày\s+)?(?P<d>\d{{1,2}})\s*/\s*(?P<m>\d{{1,2}})(?:\s*/\s*(?P<y>\d{{4}}))?\s*/?"
            rf"(?P<each>\s*{_EACH}\s+năm)?",
            re.IGNORECASE,
        ),
        _yearly_or_fixed,
    ),
    (re.compile(rf"{_LEAD}\s+ngày\s+(?P<d>\d{{1,2}})\s+{_EACH}\s+tháng", re.IGNORECASE), _monthly),
    (
        re.compile(
            r"trong (?:vòng|thời hạn|thời gian)\s+(?P<n>\d{1,4})\s+ngày(?P<work>\s+làm việc)?"
            r"(?:\s*,?\s*(?:sau khi|kể từ(?: ngày)?|từ ngày)\s+(?P<after>[^,.;()]+))?",
            re.IGNORECASE,
        ),
        _within,
    ),
    (
        re.compile(
            r"(?:định kỳ\s+)?(?:6|sáu) tháng(?:\s+(?:một lần|\d lần|/\s*lần))?(?!\s+(?:đầu|cuối))",
            re.IGNORECASE,
        ),
        _plain("half_yearly"),
    ),
    (
        re.compile(r"(?:định kỳ\s+)?(?:hằng|hàng|mỗi)\s+quý|định kỳ\s+quý", re.IGNORECASE),
        _plain("quarterly"),
    ),
    (re.compile(r"(?:định kỳ\s+)?(?:hằng|hàng)\s+tháng", re.IGNORECASE), _plain("monthly")),
    (re.compile(r"(?:định kỳ\s+)?(?:hằng|hàng)\s+năm", re.IGNORECASE), _plain("yearly")),
    (
        re.compile(r"quý\s+(?P<q>IV|I{1,3}|[1-4])\b(?:\s+(?:năm\s+)?(?P<y>\d{4}))?", re.IGNORECASE),
        _quarter,
    ),
    (re.compile(r"(?:6|sáu) tháng\s+(?P<h>đầu|cuối)\s+năm\s+(?P<y>\d{4})", re.IGNORECASE), _half),
    (re.compile(r"tháng\s+(?P<m>\d{1,2})\s*(?:/|năm)\s*(?P<y>\d{4})", re.IGNORECASE), _month),
    (
        re.compile(
            r"(?:giai đoạn\s+|từ năm\s+)?(?P<a>\d{4})\s*(?:[-–]|đến(?: năm)?)\s*(?P<b>\d{4})",
            re.IGNORECASE,
        ),
        _span,
    ),
    (re.compile(r"đột xuất|khi có yêu cầu|theo yêu cầu", re.IGNORECASE), _plain("on_request")),
    (re.compile(r"thường xuyên|liên tục", re.IGNORECASE), _plain("ongoing")),
]
_YEAR_CELL = re.compile(r"^(?:trong\s+)?năm\s+(?P<y>\d{4})$", re.IGNORECASE)


def timings(text: str, *, cell: bool = False) -> list[Timing]:
    """Every time phrase in ``text``, in order, not overlapping.  ``cell``: the text is a
    table's time column, where a bare "Năm 2025" is a deadline too."""
    if cell:
        alone = _YEAR_CELL.match(text.strip())
        if alone:
            return [_year(alone)]
    found: list[Timing] = []
    taken: list[tuple[int, int]] = []
    for pattern, make in _PATTERNS:
        for match in pattern.finditer(text):
            if any(a < match.end() and match.start() < b for a, b in taken):
                continue
            timing = make(match)
            if timing is None:
                continue
            taken.append((match.start(), match.end()))
            found.append(
                Timing(
                    timing.phrase.strip(),
                    timing.frequency,
                    timing.rule,
                    timing.due,
                    timing.until,
                    match.start(),
                    match.end(),
                    timing.relative,
                )
            )
    found.sort(key=lambda t: t.start)
    return found


def deadline_of(text: str) -> Timing | None:
    """The phrase that sets a deadline or a period (the first stated day wins over a bare
    period word: "định kỳ … trước ngày 10/9 hằng năm" is the yearly 10/9)."""
    found = timings(text)
    stated = [t for t in found if t.rule is not None or t.due is not None]
    if stated:
        return stated[0]
    periodic = [
        t
        for t in found
        if t.frequency in {"yearly", "half_yearly", "quarterly", "monthly", "on_request"}
    ]
    return periodic[0] if periodic else None


def recurrence_of(text: str) -> str:
    """A task's recurrence from its words (the schema's TaskItem.recurrence)."""
    for timing in timings(text):
        if timing.frequency in {"yearly", "monthly"}:
            return timing.frequency
        if timing.frequency == "quarterly":
            return "quarterly"
    return "ongoing"
