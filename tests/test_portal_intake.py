"""The portal hands a submission to the intake flow on a real Prefect server."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from engine.store.db import session_scope
from engine.store.models import AuditEvent, Obligation, Submission
from tests.test_portal_support import world_fixture

pytestmark = [
    pytest.mark.prefect,
    pytest.mark.filterwarnings("ignore:Using `httpx` with `starlette.testclient`"),
]


@pytest.fixture
def world(tmp_path, monkeypatch):  # type: ignore[no-untyped-def]
    yield from world_fixture(tmp_path, monkeypatch)


def test_no_intake_deployment_means_intake_in_process(world, prefect_server):
    """Prefect answers but the plan is not deployed: the row is kept and taken in here."""
    import re

    from starlette.testclient import TestClient

    token = world.token()
    with TestClient(world.app(intake_flow=True)) as client:
        page = client.get(f"/o/{token}")
        csrf = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)
        response = client.post(
            f"/o/{token}/submit",
            data={
                "csrf": csrf,
                "f-so-vu-chay": "0",
                "f-ty-le-tap-huan": "100",
                "f-dan-phong": "Đã rà soát",
                "f-ket-qua": "Không có vụ cháy.",
            },
        )
        assert response.status_code == 200 and "Lần 1" in response.text
        client.app.state.handoff.wait(timeout=60)
    with session_scope(world.db_url) as session:
        [sub] = session.scalars(select(Submission)).all()
        assert sub.intake_done
        assert session.get(Obligation, world.obligation_id()).status == "submitted"
        [event] = session.scalars(
            select(AuditEvent).where(AuditEvent.action == "portal.intake_inline")
        ).all()
        assert event.data["reason"].startswith("intake flow not started")
