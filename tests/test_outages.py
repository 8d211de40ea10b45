"""Outages during a whole report cycle: nothing lost, everything caught up after.

The cycle is tests/crash_scenario.py's (activation, answers, review, sweeps,
consolidation, closing). Each test breaks one thing part of the way through and
compares what the cycle leaves behind with an uninterrupted run of the same cycle:
- the SMTP server is down for four days (the sweeps of 6/9 and 8/9; the dispatcher gives
  up after a week here, KEHOACH_SMTP_GIVE_UP_HOURS=168);
- PostgreSQL drops every connection of the store (what a restart does to its
  clients) at every step of the cycle;
- PostgreSQL itself restarted (``pg_ctl restart -m fast``, and stopped for two seconds)
  in a cluster of the test's own, in the middle of activation, dispatch, intake, the
  sweep and consolidation;
Prefect down or hung is in tests/test_portal_outages.py (the portal's hand-off).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool

from engine import config
from engine.config import Settings
from tests import crash_scenario as scenario
from tests.fixtures.smtp import SMTPTestServer
from tests.lifecycle_factory import prepared


def _settings(monkeypatch: pytest.MonkeyPatch, home: Path, smtp: SMTPTestServer) -> Settings:
    for name, value in {
        "KEHOACH_HOME": str(home),
        "KEHOACH_PORTAL_SECRET": "outage-test-secret-0123456789abcdefgh",
        "KEHOACH_SMTP_HOST": smtp.host,
        "KEHOACH_SMTP_PORT": str(smtp.port),
        "KEHOACH_SMTP_GIVE_UP_HOURS": "168",
    }.items():
        monkeypatch.setenv(name, value)
    config.settings.cache_clear()
    return config.settings()


@pytest.fixture
def hooks() -> Iterator[list[Any]]:
    yield scenario.HOOKS
    scenario.HOOKS.clear()
    config.settings.cache_clear()


def _cycle(url: str, conf: Settings, home: Path) -> dict[str, Any]:
    prepared(url)
    scenario.run(url, conf, home / "acks")
    scenario.catch_up(url, conf)
    return scenario.end_state(url)


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The cycle never interrupted (SQLite, its own SMTP server)."""
    home = tmp_path_factory.mktemp("reference")
    smtp = SMTPTestServer()
    smtp.start()
    patch = pytest.MonkeyPatch()
    try:
        return _cycle(f"sqlite:///{home / 'kehoach.sqlite'}", _settings(patch, home, smtp), home)
    finally:
        patch.undo()
        config.settings.cache_clear()
        smtp.stop()


def _delivered(smtp: SMTPTestServer, state: dict[str, Any]) -> tuple[list[str], int]:
    """(outbox Message-IDs never delivered, resends) for the run that left ``state``."""
    got = Counter(str(m.message["Message-ID"]).strip("<>").partition("@")[0] for m in smtp.messages)
    lost = [row[1] for row in state["outbox"] if got[row[1]] == 0]
    return lost, sum(n - 1 for n in got.values() if n > 1)


def test_smtp_down_for_four_days_loses_nothing(tmp_path, monkeypatch, hooks, reference):
    smtp = SMTPTestServer()
    smtp.start()
    conf = _settings(monkeypatch, tmp_path, smtp)
    seen: list[str] = []

    def outage(step: str) -> None:
        seen.append(step)
        sweeps = seen.count("sweep")
        if step == "sweep" and sweeps == 1:
            smtp.stop()
        if step == "sweep" and sweeps == 3:  # the sweep of 10/9
            smtp.start()
            seen.append("smtp back")

    hooks.append(outage)
    try:
        state = _cycle(f"sqlite:///{tmp_path / 'kehoach.sqlite'}", conf, tmp_path)
        lost, resent = _delivered(smtp, state)
    finally:
        smtp.stop()
    assert "smtp back" in seen and smtp.messages, "the outage never ended"
    assert state == reference
    assert lost == [] and resent == 0


def test_postgresql_dropping_every_connection_at_every_step(
    postgres_url, tmp_path, monkeypatch, hooks, reference
):
    smtp = SMTPTestServer()
    smtp.start()
    conf = _settings(monkeypatch, tmp_path, smtp)
    name = make_url(postgres_url).database
    admin = create_engine(
        make_url(postgres_url).set(database="postgres"),
        isolation_level="AUTOCOMMIT",
        poolclass=NullPool,
    )
    dropped: list[int] = []

    def restart(step: str) -> None:
        with admin.connect() as conn:
            killed = conn.execute(
                text(
                    "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                    "WHERE datname = :name AND pid <> pg_backend_pid()"
                ),
                {"name": name},
            ).scalar_one()
        dropped.append(int(killed))

    hooks.append(restart)
    try:
        state = _cycle(postgres_url, conf, tmp_path)
        lost, resent = _delivered(smtp, state)
    finally:
        smtp.stop()
        admin.dispose()
    print(f"\nconnections dropped at {len(dropped)} steps: {sum(dropped)} in all")
    assert sum(dropped) >= len(dropped) // 2, f"connections dropped per step: {dropped}"
    assert state == reference
    assert lost == [] and resent == 0


def _but_message_ids(state: dict[str, Any]) -> dict[str, Any]:
    outbox = sorted((key, kind, status) for key, _, kind, status in state["outbox"])
    return {**state, "outbox": outbox}


# (kill point, what happens to the server there): the points are in the middle of the
# steps, a transaction open or a message just handed to SMTP
RESTARTS = [
    ("activation:before_commit@1", "restart"),
    ("dispatch:smtp_sent@3", "restart"),
    ("intake:before_commit@2", "down 2 s"),
    ("sweep:before_commit@2", "restart"),
    ("dispatch:recorded@2", "down 2 s"),
    ("consolidation:before_commit@1", "restart"),
]


def test_postgresql_restarted_for_real_in_the_middle_of_each_step(
    private_postgres, tmp_path, monkeypatch, reference
):
    """``pg_ctl restart -m fast`` (and a stop, two seconds down, a start) while a step
    holds a transaction open; the step fails and is run again from the start, as a
    flow's retry does, until it goes through."""
    import threading
    import time

    from sqlalchemy.exc import DBAPIError

    from engine import faults

    smtp = SMTPTestServer()
    smtp.start()
    conf = _settings(monkeypatch, tmp_path, smtp)
    cluster = private_postgres
    url = cluster.url
    done: list[str] = []
    failures: list[str] = []
    downtime: list[threading.Thread] = []

    def arm_next() -> None:
        if len(done) < len(RESTARTS):
            faults.arm(RESTARTS[len(done)][0], action=outage)

    def outage() -> None:
        point, how = RESTARTS[len(done)]
        done.append(point)
        if how == "restart":
            cluster.restart()
        else:  # down for a while: the retries meet a refused connection first
            cluster.stop()
            downtime.append(threading.Timer(2.0, cluster.start))
            downtime[-1].start()
        arm_next()

    prepared(url)
    arm_next()
    started = time.monotonic()
    try:
        while True:
            try:
                scenario.run(url, conf, tmp_path / "acks")
                scenario.catch_up(url, conf)
                break
            except DBAPIError as exc:  # the connection the step held is gone
                failures.append(f"{faults._phase}: {type(exc.orig).__name__}")
                assert len(failures) < 60, failures
                time.sleep(0.2)
        took = time.monotonic() - started
        state = scenario.end_state(url)
        lost, resent = _delivered(smtp, state)
    finally:
        faults.arm(None)
        for timer in downtime:
            timer.join()
        smtp.stop()
    print(
        f"\nPostgreSQL restarted {len(done)} times for real ({', '.join(done)}); "
        f"{len(failures)} step runs failed and were run again; cycle {took:.1f} s; "
        f"lost emails {len(lost)}, resent {resent}"
    )
    assert done == [point for point, _ in RESTARTS], f"not every restart happened: {done}"
    assert failures, "no step ever saw the server go away"
    # the same rows, but not the same Message-IDs: those derive from keys that hold row
    # ids, and PostgreSQL's sequences skipped the ids of the transactions cut short
    assert _but_message_ids(state) == _but_message_ids(reference)
    assert lost == []
    # at-least-once for what was in flight: a message SMTP took before the server went,
    # sent again under its own Message-ID, at most one per connection of the dispatcher
    dispatch_outages = sum(point.startswith("dispatch:") for point, _ in RESTARTS)
    assert resent <= dispatch_outages * conf.smtp_connections
