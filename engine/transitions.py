"""Every change of a stored state goes through here: one function per kind.

Each refuses a move the tables of :mod:`engine.states` do not allow
(:class:`~engine.states.IllegalTransition`) and writes the audit row in the caller's
transaction. ``action=None`` is for a move recorded in a row the caller writes for the
whole event (e.g. the intake's 'submission.intake' row covers the review state too).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

from sqlalchemy.orm import Session

from engine.audit import write_audit
from engine.states import (
    CYCLE_MOVES,
    CYCLE_REOPEN_MOVES,
    INSTANCE_MOVES,
    OBLIGATION_MOVES,
    REPORT_APPROVAL_MOVES,
    REVIEW_MOVES,
    CycleStatus,
    IllegalTransition,
    InstanceStatus,
    ObligationStatus,
    ReportApproval,
    ReviewState,
)


def _check(kind: str, moves: Mapping[Any, frozenset[Any]], old: Any, new: Any) -> None:
    if new not in moves.get(old, frozenset()):
        raise IllegalTransition(f"{kind}: {old} → {new} is not allowed")


def _audit_row(
    session: Session,
    action: str | None,
    at: dt.datetime,
    plan_id: str | None,
    obligation_id: int | None,
    actor: str,
    remote_addr: str | None,
    data: dict[str, Any],
) -> None:
    if action is None:
        return
    write_audit(
        session,
        action,
        at=at,
        plan_id=plan_id,
        obligation_id=obligation_id,
        actor=actor,
        remote_addr=remote_addr,
        **data,
    )


def move_obligation(
    session: Session,
    obligation: Any,
    to: ObligationStatus,
    /,
    *,
    at: dt.datetime,
    action: str | None,
    plan_id: str | None,
    actor: str = "system",
    remote_addr: str | None = None,
    **data: Any,
) -> None:
    """Set ``obligation.status`` to ``to`` (legal moves only) and write the audit row
    ``action`` in the same transaction. ``action=None`` is for a move recorded in a
    row the caller writes for the whole event (e.g. 'submission.intake')."""
    _check("obligation", OBLIGATION_MOVES, ObligationStatus(obligation.status), to)
    obligation.status = to
    obligation.updated_at = at
    _audit_row(session, action, at, plan_id, obligation.id, actor, remote_addr, data)


def move_review(
    session: Session,
    submission: Any,
    to: ReviewState,
    /,
    *,
    at: dt.datetime,
    action: str | None,
    plan_id: str | None,
    actor: str = "system",
    **data: Any,
) -> None:
    """Set ``submission.review_state`` (legal moves only), auditing as above."""
    _check("submission", REVIEW_MOVES, ReviewState(submission.review_state), to)
    submission.review_state = to
    _audit_row(session, action, at, plan_id, submission.obligation_id, actor, None, data)


def move_cycle(
    session: Session,
    cycle: Any,
    to: CycleStatus,
    /,
    *,
    at: dt.datetime,
    action: str | None,
    plan_id: str | None,
    actor: str = "system",
    reopen: bool = False,
    **data: Any,
) -> None:
    """Set ``cycle.status`` (legal moves only; leaving 'closed' needs ``reopen=True``)."""
    moves = CYCLE_REOPEN_MOVES if reopen else CYCLE_MOVES
    _check("cycle", moves, CycleStatus(cycle.status), to)
    cycle.status = to
    _audit_row(session, action, at, plan_id, None, actor, None, data)


def move_instance(
    session: Session,
    instance: Any,
    to: InstanceStatus,
    /,
    *,
    at: dt.datetime,
    action: str | None,
    actor: str = "system",
    **data: Any,
) -> None:
    """Set ``instance.status`` (legal moves only), auditing as above."""
    _check("plan instance", INSTANCE_MOVES, InstanceStatus(instance.status), to)
    instance.status = to
    _audit_row(session, action, at, instance.plan_id, None, actor, None, data)


def move_report(
    session: Session,
    report: Any,
    to: ReportApproval,
    /,
    *,
    at: dt.datetime,
    action: str | None,
    plan_id: str | None,
    actor: str = "system",
    obligation_id: int | None = None,
    **data: Any,
) -> None:
    """Set ``report.approval`` (a consolidated report's way upward; legal moves only),
    auditing as above."""
    _check("report", REPORT_APPROVAL_MOVES, ReportApproval(report.approval), to)
    report.approval = to
    _audit_row(session, action, at, plan_id, obligation_id, actor, None, data)
