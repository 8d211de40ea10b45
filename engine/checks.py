"""Domain checks across definitions: what the schema alone cannot see."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator

from engine.calendar import WorkCalendar, cycles_in_year, nominal_date
from engine.catalog import Catalog, Loaded
from engine.checks_time import TimeChecks
from engine.config import settings
from engine.errors import Problem
from engine.registry import RegistryView
from engine.schema import Plan, Registry, Target


def check_catalog(
    catalog: Catalog,
    *,
    registry_lookup: Callable[[str], Registry | None] | None = None,
    plan_lookup: Callable[[str], Plan | None] | None = None,
) -> list[Problem]:
    problems: list[Problem] = []
    for loaded in catalog.registries.values():
        problems.extend(check_registry(loaded))
    for loaded in catalog.plans.values():
        if (loaded.definition.kind, loaded.definition.id) in catalog.context_ids:
            continue
        plan: Plan = loaded.definition  # type: ignore[assignment]  # catalog.plans holds plans
        registry: Registry | None = None
        if plan.registry in catalog.registries:
            registry = catalog.registries[plan.registry].definition  # type: ignore[assignment]  # a registry
        elif registry_lookup is not None:
            registry = registry_lookup(plan.registry)
        if registry is None:
            problems.append(
                Problem(
                    loaded.source.where(("registry",)),
                    f"registry: no registry '{plan.registry}' is loaded or given; pass its "
                    "YAML file too, or `kehoach load` it first",
                    "unknown-registry",
                )
            )
            continue
        parent: Plan | None = None
        if plan.parent_plan:
            if plan.parent_plan in catalog.plans:
                parent = catalog.plans[plan.parent_plan].definition  # type: ignore[assignment]  # a plan
            elif plan_lookup is not None:
                parent = plan_lookup(plan.parent_plan)
        problems.extend(PlanChecker(loaded, plan, registry, parent, catalog).run())
    problems.extend(_parent_plan_cycles(catalog))
    return problems


def check_registry(loaded: Loaded) -> list[Problem]:
    registry: Registry = loaded.definition  # type: ignore[assignment]  # called for registries
    problems: list[Problem] = []
    where = loaded.source.where
    seen: dict[str, int] = {}
    for index, unit in enumerate(registry.units):
        if unit.id in seen:
            problems.append(
                Problem(
                    where(("units", index, "id")),
                    f"units[{index}].id: unit id '{unit.id}' is used twice (also units"
                    f"[{seen[unit.id]}]); every unit needs its own id",
                    "duplicate",
                )
            )
        seen.setdefault(unit.id, index)
    ids = set(seen)
    for index, unit in enumerate(registry.units):
        if unit.parent is not None and unit.parent not in ids:
            problems.append(
                Problem(
                    where(("units", index, "parent")),
                    f"units[{index}].parent: unknown unit '{unit.parent}'; add it to the "
                    "registry or fix the id",
                    "unknown-unit",
                )
            )
        for s_index, successor in enumerate(unit.successors):
            if successor not in ids:
                problems.append(
                    Problem(
                        where(("units", index, "successors", s_index)),
                        f"units[{index}].successors[{s_index}]: unknown unit '{successor}'",
                        "unknown-unit",
                    )
                )
            elif successor == unit.id:
                problems.append(
                    Problem(
                        where(("units", index, "successors", s_index)),
                        f"units[{index}].successors[{s_index}]: a unit cannot succeed itself",
                        "cycle",
                    )
                )
        if unit.successors and unit.valid_to is None:
            problems.append(
                Problem(
                    where(("units", index, "successors")),
                    f"units[{index}].successors: '{unit.id}' has successors but no valid_to; "
                    "set the last day it existed",
                    "successor-without-end",
                )
            )
    view = RegistryView(registry)
    cycle = view.parent_cycle()
    if cycle:
        first = cycle[0]
        index = next(i for i, u in enumerate(registry.units) if u.id == first)
        problems.append(
            Problem(
                where(("units", index, "parent")),
                "hierarchy cycle: " + " → ".join(cycle) + "; a unit cannot be its own ancestor",
                "cycle",
            )
        )
    group_ids: dict[str, int] = {}
    for index, group in enumerate(registry.groups):
        if group.id in group_ids or group.id in ids:
            problems.append(
                Problem(
                    where(("groups", index, "id")),
                    f"groups[{index}].id: '{group.id}' is already used by another group or unit",
                    "duplicate",
                )
            )
        group_ids.setdefault(group.id, index)
        problems.extend(_group_refs(loaded, ("groups", index), group, ids))
    return problems


def _group_refs(loaded: Loaded, base: tuple, group, ids: set[str]) -> Iterator[Problem]:
    for key in ("members", "parents", "exclude"):
        for m_index, member in enumerate(getattr(group, key)):
            if member not in ids:
                yield Problem(
                    loaded.source.where((*base, key, m_index)),
                    f"{'.'.join(map(str, base))}.{key}[{m_index}]: unknown unit '{member}'",
                    "unknown-unit",
                )


def _parent_plan_cycles(catalog: Catalog) -> list[Problem]:
    problems = []
    for plan_id, loaded in catalog.plans.items():
        seen = [plan_id]
        current = loaded.definition.parent_plan  # type: ignore[union-attr]  # plans only
        while current and current in catalog.plans:
            if current in seen:
                problems.append(
                    Problem(
                        loaded.source.where(("parent_plan",)),
                        "parent_plan: plans implement each other in a cycle: "
                        + " → ".join([*seen, current]),
                        "cycle",
                    )
                )
                break
            seen.append(current)
            current = catalog.plans[current].definition.parent_plan  # type: ignore[union-attr]  # a plan
    return problems


class PlanChecker:
    def __init__(
        self,
        loaded: Loaded,
        plan: Plan,
        registry: Registry,
        parent: Plan | None,
        catalog: Catalog,
    ) -> None:
        self.loaded = loaded
        self.plan = plan
        self.registry = registry
        self.parent = parent
        self.catalog = catalog
        self.view = RegistryView(registry, plan.groups)
        self.day = plan.as_of
        self.problems: list[Problem] = []

    def _problem(self, path: tuple, message: str, code: str) -> Problem:
        dotted = ""
        for step in path:
            dotted += f"[{step}]" if isinstance(step, int) else (f".{step}" if dotted else step)
        return Problem(self.loaded.source.where(path), f"{dotted}: {message}", code)

    def add(self, path: tuple, message: str, code: str) -> None:
        self.problems.append(self._problem(path, message, code))

    def warn(self, path: tuple, message: str, code: str) -> None:
        self.catalog.warnings.append(self._problem(path, f"cảnh báo: {message}", code))

    def check_time(self) -> None:
        """Effective date, first periods, deadline words (engine/checks_time.py)."""
        overrides = self.catalog.calendars.get("vn") or next(
            iter(self.catalog.calendars.values()), None
        )
        cal = WorkCalendar(overrides.definition if overrides else None)  # type: ignore[arg-type]  # a calendar
        warn_days = settings().first_deadline_warn_days
        TimeChecks(self.plan, cal, self.add, self.warn, warn_days).run()

    def run(self) -> list[Problem]:
        self.check_ids()
        self.check_groups()
        self.check_unit(("document", "issuer_unit"), self.plan.document.issuer_unit)
        self.check_assignments()
        self.check_deliverables()
        self.check_consolidations()
        self.check_duties()
        self.check_basis()
        self.check_recipients()
        self.check_time()
        return self.problems

    # -- helpers

    def check_unit(self, path: tuple, unit_id: str) -> bool:
        unit = self.view.unit(unit_id)
        if unit is None:
            self.add(
                path,
                f"unknown unit '{unit_id}' in registry '{self.registry.id}'; check the id "
                "against the registry file",
                "unknown-unit",
            )
            return False
        if not unit.valid_on(self.day):
            if unit.valid_to is not None and self.day > unit.valid_to:
                until = f" (it ended on {unit.valid_to})"
            else:
                until = f" (it starts on {unit.valid_from})"
            successor = self.view.successor_on(unit_id, self.day)
            hint = f"; its successor on that date is '{successor.id}'" if successor else ""
            self.add(
                path,
                f"unit '{unit_id}' is not valid on the plan date {self.day}{until}{hint}",
                "unit-not-valid",
            )
            return False
        return True

    def check_target(self, path: tuple, target: Target) -> None:
        if target.unit is not None:
            self.check_unit((*path, "unit"), target.unit)
            return
        assert target.group is not None
        if target.group not in self.view.groups:
            self.add(
                (*path, "group"),
                f"unknown group '{target.group}'; define it in the registry or in the plan's "
                "'groups'",
                "unknown-group",
            )
            return
        if not self.view.expand_group(target.group, self.day):
            self.add(
                (*path, "group"),
                f"group '{target.group}' expands to no unit valid on {self.day}; check its "
                "parents/kinds/tags or the units' valid dates",
                "empty-group",
            )

    def check_ids(self) -> None:
        for collection in (
            "assignments",
            "deliverables",
            "consolidations",
            "events",
            "duties",
            "report_templates",
            "basis",
            "groups",
        ):
            seen: dict[str, int] = {}
            for index, item in enumerate(getattr(self.plan, collection)):
                if item.id in seen:
                    self.add(
                        (collection, index, "id"),
                        f"id '{item.id}' is used twice in {collection} (also [{seen[item.id]}])",
                        "duplicate",
                    )
                seen.setdefault(item.id, index)
        tasks: dict[str, tuple] = {}
        for a_index, assignment in enumerate(self.plan.assignments):
            for t_index, task in enumerate(assignment.tasks):
                if task.id in tasks:
                    self.add(
                        ("assignments", a_index, "tasks", t_index, "id"),
                        f"task id '{task.id}' is used twice; task ids must be unique in a plan",
                        "duplicate",
                    )
                tasks.setdefault(task.id, (a_index, t_index))
        for t_index, template in enumerate(self.plan.report_templates):
            seen_fields: set[str] = set()
            for f_index, f in enumerate(template.fields):
                if f.id in seen_fields:
                    self.add(
                        ("report_templates", t_index, "fields", f_index, "id"),
                        f"field id '{f.id}' is used twice in template '{template.id}'",
                        "duplicate",
                    )
                seen_fields.add(f.id)

    def check_groups(self) -> None:
        ids = set(self.view.units)
        for index, group in enumerate(self.plan.groups):
            self.problems.extend(_group_refs(self.loaded, ("groups", index), group, ids))
            if not self.view.expand_group(group.id, self.day):
                self.add(
                    ("groups", index, "id"),
                    f"group '{group.id}' expands to no unit valid on {self.day}; check its "
                    "parents/kinds/tags or the units' valid dates",
                    "empty-group",
                )

    def check_assignments(self) -> None:
        for index, assignment in enumerate(self.plan.assignments):
            self.check_target(("assignments", index, "to"), assignment.to)
            for s_index, target in enumerate(assignment.supporting):
                self.check_target(("assignments", index, "supporting", s_index), target)

    def check_deliverables(self) -> None:
        assignment_ids = {a.id for a in self.plan.assignments}
        for index, deliverable in enumerate(self.plan.deliverables):
            base = ("deliverables", index)
            if deliverable.from_assignments != "all":
                for a_index, a_id in enumerate(deliverable.from_assignments):
                    if a_id not in assignment_ids:
                        self.add(
                            (*base, "from_assignments", a_index),
                            f"unknown assignment '{a_id}'; use an id from 'assignments'",
                            "unknown-assignment",
                        )
            self.check_unit((*base, "routing", "to"), deliverable.routing.to)
            if deliverable.routing.via:
                self.check_unit((*base, "routing", "via"), deliverable.routing.via)
            if deliverable.template and self.plan.template(deliverable.template) is None:
                self.add(
                    (*base, "template"),
                    f"unknown report template '{deliverable.template}'; define it under "
                    "'report_templates'",
                    "unknown-template",
                )
            self.check_rule_fits((*base, "deadline"), deliverable.deadline, deliverable.frequency)
            if any(days <= 0 for days in deliverable.reminders):
                self.add(
                    (*base, "reminders"),
                    "reminders are days before the deadline and must be positive",
                    "invalid",
                )

    def check_rule_fits(self, path: tuple, rule, frequency) -> None:
        periodic = {"yearly", "monthly", "quarter_end", "half_year_end"}
        if frequency.value == "once" and rule.rule in periodic:
            self.add(
                (*path, "rule"),
                f"rule '{rule.rule}' repeats but the frequency is 'once'; use 'fixed' or "
                "'after_activation', or set a frequency",
                "rule-frequency",
            )
        if rule.rule == "yearly" and frequency.value not in {"yearly", "once"}:
            self.add(
                (*path, "rule"),
                f"a yearly date cannot be the deadline of a {frequency.value} report; use "
                "'monthly', 'quarter_end' or 'half_year_end'",
                "rule-frequency",
            )

    def _sample_deadline(self, rule, frequency) -> dt.date | None:
        year = self.plan.start_year or self.plan.as_of.year
        try:
            cycle = cycles_in_year(frequency, year)[0]
            return nominal_date(rule, cycle, self.plan.as_of)
        except (ValueError, TypeError):
            return None

    def check_consolidations(self) -> None:
        for index, consolidation in enumerate(self.plan.consolidations):
            base = ("consolidations", index)
            self.check_unit((*base, "by"), consolidation.by)
            self.check_unit((*base, "routing", "to"), consolidation.routing.to)
            if consolidation.routing.via:
                self.check_unit((*base, "routing", "via"), consolidation.routing.via)
            fed = self.plan.deliverable(consolidation.consolidates)
            if fed is None:
                self.add(
                    (*base, "consolidates"),
                    f"unknown deliverable '{consolidation.consolidates}'; name a report "
                    "from 'deliverables'",
                    "unknown-deliverable",
                )
                continue
            if fed.kind.value != "report":
                self.add(
                    (*base, "consolidates"),
                    f"'{fed.id}' is a {fed.kind.value}, not a report; only reports are "
                    "consolidated",
                    "not-a-report",
                )
            receivers = {fed.routing.to, fed.routing.via}
            if consolidation.by not in receivers:
                self.add(
                    (*base, "by"),
                    f"'{consolidation.by}' receives no '{fed.id}' reports (they go to "
                    f"'{fed.routing.to}'"
                    + (f" via '{fed.routing.via}'" if fed.routing.via else "")
                    + "); consolidate at the receiving unit or change the report's routing",
                    "consolidator-receives-nothing",
                )
            self.check_rule_fits((*base, "deadline"), consolidation.deadline, fed.frequency)
            lower = self._sample_deadline(fed.deadline, fed.frequency)
            upper = self._sample_deadline(consolidation.deadline, fed.frequency)
            if lower and upper and lower >= upper:
                deliverable_index = self.plan.deliverables.index(fed)
                self.add(
                    ("deliverables", deliverable_index, "deadline"),
                    f"the units' deadline ({lower:%d/%m}) is on or after the consolidation "
                    f"deadline it feeds ('{consolidation.id}', {upper:%d/%m}); reports must "
                    "arrive before they are consolidated",
                    "deadline-order",
                )
            if consolidation.upward is not None:
                self.check_upward(base, consolidation, upper, fed.frequency)

    def check_upward(self, base: tuple, consolidation, upper, frequency) -> None:
        upward = consolidation.upward
        if self.plan.parent_plan and upward.plan != self.plan.parent_plan:
            self.add(
                (*base, "upward", "plan"),
                f"the report goes upward to '{upward.plan}' but parent_plan is "
                f"'{self.plan.parent_plan}'; make them the same",
                "upward-mismatch",
            )
        if self.parent is None or self.parent.id != upward.plan:
            return  # the parent is not loaded yet; checked again when it is
        target = self.parent.deliverable(upward.deliverable)
        if target is None:
            self.add(
                (*base, "upward", "deliverable"),
                f"plan '{upward.plan}' has no deliverable '{upward.deliverable}'",
                "unknown-deliverable",
            )
            return
        parent_due = self._sample_deadline(target.deadline, target.frequency)
        if parent_due and upper and upper > parent_due:
            self.add(
                (*base, "deadline"),
                f"the consolidation deadline ({upper:%d/%m}) is after the deadline of "
                f"'{upward.plan}' / '{upward.deliverable}' ({parent_due:%d/%m}) that it feeds",
                "deadline-order",
            )

    def check_duties(self) -> None:
        for index, duty in enumerate(self.plan.duties):
            base = ("duties", index)
            self.check_target((*base, "who"), duty.who)
            if duty.measured_by:
                templates = (
                    [self.plan.template(duty.template)]
                    if duty.template
                    else list(self.plan.report_templates)
                )
                if duty.template and templates[0] is None:
                    self.add(
                        (*base, "template"),
                        f"unknown report template '{duty.template}'",
                        "unknown-template",
                    )
                elif not any(t is not None and t.field(duty.measured_by) for t in templates):
                    self.add(
                        (*base, "measured_by"),
                        f"no report template has a field '{duty.measured_by}'; use a field "
                        "id from 'report_templates'",
                        "unknown-field",
                    )

    def check_basis(self) -> None:
        ids = {b.id for b in self.plan.basis}
        for index, item in enumerate(self.plan.basis):
            for i_index, ref in enumerate(item.implements):
                if ref not in ids:
                    self.add(
                        ("basis", index, "implements", i_index),
                        f"unknown basis item '{ref}'; use an id from 'basis'",
                        "unknown-basis",
                    )

    def check_recipients(self) -> None:
        for index, recipient in enumerate(self.plan.recipients):
            for u_index, unit_id in enumerate(recipient.units):
                if self.view.unit(unit_id) is None:
                    self.add(
                        ("recipients", index, "units", u_index),
                        f"unknown unit '{unit_id}'",
                        "unknown-unit",
                    )
            for g_index, group_id in enumerate(recipient.groups):
                if group_id not in self.view.groups:
                    self.add(
                        ("recipients", index, "groups", g_index),
                        f"unknown group '{group_id}'",
                        "unknown-group",
                    )
