"""``kehoach report``: the consolidating unit's steps on its consolidated report by hand.

``kehoach report PLAN --cycle KEY`` shows where the newest revision stands;
``… approve [--ket-qua TEXT …]`` saves the sections given and approves and numbers it;
``… sign FILE.pdf`` keeps the signed PDF; ``… send`` sends it upward and, when a
Prefect API is configured, puts it on Prefect's event feed as the approval flow does
(workflows.upward.announce_sent). Each step is engine.approval's, with its audit row.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from cli.common import database_url, out
from engine.clock import clock_from_env
from engine.store.db import migrate, session_scope


def _report_id(session: Any, plan_id: str, cycle_key: str, consolidation: str | None) -> int:
    from engine.consolidation.consolidate import cycle_and_version
    from engine.consolidation.document import newest_report
    from engine.context import plan_context
    from engine.errors import NotFound

    cycle, version = cycle_and_version(session, plan_id, cycle_key)
    ctx = plan_context(session, version)
    ids = [c.id for c in ctx.plan.consolidations]
    chosen = consolidation or (ids[0] if len(ids) == 1 else None)
    if chosen is None or chosen not in ids:
        raise NotFound(
            f"kế hoạch '{plan_id}' có các lần tổng hợp: {', '.join(ids) or 'không có'}; "
            "chọn một bằng --consolidation"
        )
    report = newest_report(session, cycle.id, chosen)
    if report is None:
        raise NotFound(f"kỳ {cycle_key} của '{plan_id}' chưa có báo cáo tổng hợp ({chosen})")
    return report.id


def cmd_report(args: argparse.Namespace) -> int:
    """``kehoach report PLAN [show|approve|sign FILE|send] --cycle KEY``."""
    from engine import approval
    from engine.config import settings
    from engine.register_numbers import retrying
    from engine.states import ReportApproval
    from engine.store.models import ConsolidatedReport
    from notifications.dispatch import dispatch_pending_sync

    url = database_url(args)
    migrate(url)
    now = clock_from_env().now()
    conf = settings()
    by = getattr(args, "by", None) or "operator"
    step = args.step or "show"
    with session_scope(url) as session:
        report_id = _report_id(session, args.plan, args.cycle, getattr(args, "consolidation", None))
    if step == "approve":
        texts = {k: getattr(args, k) for k in approval.SECTION_IDS if getattr(args, k)}

        def approving(session: Any) -> None:
            if texts:
                approval.save_narrative(session, report_id, texts, by=by, now=now)
            approval.approve(session, report_id, by=by, now=now, conf=conf)

        retrying(url, approving)  # the number: another approval at once may win it
    with session_scope(url) as session:
        if step == "sign":
            if not args.file:
                raise approval.ApprovalError("cần tệp PDF đã ký: kehoach report … sign FILE.pdf")
            path = Path(args.file)
            if not path.is_file():
                raise approval.ApprovalError(f"{path}: không có tệp này")
            approval.upload_signed(
                session, report_id, path.read_bytes(), name=path.name, by=by, now=now, conf=conf
            )
        elif step == "send":
            approval.send_upward(session, report_id, by=by, now=now, conf=conf)
        report = session.get(ConsolidatedReport, report_id)
        assert report is not None
        state = ReportApproval(report.approval)
        out(f"báo cáo tổng hợp lần {report.revision}: {state.label}")
        if report.number_text:
            out(f"  số: {report.number_text}")
        missing = [
            label for key, label in approval.SECTIONS if not (report.narrative or {}).get(key)
        ]
        if state is ReportApproval.DRAFT and missing:
            out(f"  chưa viết: {'; '.join(missing)}")
    if step == "send":
        _announce(url, report_id, now)
    if step != "show":
        try:
            stats = dispatch_pending_sync(url, conf, now=now)
            out(f"thư: đã gửi {stats.sent}")
        except Exception as exc:  # queued; `kehoach dispatch` sends it later
            out(f"thư đã xếp hàng, chưa gửi được ({exc}); chạy `kehoach dispatch`")
    return 0


def _announce(url: str, report_id: int, now: Any) -> None:
    """The report sent upward, on Prefect's event feed; a configured API that does not
    answer is said once (the report is sent all the same)."""
    from engine.config import prefect_api
    from workflows.common import iso
    from workflows.upward import announce_sent_outside_flow

    if prefect_api() is None:
        return  # no Prefect here: nothing to tell
    problem = announce_sent_outside_flow(url, report_id, iso(now))
    if problem:
        out(f"cảnh báo: chưa ghi được sự kiện gửi cấp trên vào Prefect ({problem})")
