"""The portal hands submissions to intake: batched, to the intake flow on a real Prefect
server when the plan is deployed, else in-process."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from engine import config
from engine.store.db import session_scope
from engine.store.models import AuditEvent, Obligation, Submission
from tests.test_portal_support import OTHER_UNIT, PLAN_ID, UNIT, make_world, world_fixture

pytestmark = [
    pytest.mark.filterwarnings("ignore:Using `httpx` with `starlette.testclient`"),
]

REPORT = {
    "f-so-vu-chay": "0",
    "f-ty-le-tap-huan": "100",
    "f-dan-phong": "Đã rà soát",
    "f-ket-qua": "Không có vụ cháy.",
}


@pytest.fixture
def world(tmp_path, monkeypatch):  # type: ignore[no-untyped-def]
    yield from world_fixture(tmp_path, monkeypatch)


def submit(client, token: str, **extra: str) -> int:  # type: ignore[no-untyped-def]
    page = client.get(f"/o/{token}")
    csrf = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)
    response = client.post(f"/o/{token}/submit", data={**REPORT, **extra, "csrf": csrf})
    assert response.status_code == 200 and "Đã nhận" in response.text, response.text[:500]
    return int(re.search(r"Lần (\d+)", response.text).group(1))


def inline_batches(db_url: str) -> list[list[int]]:
    """The submissions each in-process intake took together (from the audit log)."""
    with session_scope(db_url) as session:
        events = session.scalars(
            select(AuditEvent)
            .where(AuditEvent.action == "portal.intake_inline")
            .order_by(AuditEvent.id)
        ).all()
        batches: list[list[int]] = []
        size = 0
        for event in events:
            if not batches or len(batches[-1]) == size:
                batches.append([])
                size = event.data["batch"]
            batches[-1].append(event.data["submission_id"])
        return batches


@pytest.mark.prefect
def _undeploy() -> None:
    """Forget the plan's deployments another test left on the session's Prefect server
    (tests/test_no_worker.py deploys the same plan): without this, this module's tests
    saw that deployment and its flow runs as their own."""
    from prefect.client.orchestration import get_client
    from prefect.exceptions import ObjectNotFound

    with get_client(sync_client=True) as prefect:
        for flow in ("intake", "sweep", "consolidate", "dispatch"):
            try:
                found = prefect.read_deployment_by_name(f"{flow}/{PLAN_ID}")
            except ObjectNotFound:
                continue
            prefect.delete_deployment(found.id)


def test_no_intake_deployment_means_intake_in_process(world, prefect_server):
    """Prefect answers but the plan is not deployed: the row is kept and taken in here."""
    from starlette.testclient import TestClient

    _undeploy()

    with TestClient(world.app(intake_flow=True)) as client:
        assert submit(client, world.token()) == 1
        client.app.state.handoff.wait(timeout=60)
    with session_scope(world.db_url) as session:
        [sub] = session.scalars(select(Submission)).all()
        assert sub.intake_done
        assert session.get(Obligation, world.obligation_id()).status == "submitted"
        [event] = session.scalars(
            select(AuditEvent).where(AuditEvent.action == "portal.intake_inline")
        ).all()
        assert event.data["reason"].startswith("intake flow not started")


def test_answers_arriving_together_are_taken_in_together(tmp_path, monkeypatch):
    """Idle: the first answer is handed over at once; those arriving within the interval
    after it go together, in one transaction, after the interval."""
    from starlette.testclient import TestClient

    monkeypatch.delenv("PREFECT_API_URL", raising=False)
    world = make_world(tmp_path, monkeypatch, KEHOACH_INTAKE_BATCH_SECONDS="3")
    try:
        with TestClient(world.app(intake_flow=True)) as client:
            handoff = client.app.state.handoff
            assert handoff.batch_seconds == 3.0
            submit(client, world.token(UNIT))
            submit(client, world.token(OTHER_UNIT))
            submit(client, world.token(UNIT), **{"f-so-vu-chay": "1"})
            handoff.wait(timeout=30)
            assert [sorted(b["inline"]) for b in handoff.batches] == [[1], [2, 3]]
        assert inline_batches(world.db_url) == [[1], [2, 3]]
        with session_scope(world.db_url) as session:
            assert all(s.intake_done for s in session.scalars(select(Submission)))
            mine = session.get(Obligation, world.obligation_id(UNIT))
            assert mine.status == "submitted"
            assert session.get(Obligation, world.obligation_id(OTHER_UNIT)).status == "submitted"
    finally:
        config.settings.cache_clear()


def test_one_bad_submission_does_not_hold_the_batch_back(world):
    """The batch's transaction fails on a missing row: the others are taken in one by one,
    the missing one is audited as failed."""
    from engine.lifecycle import record_submission
    from portal.handoff import take_in_here

    with session_scope(world.db_url) as session:
        sid = record_submission(
            session,
            world.obligation_id(),
            values={
                "so-vu-chay": 0,
                "ty-le-tap-huan": 100,
                "dan-phong": "Đã rà soát",
                "ket-qua": "Không có vụ cháy.",
            },
            now=world.clock.now(),
        ).id
    done, failed = take_in_here(world.db_url, [sid, 9999], world.clock.now(), "test")
    assert (done, failed) == ([sid], [9999])
    with session_scope(world.db_url) as session:
        assert session.get(Submission, sid).intake_done
        [event] = session.scalars(
            select(AuditEvent).where(AuditEvent.action == "portal.intake_failed")
        ).all()
        assert event.data["submission_id"] == 9999 and "9999" in event.data["error"]


@pytest.mark.prefect
def test_submissions_go_to_the_deployed_intake_flow_in_batches(
    tmp_path, monkeypatch, prefect_server
):
    """The plan is deployed: the portal creates intake flow runs (one at once, then one
    for the answers that came together); a worker runs the batch and takes both in."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterDeploymentId
    from starlette.testclient import TestClient

    from tests.test_workflows_deploy import execute
    from workflows.register import deploy_plan

    world = make_world(tmp_path, monkeypatch, KEHOACH_INTAKE_BATCH_SECONDS="3")
    try:
        _undeploy()  # a deployment of its own: its id names this test's flow runs only
        deploy_plan(PLAN_ID, database_url=world.db_url, with_dispatch=False)
        with TestClient(world.app(intake_flow=True)) as client:
            handoff = client.app.state.handoff
            submit(client, world.token(UNIT))
            submit(client, world.token(OTHER_UNIT))
            submit(client, world.token(UNIT), **{"f-so-vu-chay": "1"})
            handoff.wait(timeout=60)
            assert [sorted(b["flow"]) for b in handoff.batches] == [[1], [2, 3]]
        with get_client(sync_client=True) as prefect:
            deployment = prefect.read_deployment_by_name(f"intake/{PLAN_ID}")
            runs = prefect.read_flow_runs(
                flow_run_filter=FlowRunFilter(
                    deployment_id=FlowRunFilterDeploymentId(any_=[deployment.id])
                )
            )
        by_name = {run.name: run for run in runs}
        assert len(runs) == 2, sorted(by_name)
        single = by_name[
            "nộp · Ủy ban nhân dân xã Thị Hoa · Báo cáo kết quả thực hiện công tác PCCC và CNCH"
            " · năm 2027"
        ]
        assert single.parameters["submission_id"] == 1
        assert {f"plan:{PLAN_ID}", f"unit:{UNIT}", "cycle:2027"} <= set(single.tags)
        batch = by_name[f"nộp · {PLAN_ID} · 2 bản nộp"]
        assert batch.parameters["submission_ids"] == [2, 3]
        assert f"plan:{PLAN_ID}" in batch.tags and not any(
            t.startswith("unit:") for t in batch.tags
        )
        with session_scope(world.db_url) as session:
            assert not any(s.intake_done for s in session.scalars(select(Submission)))

        # A worker runs the batch (as a process worker does): both are taken in.
        done = execute(batch.id, world.db_url, prefect_server.api_url)
        assert done.returncode == 0, done.stdout + done.stderr
        with get_client(sync_client=True) as prefect:
            assert prefect.read_flow_run(batch.id).state.is_completed()
            tasks = prefect.read_task_runs(flow_run_filter=FlowRunFilter(id={"any_": [batch.id]}))
        names = [t.name for t in tasks if t.name.startswith("tiếp nhận")]
        assert names == [f"tiếp nhận · {PLAN_ID} · 2 bản nộp"]  # one task run takes both in
        with session_scope(world.db_url) as session:
            portal = select(Submission).where(Submission.source == "portal")
            taken = {s.id: s.intake_done for s in session.scalars(portal)}
            assert taken == {1: False, 2: True, 3: True}
            assert session.get(Obligation, world.obligation_id(OTHER_UNIT)).status == "submitted"
            assert session.get(Obligation, world.obligation_id(UNIT)).status == "submitted"
    finally:
        config.settings.cache_clear()
