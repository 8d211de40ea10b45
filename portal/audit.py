"""Audit events for portal actions: who (the link's unit), what, which link, from where.

The link is recorded by a hash, never the token itself: the audit log is read by
more people than the units, and a token in it would open the obligation. Refused
requests are audited through :class:`RefusalAudit`, which bounds their rows per
address.
"""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.orm import Session

from engine.audit_chain import append
from portal.ratelimit import Limiter


def record(
    session: Session,
    action: str,
    *,
    at: dt.datetime,
    actor: str,
    remote_addr: str | None,
    link_hash: str | None = None,
    obligation_id: int | None = None,
    plan_id: str | None = None,
    **data: Any,
) -> None:
    """Write one audit row in the caller's transaction (queued without ORM work, chained
    at commit in the order written: engine.audit_chain)."""
    if link_hash:
        data["link"] = link_hash
    append(
        session,
        at=at,
        actor=actor,
        action=action,
        plan_id=plan_id,
        obligation_id=obligation_id,
        remote_addr=remote_addr,
        data=data,
    )


SUPPRESSED = "portal.audit_suppressed"
ACTOR = "system:portal"


@dataclass
class _Suppressed:
    """Refusal rows of one address not written since its last written one."""

    count: int
    first: dt.datetime
    last: dt.datetime
    since: float  # monotonic time of the first
    actions: dict[str, int] = field(default_factory=dict)


class RefusalAudit:
    """Audit rows of refused requests (bad CSRF field, refused link, replay, rejected
    answer), at most ``limiter``'s rate per client address.

    One address once wrote 136 rows in 0.8 s with a bad CSRF field. The rows over the
    limit are counted, not written; the count goes into one ``portal.audit_suppressed``
    row (how many, which actions, first and last) before the address's next written
    row, at the next refusal from anyone once a minute has passed, or when the portal
    stops (:meth:`flush`). Counts are in memory: a killed process loses them.
    """

    WINDOW_SECONDS = 60.0
    MAX_PENDING = 10_000  # addresses with a count; beyond it every count is written

    def __init__(
        self,
        limiter: Limiter,
        writing: Callable[[], AbstractContextManager[Session]],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.limiter = limiter
        self._writing = writing
        self._clock = clock
        self._lock = threading.Lock()
        self._pending: dict[str, _Suppressed] = {}

    def record(self, action: str, *, at: dt.datetime, remote_addr: str, **row: Any) -> bool:
        """Write the refusal's row (and the counts due), or count it; True when written."""
        allowed = self.limiter.allow(remote_addr)
        with self._lock:
            if not allowed:
                self._count(action, at, remote_addr)
            due = self._due(remote_addr if allowed else None)
        if not allowed and not due:
            return False
        with self._writing() as session:
            for addr, suppressed in due:
                _write_count(session, addr, suppressed, at)
            if allowed:
                record(session, action, at=at, remote_addr=remote_addr, **row)
        return allowed

    def flush(self, at: dt.datetime) -> int:
        """Write every count now (the portal is stopping); returns how many rows."""
        with self._lock:
            due = list(self._pending.items())
            self._pending.clear()
        if due:
            with self._writing() as session:
                for addr, suppressed in due:
                    _write_count(session, addr, suppressed, at)
        return len(due)

    def _count(self, action: str, at: dt.datetime, addr: str) -> None:
        entry = self._pending.get(addr)
        if entry is None:
            entry = self._pending[addr] = _Suppressed(0, at, at, self._clock())
        entry.count += 1
        entry.last = at
        entry.actions[action] = entry.actions.get(action, 0) + 1

    def _due(self, addr: str | None) -> list[tuple[str, _Suppressed]]:
        """Counts to write now: ``addr``'s, and those older than the window (all when
        too many addresses have one)."""
        now = self._clock()
        keys = [
            key
            for key, entry in self._pending.items()
            if key == addr
            or now - entry.since >= self.WINDOW_SECONDS
            or len(self._pending) > self.MAX_PENDING
        ]
        return [(key, self._pending.pop(key)) for key in keys]


def _write_count(session: Session, addr: str, suppressed: _Suppressed, at: dt.datetime) -> None:
    record(
        session,
        SUPPRESSED,
        at=at,
        actor=ACTOR,
        remote_addr=addr,
        suppressed=suppressed.count,
        actions=suppressed.actions,
        first=suppressed.first.isoformat(),
        last=suppressed.last.isoformat(),
    )
