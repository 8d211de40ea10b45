"""The audit log: who did what, when, from where, in the caller's transaction."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy.orm import Session

from engine.store.models import (
    AuditEvent,
)


def write_audit(
    session: Session,
    action: str,
    *,
    at: dt.datetime,
    plan_id: str | None,
    obligation_id: int | None = None,
    actor: str = "system",
    remote_addr: str | None = None,
    **data: Any,
) -> None:
    """One audit row in the caller's transaction (``data``: the event's details, JSON)."""
    session.add(
        AuditEvent(
            at=at,
            actor=actor,
            action=action,
            plan_id=plan_id,
            obligation_id=obligation_id,
            remote_addr=remote_addr,
            data=data,
        )
    )
