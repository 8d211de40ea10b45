"""Supporting units (phối hợp) of a tracked task contribute through the portal (issue 10,
item 1: "supporting units are told and can contribute, the lead answers").

The department plan of tests/tasks_support.py: Sở KH&CN leads "Nền tảng LGSP" (quý IV
năm 2026), supported by Sở Tài chính; Sở Nội vụ leads "Số hóa hồ sơ", supported by Sở
KH&CN. Each supporting unit's ``task_support`` email carries a link of its own
(``/p/…``); a contribution through it is kept, audited, mailed to the lead (real SMTP
server on loopback) and listed on the lead's page; that link never answers the task.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import select

from cli.main import main
from engine import config
from engine.audit_verify import verify
from engine.config import load_settings
from engine.links import SUPPORT_SALT, make_token
from engine.states import CycleStatus
from engine.store.db import session_scope
from engine.store.models import (
    AuditEvent,
    Cycle,
    Obligation,
    OutboxMessage,
    Submission,
    UnitMessage,
)
from engine.transitions import move_cycle
from notifications.dispatch import dispatch_pending_sync
from notifications.render import render_parts
from portal.ratelimit import PortalLimits, Rate
from tests.tasks_support import CALENDAR, DEPARTMENT, DEPARTMENT_FILE, QUARTER_IV, REGISTRY
from tests.test_portal_support import (
    SECRET,
    PortalWorld,
    ServedPortal,
    make_world,
    minimal_pdf,
    vn,
)

pytestmark = pytest.mark.filterwarnings("ignore:Using `httpx` with `starlette.testclient`")

LEAD = "so-khcn-cao-bang"
SUPPORT = "so-tai-chinh-cao-bang"
LEAD_EMAIL = "chuyendoiso.skhcn@caobang.example"
SUPPORT_EMAIL = "stc@caobang.example"
TEXT = (
    "Sở Tài chính đã bố trí 1.250 triệu đồng cho nền tảng LGSP trong dự toán năm 2026; "
    "đề nghị Sở KH&CN gửi kế hoạch giải ngân trước 15/10."
)
SUPPORT_LINK = re.compile(r"https?://127\.0\.0\.1:\d+/p/[A-Za-z0-9_.\-]+")


@pytest.fixture
def world(tmp_path, monkeypatch) -> Iterator[PortalWorld]:  # type: ignore[no-untyped-def]
    yield make_world(
        tmp_path,
        monkeypatch,
        sources=[REGISTRY, CALENDAR, DEPARTMENT_FILE],
        plan_id=DEPARTMENT,
        activated_at=vn(2026, 2, 10, 9),
        now=vn(2026, 3, 2, 9),
    )
    config.settings.cache_clear()


def _client(world: PortalWorld) -> Any:
    from starlette.testclient import TestClient

    return TestClient(world.app())


def _csrf(html: str) -> str:
    match = re.search(r'name="csrf" value="([^"]+)"', html)
    assert match, html[:500]
    return match.group(1)


def _support_mail(world: PortalWorld, task: str = QUARTER_IV) -> OutboxMessage:
    with session_scope(world.db_url) as session:
        [mail] = [
            m
            for m in session.scalars(
                select(OutboxMessage).where(OutboxMessage.kind == "task_support")
            )
            if m.context["deliverable"]["id"] == task
        ]
        return mail


def _support_path(world: PortalWorld, task: str = QUARTER_IV) -> str:
    """The path of the supporting unit's link, as its email has it."""
    link = _support_mail(world, task).context["link"]
    assert link and SUPPORT_LINK.fullmatch(link), link
    return "/p/" + link.rsplit("/p/", 1)[1]


def _smtp(world: PortalWorld, server: Any) -> Any:
    return load_settings(
        {
            "KEHOACH_HOME": str(world.settings.home),
            "KEHOACH_SMTP_HOST": server.host,
            "KEHOACH_SMTP_PORT": str(server.port),
            "KEHOACH_PORTAL_SECRET": SECRET,
        }
    )


def _contribute(client: Any, path: str, **files: Any) -> Any:
    page = client.get(path)
    assert page.status_code == 200, page.text
    return client.post(
        f"{path}/contribute",
        data={"csrf": _csrf(page.text), "noi_dung": TEXT},
        files=files or None,
        follow_redirects=False,
    )


def test_each_supporting_unit_is_mailed_a_link_of_its_own_that_opens_its_page(world) -> None:  # type: ignore[no-untyped-def]
    mail = _support_mail(world)
    assert mail.to_addrs == [SUPPORT_EMAIL]
    lead_link = f"/o/{world.token(LEAD, QUARTER_IV)}"
    assert lead_link not in mail.context["link"]
    _subject, text, html = render_parts(mail.kind, mail.context)
    assert "Kính gửi: Sở Tài chính tỉnh Cao Bằng" in text
    assert mail.context["link"] in text and mail.context["link"] in html
    page = _client(world).get(_support_path(world))
    assert page.status_code == 200
    for words in (
        "Đơn vị phối hợp: <strong>Sở Tài chính tỉnh Cao Bằng</strong>",
        "Hoàn thành nền tảng tích hợp, chia sẻ dữ liệu của tỉnh (LGSP)",
        "<strong>Sở Khoa học và Công nghệ tỉnh Cao Bằng</strong> (gửi báo cáo kết quả)",
        "“hoàn thành trong quý IV năm 2026”",
        "Thứ Năm, 31/12/2026",
        'action="/p/',
    ):
        assert words in page.text, words


def test_a_contribution_reaches_the_lead_by_email_and_on_its_page(
    world, smtp_server, capsys
) -> None:  # type: ignore[no-untyped-def]
    client = _client(world)
    path = _support_path(world)
    pdf = minimal_pdf("Du toan LGSP 2026")
    answer = _contribute(client, path, tep=("dự-toán-LGSP.pdf", pdf, "application/pdf"))
    assert answer.status_code == 303 and answer.headers["location"] == f"{path}#da-gui"
    assert world.count(UnitMessage) == 1
    mine = client.get(path).text
    assert "Ý kiến đơn vị đã gửi" in mine and "Tệp đính kèm: dự-toán-LGSP.pdf" in mine
    with session_scope(world.db_url) as session:
        [message] = session.scalars(select(UnitMessage)).all()
        lead_duty = world.obligation_id(LEAD, QUARTER_IV)
        assert (message.kind, message.unit_id, message.to_unit_id) == (
            "contribution",
            SUPPORT,
            LEAD,
        )
        assert (message.obligation_id, message.text) == (lead_duty, TEXT)
        assert message.file_id is not None
        assert session.scalars(select(Submission)).all() == []  # not the task's answer
        audit = session.scalar(select(AuditEvent).where(AuditEvent.action == "task.contribution"))
        assert audit is not None and audit.actor == f"unit:{SUPPORT}" and audit.data["to"] == LEAD
        assert verify(session).intact
        for row in session.scalars(
            select(OutboxMessage).where(OutboxMessage.kind != "task_contribution")
        ):
            row.status = "cancelled"  # only the contribution's email
    dispatch_pending_sync(world.db_url, _smtp(world, smtp_server), now=world.clock.now())
    [mail] = smtp_server.wait_for(1)
    assert mail.message["X-Kehoach-Kind"] == "task_contribution"
    assert LEAD_EMAIL in mail.message["To"] and SUPPORT_EMAIL in mail.message["Cc"]
    assert str(mail.message["Subject"]).startswith("Ý kiến phối hợp của Sở Tài chính tỉnh Cao Bằng")
    body = mail.message.get_body(preferencelist=("plain",)).get_content()
    assert TEXT in body and "Tệp đính kèm: dự-toán-LGSP.pdf" in body
    # the lead's own page: the same claims (obligation, unit, cycle, version) as a link
    # signed now (the second it was signed in may differ on a loaded machine)
    claims = world.token(LEAD, QUARTER_IV).split(".")[0]
    [lead_token] = re.findall(rf"/o/({re.escape(claims)}\.[A-Za-z0-9_\-]+\.[A-Za-z0-9_\-]+)", body)
    lead_page = client.get(f"/o/{lead_token}")
    section = lead_page.text.split('id="y-kien-phoi-hop"', 1)[1].split("</section>", 1)[0]
    assert "Ý kiến đóng góp của đơn vị phối hợp" in section
    assert "Sở Tài chính tỉnh Cao Bằng · 09:00, 02/03/2026" in section
    assert "1.250 triệu đồng" in section and "dự-toán-LGSP.pdf" in section
    file_href = re.search(r'href="(/o/[^"]+/files/\d+)"', section)
    assert file_href is not None
    download = client.get(file_href.group(1))
    assert download.status_code == 200 and download.content == pdf
    assert main(["--database-url", world.db_url, "status", DEPARTMENT]) == 0
    assert "Ý kiến phối hợp: Sở Tài chính tỉnh Cao Bằng → Sở Khoa học" in capsys.readouterr().out


def test_the_supporting_units_link_has_the_portals_rate_limits(world) -> None:  # type: ignore[no-untyped-def]
    from starlette.testclient import TestClient

    limits = PortalLimits(link_read=Rate(0.001, 2.0), link_write=Rate(0.001, 1.0))
    client = TestClient(world.app(limits=limits))
    path = _support_path(world)
    form = _csrf(client.get(path).text)
    assert client.get(path).status_code == 200
    assert client.get(path).status_code == 429  # its reads: 2, then one per 1,000 s
    data = {"csrf": form, "noi_dung": TEXT}
    assert client.post(f"{path}/contribute", data=data, follow_redirects=False).status_code == 303
    assert client.post(f"{path}/contribute", data=data).status_code == 429
    assert world.count(UnitMessage) == 1


def test_the_supporting_units_link_cannot_answer_the_task(world) -> None:  # type: ignore[no-untyped-def]
    client = _client(world)
    path = _support_path(world)
    token = path.removeprefix("/p/")
    form = _csrf(client.get(path).text)
    assert client.get(f"/o/{token}").status_code == 403
    for action in ("submit", "message"):
        refused = client.post(
            f"/o/{token}/{action}",
            data={"csrf": form, "f-ket-qua": TEXT, "message_kind": "report", "message_text": TEXT},
        )
        assert refused.status_code == 403, action
    # the lead's own link does not open the supporting page, nor does a supporting-unit
    # link made out for a unit that does not support the task (here its lead)
    assert client.get(f"/p/{world.token(LEAD, QUARTER_IV)}").status_code == 403
    with session_scope(world.db_url) as session:
        duty = session.get(Obligation, world.obligation_id(LEAD, QUARTER_IV))
        assert duty is not None
        for_lead = make_token(
            duty.id, LEAD, duty.cycle.key, duty.token_version, world.settings, salt=SUPPORT_SALT
        )
    assert client.get(f"/p/{for_lead}").status_code == 410
    # a contribution posted without the form's CSRF field is refused too
    assert client.post(f"{path}/contribute", data={"noi_dung": TEXT}).status_code == 403
    assert world.count(Submission) == 0 and world.count(UnitMessage) == 0


def test_a_form_posted_twice_is_kept_once(world) -> None:  # type: ignore[no-untyped-def]
    client = _client(world)
    path = _support_path(world)
    data = {"csrf": _csrf(client.get(path).text), "noi_dung": TEXT}
    for _ in range(2):  # a double click, a reload of the POST
        answer = client.post(f"{path}/contribute", data=data, follow_redirects=False)
        assert answer.status_code == 303
    assert world.count(UnitMessage) == 1
    assert world.count(OutboxMessage, kind="task_contribution") == 1
    assert _contribute(client, path).status_code == 303  # a new rendering: a new contribution
    assert world.count(UnitMessage) == 2


def test_an_empty_or_too_long_contribution_stores_nothing(world) -> None:  # type: ignore[no-untyped-def]
    client = _client(world)
    path = _support_path(world)
    for text, words in (("  \n ", "Chưa có nội dung"), ("x" * 20_001, "dài quá 20.000 ký tự")):
        page = client.get(path)
        answer = client.post(
            f"{path}/contribute", data={"csrf": _csrf(page.text), "noi_dung": text}
        )
        assert answer.status_code == 422 and words in answer.text
    assert (
        world.count(UnitMessage) == 0 and world.count(OutboxMessage, kind="task_contribution") == 0
    )


def _close_cycle(world: PortalWorld) -> None:
    with session_scope(world.db_url) as session:
        duty = session.get(Obligation, world.obligation_id(LEAD, QUARTER_IV))
        assert duty is not None
        cycle = session.get(Cycle, duty.cycle_id)
        move_cycle(
            session,
            cycle,
            CycleStatus.CLOSED,
            at=world.clock.now(),
            action="cycle.closed",
            plan_id=DEPARTMENT,
        )


def test_after_the_cycle_closes_the_page_says_so_and_takes_nothing(world) -> None:  # type: ignore[no-untyped-def]
    client = _client(world)
    path = _support_path(world)
    form = _csrf(client.get(path).text)
    _close_cycle(world)
    page = client.get(path)
    assert page.status_code == 200
    assert "Kỳ theo dõi của nhiệm vụ này đã đóng" in page.text and "<form" not in page.text
    late = client.post(f"{path}/contribute", data={"csrf": form, "noi_dung": TEXT})
    assert late.status_code == 409 and "đã đóng" in late.text
    assert world.count(UnitMessage) == 0


def test_once_the_lead_has_reported_the_page_says_so(world) -> None:  # type: ignore[no-untyped-def]
    client = _client(world)
    lead = f"/o/{world.token(LEAD, QUARTER_IV)}"
    page = client.get(lead).text
    choice = re.search(r'name="f-muc-do" value="([^"]+)"', page)
    assert choice is not None
    sent = client.post(
        f"{lead}/submit",
        data={"csrf": _csrf(page), "f-muc-do": choice.group(1), "f-ket-qua": "Đã vận hành."},
        follow_redirects=False,
    )
    assert sent.status_code == 303, sent.text
    client.app.state.handoff.wait()  # the intake took the answer in
    support = client.get(_support_path(world))
    assert "Đơn vị chủ trì đã báo cáo kết quả thực hiện nhiệm vụ này" in support.text
    assert "<form" not in support.text


@pytest.mark.parametrize("width", [390, 1280])
def test_the_contribution_page_on_a_phone_and_a_desktop(world, browser, artifacts_dir, width):  # type: ignore[no-untyped-def]
    client = _client(world)
    path = _support_path(world)
    assert _contribute(client, path).status_code == 303  # one sent already: the list shows
    context = browser.new_context(locale="vi-VN", viewport={"width": width, "height": 900})
    page = context.new_page()
    try:
        with ServedPortal(world.app(), world.port):
            response = page.goto(f"{world.base_url}{path}")
            assert response is not None and response.status == 200
            page.screenshot(path=str(artifacts_dir / f"support-{width}.png"), full_page=True)
            measured = page.evaluate(
                "() => ({scroll: document.documentElement.scrollWidth, screen: window.innerWidth,"
                " textarea: document.querySelector('textarea').getBoundingClientRect().width,"
                " card: document.querySelector('#gui-y-kien-phoi-hop').getBoundingClientRect().width})"
            )
    finally:
        context.close()
    assert measured["scroll"] <= measured["screen"], measured
    assert measured["textarea"] >= 0.8 * measured["card"] - 40, measured
