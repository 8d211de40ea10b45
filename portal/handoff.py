"""Handing a stored submission to intake: the Prefect flow, or in-process as a fallback.

The submission row is committed before anything here runs, so nothing a unit sent
depends on Prefect. ``workflows.intake.trigger_intake(submission_id)`` creates the
intake flow run (deployment ``intake/<plan>``) for a worker; when ``PREFECT_API_URL``
is unset, Prefect does not answer, or the run cannot be created (no deployment), the
portal runs ``engine.lifecycle.intake`` itself (the same idempotent step the flow
runs) and records that in the audit log. Handoffs run on a small thread pool, off
the request: the unit's receipt page never waits for Prefect.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import inspect
import logging
import os
import random
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import OperationalError

from engine.clock import Clock
from engine.store.db import session_scope
from engine.store.models import Submission
from portal import audit
from portal.state import retryable
from portal.writes import writing

log = logging.getLogger("kehoach.portal")

ACTOR = "system:portal"
INTAKE_ATTEMPTS = 4


def _trigger(db_url: str, submission_id: int) -> str | None:
    """Start the intake flow run; None when started, else why not.

    Only with ``PREFECT_API_URL`` set and answering: without it Prefect would start a
    throw-away server inside the portal process, which is not what anyone wants.
    """
    api_url = os.environ.get("PREFECT_API_URL", "").strip()
    if not api_url:
        return "PREFECT_API_URL is not set"
    try:
        from workflows.server import healthy
    except ImportError as exc:
        return f"workflows package unavailable ({exc})"
    if not healthy(api_url, timeout=2.0):
        return f"Prefect does not answer at {api_url}"
    try:
        from workflows.intake import trigger_intake
    except ImportError as exc:
        return f"workflows.intake.trigger_intake unavailable ({exc})"
    try:
        result = trigger_intake(submission_id, database_url=db_url)
        if inspect.isawaitable(result):
            asyncio.run(result)  # type: ignore[arg-type]
    except Exception as exc:  # deployment missing, API error, ...
        log.warning("intake flow for submission %s not started: %s", submission_id, exc)
        return f"intake flow not started: {type(exc).__name__}: {exc}"[:500]
    return None


def hand_over(db_url: str, clock: Clock, submission_id: int, use_flow: bool = True) -> str:
    """'flow', 'inline' or 'failed' (then the submission waits, intake_done false)."""
    reason = _trigger(db_url, submission_id) if use_flow else "intake flow disabled for this portal"
    if reason is None:
        return "flow"
    now = clock.now()
    try:
        _intake_with_retries(db_url, submission_id, now, reason)
        return "inline"
    except Exception as exc:
        log.exception("intake of submission %s failed", submission_id)
        _audit_failure(db_url, submission_id, now, exc)
        return "failed"


def _intake_with_retries(db_url: str, submission_id: int, now: dt.datetime, reason: str) -> Any:
    """engine.lifecycle.intake plus the audit row, in one transaction; retried on a lock."""
    from engine.lifecycle import intake

    for attempt in range(1, INTAKE_ATTEMPTS + 1):
        try:
            with writing(db_url) as session:
                result = intake(session, submission_id, now=now)
                audit.record(
                    session,
                    "portal.intake_inline",
                    at=now,
                    actor=ACTOR,
                    remote_addr=None,
                    obligation_id=result.obligation_id,
                    plan_id=result.plan_id,
                    submission_id=submission_id,
                    reason=reason,
                )
            return result
        except OperationalError as exc:
            if attempt == INTAKE_ATTEMPTS or not retryable(exc):
                raise
            time.sleep(random.uniform(0.02, 0.1) * attempt)
    raise AssertionError("unreachable")


def _audit_failure(db_url: str, submission_id: int, now: dt.datetime, exc: Exception) -> None:
    try:
        with writing(db_url) as session:
            audit.record(
                session,
                "portal.intake_failed",
                at=now,
                actor=ACTOR,
                remote_addr=None,
                submission_id=submission_id,
                error=f"{type(exc).__name__}: {exc}"[:500],
            )
    except Exception:
        log.exception("could not audit the failed intake of submission %s", submission_id)


class Handoff:
    """Runs hand_over off the request thread; ``wait()`` drains it (tests, shutdown)."""

    def __init__(self, db_url: str, clock: Clock, workers: int = 2, use_flow: bool = True) -> None:
        self.db_url = db_url
        self.clock = clock
        self.use_flow = use_flow
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="kehoach-intake")
        self._pending: set[Future[str]] = set()
        self._lock = threading.Lock()

    def __call__(self, submission_id: int) -> None:
        future = self._pool.submit(hand_over, self.db_url, self.clock, submission_id, self.use_flow)
        with self._lock:
            self._pending.add(future)
        future.add_done_callback(self._done)

    def _done(self, future: Future[str]) -> None:
        with self._lock:
            self._pending.discard(future)

    def wait(self, timeout: float = 30.0) -> None:
        with self._lock:
            pending = list(self._pending)
        for future in pending:
            future.result(timeout=timeout)

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

    def shutdown(self) -> None:
        self._pool.shutdown(wait=True)
