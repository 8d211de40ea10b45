"""Tasks as tracked obligations (issue 10, item 1): the words of time a task's ``due``
writes, read as a window (engine.task_window)."""

from __future__ import annotations

import datetime as dt

import pytest

from engine.task_window import Shape, read_window


@pytest.mark.parametrize(
    ("words", "shape", "start", "end"),
    [
        ("hoàn thành trong quý IV năm 2026", Shape.quarter, (2026, 10, 1), (2026, 12, 31)),
        ("Quý 2/2027", Shape.quarter, (2027, 4, 1), (2027, 6, 30)),
        ("Tháng 8/2024", Shape.month, (2024, 8, 1), (2024, 8, 31)),
        ("tháng 2 năm 2028", Shape.month, (2028, 2, 1), (2028, 2, 29)),
        ("năm 2026", Shape.year, (2026, 1, 1), (2026, 12, 31)),
        ("6 tháng đầu năm 2026", Shape.half, (2026, 1, 1), (2026, 6, 30)),
        ("6 tháng cuối năm 2026", Shape.half, (2026, 7, 1), (2026, 12, 31)),
        ("2024 - 2025", Shape.range, (2024, 1, 1), (2025, 12, 31)),
        ("giai đoạn 2025–2030", Shape.range, (2025, 1, 1), (2030, 12, 31)),
        ("trước ngày 30/6/2026", Shape.date, (2026, 6, 30), (2026, 6, 30)),
        ("ngày 15 tháng 10 năm 2026", Shape.date, (2026, 10, 15), (2026, 10, 15)),
    ],
)
def test_the_forms_documents_use_are_read(words, shape, start, end) -> None:
    window = read_window(words)
    assert (window.shape, window.start, window.end) == (shape, dt.date(*start), dt.date(*end))
    assert window.year_given


def test_ongoing_words_are_no_deadline_and_yearless_words_take_the_given_year() -> None:
    assert read_window("Thường xuyên").shape is Shape.ongoing
    assert read_window("thường xuyên").end is None
    window = read_window("quý IV", 2026)
    assert (window.end, window.year_given) == (dt.date(2026, 12, 31), False)
    for words, message in [
        ("quý IV", "không ghi năm"),
        ("tháng 13/2026", "tháng 13 không có"),
        ("31/2/2026", "không phải là một ngày có thật"),
        ("2025 - 2024", "năm đầu trước năm cuối"),
        ("sớm nhất có thể", "không đọc được thời gian"),
    ]:
        with pytest.raises(ValueError, match=message):
            read_window(words)
