"""``kehoach outbox`` and ``kehoach dispatch``; ``python -m cli.mailbox``.

Exit codes: 0 done (messages that failed for good are listed and escalated to the
administrator, not an error of the command); 1 a configuration problem (one line on
stderr, no traceback).  Nothing here imports Prefect.
"""

from __future__ import annotations

import argparse
import datetime as dt
import signal
import sys
import threading
from pathlib import Path

from cli.common import database_url
from engine.store.db import migrate, session_scope


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
    from engine.outbox import describe_row, list_outbox

    url = database_url(args)
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
        what = (
            f" ở trạng thái {_status_label(args.status)}" if getattr(args, "status", None) else ""
        )
        print(f"Hộp thư đi: không có thư nào{what}")
        return 0
    header = ("Mã", "Trạng thái", "Loại", "Đơn vị", "Người nhận", "Lần", "Lỗi gần nhất")
    kinds = _kind_labels()
    table = [
        (
            str(r["id"]),
            _status_label(r["status"]),
            kinds.get(str(r["kind"]), str(r["kind"])),
            _cut(r["unit"], 24),
            _cut(r["to"], 30),
            str(r["attempts"]),
            _cut(r["last_error"], 50),
        )
        for r in rows
    ]
    widths = [max(len(h), *(len(row[i]) for row in table)) for i, h in enumerate(header)]
    for line in (header, *table):
        print("  ".join(cell.ljust(widths[i]) for i, cell in enumerate(line)).rstrip())
    return 0


def _kind_labels() -> dict[str, str]:
    """What ``kehoach outbox`` calls each kind of email (a kind not listed: its value)."""
    from engine.outbox.kinds import MailKind as K

    return {
        K.ASSIGNMENT: "Giao nhiệm vụ",
        K.TASK_SUPPORT: "Phối hợp thực hiện nhiệm vụ",
        K.REMINDER: "Nhắc hạn",
        K.OVERDUE: "Quá hạn",
        K.ESCALATION: "Báo cáo lãnh đạo",
        K.RECEIPT: "Biên nhận",
        K.RETURNED: "Trả lại",
        K.CONSOLIDATED: "Báo cáo tổng hợp",
        K.DIGEST: "Tổng hợp tuần",
        K.CYCLE_CLOSED: "Đóng kỳ",
        K.REPORT_AFTER_CONSOLIDATION: "Báo cáo sau tổng hợp",
        K.DELIVERY_FAILURE: "Báo lỗi gửi thư",
        K.INHERITED: "Tiếp nhận việc kế thừa",
        K.PLAN_NOTICE: "Gửi kế hoạch (Nơi nhận)",
        K.UNIT_MESSAGE: "Ý kiến, báo cáo chủ động",
        K.REPORT_DRAFT: "Dự thảo báo cáo tổng hợp",
        K.TASK_CONTRIBUTION: "Ý kiến phối hợp",
    }


def _status_label(value: object) -> str:
    from engine.states import OutboxStatus

    try:
        return OutboxStatus(str(value)).label
    except ValueError:
        return str(value)


def cmd_dispatch(args: argparse.Namespace) -> int:
    """Send every due message once and print what happened."""
    from notifications.dispatch import dispatch_pending_sync

    try:
        now = _parse_now(getattr(args, "now", None))
    except ValueError:
        print(f"dispatch: --now {args.now!r} is not an ISO 8601 time", file=sys.stderr)
        return 1
    url = database_url(args)
    migrate(url)
    try:
        stats = dispatch_pending_sync(
            url, now=now, limit=getattr(args, "limit", None), stop_on_signals=True
        )
    except ValueError as exc:  # e.g. smtp_security misspelt
        print(f"dispatch: {exc}", file=sys.stderr)
        return 1
    print(
        f"dispatch: sent {stats.sent}, retried {stats.retried}, failed {stats.failed}"
        f" (claimed {stats.claimed} in {stats.seconds:.2f} s)"
    )
    for error in stats.errors[:5]:
        print(f"  error: {_cut(error, 120)}")
    if stats.held:
        print(f"  {stats.held} thư chờ giờ làm việc, sẽ gửi từ {stats.window_opens}")
    if stats.failed:
        print("  see: kehoach outbox --status failed")
    return 0


# ---------------------------------------------------------------- python -m cli.mailbox


def mailbox_main(argv: list[str] | None = None) -> int:
    """``python -m cli.mailbox [--dir DIR] [--host H] [--port P]``: the local
    mailbox in the foreground until SIGINT or SIGTERM."""
    from notifications.mailbox import start_mailbox_server

    parser = argparse.ArgumentParser(
        prog="python -m cli.mailbox",
        description="Local SMTP server that writes every message to a folder as .eml files.",
    )
    parser.add_argument("--dir", default="var/mailbox", help="folder for .eml files")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8025)
    args = parser.parse_args(argv)
    try:
        server = start_mailbox_server(args.dir, args.host, args.port)
    except (OSError, RuntimeError) as exc:
        print(f"mailbox: cannot listen on {args.host}:{args.port}: {exc}", file=sys.stderr)
        return 2
    print(f"mailbox: listening on {args.host}:{args.port}, writing to {Path(args.dir).resolve()}")
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    stop.wait()
    server.stop()
    print(f"mailbox: stopped after {server.received} message(s)")
    return 0
