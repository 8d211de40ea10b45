"""The consolidated report's way upward (engine.approval), without a browser: the register
of numbers under concurrency, the signed file's checks, the step reminders and the
letter to the head, the CLI."""

from __future__ import annotations

import datetime as dt
import io
import threading

import pytest
from pypdf import PdfWriter
from sqlalchemy import select

from cli.main import main
from engine.approval import (
    ApprovalError,
    approve,
    check_signed_pdf,
    follow_up_approvals,
    save_narrative,
    send_upward,
    upload_signed,
)
from engine.consolidation import consolidate
from engine.lifecycle import activate
from engine.register_numbers import register_of, retrying, take_number
from engine.states import IllegalTransition, ReportApproval
from engine.store import session_scope
from engine.store.models import ConsolidatedReport, Cycle
from engine.transitions import move_report
from tests.approval_support import NARRATIVE
from tests.lifecycle_factory import (
    CONSOLIDATION,
    DISTRICT,
    lc_settings,
    outbox,
    prepared,
    vn,
)
from tests.test_portal_support import minimal_pdf


def _draft(url: str, tmp_path, now: dt.datetime | None = None) -> int:  # type: ignore[no-untyped-def]
    prepared(url)
    with session_scope(url) as session:
        activate(session, DISTRICT, now=vn(2027, 1, 4))
        result = consolidate(
            session,
            DISTRICT,
            "2027",
            CONSOLIDATION,
            now=now or vn(2027, 9, 12, 8),
            settings=lc_settings(tmp_path),
        )
    return result.id


def test_numbers_are_given_in_order_once_each_under_concurrency(db_url, tmp_path):
    """Twelve approvals at once on one register: 1…12, no gap, none twice."""
    report_id = _draft(db_url, tmp_path)
    with session_scope(db_url) as session:
        first = session.get(ConsolidatedReport, report_id)
        ids = []
        for revision in range(2, 14):
            extra = ConsolidatedReport(
                cycle_id=first.cycle_id,
                consolidation_id=first.consolidation_id,
                revision=revision,
                by_unit_id=first.by_unit_id,
                aggregates={},
                status_table=[],
                created_at=first.created_at,
            )
            session.add(extra)
            session.flush()
            ids.append(extra.id)
    start = threading.Barrier(len(ids))
    got: dict[int, int] = {}
    errors: list[BaseException] = []

    def one(rid: int) -> None:
        try:
            start.wait()
            got[rid] = retrying(
                db_url,
                lambda s: (
                    take_number(
                        s,
                        issuer_id="ubnd-huyen",
                        year=2027,
                        symbol="BC-UBND",
                        report_id=rid,
                        by="test",
                        now=vn(2027, 9, 12),
                    ).number
                ),
                attempts=30,
            )
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=one, args=(rid,)) for rid in ids]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == []
    assert sorted(got.values()) == list(range(1, len(ids) + 1))
    with session_scope(db_url) as session:
        register = register_of(session, "ubnd-huyen", 2027)
        assert [r.number for r in register] == list(range(1, len(ids) + 1))
        assert {r.report_id for r in register} == set(ids)
        # A report asking again keeps its number; another body's register starts at 1.
        again = take_number(
            session,
            issuer_id="ubnd-huyen",
            year=2027,
            symbol="BC-UBND",
            report_id=ids[0],
            by="test",
            now=vn(2027, 9, 13),
        )
        assert again.number == got[ids[0]]
        other = take_number(
            session,
            issuer_id="ca-huyen",
            year=2027,
            symbol="BC-CAH",
            report_id=report_id,
            by="test",
            now=vn(2027, 9, 13),
        )
        assert other.number == 1


def _encrypted_pdf() -> bytes:
    writer = PdfWriter()
    writer.add_blank_page(width=200, height=200)
    writer.encrypt("mat-khau")
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


@pytest.mark.parametrize(
    ("data", "why"),
    [
        (b"", "tệp rỗng"),
        (b"\x89PNG\r\n\x1a\n", "không phải tệp PDF"),
        (b"%PDF-1.4\nrubbish without objects", "tệp PDF hỏng"),
        (_encrypted_pdf(), "có mật khẩu"),
        (minimal_pdf() + b" " * 2048, "quá giới hạn"),
    ],
)
def test_a_signed_file_that_is_not_a_readable_pdf_is_refused(data, why):
    assert why in check_signed_pdf(data, max_bytes=len(minimal_pdf()) + 1024)


def test_a_readable_pdf_is_accepted():
    assert check_signed_pdf(minimal_pdf(), max_bytes=10_000) == ""


def test_steps_only_in_order_and_nothing_upward_before_send(sqlite_url, tmp_path):
    conf = lc_settings(tmp_path)
    report_id = _draft(sqlite_url, tmp_path)
    now = vn(2027, 9, 12, 10)
    with session_scope(sqlite_url) as session:
        with pytest.raises(ApprovalError, match="chưa viết các mục"):
            approve(session, report_id, by="t", now=now, conf=conf)
        with pytest.raises(ApprovalError, match="cần 'Đã ký, chờ gửi'"):
            send_upward(session, report_id, by="t", now=now, conf=conf)
        with pytest.raises(ApprovalError, match="cần 'Đã duyệt và cấp số, chờ ký'"):
            upload_signed(
                session, report_id, minimal_pdf(), name="x.pdf", by="t", now=now, conf=conf
            )
        report = session.get(ConsolidatedReport, report_id)
        with pytest.raises(IllegalTransition):
            move_report(session, report, ReportApproval.SENT, at=now, action=None, plan_id=None)
        assert outbox(session, "consolidated") == []
        assert report.upward_submission_id is None


def test_reminders_at_each_step_then_the_head_near_the_upward_date(sqlite_url, tmp_path):
    """The upward date is 27/9/2027 (25/9 is a Saturday): review by 24/9, the head from
    25/9, sign by 26/9. The letter goes to the head of Công an huyện, not to the office."""
    conf = lc_settings(tmp_path)
    report_id = _draft(sqlite_url, tmp_path)
    with session_scope(sqlite_url) as session:
        assert follow_up_approvals(session, now=vn(2027, 9, 23, 7)) == 0
        assert follow_up_approvals(session, now=vn(2027, 9, 24, 7)) == 1
        assert follow_up_approvals(session, now=vn(2027, 9, 24, 8)) == 0  # once per step
        mails = outbox(session, "report_draft")
        assert [m.idempotency_key.rsplit(":", 1)[-1] for m in mails] == ["r1", "r1-nhac-duyet"]
        assert mails[1].to_addrs == ["ca.huyen@lc.example"]
        first = dict(mails[0].context)
    with session_scope(sqlite_url) as session:
        save_narrative(session, report_id, NARRATIVE, by="t", now=vn(2027, 9, 25, 7))
        approve(session, report_id, by="t", now=vn(2027, 9, 25, 7), conf=conf)
        follow_up_approvals(session, now=vn(2027, 9, 25, 8))
        [head] = [
            m
            for m in outbox(session, "report_draft")
            if m.idempotency_key.endswith("-bao-thu-truong")
        ]
        assert head.to_addrs == ["truong.cah@lc.example"]  # its head, a person
        assert head.cc_addrs == ["ca.huyen@lc.example"]
        assert head.context["report"]["number"] == "01/BC-UBND"
    from notifications.render import render_parts

    subject, body, _html = render_parts("report_draft", head.context)
    assert body.startswith("Kính gửi: Đồng chí Trưởng Công an huyện Đàm Văn Cường")
    assert "Kính đề nghị đồng chí xem xét" in body and len(subject) < 80
    # The draft's first mail, like every other, says its deadline first.
    subject, body, html = render_parts("report_draft", first)
    assert subject.startswith("Hạn duyệt ") and "chờ duyệt" in subject, subject
    # "trước hết" reads "first of all": each step's last day is said "chậm nhất ngày".
    assert "duyệt và cấp số: chậm nhất ngày 24/9/2027" in body
    assert "trước hết" not in body + html
    # The duty's title already says "Báo cáo tổng hợp: …": no mail says it twice running.
    for stage in ({}, {"stage": "nhac-duyet"}, {"stage": "nhac-ky-gui"}, {"stage": "thu-truong"}):
        _s, text, page = render_parts("report_draft", {**first, **stage})
        assert "tổng hợp “Báo cáo tổng hợp" not in text and 'tổng hợp "Báo cáo tổng hợp' not in text
        assert "tổng hợp <strong>Báo cáo tổng hợp" not in page
        assert text.count("Báo cáo tổng hợp: ") == 1, text


def test_a_draft_written_on_the_upward_date_is_never_asked_for_by_an_earlier_day(
    sqlite_url, tmp_path
):
    """Written on 27/9/2027, the upward date itself: each step is due that day, not on the
    24/9 and 26/9 already gone (the demo's draft of 25/9 asked for review "by 22/9")."""
    _draft(sqlite_url, tmp_path, now=vn(2027, 9, 27, 8))
    with session_scope(sqlite_url) as session:
        [first] = outbox(session, "report_draft")
        assert first.context["steps"] == {
            "review_by": "27/9/2027",
            "sign_by": "27/9/2027",
            "send_by": "27/9/2027",
        }
        follow_up_approvals(session, now=vn(2027, 9, 27, 9))
        steps = [m.idempotency_key.rsplit(":", 1)[-1] for m in outbox(session, "report_draft")]
    assert steps == ["r1", "r1-nhac-duyet", "r1-bao-thu-truong"]
    from notifications.render import render_parts

    subject, body, _html = render_parts("report_draft", first.context)
    assert subject.startswith("Hạn duyệt 27/9") and "chậm nhất ngày 24/9/2027" not in body


def test_the_cli_takes_each_step(sqlite_url, tmp_path, monkeypatch, capsys):
    conf = lc_settings(tmp_path)
    _draft(sqlite_url, tmp_path)
    monkeypatch.setenv("KEHOACH_HOME", str(tmp_path))
    monkeypatch.setenv("KEHOACH_NOW", "2027-09-13T09:00:00+07:00")
    monkeypatch.setenv("KEHOACH_SMTP_PORT", "1")  # nothing listens: mail stays queued
    base = ["--database-url", sqlite_url, "report", DISTRICT]
    cycle = ["--cycle", "2027"]
    assert main([*base, *cycle]) == 0
    assert "Dự thảo, chờ duyệt" in capsys.readouterr().out
    assert main([*base, "approve", *cycle, "--ket-qua", "Tốt."]) == 1
    assert "chưa viết các mục: Tồn tại, hạn chế" in capsys.readouterr().err
    sections = [f"--{k.replace('_', '-')}={v}" for k, v in NARRATIVE.items()]
    assert main([*base, "approve", *cycle, *sections]) == 0
    assert "số: 01/BC-UBND" in capsys.readouterr().out
    signed = tmp_path / "da-ky.pdf"
    signed.write_bytes(minimal_pdf())
    assert main([*base, "sign", str(tmp_path / "khong-co.pdf"), *cycle]) == 1
    assert "không có tệp này" in capsys.readouterr().err
    assert main([*base, "sign", str(signed), *cycle]) == 0
    assert main([*base, "send", *cycle]) == 0
    assert "Đã gửi cấp trên" in capsys.readouterr().out
    with session_scope(sqlite_url) as session:
        [mail] = outbox(session, "consolidated")
        assert mail.context["number"] == "01/BC-UBND"
        cycle = session.scalar(select(Cycle))
        assert cycle is not None
    assert conf.reports_dir.exists()
