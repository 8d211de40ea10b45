"""No worker for days: the Prefect server answers, nobody runs its flows, nothing is lost.

The plan's deployments exist on the real Prefect server (in a work pool of this test's
own, so no other test's runs are taken), but no worker polls the pool. For eight
virtual days units answer through the portal: the portal hands each batch to the intake
flow, and the runs it creates wait, as do the daily sweeps the scheduler created
(here with their virtual day as ``now``). The units see their receipt page at once;
their receipt emails wait with the runs. Then a worker starts (``prefect worker start
--pool …``, as the README's production set-up runs it) and works the
backlog: every acknowledged answer is taken in once, early consolidation and its
revision follow, every queued email is delivered once under its Message-ID, no
obligation is created twice, and the audit chain verifies.
"""

from __future__ import annotations

import os
import re
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from engine.audit_verify import verify
from engine.store.db import session_scope
from engine.store.models import ConsolidatedReport, Obligation, OutboxMessage, Submission
from tests.fixtures.production import Worker, start_worker
from tests.fixtures.smtp import SMTPTestServer
from tests.test_portal_support import OTHER_UNIT, PLAN_ID, UNIT, make_world, vn

pytestmark = [
    pytest.mark.prefect,
    pytest.mark.timeout(600),  # a process per run: 155 s at load 13 on 2 cores
    pytest.mark.filterwarnings("ignore:Using `httpx` with `starlette.testclient`"),
]

REPORT = {
    "f-so-vu-chay": "2",
    "f-ty-le-tap-huan": "90",
    "f-dan-phong": "Đã rà soát",
    "f-ket-qua": "Tuyên truyền tại 12 thôn.",
}
# (virtual moment, unit, fires reported): the third answer corrects the first. The first
# is handed over alone (the portal was idle); the next two come within the batch
# interval of it (KEHOACH_INTAKE_BATCH_SECONDS=4) and go to one batch run together.
ANSWERS = [
    (vn(2027, 9, 1, 9), UNIT, "2"),
    (vn(2027, 9, 6, 10), OTHER_UNIT, "0"),
    (vn(2027, 9, 6, 15), UNIT, "3"),
]
SWEEPS = [vn(2027, 9, day, 7) for day in (4, 8)]
WORKER_STARTS = vn(2027, 9, 9, 8)
TERMINAL = {"COMPLETED", "FAILED", "CRASHED", "CANCELLED"}


def _answer(client: Any, token: str, fires: str) -> int:
    """POST an answer as a unit does; the version on its receipt page."""
    page = client.get(f"/o/{token}")
    csrf = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)
    response = client.post(
        f"/o/{token}/submit", data={**REPORT, "f-so-vu-chay": fires, "csrf": csrf}
    )
    assert response.status_code == 200 and "Đã nhận" in response.text, response.text[:400]
    return int(re.search(r"Lần (\d+)", response.text).group(1))


def _runs(deployment_ids: list[Any]) -> list[Any]:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterDeploymentId

    with get_client(sync_client=True) as client:
        found = list(
            client.read_flow_runs(
                flow_run_filter=FlowRunFilter(
                    deployment_id=FlowRunFilterDeploymentId(any_=deployment_ids)
                ),
                limit=200,
            )
        )
    # the server's scheduler adds the real calendar's next sweeps (days ahead): not ours
    return [run for run in found if not run.auto_scheduled]


def _log(worker: Worker, runs: list[Any]) -> str:
    states = [(r.name, r.state.name) for r in runs]
    return f"{states}\nworker log:\n{worker.log_tail()}"


def _deployment_ids() -> list[Any]:
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        return [client.read_deployment_by_name(f"{f}/{PLAN_ID}").id for f in ("intake", "sweep")]


def _schedule_sweeps() -> None:
    """The daily sweeps of the outage, as the scheduler leaves them: created, waiting."""
    from prefect.deployments import run_deployment

    for moment in SWEEPS:
        run_deployment(
            f"sweep/{PLAN_ID}",
            parameters={"plan_id": PLAN_ID, "now": moment.isoformat()},
            timeout=0,
            as_subflow=False,
        )


def test_no_worker_for_a_week_then_the_backlog_is_worked_off(prefect_server, tmp_path, monkeypatch):
    from starlette.testclient import TestClient

    from workflows.register import deploy_plan

    smtp = SMTPTestServer()
    smtp.start()
    world = make_world(
        tmp_path,
        monkeypatch,
        KEHOACH_SMTP_PORT=str(smtp.port),
        KEHOACH_MAIL_HOURS="any",
        KEHOACH_INTAKE_BATCH_SECONDS="4",
    )
    pool = f"kehoach-test-{uuid.uuid4().hex[:8]}"
    deploy_plan(PLAN_ID, database_url=world.db_url, work_pool=pool, with_dispatch=False)
    with session_scope(world.db_url) as session:
        obligations_before = sorted(
            (o.cycle_id, o.unit_id, o.deliverable_id) for o in session.scalars(select(Obligation))
        )
        mail_before = session.query(OutboxMessage).count()
    worker: Worker | None = None
    try:
        acknowledged: list[tuple[str, int]] = []
        with TestClient(world.app(intake_flow=True)) as client:
            for moment, unit, fires in ANSWERS:
                world.clock.set(moment)
                acknowledged.append((unit, _answer(client, world.token(unit), fires)))
            client.app.state.handoff.wait(timeout=60)
            batches = client.app.state.handoff.batches
        _schedule_sweeps()
        handed = sorted(i for batch in batches for i in batch["flow"])
        assert len(handed) == len(ANSWERS), f"not every answer went to a flow run: {batches}"
        intake_runs = len(batches)

        # The outage: the runs wait; nothing is taken in and no receipt email goes out.
        deployments = _deployment_ids()
        time.sleep(2)
        waiting = _runs(deployments)
        assert len(waiting) == intake_runs + len(SWEEPS)
        assert {r.state.type.value for r in waiting} == {"SCHEDULED"}, [r.state for r in waiting]
        with session_scope(world.db_url) as session:
            assert not any(s.intake_done for s in session.scalars(select(Submission)))
        assert smtp.messages == []

        outage_seen = time.monotonic()
        worker = start_worker(
            {
                **{k: v for k, v in os.environ.items() if k.startswith("KEHOACH_")},
                "PREFECT_API_URL": prefect_server.api_url,
                "KEHOACH_NOW": WORKER_STARTS.isoformat(),  # intake runs read the clock
            },
            tmp_path,
            pool=pool,
        )
        deadline = time.monotonic() + 240  # 114 s measured at load 13
        while True:
            runs = _runs(deployments)
            if all(r.state.type.value in TERMINAL for r in runs):
                break
            assert time.monotonic() < deadline, _log(worker, runs)
            time.sleep(1)
        states = Counter(r.state.name for r in runs)
        caught_up = time.monotonic() - outage_seen

        with session_scope(world.db_url) as session:
            stored = [
                (s.obligation.unit_id, s.version)
                for s in session.scalars(select(Submission).where(Submission.source == "portal"))
            ]
            not_taken = [s.id for s in session.scalars(select(Submission)) if not s.intake_done]
            obligations_after = sorted(
                (o.cycle_id, o.unit_id, o.deliverable_id)
                for o in session.scalars(select(Obligation))
            )
            outbox = list(session.scalars(select(OutboxMessage)))
            reports = [
                (r.revision, r.aggregates.get("so-vu-chay"))
                for r in session.scalars(select(ConsolidatedReport))
            ]
            chain = verify(session, files_dir=Path(world.settings.files_dir))
        message_ids = Counter(m.message_id for m in outbox)
        got = Counter(str(m.message["Message-ID"]) for m in smtp.messages)
        lost_answers = [a for a in acknowledged if a not in stored]
        duplicated_answers = len(stored) - len(set(stored))
        lost_mail = [m.idempotency_key for m in outbox if got[m.message_id] == 0]
        resent_mail = sum(n - 1 for n in got.values() if n > 1)
        print(
            f"\nno worker for {(WORKER_STARTS.date() - ANSWERS[0][0].date()).days} virtual days: {len(runs)} runs waited "
            f"({intake_runs} intake, {len(SWEEPS)} sweeps), then {dict(states)}; "
            f"{len(outbox)} emails waiting ({len(outbox) - mail_before} queued during the outage), "
            f"{len(smtp.messages)} delivered; "
            f"reports {reports}; caught up in {caught_up:.1f} s; lost answers {len(lost_answers)}, duplicated "
            f"{duplicated_answers}, lost emails {len(lost_mail)}, resent {resent_mail}"
        )
    finally:
        if worker is not None:
            worker.stop()
        smtp.stop()
    assert all(r.state.is_completed() for r in runs), _log(worker, runs)
    assert lost_answers == [] and duplicated_answers == 0 and not_taken == []
    assert sorted(stored) == sorted(acknowledged)
    assert obligations_after == obligations_before  # nothing created twice
    assert max(message_ids.values()) == 1, "two outbox rows share a Message-ID"
    assert lost_mail == [] and resent_mail == 0
    # the newest report counts each unit's newest answer once: 3 (corrected) + 0
    assert reports and max(reports)[1] == 3, reports
    assert chain.intact, chain.first
