"""The combined report (lồng ghép): the other plan's section in this plan's report.

The seed's district report is "combined with the report on Quyết định 630/QĐ-TTg". When
the consolidation names that plan (``combined_plan``) and the plan is in the store, its
newest consolidated report of the same cycle gives a section of figures; when the plan
is there without such a report, or not there at all, the section says so, once, in
place of figures (never figures made up from nothing).
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.context import plan_context
from engine.reports import display_value
from engine.schema import Consolidation
from engine.store.models import ConsolidatedReport, Cycle, PlanInstance, PlanVersion

HEADING = "VI. KẾT QUẢ THỰC HIỆN NỘI DUNG LỒNG GHÉP"


def combined_sections(
    session: Session, consolidation: Consolidation, cycle_key: str
) -> list[tuple[str, list[str]]]:
    """The section for ``consolidation.combined_plan`` (none when it names no plan)."""
    plan_id = consolidation.combined_plan
    if plan_id is None:
        return []
    what = consolidation.combined_with or f"kế hoạch '{plan_id}'"
    version = session.scalar(
        select(PlanVersion)
        .where(PlanVersion.plan_id == plan_id)
        .order_by(PlanVersion.current.desc(), PlanVersion.version.desc())
        .limit(1)
    )
    if version is None:
        return [(HEADING, [f"Nội dung {what} chưa có trong hệ thống; đơn vị tổng hợp bổ sung."])]
    found = session.execute(
        select(ConsolidatedReport, PlanVersion)
        .join(Cycle, ConsolidatedReport.cycle_id == Cycle.id)
        .join(PlanInstance, Cycle.instance_id == PlanInstance.id)
        .join(PlanVersion, PlanInstance.plan_version_id == PlanVersion.id)
        .where(PlanInstance.plan_id == plan_id, Cycle.key == cycle_key)
        .order_by(ConsolidatedReport.revision.desc(), ConsolidatedReport.id.desc())
        .limit(1)
    ).first()
    if found is None:
        return [
            (
                HEADING,
                [f"Về {what}: kỳ {cycle_key} chưa có báo cáo tổng hợp trong hệ thống."],
            )
        ]
    report, report_version = found
    ctx = plan_context(session, report_version)
    other = ctx.consolidation(report.consolidation_id)
    fed = ctx.plan.deliverable(other.consolidates) if other else None
    template = ctx.plan.template(fed.template or "") if fed else None
    issuer = ctx.plan.document.issuer or ctx.unit_name(ctx.plan.document.issuer_unit)
    lines = [f"Về {what} (báo cáo tổng hợp lần {report.revision} của {issuer}):"]
    names = {r.get("unit_id"): r.get("unit_name") for r in report.status_table or []}
    for field in template.fields if template else []:
        if field.id in (report.aggregates or {}):
            value = display_value(field, report.aggregates[field.id], names)
            lines.append(f"- {field.label}: {value}.")
    return [(HEADING, lines)]
