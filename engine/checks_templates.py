"""Cross-checks of report template fields: ``applies_to`` and ``ratio_of``.

A field's ``applies_to`` must name groups, units and assignments that exist and select
at least one unit owing a report with that template; ``ratio_of`` must name two numeric
fields of the same template. Otherwise the field would silently do nothing.
"""

from __future__ import annotations

from collections.abc import Callable

from engine.applicability import Applicability, UnitFacts
from engine.registry import RegistryView
from engine.schema import DeliverableKind, FieldType, Plan, ReportTemplate, TemplateField

Add = Callable[[tuple, str, str], None]
_COUNTABLE = {FieldType.integer, FieldType.decimal}


def check_templates(plan: Plan, view: RegistryView, add: Add) -> None:
    """Report every problem of the plan's template fields through ``add(path, message, code)``."""
    for t_index, template in enumerate(plan.report_templates):
        owing = _owing(plan, view, template)
        applicability = Applicability(plan, template, view) if owing is not None else None
        for f_index, field in enumerate(template.fields):
            path = ("report_templates", t_index, "fields", f_index)
            if field.applies_to is not None:
                known = _applies_to_refs(plan, view, field, path, add)
                if known and owing and applicability and not applicability.units_of(field, owing):
                    add(
                        (*path, "applies_to"),
                        f"không chọn đơn vị nào trong {len(owing)} đơn vị phải báo cáo theo mẫu "
                        f"'{template.id}'; trường này sẽ không bao giờ được hỏi",
                        "empty-applies-to",
                    )
            if field.ratio_of is not None:
                _ratio_refs(template, field, path, add)


def _applies_to_refs(
    plan: Plan, view: RegistryView, field: TemplateField, path: tuple, add: Add
) -> bool:
    rule = field.applies_to
    assert rule is not None
    ok = True
    for index, group_id in enumerate(rule.groups):
        if group_id not in view.groups:
            add(
                (*path, "applies_to", "groups", index),
                f"không có nhóm '{group_id}'; khai báo nó trong danh bạ hoặc ở 'groups' của kế hoạch",
                "unknown-group",
            )
            ok = False
    for index, unit_id in enumerate(rule.units):
        if view.unit(unit_id) is None:
            add(
                (*path, "applies_to", "units", index),
                f"không có đơn vị '{unit_id}' trong danh bạ '{view.registry.id}'",
                "unknown-unit",
            )
            ok = False
    for index, assignment_id in enumerate(rule.assignments):
        if plan.assignment(assignment_id) is None:
            add(
                (*path, "applies_to", "assignments", index),
                f"không có phần giao việc '{assignment_id}'; dùng một mã trong 'assignments'",
                "unknown-assignment",
            )
            ok = False
    return ok


def _ratio_refs(template: ReportTemplate, field: TemplateField, path: tuple, add: Add) -> None:
    assert field.ratio_of is not None
    for index, part_id in enumerate(field.ratio_of):
        part = template.field(part_id)
        where = (*path, "ratio_of", index)
        if part is None:
            add(where, f"mẫu '{template.id}' không có trường '{part_id}'", "unknown-field")
        elif part.type not in _COUNTABLE or part.derived:
            add(
                where,
                f"trường '{part_id}' thuộc loại '{part.type.value}'; tỷ lệ phải lấy từ hai trường "
                "đếm được (integer hoặc decimal)",
                "invalid-ratio",
            )


def _owing(plan: Plan, view: RegistryView, template: ReportTemplate) -> list[UnitFacts] | None:
    """The units that owe a report with ``template`` on the plan date (None: no report
    deliverable uses it, or an assignment names something unknown: reported elsewhere)."""
    facts: dict[str, list[str]] = {}
    used = False
    for deliverable in plan.deliverables:
        if deliverable.kind is not DeliverableKind.report or deliverable.template != template.id:
            continue
        used = True
        wanted = deliverable.from_assignments
        for assignment in plan.assignments:
            if wanted != "all" and assignment.id not in wanted:
                continue
            if assignment.to.group is not None and assignment.to.group not in view.groups:
                return None
            for unit in view.resolve(assignment.to, plan.as_of):
                facts.setdefault(unit.id, []).append(assignment.id)
    if not used:
        return None
    return [UnitFacts(unit_id, None, tuple(ids)) for unit_id, ids in facts.items()]
