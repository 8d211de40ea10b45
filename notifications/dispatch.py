"""The dispatcher: deliver due outbox rows over SMTP, never losing one.

Each pass claims due rows in batches (status ``pending`` and ``next_attempt_at`` due,
or ``sending`` whose lease ran out), marks them ``sending`` with a lease in the same
statement, sends them over a small pool of reused connections, and records the
outcome. A crash between sending and recording leaves the row ``sending``; when its
lease expires the next pass sends it again with the same Message-ID. A message may
thus arrive twice (mail clients fold duplicates by Message-ID) but never zero times.

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

import asyncio
import datetime as dt
import time
from collections.abc import Coroutine
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from typing import Any, TypeVar, cast

from sqlalchemy import Table, bindparam, select, update
from sqlalchemy.orm import Session, sessionmaker

from engine.config import Settings
from engine.config import settings as default_settings
from engine.faults import killpoint
from engine.outbox import MailKind, enqueue, plan_admin_email
from engine.states import OutboxStatus
from engine.store.db import connect
from engine.store.models import AuditEvent, OutboxMessage, utcnow
from notifications.render import RenderError, render_message
from notifications.smtp import SmtpConnection, SmtpFailure, TokenBucket

OUTBOX = cast(Table, OutboxMessage.__table__)
T = TypeVar("T")


@dataclass(frozen=True)
class RetryPolicy:
    """Backoff and lease timings (short ones in tests, the defaults in production)."""

    base_seconds: float = 60.0  # first retry after a minute ...
    max_seconds: float = 3600.0  # ... doubling up to an hour
    lease_seconds: float = 600.0  # a `sending` row older than this is sent again
    batch_size: int = 200

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

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class _Outcome:
    row: Any  # a claimed outbox row (attribute names as OutboxMessage)
    status: OutboxStatus | str  # sent, failed, or "retry"
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


class Dispatcher:
    """One pass over the outbox; create a new one per pass."""

    def __init__(
        self,
        db_url: str,
        conf: Settings,
        now: dt.datetime | None = None,
        policy: RetryPolicy | None = None,
    ) -> None:
        self.conf = conf
        self.policy = policy or RetryPolicy()
        self._fixed_now = now
        self._factory = sessionmaker(connect(db_url), expire_on_commit=False)
        self._postgres = db_url.startswith("postgresql")
        self.stats = DispatchStats()
        # Set when the server cannot be reached: the rest of the pass is pointless.
        self._unreachable: str | None = None

    def clock(self) -> dt.datetime:
        """The injected time (virtual clock) or the real one."""
        return self._fixed_now or utcnow()

    # ------------------------------------------------------------ database side

    def _claim(self, cutoff: dt.datetime, count: int) -> list[Any]:
        """Mark up to ``count`` due rows ``sending`` (with a lease) and return them.

        One UPDATE statement: on SQLite (``WHERE id IN (SELECT ...)``) it runs under
        the write lock; on PostgreSQL (``WITH picked AS (SELECT ... FOR UPDATE SKIP
        LOCKED) UPDATE ... FROM picked``) concurrent dispatchers take disjoint rows.
        Either way no two dispatchers claim a row while its lease holds. Rows come back
        as plain (Core) rows with the same attribute names as OutboxMessage:
        building ORM objects would cost more than the rest of the claim.
        """
        c = OUTBOX.c
        due = c.status.in_((OutboxStatus.PENDING, OutboxStatus.SENDING)) & (
            c.next_attempt_at <= cutoff
        )
        candidates = select(c.id).where(due).order_by(c.next_attempt_at, c.id).limit(count)
        if self._postgres:
            # A locking CTE is evaluated exactly once; PostgreSQL may re-run an
            # IN (subquery) per row, and with SKIP LOCKED that ignores the LIMIT.
            picked = candidates.with_for_update(skip_locked=True).cte("picked")
            stmt = update(OUTBOX).where(c.id == picked.c.id, due)
        else:
            stmt = update(OUTBOX).where(c.id.in_(candidates.scalar_subquery()), due)
        lease = self.clock() + dt.timedelta(seconds=self.policy.lease_seconds)
        with self._factory() as session, session.begin():
            rows = session.execute(
                stmt.values(status=OutboxStatus.SENDING, next_attempt_at=lease).returning(
                    *(col for col in OUTBOX.c if col.name != "raw")
                )
            ).all()
        killpoint("claimed")
        return sorted(rows, key=lambda r: r.id)

    def _record(self, outcomes: list[_Outcome]) -> None:
        """Write every outcome of a batch in one transaction, with its side effects."""
        if not outcomes:
            return
        params: list[dict[str, Any]] = []
        with self._factory() as session, session.begin():
            for out in outcomes:
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
                elif out.status == "retry" and _transient(out.refused) and _permanent(out.refused):
                    # Every address refused, some for good: report those, retry the rest.
                    values["status"] = OutboxStatus.FAILED
                    self._refused(session, out, values, attempts)
                    if values["status"] == OutboxStatus.FAILED:
                        self.stats.failed += 1
                elif out.status == "retry":
                    give_up_at = row.give_up_at or out.at + dt.timedelta(
                        hours=self.conf.smtp_give_up_hours
                    )
                    values["give_up_at"] = give_up_at
                    values["retry_to"] = row.retry_to  # still owed to the same addresses
                    if out.at >= give_up_at:
                        error = f"gave up after {attempts} attempts: {out.error}"
                        lost = (
                            OutboxStatus.SENT if row.sent_at else OutboxStatus.FAILED
                        )  # others may have it
                        values.update(status=lost, last_error=error, retry_to=None)
                        self._fail(session, out, error, attempts)
                    else:
                        values.update(
                            status=OutboxStatus.PENDING,
                            next_attempt_at=out.at + self.policy.backoff(max(1, attempts)),
                        )
                        self.stats.retried += 1
                else:
                    # A row some addresses already got stays "sent"; the rest is reported.
                    values["status"] = OutboxStatus.SENT if row.sent_at else OutboxStatus.FAILED
                    self._fail(session, out, out.error or "", attempts)
                if out.error and out.error not in self.stats.errors and len(self.stats.errors) < 20:
                    self.stats.errors.append(out.error)
                params.append(values)
            # Sent rows get their bytes; others keep theirs (claimed rows carry no raw).
            # One executemany per column set.
            for same in (
                [v for v in params if "raw" in v],
                [v for v in params if "raw" not in v],
            ):
                if same:
                    session.execute(update(OUTBOX).where(OUTBOX.c.id == bindparam("_id")), same)
            killpoint("record_before_commit")
        killpoint("recorded")

    def _refused(
        self, session: Session, out: _Outcome, values: dict[str, Any], attempts: int
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

    def _fail(self, session: Session, out: _Outcome, error: str, attempts: int) -> None:
        self.stats.failed += 1
        self._escalate(session, out, error, attempts)

    def _escalate(self, session: Session, out: _Outcome, error: str, attempts: int) -> None:
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
        session.add(
            AuditEvent(
                at=out.at,
                actor="system:dispatcher",
                action="email.delivery_failed",
                plan_id=row.plan_id,
                obligation_id=row.obligation_id,
                data=failed,
            )
        )
        # Never escalate a failure about a failure: that could loop forever when
        # the administrator's own address is the one that bounces.
        if row.kind == MailKind.DELIVERY_FAILURE:
            return
        enqueue(
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

    # ------------------------------------------------------------ SMTP side

    async def _deliver(self, connection: SmtpConnection, bucket: TokenBucket, row: Any):
        at = self.clock()
        if self._unreachable is not None:
            return _Outcome(row, "retry", at, attempted=False, error=self._unreachable)
        try:
            rendered = render_message(row, self.conf, now=at)
        except (RenderError, ValueError, TypeError, KeyError) as exc:
            # A message that cannot be built never will be: no point retrying.
            return _Outcome(row, OutboxStatus.FAILED, at, error=f"cannot build the message: {exc}")
        subject, data = rendered.subject, rendered.raw
        # After a partial refusal, only the addresses still owed (headers unchanged).
        recipients = list(row.retry_to) if row.retry_to else rendered.recipients
        await bucket.acquire()
        try:
            refused = await connection.send(self.conf.mail_from, recipients, data)
            killpoint("smtp_sent")
        except SmtpFailure as exc:
            if exc.connection:
                self._unreachable = str(exc)
            status = OutboxStatus.FAILED if exc.permanent else "retry"
            return _Outcome(
                row, status, at, subject=subject, code=exc.code, error=str(exc), refused=exc.refused
            )
        return _Outcome(
            row, OutboxStatus.SENT, at, raw=data, subject=subject, code=250, refused=refused
        )

    def _claim_size(self, limit: int | None) -> int:
        want = self.policy.batch_size
        rate = self.conf.smtp_rate_per_second
        if rate > 0:
            # Under a slow rate limit, claim no more than can be sent well within the
            # lease, or another pass could take the rows over while they wait here.
            want = min(want, max(1, int(rate * self.policy.lease_seconds / 4)))
        if limit is not None:
            want = min(want, limit - self.stats.claimed)
        return want

    async def run(self, limit: int | None = None) -> DispatchStats:
        """Claim, send and record as a pipeline: the next batch is claimed and the
        last one recorded while messages go out, so the connections never wait on
        the database."""
        started = time.perf_counter()
        # Rows that fall due while this pass runs wait for the next pass: a row
        # retried in this pass must not be picked up again by it.
        cutoff = self.clock()
        pool = [SmtpConnection(self.conf) for _ in range(max(1, self.conf.smtp_connections))]
        bucket = TokenBucket(self.conf.smtp_rate_per_second)
        queue: asyncio.Queue[Any] = asyncio.Queue(maxsize=self.policy.batch_size)
        buffer: list[_Outcome] = []
        record_lock = asyncio.Lock()
        flushes: list[asyncio.Task[None]] = []
        failure: list[BaseException] = []

        async def flush() -> None:
            async with record_lock:  # outcomes land in the order they were taken
                taken = buffer[:]
                del buffer[:]
                if not taken:
                    return
                try:
                    await asyncio.to_thread(self._record, taken)
                except BaseException as exc:
                    failure.append(exc)
                    raise

        async def worker(connection: SmtpConnection) -> None:
            while (row := await queue.get()) is not None:
                try:
                    buffer.append(await self._deliver(connection, bucket, row))
                except Exception as exc:  # a bug must not stall the pass or lose the row
                    error = f"internal error: {type(exc).__name__}: {exc}"
                    buffer.append(_Outcome(row, "retry", self.clock(), error=error))
                finally:
                    queue.task_done()
                if len(buffer) >= self.policy.batch_size:
                    flushes.append(asyncio.create_task(flush()))

        async def producer() -> None:
            rechecked = False
            while not failure and self._unreachable is None:
                want = self._claim_size(limit)
                if want <= 0:
                    break
                rows = await asyncio.to_thread(self._claim, cutoff, want)
                if not rows:
                    if rechecked:
                        break
                    # Recording may enqueue notices due now (delivery_failure): send
                    # them in this pass rather than one pass later.
                    await queue.join()
                    await flush()
                    rechecked = True
                    continue
                rechecked = False
                self.stats.claimed += len(rows)
                for row in rows:
                    await queue.put(row)

        workers = [asyncio.create_task(worker(c)) for c in pool]
        try:
            try:
                await producer()
            finally:
                for _ in workers:
                    await queue.put(None)
                await asyncio.gather(*workers)
                await asyncio.gather(*flushes, return_exceptions=True)
                await flush()
            if failure:
                raise failure[0]
        finally:
            await asyncio.gather(*(c.close() for c in pool), return_exceptions=True)
            self.stats.connections = sum(c.connects for c in pool)
            self.stats.seconds = round(time.perf_counter() - started, 3)
        return self.stats


async def dispatch_pending(
    db_url: str,
    settings: Settings | None = None,
    now: dt.datetime | None = None,
    limit: int | None = None,
    policy: RetryPolicy | None = None,
) -> DispatchStats:
    """Deliver every outbox row due at ``now`` (default: the real time); one pass."""
    conf = settings or default_settings()
    return await Dispatcher(db_url, conf, now=now, policy=policy).run(limit)


def run_sync(coro: Coroutine[Any, Any, T]) -> T:
    """Run ``coro`` to completion from synchronous code.

    Where an event loop already runs in this thread (a notebook, Playwright's sync
    API, a sync Prefect task inside an async flow) ``asyncio.run`` refuses, so the
    coroutine gets its own loop in a worker thread instead."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="kehoach-dispatch") as pool:
        return pool.submit(asyncio.run, coro).result()


def dispatch_pending_sync(
    db_url: str,
    settings: Settings | None = None,
    now: dt.datetime | None = None,
    limit: int | None = None,
    policy: RetryPolicy | None = None,
) -> DispatchStats:
    """:func:`dispatch_pending` for callers without an event loop (CLI, sync flows)."""
    return run_sync(dispatch_pending(db_url, settings, now, limit, policy))
