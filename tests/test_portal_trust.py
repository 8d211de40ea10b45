"""The portal under attack (issue 13): secrets fail closed, one spelling per link, replayed
answers, rate limits per obligation and per address, bounded refusal rows, and the
intake process dying with a killed portal. Real SQLite (and PostgreSQL) stores."""

from __future__ import annotations

import argparse
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from itsdangerous import TimestampSigner, URLSafeTimedSerializer
from sqlalchemy import select

import engine.config
from engine import links
from engine.config import ConfigError, Settings
from engine.links import DEMO_SECRET, SALT, LinkError, make_token, read_token
from engine.store.db import session_scope
from engine.store.models import AuditEvent, Submission
from portal.ratelimit import PortalLimits, Rate
from tests.test_portal_support import (
    OTHER_UNIT,
    SECRET,
    UNIT,
    free_port,
    make_world,
    world_fixture,
)

pytestmark = pytest.mark.filterwarnings("ignore:Using `httpx` with `starlette.testclient`")

ROOT = Path(__file__).resolve().parents[1]
REPORT = {
    "f-so-vu-chay": "2",
    "f-ty-le-tap-huan": "95,5",
    "f-dan-phong": "Đã rà soát",
    "f-ngay-ra-soat": "2027-08-30",
    "f-ket-qua": "Tuyên truyền tại 12 thôn; kiện toàn 3 đội dân phòng.",
}
LOTS = Rate(10_000.0, 10_000.0)
CSRF = re.compile(r'name="csrf" value="([^"]+)"')


@pytest.fixture
def world(tmp_path, monkeypatch):  # type: ignore[no-untyped-def]
    yield from world_fixture(tmp_path, monkeypatch)


def client_for(world, **kwargs):  # type: ignore[no-untyped-def]
    from starlette.testclient import TestClient

    kwargs.setdefault("handoff", lambda _id: None)  # no intake: these tests are about the POST
    return TestClient(world.app(**kwargs))


def form_of(client, token: str) -> str:  # type: ignore[no-untyped-def]
    page = client.get(f"/o/{token}")
    assert page.status_code == 200, page.text
    found = CSRF.search(page.text)
    assert found
    return found.group(1)


def post(client, token: str, csrf: str, **values: str):  # type: ignore[no-untyped-def]
    data = {**REPORT, **values, "csrf": csrf}
    return client.post(f"/o/{token}/submit", data=data, files={}, follow_redirects=False)


def cmd_portal_exit(monkeypatch, **env: str) -> int:  # type: ignore[no-untyped-def]
    from cli.portal import cmd_portal

    monkeypatch.delenv("KEHOACH_PORTAL_SECRET", raising=False)
    monkeypatch.delenv("KEHOACH_DEMO", raising=False)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    engine.config.settings.cache_clear()
    try:
        return cmd_portal(argparse.Namespace(host="127.0.0.1", port=0, database_url=None))
    finally:
        engine.config.settings.cache_clear()


# ---------------------------------------------------------------- secrets fail closed


def test_without_a_secret_nothing_signs_or_checks_links(monkeypatch, capsys, tmp_path):
    """The attack: no KEHOACH_PORTAL_SECRET, a portal on 127.0.0.1 behind a proxy, and a
    link minted by anyone with the development key from the source."""
    from portal.app import create_app

    forged = URLSafeTimedSerializer(DEMO_SECRET, salt=SALT).dumps(
        {"o": 1, "u": UNIT, "c": "2027", "v": 1}
    )
    bare = Settings(home=tmp_path)
    with pytest.raises(ConfigError, match="KEHOACH_PORTAL_SECRET"):
        read_token(forged, conf=bare)
    with pytest.raises(ConfigError, match="KEHOACH_PORTAL_SECRET"):
        make_token(1, UNIT, "2027", 1, bare)
    with pytest.raises(ConfigError, match="KEHOACH_PORTAL_SECRET"):
        create_app(bare, f"sqlite:///{tmp_path / 'x.sqlite'}")
    assert cmd_portal_exit(monkeypatch, KEHOACH_HOME=str(tmp_path)) == 2
    message = capsys.readouterr().err
    assert "Chưa đặt KEHOACH_PORTAL_SECRET" in message and "KEHOACH_DEMO=1" in message
    assert "Traceback" not in message


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("KEHOACH_PORTAL_SECRET", "s" * 31),
        ("KEHOACH_PORTAL_OLD_SECRETS", f"{'o' * 40}, {'p' * 31}"),
    ],
)
def test_a_secret_shorter_than_32_bytes_is_refused(monkeypatch, capsys, tmp_path, variable, value):
    env = {"KEHOACH_HOME": str(tmp_path), "KEHOACH_PORTAL_SECRET": "k" * 32, variable: value}
    assert cmd_portal_exit(monkeypatch, **env) == 2
    message = capsys.readouterr().err
    assert variable in message and "31 byte" in message and "ít nhất 32 byte" in message
    conf = engine.config.load_settings(env)
    with pytest.raises(ConfigError, match="31 byte"):
        make_token(1, UNIT, "2027", 1, conf)


def test_bytes_count_not_characters_and_rotation_still_works():
    short = Settings(portal_secret="ệ" * 10)  # 10 characters, 30 bytes
    with pytest.raises(ConfigError, match="30 byte"):
        make_token(1, UNIT, "2027", 1, short)
    old = Settings(portal_secret="ệ" * 11)  # 33 bytes
    token = make_token(7, UNIT, "2027", 1, old)
    rotated = Settings(portal_secret="n" * 48, portal_old_secrets=f"{'x' * 40},{'ệ' * 11}")
    assert read_token(token, conf=rotated).obligation_id == 7
    with pytest.raises(LinkError, match="forged"):  # the new key is not the old one's
        read_token(make_token(8, UNIT, "2027", 1, rotated), conf=old)


def test_demo_mode_signs_with_the_demo_key_and_warns_once(monkeypatch, capsys):
    from cli.running import enter_demo_mode

    monkeypatch.setattr(links, "_announced", False)
    demo = Settings(demo=True, portal_base_url="https://kehoach.example.gov.vn")
    said: list[str] = []
    links.announce(demo, write=said.append)
    links.announce(demo, write=said.append)
    token = make_token(3, UNIT, "2027", 1, demo)
    assert read_token(token, conf=demo).obligation_id == 3
    assert read_token(token, conf=Settings(portal_secret=DEMO_SECRET)).obligation_id == 3
    [warning] = said  # once per process
    assert "CẢNH BÁO" in warning and "khóa chạy thử công khai" in warning
    assert "https" in warning and "KEHOACH_PORTAL_SECRET" in warning
    # with a secret, demo mode changes nothing: the secret signs, nothing is said
    assert links.demo_warning(Settings(demo=True, portal_secret="k" * 40)) is None
    # kehoach demo / simulate switch it on for themselves (and the processes they start)
    monkeypatch.setattr(links, "_announced", False)
    monkeypatch.delenv("KEHOACH_PORTAL_SECRET")
    monkeypatch.delenv("KEHOACH_DEMO", raising=False)
    try:
        enter_demo_mode()
        assert os.environ["KEHOACH_DEMO"] == "1" and engine.config.settings().demo
        make_token(3, UNIT, "2027", 1)
    finally:
        engine.config.settings.cache_clear()
    assert capsys.readouterr().err.count("CẢNH BÁO") == 1


# ---------------------------------------------------------------- one spelling per link


def spellings(token: str) -> list[str]:
    """Other spellings itsdangerous decoded to the same signature: the unused low bits of
    the signature's last character, padding, characters outside base64's alphabet."""
    head, _, signature = token.rpartition(".")
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    index = alphabet.index(signature[-1])
    same_bits = [c for c in alphabet[index & ~3 : (index & ~3) + 4] if c != signature[-1]]
    return [
        *(f"{head}.{signature[:-1]}{c}" for c in same_bits),
        f"{token}=",
        f"{token}==",
        f"{head}.{signature[:5]}é{signature[5:]}",
        f"{token}=!",
    ]


def test_a_link_has_exactly_one_accepted_spelling(world):
    token = world.token()
    variants = spellings(token)
    assert len(variants) == 7
    for variant in variants:
        with pytest.raises(LinkError, match="malformed"):
            read_token(variant, conf=world.settings)
    with client_for(world) as client:
        assert client.get(f"/o/{token}").status_code == 200
        for variant in variants:
            page = client.get(f"/o/{variant}")
            assert page.status_code == 403, variant
            assert "Đường dẫn không hợp lệ" in page.text
            csrf = CSRF.search(page.text)
            assert csrf  # the refusal page's own form, used on the answer form
            assert post(client, variant, csrf.group(1)).status_code == 403, variant
    assert world.count(Submission) == 0


def _backdated(world, days: int) -> str:  # type: ignore[no-untyped-def]
    """Another genuine link for UNIT's report (issued ``days`` ago)."""

    class Backdated(TimestampSigner):
        def get_timestamp(self) -> int:
            return int(time.time()) - days * 86400

    payload = {"o": world.obligation_id(), "u": UNIT, "c": "2027", "v": 1}
    return URLSafeTimedSerializer(SECRET, salt=SALT, signer=Backdated).dumps(payload)


def test_the_links_and_spellings_of_one_obligation_share_its_rate_limit(world):
    token, older = world.token(), _backdated(world, 3)
    assert older != token
    # percent-encoding every character is the same token once the path is decoded
    encoded = "".join(f"%{ord(c):02X}" for c in token)
    reads = PortalLimits(per_address=LOTS, link_read=Rate(0.001, 3))
    with client_for(world, limits=reads) as client:
        codes = [client.get(f"/o/{t}").status_code for t in (token, older, *spellings(token))]
        assert codes[:2] == [200, 200] and set(codes[2:]) == {403}
        assert client.get(f"/o/{encoded}").status_code == 200  # the third
        assert client.get(f"/o/{token}").status_code == 429  # one obligation, one bucket
        assert client.get(f"/o/{older}").status_code == 429
        assert client.get(f"/o/{token}/", follow_redirects=False).status_code in (307, 404)
        assert client.get(f"/o/{world.token(OTHER_UNIT)}").status_code == 200  # its own
    writes = PortalLimits(per_address=LOTS, link_write=Rate(0.001, 2))
    with client_for(world, limits=writes) as client:
        # one link signed once: two signings a second apart are two spellings of it
        other = world.token(OTHER_UNIT)
        forms = {t: form_of(client, t) for t in (token, other)}
        forms[older] = client.app.state.portal.form_token(older, client.cookies["kh_nonce"])
        codes = [
            post(client, link, forms[link], **{"f-so-vu-chay": str(n)}).status_code
            for n, link in enumerate((token, older, token, older, other))
        ]
        assert codes == [303, 303, 429, 429, 303]
    assert world.count(Submission) == 3


def test_answers_are_limited_per_address_over_every_link(world):
    limits = PortalLimits(per_address=LOTS, address_write=Rate(0.001, 2))
    with client_for(world, limits=limits) as client:
        mine, theirs = world.token(), world.token(OTHER_UNIT)
        forms = {t: form_of(client, t) for t in (mine, theirs)}
        assert post(client, mine, forms[mine]).status_code == 303
        assert post(client, theirs, forms[theirs]).status_code == 303
        refused = post(client, mine, forms[mine], **{"f-so-vu-chay": "7"})
        assert refused.status_code == 429 and "Quá nhiều yêu cầu" in refused.text
    assert world.count(Submission) == 2


# ---------------------------------------------------------------- replayed answers


def test_a_replayed_answer_gets_the_first_receipt_not_a_new_version(world):
    handed: list[int] = []
    with client_for(world, handoff=handed.append) as client:
        token = world.token()
        csrf = form_of(client, token)
        first = post(client, token, csrf)
        replays = [post(client, token, csrf) for _ in range(3)]
        assert first.status_code == 303 and first.headers["location"].endswith("/receipt/1#da-nhan")
        for replay in replays:
            assert replay.status_code == 303
            assert replay.headers["location"] == first.headers["location"]
        with session_scope(world.db_url) as session:
            [submission] = session.scalars(select(Submission)).all()
            assert submission.form_key and len(submission.form_key) == 64
        # a real correction: the same page with other figures, or the form loaded again
        corrected = post(client, token, csrf, **{"f-so-vu-chay": "4"})
        assert corrected.headers["location"].endswith("/receipt/2#da-nhan")
        again = post(client, token, form_of(client, token))  # the same answer, a new form
        assert again.headers["location"].endswith("/receipt/3#da-nhan")
    assert len(handed) == 3  # the first, the correction, the new form: no replay
    with session_scope(world.db_url) as session:
        versions = session.scalars(select(Submission.version).order_by(Submission.id)).all()
        actions = session.scalars(select(AuditEvent.action)).all()
    assert versions == [1, 2, 3]
    assert actions.count("portal.submit_replayed") == 3 and actions.count("portal.submit") == 3


def test_concurrent_replays_on_two_portals_store_one_version(world):
    """A replay racing the first answer through another worker process: the key is
    unique per obligation, so the second insert fails and finds the first."""
    from starlette.datastructures import FormData

    from portal.link import Posted
    from portal.posting import take_answer

    states = [world.app().state.portal, world.app().state.portal]  # no shared lock
    token, nonce = world.token(), "n" * 32
    field = states[0].form_token(token, nonce)
    barrier = threading.Barrier(4)
    results: list[tuple[str, int | None]] = []

    def answer(i: int) -> None:
        state = states[i % 2]
        form = FormData([("csrf", field), *REPORT.items()])
        barrier.wait()
        response, stored = take_answer(state, Posted(state, token, form, "127.0.0.1", nonce))
        results.append((response.headers["location"], stored))

    threads = [threading.Thread(target=answer, args=(i,)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert len(results) == 4
    assert {location for location, _ in results} == {f"/o/{token}/receipt/1#da-nhan"}
    assert len([stored for _, stored in results if stored is not None]) == 1
    assert world.count(Submission) == 1


@pytest.mark.postgres
def test_a_replayed_answer_on_postgresql(tmp_path, monkeypatch, postgres_url):
    pg = make_world(tmp_path, monkeypatch, db_url=postgres_url)
    try:
        with client_for(pg) as client:
            token = pg.token()
            csrf = form_of(client, token)
            locations = {post(client, token, csrf).headers["location"] for _ in range(3)}
        assert locations == {f"/o/{token}/receipt/1#da-nhan"}
        assert pg.count(Submission) == 1
    finally:
        engine.config.settings.cache_clear()


def test_an_answer_takes_one_thread_hop(world):
    """Opening the posted link and taking the answer used to be two hops to the thread
    pool, each a wait for a free thread under load."""
    import anyio.to_thread

    hops: list[object] = []
    real = anyio.to_thread.run_sync

    async def counted(func, *args, **kwargs):  # type: ignore[no-untyped-def]
        hops.append(func)
        return await real(func, *args, **kwargs)

    with client_for(world) as client:
        token = world.token()
        csrf = form_of(client, token)
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(anyio.to_thread, "run_sync", counted)
            assert post(client, token, csrf).status_code == 303
    assert len(hops) == 1, hops


# ---------------------------------------------------------------- refusals in the audit log


def test_refused_requests_write_a_bounded_number_of_audit_rows(world):
    """One address once wrote 136 audit rows in 0.8 s with a bad CSRF field."""
    limits = PortalLimits(
        per_address=LOTS, link_write=LOTS, address_write=LOTS, refusal_audit=Rate(0.001, 5)
    )
    token = world.token()
    before = world.count(AuditEvent)
    with client_for(world, limits=limits) as client:
        form_of(client, token)  # the nonce cookie
        for _ in range(60):
            assert post(client, token, "bad.field").status_code == 403
            refused = client.post("/link/request", data={"token": token, "csrf": "bad.field"})
            assert refused.status_code == 403
        assert world.count(AuditEvent, action="portal.csrf_rejected") == 5
    # the portal stopped: the rows not written are counted in one row
    assert world.count(AuditEvent) == before + 6
    with session_scope(world.db_url) as session:
        counted = session.scalars(
            select(AuditEvent).where(AuditEvent.action == "portal.audit_suppressed")
        ).one()
        assert counted.remote_addr == "testclient"
        assert counted.data["suppressed"] == 115
        assert counted.data["actions"] == {"portal.csrf_rejected": 115}


def test_suppressed_refusals_are_counted_before_the_next_row_and_after_a_minute(world):
    from portal.audit import RefusalAudit
    from portal.ratelimit import Limiter

    now = [0.0]
    state = world.app().state.portal
    audit = RefusalAudit(
        Limiter(Rate(1 / 60, 1), clock=lambda: now[0]), state.writing, lambda: now[0]
    )
    at = world.clock.now()
    row = {"at": at, "actor": f"unit:{UNIT}", "obligation_id": world.obligation_id()}
    written = [
        audit.record("portal.csrf_rejected", remote_addr="10.0.0.1", **row) for _ in range(4)
    ]
    assert written == [True, False, False, False]
    now[0] = 61.0  # a minute later, another address's refusal writes the count that is due
    assert audit.record("portal.csrf_rejected", remote_addr="10.0.0.2", **row)
    now[0] = 122.0
    assert audit.record("portal.submit_rejected", remote_addr="10.0.0.1", **row)
    with session_scope(world.db_url) as session:
        rows = session.execute(
            select(AuditEvent.action, AuditEvent.remote_addr, AuditEvent.data)
            .where(AuditEvent.action.like("portal.%"))
            .order_by(AuditEvent.id)
        ).all()
    assert [(a, r) for a, r, _ in rows] == [
        ("portal.csrf_rejected", "10.0.0.1"),
        ("portal.audit_suppressed", "10.0.0.1"),
        ("portal.csrf_rejected", "10.0.0.2"),
        ("portal.submit_rejected", "10.0.0.1"),
    ]
    assert rows[1].data["suppressed"] == 3


# ---------------------------------------------------------------- the intake process


def _descendants(pid: int) -> list:  # type: ignore[type-arg]
    import psutil

    try:
        return psutil.Process(pid).children(recursive=True)
    except psutil.NoSuchProcess:
        return []


def test_the_intake_process_dies_with_a_killed_portal(world):
    """The portal's own intake process (Prefect unreachable) outlived a SIGKILL of it."""
    import httpx
    import psutil

    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env.update(
        KEHOACH_NOW="2027-09-01T09:00:00+07:00",
        KEHOACH_INTAKE_BATCH_SECONDS="0",
        PYTHONPATH=str(ROOT),
    )
    port = free_port()
    portal = subprocess.Popen(
        [sys.executable, "-m", "cli.portal", "--port", str(port), "--database-url", world.db_url],
        env=env,
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    children: list = []  # type: ignore[type-arg]
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        with httpx.Client(base_url=base, timeout=10) as client:
            while True:
                try:
                    if client.get("/healthz").status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                assert portal.poll() is None and time.monotonic() < deadline, "no portal"
                time.sleep(0.1)
            token = world.token()
            csrf = form_of(client, token)
            assert post(client, token, csrf).status_code == 303
        while not children or world.count(Submission, intake_done=True) == 0:
            assert time.monotonic() < deadline, "the answer was not taken in"
            time.sleep(0.1)
            children = _descendants(portal.pid)
        portal.send_signal(signal.SIGKILL)
        portal.wait(timeout=10)
        gone, alive = psutil.wait_procs(children, timeout=10)
        assert alive == [], f"outlived the portal: {alive}"
    finally:
        if portal.poll() is None:
            portal.kill()
        for child in children:
            if child.is_running():
                child.kill()
