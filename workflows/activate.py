"""The activate flow: a plan instance, its cycles and every unit's obligations.

The database work is one call to ``engine.lifecycle.activate`` — a bulk upsert of the
obligations and their 'assignment' emails in ONE transaction, so a crash leaves all
or nothing and a re-run adds nothing.  The flow then records the fan-out as named
task runs ("Công an huyện Hạ Lang · Kế hoạch cụ thể … · một lần"), one per
obligation.  Prefect's task-run bookkeeping costs about 5 ms per task run on a
2-core machine, so above ``PER_OBLIGATION_LIMIT`` obligations the fan-out is
recorded per chunk instead (the units of one parent body, at most ``CHUNK`` each):
3,500 units then cost ~40 task runs, not 3,500 (benchmarks/bench_activation.py).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import asdict
from typing import Any

from prefect import flow, tags, task
from prefect.cache_policies import NO_CACHE
from prefect.runtime import flow_run
from sqlalchemy import select

from engine.repository import plan_version
from engine.store.db import session_scope
from engine.store.models import OutboxMessage
from workflows.artifacts import MAX_TABLE_ROWS, publish_status
from workflows.common import (
    ObligationInfo,
    add_run_tags,
    cycle_label,
    cycle_tag,
    database,
    emit,
    iso,
    local_day,
    obligations,
    plan_tag,
    related_resources,
    resolve_now,
    test_delay,
    unit_rows,
)
from workflows.dispatch import send_emails

PER_OBLIGATION_LIMIT = 400
CHUNK = 250


def _run_name() -> str:
    params = flow_run.parameters
    years = params.get("years")
    when = ", ".join(str(y) for y in years) if years else str(params.get("now") or "")[:10]
    return f"kích hoạt · {params['plan_id']} · {when or 'hôm nay'}"


@task(
    name="materialize",
    task_run_name="ghi nghĩa vụ · {plan_id}",
    cache_policy=NO_CACHE,
    persist_result=False,
    retries=2,
    retry_delay_seconds=1,
)
def materialize(
    plan_id: str, now: str, years: list[int] | None, version: int | None, database_url: str
) -> dict[str, Any]:
    """Instance, cycles, obligations and assignment emails: one transaction (upserts)."""
    from engine.lifecycle import activate

    with session_scope(database_url) as session:
        result = activate(session, plan_id, now=resolve_now(now), years=years, version=version)
    data = asdict(result)
    data["new_obligation_ids"] = list(result.new_obligation_ids)
    return data


@task(name="assign", cache_policy=NO_CACHE, persist_result=False, log_prints=False)
def assign(label: str, rows: list[dict[str, Any]]) -> dict[str, Any]:
    """One unit's (or one chunk's) assignment, as stored: what it owes, by when, the email."""
    test_delay()
    return {"label": label, "obligations": len(rows), "rows": rows}


def _task_tags(info: ObligationInfo) -> list[str]:
    """Plan and cycle tags; the unit is in the task run's name, not its tags.

    Prefect 3.9 checks tag concurrency limits for every tagged task run and starts one
    lease service per distinct tag set: a unit tag per task costs ~0.5 s per task run
    here, a tag set shared by all of a cycle's tasks ~4 ms.  Flow runs about one unit
    (intake, review) do carry the unit tag.
    """
    return [plan_tag(info.plan_id), cycle_tag(info.cycle_key)]


def _fanout_groups(
    infos: list[ObligationInfo], names: dict[str, str]
) -> list[tuple[str, list[str], list[ObligationInfo]]]:
    """(task run name, tags, obligations) per obligation, or per chunk when there are many."""
    if len(infos) <= PER_OBLIGATION_LIMIT:
        return [(info.label, _task_tags(info), [info]) for info in infos]
    buckets: dict[tuple[str, str, str], list[ObligationInfo]] = defaultdict(list)
    for info in infos:
        buckets[(info.parent_unit or "", info.deliverable_id, info.cycle_key)].append(info)
    groups = []
    for (parent, _deliverable, cycle_key), members in buckets.items():
        for start in range(0, len(members), CHUNK):
            part = members[start : start + CHUNK]
            first = part[0]
            owner = f"thuộc {names.get(parent, parent)}" if parent else "không có cấp trên"
            label = (
                f"{len(part)} đơn vị {owner} · {first.deliverable_title} · {cycle_label(cycle_key)}"
            )
            groups.append((label, _task_tags(first), part))
    return groups


def _fanout_rows(
    database_url: str, plan_id: str, cycle_keys: list[str], new_ids: set[int]
) -> tuple[list[ObligationInfo], dict[int, dict[str, Any]], dict[str, str]]:
    with session_scope(database_url) as session:
        infos = obligations(session, plan_id, cycle_keys=cycle_keys)
        emails: dict[int, dict[str, Any]] = {}
        ids = [i.id for i in infos]
        for start in range(0, len(ids), 900):
            for obligation_id, status, key in session.execute(
                select(
                    OutboxMessage.obligation_id,
                    OutboxMessage.status,
                    OutboxMessage.idempotency_key,
                ).where(
                    OutboxMessage.kind == "assignment",
                    OutboxMessage.obligation_id.in_(ids[start : start + 900]),
                )
            ):
                emails[obligation_id] = {"email": status, "email_key": key}
        registry_id = plan_version(session, plan_id).registry_id
        names = {uid: row.name for uid, row in unit_rows(session, registry_id).items()}
    rows = {
        i.id: {
            "obligation_id": i.id,
            "unit": i.unit_id,
            "deliverable": i.deliverable_id,
            "cycle": i.cycle_key,
            "due": i.due_date.isoformat(),
            "new": i.id in new_ids,
            **emails.get(i.id, {"email": None, "email_key": None}),
        }
        for i in infos
    }
    return infos, rows, names


@flow(name="activate", flow_run_name=_run_name, persist_result=False, log_prints=True)
def activate_flow(
    plan_id: str,
    now: str | None = None,
    years: list[int] | None = None,
    version: int | None = None,
    database_url: str | None = None,
    dispatch: bool = True,
) -> dict[str, Any]:
    """Activate a plan (or start its yearly cycle): obligations, emails, fan-out, status."""
    moment = resolve_now(now)
    url = database(database_url)
    when = iso(moment)
    add_run_tags(plan_tag(plan_id), *(cycle_tag(str(y)) for y in years or []))

    result = materialize(plan_id, when, years, version, url)
    new_ids = set(result["new_obligation_ids"])
    infos, rows, names = _fanout_rows(url, plan_id, result["cycles"], new_ids)

    groups = _fanout_groups(infos, names)
    for label, run_tags, members in groups:
        with tags(*run_tags):
            assign.with_options(task_run_name=label)(label, [rows[m.id] for m in members])

    today = local_day(moment)
    for cycle_key in result["cycles"]:
        if len(infos) <= MAX_TABLE_ROWS:
            publish_status(url, plan_id, cycle_key, today)
        emit(
            "kehoach.cycle.started",
            {
                "prefect.resource.id": f"kehoach.cycle.{plan_id}.{cycle_key}",
                "prefect.resource.name": f"{plan_id} · {cycle_label(cycle_key)}",
            },
            related_resources(plan_id, cycle_key),
            {"obligations": sum(1 for i in infos if i.cycle_key == cycle_key)},
        )
    emit(
        "kehoach.plan.activated",
        {"prefect.resource.id": f"kehoach.plan.{plan_id}", "prefect.resource.name": plan_id},
        [],
        {k: result[k] for k in ("plan_version", "created", "existing", "units", "queued")},
    )
    sent = send_emails(url, when) if dispatch else None
    print(
        f"{plan_id} v{result['plan_version']}: {result['created']} nghĩa vụ mới, "
        f"{result['existing']} đã có, {result['units']} đơn vị, chu kỳ {result['cycles']}, "
        f"{result['queued']} email giao nhiệm vụ"
    )
    for warning in result["warnings"][:20]:
        print(f"cảnh báo: {warning}")
    summary = {k: v for k, v in result.items() if k != "new_obligation_ids"}
    summary["fanout_task_runs"] = len(groups)
    summary["sent"] = sent
    summary["now"] = when
    return summary
