"""Every state kehoach keeps, in one place: values, Vietnamese labels, predicates, moves.

The database stores the plain values (``"pending"``, ``"closed"`` …); the columns are
typed with these enums (:class:`EnumText`), so Python code compares and assigns
members, never strings.  A change of state goes through the kind's transition
function (:func:`move_obligation`, :func:`move_review`, :func:`move_cycle`,
:func:`move_instance`), which refuses a move the table below does not allow
(:class:`IllegalTransition`) and writes the audit row in the caller's transaction.

Modelled on Prefect's ``StateType`` / ``TERMINAL_STATES``: the value set is closed,
the predicates are properties of the value, and the legal moves are data.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from enum import StrEnum
from typing import TYPE_CHECKING, Any, TypeVar

from sqlalchemy import String
from sqlalchemy.types import TypeDecorator

from engine.errors import KehoachError

if TYPE_CHECKING:
    from sqlalchemy.orm import Session


class IllegalTransition(KehoachError):
    """A change of state the transition table does not allow (a programming error or a
    race the caller must handle; never silently applied)."""


# ---------------------------------------------------------------- obligations


class ObligationStatus(StrEnum):
    """What a unit owes for one (deliverable, cycle)."""

    PENDING = "pending"  # not sent, or sent and returned for revision
    SUBMITTED = "submitted"  # the newest version was taken in
    ACCEPTED = "accepted"  # the consolidating unit accepted it
    WAIVED = "waived"  # nothing owed any more (merged into a successor's duty)

    @property
    def label(self) -> str:
        return _OBLIGATION_LABELS[self]

    @property
    def done(self) -> bool:
        """Counts as answered (the four-state table's 'hoàn thành')."""
        return self in OBLIGATION_DONE

    @property
    def open(self) -> bool:
        """Still owed: reminders, overdue marks and escalations apply."""
        return self is ObligationStatus.PENDING

    @property
    def answered(self) -> bool:
        """A report was sent and stands (submitted or accepted; not waived)."""
        return self in (ObligationStatus.SUBMITTED, ObligationStatus.ACCEPTED)

    @property
    def terminal(self) -> bool:
        """No new version may be sent."""
        return self in (ObligationStatus.ACCEPTED, ObligationStatus.WAIVED)


_OBLIGATION_LABELS = {
    ObligationStatus.PENDING: "Chưa gửi",
    ObligationStatus.SUBMITTED: "Đã gửi",
    ObligationStatus.ACCEPTED: "Đã chấp nhận",
    ObligationStatus.WAIVED: "Được miễn",
}
OBLIGATION_DONE = frozenset(
    {ObligationStatus.SUBMITTED, ObligationStatus.ACCEPTED, ObligationStatus.WAIVED}
)
OBLIGATION_OPEN = frozenset({ObligationStatus.PENDING})
OBLIGATION_ANSWERED = frozenset({ObligationStatus.SUBMITTED, ObligationStatus.ACCEPTED})
# What the closing summary calls a duty nobody answered by the end of the cycle.
MISSING_LABEL = "Không nộp"

_O = ObligationStatus
OBLIGATION_MOVES: Mapping[ObligationStatus, frozenset[ObligationStatus]] = {
    # taken in; waived when merged into a successor's duty
    _O.PENDING: frozenset({_O.SUBMITTED, _O.WAIVED}),
    # a newer version taken in; accepted; returned for revision
    _O.SUBMITTED: frozenset({_O.SUBMITTED, _O.ACCEPTED, _O.PENDING}),
    _O.ACCEPTED: frozenset(),
    _O.WAIVED: frozenset(),
}


# ---------------------------------------------------------------- submissions


class ReviewState(StrEnum):
    """Where one submitted version stands with the consolidating unit."""

    RECEIVED = "received"  # recorded by the portal, not taken in yet
    VALIDATED = "validated"  # taken in (receipt sent)
    ACCEPTED = "accepted"
    RETURNED = "returned"  # returned for revision with a reason

    @property
    def label(self) -> str:
        return _REVIEW_LABELS[self]

    @property
    def decided(self) -> bool:
        """A review decision was made; it is never changed."""
        return self in (ReviewState.ACCEPTED, ReviewState.RETURNED)

    @property
    def terminal(self) -> bool:
        return self.decided


_REVIEW_LABELS = {
    ReviewState.RECEIVED: "Đã nhận",
    ReviewState.VALIDATED: "Đã tiếp nhận",
    ReviewState.ACCEPTED: "Đã chấp nhận",
    ReviewState.RETURNED: "Trả lại để hoàn thiện",
}

_R = ReviewState
REVIEW_MOVES: Mapping[ReviewState, frozenset[ReviewState]] = {
    _R.RECEIVED: frozenset({_R.VALIDATED}),
    _R.VALIDATED: frozenset({_R.ACCEPTED, _R.RETURNED}),
    _R.ACCEPTED: frozenset(),
    _R.RETURNED: frozenset(),
}


# ---------------------------------------------------------------- cycles


class CycleStatus(StrEnum):
    """One reporting period of a running plan."""

    OPEN = "open"
    CONSOLIDATED = "consolidated"  # the consolidated report exists; answers still taken in
    CLOSED = "closed"  # nothing more is taken in; only ``reopen`` undoes it

    @property
    def label(self) -> str:
        return _CYCLE_LABELS[self]

    @property
    def open(self) -> bool:
        """Answers are still taken in."""
        return self is not CycleStatus.CLOSED

    @property
    def terminal(self) -> bool:
        return self is CycleStatus.CLOSED


_CYCLE_LABELS = {
    CycleStatus.OPEN: "Đang mở",
    CycleStatus.CONSOLIDATED: "Đã tổng hợp",
    CycleStatus.CLOSED: "Đã đóng",
}

_C = CycleStatus
CYCLE_MOVES: Mapping[CycleStatus, frozenset[CycleStatus]] = {
    _C.OPEN: frozenset({_C.CONSOLIDATED, _C.CLOSED}),
    _C.CONSOLIDATED: frozenset({_C.CLOSED}),
    _C.CLOSED: frozenset(),  # only reopen=True (kehoach reopen) leaves it
}
CYCLE_REOPEN_MOVES: Mapping[CycleStatus, frozenset[CycleStatus]] = {
    _C.CLOSED: frozenset({_C.OPEN, _C.CONSOLIDATED}),
}


# ---------------------------------------------------------------- plan instances


class InstanceStatus(StrEnum):
    """A plan version being run."""

    ACTIVE = "active"
    CLOSED = "closed"

    @property
    def label(self) -> str:
        return _INSTANCE_LABELS[self]

    @property
    def terminal(self) -> bool:
        return self is InstanceStatus.CLOSED


_INSTANCE_LABELS = {InstanceStatus.ACTIVE: "Đang thực hiện", InstanceStatus.CLOSED: "Đã kết thúc"}
INSTANCE_MOVES: Mapping[InstanceStatus, frozenset[InstanceStatus]] = {
    InstanceStatus.ACTIVE: frozenset({InstanceStatus.CLOSED}),
    InstanceStatus.CLOSED: frozenset(),
}


# ---------------------------------------------------------------- outbox


class OutboxStatus(StrEnum):
    """One queued email (notifications.dispatch moves it; the engine queues and cancels)."""

    PENDING = "pending"
    SENDING = "sending"  # leased by a dispatcher
    SENT = "sent"
    FAILED = "failed"  # permanently (a 5xx reply, or retries exhausted)
    CANCELLED = "cancelled"  # its cycle closed before it went out

    @property
    def label(self) -> str:
        return _OUTBOX_LABELS[self]

    @property
    def terminal(self) -> bool:
        return self in (OutboxStatus.SENT, OutboxStatus.FAILED, OutboxStatus.CANCELLED)


_OUTBOX_LABELS = {
    OutboxStatus.PENDING: "Chờ gửi",
    OutboxStatus.SENDING: "Đang gửi",
    OutboxStatus.SENT: "Đã gửi",
    OutboxStatus.FAILED: "Gửi không được",
    OutboxStatus.CANCELLED: "Đã hủy",
}


# ---------------------------------------------------------------- columns


E = TypeVar("E", bound=StrEnum)


class EnumText(TypeDecorator[Any]):
    """A StrEnum stored as its plain value (the database values are the strings above;
    no native ENUM type, so no migration). Reads give the member; writes accept the
    member or its exact value and refuse anything else."""

    impl = String(20)
    cache_ok = True

    def __init__(self, enum: type[StrEnum], length: int = 20) -> None:
        super().__init__(length)
        self.enum = enum

    def process_bind_param(self, value: Any, dialect: Any) -> str | None:
        if value is None:
            return None
        return self.enum(value).value

    def process_result_value(self, value: Any, dialect: Any) -> StrEnum | None:
        if value is None:
            return None
        return self.enum(value)


# ---------------------------------------------------------------- transitions


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
    from engine.store.models import AuditEvent  # the models import this module

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


def move_obligation(
    session: Session,
    obligation: Any,
    to: ObligationStatus,
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
