"""A new plan version and the cycles already running: who is affected, and moving them.

How running cycles meet a new version today: a plan instance is pinned to the version
it was activated with (``PlanInstance.plan_version_id``), and activation leaves a
cycle key that an active instance of an earlier version holds to that instance
(engine.lifecycle.activation._cycles). So a new version never changes a cycle that
has started; it applies from the next cycle start (the yearly ``activate`` run) on.

:func:`apply_to_running` is the explicit exception (``kehoach load --apply-to-running``):
the running cycles move to the new version's instance, and activation then gives them
what the new version adds. It refuses when the new version would take a duty away from
a running cycle: a duty already handed to a unit is never withdrawn silently, and there
is no state for a withdrawn duty.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from engine.audit import write_audit
from engine.errors import KehoachError
from engine.lifecycle.activation import _instance, activate
from engine.plan_diff import SHOWN, PlanDiff
from engine.states import CycleStatus, InstanceStatus
from engine.store.models import Cycle, Obligation, PlanInstance, PlanVersion
from engine.vntext import cycle_label


@dataclass
class RunningCycle:
    """A cycle of an active instance that is not closed, with what a diff takes from it."""

    cycle_id: int
    key: str
    status: CycleStatus
    version: int
    version_id: int
    obligations: int = 0
    lost: int = 0  # obligations of a duty the new version removes
    lost_answered: int = 0  # of which a report was already sent
    lost_names: tuple[str, ...] = ()  # "unit/deliverable" of each, for the refusal


def _lost(obligation: Obligation, diff: PlanDiff) -> bool:
    source = obligation.transferred_from or obligation.unit_id
    duty = obligation.deliverable_id
    return duty in diff.removed_duty_ids or (source, duty) in diff.removed_duties


def running_cycles(session: Session, plan_id: str, diff: PlanDiff | None) -> list[RunningCycle]:
    """The plan's cycles still taking answers (of active instances, not closed), with
    the obligations ``diff`` would take from each."""
    rows = session.execute(
        select(Cycle, PlanVersion.version, PlanVersion.id)
        .join(PlanInstance, Cycle.instance_id == PlanInstance.id)
        .join(PlanVersion, PlanInstance.plan_version_id == PlanVersion.id)
        .where(
            PlanInstance.plan_id == plan_id,
            PlanInstance.status == InstanceStatus.ACTIVE,
            Cycle.status != CycleStatus.CLOSED,
        )
        .order_by(PlanVersion.version, Cycle.key)
    ).all()
    found = []
    for cycle, version, version_id in rows:
        item = RunningCycle(cycle.id, cycle.key, cycle.status, version, version_id)
        names = []
        for obligation in session.scalars(
            select(Obligation).where(Obligation.cycle_id == cycle.id)
        ):
            item.obligations += 1
            if diff is not None and _lost(obligation, diff):
                item.lost += 1
                item.lost_answered += obligation.status.answered
                names.append(f"{obligation.unit_id}/{obligation.deliverable_id}")
        item.lost_names = tuple(names)
        found.append(item)
    return found


def describe_running(cycles: list[RunningCycle], new_version: int | None) -> list[str]:
    """The running cycles, in Vietnamese, with what the new version takes from each."""
    lines = []
    for c in cycles:
        lost = (
            f"{c.lost} nghĩa vụ thuộc phần bị bỏ ({c.lost_answered} đã có báo cáo)"
            if c.lost
            else "không nghĩa vụ nào thuộc phần bị bỏ"
        )
        target = f" → v{new_version}" if new_version is not None else ""
        lines.append(
            f"  - kỳ {cycle_label(c.key)} ({c.key}, phiên bản v{c.version}{target}, {c.status.label.lower()}): "
            f"{c.obligations} nghĩa vụ, {lost}"
        )
    return lines


class CannotApplyToRunning(KehoachError):
    """--apply-to-running would take duties away from running cycles."""


def apply_to_running(
    session: Session, new_row: PlanVersion, cycles: list[RunningCycle], *, now: dt.datetime
) -> None:
    """Move ``cycles`` (running on earlier versions) to ``new_row`` and give them what it
    adds. Refuses (raises; the caller's transaction rolls back) when an obligation of one
    of them belongs to a duty the new version removes."""
    if not cycles:
        return
    lost = [name for c in cycles for name in c.lost_names]
    if lost:
        shown = ", ".join(lost[:SHOWN])
        if len(lost) > SHOWN:
            shown += f" … và {len(lost) - SHOWN} khác"
        raise CannotApplyToRunning(
            f"không áp dụng được phiên bản v{new_row.version} cho các kỳ đang chạy: "
            f"{len(lost)} nghĩa vụ đã giao sẽ mất căn cứ ({shown}). Một nghĩa vụ đã giao "
            "không bị rút lại âm thầm; bỏ --apply-to-running để các kỳ này giữ phiên bản "
            "của chúng (phiên bản mới áp dụng từ kỳ bắt đầu sau). Không có gì được lưu."
        )
    instance, new = _instance(session, new_row, now)
    if new:
        write_audit(
            session,
            "plan.activated",
            at=now,
            plan_id=new_row.plan_id,
            version=new_row.version,
            instance_id=instance.id,
        )
    held = set(session.scalars(select(Cycle.key).where(Cycle.instance_id == instance.id)))
    clash = sorted(c.key for c in cycles if c.key in held)
    if clash:
        raise CannotApplyToRunning(
            f"kỳ {', '.join(clash)} đã có ở phiên bản v{new_row.version}; không chuyển được"
        )
    session.execute(
        update(Cycle)
        .where(Cycle.id.in_([c.cycle_id for c in cycles]))
        .values(instance_id=instance.id)
    )
    session.flush()
    session.expire_all()
    years = sorted({int(c.key[:4]) for c in cycles if c.key[:4].isdigit()})
    result = activate(session, new_row.plan_id, now=now, years=years, version=new_row.version)
    write_audit(
        session,
        "plan.version_applied_to_running",
        at=now,
        plan_id=new_row.plan_id,
        version=new_row.version,
        cycles={c.key: c.version for c in cycles},
        created=result.created,
    )


# ---------------------------------------------------------------- loading


@dataclass
class VersionChange:
    """A plan whose current version a load replaces, with the difference."""

    old: PlanVersion
    new: PlanVersion
    diff: PlanDiff
    running: list[RunningCycle]

    @property
    def needs_confirmation(self) -> bool:
        return self.diff.removes_anything


def versions_before(session: Session, plan_ids: list[str]) -> dict[str, PlanVersion]:
    """The version each plan runs on before a load: the current one, else (a retired
    plan) the newest."""
    found: dict[str, PlanVersion] = {}
    for plan_id in plan_ids:
        rows = session.scalars(
            select(PlanVersion)
            .where(PlanVersion.plan_id == plan_id)
            .order_by(PlanVersion.current.desc(), PlanVersion.version.desc())
            .limit(1)
        ).all()
        if rows:
            found[plan_id] = rows[0]
    return found


def version_changes(
    session: Session, before: dict[str, PlanVersion], *, running_too: bool = False
) -> list[VersionChange]:
    """After a load stored its versions: each plan whose current version changed, from
    the version it replaced, with that version's running cycles; with ``running_too``
    also one change from every other version that cycles still run on."""
    from engine.context import plan_context
    from engine.plan_diff import diff_plans

    changes = []
    for plan_id, previous in sorted(before.items()):
        new = session.scalar(
            select(PlanVersion).where(PlanVersion.plan_id == plan_id, PlanVersion.current.is_(True))
        )
        if new is None:
            continue
        sources = {previous.id: previous} if previous.id != new.id else {}
        if running_too:
            for version_id in {c.version_id for c in running_cycles(session, plan_id, None)}:
                row = session.get(PlanVersion, version_id)
                if row is not None and version_id != new.id:
                    sources.setdefault(version_id, row)
        new_ctx = plan_context(session, new)
        for old in sorted(sources.values(), key=lambda row: row.version):
            old_ctx = plan_context(session, old)
            diff = diff_plans(old_ctx.plan, old_ctx.view, new_ctx.plan, new_ctx.view, old.version)
            running = [c for c in running_cycles(session, plan_id, diff) if c.version_id == old.id]
            changes.append(VersionChange(old, new, diff, running))
    return changes


def describe_change(change: VersionChange, *, applied: bool) -> list[str]:
    """The difference and the running cycles, in Vietnamese."""
    from engine.plan_diff import describe_added, describe_removed

    head = (
        f"Kế hoạch {change.new.plan_id}: phiên bản v{change.new.version} "
        f"so với v{change.old.version}"
    )
    lines = [head + (", bỏ đi:" if change.diff.removes_anything else ".")]
    lines += describe_removed(change.diff)
    added = describe_added(change.diff)
    if added:
        lines.append(added)
    if change.running:
        lines.append(
            "Các kỳ đang chạy "
            + ("chuyển sang phiên bản mới:" if applied else "(giữ phiên bản cũ):")
        )
        lines += describe_running(change.running, change.new.version if applied else None)
        if not applied:
            lines.append(
                f"  phiên bản v{change.new.version} áp dụng từ kỳ bắt đầu sau "
                "(lần kích hoạt tiếp theo)"
            )
    return lines
