"""Taking many submissions in without holding SQLite's write lock for long.

Intake of a batch (the portal's hand-over, the intake flow) runs ``CHUNK`` submissions
per transaction. On SQLite it then pauses as long as the chunk took (at most
``MAX_GAP`` seconds) before taking the lock again: SQLite's busy handler polls, and a
writer that takes the lock straight back starved the portal's writes for seconds
(docs/DECISIONS.md). A chunk that fails is tried again one submission at a time, so
one bad row does not hold the others back.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import TypeVar

T = TypeVar("T")

CHUNK = 20
MAX_GAP = 0.2  # seconds


def in_chunks(
    ids: Sequence[int],
    take: Callable[[list[int]], list[T]],
    *,
    sqlite: bool,
    chunk: int = CHUNK,
) -> tuple[list[T], dict[int, str]]:
    """``take(chunk)`` over ``ids``; returns (everything taken, {id: error} of failures).

    ``take`` runs one transaction and raises when it fails (nothing of it is kept).
    """
    done: list[T] = []
    failed: dict[int, str] = {}
    began = time.monotonic()
    for start in range(0, len(ids), chunk):
        if start and sqlite:
            time.sleep(min(time.monotonic() - began, MAX_GAP))
        began = time.monotonic()
        part = list(ids[start : start + chunk])
        try:
            done += take(part)
            continue
        except Exception as exc:
            if len(part) == 1:  # already alone: that is its failure
                failed[part[0]] = f"{type(exc).__name__}: {exc}"[:500]
                continue
        for sid in part:
            try:
                done += take([sid])
            except Exception as exc:
                failed[sid] = f"{type(exc).__name__}: {exc}"[:500]
    return done, failed
