"""Prefect down or hung while units answer: the portal still answers and loses nothing.

The portal hands answers to the intake flow on the Prefect server; when the server does
not answer (a dead port) or hangs (its processes stopped with SIGSTOP, the worst case:
connections are accepted and nothing comes back), the portal must still answer the
unit at once, with its receipt, and take the answer in itself.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import time

import pytest
from sqlalchemy import select

from engine import config
from engine.store.db import session_scope
from engine.store.models import AuditEvent, Obligation, Submission
from tests.test_portal_support import world_fixture

pytestmark = [pytest.mark.filterwarnings("ignore:Using `httpx` with `starlette.testclient`")]

REPORT = {
    "f-so-vu-chay": "0",
    "f-ty-le-tap-huan": "100",
    "f-dan-phong": "Đã rà soát",
    "f-ket-qua": "Không có vụ cháy.",
}


@pytest.fixture
def world(tmp_path, monkeypatch):  # type: ignore[no-untyped-def]
    yield from world_fixture(tmp_path, monkeypatch)


def _answer_and_wait(world) -> tuple[float, str]:  # type: ignore[no-untyped-def]
    """(seconds the POST took, why the portal took the answer in itself)."""
    from starlette.testclient import TestClient

    with TestClient(world.app(intake_flow=True)) as client:
        token = world.token()
        page = client.get(f"/o/{token}")
        csrf = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)
        started = time.monotonic()
        response = client.post(f"/o/{token}/submit", data={**REPORT, "csrf": csrf})
        took = time.monotonic() - started
        assert response.status_code == 200 and "Đã nhận" in response.text, response.text[:300]
        client.app.state.handoff.wait(timeout=90)
    with session_scope(world.db_url) as session:
        [sub] = session.scalars(select(Submission)).all()
        assert sub.intake_done, "the answer was never taken in"
        assert session.get(Obligation, world.obligation_id()).status == "submitted"
        [event] = session.scalars(
            select(AuditEvent).where(AuditEvent.action == "portal.intake_inline")
        ).all()
        return took, str(event.data["reason"])


def test_prefect_down_the_portal_answers_and_takes_the_answer_in(world, monkeypatch):
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        dead = probe.getsockname()[1]
    monkeypatch.setenv("KEHOACH_PREFECT_API_URL", f"http://127.0.0.1:{dead}/api")
    config.settings.cache_clear()
    world.settings = config.settings()
    took, reason = _answer_and_wait(world)
    print(f"\nPrefect down: POST answered in {took:.2f} s; intake in the portal: {reason}")
    assert took < 5.0


@pytest.mark.prefect
def test_prefect_hung_the_portal_answers_and_takes_the_answer_in(world, prefect_server):
    group = os.getpgid(prefect_server.process.pid)
    os.killpg(group, signal.SIGSTOP)
    try:
        took, reason = _answer_and_wait(world)
    finally:
        os.killpg(group, signal.SIGCONT)
    print(f"\nPrefect hung (SIGSTOP): POST answered in {took:.2f} s; intake: {reason}")
    assert took < 5.0
