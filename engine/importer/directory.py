"""The registry as the importer reads it: units (id, name, short code, parent, dates) and
groups (id, name), taken straight from a registry YAML that is well formed.

Reading it this way spares the command the schema's start-up cost (most of the time
of an import, see README "Importing a plan document").  Whatever does not have the
expected shape is left to the loader, which reports it located (``kehoach validate``'s
messages); a registry already validated (``engine.schema.Registry``) is used as it is.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class UnitEntry:
    id: str
    name: str
    short: str | None = None
    parent: str | None = None
    valid_from: dt.date = dt.date(1900, 1, 1)
    valid_to: dt.date | None = None
    successors: tuple[str, ...] = ()

    def valid_on(self, day: dt.date) -> bool:
        return self.valid_from <= day and (self.valid_to is None or day <= self.valid_to)


@dataclass(frozen=True)
class GroupEntry:
    id: str
    name: str


@dataclass(frozen=True)
class Directory:
    id: str
    units: list[UnitEntry] = field(default_factory=list)
    groups: list[GroupEntry] = field(default_factory=list)
    path: str | None = None  # the file, read again by the loader where change sets apply


def _text(value: Any) -> bool:
    return isinstance(value, str) and bool(value.strip())


def _day(value: Any, default: dt.date | None) -> dt.date | None:
    if value is None:
        return default
    if isinstance(value, dt.date) and not isinstance(value, dt.datetime):
        return value
    raise ValueError("not a date")


def directory_of(data: Any, path: str | None = None) -> Directory | None:
    """The registry in ``data`` (a parsed YAML document, read from ``path``), or None where
    anything the importer reads is not of the schema's shape (the loader then says what)."""
    if not isinstance(data, dict) or data.get("kind") != "registry" or not _text(data.get("id")):
        return None
    units = data.get("units")
    groups = data.get("groups") or []
    if not isinstance(units, list) or not isinstance(groups, list):
        return None
    if any(isinstance(u, dict) and not isinstance(u.get("successors") or [], list) for u in units):
        return None
    try:
        read_units = [
            UnitEntry(
                id=u["id"],
                name=u["name"],
                short=u.get("short"),
                parent=u.get("parent"),
                valid_from=_day(u.get("valid_from"), dt.date(1900, 1, 1)) or dt.date(1900, 1, 1),
                valid_to=_day(u.get("valid_to"), None),
                successors=tuple(u.get("successors") or ()),
            )
            for u in units
            if isinstance(u, dict) and _text(u.get("id")) and _text(u.get("name"))
        ]
        read_groups = [
            GroupEntry(g["id"], g["name"])
            for g in groups
            if isinstance(g, dict) and _text(g.get("id")) and _text(g.get("name"))
        ]
    except (KeyError, TypeError, ValueError):
        return None
    if len(read_units) != len(units) or len(read_groups) != len(groups):
        return None
    if any(u.short is not None and not _text(u.short) for u in read_units):
        return None
    if any(not all(_text(s) for s in u.successors) for u in read_units):
        return None
    return Directory(data["id"], read_units, read_groups, path)
