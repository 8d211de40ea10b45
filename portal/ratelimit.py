"""Token-bucket rate limits, in memory.

A link's buckets are its obligation's (every link and spelling that opens one
obligation shares them), next to the buckets of the client address.

The buckets live in this process: with several portal processes behind a proxy,
each enforces the limits on its own share of the traffic, so the effective limit is
the per-process limit times the number of processes. That is good enough against a
runaway script or a scanner; a shared store would be needed for exact global limits.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Rate:
    """``per_second`` tokens refill continuously up to ``burst``."""

    per_second: float
    burst: float


@dataclass(frozen=True)
class PortalLimits:
    """The portal's limits; the defaults suit a person clicking, not a script."""

    per_address: Rate = Rate(20.0, 120.0)  # every request from one client address
    link_read: Rate = Rate(2.0, 60.0)  # GETs of one obligation's links
    link_write: Rate = Rate(0.2, 10.0)  # POSTs on one obligation's links: 10, then one per 5 s
    address_write: Rate = Rate(2.0, 60.0)  # POSTs from one client address, any link
    link_request_address: Rate = Rate(1 / 60, 5.0)  # fresh-link requests per address
    operator_auth_failures: Rate = Rate(1 / 30, 10.0)  # failed Basic logins per address
    # audit rows of refused requests per address: 10, then one per 6 s (the rest counted)
    refusal_audit: Rate = Rate(1 / 6, 10.0)
    max_keys: int = 50_000  # buckets kept per limiter before old ones are dropped


class Limiter:
    """One bucket per key (a client address, a link hash); thread-safe."""

    def __init__(self, rate: Rate, max_keys: int = 50_000, clock=time.monotonic) -> None:
        self.rate = rate
        self.max_keys = max_keys
        self._clock = clock
        self._lock = threading.Lock()
        self._buckets: dict[str, tuple[float, float]] = {}  # key -> (tokens, last refill)

    def allow(self, key: str, cost: float = 1.0) -> bool:
        now = self._clock()
        with self._lock:
            tokens, last = self._buckets.get(key, (self.rate.burst, now))
            tokens = min(self.rate.burst, tokens + (now - last) * self.rate.per_second)
            allowed = tokens >= cost
            if allowed:
                tokens -= cost
            self._buckets[key] = (tokens, now)
            if len(self._buckets) > self.max_keys:
                self._prune(now)
            return allowed

    def exhausted(self, key: str) -> bool:
        """True when ``key`` has no token left right now (nothing is consumed)."""
        now = self._clock()
        with self._lock:
            tokens, last = self._buckets.get(key, (self.rate.burst, now))
            return min(self.rate.burst, tokens + (now - last) * self.rate.per_second) < 1.0

    def _prune(self, now: float) -> None:
        """Drop buckets that have refilled completely (they carry no state)."""
        full_after = self.rate.burst / self.rate.per_second if self.rate.per_second else 0.0
        for key, (_, last) in list(self._buckets.items()):
            if now - last >= full_after:
                del self._buckets[key]
        while len(self._buckets) > self.max_keys:  # still too many: forget the oldest
            del self._buckets[next(iter(self._buckets))]


@dataclass
class Limiters:
    limits: PortalLimits
    per_address: Limiter = field(init=False)
    link_read: Limiter = field(init=False)
    link_write: Limiter = field(init=False)
    address_write: Limiter = field(init=False)
    link_request_address: Limiter = field(init=False)
    operator_auth_failures: Limiter = field(init=False)
    refusal_audit: Limiter = field(init=False)

    def __post_init__(self) -> None:
        n = self.limits.max_keys
        self.per_address = Limiter(self.limits.per_address, n)
        self.link_read = Limiter(self.limits.link_read, n)
        self.link_write = Limiter(self.limits.link_write, n)
        self.address_write = Limiter(self.limits.address_write, n)
        self.link_request_address = Limiter(self.limits.link_request_address, n)
        self.operator_auth_failures = Limiter(self.limits.operator_auth_failures, n)
        self.refusal_audit = Limiter(self.limits.refusal_audit, n)
