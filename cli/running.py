"""Running a plan by hand: ``kehoach activate``, ``status``, ``review``, ``consolidate``,
``close`` and ``reopen``.  None needs Prefect: each calls the engine in one transaction
(the deployed flows call the same functions on their schedules)."""

from __future__ import annotations

import argparse
import datetime as dt
import os
import sys

from cli.common import database_url, err, out
from engine.calendar import TZ, local_day, start_of_day
from engine.clock import clock_from_env
from engine.errors import KehoachError
from engine.states import CycleStatus
from engine.store import migrate, session_scope
from engine.vntext import short_date


def _moment(args: argparse.Namespace) -> dt.datetime:
    """The start of ``--at`` (a date), else now (``KEHOACH_NOW`` or the real clock)."""
    at = getattr(args, "at", None)
    if at:
        return start_of_day(at)
    return clock_from_env().now()


def _by(args: argparse.Namespace) -> str:
    return getattr(args, "by", None) or os.environ.get("USER") or "admin"


def enter_demo_mode() -> None:
    """``kehoach demo`` and ``simulate``: demo mode (``KEHOACH_DEMO=1``) for this process
    and those it starts, so links are signed with the public demo key when no
    ``KEHOACH_PORTAL_SECRET`` is set; the warning is printed once, here."""
    from engine import config
    from engine.links import announce

    os.environ["KEHOACH_DEMO"] = "1"
    config.settings.cache_clear()
    announce(config.settings(), write=err)


# ---------------------------------------------------------------- activate / status


def cmd_activate(args: argparse.Namespace) -> int:
    """``kehoach activate PLAN [--year Y ...] [--at DATE]``: activate without Prefect (the
    deployed ``activate`` flow does the same on its schedule); idempotent."""
    from engine.lifecycle import activate

    url = database_url(args)
    migrate(url)
    now = _moment(args)
    with session_scope(url) as session:
        result = activate(session, args.plan, now=now, years=getattr(args, "years", None))
    out(
        f"{result.plan_id} v{result.plan_version}: {result.created} nghĩa vụ mới, "
        f"{result.existing} đã có, {result.units} đơn vị, kỳ {', '.join(result.cycles)}, "
        f"{result.queued} email giao nhiệm vụ"
        + (f", {result.notified} thư gửi kế hoạch tới Nơi nhận" if result.notified else "")
        + " xếp hàng (gửi: kehoach dispatch)"
    )
    for warning in result.warnings:
        out(f"  lưu ý: {warning}")
    from engine.ended import refuse_if_held

    refuse_if_held(result.held, f"kích hoạt {result.plan_id}")
    return 0


def _color(args: argparse.Namespace) -> bool:
    color = getattr(args, "color", None)
    if getattr(args, "no_color", False):
        color = False
    if color is None:
        color = sys.stdout.isatty() and "NO_COLOR" not in os.environ
    return bool(color)


def cmd_status(args: argparse.Namespace) -> int:
    """``kehoach status PLAN [--cycle YEAR] [--at DATE] [--wide]``: the four-state table.

    Without ``--at``: as the store stands, the days counted from today in Viet Nam (or
    ``KEHOACH_NOW``). With ``--at DATE``: as it stood at the end of DATE, rebuilt from
    the recorded times (engine.status_asof): a report sent, a return decided, a cycle
    closed or an obligation created after DATE does not count. 0 on success."""
    from sqlalchemy.exc import SQLAlchemyError

    from engine.repository import plan_version
    from engine.status import render_status, status_table
    from engine.unit_messages import message_lines

    url = database_url(args)
    cycle = getattr(args, "cycle", None)
    at = getattr(args, "at", None)
    today = at or clock_from_env().now().astimezone(TZ).date()
    as_of = start_of_day(at + dt.timedelta(days=1)) if at else None  # the end of DATE
    color = _color(args)
    try:
        with session_scope(url) as session:
            plan_version(session, args.plan)  # NotFound with a hint when unknown
            rows = status_table(
                session, args.plan, str(cycle) if cycle else None, today=today, as_of=as_of
            )
            notes = message_lines(session, args.plan, str(cycle) if cycle else None, as_of)
    except KehoachError as exc:
        print(f"kehoach status: {exc}", file=sys.stderr)
        return exc.exit_code
    except SQLAlchemyError as exc:  # the database is missing or not migrated
        print(
            f"kehoach status: không đọc được cơ sở dữ liệu ({type(exc).__name__}); "
            "chạy `kehoach load` trước hoặc kiểm tra KEHOACH_DATABASE_URL",
            file=sys.stderr,
        )
        return 1
    when = f"tính đến hết ngày {short_date(today)}" if at else f"ngày {short_date(today)}"
    if not rows:
        where = f" trong kỳ {cycle}" if cycle else ""
        hint = "" if at else f"; chạy `kehoach activate {args.plan}`"
        out(f"Kế hoạch '{args.plan}' chưa có nghĩa vụ nào{where} ({when}){hint}.")
        return 0
    out(f"{args.plan} — {when}")
    out(render_status(rows, color, wide=bool(getattr(args, "wide", False))))
    if notes:
        out("\n".join(["", *notes]))
    return 0


# ---------------------------------------------------------------- review


def cmd_review(args: argparse.Namespace) -> int:
    """``kehoach review SUBMISSION accept|return [--reason TEXT] [--by NAME]``."""
    from engine.config import settings
    from engine.lifecycle import review
    from notifications.dispatch import dispatch_pending_sync

    url = database_url(args)
    migrate(url)
    now = clock_from_env().now()
    with session_scope(url) as session:
        submission = review(
            session,
            int(args.submission),
            decision=args.decision,
            reason=getattr(args, "reason", None),
            by=getattr(args, "by", None) or "operator",
            now=now,
        )
        state, version = submission.review_state, submission.version
    out(f"submission {args.submission} (v{version}): {state}")
    try:
        stats = dispatch_pending_sync(url, settings(), now=now)
        out(f"emails: {stats.sent} sent")
    except Exception as exc:  # the email is queued; `kehoach dispatch` sends it later
        out(f"emails queued, not sent now ({exc}); run `kehoach dispatch`")
    return 0


# ---------------------------------------------------------------- consolidate


def cmd_consolidate(args: argparse.Namespace) -> int:
    """``kehoach consolidate PLAN --cycle KEY [--consolidation ID] [--revise]``."""
    from engine.closing import find_cycle
    from engine.consolidation import ConsolidationError, consolidate
    from engine.context import plan_context, version_of_cycle

    url = database_url(args)
    migrate(url)
    now = clock_from_env().now()
    cycle_key = str(args.cycle)
    revise = bool(getattr(args, "revise", False))
    lines: list[str] = []
    written = False
    with session_scope(url) as session:
        cycle = find_cycle(session, args.plan, cycle_key)
        plan = plan_context(session, version_of_cycle(session, cycle.id)).plan
        wanted = getattr(args, "consolidation", None)
        ids = [wanted] if wanted else [c.id for c in plan.consolidations]
        if not ids:
            raise ConsolidationError(f"plan '{args.plan}' has no consolidation to run")
        for consolidation_id in ids:
            result = consolidate(
                session, args.plan, cycle_key, consolidation_id, now=now, revise=revise
            )
            head = f"{args.plan} {cycle_key} {consolidation_id}: lần {result.revision}"
            day = short_date(local_day(result.report.created_at))
            if not result.created:
                why = (
                    "không có báo cáo nào gửi sau lần này; không lập lại"
                    if revise
                    else "đã tổng hợp; dùng --revise để lập báo cáo thay thế"
                )
                lines.append(f"{head} ngày {day} ({why}); {result.document_path}")
                continue
            written = True
            lines.append(f"{head} ngày {day}: {result.document_path}")
            lines += [f"  thay đổi: {c}" for c in result.changes]
            # a draft: it goes upward once approved, numbered, signed and sent
            lines.append(
                f"  dự thảo: chờ đơn vị tổng hợp duyệt, cấp số, ký và gửi "
                f"(kehoach report {args.plan} --cycle {cycle_key}, hoặc đường dẫn trong thư)"
            )
            lines += [f"  cảnh báo: {w}" for w in result.warnings]
    for line in lines:
        out(line)
    if written:
        out("thư báo cáo đã xếp hàng; gửi bằng `kehoach dispatch`")
    return 0


# ---------------------------------------------------------------- close / reopen


def cmd_close(args: argparse.Namespace) -> int:
    """``kehoach close PLAN --cycle KEY [--at DATE] [--force]``: close one cycle by hand."""
    from engine.closing import ClosingRefused, close_cycle, find_cycle

    url = database_url(args)
    migrate(url)
    now = _moment(args)
    with session_scope(url) as session:
        cycle = find_cycle(session, args.plan, str(args.cycle))
        if cycle.status is CycleStatus.CLOSED:
            raise ClosingRefused(
                f"Kỳ {cycle.key} của {args.plan} đã đóng / cycle {cycle.key} of {args.plan} is "
                f"already closed; `kehoach reopen {args.plan} --cycle {cycle.key} --until DATE "
                "--reason TEXT` reopens it"
            )
        result = close_cycle(
            session,
            cycle.id,
            now=now,
            by=_by(args),
            force=bool(getattr(args, "force", False)),
            reason=getattr(args, "reason", None),
        )
    out(result.summary())
    if result.intakes:
        out(f"tiếp nhận trước khi đóng: {len(result.intakes)} báo cáo")
    for m in result.missing:
        extra = " (bị trả lại, không nộp lại)" if m.returned else ""
        out(
            f"  không nộp: {m.unit_name} · {m.deliverable_title} "
            f"(hạn {short_date(m.due_date)}){extra}"
        )
    out(f"thư tổng kết đã xếp hàng: {len(result.emails)} (gửi bằng `kehoach dispatch`)")
    return 0


def cmd_reopen(args: argparse.Namespace) -> int:
    """``kehoach reopen PLAN --cycle KEY --until DATE --reason TEXT``."""
    from engine.closing import reopen_cycle

    url = database_url(args)
    migrate(url)
    until = args.until if isinstance(args.until, dt.date) else dt.date.fromisoformat(args.until)
    with session_scope(url) as session:
        cycle = reopen_cycle(
            session,
            args.plan,
            str(args.cycle),
            until=until,
            reason=args.reason,
            by=_by(args),
            now=clock_from_env().now(),
        )
        key, status = cycle.key, cycle.status
    out(
        f"{args.plan} kỳ {key} đã mở lại ({status}) đến hết ngày {short_date(until)}; "
        "đường dẫn cũ của các đơn vị dùng được đến ngày đó"
    )
    return 0
