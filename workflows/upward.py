"""A consolidated report handed upward, as Prefect shows it: where it went (the parent
plan's cycle and unit, when it became that plan's submission) and the events saying so.

Shared by the consolidate flow (a report of before approval, handed upward by the
consolidation itself) and by every path that sends an approved, signed report upward
(engine.approval.send_upward): the approval flow (workflows/approve_report.py), the
portal's review page (portal/review_report.py) and ``kehoach report send``
(cli/report.py), all through :func:`announce_sent`; the last two, outside any flow run,
through :func:`announce_sent_outside_flow`.
"""

from __future__ import annotations

from typing import Any

from prefect import flow

from engine.store.db import session_scope
from engine.store.models import ConsolidatedReport, Cycle, Obligation, Submission
from workflows.artifacts import publish_status
from workflows.common import (
    add_run_tags,
    in_process_runs,
    iso,
    local_day,
    obligations,
    plan_short_name,
    plan_tag,
    resolve_now,
    unit_tag,
)
from workflows.events import (
    REPORT_HANDED_UPWARD,
    SUBMISSION_RECEIVED,
    cycle_resource,
    emit,
    related_resources,
    submission_resource,
)


def upward_of(session: Any, submission_id: int | None) -> dict[str, Any]:
    """Where a report handed upward went: the parent plan, its cycle, the duty's label
    and (unit id, name) of the submission ``submission_id`` (all None without one)."""
    found: dict[str, Any] = dict.fromkeys(
        ("upward_plan", "upward_cycle", "upward_label", "upward_unit")
    )
    submission = session.get(Submission, submission_id) if submission_id is not None else None
    obligation = session.get(Obligation, submission.obligation_id) if submission else None
    if obligation is not None:
        [info] = obligations(session, ids=[obligation.id])
        found.update(
            upward_plan=info.plan_id,
            upward_cycle=info.cycle_key,
            upward_label=info.label,
            upward_unit=(info.unit_id, info.unit_name),
        )
    return found


def emit_handed_upward(
    url: str, plan_id: str, key: str, result: dict[str, Any], payload: dict[str, Any], day: Any
) -> None:
    """:data:`REPORT_HANDED_UPWARD` on the cycle, about the parent plan's cycle and unit
    when the report became its submission (then also :data:`SUBMISSION_RECEIVED` there,
    the run tagged and the parent's status republished), else about the sender."""
    title = plan_short_name(url, plan_id)
    resource = cycle_resource(plan_id, title, key)
    if not result["upward_plan"]:
        emit(REPORT_HANDED_UPWARD, resource, related_resources(plan_id, title, key), payload)
        return
    parent, parent_cycle = result["upward_plan"], result["upward_cycle"]
    unit_id, unit_name = result["upward_unit"]
    parent_title = plan_short_name(url, parent)
    related = related_resources(parent, parent_title, parent_cycle, unit_id, unit_name)
    emit(REPORT_HANDED_UPWARD, resource, related, {"parent_plan": parent, **payload})
    emit(
        SUBMISSION_RECEIVED,
        submission_resource(result["upward_submission_id"], f"nộp · {result['upward_label']}"),
        related,
        {"source": "upward", "from_plan": plan_id},
    )
    add_run_tags(plan_tag(parent), unit_tag(unit_id))
    publish_status(url, parent, parent_cycle, day)


def announce_sent(url: str, report_id: int, when: str) -> None:
    """The report ``report_id``, sent upward (engine.approval.send_upward), on Prefect's
    event feed: :func:`emit_handed_upward` with its number, revision and submission."""
    with session_scope(url) as session:
        report = session.get(ConsolidatedReport, report_id)
        assert report is not None
        cycle = session.get(Cycle, report.cycle_id)
        assert cycle is not None
        plan_id, key = cycle.instance.plan_id, cycle.key
        upward = {
            "upward_submission_id": report.upward_submission_id,
            **upward_of(session, report.upward_submission_id),
        }
        payload = {
            "report_id": report.id,
            "revision": report.revision,
            "number": report.number_text,
            "submission_id": report.upward_submission_id,
            "sent_at": iso(report.sent_at) if report.sent_at else None,
        }
    add_run_tags(plan_tag(plan_id))
    emit_handed_upward(url, plan_id, key, upward, payload, local_day(resolve_now(when)))


def announce_sent_outside_flow(url: str, report_id: int, when: str) -> str:
    """:func:`announce_sent` from a process that is no flow run (the portal, the CLI), on
    exactly the configured Prefect API (engine.config.prefect_api), its events flushed
    before returning. Returns "" when announced, else why not, in Vietnamese (no API
    configured: nothing to tell; one that does not answer: the caller warns)."""
    from engine.config import prefect_api
    from workflows.server import api_problem, use_api

    configured = prefect_api()
    if configured is None:
        return "chưa cấu hình Prefect API (PREFECT_API_URL)"
    api_url, origin = configured
    problem = api_problem(api_url, timeout=3.0)
    if problem is not None:
        return f"Prefect API {origin}={api_url}: {problem}"
    with use_api(api_url), in_process_runs():
        report_sent_upward_flow(report_id, when, url)
        _flush_events()
    return ""


@flow(
    name="report-sent-upward",
    flow_run_name="gửi cấp trên · báo cáo tổng hợp số {report_id}",
    persist_result=False,
)
def report_sent_upward_flow(report_id: int, when: str, database_url: str) -> None:
    """A run of its own for a report sent outside the approval flow, so the operator sees
    it in the runs list and the artifacts it republishes belong to a run."""
    announce_sent(database_url, report_id, when)


def _flush_events(timeout: float = 10.0) -> None:
    """Wait (at most ``timeout`` s) until the events emitted so far have left this
    process: Prefect sends them from a background worker, and a CLI process may exit
    at once."""
    import threading

    from prefect.events.worker import EventsWorker

    waiting = threading.Thread(target=EventsWorker.instance().wait_until_empty, daemon=True)
    waiting.start()
    waiting.join(timeout)
