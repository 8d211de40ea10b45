"""A plan version with what it is resolved against: parsed plan, registry view, calendar.

Every engine step that needs names, titles or deadlines of a running plan starts here.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property

from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session, defer

from engine.calendar import (
    WorkCalendar,
)
from engine.definitions_cache import plan_for_version, registry_view_for
from engine.errors import NotFound
from engine.registry import RegistryView
from engine.repository import (
    current_calendar,
)
from engine.schema import Consolidation, Plan
from engine.store.models import (
    Cycle,
    Obligation,
    PlanInstance,
    PlanVersion,
)


@dataclass
class PlanContext:
    """A plan version with what it is resolved against: registry and calendar."""

    version: PlanVersion
    plan: Plan
    view: RegistryView
    # Read on first use (only activation and sweeps compute deadlines).
    calendar_loader: Callable[[], WorkCalendar] = field(repr=False, compare=False)

    @cached_property
    def calendar(self) -> WorkCalendar:
        return self.calendar_loader()

    @property
    def plan_id(self) -> str:
        return self.plan.id

    def unit_name(self, unit_id: str | None, on: dt.date | None = None) -> str:
        """The unit's name (``on``: the name it had that day, engine.registry_history)."""
        if not unit_id:
            return ""
        unit = self.view.unit_on(unit_id, on) if on is not None else self.view.unit(unit_id)
        return unit.name if unit else unit_id

    def consolidation(self, consolidation_id: str) -> Consolidation | None:
        return next((c for c in self.plan.consolidations if c.id == consolidation_id), None)

    def title(self, deliverable_id: str) -> str:
        deliverable = self.plan.deliverable(deliverable_id)
        if deliverable is not None:
            return deliverable.title
        consolidation = self.consolidation(deliverable_id)
        if consolidation is not None:
            fed = self.plan.deliverable(consolidation.consolidates)
            return "Báo cáo tổng hợp" + (f": {fed.title}" if fed else "")
        return deliverable_id


def plan_context(session: Session, version: PlanVersion) -> PlanContext:
    """The plan, registry view and calendar of a version: parsed once per process
    (engine.definitions_cache), the registry being the current one of the plan's id."""
    return PlanContext(
        version=version,
        plan=plan_for_version(session, version),
        view=registry_view_for(session, version),
        calendar_loader=lambda: WorkCalendar(current_calendar(session, "vn")),
    )


_VERSION_OF_CYCLE = (
    select(PlanVersion)
    .join(PlanInstance, PlanInstance.plan_version_id == PlanVersion.id)
    .join(Cycle, Cycle.instance_id == PlanInstance.id)
    .where(Cycle.id == bindparam("cycle_id"))
    .options(defer(PlanVersion.definition))
)


def version_of_cycle(session: Session, cycle_id: int) -> PlanVersion:
    """The plan version a cycle runs under, in one query; its stored definition is read
    only if the parsed plan is not cached yet (engine.definitions_cache)."""
    version = session.scalar(_VERSION_OF_CYCLE, {"cycle_id": cycle_id})
    if version is None:
        raise NotFound(f"cycle {cycle_id} does not exist")
    return version


def context_for_obligation(session: Session, obligation: Obligation) -> PlanContext:
    return plan_context(session, version_of_cycle(session, obligation.cycle_id))
