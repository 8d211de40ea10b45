"""Acceptance on a real Prefect server (issue 10): the provincial example plan
``plan_definitions/examples/cao_bang_dau_tu_cong_2026.yaml`` (sample data; issued
26/3/2026, departments and communes, monthly reports "trước ngày 20 hằng tháng",
reports on request, consolidation by Sở Tài chính in its own name, KT. signers).

- activated by the ``activate`` flow on its date: no obligation due before it, and the
  first monthly period is April's;
- a request started as a run of the ``request/<plan>`` deployment, with the typed
  parameters the Prefect UI's form sends, and executed as a process worker executes
  it: a new cycle with its obligations and its consolidation duty;
- the ``consolidate`` flow on that cycle and on April's: the report is headed, signed
  and addressed as the department, as the plan states;
- the plan's task due "quý IV năm 2026", swept by the ``sweep`` flow: reminded, overdue
  on 1/1/2027 and in the four-state table.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from sqlalchemy import select

from engine.documents import DRAFT_MARK
from engine.store.db import session_scope
from engine.store.models import ConsolidatedReport, Cycle, Obligation
from tests.lifecycle_factory import obligations
from tests.test_workflows import DEFINITIONS, env, new_store, vn  # noqa: F401  (env: fixture)
from tests.test_workflows_deploy import deployments, execute

pytestmark = [pytest.mark.prefect, pytest.mark.usefixtures("env")]

EXAMPLES = DEFINITIONS / "examples"
FILES = [
    EXAMPLES / "registry_cao_bang_2026.yaml",
    DEFINITIONS / "calendar_vn.yaml",
    EXAMPLES / "cao_bang_dau_tu_cong_2026.yaml",
]
PLAN = "cao-bang-dau-tu-cong-2026"


def _header_signer_recipients(markdown: str) -> None:
    """A draft nobody approved yet (the approved one: tests/test_authority.py): its mark,
    then the department's header, signer and recipients."""
    assert markdown.startswith(
        f"**{DRAFT_MARK}**\n\n"
        "**ỦY BAN NHÂN DÂN TỈNH CAO BẰNG**  \n**SỞ TÀI CHÍNH TỈNH CAO BẰNG**  \nSố: …/BC-STC\n"
    )
    assert "**KT. GIÁM ĐỐC**  \n**PHÓ GIÁM ĐỐC**  \n**Nông Văn Mẫu**" in markdown
    assert "- Chủ tịch UBND tỉnh (B/c);" in markdown
    assert "TM. ỦY BAN NHÂN DÂN" not in markdown  # not the People's Committee's signer


def test_the_provincial_example_through_prefect(prefect_server, tmp_path: Path) -> None:
    from prefect.client.orchestration import get_client

    from workflows.activate import activate_flow
    from workflows.consolidate import consolidate_flow
    from workflows.register import deploy_plan

    url = new_store(tmp_path / "store", FILES)
    activated = activate_flow(PLAN, now=vn(2026, 3, 26, 9), database_url=url)
    assert "2026-01" not in activated["cycles"] and "2026-03" not in activated["cycles"]
    with session_scope(url) as session:
        rows = obligations(session, PLAN)
        assert min(o.due_date for o in rows) >= dt.date(2026, 3, 26)
        monthly = sorted(
            (o for o in rows if o.deliverable_id == "bao-cao-thang"), key=lambda o: o.due_date
        )
        first = session.get(Cycle, monthly[0].cycle_id)
        assert first.key == "2026-04" and monthly[0].due_date == dt.date(2026, 4, 20)

    # The request deployment: no schedule, a form with a date field for the due date.
    deploy_plan(PLAN, database_url=url, with_dispatch=False)
    request = deployments(PLAN)[f"request/{PLAN}"]
    assert request.schedules == []
    form = request.parameter_openapi_schema["properties"]
    assert (
        form["due"]["format"] == "date" and "reason" in request.parameter_openapi_schema["required"]
    )
    assert request.parameters["deliverable_id"] == "bao-cao-dot-xuat"
    with get_client(sync_client=True) as client:
        run = client.create_flow_run_from_deployment(
            request.id,
            parameters={
                "due": "2026-05-18",
                "reason": "Báo cáo nhanh tiến độ giải phóng mặt bằng",
                "group": "xa-phuong-cao-bang",
                "requested_by": "Văn phòng UBND tỉnh",
                "now": vn(2026, 5, 12, 9),
                "database_url": url,
            },
        )
    done = execute(run.id, url, prefect_server.api_url)
    assert done.returncode == 0, done.stderr[-2000:]
    with get_client(sync_client=True) as client:
        state = client.read_flow_run(run.id).state
    assert state.is_completed(), state
    with session_scope(url) as session:
        cycle = session.scalar(select(Cycle).where(Cycle.key == "2026-DX1"))
        rows = session.scalars(select(Obligation).where(Obligation.cycle_id == cycle.id)).all()
        assert sorted(o.kind for o in rows).count("report") == 6
        [duty] = [o for o in rows if o.kind == "consolidation"]
        assert (duty.deliverable_id, duty.unit_id) == ("tong-hop-dot-xuat", "so-tai-chinh-cao-bang")
        assert duty.due_date == dt.date(2026, 5, 21)

    # Consolidations of the request's cycle and of April, by the consolidate flow.
    for cycle_key, consolidation, day in (
        ("2026-DX1", "tong-hop-dot-xuat", vn(2026, 5, 21, 9)),
        ("2026-04", "tong-hop-thang", vn(2026, 4, 24, 9)),
    ):
        consolidate_flow(
            PLAN, cycle_key=cycle_key, consolidation_id=consolidation, now=day, database_url=url
        )
    with session_scope(url) as session:
        reports = session.scalars(select(ConsolidatedReport)).all()
        assert {r.consolidation_id for r in reports} == {"tong-hop-dot-xuat", "tong-hop-thang"}
        paths = [Path(r.document_path) for r in reports]
    from engine.consolidation import consolidate

    for cycle_key, consolidation in (
        ("2026-DX1", "tong-hop-dot-xuat"),
        ("2026-04", "tong-hop-thang"),
    ):
        with session_scope(url) as session:  # the stored revision, re-rendered (nothing new)
            moment = dt.datetime.fromisoformat(vn(2026, 5, 22, 9))
            result = consolidate(session, PLAN, cycle_key, consolidation, now=moment)
        _header_signer_recipients(result.markdown)
    assert all(p.exists() and p.stat().st_size > 10_000 for p in paths)


def test_the_provincial_examples_quarter_iv_task_through_prefect(
    prefect_server,  # noqa: ARG001  (the flows' server)
    tmp_path: Path,
) -> None:
    """The example's own task of Sở Tài chính "hoàn thành trong quý IV năm 2026"
    (``quyet-toan-du-an``), activated by the flow on the plan's date, swept by the
    ``sweep`` flow on the days that matter: reminded 7, 3 and 1 days before Thursday
    31/12/2026, overdue on 1/1/2027 (not on its last day), and in the four-state table of
    the ``once`` cycle's artifact."""
    import json

    from prefect.artifacts import Artifact

    from engine.calendar import TZ, end_of_day
    from engine.states import State
    from engine.status import status_table
    from engine.store.models import OutboxMessage
    from workflows.activate import activate_flow
    from workflows.sweep import sweep_flow

    url = new_store(tmp_path / "store", FILES)
    activate_flow(PLAN, now=vn(2026, 3, 26, 9), database_url=url)
    days = [(2026, 12, 24), (2026, 12, 28), (2026, 12, 30), (2026, 12, 31), (2027, 1, 1)]
    for day in days:
        sweep_flow(
            PLAN,
            now=vn(*day, 7),
            database_url=url,
            dispatch=False,
            consolidate_due=False,
            close_due=False,
            request_approval=False,
        )
    with session_scope(url) as session:
        [task] = obligations(session, PLAN, deliverable="quyet-toan-du-an")
        assert (task.unit_id, task.due_date) == ("so-tai-chinh-cao-bang", dt.date(2026, 12, 31))
        mails = session.scalars(select(OutboxMessage).where(OutboxMessage.obligation_id == task.id))
        sent = {
            (m.kind, m.idempotency_key.rsplit(":", 1)[-1]): m.created_at.astimezone(TZ).date()
            for m in mails
        }
        assert sent[("reminder", "7")] == dt.date(2026, 12, 24)
        assert sent[("reminder", "3")] == dt.date(2026, 12, 28)
        assert sent[("reminder", "1")] == dt.date(2026, 12, 30)
        assert sent[("overdue", "")] == dt.date(2027, 1, 1)

        def state(day: dt.date) -> State:
            rows = status_table(
                session, PLAN, "once", today=day, as_of=end_of_day(day) + dt.timedelta(seconds=1)
            )
            return next(r.state for r in rows if r.obligation_id == task.id)

        assert state(dt.date(2026, 12, 31)) == State.OPEN_WITHIN
        assert state(dt.date(2027, 1, 1)) == State.OPEN_OVERDUE
    artifact = Artifact.get(f"status-{PLAN}-once")
    assert artifact is not None and artifact.type == "table"
    rows = json.loads(artifact.data)
    mine = [r for r in rows if "quyết toán" in json.dumps(r, ensure_ascii=False).lower()]
    assert [r["Trạng thái"] for r in mine] == ["Quá hạn"], rows
