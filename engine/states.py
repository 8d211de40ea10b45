"""Every state kehoach keeps, in one place: values, Vietnamese labels, predicates, moves.

The database stores the plain values (``"pending"``, ``"closed"`` …); the columns are
typed with these enums (:class:`EnumText`), so Python code compares and assigns
members, never strings.  A change of state goes through the kind's transition
function in :mod:`engine.transitions` (``move_obligation``, ``move_review``,
``move_cycle``, ``move_instance``), which refuses a move the table below does not allow
(:class:`IllegalTransition`) and writes the audit row in the caller's transaction.

Modelled on Prefect's ``StateType`` / ``TERMINAL_STATES``: the value set is closed,
the predicates are properties of the value, and the legal moves are data.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from sqlalchemy import String
from sqlalchemy.types import TypeDecorator

from engine.errors import KehoachError

if TYPE_CHECKING:
    pass


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
# What the closing summary calls a duty nobody answered by the end of the cycle, and a
# consolidation duty not carried out.
MISSING_LABEL = "Không nộp"
NOT_CARRIED_OUT_LABEL = "Chưa thực hiện"
RETURNED_NOT_RESENT_LABEL = "Bị trả lại, không nộp lại"

_O = ObligationStatus
OBLIGATION_MOVES: Mapping[ObligationStatus, frozenset[ObligationStatus]] = {
    # taken in; waived when merged into a successor's duty
    _O.PENDING: frozenset({_O.SUBMITTED, _O.WAIVED}),
    # a newer version taken in; accepted; returned for revision
    _O.SUBMITTED: frozenset({_O.SUBMITTED, _O.ACCEPTED, _O.PENDING}),
    _O.ACCEPTED: frozenset(),
    _O.WAIVED: frozenset(),
}


class State(StrEnum):
    """The Government's four tracking states of one obligation as of a day (derived from
    the status, the deadline and when it was answered; never stored)."""

    DONE_ON_TIME = "done_on_time"
    DONE_LATE = "done_late"
    OPEN_WITHIN = "open_within"
    OPEN_OVERDUE = "open_overdue"

    @property
    def label(self) -> str:
        return _STATE_LABELS[self]

    @property
    def done(self) -> bool:
        return self in (State.DONE_ON_TIME, State.DONE_LATE)


_STATE_LABELS = {
    State.DONE_ON_TIME: "Hoàn thành đúng hạn",
    State.DONE_LATE: "Hoàn thành quá hạn",
    State.OPEN_WITHIN: "Chưa hoàn thành, còn hạn",
    State.OPEN_OVERDUE: "Chưa hoàn thành, quá hạn",
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


# ---------------------------------------------------------------- consolidated reports


class ReportApproval(StrEnum):
    """Where a consolidated report stands on its way upward: drafted by the system,
    approved and numbered by the consolidating unit, signed, then sent (engine.approval).
    Nothing goes upward before 'sent'."""

    DRAFT = "draft"  # "DỰ THẢO": under review by the consolidating unit
    APPROVED = "approved"  # approved, numbered from the issuer's register; final files made
    SIGNED = "signed"  # the signed PDF (scanned or digitally signed) is uploaded
    SENT = "sent"  # handed upward: the email to the body it is for, the parent plan
    SUPERSEDED = "superseded"  # a newer revision replaced it before it was sent

    @property
    def label(self) -> str:
        return _REPORT_APPROVAL_LABELS[self]

    @property
    def terminal(self) -> bool:
        return self in (ReportApproval.SENT, ReportApproval.SUPERSEDED)


_REPORT_APPROVAL_LABELS = {
    ReportApproval.DRAFT: "Dự thảo, chờ duyệt",
    ReportApproval.APPROVED: "Đã duyệt và cấp số, chờ ký",
    ReportApproval.SIGNED: "Đã ký, chờ gửi",
    ReportApproval.SENT: "Đã gửi cấp trên",
    ReportApproval.SUPERSEDED: "Đã được thay thế bằng lần sau",
}

_A = ReportApproval
REPORT_APPROVAL_MOVES: Mapping[ReportApproval, frozenset[ReportApproval]] = {
    _A.DRAFT: frozenset({_A.APPROVED, _A.SUPERSEDED}),
    _A.APPROVED: frozenset({_A.SIGNED, _A.SUPERSEDED}),
    _A.SIGNED: frozenset({_A.SENT, _A.SUPERSEDED}),
    _A.SENT: frozenset(),
    _A.SUPERSEDED: frozenset(),
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
