"""Which report fields a unit is asked for, and counted in (``applies_to`` of a field).

A commune reports fires; a mass organisation reports its propaganda work. A field with
``applies_to`` is shown, required and aggregated only for the units it names: by unit,
by group (resolved against the registry as of the plan's ``as_of``, as assignments are)
or by the assignment the unit owes the report through. A unit that took over another's
duty (``transferred_from``) is asked what the unit it took over from was asked.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from engine.registry import RegistryView
from engine.schema import Plan, ReportTemplate, TemplateField

if TYPE_CHECKING:  # `kehoach validate` loads this module and never SQLAlchemy
    from sqlalchemy.orm import Session


@dataclass(frozen=True)
class UnitFacts:
    """What decides a unit's fields: who it is (or took over from), why it owes."""

    unit_id: str
    transferred_from: str | None = None
    assignment_ids: tuple[str, ...] = ()

    @classmethod
    def of(cls, row: Any) -> UnitFacts:
        """From an obligation (ORM object or row: unit_id, transferred_from, assignment_ids)."""
        ids = row.assignment_ids or ()
        return cls(str(row.unit_id), row.transferred_from, tuple(str(i) for i in ids))


def needs_registry(template: ReportTemplate) -> bool:
    """Whether deciding the template's fields for a unit needs the registry (groups)."""
    return any(f.applies_to is not None and f.applies_to.groups for f in template.fields)


class Applicability:
    """The fields of one template per unit, with the groups it names expanded once."""

    def __init__(
        self, plan: Plan, template: ReportTemplate, view: RegistryView | None = None
    ) -> None:
        self.template = template
        self.members: dict[str, set[str]] = {}
        if needs_registry(template):
            if view is None:
                raise ValueError(f"template '{template.id}' names groups: a registry is needed")
            wanted = {g for f in template.fields if f.applies_to for g in f.applies_to.groups}
            for group_id in wanted:
                if group_id in view.groups:
                    self.members[group_id] = {u.id for u in view.expand_group(group_id, plan.as_of)}
        # Per field: the units it names (its groups' members included) and assignments.
        self._rules: dict[str, tuple[set[str], set[str]]] = {}
        for f in template.fields:
            if f.applies_to is not None:
                units = set(f.applies_to.units)
                for group_id in f.applies_to.groups:
                    units |= self.members.get(group_id, set())
                self._rules[f.id] = (units, set(f.applies_to.assignments))

    def applies(self, field: TemplateField, facts: UnitFacts) -> bool:
        rule = self._rules.get(field.id)
        if rule is None:
            return True
        units, assignments = rule
        if facts.unit_id in units or (facts.transferred_from or "") in units:
            return True
        return any(a in assignments for a in facts.assignment_ids)

    def covers(self, field: TemplateField, facts: UnitFacts) -> bool:
        """Whether the field is the unit's (a ratio field: where both its parts are)."""
        if field.ratio_of is None:
            return self.applies(field, facts)
        parts = [p for p in (self.template.field(i) for i in field.ratio_of) if p]
        return all(self.applies(part, facts) for part in parts)

    def asked(self, facts: UnitFacts) -> list[TemplateField]:
        """The fields the unit's form shows and checks, in template order."""
        return [f for f in self.template.fields if not f.derived and self.applies(f, facts)]

    def form_template(self, facts: UnitFacts) -> ReportTemplate:
        """The template as the unit answers it: only its fields (a copy when fewer)."""
        fields = self.asked(facts)
        if len(fields) == len(self.template.fields):
            return self.template
        return self.template.model_copy(update={"fields": fields})

    def units_of(self, field: TemplateField, owing: Iterable[UnitFacts]) -> list[str]:
        """The units among ``owing`` the field covers, in the given order."""
        return [facts.unit_id for facts in owing if self.covers(field, facts)]


def registry_view(session: Session, plan: Plan, registry_id: str) -> RegistryView:
    """The current registry of ``registry_id`` with the plan's groups (cached registry)."""
    from engine.definitions_cache import current_registry
    from engine.errors import NotFound

    registry = current_registry(session, registry_id)
    if registry is None:
        raise NotFound(f"registry '{registry_id}' is not loaded; `kehoach load` it")
    return RegistryView(registry, plan.groups)


def unit_template(
    plan: Plan,
    template: ReportTemplate,
    row: Any,
    registry_id: str,
    open_session: Callable[[], AbstractContextManager[Session]],
) -> ReportTemplate:
    """The template as the obligation ``row``'s unit answers it; the registry is read
    (through ``open_session``) only when the template names groups."""
    if not any(f.applies_to is not None or f.derived for f in template.fields):
        return template
    view = None
    if needs_registry(template):
        with open_session() as session:
            view = registry_view(session, plan, registry_id)
    return Applicability(plan, template, view).form_template(UnitFacts.of(row))
