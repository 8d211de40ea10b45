"""Queueing the emails a state change causes, one or many at once, in its transaction."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy.orm import Session

from engine.outbox.context import ContextBuilder
from engine.outbox.kinds import MailKind
from engine.outbox.queue import enqueue_for_obligation, enqueue_many_for_obligations
from engine.outbox.task_mail import supporting_ids
from engine.schema import Plan
from engine.store.models import (
    Obligation,
)


def queue_mail(
    session: Session,
    obligation: Obligation,
    kind: str,
    step: str = "",
    extra: dict[str, Any] | None = None,
    now: dt.datetime | None = None,
) -> Any:
    """Queue one email about ``obligation`` in the caller's transaction (once per key)."""
    return enqueue_for_obligation(session, obligation, kind, step=step, extra=extra, now=now)


MailRequest = tuple[Obligation, str, str, "dict[str, Any] | None"]  # obligation, kind, step, extra


def queue_assignments(
    session: Session,
    obligations: list[Obligation],
    now: dt.datetime,
    builder: ContextBuilder | None = None,
) -> int:
    """One 'assignment' email per new obligation, in bulk (thousands in well under a second).

    ``builder``: one shared by the caller's chunks, so the registry is read once."""
    requests: list[MailRequest] = [(o, MailKind.ASSIGNMENT, "", None) for o in obligations]
    return queue_many(session, requests, now, builder=builder)


def queue_many(
    session: Session,
    requests: list[MailRequest],
    now: dt.datetime,
    *,
    whole_registry: bool = True,
    builder: ContextBuilder | None = None,
) -> int:
    """Queue many emails at once; returns how many rows were new.

    ``enqueue_for_obligation`` costs a few queries per email (fine for one, 15 s for
    7,000); the outbox's bulk form reads the registry once and inserts with one
    executemany. Requests are grouped by kind, step and extra context (e.g. the days
    left of a reminder), which are few per sweep. ``whole_registry=False`` reads only
    the units each email names (a few emails against a large registry).
    """
    groups: dict[tuple[str, str, tuple[tuple[str, Any], ...]], list[Obligation]] = {}
    for obligation, kind, step, extra in requests:
        key = (kind, step, tuple(sorted((extra or {}).items())))
        groups.setdefault(key, []).append(obligation)
    new = 0
    for (kind, step, extra_items), obligations in groups.items():
        keys = enqueue_many_for_obligations(
            session,
            obligations,
            kind,
            step=step,
            extra=dict(extra_items) or None,
            now=now,
            whole_registry=whole_registry,
            builder=builder,
        )
        new += len(keys)
    return new


def queue_supporting(
    session: Session, plan: Plan, registry_id: str, obligations: list[Obligation], now: dt.datetime
) -> int:
    """One ``task_support`` email per supporting unit (other than the lead) of each new
    task obligation, each with that unit's own contribution link: they are told and
    contribute, the lead answers (engine.outbox.task_mail)."""
    requests: list[MailRequest] = []
    for obligation in obligations:
        task = plan.tracked.task_of(obligation.deliverable_id)
        if task is None or not task.supporting or obligation.deliverable_id != task.id:
            continue
        ids = supporting_ids(session, plan, registry_id, task)
        ids = [u for u in ids if u != obligation.unit_id]
        for unit_id in ids:
            extra = {"supporting_ids": ",".join(ids), "support_unit": unit_id}
            requests.append((obligation, MailKind.TASK_SUPPORT, unit_id, extra))
    return queue_many(session, requests, now, whole_registry=False)
