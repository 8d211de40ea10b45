"""How a serving process is set up: its request threads (portal.app, KEHOACH_PORTAL_THREADS).

At 100 answers a second on PostgreSQL with 2 workers, anyio's 40 request threads a
process reached 76-80 answers/s with a median of seconds: the threads waited on the
interpreter lock and on the plan's audit chain head. 8 threads reached 99.4-99.9/s in
three runs and 80-88/s in three later ones
(benchmarks/bench_portal.py, 2/12/2026).
"""

from __future__ import annotations

import pytest
from anyio import to_thread
from starlette.testclient import TestClient

from engine.config import ConfigError, load_settings
from portal.server import app_from_env


def _threads_of(app) -> int:  # type: ignore[no-untyped-def]
    with TestClient(app, base_url="http://127.0.0.1") as client:
        assert client.portal is not None
        return client.portal.call(lambda: to_thread.current_default_thread_limiter().total_tokens)


def test_a_worker_process_serves_with_eight_request_threads(tmp_path, monkeypatch):
    monkeypatch.setenv("KEHOACH_HOME", str(tmp_path))
    monkeypatch.setenv("KEHOACH_DATABASE_URL", f"sqlite:///{tmp_path / 'kehoach.sqlite'}")
    app = app_from_env()  # what each uvicorn worker builds (KEHOACH_PORTAL_WORKERS > 1)
    assert app.state.portal.db_url.endswith("kehoach.sqlite")
    assert _threads_of(app) == 8


def test_the_request_threads_come_from_the_setting(tmp_path, monkeypatch):
    monkeypatch.setenv("KEHOACH_HOME", str(tmp_path))
    monkeypatch.setenv("KEHOACH_DATABASE_URL", f"sqlite:///{tmp_path / 'kehoach.sqlite'}")
    monkeypatch.setenv("KEHOACH_PORTAL_THREADS", "3")
    from engine.config import settings

    settings.cache_clear()
    try:
        assert _threads_of(app_from_env()) == 3
    finally:
        settings.cache_clear()


def test_no_request_thread_is_refused_with_the_setting_named():
    with pytest.raises(ConfigError) as refused:
        load_settings({"KEHOACH_PORTAL_THREADS": "0"})
    assert str(refused.value) == (
        "KEHOACH_PORTAL_THREADS='0' nằm ngoài khoảng cho phép; ghi số nguyên từ 1 đến 256, "
        "hoặc bỏ đi để dùng mặc định 8"
    )
