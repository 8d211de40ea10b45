"""The operator's window: keyed status tables and markdown in the Prefect UI.

``status-<plan>-<cycle>`` holds every obligation of the cycle in the Government's four
states, worst first (overdue and unanswered, answered late, still within the deadline,
on time), in four short Vietnamese columns that fit the UI at 1280 px
(:data:`TABLE_COLUMNS`), times in Viet Nam time with the offset in the header;
``summary-<plan>-<cycle>`` says the same in a page an operator reads in seconds, with
every detail the table leaves out (whole names, what is due, the due date): the late
and missing units first, by name; ``report-<plan>-<cycle>`` is the consolidated
report.  Keys are slugs (Prefect accepts lowercase letters, digits and dashes only);
each publication is a new version of the keyed artifact, so the history of a cycle
stays visible.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections import Counter
from collections.abc import Sequence
from typing import Any

from prefect.artifacts import create_markdown_artifact, create_table_artifact

from engine.calendar import TZ
from engine.states import ReviewState
from engine.status import (
    WORST_FIRST,
    State,
    StatusRow,
    counts,
    cut,
    local_time,
    status_table,
    worst_first,
)
from engine.store.db import session_scope
from engine.vntext import short_date
from workflows.common import cycle_label, report_key, slug, status_key
from workflows.events import events_url

log = logging.getLogger("kehoach.workflows")

# A table artifact is one JSON document (the server refuses events over ~1.5 MB): for
# a cycle with more obligations than this, the table lists the worst first up to the
# limit and the description carries the counts.
MAX_TABLE_ROWS = 1000
# The summary names at most this many units per state; the table holds the rest.
MAX_NAMED = 200


def summary_key(plan_id: str, cycle_key: str) -> str:
    return slug(f"summary-{plan_id}-{cycle_key}")


def _note(row: StatusRow) -> str:
    parts = []
    if row.state is State.DONE_LATE and row.days_late:
        parts.append(f"trễ {row.days_late} ngày")
    if row.state is State.OPEN_OVERDUE and row.days_late:
        parts.append(f"quá hạn {row.days_late} ngày")
    if row.state is State.OPEN_WITHIN and row.days_left is not None:
        parts.append("hôm nay là hạn" if row.days_left == 0 else f"còn {row.days_left} ngày")
    if row.review_state is ReviewState.RETURNED:
        parts.append("bị trả lại, chưa gửi lại")
    if row.transferred_from:
        parts.append(f"tiếp nhận từ {row.transferred_from_name or row.transferred_from}")
    if row.cycle_closed and not row.state.done:
        parts.append("không nộp, kỳ đã đóng")
    return "; ".join(parts)


def status_rows(database_url: str, plan_id: str, cycle_key: str, today: dt.date) -> list[Any]:
    with session_scope(database_url) as session:
        rows = status_table(session, plan_id, cycle_key, today=today)
    return [r for r in rows if r.cycle_key == cycle_key]


# The short words of the headlines (the table and the sections use the state labels).
_SHORT = {
    State.OPEN_OVERDUE: "quá hạn, chưa gửi",
    State.DONE_LATE: "trễ hạn",
    State.OPEN_WITHIN: "chưa gửi, còn hạn",
    State.DONE_ON_TIME: "đúng hạn",
}
_NAMED_IN_HEADLINE = 5


def _tally_text(rows: Sequence[StatusRow]) -> str:
    """'1 quá hạn, chưa gửi · 1 trễ hạn · 31 đúng hạn' (states with none left out)."""
    tally = counts(list(rows))
    return " · ".join(f"{tally[s]} {_SHORT[s]}" for s in WORST_FIRST if tally[s]) or "0"


def _headline(rows: Sequence[StatusRow]) -> str:
    """Who is overdue and who was late, by name: what an operator looks for first."""
    parts = []
    for state in (State.OPEN_OVERDUE, State.DONE_LATE):
        names = list(dict.fromkeys(r.unit_name for r in rows if r.state is state))
        if not names:
            continue
        shown = ", ".join(names[:_NAMED_IN_HEADLINE])
        extra = len(names) - _NAMED_IN_HEADLINE
        more = f" và {extra} đơn vị khác" if extra > 0 else ""
        parts.append(f"{_SHORT[state].capitalize()} ({len(names)}): {shown}{more}")
    return " · ".join(parts) if parts else "Không đơn vị nào quá hạn hay trễ hạn"


# The status table's columns and the characters each may take. Prefect's UI (V2, its
# default) gives a table artifact 582 px of a 1280 px window, beside the artifact's
# details; its 14 px font takes ~7 px a character, its cells 16 px of padding: 73
# characters in all (the V1 UI gives 724 px). Seven columns took 1,606 px, cutting
# "Hạn" and "Ghi chú" (measured with scripts/prefect-ui-shots.py). What is cut here
# is whole in the summary artifact.
NOTE_COLUMN = "Ghi chú (+07:00)"
TABLE_COLUMNS = {"Trạng thái": 10, "Đơn vị": 22, "Nội dung": 19, NOTE_COLUMN: 22}
# The four states in a word each (the description and the summary spell them out)
STATE_WORDS = {
    State.OPEN_OVERDUE: "Quá hạn",
    State.DONE_LATE: "Trễ hạn",
    State.OPEN_WITHIN: "Còn hạn",
    State.DONE_ON_TIME: "Đúng hạn",
}
# The names every list of units repeats, as documents abbreviate them.
_ABBREVIATED = (
    ("Ủy ban Mặt trận Tổ quốc Việt Nam", "UBMTTQ"),
    ("Ủy ban nhân dân", "UBND"),
    ("Hội đồng nhân dân", "HĐND"),
    ("Hội Cựu chiến binh", "Hội CCB"),
    ("Hội Liên hiệp Phụ nữ", "Hội LHPN"),
    ("Đoàn Thanh niên Cộng sản Hồ Chí Minh", "Đoàn TNCS HCM"),
)


def _short_unit(name: str) -> str:
    for long, short in _ABBREVIATED:
        name = name.replace(long, short)
    return name


def _sent(row: StatusRow) -> str:
    """'14/9 09:00' in Viet Nam time (the year too when not the due date's)."""
    if row.submitted_at is None:
        return ""
    local = row.submitted_at.astimezone(TZ)
    day = f"{local.day}/{local.month}" + (
        f"/{local.year}" if local.year != row.due_date.year else ""
    )
    return f"{day} {local:%H:%M}"


def _short_note(row: StatusRow) -> str:
    """When it was sent, then the days (the status says late or overdue), returned,
    whose work it took over; cut from the end (the summary artifact has it all)."""
    parts = [_sent(row)]
    days = row.days_late if row.state in (State.DONE_LATE, State.OPEN_OVERDUE) else None
    if days:
        parts.append(f"{'trễ' if row.state is State.DONE_LATE else 'quá'} {days} ngày")
    if row.state is State.OPEN_WITHIN and row.days_left is not None:
        parts.append("hôm nay là hạn" if row.days_left == 0 else f"còn {row.days_left} ngày")
    if row.review_state is ReviewState.RETURNED:
        parts.append("trả lại")
    if row.cycle_closed and not row.state.done:
        parts.append("kỳ đã đóng")
    if row.transferred_from:
        parts.append(f"từ {_short_unit(row.transferred_from_name or row.transferred_from)}")
    return ", ".join(p for p in parts if p)


def table_rows(rows: Sequence[StatusRow]) -> list[dict[str, str]]:
    """The status table as the UI shows it: status first, worst first, Vietnamese, each
    value within its column's characters (:data:`TABLE_COLUMNS`)."""
    return [_table_row(r) for r in rows]


def _table_row(r: StatusRow) -> dict[str, str]:
    what = r.deliverable_short or r.deliverable_title
    values = (STATE_WORDS[r.state], _short_unit(r.unit_name), what, _short_note(r))
    return {h: cut(v, n) for (h, n), v in zip(TABLE_COLUMNS.items(), values, strict=True)}


def publish_status(
    database_url: str, plan_id: str, cycle_key: str, today: dt.date
) -> dict[str, int]:
    """Publish ``status-<plan>-<cycle>`` and ``summary-<plan>-<cycle>``; return the count
    per state."""
    rows = worst_first(status_rows(database_url, plan_id, cycle_key, today))
    tally = {state.value: n for state, n in counts(rows).items()}
    if not rows:
        return tally
    title, reference = plan_title(database_url, plan_id)
    where = f"{title}, {cycle_label(cycle_key)} · ngày {short_date(today)}"
    description = f"{_tally_text(rows)} — {where}"
    shown = rows[:MAX_TABLE_ROWS]
    if len(shown) < len(rows):
        description += f" (bảng: {len(shown)}/{len(rows)} dòng, quá hạn và trễ hạn trước)"
    try:  # the store has the truth; the artifacts are a view
        create_table_artifact(
            key=status_key(plan_id, cycle_key), table=table_rows(shown), description=description
        )
        create_markdown_artifact(
            key=summary_key(plan_id, cycle_key),
            markdown=summary_markdown(rows, plan_id, cycle_key, today, (title, reference))
            + _messages_markdown(database_url, plan_id, cycle_key),
            description=f"{_headline(rows)} — {where}",
        )
    except Exception as exc:
        log.warning("status artifacts for %s %s not published: %s", plan_id, cycle_key, exc)
    return tally


def plan_title(database_url: str, plan_id: str) -> tuple[str, str]:
    """How an operator knows the plan: its short name ("Kế hoạch PCCC") and its
    reference with the trích yếu; the plan's id when it is not stored."""
    from engine.outbox.context import plan_info
    from engine.repository import current_plan

    with session_scope(database_url) as session:
        plan = current_plan(session, plan_id)
    if plan is None:
        return plan_id, ""
    info = plan_info(plan)
    summary = f": {info['summary']}" if info["summary"] else ""
    return info["short"], f"{info['ref']}{summary}"


def _ui_base() -> str:
    """The V2 UI's address, for links in artifacts (relative when Prefect has none)."""
    try:
        from prefect.settings import get_current_settings

        ui = get_current_settings().ui_url
    except Exception:  # settings unreadable: a link within the UI still works
        ui = None
    return f"{str(ui).rstrip('/')}/v2" if ui else "/v2"


def _messages_markdown(database_url: str, plan_id: str, cycle_key: str) -> str:
    """The units' own reports and comments of the cycle (engine.unit_messages), if any."""
    from engine.unit_messages import message_lines

    with session_scope(database_url) as session:
        lines = message_lines(session, plan_id, cycle_key)
    if not lines:
        return ""
    return (
        "\n\n## " + lines[0] + "\n\n" + "\n".join(f"- {_cell(x.strip())}" for x in lines[1:]) + "\n"
    )


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _section(state: State, rows: Sequence[StatusRow]) -> list[str]:
    members = [r for r in rows if r.state is state]
    if not members:
        return []
    out = ["", f"## {state.label}: {len(members)}", ""]
    if state is State.DONE_ON_TIME:  # the good news, in one paragraph, each unit once
        times = Counter(r.unit_name for r in members)
        units = list(times)
        names = [n if times[n] == 1 else f"{n} ({times[n]} nội dung)" for n in units[:MAX_NAMED]]
        more = len(units) - len(names)
        return [*out, ", ".join(names) + (f" và {more} đơn vị khác." if more else ".")]
    sent = state.done
    out.append("| Đơn vị | Nội dung | Hạn | " + ("Đã gửi lúc | " if sent else "") + "Ghi chú |")
    out.append("|---|---|---|" + ("---|" if sent else "") + "---|")
    for r in members[:MAX_NAMED]:
        when = f"{local_time(r.submitted_at) if r.submitted_at else ''} | " if sent else ""
        cells = f"| **{_cell(r.unit_name)}** | {_cell(r.deliverable_title)} | "
        out.append(f"{cells}{short_date(r.due_date)} | {when}{_cell(_note(r))} |")
    if len(members) > MAX_NAMED:
        out.append(f"\n… và {len(members) - MAX_NAMED} đơn vị khác (xem bảng trạng thái).")
    return out


def summary_markdown(
    rows: Sequence[StatusRow],
    plan_id: str,
    cycle_key: str,
    today: dt.date,
    title: tuple[str, str] | None = None,
) -> str:
    """The plan by its name (``title``: :func:`plan_title`) and a link to the cycle's
    events; who is late and who has not answered, first, by name; then who is still
    within the deadline; then, in one paragraph, who answered on time."""
    rows = list(rows)
    name, reference = title or (plan_id, "")
    link = events_url(_ui_base(), plan_id, cycle_key)
    lines = [
        f"# {_cell(name)}, {cycle_label(cycle_key)}",
        "",
        *([_cell(reference), ""] if reference else []),
        f"Mã kế hoạch `{plan_id}` · [Sự kiện của kỳ này]({link})",
        "",
        f"Tình hình ngày {short_date(today)} (giờ Việt Nam, +07:00): {len(rows)} nghĩa vụ, "
        f"{_tally_text(rows)}.",
        "",
        f"**{_headline(rows)}**",
    ]
    for state in WORST_FIRST:
        lines += _section(state, rows)
    return "\n".join(lines) + "\n"


def publish_report(plan_id: str, cycle_key: str, markdown: str, description: str) -> None:
    try:
        create_markdown_artifact(
            key=report_key(plan_id, cycle_key), markdown=markdown, description=description
        )
    except Exception as exc:
        log.warning("report artifact for %s %s not published: %s", plan_id, cycle_key, exc)
