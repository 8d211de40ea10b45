"""The dispatcher: deliver due outbox rows over SMTP, never losing one, resending few.

Each of ``smtp_connections`` workers sends one message at a time: in one transaction it
records the outcome of its last message and claims its next due row (status
``pending`` and ``next_attempt_at`` due, or ``sending`` whose lease ran out), marking it
``sending`` with a short lease; that transaction runs while the worker sends the row
it claimed before, so the connection does not wait for the database. Claims and records
of all workers are grouped into one transaction when they come together; every message
is marked sent in the first transaction after its SMTP reply.

So at any moment at most ``IN_FLIGHT_PER_CONNECTION * smtp_connections`` rows are
``sending``: per connection the one it sends, and the one whose reply is being recorded
or the one being claimed for it. A dispatcher killed mid-run leaves only those; a
heartbeat renews their lease (``lease_seconds``, 60 s) while the dispatcher lives, so
after a kill they are sent again within a minute with the same Message-ID (the message
may arrive twice, mail clients fold duplicates by Message-ID, but never zero times), and
every other row is due for the next dispatcher at once. A clean stop (:meth:`Dispatcher.stop`, SIGTERM/SIGINT for the
CLI) lets the messages in flight finish and releases anything claimed but not started.

Mail that may wait is claimed only while the sending window is open
(engine/outbox/timing.py): working hours of working days.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import signal
import threading
import time
from collections.abc import Coroutine, Sequence
from concurrent.futures import ThreadPoolExecutor
from functools import lru_cache
from typing import Any, TypeVar

from sqlalchemy import Engine, Integer, bindparam, create_engine, event, func, or_, select, update
from sqlalchemy.orm import Session, sessionmaker

from engine.calendar import TZ, WorkCalendar
from engine.config import Settings
from engine.config import settings as default_settings
from engine.definitions_cache import current_calendar
from engine.faults import killpoint
from engine.outbox.timing import AT_ONCE_FLAGS, AT_ONCE_KINDS, SendingWindow
from engine.states import OutboxStatus
from engine.store.db import _sqlite_pragmas, connect
from engine.store.json_codec import JSON_CODEC
from engine.store.models import utcnow
from notifications.outcomes import OUTBOX, RETRY, DispatchStats, Outcome, Recorder, RetryPolicy
from notifications.render import RenderError, render_message
from notifications.smtp import SmtpConnection, SmtpFailure, TokenBucket

T = TypeVar("T")
# How long the transaction that records one reply waits for the other connections'
# replies: grouped, they cost one commit instead of several.
GATHER_SECONDS = 0.005
# Rows a connection may hold ``sending``: the one it sends, and the one being recorded or
# claimed for it while it does (Dispatcher._work).
IN_FLIGHT_PER_CONNECTION = 2
log = logging.getLogger("kehoach.dispatch")


def _no_fsync_per_commit(dbapi_connection: Any, _record: Any) -> None:
    dbapi_connection.execute("PRAGMA synchronous=NORMAL")


@lru_cache(maxsize=8)
def _engine(url: str) -> Engine:
    """The dispatcher's connections. On SQLite in WAL mode they commit without an fsync
    (``synchronous=NORMAL``): a commit survives the process being killed, and what a
    power cut may take back is a few "sent" marks, i.e. a few messages sent again with
    their Message-ID, which the at-least-once contract allows. One commit per message
    with an fsync each would halve the throughput here."""
    if not url.startswith("sqlite"):
        return connect(url)
    connect(url)  # creates the database's folder
    engine = create_engine(url, connect_args={"timeout": 30}, **JSON_CODEC)
    event.listen(engine, "connect", _sqlite_pragmas)
    event.listen(engine, "connect", _no_fsync_per_commit)
    return engine


class _Ledger:
    """Groups the workers' "record my outcome, give me the next row" into transactions."""

    def __init__(self, dispatcher: Dispatcher, workers: int, gather_seconds: float) -> None:
        self.dispatcher = dispatcher
        self.workers = workers  # still running: each one either sends or waits here
        self.gather_seconds = gather_seconds
        self.pending: list[tuple[Outcome | None, bool, asyncio.Future[Any]]] = []
        self.task: asyncio.Task[None] | None = None
        self._all_in = asyncio.Event()

    async def submit(self, outcome: Outcome | None, want: bool) -> Any:
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self.pending.append((outcome, want, future))
        if len(self.pending) >= self.workers:
            self._all_in.set()
        if self.task is None or self.task.done():
            self.task = asyncio.create_task(self._drain())
        return await future

    def leave(self) -> None:
        """A worker is done: the others no longer wait for it."""
        self.workers -= 1
        if self.pending and len(self.pending) >= self.workers:
            self._all_in.set()

    async def _gather(self) -> None:
        """Wait a moment for the connections whose reply is about to come, so that one
        transaction records them all (a commit per message costs more than a send)."""
        if len(self.pending) >= self.workers or self.gather_seconds <= 0:
            return
        self._all_in.clear()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._all_in.wait(), self.gather_seconds)

    async def _drain(self) -> None:
        d = self.dispatcher
        while self.pending:
            await self._gather()
            batch, self.pending = self.pending, []
            outcomes = [o for o, _, _ in batch if o is not None]
            want = min(sum(1 for _, w, _ in batch if w), d.claim_room())
            try:
                rows = await d.locked(d.commit, outcomes, want)
            except BaseException as exc:
                d.fail(exc)
                for _, _, future in batch:
                    if not future.done():
                        future.set_exception(exc)
                if not isinstance(exc, Exception):
                    raise
                continue
            d.settled(outcomes, rows)
            given = iter(rows)
            for _, wanted, future in batch:
                if not future.done():
                    future.set_result(next(given, None) if wanted else None)


class Dispatcher:
    """One pass over the outbox; create a new one per pass."""

    def __init__(
        self,
        db_url: str,
        conf: Settings,
        now: dt.datetime | None = None,
        policy: RetryPolicy | None = None,
        keys: Sequence[str] | None = None,
        best_effort: bool = False,
    ) -> None:
        """``keys``: only the rows with these idempotency keys (the portal's receipts).
        ``best_effort``: a row that is not sent is put back untouched, for the
        dispatcher to retry and report (no attempt counted, no backoff)."""
        self.conf = conf
        self.policy = policy or RetryPolicy(lease_seconds=conf.dispatch_lease_seconds)
        self._fixed_now = now
        self._engine = _engine(db_url)
        # Bound to the one connection the pass holds (:meth:`run`).
        self._factory = sessionmaker(expire_on_commit=False)
        self._postgres = db_url.startswith("postgresql")
        self._keys = list(keys) if keys is not None else None
        self._best_effort = best_effort
        self.stats = DispatchStats()
        self._recorder = Recorder(conf, self.policy, self.stats)
        self._limit: int | None = None
        self._cutoff = self.clock()
        self._window: SendingWindow | None = None
        self._stopping = False
        self._failure: BaseException | None = None
        # Set when the server cannot be reached: the rest of the pass is pointless.
        self._unreachable: str | None = None
        self._statements: dict[tuple[OutboxStatus, bool], Any] = {}
        self._next_lease_check = 0.0  # monotonic time to look for expired leases again
        self._claimed: dict[int, Any] = {}  # claimed and not recorded yet
        self._started: set[int] = set()  # of those, the ones handed to SMTP
        self._db_lock: asyncio.Lock | None = None

    def clock(self) -> dt.datetime:
        """The injected time (virtual clock) or the real one."""
        return self._fixed_now or utcnow()

    def stop(self) -> None:
        """Finish the messages in flight, claim nothing more (thread-safe)."""
        self._stopping = True

    def fail(self, exc: BaseException) -> None:
        """A database job failed: claim nothing more; :meth:`run` raises it at the end."""
        if self._failure is None:
            self._failure = exc

    # ------------------------------------------------------------ database side

    def claim_room(self) -> int:
        if self._stopping or self._unreachable is not None or self._failure is not None:
            return 0
        if self._limit is None:
            return 1 << 30
        return max(0, self._limit - self.stats.claimed)

    async def locked(self, fn: Any, *args: Any) -> Any:
        """``fn(*args)`` in a thread, one database job at a time (they share the pass's
        connection): a caller cancelled meanwhile (the heartbeat at the end of a pass)
        still waits for its job to finish before the next one may start."""
        assert self._db_lock is not None
        async with self._db_lock:
            job = asyncio.ensure_future(asyncio.to_thread(fn, *args))
            try:
                return await asyncio.shield(job)
            except asyncio.CancelledError:
                with contextlib.suppress(Exception):
                    await job
                raise

    def _due(self, status: OutboxStatus, window_closed: bool) -> Any:
        c = OUTBOX.c
        # A lease is a process's liveness: it runs out in real time, whatever moment a
        # simulated or replayed run says it is (two runs a virtual week apart would each
        # see the other's lease as long gone and send its messages again).
        cutoff: Any = bindparam("lease_cutoff" if status == OutboxStatus.SENDING else "cutoff")
        due = (c.status == status) & (c.next_attempt_at <= cutoff)
        if self._keys is not None:
            due &= c.idempotency_key.in_(bindparam("keys", expanding=True))
        if window_closed:
            due &= or_(
                c.kind.in_(sorted(AT_ONCE_KINDS)),
                *(c.context[flag].as_boolean().is_(True) for flag in AT_ONCE_FLAGS),
            )
        return due

    def _lease(self, real_now: dt.datetime) -> dt.datetime:
        """Until when a claim holds: real time, never the run's (virtual) clock."""
        return real_now + dt.timedelta(seconds=self.policy.lease_seconds)

    def _claim(self, session: Session, count: int) -> list[Any]:
        """Mark up to ``count`` due rows ``sending`` (with a lease) and return them:
        rows whose lease ran out first (looked for at most every third of a lease),
        then pending ones, each in ``ix_outbox_due`` order (no sort of the queue)."""
        rows: list[Any] = []
        statuses = [OutboxStatus.PENDING]
        if time.monotonic() >= self._next_lease_check:
            self._next_lease_check = time.monotonic() + self.policy.heartbeat_seconds
            statuses.insert(0, OutboxStatus.SENDING)
        closed = self._window is not None and not self._window.is_open(self.clock())
        real_now = utcnow()
        params: dict[str, Any] = {
            "cutoff": self._cutoff,
            "lease_cutoff": real_now,
            "lease": self._lease(real_now),
        }
        if self._keys is not None:
            params["keys"] = self._keys
        for status in statuses:
            if len(rows) < count:
                statement = self._claim_statement(status, closed)
                asked = count - len(rows)
                taken = session.execute(statement, {**params, "count": asked}).all()
                if status == OutboxStatus.SENDING and len(taken) == asked:
                    self._next_lease_check = 0.0  # maybe more ran out: look again next time
                rows += taken
        return sorted(rows, key=lambda r: r.id)

    def _claim_statement(self, status: OutboxStatus, window_closed: bool) -> Any:
        """One UPDATE statement, built once per pass: on SQLite (``WHERE id IN (SELECT
        ...)``) it runs under the write lock; on PostgreSQL (``WITH picked AS (SELECT ...
        FOR UPDATE SKIP LOCKED) UPDATE ... FROM picked``) concurrent dispatchers take
        disjoint rows. Either way no two dispatchers claim a row while its lease holds.
        Rows come back as plain (Core) rows with the attribute names of OutboxMessage."""
        key = (status, window_closed)
        if key not in self._statements:
            c = OUTBOX.c
            due = self._due(status, window_closed)
            candidates = (
                select(c.id)
                .where(due)
                .order_by(c.next_attempt_at, c.id)
                .limit(bindparam("count", type_=Integer))
            )
            if self._postgres:
                # A locking CTE is evaluated exactly once; PostgreSQL may re-run an
                # IN (subquery) per row, and with SKIP LOCKED that ignores the LIMIT.
                picked = candidates.with_for_update(skip_locked=True).cte("picked")
                stmt = update(OUTBOX).where(c.id == picked.c.id, due)
            else:
                stmt = update(OUTBOX).where(c.id.in_(candidates.scalar_subquery()), due)
            self._statements[key] = stmt.values(
                status=OutboxStatus.SENDING, next_attempt_at=bindparam("lease")
            ).returning(*(col for col in OUTBOX.c if col.name != "raw"))
        return self._statements[key]

    def commit(self, outcomes: list[Outcome], want: int) -> list[Any]:
        """Record ``outcomes`` and claim up to ``want`` rows, in one transaction."""
        with self._factory() as session, session.begin():
            if self._best_effort:
                sent = OutboxStatus.SENT
                self._recorder.release(session, [o for o in outcomes if o.status != sent])
                outcomes = [o for o in outcomes if o.status == sent]
            self._recorder.record(session, outcomes)
            rows = self._claim(session, want)
            if outcomes:
                killpoint("record_before_commit")
        if outcomes:
            killpoint("recorded")
        if rows:
            killpoint("claimed")
        return rows

    def settled(self, outcomes: list[Outcome], rows: list[Any]) -> None:
        """Book-keeping after :meth:`commit` (in the event loop)."""
        for out in outcomes:
            self._claimed.pop(out.row.id, None)
            self._started.discard(out.row.id)
        for row in rows:
            self._claimed[row.id] = row
        self.stats.claimed += len(rows)
        self.stats.max_in_flight = max(self.stats.max_in_flight, len(self._claimed))

    def _renew(self, ids: list[int]) -> None:
        """The heartbeat: extend the lease of the rows in flight."""
        lease = self._lease(utcnow())
        with self._factory() as session, session.begin():
            session.execute(
                update(OUTBOX)
                .where(OUTBOX.c.id.in_(ids), OUTBOX.c.status == OutboxStatus.SENDING)
                .values(next_attempt_at=lease)
            )

    def _release(self, ids: list[int]) -> None:
        """Rows claimed and never handed to SMTP: due again at once, untouched."""
        with self._factory() as session, session.begin():
            session.execute(
                update(OUTBOX)
                .where(OUTBOX.c.id.in_(ids), OUTBOX.c.status == OutboxStatus.SENDING)
                .values(status=OutboxStatus.PENDING, next_attempt_at=self.clock())
            )

    def _defer_all(self, reason: str) -> None:
        """The server cannot be reached: every due row waits its backoff, in batches
        claimed and recorded in one transaction each (never left ``sending``)."""
        at = self.clock()
        while True:
            want = self.policy.batch_size
            if self._limit is not None:
                want = min(want, self._limit - self.stats.claimed)
            if want <= 0:
                return
            with self._factory() as session, session.begin():
                rows = self._claim(session, want)
                self._recorder.record(
                    session, [Outcome(r, RETRY, at, attempted=False, error=reason) for r in rows]
                )
            self.stats.claimed += len(rows)
            if not rows:
                return

    def _held(self) -> None:
        """How many rows wait for the sending window, and when it opens."""
        window = self._window
        if window is None or window.is_open(self.clock()) or self._keys is not None:
            return
        c = OUTBOX.c
        waiting = select(func.count(c.id)).where(
            c.status == OutboxStatus.PENDING,
            c.next_attempt_at <= self._cutoff,
            c.kind.not_in(sorted(AT_ONCE_KINDS)),
        )
        with self._factory() as session:
            self.stats.held = int(session.scalar(waiting) or 0)
        if self.stats.held:
            opens = window.next_open(self.clock()).astimezone(TZ)
            self.stats.window_opens = opens.isoformat(timespec="minutes")

    def _load_window(self) -> SendingWindow:
        with self._factory() as session:
            calendar = current_calendar(session, "vn")
        return SendingWindow.from_text(self.conf.mail_hours, WorkCalendar(calendar))

    # ------------------------------------------------------------ SMTP side

    async def _deliver(self, connection: SmtpConnection, row: Any) -> Outcome:
        at = self.clock()
        if self._unreachable is not None:
            return Outcome(row, RETRY, at, attempted=False, error=self._unreachable)
        try:
            rendered = render_message(row, self.conf, now=at)
        except (RenderError, ValueError, TypeError, KeyError) as exc:
            # A message that cannot be built never will be: no point retrying.
            return Outcome(row, OutboxStatus.FAILED, at, error=f"cannot build the message: {exc}")
        subject, data = rendered.subject, rendered.raw
        # After a partial refusal, only the addresses still owed (headers unchanged).
        recipients = list(row.retry_to) if row.retry_to else rendered.recipients
        self._started.add(row.id)
        try:
            refused = await connection.send(self.conf.mail_from, recipients, data)
            killpoint("smtp_sent")
        except SmtpFailure as exc:
            if exc.connection:
                self._unreachable = str(exc)
            status = OutboxStatus.FAILED if exc.permanent else RETRY
            return Outcome(
                row, status, at, subject=subject, code=exc.code, error=str(exc), refused=exc.refused
            )
        return Outcome(
            row, OutboxStatus.SENT, at, raw=data, subject=subject, code=250, refused=refused
        )

    async def _worker(self, connection: SmtpConnection, bucket: TokenBucket, ledger: _Ledger):
        try:
            await self._work(connection, bucket, ledger)
        finally:
            ledger.leave()

    async def _work(self, connection: SmtpConnection, bucket: TokenBucket, ledger: _Ledger):
        """Send one row while the transaction that records the previous reply claims the
        next one: the connection does not wait for the database between two messages.
        Waiting for every commit it reached 53-59 % of the bare loop on PostgreSQL
        (benchmarks/bench_dispatch.py). A kill leaves at most ``IN_FLIGHT_PER_CONNECTION``
        rows of a connection ``sending``: the one it was sending, and the one whose reply
        was not recorded yet or the one claimed for it (the same transaction)."""
        row = await ledger.submit(None, await self._want(bucket))
        if row is None:
            return
        ahead = asyncio.ensure_future(ledger.submit(None, await self._want(bucket)))
        while True:
            outcome = await self._deliver_safely(connection, row)
            row = await ahead  # claimed while this one was sent
            if row is None:
                await ledger.submit(outcome, False)  # recorded before the worker leaves
                return
            ahead = asyncio.ensure_future(ledger.submit(outcome, await self._want(bucket)))

    async def _deliver_safely(self, connection: SmtpConnection, row: Any) -> Outcome:
        try:
            return await self._deliver(connection, row)
        except Exception as exc:  # a bug must not stall the pass or lose the row
            error = f"internal error: {type(exc).__name__}: {exc}"
            return Outcome(row, RETRY, self.clock(), error=error)

    async def _want(self, bucket: TokenBucket) -> bool:
        """Whether to claim another row; its rate token is taken first (a claimed row
        waits at most for the ones sent before it, never for the rate limit)."""
        if self.claim_room() <= 0:
            return False
        await bucket.acquire()
        return self.claim_room() > 0

    async def _heartbeat(self) -> None:
        while True:
            await asyncio.sleep(self.policy.heartbeat_seconds)
            ids = sorted(self._claimed)
            if ids:
                try:
                    await self.locked(self._renew, ids)
                except Exception:  # the lease may then run out: a resend, never a loss
                    log.exception("could not renew the lease of %d outbox rows", len(ids))

    async def _round(self, pool: list[SmtpConnection], bucket: TokenBucket) -> None:
        ledger = _Ledger(self, len(pool), GATHER_SECONDS)
        results = await asyncio.gather(
            *(self._worker(c, bucket, ledger) for c in pool), return_exceptions=True
        )
        errors = [r for r in results if isinstance(r, BaseException)]
        if errors:
            self._failure = errors[0]

    async def run(self, limit: int | None = None, stop_on_signals: bool = False) -> DispatchStats:
        """Send what is due, one message per connection at a time (see the module doc)."""
        started = time.perf_counter()
        self._limit = limit
        self._db_lock = asyncio.Lock()
        # One connection for the pass: a transaction per reply or two, and checking a
        # pooled connection out and back for each (with its liveness ping on
        # PostgreSQL) cost a round trip more each time.
        connection = await asyncio.to_thread(self._engine.connect)
        self._factory.configure(bind=connection)
        try:
            return await self._run(stop_on_signals, started)
        finally:
            await asyncio.to_thread(connection.close)

    async def _run(self, stop_on_signals: bool, started: float) -> DispatchStats:
        self._window = await self.locked(self._load_window)
        pool = [SmtpConnection(self.conf) for _ in range(max(1, self.conf.smtp_connections))]
        bucket = TokenBucket(self.conf.smtp_rate_per_second)
        heartbeat = asyncio.create_task(self._heartbeat())
        handled = self._on_signals() if stop_on_signals else []
        try:
            # Rows that fall due while this pass runs wait for the next pass: a row
            # retried in this pass must not be picked up again by it; the notices to
            # the administrator it queues are sent in a second round.
            notices = -1
            while notices != self._recorder.notices and self.claim_room() > 0:
                notices = self._recorder.notices
                self._cutoff = self.clock()
                await self._round(pool, bucket)
            deferring = not (self._best_effort or self._stopping or self._failure is not None)
            if self._unreachable is not None and deferring:
                await self.locked(self._defer_all, self._unreachable)
            if self._failure is None:
                await self.locked(self._held)
        finally:
            heartbeat.cancel()
            await self._release_unstarted()
            for sig in handled:
                asyncio.get_running_loop().remove_signal_handler(sig)
            await asyncio.gather(*(c.close() for c in pool), return_exceptions=True)
            self.stats.connections = sum(c.connects for c in pool)
            self.stats.seconds = round(time.perf_counter() - started, 3)
        if self._failure is not None:
            raise self._failure
        return self.stats

    async def _release_unstarted(self) -> None:
        ids = [i for i in self._claimed if i not in self._started]
        if not ids:
            return
        try:
            await self.locked(self._release, ids)
        except Exception:  # their short lease runs out instead
            log.exception("could not release %d claimed outbox rows", len(ids))

    def _on_signals(self) -> list[int]:
        """SIGTERM and SIGINT stop the pass cleanly (main thread only)."""
        if threading.current_thread() is not threading.main_thread():
            return []
        loop = asyncio.get_running_loop()
        handled: list[int] = []
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self.stop)
            handled.append(sig)
        return handled


async def dispatch_pending(
    db_url: str,
    settings: Settings | None = None,
    now: dt.datetime | None = None,
    limit: int | None = None,
    policy: RetryPolicy | None = None,
    stop_on_signals: bool = False,
) -> DispatchStats:
    """Deliver every outbox row due at ``now`` (default: the real time); one pass."""
    conf = settings or default_settings()
    return await Dispatcher(db_url, conf, now=now, policy=policy).run(limit, stop_on_signals)


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
    stop_on_signals: bool = False,
) -> DispatchStats:
    """:func:`dispatch_pending` for callers without an event loop (CLI, sync flows).

    ``stop_on_signals``: SIGTERM/SIGINT finish the messages in flight and stop (the
    CLI; not inside Prefect, which handles those signals itself)."""
    return run_sync(dispatch_pending(db_url, settings, now, limit, policy, stop_on_signals))
