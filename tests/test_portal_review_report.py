"""The consolidating unit reviews, approves, numbers, signs and sends its report, in
real Chromium through its own link; the report reaches the body above only after that.

Before (issue 12): consolidation mailed the report upward by itself at once, unsigned
and unnumbered. Here the draft mail goes to the consolidating unit alone; the email to
the body above is looked for after every step and appears only after "Gửi cấp trên",
with the signed PDF attached. Screenshots at 390 and 1280 px are kept with the test's
artifacts.
"""

from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from engine import config
from engine.consolidation import consolidate
from engine.lifecycle import intake, record_submission
from engine.register_numbers import register_of
from engine.store.db import session_scope
from engine.store.models import AuditEvent, ConsolidatedReport
from notifications.dispatch import dispatch_pending_sync
from tests.test_portal_support import (
    OTHER_UNIT,
    PLAN_ID,
    UNIT,
    ServedPortal,
    link_in,
    make_world,
    minimal_pdf,
    vn,
)

VALUES = {
    "so-vu-chay": "2",
    "ty-le-tap-huan": "95,5",
    "dan-phong": "Đã rà soát",
    "ngay-ra-soat": "2027-08-30",
    "ket-qua": "Tuyên truyền tại 12 thôn; kiện toàn 3 đội dân phòng.",
}
SECTIONS = {
    "ket_qua": "Các xã triển khai đầy đủ nhiệm vụ PCCC năm 2027.",
    "ton_tai": "Một xã gửi báo cáo chậm.",
    "nguyen_nhan": "Cán bộ kiêm nhiệm.",
    "phuong_huong": "Tăng cường kiểm tra cơ sở.",
    "kien_nghi": "Không có.",
}
UPWARD = "vanthu.ubnd@halang.example"  # UBND huyện, the body the report is for
DRAFTER = "pc07.cah@halang.example"  # Công an huyện, the consolidating unit

_SCROLL = "() => document.documentElement.scrollWidth <= window.innerWidth"


@pytest.fixture
def world(tmp_path, monkeypatch, smtp_server):  # type: ignore[no-untyped-def]
    yield make_world(
        tmp_path, monkeypatch, KEHOACH_SMTP_PORT=str(smtp_server.port), KEHOACH_MAIL_HOURS="any"
    )
    config.settings.cache_clear()


def _mail(world, smtp_server) -> list:  # type: ignore[no-untyped-def]
    """Deliver what is due now; every message received so far, parsed."""
    dispatch_pending_sync(world.db_url, world.settings, now=world.clock.now())
    return [m.message for m in smtp_server.messages]


def _upward(messages: list) -> list:
    return [m for m in messages if UPWARD in str(m["To"])]


def _shots(browser, url: str, artifacts_dir, name: str) -> None:  # type: ignore[no-untyped-def]
    for width in (390, 1280):
        context = browser.new_context(locale="vi-VN", viewport={"width": width, "height": 900})
        try:
            page = context.new_page()
            page.goto(url)
            page.screenshot(path=str(artifacts_dir / f"{name}-{width}.png"), full_page=True)
            assert page.evaluate(_SCROLL), f"{name} scrolls sideways at {width} px"
        finally:
            context.close()


def test_review_approve_number_sign_send_and_only_then_upward(
    world, smtp_server, browser, artifacts_dir, tmp_path
):  # type: ignore[no-untyped-def]
    with session_scope(world.db_url) as session:
        for unit, day in ((UNIT, 1), (OTHER_UNIT, 2)):
            sub = record_submission(
                session,
                world.obligation_id(unit, "bao-cao-nam"),
                values=VALUES,
                now=vn(2027, 9, day),
            )
            intake(session, sub.id, now=vn(2027, 9, day, 9, 5))
        result = consolidate(
            session, PLAN_ID, "2027", "tong-hop", now=vn(2027, 9, 12, 8), settings=world.settings
        )
    world.clock.set(vn(2027, 9, 12, 9))
    messages = _mail(world, smtp_server)
    assert _upward(messages) == [], "the draft went upward by itself"
    [draft_mail] = [m for m in messages if m["X-Kehoach-Kind"] == "report_draft"]
    assert DRAFTER in str(draft_mail["To"])
    review_url = link_in(draft_mail) + "/bao-cao"
    assert review_url in draft_mail.get_body(preferencelist=("plain",)).get_content()

    pdf_path = tmp_path / "bao-cao-da-ky.pdf"
    pdf_path.write_bytes(minimal_pdf("Bao cao da ky"))
    not_pdf = tmp_path / "anh-chup.pdf"
    not_pdf.write_bytes(b"\x89PNG\r\n\x1a\nnot a pdf")

    context = browser.new_context(locale="vi-VN", viewport={"width": 1280, "height": 900})
    context.set_default_timeout(60_000)  # approval runs LibreOffice
    page = context.new_page()
    try:
        with ServedPortal(world.app(), world.port):
            page.goto(review_url.removesuffix("/bao-cao"))  # the duty's own page links to it
            page.locator("a.review-link").click()
            assert page.url == review_url
            assert page.locator("[data-approval]").get_attribute("data-approval") == "draft"
            assert "dự thảo" in page.locator(".notice").inner_text()
            steps = page.content()  # each step's last day, not "trước hết" ("first of all")
            assert "chậm nhất ngày" in steps and "trước hết" not in steps
            _shots(browser, review_url, artifacts_dir, "du-thao")

            # One unit's answer accepted from its card.
            page.locator("form.decide").first.locator("button[value=accept]").click()
            assert "Đã ghi quyết định" in page.locator("p.ok").inner_text()

            # Approving without the sections is refused, in Vietnamese, nothing written.
            page.locator("button[value=approve]").click()
            assert "chưa viết các mục" in page.locator(".alert").inner_text().lower()
            assert _upward(_mail(world, smtp_server)) == []

            for key, text in SECTIONS.items():
                page.fill(f"#s-{key}", text)
            page.locator("button[value=approve]").click()
            assert page.locator("[data-approval]").get_attribute("data-approval") == "approved"
            number = page.locator("[data-number]").inner_text()
            assert re.match(r"01/BC-CAH, duyệt 09:00 ngày 12/9/2027", number), number
            assert _upward(_mail(world, smtp_server)) == [], "approved is not sent"

            # A file that is not a PDF is refused; the signed PDF is kept.
            page.set_input_files("#signed", str(not_pdf))
            page.locator("#ky button").click()
            assert "không phải tệp PDF" in page.locator(".alert").inner_text()
            page.set_input_files("#signed", str(pdf_path))
            page.locator("#ky button").click()
            assert page.locator("[data-approval]").get_attribute("data-approval") == "signed"
            assert _upward(_mail(world, smtp_server)) == [], "signed is not sent"

            page.locator("#gui button").click()
            assert page.locator("[data-approval]").get_attribute("data-approval") == "sent"
            _shots(browser, review_url, artifacts_dir, "da-gui")
    finally:
        context.close()

    [upward] = _upward(_mail(world, smtp_server))
    body = upward.get_body(preferencelist=("plain",)).get_content()
    assert "Báo cáo số 01/BC-CAH (bản đã ký) được đính kèm thư này." in body
    [attachment] = list(upward.iter_attachments())
    assert attachment.get_content_type() == "application/pdf"
    assert attachment.get_content() == pdf_path.read_bytes()

    with session_scope(world.db_url) as session:
        report = session.get(ConsolidatedReport, result.id)
        # The plan's consolidation goes out as Công an huyện (on_behalf_of: ca-huyen, to
        # UBND huyện): the number and symbol are the issuing body's, from its register.
        assert (report.approval, report.number_text) == ("sent", "01/BC-CAH")
        assert [(r.number, r.report_id) for r in register_of(session, "ca-huyen", 2027)] == [
            (1, report.id)
        ]
        assert register_of(session, "ubnd-huyen", 2027) == []
        actions = list(
            session.scalars(
                select(AuditEvent.action)
                .where(AuditEvent.action.like("report.%"))
                .order_by(AuditEvent.id)
            )
        )
        assert actions == [
            "report.narrative_saved",
            "report.approved",
            "report.signed",
            "report.sent",
        ]
