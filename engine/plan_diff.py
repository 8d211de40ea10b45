"""What a new version of a plan takes away (and adds) compared with the one it replaces.

Loading compares the new version with the current one before it becomes current:
assignments, deliverables (consolidation duties included), the units that owe each
deliverable, and the fields of the report templates. Anything removed must be
confirmed (``kehoach load --confirm``); additions alone need no confirmation. Units
are resolved as activation resolves them (assignments → units on the plan's
``as_of``, against the registry the plan names), so a group that expands to fewer
units counts as units removed.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from engine.registry import RegistryView
from engine.schema import Plan

# at most this many names per kind in the printed difference ("… và N mục khác")
SHOWN = 12


@dataclass(frozen=True)
class Item:
    """One thing that a version has and the other has not."""

    key: str  # id, or "unit/deliverable", or "template/field"
    label: str  # what a person reads


@dataclass
class PlanDiff:
    """Removed and added items between two versions of one plan."""

    plan_id: str
    old_version: int
    removed: dict[str, list[Item]] = field(default_factory=dict)  # kind -> items
    added: dict[str, list[Item]] = field(default_factory=dict)
    # (unit id, deliverable or consolidation id) that the old version gives and the new
    # does not: the obligations a running cycle would lose
    removed_duties: set[tuple[str, str]] = field(default_factory=set)
    removed_duty_ids: set[str] = field(default_factory=set)  # deliverables, consolidations

    @property
    def removes_anything(self) -> bool:
        return any(self.removed.values())


KIND_LABELS = {
    "assignments": "phân công (mục giao nhiệm vụ)",
    "deliverables": "sản phẩm phải nộp / nhiệm vụ tổng hợp",
    "units": "đơn vị mất nghĩa vụ",
    "fields": "trường của mẫu báo cáo",
}


def _duty_titles(plan: Plan) -> dict[str, str]:
    titles = {d.id: f"{d.id} ({d.title})" for d in plan.all_deliverables}
    for c in plan.consolidations:
        titles[c.id] = f"{c.id} (tổng hợp {c.consolidates}, do {c.by})"
    return titles


def duties_of(plan: Plan, view: RegistryView) -> dict[tuple[str, str], str]:
    """(unit id, deliverable or consolidation id) -> unit name, for every duty the plan
    gives: the rule of engine.lifecycle.activation (assignments resolved on ``as_of``;
    the consolidation point owes its consolidation)."""
    duties: dict[tuple[str, str], str] = {}
    for deliverable in plan.all_deliverables:
        task = plan.tracked.task_of(deliverable.id)
        if task is not None:  # a tracked task: its lead units (as activation has it)
            for unit in view.resolve(task.lead, plan.as_of):
                duties[(unit.id, deliverable.id)] = unit.name
            continue
        chosen = deliverable.from_assignments
        for assignment in plan.assignments:
            if chosen != "all" and assignment.id not in chosen:
                continue
            for unit in view.resolve(assignment.to, plan.as_of):
                duties[(unit.id, deliverable.id)] = unit.name
    for consolidation in plan.consolidations:
        point = view.unit(consolidation.by)
        duties[(consolidation.by, consolidation.id)] = point.name if point else consolidation.by
    return duties


def _fields(plan: Plan) -> dict[str, str]:
    return {
        f"{t.id}/{f.id}": f"{t.id}/{f.id} ({f.label})"
        for t in plan.report_templates
        for f in t.fields
    }


def _units(duties: dict[tuple[str, str], str]) -> dict[str, str]:
    return {unit: name for (unit, _duty), name in duties.items()}


def _compare(old: dict[str, str], new: dict[str, str]) -> tuple[list[Item], list[Item]]:
    removed = [Item(k, label) for k, label in old.items() if k not in new]
    added = [Item(k, label) for k, label in new.items() if k not in old]
    return removed, added


def diff_plans(
    old: Plan, old_view: RegistryView, new: Plan, new_view: RegistryView, old_version: int
) -> PlanDiff:
    """The difference from ``old`` (stored as ``old_version``) to ``new``."""
    diff = PlanDiff(plan_id=new.id, old_version=old_version)
    old_duties, new_duties = duties_of(old, old_view), duties_of(new, new_view)
    old_titles, new_titles = _duty_titles(old), _duty_titles(new)
    # the units that lose a duty (of a deliverable removed or kept), and those that gain
    # one of a deliverable both versions have
    lost: dict[str, list[str]] = {}
    for unit, duty in sorted(set(old_duties) - set(new_duties)):
        diff.removed_duties.add((unit, duty))
        lost.setdefault(unit, []).append(duty)
    gained: dict[str, list[str]] = {}
    for unit, duty in sorted(set(new_duties) - set(old_duties)):
        if duty in old_titles:
            gained.setdefault(unit, []).append(duty)
    names = {**_units(new_duties), **_units(old_duties)}
    comparisons = {
        "assignments": (
            {a.id: f"{a.id} ({a.section} {a.heading})" for a in old.assignments},
            {a.id: f"{a.id} ({a.section} {a.heading})" for a in new.assignments},
        ),
        "deliverables": (old_titles, new_titles),
        "fields": (_fields(old), _fields(new)),
    }
    for kind, (before, after) in comparisons.items():
        diff.removed[kind], diff.added[kind] = _compare(before, after)
    diff.removed["units"] = [
        Item(unit, f"{names[unit]} ({unit}): {', '.join(duties)}") for unit, duties in lost.items()
    ]
    diff.added["units"] = [
        Item(unit, f"{names[unit]} ({unit}): {', '.join(duties)}")
        for unit, duties in gained.items()
    ]
    diff.removed_duty_ids = {item.key for item in diff.removed["deliverables"]}
    return diff


def _listed(items: list[Item]) -> list[str]:
    lines = [f"      {item.label}" for item in items[:SHOWN]]
    if len(items) > SHOWN:
        lines.append(f"      … và {len(items) - SHOWN} mục khác")
    return lines


def describe_removed(diff: PlanDiff) -> list[str]:
    """The removed items, in Vietnamese, one kind per block."""
    lines = []
    for kind, label in KIND_LABELS.items():
        items = diff.removed.get(kind) or []
        if items:
            lines.append(f"  - bỏ {len(items)} {label}:")
            lines.extend(_listed(items))
    return lines


def describe_added(diff: PlanDiff) -> str:
    """One line counting what the new version adds (empty when nothing)."""
    parts = [
        f"{len(items)} {KIND_LABELS[kind].replace('mất', 'thêm')}"
        for kind, items in diff.added.items()
        if items
    ]
    return ("  thêm: " + "; ".join(parts)) if parts else ""
