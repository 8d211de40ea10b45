"""End to end in headless Chromium: from the assignment email to the receipt email.

The plan is loaded from YAML and activated; the assignment emails go through the
real dispatcher to a real SMTP server; the link is taken from the received email;
the portal runs under uvicorn on loopback; Chromium fills the form, attaches a PDF
and submits; then the store, the files and the receipt email are checked.
"""

from __future__ import annotations

import re
from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import select

from engine.config import load_settings
from engine.store.db import session_scope
from engine.store.models import AuditEvent, Obligation, StoredFile, Submission
from tests.test_portal_support import (
    SCRIPT,
    SECRET,
    UNIT,
    ServedPortal,
    link_in,
    minimal_pdf,
    world_fixture,
)

pytestmark = pytest.mark.browser


@pytest.fixture
def world(tmp_path, monkeypatch):  # type: ignore[no-untyped-def]
    yield from world_fixture(tmp_path, monkeypatch)


def _mail_settings(world, smtp_server):  # type: ignore[no-untyped-def]
    return load_settings(
        {
            "KEHOACH_HOME": str(world.settings.home),
            "KEHOACH_PORTAL_SECRET": SECRET,
            "KEHOACH_PORTAL_BASE_URL": world.base_url,
            "KEHOACH_SMTP_HOST": smtp_server.host,
            "KEHOACH_SMTP_PORT": str(smtp_server.port),
            "KEHOACH_MAIL_FROM": "kehoach@halang.example",
        }
    )


def dispatch(world, conf):  # type: ignore[no-untyped-def]
    """The real dispatcher, in a thread: Playwright's sync API owns this thread's loop."""
    from notifications.dispatch import dispatch_pending_sync

    with ThreadPoolExecutor(1) as pool:
        return pool.submit(dispatch_pending_sync, world.db_url, conf, world.clock.now()).result()


def test_unit_answers_from_the_email_link_in_chromium(world, smtp_server, page, artifacts_dir):
    mail_conf = _mail_settings(world, smtp_server)
    report_id = world.obligation_id(UNIT, "bao-cao-nam")

    # 1. the assignment emails, sent by the real dispatcher, received over SMTP
    stats = dispatch(world, mail_conf)
    assert stats.sent == len(world.obligations), stats  # one assignment per obligation
    mails = smtp_server.wait_for(stats.sent)
    [assignment] = [
        m
        for m in mails
        if m.message["X-Kehoach-Obligation"] == str(report_id)
        and m.message["X-Kehoach-Kind"] == "assignment"
    ]
    assert assignment.rcpt_tos == ["ubnd.thihoa@halang.example"]
    link = link_in(assignment.message)
    assert link.startswith(world.base_url + "/o/")

    pdf_path = world.home / "Báo cáo PCCC 2027 - xã Thị Hoa.pdf"
    pdf_path.write_bytes(minimal_pdf())
    dialogs: list[str] = []
    console_errors: list[str] = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    page.on("console", lambda m: console_errors.append(m.text) if m.type == "error" else None)

    app = world.app()
    with ServedPortal(app, world.port):
        # 2. open the link from the email and fill the form
        response = page.goto(link)
        assert response is not None and response.status == 200
        assert response.headers["referrer-policy"] == "no-referrer"
        assert "Báo cáo kết quả thực hiện công tác PCCC và CNCH" in page.title()
        assert page.get_by_text("Thứ Sáu, 10/9/2027").is_visible()
        assert page.get_by_text("Ủy ban nhân dân xã Thị Hoa").is_visible()
        # a wrong number first: the message appears next to the field, nothing stored
        page.fill("#f-so-vu-chay", "hai")
        page.click("button[type=submit]")
        error = page.locator("#err-so-vu-chay")
        error.wait_for()
        assert "phải là số nguyên không âm" in error.inner_text()
        assert page.locator("#err-ket-qua").inner_text().endswith("là bắt buộc")
        page.screenshot(path=str(artifacts_dir / "form-errors.png"), full_page=True)
        page.fill("#f-so-vu-chay", "2")
        page.fill("#f-ty-le-tap-huan", "95,5")
        page.check("input[name='f-dan-phong'][value='Đã rà soát']")
        page.fill("#f-ngay-ra-soat", "2027-08-30")
        page.fill("#f-ket-qua", f"Tuyên truyền tại 12 thôn. {SCRIPT}")
        page.set_input_files("#f-van-ban", str(pdf_path))
        page.screenshot(path=str(artifacts_dir / "form.png"), full_page=True)

        # 3. submit and see the receipt
        page.click("button[type=submit]")
        page.wait_for_url(re.compile(r"/receipt/1#da-nhan$"))
        assert page.get_by_role("heading", name="Đã nhận báo cáo của đơn vị").is_visible()
        assert page.locator("#receipt-version").inner_text() == "Lần 1"
        assert page.locator("#receipt-time").inner_text() == "09:00, 01/09/2027 (giờ Việt Nam)"
        assert page.locator("#receipt-on-time").inner_text() == "Đúng hạn"
        assert page.get_by_text(SCRIPT, exact=False).count() >= 1  # shown as text
        page.screenshot(path=str(artifacts_dir / "receipt.png"), full_page=True)

        # the stored file comes back through the link, with its name
        with page.expect_download() as download:
            page.get_by_role("link", name=pdf_path.name).click()
        assert download.value.suggested_filename == pdf_path.name
        app.state.handoff.wait()

    assert dialogs == [], "a script ran in the page"
    # nothing blocked by the CSP, nothing missing (the 422 is the form with its errors)
    unexpected = [e for e in console_errors if "422" not in e]
    assert unexpected == [], unexpected
    assert (artifacts_dir / "form.png").stat().st_size > 10_000

    # 4. stored (once), obligation updated, file on disk, audit trail
    with session_scope(world.db_url) as session:
        [sub] = session.scalars(select(Submission)).all()
        assert sub.obligation_id == report_id and sub.version == 1 and sub.source == "portal"
        assert sub.values["ket-qua"].endswith(SCRIPT) and sub.values["ty-le-tap-huan"] == 95.5
        obligation = session.get(Obligation, report_id)
        assert obligation.status == "submitted" and obligation.on_time is True
        stored = session.get(StoredFile, sub.file_ids[0])
        assert stored.original_name == pdf_path.name
        on_disk = world.settings.files_dir.resolve() / stored.sha256[:2] / stored.sha256
        assert on_disk.read_bytes() == pdf_path.read_bytes()
        actions = set(session.scalars(select(AuditEvent.action)))
        assert {"portal.submit", "submission.recorded", "submission.intake"} <= actions

    # 5. the receipt email
    dispatch(world, mail_conf)
    mails = smtp_server.wait_for(stats.sent + 1)
    [receipt] = [m for m in mails if m.message["X-Kehoach-Kind"] == "receipt"]
    assert receipt.rcpt_tos == ["ubnd.thihoa@halang.example"]
    assert receipt.message["In-Reply-To"] == assignment.message["Message-ID"]
    text = receipt.text_body()
    assert "lần gửi thứ 1" in text and "đúng hạn" in text
    html = receipt.message.get_body(preferencelist=("html",)).get_content()
    assert "<script" not in html.lower()
