"""The intake flow: a run per submission ("nộp · {unit} · {deliverable} · {cycle}") or
per batch of one plan's submissions handed over by the portal ("nộp · {plan} · N bản nộp").

The submission row was committed by the portal (or the CLI, or a consolidation
handing its report upward) before this flow starts: nothing a unit sent lives only
in Prefect.  ``engine.lifecycle.intake`` marks the obligation (on time / late) and
queues the receipt in one transaction, idempotently; the flow emits
``kehoach.bản-nộp.đã-nhận``, starts the consolidation early when the cycle is
complete, revises a consolidation the report came after (or tells the consolidating
unit, once the duty's due date has passed; ``engine.due`` decides which), asks for a
review where the plan wants one, and sends the emails.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from prefect import flow
from prefect.runtime import flow_run
from sqlalchemy import select

from engine.batches import in_chunks
from engine.due import Fed, Target, consolidated_before, early_consolidations
from engine.states import ReviewState
from engine.store.db import session_scope
from engine.store.models import Obligation, Submission
from workflows.common import (
    ObligationInfo,
    add_run_tags,
    database,
    iso,
    plan_short_name,
    plan_tag,
    resolve_now,
    submission_infos,
)
from workflows.consolidate import consolidate_flow, follow_up_consolidations
from workflows.dispatch import send_emails
from workflows.events import (
    SUBMISSION_RECEIVED,
    emit,
    intake_event,
    intake_payload,
    intake_resource,
    obligation_related,
    related_resources,
    submission_resource,
)
from workflows.review import trigger_review
from workflows.run_states import intake_state
from workflows.tasks import kehoach_task

if TYPE_CHECKING:
    from prefect.client.schemas.objects import FlowRun

log = logging.getLogger("kehoach.workflows")


def _ids(submission_id: int | None, submission_ids: Sequence[int] | None) -> list[int]:
    """The submissions a run takes in: one (``submission_id``) or a batch, in order, once each."""
    given = ([submission_id] if submission_id is not None else []) + list(submission_ids or [])
    if not given:
        raise ValueError("intake needs submission_id or submission_ids")
    return list(dict.fromkeys(int(i) for i in given))


def batch_name(infos: Sequence[ObligationInfo], count: int) -> str:
    """A run's name: the submission's label for one, the plan and the count for a batch."""
    if count == 1 and infos:
        return f"nộp · {infos[0].label}"
    plans = sorted({info.plan_id for info in infos})
    where = f" · {plans[0]}" if len(plans) == 1 else ""
    return f"nộp{where} · {count} bản nộp"


def _run_name() -> str:
    params = flow_run.parameters
    try:
        ids = _ids(params.get("submission_id"), params.get("submission_ids"))
    except (TypeError, ValueError):
        return "nộp"
    try:
        infos = list(submission_infos(database(params.get("database_url")), ids).values())
    except Exception:  # the name is cosmetic; the flow reports real errors itself
        infos = []
    if len(ids) == 1 and not infos:
        return f"nộp · bản nộp {ids[0]}"
    return batch_name(infos, len(ids))


def _taken(result: Any, source: str | None, submitted_at: Any) -> dict[str, Any]:
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
        "event": intake_event(result),
        "resource": intake_resource(result),
        "payload": intake_payload(result),
        "source": source,
        "submitted_at": submitted_at,
    }


def _take_in_together(ids: list[int], moment: Any, database_url: str) -> list[dict[str, Any]]:
    """engine.lifecycle.intake for every id in one transaction (all or nothing)."""
    from engine.lifecycle import intake_many

    out = []
    with session_scope(database_url) as session:
        # One transaction; the receipts go into the outbox together (one insert).
        for sid, result in zip(ids, intake_many(session, ids, now=moment), strict=True):
            source, submitted_at = session.execute(
                select(Submission.source, Submission.submitted_at).where(Submission.id == sid)
            ).one()
            out.append(_taken(result, source, submitted_at))
    return out


@kehoach_task("take-in")
def take_in(submission_id: int, now: str, database_url: str) -> dict[str, Any]:
    [taken] = _take_in_together([submission_id], resolve_now(now), database_url)
    return taken


@kehoach_task("take-in-batch", retry=False)
def take_in_batch(
    submission_ids: list[int], now: str, database_url: str
) -> tuple[list[dict[str, Any]], dict[int, str]]:
    """A batch in ``engine.batches.in_chunks`` (20 per transaction, a gap between them on
    SQLite, one by one after a failure); a task run per submission would cost more than
    the intake itself. Returns (taken, {id: error} of those that failed)."""
    moment = resolve_now(now)
    return in_chunks(
        submission_ids,
        lambda chunk: _take_in_together(chunk, moment, database_url),
        sqlite=database_url.startswith("sqlite"),
    )


def _needs_review(
    database_url: str, submission_id: int, deliverable_id: str, known: dict[tuple[int, str], bool]
) -> bool:
    """Whether the plan wants this submission reviewed (``known`` caches the plan's answer
    per plan version and deliverable across a batch)."""
    from engine.lifecycle import context_for_obligation, version_of_cycle

    with session_scope(database_url) as session:
        submission = session.get(Submission, submission_id)
        if submission is None or submission.review_state not in (
            ReviewState.RECEIVED,
            ReviewState.VALIDATED,
        ):
            return False
        obligation = session.get(Obligation, submission.obligation_id)
        assert obligation is not None
        key = (version_of_cycle(session, obligation.cycle_id).id, deliverable_id)
        if key not in known:
            ctx = context_for_obligation(session, obligation)
            deliverable = ctx.plan.deliverable(deliverable_id)
            known[key] = bool(deliverable is not None and deliverable.review)
        return known[key]


def _announce(submission_id: int, label: str, result: dict[str, Any], title: str) -> None:
    """The events of one submission taken in (none when it had been taken in before);
    ``title``: the plan's short title."""
    if result["already_done"]:
        return
    related = related_resources(
        result["plan_id"], title, result["cycle_key"], result["unit_id"], result["unit_name"]
    )
    emit(
        SUBMISSION_RECEIVED,
        submission_resource(submission_id, f"nộp · {label}"),
        [*related, obligation_related(result["obligation_id"])],
        {**result["payload"], "source": result["source"]},
    )
    emit(result["event"], result["resource"], related, result["payload"])


def _ask_review(
    database_url: str | None,
    url: str,
    submission_id: int,
    result: dict,
    known: dict[tuple[int, str], bool],
) -> Any:
    if not _needs_review(url, submission_id, result["deliverable_id"], known):
        return None
    try:
        return trigger_review(submission_id, plan_id=result["plan_id"], database_url=database_url)
    except Exception as exc:  # no review deployment: the CLI or the UI decides later
        print(f"duyệt: chưa tạo được lượt duyệt ({exc}); dùng `kehoach review {submission_id}`")
        return None


@flow(name="intake", flow_run_name=_run_name, persist_result=False, log_prints=True)
def intake_flow(
    submission_id: int | None = None,
    now: str | None = None,
    database_url: str | None = None,
    dispatch: bool = True,
    consolidate_early: bool = True,
    request_review: bool = True,
    submission_ids: list[int] | None = None,
    reconsolidate: bool = True,
) -> Any:
    """Take submissions in (one, or a batch from the portal); consolidate early when a
    cycle is complete; follow a cycle already consolidated up (``reconsolidate``: a new
    revision before the consolidation duty's due date, a notice to the consolidating
    unit after it); send the receipts.

    One submission is a task run named like it ("tiếp nhận · unit · deliverable · cycle");
    a batch is one task run ("tiếp nhận · plan · N bản nộp") taking them in together,
    one by one if that fails, with a log line and the ``kehoach.bản-nộp.đã-nhận``
    event for each. What fails is named, the flow then fails, and the daily sweep takes
    it in later. The result has one entry per submission under ``taken``; for a single
    submission its fields are also at the top level. The run ends in a state named
    "Trễ hạn" when a report came after its deadline, else "Đúng hạn" (run_states).
    """
    moment = resolve_now(now)
    url = database(database_url)
    when = iso(moment)
    ids = _ids(submission_id, submission_ids)

    infos = submission_infos(url, ids)
    tags = {tag for info in infos.values() for tag in info.tags}
    if len(ids) > 1:  # a batch: only the plan tags, not every unit's
        tags = {tag for tag in tags if tag.startswith("plan:")}
    if tags:
        add_run_tags(*sorted(tags))

    taken, failed = _take_in_all(ids, infos, when, url)
    review_runs = _announce_all(taken, infos, database_url, url, request_review)
    # whoever asks for no review run in Prefect (the simulation) asks for no approval run
    consolidated, revised = _consolidate_after(
        taken, url, when, consolidate_early, reconsolidate, request_review
    )
    sent = send_emails(url, when) if dispatch else None
    if failed:
        names = ", ".join(str(i) for i in failed)
        raise RuntimeError(
            f"{len(failed)} of {len(ids)} submissions not taken in ({names}); "
            "the daily sweep takes them in, or run this flow again"
        )
    out: dict[str, Any] = {
        "taken": [{k: v for k, v in r.items() if k not in ("resource", "payload")} for r in taken],
        "consolidated": consolidated,
        "reconsolidated": revised,
        "review_runs": review_runs,
        "sent": sent,
        "now": when,
    }
    if len(ids) == 1:
        out.update(out["taken"][0])
        out["review_run"] = review_runs.get(ids[0])
    for result in taken:
        info = infos.get(result["submission_id"])
        result["due_date"] = info.due_date if info else None
    return intake_state(taken, {sid: _label(infos, sid) for sid in ids}, out)


def _label(infos: dict[int, ObligationInfo], submission_id: int) -> str:
    info = infos.get(submission_id)
    return info.label if info else f"bản nộp {submission_id}"


def _take_in_all(
    ids: list[int], infos: dict[int, ObligationInfo], when: str, url: str
) -> tuple[list[dict[str, Any]], dict[int, str]]:
    """The take-in task run(s): (what was taken in, {id: error} of what failed)."""
    taken: list[dict[str, Any]] = []
    failed: dict[int, str] = {}
    if len(ids) == 1:  # the usual case: a task run named like the submission
        sid = ids[0]
        label = _label(infos, sid)
        try:
            taken = [take_in.with_options(task_run_name=f"tiếp nhận · {label}")(sid, when, url)]
        except Exception as exc:
            failed[sid] = f"{type(exc).__name__}: {exc}"
    else:
        name = f"tiếp nhận · {batch_name(list(infos.values()), len(ids)).removeprefix('nộp · ')}"
        taken, failed = take_in_batch.with_options(task_run_name=name)(ids, when, url)
    for sid, error in failed.items():
        print(f"nộp · {_label(infos, sid)}: chưa tiếp nhận được ({error})")
    return taken, failed


def _announce_all(
    taken: list[dict[str, Any]],
    infos: dict[int, ObligationInfo],
    database_url: str | None,
    url: str,
    request_review: bool,
) -> dict[int, str]:
    """Events, a review run where the plan wants one, a line each; {id: review run}."""
    review_runs: dict[int, str] = {}
    review_wanted: dict[tuple[int, str], bool] = {}  # (plan version, deliverable) -> review?
    titles = {p: plan_short_name(url, p) for p in sorted({r["plan_id"] for r in taken})}
    for result in taken:
        sid = result["submission_id"]
        label = _label(infos, sid)
        _announce(sid, label, result, titles[result["plan_id"]])
        if request_review:
            run = _ask_review(database_url, url, sid, result, review_wanted)
            if run is not None:
                review_runs[sid] = str(run)
        state = "đúng hạn" if result["on_time"] else "trễ hạn"
        print(f"nộp · {label}: phiên bản {result['version']}, {state}")
    return review_runs


def _consolidate_after(
    taken: list[dict[str, Any]],
    url: str,
    when: str,
    early: bool,
    follow_up: bool,
    request_approval: bool = True,
) -> tuple[list[Any], list[dict[str, Any]]]:
    """What the reports taken in call for (engine.due decides): consolidations every unit
    has now answered, run early; consolidations written before these reports came,
    followed up (not the ones run early here, which include the reports already)."""
    fed = [
        Fed(
            plan_id=r["plan_id"],
            cycle_key=r["cycle_key"],
            obligation_id=r["obligation_id"],
            consolidation_ids=r["consolidation_ids"],
            cycle_complete=r["cycle_complete"],
            superseded=r["superseded"],
        )
        for r in taken
    ]
    stale: set[Target] = set()
    todo: list[Target] = []
    with session_scope(url) as session:
        if follow_up:
            stale = consolidated_before(session, fed)
        if early:
            todo = early_consolidations(session, fed)
    consolidated = []
    for plan_id, cycle_key, consolidation_id in todo:
        print(f"{plan_id} {cycle_key}: mọi đơn vị đã nộp; tổng hợp sớm ({consolidation_id})")
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
    revised = []
    for plan_id in sorted({p for p, _, _ in stale}):
        only = {(k, c) for p, k, c in stale if p == plan_id}
        revised += follow_up_consolidations(url, plan_id, when, only)
    return consolidated, revised


def deployment_name(plan_id: str) -> str:
    return f"intake/{plan_id}"


def submissions_by_plan(database_url: str, submission_ids: Sequence[int]) -> dict[str, list[int]]:
    """Group submission ids by the plan they answer (unknown ids are left out)."""
    groups: dict[str, list[int]] = {}
    for sid, info in sorted(submission_infos(database_url, submission_ids).items()):
        groups.setdefault(info.plan_id, []).append(sid)
    return groups


def trigger_intake(submission_ids: int | Sequence[int], database_url: str | None = None) -> Any:
    """Start one intake flow run for stored submissions of one plan (the portal calls this).

    Creates a run of the plan's ``intake`` deployment (``kehoach deploy PLAN``) for a
    worker to execute, and returns its id; raises when Prefect or the deployment is
    missing, so the caller can take the submissions in itself. One id gives a run named
    and tagged like the submission; several give one batch run for the plan.
    """
    from prefect.deployments import run_deployment

    url = database(database_url)
    ids = _ids(None, [submission_ids] if isinstance(submission_ids, int) else submission_ids)
    infos = submission_infos(url, ids)
    missing = [i for i in ids if i not in infos]
    if missing:
        raise LookupError(f"submission(s) {', '.join(map(str, missing))} do not exist")
    plans = {info.plan_id for info in infos.values()}
    if len(plans) != 1:
        raise ValueError(f"one intake run takes one plan's submissions, not {sorted(plans)}")
    [plan_id] = plans
    parameters: dict[str, Any] = (
        {"submission_id": ids[0]} if len(ids) == 1 else {"submission_ids": ids}
    )
    if database_url:
        parameters["database_url"] = database_url
    tags = infos[ids[0]].tags if len(ids) == 1 else [plan_tag(plan_id)]
    # timeout=0 returns at once; a sync caller gets the FlowRun, not a coroutine
    run: FlowRun = run_deployment(  # type: ignore[assignment]
        deployment_name(plan_id),
        parameters=parameters,
        timeout=0,
        as_subflow=False,
        flow_run_name=batch_name([infos[i] for i in ids], len(ids)),
        tags=tags,
    )
    return run.id
