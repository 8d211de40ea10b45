"""The Prefect flow that runs the dispatcher and shows its outcome in the UI.

The only module of ``notifications`` that imports Prefect: the outbox, the
templates and the dispatcher stay usable from the CLI and tests without it.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from prefect import flow, task
from prefect.artifacts import acreate_markdown_artifact, acreate_table_artifact
from prefect.cache_policies import NO_CACHE
from prefect.runtime import flow_run

from engine.config import settings as default_settings
from engine.outbox import describe_row, list_outbox
from engine.states import OutboxStatus
from engine.store.db import session_scope
from notifications.dispatch import DispatchStats, dispatch_pending

FAILURES_KEY = "outbox-failures"
SUMMARY_KEY = "outbox-summary"
FAILURE_COLUMNS = ("id", "kind", "unit", "unit_name", "to", "attempts", "smtp_code", "last_error")


def _run_name() -> str:
    now = flow_run.parameters.get("now")
    when = now if now is not None else dt.datetime.now(dt.UTC)
    if isinstance(when, dt.datetime):
        when = when.strftime("%Y-%m-%d %H:%M")
    return f"dispatch outbox {when}"


# NO_CACHE: sending is a side effect; a cached result would skip a due email.
@task(task_run_name="send due emails", cache_policy=NO_CACHE)
async def send_due(database_url: str, now: dt.datetime | None, limit: int | None) -> DispatchStats:
    # Settings are read here, not passed in: they hold the SMTP password.
    return await dispatch_pending(database_url, default_settings(), now=now, limit=limit)


def failed_messages(database_url: str, limit: int = 200) -> list[dict[str, Any]]:
    """The newest permanently failed messages, as table rows."""
    with session_scope(database_url) as session:
        rows = list_outbox(session, status=OutboxStatus.FAILED, limit=limit)
        return [{k: describe_row(r)[k] for k in FAILURE_COLUMNS} for r in rows]


def summary_markdown(stats: DispatchStats, failed: list[dict[str, Any]]) -> str:
    lines = [
        "# Outbox dispatch",
        "",
        "| sent | retried | failed | claimed | connections | seconds |",
        "| ---: | ---: | ---: | ---: | ---: | ---: |",
        f"| {stats.sent} | {stats.retried} | {stats.failed} | {stats.claimed} "
        f"| {stats.connections} | {stats.seconds} |",
    ]
    if stats.held:
        lines += [
            "",
            f"Waiting for working hours: **{stats.held}** message(s), "
            f"sent from {stats.window_opens} (`KEHOACH_MAIL_HOURS`).",
        ]
    if stats.errors:
        lines += ["", "## Errors in this run", ""]
        lines += [f"- `{e.replace('`', chr(39))}`" for e in stats.errors]
    lines += [
        "",
        f"Messages failed for good (all runs): **{len(failed)}** "
        f"(artifact `{FAILURES_KEY}`, or `kehoach outbox --status failed`).",
    ]
    return "\n".join(lines)


@flow(name="dispatch-outbox", flow_run_name=_run_name, log_prints=True)
async def dispatch_outbox(
    now: dt.datetime | None = None,
    limit: int | None = None,
    database_url: str | None = None,
) -> dict[str, Any]:
    """Send every due outbox message once; publish failures and a summary."""
    url = database_url or default_settings().database
    stats = await send_due(url, now, limit)
    failed = failed_messages(url)
    await acreate_table_artifact(
        key=FAILURES_KEY,
        table=failed or [dict.fromkeys(FAILURE_COLUMNS, "")],
        description=f"{len(failed)} message(s) failed permanently (5xx or gave up).",
    )
    await acreate_markdown_artifact(
        key=SUMMARY_KEY,
        markdown=summary_markdown(stats, failed),
        description="Outcome of the last outbox dispatch.",
    )
    print(
        f"sent {stats.sent}, retried {stats.retried}, failed {stats.failed} "
        f"(claimed {stats.claimed} in {stats.seconds} s)"
    )
    return stats.as_dict()
