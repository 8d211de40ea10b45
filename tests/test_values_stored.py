"""Consolidation never dies on one unit's data already stored.

Rows are edited in the database as an operator's mistake (or a row written before the
checks of engine.values) would leave them: Infinity, NaN, a 5,000-digit integer, control
characters. The district's report is still written, through the real consolidation and
.docx rendering, on SQLite and PostgreSQL: the bad values are left out (or cleaned) and
said so, the rest consolidates. Before the fix: OverflowError (exit 70), "All strings
must be XML compatible", and a row that could not even be read (int/str limit).
"""

from __future__ import annotations

import json

import docx
from sqlalchemy import select, text

from cli.main import main
from engine.consolidation import consolidate
from engine.store import session_scope
from engine.store.models import AuditEvent, Submission
from tests.lifecycle_factory import CONSOLIDATION, DISTRICT, lc_settings, obligation, prepared
from tests.test_consolidation import CONSOLIDATED_AT, _run_cycle

POLICE = "Công an huyện Hạ Lang"
CULTURE = "Phòng Văn hóa và Thông tin"
DIGITS_5000 = "7" * 5000
WARNINGS_HEADING = "Cảnh báo về số liệu đã lưu (không in trong báo cáo):"


def _edit_values(url: str, unit: str, changes: dict[str, str]) -> None:
    """Write the unit's stored values as raw JSON text, each change spliced in verbatim
    (``{"field": "<JSON text>"}``), bypassing every check above the database."""
    with session_scope(url) as session:
        submission = session.scalar(
            select(Submission).where(Submission.obligation_id == obligation(session, unit).id)
        )
        assert submission is not None
        values = dict(submission.values)
        for field_id in changes:
            values[field_id] = f"@@{field_id}@@"
        raw = json.dumps(values)
        for field_id, literal in changes.items():
            raw = raw.replace(json.dumps(f"@@{field_id}@@"), literal)
        cast = "CAST(:raw AS JSON)" if url.startswith("postgresql") else ":raw"
        session.execute(
            text(f'UPDATE submissions SET "values" = {cast} WHERE id = :id'),
            {"raw": raw, "id": submission.id},
        )


def _tamper(url: str) -> None:
    postgres = url.startswith("postgresql")
    # PostgreSQL's json refuses the Infinity and NaN tokens; 1e400 reads back as inf.
    _edit_values(
        url,
        "ca-huyen",
        {
            "so-vu-chay": "1e400" if postgres else "Infinity",
            "thiet-hai": "-1e400" if postgres else "NaN",
        },
    )
    _edit_values(
        url,
        "phong-vh",
        {"so-vu-chay": DIGITS_5000, "ghi-chu": json.dumps("Đã rà\u000b soát\u0000 đội\u001b 3")},
    )


def _docx_text(path: str) -> str:
    document = docx.Document(path)
    parts = [p.text for p in document.paragraphs]
    for table in document.tables:
        for row in table.rows:
            parts.extend(cell.text for cell in row.cells)
    return "\n".join(parts)


def test_bad_stored_values_are_left_out_and_said_and_the_rest_consolidates(db_url, tmp_path):
    prepared(db_url)
    _run_cycle(db_url)
    _tamper(db_url)
    with session_scope(db_url) as session:
        result = consolidate(
            session,
            DISTRICT,
            "2027",
            CONSOLIDATION,
            now=CONSOLIDATED_AT,
            settings=lc_settings(tmp_path),
        )
    assert result.created
    # 4 + 0 + 1 + 2 + 3 incidents; the police's (inf) and culture's (5,000 digits) left out
    assert result.aggregates["so-vu-chay"] == 6
    assert result.aggregates["thiet-hai"] == 4 * 1234.5  # the police's NaN / -inf left out
    finite = "không phải là số hữu hạn; không đưa vào báo cáo"
    assert result.warnings == [
        f"{POLICE}: trường 'Số vụ cháy' {finite}",
        f"{POLICE}: trường 'Thiệt hại ước tính' {finite}",
        f"{CULTURE}: trường 'Số vụ cháy' không phải là số; không đưa vào báo cáo",
        f"{CULTURE}: trường 'Ghi chú' có ký tự điều khiển không hợp lệ; đã bỏ các ký tự đó",
    ]
    # The operator sees it in the artifact; the report itself is the clean one.
    assert WARNINGS_HEADING in result.markdown and POLICE in result.markdown
    assert "| Số vụ cháy (vụ) | 6 vụ |" in result.markdown
    document = _docx_text(str(result.document_path))
    assert f"{CULTURE}: Đã rà soát đội 3" in document
    assert "6 vụ" in document and WARNINGS_HEADING not in document
    with session_scope(db_url) as session:
        [audit] = session.scalars(
            select(AuditEvent).where(AuditEvent.action == "cycle.consolidated")
        ).all()
        assert audit.data["values_left_out"] == result.warnings


def test_the_consolidate_command_exits_0_on_bad_stored_values(
    sqlite_url, tmp_path, monkeypatch, capsys
):
    from engine.config import settings

    monkeypatch.setenv("KEHOACH_HOME", str(tmp_path))
    monkeypatch.setenv("KEHOACH_PORTAL_SECRET", "test-secret")
    monkeypatch.setenv("KEHOACH_NOW", "2027-09-27T08:00:00+07:00")
    settings.cache_clear()
    try:
        prepared(sqlite_url)
        _run_cycle(sqlite_url)
        _tamper(sqlite_url)
        code = main(["--database-url", sqlite_url, "consolidate", DISTRICT, "--cycle", "2027"])
    finally:
        settings.cache_clear()
    out = capsys.readouterr()
    assert code == 0, out.err
    assert f"cảnh báo: {POLICE}: trường 'Số vụ cháy' không phải là số hữu hạn" in out.out
    assert "Traceback" not in out.err
