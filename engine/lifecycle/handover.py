"""Open work of units that ended, moved at once when ``kehoach registry apply`` records
a change whose date has come (engine.registry_history): the sweep's transfer, the
re-routing through heirs, and activation of the duties held for want of an heir."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.context import plan_context
from engine.lifecycle.activation import activate
from engine.lifecycle.sweep import SweepResult, transfer_ended
from engine.states import OBLIGATION_OPEN, CycleStatus, InstanceStatus
from engine.store.models import Cycle, Obligation, PlanInstance, PlanVersion
from engine.successors import reroute


@dataclass
class Moves:
    transferred: dict[str, list[tuple[int, str, str]]] = field(default_factory=dict)  # per plan
    plans: list[str] = field(default_factory=list)
    activated: dict[str, int] = field(default_factory=dict)  # plan → duties created
    rerouted: dict[str, int] = field(
        default_factory=dict
    )  # per plan: duties now routed to or through an heir


def move_open_work(session: Session, registry_id: str, today: dt.date, now: dt.datetime) -> Moves:
    """Move every open obligation of a unit ended by ``today`` to its heir (the sweep's
    transfer, for the plans running on ``registry_id``), then give the held duties of
    their open cycles to the heirs now recorded (activation, idempotent)."""
    moves = Moves()
    running = session.execute(
        select(PlanInstance, PlanVersion)
        .join(PlanVersion, PlanInstance.plan_version_id == PlanVersion.id)
        .where(PlanVersion.registry_id == registry_id, PlanInstance.status == InstanceStatus.ACTIVE)
        .order_by(PlanInstance.id)
    ).all()
    for instance, version in running:
        ctx = plan_context(session, version)
        dead = [u.id for u in ctx.view.units.values() if not u.valid_on(today)]
        cycles = session.execute(
            select(Cycle.id, Cycle.key).where(
                Cycle.instance_id == instance.id, Cycle.status != CycleStatus.CLOSED
            )
        ).all()
        if not cycles:
            continue
        moves.plans.append(version.plan_id)
        found = session.scalars(
            select(Obligation)
            .where(
                Obligation.cycle_id.in_([c.id for c in cycles]),
                Obligation.status.in_(OBLIGATION_OPEN),
                Obligation.unit_id.in_(dead),
            )
            .order_by(Obligation.id)
        ).all()
        result = SweepResult(plan_id=version.plan_id, today=today)
        transfer_ended(session, ctx, list(found), today, now, result)
        moves.transferred.setdefault(version.plan_id, []).extend(result.transferred)
        moves.rerouted[version.plan_id] = reroute(session, ctx, [c.id for c in cycles], today, now)
        years = sorted({int(c.key[:4]) for c in cycles if c.key[:4].isdigit()})
        if years:
            again = activate(
                session, version.plan_id, now=now, years=years, version=version.version
            )
            moves.activated[version.plan_id] = again.created
    return moves
