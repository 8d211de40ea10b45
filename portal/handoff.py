"""Handing stored submissions to intake: the Prefect flow, or in-process as a fallback.

The submission row is committed before anything here runs, so nothing a unit sent
depends on Prefect. Hand-overs run on one background thread, off the request: the
unit's receipt page never waits for Prefect.

Batching. Near a deadline hundreds of units answer within minutes, and one flow run
per submission would cost a worker a process start each (1.5-3 s of CPU measured
here). So the thread hands over at once when it has been idle, and otherwise at most
once per ``batch_seconds`` (``KEHOACH_INTAKE_BATCH_SECONDS``, default 10): whatever
arrived meanwhile goes together, one intake flow run per plan
(``workflows.intake.trigger_intake(ids)``, deployment ``intake/<plan>``), at most
``max_batch`` (1,000) submissions a run. The unit's receipt page does not wait for
any of this; only the receipt email does.

Fallback. When no Prefect API is configured (``KEHOACH_PREFECT_API_URL``, else
``PREFECT_API_URL``), the configured one does not answer, or a run cannot
be created (no deployment), the portal runs ``engine.lifecycle.intake`` itself, in a
process of its own (spawned once; a thread here would share the GIL with the
requests; it exits when the portal is gone, :func:`die_with_parent`), for the batch
(the same idempotent step the flow runs), 20 per transaction, and records that in the
audit log; if a transaction fails, each of its submissions is tried alone, so one bad
row does not hold the others. What still fails waits with ``intake_done`` false for
the daily sweep (and for :meth:`Handoff.recover` at the next start).
"""

from __future__ import annotations

import datetime as dt
import logging
import multiprocessing
import os
import queue
import random
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import OperationalError

from engine.batches import in_chunks
from engine.clock import Clock
from engine.store.db import session_scope
from engine.store.models import Submission
from portal import audit
from portal.receipts import send_receipts
from portal.state import retryable
from portal.writes import writing

log = logging.getLogger("kehoach.portal")

ACTOR = "system:portal"
INTAKE_ATTEMPTS = 4
MAX_BATCH = 1000
PARENT_CHECK_SECONDS = 0.5  # how often the intake process checks that the portal lives
_STOP = object()


def _prefect_unreachable() -> tuple[str | None, str]:
    """(the configured Prefect API, or None; why the intake flow cannot be used now,
    or "" when it can).

    Exactly the configured API (``KEHOACH_PREFECT_API_URL``, else ``PREFECT_API_URL``),
    checked first (its health endpoint, 2 s): never Prefect's throw-away
    server inside the portal process, never another server that happens to answer.
    """
    from engine.config import prefect_api

    configured = prefect_api()
    if configured is None:
        return None, "PREFECT_API_URL is not set"
    api_url, origin = configured
    try:
        from workflows.server import api_problem
    except ImportError as exc:
        return api_url, f"workflows package unavailable ({exc})"
    # health only, once per batch: refused credentials fail the run's creation (401),
    # which falls back the same way and says so
    problem = api_problem(api_url, timeout=2.0, credentials=False)
    if problem is not None:
        return api_url, f"Prefect at {origin}={api_url} is not usable: {problem}"
    return api_url, ""


def _trigger(db_url: str, ids: Sequence[int]) -> dict[str, list[int]]:
    """Start one intake flow run per plan; returns {reason: ids} of those not started."""
    api_url, reason = _prefect_unreachable()
    if api_url is None or reason:
        return {reason: list(ids)}
    try:
        from workflows.intake import submissions_by_plan, trigger_intake
        from workflows.server import use_api
    except ImportError as exc:
        return {f"workflows.intake unavailable ({exc})": list(ids)}
    left: dict[str, list[int]] = {}
    groups = submissions_by_plan(db_url, ids)
    grouped = {i for group in groups.values() for i in group}
    unknown = [i for i in ids if i not in grouped]
    if unknown:
        left["submission not found"] = unknown
    for plan_id, group in groups.items():
        try:
            with use_api(api_url):  # the checked API, whatever Prefect read at import
                trigger_intake(group, database_url=db_url)
        except Exception as exc:  # deployment missing, API error, ...
            log.warning(
                "intake flow for %s (%d submissions) not started: %s", plan_id, len(group), exc
            )
            why = f"intake flow not started: {type(exc).__name__}: {exc}"[:500]
            left.setdefault(why, []).extend(group)
    return left


def die_with_parent(parent_pid: int, every: float = PARENT_CHECK_SECONDS) -> None:
    """In the intake process: exit as soon as the portal that started it is gone.

    A portal killed outright (SIGKILL, the OOM killer) cannot stop it, and the process
    lived on, idle, holding its database connections. Its parent's pid is checked every
    ``every`` seconds on a daemon thread (portable; Linux's PR_SET_PDEATHSIG fires when
    the *thread* that started the process ends, here the hand-over thread, not the
    portal).
    """

    def watch() -> None:
        while os.getppid() == parent_pid:
            time.sleep(every)
        os._exit(0)

    if os.getppid() != parent_pid:  # gone already, before this process got here
        os._exit(0)
    threading.Thread(target=watch, name="kehoach-parent-watch", daemon=True).start()


InlineRunner = Callable[[str, Sequence[int], dt.datetime, str], tuple[list[int], list[int]]]


def hand_over(
    db_url: str,
    clock: Clock,
    submission_ids: int | Sequence[int],
    use_flow: bool = True,
    inline: InlineRunner | None = None,
) -> dict[str, list[int]]:
    """Hand submissions over; returns {'flow'|'inline'|'failed': ids}.

    ``inline`` runs the fallback intake of a chunk (default: :func:`take_in_here` in
    this thread; :class:`Handoff` passes its intake process)."""
    ids = [submission_ids] if isinstance(submission_ids, int) else list(submission_ids)
    run_inline = inline or take_in_here
    outcome: dict[str, list[int]] = {"flow": [], "inline": [], "failed": []}
    left = _trigger(db_url, ids) if use_flow else {"intake flow disabled for this portal": ids}
    not_started = {i for group in left.values() for i in group}
    outcome["flow"] = [i for i in ids if i not in not_started]
    now = clock.now()
    for reason, group in left.items():
        done, failed = run_inline(db_url, group, now, reason)
        outcome["inline"] += done
        outcome["failed"] += failed
    return outcome


def take_in_here(
    db_url: str, ids: Sequence[int], now: dt.datetime, reason: str
) -> tuple[list[int], list[int]]:
    """Intake in this process, ``engine.batches.in_chunks`` of 20 per transaction.

    Returns (taken in, failed); failures are logged and audited.
    """
    done, failed = in_chunks(
        ids,
        lambda chunk: _intake_with_retries(db_url, chunk, now, reason),
        sqlite=db_url.startswith("sqlite"),
    )
    for sid, error in failed.items():
        log.error("intake of submission %s failed: %s", sid, error)
        _audit_failure(db_url, sid, now, error)
    send_receipts(db_url, done, now)  # the flow sends its own; here nobody else would
    return done, list(failed)


def _intake_with_retries(
    db_url: str, ids: Sequence[int], now: dt.datetime, reason: str
) -> list[int]:
    """engine.lifecycle.intake plus an audit row each, in one transaction; retried on a lock."""
    from engine.lifecycle import intake

    for attempt in range(1, INTAKE_ATTEMPTS + 1):
        try:
            with writing(db_url) as session:
                for sid in ids:
                    result = intake(session, sid, now=now)
                    audit.record(
                        session,
                        "portal.intake_inline",
                        at=now,
                        actor=ACTOR,
                        remote_addr=None,
                        obligation_id=result.obligation_id,
                        plan_id=result.plan_id,
                        submission_id=sid,
                        reason=reason,
                        batch=len(ids),
                    )
            return list(ids)
        except OperationalError as exc:
            if attempt == INTAKE_ATTEMPTS or not retryable(exc):
                raise
            time.sleep(random.uniform(0.02, 0.1) * attempt)
    raise AssertionError("unreachable")


def _audit_failure(db_url: str, submission_id: int, now: dt.datetime, error: str) -> None:
    try:
        with writing(db_url) as session:
            audit.record(
                session,
                "portal.intake_failed",
                at=now,
                actor=ACTOR,
                remote_addr=None,
                submission_id=submission_id,
                error=error,
            )
    except Exception:
        log.exception("could not audit the failed intake of submission %s", submission_id)


class Handoff:
    """Hands submissions over in batches on one background thread.

    ``handoff(submission_id)`` only queues (the request returns at once); ``wait()``
    blocks until everything queued so far is handed over (tests, shutdown).
    """

    def __init__(
        self,
        db_url: str,
        clock: Clock,
        use_flow: bool = True,
        batch_seconds: float = 10.0,
        max_batch: int = MAX_BATCH,
    ) -> None:
        self.db_url = db_url
        self.clock = clock
        self.use_flow = use_flow
        self.batch_seconds = max(0.0, batch_seconds)
        self.max_batch = max(1, max_batch)
        self.batches: list[dict[str, list[int]]] = []  # the last outcomes (newest last)
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._outstanding = 0
        self._idle = threading.Condition()
        self._thread: threading.Thread | None = None
        self._start_lock = threading.Lock()
        self._process: ProcessPoolExecutor | None = None  # the fallback intake's process

    def __call__(self, submission_id: int) -> None:
        with self._idle:
            self._outstanding += 1
        self._ensure_thread()
        self._queue.put(submission_id)

    def _ensure_thread(self) -> None:
        with self._start_lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(
                    target=self._run, name="kehoach-intake", daemon=True
                )
                self._thread.start()

    def _run(self) -> None:
        last = float("-inf")
        stopping = False
        while not stopping:
            first = self._queue.get()
            if first is _STOP:
                return
            batch = [first]
            # Idle for a while: hand over at once. Else wait out the interval, collecting.
            until = last + self.batch_seconds
            while len(batch) < self.max_batch:
                timeout = until - time.monotonic()
                try:
                    item = (
                        self._queue.get(timeout=timeout)
                        if timeout > 0
                        else self._queue.get_nowait()
                    )
                except queue.Empty:
                    break
                if item is _STOP:
                    stopping = True
                    break
                batch.append(item)
            last = time.monotonic()
            try:
                outcome = hand_over(self.db_url, self.clock, batch, self.use_flow, self._inline)
                self.batches = [*self.batches[-99:], outcome]
            except Exception:  # never lose the thread: the sweep takes these in later
                log.exception("hand-over of submissions %s failed", batch)
            finally:
                with self._idle:
                    self._outstanding -= len(batch)
                    self._idle.notify_all()

    def wait(self, timeout: float = 30.0) -> None:
        """Block until every submission queued so far is handed over."""
        deadline = time.monotonic() + timeout
        with self._idle:
            while self._outstanding > 0:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"{self._outstanding} submission(s) still being handed over")
                self._idle.wait(left)

    def _inline(
        self, db_url: str, ids: Sequence[int], now: dt.datetime, reason: str
    ) -> tuple[list[int], list[int]]:
        """The fallback intake of a chunk, in the intake process.

        Not in a thread of this one: intake is CPU-bound Python, and sharing the GIL
        with it made the requests wait seconds under a burst. If the process breaks,
        this chunk is taken in here and a new process is started next time.
        """
        try:
            return self._intake_process().submit(take_in_here, db_url, ids, now, reason).result()
        except BrokenProcessPool:
            log.warning("the intake process broke; taking %d submission(s) in here", len(ids))
            self._process = None
            return take_in_here(db_url, ids, now, reason)

    def _intake_process(self) -> ProcessPoolExecutor:
        with self._start_lock:
            if self._process is None:
                # spawn, not fork: this process has threads (uvicorn's, this one)
                self._process = ProcessPoolExecutor(
                    max_workers=1,
                    mp_context=multiprocessing.get_context("spawn"),
                    initializer=die_with_parent,
                    initargs=(os.getpid(),),
                )
            return self._process

    def warm_up(self) -> None:
        """Import the Prefect side before requests come: about 1.5 s of CPU, which at the
        first hand-over would stall every request thread of this process on the GIL for
        as long. (The intake process starts at its first use: its imports run there.)"""
        from engine.config import prefect_api

        if not self.use_flow or prefect_api() is None:
            return
        try:
            import prefect.deployments  # noqa: F401

            import workflows.intake  # noqa: F401
        except ImportError as exc:
            log.warning("intake flow unavailable (%s): intake will run in this process", exc)

    def recover(self) -> int:
        """Hand over portal submissions a crash left without intake; returns how many."""
        with session_scope(self.db_url) as session:
            ids = list(
                session.scalars(
                    select(Submission.id)
                    .where(Submission.source == "portal", Submission.intake_done.is_(False))
                    .order_by(Submission.id)
                )
            )
        for submission_id in ids:
            self(submission_id)
        return len(ids)

    def shutdown(self, timeout: float = 30.0) -> None:
        """Hand over what is queued, then stop the thread and the intake process."""
        thread = self._thread
        if thread is not None and thread.is_alive():
            self._queue.put(_STOP)
            thread.join(timeout)
        if self._process is not None:
            self._process.shutdown(wait=True)
            self._process = None
