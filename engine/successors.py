"""Open work follows successors: what the sweep and ``kehoach registry apply`` do
with the obligations of units that ended, and the one email an heir gets about what it
inherited (the plain data about ended units is engine.ended).

Rules (issue 11):
- no obligation, email or link is created for a unit outside its validity: activation
  gives a duty to the unit's heirs (engine.registry.RegistryView.heirs), and when the
  registry names none the duty is *held* (created for nobody) and said so;
- an open obligation of a unit that ended moves to its heir on the change's date (the
  sweep, or ``registry apply`` for a date already passed), recorded on the audit chain
  ('obligation.transferred'); closed obligations stay with the old unit;
- the heir gets one email per plan and day listing what it inherited, from whom, by
  when, each with its own link.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.config import Settings, settings
from engine.links import obligation_link
from engine.outbox.builders import issuer_sender
from engine.outbox.context import ContextBuilder
from engine.outbox.kinds import MailKind
from engine.outbox.queue import enqueue
from engine.vntext import cycle_label

if TYPE_CHECKING:
    from engine.context import PlanContext
    from engine.store.models import Obligation

# An heir's inherited duties: obligation and the units it stands for.
Inherited = list[tuple["Obligation", list[str]]]

# ---------------------------------------------------------------- the heir's email


def _per_heir(moved: Sequence[tuple[Obligation, str]]) -> dict[str, Inherited]:
    """heir → its inherited obligations (each once, with every unit it came from)."""
    per_heir: dict[str, dict[int, tuple[Obligation, list[str]]]] = {}
    for obligation, old in moved:
        mine = per_heir.setdefault(obligation.unit_id, {})
        froms = mine.setdefault(obligation.id, (obligation, []))[1]
        if old not in froms:
            froms.append(old)
    return {heir_id: list(by_id.values()) for heir_id, by_id in per_heir.items()}


def _inherited_rows(
    builder: ContextBuilder,
    ctx: PlanContext,
    registry_id: str,
    items: Inherited,
    conf: Settings,
) -> tuple[list[dict[str, Any]], list[str]]:
    """The email's rows (by deadline) and the names of the units it took over from."""
    rows = []
    names: list[str] = []
    for obligation, froms in sorted(items, key=lambda i: (i[0].due_date, i[0].id)):
        named = [builder.unit(registry_id, old)["name"] for old in froms]
        names += [n for n in named if n not in names]
        rows.append(
            {
                "from_name": ", ".join(named),
                "from_count": len(named),
                "title": ctx.title(obligation.deliverable_id),
                "cycle": cycle_label(builder.cycle(obligation.cycle_id).key),
                "due": builder.date(obligation.due_date),
                "overdue": obligation.due_date < builder.today,
                "link": obligation_link(obligation, conf),
            }
        )
    return rows, names


def _queue_heir(
    session: Session,
    builder: ContextBuilder,
    ctx: PlanContext,
    heir_id: str,
    items: Inherited,
    now: dt.datetime,
) -> str | None:
    """Queue one heir's email; its outbox key when it is new, None otherwise."""
    conf = builder.conf
    first = items[0][0]
    version, _plan, plan_info, templates_dir = builder.plan(builder.cycle(first.cycle_id))
    heir = builder.unit(version.registry_id, heir_id)
    if not heir.get("valid", True):
        return None  # never mail the dead (an heir that ended too: the next move tells)
    rows, names = _inherited_rows(builder, ctx, version.registry_id, items, conf)
    coming = [r["due"] for r in rows if not r["overdue"]]
    issuer = builder.unit(version.registry_id, plan_info["issuer_unit"])
    context: dict[str, Any] = {
        "kind": MailKind.INHERITED,
        "plan": plan_info,
        "unit": heir,
        "from_names": names,
        "rows": rows,
        "first_due": coming[0] if coming else None,  # the nearest deadline not passed
        "sender": issuer_sender(issuer, plan_info, conf.mail_from_name),
        "contact": None,
        "link": None,
        "today": builder.date(builder.today),
        "templates_dir": templates_dir,
    }
    key = f"inherit:{version.plan_id}:{heir_id}:{builder.today.isoformat()}"
    queued = enqueue(
        session,
        kind=MailKind.INHERITED,
        idempotency_key=key,
        to_addrs=heir["emails"],
        context=context,
        obligation_id=first.id,
        plan_id=version.plan_id,
        unit_id=heir_id,
        thread_key="",
        now=now,
        settings=conf,
    )
    return key if queued.inserted else None


def queue_inheritance(
    session: Session,
    ctx: PlanContext,
    moved: Sequence[tuple[Obligation, str]],
    now: dt.datetime,
) -> list[str]:
    """One email per heir about the obligations it took over (``moved``: obligation and
    the unit it came from); returns the new outbox keys."""
    if not moved:
        return []
    builder = ContextBuilder(session, settings(), now, whole_registry=False)
    new = []
    for heir_id, items in sorted(_per_heir(moved).items()):
        key = _queue_heir(session, builder, ctx, heir_id, items, now)
        if key is not None:
            new.append(key)
    return new


def copy_for(
    session: Session, obligation: Obligation, unit_id: str, now: dt.datetime
) -> Obligation | None:
    """A copy of an open duty for another heir of a split (``rule: {each: true}``), or
    None when that heir owes it already."""
    from engine.store.models import Obligation as Row

    held = session.scalar(
        select(Row.id).where(
            Row.cycle_id == obligation.cycle_id,
            Row.unit_id == unit_id,
            Row.deliverable_id == obligation.deliverable_id,
        )
    )
    if held is not None:
        return None
    copied = {
        c: getattr(obligation, c)
        for c in (
            "cycle_id",
            "deliverable_id",
            "kind",
            "assignment_ids",
            "to_unit_id",
            "via_unit_id",
            "nominal_date",
            "due_date",
            "due_reason",
            "status",
            "overdue",
            "next_sweep_on",
        )
    }
    row = Row(
        **copied,
        unit_id=unit_id,
        transferred_from=obligation.transferred_from or obligation.unit_id,
        token_version=1,
        created_at=now,
        updated_at=now,
    )
    session.add(row)
    session.flush()
    return row


def reroute(
    session: Session,
    ctx: PlanContext,
    cycle_ids: Sequence[int],
    today: dt.date,
    now: dt.datetime,
) -> int:
    """Open duties routed to or through a unit that ended ("qua Công an huyện") go to
    or through its heir instead; each change on the audit chain. Returns how many."""
    from sqlalchemy import or_

    from engine.audit import write_audit
    from engine.states import OBLIGATION_OPEN
    from engine.store.models import Obligation as Row

    dead = {
        u.id: heirs[0].id
        for u in ctx.view.units.values()
        if not u.valid_on(today) and (heirs := ctx.view.heirs(u.id, today))
    }
    if not dead or not cycle_ids:
        return 0
    rows = session.scalars(
        select(Row)
        .where(
            Row.cycle_id.in_(list(cycle_ids)),
            Row.status.in_(OBLIGATION_OPEN),
            or_(Row.to_unit_id.in_(list(dead)), Row.via_unit_id.in_(list(dead))),
        )
        .order_by(Row.id)
    ).all()
    for row in rows:
        before = (row.to_unit_id, row.via_unit_id)
        row.to_unit_id = dead.get(row.to_unit_id or "", row.to_unit_id)
        row.via_unit_id = dead.get(row.via_unit_id or "", row.via_unit_id)
        row.updated_at = now
        write_audit(
            session,
            "obligation.rerouted",
            at=now,
            plan_id=ctx.plan_id,
            obligation_id=row.id,
            before={"to": before[0], "via": before[1]},
            after={"to": row.to_unit_id, "via": row.via_unit_id},
        )
    session.flush()
    return len(rows)
