"""The dispatch step every flow ends with: send the emails its state changes queued.

The outbox rows were committed with the change that caused them; this step only
delivers what is due at the flow's ``now`` (``notifications.dispatch``).  A crash
here loses nothing: the next flow (or the dispatch deployment) sends what is left.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from prefect import flow

from engine.config import settings
from workflows.common import database, iso, resolve_now
from workflows.tasks import kehoach_task


def send_due_now(database_url: str, moment: dt.datetime) -> dict[str, Any]:
    """One dispatcher pass at ``moment``; returns its statistics."""
    from notifications.dispatch import dispatch_pending_sync

    stats = dispatch_pending_sync(database_url, settings(), now=moment)
    return stats.as_dict()


@kehoach_task("send-emails", retry=False, task_run_name="gửi email đến hạn")
def send_emails(database_url: str, now: str) -> dict[str, Any]:
    return send_due_now(database_url, resolve_now(now))


@flow(name="dispatch", flow_run_name="gửi email · {now}", persist_result=False)
def dispatch_flow(now: str | None = None, database_url: str | None = None) -> dict[str, Any]:
    """Send every due outbox row (also scheduled on its own, for retries)."""
    moment = resolve_now(now)
    return send_emails(database(database_url), iso(moment))
