"""The registry over time: dated change sets and unit versions as data.

A loaded registry (``kind: registry``) is the hierarchy as its file describes it. The
reform of 2025 and every later change arrive as *change sets* (``kind:
registry-change``, applied with ``kehoach registry apply``): on one effective date,
units are created, abolished, merged, split, renamed, re-parented or get new contacts,
each with its successors. A change set is stored once (``registry_changes``) with the
unit versions it writes (``registry_unit_versions``); nothing is ever updated, so the
registry as of any date — who existed, under which name and parent, with which email —
can be read again, and a 2024 report still names the units as they were in 2024.

:func:`compose` folds the stored versions onto the loaded registry: the result is a
:class:`DatedRegistry`, an ordinary :class:`Registry` (each unit with its whole
existence, its newest attributes and its successors) carrying the :class:`History`
(every version of every unit, and the split rules) that
:meth:`engine.registry.RegistryView.unit_on` reads.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal

from pydantic import Field, PrivateAttr, ValidationError, model_validator
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from engine.errors import DefinitionError, Location, Problem
from engine.schema import EmailAddress, Person, Registry, Unit
from engine.schema_base import Model, Slug
from engine.store.models import RegistryChange, RegistryUnitVersion
from engine.yamlsource import PathKey, Source

ONE_DAY = dt.timedelta(days=1)

# ---------------------------------------------------------------- the change-set schema


class _Op(Model):
    note: str | None = Field(None, description="Why, or the source of this change.")
    sample: bool = Field(False, description="True where this change is not verified.")


class CreateUnit(_Op):
    """A unit that exists from the effective date (a new commune, a merged ministry)."""

    op: Literal["create"]
    unit: Slug
    name: str
    short: str | None = None
    kind: Slug
    level: Literal["central", "province", "district", "commune", "none"] = "none"
    parent: Slug | None = None
    emails: list[EmailAddress] = Field(default_factory=list)
    head: Person | None = None
    focal: Person | None = None
    tags: list[Slug] = Field(default_factory=list)


class Abolish(_Op):
    """The unit's last day is the day before the effective date; its successors carry
    its duties (none: its open work is held for the administrator, and refused when it
    has any)."""

    op: Literal["abolish"]
    unit: Slug
    successors: list[Slug] = Field(default_factory=list)


class Merge(_Op):
    """Several units end; one unit (existing or created by this change set) takes over."""

    op: Literal["merge"]
    units: list[Slug] = Field(min_length=2)
    into: Slug


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


class Split(_Op):
    """One unit ends; several take over, as ``rule`` says."""

    op: Literal["split"]
    unit: Slug
    into: list[Slug] = Field(min_length=2)
    rule: SplitRule | None = None


class Rename(_Op):
    op: Literal["rename"]
    unit: Slug
    name: str
    short: str | None = None


class Reparent(_Op):
    op: Literal["reparent"]
    unit: Slug
    parent: Slug


class Contacts(_Op):
    """New email addresses, head or focal person from the effective date."""

    op: Literal["contacts"]
    unit: Slug
    emails: list[EmailAddress] | None = None
    head: Person | None = None
    focal: Person | None = None

    @model_validator(mode="after")
    def _something(self) -> Contacts:
        if self.emails is None and self.head is None and self.focal is None:
            raise ValueError("ghi ít nhất một trong 'emails', 'head', 'focal'")
        return self


Change = Annotated[
    CreateUnit | Abolish | Merge | Split | Rename | Reparent | Contacts,
    Field(discriminator="op"),
]


class ChangeSet(Model):
    """A dated set of registry changes, applied together or not at all."""

    kind: Literal["registry-change"]
    id: Slug
    registry: Slug
    name: str
    effective: dt.date = Field(
        description="First day of the new state (the old ends the day before)."
    )
    note: str | None = None
    sample: bool = Field(False, description="True where the change set is sample data.")
    changes: list[Change] = Field(min_length=1)


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


_ATTRS = ("name", "short", "parent", "emails", "head", "focal")


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


# ---------------------------------------------------------------- reading a change set


def _located(source: Source, path: PathKey, message: str, code: str = "change") -> Problem:
    return Problem(source.where(path), message, code)


def parse_change_set(source: Source) -> ChangeSet:
    """The change set of a parsed file; DefinitionError with located problems otherwise."""
    from engine.loader import _schema_problems
    from engine.yamltypes import confusions

    data = source.data
    if not isinstance(data, dict) or data.get("kind") != "registry-change":
        raise DefinitionError(
            [
                _located(
                    source,
                    ("kind",) if isinstance(data, dict) and "kind" in data else (),
                    "tệp thay đổi danh bạ phải có 'kind: registry-change'; tệp danh bạ, kế "
                    "hoạch, lịch thì nạp bằng `kehoach load`",
                    "kind",
                )
            ]
        )
    problems = confusions(source, ChangeSet)
    try:
        change_set = ChangeSet.model_validate(data)
    except ValidationError as exc:
        raise DefinitionError(problems + _schema_problems(source, exc, ChangeSet)) from None
    if problems:
        raise DefinitionError(problems)
    return change_set


# ---------------------------------------------------------------- checking and applying


@dataclass
class Planned:
    """What applying a change set writes: unit version rows and the moves it implies."""

    rows: list[dict[str, Any]] = field(default_factory=list)
    ended: dict[str, list[str]] = field(default_factory=dict)  # unit → successors
    problems: list[Problem] = field(default_factory=list)


def _name(registry: Registry, unit_id: str) -> str:
    unit = next((u for u in registry.units if u.id == unit_id), None)
    return f"{unit.name} ({unit_id})" if unit else unit_id


class _Checker:
    """Checks one change set against the registry as it stands, and plans its rows."""

    def __init__(self, source: Source, change_set: ChangeSet, registry: Registry) -> None:
        self.source, self.cs, self.registry = source, change_set, registry
        self.units = {u.id: u for u in registry.units}
        self.day = change_set.effective
        self.planned = Planned()
        self.created: set[str] = set()

    def problem(self, index: int, key: str | PathKey | None, message: str) -> None:
        """A problem at ``changes[index]``, at its ``key`` (a name or a path tail)."""
        tail: PathKey = () if key is None else (key,) if isinstance(key, str) else key
        self.planned.problems.append(_located(self.source, ("changes", index, *tail), message))

    def exists_on_day(self, unit_id: str) -> bool:
        """Whether ``unit_id`` exists on the effective date (created here, or not ended)."""
        if unit_id in self.created:
            return True
        unit = self.units.get(unit_id)
        return unit is not None and unit.valid_on(self.day) and unit_id not in self.planned.ended

    def alive_before(self, index: int, key: str | PathKey, unit_id: str) -> bool:
        """The unit exists the day before the change (and is not ended twice)."""
        unit = self.units.get(unit_id)
        if unit is None:
            self.problem(
                index, key, f"không có đơn vị '{unit_id}' trong danh bạ '{self.cs.registry}'"
            )
            return False
        if unit_id in self.planned.ended:
            self.problem(
                index, key, f"{_name(self.registry, unit_id)} bị giải thể hai lần trong tệp này"
            )
            return False
        if unit.valid_to is not None:
            self.problem(
                index,
                key,
                f"{_name(self.registry, unit_id)} đã giải thể rồi (ngày cuối "
                f"{unit.valid_to:%d/%m/%Y}): không giải thể, đổi tên hay đổi cấp trên lần nữa",
            )
            return False
        if not unit.valid_on(self.day - ONE_DAY):
            self.problem(
                index,
                key,
                f"{_name(self.registry, unit_id)} chưa tồn tại ngày "
                f"{self.day - ONE_DAY:%d/%m/%Y} (có từ {unit.valid_from:%d/%m/%Y})",
            )
            return False
        return True

    def end(
        self, index: int, key: str | PathKey, unit_id: str, successors: list[str], rule: Any
    ) -> None:
        if not self.alive_before(index, key, unit_id):
            return
        self.planned.ended[unit_id] = successors
        self.planned.rows.append(
            {
                "unit_id": unit_id,
                "event": "end",
                "valid_from": self.day,
                "attrs": {},
                "successors": successors,
                "rule": rule,
                "_where": (index, key),
            }
        )

    def version(self, index: int, unit_id: str, attrs: dict[str, Any]) -> None:
        if not self.alive_before(index, "unit", unit_id):
            return
        if unit_id in self.planned.ended:
            return
        self.planned.rows.append(
            {
                "unit_id": unit_id,
                "event": "update",
                "valid_from": self.day,
                "attrs": attrs,
                "successors": [],
                "rule": None,
                "_where": (index, "unit"),
            }
        )

    def run(self) -> Planned:
        ops = list(enumerate(self.cs.changes))
        for index, op in ops:  # created units first: others may name them
            if isinstance(op, CreateUnit):
                if op.unit in self.units or op.unit in self.created:
                    self.problem(
                        index, "unit", f"đơn vị '{op.unit}' đã có; đặt mã khác cho đơn vị mới"
                    )
                    continue
                self.created.add(op.unit)
                attrs = op.model_dump(mode="json", exclude={"op", "unit", "note", "sample"})
                attrs["sample"] = op.sample or self.cs.sample
                self.planned.rows.append(
                    {
                        "unit_id": op.unit,
                        "event": "create",
                        "valid_from": self.day,
                        "attrs": attrs,
                        "successors": [],
                        "rule": None,
                        "_where": (index, "unit"),
                    }
                )
        for index, op in ops:
            self._one(index, op)
        self._successors_exist()
        self._no_cycle()
        return self.planned

    def _one(self, index: int, op: Any) -> None:
        if isinstance(op, Abolish):
            self.end(index, "unit", op.unit, list(op.successors), None)
        elif isinstance(op, Merge):
            for position, unit_id in enumerate(op.units):
                self.end(index, ("units", position), unit_id, [op.into], None)
        elif isinstance(op, Split):
            if op.rule is None:
                self.problem(
                    index,
                    "into",
                    f"tách {_name(self.registry, op.unit)} thành {len(op.into)} đơn vị mà không "
                    "có 'rule': thêm 'rule: {each: true}' (mỗi đơn vị một bản) hoặc "
                    "'rule: {default: ĐƠN_VỊ, deliverables: {...}}'",
                )
                return
            wrong = [
                u
                for u in [op.rule.default, *op.rule.deliverables.values()]
                if u and u not in op.into
            ]
            if wrong:
                self.problem(index, "rule", f"rule nêu {', '.join(wrong)}, không có trong 'into'")
                return
            self.end(index, "unit", op.unit, list(op.into), op.rule.model_dump(mode="json"))
        elif isinstance(op, Rename):
            self.version(
                index, op.unit, {"name": op.name, **({"short": op.short} if op.short else {})}
            )
        elif isinstance(op, Reparent):
            if not self.exists_on_day(op.parent):
                self.problem(
                    index,
                    "parent",
                    f"đơn vị cấp trên '{op.parent}' không tồn tại ngày {self.day:%d/%m/%Y}",
                )
                return
            self.version(index, op.unit, {"parent": op.parent})
        elif isinstance(op, Contacts):
            attrs = op.model_dump(
                mode="json", include={"emails", "head", "focal"}, exclude_none=True
            )
            self.version(index, op.unit, attrs)

    def _successors_exist(self) -> None:
        for row in self.planned.rows:
            if row["event"] != "end":
                continue
            index, key = row["_where"]
            op = self.cs.changes[index]
            at: str | PathKey = key
            for successor in row["successors"]:
                if isinstance(op, Abolish):
                    at = ("successors", op.successors.index(successor))
                elif isinstance(op, Merge | Split):
                    at = "into"
                if successor in self.planned.ended or successor == row["unit_id"]:
                    continue  # a cycle, or a successor ended here: said by _no_cycle
                if not self.exists_on_day(successor):
                    self.problem(
                        index,
                        at,
                        f"đơn vị kế thừa '{successor}' của {_name(self.registry, row['unit_id'])} "
                        f"không tồn tại ngày {self.day:%d/%m/%Y}; tạo nó trong tệp này "
                        "('op: create') hoặc nêu một đơn vị đang tồn tại",
                    )

    def _no_cycle(self) -> None:
        ended = self.planned.ended
        reported: set[str] = set()
        for row in self.planned.rows:
            if row["event"] != "end" or row["unit_id"] in reported:
                continue
            path, current = [row["unit_id"]], row["unit_id"]
            while True:
                following = [s for s in ended.get(current, []) if s in ended or s == current]
                if not following:
                    break
                current = following[0]
                if current in path:
                    index, key = row["_where"]
                    chain = " → ".join([*path[path.index(current) :], current])
                    self.problem(
                        index,
                        key,
                        f"vòng kế thừa: {chain}; đơn vị kế thừa phải còn tồn tại ngày "
                        f"{self.day:%d/%m/%Y}",
                    )
                    reported.update(path)
                    break
                path.append(current)


def content_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


@dataclass
class Applied:
    change_set: ChangeSet
    versions: int
    ended: dict[str, list[str]]


def check(
    source: Source, change_set: ChangeSet, registry: Registry, holders: dict[str, int]
) -> Planned:
    """The rows a change set writes, or its problems. ``holders``: open obligations per
    unit id; a unit that holds any may not end without a successor."""
    planned = _Checker(source, change_set, registry).run()
    for row in planned.rows:
        if row["event"] == "end" and not row["successors"] and holders.get(row["unit_id"]):
            index, key = row["_where"]
            planned.problems.append(
                _located(
                    source,
                    ("changes", index, key),
                    f"{_name(registry, row['unit_id'])} còn {holders[row['unit_id']]} nghĩa vụ "
                    "đang mở mà không có đơn vị kế thừa: thêm 'successors: [...]'",
                )
            )
    return planned


def store(
    session: Session, source: Source, change_set: ChangeSet, planned: Planned, now: dt.datetime
) -> Applied:
    """Write the change set and its unit versions (the caller's transaction)."""
    row = RegistryChange(
        registry_id=change_set.registry,
        change_id=change_set.id,
        name=change_set.name,
        effective=change_set.effective,
        content_hash=content_hash(source.text),
        source_path=source.path,
        source_text=source.text,
        definition=change_set.model_dump(mode="json"),
        applied_at=now,
    )
    session.add(row)
    session.flush()
    for version in planned.rows:
        session.add(
            RegistryUnitVersion(
                change_row_id=row.id,
                registry_id=change_set.registry,
                **{k: v for k, v in version.items() if not k.startswith("_")},
            )
        )
    session.flush()
    return Applied(change_set, len(planned.rows), dict(planned.ended))


def already_applied(session: Session, change_set: ChangeSet) -> RegistryChange | None:
    return session.scalar(
        select(RegistryChange).where(
            RegistryChange.registry_id == change_set.registry,
            RegistryChange.change_id == change_set.id,
        )
    )


def not_applied_problem(source: Source, existing: RegistryChange, text: str) -> Problem | None:
    """A change set id already stored with other content: refused (history is not rewritten)."""
    if existing.content_hash == content_hash(text):
        return None
    return Problem(
        Location(source.path, *source.positions.get(("id",), (1, 1))),
        f"thay đổi '{existing.change_id}' đã áp dụng ngày "
        f"{existing.applied_at:%d/%m/%Y} với nội dung khác; lịch sử danh bạ không được viết lại: "
        "đặt id mới cho thay đổi bổ sung",
        "history",
    )


# ---------------------------------------------------------------- units as of a day (emails)

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
    from engine.definitions_cache import current_registry, current_registry_key

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
        from engine.registry import RegistryView
        from engine.successors import heir_label

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
        )
    return dated


# ---------------------------------------------------------------- apply (one transaction)


def _open_holders(session: Session, registry_id: str) -> dict[str, int]:
    """Open obligations per unit, in the running plans of ``registry_id``."""
    from engine.states import OBLIGATION_OPEN, CycleStatus, InstanceStatus
    from engine.store.models import Cycle, Obligation, PlanInstance, PlanVersion

    return {
        unit_id: count
        for unit_id, count in session.execute(
            select(Obligation.unit_id, func.count())
            .join(Cycle, Obligation.cycle_id == Cycle.id)
            .join(PlanInstance, Cycle.instance_id == PlanInstance.id)
            .join(PlanVersion, PlanInstance.plan_version_id == PlanVersion.id)
            .where(
                PlanVersion.registry_id == registry_id,
                PlanInstance.status == InstanceStatus.ACTIVE,
                Cycle.status != CycleStatus.CLOSED,
                Obligation.status.in_(OBLIGATION_OPEN),
            )
            .group_by(Obligation.unit_id)
        )
    }


@dataclass
class ApplyResult:
    change_set: ChangeSet
    created: bool  # False: the same change set was applied before (nothing done)
    versions: int = 0
    ended: dict[str, list[str]] = field(default_factory=dict)
    moves: Any = None  # engine.successors.Moves, when the change is in effect already


def apply_source(session: Session, source: Source, now: dt.datetime) -> ApplyResult:
    """Check and apply one change set in the caller's transaction: refused whole
    (DefinitionError, located) or stored whole, with an audit row; when its date has
    come, open work of the units it ended moves to their heirs at once."""
    from engine.audit import write_audit
    from engine.calendar import local_day
    from engine.definitions_cache import current_registry

    change_set = parse_change_set(source)
    existing = already_applied(session, change_set)
    if existing is not None:
        problem = not_applied_problem(source, existing, source.text)
        if problem is not None:
            raise DefinitionError([problem])
        return ApplyResult(change_set, created=False)
    registry = current_registry(session, change_set.registry)
    if registry is None:
        raise DefinitionError(
            [
                _located(
                    source,
                    ("registry",),
                    f"danh bạ '{change_set.registry}' chưa được nạp; nạp nó trước bằng "
                    "`kehoach load`",
                    "registry",
                )
            ]
        )
    planned = check(source, change_set, registry, _open_holders(session, change_set.registry))
    if planned.problems:
        raise DefinitionError(planned.problems)
    applied = store(session, source, change_set, planned, now)
    write_audit(
        session,
        "registry.changed",
        at=now,
        plan_id=None,
        registry_id=change_set.registry,
        change_id=change_set.id,
        effective=change_set.effective.isoformat(),
        content_hash=content_hash(source.text),
        ended={u: s for u, s in applied.ended.items()},
        versions=applied.versions,
    )
    result = ApplyResult(change_set, True, applied.versions, applied.ended)
    today = local_day(now)
    if change_set.effective <= today:
        from engine.successors import move_open_work

        result.moves = move_open_work(session, change_set.registry, today, now)
    return result


# ---------------------------------------------------------------- history of one unit


def history_lines(registry: Registry, unit_id: str) -> list[str]:
    """The versions of a unit, oldest first, and its successors (Vietnamese)."""
    from engine.vntext import short_date

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
