"""Units report on their own initiative or comment on a plan through the portal
(issue 10, item 3): "chủ động báo cáo", "gửi ý kiến về …". The message is stored,
audited, mailed to the unit that gathers the duty's answers (copied to the sender), and
listed by ``kehoach status``.
"""

from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from cli.main import main
from engine.store.db import session_scope
from engine.store.models import AuditEvent, OutboxMessage, Submission, UnitMessage
from notifications.render import render_parts
from tests.test_portal_support import UNIT, world_fixture

pytestmark = pytest.mark.filterwarnings("ignore:Using `httpx` with `starlette.testclient`")


@pytest.fixture
def world(tmp_path, monkeypatch):  # type: ignore[no-untyped-def]
    yield from world_fixture(tmp_path, monkeypatch)


def _client(world):  # type: ignore[no-untyped-def]
    from starlette.testclient import TestClient

    return TestClient(world.app())


def _csrf(html: str) -> str:
    match = re.search(r'name="csrf" value="([^"]+)"', html)
    assert match
    return match.group(1)


TEXT = "Xã đề nghị bổ sung kinh phí mua bình chữa cháy cho 4 thôn vùng cao."


def test_a_unit_comments_and_it_reaches_the_consolidating_unit(world, capsys) -> None:  # type: ignore[no-untyped-def]
    client = _client(world)
    token = world.token()
    page = client.get(f"/o/{token}")
    assert page.status_code == 200 and "Chủ động báo cáo hoặc gửi ý kiến" in page.text
    answer = client.post(
        f"/o/{token}/message",
        data={
            "csrf": _csrf(page.text),
            "message_kind": "comment",
            "message_subject": "Kinh phí trang bị PCCC",
            "message_text": TEXT,
        },
    )
    assert answer.status_code == 200, answer.text
    assert "Đã gửi: ý kiến" in answer.text
    with session_scope(world.db_url) as session:
        [message] = session.scalars(select(UnitMessage)).all()
        assert (message.unit_id, message.kind, message.text) == (UNIT, "comment", TEXT)
        assert message.to_unit_id == "ca-huyen"  # the duty's channel (via)
        assert session.scalars(select(Submission)).all() == []  # not an answer to the duty
        [mail] = session.scalars(
            select(OutboxMessage).where(OutboxMessage.kind == "unit_message")
        ).all()
        assert mail.to_addrs and mail.cc_addrs  # to the consolidating unit, copy to the sender
        subject, text, _html = render_parts(mail.kind, mail.context)
        assert subject.startswith("Ý kiến của Ủy ban nhân dân xã Thị Hoa: Kinh phí")
        assert TEXT in text
        audit = session.scalar(select(AuditEvent).where(AuditEvent.action == "unit.message"))
        assert audit.actor == f"unit:{UNIT}" and audit.data["to"] == "ca-huyen"
        plan_id = world_plan(session)
    assert main(["--database-url", world.db_url, "status", plan_id]) == 0
    printed = capsys.readouterr().out
    assert "Đơn vị chủ động báo cáo, gửi ý kiến (1):" in printed
    assert "Ý kiến:" in printed and "Kinh phí trang bị PCCC" in printed


def world_plan(session) -> str:  # type: ignore[no-untyped-def]
    return session.scalar(select(UnitMessage.plan_id))


@pytest.mark.parametrize(
    ("data", "words"),
    [
        ({"message_kind": "report", "message_text": "   "}, "Chưa có nội dung"),
        ({"message_kind": "khac", "message_text": TEXT}, "Chọn loại"),
        ({"message_kind": "report", "message_text": "x" * 10_001}, "tối đa 10000"),
    ],
)
def test_a_message_that_cannot_be_kept_stores_nothing(world, data, words) -> None:  # type: ignore[no-untyped-def]
    client = _client(world)
    token = world.token()
    page = client.get(f"/o/{token}")
    answer = client.post(f"/o/{token}/message", data={"csrf": _csrf(page.text), **data})
    assert answer.status_code == 400 and words in answer.text
    assert world.count(UnitMessage) == 0 and world.count(OutboxMessage, kind="unit_message") == 0


def test_a_message_without_the_forms_csrf_is_refused(world) -> None:  # type: ignore[no-untyped-def]
    client = _client(world)
    token = world.token()
    client.get(f"/o/{token}")
    answer = client.post(
        f"/o/{token}/message", data={"csrf": "x", "message_kind": "report", "message_text": TEXT}
    )
    assert answer.status_code == 403
    assert world.count(UnitMessage) == 0
