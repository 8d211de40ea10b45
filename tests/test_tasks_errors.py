"""Tasks as tracked obligations (issue 10, item 1): a task construct the loader refuses
is an error located at its line; a time without a year is read in the plan's year,
with a warning."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from engine.errors import DefinitionError
from engine.loader import load
from tests.tasks_support import CALENDAR, DEPARTMENT, REGISTRY, variant


def _line_of(path: Path, words: str) -> int:
    """The last line that holds ``words`` (not in a comment): a duplicate is named at its
    second use."""
    found = [
        number
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1)
        if words in line and not line.lstrip().startswith("#")
    ]
    assert found, words
    return found[-1]


AUGUST = "        due: Tháng 8/2026\n"
BAD_TASKS = [
    (AUGUST, "        due: Tháng 13/2026\n", "Tháng 13/2026", "tháng 13 không có"),
    (AUGUST, "        due: sớm nhất có thể\n", "sớm nhất", "không đọc được thời gian"),
    (AUGUST, "        due: Tháng 8/2025\n", "Tháng 8/2025", "trước ngày kế hoạch có hiệu lực"),
    (AUGUST, "        due: 2026 - 2025\n", "2026 - 2025", "năm đầu trước năm cuối"),
    # after end_year: its year's period would never open (tests/test_task_cycles.py)
    (AUGUST, "        due: Tháng 8/2027\n", "Tháng 8/2027", "sau năm cuối của kế hoạch"),
    (
        AUGUST,
        "        due: {phrase: Tháng 8/2026, progress: {day: 15, month: 12}}\n",
        "progress",
        "chỉ dùng cho một giai đoạn",
    ),
    (
        AUGUST,
        "        due: {phrase: Tháng 8/2026, deadline_kind: exclusive}\n",
        "deadline_kind",
        "chỉ dùng cho một ngày",
    ),
    (
        "        lead: {unit: so-noi-vu-cao-bang}\n",
        "        lead: {unit: so-khong-co}\n",
        "so-khong-co",
        "so-khong-co",
    ),
    (
        "        supporting: [{unit: so-khcn-cao-bang}]\n",
        "        supporting: [{group: khong-co-nhom}]\n",
        "khong-co-nhom",
        "không có nhóm 'khong-co-nhom'",
    ),
    (
        "        text: Tham mưu UBND tỉnh các giải pháp thúc đẩy chuyển đổi số.\n",
        "        text: Tham mưu UBND tỉnh các giải pháp thúc đẩy chuyển đổi số.\n"
        "        completion: {by: report}\n",
        "completion: {by: report}",
        "chỉ có tác dụng với nhiệm vụ có thời hạn",
    ),
    (
        AUGUST,
        AUGUST + "        completion: {by: periodic_report}\n",
        "{by: periodic_report}",
        "cần 'deliverable'",
    ),
    (
        AUGUST,
        AUGUST
        + "        completion: {by: periodic_report, deliverable: bao-cao-6-thang, field: x}\n",
        "field: x",
        "không phải gửi 'bao-cao-6-thang'",
    ),
    (
        "field: diem-ho-tro}",
        "field: so-buoi-tuyen-truyen}",
        "so-buoi-tuyen-truyen}",
        "cần một trường lựa chọn 'so-buoi-tuyen-truyen'",
    ),
    (
        AUGUST,
        AUGUST + "        completion: {template: khong-co-mau}\n",
        "khong-co-mau",
        "không có mẫu báo cáo 'khong-co-mau'",
    ),
    (
        "      - id: so-hoa-ho-so\n",
        "      - id: quy-che-du-lieu\n",
        "- id: quy-che-du-lieu",
        "bị dùng hai lần",
    ),
    # A task's completion reports are consolidated like a report's
    # (tests/test_task_consolidation.py), by the unit they go to, after the task's deadline.
    (
        "\nreport_templates:",
        "\nconsolidations:\n  - id: tong-hop-lgsp\n    consolidates: nen-tang-du-lieu\n"
        "    by: so-noi-vu-cao-bang\n    routing: {to: ubnd-tinh-cao-bang}\n"
        "    deadline: {rule: fixed, date: 2027-01-15}\n\nreport_templates:",
        "by: so-noi-vu-cao-bang",
        "không nhận báo cáo 'nen-tang-du-lieu' nào",
    ),
    (
        "\nreport_templates:",
        "\nconsolidations:\n  - id: tong-hop-lgsp\n    consolidates: nen-tang-du-lieu\n"
        "    by: so-khcn-cao-bang\n    routing: {to: ubnd-tinh-cao-bang}\n"
        "    deadline: {rule: fixed, date: 2026-12-15}\n\nreport_templates:",
        "phrase: hoàn thành trong quý IV năm 2026",
        "trùng hoặc sau hạn tổng hợp",
    ),
    (
        "          phrase: trước ngày 30/6/2026\n",
        "          phrase: trước ngày 30/6/2026\n          deadline_kind: inclusive\n",
        "deadline_kind: inclusive",
        "ghi lý do vào 'note'",
    ),
]


@pytest.mark.parametrize(("old", "new", "needle", "words"), BAD_TASKS)
def test_bad_task_constructs_are_located_errors(
    tmp_path: Path, old: str, new: str, needle: str, words: str
) -> None:
    path = variant(tmp_path, old, new)
    with pytest.raises(DefinitionError) as caught:
        load([REGISTRY, CALENDAR, path])
    mine = [p for p in caught.value.problems if p.location.file == str(path)]
    assert any(words in p.message for p in mine), [p.message for p in mine]
    line = _line_of(path, needle)
    assert any(p.location.line == line and words in p.message for p in mine), (line, mine)


def test_a_yearless_time_is_read_in_the_plans_year_with_a_warning(tmp_path: Path) -> None:
    path = variant(tmp_path, AUGUST, "        due: Tháng 8\n")
    catalog = load([REGISTRY, CALENDAR, path])
    plan = catalog.plans[DEPARTMENT].definition
    assert plan.deliverable("so-hoa-ho-so").deadline.date == dt.date(2026, 8, 31)
    [warning] = [w for w in catalog.warnings if "không ghi năm" in w.message]
    assert warning.location.line == _line_of(path, "due: Tháng 8")
    assert "tính là năm 2026" in warning.message
