"""A flow process killed half-way and run again ends where an uninterrupted run ends.

The activate flow runs in a process of its own (``python -m cli.flow activate``, through
``tests.fixtures.slow_flow``) against the real Prefect server; the fixture slows its
fan-out so the kill lands while it is recording task runs — after the obligations and
their emails were committed, before any email was sent.  A second case kills it at a
random moment.  Then the flow runs again and the store (obligations, outbox rows and
what was delivered) must equal that of a run that was never interrupted, with every
email delivered exactly once.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import func, select

from engine.config import settings
from engine.store.db import session_scope
from engine.store.models import Cycle, Obligation, OutboxMessage
from tests.fixtures.smtp import SMTPTestServer
from tests.test_workflows import (
    PROVINCE,
    SEED,
    SEED_FILES,
    env,  # noqa: F401  (the module's kehoach settings + SMTP)
    new_store,
    vn,
)

pytestmark = [pytest.mark.prefect, pytest.mark.usefixtures("env")]

NOW = vn(2023, 1, 3)  # a working day (2/1/2023 was the day off for New Year): mail goes at once
ROOT = Path(__file__).resolve().parents[1]


def end_state(url: str) -> dict[str, object]:
    with session_scope(url) as session:
        return {
            "obligations": sorted(
                (
                    key,
                    o.unit_id,
                    o.deliverable_id,
                    o.due_date.isoformat(),
                    o.status,
                    tuple(o.assignment_ids),
                )
                for o, key in session.execute(
                    select(Obligation, Cycle.key).join(Cycle, Obligation.cycle_id == Cycle.id)
                )
            ),
            "outbox": sorted(
                (m.idempotency_key, m.message_id, m.kind, m.status, tuple(m.to_addrs))
                for m in session.scalars(select(OutboxMessage))
            ),
        }


def use_smtp(server: SMTPTestServer) -> None:
    os.environ["KEHOACH_SMTP_PORT"] = str(server.port)
    settings.cache_clear()


@pytest.fixture
def mail() -> Iterator[tuple[SMTPTestServer, SMTPTestServer]]:
    servers = (SMTPTestServer(), SMTPTestServer())
    for server in servers:
        server.start()
    saved = os.environ.get("KEHOACH_SMTP_PORT")
    try:
        yield servers
    finally:
        for server in servers:
            server.stop()
        if saved is None:
            os.environ.pop("KEHOACH_SMTP_PORT", None)
        else:
            os.environ["KEHOACH_SMTP_PORT"] = saved
        settings.cache_clear()


def start_activate(url: str, prefect_api: str, smtp: SMTPTestServer, delay: float):
    env_vars = dict(os.environ)
    env_vars.update(
        PREFECT_API_URL=prefect_api,
        PREFECT_SERVER_ANALYTICS_ENABLED="false",
        KEHOACH_SMTP_PORT=str(smtp.port),
        PYTHONUNBUFFERED="1",
    )
    cmd = [
        sys.executable,
        "-m",
        "tests.fixtures.slow_flow",  # python -m cli.flow, each fan-out task `delay` s slower
        str(delay),
        "activate",
        "--param",
        f"plan_id={SEED}",
        "--param",
        f"now={NOW}",
        "--param",
        "years=[2023]",
        "--param",
        f"database_url={url}",
    ]
    return subprocess.Popen(
        cmd,
        cwd=ROOT,
        env=env_vars,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def count(url: str, model) -> int:  # type: ignore[no-untyped-def]
    try:
        with session_scope(url) as session:
            return session.scalar(select(func.count(model.id))) or 0
    except Exception:  # the schema may be mid-creation by nobody; treat as empty
        return 0


def kill(proc: subprocess.Popen) -> None:
    os.killpg(os.getpgid(proc.pid), signal.SIGKILL)
    proc.wait(timeout=10)


@pytest.mark.parametrize("when", ["during-fanout", "random"])
def test_killed_activation_rerun_ends_like_an_uninterrupted_one(
    when: str,
    prefect_server,
    mail,
    tmp_path: Path,
) -> None:
    from workflows.activate import activate_flow

    calm, crashed = mail
    # The provincial plan first (as a deployment would have it), in both stores.
    reference = new_store(tmp_path / "reference", SEED_FILES)
    victim = new_store(tmp_path / "victim", SEED_FILES)

    use_smtp(calm)
    for url in (reference, victim):
        activate_flow(PROVINCE, now=NOW, years=[2023], database_url=url, dispatch=False)
    activate_flow(SEED, now=NOW, years=[2023], database_url=reference)

    proc = start_activate(victim, prefect_server.api_url, crashed, delay=0.3)
    try:
        if when == "during-fanout":
            deadline = time.monotonic() + 60
            while count(victim, Obligation) < 60:  # the seed's 65 are written at once
                assert proc.poll() is None, proc.stdout.read().decode(errors="replace")
                assert time.monotonic() < deadline, "the flow never wrote its obligations"
                time.sleep(0.1)
            time.sleep(random.uniform(0.5, 3.0))  # somewhere in the fan-out
        else:
            seed = random.randrange(10**6)
            time.sleep(random.Random(seed).uniform(0.5, 8.0))
            print(f"killed after a random delay (seed {seed})")
        assert proc.poll() is None, "the flow ended before it could be killed"
    finally:
        kill(proc)
    assert proc.returncode == -signal.SIGKILL
    if when == "during-fanout":
        assert count(victim, Obligation) == 67  # committed before the kill (65 + parent's 2)
        assert not crashed.messages  # killed before the dispatch step

    use_smtp(crashed)
    again = activate_flow(SEED, now=NOW, years=[2023], database_url=victim)
    assert again["created"] in (0, 65)

    assert end_state(victim) == end_state(reference)
    # Every email arrived once, with the same Message-IDs as the uninterrupted run.
    crashed_ids = sorted(m.message["Message-ID"] for m in crashed.messages)
    calm_ids = sorted(m.message["Message-ID"] for m in calm.messages)
    # 67 assignments (the seed's 65, the parent plan's 2) and the seed's plan to the 4
    # bodies of its Nơi nhận that owe nothing (engine.outbox.plan_notice).
    assert crashed_ids == calm_ids and len(set(crashed_ids)) == len(crashed_ids) == 67 + 4
