"""Deadline rules, cycles and the weekend/holiday policy (Asia/Ho_Chi_Minh)."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import holidays
import pytest

from engine import vn_holidays
from engine.calendar import (
    WorkCalendar,
    apply_policy,
    cycle_from_key,
    cycles_in_year,
    deadline,
    end_of_day,
    today,
)
from engine.checks import YEARS
from engine.schema import (
    AfterActivation,
    CalendarDay,
    CalendarOverrides,
    DeadlinePolicy,
    FixedDate,
    Frequency,
    MonthlyDate,
    PeriodEnd,
    YearlyDate,
)

CAL = WorkCalendar()
YEAR_2027 = cycles_in_year(Frequency.yearly, 2027)[0]


def test_25_9_2027_is_a_saturday_and_moves_to_monday():
    rule = YearlyDate(rule="yearly", day=25, month=9, policy=DeadlinePolicy.next_working_day)
    d = deadline(rule, YEAR_2027, dt.date(2027, 1, 1), CAL)
    assert d.nominal == dt.date(2027, 9, 25)
    assert d.due == dt.date(2027, 9, 27)
    assert "Thứ Bảy" in d.reason and "Điều 148" in d.reason and "27/9/2027" in d.reason


def test_10_9_2028_sunday_moves_forward_or_back_per_policy():
    cycle = cycles_in_year(Frequency.yearly, 2028)[0]
    for policy, expected in [
        (DeadlinePolicy.next_working_day, dt.date(2028, 9, 11)),
        (DeadlinePolicy.previous_working_day, dt.date(2028, 9, 8)),
        (DeadlinePolicy.exact, dt.date(2028, 9, 10)),
    ]:
        rule = YearlyDate(rule="yearly", day=10, month=9, policy=policy)
        assert deadline(rule, cycle, dt.date(2028, 1, 1), CAL).due == expected


def test_national_day_holiday_is_skipped():
    # 2/9/2025 (Tuesday) is Quốc khánh, and 1/9/2025 was declared a day off too.
    due, reason = apply_policy(dt.date(2025, 9, 2), DeadlinePolicy.next_working_day, CAL)
    assert due == dt.date(2025, 9, 3)
    assert "nghỉ lễ" in reason


def test_override_table_adds_days_off_and_make_up_working_days():
    overrides = CalendarOverrides(
        kind="calendar",
        id="vn",
        holidays=[CalendarDay(date=dt.date(2027, 9, 27), name="Nghỉ bù (giả định)")],
        working_days=[CalendarDay(date=dt.date(2027, 9, 25), name="Làm bù thứ Bảy")],
    )
    cal = WorkCalendar(overrides)
    assert cal.is_working_day(dt.date(2027, 9, 25))
    assert not cal.is_working_day(dt.date(2027, 9, 27))
    due, _ = apply_policy(dt.date(2027, 9, 26), DeadlinePolicy.next_working_day, cal)
    assert due == dt.date(2027, 9, 28)


def test_tet_is_not_a_working_day():
    assert not CAL.is_working_day(dt.date(2027, 2, 8))  # Mùng 2 Tết Đinh Mùi (Monday)


@pytest.mark.parametrize(
    ("frequency", "keys"),
    [
        (Frequency.yearly, ["2027"]),
        (Frequency.half_yearly, ["2027-H1", "2027-H2"]),
        (Frequency.quarterly, ["2027-Q1", "2027-Q2", "2027-Q3", "2027-Q4"]),
        (Frequency.once, ["once"]),
    ],
)
def test_cycles_round_trip(frequency, keys):
    cycles = cycles_in_year(frequency, 2027)
    assert [c.key for c in cycles] == keys
    assert [cycle_from_key(c.key) for c in cycles] == cycles


def test_monthly_rule_clamps_to_month_end():
    february = cycle_from_key("2027-02")
    rule = MonthlyDate(rule="monthly", day=31)
    assert deadline(rule, february, dt.date(2027, 1, 1), CAL).nominal == dt.date(2027, 2, 28)


def test_quarter_end_with_offset_and_fixed_and_after_activation():
    q3 = cycle_from_key("2027-Q3")
    rule = PeriodEnd(rule="quarter_end", offset_days=10)
    assert deadline(rule, q3, dt.date(2027, 1, 1), CAL).nominal == dt.date(2027, 10, 10)
    fixed = FixedDate(rule="fixed", date=dt.date(2026, 12, 15))
    assert deadline(fixed, cycle_from_key("once"), dt.date(2026, 1, 1), CAL).due == dt.date(
        2026, 12, 15
    )
    after = AfterActivation(rule="after_activation", days=30)
    assert deadline(after, cycle_from_key("once"), dt.date(2023, 1, 2), CAL).nominal == dt.date(
        2023, 2, 1
    )


def test_days_are_counted_in_viet_nam():
    late_evening_utc = dt.datetime(2027, 9, 9, 18, 30, tzinfo=dt.UTC)  # 01:30 on 10/9 in Hà Nội
    assert today(late_evening_utc) == dt.date(2027, 9, 10)
    assert end_of_day(dt.date(2027, 9, 10)).utcoffset() == dt.timedelta(hours=7)


# ---------------------------------------------------------------- the holiday table


def test_the_holiday_table_is_what_the_installed_package_gives():
    """engine/vn_holidays.json was made by the installed ``holidays``: otherwise it is
    ignored and every process imports the package (slow, not wrong)."""
    committed = json.loads(vn_holidays.TABLE.read_text(encoding="utf-8"))
    assert committed["holidays_version"] == vn_holidays.installed_version() == holidays.__version__
    assert committed == vn_holidays.from_package(*YEARS), "run scripts/regen-vn-holidays"
    assert vn_holidays.table(2026)[dt.date(2026, 9, 2)] == "Quốc khánh"


@pytest.fixture
def table_file(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    """Write a holiday table of one's own (version, {year: {"MM-DD": name}})."""

    def write(version: str, years: dict[str, dict[str, str]]) -> None:
        path = tmp_path / "vn_holidays.json"
        path.write_text(json.dumps({"holidays_version": version, "years": years}), "utf-8")
        monkeypatch.setattr(vn_holidays, "TABLE", path)
        vn_holidays._years.cache_clear()
        vn_holidays.table.cache_clear()

    yield write
    monkeypatch.undo()
    vn_holidays._years.cache_clear()
    vn_holidays.table.cache_clear()


def test_the_calendar_reads_the_table_of_the_installed_version(table_file):
    table_file(holidays.__version__, {"2026": {"03-03": "Ngày thử"}})
    cal = WorkCalendar()
    assert cal.holiday_name(dt.date(2026, 3, 3)) == "Ngày thử"
    assert cal.holiday_name(dt.date(2026, 9, 2)) is None  # the table answers for its years
    assert cal.holiday_name(dt.date(2027, 9, 2)) == "Quốc khánh"  # the package, beyond them


def test_a_table_of_another_version_is_not_read(table_file):
    """Another version of ``holidays`` may know of a holiday the table does not."""
    table_file("0.1", {"2026": {"03-03": "Ngày thử"}})
    assert vn_holidays.table(2026) is None
    cal = WorkCalendar()
    assert cal.holiday_name(dt.date(2026, 3, 3)) is None
    assert cal.holiday_name(dt.date(2026, 9, 2)) == "Quốc khánh"
    assert not cal.is_working_day(dt.date(2026, 2, 17))  # Tết
