"""The closing summary: one email per consolidating unit when a cycle closes.

engine.closing decides that and when a cycle closes; this module words what each
consolidating unit is told: who answered, late, not at all, and its own duty.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

from sqlalchemy.orm import Session

from engine.calendar import TZ, local_day
from engine.config import settings as default_settings
from engine.outbox.builders import consolidator_of, issuer_sender
from engine.outbox.context import ContextBuilder
from engine.outbox.kinds import MailKind
from engine.outbox.queue import enqueue
from engine.states import (
    MISSING_LABEL,
    NOT_CARRIED_OUT_LABEL,
    RETURNED_NOT_RESENT_LABEL,
    ObligationStatus,
)
from engine.store.models import Cycle, Obligation
from engine.vntext import cycle_label, short_date


def _closed_label(status: ObligationStatus) -> str:
    """A duty's status as the closing summary words it (nobody answered = not sent)."""
    return MISSING_LABEL if status.open else status.label


def _line(
    builder: ContextBuilder,
    ctx: Any,
    registry_id: str,
    o: Obligation,
    missing_ids: set[int],
    returned_ids: set[int],
) -> dict[str, Any]:
    return {
        "unit_name": builder.unit(registry_id, o.unit_id)["name"],
        "deliverable": ctx.title(o.deliverable_id),
        "status": (RETURNED_NOT_RESENT_LABEL if o.id in returned_ids else _closed_label(o.status)),
        "missing": o.id in missing_ids,
        "waived": o.status is ObligationStatus.WAIVED,
        "late": o.status.answered and o.on_time is False,
        "due": builder.date(o.due_date),
        "submitted": (short_date(o.submitted_at.astimezone(TZ).date()) if o.submitted_at else None),
    }


def _duty(builder: ContextBuilder, ctx: Any, duty: Obligation | None) -> dict[str, Any] | None:
    if duty is None:
        return None
    return {
        "title": ctx.title(duty.deliverable_id),
        "status": NOT_CARRIED_OUT_LABEL if duty.status.open else duty.status.label,
        "done": duty.status.done,
        "due": builder.date(duty.due_date),
    }


def _counts(lines: list[dict[str, Any]]) -> dict[str, int]:
    return {
        "total": len(lines),
        "on_time": sum(1 for r in lines if not (r["missing"] or r["late"] or r["waived"])),
        "late": sum(1 for r in lines if r["late"]),
        "missing": sum(1 for r in lines if r["missing"]),
    }


def queue_closing_summaries(
    session: Session,
    ctx: Any,
    cycle: Cycle,
    rows: Sequence[Obligation],
    missing: Sequence[Any],
    counts: dict[str, int],
    now: dt.datetime,
    by: str,
) -> list[str]:
    """One closing summary per consolidating unit of the cycle; returns the new keys.

    ``ctx``: the plan context (titles); ``missing``: what engine.closing found unanswered
    (``obligation_id``, ``returned``)."""
    conf = default_settings()
    builder = ContextBuilder(session, conf, now)
    version, _plan, plan_info, templates_dir = builder.plan(cycle)
    duties = {o.unit_id: o for o in rows if o.kind == "consolidation"}
    groups: dict[str, list[Obligation]] = {}
    for o in rows:
        if o.kind != "consolidation":
            groups.setdefault(consolidator_of(o), []).append(o)
    for unit_id in duties:
        groups.setdefault(unit_id, [])
    missing_ids = {m.obligation_id for m in missing}
    returned_ids = {m.obligation_id for m in missing if m.returned}
    day = local_day(now)
    issuer = builder.unit(version.registry_id, plan_info["issuer_unit"])
    shared: dict[str, Any] = {
        "kind": MailKind.CYCLE_CLOSED,
        "plan": plan_info,
        "cycle": {"key": cycle.key, "label": cycle_label(cycle.key)},
        "closed": builder.date(day),
        "closes_on": builder.date(cycle.closes_on) if cycle.closes_on else None,
        "by": by,
        "cycle_counts": counts,
        "link": None,
        "contact": None,
        "sender": issuer_sender(issuer, plan_info, conf.mail_from_name),  # gave the duties
        "today": builder.date(day),
        "templates_dir": templates_dir,
    }
    new: list[str] = []
    for unit_id, owed in sorted(groups.items()):
        holder = builder.unit(version.registry_id, unit_id)
        duty = duties.get(unit_id)
        lines = [
            _line(builder, ctx, version.registry_id, o, missing_ids, returned_ids)
            for o in sorted(owed, key=lambda x: (x.deliverable_id, x.due_date, x.unit_id))
        ]
        context = {
            **shared,
            "consolidator": holder,
            "rows": lines,
            "counts": _counts(lines),
            "duty": _duty(builder, ctx, duty),
        }
        key = f"cycle:{cycle.id}:closed:{unit_id}:{day.isoformat()}"
        queued = enqueue(
            session,
            kind=MailKind.CYCLE_CLOSED,
            idempotency_key=key,
            to_addrs=holder["emails"],
            context=context,
            obligation_id=duty.id if duty is not None else None,
            plan_id=version.plan_id,
            unit_id=unit_id,
            # threads with the weekly digests the unit received during the cycle
            thread_key=f"digest:{version.plan_id}:{cycle.key}:{unit_id}",
            now=now,
            settings=conf,
        )
        if queued.inserted:
            new.append(key)
    return new
