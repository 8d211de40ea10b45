"""Deadlines: cycles, rules, and the weekend/holiday policy, in Asia/Ho_Chi_Minh.

Public holidays come from the ``holidays`` package (Vietnam: Tết and Giỗ Tổ by the
lunar calendar, substitute days, announced swaps), read from the table it made
(engine/vn_holidays.py) while the installed package is the version that made it,
corrected by an editable override table (``kind: calendar`` YAML) for make-up working
Saturdays and later announcements.
"""

from __future__ import annotations

import calendar as _stdcal
import datetime as dt
from dataclasses import dataclass
from functools import cached_property
from zoneinfo import ZoneInfo

from engine import vn_holidays, vntext
from engine.deadline_words import kind_of, read_phrase
from engine.schema import (
    AfterActivation,
    CalendarOverrides,
    DeadlineKind,
    DeadlinePolicy,
    DeadlineRule,
    FixedDate,
    Frequency,
    MonthlyDate,
    OnRequest,
    PeriodEnd,
    YearlyDate,
)

TZ = ZoneInfo("Asia/Ho_Chi_Minh")


def local_day(moment: dt.datetime) -> dt.date:
    """The calendar day in Viet Nam at ``moment``."""
    return moment.astimezone(TZ).date()


def today(now: dt.datetime | None = None) -> dt.date:
    """The calendar day in Viet Nam at ``now`` (default: the real clock)."""
    return local_day(now or dt.datetime.now(dt.UTC))


def start_of_day(day: dt.date) -> dt.datetime:
    """00:00 of ``day`` in Viet Nam, as UTC (the moment a sweep of that day stamps)."""
    return dt.datetime.combine(day, dt.time(0, 0), TZ).astimezone(dt.UTC)


def end_of_day(day: dt.date) -> dt.datetime:
    """The last second of ``day`` in Viet Nam: a deadline day is included."""
    return dt.datetime.combine(day, dt.time(23, 59, 59), TZ)


class WorkCalendar:
    """Working days in Viet Nam: Monday–Friday, minus public holidays, plus overrides."""

    def __init__(self, overrides: CalendarOverrides | None = None) -> None:
        self.overrides = overrides
        self._extra_off = {d.date: d.name for d in overrides.holidays} if overrides else {}
        self._extra_work = {d.date: d.name for d in overrides.working_days} if overrides else {}
        self._not_off = {d.date for d in overrides.not_holidays} if overrides else set()

    @cached_property
    def _holidays(self):
        """The ``holidays`` package's Viet Nam, only for a day engine.vn_holidays's table
        cannot answer (importing the package loads every country's module)."""
        import holidays

        return holidays.country_holidays("VN", language="vi")

    def holiday_name(self, day: dt.date) -> str | None:
        if day in self._extra_off:
            return self._extra_off[day]
        if day in self._not_off or day in self._extra_work:
            return None
        year = vn_holidays.table(day.year)
        name = year.get(day) if year is not None else self._holidays.get(day)
        return str(name) if name else None

    def is_working_day(self, day: dt.date) -> bool:
        if day in self._extra_work:
            return True
        if self.holiday_name(day):
            return False
        return day.weekday() < 5

    def why_not_working(self, day: dt.date) -> str:
        name = self.holiday_name(day)
        if name:
            return f"ngày nghỉ lễ ({name})"
        return vntext.weekday(day)


@dataclass(frozen=True)
class Deadline:
    nominal: dt.date  # the date as the plan writes it ("trước ngày 10/9": 10/9)
    due: dt.date  # the last day, after the deadline kind and the weekend/holiday policy
    reason: str | None  # why ``due`` is not ``nominal``, in Vietnamese; None when it is
    phrase: str | None
    policy: DeadlinePolicy
    kind: DeadlineKind = DeadlineKind.inclusive

    @property
    def moved(self) -> bool:
        return self.due != self.nominal


NEXT_RULE = "theo Điều 148 Bộ luật Dân sự 2015, hạn chuyển sang ngày làm việc tiếp theo"
PREVIOUS_RULE = "hạn chuyển về ngày làm việc liền trước"
EXACT_RULE = "hạn giữ nguyên, không chuyển theo ngày làm việc"


def _move(
    day: dt.date, policy: DeadlinePolicy, cal: WorkCalendar
) -> tuple[dt.date, str | None, str | None]:
    """(the day per ``policy``, why ``day`` is not a working day, what the policy did);
    the last two are None for a working day."""
    if cal.is_working_day(day):
        return day, None, None
    why = cal.why_not_working(day)
    if policy is DeadlinePolicy.exact:
        return day, why, EXACT_RULE
    step = 1 if policy is DeadlinePolicy.next_working_day else -1
    moved = day
    while not cal.is_working_day(moved):
        moved += dt.timedelta(days=step)
    rule = NEXT_RULE if step == 1 else PREVIOUS_RULE
    return moved, why, f"{rule}: {vntext.date_with_weekday(moved)}"


def apply_policy(
    day: dt.date, policy: DeadlinePolicy, cal: WorkCalendar
) -> tuple[dt.date, str | None]:
    """Move a non-working ``day`` per ``policy``; return the day and the reason (for
    ``exact``, a non-working day stays and the reason says so)."""
    moved, why, what = _move(day, policy, cal)
    if why is None:
        return moved, None
    return moved, f"{vntext.short_date(day)} là {why}; {what}"


# ---------------------------------------------------------------- cycles


@dataclass(frozen=True)
class CycleSpec:
    key: str  # "2027", "2027-H1", "2027-Q3", "2027-03", "once"
    start: dt.date | None
    end: dt.date | None


def _last_day(year: int, month: int) -> dt.date:
    return dt.date(year, month, _stdcal.monthrange(year, month)[1])


REQUEST_MARK = "-DX"  # a request's cycle: '2026-DX1' (đột xuất lần 1 năm 2026)


def is_request_key(key: str) -> bool:
    return REQUEST_MARK in key


def cycles_in_year(frequency: Frequency, year: int) -> list[CycleSpec]:
    """Every reporting period of ``frequency`` in ``year`` (none for reports on request:
    each request makes its own cycle, engine.requests_adhoc)."""
    if frequency is Frequency.on_request:
        return []
    if frequency is Frequency.once:
        return [CycleSpec("once", None, None)]
    if frequency is Frequency.yearly:
        return [CycleSpec(str(year), dt.date(year, 1, 1), dt.date(year, 12, 31))]
    if frequency is Frequency.half_yearly:
        return [
            CycleSpec(f"{year}-H1", dt.date(year, 1, 1), dt.date(year, 6, 30)),
            CycleSpec(f"{year}-H2", dt.date(year, 7, 1), dt.date(year, 12, 31)),
        ]
    if frequency is Frequency.quarterly:
        return [
            CycleSpec(f"{year}-Q{q}", dt.date(year, 3 * q - 2, 1), _last_day(year, 3 * q))
            for q in range(1, 5)
        ]
    return [
        CycleSpec(f"{year}-{m:02d}", dt.date(year, m, 1), _last_day(year, m)) for m in range(1, 13)
    ]


def cycle_from_key(key: str) -> CycleSpec:
    """The inverse of the keys made by :func:`cycles_in_year`; a request's key has no
    period of its own (its dates are on its cycle row)."""
    if key == "once" or is_request_key(key):
        return CycleSpec(key, None, None)
    year = int(key[:4])
    if len(key) == 4:
        return cycles_in_year(Frequency.yearly, year)[0]
    suffix = key[5:]
    if suffix.startswith("H"):
        return cycles_in_year(Frequency.half_yearly, year)[int(suffix[1:]) - 1]
    if suffix.startswith("Q"):
        return cycles_in_year(Frequency.quarterly, year)[int(suffix[1:]) - 1]
    return cycles_in_year(Frequency.monthly, year)[int(suffix) - 1]


def nominal_date(rule: DeadlineRule, cycle: CycleSpec, activated_on: dt.date) -> dt.date:
    """The date a rule names for one cycle, before the weekend/holiday policy."""
    if isinstance(rule, FixedDate):
        return rule.date
    if isinstance(rule, AfterActivation):
        return activated_on + dt.timedelta(days=rule.days)
    if isinstance(rule, OnRequest):
        if not is_request_key(cycle.key) or cycle.end is None:
            raise ValueError(f"rule 'on_request' takes its date from a request, not '{cycle.key}'")
        return cycle.end + dt.timedelta(days=rule.days)  # end: the date the request gives
    if cycle.start is None or cycle.end is None:
        raise ValueError(f"rule '{rule.rule}' needs a periodic cycle, not '{cycle.key}'")
    if isinstance(rule, YearlyDate):
        day = min(rule.day, _stdcal.monthrange(cycle.start.year, rule.month)[1])
        return dt.date(cycle.start.year, rule.month, day)
    if isinstance(rule, MonthlyDate):
        # Within a monthly cycle: that month; in a longer cycle: its last month.
        month_start = cycle.end.replace(day=1)
        last = _stdcal.monthrange(month_start.year, month_start.month)[1]
        return month_start.replace(day=min(rule.day, last))
    if isinstance(rule, PeriodEnd):
        if rule.rule == "quarter_end":
            quarter_end_month = 3 * ((cycle.end.month - 1) // 3 + 1)
            end = _last_day(cycle.end.year, quarter_end_month)
        else:
            end = _last_day(cycle.end.year, 6 if cycle.end.month <= 6 else 12)
        return end + dt.timedelta(days=rule.offset_days)
    raise TypeError(f"unknown rule {rule!r}")  # pragma: no cover


def deadline(
    rule: DeadlineRule, cycle: CycleSpec, activated_on: dt.date, cal: WorkCalendar
) -> Deadline:
    """The date a rule names for ``cycle``, its last day per the deadline kind ("trước
    ngày 10/9" ends on 9/9) and where the policy moves that day, with the reason."""
    nominal = nominal_date(rule, cycle, activated_on)
    kind = kind_of(rule)
    if kind is not DeadlineKind.exclusive:
        due, reason = apply_policy(nominal, rule.policy, cal)
        return Deadline(nominal, due, reason, rule.phrase, rule.policy, kind)
    last = nominal - dt.timedelta(days=1)
    due, why, what = _move(last, rule.policy, cal)
    words = read_phrase(rule.phrase).words or "trước ngày"
    reason = f"“{words}” không tính ngày {vntext.short_date(nominal)} nên ngày cuối là " + (
        f"{vntext.short_date(last)}, là {why}; {what}" if why else vntext.date_with_weekday(last)
    )
    return Deadline(nominal, due, reason, rule.phrase, rule.policy, kind)


def previous_cycle(key: str) -> CycleSpec | None:
    """The period before ``key`` of the same frequency (None for 'once' and requests)."""
    if key == "once" or is_request_key(key):
        return None
    year = int(key[:4])
    if len(key) == 4:
        return cycle_from_key(str(year - 1))
    suffix = key[5:]
    if suffix.startswith(("H", "Q")):
        index, last = int(suffix[1:]), (2 if suffix[0] == "H" else 4)
        if index == 1:
            return cycle_from_key(f"{year - 1}-{suffix[0]}{last}")
        return cycle_from_key(f"{year}-{suffix[0]}{index - 1}")
    month = int(suffix)
    return cycle_from_key(f"{year - 1}-12" if month == 1 else f"{year}-{month - 1:02d}")
