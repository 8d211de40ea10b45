"""What a load reads: each definition with the source it came from, gathered by kind and id.

Shared by the loader (which fills a :class:`Catalog`), the domain checks (which read
it) and the repository (which stores it), so none of them imports another for it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from engine.errors import Problem
from engine.schema import CalendarOverrides, Plan, Registry
from engine.yamlsource import Source

Definition = Registry | Plan | CalendarOverrides


@dataclass
class Loaded:
    definition: Definition
    source: Source


@dataclass
class Catalog:
    """Everything read in one go, by kind and id."""

    registries: dict[str, Loaded] = field(default_factory=dict)
    plans: dict[str, Loaded] = field(default_factory=dict)
    calendars: dict[str, Loaded] = field(default_factory=dict)
    # Definitions found only as context (sibling files, the store): not to be stored again.
    context_ids: set[tuple[str, str]] = field(default_factory=set)
    # Findings that do not stop a load (printed once by `kehoach validate` and `load`).
    warnings: list[Problem] = field(default_factory=list)

    def table(self, kind: str) -> dict[str, Loaded]:
        return {"registry": self.registries, "plan": self.plans, "calendar": self.calendars}[kind]

    def items(self) -> Iterable[Loaded]:
        yield from self.registries.values()
        yield from self.plans.values()
        yield from self.calendars.values()

    def given(self) -> list[Loaded]:
        """The definitions the user named (not the ones read for context)."""
        return [
            item
            for item in self.items()
            if (item.definition.kind, item.definition.id) not in self.context_ids
        ]
