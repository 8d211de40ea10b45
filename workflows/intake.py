"""The intake flow: one run per submission, "nộp · {unit} · {deliverable} · {cycle}".

The submission row was committed by the portal (or the CLI, or a consolidation
handing its report upward) before this flow starts: nothing a unit sent lives only
in Prefect.  ``engine.lifecycle.intake`` marks the obligation (on time / late) and
queues the receipt in one transaction, idempotently; the flow emits
``kehoach.submission.received``, starts the consolidation early when the cycle is
complete, asks for a review where the plan wants one, and sends the emails.
"""

from __future__ import annotations

import logging
from typing import Any

from prefect import flow, task
from prefect.cache_policies import NO_CACHE
from prefect.runtime import flow_run
from sqlalchemy import select

from engine.store.db import session_scope
from engine.store.models import ConsolidatedReport, Cycle, Obligation, Submission
from workflows.common import (
    ObligationInfo,
    add_run_tags,
    cycle_tag,
    database,
    emit,
    iso,
    obligations,
    plan_tag,
    related_resources,
    resolve_now,
    unit_tag,
)
from workflows.dispatch import send_emails

log = logging.getLogger("kehoach.workflows")


def submission_info(database_url: str, submission_id: int) -> ObligationInfo | None:
    with session_scope(database_url) as session:
        obligation_id = session.scalar(
            select(Submission.obligation_id).where(Submission.id == submission_id)
        )
        if obligation_id is None:
            return None
        found = obligations(session, ids=[obligation_id])
    return found[0] if found else None


def _run_name() -> str:
    params = flow_run.parameters
    submission_id = params["submission_id"]
    try:
        info = submission_info(database(params.get("database_url")), submission_id)
    except Exception:  # the name is cosmetic; the flow reports real errors itself
        info = None
    if info is None:
        return f"nộp · bản nộp {submission_id}"
    return f"nộp · {info.label}"


@task(
    name="take-in",
    cache_policy=NO_CACHE,
    persist_result=False,
    retries=2,
    retry_delay_seconds=1,
)
def take_in(submission_id: int, now: str, database_url: str) -> dict[str, Any]:
    from engine.lifecycle import intake

    with session_scope(database_url) as session:
        result = intake(session, submission_id, now=resolve_now(now))
        submission = session.get(Submission, submission_id)
        source = submission.source if submission else None
    return {
        "submission_id": result.submission_id,
        "obligation_id": result.obligation_id,
        "plan_id": result.plan_id,
        "unit_id": result.unit_id,
        "unit_name": result.unit_name,
        "deliverable_id": result.deliverable_id,
        "deliverable_title": result.deliverable_title,
        "kind": result.kind,
        "cycle_key": result.cycle_key,
        "version": result.version,
        "on_time": result.on_time,
        "already_done": result.already_done,
        "superseded": result.superseded,
        "cycle_complete": result.cycle_complete,
        "consolidation_ids": list(result.consolidation_ids),
        "event": result.event_name,
        "resource": result.event_resource(),
        "payload": result.event_payload(),
        "source": source,
    }


def _consolidated(database_url: str, obligation_id: int, consolidation_id: str) -> bool:
    with session_scope(database_url) as session:
        cycle_id = session.scalar(select(Obligation.cycle_id).where(Obligation.id == obligation_id))
        return (
            session.scalar(
                select(ConsolidatedReport.id).where(
                    ConsolidatedReport.cycle_id == cycle_id,
                    ConsolidatedReport.consolidation_id == consolidation_id,
                )
            )
            is not None
        )


def _needs_review(database_url: str, submission_id: int, deliverable_id: str) -> bool:
    from engine.lifecycle import context_for_obligation

    with session_scope(database_url) as session:
        submission = session.get(Submission, submission_id)
        if submission is None or submission.review_state not in ("received", "validated"):
            return False
        obligation = session.get(Obligation, submission.obligation_id)
        ctx = context_for_obligation(session, obligation)
        deliverable = ctx.plan.deliverable(deliverable_id)
        return bool(deliverable is not None and deliverable.review)


@flow(name="intake", flow_run_name=_run_name, persist_result=False, log_prints=True)
def intake_flow(
    submission_id: int,
    now: str | None = None,
    database_url: str | None = None,
    dispatch: bool = True,
    consolidate_early: bool = True,
    request_review: bool = True,
) -> dict[str, Any]:
    """Take one submission in; consolidate early when its cycle is complete."""
    moment = resolve_now(now)
    url = database(database_url)
    when = iso(moment)

    info = submission_info(url, submission_id)
    label = info.label if info else f"bản nộp {submission_id}"
    if info is not None:
        add_run_tags(*info.tags)
    result = take_in.with_options(task_run_name=f"tiếp nhận · {label}")(submission_id, when, url)
    plan_id, cycle_key = result["plan_id"], result["cycle_key"]
    if not result["already_done"]:
        emit(
            "kehoach.submission.received",
            {
                "prefect.resource.id": f"kehoach.submission.{submission_id}",
                "prefect.resource.name": f"nộp · {label}",
            },
            related_resources(plan_id, cycle_key, result["unit_id"], result["unit_name"])
            + [
                {
                    "prefect.resource.id": f"kehoach.obligation.{result['obligation_id']}",
                    "prefect.resource.role": "obligation",
                }
            ],
            {**result["payload"], "source": result["source"]},
        )
        emit(
            result["event"],
            result["resource"],
            related_resources(plan_id, cycle_key, result["unit_id"], result["unit_name"]),
            result["payload"],
        )

    review_run = None
    if request_review and _needs_review(url, submission_id, result["deliverable_id"]):
        from workflows.review import trigger_review

        try:
            review_run = trigger_review(submission_id, plan_id=plan_id, database_url=database_url)
        except Exception as exc:  # no review deployment: the CLI or the UI decides later
            print(f"duyệt: chưa tạo được lượt duyệt ({exc}); dùng `kehoach review {submission_id}`")

    consolidated = []
    if consolidate_early and result["cycle_complete"] and not result["superseded"]:
        from workflows.consolidate import consolidate_flow

        for consolidation_id in result["consolidation_ids"]:
            if _consolidated(url, result["obligation_id"], consolidation_id):
                continue
            print(f"{plan_id} {cycle_key}: mọi đơn vị đã nộp; tổng hợp sớm ({consolidation_id})")
            consolidated.append(
                consolidate_flow(
                    plan_id,
                    cycle_key=cycle_key,
                    consolidation_id=consolidation_id,
                    now=when,
                    database_url=url,
                    dispatch=False,
                )
            )
    sent = send_emails(url, when) if dispatch else None
    state = "đúng hạn" if result["on_time"] else "trễ hạn"
    print(f"nộp · {label}: phiên bản {result['version']}, {state}")
    return {
        **{k: v for k, v in result.items() if k not in ("resource", "payload")},
        "consolidated": consolidated,
        "review_run": str(review_run) if review_run else None,
        "sent": sent,
        "now": when,
    }


def deployment_name(plan_id: str) -> str:
    return f"intake/{plan_id}"


def trigger_intake(submission_id: int, database_url: str | None = None) -> Any:
    """Start the intake flow run for a stored submission (the portal calls this).

    Creates a run of the plan's ``intake`` deployment (``kehoach deploy PLAN``) for a
    worker to execute, and returns its id; raises when Prefect or the deployment is
    missing, so the caller can take the submission in itself.
    """
    from prefect.deployments import run_deployment

    url = database(database_url)
    info = submission_info(url, submission_id)
    if info is None:
        raise LookupError(f"submission {submission_id} does not exist")
    parameters: dict[str, Any] = {"submission_id": submission_id}
    if database_url:
        parameters["database_url"] = database_url
    with session_scope(url) as session:
        cycle_key = session.scalar(
            select(Cycle.key)
            .join(Obligation, Obligation.cycle_id == Cycle.id)
            .where(Obligation.id == info.id)
        )
    run = run_deployment(
        deployment_name(info.plan_id),
        parameters=parameters,
        timeout=0,
        as_subflow=False,
        flow_run_name=f"nộp · {info.label}",
        tags=[plan_tag(info.plan_id), unit_tag(info.unit_id), cycle_tag(cycle_key or "")],
    )
    return run.id
