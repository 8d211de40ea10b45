"""Consolidation: aggregates, the four-state table, the .docx, and the report upward.

Four units report on time, xa-b two days late, xa-moi never; the district police
consolidate on Monday 27/9/2027 (25/9 was a Saturday) and the report becomes the
district's submission to the province's plan, which then consolidates it in turn.
"""

from __future__ import annotations

import datetime as dt
import types
from pathlib import Path

import docx
import pytest
from sqlalchemy import func, select

from cli.running import cmd_status
from engine.consolidation import consolidate
from engine.documents import QUOC_HIEU, TIEU_NGU, stored_path
from engine.errors import NotFound
from engine.lifecycle import activate, intake, record_submission
from engine.status import State, render_status, status_table
from engine.store import session_scope
from engine.store.models import (
    ConsolidatedReport,
    Cycle,
    Obligation,
    OutboxMessage,
    StoredFile,
    Submission,
)
from tests.approval_support import approve_sign_send, docx_text
from tests.lifecycle_factory import (
    CONSOLIDATION,
    DISTRICT,
    GOOD_REPORT,
    PROVINCE,
    lc_settings,
    obligation,
    outbox,
    prepared,
    vn,
)

CONSOLIDATED_AT = vn(2027, 9, 27, 8)
ANSWERS = {  # unit -> (moment, incidents, training rate, self-assessment)
    "ca-huyen": (vn(2027, 9, 6), "4", "100", "Tốt"),
    "phong-vh": (vn(2027, 9, 8), "0", "95", "Khá"),
    "phong-kt": (vn(2027, 9, 9), "1", "90", "Tốt"),
    "xa-a": (vn(2027, 9, 10, 17), "2", "85", "Trung bình"),
    "xa-b": (vn(2027, 9, 12, 10), "3", "80", "Khá"),  # two days late
    # xa-moi never reports
}


def _run_cycle(url: str) -> None:
    with session_scope(url) as session:
        activate(session, PROVINCE, now=vn(2027, 1, 4))
        activate(session, DISTRICT, now=vn(2027, 1, 4))
    for unit, (moment, incidents, rate, grade) in ANSWERS.items():
        with session_scope(url) as session:
            values = {
                **GOOD_REPORT,
                "so-vu-chay": incidents,
                "ty-le-hoc-tap": rate,
                "danh-gia": grade,
            }
            submission = record_submission(
                session, obligation(session, unit).id, values=values, now=moment
            )
            intake(session, submission.id, now=moment)


@pytest.fixture
def cycle_url(sqlite_url):
    prepared(sqlite_url)
    _run_cycle(sqlite_url)
    return sqlite_url


def _docx_headers(path: str) -> str:
    section = docx.Document(path).sections[0]
    return "\n".join(
        p.text for h in (section.first_page_header, section.header) for p in h.paragraphs
    )


def test_consolidation_aggregates_lists_states_and_hands_upward(db_url, tmp_path):
    prepared(db_url)
    _run_cycle(db_url)
    conf = lc_settings(tmp_path)
    with session_scope(db_url) as session:
        result = consolidate(
            session, DISTRICT, "2027", CONSOLIDATION, now=CONSOLIDATED_AT, settings=conf
        )
    assert result.created and not result.warnings

    # Aggregates per the template.
    aggregates = result.aggregates
    assert aggregates["so-vu-chay"] == 10
    assert aggregates["thiet-hai"] == 5 * 1234.5
    assert aggregates["ty-le-hoc-tap"] == 90
    assert aggregates["danh-gia"] == {"Tốt": 2, "Khá": 2, "Trung bình": 1}
    assert len(aggregates["ghi-chu"]) == 5

    # The four states.
    states = {row["unit_id"]: (row["state"], row["days_late"]) for row in result.status_table}
    assert states == {
        "ca-huyen": ("done_on_time", None),
        "phong-vh": ("done_on_time", None),
        "phong-kt": ("done_on_time", None),
        "xa-a": ("done_on_time", None),
        "xa-b": ("done_late", 2),
        "xa-moi": ("open_overdue", 17),
    }
    assert result.counts() == {
        "done_on_time": 4,
        "done_late": 1,
        "open_within": 0,
        "open_overdue": 1,
    }

    # The document: where it should be, opens with python-docx, Nghị định 30 parts.
    path = Path(result.document_path)
    assert path == tmp_path / "reports" / DISTRICT / "2027" / path.name
    text = docx_text(str(path))
    for expected in (
        QUOC_HIEU,
        TIEU_NGU,
        "ỦY BAN NHÂN DÂN\nHUYỆN HẠ LANG",  # issued in the plan issuer's name…
        "trên cơ sở tổng hợp của Công an huyện Hạ Lang",  # …drafted by the police
        "từ báo cáo của 5/6 cơ quan, đơn vị như sau:",  # the reports received, not owed
        "Số: …/BC-UBND",
        "Hạ Lang, ngày 27 tháng 9 năm 2027",
        "BÁO CÁO",
        "Số vụ cháy (vụ)",
        "Quyết định số 630/QĐ-TTg",  # combined_with
        "Gửi quá hạn: 1 đơn vị, gồm: UBND xã Bế Triều.",
        "Chưa gửi báo cáo: 1 đơn vị, gồm: UBND xã Quang Long mới.",
        "Phụ lục 1",  # the units' states, one row each
        "5/6 đơn vị báo cáo; chưa báo cáo: UBND xã Quang Long mới",
        "Hoàn thành quá hạn",
        "Chưa hoàn thành, quá hạn",
        "Nơi nhận:",
        "Ủy ban nhân dân tỉnh Thử (B/c)",
        "Lưu: VT, CAH.",
        "TM. ỦY BAN NHÂN DÂN",
        "CHỦ TỊCH",
        "Nguyễn Văn An",
        "tiếp nhận từ Ủy ban nhân dân xã",  # xa-moi took over from xa-c / xa-e
    ):
        assert expected in text, expected
    assert (
        "| Số vụ cháy (vụ) | 10 vụ | 5/6 đơn vị báo cáo; chưa báo cáo: UBND xã Quang Long mới |"
        in (result.markdown)
    )
    assert QUOC_HIEU in result.markdown

    # A draft: marked on its pages, and nothing has gone upward yet.
    assert "DỰ THẢO" in _docx_headers(str(path))
    assert result.upward_submission_id is None
    with session_scope(db_url) as session:
        assert outbox(session, "consolidated") == []
        assert [m.to_addrs for m in outbox(session, "report_draft")] == [["ca.huyen@lc.example"]]
        sent = approve_sign_send(session, result.id, conf, CONSOLIDATED_AT)
        assert sent.warnings == []
    with session_scope(db_url) as session:
        stored = session.get(StoredFile, result.document_file_id)
        assert stored_path(conf.files_dir, stored.sha256).read_bytes() == path.read_bytes()
        report = session.get(ConsolidatedReport, result.id)
        assert (report.approval, report.number_text) == ("sent", "01/BC-UBND")
        duty = obligation(session, "ca-huyen", CONSOLIDATION)
        assert (duty.status, duty.on_time) == ("submitted", True)
        [mail] = outbox(session, "consolidated")
        assert mail.obligation_id == duty.id and mail.context["number"] == "01/BC-UBND"
        assert mail.context["document_path"].endswith("-01-bc-ubnd-da-ky.pdf")
        assert mail.to_addrs == ["ca.tinh@lc.example"]  # via Công an tỉnh
        assert session.get(Cycle, duty.cycle_id).status == "consolidated"

        # Upward: the district's submission to the province's plan.
        parent = obligation(session, "ubnd-huyen", "bao-cao-huyen", plan_id=PROVINCE)
        assert sent.upward_obligation_id == parent.id
        upward = session.get(Submission, report.upward_submission_id)
        assert (upward.source, upward.obligation_id, upward.intake_done) == (
            "upward",
            parent.id,
            True,
        )
        assert upward.values["so-vu-chay"] == 10 and upward.values["ty-le-hoc-tap"] == 90
        assert upward.file_ids == [report.signed_file_id]
        assert (parent.status, parent.on_time) == ("submitted", True)
        assert "Ủy ban nhân dân xã An Lạc: Đã rà soát" in upward.values["ghi-chu"]

    # The province consolidates the districts the same way.
    with session_scope(db_url) as session:
        province = consolidate(
            session, PROVINCE, "2027", "tong-hop-tinh", now=vn(2027, 10, 15, 9), settings=conf
        )
    assert province.aggregates["so-vu-chay"] == 10
    assert province.counts()["done_on_time"] == 1


def test_consolidation_is_idempotent(cycle_url, tmp_path):
    conf = lc_settings(tmp_path)
    with session_scope(cycle_url) as session:
        first = consolidate(
            session, DISTRICT, "2027", CONSOLIDATION, now=CONSOLIDATED_AT, settings=conf
        )
    with session_scope(cycle_url) as session:
        counts = (
            session.scalar(select(func.count(OutboxMessage.id))),
            session.scalar(select(func.count(Submission.id))),
            session.scalar(select(func.count(StoredFile.id))),
        )
        again = consolidate(
            session,
            DISTRICT,
            "2027",
            CONSOLIDATION,
            now=CONSOLIDATED_AT + dt.timedelta(hours=5),
            settings=conf,
        )
        assert not again.created and again.id == first.id
        assert again.markdown == first.markdown
        assert again.upward_submission_id == first.upward_submission_id
        assert (
            session.scalar(select(func.count(OutboxMessage.id))),
            session.scalar(select(func.count(Submission.id))),
            session.scalar(select(func.count(StoredFile.id))),
        ) == counts
        assert session.scalar(select(func.count(ConsolidatedReport.id))) == 1


def test_without_a_parent_instance_the_report_stays_home_with_a_warning(sqlite_url, tmp_path):
    prepared(sqlite_url)
    with session_scope(sqlite_url) as session:
        activate(session, DISTRICT, now=vn(2027, 1, 4))  # the province plan is not activated
        result = consolidate(
            session,
            DISTRICT,
            "2027",
            CONSOLIDATION,
            now=CONSOLIDATED_AT,
            settings=lc_settings(tmp_path),
        )
    assert result.upward_submission_id is None
    with session_scope(sqlite_url) as session:
        sent = approve_sign_send(session, result.id, lc_settings(tmp_path), CONSOLIDATED_AT)
    assert "activate the parent plan" in sent.warnings[0]
    assert result.counts()["open_overdue"] == 6
    assert Path(result.document_path).exists()


# ---------------------------------------------------------------- status


def test_status_table_four_states_and_terminal_colours(cycle_url):
    with session_scope(cycle_url) as session:
        rows = status_table(session, DISTRICT, "2027", today=dt.date(2027, 9, 12))
    by_unit = {(r.unit_id, r.deliverable_id): r for r in rows}
    assert by_unit[("xa-b", "bao-cao-nam")].state is State.DONE_LATE
    assert by_unit[("xa-b", "bao-cao-nam")].days_late == 2
    assert by_unit[("xa-moi", "bao-cao-nam")].state is State.OPEN_OVERDUE
    duty = by_unit[("ca-huyen", CONSOLIDATION)]
    assert (duty.state, duty.days_left) == (State.OPEN_WITHIN, 15)
    assert State.OPEN_WITHIN.label == "Chưa hoàn thành, còn hạn"

    plain = render_status(rows, color=False)
    assert "\033[" not in plain
    assert "Hoàn thành đúng hạn" in plain and "trễ 2 ngày" in plain and "còn 15 ngày" in plain
    coloured = render_status(rows, color=True)
    assert "\033[31m" in coloured and "\033[32m" in coloured and "\033[33m" in coloured


def test_cmd_status_prints_the_table(cycle_url, capsys, monkeypatch):
    monkeypatch.setenv("KEHOACH_NOW", "2027-09-12T09:00:00+07:00")
    args = types.SimpleNamespace(plan=DISTRICT, cycle=2027, database_url=cycle_url, color=False)
    assert cmd_status(args) == 0
    out = capsys.readouterr().out
    assert "Ủy ban nhân dân xã Quang Long mới" in out and "Chưa hoàn thành, quá hạn" in out
    missing = types.SimpleNamespace(plan="khong-co", cycle=None, database_url=cycle_url)
    assert cmd_status(missing) == NotFound.exit_code
    assert "khong-co" in capsys.readouterr().err


def test_status_as_of_a_day(cycle_url, capsys, monkeypatch):
    """--at counts the days from that day, whatever today is (e.g. the demo's 2023)."""
    from cli import main

    monkeypatch.setenv("KEHOACH_NOW", "2031-01-01T09:00:00+07:00")
    argv = ["--database-url", cycle_url, "status", DISTRICT, "--cycle", "2027", "--no-color"]
    assert main([*argv, "--at", "2027-09-12"]) == 0
    out = capsys.readouterr().out
    assert "12/9/2027" in out and "trễ 2 ngày" in out
    assert main([*argv, "--at", "12/9/2027"]) == 0  # as written in Vietnamese
    assert "trễ 2 ngày" in capsys.readouterr().out
    with pytest.raises(SystemExit) as usage:
        main([*argv, "--at", "31/2/2027"])
    assert usage.value.code == 2
    assert "'31/2/2027' không phải là ngày" in capsys.readouterr().err


def test_an_answer_not_taken_in_yet_is_in_the_report(sqlite_url, tmp_path):
    """xa-moi answered before the consolidation, but its intake had not run yet (the
    portal hands answers over in batches): the consolidation takes it in first."""
    prepared(sqlite_url)
    _run_cycle(sqlite_url)
    with session_scope(sqlite_url) as session:
        sid = record_submission(
            session,
            obligation(session, "xa-moi").id,
            values={**GOOD_REPORT, "so-vu-chay": "5"},
            now=vn(2027, 9, 27, 7, 59),
        ).id
    with session_scope(sqlite_url) as session:
        result = consolidate(
            session,
            DISTRICT,
            "2027",
            CONSOLIDATION,
            now=CONSOLIDATED_AT,
            settings=lc_settings(tmp_path),
        )
        assert result.aggregates["so-vu-chay"] == 15  # 4 + 0 + 1 + 2 + 3 + xa-moi's 5
        states = {r["unit_id"]: r["state"] for r in result.status_table}
        assert states["xa-moi"] == "done_late"
        assert session.get(Submission, sid).intake_done
        assert session.get(Obligation, obligation(session, "xa-moi").id).status == "submitted"


def test_an_answer_sent_after_the_consolidations_moment_makes_the_next_revision(
    sqlite_url, tmp_path
):
    """The consolidation runs as of 20/9 9:00 (its flow's moment); xa-moi's answer of
    9:01 is already recorded but not taken in. It is not this report's: left for intake,
    it then makes revision 2, which names it once. (Taken in by the consolidation, it was
    in revision 1 and yet counted as newer than it: a second, identical revision.)"""
    from engine.consolidation import follow_up

    prepared(sqlite_url)
    _run_cycle(sqlite_url)
    conf = lc_settings(tmp_path)
    with session_scope(sqlite_url) as session:
        sid = record_submission(
            session,
            obligation(session, "xa-moi").id,
            values={**GOOD_REPORT, "so-vu-chay": "5"},
            now=vn(2027, 9, 20, 9, 1),
        ).id
    with session_scope(sqlite_url) as session:
        first = consolidate(
            session, DISTRICT, "2027", CONSOLIDATION, now=vn(2027, 9, 20, 9), settings=conf
        )
        assert first.revision == 1 and first.aggregates["so-vu-chay"] == 10
        assert not session.get(Submission, sid).intake_done
    with session_scope(sqlite_url) as session:
        intake(session, sid, now=vn(2027, 9, 20, 9, 2))
    with session_scope(sqlite_url) as session:
        todo = follow_up(
            session, DISTRICT, "2027", CONSOLIDATION, now=vn(2027, 9, 20, 10), settings=conf
        )
        assert todo.result is not None and todo.result.revision == 2
        assert todo.result.aggregates["so-vu-chay"] == 15
        assert todo.result.submission_ids == [sid]
    with session_scope(sqlite_url) as session:
        again = follow_up(
            session, DISTRICT, "2027", CONSOLIDATION, now=vn(2027, 9, 20, 11), settings=conf
        )
        assert again.result is None and not again.needed


def test_returned_report_is_left_out_of_the_aggregates(cycle_url, tmp_path):
    from engine.lifecycle import review

    with session_scope(cycle_url) as session:
        target = obligation(session, "ca-huyen")
        latest = max(target.submissions, key=lambda s: s.version)
        review(
            session, latest.id, decision="return", reason="Sai số liệu", by="x", now=vn(2027, 9, 20)
        )
        result = consolidate(
            session,
            DISTRICT,
            "2027",
            CONSOLIDATION,
            now=CONSOLIDATED_AT,
            settings=lc_settings(tmp_path),
        )
        assert result.aggregates["so-vu-chay"] == 6  # 10 minus ca-huyen's 4
        states = {r["unit_id"]: r["state"] for r in result.status_table}
        assert states["ca-huyen"] == "open_overdue"
        assert session.get(Obligation, target.id).status == "pending"
