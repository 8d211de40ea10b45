"""The activate flow: a plan instance, its cycles and every unit's obligations.

The database work is one call to ``engine.lifecycle.activate`` — a bulk upsert of the
obligations and their 'assignment' emails in ONE transaction, so a crash leaves all
or nothing and a re-run adds nothing.  The flow then records the fan-out as named
task runs, one per unit and deliverable ("Công an huyện Hạ Lang · Kế hoạch cụ thể
… · một lần"; a monthly report: "… · 12 kỳ, tháng 1/2026 – tháng 12/2026").
Prefect's task-run bookkeeping costs about 5 ms per task run in this process and
more on the server (three events per task run), so above ``PER_UNIT_LIMIT`` pairs the
fan-out is recorded per chunk instead (the units of one parent body, at most
``CHUNK`` each): 3,500 units then cost ~35 task runs, not 3,500
(benchmarks/bench_activation.py).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import asdict
from typing import Any

from prefect import flow
from prefect.runtime import flow_run
from sqlalchemy import select

from engine.outbox.kinds import MailKind
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
    iso,
    local_day,
    obligations,
    plan_short_name,
    plan_tag,
    resolve_now,
    unit_rows,
)
from workflows.dispatch import send_emails
from workflows.events import (
    CYCLE_STARTED,
    PLAN_ACTIVATED,
    cycle_resource,
    emit,
    plan_resource,
    related_resources,
)
from workflows.tasks import kehoach_task

PER_UNIT_LIMIT = 400
CHUNK = 250


def _run_name() -> str:
    params = flow_run.parameters
    years = params.get("years")
    when = ", ".join(str(y) for y in years) if years else str(params.get("now") or "")[:10]
    return f"kích hoạt · {params['plan_id']} · {when or 'hôm nay'}"


@kehoach_task("materialize", task_run_name="ghi nghĩa vụ · {plan_id}")
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


@kehoach_task("assign", retry=False, log_prints=False)
def assign(label: str, summary: dict[str, Any]) -> dict[str, Any]:
    """One unit's (or one chunk's) assignment, as stored: what it owes, by when, the email."""
    return {"label": label, **summary}


def _cycles_text(members: list[ObligationInfo]) -> str:
    keys = sorted({m.cycle_key for m in members})
    if len(keys) == 1:
        return cycle_label(keys[0])
    return f"{len(keys)} kỳ, {cycle_label(keys[0])} – {cycle_label(keys[-1])}"


def _fanout_groups(
    infos: list[ObligationInfo], names: dict[str, str]
) -> list[tuple[str, list[ObligationInfo]]]:
    """(task run name, obligations): one per unit and deliverable, or per chunk when many.

    Task runs carry no tags — plan, unit and cycle are in the name.  Prefect 3.9
    acquires tag concurrency slots from the server for every *tagged* task run (one
    API round trip each, and a new lease service whenever the tag set changes):
    measured here, a unit or cycle tag per task cost 0.25-0.5 s per task run (208
    obligations over 16 monthly cycles: 47 s), a constant plan tag 4-80 ms depending
    on server load.  The flow run carries the plan and cycle tags (and the unit tag
    where the run is about one unit: intake, review); the UI's run filters use those.
    """
    pairs: dict[tuple[str, str], list[ObligationInfo]] = defaultdict(list)
    for info in infos:
        pairs[(info.unit_id, info.deliverable_id)].append(info)
    if len(pairs) <= PER_UNIT_LIMIT:
        return [
            (f"{m[0].unit_name} · {m[0].deliverable_title} · {_cycles_text(m)}", m)
            for m in pairs.values()
        ]
    buckets: dict[tuple[str, str], list[ObligationInfo]] = defaultdict(list)
    for info in infos:
        buckets[(info.parent_unit or "", info.deliverable_id)].append(info)
    groups = []
    for (parent, _deliverable), members in buckets.items():
        for start in range(0, len(members), CHUNK):
            part = members[start : start + CHUNK]
            owner = f"thuộc {names.get(parent, parent)}" if parent else "không có cấp trên"
            units = len({m.unit_id for m in part})
            label = f"{units} đơn vị {owner} · {part[0].deliverable_title} · {_cycles_text(part)}"
            groups.append((label, part))
    return groups


def _current_cycles(infos: list[ObligationInfo], today: Any) -> list[str]:
    """Per deliverable, the cycle with the next deadline: the status tables worth a look now.

    A monthly plan activated in January has 16 cycles; their tables appear as the sweeps
    reach them, not all at once.
    """
    nearest: dict[str, ObligationInfo] = {}
    for info in infos:
        best = nearest.get(info.deliverable_id)
        upcoming = info.due_date >= today
        if best is None or (upcoming, -info.due_date.toordinal()) > (
            best.due_date >= today,
            -best.due_date.toordinal(),
        ):
            nearest[info.deliverable_id] = info
    return sorted({info.cycle_key for info in nearest.values()})


def _fanout_rows(
    database_url: str, plan_id: str, cycle_keys: list[str]
) -> tuple[list[ObligationInfo], dict[int, str], dict[str, str]]:
    """The touched cycles' obligations, the status of each one's assignment email, names."""
    with session_scope(database_url) as session:
        infos = obligations(session, plan_id, cycle_keys=cycle_keys)
        emails: dict[int, str] = {}
        ids = [i.id for i in infos]
        for start in range(0, len(ids), 900):
            for obligation_id, status in session.execute(
                select(OutboxMessage.obligation_id, OutboxMessage.status).where(
                    OutboxMessage.kind == MailKind.ASSIGNMENT,
                    OutboxMessage.obligation_id.in_(ids[start : start + 900]),
                )
            ):
                if obligation_id is not None:
                    emails[obligation_id] = status
        registry_id = plan_version(session, plan_id).registry_id
        names = {uid: row.name for uid, row in unit_rows(session, registry_id).items()}
    return infos, emails, names


def _summary(members: list[ObligationInfo], emails: dict[int, str], new_ids: set[int]) -> dict:
    """What a fan-out task run shows: small on purpose (Prefect walks every parameter)."""
    mail: dict[str, int] = defaultdict(int)
    for m in members:
        mail[emails.get(m.id, "none")] += 1
    return {
        "obligation_ids": [m.id for m in members],
        "units": len({m.unit_id for m in members}),
        "cycles": sorted({m.cycle_key for m in members}),
        "due": sorted({m.due_date.isoformat() for m in members}),
        "new": sum(1 for m in members if m.id in new_ids),
        "assignment_emails": dict(mail),
    }


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
    add_run_tags(*(cycle_tag(c) for c in result["cycles"]))
    new_ids = set(result["new_obligation_ids"])
    infos, emails, names = _fanout_rows(url, plan_id, result["cycles"])

    groups = _fanout_groups(infos, names)
    for label, members in groups:
        assign.with_options(task_run_name=label)(label, _summary(members, emails, new_ids))

    today = local_day(moment)
    for cycle_key in _current_cycles(infos, today):
        if len(infos) <= MAX_TABLE_ROWS:
            publish_status(url, plan_id, cycle_key, today)
    title = plan_short_name(url, plan_id)
    for cycle_key in result["cycles"]:
        emit(
            CYCLE_STARTED,
            cycle_resource(plan_id, title, cycle_key),
            related_resources(plan_id, title, cycle_key),
            {"obligations": sum(1 for i in infos if i.cycle_key == cycle_key)},
        )
    emit(
        PLAN_ACTIVATED,
        plan_resource(plan_id, title),
        [],
        {
            k: result[k]
            for k in ("plan_version", "created", "existing", "units", "queued", "notified")
        },
    )
    sent = send_emails(url, when) if dispatch else None
    print(
        f"{plan_id} v{result['plan_version']}: {result['created']} nghĩa vụ mới, "
        f"{result['existing']} đã có, {result['units']} đơn vị, chu kỳ {result['cycles']}, "
        f"{result['queued']} email giao nhiệm vụ"
        + (f", {result['notified']} thư gửi kế hoạch tới Nơi nhận" if result["notified"] else "")
    )
    for warning in result["warnings"][:20]:
        print(f"cảnh báo: {warning}")
    summary = {k: v for k, v in result.items() if k != "new_obligation_ids"}
    summary["fanout_task_runs"] = len(groups)
    summary["sent"] = sent
    summary["now"] = when
    return summary
