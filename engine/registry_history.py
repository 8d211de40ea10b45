"""The registry over time: dated change sets and unit versions as data.

A loaded registry (``kind: registry``) is the hierarchy as its file describes it. The
reform of 2025 and every later change arrive as *change sets* (``kind:
registry-change``, applied with ``kehoach registry apply``): on one effective date,
units are created, abolished, merged, split, renamed, re-parented or get new contacts,
each with its successors. A change set is stored once (``registry_changes``) with the
unit versions it writes (``registry_unit_versions``); nothing is ever updated, so the
registry as of any date — who existed, under which name and parent, with which email —
can be read again, and a 2024 report still names the units as they were in 2024.

This module applies a change set in one transaction (:func:`apply_source`). The
layers below it: engine.registry_dated (the versions folded onto a loaded registry,
what engine.registry reads), engine.registry_changes (the change-set schema, reading
and checking a file, storing it) and engine.registry_asof (units as of a day).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from engine.audit import write_audit
from engine.calendar import local_day
from engine.definitions_cache import current_registry
from engine.errors import DefinitionError
from engine.lifecycle.handover import Moves, move_open_work
from engine.registry_changes import (
    ChangeSet,
    already_applied,
    check,
    content_hash,
    located,
    not_applied_problem,
    parse_change_set,
    store,
)
from engine.states import OBLIGATION_OPEN, CycleStatus, InstanceStatus
from engine.store.models import Cycle, Obligation, PlanInstance, PlanVersion
from engine.yamlsource import Source

# ---------------------------------------------------------------- apply (one transaction)


def _open_holders(session: Session, registry_id: str) -> dict[str, int]:
    """Open obligations per unit, in the running plans of ``registry_id``."""
    return {
        unit_id: count
        for unit_id, count in session.execute(
            select(Obligation.unit_id, func.count())
            .join(Cycle, Obligation.cycle_id == Cycle.id)
            .join(PlanInstance, Cycle.instance_id == PlanInstance.id)
            .join(PlanVersion, PlanInstance.plan_version_id == PlanVersion.id)
            .where(
                PlanVersion.registry_id == registry_id,
                PlanInstance.status == InstanceStatus.ACTIVE,
                Cycle.status != CycleStatus.CLOSED,
                Obligation.status.in_(OBLIGATION_OPEN),
            )
            .group_by(Obligation.unit_id)
        )
    }


@dataclass
class ApplyResult:
    change_set: ChangeSet
    created: bool  # False: the same change set was applied before (nothing done)
    versions: int = 0
    ended: dict[str, list[str]] = field(default_factory=dict)
    moves: Moves | None = None  # when the change is in effect already


def apply_source(session: Session, source: Source, now: dt.datetime) -> ApplyResult:
    """Check and apply one change set in the caller's transaction: refused whole
    (DefinitionError, located) or stored whole, with an audit row; when its date has
    come, open work of the units it ended moves to their heirs at once."""
    change_set = parse_change_set(source)
    existing = already_applied(session, change_set)
    if existing is not None:
        problem = not_applied_problem(source, existing, source.text)
        if problem is not None:
            raise DefinitionError([problem])
        return ApplyResult(change_set, created=False)
    registry = current_registry(session, change_set.registry)
    if registry is None:
        raise DefinitionError(
            [
                located(
                    source,
                    ("registry",),
                    f"danh bạ '{change_set.registry}' chưa được nạp; nạp nó trước bằng "
                    "`kehoach load`",
                    "registry",
                )
            ]
        )
    planned = check(source, change_set, registry, _open_holders(session, change_set.registry))
    if planned.problems:
        raise DefinitionError(planned.problems)
    applied = store(session, source, change_set, planned, now)
    write_audit(
        session,
        "registry.changed",
        at=now,
        plan_id=None,
        registry_id=change_set.registry,
        change_id=change_set.id,
        effective=change_set.effective.isoformat(),
        content_hash=content_hash(source.text),
        ended={u: s for u, s in applied.ended.items()},
        versions=applied.versions,
    )
    result = ApplyResult(change_set, True, applied.versions, applied.ended)
    today = local_day(now)
    if change_set.effective <= today:
        result.moves = move_open_work(session, change_set.registry, today, now)
    return result
