"""Audit events for portal actions: who (the link's unit), what, which link, from where.

The link is recorded by a hash, never the token itself: the audit log is read by
more people than the units, and a token in it would open the obligation.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, cast

from sqlalchemy import Table, insert
from sqlalchemy.orm import Session

from engine.store.models import AuditEvent

_INSERT = insert(cast(Table, AuditEvent.__table__))  # plain SQL: no ORM work per row


def record(
    session: Session,
    action: str,
    *,
    at: dt.datetime,
    actor: str,
    remote_addr: str | None,
    link_hash: str | None = None,
    obligation_id: int | None = None,
    plan_id: str | None = None,
    **data: Any,
) -> None:
    """Write one audit row in the caller's transaction (at once: an INSERT costs far less
    than the ORM's unit of work; objects the caller added before are flushed first, so
    the rows keep their order)."""
    if link_hash:
        data["link"] = link_hash
    session.flush()
    session.connection().execute(
        _INSERT,
        {
            "at": at,
            "actor": actor[:200],
            "action": action,
            "plan_id": plan_id,
            "obligation_id": obligation_id,
            "remote_addr": (remote_addr or "")[:80] or None,
            "data": data,
        },
    )
