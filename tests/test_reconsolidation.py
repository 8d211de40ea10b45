"""Revisions of a consolidated report: reports that arrive or change after consolidation.

The district of tests/data/lifecycle reports by Friday 10/9/2027; the district police
consolidate by Monday 27/9 (25/9 is a Saturday) and hand the report to the province,
whose own deadline for it is Thursday 30/9.  Before 27/9 a report taken in after the
consolidation makes a new revision at once; after it, the consolidating unit gets one
notice per late report and revises by hand (``kehoach consolidate … --revise``).
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from sqlalchemy import func, select

from cli import main
from engine.consolidation import (
    LATE_NOTICE,
    consolidate,
    follow_up,
    pending_follow_ups,
    stale_consolidations,
)
from engine.errors import NotFound
from engine.lifecycle import activate, intake, record_submission
from engine.store import session_scope
from engine.store.models import (
    AuditEvent,
    ConsolidatedReport,
    OutboxMessage,
    StoredFile,
    Submission,
)
from notifications.render import render_parts
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

UNITS = ("ca-huyen", "phong-vh", "phong-kt", "xa-a", "xa-b", "xa-moi")
AN_LAC, QUANG_LONG = "Ủy ban nhân dân xã An Lạc", "Ủy ban nhân dân xã Quang Long mới"


def _send(url: str, unit: str, moment: dt.datetime, incidents: str, take_in: bool = True) -> int:
    with session_scope(url) as session:
        submission = record_submission(
            session,
            obligation(session, unit).id,
            values={**GOOD_REPORT, "so-vu-chay": incidents},
            now=moment,
        )
        if take_in:
            intake(session, submission.id, now=moment)
        return submission.id


def _activated(url: str) -> None:
    prepared(url)
    with session_scope(url) as session:
        activate(session, PROVINCE, now=vn(2027, 1, 4))
        activate(session, DISTRICT, now=vn(2027, 1, 4))


def _reports(session) -> list[ConsolidatedReport]:
    return list(session.scalars(select(ConsolidatedReport).order_by(ConsolidatedReport.revision)))


def _frozen(report: ConsolidatedReport) -> tuple:
    return (
        report.id,
        report.revision,
        report.aggregates,
        report.status_table,
        report.document_path,
        report.document_file_id,
        report.created_at,
        report.upward_submission_id,
        Path(report.document_path).read_bytes(),
    )


def _counts(session) -> tuple[int, ...]:
    return tuple(
        session.scalar(select(func.count(model.id)))
        for model in (ConsolidatedReport, Submission, OutboxMessage, StoredFile, AuditEvent)
    )


def _audits(session, action: str) -> list[AuditEvent]:
    return list(
        session.scalars(
            select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.id)
        )
    )


# ---------------------------------------------------------------- before the due date


def test_a_corrected_report_after_an_early_consolidation_makes_revision_2(db_url, tmp_path):
    conf = lc_settings(tmp_path)
    _activated(db_url)
    for day, unit in enumerate(UNITS, start=4):  # 4/9 … 9/9, every unit on time
        _send(db_url, unit, vn(2027, 9, day), "2")
    with session_scope(db_url) as session:  # early: every unit has answered
        first = consolidate(
            session, DISTRICT, "2027", CONSOLIDATION, now=vn(2027, 9, 9, 16), settings=conf
        )
        assert first.revision == 1 and first.aggregates["so-vu-chay"] == 12
        assert stale_consolidations(session, DISTRICT, dt.date(2027, 9, 9)) == []
        approve_sign_send(session, first.id, conf, vn(2027, 9, 9, 16, 30))
        frozen = _frozen(first.report)

    # xa-a corrects its figures before its own deadline (10/9).
    corrected = _send(db_url, "xa-a", vn(2027, 9, 10, 10), "7")
    with session_scope(db_url) as session:
        assert stale_consolidations(session, DISTRICT, dt.date(2027, 9, 10)) == [
            ("2027", CONSOLIDATION, [corrected])
        ]
        [todo] = pending_follow_ups(session, DISTRICT, dt.date(2027, 9, 10))
        assert todo.automatic and todo.due_date == dt.date(2027, 9, 27)
        done = follow_up(
            session, DISTRICT, "2027", CONSOLIDATION, now=vn(2027, 9, 10, 10, 5), settings=conf
        )
    second = done.result
    assert done.automatic and second is not None and second.created
    with session_scope(db_url) as session:
        sent = approve_sign_send(session, second.id, conf, vn(2027, 9, 10, 10, 30))
        second.report = session.get(ConsolidatedReport, second.id)
        assert second.report.number_text == "02/BC-UBND"
    assert second.revision == 2 and second.replaces_id == first.id
    assert second.submission_ids == [corrected]
    assert second.aggregates["so-vu-chay"] == 17  # 12 - 2 + 7
    assert sent.upward_refused is None and not second.warnings and not sent.warnings

    # The document says what it replaces and what changed.
    path = Path(second.document_path)
    assert path.name.endswith("-lan-2.docx") and path != Path(first.document_path)
    text = docx_text(str(path))
    for expected in (
        "Báo cáo này thay thế báo cáo lần 1 ngày 9/9/2027.",
        "Những điểm thay đổi so với báo cáo trước:",
        f"{AN_LAC} gửi lại báo cáo ngày 10/9/2027 (phiên bản 2)",
        "Số vụ cháy: 12 vụ thành 17 vụ",
        "Hạ Lang, ngày 10 tháng 9 năm 2027",
    ):
        assert expected in text, expected
    assert "thay thế báo cáo lần 1" in second.markdown

    with session_scope(db_url) as session:
        # The consolidation point's obligation: a second version, still on time.
        duty = obligation(session, "ca-huyen", CONSOLIDATION)
        versions = [(s.version, s.source, s.file_ids) for s in duty.submissions]
        assert versions == [
            (1, "consolidation", [first.document_file_id]),
            (2, "consolidation", [second.document_file_id]),
        ]
        assert (duty.status, duty.on_time) == ("submitted", True)

        # One 'consolidated' email per revision.
        mails = outbox(session, "consolidated")
        assert [m.idempotency_key for m in mails] == [
            f"obl:{duty.id}:consolidated:",
            f"obl:{duty.id}:consolidated:lan-2",
        ]
        subject, body, html = render_parts("consolidated", mails[1].context)
        assert "(lần 2)" in subject and len(subject) < 80
        assert (
            "Đây là báo cáo lần 2" in body
            and "9/9/2027" in body
            and "Số vụ cháy: 12 vụ thành 17 vụ" in body
        )
        assert AN_LAC in html and mails[1].context["number"] == "02/BC-UBND"

        [audit] = _audits(session, "cycle.reconsolidated")
        assert audit.data["revision"] == 2 and audit.data["submission_ids"] == [corrected]
        assert audit.data["replaces_report_id"] == first.id

        # Handed upward as a new version of the district's submission to the province.
        parent = obligation(session, "ubnd-huyen", "bao-cao-huyen", plan_id=PROVINCE)
        upward = [(s.version, s.source, s.values.get("so-vu-chay")) for s in parent.submissions]
        assert upward == [(1, "upward", 12), (2, "upward", 17)]
        assert second.upward_submission_id == parent.submissions[1].id

        # Revision 1 is kept as it was.
        [one, two] = _reports(session)
        assert _frozen(one) == frozen and two.id == second.id

        # Idempotent: nothing new, nothing written.
        before = _counts(session)
        again = follow_up(
            session, DISTRICT, "2027", CONSOLIDATION, now=vn(2027, 9, 10, 11), settings=conf
        )
        assert again.result is None and not again.automatic and again.notices == []
        revised = consolidate(
            session,
            DISTRICT,
            "2027",
            CONSOLIDATION,
            now=vn(2027, 9, 10, 11),
            settings=conf,
            revise=True,
        )
        plain = consolidate(
            session, DISTRICT, "2027", CONSOLIDATION, now=vn(2027, 9, 10, 11), settings=conf
        )
        assert (revised.created, revised.revision, plain.created, plain.id) == (
            False,
            2,
            False,
            second.id,
        )
        # the stored revision as approved: its number, no draft mark
        assert revised.markdown == plain.markdown and revised.changes == second.changes
        assert "Số: 02/BC-UBND" in revised.markdown and "DỰ THẢO" not in revised.markdown
        assert pending_follow_ups(session, DISTRICT, dt.date(2027, 9, 11)) == []
        session.flush()
        assert _counts(session) == before


# ---------------------------------------------------------------- after the due date


def test_an_answer_sent_before_the_report_but_stored_after_it_counts_as_new(sqlite_url, tmp_path):
    """Newer is what the report does not hold, not a later time: xa-moi's request began
    at 16:00 but its row was written after the 16:05 consolidation (it waited for the
    database's write lock); the next revision must take it in."""
    conf = lc_settings(tmp_path)
    _activated(sqlite_url)
    for day, unit in enumerate(UNITS[:-1], start=4):  # every unit but xa-moi
        _send(sqlite_url, unit, vn(2027, 9, day), "2")
    with session_scope(sqlite_url) as session:
        first = consolidate(
            session, DISTRICT, "2027", CONSOLIDATION, now=vn(2027, 9, 9, 16, 5), settings=conf
        )
        assert first.aggregates["so-vu-chay"] == 10
    waited = _send(sqlite_url, "xa-moi", vn(2027, 9, 9, 16), "5")  # stamped before 16:05
    with session_scope(sqlite_url) as session:
        assert stale_consolidations(session, DISTRICT, dt.date(2027, 9, 9)) == [
            ("2027", CONSOLIDATION, [waited])
        ]
        done = follow_up(
            session, DISTRICT, "2027", CONSOLIDATION, now=vn(2027, 9, 9, 16, 10), settings=conf
        )
        assert done.result is not None and done.result.revision == 2
        assert done.result.aggregates["so-vu-chay"] == 15
        assert stale_consolidations(session, DISTRICT, dt.date(2027, 9, 9)) == []


@pytest.fixture
def home(tmp_path, monkeypatch):
    """KEHOACH_HOME for the CLI (reports next to the test's), settings re-read."""
    from engine.config import settings

    monkeypatch.setenv("KEHOACH_HOME", str(tmp_path))
    monkeypatch.setenv("KEHOACH_PORTAL_SECRET", "kehoach-test-secret-7f3a9c2e4b1d8f60")
    settings.cache_clear()
    yield tmp_path
    settings.cache_clear()


def _cli(url: str, *argv: str) -> int:
    return main(["--database-url", url, *argv])


@pytest.mark.parametrize(
    ("revise_at", "handed_upward"),
    [("2027-09-29T09:00:00+07:00", True), ("2027-10-01T09:00:00+07:00", False)],
    ids=["before-the-parent-deadline", "after-the-parent-deadline"],
)
def test_a_late_report_after_the_due_date_is_noticed_once_then_revised_by_hand(
    db_url, home, monkeypatch, capsys, revise_at, handed_upward
):
    conf = lc_settings(home)
    _activated(db_url)
    for day, unit in enumerate(UNITS[:-1], start=4):  # xa-moi does not answer in time
        _send(db_url, unit, vn(2027, 9, day), "2")
    with session_scope(db_url) as session:  # on the due date
        first = consolidate(
            session, DISTRICT, "2027", CONSOLIDATION, now=vn(2027, 9, 27, 8), settings=conf
        )
        assert first.counts()["open_overdue"] == 1
        approve_sign_send(session, first.id, conf, vn(2027, 9, 27, 8, 30))
        frozen = _frozen(first.report)

    late = _send(db_url, "xa-moi", vn(2027, 9, 28, 10), "5")
    with session_scope(db_url) as session:
        [todo] = pending_follow_ups(session, DISTRICT, dt.date(2027, 9, 28))
        assert (todo.automatic, todo.unnoticed) == (False, [late])
        done = follow_up(
            session, DISTRICT, "2027", CONSOLIDATION, now=vn(2027, 9, 28, 10, 5), settings=conf
        )
        assert done.result is None and done.notices == [late]
        assert len(_reports(session)) == 1  # no automatic revision after the due date

        # One notice to the consolidating unit, in Vietnamese, saying what to do.
        duty = obligation(session, "ca-huyen", CONSOLIDATION)
        [notice] = outbox(session, LATE_NOTICE)
        assert notice.idempotency_key == f"obl:{duty.id}:{LATE_NOTICE}:{late}"
        assert notice.to_addrs == ["ca.huyen@lc.example"]
        subject, body, html = render_parts(LATE_NOTICE, notice.context)
        assert QUANG_LONG in subject
        for text in (body, html):
            assert f"{QUANG_LONG}</strong> đã gửi" in text or f"{QUANG_LONG} đã gửi" in text
            assert "28/9/2027" in text and "sau báo cáo tổng hợp ngày" in text
            assert "27/9/2027" in text
            assert "kehoach consolidate lc-huyen --cycle 2027 --revise" in text
        assert "<script" not in html and html.count("<pre") == 1

        # Later calls (intake, the next sweeps) send nothing more.
        again = follow_up(
            session, DISTRICT, "2027", CONSOLIDATION, now=vn(2027, 9, 29, 7), settings=conf
        )
        assert again.notices == [] and again.result is None
        assert len(outbox(session, LATE_NOTICE)) == 1
        assert pending_follow_ups(session, DISTRICT, dt.date(2027, 9, 29)) == []
        assert stale_consolidations(session, DISTRICT, dt.date(2027, 9, 29)) == [
            ("2027", CONSOLIDATION, [late])
        ]
        [noticed] = _audits(session, "consolidation.late_report_noticed")
        assert noticed.data["submission_id"] == late

    # The consolidating unit decides to send a supplementary report.
    monkeypatch.setenv("KEHOACH_NOW", revise_at)
    assert _cli(db_url, "consolidate", DISTRICT, "--cycle", "2027", "--revise") == 0
    out = capsys.readouterr().out
    assert "lần 2" in out and f"thay đổi: {QUANG_LONG} gửi báo cáo ngày 28/9/2027" in out

    with session_scope(db_url) as session:
        [one, two] = _reports(session)
        assert two.approval == "draft" and len(outbox(session, "consolidated")) == 1
        at = dt.datetime.fromisoformat(revise_at).replace(tzinfo=vn(2027, 1, 1).tzinfo)
        approve_sign_send(session, two.id, conf, at)
    with session_scope(db_url) as session:
        [one, two] = _reports(session)
        assert _frozen(one) == frozen
        assert two.revision == 2 and two.aggregates["so-vu-chay"] == 15
        states = {row["unit_id"]: row["state"] for row in two.status_table}
        assert states["xa-moi"] == "done_late"
        text = docx_text(two.document_path)
        assert two.document_path.endswith("-lan-2.docx")
        assert "Báo cáo này thay thế báo cáo lần 1 ngày 27/9/2027." in text
        assert f"{QUANG_LONG} gửi báo cáo ngày 28/9/2027 (quá hạn)" in text

        duty = obligation(session, "ca-huyen", CONSOLIDATION)
        assert [(s.version, s.on_time) for s in duty.submissions] == [(1, True), (2, False)]
        assert (duty.status, duty.on_time) == ("submitted", True)  # done on time, as it was
        assert len(outbox(session, "consolidated")) == 2

        parent = obligation(session, "ubnd-huyen", "bao-cao-huyen", plan_id=PROVINCE)
        [audit] = [a for a in _audits(session, "report.sent") if a.data["report_id"] == two.id]
        if handed_upward:
            assert [s.version for s in parent.submissions] == [1, 2]
            assert two.upward_submission_id == parent.submissions[1].id
            assert audit.data["upward_submission_id"] == two.upward_submission_id
            assert audit.data["upward_refused"] is None
        else:  # the province's deadline (30/9) has passed: refused, recorded, no crash
            assert [s.version for s in parent.submissions] == [1]
            assert two.upward_submission_id is None
            assert "Đã quá hạn" in audit.data["upward_refused"]
            [refused] = _audits(session, "report.upward_refused")
            assert refused.obligation_id == parent.id and refused.data["revision"] == 2
        assert stale_consolidations(session, DISTRICT, dt.date(2027, 10, 2)) == []
        before = _counts(session)

    # Idempotent: nothing new since revision 2.
    assert _cli(db_url, "consolidate", DISTRICT, "--cycle", "2027", "--revise") == 0
    assert "không có báo cáo nào gửi sau lần này" in capsys.readouterr().out
    with session_scope(db_url) as session:
        assert _counts(session) == before


def test_consolidate_command_user_mistakes_exit_without_a_traceback(sqlite_url, home, capsys):
    _activated(sqlite_url)
    assert _cli(sqlite_url, "consolidate", "khong-co", "--cycle", "2027") == NotFound.exit_code
    assert _cli(sqlite_url, "consolidate", DISTRICT, "--cycle", "1999") == NotFound.exit_code
    assert (
        _cli(sqlite_url, "consolidate", DISTRICT, "--cycle", "2027", "--consolidation", "x")
        == NotFound.exit_code
    )
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert "khong-co" in err and "'1999'" in err and "no consolidation 'x'" in err
    with session_scope(sqlite_url) as session:
        assert _reports(session) == []


# ---------------------------------------------------------------- the flows


@pytest.mark.prefect
def test_intake_and_sweep_flows_revise_before_the_due_date(
    prefect_server,  # noqa: ARG001
    sqlite_url,
    home,
):
    import time

    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import TaskRunFilter, TaskRunFilterName

    from workflows.common import in_process_runs
    from workflows.intake import intake_flow
    from workflows.sweep import sweep_flow

    _activated(sqlite_url)
    for day, unit in enumerate(UNITS[:-1], start=4):
        _send(sqlite_url, unit, vn(2027, 9, day), "2")
    last = _send(sqlite_url, "xa-moi", vn(2027, 9, 9), "2", take_in=False)

    def take(submission_id: int, moment: dt.datetime) -> dict:
        return intake_flow(
            submission_id,
            now=moment.isoformat(),
            database_url=sqlite_url,
            dispatch=False,
            request_review=False,
        )

    with in_process_runs():
        first = take(last, vn(2027, 9, 9))  # the last report: early consolidation
        assert [c["consolidated"][0]["revision"] for c in first["consolidated"]] == [1]
        assert first["reconsolidated"] == []

        corrected = _send(sqlite_url, "xa-a", vn(2027, 9, 10, 9), "7", take_in=False)
        second = take(corrected, vn(2027, 9, 10, 9))  # intake revises at once
        [revised] = second["reconsolidated"]
        assert revised["automatic"] and revised["revision"]["revision"] == 2
        assert revised["revision"]["created"] and revised["submission_ids"] == [corrected]

        # A correction taken in without the flow (the portal's fallback) waits for the sweep.
        _send(sqlite_url, "xa-b", vn(2027, 9, 10, 15), "4")
        swept = sweep_flow(DISTRICT, now=vn(2027, 9, 11, 7).isoformat(), database_url=sqlite_url)
        [by_sweep] = swept["reconsolidated"]
        assert by_sweep["revision"]["revision"] == 3
        assert swept["consolidated"] == []
        again = sweep_flow(DISTRICT, now=vn(2027, 9, 11, 8).isoformat(), database_url=sqlite_url)
        assert again["reconsolidated"] == []

    with session_scope(sqlite_url) as session:
        reports = _reports(session)
        assert [r.revision for r in reports] == [1, 2, 3]
        assert [r.aggregates["so-vu-chay"] for r in reports] == [12, 17, 19]
        # Each revision is a draft for the consolidating unit; a newer one replaces the
        # one before it on its way; nothing went upward without approval.
        assert outbox(session, "consolidated") == []
        keys = [m.idempotency_key.rsplit(":", 1)[-1] for m in outbox(session, "report_draft")]
        assert keys == ["r1", "r2", "r3"]
        assert [r.approval for r in reports] == ["superseded", "superseded", "draft"]

    wanted = f"tổng hợp lại · {DISTRICT} · "
    with get_client(sync_client=True) as client:
        deadline = time.monotonic() + 15  # task runs are reported through events
        while True:
            names = {
                t.name
                for t in client.read_task_runs(
                    task_run_filter=TaskRunFilter(name=TaskRunFilterName(like_=wanted))
                )
            }
            if len(names) >= 1 or time.monotonic() > deadline:
                break
            time.sleep(0.5)
    assert any(name.startswith(wanted) for name in names), names
