"""Registration and the operator's review, on the real Prefect server.

``deploy_plan`` creates the plan's deployments in a process work pool with schedules
in Asia/Ho_Chi_Minh, updates them for a new plan version and drops the cycle start of
a retired one.  The review flow, run the way a process worker runs a deployment run
(``python -m prefect.engine``), suspends until the operator answers the Resume form
(``resume_flow_run`` with run input), then runs again from the top and decides once.
"""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import select

from engine.loader import load
from engine.repository import retire_plan, store_catalog
from engine.store.db import session_scope
from engine.store.models import Obligation, OutboxMessage, Submission
from tests.test_workflows import (
    DEFINITIONS,
    SEED,
    SEED_FILES,
    env,  # noqa: F401  (the module's kehoach settings + SMTP)
    new_store,
    vn,
)

pytestmark = [pytest.mark.prefect, pytest.mark.usefixtures("env")]

ROOT = Path(__file__).resolve().parents[1]


def deployments(plan_id: str) -> dict[str, object]:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterName

    with get_client(sync_client=True) as client:
        found = client.read_deployments(
            deployment_filter=DeploymentFilter(name=DeploymentFilterName(any_=[plan_id]))
        )
        flows = {f.id: f.name for f in client.read_flows()}
    return {f"{flows[d.flow_id]}/{d.name}": d for d in found}


def test_deploy_creates_updates_and_retires(tmp_path: Path) -> None:
    from engine.lifecycle import activate
    from workflows.register import deploy_plan

    url = new_store(tmp_path / "store", SEED_FILES)
    result = deploy_plan(SEED, database_url=url)
    assert result.version == 1
    found = deployments(SEED)
    assert set(found) == {
        f"{f}/{SEED}"
        for f in ("activate", "sweep", "consolidate", "intake", "review", "approve-report")
    }
    sweep = found[f"sweep/{SEED}"]
    assert sweep.work_pool_name == "kehoach"
    assert sweep.entrypoint == "workflows.sweep.sweep_flow"  # a module path: any worker cwd
    assert sweep.parameters == {"plan_id": SEED}
    assert f"plan:{SEED}" in sweep.tags and sweep.version.startswith("v1-")
    [schedule] = sweep.schedules
    assert (schedule.schedule.cron, schedule.schedule.timezone) == ("0 7 * * *", "Asia/Ho_Chi_Minh")
    [consolidation] = found[f"consolidate/{SEED}"].schedules
    assert consolidation.schedule.cron == "0 8 25 9 *"
    assert found[f"intake/{SEED}"].schedules == []

    # A new version of the plan (consolidation moved to 24/9): same deployments, new
    # schedule and label; the parameters still name only the plan.
    text = (DEFINITIONS / "ha_lang_pccc_2022.yaml").read_text(encoding="utf-8")
    changed = tmp_path / "ha_lang_pccc_2022.yaml"
    changed.write_text(
        text.replace(
            "      day: 25\n      month: 9\n      phrase: trước ngày 25/9 hằng năm",
            "      day: 24\n      month: 9\n      phrase: trước ngày 24/9 hằng năm",
        ),
        encoding="utf-8",
    )
    with session_scope(url) as session:
        activate(session, SEED, now=dt.datetime.fromisoformat(vn(2023, 1, 2)), years=[2023])
        store_catalog(session, load([changed, *SEED_FILES[:3]]))
    assert deploy_plan(SEED, database_url=url).version == 2
    found = deployments(SEED)
    [consolidation] = found[f"consolidate/{SEED}"].schedules
    assert consolidation.schedule.cron == "0 8 24 9 *"
    assert found[f"sweep/{SEED}"].version.startswith("v2-")

    # Retired: no new cycles; the running instance keeps its sweep and consolidation.
    with session_scope(url) as session:
        retire_plan(session, SEED)
    result = deploy_plan(SEED, database_url=url)
    assert f"activate/{SEED}" in result.deleted
    assert f"sweep/{SEED}" in deployments(SEED)


def execute(run_id: object, url: str, api_url: str) -> subprocess.CompletedProcess:
    """Run a deployment's flow run exactly as a process worker does."""
    env_vars = dict(os.environ)
    env_vars.update(
        PREFECT_API_URL=api_url,
        PREFECT__FLOW_RUN_ID=str(run_id),
        KEHOACH_DATABASE_URL=url,
        PREFECT_SERVER_ANALYTICS_ENABLED="false",
    )
    return subprocess.run(
        [sys.executable, "-m", "prefect.engine"],
        cwd=ROOT,
        env=env_vars,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_review_suspends_for_the_operator_and_decides_once(
    prefect_server,
    tmp_path: Path,
) -> None:
    from prefect.client.orchestration import get_client
    from prefect.flow_runs import resume_flow_run

    from engine.lifecycle import record_submission
    from workflows.activate import activate_flow
    from workflows.intake import intake_flow
    from workflows.register import deploy_plan
    from workflows.review import trigger_review

    url = new_store(tmp_path / "store", SEED_FILES)
    deploy_plan(SEED, database_url=url, with_dispatch=False)
    activate_flow(SEED, now=vn(2023, 1, 2), years=[2023], database_url=url, dispatch=False)
    with session_scope(url) as session:
        obligation = session.scalar(
            select(Obligation).where(
                Obligation.unit_id == "ubnd-xa-ly-quoc", Obligation.deliverable_id == "bao-cao-nam"
            )
        )
        values = {
            "so-lop-huan-luyen": 2,
            "so-nguoi-duoc-huan-luyen": 60,
            "ty-le-cbccvc-hoc-tap": 100,
            "so-tin-bai-tuyen-truyen": 4,
            "so-vu-chay": 0,
            "so-nguoi-chet": 0,
            "so-nguoi-bi-thuong": 0,
            "thiet-hai-uoc-tinh": 0,
            "so-doi-dan-phong-ra-soat": 0,
            "mo-hinh-an-toan": 1,
            "hoat-dong-thang-an-toan": "Đã tổ chức",
            "danh-gia-chung": "Hoàn thành.",
        }
        submission_id = record_submission(
            session,
            obligation.id,
            values=values,
            source="portal",
            now=dt.datetime.fromisoformat(vn(2023, 9, 5)),
        ).id
    # The deliverable says review: true, so intake asks for a review run.
    taken = intake_flow(submission_id, now=vn(2023, 9, 5), database_url=url, dispatch=False)
    run_id = taken["review_run"]
    assert run_id

    first = execute(run_id, url, prefect_server.api_url)
    assert first.returncode == 0, first.stdout + first.stderr
    with get_client(sync_client=True) as client:
        run = client.read_flow_run(run_id)
    assert run.state.name == "Suspended" and run.state.is_paused()
    assert run.name == (
        "duyệt · Ủy ban nhân dân xã Lý Quốc · Báo cáo sơ kết tình hình, kết quả thực hiện "
        "Kế hoạch hằng năm · năm 2023"
    )
    assert {"unit:ubnd-xa-ly-quoc", "cycle:2023", f"plan:{SEED}"} <= set(run.tags)
    with session_scope(url) as session:
        assert session.get(Submission, submission_id).review_state == "validated"

    # The operator answers the Resume form; a worker picks the run up again.
    resume_flow_run(
        run_id,
        run_input={
            "decision": "return",
            "by": "Công an huyện",
            "reason": "Số đội dân phòng chưa đúng",
        },
    )
    second = execute(run_id, url, prefect_server.api_url)
    assert second.returncode == 0, second.stdout + second.stderr
    with get_client(sync_client=True) as client:
        assert client.read_flow_run(run_id).state.is_completed()
    with session_scope(url) as session:
        submission = session.get(Submission, submission_id)
        assert (submission.review_state, submission.review_reason, submission.reviewed_by) == (
            "returned",
            "Số đội dân phòng chưa đúng",
            "Công an huyện",
        )
        returned = session.scalars(
            select(OutboxMessage).where(OutboxMessage.kind == "returned")
        ).all()
        assert len(returned) == 1

    # A second review run for the same submission finds the decision and stops.
    again = trigger_review(submission_id, database_url=url)
    third = execute(again, url, prefect_server.api_url)
    assert third.returncode == 0, third.stdout + third.stderr
    with get_client(sync_client=True) as client:
        assert client.read_flow_run(again).state.is_completed()
    with session_scope(url) as session:
        assert (
            len(
                session.scalars(select(OutboxMessage).where(OutboxMessage.kind == "returned")).all()
            )
            == 1
        )


def test_approval_suspends_for_the_form_then_numbers_the_report(
    prefect_server,
    tmp_path: Path,
) -> None:
    """The consolidation's draft waits in Prefect as a suspended run whose Resume form
    holds the five sections; answered, it is approved and numbered once."""
    from prefect.client.orchestration import get_client
    from prefect.flow_runs import resume_flow_run

    from engine.config import settings
    from engine.consolidation import consolidate
    from engine.store.models import ConsolidatedReport
    from workflows.activate import activate_flow
    from workflows.approve_report import trigger_approval
    from workflows.register import deploy_plan

    url = new_store(tmp_path / "store", SEED_FILES)
    deploy_plan(SEED, database_url=url, with_dispatch=False)
    activate_flow(SEED, now=vn(2023, 1, 2), years=[2023], database_url=url, dispatch=False)
    with session_scope(url) as session:
        report_id = consolidate(
            session,
            SEED,
            "2023",
            "tong-hop-bao-cao-nam",
            now=dt.datetime.fromisoformat(vn(2023, 9, 20)),
            settings=settings(),
        ).id
    run_id = trigger_approval(report_id, SEED, database_url=url)
    first = execute(run_id, url, prefect_server.api_url)
    assert first.returncode == 0, first.stdout + first.stderr
    with get_client(sync_client=True) as client:
        assert client.read_flow_run(run_id).state.name == "Suspended"
    with session_scope(url) as session:
        assert session.get(ConsolidatedReport, report_id).approval == "draft"

    resume_flow_run(
        run_id,
        run_input={
            "ket_qua": "Cơ bản hoàn thành.",
            "ton_tai": "Một số xã chưa báo cáo.",
            "nguyen_nhan": "Cán bộ kiêm nhiệm.",
            "phuong_huong": "Đôn đốc các xã.",
            "kien_nghi": "Không có.",
            "by": "Trưởng Công an huyện",
        },
    )
    second = execute(run_id, url, prefect_server.api_url)
    assert second.returncode == 0, second.stdout + second.stderr
    with get_client(sync_client=True) as client:
        state = client.read_flow_run(run_id).state
    assert state.is_completed() and state.name == "Đã duyệt và cấp số, chờ ký"
    with session_scope(url) as session:
        report = session.get(ConsolidatedReport, report_id)
        assert (report.approval, report.number_text) == ("approved", "01/BC-UBND")
        assert report.approved_by == "Trưởng Công an huyện"
        assert report.narrative["phuong_huong"] == "Đôn đốc các xã."
