"""The audit log: who did what, when, from where, in the caller's transaction.

Append-only and hash-chained (engine.audit_chain); every row goes through here or
through :func:`engine.audit_chain.append`.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy.orm import Session

from engine.audit_chain import append, content_ref
from engine.store.models import ConsolidatedReport, Submission


def write_audit(
    session: Session,
    action: str,
    *,
    at: dt.datetime,
    plan_id: str | None,
    obligation_id: int | None = None,
    actor: str = "system",
    remote_addr: str | None = None,
    records: Submission | ConsolidatedReport | None = None,
    **data: Any,
) -> None:
    """One audit row in the caller's transaction (``data``: the event's details, JSON).

    ``records``: the submission or consolidated report this row records; the row keeps
    the hash of its content, which consolidation and ``kehoach audit --verify`` check.
    """
    append(
        session,
        at=at,
        actor=actor,
        action=action,
        plan_id=plan_id,
        obligation_id=obligation_id,
        remote_addr=remote_addr,
        data=data,
        ref=content_ref(session, records) if records is not None else None,
    )
