"""The organisation registry as of a date: unit look-up, group expansion, successors.

The hierarchy is data (units carry valid_from/valid_to and successors), so a 2022
district plan resolves against the 2022 registry and a 2026 commune plan against
the 2026 one, with no code change.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import TYPE_CHECKING

from engine.schema import Group, Registry, Target, Unit

if TYPE_CHECKING:
    from engine.registry_dated import History


class RegistryView:
    """Read-only queries on one registry (plus plan-local groups) as of a date."""

    def __init__(self, registry: Registry, extra_groups: Iterable[Group] = ()) -> None:
        self.registry = registry
        # Versions written by change sets (engine.registry_changes, folded by engine.registry_dated), where applied.
        self.history: History | None = getattr(registry, "history", None)
        self.units: dict[str, Unit] = {u.id: u for u in registry.units}
        self.groups: dict[str, Group] = {g.id: g for g in registry.groups}
        for group in extra_groups:
            self.groups[group.id] = group

    def unit(self, unit_id: str) -> Unit | None:
        return self.units.get(unit_id)

    def unit_on(self, unit_id: str | None, day: dt.date) -> Unit | None:
        """The unit with the name, parent and contacts it had on ``day`` (its first
        version before it existed, its last after it ended)."""
        if unit_id is None:
            return None
        if self.history is not None:
            version = self.history.version_on(unit_id, day)
            if version is not None:
                return version.unit
        return self.units.get(unit_id)

    def heirs(self, unit_id: str, day: dt.date, deliverable_id: str | None = None) -> list[Unit]:
        """Who carries ``unit_id``'s duty ``deliverable_id`` on ``day``: itself while
        valid; else, following successors, the split rule's heir (or every successor,
        ``each``), else the first valid successor; [] when the chain ends nowhere."""
        unit = self.units.get(unit_id)
        if unit is None:
            return []
        if unit.valid_on(day):
            return [unit]
        rule = self.history.rules.get(unit_id) if self.history is not None else None
        if rule is not None and rule.each:
            found: list[Unit] = []
            for next_id in unit.successors:
                found += [u for u in self.heirs(next_id, day, deliverable_id) if u not in found]
            return found
        if rule is not None:
            named = rule.heir(deliverable_id) if deliverable_id else rule.default
            if named is not None:
                return self.heirs(named, day, deliverable_id)
        successor = self.successor_on(unit_id, day)
        return [successor] if successor is not None else []

    def expand_group(self, group_id: str, day: dt.date) -> list[Unit]:
        """Members of a group among the units valid on ``day``, in registry order."""
        group = self.groups[group_id]
        chosen: list[Unit] = []
        explicit = set(group.members)
        rule_based = bool(group.parents or group.kinds or group.tags)
        for unit in self.registry.units:
            if not unit.valid_on(day) or unit.id in group.exclude:
                continue
            if unit.id in explicit:
                chosen.append(unit)
                continue
            if not rule_based:
                continue
            then = self.unit_on(unit.id, day) or unit  # its parent on that day
            if group.parents and then.parent not in group.parents:
                continue
            if group.kinds and unit.kind not in group.kinds:
                continue
            if group.tags and not set(group.tags) <= set(unit.tags):
                continue
            chosen.append(unit)
        return chosen

    def resolve(self, target: Target, day: dt.date) -> list[Unit]:
        """The units a target names on ``day`` (a unit no longer valid resolves to nobody)."""
        if target.unit is not None:
            unit = self.units.get(target.unit)
            return [unit] if unit is not None and unit.valid_on(day) else []
        assert target.group is not None
        return self.expand_group(target.group, day)

    def successor_on(self, unit_id: str, day: dt.date) -> Unit | None:
        """The unit that carries ``unit_id``'s duties on ``day``, following successor links.

        Returns the unit itself when still valid, None when the chain ends nowhere
        valid.  Where a unit has several successors the first listed takes over.
        """
        seen: set[str] = set()
        current = self.units.get(unit_id)
        while current is not None and current.id not in seen:
            if current.valid_on(day):
                return current
            seen.add(current.id)
            current = next((self.units[s] for s in current.successors if s in self.units), None)
        return None

    def parent_cycle(self) -> list[str] | None:
        """A cycle in parent links (ids in order), or None."""
        for start in self.units:
            path: list[str] = []
            current: str | None = start
            while current is not None and current in self.units:
                if current in path:
                    return path[path.index(current) :] + [current]
                path.append(current)
                current = self.units[current].parent
        return None
