"""The request flow: a report on request (đột xuất) as a Prefect deployment run.

``request/<plan>`` has no schedule; an operator starts it from the Prefect UI ("Run" →
"Custom run"), where the form is built from the typed parameters below (the
deliverable, the due date as a date picker, the units or a group, the reason). It does
what ``kehoach request`` does (engine.requests_adhoc, one transaction), then publishes
the new cycle's status table and sends the assignment emails. A refused request
(unknown report, a date already past, a unit not assigned) fails the run with the same
Vietnamese message, and writes nothing.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict
from typing import Any

from prefect import flow
from prefect.runtime import flow_run

from engine.store.db import session_scope
from workflows.artifacts import publish_status
from workflows.common import (
    add_run_tags,
    cycle_tag,
    database,
    iso,
    local_day,
    plan_short_name,
    plan_tag,
    resolve_now,
)
from workflows.dispatch import send_emails
from workflows.events import CYCLE_STARTED, cycle_resource, emit, related_resources


def _run_name() -> str:
    params = flow_run.parameters
    return (
        f"yêu cầu báo cáo đột xuất · {params.get('plan_id')} · {params.get('deliverable_id')} "
        f"· hạn {params.get('due')}"
    )


@flow(name="request", flow_run_name=_run_name, persist_result=False, log_prints=True)
def request_flow(
    plan_id: str,
    deliverable_id: str,
    due: dt.date,
    reason: str,
    units: list[str] | None = None,
    group: str | None = None,
    requested_by: str = "prefect",
    now: str | None = None,
    database_url: str | None = None,
    dispatch: bool = True,
) -> dict[str, Any]:
    """Request report ``deliverable_id`` of ``plan_id`` by ``due`` from every unit that
    owes it, or only ``units`` / the members of ``group``, for ``reason``."""
    from engine.requests_adhoc import request_report

    moment = resolve_now(now)
    url = database(database_url)
    add_run_tags(plan_tag(plan_id))
    with session_scope(url) as session:
        result = request_report(
            session,
            plan_id,
            deliverable_id,
            due=due,
            reason=reason,
            units=units or None,
            group=group,
            now=moment,
            by=requested_by,
        )
    add_run_tags(cycle_tag(result.cycle_key))
    publish_status(url, plan_id, result.cycle_key, local_day(moment))
    emit(
        CYCLE_STARTED,
        cycle_resource(plan_id, title := plan_short_name(url, plan_id), result.cycle_key),
        related_resources(plan_id, title, result.cycle_key),
        {"obligations": len(result.units) + len(result.consolidations), "request": True},
    )
    sent = send_emails(url, iso(moment)) if dispatch else None
    print(
        f"{plan_id}: yêu cầu '{deliverable_id}' — kỳ {result.cycle_key} ({result.label}), "
        f"hạn {result.due:%d/%m/%Y}, {len(result.units)} đơn vị, {result.queued} thư"
    )
    summary = asdict(result)
    summary["due"] = result.due.isoformat()
    summary["sent"] = sent
    return summary
