"""Delivery through a real SMTP server on loopback; messages are parsed back and checked."""

from __future__ import annotations

import argparse
import datetime as dt
import email
import email.policy
import time

import pytest
from sqlalchemy import select

from cli.mail import cmd_outbox
from engine.outbox import enqueue_for_obligation
from engine.store.db import migrate, session_scope
from engine.store.models import AuditEvent, Obligation, OutboxMessage
from notifications import outcomes as outcomes_module
from notifications.dispatch import RetryPolicy, dispatch_pending_sync
from notifications.mailbox import start_mailbox_server
from tests.notifications_factory import (
    CAH_EMAIL,
    UNIT_EMAIL,
    add_obligation,
    make_settings,
    make_world,
    smtp_settings,
)

T0 = dt.datetime(2028, 8, 1, 1, 0, tzinfo=dt.UTC)  # 08:00 in Hà Nội
POLICY = RetryPolicy(base_seconds=60, max_seconds=600, lease_seconds=600)
ADMIN = "quantri@halang.example"


@pytest.fixture
def url(sqlite_url):
    migrate(sqlite_url)
    return sqlite_url


def setup_obligation(url: str, **world) -> int:
    with session_scope(url) as session:
        return make_world(session, **world).obligation.id


def enqueue(url, conf, obligation_id, *kinds, extra=None, now=T0):
    """Enqueue (kind, step) pairs or bare kinds; return their ids in order."""
    ids = []
    with session_scope(url) as session:
        obligation = session.get(Obligation, obligation_id)
        for item in kinds:
            kind, step = item if isinstance(item, tuple) else (item, "")
            row = enqueue_for_obligation(
                session, obligation, kind, step, extra=extra, now=now, settings=conf
            )
            ids.append(row.id)
    return ids


def run(url, conf, now=T0, **kwargs):
    return dispatch_pending_sync(url, conf, now=now, policy=POLICY, **kwargs)


def rows(url) -> dict[int, OutboxMessage]:
    with session_scope(url) as session:
        return {r.id: r for r in session.scalars(select(OutboxMessage))}


def by_kind(server, kind):
    return [m for m in server.messages if m.message["X-Kehoach-Kind"] == kind]


# ---------------------------------------------------------------- a correct message


def test_assignment_arrives_correct_in_every_detail(url, smtp_server):
    conf = smtp_settings(smtp_server)
    obligation_id = setup_obligation(url)
    [row_id] = enqueue(url, conf, obligation_id, "assignment")
    stats = run(url, conf)
    assert (stats.sent, stats.retried, stats.failed) == (1, 0, 0)

    [received] = smtp_server.wait_for(1)
    msg, raw = received.message, received.raw
    assert received.rcpt_tos == [UNIT_EMAIL]
    assert received.mail_from == "kehoach@halang.example"
    # Subject: Vietnamese when decoded, RFC 2047 encoded words on the wire.
    # The deadline first, the matter, the plan; under 80 characters.
    assert (
        msg["Subject"]
        == "Hạn 11/9: Báo cáo kết quả công tác PCCC và CNCH năm 2028 — Kế hoạch 134/KH-UBND"
    )
    raw_headers = raw.split(b"\r\n\r\n", 1)[0]
    assert b"=?utf-8?" in raw_headers
    assert max(raw_headers) < 0x80, "headers must be 7-bit ASCII"
    # From: named as the consolidating agency the report goes through; our address.
    assert msg["From"].addresses[0].display_name == "Công an huyện Hạ Lang"
    assert msg["From"].addresses[0].addr_spec == "kehoach@halang.example"
    assert msg["To"].addresses[0].display_name == "Phòng Văn hóa và Thông tin"
    assert msg["Date"].datetime.utcoffset() == dt.timedelta(hours=7)
    assert msg["Date"].datetime == T0
    assert msg["Reply-To"].addresses[0].addr_spec == "pccc.cah@halang.example"
    assert msg["Auto-Submitted"] == "auto-generated"

    text = msg.get_body(("plain",)).get_content()
    html = msg.get_body(("html",)).get_content()
    assert "Kính gửi: Phòng Văn hóa và Thông tin" in text
    assert "1. Tuyên truyền pháp luật về PCCC trên đài." in text
    assert "<li>Hưởng ứng Ngày toàn dân PCCC 04/10.</li>" in html
    assert "Thứ Hai, 11/9/2028" in html and "http://127.0.0.1:8700/o/" in html

    [ics] = [p for p in msg.iter_attachments() if p.get_content_type() == "text/calendar"]
    assert ics.get_param("method") == "PUBLISH"
    calendar = ics.get_content()
    assert "DTSTART;VALUE=DATE:20280911\r\n" in calendar
    assert "DTEND;VALUE=DATE:20280912\r\n" in calendar
    assert f"UID:obligation-{obligation_id}@halang.example" in calendar
    unfolded = calendar.replace("\r\n ", "")
    assert "SUMMARY:Hạn gửi: Báo cáo kết quả công tác PCCC và CNCH (134/KH-UBND)" in unfolded
    assert all(len(line.encode()) <= 75 for line in calendar.split("\r\n"))

    with session_scope(url) as session:
        row = session.get(OutboxMessage, row_id)
        assert row.status == "sent" and row.attempts == 1 and row.sent_at == T0
        assert row.raw.rstrip(b"\r\n") == raw.rstrip(b"\r\n"), "raw holds the bytes sent"
        assert msg["Message-ID"] == row.message_id


def test_reminder_and_overdue_thread_under_the_assignment(url, smtp_server):
    conf = smtp_settings(smtp_server)
    obligation_id = setup_obligation(url)
    enqueue(url, conf, obligation_id, "assignment", ("reminder", "7"), "overdue")
    assert run(url, conf).sent == 3
    smtp_server.wait_for(3)
    [assignment] = by_kind(smtp_server, "assignment")
    [reminder] = by_kind(smtp_server, "reminder")
    [overdue] = by_kind(smtp_server, "overdue")
    first = assignment.message["Message-ID"]
    assert assignment.message["In-Reply-To"] is None
    assert reminder.message["In-Reply-To"] == first == reminder.message["References"]
    assert overdue.message["In-Reply-To"] == first
    # queued as the 7-days-before step, sent on 1/8 for 11/9: the count of the day it goes
    assert "còn 41 ngày" in reminder.message["Subject"]
    assert not [p for p in reminder.message.iter_attachments()], "only assignments carry .ics"


def test_starttls_and_auth(url, smtp_server_tls):
    conf = smtp_settings(smtp_server_tls)
    assert conf.smtp_security == "starttls"
    obligation_id = setup_obligation(url)
    enqueue(url, conf, obligation_id, "assignment", ("reminder", "3"))
    stats = run(url, conf)
    assert (stats.sent, stats.failed) == (2, 0)
    assert len(smtp_server_tls.wait_for(2)) == 2
    assert any(ok and login == "kehoach-mailer" for _, login, ok in smtp_server_tls.auth_attempts)


def test_wrong_password_is_retried_not_failed(url, smtp_server_tls):
    """AUTH refused is our configuration, not the message: keep it, show the error."""
    conf = smtp_settings(smtp_server_tls, smtp_password="wrong")
    obligation_id = setup_obligation(url)
    [row_id] = enqueue(url, conf, obligation_id, "assignment")
    stats = run(url, conf)
    assert (stats.sent, stats.retried, stats.failed) == (0, 1, 0)
    row = rows(url)[row_id]
    assert row.status == "pending" and "535" in row.last_error
    assert run(url, smtp_settings(smtp_server_tls), now=T0 + dt.timedelta(hours=1)).sent == 1


def test_connections_are_reused(url, smtp_server):
    conf = smtp_settings(smtp_server, smtp_connections=2)
    obligation_id = setup_obligation(url)
    enqueue(url, conf, obligation_id, *[("reminder", str(d)) for d in range(1, 9)])
    stats = run(url, conf)
    assert stats.sent == 8
    assert stats.connections == 2  # two connections for eight messages
    assert len({m.peer for m in smtp_server.wait_for(8)}) == 2


def test_rate_limit_spaces_messages(url, smtp_server):
    conf = smtp_settings(smtp_server, smtp_rate_per_second=20.0, smtp_connections=4)
    obligation_id = setup_obligation(url)
    enqueue(url, conf, obligation_id, *[("reminder", str(d)) for d in range(30)])
    started = time.monotonic()
    assert run(url, conf).sent == 30
    # A burst of 20 (one second's worth), then 20 per second: 10 more need >= 0.5 s.
    assert time.monotonic() - started >= 0.45


# ---------------------------------------------------------------- failures


def test_server_down_at_start_then_back(url, smtp_server):
    conf = smtp_settings(smtp_server)
    obligation_id = setup_obligation(url)
    ids = enqueue(url, conf, obligation_id, "assignment", ("reminder", "7"), "overdue")
    smtp_server.stop()
    stats = run(url, conf)
    assert (stats.sent, stats.retried, stats.failed) == (0, 3, 0)
    for row in rows(url).values():
        assert row.status == "pending"
        assert row.next_attempt_at > T0
        assert "cannot connect" in row.last_error
        assert row.give_up_at == T0 + dt.timedelta(hours=conf.smtp_give_up_hours)
    # Not due yet: nothing is tried before the backoff.
    assert run(url, conf, now=T0 + dt.timedelta(seconds=10)).claimed == 0

    smtp_server.start()
    stats = run(url, conf, now=T0 + dt.timedelta(minutes=5))
    assert (stats.sent, stats.retried) == (3, 0)
    assert {m.message["Message-ID"] for m in smtp_server.wait_for(3)} == {
        rows(url)[i].message_id for i in ids
    }


def test_server_down_until_give_up_fails_and_escalates(url, smtp_server):
    conf = smtp_settings(smtp_server, smtp_give_up_hours=1.0)
    obligation_id = setup_obligation(url)
    [row_id] = enqueue(url, conf, obligation_id, "assignment")
    smtp_server.stop()
    assert run(url, conf).retried == 1
    stats = run(url, conf, now=T0 + dt.timedelta(hours=2))
    assert stats.failed == 1
    row = rows(url)[row_id]
    assert row.status == "failed" and row.last_error.startswith("gave up after 2 attempts")
    notices = [r for r in rows(url).values() if r.kind == "delivery_failure"]
    assert [n.to_addrs for n in notices] == [[conf.admin_email]]


@pytest.mark.parametrize("code", [421, 451])
def test_temporary_answers_are_retried_then_delivered(url, smtp_server, code):
    conf = smtp_settings(smtp_server, smtp_connections=1)
    obligation_id = setup_obligation(url)
    first, second = enqueue(url, conf, obligation_id, "assignment", ("reminder", "7"))
    smtp_server.fail_next(code=code, count=1)
    stats = run(url, conf)
    assert (stats.sent, stats.retried, stats.failed) == (1, 1, 0)
    row = rows(url)[first]
    assert row.status == "pending" and row.smtp_code == code and row.attempts == 1
    assert row.next_attempt_at == T0 + dt.timedelta(seconds=60)
    assert [m.message["Message-ID"] for m in smtp_server.mailbox.rejected] == [row.message_id]

    stats = run(url, conf, now=T0 + dt.timedelta(minutes=2))
    assert stats.sent == 1
    row = rows(url)[first]
    assert row.status == "sent" and row.attempts == 2
    assert len(smtp_server.wait_for(2)) == 2


def test_permanent_refusal_fails_reports_and_escalates(url, smtp_server, capsys):
    conf = smtp_settings(smtp_server, smtp_connections=1)
    obligation_id = setup_obligation(url, admin_email=ADMIN)
    [row_id] = enqueue(url, conf, obligation_id, "assignment")
    smtp_server.fail_next(code=550)
    stats = run(url, conf)
    # The assignment fails; the notice to the administrator goes in the same pass.
    assert (stats.sent, stats.retried, stats.failed) == (1, 0, 1)

    row = rows(url)[row_id]
    assert row.status == "failed" and row.smtp_code == 550
    assert row.last_error == "550 5.1.1 Mailbox unavailable"
    with session_scope(url) as session:
        [audit] = session.scalars(select(AuditEvent)).all()
    assert audit.action == "email.delivery_failed" and audit.obligation_id == obligation_id
    assert audit.data["smtp_code"] == 550

    assert cmd_outbox(argparse.Namespace(status="failed", database_url=url)) == 0
    out = capsys.readouterr().out
    assert "Gửi không được" in out and "Giao nhiệm vụ" in out and "phong-vhtt" in out
    assert "550 5.1.1 Mailbox unavailable" in out and UNIT_EMAIL in out

    [notice] = by_kind(smtp_server, "delivery_failure")
    assert notice.rcpt_tos == [ADMIN]
    assert notice.message["Subject"].startswith(f"[kehoach] Không gửi được thư tới {UNIT_EMAIL}")
    assert "550 5.1.1 Mailbox unavailable" in notice.message.get_body(("plain",)).get_content()


def test_failure_of_a_failure_notice_is_not_escalated(url, smtp_server):
    conf = smtp_settings(smtp_server, smtp_connections=1)
    obligation_id = setup_obligation(url)
    enqueue(url, conf, obligation_id, "assignment")
    # The unit's address bounces, then the administrator's address bounces too.
    smtp_server.fail_next(code=550, count=2)
    stats = run(url, conf)
    assert (stats.claimed, stats.failed) == (2, 2)
    assert run(url, conf, now=T0 + dt.timedelta(hours=1)).claimed == 0
    kinds = sorted((r.kind, r.status) for r in rows(url).values())
    assert kinds == [("assignment", "failed"), ("delivery_failure", "failed")]
    with session_scope(url) as session:
        assert len(session.scalars(select(AuditEvent)).all()) == 2


def test_crash_after_send_before_mark_resends_with_same_message_id(url, smtp_server, monkeypatch):
    lease = 2.0  # seconds of real time (the default is 60)
    short = RetryPolicy(base_seconds=60, max_seconds=600, lease_seconds=lease)
    conf = smtp_settings(smtp_server)

    def run(url, conf, now=T0):  # type: ignore[no-untyped-def]
        return dispatch_pending_sync(url, conf, now=now, policy=short)

    obligation_id = setup_obligation(url)
    [row_id] = enqueue(url, conf, obligation_id, "assignment")

    def crash(self, session, outcomes):
        if outcomes:  # the first transaction only claims
            raise RuntimeError("process killed before recording")

    with monkeypatch.context() as patch:
        patch.setattr(outcomes_module.Recorder, "record", crash)
        with pytest.raises(RuntimeError, match="process killed"):
            run(url, conf)
    [first] = smtp_server.wait_for(1)
    row = rows(url)[row_id]
    assert row.status == "sending" and row.sent_at is None

    crashed_at = time.monotonic()
    # While the lease holds, another pass leaves it alone (it may still be in flight),
    # even one whose own clock says a week later (a backlog of runs after an outage, a
    # simulation): a lease runs out in real time.
    assert run(url, conf, now=T0 + dt.timedelta(minutes=5)).claimed == 0
    assert run(url, conf, now=T0 + dt.timedelta(days=7)).claimed == 0
    assert time.monotonic() - crashed_at < lease, "too slow to see the lease hold"
    # After the lease, it is sent again: twice with the same Message-ID, never zero times.
    time.sleep(max(0.0, lease - (time.monotonic() - crashed_at)) + 0.2)
    assert run(url, conf, now=T0 + dt.timedelta(minutes=11)).sent == 1
    received = smtp_server.wait_for(2)
    assert [m.message["Message-ID"] for m in received] == [row.message_id] * 2
    assert first.message["Subject"] == received[1].message["Subject"]
    assert rows(url)[row_id].status == "sent"


# ---------------------------------------------------------------- injection


def test_header_injection_through_a_unit_name_is_neutralised(url, smtp_server):
    conf = smtp_settings(smtp_server)
    obligation_id = setup_obligation(url, unit_name="Phòng VH\r\nBcc: evil@attacker.example")
    enqueue(url, conf, obligation_id, ("receipt", "1"))
    assert run(url, conf).sent == 1
    [received] = smtp_server.wait_for(1)
    msg, raw = received.message, received.raw
    assert received.rcpt_tos == [UNIT_EMAIL]
    assert msg["Bcc"] is None
    headers = raw.split(b"\r\n\r\n", 1)[0]
    assert b"\nBcc:" not in headers and b"\rBcc:" not in headers
    assert msg["To"].addresses[0].display_name == "Phòng VH Bcc: evil@attacker.example"
    assert [a.addr_spec for a in msg["To"].addresses] == [UNIT_EMAIL]
    assert "\n" not in msg["Subject"] and "\n" not in str(msg["From"])


def test_html_injection_in_names_and_report_text_is_escaped(url, smtp_server):
    conf = smtp_settings(smtp_server)
    obligation_id = setup_obligation(url, unit_name="Phòng <b onmouseover=alert(1)>VH</b>")
    reason = '<script>alert("x")</script> Thiếu số liệu & bảng biểu'
    enqueue(url, conf, obligation_id, "returned", extra={"reason": reason})
    assert run(url, conf).sent == 1
    [received] = smtp_server.wait_for(1)
    html = received.message.get_body(("html",)).get_content()
    text = received.message.get_body(("plain",)).get_content()
    assert "<script>" not in html and "<b onmouseover" not in html
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt; Thiếu số liệu &amp; bảng biểu" in html
    assert "Phòng &lt;b onmouseover=alert(1)&gt;VH&lt;/b&gt;" in html
    # The plain-text part shows the text as the unit typed it.
    assert f"Lý do: {reason}" in text


# ---------------------------------------------------------------- templates and attachments


def test_plan_templates_override_the_defaults(url, smtp_server, tmp_path):
    folder = tmp_path / "plans" / "mau-thu"
    folder.mkdir(parents=True)
    (folder / "reminder.subject.j2").write_text(
        "Huyện Hạ Lang nhắc: {{ deliverable.title }} trước {{ due.short }}", encoding="utf-8"
    )
    conf = smtp_settings(smtp_server)
    obligation_id = setup_obligation(
        url, source_path=str(tmp_path / "plans" / "ke-hoach.yaml"), templates_dir="mau-thu"
    )
    enqueue(url, conf, obligation_id, ("reminder", "3"))
    run(url, conf)
    [received] = smtp_server.wait_for(1)
    assert received.message["Subject"] == (
        "Huyện Hạ Lang nhắc: Báo cáo kết quả công tác PCCC và CNCH trước 11/9/2028"
    )
    # Templates the plan does not override come from the defaults (the days left counted
    # on the day it is sent, 1/8 for 11/9).
    body = received.message.get_body(("plain",)).get_content()
    assert "Còn 41 ngày nữa là đến hạn" in body


def test_plan_templates_cannot_reach_python_and_html_is_escaped(url, smtp_server, tmp_path):
    """A plan's templates are data: the sandbox refuses Python internals (the message is
    not sent, the row fails with the reason), and plan HTML escapes what it prints."""
    folder = tmp_path / "plans" / "mau-thu"
    folder.mkdir(parents=True)
    (folder / "reminder.subject.j2").write_text(
        "Nhắc {{ cycler.__init__.__globals__.os.getuid() }}", encoding="utf-8"
    )
    (folder / "overdue.html.j2").write_text(
        "<p>{{ unit.name }} {{ '<script>alert(1)</script>' }}</p>", encoding="utf-8"
    )
    conf = smtp_settings(smtp_server)
    obligation_id = setup_obligation(
        url, source_path=str(tmp_path / "plans" / "ke-hoach.yaml"), templates_dir="mau-thu"
    )
    enqueue(url, conf, obligation_id, ("reminder", "3"), ("overdue", ""))
    assert run(url, conf).failed == 1
    with session_scope(url) as session:
        reminder = session.scalar(select(OutboxMessage).where(OutboxMessage.kind == "reminder"))
        assert reminder is not None and reminder.status == "failed"
        assert "SecurityError" in (reminder.last_error or "")
    smtp_server.wait_for(1)
    [received] = by_kind(smtp_server, "overdue")
    html = received.message.get_body(("html",)).get_content()
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html and "<script>" not in html


def test_consolidated_report_is_attached_and_routed_upward(url, smtp_server, tmp_path):
    document = tmp_path / "bao-cao-tong-hop-2028.docx"
    document.write_bytes(b"PK\x03\x04 fake docx bytes \x00\xff")
    conf = smtp_settings(smtp_server)
    with session_scope(url) as session:
        world = make_world(session)
        consolidation = add_obligation(
            session,
            world.cycle,
            "ca-huyen-ha-lang",
            kind="consolidation",
            deliverable_id="tong-hop-huyen",
            to_unit_id="ubnd-tinh-cao-bang",
            via_unit_id="ca-tinh-cao-bang",
        )
        enqueue_for_obligation(
            session,
            consolidation,
            "consolidated",
            now=T0,
            settings=conf,
            extra={"document_path": str(document)},
        )
    assert run(url, conf).sent == 1
    [received] = smtp_server.wait_for(1)
    msg = received.message
    assert received.rcpt_tos == ["catinh@caobang.example", "ubnd@caobang.example", CAH_EMAIL]
    [attachment] = list(msg.iter_attachments())
    assert attachment.get_filename() == "bao-cao-tong-hop-2028.docx"
    assert attachment.get_content() == document.read_bytes()
    assert msg["Subject"] == "Báo cáo tổng hợp năm 2028 — Công an huyện Hạ Lang"
    assert msg["From"].addresses[0].display_name == "Công an huyện Hạ Lang"
    assert "Công an huyện Hạ Lang gửi" in msg.get_body(("plain",)).get_content()


def test_missing_document_is_a_permanent_failure(url, smtp_server, tmp_path):
    conf = smtp_settings(smtp_server)
    obligation_id = setup_obligation(url)
    [row_id] = enqueue(
        url,
        conf,
        obligation_id,
        "consolidated",
        extra={"document_path": str(tmp_path / "missing.docx")},
    )
    assert run(url, conf).failed == 1
    row = rows(url)[row_id]
    assert row.status == "failed" and "missing.docx" in row.last_error


# ---------------------------------------------------------------- local mailbox


def test_local_mailbox_writes_eml_files(url, tmp_path):
    from tests.fixtures.smtp import _free_port

    folder = tmp_path / "mailbox"
    server = start_mailbox_server(folder, "127.0.0.1", _free_port())
    try:
        conf = make_settings(smtp_host=server.host, smtp_port=server.port)
        obligation_id = setup_obligation(url)
        enqueue(url, conf, obligation_id, "assignment", ("reminder", "7"))
        assert run(url, conf).sent == 2
    finally:
        server.stop()
    files = sorted(folder.glob("*.eml"))
    assert len(files) == 2 and server.received == 2
    parsed = [email.message_from_bytes(f.read_bytes(), policy=email.policy.default) for f in files]
    ids = {r.message_id for r in rows(url).values()}
    assert {p["Message-ID"] for p in parsed} == ids
    for path, message in zip(files, parsed, strict=True):
        slug = message["Message-ID"].strip("<>").replace("@", "-").replace(".", "-")
        assert path.name.endswith(f"-{slug}.eml")


# ---------------------------------------------------------------- both databases


def test_two_dispatchers_at_once_send_each_message_once(db_url, smtp_server):
    """Claims are atomic (UPDATE ... RETURNING; SKIP LOCKED on PostgreSQL)."""
    import asyncio

    from notifications.dispatch import dispatch_pending, run_sync

    migrate(db_url)
    conf = smtp_settings(smtp_server, smtp_connections=2)
    obligation_id = setup_obligation(db_url)
    enqueue(db_url, conf, obligation_id, *[("reminder", str(d)) for d in range(40)])
    small = RetryPolicy(batch_size=5)

    async def both():
        return await asyncio.gather(
            dispatch_pending(db_url, conf, now=T0, policy=small),
            dispatch_pending(db_url, conf, now=T0, policy=small),
        )

    first, second = run_sync(both())
    assert first.sent + second.sent == 40
    assert first.sent > 0 and second.sent > 0, "both should have found work"
    ids = [m.message["Message-ID"] for m in smtp_server.wait_for(40)]
    assert len(ids) == len(set(ids)) == 40
    assert {r.status for r in rows(db_url).values()} == {"sent"}


def test_retry_then_send_on_both_databases(db_url, smtp_server):
    migrate(db_url)
    conf = smtp_settings(smtp_server, smtp_connections=1)
    obligation_id = setup_obligation(db_url)
    first, _ = enqueue(db_url, conf, obligation_id, "assignment", "overdue")
    smtp_server.fail_next(code=451)
    assert (run(db_url, conf).sent, run(db_url, conf).claimed) == (1, 0)
    assert rows(db_url)[first].next_attempt_at == T0 + dt.timedelta(seconds=60)
    assert run(db_url, conf, now=T0 + dt.timedelta(seconds=61)).sent == 1
    assert rows(db_url)[first].status == "sent"


def test_one_refused_recipient_is_reported_while_the_others_get_it(url, smtp_server):
    conf = smtp_settings(smtp_server, smtp_connections=1)
    obligation_id = setup_obligation(url)
    later = T0 + dt.timedelta(days=45)
    [row_id] = enqueue(url, conf, obligation_id, "escalation", now=later)
    smtp_server.fail_next(code=550, stage="rcpt")  # the head's address is refused
    stats = run(url, conf, now=later)
    assert (stats.sent, stats.failed) == (2, 0)  # the escalation (to CAH) + the admin notice
    row = rows(url)[row_id]
    assert row.status == "sent"
    assert row.last_error.startswith("refused: truongphong.vhtt@halang.example: 550")
    [escalation] = by_kind(smtp_server, "escalation")
    assert escalation.rcpt_tos == [CAH_EMAIL]
    [notice] = by_kind(smtp_server, "delivery_failure")
    assert "truongphong.vhtt@halang.example" in notice.message.get_body(("plain",)).get_content()


HEAD_EMAIL = "truongphong.vhtt@halang.example"


def test_a_recipient_refused_for_now_gets_the_same_message_later(url, smtp_server):
    """450 for one address at RCPT: the others get it now; that address alone gets the
    same message (Message-ID, headers) at the next attempt."""
    conf = smtp_settings(smtp_server, smtp_connections=1)
    obligation_id = setup_obligation(url)
    later = T0 + dt.timedelta(days=45)
    [row_id] = enqueue(url, conf, obligation_id, "escalation", now=later)
    smtp_server.fail_next(code=450, stage="rcpt")  # the head's mailbox is busy
    stats = run(url, conf, now=later)
    assert (stats.sent, stats.retried, stats.failed) == (1, 1, 0)
    row = rows(url)[row_id]
    assert (row.status, row.retry_to, row.sent_at) == ("pending", [HEAD_EMAIL], later)
    assert row.next_attempt_at == later + dt.timedelta(seconds=60)
    assert row.last_error.startswith(f"refused, retrying {HEAD_EMAIL}: {HEAD_EMAIL}: 450")
    [first] = by_kind(smtp_server, "escalation")
    assert first.rcpt_tos == [CAH_EMAIL]
    assert by_kind(smtp_server, "delivery_failure") == []  # nothing lost yet

    assert run(url, conf, now=later + dt.timedelta(seconds=30)).claimed == 0  # not due yet
    again = run(url, conf, now=later + dt.timedelta(seconds=61))
    assert (again.sent, again.retried) == (1, 0)
    first_copy, second = by_kind(smtp_server, "escalation")
    assert second.rcpt_tos == [HEAD_EMAIL]
    assert second.message["Message-ID"] == first_copy.message["Message-ID"]
    assert second.message["To"] == first_copy.message["To"]
    assert second.message["Cc"] == first_copy.message["Cc"]
    row = rows(url)[row_id]
    assert (row.status, row.retry_to, row.last_error) == ("sent", None, None)
    assert row.sent_at == later and row.attempts == 2
    assert by_kind(smtp_server, "delivery_failure") == []


def test_a_recipient_refused_for_now_past_the_horizon_is_reported(url, smtp_server):
    conf = smtp_settings(smtp_server, smtp_connections=1, smtp_give_up_hours=1.0)
    obligation_id = setup_obligation(url)
    later = T0 + dt.timedelta(days=45)
    [row_id] = enqueue(url, conf, obligation_id, "escalation", now=later)
    smtp_server.fail_next(code=450, stage="rcpt")
    run(url, conf, now=later)
    smtp_server.fail_next(code=450, stage="rcpt")  # still busy after the horizon
    stats = run(url, conf, now=later + dt.timedelta(hours=2))
    assert stats.retried == 0
    row = rows(url)[row_id]
    assert row.status == "sent" and row.retry_to is None  # the others got it
    assert row.last_error.startswith("gave up after 2 attempts")
    [notice] = by_kind(smtp_server, "delivery_failure")
    assert HEAD_EMAIL in notice.message.get_body(("plain",)).get_content()


def test_every_address_refused_some_for_good(url, smtp_server):
    """550 for one address and 450 for the other: nobody got it; the first is reported,
    the second is owed the message."""
    conf = smtp_settings(smtp_server, smtp_connections=1)
    obligation_id = setup_obligation(url)
    later = T0 + dt.timedelta(days=45)
    [row_id] = enqueue(url, conf, obligation_id, "escalation", now=later)
    smtp_server.fail_next(code=550, stage="rcpt")
    smtp_server.fail_next(code=450, stage="rcpt")
    run(url, conf, now=later)
    row = rows(url)[row_id]
    assert row.status == "pending" and row.sent_at is None
    [owed] = row.retry_to
    assert by_kind(smtp_server, "escalation") == []
    [notice] = by_kind(smtp_server, "delivery_failure")
    [lost] = {HEAD_EMAIL, CAH_EMAIL} - {owed}
    assert lost in notice.message.get_body(("plain",)).get_content()
    run(url, conf, now=later + dt.timedelta(seconds=61))
    [message] = by_kind(smtp_server, "escalation")
    assert message.rcpt_tos == [owed]
    assert rows(url)[row_id].status == "sent"


def test_a_pass_holds_one_database_connection(postgres_url, smtp_server):
    """Every transaction of a pass runs on the connection it checked out at its start:
    a checkout per transaction cost a round trip more each (the pool's liveness ping on
    PostgreSQL), ~880 for 3,500 messages (docs/DECISIONS.md)."""
    from sqlalchemy import event

    from engine.store import connect

    migrate(postgres_url)
    conf = smtp_settings(smtp_server, smtp_connections=2)
    obligation_id = setup_obligation(postgres_url)
    enqueue(postgres_url, conf, obligation_id, *[("reminder", str(d)) for d in range(1, 9)])
    checkouts: list[object] = []
    engine = connect(postgres_url)

    def count(dbapi_connection, record, proxy):  # type: ignore[no-untyped-def]
        checkouts.append(dbapi_connection)

    event.listen(engine, "checkout", count)
    try:
        stats = run(postgres_url, conf)
    finally:
        event.remove(engine, "checkout", count)
    assert stats.sent == 8 and len(smtp_server.wait_for(8)) == 8
    assert len(checkouts) == 1, len(checkouts)
