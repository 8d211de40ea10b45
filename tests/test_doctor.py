"""``kehoach doctor``: each check fails on the real component it checks, and says what to do.

Closed ports (nothing listens), an empty SQLite file and an empty PostgreSQL database
(reachable, not migrated), a store at a revision this code does not know, a Prefect
server with its auth string (no string, a wrong one), its work pool missing, paused,
with no worker and with a worker whose heartbeats stopped, an SMTP server refusing the
login, short portal keys. The whole production set-up passing is in
tests/test_worker_mode.py; here the command passes (exit 0) once every part answers.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text

from cli.doctor import Check, run_checks
from engine.store.db import connect, migrate
from tests.fixtures.database import private_database
from tests.fixtures.prefect_server import PrefectServer, _free_port, start_prefect_server
from tests.fixtures.production import AUTH, POOL, PrefectAPI
from tests.test_prefect_binding import kehoach

SECRET = "doctor-test-secret-0b8e6a2d4c9f1735"


def closed() -> int:
    return _free_port()


def by_name(checks: list[Check], start: str) -> Check:
    [found] = [c for c in checks if c.name.startswith(start)]
    return found


def base_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    url = f"sqlite:///{tmp_path / 'store.sqlite'}"
    migrate(url)
    return {
        "KEHOACH_HOME": str(tmp_path / "home"),
        "KEHOACH_DATABASE_URL": url,
        "KEHOACH_PORTAL_SECRET": SECRET,
        "KEHOACH_SMTP_PORT": str(closed()),
        **extra,
    }


# ---------------------------------------------------------------- the command, closed ports


def test_nothing_listens_every_check_says_what_to_do(tmp_path: Path) -> None:
    env = {
        "KEHOACH_HOME": str(tmp_path),
        "KEHOACH_DATABASE_URL": f"postgresql+psycopg://postgres@127.0.0.1:{closed()}/kehoach",
        "PREFECT_API_URL": f"http://127.0.0.1:{closed()}/api",
        "KEHOACH_SMTP_PORT": str(closed()),
        "KEHOACH_PORTAL_SECRET": "ngan-qua",
    }
    result = kehoach(["doctor"], env)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "Traceback" not in result.stdout + result.stderr
    lines = [line for line in result.stdout.splitlines() if line.startswith("[LỖI]")]
    assert len(lines) == 4, result.stdout
    store, prefect, smtp, secret = lines
    assert "không kết nối được (kết nối bị từ chối" in store and "KEHOACH_DATABASE_URL" in store
    assert "kết nối bị từ chối" in prefect and "prefect server start" in prefect
    assert "kết nối bị từ chối" in smtp and "KEHOACH_SMTP_PORT" in smtp
    assert "chỉ dài 8 byte" in secret and "secrets.token_urlsafe" in secret
    assert "4/4 mục chưa đạt" in result.stdout


def test_no_prefect_configured_is_a_failure_not_a_local_server(tmp_path: Path) -> None:
    checks = run_checks(base_env(tmp_path))
    prefect = by_name(checks, "Prefect API")
    assert not prefect.ok and "PREFECT_API_URL" in (prefect.problem or "")


# ---------------------------------------------------------------- the store


def test_an_empty_sqlite_file_is_reachable_but_not_migrated(tmp_path: Path) -> None:
    path = tmp_path / "empty.sqlite"
    sqlite3.connect(path).close()
    env = base_env(tmp_path, KEHOACH_DATABASE_URL=f"sqlite:///{path}")
    store = by_name(run_checks(env), "Cơ sở dữ liệu kehoach")
    assert not store.ok and "chưa có cấu trúc bảng" in (store.problem or "")
    migrate(f"sqlite:///{path}")
    store = by_name(run_checks(env), "Cơ sở dữ liệu kehoach")
    assert store.ok and "cấu trúc mới nhất" in store.found


def test_a_missing_sqlite_file_is_named(tmp_path: Path) -> None:
    env = base_env(tmp_path, KEHOACH_DATABASE_URL=f"sqlite:///{tmp_path / 'none.sqlite'}")
    store = by_name(run_checks(env), "Cơ sở dữ liệu kehoach")
    assert not store.ok and "không có tệp" in (store.problem or "")
    assert not (tmp_path / "none.sqlite").exists()  # the doctor creates nothing


def test_an_empty_postgres_database_then_one_from_a_newer_kehoach(tmp_path: Path) -> None:
    with private_database("h_scale_doctor") as url:
        env = base_env(tmp_path, KEHOACH_DATABASE_URL=url)
        store = by_name(run_checks(env), "Cơ sở dữ liệu kehoach")
        assert not store.ok and "chưa có cấu trúc bảng" in (store.problem or "")
        migrate(url)
        assert by_name(run_checks(env), "Cơ sở dữ liệu kehoach").ok
        with connect(url).begin() as conn:
            conn.execute(text("UPDATE alembic_version SET version_num = '9999_from_later'"))
        connect(url).dispose()
        store = by_name(run_checks(env), "Cơ sở dữ liệu kehoach")
        assert not store.ok and "9999_from_later" in (store.problem or "")


# ---------------------------------------------------------------- SMTP, the portal key


def test_smtp_answering_and_refusing_a_login(tmp_path: Path, smtp_server, smtp_server_tls) -> None:
    env = base_env(tmp_path, KEHOACH_SMTP_PORT=str(smtp_server.port))
    assert by_name(run_checks(env), "Máy chủ SMTP").ok
    tls = {
        "KEHOACH_SMTP_PORT": str(smtp_server_tls.port),
        "KEHOACH_SMTP_SECURITY": "starttls",
        "KEHOACH_SMTP_CA_FILE": str(smtp_server_tls.ca_cert_path),
        "KEHOACH_SMTP_USERNAME": smtp_server_tls.username,
    }
    wrong = by_name(
        run_checks(base_env(tmp_path, **tls, KEHOACH_SMTP_PASSWORD="sai")), "Máy chủ SMTP"
    )
    assert not wrong.ok and "từ chối đăng nhập" in (wrong.problem or "")
    right = base_env(tmp_path, **tls, KEHOACH_SMTP_PASSWORD=smtp_server_tls.password)
    smtp = by_name(run_checks(right), "Máy chủ SMTP")
    assert smtp.ok and "đã đăng nhập" in smtp.found
    plain = by_name(run_checks({**right, "KEHOACH_SMTP_SECURITY": "none"}), "Máy chủ SMTP")
    assert not plain.ok, plain  # a server that wants STARTTLS refuses the plain login


@pytest.mark.parametrize(
    ("secrets", "expected"),
    [
        ({"KEHOACH_PORTAL_SECRET": ""}, "Chưa đặt KEHOACH_PORTAL_SECRET"),
        ({"KEHOACH_PORTAL_SECRET": "x" * 31}, "chỉ dài 31 byte"),
        ({"KEHOACH_PORTAL_OLD_SECRETS": "cu-ngan"}, "khóa cũ thứ 1"),
        ({"KEHOACH_PORTAL_SECRET": "", "KEHOACH_DEMO": "1"}, "Chưa đặt KEHOACH_PORTAL_SECRET"),
    ],
)
def test_portal_key_missing_or_short(tmp_path: Path, secrets: dict, expected: str) -> None:
    key = by_name(run_checks(base_env(tmp_path, **secrets)), "Khóa ký đường dẫn")
    assert not key.ok and expected in (key.problem or "")


# ---------------------------------------------------------------- Prefect with its auth string


@pytest.fixture(scope="module")
def secured(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrefectServer]:
    from tests.fixtures.prefect_server import _stop_process_group

    server = start_prefect_server(
        tmp_path_factory.mktemp("prefect-doctor"),
        extra_env={
            "PREFECT_SERVER_API_AUTH_STRING": AUTH,
            "PREFECT_SERVER_API_CSRF_PROTECTION_ENABLED": "true",
        },
        services=False,
        timeout=180,  # a first start migrates a new SQLite file: over 60 s at load 8
    )
    yield server
    _stop_process_group(server.process)


@pytest.mark.prefect
def test_prefect_credentials_pool_and_workers(tmp_path: Path, secured, smtp_server) -> None:
    env = base_env(
        tmp_path, PREFECT_API_URL=secured.api_url, KEHOACH_SMTP_PORT=str(smtp_server.port)
    )

    def prefect(**extra: str) -> list[str]:
        checks = run_checks({**env, **extra})
        return [
            c.line()
            for c in checks
            if c.name.startswith(("Prefect", "Cơ sở dữ liệu của", "Xác thực", "Work"))
        ]

    api, auth = PrefectAPI(secured.api_url), {"PREFECT_API_AUTH_STRING": AUTH}
    api.http.delete(f"/work_pools/{POOL}")
    nothing = prefect()
    assert nothing[0].startswith("[ĐẠT]") and "máy chủ từ chối xác thực (401)" in nothing[-1]
    assert len(nothing) == 3  # the API, its database, the refusal: the pool is not read
    assert "401" in prefect(PREFECT_API_AUTH_STRING="kehoach-ops:sai")[-1]
    assert "chưa có. Chạy `kehoach deploy all`" in prefect(**auth)[-1]

    api.post("/work_pools/", {"name": POOL, "type": "process"})
    assert "không có worker nào đang chạy" in prefect(**auth)[-1]
    # what `prefect worker start` sends every interval: here once, every 1 s promised
    heartbeat = {"name": "may-chay-flow-1", "heartbeat_interval_seconds": 1}
    api.post(f"/work_pools/{POOL}/workers/heartbeat", heartbeat)
    live = prefect(**auth)[-1]
    assert live.startswith("[ĐẠT]") and "may-chay-flow-1" in live, live
    time.sleep(3.5)  # three missed heartbeats
    stale = prefect(**auth)[-1]
    assert "1 worker đã từng kết nối, không còn tín hiệu" in stale, stale

    heartbeat["heartbeat_interval_seconds"] = 60
    api.post(f"/work_pools/{POOL}/workers/heartbeat", heartbeat)
    api.http.patch(f"/work_pools/{POOL}", json={"is_paused": True}).raise_for_status()
    assert "đang tạm dừng" in prefect(**auth)[-1]
    api.http.patch(f"/work_pools/{POOL}", json={"is_paused": False}).raise_for_status()

    # every part answers: the command passes
    passed = kehoach(["doctor"], {**env, **auth})
    assert passed.returncode == 0, passed.stdout + passed.stderr
    assert "Cả 7 mục đều đạt." in passed.stdout
