"""Registry versions as data: the unit versions change sets wrote, folded onto a
loaded registry.

:func:`compose` folds the stored versions onto the loaded registry: the result is a
:class:`DatedRegistry`, an ordinary :class:`Registry` (each unit with its whole
existence, its newest attributes and its successors) carrying the :class:`History`
(every version of every unit, and the split rules) that
:meth:`engine.registry.RegistryView.unit_on` reads. The change sets themselves are
read and checked by engine.registry_changes and applied by engine.registry_history.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from pydantic import Field, PrivateAttr, model_validator
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from engine.schema import Registry, Unit
from engine.schema_base import Model, Slug
from engine.store.models import RegistryChange, RegistryUnitVersion

ONE_DAY = dt.timedelta(days=1)


class SplitRule(Model):
    """Who inherits a split unit's work: ``each`` (every successor owes its own copy of
    each duty), or ``default`` with per-deliverable exceptions in ``deliverables``."""

    each: bool = False
    default: Slug | None = None
    deliverables: dict[Slug, Slug] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _one_way(self) -> SplitRule:
        if self.each == (self.default is not None):
            raise ValueError(
                "ghi đúng một trong hai: 'each: true' (mỗi đơn vị kế thừa một bản) hoặc "
                "'default: ĐƠN_VỊ' (đơn vị nhận mọi việc, trừ 'deliverables')"
            )
        if self.each and self.deliverables:
            raise ValueError("'deliverables' chỉ dùng với 'default', không dùng với 'each: true'")
        return self

    def heir(self, deliverable_id: str) -> str | None:
        return self.deliverables.get(deliverable_id, self.default)


# ---------------------------------------------------------------- history


@dataclass(frozen=True)
class UnitVersion:
    valid_from: dt.date
    valid_to: dt.date | None
    unit: Unit
    change_id: str | None  # None: the loaded registry


@dataclass
class History:
    """Every version of every unit a change set touched, and the split rules."""

    versions: dict[str, list[UnitVersion]] = field(default_factory=dict)
    rules: dict[str, SplitRule] = field(default_factory=dict)
    ended_by: dict[str, str] = field(default_factory=dict)  # unit id → change id

    def version_on(self, unit_id: str, day: dt.date) -> UnitVersion | None:
        """The version valid on ``day``; before the first, the first; after the end, the last."""
        versions = self.versions.get(unit_id)
        if not versions:
            return None
        for version in versions:
            if version.valid_from <= day and (version.valid_to is None or day <= version.valid_to):
                return version
        return versions[0] if day < versions[0].valid_from else versions[-1]


class DatedRegistry(Registry):
    """A registry with the change sets applied to it (engine.registry_history)."""

    _history: History = PrivateAttr(default_factory=History)

    @property
    def history(self) -> History:
        return self._history


@dataclass(frozen=True)
class VersionRow:
    """A stored unit version, as compose needs it."""

    unit_id: str
    event: str  # create | update | end
    valid_from: dt.date
    attrs: dict[str, Any]
    successors: list[str]
    rule: dict[str, Any] | None
    change_id: str


def _fold(
    base: Unit, rows: Sequence[VersionRow], history: History, created_by: str | None = None
) -> Unit:
    """The unit's versions from its rows (in date order); returns its whole-life Unit.
    ``created_by``: the change set that created the unit (None: the loaded registry)."""
    versions: list[UnitVersion] = [UnitVersion(base.valid_from, base.valid_to, base, created_by)]
    valid_to, successors = base.valid_to, list(base.successors)
    for row in rows:
        last = versions[-1]
        if row.event == "end":
            valid_to, successors = row.valid_from - ONE_DAY, list(row.successors)
            versions[-1] = UnitVersion(last.valid_from, valid_to, last.unit, last.change_id)
            history.ended_by[base.id] = row.change_id
            if row.rule is not None:
                history.rules[base.id] = SplitRule.model_validate(row.rule)
            continue
        unit = Unit.model_validate({**last.unit.model_dump(), **row.attrs})
        if last.change_id is not None and last.valid_from == row.valid_from:
            # a second change of the same day (a rename and a move): one version
            versions[-1] = UnitVersion(last.valid_from, last.valid_to, unit, row.change_id)
            continue
        versions[-1] = UnitVersion(
            last.valid_from, row.valid_from - ONE_DAY, last.unit, last.change_id
        )
        versions.append(UnitVersion(row.valid_from, valid_to, unit, row.change_id))
    history.versions[base.id] = versions
    first = versions[0].valid_from
    return versions[-1].unit.model_copy(
        update={"valid_from": first, "valid_to": valid_to, "successors": successors}
    )


def compose(base: Registry, rows: Iterable[VersionRow]) -> DatedRegistry:
    """The registry with stored versions folded in (rows in application order)."""
    per_unit: dict[str, list[VersionRow]] = {}
    created: dict[str, Unit] = {}
    created_by: dict[str, str] = {}
    for row in rows:
        if row.event == "create":
            created[row.unit_id] = Unit.model_validate(
                {**row.attrs, "id": row.unit_id, "valid_from": row.valid_from}
            )
            created_by[row.unit_id] = row.change_id
            continue
        per_unit.setdefault(row.unit_id, []).append(row)
    history = History()
    units = [
        _fold(u, per_unit.get(u.id, []), history) if u.id in per_unit else u for u in base.units
    ]
    units += [_fold(u, per_unit.get(u.id, []), history, created_by[u.id]) for u in created.values()]
    dated = DatedRegistry.model_construct(**{**dict(base), "units": units})
    dated._history = history
    return dated


def stored_rows(session: Session, registry_id: str) -> list[VersionRow]:
    """The unit versions stored for ``registry_id``, in the order they were applied."""
    found = session.execute(
        select(RegistryUnitVersion, RegistryChange.change_id)
        .join(RegistryChange, RegistryUnitVersion.change_row_id == RegistryChange.id)
        .where(RegistryUnitVersion.registry_id == registry_id)
        .order_by(RegistryChange.effective, RegistryUnitVersion.id)
    ).all()
    return [
        VersionRow(
            unit_id=row.unit_id,
            event=row.event,
            valid_from=row.valid_from,
            attrs=dict(row.attrs or {}),
            successors=list(row.successors or []),
            rule=row.rule,
            change_id=change_id,
        )
        for row, change_id in found
    ]


def changes_applied(registry_id: Any) -> Any:
    """A scalar SQL expression: the newest change set id applied to ``registry_id``
    (NULL when none), which keys the cached registry (engine.definitions_cache)."""
    return (
        select(func.max(RegistryChange.id))
        .where(RegistryChange.registry_id == registry_id)
        .scalar_subquery()
    )


def changes_fingerprint(session: Session, registry_id: str) -> str:
    """The content of every change set applied to ``registry_id``, as one short hash."""
    hashes = session.scalars(
        select(RegistryChange.content_hash)
        .where(RegistryChange.registry_id == registry_id)
        .order_by(RegistryChange.id)
    )
    return hashlib.sha256("".join(hashes).encode()).hexdigest()[:24]


def with_changes(session: Session, registry: Registry) -> Registry:
    """The registry with the change sets stored for it (itself when there are none)."""
    rows = stored_rows(session, registry.id)
    return compose(registry, rows) if rows else registry
