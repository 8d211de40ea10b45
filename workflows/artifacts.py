"""The operator's window: keyed status tables and report markdown in the Prefect UI.

``status-<plan>-<cycle>`` holds every obligation of the cycle in the Government's
four states; ``report-<plan>-<cycle>`` the consolidated report.  Keys are slugs
(Prefect accepts lowercase letters, digits and dashes only); each publication is a
new version of the keyed artifact, so the history of a cycle stays visible.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

from prefect.artifacts import create_markdown_artifact, create_table_artifact

from engine.status import State, counts, status_table
from engine.store.db import session_scope
from engine.vntext import short_date
from workflows.common import cycle_label, report_key, status_key

log = logging.getLogger("kehoach.workflows")

# A table artifact is one JSON document (the server refuses events over ~1.5 MB): for
# a cycle with more obligations than this, the table lists the exceptions only (late
# and overdue, then the rest up to the limit) and the description carries the counts.
MAX_TABLE_ROWS = 1000


def _note(row: Any) -> str:
    if row.state is State.DONE_LATE and row.days_late:
        return f"trễ {row.days_late} ngày"
    if row.state is State.OPEN_OVERDUE and row.days_late:
        return f"quá hạn {row.days_late} ngày"
    if row.state is State.OPEN_WITHIN and row.days_left is not None:
        return f"còn {row.days_left} ngày"
    return ""


def status_rows(database_url: str, plan_id: str, cycle_key: str, today: dt.date) -> list[Any]:
    with session_scope(database_url) as session:
        rows = status_table(session, plan_id, cycle_key, today=today)
    return [r for r in rows if r.cycle_key == cycle_key]


def publish_status(
    database_url: str, plan_id: str, cycle_key: str, today: dt.date
) -> dict[str, int]:
    """Publish ``status-<plan>-<cycle>``; return the count per state."""
    rows = status_rows(database_url, plan_id, cycle_key, today)
    tally = {state.value: n for state, n in counts(rows).items()}
    summary = ", ".join(f"{state.label}: {n}" for state, n in counts(rows).items())
    description = (
        f"Trạng thái {plan_id} · {cycle_label(cycle_key)} ngày {short_date(today)} — {summary}"
    )
    shown = rows
    if len(rows) > MAX_TABLE_ROWS:
        order = {
            State.OPEN_OVERDUE: 0,
            State.DONE_LATE: 1,
            State.OPEN_WITHIN: 2,
            State.DONE_ON_TIME: 3,
        }
        shown = sorted(rows, key=lambda r: order[r.state])[:MAX_TABLE_ROWS]
        description += f" (bảng: {len(shown)}/{len(rows)} dòng, ưu tiên quá hạn và trễ hạn)"
    table = [
        {
            "Đơn vị": r.unit_name,
            "Nội dung": r.deliverable_title,
            "Hạn": short_date(r.due_date),
            "Trạng thái": r.state.label,
            "Ghi chú": _note(r),
            "Nộp lúc": r.submitted_at.isoformat(timespec="minutes") if r.submitted_at else "",
            "Duyệt": r.review_state or "",
            "state": r.state.value,
            "unit_id": r.unit_id,
            "obligation_id": r.obligation_id,
        }
        for r in shown
    ]
    if not table:
        return tally
    try:
        create_table_artifact(
            key=status_key(plan_id, cycle_key), table=table, description=description
        )
    except Exception as exc:  # the store has the truth; the artifact is a view
        log.warning("status artifact for %s %s not published: %s", plan_id, cycle_key, exc)
    return tally


def publish_report(plan_id: str, cycle_key: str, markdown: str, description: str) -> None:
    try:
        create_markdown_artifact(
            key=report_key(plan_id, cycle_key), markdown=markdown, description=description
        )
    except Exception as exc:
        log.warning("report artifact for %s %s not published: %s", plan_id, cycle_key, exc)
