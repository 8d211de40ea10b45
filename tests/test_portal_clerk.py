"""The commune clerk's pages in real Chromium at 390 and 1280 px: the receipt carries a
receipt number and prints on A4; the duty page shows the reporting period and whom to
call (name and phone from the registry); after the cycle is closed, the link explains
what to do instead of offering a fresh link that could not open it either."""

from __future__ import annotations

import pytest

from engine.closing import close_cycle, find_cycle
from engine.lifecycle import record_submission
from engine.store.db import session_scope
from tests.test_portal_receipt_layout import VALUES
from tests.test_portal_support import PLAN_ID, UNIT, ServedPortal, vn, world_fixture


@pytest.fixture
def world(tmp_path, monkeypatch):  # type: ignore[no-untyped-def]
    yield from world_fixture(tmp_path, monkeypatch)


def _open(browser, width: int):  # type: ignore[no-untyped-def]
    return browser.new_context(locale="vi-VN", viewport={"width": width, "height": 900})


@pytest.mark.parametrize("width", [390, 1280])
def test_receipt_number_print_period_and_whom_to_call(world, browser, artifacts_dir, width):  # type: ignore[no-untyped-def]
    obligation_id = world.obligation_id(UNIT, "bao-cao-nam")
    with session_scope(world.db_url) as session:
        record_submission(session, obligation_id, values=VALUES, now=vn(2027, 9, 1))
    token = world.token()
    context = _open(browser, width)
    page = context.new_page()
    try:
        with ServedPortal(world.app(), world.port):
            page.goto(f"{world.base_url}/o/{token}/receipt/1")
            number = page.locator("#receipt-no").inner_text()
            assert number == f"BN-2027-{obligation_id:05d}-01"
            assert page.locator("[data-phone]").inner_text() == "0206 3 870 113"
            assert "Nông Văn Tùng" in page.locator("#lien-he").inner_text()
            page.screenshot(path=str(artifacts_dir / f"bien-nhan-{width}.png"), full_page=True)
            page.emulate_media(media="print")
            assert page.locator(".print-hint").is_hidden()
            assert page.locator("#receipt-no").is_visible()
            page.pdf(path=str(artifacts_dir / "bien-nhan-a4.pdf"), format="A4")
            page.emulate_media(media="screen")
            page.goto(f"{world.base_url}/o/{token}")
            facts = page.locator("dl.facts").first.inner_text()
            assert "Kỳ báo cáo" in facts and "2027" in facts
            assert f"biên nhận BN-2027-{obligation_id:05d}-01" in page.content()
            assert page.locator("#lien-he [data-phone]").inner_text() == "0206 3 870 113"
            page.screenshot(path=str(artifacts_dir / f"nhiem-vu-{width}.png"), full_page=True)
            assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    finally:
        context.close()


def test_after_the_cycle_closed_the_link_says_whom_to_call_not_to_ask_a_new_link(
    world, browser, artifacts_dir
):  # type: ignore[no-untyped-def]
    with session_scope(world.db_url) as session:
        cycle = find_cycle(session, PLAN_ID, "2027")
        close_cycle(session, cycle.id, now=vn(2027, 12, 1), force=True)
    token = world.token()
    for width in (390, 1280):
        context = _open(browser, width)
        page = context.new_page()
        try:
            with ServedPortal(world.app(), world.port):
                response = page.goto(f"{world.base_url}/o/{token}")
                assert response is not None and response.status == 410
                text = page.locator(".refused").inner_text()
                page.screenshot(path=str(artifacts_dir / f"ky-da-dong-{width}.png"), full_page=True)
        finally:
            context.close()
        assert "Kỳ báo cáo đã đóng" in text and "Cần bổ sung hoặc sửa báo cáo?" in text
        assert "Nông Văn Tùng" in text and "0206 3 870 113" in text
        assert "Gửi lại đường dẫn" not in text
