"""How a serving process is set up: the GIL switch interval (portal.server).

At 100 answers a second on PostgreSQL with 2 workers, CPython's 5 ms switch interval
made each answer hold its plan's audit chain head for ~20 ms (a GIL wait after every
round trip), and answers queued for seconds (benchmarks/bench_portal.py).
"""

from __future__ import annotations

import sys

from portal.server import app_from_env


def test_a_worker_process_switches_threads_every_millisecond(tmp_path, monkeypatch):
    monkeypatch.setenv("KEHOACH_HOME", str(tmp_path))
    monkeypatch.setenv("KEHOACH_DATABASE_URL", f"sqlite:///{tmp_path / 'kehoach.sqlite'}")
    before = sys.getswitchinterval()
    try:
        sys.setswitchinterval(0.005)  # CPython's default
        app = app_from_env()  # what each uvicorn worker builds (KEHOACH_PORTAL_WORKERS > 1)
        assert app.state.portal.db_url.endswith("kehoach.sqlite")
        assert sys.getswitchinterval() == 0.001
    finally:
        sys.setswitchinterval(before)
