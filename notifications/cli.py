"""``kehoach outbox`` and ``kehoach dispatch``: functions that engine/cli.py wires in.

Both take an ``argparse.Namespace`` and return an exit code; attributes they read
(all optional): ``status``, ``kind``, ``limit``, ``database_url``, ``now``.
Exit codes follow engine/cli.py: 0 done (messages that failed for good are listed
and escalated to the administrator, not an error of the command); 1 a configuration
problem (one line on stderr, no traceback).
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys

from engine.config import settings as default_settings
from engine.outbox import describe_row, list_outbox
from engine.states import OutboxStatus
from engine.store.db import migrate, session_scope

STATUSES = tuple(OutboxStatus)


def add_outbox_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``kehoach outbox`` (for the CLI to call on its subparser)."""
    parser.add_argument("--status", choices=STATUSES, help="only rows in this status")
    parser.add_argument("--kind", help="only this kind (assignment, reminder, ...)")
    parser.add_argument("--limit", type=int, default=50, help="newest N rows (default 50)")


def add_dispatch_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``kehoach dispatch``."""
    parser.add_argument("--limit", type=int, default=None, help="send at most N messages")
    parser.add_argument(
        "--now", default=None, help="virtual time, ISO 8601 (default: the real time)"
    )


def _database(args: argparse.Namespace) -> str:
    return getattr(args, "database_url", None) or default_settings().database


def _parse_now(value: object) -> dt.datetime | None:
    if value is None or isinstance(value, dt.datetime):
        return value
    parsed = dt.datetime.fromisoformat(str(value))
    if parsed.tzinfo is None:
        from zoneinfo import ZoneInfo

        from engine.config import TIMEZONE

        parsed = parsed.replace(tzinfo=ZoneInfo(TIMEZONE))
    return parsed


def _cut(text: str, width: int) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= width else text[: width - 1] + "…"


def cmd_outbox(args: argparse.Namespace) -> int:
    """Print outbox rows: status, kind, unit, recipients, attempts, last error."""
    url = _database(args)
    migrate(url)
    with session_scope(url) as session:
        rows = [
            describe_row(r)
            for r in list_outbox(
                session,
                status=getattr(args, "status", None),
                kind=getattr(args, "kind", None),
                limit=getattr(args, "limit", None) or 50,
            )
        ]
    if not rows:
        what = f" with status {args.status}" if getattr(args, "status", None) else ""
        print(f"outbox: no messages{what}")
        return 0
    header = ("ID", "STATUS", "KIND", "UNIT", "TO", "TRIES", "LAST ERROR")
    table = [
        (
            str(r["id"]),
            r["status"],
            r["kind"],
            _cut(r["unit"], 24),
            _cut(r["to"], 36),
            str(r["attempts"]),
            _cut(r["last_error"], 60),
        )
        for r in rows
    ]
    widths = [max(len(h), *(len(row[i]) for row in table)) for i, h in enumerate(header)]
    for line in (header, *table):
        print("  ".join(cell.ljust(widths[i]) for i, cell in enumerate(line)).rstrip())
    return 0


def cmd_dispatch(args: argparse.Namespace) -> int:
    """Send every due message once and print what happened."""
    from notifications.dispatch import dispatch_pending_sync

    try:
        now = _parse_now(getattr(args, "now", None))
    except ValueError:
        print(f"dispatch: --now {args.now!r} is not an ISO 8601 time", file=sys.stderr)
        return 1
    url = _database(args)
    migrate(url)
    try:
        stats = dispatch_pending_sync(url, now=now, limit=getattr(args, "limit", None))
    except ValueError as exc:  # e.g. smtp_security misspelt
        print(f"dispatch: {exc}", file=sys.stderr)
        return 1
    print(
        f"dispatch: sent {stats.sent}, retried {stats.retried}, failed {stats.failed}"
        f" (claimed {stats.claimed} in {stats.seconds:.2f} s)"
    )
    for error in stats.errors[:5]:
        print(f"  error: {_cut(error, 120)}")
    if stats.failed:
        print("  see: kehoach outbox --status failed")
    return 0
