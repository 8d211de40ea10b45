"""``kehoach request PLAN DELIVERABLE --due DATE [--units … | --group …] --reason TEXT``:
a report on request (đột xuất) as one new cycle, without Prefect (the ``request``
deployment runs the same function with typed parameters from the Prefect UI)."""

from __future__ import annotations

import argparse
import os

from cli.common import database_url, out
from engine.clock import clock_from_env
from engine.store import migrate, session_scope
from engine.vntext import date_with_weekday


def cmd_request(args: argparse.Namespace) -> int:
    from engine.requests_adhoc import request_report

    url = database_url(args)
    migrate(url)
    units = [u.strip() for part in args.units or [] for u in part.split(",") if u.strip()]
    with session_scope(url) as session:
        result = request_report(
            session,
            args.plan,
            args.deliverable,
            due=args.due,
            reason=args.reason,
            units=units or None,
            group=args.group,
            now=clock_from_env().now(),
            by=args.by or os.environ.get("USER") or "operator",
        )
    out(
        f"{result.plan_id}: yêu cầu '{result.deliverable_id}' — kỳ {result.cycle_key} "
        f"({result.label}), hạn {date_with_weekday(result.due)}"
    )
    if result.due_reason:
        out(f"  lý do đổi hạn: {result.due_reason}")
    out(f"  {len(result.units)} đơn vị được yêu cầu, {result.queued} thư đã xếp hàng gửi")
    if result.consolidations:
        out(f"  tổng hợp: {', '.join(result.consolidations)}")
    out(f"  theo dõi: kehoach status {result.plan_id} --cycle {result.cycle_key}")
    return 0
