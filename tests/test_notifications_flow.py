"""The dispatch flow on a real Prefect server: named run, failures table, summary."""

from __future__ import annotations

import datetime as dt

import pytest

import engine.config
from engine.outbox import enqueue_for_obligation
from engine.store.db import migrate, session_scope
from notifications.dispatch import run_sync
from tests.notifications_factory import UNIT_EMAIL, make_world, smtp_settings

T0 = dt.datetime(2028, 8, 1, 1, 0, tzinfo=dt.UTC)


@pytest.fixture
def env_settings(smtp_server, monkeypatch):
    """The flow reads Settings from the environment, as a deployment would."""
    conf = smtp_settings(smtp_server)
    for name in (
        "smtp_host",
        "smtp_port",
        "mail_from",
        "mail_from_name",
        "admin_email",
        "portal_secret",
    ):
        monkeypatch.setenv(f"KEHOACH_{name.upper()}", str(getattr(conf, name)))
    # One connection: the scripted 550 then hits the first message, not a random one.
    monkeypatch.setenv("KEHOACH_SMTP_CONNECTIONS", "1")
    engine.config.settings.cache_clear()
    yield conf
    engine.config.settings.cache_clear()


@pytest.mark.prefect
def test_dispatch_flow_publishes_failures_and_summary(
    prefect_server, smtp_server, env_settings, sqlite_url
):
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

    from notifications.flows import FAILURES_KEY, SUMMARY_KEY, dispatch_outbox

    migrate(sqlite_url)
    with session_scope(sqlite_url) as session:
        obligation = make_world(session).obligation
        for kind, step in (("assignment", ""), ("reminder", "7")):
            enqueue_for_obligation(session, obligation, kind, step, now=T0, settings=env_settings)
    smtp_server.fail_next(code=550)

    async def run_and_read():
        state = await dispatch_outbox(now=T0, database_url=sqlite_url, return_state=True)
        result = await state.result()
        async with get_client() as client:
            run = await client.read_flow_run(state.state_details.flow_run_id)
            artifacts = await client.read_artifacts(
                artifact_filter=ArtifactFilter(
                    key=ArtifactFilterKey(any_=[FAILURES_KEY, SUMMARY_KEY])
                )
            )
            return result, run, {a.key: a for a in artifacts if a.flow_run_id == run.id}

    result, run, artifacts = run_sync(run_and_read())
    assert (result["sent"], result["failed"]) == (2, 1)  # the reminder + the admin notice
    assert [m.rcpt_tos for m in smtp_server.wait_for(2)] == [[UNIT_EMAIL], ["admin@halang.example"]]
    assert run.name == "dispatch outbox 2028-08-01 01:00"
    assert artifacts[FAILURES_KEY].type == "table"
    assert "550 5.1.1 Mailbox unavailable" in str(artifacts[FAILURES_KEY].data)
    assert "phong-vhtt" in str(artifacts[FAILURES_KEY].data)
    assert "| 2 | 0 | 1 |" in artifacts[SUMMARY_KEY].data
