"""Reports on request, đột xuất (issue 10, item 3), on the example plan
``plan_definitions/examples/cao_bang_dau_tu_cong_2026.yaml`` (sample data): its report
``bao-cao-dot-xuat`` has no schedule; each request makes one cycle, due on the day it
names, consolidated by Sở Tài chính 3 days after the units' date.
"""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from cli.main import main
from engine.errors import DefinitionError, NotFound
from engine.lifecycle import activate, sweep
from engine.loader import load
from engine.requests_adhoc import RequestError, request_report
from engine.store import session_scope
from engine.store.models import AuditEvent, Cycle, OutboxMessage
from notifications.render import render_parts
from tests.lifecycle_factory import DEFINITIONS, lc_settings, obligations, store_files, vn

EXAMPLES = DEFINITIONS / "examples"
REGISTRY = EXAMPLES / "registry_cao_bang_2026.yaml"
CALENDAR = DEFINITIONS / "calendar_vn.yaml"
PLAN_FILE = EXAMPLES / "cao_bang_dau_tu_cong_2026.yaml"
PLAN = "cao-bang-dau-tu-cong-2026"
ASKED = "bao-cao-dot-xuat"
REASON = "Báo cáo nhanh tình hình giải phóng mặt bằng các dự án trọng điểm"
COMMUNES = {
    "ubnd-xa-ha-lang-2025",
    "ubnd-xa-ly-quoc-2025",
    "ubnd-xa-quang-long-2025",
    "ubnd-xa-vinh-quy-2025",
    "ubnd-xa-trung-khanh-2025",
    "ubnd-phuong-thuc-phan-2025",
}


@pytest.fixture
def active(sqlite_url: str) -> str:
    store_files(sqlite_url, REGISTRY, CALENDAR, PLAN_FILE)
    with session_scope(sqlite_url) as session:
        activate(session, PLAN, now=vn(2026, 3, 26, 9))
    return sqlite_url


def _cycles(url: str) -> list[str]:
    with session_scope(url) as session:
        return sorted(session.scalars(select(Cycle.key)))


def test_activation_makes_no_cycle_for_a_report_on_request(active: str) -> None:
    with session_scope(active) as session:
        assert obligations(session, PLAN, deliverable=ASKED) == []
    assert not [k for k in _cycles(active) if "DX" in k]


def test_a_request_makes_its_cycle_obligations_consolidation_and_emails(active: str) -> None:
    with session_scope(active) as session:
        result = request_report(
            session, PLAN, ASKED, due=dt.date(2026, 5, 16), reason=REASON,
            now=vn(2026, 5, 12, 9), by="Chánh Văn phòng",
        )  # fmt: skip
    assert (result.cycle_key, result.label) == ("2026-DX1", "đột xuất lần 1 năm 2026")
    # 16/5/2026 is a Saturday: Điều 148 gives Monday 18/5; the consolidation is due 3 days
    # after the units' (moved) date, Thursday 21/5.
    assert result.due == dt.date(2026, 5, 18) and "Thứ Bảy" in result.due_reason
    assert len(result.units) == 12 and result.consolidations == ["tong-hop-dot-xuat"]
    with session_scope(active) as session:
        rows = obligations(session, PLAN, cycle="2026-DX1")
        reports = [o for o in rows if o.deliverable_id == ASKED]
        [duty] = [o for o in rows if o.kind == "consolidation"]
        assert {o.due_date for o in reports} == {dt.date(2026, 5, 18)}
        assert (duty.unit_id, duty.due_date) == ("so-tai-chinh-cao-bang", dt.date(2026, 5, 21))
        assert (duty.to_unit_id, duty.via_unit_id) == (
            "ubnd-tinh-cao-bang",
            "van-phong-ubnd-tinh-cao-bang",
        )
        cycle = session.scalar(select(Cycle).where(Cycle.key == "2026-DX1"))
        assert (cycle.period_start, cycle.period_end) == (
            dt.date(2026, 5, 12),
            dt.date(2026, 5, 16),
        )
        mails = session.scalars(
            select(OutboxMessage).where(OutboxMessage.obligation_id.in_([o.id for o in rows]))
        ).all()
        assert len(mails) == result.queued == 13
        _subject, text, _html = render_parts(mails[0].kind, mails[0].context)
        assert f"Nội dung yêu cầu: {REASON}" in text
        assert "đột xuất lần 1 năm 2026" in text
        audit = session.scalar(select(AuditEvent).where(AuditEvent.action == "request.created"))
        assert audit.actor == "Chánh Văn phòng" and audit.data["reason"] == REASON
    # A second request is the year's second cycle, here for one group only.
    with session_scope(active) as session:
        second = request_report(
            session, PLAN, ASKED, due=dt.date(2026, 6, 5), reason="Lần hai",
            now=vn(2026, 6, 1, 9), group="xa-phuong-cao-bang",
        )  # fmt: skip
    assert second.cycle_key == "2026-DX2" and set(second.units) == COMMUNES


def test_the_sweep_reminds_and_marks_overdue_a_requested_report(active: str) -> None:
    with session_scope(active) as session:
        request_report(
            session, PLAN, ASKED, due=dt.date(2026, 5, 16), reason=REASON,
            now=vn(2026, 5, 12, 9), units=["so-y-te-cao-bang"],
        )  # fmt: skip
    with session_scope(active) as session:
        sweep(session, PLAN, today=dt.date(2026, 5, 16))  # 2 days before 18/5
        sweep(session, PLAN, today=dt.date(2026, 5, 19))
    with session_scope(active) as session:
        [owed] = obligations(session, PLAN, deliverable=ASKED)
        kinds = set(
            session.scalars(
                select(OutboxMessage.kind).where(OutboxMessage.obligation_id == owed.id)
            )
        )
        assert {"assignment", "reminder", "overdue"} <= kinds and owed.overdue


def test_the_requested_cycle_is_consolidated_as_the_department(active: str, tmp_path: Path) -> None:
    from engine.consolidation import consolidate

    with session_scope(active) as session:
        request_report(
            session, PLAN, ASKED, due=dt.date(2026, 5, 18), reason=REASON, now=vn(2026, 5, 12, 9)
        )
    with session_scope(active) as session:
        result = consolidate(
            session, PLAN, "2026-DX1", "tong-hop-dot-xuat", now=vn(2026, 5, 21, 9),
            settings=lc_settings(tmp_path),
        )  # fmt: skip
    markdown = result.markdown
    assert "**SỞ TÀI CHÍNH TỈNH CAO BẰNG**" in markdown
    assert "đột xuất lần 1 năm 2026" in markdown
    assert "**KT. GIÁM ĐỐC**  \n**PHÓ GIÁM ĐỐC**" in markdown
    assert "- Chủ tịch UBND tỉnh (B/c);" in markdown
    assert "- Văn phòng UBND tỉnh Cao Bằng (B/c);" in markdown


@pytest.mark.parametrize(
    ("kwargs", "error", "words"),
    [
        ({"deliverable_id": "bao-cao-thang"}, RequestError, "có lịch riêng"),
        ({"deliverable_id": "khong-co"}, NotFound, "bao-cao-dot-xuat"),
        ({"due": dt.date(2026, 5, 1)}, RequestError, "đã qua"),
        ({"units": ["so-tai-chinh-cao-bang"]}, RequestError, "không được giao"),
        ({"group": "khong-co"}, NotFound, "không có nhóm"),
        ({"reason": "  "}, RequestError, "--reason"),
        ({"units": ["so-y-te-cao-bang"], "group": "so-chu-dau-tu"}, RequestError, "không cả hai"),
    ],
)
def test_a_request_that_cannot_be_made_is_refused_and_writes_nothing(
    active: str, kwargs: dict, error: type, words: str
) -> None:
    asked = {"deliverable_id": ASKED, "due": dt.date(2026, 5, 18), "reason": REASON, **kwargs}
    before = _cycles(active)
    with session_scope(active) as session, pytest.raises(error) as caught:
        request_report(session, PLAN, asked.pop("deliverable_id"), now=vn(2026, 5, 12, 9), **asked)
    assert words in str(caught.value)
    assert _cycles(active) == before


def test_a_plan_not_yet_activated_is_refused(sqlite_url: str) -> None:
    store_files(sqlite_url, REGISTRY, CALENDAR, PLAN_FILE)
    with (
        session_scope(sqlite_url) as session,
        pytest.raises(RequestError, match="chưa được kích hoạt"),
    ):
        request_report(
            session, PLAN, ASKED, due=dt.date(2026, 5, 18), reason=REASON, now=vn(2026, 5, 12)
        )


def test_the_command_line(active: str, capsys, monkeypatch) -> None:
    monkeypatch.setenv("KEHOACH_NOW", "2026-05-12T09:00")
    argv = ["--database-url", active, "request", PLAN, ASKED, "--due", "18/5/2026"]
    assert (
        main([*argv, "--units", "so-y-te-cao-bang,ubnd-xa-ha-lang-2025", "--reason", REASON]) == 0
    )
    printed = capsys.readouterr().out
    assert "kỳ 2026-DX1 (đột xuất lần 1 năm 2026), hạn Thứ Hai, 18/5/2026" in printed
    assert "2 đơn vị được yêu cầu, 3 thư" in printed
    assert main([*argv, "--units", "so-tai-chinh-cao-bang", "--reason", REASON]) == 1
    assert "không được giao" in capsys.readouterr().err
    with pytest.raises(SystemExit) as usage:
        main(
            [
                "--database-url",
                active,
                "request",
                PLAN,
                ASKED,
                "--due",
                "31/2/2026",
                "--reason",
                "x",
            ]
        )
    assert usage.value.code == 2 and "không phải là ngày" in capsys.readouterr().err


# ---------------------------------------------------------------- located errors, fuzzed


def _variant(tmp_path: Path, old: str, new: str) -> Path:
    text = PLAN_FILE.read_text(encoding="utf-8")
    assert old in text, old
    path = tmp_path / "plan.yaml"
    path.write_text(text.replace(old, new, 1), encoding="utf-8")
    return path


ASKED_RULE = "    deadline:\n      rule: on_request\n      phrase: đột xuất khi có yêu cầu\n"
DUTY_RULE = "      rule: on_request\n      days: 3\n"


@pytest.mark.parametrize(
    ("old", "new", "code", "line_text"),
    [
        (
            "    frequency: on_request\n",
            "    frequency: monthly\n",
            "request-rule",
            "rule: on_request",
        ),
        (
            ASKED_RULE,
            ASKED_RULE.replace("on_request", "monthly\n      day: 20"),
            "request-rule",
            "rule: monthly",
        ),
        (ASKED_RULE, ASKED_RULE + "      days: 2\n", "request-days", "days: 2"),
        (
            "    reminders: [2, 1]\n",
            "    reminders: [2, 1]\n    first_period: 2026-05\n",
            "request-first-period",
            "first_period",
        ),
        (DUTY_RULE, "      rule: on_request\n      days: 0\n", "deadline-order", "days: 0"),
        (
            DUTY_RULE,
            "      rule: yearly\n      day: 1\n      month: 6\n",
            "request-rule",
            "rule: yearly",
        ),
    ],
)
def test_request_constructs_give_located_errors(tmp_path, old, new, code, line_text) -> None:
    path = _variant(tmp_path, old, new)
    with pytest.raises(DefinitionError) as caught:
        load([REGISTRY, CALENDAR, path])
    found = [p for p in caught.value.problems if p.code == code]
    assert found, caught.value.problems
    lines = path.read_text(encoding="utf-8").splitlines()
    assert line_text in lines[found[0].location.line - 1], found[0]


@settings(
    max_examples=int(os.environ.get("KEHOACH_FUZZ_EXAMPLES", "40")),
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    where=st.sampled_from(
        [
            ("    frequency: on_request\n", "    frequency: {v}\n"),
            ("      rule: on_request\n      phrase", "      rule: {v}\n      phrase"),
            (DUTY_RULE, "      rule: on_request\n      days: {v}\n"),
            ("    reminders: [2, 1]\n", "    reminders: {v}\n"),
            (
                "    routing: {to: so-tai-chinh-cao-bang}\n    # No schedule",
                "    routing: {v}\n    # No schedule",
            ),
        ]
    ),
    value=st.sampled_from(
        [
            "on_request",
            "",
            "null",
            "-1",
            "0",
            "367",
            "3",
            "[1, 2]",
            "{a: 1}",
            "monthly",
            "once",
            "{to: khong-co}",
            "'x'",
            "9" * 40,
            "fixed",
            "true",
        ]
    ),  # fmt: skip
)
def test_fuzzed_request_constructs_give_only_located_errors(tmp_path_factory, where, value) -> None:
    old, new = where
    path = _variant(tmp_path_factory.mktemp("fuzz"), old, new.replace("{v}", value))
    try:
        load([REGISTRY, CALENDAR, path])
    except DefinitionError as exc:
        assert exc.problems and all(p.location.line > 0 for p in exc.problems), exc
