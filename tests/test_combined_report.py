"""The combined report (lồng ghép): when the consolidation names the combined plan and
that plan is in the store, the report holds its section with its figures; otherwise it
says what is missing (issue 12, item 3). Before, the combined report was one sentence."""

from __future__ import annotations

import docx
import pytest

from engine.consolidation import consolidate
from engine.consolidation.combined import HEADING
from engine.lifecycle import activate, intake, record_submission
from engine.store import session_scope
from tests.lifecycle_factory import (
    CONSOLIDATION,
    DATA,
    DISTRICT,
    PROVINCE,
    lc_settings,
    obligation,
    store_files,
    vn,
)

LINE = "    combined_with: báo cáo thực hiện Quyết định số 630/QĐ-TTg"


def _store(url: str, tmp_path, combined_plan: str) -> None:  # type: ignore[no-untyped-def]
    text = (DATA / "district.yaml").read_text(encoding="utf-8")
    assert LINE in text
    at = text.index("\n", text.index(LINE))
    changed = tmp_path / "district.yaml"
    changed.write_text(
        text[:at] + f"\n    combined_plan: {combined_plan}" + text[at:], encoding="utf-8"
    )
    store_files(url, DATA / "registry.yaml", DATA / "province.yaml", changed)


def _text(path: str) -> str:
    return "\n".join(p.text for p in docx.Document(path).paragraphs)


@pytest.mark.parametrize(
    ("combined_plan", "expected"),
    [
        ("khong-co-ke-hoach", "chưa có trong hệ thống; đơn vị tổng hợp bổ sung."),
        (PROVINCE, "kỳ 2027 chưa có báo cáo tổng hợp trong hệ thống."),
    ],
)
def test_the_section_says_what_is_missing(sqlite_url, tmp_path, combined_plan, expected):
    _store(sqlite_url, tmp_path, combined_plan)
    with session_scope(sqlite_url) as session:
        activate(session, DISTRICT, now=vn(2027, 1, 4))
        result = consolidate(
            session,
            DISTRICT,
            "2027",
            CONSOLIDATION,
            now=vn(2027, 9, 27, 8),
            settings=lc_settings(tmp_path),
        )
    text = _text(result.document_path)
    assert HEADING in text and expected in text
    assert f"### {HEADING}" in result.markdown


def test_the_combined_plans_figures_are_in_the_report(sqlite_url, tmp_path):
    _store(sqlite_url, tmp_path, PROVINCE)
    conf = lc_settings(tmp_path)
    with session_scope(sqlite_url) as session:
        activate(session, PROVINCE, now=vn(2027, 1, 4))
        activate(session, DISTRICT, now=vn(2027, 1, 4))
        duty = obligation(session, "ubnd-huyen", "bao-cao-huyen", plan_id=PROVINCE)
        sent = record_submission(
            session, duty.id, values={"so-vu-chay": 4, "ty-le-hoc-tap": 80}, now=vn(2027, 9, 20)
        )
        intake(session, sent.id, now=vn(2027, 9, 20))
        consolidate(session, PROVINCE, "2027", "tong-hop-tinh", now=vn(2027, 9, 21), settings=conf)
        result = consolidate(
            session, DISTRICT, "2027", CONSOLIDATION, now=vn(2027, 9, 27, 8), settings=conf
        )
    text = _text(result.document_path)
    assert HEADING in text
    assert "- Số vụ cháy: 4 vụ." in text or "- Số vụ cháy: 4." in text, text[-800:]
