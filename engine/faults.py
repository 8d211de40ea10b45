"""Named kill points for the crash harness (tests/test_crash_harness.py).

A kill point is a place where a real process could die: just before and just after a
transaction commits, after an email left but before it was recorded, and so on. In
normal runs :func:`killpoint` is one dictionary lookup that finds nothing.

The harness arms one point in a forked child process with :func:`arm` (or through the
environment: ``KEHOACH_KILL_AT=phase:name@n`` kills the process at the n-th time it
reaches ``name`` during ``phase``) and the process dies with SIGKILL there: no
``finally`` block, no rollback, no flush — what a power cut or ``kill -9`` does.
:func:`trace` records every point reached, so the harness can choose its points from
what a full run actually passes through.
"""

from __future__ import annotations

import os
import signal
from collections import Counter
from collections.abc import Callable

_armed: tuple[str, str, int] | None = None
_action: Callable[[], None] | None = None
_phase = "-"
_hits: Counter[tuple[str, str]] = Counter()
_tracing = False


def _parse(spec: str) -> tuple[str, str, int]:
    where, _, count = spec.partition("@")
    phase, _, name = where.rpartition(":")
    return (phase or "*", name, int(count or "1"))


def arm(spec: str | None, action: Callable[[], None] | None = None) -> None:
    """Kill this process at ``phase:name@n`` (``None`` disarms). Hit counts restart.

    ``action``: call it there instead of killing (the outage tests restart PostgreSQL
    in the middle of a transaction this way); the point is disarmed first, so the
    action may arm the next one."""
    global _armed, _action
    _armed = _parse(spec) if spec else None
    _action = action
    _hits.clear()


def trace(enabled: bool = True) -> None:
    """Count every kill point reached (read them with :func:`reached`)."""
    global _tracing
    _tracing = enabled
    _hits.clear()


def reached() -> dict[tuple[str, str], int]:
    """``(phase, name) -> times reached`` since :func:`trace` or :func:`arm`."""
    return dict(_hits)


def phase(name: str) -> None:
    """Name the step the process is in (activation, dispatch, intake, …)."""
    global _phase
    _phase = name


def killpoint(name: str) -> None:
    """Die here (SIGKILL) when this point is armed; otherwise do nothing."""
    if _armed is None and not _tracing:
        return
    _hits[(_phase, name)] += 1
    if _armed is None:
        return
    want_phase, want_name, count = _armed
    if want_name != name or want_phase not in ("*", _phase):
        return
    seen = (
        _hits[(_phase, name)]
        if want_phase != "*"
        else sum(n for (_, point), n in _hits.items() if point == name)
    )
    if seen != count:
        return
    action = _action
    if action is None:
        os.kill(os.getpid(), signal.SIGKILL)
        return
    arm(None)
    action()


arm(os.environ.get("KEHOACH_KILL_AT") or None)
