"""The sample plans of the task tests (tests/test_tasks_*.py), as files and ids, and the
helper that writes a variant of one (no tests here).

``plan_definitions/examples/cao_bang_so_khcn_nhiem_vu_2026.yaml`` (sample data) is a
department plan whose tasks carry their own lead, supporting units and time: "hoàn
thành trong quý IV năm 2026", "Tháng 8/2026", "trước ngày 30/6/2026", "6 tháng đầu năm
2026", "thường xuyên" and one task without a time. ``bo_khcn_chuyen_doi_so_2024.yaml``
is a ministry plan whose appendix task table has ranges ("2024 - 2025", "2025 - 2030")
with yearly progress reports, quarters and months.
"""

from __future__ import annotations

from pathlib import Path

from tests.lifecycle_factory import DEFINITIONS

EXAMPLES = DEFINITIONS / "examples"
REGISTRY = EXAMPLES / "registry_cao_bang_2026.yaml"
CALENDAR = DEFINITIONS / "calendar_vn.yaml"
DEPARTMENT_FILE = EXAMPLES / "cao_bang_so_khcn_nhiem_vu_2026.yaml"
DEPARTMENT = "cao-bang-so-khcn-nhiem-vu-2026"
MINISTRY_REGISTRY = EXAMPLES / "registry_bo_khcn_2024.yaml"
MINISTRY_FILE = EXAMPLES / "bo_khcn_chuyen_doi_so_2024.yaml"
MINISTRY = "bo-khcn-chuyen-doi-so-2024"
QUARTER_IV = "nen-tang-du-lieu"  # led by Sở KH&CN, supported by Sở Tài chính


def variant(tmp_path: Path, old: str, new: str, source: Path = DEPARTMENT_FILE) -> Path:
    """``source`` with its first ``old`` replaced by ``new``, written in ``tmp_path``."""
    text = source.read_text(encoding="utf-8")
    assert old in text, old
    path = tmp_path / source.name
    path.write_text(text.replace(old, new, 1), encoding="utf-8")
    return path
