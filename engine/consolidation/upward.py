"""The hand-off upward: the consolidated report becomes this plan's answer to the parent
plan's obligation (which may refuse it: recorded, not raised).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from engine.audit import write_audit
from engine.consolidation.result import ConsolidationResult
from engine.context import PlanContext, plan_context
from engine.lifecycle.intake import intake
from engine.lifecycle.submissions import SubmissionRejected, record_submission
from engine.reports import values_for_template
from engine.schema import Consolidation, ReportTemplate
from engine.states import (
    InstanceStatus,
)
from engine.store.models import (
    ConsolidatedReport,
    Cycle,
    Obligation,
    PlanInstance,
    PlanVersion,
)


def hand_upward(
    session: Session,
    ctx: PlanContext,
    consolidation: Consolidation,
    template: ReportTemplate,
    cycle_key: str,
    by_unit: str,
    report: ConsolidatedReport,
    file_id: int,
    summary: str,
    unit_names: dict[str, str],
    now: dt.datetime,
    result: ConsolidationResult,
) -> None:
    """Record the report as this plan's submission to the parent plan's obligation."""
    upward = consolidation.upward
    assert upward is not None
    issuer = ctx.plan.document.issuer_unit
    candidates = [u for u in (issuer, by_unit, consolidation.by) if u]
    found = _parent_obligation(session, upward.plan, upward.deliverable, cycle_key, candidates)
    if found is None:
        result.warnings.append(
            f"no obligation '{upward.deliverable}' of plan '{upward.plan}' for cycle "
            f"{cycle_key} owed by {', '.join(candidates)}: activate the parent plan; "
            "the report was not handed upward"
        )
        return
    parent_obligation, parent_version = found
    values = _parent_values(
        session, parent_version, upward.deliverable, report, template, unit_names
    )
    try:
        submission = record_submission(
            session,
            parent_obligation.id,
            values=values,
            summary=summary,
            file_ids=[file_id],
            source="upward",
            now=now,
            actor=f"plan:{ctx.plan_id}",
            strict=False,
        )
    except SubmissionRejected as exc:
        result.upward_refused = str(exc)
        result.warnings.append(f"the parent obligation refused the report: {exc}")
        write_audit(
            session,
            "report.upward_refused",
            at=now,
            plan_id=ctx.plan_id,
            obligation_id=parent_obligation.id,
            parent_plan=upward.plan,
            report_id=report.id,
            revision=report.revision,
            reason=str(exc),
        )
        session.flush()
        return
    intake(session, submission.id, now=now)
    report.upward_submission_id = submission.id
    result.upward_obligation_id = parent_obligation.id
    write_audit(
        session,
        "report.handed_upward",
        at=now,
        plan_id=ctx.plan_id,
        obligation_id=parent_obligation.id,
        parent_plan=upward.plan,
        submission_id=submission.id,
        report_id=report.id,
        revision=report.revision,
    )
    session.flush()


def _parent_obligation(
    session: Session, plan_id: str, deliverable_id: str, cycle_key: str, candidates: list[str]
) -> tuple[Obligation, PlanVersion] | None:
    """The parent plan's obligation owed by the first of ``candidates`` (or transferred
    from one of them), with the version it runs under."""
    found = session.execute(
        select(Obligation, PlanVersion)
        .join(Cycle, Obligation.cycle_id == Cycle.id)
        .join(PlanInstance, Cycle.instance_id == PlanInstance.id)
        .join(PlanVersion, PlanInstance.plan_version_id == PlanVersion.id)
        .where(
            PlanInstance.plan_id == plan_id,
            PlanInstance.status == InstanceStatus.ACTIVE,
            Cycle.key == cycle_key,
            Obligation.deliverable_id == deliverable_id,
            or_(
                Obligation.unit_id.in_(candidates),
                Obligation.transferred_from.in_(candidates),
            ),
        )
        .order_by(PlanInstance.id.desc())
    ).all()
    if not found:
        return None

    def rank(pair: Any) -> int:
        obligation = pair[0]
        for index, unit in enumerate(candidates):
            if obligation.unit_id == unit:
                return index
        for index, unit in enumerate(candidates):
            if obligation.transferred_from == unit:
                return len(candidates) + index
        return 99

    obligation, version = min(found, key=rank)
    return obligation, version


def _parent_values(
    session: Session,
    parent_version: PlanVersion,
    deliverable_id: str,
    report: ConsolidatedReport,
    template: ReportTemplate,
    unit_names: dict[str, str],
) -> dict[str, Any]:
    """The report's aggregates in the parent's template (what fits; nothing if none)."""
    parent_ctx = plan_context(session, parent_version)
    parent_deliverable = parent_ctx.plan.deliverable(deliverable_id)
    parent_template = (
        parent_ctx.plan.template(parent_deliverable.template or "")
        if parent_deliverable is not None
        else None
    )
    if parent_template is None:
        return {}
    return values_for_template(parent_template, report.aggregates, template, unit_names)
