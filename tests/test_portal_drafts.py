"""Save as draft ("Lưu nháp", portal/drafts.py) over HTTP and in real Chromium: a half-filled
form is kept without being sent (no submission, receipt, email or intake), is checked by the
rules of a submission, survives a new browser and a restarted portal, fills the form on the
next visit, and the answer sent later replaces it."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select

from engine.closing import close_cycle, find_cycle
from engine.store.db import session_scope
from engine.store.models import AnswerDraft, AuditEvent, Obligation, OutboxMessage, Submission
from tests.test_portal import REPORT, client_for, csrf_of, open_form, post_report
from tests.test_portal_support import PLAN_ID, ServedPortal, vn, world_fixture

pytestmark = pytest.mark.filterwarnings("ignore:Using `httpx` with `starlette.testclient`")

PARTIAL = {"f-so-vu-chay": "1.234", "f-ket-qua": "Đã tuyên truyền tại 5 thôn; còn chờ số liệu."}


@pytest.fixture
def world(tmp_path, monkeypatch):  # type: ignore[no-untyped-def]
    yield from world_fixture(tmp_path, monkeypatch)


def _save(client, token: str, csrf: str, data: dict[str, str]):  # type: ignore[no-untyped-def]
    return client.post(f"/o/{token}/draft", data={**data, "csrf": csrf}, follow_redirects=False)


def _actions(world) -> list[str]:  # type: ignore[no-untyped-def]
    with session_scope(world.db_url) as session:
        return list(session.scalars(select(AuditEvent.action).order_by(AuditEvent.id)))


def _status(world) -> str:  # type: ignore[no-untyped-def]
    with session_scope(world.db_url) as session:
        obligation = session.get(Obligation, world.obligation_id())
        assert obligation is not None
        return str(obligation.status.value)


def test_a_draft_is_kept_not_sent_and_fills_the_form_again(world):  # type: ignore[no-untyped-def]
    token, mails, status = world.token(), world.count(OutboxMessage), _status(world)
    with client_for(world) as client:
        page = client.get(f"/o/{token}")
        assert 'id="luu-nhap"' in page.text and f'formaction="/o/{token}/draft' in page.text
        saved = _save(client, token, csrf_of(page.text), PARTIAL)
        assert saved.status_code == 303, saved.text[:500]
        assert saved.headers["location"] == f"/o/{token}#gui-bao-cao"
    # not a submission: nothing counts it, acknowledges it or takes it in
    assert world.count(Submission) == 0
    assert world.count(OutboxMessage) == mails
    assert _status(world) == status
    actions = _actions(world)
    assert "portal.draft_saved" in actions and "portal.submit" not in actions
    with session_scope(world.db_url) as session:
        [draft] = session.scalars(select(AnswerDraft)).all()
        assert draft.obligation_id == world.obligation_id()
        assert draft.values == {"so-vu-chay": "1.234", "ket-qua": PARTIAL["f-ket-qua"]}
        [event] = session.scalars(
            select(AuditEvent).where(AuditEvent.action == "portal.draft_saved")
        ).all()
        assert event.data["fields"] == ["ket-qua", "so-vu-chay"]
        assert PARTIAL["f-ket-qua"] not in str(event.data)  # the fields, never their content
    # a new browser (no cookie) and a restarted portal: the form holds the draft
    with client_for(world) as client:
        page = client.get(f"/o/{token}")
    assert page.status_code == 200
    assert 'name="f-so-vu-chay" value="1.234"' in page.text
    assert PARTIAL["f-ket-qua"] in page.text
    assert "Bản nháp đã lưu lúc 09:00, 01/09/2027" in page.text and "chưa gửi" in page.text
    assert "Các lần đã gửi" not in page.text  # no version listed


def test_a_second_save_replaces_the_draft_and_sending_removes_it(world):  # type: ignore[no-untyped-def]
    token = world.token()
    with client_for(world) as client:
        csrf = open_form(client, token)
        assert _save(client, token, csrf, PARTIAL).status_code == 303
        world.clock.advance(dt.timedelta(minutes=5))
        assert _save(client, token, csrf, {"f-so-vu-chay": "3"}).status_code == 303
        with session_scope(world.db_url) as session:
            [draft] = session.scalars(select(AnswerDraft)).all()
            assert draft.values == {"so-vu-chay": "3"}
            assert draft.saved_at == vn(2027, 9, 1, 9, 5)
        csrf = open_form(client, token)
        sent = post_report(client, token, csrf, follow_redirects=False)
        assert sent.status_code == 303 and "/receipt/1" in sent.headers["location"]
        assert world.count(AnswerDraft) == 0
        assert world.count(Submission) == 1
        # the same form and answer once more, as a draft: the answer was sent, its receipt
        again = _save(client, token, csrf, REPORT)
        assert again.status_code == 303 and "/receipt/1" in again.headers["location"]
        assert world.count(AnswerDraft) == 0
        page = client.get(f"/o/{token}")
    assert "Bản nháp đã lưu" not in page.text
    assert 'name="f-so-vu-chay" value=""' in page.text  # a new version starts empty


def test_a_draft_is_checked_like_an_answer_and_refused_whole(world):  # type: ignore[no-untyped-def]
    token = world.token()
    with client_for(world) as client:
        csrf = open_form(client, token)
        bad = {"f-so-vu-chay": "-4", "f-ket-qua": "có ký tự \x07 lạ", "f-ty-le-tap-huan": "150"}
        refused = _save(client, token, csrf, bad)
        assert refused.status_code == 422
        html = refused.text
        assert "Bản nháp chưa được lưu" in html
        assert "phải là số nguyên không âm" in html
        assert "phải là tỷ lệ phần trăm từ 0 đến 100" in html
        assert "ký tự không hợp lệ" in html
        assert 'value="-4"' in html  # what was typed, shown again
        long_text = {"f-ket-qua": "x" * 20_001}
        assert _save(client, token, csrf, long_text).status_code == 422
        # missing required fields do not stop a draft
        assert _save(client, token, csrf, {"f-dan-phong": "Đã rà soát"}).status_code == 303
    with session_scope(world.db_url) as session:
        [draft] = session.scalars(select(AnswerDraft)).all()
        assert draft.values == {"dan-phong": "Đã rà soát"}


def test_a_draft_needs_the_csrf_field_and_an_open_duty(world):  # type: ignore[no-untyped-def]
    token = world.token()
    with client_for(world) as client:
        open_form(client, token)
        forged = client.post(f"/o/{token}/draft", data={**PARTIAL, "csrf": "x.y"})
        assert forged.status_code == 403
        assert "portal.csrf_rejected" in _actions(world)
        csrf = open_form(client, token)
        with session_scope(world.db_url) as session:
            cycle = find_cycle(session, PLAN_ID, "2027")
            close_cycle(session, cycle.id, now=vn(2027, 9, 1, 8), force=True)
        closed = _save(client, token, csrf, PARTIAL)
        assert closed.status_code in (409, 410)
    assert world.count(AnswerDraft) == 0


def test_a_draft_in_the_browser_at_390_and_1280_px(world, browser, artifacts_dir):  # type: ignore[no-untyped-def]
    token = world.token()
    with ServedPortal(world.app(), world.port):
        for width in (390, 1280):
            context = browser.new_context(locale="vi-VN", viewport={"width": width, "height": 900})
            page = context.new_page()
            try:
                page.goto(f"{world.base_url}/o/{token}")
                page.fill("#f-so-vu-chay", str(width))
                page.fill(
                    "#f-ket-qua", f"Nháp ở màn hình {width} px: còn chờ số liệu thôn Bản Nưa."
                )
                page.click("#luu-nhap")
                page.wait_for_selector("#ban-nhap")
                context.close()
                context = browser.new_context(
                    locale="vi-VN", viewport={"width": width, "height": 900}
                )
                page = context.new_page()  # another day, another browser: the draft is there
                page.goto(f"{world.base_url}/o/{token}#gui-bao-cao")
                assert page.input_value("#f-so-vu-chay") == str(width)
                assert "Bản Nưa" in page.input_value("#f-ket-qua")
                note = page.locator("#ban-nhap")
                assert "chưa gửi" in note.inner_text()
                buttons = page.locator(".actions button")
                assert buttons.count() == 2
                for i in range(2):  # both buttons on screen, neither squeezed to a letter a line
                    box = buttons.nth(i).bounding_box()
                    assert box is not None and box["x"] + box["width"] <= width
                    assert box["height"] < 60, box
                assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
                page.locator("#gui-bao-cao").screenshot(
                    path=str(artifacts_dir / f"luu-nhap-{width}.png")
                )
            finally:
                context.close()
    assert world.count(Submission) == 0
