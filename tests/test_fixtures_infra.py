"""Self-tests for the real-component fixtures in tests/fixtures/."""

from __future__ import annotations

import functools
import http.server
import ssl
import threading
import uuid
from email.message import EmailMessage

import aiosmtplib
import pytest
from sqlalchemy import create_engine, text

# --- SMTP -------------------------------------------------------------------


def _message(
    subject: str = "Nhắc nhở: báo cáo PCCC & CNCH năm 2022", to: str = "cahuyen@halang.example"
):
    msg = EmailMessage()
    msg["From"] = "kehoach@halang.example"
    msg["To"] = to
    msg["Subject"] = subject
    msg["Message-ID"] = f"<{uuid.uuid4().hex}@kehoach.test>"
    msg.set_content("Kính gửi Công an huyện Hạ Lang,\nđề nghị gửi báo cáo trước ngày 10/9.")
    return msg


async def test_smtp_server_receives_and_parses(smtp_server):
    msg = _message()
    await aiosmtplib.send(msg, **smtp_server.client_kwargs())

    [received] = await smtp_server.mailbox.wait_for_async(1, timeout=5)
    assert received.mail_from == "kehoach@halang.example"
    assert received.rcpt_tos == ["cahuyen@halang.example"]
    assert received.message["Subject"] == "Nhắc nhở: báo cáo PCCC & CNCH năm 2022"
    assert received.message["Message-ID"] == msg["Message-ID"]
    assert "Hạ Lang" in received.text_body()
    assert b"Message-ID: " + msg["Message-ID"].encode() in received.raw
    assert len(smtp_server.mailbox) == 1 and smtp_server.messages[0] is received

    smtp_server.clear()
    assert len(smtp_server.mailbox) == 0


async def test_smtp_tls_starttls_and_auth(smtp_server_tls):
    server = smtp_server_tls
    assert server.ca_cert_path is not None and server.ca_cert_path.exists()

    async with aiosmtplib.SMTP(**server.client_kwargs()) as client:
        assert client.get_transport_info("sslcontext") is not None  # STARTTLS happened
        await client.send_message(_message(subject="Qua TLS"))
    [received] = server.wait_for(1)
    assert received.subject == "Qua TLS"
    assert ("LOGIN", server.username, True) in server.auth_attempts or (
        "PLAIN",
        server.username,
        True,
    ) in server.auth_attempts


async def test_smtp_tls_rejects_without_auth_or_tls(smtp_server_tls):
    server = smtp_server_tls
    ctx = server.client_ssl_context()

    # STARTTLS but no AUTH: MAIL FROM is refused.
    with pytest.raises(aiosmtplib.SMTPSenderRefused) as no_auth:
        await aiosmtplib.send(
            _message(), hostname=server.host, port=server.port, start_tls=True, tls_context=ctx
        )
    assert no_auth.value.code == 530

    # Wrong password.
    with pytest.raises(aiosmtplib.SMTPAuthenticationError) as bad_pw:
        await aiosmtplib.send(_message(), **server.client_kwargs(password="wrong"))
    assert bad_pw.value.code == 535

    # No STARTTLS: the server insists on it.
    with pytest.raises(aiosmtplib.SMTPResponseException) as plain:
        await aiosmtplib.send(_message(), hostname=server.host, port=server.port, start_tls=False)
    assert plain.value.code == 530

    # Without the test CA the certificate does not verify.
    with pytest.raises((aiosmtplib.SMTPException, ssl.SSLError)):
        await aiosmtplib.send(
            _message(), **server.client_kwargs(tls_context=ssl.create_default_context())
        )

    assert server.messages == []


async def test_smtp_fail_next_451_then_success(smtp_server):
    smtp_server.fail_next(code=451, count=1)
    with pytest.raises(aiosmtplib.SMTPResponseException) as exc:
        await aiosmtplib.send(_message(), **smtp_server.client_kwargs())
    assert exc.value.code == 451
    assert "Try again later" in exc.value.message
    assert smtp_server.messages == []
    assert len(smtp_server.mailbox.rejected) == 1

    await aiosmtplib.send(_message(subject="lần 2"), **smtp_server.client_kwargs())
    [received] = smtp_server.wait_for(1)
    assert received.subject == "lần 2"


async def test_smtp_fail_next_codes_rcpt_and_421(smtp_server):
    smtp_server.fail_next(code=550)
    with pytest.raises(aiosmtplib.SMTPResponseException) as perm:
        await aiosmtplib.send(_message(), **smtp_server.client_kwargs())
    assert perm.value.code == 550

    smtp_server.fail_next(code=550, stage="rcpt")
    with pytest.raises(aiosmtplib.SMTPRecipientsRefused) as rcpt:
        await aiosmtplib.send(_message(), **smtp_server.client_kwargs())
    assert rcpt.value.recipients[0].code == 550

    smtp_server.fail_next(code=421)
    client = aiosmtplib.SMTP(**smtp_server.client_kwargs())
    await client.connect()
    with pytest.raises(aiosmtplib.SMTPResponseException) as closing:
        await client.send_message(_message())
    assert closing.value.code == 421
    assert not client.is_connected
    assert smtp_server.handler.pending_failures == 0

    await aiosmtplib.send(_message(subject="ok"), **smtp_server.client_kwargs())
    assert [m.subject for m in smtp_server.wait_for(1)] == ["ok"]


async def test_smtp_outage_stop_start_same_port(smtp_server):
    port = smtp_server.port
    smtp_server.stop()
    assert not smtp_server.is_running
    with pytest.raises(aiosmtplib.SMTPConnectError):
        await aiosmtplib.send(_message(), **smtp_server.client_kwargs(timeout=3))

    smtp_server.start()
    assert smtp_server.port == port
    await aiosmtplib.send(_message(subject="sau sự cố"), **smtp_server.client_kwargs())
    assert smtp_server.wait_for(1)[0].subject == "sau sự cố"


# --- databases --------------------------------------------------------------


@pytest.mark.postgres
def test_postgres_url_creates_usable_database(postgres_url):
    engine = create_engine(postgres_url)
    try:
        with engine.begin() as conn:
            assert conn.execute(text("SELECT 1")).scalar_one() == 1
            name = conn.execute(text("SELECT current_database()")).scalar_one()
            assert name.startswith("kehoach_test_") and postgres_url.endswith("/" + name)
            conn.execute(text("CREATE TABLE t (v text)"))
            conn.execute(text("INSERT INTO t VALUES ('Hạ Lang')"))
            assert conn.execute(text("SELECT v FROM t")).scalar_one() == "Hạ Lang"
    finally:
        engine.dispose()


def test_db_url_roundtrip(db_url):
    engine = create_engine(db_url)
    try:
        with engine.begin() as conn:
            conn.execute(text("CREATE TABLE unit (id varchar(40) primary key, name text)"))
            conn.execute(
                text("INSERT INTO unit VALUES (:i, :n)"),
                {"i": "ca-huyen", "n": "Công an huyện Hạ Lang"},
            )
        with engine.connect() as conn:
            assert (
                conn.execute(text("SELECT name FROM unit WHERE id='ca-huyen'")).scalar_one()
                == "Công an huyện Hạ Lang"
            )
        assert engine.dialect.name == ("sqlite" if db_url.startswith("sqlite") else "postgresql")
    finally:
        engine.dispose()


# --- Prefect ----------------------------------------------------------------


@pytest.mark.prefect
def test_prefect_server_runs_flow(prefect_server):
    import httpx
    from prefect import flow
    from prefect.client.orchestration import get_client

    @flow(name="kehoach-fixture-selftest")
    def tiny(x: int) -> int:
        return x * 2

    state = tiny(21, return_state=True)
    assert state.is_completed() and state.result() == 42
    run_id = state.state_details.flow_run_id

    with get_client(sync_client=True) as client:
        assert client.api_url.host == "127.0.0.1" and client.api_url.port == prefect_server.port
        run = client.read_flow_run(run_id)
    assert run.state is not None and run.state.type.value == "COMPLETED"

    # It really is on our server, not on an ephemeral one.
    resp = httpx.get(f"{prefect_server.api_url}/flow_runs/{run_id}", timeout=10)
    assert resp.status_code == 200 and resp.json()["state_type"] == "COMPLETED"


@pytest.mark.prefect
async def test_prefect_server_async_client(prefect_server):
    from prefect import flow
    from prefect.client.orchestration import get_client

    @flow(name="kehoach-fixture-selftest-async")
    async def tiny_async() -> str:
        return "Kế hoạch"

    state = await tiny_async(return_state=True)
    async with get_client() as client:
        run = await client.read_flow_run(state.state_details.flow_run_id)
    assert run.state.type.value == "COMPLETED"
    assert str(client.api_url).rstrip("/") == prefect_server.api_url


# --- browser ----------------------------------------------------------------

PAGE = """<!doctype html>
<html lang="vi"><head><meta charset="utf-8"><title>Kế hoạch PCCC</title></head>
<body><h1>Kế hoạch phòng cháy, chữa cháy và cứu nạn, cứu hộ</h1>
<p id="js">chưa chạy</p>
<script>document.getElementById('js').textContent = 'Huyện Hạ Lang, tỉnh Cao Bằng';</script>
</body></html>
"""


@pytest.fixture
def static_site(tmp_path):
    (tmp_path / "index.html").write_text(PAGE, encoding="utf-8")

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    handler = functools.partial(Quiet, directory=str(tmp_path))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}/"
    finally:
        httpd.shutdown()
        httpd.server_close()


@pytest.mark.browser
def test_browser_renders_vietnamese(page, static_site, artifacts_dir):
    response = page.goto(static_site)
    assert response is not None and response.ok
    assert page.title() == "Kế hoạch PCCC"
    assert page.locator("h1").inner_text() == "Kế hoạch phòng cháy, chữa cháy và cứu nạn, cứu hộ"
    assert page.locator("#js").inner_text() == "Huyện Hạ Lang, tỉnh Cao Bằng"  # JS ran
    shot = artifacts_dir / "page.png"
    page.screenshot(path=str(shot), full_page=True)
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 1000
