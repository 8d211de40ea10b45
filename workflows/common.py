"""What every flow shares: injected time, the store URL, names, tags, what the store holds.

Flows take ``now`` as an ISO string parameter so a simulation's virtual time passes
through Prefect unchanged (and shows in the run's parameters); without it they read
``engine.clock.clock_from_env()`` (``KEHOACH_NOW`` or the system clock).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import re
import unicodedata
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.calendar import TZ, local_day  # noqa: F401  (local_day: the flows import it here)
from engine.clock import clock_from_env, parse_moment
from engine.config import settings
from engine.states import InstanceStatus, ObligationStatus
from engine.store.db import session_scope
from engine.store.models import (
    Cycle,
    Obligation,
    PlanInstance,
    PlanVersion,
    RegistryUnit,
    Submission,
)
from engine.vntext import cycle_label  # re-exported: workflows modules import it from here

log = logging.getLogger("kehoach.workflows")


def resolve_now(now: str | dt.datetime | None) -> dt.datetime:
    """The flow's moment: the ``now`` parameter, else the injected clock (UTC, aware)."""
    if now is None or now == "":
        return clock_from_env().now()
    if isinstance(now, dt.datetime):
        if now.tzinfo is None:
            raise ValueError(f"naive datetime {now.isoformat()}: give a timezone")
        return now.astimezone(dt.UTC)
    return parse_moment(str(now))


def iso(moment: dt.datetime) -> str:
    """``now`` for a flow parameter: ISO 8601 in Viet Nam time (readable in the UI)."""
    return moment.astimezone(TZ).isoformat(timespec="seconds")


def database(database_url: str | None) -> str:
    return database_url or settings().database


def slug(text: str) -> str:
    """Lowercase ASCII letters, digits and dashes: what Prefect accepts in keys."""
    plain = unicodedata.normalize("NFKD", text.replace("đ", "d").replace("Đ", "D"))
    plain = plain.encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9]+", "-", plain.lower()).strip("-") or "x"


def plan_tag(plan_id: str) -> str:
    return f"plan:{plan_id}"


def cycle_tag(cycle_key: str) -> str:
    return f"cycle:{cycle_key}"


def unit_tag(unit_id: str) -> str:
    return f"unit:{unit_id}"


def status_key(plan_id: str, cycle_key: str) -> str:
    return slug(f"status-{plan_id}-{cycle_key}")


def report_key(plan_id: str, cycle_key: str) -> str:
    return slug(f"report-{plan_id}-{cycle_key}")


# ---------------------------------------------------------------- reading the store


@dataclass(frozen=True)
class ObligationInfo:
    """An obligation as the UI names it."""

    id: int
    plan_id: str
    cycle_key: str
    unit_id: str
    unit_name: str
    deliverable_id: str
    deliverable_title: str
    kind: str
    due_date: dt.date
    status: ObligationStatus
    parent_unit: str | None

    @property
    def label(self) -> str:
        return f"{self.unit_name} · {self.deliverable_title} · {cycle_label(self.cycle_key)}"

    @property
    def tags(self) -> list[str]:
        return [plan_tag(self.plan_id), unit_tag(self.unit_id), cycle_tag(self.cycle_key)]


def _titles(definition: Mapping[str, Any]) -> dict[str, str]:
    titles = {d["id"]: d["title"] for d in definition.get("deliverables", [])}
    for c in definition.get("consolidations", []):
        fed = titles.get(c["consolidates"])
        titles[c["id"]] = "Báo cáo tổng hợp" + (f": {fed}" if fed else "")
    return titles


def unit_rows(session: Session, registry_id: str) -> dict[str, RegistryUnit]:
    """The units of the current registry version (else the newest holding each unit)."""
    from engine.store.models import RegistryVersion

    found: dict[str, RegistryUnit] = {}
    for row in session.scalars(
        select(RegistryUnit)
        .join(RegistryVersion, RegistryUnit.registry_version_id == RegistryVersion.id)
        .where(RegistryVersion.registry_id == registry_id)
        .order_by(RegistryVersion.current, RegistryVersion.version)
    ):
        found[row.unit_id] = row  # current (True sorts last) wins
    return found


def obligations(
    session: Session,
    plan_id: str | None = None,
    *,
    ids: Iterable[int] | None = None,
    cycle_keys: Iterable[str] | None = None,
) -> list[ObligationInfo]:
    """Obligations of a plan's active instances (or the given ids), with display names."""
    base = (
        select(Obligation, Cycle.key, PlanInstance.plan_id, PlanInstance.plan_version_id)
        .join(Cycle, Obligation.cycle_id == Cycle.id)
        .join(PlanInstance, Cycle.instance_id == PlanInstance.id)
        .order_by(Obligation.id)
    )
    if plan_id is not None:
        base = base.where(
            PlanInstance.plan_id == plan_id, PlanInstance.status == InstanceStatus.ACTIVE
        )
    if cycle_keys is not None:
        base = base.where(Cycle.key.in_(list(cycle_keys)))
    if ids is None:
        found = list(session.execute(base))
    else:
        wanted = sorted(set(ids))
        found = []
        for start in range(0, len(wanted), 900):  # SQLite's bound-parameter limit
            found += session.execute(base.where(Obligation.id.in_(wanted[start : start + 900])))
    units_by_registry: dict[str, dict[str, RegistryUnit]] = {}
    versions: dict[int, tuple[str, dict[str, str]]] = {}
    out: list[ObligationInfo] = []
    for obligation, key, owner_plan, version_id in found:
        if version_id not in versions:
            version = session.get(PlanVersion, version_id)
            assert version is not None
            versions[version_id] = (version.registry_id, _titles(version.definition))
        registry_id, titles = versions[version_id]
        units = units_by_registry.get(registry_id)
        if units is None:
            units = units_by_registry[registry_id] = unit_rows(session, registry_id)
        unit = units.get(obligation.unit_id)
        out.append(
            ObligationInfo(
                id=obligation.id,
                plan_id=owner_plan,
                cycle_key=key,
                unit_id=obligation.unit_id,
                unit_name=unit.name if unit else obligation.unit_id,
                deliverable_id=obligation.deliverable_id,
                deliverable_title=titles.get(obligation.deliverable_id, obligation.deliverable_id),
                kind=obligation.kind,
                due_date=obligation.due_date,
                status=obligation.status,
                parent_unit=unit.parent_id if unit else None,
            )
        )
    return out


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


def plan_short_name(database_url: str, plan_id: str) -> str:
    """How run and event names call the plan: its short title ("Kế hoạch PCCC"; see
    engine.outbox.context.plan_short), with its id only when the title is the document
    type alone ("Kế hoạch ke-hoach-x"); the id when the plan is not stored."""
    from engine.outbox.context import document_type_name, plan_short
    from engine.repository import current_plan

    with session_scope(database_url) as session:
        plan = current_plan(session, plan_id)
    if plan is None:
        return plan_id
    short = plan_short(plan)
    return f"{short} {plan_id}" if short == document_type_name(plan.document.type.value) else short


def plan_ids_with_parents(session: Session, plan_id: str) -> list[str]:
    """``plan_id`` and its loaded ancestors (parent_plan chain), top first."""
    from engine.repository import current_plan

    chain: list[str] = []
    current: str | None = plan_id
    while current and current not in chain:
        plan = current_plan(session, current)
        if plan is None:
            break
        chain.append(current)
        current = plan.parent_plan
    return list(reversed(chain))


# ---------------------------------------------------------------- Prefect side


def _quiet_console() -> None:
    """Prefect's run logs still go to the API (the UI shows them), not to the terminal.

    The simulation prints its own timeline; a screen of engine INFO lines would bury it.
    """
    import prefect.main  # noqa: F401  (sets up Prefect's logging: handlers exist after this)
    from prefect.logging.handlers import PrefectConsoleHandler

    for logger in [logging.getLogger(), *logging.Logger.manager.loggerDict.values()]:
        for handler in getattr(logger, "handlers", []):
            if isinstance(handler, PrefectConsoleHandler):
                handler.setLevel(logging.WARNING)


@contextlib.contextmanager
def in_process_runs() -> Iterator[None]:
    """Settings for flows called in this process one after another (simulation, tests).

    Prefect 3.9 starts a heartbeat thread per flow run that sleeps in 1-second steps
    and is joined when the run ends: ~0.5-1 s per run, more than the run itself.
    Heartbeats let the server spot a crashed *worker* process; a flow called in the
    caller's own process needs none, so they are switched off here (and only here).
    """
    import prefect.settings as prefect_settings

    with prefect_settings.temporary_settings(
        updates={prefect_settings.PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}
    ):
        _quiet_console()
        yield


def prefix_run_name(prefix: str) -> None:
    """Start the current flow run's name with ``prefix`` (once; works however the run
    was started)."""
    from prefect.client.orchestration import get_client
    from prefect.context import FlowRunContext

    ctx = FlowRunContext.get()
    if ctx is None or ctx.flow_run is None or ctx.flow_run.name.startswith(prefix):
        return
    name = f"{prefix}{ctx.flow_run.name}"
    try:
        with get_client(sync_client=True) as client:
            client.update_flow_run(ctx.flow_run.id, name=name)
        ctx.flow_run.name = name
    except Exception as exc:  # the name is for people; never fail a flow over it
        log.warning("could not rename flow run: %s", exc)


def add_run_tags(*tags: str) -> None:
    """Add tags to the current flow run (works however the run was started)."""
    from prefect.client.orchestration import get_client
    from prefect.context import FlowRunContext

    ctx = FlowRunContext.get()
    if ctx is None or ctx.flow_run is None:
        return
    merged = sorted(set(ctx.flow_run.tags or []) | {t for t in tags if t})
    if merged == sorted(ctx.flow_run.tags or []):
        return
    try:
        with get_client(sync_client=True) as client:
            client.update_flow_run(ctx.flow_run.id, tags=merged)
        ctx.flow_run.tags = merged
    except Exception as exc:  # tags are for people; never fail a flow over them
        log.warning("could not tag flow run: %s", exc)
