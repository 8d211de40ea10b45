"""Vietnamese wording for dates and weekdays, as written in administrative documents."""

from __future__ import annotations

import datetime as dt

WEEKDAYS = ("Thứ Hai", "Thứ Ba", "Thứ Tư", "Thứ Năm", "Thứ Sáu", "Thứ Bảy", "Chủ nhật")


def weekday(day: dt.date) -> str:
    """'Thứ Bảy' for a Saturday."""
    return WEEKDAYS[day.weekday()]


def short_date(day: dt.date) -> str:
    """'25/9/2027' — the day/month form used in plan texts."""
    return f"{day.day}/{day.month}/{day.year}"


def long_date(day: dt.date, place: str | None = None) -> str:
    """'ngày 05 tháng 9 năm 2023' (Nghị định 30/2020: leading zero for days < 10 and months 1–2)."""
    month = f"{day.month:02d}" if day.month < 3 else str(day.month)
    text = f"ngày {day.day:02d} tháng {month} năm {day.year}"
    return f"{place}, {text}" if place else text


def date_with_weekday(day: dt.date) -> str:
    """'Thứ Hai, 27/9/2027'."""
    return f"{weekday(day)}, {short_date(day)}"


def cycle_label(key: str) -> str:
    """A cycle key in words: 'năm 2027', 'tháng 3/2026', 'quý 2 năm 2026', 'một lần'."""
    if key == "once":
        return "một lần"
    if "-DX" in key:
        year, number = key.split("-DX", 1)
        return f"đột xuất lần {number} năm {year}"
    if len(key) == 4 and key.isdigit():
        return f"năm {key}"
    if "-Q" in key:
        year, quarter = key.split("-Q", 1)
        return f"quý {quarter} năm {year}"
    if "-H" in key:
        year, half = key.split("-H", 1)
        return f"6 tháng {'đầu' if half == '1' else 'cuối'} năm {year}"
    if len(key) == 7 and key[4] == "-":
        return f"tháng {int(key[5:])}/{key[:4]}"
    return key


def brief_name(name: str) -> str:
    """A unit's name as lists in reports write it ('UBND xã Thị Hoa')."""
    for long, short in (
        ("Ủy ban nhân dân ", "UBND "),
        ("Ủy ban Mặt trận Tổ quốc Việt Nam ", "Ủy ban MTTQ Việt Nam "),
    ):
        if name.startswith(long):
            return short + name[len(long) :]
    return name
