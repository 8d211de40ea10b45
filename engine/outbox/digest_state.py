"""What a weekly digest says of the consolidating unit's own report: not drafted yet, a
draft, approved, signed, sent upward, or a supplement after a sent one; and where a
report that comes now goes (engine.consolidation.follow_up: a new draft while the duty's
due date has not passed, else a notice and, if the unit wants it, a supplementary
report; never into a report already sent)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.calendar import local_day
from engine.states import ReportApproval
from engine.store.models import ConsolidatedReport, Obligation
from engine.vntext import short_date


def _day(moment: dt.datetime | None) -> str | None:
    return short_date(local_day(moment)) if moment is not None else None


def _name(report: ConsolidatedReport, supplement: bool) -> str:
    what = "báo cáo tổng hợp bổ sung" if supplement else "báo cáo tổng hợp"
    if report.revision > 1:
        what += f" (lần {report.revision})"
    return what


def report_state(
    session: Session, duty: Obligation, today: dt.date, missing: int
) -> dict[str, Any]:
    """The duty's report as of ``today`` (one query): ``stage`` (none, draft, approved,
    signed, sent), ``line`` (one sentence with ``missing``, the units still owing) and
    ``after`` (what becomes of a report sent now); ``subject`` for the subject line."""
    revisions = session.scalars(
        select(ConsolidatedReport)
        .where(
            ConsolidatedReport.cycle_id == duty.cycle_id,
            ConsolidatedReport.consolidation_id == duty.deliverable_id,
        )
        .order_by(ConsolidatedReport.revision)
    ).all()
    owing = f"còn {missing} đơn vị chưa gửi báo cáo"
    due = short_date(duty.due_date)
    in_time = today <= duty.due_date
    if not revisions:
        return {
            "stage": "none",
            "subject": "",
            "line": f"Báo cáo tổng hợp chưa lập dự thảo (hạn gửi cấp trên {due}); {owing}.",
            "after": "",
        }
    newest = revisions[-1]
    sent = [r for r in revisions if r.approval is ReportApproval.SENT]
    earlier = next((r for r in reversed(sent) if r.id != newest.id), None)
    stage = newest.approval.value
    drafted = _day(newest.created_at)
    if newest.approval is ReportApproval.SENT:
        number = f" số {newest.number_text}" if newest.number_text else ""
        line = (
            f"{_name(newest, earlier is not None).capitalize()}{number} đã gửi cấp trên "
            f"ngày {_day(newest.sent_at)}; {owing}."
        )
        return {
            "stage": stage,
            "subject": f"đã gửi báo cáo tổng hợp {_day(newest.sent_at)}",
            "line": line,
            "after": _supplement_after(in_time, due, newest),
        }
    before = ""
    if earlier is not None:  # a supplement on its way after a sent report
        number = f" số {earlier.number_text}" if earlier.number_text else ""
        before = f"Báo cáo tổng hợp{number} đã gửi cấp trên ngày {_day(earlier.sent_at)}; "
    what = _name(newest, earlier is not None)
    if newest.approval is ReportApproval.APPROVED:
        step = (
            f"{what} đã duyệt, cấp số {newest.number_text} ngày {_day(newest.approved_at)}, chờ ký"
        )
    elif newest.approval is ReportApproval.SIGNED:
        step = f"{what} số {newest.number_text} đã ký ngày {_day(newest.signed_at)}, chờ gửi"
    else:
        step = f"dự thảo {what} đã lập ngày {drafted}, chờ duyệt"
    line = before + step if before else step[:1].upper() + step[1:]
    return {
        "stage": stage,
        "subject": f"dự thảo tổng hợp lập {drafted}"
        if newest.approval is ReportApproval.DRAFT
        else f"báo cáo tổng hợp {newest.approval.label.lower()}",
        "line": f"{line}; {owing}.",
        "after": _draft_after(in_time, due, newest, earlier is not None),
    }


def _draft_after(in_time: bool, due: str, report: ConsolidatedReport, supplement: bool) -> str:
    if in_time:
        again = (
            "; bản đã duyệt không còn dùng, phải duyệt lại"
            if report.approval is not ReportApproval.DRAFT
            else ""
        )
        return (
            f"Báo cáo các đơn vị gửi đến chậm nhất trong ngày {due} được hệ thống tổng hợp "
            f"và lập lại dự thảo (lần {report.revision + 1}){again}."
        )
    what = "báo cáo bổ sung" if supplement else "báo cáo tổng hợp"
    return (
        f"Hạn gửi cấp trên ({due}) đã qua: hệ thống không tự lập lại {what}; mỗi báo cáo "
        "gửi muộn được báo riêng để đơn vị quyết định có lập lại hay không."
    )


def _supplement_after(in_time: bool, due: str, report: ConsolidatedReport) -> str:
    head = (
        f"Báo cáo đơn vị gửi muộn không đưa vào báo cáo ngày {_day(report.sent_at)} đã gửi, "
        "mà được tổng hợp vào báo cáo bổ sung"
    )
    if in_time:
        return f"{head}: hệ thống tự lập dự thảo báo cáo bổ sung khi có báo cáo gửi đến."
    return (
        f"{head}: hạn gửi cấp trên ({due}) đã qua, mỗi báo cáo gửi muộn được báo riêng, "
        "đơn vị quyết định có gửi báo cáo bổ sung hay không."
    )
