"""Audit events for portal actions: who (the link's unit), what, which link, from where.

The link is recorded by a hash, never the token itself: the audit log is read by
more people than the units, and a token in it would open the obligation.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy.orm import Session

from engine.audit_chain import append


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
    """Write one audit row in the caller's transaction (queued without ORM work, chained
    at commit in the order written: engine.audit_chain)."""
    if link_hash:
        data["link"] = link_hash
    append(
        session,
        at=at,
        actor=actor,
        action=action,
        plan_id=plan_id,
        obligation_id=obligation_id,
        remote_addr=remote_addr,
        data=data,
    )
