"""A tracked task's completion reports consolidated like a report's (issue 10, item 1:
tasks tracked "exactly as reports do").

The department plan ``cao_bang_so_khcn_nhiem_vu_2026.yaml`` asks every commune to set up
a help point "6 tháng đầu năm 2026" (due 30/6/2026); here it also says that Sở Khoa học
và Công nghệ gathers the communes' completion reports and reports to UBND tỉnh before
15/7/2026. Two communes answer on time, one two days late, three never.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from engine.consolidation import consolidate
from engine.lifecycle import activate, intake, record_submission
from engine.store import session_scope
from tests.lifecycle_factory import DEFINITIONS, lc_settings, obligations, store_files, vn

EXAMPLES = DEFINITIONS / "examples"
DEPARTMENT_FILE = EXAMPLES / "cao_bang_so_khcn_nhiem_vu_2026.yaml"
DEPARTMENT = "cao-bang-so-khcn-nhiem-vu-2026"
TASK = "diem-ho-tro-dvc"
CONSOLIDATION = """
consolidations:
  - id: tong-hop-diem-ho-tro
    section: III
    text: >-
      Sở Khoa học và Công nghệ tổng hợp kết quả bố trí điểm hỗ trợ của các xã, phường,
      báo cáo UBND tỉnh trước ngày 15/7/2026.
    consolidates: diem-ho-tro-dvc
    by: so-khcn-cao-bang
    routing: {to: ubnd-tinh-cao-bang}
    deadline: {rule: fixed, date: 2026-07-15, phrase: trước ngày 15/7/2026}
"""


def _with_consolidation(folder: Path) -> Path:
    path = folder / DEPARTMENT_FILE.name
    path.write_text(DEPARTMENT_FILE.read_text(encoding="utf-8") + CONSOLIDATION, "utf-8")
    return path


def test_a_tasks_completion_reports_are_consolidated_in_four_states(
    sqlite_url: str, tmp_path: Path
) -> None:
    store_files(
        sqlite_url,
        EXAMPLES / "registry_cao_bang_2026.yaml",
        DEFINITIONS / "calendar_vn.yaml",
        _with_consolidation(tmp_path),
    )
    with session_scope(sqlite_url) as session:
        activate(session, DEPARTMENT, now=vn(2026, 2, 10))
        rows = obligations(session, DEPARTMENT, deliverable=TASK)
        assert {o.due_date for o in rows} == {dt.date(2026, 6, 30)}
        communes = sorted(o.unit_id for o in rows)
    assert len(communes) == 6
    answers = {
        communes[0]: vn(2026, 6, 20),
        communes[1]: vn(2026, 6, 29),
        communes[2]: vn(2026, 7, 2),
    }
    for unit, moment in answers.items():
        with session_scope(sqlite_url) as session:
            [duty] = [
                o for o in obligations(session, DEPARTMENT, deliverable=TASK) if o.unit_id == unit
            ]
            values = {"muc-do": "Đã hoàn thành", "ket-qua": f"Điểm hỗ trợ của {unit} đã hoạt động."}
            submission = record_submission(session, duty.id, values=values, now=moment)
            intake(session, submission.id, now=moment)
    with session_scope(sqlite_url) as session:
        result = consolidate(
            session,
            DEPARTMENT,
            "once",
            "tong-hop-diem-ho-tro",
            now=vn(2026, 7, 10),
            settings=lc_settings(tmp_path),
        )
    states = {row["unit_id"]: (row["state"], row["days_late"]) for row in result.status_table}
    assert states == {
        communes[0]: ("done_on_time", None),
        communes[1]: ("done_on_time", None),
        communes[2]: ("done_late", 2),
        communes[3]: ("open_overdue", 10),
        communes[4]: ("open_overdue", 10),
        communes[5]: ("open_overdue", 10),
    }
    assert result.aggregates["muc-do"] == {
        "Đã hoàn thành": 3,
        "Hoàn thành một phần": 0,
        "Chưa hoàn thành": 0,
    }
    for words in ("Hoàn thành đúng hạn", "Hoàn thành quá hạn", "Chưa hoàn thành, quá hạn"):
        assert words in result.markdown, words
    assert "Mức độ hoàn thành" in result.markdown
