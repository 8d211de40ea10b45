"""The units' portal over HTTP (Starlette TestClient) on a real SQLite store."""

from __future__ import annotations

import datetime as dt
import re
import time
from pathlib import Path

import pytest
from itsdangerous import TimestampSigner, URLSafeTimedSerializer
from sqlalchemy import select

from engine.config import load_settings
from engine.links import SALT, make_token
from engine.store.db import session_scope
from engine.store.models import AuditEvent, Obligation, OutboxMessage, StoredFile, Submission
from portal.access import token_hash
from portal.ratelimit import PortalLimits, Rate
from tests.test_portal_support import (
    OTHER_UNIT,
    PNG_BYTES,
    SCRIPT,
    SECRET,
    UNIT,
    files_on_disk,
    minimal_docx,
    minimal_pdf,
    table_fingerprint,
    vn,
    world_fixture,
)

pytestmark = pytest.mark.filterwarnings("ignore:Using `httpx` with `starlette.testclient`")

REPORT = {
    "f-so-vu-chay": "2",
    "f-ty-le-tap-huan": "95,5",
    "f-dan-phong": "Đã rà soát",
    "f-ngay-ra-soat": "2027-08-30",
    "f-ket-qua": "Tuyên truyền tại 12 thôn; kiện toàn 3 đội dân phòng.",
}
PDF = minimal_pdf()


@pytest.fixture
def world(tmp_path, monkeypatch):  # type: ignore[no-untyped-def]
    yield from world_fixture(tmp_path, monkeypatch)


def client_for(world, **kwargs):  # type: ignore[no-untyped-def]
    from starlette.testclient import TestClient

    raise_errors = kwargs.pop("raise_server_exceptions", True)
    return TestClient(world.app(**kwargs), raise_server_exceptions=raise_errors)


def csrf_of(html: str) -> str:
    match = re.search(r'name="csrf" value="([^"]+)"', html)
    assert match, "no CSRF field on the page"
    return match.group(1)


def open_form(client, token: str) -> str:  # type: ignore[no-untyped-def]
    page = client.get(f"/o/{token}")
    assert page.status_code == 200, page.text
    return csrf_of(page.text)


def post_report(client, token, csrf, data=None, files=None, **kw):  # type: ignore[no-untyped-def]
    form = {**REPORT, **(data or {}), "csrf": csrf}
    return client.post(f"/o/{token}/submit", data=form, files=files or {}, **kw)


def pdf_upload(name: str = "Báo cáo PCCC xã Thị Hoa.pdf", content: bytes = PDF):  # type: ignore[no-untyped-def]
    return {"f-van-ban": (name, content, "application/pdf")}


def nothing_stored(world) -> None:  # type: ignore[no-untyped-def]
    assert world.count(Submission) == 0
    assert world.count(StoredFile) == 0
    assert files_on_disk(world.settings.files_dir.resolve()) == []


# ---------------------------------------------------------------- reading


def test_page_shows_plan_tasks_deadline_and_form(world):
    with client_for(world) as client:
        page = client.get(f"/o/{world.token()}")
    assert page.status_code == 200
    assert page.headers["content-type"] == "text/html; charset=utf-8"
    html = page.text
    for expected in (
        "Kế hoạch số 15/KH-UBND",
        "Thực hiện công tác phòng cháy, chữa cháy và cứu nạn, cứu hộ năm 2027",
        "UBND huyện Hạ Lang",
        "Ủy ban nhân dân xã Thị Hoa",
        "Rà soát, kiện toàn lực lượng dân phòng hằng năm.",
        "Thứ Sáu, 10/9/2027",
        "Chưa hoàn thành, còn hạn",
        "còn 9 ngày",
        'name="f-so-vu-chay"',
        'type="file"',
    ):
        assert expected in html, expected
    assert "kh_nonce=" in page.headers["set-cookie"]
    assert "samesite=strict" in page.headers["set-cookie"].lower()


def test_security_headers_on_every_page(world):
    with client_for(world) as client:
        for path in (f"/o/{world.token()}", "/o/not-a-token", "/nowhere", "/"):
            response = client.get(path)
            headers = response.headers
            assert headers["content-security-policy"].startswith("default-src 'self'")
            assert headers["x-content-type-options"] == "nosniff"
            assert headers["referrer-policy"] == "no-referrer"
            assert headers["x-frame-options"] == "DENY"
            assert headers["cache-control"] == "no-store"
        assert client.get("/nowhere").status_code == 404
        assert "Không tìm thấy trang" in client.get("/nowhere").text


def test_get_changes_nothing(world):
    """A mail scanner prefetching every link consumes nothing."""
    token = world.token()
    with client_for(world) as client:
        csrf = open_form(client, token)
        assert post_report(client, token, csrf, files=pdf_upload()).status_code == 200
        client.app.state.handoff.wait()
        [file_id] = world_file_ids(world)
        before = table_fingerprint(world.db_url)
        disk = files_on_disk(world.settings.files_dir.resolve())
        auth = ("tonghop", "mat-khau-thu-nghiem")
        for path in (
            f"/o/{token}",
            f"/o/{token}/receipt/1",
            f"/o/{token}/receipt/9",
            f"/o/{token}/files/{file_id}",
            f"/o/{world.token(OTHER_UNIT)}",
            f"/o/{token[:-3]}abc",
            "/operator/plans/portal-pccc/cycles/2027",
        ):
            for _ in range(2):
                client.get(path, auth=auth)
        assert table_fingerprint(world.db_url) == before
        assert files_on_disk(world.settings.files_dir.resolve()) == disk


def world_file_ids(world) -> list[int]:  # type: ignore[no-untyped-def]
    with session_scope(world.db_url) as session:
        return list(session.scalars(select(StoredFile.id).order_by(StoredFile.id)))


# ---------------------------------------------------------------- links


def test_forged_tokens_are_refused(world):
    token = world.token()
    payload, stamp, signature = token.split(".")
    foreign = load_settings({"KEHOACH_PORTAL_SECRET": "someone-else-with-a-key-of-their-own"})
    audited = world.count(AuditEvent)  # the activation's
    with client_for(world) as client:
        for bad in (
            f"{payload}.{stamp}.{signature[:-2]}xx",  # signature changed
            f"{payload[:-2]}Mn.{stamp}.{signature}",  # payload changed
            make_token(world.obligation_id(), UNIT, "2027", 1, foreign),  # other key
            "abc",
            "x" * 600,
        ):
            page = client.get(f"/o/{bad}")
            assert page.status_code == 403, bad
            assert "Đường dẫn không hợp lệ" in page.text
            assert 'action="/link/request"' in page.text
            assert "Traceback" not in page.text
            # a POST with a made-up token is refused and leaves no audit row to fill the table
            posted = client.post(f"/o/{bad}/submit", data={**REPORT, "csrf": csrf_of(page.text)})
            assert posted.status_code == 403
    assert world.count(AuditEvent) == audited and world.count(Submission) == 0


def _old_token(world, days: int) -> str:  # type: ignore[no-untyped-def]
    class Backdated(TimestampSigner):
        def get_timestamp(self) -> int:
            return int(time.time()) - days * 86400

    payload = {"o": world.obligation_id(), "u": UNIT, "c": "2027", "v": 1}
    return URLSafeTimedSerializer(SECRET, salt=SALT, signer=Backdated).dumps(payload)


def test_expired_links_are_refused_with_a_way_out(world):
    with client_for(world) as client:
        old = client.get(f"/o/{_old_token(world, 401)}")  # older than the 400-day cap
        assert old.status_code == 410
        assert "Đường dẫn đã hết hạn" in old.text
        assert "Gửi lại đường dẫn cho đơn vị" in old.text
        assert client.get(f"/o/{_old_token(world, 30)}").status_code == 200
    with client_for(world, link_max_age=dt.timedelta(days=7)) as client:
        assert client.get(f"/o/{_old_token(world, 8)}").status_code == 410
    # The cycle has no closes_on: links end 60 days after the due date (10/9/2027).
    world.clock.set(vn(2027, 11, 9, 23, 0))
    with client_for(world) as client:
        assert client.get(f"/o/{world.token()}").status_code == 200
        world.clock.set(vn(2027, 11, 10, 0, 1))
        page = client.get(f"/o/{world.token()}")
        assert page.status_code == 410 and "hết hạn" in page.text
    with session_scope(world.db_url) as session:
        session.get(Obligation, world.obligation_id()).cycle.status = "closed"
    world.clock.set(vn(2027, 9, 1))
    with client_for(world) as client:
        page = client.get(f"/o/{world.token()}")
        assert page.status_code == 410 and "Kỳ báo cáo đã đóng" in page.text


def test_revoked_link_is_refused(world):
    token = world.token()
    with session_scope(world.db_url) as session:
        session.get(Obligation, world.obligation_id()).token_version += 1
    with client_for(world) as client:
        page = client.get(f"/o/{token}")
        assert page.status_code == 410
        assert "Đường dẫn đã được thay thế" in page.text
        assert client.get(f"/o/{world.token()}").status_code == 200  # the new one works
        csrf = csrf_of(page.text)  # the refusal page's form token is for this token only
        response = post_report(client, token, csrf)
        assert response.status_code == 410
    assert world.count(Submission) == 0


def test_secret_rotation_keeps_old_links_while_listed(world, monkeypatch):
    old_token = world.token()
    rotated = load_settings(
        {
            "KEHOACH_HOME": str(world.settings.home),
            "KEHOACH_PORTAL_SECRET": "the-new-secret-7d2e-c4f1a9b3e6d20857",
            "KEHOACH_PORTAL_OLD_SECRETS": f"retired-one-5b8e2f0d4a7c1e93f6b2, {SECRET}",
        }
    )
    world.settings = rotated
    with client_for(world) as client:
        assert client.get(f"/o/{old_token}").status_code == 200
        assert client.get(f"/o/{world.token()}").status_code == 200  # new links: new key
        csrf = open_form(client, old_token)
        assert post_report(client, old_token, csrf).status_code == 200
    world.settings = load_settings(
        {
            "KEHOACH_HOME": str(world.settings.home),
            "KEHOACH_PORTAL_SECRET": "the-new-secret-7d2e-c4f1a9b3e6d20857",
        }
    )
    with client_for(world) as client:
        assert client.get(f"/o/{old_token}").status_code == 403  # grace period over


def test_old_keys_are_honoured_until_the_grace_period_ends(world):
    """KEHOACH_PORTAL_OLD_SECRETS_UNTIL: before its end old links work; after it they are
    expired (genuine, so the page offers a fresh link), not forged."""
    old_token = world.token()

    def rotated(until: str):  # type: ignore[no-untyped-def]
        return load_settings(
            {
                "KEHOACH_HOME": str(world.settings.home),
                "KEHOACH_PORTAL_SECRET": "the-new-secret-7d2e-c4f1a9b3e6d20857",
                "KEHOACH_PORTAL_OLD_SECRETS": SECRET,
                "KEHOACH_PORTAL_OLD_SECRETS_UNTIL": until,
            }
        )

    world.settings = rotated("2099-12-31")
    with client_for(world) as client:
        assert client.get(f"/o/{old_token}").status_code == 200
    world.settings = rotated("2020-01-31")  # the real clock decides key rotation
    with client_for(world) as client:
        page = client.get(f"/o/{old_token}")
        assert page.status_code == 410 and "hết hạn" in page.text
        assert 'action="/link/request"' in page.text
        assert client.get(f"/o/{world.token()}").status_code == 200  # the new key's links
        # ... and the fresh link it offers is sent (signed with the new key)
        form = {"token": old_token, "csrf": csrf_of(page.text)}
        assert client.post("/link/request", data=form).status_code == 202
    with session_scope(world.db_url) as session:
        [event] = session.scalars(
            select(AuditEvent).where(AuditEvent.action == "portal.link_request")
        ).all()
        assert event.data["outcome"] == "queued"
        [mail] = session.scalars(
            select(OutboxMessage).where(OutboxMessage.idempotency_key.like("%:link-%"))
        ).all()
        assert mail.to_addrs == ["ubnd.thihoa@halang.example"]


def test_a_link_never_reaches_another_obligation(world):
    mine, theirs = world.token(), world.token(OTHER_UNIT)
    with client_for(world) as client:
        csrf = open_form(client, theirs)
        assert (
            post_report(client, theirs, csrf, files=pdf_upload("của xã khác.pdf")).status_code
            == 200
        )
        [their_file] = world_file_ids(world)
        # their file and their receipt are not reachable with my link
        assert client.get(f"/o/{theirs}/files/{their_file}").status_code == 200
        assert client.get(f"/o/{mine}/files/{their_file}").status_code == 404
        assert client.get(f"/o/{mine}/receipt/1").status_code == 404
        # a token naming their obligation with my unit is refused (it is not theirs)
        crossed = make_token(world.obligation_id(OTHER_UNIT), UNIT, "2027", 1, world.settings)
        assert client.get(f"/o/{crossed}").status_code in (403, 410)
        # my CSRF token does not work on their link, and an id in the form is ignored
        my_csrf = open_form(client, mine)
        assert post_report(client, theirs, my_csrf).status_code == 403
        response = post_report(
            client, mine, my_csrf, data={"obligation_id": str(world.obligation_id(OTHER_UNIT))}
        )
        assert response.status_code == 200
        client.app.state.handoff.wait()
    with session_scope(world.db_url) as session:
        subs = session.scalars(select(Submission).order_by(Submission.id)).all()
        assert [(s.obligation_id, s.version) for s in subs] == [
            (world.obligation_id(OTHER_UNIT), 1),
            (world.obligation_id(UNIT), 1),
        ]


# ---------------------------------------------------------------- submitting


def test_submission_receipt_intake_and_audit(world):
    token = world.token()
    with client_for(world) as client:
        csrf = open_form(client, token)
        response = post_report(client, token, csrf, files=pdf_upload(), follow_redirects=False)
        assert response.status_code == 303
        assert response.headers["location"] == f"/o/{token}/receipt/1#da-nhan"
        receipt = client.get(response.headers["location"])
        client.app.state.handoff.wait()
    assert receipt.status_code == 200
    for expected in (
        "Đã nhận báo cáo của đơn vị",
        "Lần 1",
        "09:00, 01/09/2027",
        "Đúng hạn",
        "Báo cáo PCCC xã Thị Hoa.pdf",
    ):
        assert expected in receipt.text, expected
    with session_scope(world.db_url) as session:
        [sub] = session.scalars(select(Submission)).all()
        assert sub.values["so-vu-chay"] == 2 and sub.values["ty-le-tap-huan"] == 95.5
        assert sub.values["dan-phong"] == "Đã rà soát" and sub.on_time is True
        assert sub.intake_done is True and len(sub.file_ids) == 1
        stored = session.get(StoredFile, sub.file_ids[0])
        assert stored.original_name == "Báo cáo PCCC xã Thị Hoa.pdf"
        assert stored.content_type == "application/pdf" and stored.size == len(PDF)
        path = world.settings.files_dir.resolve() / stored.sha256[:2] / stored.sha256
        assert path.read_bytes() == PDF
        obligation = session.get(Obligation, world.obligation_id())
        assert obligation.status == "submitted" and obligation.on_time is True
        receipt_mail = session.scalar(select(OutboxMessage).where(OutboxMessage.kind == "receipt"))
        assert receipt_mail is not None and receipt_mail.to_addrs == ["ubnd.thihoa@halang.example"]
        events = {e.action: e for e in session.scalars(select(AuditEvent))}
        submit = events["portal.submit"]
        assert submit.actor == f"unit:{UNIT}" and submit.obligation_id == world.obligation_id()
        assert submit.remote_addr == "testclient"
        assert submit.data["link"] == token_hash(token) and token not in str(submit.data)
        assert "portal.intake_inline" in events


def test_file_is_served_back_with_its_vietnamese_name(world):
    token = world.token()
    with client_for(world) as client:
        csrf = open_form(client, token)
        post_report(client, token, csrf, files=pdf_upload("Báo cáo số 01-BC (bản ký).pdf"))
        [file_id] = world_file_ids(world)
        response = client.get(f"/o/{token}/files/{file_id}")
    assert response.status_code == 200 and response.content == PDF
    assert response.headers["content-type"] == "application/pdf"
    disposition = response.headers["content-disposition"]
    assert disposition == (
        'attachment; filename="Bao cao so 01-BC _ban ky_.pdf"; '
        "filename*=UTF-8''B%C3%A1o%20c%C3%A1o%20s%E1%BB%91%2001-BC%20%28b%E1%BA%A3n%20k%C3%BD%29.pdf"
    )


def test_uploaded_names_are_data_not_paths():
    from portal.uploads import safe_name

    assert safe_name("../../etc/passwd.pdf") == "passwd.pdf"
    assert safe_name("C:\\Users\\x\\Báo cáo.pdf") == "Báo cáo.pdf"
    assert safe_name("a\r\nb.pdf") == "ab.pdf"
    assert safe_name("") == "tep-dinh-kem"


def test_validation_messages_next_to_fields(world):
    token = world.token()
    with client_for(world) as client:
        csrf = open_form(client, token)
        response = post_report(
            client,
            token,
            csrf,
            data={"f-so-vu-chay": "hai", "f-ty-le-tap-huan": "140", "f-ket-qua": "Giữ lại chữ này"},
            files=pdf_upload(),
        )
    assert response.status_code == 422
    html = response.text
    assert 'id="err-so-vu-chay"' in html and "phải là số nguyên không âm" in html
    assert 'id="err-ty-le-tap-huan"' in html and "từ 0 đến 100" in html
    assert "Giữ lại chữ này" in html  # what was typed is kept
    assert "Chưa có gì được lưu" in html
    nothing_stored(world)


def test_resubmission_keeps_versions_and_follows_the_deadline(world):
    from engine.lifecycle import review

    token = world.token()
    with client_for(world) as client:
        csrf = open_form(client, token)
        for version in (1, 2):
            response = post_report(client, token, csrf, data={"f-so-vu-chay": str(version)})
            assert response.status_code == 200 and f"Lần {version}" in response.text
            client.app.state.handoff.wait()
        page = client.get(f"/o/{token}").text
        assert "Các lần đã gửi" in page and "Lần 1" in page and "Lần 2" in page
        assert "Gửi bản mới" in page
        # after the deadline, a report already sent cannot be replaced ...
        world.clock.set(vn(2027, 9, 11, 8, 0))
        page = client.get(f"/o/{token}").text
        assert "Gửi bản mới" not in page and "Đã quá hạn" in page
        # (other figures: the same form and answer again would be a replay of version 2)
        assert post_report(client, token, csrf, data={"f-so-vu-chay": "5"}).status_code == 409
        # ... unless it is returned for revision
        with session_scope(world.db_url) as session:
            newest = session.scalar(select(Submission).where(Submission.version == 2))
            review(
                session,
                newest.id,
                decision="return",
                reason="Thiếu số liệu tập huấn",
                by="ca-huyen",
                now=world.clock.now(),
            )
        page = client.get(f"/o/{token}").text
        assert "Thiếu số liệu tập huấn" in page and "Trả lại để hoàn thiện" in page
        csrf = open_form(client, token)
        response = post_report(client, token, csrf, data={"f-so-vu-chay": "3"})
        assert (
            response.status_code == 200 and "Lần 3" in response.text and "Quá hạn" in response.text
        )
        client.app.state.handoff.wait()
    with session_scope(world.db_url) as session:
        versions = session.scalars(select(Submission.values).order_by(Submission.version)).all()
        assert [v["so-vu-chay"] for v in versions] == [1, 2, 3]


def test_sub_plan_takes_a_document_and_a_summary(world):
    token = world.token(deliverable="ke-hoach-cu-the")
    with client_for(world) as client:
        page = client.get(f"/o/{token}").text
        assert (
            "Kế hoạch cụ thể" in page and 'name="f-van-ban"' in page and 'name="f-tom-tat"' in page
        )
        csrf = csrf_of(page)
        missing = client.post(
            f"/o/{token}/submit", data={"csrf": csrf, "f-tom-tat": "Kế hoạch số 5"}
        )
        assert missing.status_code == 422 and 'id="err-van-ban"' in missing.text
        docx = minimal_docx(world.home / "ke-hoach.docx").read_bytes()
        ok = client.post(
            f"/o/{token}/submit",
            data={"csrf": csrf, "f-tom-tat": "Kế hoạch số 5/KH-UBND ngày 2/9/2027"},
            files={"f-van-ban": ("Kế hoạch 5.docx", docx, "application/octet-stream")},
        )
        assert ok.status_code == 200 and "Đã nhận kế hoạch cụ thể" in ok.text
    with session_scope(world.db_url) as session:
        [sub] = session.scalars(select(Submission)).all()
        assert sub.summary == "Kế hoạch số 5/KH-UBND ngày 2/9/2027" and len(sub.file_ids) == 1
        assert session.get(StoredFile, sub.file_ids[0]).content_type.endswith("document")


# ---------------------------------------------------------------- uploads


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("bao-cao.pdf", PNG_BYTES, "không phải tệp PDF"),
        ("bao-cao.pdf", None, "nội dung là tệp Word (DOCX)"),  # a DOCX renamed .pdf
        ("bao-cao.docx", b"%PDF-1.4 not a docx", "nội dung là tệp PDF"),
        ("bao-cao.xlsx", None, "không phải tệp Excel (XLSX)"),
        ("bao-cao.exe", b"MZ\x90\x00", "chỉ nhận tệp PDF, DOCX, XLSX hoặc ODT"),
        ("rong.pdf", b"", "rỗng"),
    ],
)
def test_wrong_type_uploads_are_refused_and_nothing_stored(world, name, content, message):
    if content is None:
        content = minimal_docx(world.home / "x.docx").read_bytes()
    token = world.token()
    with client_for(world) as client:
        csrf = open_form(client, token)
        response = post_report(
            client, token, csrf, files={"f-van-ban": (name, content, "application/pdf")}
        )
    assert response.status_code == 422
    assert 'id="err-van-ban"' in response.text and message in response.text
    nothing_stored(world)


def test_oversized_uploads_are_refused_and_nothing_stored(world):
    token = world.token()  # the limit is 1 MB in these tests
    big = PDF + b"%" + b"0" * (1024 * 1024 + 10)
    with client_for(world) as client:
        csrf = open_form(client, token)
        # over the file limit but under the request limit: the field says why
        response = post_report(client, token, csrf, files=pdf_upload("lon.pdf", big))
        assert response.status_code == 422
        assert "quá lớn: tối đa 1 MB" in response.text
        # far over: refused by Content-Length before the form is read
        huge = PDF + b"0" * (3 * 1024 * 1024)
        response = post_report(client, token, csrf, files=pdf_upload("rat-lon.pdf", huge))
        assert response.status_code == 413
        assert "vượt giới hạn 1 MB" in response.text and f'href="/o/{token}"' in response.text

        # a streamed body without Content-Length is counted as it arrives
        def chunks():  # type: ignore[no-untyped-def]
            for _ in range(40):
                yield b"0" * 100_000

        response = client.post(
            f"/o/{token}/submit",
            content=chunks(),
            headers={"content-type": "multipart/form-data; boundary=xyz"},
        )
        assert response.status_code == 413
    nothing_stored(world)


# ---------------------------------------------------------------- escaping


def test_script_in_a_text_field_is_text_everywhere(world, smtp_server):
    from docx import Document

    from notifications.dispatch import dispatch_pending_sync

    token = world.token()
    with client_for(world) as client:
        csrf = open_form(client, token)
        response = post_report(client, token, csrf, data={"f-ket-qua": SCRIPT})
        client.app.state.handoff.wait()
        page = client.get(f"/o/{token}").text
    for html in (response.text, page):
        assert SCRIPT not in html
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    # the receipt email
    smtp = load_settings(
        {
            "KEHOACH_HOME": str(world.settings.home),
            "KEHOACH_SMTP_HOST": smtp_server.host,
            "KEHOACH_SMTP_PORT": str(smtp_server.port),
            "KEHOACH_PORTAL_SECRET": SECRET,
        }
    )
    with session_scope(world.db_url) as session:  # only the receipt: drop the assignments
        for row in session.scalars(select(OutboxMessage).where(OutboxMessage.kind != "receipt")):
            row.status = "cancelled"
    dispatch_pending_sync(world.db_url, smtp, now=world.clock.now())
    [mail] = smtp_server.wait_for(1)
    assert mail.message["X-Kehoach-Kind"] == "receipt"
    html_part = mail.message.get_body(preferencelist=("html",)).get_content()
    assert "<script" not in html_part.lower()
    # the consolidated report in Word: plain text, exactly as typed
    markdown, document = _consolidate_with_script(world)
    text = "\n".join(
        cell.text for table in Document(document).tables for row in table.rows for cell in row.cells
    )
    assert SCRIPT in text
    assert "alert(1)" in markdown


def _consolidate_with_script(world) -> tuple[str, str]:  # type: ignore[no-untyped-def]
    from engine.consolidation import consolidate

    if world.count(Submission) == 0:
        with client_for(world) as client:
            token = world.token()  # one token: another second signs another one
            post_report(client, token, open_form(client, token), data={"f-ket-qua": SCRIPT})
            client.app.state.handoff.wait()
    world.clock.set(vn(2027, 9, 26))
    with session_scope(world.db_url) as session:
        result = consolidate(
            session,
            "portal-pccc",
            "2027",
            "tong-hop",
            now=world.clock.now(),
            settings=world.settings,
        )
        return result.markdown, str(result.document_path)


def test_script_in_a_text_field_is_text_in_the_report_markdown(world):
    markdown, _ = _consolidate_with_script(world)
    assert SCRIPT not in markdown
    assert "alert(1)" in markdown


# ---------------------------------------------------------------- CSRF


def test_csrf_is_enforced(world):
    from starlette.testclient import TestClient

    token = world.token()
    with client_for(world) as client:
        csrf = open_form(client, token)
        cases = {
            "no field": {k: v for k, v in {**REPORT}.items()},
            "wrong field": {**REPORT, "csrf": csrf[:-4] + "AAAA"},
            "other link's": {**REPORT, "csrf": open_form(client, world.token(OTHER_UNIT))},
        }
        for label, data in cases.items():
            response = client.post(f"/o/{token}/submit", data=data, files=pdf_upload())
            assert response.status_code == 403, label
            assert "Phiên làm việc không hợp lệ" in response.text
        # the right field without the cookie (a cross-site form post)
        with TestClient(client.app) as stranger:
            response = post_report(stranger, token, csrf, files=pdf_upload())
            assert response.status_code == 403
    nothing_stored(world)
    with session_scope(world.db_url) as session:
        actions = session.scalars(select(AuditEvent.action)).all()
    assert actions.count("portal.csrf_rejected") == 4


# ---------------------------------------------------------------- fresh links


def test_fresh_link_goes_to_the_registered_address_only(world, smtp_server):
    from notifications.dispatch import dispatch_pending_sync

    expired = _old_token(world, 500)
    with client_for(world) as client:
        page = client.get(f"/o/{expired}")
        assert page.status_code == 410
        form = {"token": expired, "csrf": csrf_of(page.text), "email": "ke-gian@example.org"}
        first = client.post("/link/request", data=form)
        again = client.post("/link/request", data=form)
        forged_page = client.get("/o/forged.token.here")
        forged = client.post(
            "/link/request", data={"token": "forged.token.here", "csrf": csrf_of(forged_page.text)}
        )
    assert first.status_code == again.status_code == forged.status_code == 202
    assert first.text == again.text == forged.text  # the same answer whatever happened
    with session_scope(world.db_url) as session:
        rows = session.scalars(
            select(OutboxMessage).where(OutboxMessage.idempotency_key.like("%:link-%"))
        ).all()
        assert len(rows) == 1  # once per obligation and hour
        assert rows[0].to_addrs == ["ubnd.thihoa@halang.example"]
        outcomes = [
            e.data["outcome"]
            for e in session.scalars(
                select(AuditEvent).where(AuditEvent.action == "portal.link_request")
            )
        ]
        assert outcomes == ["queued", "already-queued"]
        for row in session.scalars(select(OutboxMessage).where(OutboxMessage.id != rows[0].id)):
            row.status = "cancelled"
    smtp = load_settings(
        {"KEHOACH_SMTP_HOST": smtp_server.host, "KEHOACH_SMTP_PORT": str(smtp_server.port)}
    )
    dispatch_pending_sync(world.db_url, smtp, now=world.clock.now())
    [mail] = smtp_server.wait_for(1)
    assert mail.rcpt_tos == ["ubnd.thihoa@halang.example"]
    from tests.test_portal_support import link_in

    fresh = link_in(mail.message)
    assert fresh.rsplit("/o/", 1)[1] != expired
    with client_for(world) as client:
        assert client.get("/o/" + fresh.rsplit("/o/", 1)[1]).status_code == 200


# ---------------------------------------------------------------- operator


def test_operator_view_behind_basic_auth(world):
    with client_for(world) as client:
        token = world.token()  # one token: another second signs another one
        assert post_report(client, token, open_form(client, token)).status_code == 200
        client.app.state.handoff.wait()
        url = "/operator/plans/portal-pccc/cycles/2027"
        anonymous = client.get(url)
        assert anonymous.status_code == 401 and "Basic" in anonymous.headers["www-authenticate"]
        assert client.get(url, auth=("tonghop", "sai")).status_code == 401
        page = client.get(url, auth=("tonghop", "mat-khau-thu-nghiem"))
        assert page.status_code == 200
        assert (
            "Ủy ban nhân dân xã Thị Hoa" in page.text
            and "Ủy ban nhân dân xã Quang Long" in page.text
        )
        assert 'data-state="done_on_time"' in page.text and 'data-state="open_within"' in page.text
        assert "Hoàn thành đúng hạn" in page.text and "state-green" in page.text
        assert 'id="ky-da-dong"' not in page.text  # an open cycle
        assert (
            client.get(
                "/operator/plans/khong-co/cycles/2027", auth=("tonghop", "mat-khau-thu-nghiem")
            ).status_code
            == 404
        )
    world.settings = load_settings(
        {"KEHOACH_HOME": str(world.settings.home), "KEHOACH_PORTAL_SECRET": SECRET}
    )
    with client_for(world) as client:
        page = client.get("/operator/plans/portal-pccc/cycles/2027", auth=("operator", ""))
        assert page.status_code == 503 and "KEHOACH_OPERATOR_PASSWORD" in page.text


# ---------------------------------------------------------------- hardening


def test_rate_limits_per_link_and_per_address(world):
    tight = PortalLimits(per_address=Rate(0.001, 6), link_read=Rate(0.001, 3))
    with client_for(world, limits=tight) as client:
        token = world.token()
        codes = [client.get(f"/o/{token}").status_code for _ in range(4)]
        assert codes == [200, 200, 200, 429]
        assert "Quá nhiều yêu cầu" in client.get(f"/o/{token}").text
        other = world.token(OTHER_UNIT)
        codes = [client.get(f"/o/{other}").status_code for _ in range(3)]
        assert codes == [200, 429, 429]  # another link, but the same address: 6 in all


def test_errors_never_show_a_stack_trace(world, monkeypatch):
    import portal.obligation

    def broken(*args, **kwargs):  # type: ignore[no-untyped-def]
        raise RuntimeError("secret internals /etc/kehoach")

    monkeypatch.setattr(portal.obligation, "obligation_page", broken)
    with client_for(world, raise_server_exceptions=False) as client:
        response = client.get(f"/o/{world.token()}")
    assert response.status_code == 500
    assert "Lỗi hệ thống" in response.text
    assert "Traceback" not in response.text and "secret internals" not in response.text
    assert response.headers["x-frame-options"] == "DENY"


def test_refuses_a_public_address_with_the_demo_key(monkeypatch, capsys):
    import argparse

    from cli.portal import cmd_portal
    from engine.config import Settings
    from portal.server import PortalConfigError, check_can_serve

    demo = Settings(demo=True)  # no secret: links would be signed with the public demo key
    with pytest.raises(PortalConfigError, match="KEHOACH_PORTAL_SECRET"):
        check_can_serve("0.0.0.0", demo)
    check_can_serve("127.0.0.1", demo)
    check_can_serve("::1", demo)
    check_can_serve("0.0.0.0", Settings(portal_secret="s" * 40))
    with pytest.raises(PortalConfigError, match="KEHOACH_PORTAL_OLD_SECRETS_UNTIL='31/12'"):
        check_can_serve(
            "127.0.0.1", Settings(portal_secret="s" * 40, portal_old_secrets_until="31/12")
        )
    import engine.config

    monkeypatch.delenv("KEHOACH_PORTAL_SECRET")
    monkeypatch.setenv("KEHOACH_DEMO", "1")
    engine.config.settings.cache_clear()
    try:
        code = cmd_portal(argparse.Namespace(host="0.0.0.0", port=0, database_url=None))
    finally:
        engine.config.settings.cache_clear()
    assert code == 1
    assert "Không phục vụ trên 0.0.0.0" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("name", "value"),
    [("KEHOACH_PORTAL_WORKERS", "x"), ("KEHOACH_PORTAL_OLD_SECRETS_UNTIL", "31/12")],
)
def test_a_malformed_portal_setting_exits_2_like_any_other(monkeypatch, capsys, name, value):
    import argparse

    import engine.config
    from cli.portal import cmd_portal

    monkeypatch.setenv(name, value)
    engine.config.settings.cache_clear()
    try:
        code = cmd_portal(argparse.Namespace(host="127.0.0.1", port=0, database_url=None))
    finally:
        engine.config.settings.cache_clear()
    assert code == 2
    assert f"{name}={value!r}" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("value", "said"),
    [("x", "không phải số nguyên"), ("0", "nằm ngoài khoảng cho phép"), ("65", "từ 1 đến 64")],
)
def test_a_bad_worker_count_is_refused_in_vietnamese(monkeypatch, value, said):
    from portal.server import PortalConfigError, workers_from_env

    monkeypatch.setenv("KEHOACH_PORTAL_WORKERS", value)
    with pytest.raises(PortalConfigError) as caught:
        workers_from_env()
    assert caught.value.malformed
    assert said in str(caught.value)
    assert "must be" not in str(caught.value) and "whole number" not in str(caught.value)


@pytest.mark.parametrize("debug", [False, True])
def test_kehoach_portal_shows_a_settings_english_reason_only_under_debug(
    monkeypatch, capsys, debug
):
    import argparse

    import engine.config
    from cli.portal import cmd_portal

    monkeypatch.setenv("KEHOACH_PORTAL_THREADS", "9999")
    if debug:
        monkeypatch.setenv("KEHOACH_DEBUG", "1")
    else:
        monkeypatch.delenv("KEHOACH_DEBUG", raising=False)
    engine.config.settings.cache_clear()
    try:
        code = cmd_portal(argparse.Namespace(host="127.0.0.1", port=0, database_url=None))
    finally:
        engine.config.settings.cache_clear()
    err = capsys.readouterr().err
    assert code == 2
    assert "KEHOACH_PORTAL_THREADS='9999' nằm ngoài khoảng cho phép" in err
    assert ("kehoach portal: debug: KEHOACH_PORTAL_THREADS" in err) is debug


def test_files_stay_outside_the_web_root(world):
    token = world.token()
    with client_for(world) as client:
        csrf = open_form(client, token)
        post_report(client, token, csrf, files=pdf_upload())
        [stored] = files_on_disk(world.settings.files_dir.resolve())
        for path in (
            f"/static/../files/{stored.name}",
            f"/{stored.name}",
            f"/static/{stored.name}",
        ):
            assert client.get(path).status_code == 404
    assert Path(stored).parent.name == stored.name[:2]


def test_concurrent_answers_on_one_link_all_get_a_version(world):
    """A double click, or two worker processes: every answer is stored, versions 1..n."""
    import threading

    from starlette.datastructures import FormData

    from portal.link import Posted
    from portal.posting import take_answer

    # two portals (as two worker processes would be: no shared lock) and four answers
    states = [world.app().state.portal, world.app().state.portal]
    token, nonce = world.token(), "n" * 32
    barrier = threading.Barrier(4)
    results: list[int | None] = []

    def answer(i: int) -> None:
        state = states[i % 2]
        form = FormData(
            [("csrf", state.form_token(token, nonce))]
            + [(k, v) for k, v in REPORT.items() if k != "f-so-vu-chay"]
            + [("f-so-vu-chay", str(i))]
        )
        barrier.wait()
        _, submission_id = take_answer(state, Posted(state, token, form, "127.0.0.1", nonce))
        results.append(submission_id)

    threads = [threading.Thread(target=answer, args=(i,)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert len(results) == 4 and None not in results
    with session_scope(world.db_url) as session:
        versions = session.scalars(select(Submission.version).order_by(Submission.version)).all()
    assert versions == [1, 2, 3, 4]


@pytest.mark.postgres
def test_submission_on_postgresql(tmp_path, monkeypatch, postgres_url):
    from tests.test_portal_support import make_world

    pg = make_world(tmp_path, monkeypatch, db_url=postgres_url)
    try:
        token = pg.token()
        with client_for(pg) as client:
            csrf = open_form(client, token)
            response = post_report(client, token, csrf, files=pdf_upload())
            assert response.status_code == 200 and "Lần 1" in response.text
            client.app.state.handoff.wait()
            assert client.get(f"/o/{token}").status_code == 200
        with session_scope(pg.db_url) as session:
            [sub] = session.scalars(select(Submission)).all()
            assert sub.intake_done and sub.values["ket-qua"] == REPORT["f-ket-qua"]
            assert session.get(Obligation, pg.obligation_id()).status == "submitted"
    finally:
        from engine import config
        from engine.store.db import connect

        connect(postgres_url).dispose()
        config.settings.cache_clear()


def test_without_prefect_the_portal_takes_the_submission_in_itself(world, monkeypatch):
    monkeypatch.delenv("PREFECT_API_URL", raising=False)
    token = world.token()
    with client_for(world, intake_flow=True) as client:
        post_report(client, token, open_form(client, token))
        client.app.state.handoff.wait()
    with session_scope(world.db_url) as session:
        [event] = session.scalars(
            select(AuditEvent).where(AuditEvent.action == "portal.intake_inline")
        ).all()
        assert event.data["reason"] == "PREFECT_API_URL is not set"
        assert session.get(Obligation, world.obligation_id()).status == "submitted"


def test_the_consolidation_duty_is_shown_without_a_form(world):
    token = world.token("ca-huyen", "tong-hop")
    with client_for(world) as client:
        page = client.get(f"/o/{token}")
        assert page.status_code == 200
        assert "Báo cáo tổng hợp: Báo cáo kết quả thực hiện công tác PCCC và CNCH" in page.text
        # 25/9/2027 is a Saturday: the deadline moved to Monday, with the reason
        assert "<strong>Thứ Hai, 27/9/2027</strong>" in page.text
        assert "Kế hoạch ghi: “trước ngày 25/9 hằng năm”" in page.text  # the plan's words
        assert "25/9/2027 là Thứ Bảy" in page.text and "Điều 148" in page.text
        assert 'action="/o/' not in page.text and "trang này chỉ để theo dõi" in page.text
        csrf = csrf_of(client.get(f"/o/{world.token()}").text)
        response = client.post(f"/o/{token}/submit", data={"csrf": csrf})
        assert response.status_code == 403  # another link's CSRF field
    assert world.count(Submission) == 0


def test_worker_count_comes_from_the_environment(monkeypatch):
    from portal.server import PortalConfigError, workers_from_env

    monkeypatch.delenv("KEHOACH_PORTAL_WORKERS", raising=False)
    assert workers_from_env() == 1
    monkeypatch.setenv("KEHOACH_PORTAL_WORKERS", "3")
    assert workers_from_env() == 3
    for bad in ("0", "many"):
        monkeypatch.setenv("KEHOACH_PORTAL_WORKERS", bad)
        with pytest.raises(PortalConfigError, match="KEHOACH_PORTAL_WORKERS"):
            workers_from_env()


def test_the_workers_listening_socket_gives_connections_tcp_nodelay():
    """uvicorn's own multi-worker socket leaves Nagle on (+40 ms a keep-alive request);
    the portal's (portal.server.listening_socket) does not."""
    import asyncio
    import socket

    from uvicorn import Config

    from portal.server import listening_socket
    from tests.test_portal_support import free_port

    def accepted_nodelay(sock: socket.socket) -> int:
        async def main() -> int:
            seen: asyncio.Future[int] = asyncio.get_running_loop().create_future()

            class Probe(asyncio.Protocol):
                def connection_made(self, transport):  # type: ignore[no-untyped-def]
                    conn = transport.get_extra_info("socket")
                    seen.set_result(conn.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
                    transport.close()

            server = await asyncio.get_running_loop().create_server(Probe, sock=sock)
            port = sock.getsockname()[1]
            _reader, writer = await asyncio.open_connection("127.0.0.1", port)
            try:
                return await asyncio.wait_for(seen, 5)
            finally:
                writer.close()
                server.close()

        return asyncio.run(main())

    class Proto0Config:
        """What uvicorn 0.54's Config.bind_socket returns: a TCP socket made with proto 0
        (later uvicorn releases may bind it as IPPROTO_TCP; the portal must not depend
        on which one is installed)."""

        def bind_socket(self) -> socket.socket:
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, 0)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind(("127.0.0.1", 0))
            sock.listen()
            return sock

    assert accepted_nodelay(Proto0Config().bind_socket()) == 0  # asyncio skips proto 0
    assert accepted_nodelay(listening_socket(Proto0Config())) != 0
    # and with the installed uvicorn's own Config, whatever it binds
    config = Config("portal.server:app_from_env", host="127.0.0.1", port=free_port())
    assert accepted_nodelay(listening_socket(config)) != 0
