"""The daily sweep: reminders (7/3/1 days before), overdue marks, escalations, closing.

``engine.lifecycle.sweep`` does the work in one transaction and is idempotent per day
(every email has a stable key), so a re-run on the same day changes nothing.  The
flow names each change as a task run, emits events, refreshes the cycles' status
tables, starts the consolidations whose draft day has come (``engine.due``: the first
working day after the units' last due date, never after the duty's due date, the
dates a calendar policy moved, e.g. 25/9/2027 → 27/9, being in the obligation rows, not
in a cron expression), follows consolidated reports up when reports came after them
(workflows.consolidate.follow_up_consolidations: task "tổng hợp lại · plan · cycle"),
closes the cycles whose ``closes_on`` has passed (engine.closing: one
named task run and one ``kehoach.kỳ.đã-đóng`` event per cycle) and sends the emails.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from prefect import flow
from prefect.runtime import flow_run

from engine.due import due_consolidations
from engine.store.db import session_scope
from workflows.artifacts import publish_status
from workflows.common import (
    ObligationInfo,
    add_run_tags,
    database,
    iso,
    local_day,
    obligations,
    plan_short_name,
    plan_tag,
    resolve_now,
)
from workflows.consolidate import consolidate_flow, follow_up_consolidations
from workflows.dispatch import send_emails
from workflows.events import (
    CYCLE_CLOSED,
    OBLIGATION_ESCALATED,
    OBLIGATION_OVERDUE,
    SWEEP_CHANGED,
    closing_payload,
    closing_resource,
    emit,
    obligation_resource,
    plan_resource,
    related_resources,
)
from workflows.tasks import kehoach_task

# Above this many changes in one sweep, they are recorded as one task run per kind.
PER_CHANGE_LIMIT = 200


def _run_name() -> str:
    params = flow_run.parameters
    day = str(params.get("now") or "")[:10] or "hôm nay"
    return f"quét hạn · {params['plan_id']} · {day}"


@kehoach_task("sweep-obligations", task_run_name="quét nghĩa vụ · {plan_id} · {day}")
def sweep_obligations(plan_id: str, day: str, now: str, database_url: str) -> dict[str, Any]:
    from engine.lifecycle import sweep

    with session_scope(database_url) as session:
        result = sweep(session, plan_id, today=dt.date.fromisoformat(day), now=resolve_now(now))
        return {
            "reminders": [list(r) for r in result.reminders],
            "overdue": list(result.overdue),
            "escalations": list(result.escalations),
            "transferred": [list(t) for t in result.transferred],
            "intakes": list(result.intakes),
            "open_obligations": result.open_obligations,
            "summary": result.summary(),
        }


@kehoach_task("cycles-due-to-close", task_run_name="kỳ đến hạn đóng · {plan_id} · {day}")
def cycles_due_to_close(plan_id: str, day: str, now: str, database_url: str) -> dict[str, Any]:
    """Store each open cycle's ``closes_on`` (engine.closing's rule) once; list those past it."""
    from engine.closing import cycles_due

    with session_scope(database_url) as session:
        due = cycles_due(session, plan_id, today=dt.date.fromisoformat(day), now=resolve_now(now))
        return {
            "closes_on_set": [[key, d.isoformat()] for key, d in due.closes_on_set],
            "due": [list(c) for c in due.due],
        }


@kehoach_task("close-cycle", task_run_name="đóng kỳ · {plan_id} · {cycle_key}")
def close_cycle_task(
    plan_id: str, cycle_key: str, cycle_id: int, now: str, database_url: str
) -> dict[str, Any]:
    """Close one cycle (idempotent): intake first, missing units audited, summary queued."""
    from engine.closing import close_cycle

    with session_scope(database_url) as session:
        result = close_cycle(session, cycle_id, now=resolve_now(now), by="system")
        return {
            "cycle_key": result.cycle_key,
            "closed": result.closed,
            "already_closed": result.already_closed,
            "resource": closing_resource(result, plan_short_name(database_url, plan_id)),
            "payload": closing_payload(result),
            "summary": result.summary(),
        }


@kehoach_task("record-change", retry=False)
def record_change(label: str, detail: dict[str, Any]) -> dict[str, Any]:
    return detail


@flow(name="sweep", flow_run_name=_run_name, persist_result=False, log_prints=True)
def sweep_flow(
    plan_id: str,
    now: str | None = None,
    database_url: str | None = None,
    dispatch: bool = True,
    consolidate_due: bool = True,
    close_due: bool = True,
    request_approval: bool = True,
) -> dict[str, Any]:
    """Daily deadline sweep of one plan (every active version of it); then due
    consolidations, then closing the cycles past their ``closes_on`` (engine.closing)."""
    moment = resolve_now(now)
    url = database(database_url)
    when = iso(moment)
    day = local_day(moment)
    add_run_tags(plan_tag(plan_id))

    result = sweep_obligations(plan_id, day.isoformat(), when, url)
    changes = _changes(result)
    with session_scope(url) as session:
        infos = {i.id: i for i in obligations(session, ids={c[1] for c in changes})}
    _record_changes(changes, infos)
    _announce_changes(plan_id, plan_short_name(url, plan_id), changes, infos, result, day)
    for cycle_key in sorted({infos[oid].cycle_key for _, oid, _ in changes if oid in infos}):
        publish_status(url, plan_id, cycle_key, day)

    consolidated: list[Any] = []
    reconsolidated: list[dict[str, Any]] = []
    if consolidate_due:
        with session_scope(url) as session:
            due = due_consolidations(session, plan_id, day)
        for cycle_key, consolidation_id in due:
            consolidated.append(
                consolidate_flow(
                    plan_id,
                    cycle_key=cycle_key,
                    consolidation_id=consolidation_id,
                    now=when,
                    database_url=url,
                    dispatch=False,
                    request_approval=request_approval,
                )
            )
        # Reports taken in after a consolidation: revised before its due date, else noticed.
        reconsolidated = follow_up_consolidations(url, plan_id, when)
    closed = _close_due(plan_id, url, when, day) if close_due else []
    approvals = _approval_follow_ups(plan_id, when, url)
    sent = send_emails(url, when) if dispatch else None
    print(result["summary"])
    return {
        **result,
        "consolidated": consolidated,
        "reconsolidated": reconsolidated,
        "closed": closed,
        "approval_reminders": approvals,
        "sent": sent,
        "now": when,
    }


@kehoach_task("approval-follow-ups", task_run_name="nhắc duyệt báo cáo tổng hợp · {plan_id}")
def _approval_follow_ups(plan_id: str, now: str, url: str) -> int:
    """Drafts not approved, signed or sent by their step's deadline: the consolidating
    unit is reminded, and its head written to near the upward date (engine.approval)."""
    from engine.approval import follow_up_approvals

    with session_scope(url) as session:
        return follow_up_approvals(session, now=resolve_now(now), plan_id=plan_id)


Change = tuple[str, int, dict[str, Any]]  # (what, obligation id, detail)


def _changes(result: dict[str, Any]) -> list[Change]:
    changes: list[Change] = []
    changes += [("nhắc hạn", oid, {"days_before": step}) for oid, step in result["reminders"]]
    changes += [("quá hạn", oid, {}) for oid in result["overdue"]]
    changes += [("báo cáo lãnh đạo", oid, {}) for oid in result["escalations"]]
    changes += [
        ("chuyển đơn vị kế thừa", t[0], {"from": t[1], "to": t[2]}) for t in result["transferred"]
    ]
    return changes


def _record_changes(changes: list[Change], infos: dict[int, ObligationInfo]) -> None:
    """A task run per change, named like it; one per kind above ``PER_CHANGE_LIMIT``."""
    if len(changes) <= PER_CHANGE_LIMIT:
        for what, oid, detail in changes:
            info = infos.get(oid)
            if info is None:
                continue
            suffix = f" · còn {detail['days_before']} ngày" if "days_before" in detail else ""
            record_change.with_options(task_run_name=f"{what} · {info.label}{suffix}")(
                f"{what} · {info.label}", {"obligation_id": oid, **detail}
            )
        return
    for what in sorted({c[0] for c in changes}):
        ids = [oid for w, oid, _ in changes if w == what]
        record_change.with_options(task_run_name=f"{what} · {len(ids)} nghĩa vụ")(
            what, {"obligation_ids": ids}
        )


def _announce_changes(
    plan_id: str,
    title: str,
    changes: list[Change],
    infos: dict[int, ObligationInfo],
    result: dict[str, Any],
    day: dt.date,
) -> None:
    """An event per overdue mark and escalation; one for the sweep when it changed anything."""
    for what, event in (
        ("quá hạn", OBLIGATION_OVERDUE),
        ("báo cáo lãnh đạo", OBLIGATION_ESCALATED),
    ):
        for w, oid, _ in changes:
            info = infos.get(oid)
            if w != what or info is None:
                continue
            emit(
                event,
                obligation_resource(oid, info.label),
                related_resources(plan_id, title, info.cycle_key, info.unit_id, info.unit_name),
                {"due_date": info.due_date.isoformat(), "day": day.isoformat()},
            )
    if changes or result["intakes"]:
        emit(
            SWEEP_CHANGED,
            plan_resource(plan_id, title),
            [],
            {
                k: len(result[k])
                for k in ("reminders", "overdue", "escalations", "transferred", "intakes")
            }
            | {"day": day.isoformat()},
        )


def _close_due(plan_id: str, url: str, when: str, day: dt.date) -> list[dict[str, Any]]:
    """Close the cycles past their ``closes_on``: a task run and an event each."""
    closed = []
    due = cycles_due_to_close(plan_id, day.isoformat(), when, url)
    for cycle_id, cycle_key in due["due"]:
        done = close_cycle_task(plan_id, cycle_key, cycle_id, when, url)
        if not done["closed"]:
            continue
        closed.append(done)
        emit(
            CYCLE_CLOSED,
            done["resource"],
            related_resources(plan_id, plan_short_name(url, plan_id), cycle_key),
            {**done["payload"], "day": day.isoformat()},
        )
        publish_status(url, plan_id, cycle_key, day)
        print(done["summary"])
    return closed
