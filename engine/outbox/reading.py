"""Reading the outbox: rows for ``kehoach outbox``, the dispatch flow and artifacts."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.states import OutboxStatus
from engine.store.models import OutboxMessage


def list_outbox(
    session: Session,
    status: OutboxStatus | str | None = None,
    kind: str | None = None,
    limit: int = 50,
) -> list[OutboxMessage]:
    """Newest rows first, optionally filtered (for ``kehoach outbox`` and artifacts)."""
    query = select(OutboxMessage)
    if status:
        query = query.where(OutboxMessage.status == status)
    if kind:
        query = query.where(OutboxMessage.kind == kind)
    return list(session.scalars(query.order_by(OutboxMessage.id.desc()).limit(limit)))


def describe_row(row: OutboxMessage) -> dict[str, Any]:
    """One row as plain values: what an operator needs to act on it."""
    context = row.context or {}
    unit = context.get("unit") or {}
    return {
        "id": row.id,
        "status": row.status,
        "kind": row.kind,
        "unit": row.unit_id or "",
        "unit_name": unit.get("name") or "",
        "to": ", ".join([*row.to_addrs, *row.cc_addrs]),
        "attempts": row.attempts,
        "smtp_code": row.smtp_code,
        "last_error": row.last_error or "",
        "next_attempt_at": row.next_attempt_at.isoformat() if row.next_attempt_at else "",
        "sent_at": row.sent_at.isoformat() if row.sent_at else "",
        "message_id": row.message_id,
        "plan_id": row.plan_id or "",
        "obligation_id": row.obligation_id,
    }
