"""Registration: a loaded plan becomes Prefect deployments with schedules (Asia/Ho_Chi_Minh).

``deploy_plan(plan_id)`` creates or updates, for the plan's current version:

=========================  =====================================  ===========================
deployment                 schedule                               what it runs
=========================  =====================================  ===========================
``activate/<plan>``        1/1 06:00 yearly                       the year's cycle start
``sweep/<plan>``           every day 07:00                        reminders, overdue, escalation,
                                                                  consolidations whose real
                                                                  due date came
``consolidate/<plan>``     08:00 on each consolidation deadline   consolidation + report upward
                           (cron from the plan's rule)            (checks the real due date)
``intake/<plan>``          none (one run per submission)          started by the portal
``review/<plan>``          none (one run per report to review)    suspends for the operator
``approve-report/<plan>``  none (one run per draft report)        suspends for the approval form
``dispatch/kehoach``       every 10 minutes                       email retries
=========================  =====================================  ===========================

Deployments go to a *process* work pool (``kehoach``) served by
``prefect worker start --pool kehoach``: a worker polls the pool, so a plan deployed
later is picked up without restarting anything — a running ``serve()`` only polls the
deployments it started with (PREFECT_NOTES.md).  Entry points are module paths
(``workflows.sweep:sweep_flow``), so the worker needs only the installed package.

Parameters carry ``plan_id`` only: which version a cycle runs under is in the database
(instances are pinned to ``plan_version_id``), so replacing a plan version only
re-labels the deployments and changes the schedules; running cycles keep their
version.  A retired plan loses its cycle-start schedule (no new cycles) and keeps the
rest while an instance is active; with none left its deployments are deleted.
"""

from __future__ import annotations

import calendar as _stdcal
import contextlib
import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import select

from engine.config import TIMEZONE
from engine.schema import MonthlyDate, PeriodEnd, Plan, YearlyDate
from engine.states import InstanceStatus
from engine.store.db import session_scope
from engine.store.models import PlanInstance, PlanVersion
from workflows.common import database

WORK_POOL = "kehoach"
FLOWS = ("activate", "sweep", "consolidate", "intake", "review", "request", "approve-report")
CYCLE_START_CRON = "0 6 1 1 *"
SWEEP_CRON = "0 7 * * *"
CONSOLIDATE_HOUR = 8


@dataclass
class DeploymentPlan:
    """What one deployment should look like (before Prefect objects are built)."""

    flow: str
    name: str
    crons: list[tuple[str, str]] = field(default_factory=list)  # (cron, why)
    parameters: dict[str, Any] = field(default_factory=dict)
    tags: list[str] = field(default_factory=list)
    description: str = ""
    version: str | None = None
    interval_minutes: int | None = None

    @property
    def full_name(self) -> str:
        return f"{self.flow}/{self.name}"


def consolidation_crons(plan: Plan) -> list[tuple[str, str]]:
    """Cron expressions for the nominal consolidation deadlines of ``plan``.

    The real due date may move (weekend, holiday: 25/9/2027 → 27/9); the consolidate
    flow checks the due date in the database and the daily sweep starts a moved one.
    One-off rules (fixed date, days after activation) get no cron: the sweep starts them.
    """
    crons: list[tuple[str, str]] = []
    for c in plan.consolidations:
        rule = c.deadline
        why = f"{c.id}: {rule.phrase or rule.rule}"
        if isinstance(rule, YearlyDate):
            crons.append((f"0 {CONSOLIDATE_HOUR} {rule.day} {rule.month} *", why))
        elif isinstance(rule, MonthlyDate):
            crons.append((f"0 {CONSOLIDATE_HOUR} {rule.day} * *", why))
        elif isinstance(rule, PeriodEnd):
            ends = (3, 6, 9, 12) if rule.rule == "quarter_end" else (6, 12)
            by_day: dict[int, list[int]] = {}
            for month in ends:
                month_end = dt.date(2027, month, _stdcal.monthrange(2027, month)[1])
                due = month_end + dt.timedelta(days=rule.offset_days)
                by_day.setdefault(due.day, []).append(due.month)
            for day, months in sorted(by_day.items()):
                month_list = ",".join(str(m) for m in sorted(months))
                crons.append((f"0 {CONSOLIDATE_HOUR} {day} {month_list} *", why))
    unique: dict[str, str] = {}
    for cron, why in crons:
        unique.setdefault(cron, why)
    return list(unique.items())


# Flows a person's act starts (no schedule, no parameters): the flow, what it does.
_WAITING = (
    ("intake", "Tiếp nhận bản nộp (một lượt chạy cho mỗi bản nộp)"),
    ("review", "Duyệt báo cáo: chấp nhận hoặc trả lại (chờ người vận hành)"),
    ("approve-report", "Duyệt, cấp số, ký và gửi báo cáo tổng hợp (chờ đơn vị tổng hợp)"),
)


def plan_deployments(plan: Plan, version: int, content_hash: str) -> list[DeploymentPlan]:
    label = f"v{version}-{content_hash[:8]}"
    tags = [f"plan:{plan.id}", f"plan-version:{version}"]
    params = {"plan_id": plan.id}
    title = plan.document.summary.strip()
    specs = [
        DeploymentPlan(
            "activate",
            plan.id,
            [(CYCLE_START_CRON, "cycle start, 1/1")],
            params,
            tags,
            f"Bắt đầu chu kỳ hằng năm: {title}",
            label,
        ),
        DeploymentPlan(
            "sweep",
            plan.id,
            [(SWEEP_CRON, "daily sweep")],
            params,
            tags,
            f"Quét hạn hằng ngày (nhắc 7/3/1 ngày, quá hạn, báo cáo lãnh đạo): {title}",
            label,
        ),
        DeploymentPlan(
            "consolidate",
            plan.id,
            consolidation_crons(plan),
            params,
            tags,
            f"Tổng hợp và báo cáo lên cấp trên: {title}",
            label,
        ),
    ]
    specs += [
        DeploymentPlan(flow, plan.id, [], {}, tags, f"{what}: {title}", label)
        for flow, what in _WAITING
    ]
    needs_review = any(d.review for d in plan.all_deliverables)  # tracked tasks too
    on_request = [d.id for d in plan.deliverables if d.frequency.value == "on_request"]
    if on_request:  # started by hand from the UI, with typed parameters (workflows/request.py)
        specs.append(
            DeploymentPlan(
                "request",
                plan.id,
                [],
                {**params, "deliverable_id": on_request[0]},
                tags,
                "Yêu cầu báo cáo đột xuất (chọn báo cáo, hạn, đơn vị hoặc nhóm, lý do): "
                f"{', '.join(on_request)} — {title}",
                label,
            )
        )
    return [
        s
        for s in specs
        if (s.flow not in ("consolidate", "approve-report") or plan.consolidations)
        and (s.flow != "review" or needs_review)
    ]


def _flow_object(name: str) -> Any:
    flow: Any
    if name == "activate":
        from workflows.activate import activate_flow as flow
    elif name == "sweep":
        from workflows.sweep import sweep_flow as flow
    elif name == "consolidate":
        from workflows.consolidate import consolidate_flow as flow
    elif name == "intake":
        from workflows.intake import intake_flow as flow
    elif name == "review":
        from workflows.review import review_flow as flow
    elif name == "request":
        from workflows.request import request_flow as flow
    elif name == "approve-report":
        from workflows.approve_report import approve_report_flow as flow
    elif name == "dispatch":
        from workflows.dispatch import dispatch_flow as flow
    else:  # pragma: no cover
        raise ValueError(name)
    return flow


def ensure_work_pool(name: str = WORK_POOL) -> None:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import WorkPoolCreate
    from prefect.exceptions import ObjectAlreadyExists, ObjectNotFound

    with get_client(sync_client=True) as client:
        try:
            client.read_work_pool(name)
        except ObjectNotFound:
            with contextlib.suppress(ObjectAlreadyExists):
                client.create_work_pool(WorkPoolCreate(name=name, type="process"))


def _apply(
    spec: DeploymentPlan, work_pool: str, paused: bool = False, working_dir: str | None = None
) -> str:
    from prefect.deployments.runner import EntrypointType
    from prefect.schedules import Cron, Interval

    flow = _flow_object(spec.flow)
    schedules = [Cron(cron, timezone=TIMEZONE) for cron, _why in spec.crons]
    if spec.interval_minutes:
        schedules.append(Interval(dt.timedelta(minutes=spec.interval_minutes), timezone=TIMEZONE))
    deployment = flow.to_deployment(
        name=spec.name,
        schedules=schedules,
        parameters=spec.parameters,
        tags=spec.tags,
        description=spec.description
        + ("\n\nLịch: " + "; ".join(f"`{c}` ({w})" for c, w in spec.crons) if spec.crons else ""),
        version=spec.version,
        paused=paused,
        entrypoint_type=EntrypointType.MODULE_PATH,
        # Flow runs start where `kehoach deploy` ran, so var/ and kehoach.toml resolve
        # as for the CLI; a worker elsewhere sets KEHOACH_DATABASE_URL in its own env.
        job_variables={"working_dir": working_dir} if working_dir else None,
    )
    deployment_id = deployment.apply(work_pool_name=work_pool)
    return str(deployment_id)


def _delete(full_name: str) -> bool:
    from prefect.client.orchestration import get_client
    from prefect.exceptions import ObjectNotFound

    with get_client(sync_client=True) as client:
        try:
            found = client.read_deployment_by_name(full_name)
        except ObjectNotFound:
            return False
        client.delete_deployment(found.id)
        return True


@dataclass
class DeployResult:
    plan_id: str
    version: int | None
    applied: list[tuple[str, list[str]]] = field(default_factory=list)  # (name, crons)
    deleted: list[str] = field(default_factory=list)
    note: str = ""


def _specs_to_deploy(url: str, plan_id: str) -> tuple[list[DeploymentPlan], int | None, bool]:
    """(deployments wanted, current version or None when retired, an instance is active)."""
    from engine.errors import NotFound

    with session_scope(url) as session:
        current = session.scalar(
            select(PlanVersion).where(PlanVersion.plan_id == plan_id, PlanVersion.current.is_(True))
        )
        known = session.scalar(select(PlanVersion.id).where(PlanVersion.plan_id == plan_id))
        active = session.scalars(
            select(PlanInstance.id).where(
                PlanInstance.plan_id == plan_id, PlanInstance.status == InstanceStatus.ACTIVE
            )
        ).all()
        if known is None:
            raise NotFound(f"plan '{plan_id}' is not in the store; `kehoach load` its YAML first")
        if current is not None:
            plan = Plan.model_validate(current.definition)
            return (
                plan_deployments(plan, current.version, current.content_hash),
                current.version,
                bool(active),
            )
        # Retired: no new cycles; running ones keep their sweep/consolidation/intake.
        latest = session.scalar(
            select(PlanVersion)
            .where(PlanVersion.plan_id == plan_id)
            .order_by(PlanVersion.version.desc())
        )
        if latest is None:  # pragma: no cover - the instance rows name a stored version
            raise LookupError(f"plan {plan_id} has no stored version")
        plan = Plan.model_validate(latest.definition)
        if not active:
            return [], None, False
        specs = plan_deployments(plan, latest.version, latest.content_hash)
        return [s for s in specs if s.flow != "activate"], None, True


def deploy_plan(
    plan_id: str,
    *,
    database_url: str | None = None,
    work_pool: str = WORK_POOL,
    with_dispatch: bool = True,
    paused: bool = False,
    working_dir: str | Path | None = None,
) -> DeployResult:
    """Create or update the deployments of ``plan_id``'s current version (see module doc).

    ``paused=True`` registers them with their schedules switched off (the demo does so:
    its year runs on a virtual clock, not on the real calendar).
    """
    specs, version, active = _specs_to_deploy(database(database_url), plan_id)
    ensure_work_pool(work_pool)
    folder = str(Path(working_dir or Path.cwd()).resolve())
    result = DeployResult(plan_id, version)
    wanted = {s.full_name for s in specs}
    for spec in specs:
        _apply(spec, work_pool, paused, folder)
        result.applied.append((spec.full_name, [c for c, _ in spec.crons]))
    for flow_name in FLOWS:
        full = f"{flow_name}/{plan_id}"
        if full not in wanted and _delete(full):
            result.deleted.append(full)
    if version is None:
        result.note = "plan retired: no new cycles" + (
            "; running cycles keep their flows"
            if active
            else "; no active instance, deployments removed"
        )
    if with_dispatch:
        _apply(
            DeploymentPlan(
                "dispatch",
                "kehoach",
                [],
                {},
                ["kehoach"],
                "Gửi email đến hạn (thử lại khi máy chủ SMTP lỗi tạm thời)",
                interval_minutes=10,
            ),
            work_pool,
            paused,
            folder,
        )
        result.applied.append(("dispatch/kehoach", ["every 10 minutes"]))
    return result


def deploy_all(database_url: str | None = None, work_pool: str = WORK_POOL) -> list[DeployResult]:
    """Deploy every plan in the store (current and retired-with-active-instances)."""
    url = database(database_url)
    with session_scope(url) as session:
        plan_ids = sorted(set(session.scalars(select(PlanVersion.plan_id))))
    return [deploy_plan(p, database_url=url, work_pool=work_pool) for p in plan_ids]
