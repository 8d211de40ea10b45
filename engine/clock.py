"""Injected time: the system clock in production, a virtual clock in simulations and tests.

Domain functions never read the wall clock; flows pass ``clock.now()`` in.  Every
clock returns timezone-aware UTC datetimes.
"""

from __future__ import annotations

import datetime as dt
import os
from typing import Protocol, runtime_checkable

ENV_VAR = "KEHOACH_NOW"


def _as_utc(moment: dt.datetime) -> dt.datetime:
    if moment.tzinfo is None:
        raise ValueError(f"naive datetime {moment.isoformat()}: give a timezone (e.g. +07:00)")
    return moment.astimezone(dt.UTC)


@runtime_checkable
class Clock(Protocol):
    def now(self) -> dt.datetime:
        """The current moment, timezone-aware, in UTC."""
        ...


class SystemClock:
    """The real clock."""

    def now(self) -> dt.datetime:
        return dt.datetime.now(dt.UTC)

    def __repr__(self) -> str:
        return "SystemClock()"


class VirtualClock:
    """A clock that only moves when told to (``set`` / ``advance``)."""

    def __init__(self, start: dt.datetime) -> None:
        self._now = _as_utc(start)

    def now(self) -> dt.datetime:
        return self._now

    def set(self, moment: dt.datetime) -> None:
        self._now = _as_utc(moment)

    def advance(self, delta: dt.timedelta) -> dt.datetime:
        self._now = self._now + delta
        return self._now

    def __repr__(self) -> str:
        return f"VirtualClock({self._now.isoformat()})"


def parse_moment(text: str) -> dt.datetime:
    """An ISO datetime; a bare date or a naive time is read in Asia/Ho_Chi_Minh."""
    from engine.calendar import TZ

    value = text.strip()
    try:
        moment = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(
            f"{ENV_VAR}='{text}' is not an ISO datetime; write e.g. 2027-09-10T08:00:00+07:00"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=TZ)
    return moment.astimezone(dt.UTC)


def clock_from_env(environ: dict[str, str] | None = None) -> Clock:
    """A VirtualClock fixed at ``KEHOACH_NOW`` when set, else the system clock."""
    env = os.environ if environ is None else environ
    raw = env.get(ENV_VAR, "").strip()
    if raw:
        return VirtualClock(parse_moment(raw))
    return SystemClock()
