"""How a serving process is set up: its request threads (portal.app, KEHOACH_PORTAL_THREADS).

At 100 answers a second on PostgreSQL with 2 workers, anyio's 40 request threads a
process reached 76-80 answers/s with a median of seconds: the threads waited on the
interpreter lock and on the plan's audit chain head. 8 threads reached 99.4-99.9/s in
three runs and 80-88/s in three later ones (benchmarks/bench_portal.py, 2/12/2026). Once
an answer took one transaction (portal.posting), 8 threads kept up with 100/s but the
POST p99 passed 200 ms in 3 of 9 runs (38-391 ms): the threads holding the audit chain
head waited for the interpreter lock while up to 8 others waited on the row
(pg_stat_activity); 4 threads measured 40-120 ms in 4 of 4 runs, GET p99 8.6-9.5 ms.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from anyio import to_thread
from starlette.testclient import TestClient

from engine.config import ConfigError, load_settings
from portal.server import app_from_env


def _threads_of(app) -> int:  # type: ignore[no-untyped-def]
    with TestClient(app, base_url="http://127.0.0.1") as client:
        assert client.portal is not None
        return client.portal.call(lambda: to_thread.current_default_thread_limiter().total_tokens)


def test_a_worker_process_serves_with_four_request_threads(tmp_path, monkeypatch):
    monkeypatch.setenv("KEHOACH_HOME", str(tmp_path))
    monkeypatch.setenv("KEHOACH_DATABASE_URL", f"sqlite:///{tmp_path / 'kehoach.sqlite'}")
    app = app_from_env()  # what each uvicorn worker builds (KEHOACH_PORTAL_WORKERS > 1)
    assert app.state.portal.db_url.endswith("kehoach.sqlite")
    assert _threads_of(app) == 4


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
        "hoặc bỏ đi để dùng mặc định 4"
    )


_FREEZE_PROBE = """
import gc, sys
from starlette.testclient import TestClient
from portal.app import create_app
from portal.server import app_from_env
app = app_from_env() if sys.argv[1] == "serving" else create_app(intake_flow=False)
before = gc.get_freeze_count()
with TestClient(app, base_url="http://127.0.0.1") as client:
    reply = client.get("/healthz")
    assert (reply.status_code, reply.text) == (200, "ok"), (reply.status_code, reply.text)
    print(before, gc.get_freeze_count())
"""


@pytest.mark.parametrize(("how", "frozen"), [("serving", True), ("embedded", False)])
def test_a_serving_process_freezes_its_start_up_objects_out_of_the_collector(tmp_path, how, frozen):
    """A full collection scanned every start-up object while the process's requests
    waited (116-270 ms a pass at 100 answers/s, PostgreSQL, 2 workers; 21-40 ms frozen).
    Only a process of its own freezes them: an app built inside another program (the
    tests, the operator's tools) leaves that program's collector alone."""
    import os
    import subprocess
    import sys

    env = {
        **os.environ,
        "KEHOACH_HOME": str(tmp_path),
        "KEHOACH_DATABASE_URL": f"sqlite:///{tmp_path / 'kehoach.sqlite'}",
    }
    done = subprocess.run(
        [sys.executable, "-c", _FREEZE_PROBE, how],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        cwd=Path(__file__).resolve().parents[1],
    )
    assert done.returncode == 0, done.stderr
    before, after = map(int, done.stdout.split()[-2:])
    assert before == 0
    assert (after > 10_000) is frozen, (before, after)
