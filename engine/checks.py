"""Domain checks across definitions: what the schema alone cannot see."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator

from engine.calendar import WorkCalendar, cycles_in_year, nominal_date
from engine.catalog import Catalog, Loaded
from engine.checks_authority import check_authority
from engine.checks_requests import check_requests
from engine.checks_tasks import TaskChecks
from engine.checks_templates import check_templates
from engine.checks_time import TimeChecks, first_deadline_warn_days
from engine.errors import Problem
from engine.levels import level_problems
from engine.party import kind_problem
from engine.registry import RegistryView
from engine.schema import AfterActivation, PeriodEnd, Plan, Registry, Target

# Bounds the schema leaves open, so that no later date computation overflows: a plan's
# years, days after activation, a period-end offset, reminder days.
YEARS = (1900, 2200)
MAX_AFTER_ACTIVATION_DAYS = 3660
MAX_OFFSET_DAYS = 366
MAX_REMINDER_DAYS = 366


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
                    f"registry: chưa có danh mục đơn vị '{plan.registry}' (không được nạp "
                    "hay đưa kèm); đưa cả tệp YAML của nó, hoặc `kehoach load` nó trước",
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
                    f"units[{index}].id: mã đơn vị '{unit.id}' bị dùng hai lần (cả ở units"
                    f"[{seen[unit.id]}]); mỗi đơn vị cần một mã riêng",
                    "duplicate",
                )
            )
        seen.setdefault(unit.id, index)
    ids = set(seen)
    by_id = {u.id: u for u in registry.units}
    for index, unit in enumerate(registry.units):
        if unit.parent is not None and unit.parent not in ids:
            problems.append(
                Problem(
                    where(("units", index, "parent")),
                    f"units[{index}].parent: không có đơn vị '{unit.parent}'; thêm nó vào "
                    "danh mục hoặc sửa mã",
                    "unknown-unit",
                )
            )
        problems.extend(level_problems(where, index, unit, by_id))
        problems.extend(_successor_problems(where, index, unit, ids))
        if (wrong := kind_problem(unit.name, unit.kind)) is not None:  # engine.party
            problems.append(Problem(where(("units", index, "kind")), wrong, "party-kind"))
        if unit.successors and unit.valid_to is None:
            problems.append(
                Problem(
                    where(("units", index, "successors")),
                    f"units[{index}].successors: '{unit.id}' có đơn vị kế thừa nhưng không có "
                    "valid_to; ghi ngày cuối cùng đơn vị còn tồn tại",
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
                "vòng lặp cấp trên (hierarchy cycle): "
                + " → ".join(cycle)
                + "; một đơn vị không thể là cấp trên của chính nó",
                "cycle",
            )
        )
    group_ids: dict[str, int] = {}
    for index, group in enumerate(registry.groups):
        if group.id in group_ids or group.id in ids:
            problems.append(
                Problem(
                    where(("groups", index, "id")),
                    f"groups[{index}].id: '{group.id}' đã là mã của một nhóm hay đơn vị khác",
                    "duplicate",
                )
            )
        group_ids.setdefault(group.id, index)
        problems.extend(_group_refs(loaded, ("groups", index), group, ids))
    return problems


def _successor_problems(where, index: int, unit, ids: set[str]) -> Iterator[Problem]:
    """Successors of ``units[index]`` that are unknown, or the unit itself."""
    for s_index, successor in enumerate(unit.successors):
        if successor not in ids:
            yield Problem(
                where(("units", index, "successors", s_index)),
                f"units[{index}].successors[{s_index}]: không có đơn vị '{successor}' trong "
                "danh mục",
                "unknown-unit",
            )
        elif successor == unit.id:
            yield Problem(
                where(("units", index, "successors", s_index)),
                f"units[{index}].successors[{s_index}]: một đơn vị không thể kế thừa chính nó",
                "cycle",
            )


def _group_refs(loaded: Loaded, base: tuple, group, ids: set[str]) -> Iterator[Problem]:
    for key in ("members", "parents", "exclude"):
        for m_index, member in enumerate(getattr(group, key)):
            if member not in ids:
                yield Problem(
                    loaded.source.where((*base, key, m_index)),
                    f"{'.'.join(map(str, base))}.{key}[{m_index}]: không có đơn vị "
                    f"'{member}' trong danh mục",
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
                        "parent_plan: các kế hoạch thực hiện lẫn nhau thành vòng: "
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

    def resolved(self, target: Target) -> set[str]:
        """The unit ids a target names as of the plan's date (none for an unknown group,
        which check_target reports)."""
        if target.group is not None and target.group not in self.view.groups:
            return set()
        return {u.id for u in self.view.resolve(target, self.day)}

    def check_time(self) -> None:
        """Effective date, first periods, deadline words (engine/checks_time.py)."""
        overrides = self.catalog.calendars.get("vn") or next(
            iter(self.catalog.calendars.values()), None
        )
        cal = WorkCalendar(overrides.definition if overrides else None)  # type: ignore[arg-type]  # a calendar
        warn_days = first_deadline_warn_days()
        time = TimeChecks(self.plan, cal, self.add, self.warn, warn_days)
        time.run()
        TaskChecks(
            self.plan, self.add, self.warn, self.check_target, self.check_unit, time, self.resolved
        ).run()

    def run(self) -> list[Problem]:
        self.check_numbers()
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
        check_templates(self.plan, self.view, self.add)
        check_authority(self.plan, self.view, self.add, self.warn, self.check_unit)
        check_requests(self.plan, self.add)
        return self.problems

    # -- helpers

    def check_numbers(self) -> None:
        low, high = YEARS
        for name in ("start_year", "end_year"):
            year = getattr(self.plan, name)
            if year is not None and not low <= year <= high:
                self.add(
                    (name,), f"năm {year} nằm ngoài {low}–{high}; viết năm có 4 chữ số", "range"
                )
        start, end = self.plan.start_year, self.plan.end_year
        if start is not None and end is not None and end < start:
            self.add(
                ("end_year",), f"end_year {end} trước start_year {start}; đổi chỗ hai năm", "range"
            )
        rules = [
            (("deliverables", i, "deadline"), d.deadline)
            for i, d in enumerate(self.plan.deliverables)
        ]
        rules += [
            (("consolidations", i, "deadline"), c.deadline)
            for i, c in enumerate(self.plan.consolidations)
        ]
        rules += [(("events", i, "date"), e.date) for i, e in enumerate(self.plan.events) if e.date]
        for path, rule in rules:
            if isinstance(rule, AfterActivation) and rule.days > MAX_AFTER_ACTIVATION_DAYS:
                self.add(
                    (*path, "days"),
                    f"{rule.days} ngày sau kích hoạt là quá xa (tối đa {MAX_AFTER_ACTIVATION_DAYS})",
                    "range",
                )
            if isinstance(rule, PeriodEnd) and abs(rule.offset_days) > MAX_OFFSET_DAYS:
                self.add(
                    (*path, "offset_days"),
                    f"lệch {rule.offset_days} ngày so với cuối kỳ là quá xa (tối đa ±{MAX_OFFSET_DAYS})",
                    "range",
                )

    def check_unit(self, path: tuple, unit_id: str) -> bool:
        unit = self.view.unit(unit_id)
        if unit is None:
            self.add(
                path,
                f"không có đơn vị '{unit_id}' trong danh mục '{self.registry.id}'; đối chiếu "
                "mã với tệp danh mục",
                "unknown-unit",
            )
            return False
        if not unit.valid_on(self.day):
            if unit.valid_to is not None and self.day > unit.valid_to:
                until = f" (đã kết thúc ngày {unit.valid_to})"
            else:
                until = f" (bắt đầu từ ngày {unit.valid_from})"
            successor = self.view.successor_on(unit_id, self.day)
            hint = f"; đơn vị kế thừa vào ngày đó là '{successor.id}'" if successor else ""
            self.add(
                path,
                f"đơn vị '{unit_id}' không còn hiệu lực vào ngày của kế hoạch {self.day}"
                f"{until}{hint}",
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
                f"không có nhóm '{target.group}'; định nghĩa nó trong danh mục hoặc trong "
                "'groups' của kế hoạch",
                "unknown-group",
            )
            return
        if not self.view.expand_group(target.group, self.day):
            self.add(
                (*path, "group"),
                f"nhóm '{target.group}' không gồm đơn vị nào còn hiệu lực ngày {self.day}; "
                "kiểm tra parents/kinds/tags của nhóm hoặc ngày hiệu lực của các đơn vị",
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
            "sections",
        ):
            seen: dict[str, int] = {}
            for index, item in enumerate(getattr(self.plan, collection)):
                if item.id in seen:
                    self.add(
                        (collection, index, "id"),
                        f"mã '{item.id}' bị dùng hai lần trong {collection} (cả ở "
                        f"[{seen[item.id]}]); mỗi mục cần một mã riêng",
                        "duplicate",
                    )
                seen.setdefault(item.id, index)
        tasks: dict[str, tuple] = {}
        for a_index, assignment in enumerate(self.plan.assignments):
            for t_index, task in enumerate(assignment.tasks):
                if task.id in tasks:
                    self.add(
                        ("assignments", a_index, "tasks", t_index, "id"),
                        f"mã nhiệm vụ '{task.id}' bị dùng hai lần; mã nhiệm vụ phải khác nhau "
                        "trong một kế hoạch",
                        "duplicate",
                    )
                tasks.setdefault(task.id, (a_index, t_index))
        for t_index, template in enumerate(self.plan.report_templates):
            seen_fields: set[str] = set()
            for f_index, f in enumerate(template.fields):
                if f.id in seen_fields:
                    self.add(
                        ("report_templates", t_index, "fields", f_index, "id"),
                        f"mã trường '{f.id}' bị dùng hai lần trong mẫu '{template.id}'",
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
                    f"nhóm '{group.id}' không gồm đơn vị nào còn hiệu lực ngày {self.day}; "
                    "kiểm tra parents/kinds/tags của nhóm hoặc ngày hiệu lực của các đơn vị",
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
                            f"không có phân công '{a_id}'; dùng một mã trong 'assignments'",
                            "unknown-assignment",
                        )
            self.check_unit((*base, "routing", "to"), deliverable.routing.to)
            if deliverable.routing.via:
                self.check_unit((*base, "routing", "via"), deliverable.routing.via)
            if deliverable.template and self.plan.template(deliverable.template) is None:
                self.add(
                    (*base, "template"),
                    f"không có mẫu báo cáo '{deliverable.template}'; định nghĩa nó trong "
                    "'report_templates'",
                    "unknown-template",
                )
            self.check_rule_fits((*base, "deadline"), deliverable.deadline, deliverable.frequency)
            if any(not 1 <= days <= MAX_REMINDER_DAYS for days in deliverable.reminders):
                self.add(
                    (*base, "reminders"),
                    "reminders là số ngày trước hạn, phải từ 1 đến 366",
                    "invalid",
                )

    def check_rule_fits(self, path: tuple, rule, frequency) -> None:
        periodic = {"yearly", "monthly", "quarter_end", "half_year_end"}
        if frequency.value == "once" and rule.rule in periodic:
            self.add(
                (*path, "rule"),
                f"quy tắc '{rule.rule}' lặp lại nhưng tần suất là 'once' (một lần); dùng "
                "'fixed' hoặc 'after_activation', hoặc đặt frequency",
                "rule-frequency",
            )
        if rule.rule == "yearly" and frequency.value not in {"yearly", "once"}:
            self.add(
                (*path, "rule"),
                f"một ngày hằng năm không thể là hạn của báo cáo {frequency.value}; dùng "
                "'monthly', 'quarter_end' hoặc 'half_year_end'",
                "rule-frequency",
            )

    def _sample_deadline(self, rule, frequency) -> dt.date | None:
        year = self.plan.start_year or self.plan.as_of.year
        try:
            cycle = cycles_in_year(frequency, year)[0]
            return nominal_date(rule, cycle, self.plan.as_of)
        except (ValueError, TypeError, OverflowError, IndexError):  # on request: no period
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
                    f"không có sản phẩm '{consolidation.consolidates}'; ghi mã một báo cáo "
                    "trong 'deliverables'",
                    "unknown-deliverable",
                )
                continue
            if fed.kind.value != "report":
                self.add(
                    (*base, "consolidates"),
                    f"'{fed.id}' là {fed.kind.value}, không phải báo cáo (not a report); chỉ "
                    "báo cáo mới được tổng hợp",
                    "not-a-report",
                )
            receivers = {fed.routing.to, fed.routing.via}
            if consolidation.by not in receivers:
                self.add(
                    (*base, "by"),
                    f"'{consolidation.by}' không nhận báo cáo '{fed.id}' nào (báo cáo gửi "
                    f"'{fed.routing.to}'"
                    + (f" qua '{fed.routing.via}'" if fed.routing.via else "")
                    + "); tổng hợp ở đơn vị nhận, hoặc sửa routing của báo cáo",
                    "consolidator-receives-nothing",
                )
            self.check_rule_fits((*base, "deadline"), consolidation.deadline, fed.frequency)
            lower = self._sample_deadline(fed.deadline, fed.frequency)
            upper = self._sample_deadline(consolidation.deadline, fed.frequency)
            if lower and upper and lower >= upper:
                self.add(
                    self._deadline_path(fed),
                    f"hạn của các đơn vị ({lower:%d/%m}) trùng hoặc sau hạn tổng hợp mà nó "
                    f"phục vụ ('{consolidation.id}', {upper:%d/%m}); báo cáo phải đến trước "
                    "khi tổng hợp",
                    "deadline-order",
                )
            if consolidation.upward is not None:
                self.check_upward(base, consolidation, upper, fed.frequency)

    def _deadline_path(self, fed) -> tuple:
        """Where the deadline of a consolidated deliverable is written: its own entry, or
        the ``due`` of the tracked task it is made from (engine.tasks)."""
        if fed in self.plan.deliverables:
            return ("deliverables", self.plan.deliverables.index(fed), "deadline")
        task = self.plan.tracked.task_of(fed.id)
        assert task is not None  # every task deliverable is made from a task
        return (*task.path, "due")

    def check_upward(self, base: tuple, consolidation, upper, frequency) -> None:
        upward = consolidation.upward
        if self.plan.parent_plan and upward.plan != self.plan.parent_plan:
            self.add(
                (*base, "upward", "plan"),
                f"báo cáo gửi lên kế hoạch '{upward.plan}' nhưng parent_plan là "
                f"'{self.plan.parent_plan}'; đặt hai giá trị giống nhau",
                "upward-mismatch",
            )
        if self.parent is None or self.parent.id != upward.plan:
            return  # the parent is not loaded yet; checked again when it is
        target = self.parent.deliverable(upward.deliverable)
        if target is None:
            self.add(
                (*base, "upward", "deliverable"),
                f"kế hoạch '{upward.plan}' không có sản phẩm '{upward.deliverable}'",
                "unknown-deliverable",
            )
            return
        parent_due = self._sample_deadline(target.deadline, target.frequency)
        if parent_due and upper and upper > parent_due:
            self.add(
                (*base, "deadline"),
                f"hạn tổng hợp ({upper:%d/%m}) sau hạn của '{upward.plan}' / "
                f"'{upward.deliverable}' ({parent_due:%d/%m}) mà nó phục vụ; đặt hạn sớm hơn",
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
                        f"không có mẫu báo cáo '{duty.template}'",
                        "unknown-template",
                    )
                elif not any(t is not None and t.field(duty.measured_by) for t in templates):
                    self.add(
                        (*base, "measured_by"),
                        f"không mẫu báo cáo nào có trường '{duty.measured_by}'; dùng một mã "
                        "trường trong 'report_templates'",
                        "unknown-field",
                    )

    def check_basis(self) -> None:
        ids = {b.id for b in self.plan.basis}
        for index, item in enumerate(self.plan.basis):
            for i_index, ref in enumerate(item.implements):
                if ref not in ids:
                    self.add(
                        ("basis", index, "implements", i_index),
                        f"không có căn cứ '{ref}'; dùng một mã trong 'basis'",
                        "unknown-basis",
                    )

    def check_recipients(self) -> None:
        for index, recipient in enumerate(self.plan.recipients):
            for u_index, unit_id in enumerate(recipient.units):
                if self.view.unit(unit_id) is None:
                    self.add(
                        ("recipients", index, "units", u_index),
                        f"không có đơn vị '{unit_id}' trong danh mục",
                        "unknown-unit",
                    )
            for g_index, group_id in enumerate(recipient.groups):
                if group_id not in self.view.groups:
                    self.add(
                        ("recipients", index, "groups", g_index),
                        f"không có nhóm '{group_id}'",
                        "unknown-group",
                    )
