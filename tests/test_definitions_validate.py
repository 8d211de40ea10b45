"""Every YAML file under plan_definitions/ is a valid definition, and they hang together.

The schema check is per file.  The cross-file checks (unit and group ids, templates,
upward links, deadline order) are the ones a plan author would otherwise only learn of
at run time; the loader (engine.loader) does them too, and `kehoach validate` is run
over the same files when the CLI is installed.
"""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
import yaml

from engine.schema import AnyDocument, CalendarOverrides, Group, Plan, Registry, Target, Unit

DEFINITIONS = Path(__file__).resolve().parents[1] / "plan_definitions"
# simulations/ holds response scripts for `kehoach simulate`, not definitions;
# registry_changes/ holds change sets (`kehoach registry apply`, tests/test_registry_history.py).
FILES = sorted(
    p
    for p in DEFINITIONS.rglob("*.yaml")
    if "simulations" not in p.parts and "registry_changes" not in p.parts
)


def _load(path: Path):  # type: ignore[no-untyped-def]
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    return AnyDocument.model_validate({"document": data}).document


@pytest.fixture(scope="module")
def documents() -> dict[Path, Registry | Plan | CalendarOverrides]:
    return {path: _load(path) for path in FILES}


@pytest.fixture(scope="module")
def registries(documents) -> dict[str, Registry]:  # type: ignore[no-untyped-def]
    found = [d for d in documents.values() if isinstance(d, Registry)]
    assert len({r.id for r in found}) == len(found), "two registries share an id"
    return {r.id: r for r in found}


@pytest.fixture(scope="module")
def plans(documents) -> dict[str, Plan]:  # type: ignore[no-untyped-def]
    found = [d for d in documents.values() if isinstance(d, Plan)]
    assert len({p.id for p in found}) == len(found), "two plans share an id"
    return {p.id: p for p in found}


def test_there_is_something_to_validate() -> None:
    names = {p.name for p in FILES}
    assert {"registry_cao_bang.yaml", "ha_lang_pccc_2022.yaml", "calendar_vn.yaml"} <= names


@pytest.mark.parametrize("path", FILES, ids=lambda p: str(p.relative_to(DEFINITIONS)))
def test_file_validates_against_the_schema(path: Path) -> None:
    _load(path)


# ---------------------------------------------------------------- registries


def _duplicates(ids) -> list[str]:  # type: ignore[no-untyped-def]
    return [i for i, n in Counter(ids).items() if n > 1]


def expand(group: Group, units: dict[str, Unit], day: dt.date) -> set[str]:
    """The group's members as of ``day``, by the rule documented on engine.schema.Group."""
    selected = set(group.members)
    if group.parents or group.kinds or group.tags:
        for unit in units.values():
            if group.parents and unit.parent not in group.parents:
                continue
            if group.kinds and unit.kind not in group.kinds:
                continue
            if not set(group.tags) <= set(unit.tags):
                continue
            selected.add(unit.id)
    return {u for u in selected - set(group.exclude) if u in units and units[u].valid_on(day)}


def test_registry_links(registries: dict[str, Registry]) -> None:
    for registry in registries.values():
        units = {u.id: u for u in registry.units}
        assert not _duplicates(u.id for u in registry.units), registry.id
        assert not _duplicates([*units, *(g.id for g in registry.groups)]), registry.id
        for unit in registry.units:
            assert unit.parent is None or unit.parent in units, f"{registry.id}: {unit.id}.parent"
            for successor in unit.successors:
                assert successor in units, f"{registry.id}: {unit.id} → {successor}"
                assert unit.valid_to is not None, f"{unit.id} has successors but no valid_to"
                after = units[successor]
                assert after.valid_on(unit.valid_to + dt.timedelta(days=1)), (
                    f"{successor} is not valid the day after {unit.id} ends"
                )
            for address in unit.emails:
                assert address.endswith(".example"), f"{address}: use the reserved .example TLD"
        for group in registry.groups:
            for member in [*group.members, *group.parents, *group.exclude]:
                assert member in units, f"{registry.id}: group {group.id} names {member}"


def test_parents_form_no_cycle(registries: dict[str, Registry]) -> None:
    for registry in registries.values():
        parent = {u.id: u.parent for u in registry.units}
        for start in parent:
            seen, node = set(), start
            while node is not None:
                assert node not in seen, f"{registry.id}: parent cycle through {node}"
                seen.add(node)
                node = parent[node]


# ---------------------------------------------------------------- plans


def _targets(plan: Plan) -> list[tuple[str, Target]]:
    found = []
    for a in plan.assignments:
        found.append((f"assignment {a.id}", a.to))
        found += [(f"assignment {a.id} supporting", t) for t in a.supporting]
    found += [(f"duty {d.id}", d.who) for d in plan.duties]
    return found


def _unit_refs(plan: Plan) -> list[tuple[str, str]]:
    refs = [("document.issuer_unit", plan.document.issuer_unit)]
    for d in plan.deliverables:
        refs.append((f"deliverable {d.id} routing.to", d.routing.to))
        if d.routing.via:
            refs.append((f"deliverable {d.id} routing.via", d.routing.via))
    for c in plan.consolidations:
        refs += [(f"consolidation {c.id} by", c.by), (f"consolidation {c.id} to", c.routing.to)]
        if c.routing.via:
            refs.append((f"consolidation {c.id} via", c.routing.via))
    for r in plan.recipients:
        refs += [(f"recipient {r.name}", u) for u in r.units]
    return refs


def test_plan_references_resolve(registries: dict[str, Registry], plans: dict[str, Plan]) -> None:
    for plan in plans.values():
        assert plan.registry in registries, f"{plan.id}: unknown registry {plan.registry}"
        registry = registries[plan.registry]
        units = {u.id: u for u in registry.units}
        groups = {g.id: g for g in [*registry.groups, *plan.groups]}
        day = plan.document.date or plan.as_of

        for where, unit_id in _unit_refs(plan):
            assert unit_id in units, f"{plan.id}: {where} names unknown unit {unit_id}"
            assert units[unit_id].valid_on(day), f"{plan.id}: {where}: {unit_id} not valid on {day}"
        for where, target in _targets(plan):
            if target.unit:
                assert target.unit in units, f"{plan.id}: {where}: unknown unit {target.unit}"
                assert units[target.unit].valid_on(day), f"{plan.id}: {where}: {target.unit}"
            else:
                assert target.group in groups, f"{plan.id}: {where}: unknown group {target.group}"
                members = expand(groups[target.group], units, day)  # type: ignore[index]
                assert members, f"{plan.id}: {where}: group {target.group} is empty on {day}"
        for recipient in plan.recipients:
            for group_id in recipient.groups:
                assert group_id in groups, f"{plan.id}: recipient {recipient.name}: {group_id}"


def test_plan_internal_ids(plans: dict[str, Plan]) -> None:
    for plan in plans.values():
        assert not _duplicates(a.id for a in plan.assignments), plan.id
        assert not _duplicates(d.id for d in plan.deliverables), plan.id
        assert not _duplicates(c.id for c in plan.consolidations), plan.id
        assert not _duplicates(t.id for t in plan.report_templates), plan.id
        assert not _duplicates(b.id for b in plan.basis), plan.id
        for a in plan.assignments:
            assert not _duplicates(t.id for t in a.tasks), f"{plan.id}: {a.id}"
        for t in plan.report_templates:
            assert not _duplicates(f.id for f in t.fields), f"{plan.id}: {t.id}"

        basis = {b.id for b in plan.basis}
        for b in plan.basis:
            assert set(b.implements) <= basis, f"{plan.id}: basis {b.id}"
        assignments = {a.id for a in plan.assignments}
        for d in plan.deliverables:
            if d.from_assignments != "all":
                assert set(d.from_assignments) <= assignments, f"{plan.id}: {d.id}"
            if d.template:
                assert plan.template(d.template), f"{plan.id}: {d.id}: template {d.template}"
        for c in plan.consolidations:
            consolidated = plan.deliverable(c.consolidates)
            assert consolidated is not None and consolidated.kind == "report", c.id
            assert c.by == consolidated.routing.via or c.by == consolidated.routing.to, (
                f"{plan.id}: {c.id}: {c.by} receives no {c.consolidates} reports"
            )
        for duty in plan.duties:
            if duty.measured_by:
                templates = (
                    [plan.template(duty.template)] if duty.template else plan.report_templates
                )
                assert any(t and t.field(duty.measured_by) for t in templates), duty.id


def test_parent_and_upward_links(plans: dict[str, Plan]) -> None:
    for plan in plans.values():
        if plan.parent_plan:
            assert plan.parent_plan in plans, f"{plan.id}: parent {plan.parent_plan} not defined"
        for c in plan.consolidations:
            if c.upward:
                assert c.upward.plan in plans, f"{plan.id}: {c.id}: plan {c.upward.plan}"
                target = plans[c.upward.plan].deliverable(c.upward.deliverable)
                assert target is not None, f"{plan.id}: {c.id}: {c.upward.deliverable}"
                assert target.routing.to == c.routing.to, f"{plan.id}: {c.id} goes elsewhere"


def _order_key(rule) -> tuple[int, ...] | None:  # type: ignore[no-untyped-def]
    """A comparable position within the period, for rules of the same kind."""
    if rule.rule == "yearly":
        return (rule.month, rule.day)
    if rule.rule == "monthly":
        return (rule.day,)
    if rule.rule in {"quarter_end", "half_year_end"}:
        return (rule.offset_days,)
    if rule.rule == "fixed":
        return (rule.date.toordinal(),)
    if rule.rule in {"on_request", "after_activation"}:  # days after the request's date
        return (rule.days,)
    return None


def test_reports_fall_due_before_their_consolidation(plans: dict[str, Plan]) -> None:
    for plan in plans.values():
        for c in plan.consolidations:
            report = plan.deliverable(c.consolidates)
            assert report is not None
            if report.deadline.rule == c.deadline.rule:
                assert _order_key(report.deadline) < _order_key(c.deadline), (  # type: ignore[operator]
                    f"{plan.id}: {report.id} is due on or after its consolidation {c.id}"
                )
            if c.upward and c.upward.plan in plans:
                upward = plans[c.upward.plan].deliverable(c.upward.deliverable)
                if upward and upward.deadline.rule == c.deadline.rule:
                    assert _order_key(c.deadline) <= _order_key(upward.deadline), (  # type: ignore[operator]
                        f"{plan.id}: {c.id} is due after the report it feeds upward"
                    )


# ---------------------------------------------------------------- calendar


def test_calendar_overrides_are_plausible(documents) -> None:  # type: ignore[no-untyped-def]
    calendars = [d for d in documents.values() if isinstance(d, CalendarOverrides)]
    assert calendars, "plan_definitions/ needs a calendar override file"
    for calendar in calendars:
        for day in calendar.working_days:
            assert day.date.weekday() >= 5, f"{day.date}: a make-up working day is a weekend day"
        days = [
            d.date for d in [*calendar.holidays, *calendar.working_days, *calendar.not_holidays]
        ]
        assert not _duplicates(days), calendar.id


# ---------------------------------------------------------------- the CLI


def test_kehoach_validate_accepts_every_file() -> None:
    script = Path(sys.executable).with_name("kehoach")
    if (
        not (Path(__file__).resolve().parents[1] / "cli" / "main.py").exists()
        or not script.exists()
    ):
        pytest.skip("the kehoach CLI is not installed yet")
    result = subprocess.run(
        [str(script), "validate", *map(str, FILES)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
