"""A real `kehoach dispatch` process killed mid-run: how many messages come twice, how
long the rest waits (issue 13, item 6).

The dispatcher sends to the loopback SMTP server at a limited rate, so it is still
sending when it is SIGKILLed. Then a new dispatcher runs at once. Counted from what the
server received: every message at least once; messages received twice (same
Message-ID) at most the rows the killed process had in flight (``sending``), which is at
most its SMTP connections; the rows it had not claimed go out at once, the ones in
flight after their short lease, never after the old 10-minute one.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
from sqlalchemy import func, select

from engine.config import load_settings
from engine.outbox import enqueue_for_obligation
from engine.states import OutboxStatus
from engine.store.db import migrate, session_scope
from engine.store.models import OutboxMessage
from notifications.dispatch import IN_FLIGHT_PER_CONNECTION, dispatch_pending_sync
from tests.notifications_factory import make_world

ROOT = Path(__file__).resolve().parent.parent
MESSAGES = 80
CONNECTIONS = 4
RATE = 40  # messages per second: the run takes 2 s, the kill comes after about 0.5 s
LEASE = 3.0  # seconds; the default is 60


def _queue(url: str, count: int) -> None:
    with session_scope(url) as session:
        obligation = make_world(session).obligation
        for step in range(count):
            enqueue_for_obligation(session, obligation, "reminder", str(step))


def _env(url: str, smtp_server, tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KEHOACH_")}
    env.update(
        KEHOACH_HOME=str(tmp_path / "var"),
        KEHOACH_DATABASE_URL=url,
        KEHOACH_SMTP_HOST=smtp_server.host,
        KEHOACH_SMTP_PORT=str(smtp_server.port),
        KEHOACH_SMTP_CONNECTIONS=str(CONNECTIONS),
        KEHOACH_SMTP_RATE_PER_SECOND=str(RATE),
        KEHOACH_DISPATCH_LEASE_SECONDS=str(LEASE),
        KEHOACH_MAIL_HOURS="any",  # the real clock: whatever hour the test runs at
        KEHOACH_MAIL_FROM="kehoach@halang.example",
        KEHOACH_PORTAL_SECRET="dispatch-test-secret-0123456789abcdef",
    )
    return env


def _dispatcher(env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "cli", "dispatch"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _statuses(url: str) -> Counter[str]:
    with session_scope(url) as session:
        rows = session.execute(
            select(OutboxMessage.status, func.count()).group_by(OutboxMessage.status)
        ).all()
    return Counter({str(status): count for status, count in rows})


def _wait_for_mail(smtp_server, count: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while len(smtp_server.mailbox) < count:
        assert time.monotonic() < deadline, f"only {len(smtp_server.mailbox)} messages arrived"
        time.sleep(0.01)


def _received(smtp_server) -> Counter[str]:
    return Counter(m.message["Message-ID"] for m in smtp_server.messages)


@pytest.fixture
def url(tmp_path):
    url = f"sqlite:///{tmp_path / 'kehoach.sqlite'}"
    migrate(url)
    _queue(url, MESSAGES)
    return url


def test_a_killed_dispatcher_resends_at_most_its_messages_in_flight(url, smtp_server, tmp_path):
    env = _env(url, smtp_server, tmp_path)
    killed = _dispatcher(env)
    _wait_for_mail(smtp_server, 20, timeout=60)
    killed.send_signal(signal.SIGKILL)
    killed.wait(10)
    at_kill = _statuses(url)
    delivered_before = len(_received(smtp_server))
    in_flight = at_kill[OutboxStatus.SENDING]
    # each connection: the row it was sending, and the one whose reply was not recorded
    # yet or the one claimed for it (notifications.dispatch.Dispatcher._work)
    assert in_flight <= CONNECTIONS * IN_FLIGHT_PER_CONNECTION, at_kill
    assert at_kill[OutboxStatus.PENDING] > 0, "killed too late: nothing left to send"

    # A new dispatcher at once: everything the killed one had not claimed goes now.
    killed_at = time.monotonic()
    second = subprocess.run(
        [sys.executable, "-m", "cli", "dispatch"], cwd=ROOT, env=env, capture_output=True
    )
    assert second.returncode == 0, second.stderr
    rest_seconds = time.monotonic() - killed_at
    after_second = _statuses(url)
    assert after_second[OutboxStatus.PENDING] == 0
    assert after_second[OutboxStatus.SENDING] <= in_flight  # only the leased ones wait
    # The rows in flight: sent again once their short lease is over (the killed process
    # renewed it at most LEASE / 3 before it died).
    # (When the second pass ran longer than that, it took them over itself.)
    if after_second[OutboxStatus.SENDING]:
        time.sleep(max(0.0, LEASE - (time.monotonic() - killed_at)))
        third = dispatch_pending_sync(url, load_settings(env))
        assert third.sent == after_second[OutboxStatus.SENDING]
    all_seconds = time.monotonic() - killed_at
    assert _statuses(url)[OutboxStatus.SENT] == MESSAGES

    received = _received(smtp_server)
    resent = sum(n - 1 for n in received.values())
    with session_scope(url) as session:
        ids = set(session.scalars(select(OutboxMessage.message_id)))
    assert set(received) == ids and len(ids) == MESSAGES, "every message, under its own id"
    print(
        f"\nkill after {delivered_before}/{MESSAGES} delivered: {in_flight} rows in flight "
        f"({CONNECTIONS} connections); resent {resent} (same Message-ID); the other "
        f"{MESSAGES - delivered_before - in_flight} sent by a new dispatcher "
        f"{rest_seconds:.1f} s after the kill, the in-flight ones {all_seconds:.1f} s after "
        f"it (lease {LEASE:.0f} s; before: batches of 200 and a 600 s lease)"
    )
    assert resent <= in_flight
    # The rows not in flight did not wait for any lease: the new dispatcher sent them all
    # (PENDING is 0 above) in one run of ~2.5 s on an idle machine. Before, they waited the
    # 600 s lease; the bound leaves room for a loaded machine (21 s seen at load 9).
    assert rest_seconds < 120
    with session_scope(url) as session:
        attempts = session.scalars(select(OutboxMessage.attempts)).all()
    assert max(attempts) <= 2


def test_a_stopped_dispatcher_leaves_nothing_claimed(url, smtp_server, tmp_path):
    env = _env(url, smtp_server, tmp_path)
    stopped = _dispatcher(env)
    _wait_for_mail(smtp_server, 20, timeout=60)
    stopped.send_signal(signal.SIGTERM)
    out, err = stopped.communicate(timeout=30)
    assert stopped.returncode == 0, err
    at_stop = _statuses(url)
    assert at_stop[OutboxStatus.SENDING] == 0, at_stop  # in flight finished, rest released
    assert at_stop[OutboxStatus.PENDING] > 0, "stopped too late: nothing left to send"
    assert at_stop[OutboxStatus.SENT] == len(smtp_server.messages)

    # Nothing waits for a lease: a new pass at once sends all the rest.
    assert dispatch_pending_sync(url, load_settings(env)).sent == at_stop[OutboxStatus.PENDING]
    received = _received(smtp_server)
    assert len(received) == MESSAGES and set(received.values()) == {1}, "each exactly once"
    print(f"\nSIGTERM after {at_stop[OutboxStatus.SENT]} sent: {out.strip()}; 0 resent")
