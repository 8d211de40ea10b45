"""Obligation status in the Government's four states, for artifacts, reports and the terminal.

The Prime Minister's office tracks assigned tasks as: done on time, done late, not
done but within the deadline, not done and overdue.  Provincial systems colour them
green / orange / red; the terminal table does the same.
"""

from __future__ import annotations

import datetime as dt
import textwrap
import unicodedata
from dataclasses import asdict, dataclass
from typing import Any, NamedTuple

from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.calendar import TZ
from engine.registry import RegistryView
from engine.repository import plan_definition, registry_for_plan_version
from engine.schema import Plan
from engine.states import CycleStatus, InstanceStatus, ObligationStatus, ReviewState, State
from engine.status_asof import History, ObligationAsOf
from engine.store.arrays import one_of
from engine.store.models import Cycle, Obligation, PlanInstance, PlanVersion, Submission
from engine.vntext import cycle_label, short_date

KIND_LABELS = {"sub_plan": "Kế hoạch", "report": "Báo cáo", "consolidation": "Tổng hợp"}


@dataclass(frozen=True)
class StatusRow:
    obligation_id: int
    plan_id: str
    cycle_key: str
    unit_id: str
    unit_name: str
    deliverable_id: str
    deliverable_title: str
    kind: str  # sub_plan | report | consolidation
    nominal_date: dt.date
    due_date: dt.date
    state: State
    days_late: int | None  # for done-late and overdue rows
    days_left: int | None  # for rows still within the deadline
    review_state: ReviewState | None  # of the newest submission, None when nothing was sent
    version: int | None
    submitted_at: dt.datetime | None
    obligation_status: ObligationStatus
    transferred_from: str | None
    transferred_from_name: str | None = None
    cycle_status: CycleStatus = CycleStatus.OPEN
    deliverable_short: str = ""  # the short title, when the plan gives one

    @property
    def cycle_closed(self) -> bool:
        return self.cycle_status == CycleStatus.CLOSED

    def as_dict(self) -> dict[str, Any]:
        """JSON-friendly (for ConsolidatedReport.status_table and Prefect table artifacts)."""
        data = asdict(self)
        data["state"] = self.state.value
        data["state_label"] = self.state.label
        data["nominal_date"] = self.nominal_date.isoformat()
        data["due_date"] = self.due_date.isoformat()
        data["submitted_at"] = self.submitted_at.isoformat() if self.submitted_at else None
        return data


def classify(
    obligation_status: ObligationStatus | str,
    on_time: bool | None,
    due_date: dt.date,
    submitted_at: dt.datetime | None,
    today: dt.date,
) -> tuple[State, int | None, int | None]:
    """(state, days_late, days_left) of one obligation as of ``today``."""
    if ObligationStatus(obligation_status).done:
        if on_time is False:
            late = (submitted_at.astimezone(TZ).date() - due_date).days if submitted_at else None
            return State.DONE_LATE, max(late or 0, 1) if late is not None else None, None
        return State.DONE_ON_TIME, None, None
    if due_date >= today:
        return State.OPEN_WITHIN, None, (due_date - today).days
    return State.OPEN_OVERDUE, (today - due_date).days, None


def _titles(plan: Plan) -> dict[str, str]:
    titles = {d.id: d.title for d in plan.all_deliverables}
    for c in plan.consolidations:
        fed = plan.deliverable(c.consolidates)
        titles[c.id] = "Báo cáo tổng hợp" + (f": {fed.title}" if fed else "")
    return titles


def _short_titles(plan: Plan) -> dict[str, str]:
    """The titles a narrow table gives: the deliverable's ``short_title`` (a task's is
    its own name, not "Báo cáo kết quả thực hiện nhiệm vụ: …"), "Báo cáo tổng hợp"."""
    shorts = {d.id: d.short_title for d in plan.all_deliverables if d.short_title}
    shorts.update({c.id: "Báo cáo tổng hợp" for c in plan.consolidations})
    return shorts


def _order(plan: Plan) -> dict[str, int]:
    ids = [d.id for d in plan.all_deliverables] + [c.id for c in plan.consolidations]
    return {ident: index for index, ident in enumerate(ids)}


def _matches(key: str, cycle_key: str) -> bool:
    return key == cycle_key or key.startswith(f"{cycle_key}-")


def status_table(
    session: Session,
    plan_id: str,
    cycle_key: str | None = None,
    *,
    today: dt.date,
    deliverable_id: str | None = None,
    as_of: dt.datetime | None = None,
) -> list[StatusRow]:
    """Every obligation of the plan's active instances (one cycle, a year's cycles, or all).

    ``cycle_key`` "2027" also matches "2027-Q1", "2027-03"…; "once" the one-off cycle.
    Rows are ordered by cycle, deliverable (as the plan lists them) and registry order.
    ``as_of`` (a moment, exclusive) rebuilds every row as it stood then
    (``engine.status_asof``): nothing recorded at or after it counts.
    """
    rows: list[StatusRow] = []
    keys: dict[int, tuple[Any, ...]] = {}
    for instance, version in _active_instances(session, plan_id):
        names = _InstanceNames.read(session, version)
        found = _obligations(session, instance.id, cycle_key, deliverable_id)
        seen = _as_seen(session, plan_id, found, as_of)
        for obligation, cycle in found:
            if obligation.id not in seen:
                continue
            row_seen, cycle_status = seen[obligation.id]
            row = _status_row(plan_id, obligation, cycle.key, cycle_status, row_seen, names, today)
            rows.append(row)
            keys[row.obligation_id] = names.sort_key(row, instance.id)
    rows.sort(key=lambda r: keys[r.obligation_id])
    return rows


def _as_seen(
    session: Session,
    plan_id: str,
    found: list[tuple[Obligation, Cycle]],
    as_of: dt.datetime | None,
) -> dict[int, tuple[ObligationAsOf, CycleStatus]]:
    """Each obligation's row and its cycle's status, now or rebuilt as of ``as_of``
    (obligations created at or after ``as_of`` are left out)."""
    if as_of is None:
        latest = _latest_submissions(session, [o.id for o, _ in found])
        return {o.id: (_current(o, latest.get(o.id)), cycle.status) for o, cycle in found}
    history = History.read(session, plan_id, [o.id for o, _ in found], as_of)
    return {
        o.id: (history.obligation(o), history.cycle_status(cycle.id, cycle.consolidated_at))
        for o, cycle in found
        if history.existed(o)
    }


def _current(obligation: Obligation, sub: _Newest | None) -> ObligationAsOf:
    return ObligationAsOf(
        status=obligation.status,
        unit_id=obligation.unit_id,
        submitted_at=obligation.submitted_at,
        on_time=obligation.on_time,
        transferred_from=obligation.transferred_from,
        review_state=sub.review_state if sub else None,
        version=sub.version if sub else None,
    )


def _active_instances(session: Session, plan_id: str) -> list[Any]:
    """(instance, version) of the plan's active instances, oldest first."""
    return list(
        session.execute(
            select(PlanInstance, PlanVersion)
            .join(PlanVersion, PlanInstance.plan_version_id == PlanVersion.id)
            .where(PlanInstance.plan_id == plan_id, PlanInstance.status == InstanceStatus.ACTIVE)
            .order_by(PlanInstance.id)
        ).all()
    )


@dataclass(frozen=True)
class _InstanceNames:
    """What one instance's plan version and registry say about its rows: names (as the
    units were named on a day, engine.registry_asof), titles and the orders (the plan's
    deliverables, the registry's units) the table is sorted by."""

    view: RegistryView
    unit_position: dict[str, int]
    titles: dict[str, str]
    order: dict[str, int]
    short_titles: dict[str, str]

    @classmethod
    def read(cls, session: Session, version: PlanVersion) -> _InstanceNames:
        plan = plan_definition(version)
        registry = registry_for_plan_version(session, version)
        return cls(
            view=RegistryView(registry),
            unit_position={u.id: i for i, u in enumerate(registry.units)},
            titles=_titles(plan),
            order=_order(plan),
            short_titles=_short_titles(plan),
        )

    def unit_name(self, unit_id: str, day: dt.date) -> str:
        """The name ``unit_id`` bore on ``day`` (a change set may have renamed it since)."""
        unit = self.view.unit_on(unit_id, day)
        return unit.name if unit is not None else unit_id

    def sort_key(self, row: StatusRow, instance_id: int) -> tuple[Any, ...]:
        return (
            row.cycle_key != "once",
            row.cycle_key,
            instance_id,
            self.order.get(row.deliverable_id, 999),
            self.unit_position.get(row.unit_id, 10**6),
            row.unit_id,
        )


def _obligations(
    session: Session, instance_id: int, cycle_key: str | None, deliverable_id: str | None
) -> list[tuple[Obligation, Cycle]]:
    """(obligation, cycle) of one instance, in the cycles asked for."""
    query = (
        select(Obligation, Cycle)
        .join(Cycle, Obligation.cycle_id == Cycle.id)
        .where(Cycle.instance_id == instance_id)
    )
    if deliverable_id is not None:
        query = query.where(Obligation.deliverable_id == deliverable_id)
    return [
        (o, cycle)
        for o, cycle in session.execute(query).all()
        if cycle_key is None or _matches(cycle.key, cycle_key)
    ]


def _status_row(
    plan_id: str,
    obligation: Obligation,
    cycle_key: str,
    cycle_status: CycleStatus,
    seen: ObligationAsOf,
    names: _InstanceNames,
    today: dt.date,
) -> StatusRow:
    state, late, left = classify(
        seen.status, seen.on_time, obligation.due_date, seen.submitted_at, today
    )
    named_on = _named_on(seen, obligation.due_date, today)
    return StatusRow(
        obligation_id=obligation.id,
        plan_id=plan_id,
        cycle_key=cycle_key,
        unit_id=seen.unit_id,
        unit_name=names.unit_name(seen.unit_id, named_on),
        deliverable_id=obligation.deliverable_id,
        deliverable_title=names.titles.get(obligation.deliverable_id, obligation.deliverable_id),
        deliverable_short=names.short_titles.get(obligation.deliverable_id, ""),
        kind=obligation.kind,
        nominal_date=obligation.nominal_date,
        due_date=obligation.due_date,
        state=state,
        days_late=late,
        days_left=left,
        review_state=seen.review_state,
        version=seen.version,
        submitted_at=seen.submitted_at,
        obligation_status=seen.status,
        transferred_from=seen.transferred_from,
        transferred_from_name=(
            names.unit_name(seen.transferred_from, named_on) if seen.transferred_from else None
        ),
        cycle_status=cycle_status,
    )


def _named_on(seen: ObligationAsOf, due_date: dt.date, today: dt.date) -> dt.date:
    """The day a row names its unit as of: the day it answered, else its due date, and
    never after the day viewed. A 2024 report keeps the names of 2024 after a 2025
    rename; a duty moved to an heir bears the heir's name (its first, if it came later)."""
    day = seen.submitted_at.astimezone(TZ).date() if seen.submitted_at else due_date
    return min(day, today)


class _Newest(NamedTuple):
    """What the table needs of an obligation's newest version."""

    obligation_id: int
    version: int
    review_state: ReviewState


def _latest_submissions(session: Session, obligation_ids: list[int]) -> dict[int, _Newest]:
    """The newest version of each obligation, read as three columns (not every version
    as an ORM object with its values: issue 14's consolidation of 3,500 held them all)."""
    latest: dict[int, _Newest] = {}
    if not obligation_ids:
        return latest
    chunk = 900  # stay below SQLite's bound-parameter limit on old builds
    for start in range(0, len(obligation_ids), chunk):
        ids = obligation_ids[start : start + chunk]
        for row in session.execute(
            select(Submission.obligation_id, Submission.version, Submission.review_state)
            .where(one_of(session, Submission.obligation_id, ids))
            .order_by(Submission.version)
        ):
            latest[row.obligation_id] = _Newest(*row)
    return latest


def counts(rows: list[StatusRow]) -> dict[State, int]:
    tally = {state: 0 for state in State}
    for row in rows:
        tally[row.state] += 1
    return tally


# The order an operator reads the states in: what needs action first.
WORST_FIRST: tuple[State, ...] = (
    State.OPEN_OVERDUE,
    State.DONE_LATE,
    State.OPEN_WITHIN,
    State.DONE_ON_TIME,
)
_RANK = {state: index for index, state in enumerate(WORST_FIRST)}


def worst_first(rows: list[StatusRow]) -> list[StatusRow]:
    """Overdue and unanswered first (most days late first), then answered late, then still
    within the deadline (nearest first), then on time; the table's order within each."""
    return sorted(
        rows,
        key=lambda r: (
            _RANK[r.state],
            -(r.days_late or 0),
            r.days_left if r.days_left is not None else 0,
        ),
    )


def local_time(moment: dt.datetime) -> str:
    """'15/9/2023 10:00 (+07:00)': a stored moment in Viet Nam time, the offset shown."""
    local = moment.astimezone(TZ)
    offset = local.strftime("%z")
    return f"{short_date(local.date())} {local:%H:%M} ({offset[:3]}:{offset[3:]})"


# ---------------------------------------------------------------- terminal

_COLOURS = {
    State.DONE_ON_TIME: "\033[32m",  # green
    State.DONE_LATE: "\033[33m",  # orange (yellow on terminals)
    State.OPEN_WITHIN: "",
    State.OPEN_OVERDUE: "\033[31m",  # red
}
_NEAR = "\033[33m"
_BOLD, _RESET = "\033[1m", "\033[0m"
WIDTH = 100  # the narrow table fits a terminal of this many columns
_UNIT_WIDTH = 36


def width(text: str) -> int:
    """Terminal columns of ``text`` (combining marks take none)."""
    return sum(0 if unicodedata.combining(ch) else 1 for ch in text)


def cut(text: str, room: int) -> str:
    """``text`` in at most ``room`` columns, ending in "…" when cut."""
    text = unicodedata.normalize("NFC", text)
    if width(text) <= room:
        return text
    return text[: max(room - 1, 0)] + "…"


def _pad(text: str, room: int) -> str:
    return text + " " * max(0, room - width(text))


def note(row: StatusRow) -> str:
    """'còn 5 ngày', 'trễ 3 ngày', plus the review state when there is one."""
    parts = []
    if row.days_left is not None:
        parts.append("hôm nay là hạn" if row.days_left == 0 else f"còn {row.days_left} ngày")
    if row.days_late is not None:
        parts.append(f"trễ {row.days_late} ngày")
    if row.review_state is not None and ReviewState(row.review_state).decided:
        parts.append(ReviewState(row.review_state).label.lower())
    if row.transferred_from:
        parts.append(f"tiếp nhận từ {row.transferred_from_name or row.transferred_from}")
    if row.cycle_closed and not row.state.done:
        parts.append("không nộp, kỳ đã đóng")
    return "; ".join(parts)


def _what(row: StatusRow) -> str:
    if row.kind == "consolidation":
        return row.deliverable_title
    return f"{KIND_LABELS.get(row.kind, row.kind)}: {row.deliverable_title}"


def _cycle_text(row: StatusRow) -> str:
    return f"{row.cycle_key} (đã đóng)" if row.cycle_closed else row.cycle_key


def _colour_line(row: StatusRow, text: str) -> str:
    colour = _COLOURS[row.state]
    if row.state is State.OPEN_WITHIN and row.days_left is not None and row.days_left <= 3:
        colour = _NEAR
    return f"{colour}{text}{_RESET}" if colour else text


def _table(
    header: list[str],
    rows: list[StatusRow],
    cells: list[list[str]],
    color: bool,
    wrap_last: int | None = None,
) -> list[str]:
    """Padded columns; ``wrap_last``: the last column wraps at that width onto lines of
    its own below the row (blank in the other columns)."""
    split = [
        [*line[:-1], *(textwrap.wrap(line[-1], wrap_last) or [""])] if wrap_last else line
        for line in cells
    ]
    n = len(header)
    widths = [max(width(line[i]) for line in [header, *split]) for i in range(n - 1)]
    widths.append(max(width(part) for line in [header, *split] for part in line[n - 1 :]))
    head = "  ".join(_pad(h, w) for h, w in zip(header, widths, strict=True)).rstrip()
    out = [f"{_BOLD}{head}{_RESET}" if color else head, "  ".join("─" * w for w in widths)]
    for row, line in zip(rows, split, strict=True):
        first = [*line[: n - 1], line[n - 1]]
        texts = ["  ".join(_pad(c, w) for c, w in zip(first, widths, strict=True)).rstrip()]
        indent = " " * (sum(widths[: n - 1]) + 2 * (n - 1))
        texts += [indent + more for more in line[n:]]
        out += [_colour_line(row, text) if color else text for text in texts]
    return out


def _narrow(rows: list[StatusRow], color: bool) -> list[str]:
    """One block per (cycle, deliverable) under a heading; unit, due date, state, note.
    Unit names are cut and notes wrapped so that no line is wider than :data:`WIDTH`."""
    header = ["Đơn vị", "Hạn", "Trạng thái", "Ghi chú"]
    unit_room = min(_UNIT_WIDTH, max(width(r.unit_name) for r in rows))
    due_room = max(width(short_date(r.due_date)) for r in rows)
    state_room = max(width(r.state.label) for r in rows)
    note_room = WIDTH - max(unit_room, 6) - due_room - state_room - 3 * 2
    out: list[str] = []
    blocks: dict[tuple[str, str], list[StatusRow]] = {}
    for row in rows:
        blocks.setdefault((row.cycle_key, row.deliverable_id), []).append(row)
    for members in blocks.values():
        first = members[0]
        closed = " (đã đóng)" if first.cycle_closed else ""
        if out:
            out.append("")
        out += textwrap.wrap(f"{_what(first)} · {cycle_label(first.cycle_key)}{closed}", WIDTH)
        cells = [
            [cut(r.unit_name, unit_room), short_date(r.due_date), r.state.label, note(r)]
            for r in members
        ]
        out += _table(header, members, cells, color, wrap_last=note_room)
    return out


def _wide(rows: list[StatusRow], color: bool) -> list[str]:
    """Every column, nothing cut (``kehoach status --wide``)."""
    header = ["Đơn vị", "Nội dung", "Kỳ", "Hạn", "Trạng thái", "Ghi chú", "Đã gửi lúc", "Bản"]
    cells = [
        [
            r.unit_name,
            _what(r),
            _cycle_text(r),
            short_date(r.due_date),
            r.state.label,
            note(r),
            local_time(r.submitted_at) if r.submitted_at else "",
            str(r.version) if r.version else "",
        ]
        for r in rows
    ]
    return _table(header, rows, cells, color)


def render_status(rows: list[StatusRow], color: bool, wide: bool = False) -> str:
    """The four-state table for a terminal: a block per deliverable and cycle, at most
    :data:`WIDTH` columns; ``wide`` gives one table with every column, nothing cut."""
    if not rows:
        return "Không có nghĩa vụ nào."
    out = _wide(rows, color) if wide else _narrow(rows, color)
    tally = counts(rows)
    out += ["", f"Tổng số {len(rows)} nghĩa vụ:"]
    out += [f"  {state.label}: {tally[state]}" for state in WORST_FIRST]
    return "\n".join(out)
