"""The options every kehoach task shares, in one place.

Every task reads or changes the store at the moment it runs, so Prefect never caches
one (``NO_CACHE``) and never persists its result (the store is the record).  Tasks
doing database work retry twice, a second apart: a transient error (a locked SQLite
file, a dropped connection) should not fail a flow whose step is idempotent.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from prefect import task
from prefect.cache_policies import NO_CACHE

RETRIES = 2
RETRY_DELAY_SECONDS = 1


def kehoach_task(name: str, *, retry: bool = True, **options: Any) -> Callable[[Any], Any]:
    """``@task`` with kehoach's options; ``retry=False`` for steps that only record or that
    handle failures themselves. Other options (``task_run_name``, ``log_prints``) pass on."""
    if retry:
        options = {"retries": RETRIES, "retry_delay_seconds": RETRY_DELAY_SECONDS, **options}
    return task(name=name, cache_policy=NO_CACHE, persist_result=False, **options)
