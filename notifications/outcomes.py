"""Recording what happened to each message the dispatcher tried, in the caller's transaction.

Outcomes: sent; 4xx or network error -> ``pending`` again with exponential backoff
until ``give_up_at`` (first failure + ``smtp_give_up_hours``), then ``failed``;
5xx -> ``failed`` at once. Every ``failed`` row gets an AuditEvent and a
``delivery_failure`` email to the plan's (or the configured) administrator.

Recipients one by one: when the server refuses some addresses of a message (at
RCPT) and takes the others, a 5xx address is reported to the administrator at once
and a 4xx address is owed the message still: the row goes back to ``pending`` with
``retry_to`` = those addresses, and the next attempt sends the same message (same
Message-ID, same To/Cc headers) to them alone, with the same backoff and give-up
horizon as a whole message.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict, dataclass, field
from typing import Any, cast

from sqlalchemy import Table, bindparam, update
from sqlalchemy.orm import Session

from engine.audit_chain import append
from engine.config import Settings
from engine.outbox import MailKind, enqueue, plan_admin_email
from engine.states import OutboxStatus
from engine.store.models import OutboxMessage

OUTBOX = cast(Table, OutboxMessage.__table__)
BY_ID = update(OUTBOX).where(OUTBOX.c.id == bindparam("_id"))  # executemany, one per column set
RETRY = "retry"  # an outcome status that is not a stored state: try again later


@dataclass(frozen=True)
class RetryPolicy:
    """Backoff and lease timings (short ones in tests, the defaults in production)."""

    base_seconds: float = 60.0  # first retry after a minute ...
    max_seconds: float = 3600.0  # ... doubling up to an hour
    # A `sending` row whose dispatcher stopped renewing it is sent again after this.
    lease_seconds: float = 60.0
    batch_size: int = 200  # rows per transaction when deferring them all (server down)

    @property
    def heartbeat_seconds(self) -> float:
        return max(0.05, self.lease_seconds / 3)

    def backoff(self, attempts: int) -> dt.timedelta:
        seconds = self.base_seconds * 2 ** max(0, attempts - 1)
        return dt.timedelta(seconds=min(seconds, self.max_seconds))


@dataclass
class DispatchStats:
    """What one pass did."""

    claimed: int = 0
    sent: int = 0
    retried: int = 0
    failed: int = 0
    seconds: float = 0.0
    connections: int = 0
    errors: list[str] = field(default_factory=list)  # distinct error texts, for summaries
    held: int = 0  # due, but waiting for the sending window
    window_opens: str | None = None  # its next opening (ISO 8601, Viet Nam time)
    max_in_flight: int = 0  # the most rows this pass had claimed and not recorded at once

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Outcome:
    row: Any  # a claimed outbox row (attribute names as OutboxMessage)
    status: OutboxStatus | str  # sent, failed, or RETRY
    at: dt.datetime
    attempted: bool = True
    raw: bytes | None = None
    subject: str | None = None
    code: int | None = None
    error: str | None = None
    refused: dict[str, str] = field(default_factory=dict)  # address -> "code text"


def _transient(refused: dict[str, str]) -> list[str]:
    """Addresses refused with a 4xx reply: worth another attempt."""
    return [a for a, e in refused.items() if e[:1] == "4"]


def _permanent(refused: dict[str, str]) -> list[str]:
    return [a for a, e in refused.items() if e[:1] != "4"]


class Recorder:
    """Writes outcomes and their side effects (audit rows, notices to the administrator)."""

    def __init__(self, conf: Settings, policy: RetryPolicy, stats: DispatchStats) -> None:
        self.conf = conf
        self.policy = policy
        self.stats = stats
        self.notices = 0  # delivery_failure rows queued (they are due at once)

    def record(self, session: Session, outcomes: list[Outcome]) -> None:
        """Write every outcome in ``session``'s transaction: one executemany per column set."""
        params = [self._values(session, out) for out in outcomes]
        # Sent rows get their bytes; others keep theirs (claimed rows carry no raw).
        for same in ([v for v in params if "raw" in v], [v for v in params if "raw" not in v]):
            if same:
                session.execute(BY_ID, same)

    def release(self, session: Session, outcomes: list[Outcome]) -> None:
        """Put rows back as they were due, untouched (a best-effort pass that did not send
        them leaves the retries to the dispatcher)."""
        if outcomes:
            session.execute(
                update(OUTBOX).where(
                    OUTBOX.c.id == bindparam("_id"), OUTBOX.c.status == OutboxStatus.SENDING
                ),
                [
                    {"_id": o.row.id, "status": OutboxStatus.PENDING, "next_attempt_at": o.at}
                    for o in outcomes
                ],
            )

    def _values(self, session: Session, out: Outcome) -> dict[str, Any]:
        row = out.row
        attempts = row.attempts + (1 if out.attempted else 0)
        # Every column in every parameter set: one executemany statement.
        values: dict[str, Any] = {
            "_id": row.id,
            "status": OutboxStatus.SENT,
            "attempts": attempts,
            "smtp_code": out.code,
            "last_error": out.error,
            "sent_at": row.sent_at,  # kept by a retry after a partial refusal
            "give_up_at": row.give_up_at,
            "next_attempt_at": out.at,
            "retry_to": None,
        }
        if out.status == OutboxStatus.SENT:
            values.update(sent_at=row.sent_at or out.at, raw=out.raw, last_error=None)
            self.stats.sent += 1
            if out.refused:
                self._refused(session, out, values, attempts)
        elif out.status == RETRY and _transient(out.refused) and _permanent(out.refused):
            # Every address refused, some for good: report those, retry the rest.
            values["status"] = OutboxStatus.FAILED
            self._refused(session, out, values, attempts)
            if values["status"] == OutboxStatus.FAILED:
                self.stats.failed += 1
        elif out.status == RETRY:
            self._retry(session, out, values, attempts)
        else:
            # A row some addresses already got stays "sent"; the rest is reported.
            values["status"] = OutboxStatus.SENT if row.sent_at else OutboxStatus.FAILED
            self._fail(session, out, out.error or "", attempts)
        if out.error and out.error not in self.stats.errors and len(self.stats.errors) < 20:
            self.stats.errors.append(out.error)
        return values

    def _retry(self, session: Session, out: Outcome, values: dict[str, Any], attempts: int) -> None:
        row = out.row
        give_up_at = row.give_up_at or out.at + dt.timedelta(hours=self.conf.smtp_give_up_hours)
        values["give_up_at"] = give_up_at
        values["retry_to"] = row.retry_to  # still owed to the same addresses
        if out.at >= give_up_at:
            error = f"gave up after {attempts} attempts: {out.error}"
            lost = OutboxStatus.SENT if row.sent_at else OutboxStatus.FAILED  # others may have it
            values.update(status=lost, last_error=error, retry_to=None)
            self._fail(session, out, error, attempts)
        else:
            values.update(
                status=OutboxStatus.PENDING,
                next_attempt_at=out.at + self.policy.backoff(max(1, attempts)),
            )
            self.stats.retried += 1

    def _refused(
        self, session: Session, out: Outcome, values: dict[str, Any], attempts: int
    ) -> None:
        """Some addresses refused: report the permanent ones, keep owing the others."""
        row = out.row
        refused = ", ".join(f"{a}: {e}" for a, e in out.refused.items())
        values["last_error"] = "refused: " + refused
        owed = _transient(out.refused)
        give_up_at = row.give_up_at or out.at + dt.timedelta(hours=self.conf.smtp_give_up_hours)
        if owed and out.at < give_up_at:
            values.update(
                status=OutboxStatus.PENDING,
                retry_to=owed,
                give_up_at=give_up_at,
                next_attempt_at=out.at + self.policy.backoff(max(1, attempts)),
                last_error=f"refused, retrying {', '.join(owed)}: {refused}",
            )
            self.stats.retried += 1
            lost = _permanent(out.refused)
        else:
            lost = list(out.refused)
            if owed:
                values["last_error"] = f"gave up after {attempts} attempts: {refused}"
        if lost:
            error = "; ".join(f"{a}: {out.refused[a]}" for a in lost)
            self._escalate(session, out, f"refused: {error}", attempts)

    def _fail(self, session: Session, out: Outcome, error: str, attempts: int) -> None:
        self.stats.failed += 1
        self._escalate(session, out, error, attempts)

    def _escalate(self, session: Session, out: Outcome, error: str, attempts: int) -> None:
        """AuditEvent plus a delivery_failure email to the administrator."""
        row = out.row
        to_text = ", ".join([*row.to_addrs, *row.cc_addrs])
        failed = {
            "outbox_id": row.id,
            "message_id": row.message_id,
            "kind": row.kind,
            "subject": out.subject,
            "to": to_text,
            "unit_name": ((row.context or {}).get("unit") or {}).get("name"),
            "plan_id": row.plan_id,
            "obligation_id": row.obligation_id,
            "smtp_code": out.code,
            "error": error,
            "attempts": attempts,
        }
        append(
            session,
            at=out.at,
            actor="system:dispatcher",
            action="email.delivery_failed",
            plan_id=row.plan_id,
            obligation_id=row.obligation_id,
            data=failed,
        )
        # Never escalate a failure about a failure: that could loop forever when
        # the administrator's own address is the one that bounces.
        if row.kind == MailKind.DELIVERY_FAILURE:
            return
        queued = enqueue(
            session,
            kind=MailKind.DELIVERY_FAILURE,
            idempotency_key=f"delivery_failure:{row.id}",
            to_addrs=[plan_admin_email(session, row.plan_id, self.conf)],
            context={"failed": failed},
            plan_id=row.plan_id,
            unit_id=row.unit_id,
            thread_key="",  # the admin was not on the unit's thread
            now=out.at,
            settings=self.conf,
        )
        self.notices += queued.inserted
