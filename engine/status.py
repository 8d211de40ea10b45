"""Obligation status in the Government's four states, for artifacts, reports and the terminal.

The Prime Minister's office tracks assigned tasks as: done on time, done late, not
done but within the deadline, not done and overdue.  Provincial systems colour them
green / orange / red; the terminal table does the same.
"""

from __future__ import annotations

import datetime as dt
import unicodedata
from dataclasses import asdict, dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.calendar import TZ
from engine.repository import plan_definition, registry_for_plan_version
from engine.schema import Plan
from engine.states import CycleStatus, InstanceStatus, ObligationStatus, ReviewState, State
from engine.store.models import Cycle, Obligation, PlanInstance, PlanVersion, Submission
from engine.vntext import short_date

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
    titles = {d.id: d.title for d in plan.deliverables}
    for c in plan.consolidations:
        fed = plan.deliverable(c.consolidates)
        titles[c.id] = "Báo cáo tổng hợp" + (f": {fed.title}" if fed else "")
    return titles


def _order(plan: Plan) -> dict[str, int]:
    ids = [d.id for d in plan.deliverables] + [c.id for c in plan.consolidations]
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
) -> list[StatusRow]:
    """Every obligation of the plan's active instances (one cycle, a year's cycles, or all).

    ``cycle_key`` "2027" also matches "2027-Q1", "2027-03"…; "once" the one-off cycle.
    Rows are ordered by cycle, deliverable (as the plan lists them) and registry order.
    """
    rows: list[StatusRow] = []
    keys: dict[int, tuple[Any, ...]] = {}
    for instance, version in _active_instances(session, plan_id):
        names = _InstanceNames.read(session, version)
        found = _obligations(session, instance.id, cycle_key, deliverable_id)
        latest = _latest_submissions(session, [o.id for o, _, _ in found])
        for obligation, key, cycle_status in found:
            row = _status_row(
                plan_id, obligation, key, cycle_status, latest.get(obligation.id), names, today
            )
            rows.append(row)
            keys[row.obligation_id] = names.sort_key(row, instance.id)
    rows.sort(key=lambda r: keys[r.obligation_id])
    return rows


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
    """What one instance's plan version and registry say about its rows: names, titles and
    the orders (the plan's deliverables, the registry's units) the table is sorted by."""

    units: dict[str, str]
    unit_position: dict[str, int]
    titles: dict[str, str]
    order: dict[str, int]

    @classmethod
    def read(cls, session: Session, version: PlanVersion) -> _InstanceNames:
        plan = plan_definition(version)
        registry = registry_for_plan_version(session, version)
        return cls(
            units={u.id: u.name for u in registry.units},
            unit_position={u.id: i for i, u in enumerate(registry.units)},
            titles=_titles(plan),
            order=_order(plan),
        )

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
) -> list[tuple[Obligation, str, CycleStatus]]:
    """(obligation, cycle key, cycle status) of one instance, in the cycles asked for."""
    query = (
        select(Obligation, Cycle.key, Cycle.status)
        .join(Cycle, Obligation.cycle_id == Cycle.id)
        .where(Cycle.instance_id == instance_id)
    )
    if deliverable_id is not None:
        query = query.where(Obligation.deliverable_id == deliverable_id)
    return [
        (o, key, cycle_status)
        for o, key, cycle_status in session.execute(query).all()
        if cycle_key is None or _matches(key, cycle_key)
    ]


def _status_row(
    plan_id: str,
    obligation: Obligation,
    cycle_key: str,
    cycle_status: CycleStatus,
    sub: Submission | None,
    names: _InstanceNames,
    today: dt.date,
) -> StatusRow:
    state, late, left = classify(
        obligation.status,
        obligation.on_time,
        obligation.due_date,
        obligation.submitted_at,
        today,
    )
    return StatusRow(
        obligation_id=obligation.id,
        plan_id=plan_id,
        cycle_key=cycle_key,
        unit_id=obligation.unit_id,
        unit_name=names.units.get(obligation.unit_id, obligation.unit_id),
        deliverable_id=obligation.deliverable_id,
        deliverable_title=names.titles.get(obligation.deliverable_id, obligation.deliverable_id),
        kind=obligation.kind,
        nominal_date=obligation.nominal_date,
        due_date=obligation.due_date,
        state=state,
        days_late=late,
        days_left=left,
        review_state=sub.review_state if sub else None,
        version=sub.version if sub else None,
        submitted_at=obligation.submitted_at,
        obligation_status=obligation.status,
        transferred_from=obligation.transferred_from,
        transferred_from_name=(
            names.units.get(obligation.transferred_from, obligation.transferred_from)
            if obligation.transferred_from
            else None
        ),
        cycle_status=cycle_status,
    )


def _latest_submissions(session: Session, obligation_ids: list[int]) -> dict[int, Submission]:
    latest: dict[int, Submission] = {}
    if not obligation_ids:
        return latest
    chunk = 900  # stay below SQLite's bound-parameter limit on old builds
    for start in range(0, len(obligation_ids), chunk):
        ids = obligation_ids[start : start + chunk]
        for sub in session.scalars(
            select(Submission).where(Submission.obligation_id.in_(ids)).order_by(Submission.version)
        ):
            latest[sub.obligation_id] = sub
    return latest


def counts(rows: list[StatusRow]) -> dict[State, int]:
    tally = {state: 0 for state in State}
    for row in rows:
        tally[row.state] += 1
    return tally


# ---------------------------------------------------------------- terminal

_COLOURS = {
    State.DONE_ON_TIME: "\033[32m",  # green
    State.DONE_LATE: "\033[33m",  # orange (yellow on terminals)
    State.OPEN_WITHIN: "",
    State.OPEN_OVERDUE: "\033[31m",  # red
}
_NEAR = "\033[33m"
_BOLD, _RESET = "\033[1m", "\033[0m"


def _width(text: str) -> int:
    return sum(0 if unicodedata.combining(ch) else 1 for ch in text)


def _cut(text: str, width: int) -> str:
    text = unicodedata.normalize("NFC", text)
    if _width(text) <= width:
        return text
    return text[: width - 1] + "…"


def _pad(text: str, width: int) -> str:
    return text + " " * max(0, width - _width(text))


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


def render_status(rows: list[StatusRow], color: bool) -> str:
    """A fixed-width table: unit, what, cycle, due date, state, days late/left."""
    if not rows:
        return "Không có nghĩa vụ nào."
    header = ["Đơn vị", "Nội dung", "Kỳ", "Hạn", "Trạng thái", "Ghi chú"]
    table = [
        [
            _cut(r.unit_name, 42),
            _cut(
                r.deliverable_title
                if r.kind == "consolidation"
                else f"{KIND_LABELS.get(r.kind, r.kind)}: {r.deliverable_title}",
                40,
            ),
            f"{r.cycle_key} (đã đóng)" if r.cycle_closed else r.cycle_key,
            short_date(r.due_date),
            r.state.label,
            note(r),
        ]
        for r in rows
    ]
    widths = [max(_width(line[i]) for line in [header, *table]) for i in range(len(header))]
    out = []
    head = "  ".join(_pad(h, w) for h, w in zip(header, widths, strict=True)).rstrip()
    out.append(f"{_BOLD}{head}{_RESET}" if color else head)
    out.append("  ".join("─" * w for w in widths))
    for row, line in zip(rows, table, strict=True):
        text = "  ".join(_pad(c, w) for c, w in zip(line, widths, strict=True)).rstrip()
        if color:
            colour = _COLOURS[row.state]
            if row.state is State.OPEN_WITHIN and row.days_left is not None and row.days_left <= 3:
                colour = _NEAR
            text = f"{colour}{text}{_RESET}" if colour else text
        out.append(text)
    tally = counts(rows)
    summary = " · ".join(f"{state.label}: {tally[state]}" for state in State)
    out.append("")
    out.append(f"Tổng số {len(rows)} — {summary}")
    return "\n".join(out)
