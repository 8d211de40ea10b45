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
import shutil
from pathlib import Path

import pytest
from sqlalchemy import select, text

from cli.main import main
from engine.audit import write_audit
from engine.consolidation import consolidate
from engine.lifecycle import SubmissionRejected, activate, record_submission
from engine.store import session_scope
from engine.store.db import connect
from engine.store.models import AuditEvent, Submission
from tests.approval_support import docx_text
from tests.lifecycle_factory import (
    CONSOLIDATION,
    DISTRICT,
    GOOD_REPORT,
    SUB_PLAN,
    lc_settings,
    obligation,
    prepared,
    vn,
)
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
        # As a row stored before these checks: the audit log records it as it is (an edit
        # no row records is refused as tampered: tests/test_audit_chain.py).
        session.expire(submission)
        write_audit(
            session,
            "audit.sealed",
            at=vn(2027, 9, 1),
            plan_id=DISTRICT,
            obligation_id=submission.obligation_id,
            records=submission,
        )


# One defect per case, so each one fails on its own without the fix:
#   (unit, {field: JSON text}, incidents counted, the warning)
FINITE = "không phải là số hữu hạn; không đưa vào báo cáo"
CASES = {
    # PostgreSQL's json refuses the Infinity token; 1e400 reads back as inf all the same.
    "infinity": (
        "ca-huyen",
        {"so-vu-chay": "Infinity"},
        6,
        f"{POLICE}: trường 'Số vụ cháy' {FINITE}",
    ),
    "nan": (
        "ca-huyen",
        {"thiet-hai": "NaN"},
        10,
        f"{POLICE}: trường 'Thiệt hại ước tính' {FINITE}",
    ),
    "5000-digits": (
        "phong-vh",
        {"so-vu-chay": DIGITS_5000},
        10,
        f"{CULTURE}: trường 'Số vụ cháy' không phải là số; không đưa vào báo cáo",
    ),
    "control-characters": (
        "phong-vh",
        {"ghi-chu": json.dumps("Đã rà\u000b soát\u0000 đội\u001b 3")},
        10,
        f"{CULTURE}: trường 'Ghi chú' có ký tự điều khiển không hợp lệ; đã bỏ các ký tự đó",
    ),
}
POSTGRES_SPELLING = {"Infinity": "1e400", "NaN": "-1e400"}


def _tamper(url: str, case: str) -> None:
    unit, changes, _count, _warning = CASES[case]
    if url.startswith("postgresql"):
        changes = {k: POSTGRES_SPELLING.get(v, v) for k, v in changes.items()}
    _edit_values(url, unit, changes)


@pytest.fixture(scope="module")
def answered(tmp_path_factory) -> Path:  # type: ignore[no-untyped-def]
    """A SQLite store after the cycle's answers, built once and copied per test."""
    path = tmp_path_factory.mktemp("answered") / "kehoach.sqlite"
    url = f"sqlite:///{path}"
    prepared(url)
    _run_cycle(url)
    connect(url).dispose()
    return path


def _copy(answered: Path, tmp_path: Path) -> str:
    target = tmp_path / "kehoach.sqlite"
    shutil.copy(answered, target)
    return f"sqlite:///{target}"


def _consolidated(url: str, tmp_path: Path):  # type: ignore[no-untyped-def]
    with session_scope(url) as session:
        return consolidate(
            session,
            DISTRICT,
            "2027",
            CONSOLIDATION,
            now=CONSOLIDATED_AT,
            settings=lc_settings(tmp_path),
        )


@pytest.mark.parametrize("case", list(CASES))
def test_a_bad_stored_value_is_left_out_and_said_and_the_rest_consolidates(
    answered, tmp_path, case
):
    unit, _changes, incidents, warning = CASES[case]
    url = _copy(answered, tmp_path)
    _tamper(url, case)
    result = _consolidated(url, tmp_path)
    assert result.created and result.warnings == [warning]
    # 4 + 0 + 1 + 2 + 3 incidents, less the police's 4 when theirs is Infinity
    assert result.aggregates["so-vu-chay"] == incidents
    thiet_hai = 4 if case == "nan" else 5
    assert result.aggregates["thiet-hai"] == thiet_hai * 1234.5
    # The operator sees it in the artifact; the report itself is the clean one.
    assert WARNINGS_HEADING in result.markdown and warning.split(":")[0] in result.markdown
    assert f"| Số vụ cháy (vụ) | {incidents} vụ |" in result.markdown
    document = docx_text(str(result.document_path))
    assert f"{incidents} vụ" in document and WARNINGS_HEADING not in document
    if case == "control-characters":
        assert f"{CULTURE}\nĐã rà soát đội 3" in document  # its row of Phụ lục 3
    with session_scope(url) as session:
        [audit] = session.scalars(
            select(AuditEvent).where(AuditEvent.action == "cycle.consolidated")
        ).all()
        assert audit.data["values_left_out"] == [warning]


def test_every_bad_stored_value_at_once_on_postgresql(postgres_url, tmp_path):
    prepared(postgres_url)
    _run_cycle(postgres_url)
    by_unit: dict[str, dict[str, str]] = {}
    for unit, changes, _count, _warning in CASES.values():  # one edit per unit and row
        by_unit.setdefault(unit, {}).update(
            {k: POSTGRES_SPELLING.get(v, v) for k, v in changes.items()}
        )
    for unit, changes in by_unit.items():
        _edit_values(postgres_url, unit, changes)
    result = _consolidated(postgres_url, tmp_path)
    assert result.created
    assert sorted(result.warnings) == sorted(warning for *_rest, warning in CASES.values())
    assert result.aggregates["so-vu-chay"] == 6  # without the police's (inf) and culture's
    assert result.aggregates["thiet-hai"] == 4 * 1234.5
    assert f"{CULTURE}\nĐã rà soát đội 3" in docx_text(str(result.document_path))


def test_the_consolidate_command_exits_0_on_bad_stored_values(
    answered, tmp_path, monkeypatch, capsys
):
    from engine.config import settings

    monkeypatch.setenv("KEHOACH_HOME", str(tmp_path))
    monkeypatch.setenv("KEHOACH_PORTAL_SECRET", "values-test-secret-0123456789abcdefghij")
    monkeypatch.setenv("KEHOACH_NOW", "2027-09-27T08:00:00+07:00")
    settings.cache_clear()
    try:
        url = _copy(answered, tmp_path)
        _tamper(url, "infinity")
        code = main(["--database-url", url, "consolidate", DISTRICT, "--cycle", "2027"])
    finally:
        settings.cache_clear()
    out = capsys.readouterr()
    assert code == 0, out.err
    assert f"cảnh báo: {POLICE}: trường 'Số vụ cháy' không phải là số hữu hạn" in out.out
    assert "Traceback" not in out.err


def test_record_submission_applies_the_same_rules_on_every_path(db_url):
    """The CLI's simulation, the upward hand-off and imports store through
    record_submission: the same refusals as the portal; on PostgreSQL a NUL in a summary
    used to end in a DataError (text columns refuse it), on SQLite it was stored."""
    prepared(db_url)
    with session_scope(db_url) as session:
        activate(session, DISTRICT, now=vn(2027, 1, 4))
    with session_scope(db_url) as session:
        report = obligation(session, "xa-moi").id
        sub_plan = obligation(session, "xa-a", SUB_PLAN, cycle="once").id
    bad = {**GOOD_REPORT, "so-vu-chay": 10**5000, "thiet-hai": float("inf"), "ghi-chu": "a\x1bb"}
    with session_scope(db_url) as session, pytest.raises(SubmissionRejected) as refused:
        record_submission(session, report, values=bad, now=vn(2027, 9, 5), source="sim")
    assert set(refused.value.errors) == {"so-vu-chay", "thiet-hai", "ghi-chu"}
    assert "Trường 'Ghi chú' có ký tự không hợp lệ (mã U+001B" in refused.value.errors["ghi-chu"]
    with session_scope(db_url) as session, pytest.raises(SubmissionRejected) as refused:
        record_submission(
            session, sub_plan, values=None, summary="Kế hoạch\x00 số 12", now=vn(2027, 1, 20)
        )
    assert (
        "Trường 'Tóm tắt kế hoạch' có ký tự không hợp lệ (mã U+0000"
        in refused.value.errors["summary"]
    )
    with session_scope(db_url) as session:  # a report handed upward keeps what fits
        kept = record_submission(
            session, report, values=bad, now=vn(2027, 9, 5), source="upward", strict=False
        )
        assert "so-vu-chay" not in kept.values and "thiet-hai" not in kept.values
        assert kept.values["so-lop"] == 3
    with session_scope(db_url) as session:
        assert session.get(Submission, kept.id).values["ty-le-hoc-tap"] == 90
