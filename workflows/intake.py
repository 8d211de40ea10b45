"""The intake flow: a run per submission ("nộp · {unit} · {deliverable} · {cycle}") or
per batch of one plan's submissions handed over by the portal ("nộp · {plan} · N bản nộp").

The submission row was committed by the portal (or the CLI, or a consolidation
handing its report upward) before this flow starts: nothing a unit sent lives only
in Prefect.  ``engine.lifecycle.intake`` marks the obligation (on time / late) and
queues the receipt in one transaction, idempotently; the flow emits
``kehoach.submission.received``, starts the consolidation early when the cycle is
complete, revises a consolidation the report came after (or tells the consolidating
unit, once the duty's due date has passed), asks for a review where the plan wants
one, and sends the emails.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from prefect import flow, task
from prefect.cache_policies import NO_CACHE
from prefect.runtime import flow_run
from sqlalchemy import select

from engine.batches import in_chunks
from engine.store.db import session_scope
from engine.store.models import ConsolidatedReport, Obligation, Submission
from workflows.common import (
    ObligationInfo,
    add_run_tags,
    database,
    emit,
    iso,
    obligations,
    plan_tag,
    related_resources,
    resolve_now,
)
from workflows.dispatch import send_emails

log = logging.getLogger("kehoach.workflows")


def submission_infos(database_url: str, submission_ids: Sequence[int]) -> dict[int, ObligationInfo]:
    """The obligation (with display names) of each existing submission, by submission id."""
    wanted = sorted(set(submission_ids))
    with session_scope(database_url) as session:
        owner: dict[int, int] = {}
        for start in range(0, len(wanted), 900):  # SQLite's bound-parameter limit
            rows = session.execute(
                select(Submission.id, Submission.obligation_id).where(
                    Submission.id.in_(wanted[start : start + 900])
                )
            )
            owner.update({sid: oid for sid, oid in rows})
        found = {info.id: info for info in obligations(session, ids=set(owner.values()))}
    return {sid: found[oid] for sid, oid in owner.items() if oid in found}


def submission_info(database_url: str, submission_id: int) -> ObligationInfo | None:
    return submission_infos(database_url, [submission_id]).get(submission_id)


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


def _taken(result: Any, source: str | None) -> dict[str, Any]:
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


def _take_in_together(ids: list[int], moment: Any, database_url: str) -> list[dict[str, Any]]:
    """engine.lifecycle.intake for every id in one transaction (all or nothing)."""
    from engine.lifecycle import intake

    out = []
    with session_scope(database_url) as session:
        for sid in ids:
            result = intake(session, sid, now=moment)
            source = session.scalar(select(Submission.source).where(Submission.id == sid))
            out.append(_taken(result, source))
    return out


@task(
    name="take-in",
    cache_policy=NO_CACHE,
    persist_result=False,
    retries=2,
    retry_delay_seconds=1,
)
def take_in(submission_id: int, now: str, database_url: str) -> dict[str, Any]:
    [taken] = _take_in_together([submission_id], resolve_now(now), database_url)
    return taken


@task(name="take-in-batch", cache_policy=NO_CACHE, persist_result=False)
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


def _needs_review(
    database_url: str, submission_id: int, deliverable_id: str, known: dict[tuple[int, str], bool]
) -> bool:
    """Whether the plan wants this submission reviewed (``known`` caches the plan's answer
    per plan version and deliverable across a batch)."""
    from engine.lifecycle import context_for_obligation, version_of_cycle

    with session_scope(database_url) as session:
        submission = session.get(Submission, submission_id)
        if submission is None or submission.review_state not in ("received", "validated"):
            return False
        obligation = session.get(Obligation, submission.obligation_id)
        assert obligation is not None
        key = (version_of_cycle(session, obligation.cycle_id).id, deliverable_id)
        if key not in known:
            ctx = context_for_obligation(session, obligation)
            deliverable = ctx.plan.deliverable(deliverable_id)
            known[key] = bool(deliverable is not None and deliverable.review)
        return known[key]


def _announce(submission_id: int, label: str, result: dict[str, Any]) -> None:
    """The events of one submission taken in (none when it had been taken in before)."""
    if result["already_done"]:
        return
    related = related_resources(
        result["plan_id"], result["cycle_key"], result["unit_id"], result["unit_name"]
    )
    emit(
        "kehoach.submission.received",
        {
            "prefect.resource.id": f"kehoach.submission.{submission_id}",
            "prefect.resource.name": f"nộp · {label}",
        },
        related
        + [
            {
                "prefect.resource.id": f"kehoach.obligation.{result['obligation_id']}",
                "prefect.resource.role": "obligation",
            }
        ],
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
    from workflows.review import trigger_review

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
) -> dict[str, Any]:
    """Take submissions in (one, or a batch from the portal); consolidate early when a
    cycle is complete; follow a cycle already consolidated up (``reconsolidate``: a new
    revision before the consolidation duty's due date, a notice to the consolidating
    unit after it); send the receipts.

    One submission is a task run named like it ("tiếp nhận · unit · deliverable · cycle");
    a batch is one task run ("tiếp nhận · plan · N bản nộp") taking them in together,
    one by one if that fails, with a log line and the ``kehoach.submission.received``
    event for each. What fails is named, the flow then fails, and the daily sweep takes
    it in later. The result has one entry per submission under ``taken``; for a single
    submission its fields are also at the top level.
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

    taken: list[dict[str, Any]] = []
    failed: dict[int, str] = {}
    if len(ids) == 1:  # the usual case: a task run named like the submission
        sid = ids[0]
        label = infos[sid].label if sid in infos else f"bản nộp {sid}"
        try:
            taken = [take_in.with_options(task_run_name=f"tiếp nhận · {label}")(sid, when, url)]
        except Exception as exc:
            failed[sid] = f"{type(exc).__name__}: {exc}"
    else:
        name = f"tiếp nhận · {batch_name(list(infos.values()), len(ids)).removeprefix('nộp · ')}"
        taken, failed = take_in_batch.with_options(task_run_name=name)(ids, when, url)
    for sid, error in failed.items():
        label = infos[sid].label if sid in infos else f"bản nộp {sid}"
        print(f"nộp · {label}: chưa tiếp nhận được ({error})")

    review_runs: dict[int, str] = {}
    review_wanted: dict[tuple[int, str], bool] = {}  # (plan version, deliverable) -> review?
    for result in taken:
        sid = result["submission_id"]
        info = infos.get(sid)
        label = info.label if info else f"bản nộp {sid}"
        _announce(sid, label, result)
        if request_review:
            run = _ask_review(database_url, url, sid, result, review_wanted)
            if run is not None:
                review_runs[sid] = str(run)
        state = "đúng hạn" if result["on_time"] else "trễ hạn"
        print(f"nộp · {label}: phiên bản {result['version']}, {state}")

    # Cycles consolidated before these reports came: followed up below (not the ones
    # this run consolidates early, which include the reports already).
    stale: set[tuple[str, str, str]] = set()
    if reconsolidate:
        fed = {
            (r["plan_id"], r["cycle_key"], c): r["obligation_id"]
            for r in taken
            if not r["superseded"]
            for c in r["consolidation_ids"]
        }
        stale = {target for target, oid in fed.items() if _consolidated(url, oid, target[2])}
    consolidated = []
    if consolidate_early:
        complete = {
            (r["plan_id"], r["cycle_key"], r["obligation_id"], c)
            for r in taken
            if r["cycle_complete"] and not r["superseded"]
            for c in r["consolidation_ids"]
        }
        done: set[tuple[str, str, str]] = set()
        for plan_id, cycle_key, obligation_id, consolidation_id in sorted(complete):
            if (plan_id, cycle_key, consolidation_id) in done:
                continue
            done.add((plan_id, cycle_key, consolidation_id))
            if _consolidated(url, obligation_id, consolidation_id):
                continue
            print(f"{plan_id} {cycle_key}: mọi đơn vị đã nộp; tổng hợp sớm ({consolidation_id})")
            consolidated.append(
                consolidate_early_flow(plan_id, cycle_key, consolidation_id, when, url)
            )
    revised = []
    if stale:
        from workflows.consolidate import follow_up_consolidations

        for plan_id in sorted({p for p, _, _ in stale}):
            only = {(k, c) for p, k, c in stale if p == plan_id}
            revised += follow_up_consolidations(url, plan_id, when, only)
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
    return out


def consolidate_early_flow(
    plan_id: str, cycle_key: str, consolidation_id: str, when: str, url: str
) -> Any:
    from workflows.consolidate import consolidate_flow

    return consolidate_flow(
        plan_id,
        cycle_key=cycle_key,
        consolidation_id=consolidation_id,
        now=when,
        database_url=url,
        dispatch=False,
    )


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
    run = run_deployment(
        deployment_name(plan_id),
        parameters=parameters,
        timeout=0,
        as_subflow=False,
        flow_run_name=batch_name([infos[i] for i in ids], len(ids)),
        tags=tags,
    )
    return run.id
