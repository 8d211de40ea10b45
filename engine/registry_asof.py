"""Units as of a day: the facts an email gives about a unit on its date, and the
versions of one unit (``kehoach registry history``)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy.orm import Session

from engine.definitions_cache import current_registry, current_registry_key
from engine.ended import heir_label
from engine.registry import RegistryView
from engine.registry_dated import ONE_DAY, UnitVersion
from engine.schema import Person, Registry, Unit
from engine.vntext import short_date

_INDEXES: dict[int, tuple[Registry, dict[str, Unit]]] = {}


def _index(registry: Registry) -> dict[str, Unit]:
    found = _INDEXES.get(id(registry))
    if found is None or found[0] is not registry:
        if len(_INDEXES) > 32:
            _INDEXES.clear()
        found = (registry, {u.id: u for u in registry.units})
        _INDEXES[id(registry)] = found
    return found[1]


def _person(person: Person | None) -> dict[str, Any] | None:
    if person is None:
        return None
    return {k: getattr(person, k) for k in ("name", "title", "email", "phone")}


def dated_unit(
    session: Session,
    registry_id: str,
    info: dict[str, Any],
    day: dt.date,
    key: tuple[int, str] | None = None,
) -> dict[str, Any]:
    """An email's unit facts (engine.outbox.context) as of ``day``: the name, short name
    and contacts of the version valid then, and ``valid`` (False: the unit does not exist
    that day, so it gets no email)."""
    unit_id = info.get("id")
    key = key or current_registry_key(session, registry_id)
    if key is None or not unit_id:
        return info
    if "+" not in key[1]:  # no change set applied: the loaded rows say it all
        start, end = info.get("valid_from"), info.get("valid_to")
        valid = (start is None or start <= day.isoformat()) and (
            end is None or day.isoformat() <= end
        )
        if valid:
            return dict(info, valid=True)
    registry = current_registry(session, registry_id)
    whole = _index(registry).get(unit_id) if registry is not None else None
    if whole is None or registry is None:
        return info
    dated = dict(info, valid=whole.valid_on(day))
    if not dated["valid"]:  # who speaks for it now (a plan's issuer that ended)
        view = RegistryView(registry)
        heirs = view.heirs(unit_id, day)
        if heirs:
            dated["heir"] = {"id": heirs[0].id, "name": heir_label(view, heirs[0].id, unit_id, day)}
    history = getattr(registry, "history", None)
    version = history.version_on(unit_id, day) if history is not None else None
    if version is not None and version.change_id is not None:
        then = version.unit
        dated.update(
            name=then.name,
            short=then.short,
            emails=list(then.emails),
            head=_person(then.head),
            focal=_person(then.focal),
            parent=then.parent,  # a re-parenting: the body above it on that day
        )
    return dated


# ---------------------------------------------------------------- history of one unit


def history_lines(registry: Registry, unit_id: str) -> list[str]:
    """The versions of a unit, oldest first, and its successors (Vietnamese)."""
    units = _index(registry)
    unit = units.get(unit_id)
    if unit is None:
        return []
    history = getattr(registry, "history", None)
    versions = (history.versions.get(unit_id) if history is not None else None) or [
        UnitVersion(unit.valid_from, unit.valid_to, unit, None)
    ]

    def span(start: dt.date, end: dt.date | None) -> str:
        first = "" if start <= dt.date(1900, 1, 1) else f"từ {short_date(start)} "
        return first + (f"đến hết {short_date(end)}" if end else "đến nay")

    def parent(unit_: Unit) -> str:
        if not unit_.parent:
            return "không có cấp trên trong danh bạ"
        above = units.get(unit_.parent)
        return f"cấp trên: {above.name if above else unit_.parent}"

    lines = [f"{unit.name} ({unit_id})"]
    for version in versions:
        then = version.unit
        by = f" [thay đổi {version.change_id}]" if version.change_id else " [danh bạ đã nạp]"
        lines.append(
            f"  {span(version.valid_from, version.valid_to)}: {then.name}; {parent(then)}; "
            f"email: {', '.join(then.emails) or 'chưa có'}{by}"
        )
    if unit.valid_to is not None:
        heirs = ", ".join(f"{units[s].name} ({s})" if s in units else s for s in unit.successors)
        rule = history.rules.get(unit_id) if history is not None else None
        how = ""
        if rule is not None:
            how = " (mỗi đơn vị một bản)" if rule.each else f" (mặc định: {rule.default})"
        ended = history.ended_by.get(unit_id) if history is not None else None
        lines.append(
            f"  không còn từ {short_date(unit.valid_to + ONE_DAY)}"
            + (f" [thay đổi {ended}]" if ended else "")
            + (f"; kế thừa: {heirs}{how}" if heirs else "; chưa có đơn vị kế thừa")
        )
    before = [u for u in registry.units if unit_id in u.successors]
    if before:
        lines.append("  kế thừa từ: " + ", ".join(f"{u.name} ({u.id})" for u in before))
    return lines
