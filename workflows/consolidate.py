"""The consolidate flow: a cycle's reports become one report, handed upward.

Scheduled at each consolidation deadline (cron from the plan's rule), started by the
daily sweep on the draft day (``engine.due.draft_day``: the first working day after the
units' last due date, never after the duty's), and by intake when the last report of
a cycle arrives.  Without ``cycle_key`` it consolidates whatever is due at ``now``:
the due dates live in the obligation rows (moved by the calendar policy), so the cron
of 25/9 finds a report drafted earlier and does nothing.  ``engine.consolidation``
is idempotent per (cycle, consolidation); artifacts are re-published on every run.

``revise=True`` (``kehoach consolidate PLAN --cycle KEY --revise``) writes a new
revision when reports were taken in after the newest one.  Intake and the daily sweep
call :func:`follow_up_consolidations`: while the consolidation duty's due date has not
passed a stale report is revised at once (task run "tổng hợp lại · plan · cycle"),
afterwards the consolidating unit gets one notice per late report (docs/DECISIONS.md).
"""

from __future__ import annotations

from typing import Any

from prefect import flow
from prefect.runtime import flow_run

from engine.config import settings
from engine.due import due_consolidations
from engine.status import State
from engine.store.db import session_scope
from workflows.artifacts import publish_report, publish_status
from workflows.common import (
    add_run_tags,
    cycle_label,
    cycle_tag,
    database,
    iso,
    local_day,
    obligations,
    plan_short_name,
    plan_tag,
    resolve_now,
)
from workflows.dispatch import send_emails
from workflows.events import (
    CYCLE_CONSOLIDATED,
    CYCLE_RECONSOLIDATED,
    cycle_resource,
    emit,
    related_resources,
)
from workflows.tasks import kehoach_task
from workflows.upward import emit_handed_upward, upward_of


def _run_name() -> str:
    params = flow_run.parameters
    cycle = params.get("cycle_key")
    what = cycle_label(cycle) if cycle else f"đến hạn {str(params.get('now') or '')[:10]}"
    return f"tổng hợp · {params['plan_id']} · {what}"


def _payload(
    session: Any, plan_id: str, cycle_key: str, consolidation_id: str, result: Any
) -> dict[str, Any]:
    """What a flow needs of a ConsolidationResult, as plain values."""
    upward = upward_of(session, result.upward_submission_id)
    return {
        "plan_id": plan_id,
        "cycle_key": cycle_key,
        "consolidation_id": consolidation_id,
        "report_id": result.id,
        "revision": result.revision,
        "created": result.created,
        "document_path": result.document_path,
        "markdown": result.markdown,
        "counts": result.counts(),
        "on_time": [r.unit_name for r in result.status_rows if r.state == State.DONE_ON_TIME],
        "late": [r.unit_name for r in result.status_rows if r.state == State.DONE_LATE],
        "missing": [r.unit_name for r in result.status_rows if not r.state.done],
        "upward_submission_id": result.upward_submission_id,
        **upward,
        "upward_refused": result.upward_refused,
        "changes": list(result.changes),
        "warnings": list(result.warnings),
    }


@kehoach_task("consolidate-cycle")
def consolidate_cycle(
    plan_id: str,
    cycle_key: str,
    consolidation_id: str,
    now: str,
    database_url: str,
    revise: bool = False,
) -> dict[str, Any]:
    """Aggregate, status table, .docx, the consolidation point's submission, upward."""
    from engine.consolidation import consolidate

    with session_scope(database_url) as session:
        result = consolidate(
            session,
            plan_id,
            cycle_key,
            consolidation_id,
            now=resolve_now(now),
            settings=settings(),
            revise=revise,
        )
        return _payload(session, plan_id, cycle_key, consolidation_id, result)


@kehoach_task("reconsolidate")
def reconsolidate(
    plan_id: str, cycle_key: str, consolidation_id: str, now: str, database_url: str
) -> dict[str, Any]:
    """Reports taken in after the consolidation: a new revision, or notices (engine rule)."""
    from engine.consolidation import follow_up

    with session_scope(database_url) as session:
        done = follow_up(
            session, plan_id, cycle_key, consolidation_id, now=resolve_now(now), settings=settings()
        )
        return {
            "plan_id": plan_id,
            "cycle_key": cycle_key,
            "consolidation_id": consolidation_id,
            "submission_ids": done.submission_ids,
            "due_date": done.due_date.isoformat() if done.due_date else None,
            "automatic": done.automatic,
            "notices": done.notices,
            "revision": (
                _payload(session, plan_id, cycle_key, consolidation_id, done.result)
                if done.result is not None
                else None
            ),
        }


def follow_up_consolidations(
    database_url: str,
    plan_id: str,
    when: str,
    only: set[tuple[str, str]] | None = None,
) -> list[dict[str, Any]]:
    """Inside a flow (intake, sweep): each consolidated report of ``plan_id`` with reports
    taken in after it (``only``: these (cycle, consolidation) pairs) is revised while
    its duty is not due yet, else its consolidating unit is told once per late report."""
    from engine.consolidation import pending_follow_ups

    day = local_day(resolve_now(when))
    with session_scope(database_url) as session:
        todo = [
            (t.cycle_key, t.consolidation_id, t.automatic)
            for t in pending_follow_ups(session, plan_id, day)
        ]
    done = []
    for key, cid, automatic in todo:
        if only is not None and (key, cid) not in only:
            continue
        what = "tổng hợp lại" if automatic else "báo cáo gửi sau tổng hợp"
        result = reconsolidate.with_options(
            task_run_name=f"{what} · {plan_id} · {cycle_label(key)}"
        )(plan_id, key, cid, when, database_url)
        revision = result["revision"]
        if revision is not None and revision["created"]:
            _publish(database_url, plan_id, key, revision, day)
        for sid in result["notices"]:
            print(
                f"{plan_id} {key}: báo cáo {sid} đến sau hạn tổng hợp ({result['due_date']}); "
                "đã báo đơn vị tổng hợp"
            )
        done.append(
            {k: v for k, v in result.items() if k != "revision"}
            | {
                "revision": {k: v for k, v in revision.items() if k != "markdown"}
                if revision
                else None
            }
        )
    return done


def _by_unit(database_url: str, plan_id: str, cycle_key: str, consolidation_id: str) -> str:
    with session_scope(database_url) as session:
        found = [
            i
            for i in obligations(session, plan_id, cycle_keys=[cycle_key])
            if i.deliverable_id == consolidation_id
        ]
    return found[0].unit_name if found else consolidation_id


@flow(name="consolidate", flow_run_name=_run_name, persist_result=False, log_prints=True)
def consolidate_flow(
    plan_id: str,
    cycle_key: str | None = None,
    consolidation_id: str | None = None,
    now: str | None = None,
    database_url: str | None = None,
    dispatch: bool = True,
    revise: bool = False,
    request_approval: bool = True,
) -> dict[str, Any]:
    """Consolidate one cycle (or every consolidation due at ``now``) into a draft, and
    ask for its approval (a suspended ``approve-report`` run; the portal and the CLI do
    the same); ``revise``: write a new revision if reports were taken in after the
    newest one."""
    moment = resolve_now(now)
    url = database(database_url)
    when = iso(moment)
    day = local_day(moment)
    add_run_tags(plan_tag(plan_id), *([cycle_tag(cycle_key)] if cycle_key else []))

    if cycle_key is None:
        with session_scope(url) as session:
            targets = due_consolidations(session, plan_id, day)
        if consolidation_id is not None:
            targets = [t for t in targets if t[1] == consolidation_id]
        if not targets:
            print(f"{plan_id}: không có kỳ tổng hợp nào đến hạn ngày {day.isoformat()}")
            return {"plan_id": plan_id, "consolidated": [], "now": when}
    else:
        if consolidation_id is None:
            from engine.repository import current_plan

            with session_scope(url) as session:
                plan = current_plan(session, plan_id)
            ids = [c.id for c in plan.consolidations] if plan else []
        else:
            ids = [consolidation_id]
        targets = [(cycle_key, cid) for cid in ids]

    done = []
    for key, cid in targets:
        by = _by_unit(url, plan_id, key, cid)
        what = "tổng hợp lại" if revise else "tổng hợp"
        result = consolidate_cycle.with_options(
            task_run_name=f"{what} · {by} · {cycle_label(key)}"
        )(plan_id, key, cid, when, url, revise)
        _publish(url, plan_id, key, result, day)
        if result["created"] and request_approval:
            result["approval_run"] = _ask_approval(result["report_id"], plan_id, database_url)
        done.append({k: v for k, v in result.items() if k != "markdown"})
    sent = send_emails(url, when) if dispatch else None
    return {"plan_id": plan_id, "consolidated": done, "sent": sent, "now": when}


def _ask_approval(report_id: int, plan_id: str, database_url: str | None) -> Any:
    from workflows.approve_report import trigger_approval

    try:
        return str(trigger_approval(report_id, plan_id, database_url))
    except Exception as exc:  # no deployment: the portal or `kehoach report` approves it
        print(f"duyệt: chưa tạo được lượt duyệt ({exc}); dùng cổng hoặc `kehoach report {plan_id}`")
        return None


def _publish(url: str, plan_id: str, key: str, result: dict[str, Any], day: Any) -> None:
    """Artifacts, events and a line of output for one consolidation (or revision)."""
    revision = result.get("revision") or 1
    publish_status(url, plan_id, key, day)
    title = "Báo cáo tổng hợp" + (f" lần {revision}" if revision > 1 else "")
    publish_report(
        plan_id,
        key,
        result["markdown"],
        f"{title} {plan_id} · {cycle_label(key)}: "
        f"{len(result['on_time'])} đúng hạn, {len(result['late'])} trễ hạn, "
        f"{len(result['missing'])} chưa nộp",
    )
    plan_title = plan_short_name(url, plan_id)
    resource = cycle_resource(plan_id, plan_title, key)
    emit(
        CYCLE_RECONSOLIDATED if revision > 1 and result["created"] else CYCLE_CONSOLIDATED,
        resource,
        related_resources(plan_id, plan_title, key),
        {
            k: result.get(k)
            for k in (
                "report_id",
                "revision",
                "document_path",
                "counts",
                "late",
                "missing",
                "created",
                "changes",
                "upward_refused",
            )
        },
    )
    if result["upward_plan"]:
        payload = {"submission_id": result["upward_submission_id"], "revision": revision}
        emit_handed_upward(url, plan_id, key, result, payload, day)
    for warning in result["warnings"]:
        print(f"cảnh báo: {warning}")
    lan = f" (lần {revision})" if revision > 1 else ""
    print(
        f"{plan_id} {key}{lan}: đúng hạn {len(result['on_time'])}, trễ {len(result['late'])}, "
        f"chưa nộp {len(result['missing'])}; {result['document_path']}"
    )
    for change in result.get("changes") or []:
        print(f"  thay đổi: {change}")
