"""Registry change sets: their schema, reading one from a file, checking it against
the registry as it stands, and storing it with the unit versions it writes.

A change set (``kind: registry-change``, applied with ``kehoach registry apply``:
engine.registry_history) says what happens on one effective date: units are created,
abolished, merged, split, renamed, re-parented or get new contacts, each with its
successors. It is stored once (``registry_changes``) with the unit versions it writes
(``registry_unit_versions``); nothing is ever updated.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal

from pydantic import Field, ValidationError, model_validator
from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.errors import DefinitionError, Location, Problem
from engine.levels import Level, parent_below, parent_below_message
from engine.party import kind_problem
from engine.registry_dated import ONE_DAY, SplitRule
from engine.schema import EmailAddress, Person, Registry
from engine.schema_base import Model, Slug
from engine.store.models import RegistryChange, RegistryUnitVersion
from engine.yamlsource import PathKey, Source

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
    level: Level = "none"
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


# ---------------------------------------------------------------- reading a change set


def located(source: Source, path: PathKey, message: str, code: str = "change") -> Problem:
    return Problem(source.where(path), message, code)


def parse_change_set(source: Source) -> ChangeSet:
    """The change set of a parsed file; DefinitionError with located problems otherwise."""
    from engine.loader import _schema_problems
    from engine.yamltypes import confusions

    data = source.data
    if not isinstance(data, dict) or data.get("kind") != "registry-change":
        raise DefinitionError(
            [
                located(
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
        self.planned.problems.append(located(self.source, ("changes", index, *tail), message))

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

    def unit_as_created(self, unit_id: str) -> tuple[str, str] | None:
        """(name, level) of a unit of the registry or created in this file."""
        for op in self.cs.changes:
            if isinstance(op, CreateUnit) and op.unit == unit_id:
                return op.name, op.level
        unit = self.units.get(unit_id)
        return (unit.name, unit.level) if unit is not None else None

    def levels_fit(self, index: int, unit_id: str, parent_id: str) -> bool:
        """The parent is at the unit's level or above (engine.levels); else a problem."""
        unit, parent = self.unit_as_created(unit_id), self.unit_as_created(parent_id)
        if unit is None or parent is None or not parent_below(unit[1], parent[1]):
            return True
        self.problem(index, "parent", parent_below_message(unit[0], unit[1], *parent))
        return False

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
                if (wrong := kind_problem(op.name, op.kind)) is not None:  # engine.party
                    self.problem(index, "kind", wrong)
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
            if isinstance(op, CreateUnit) and op.parent:
                self.levels_fit(index, op.unit, op.parent)
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
            if self.levels_fit(index, op.unit, op.parent):
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
                if successor == row["unit_id"] or self._in_cycle(successor):
                    continue  # said by _no_cycle
                if not self.exists_on_day(successor):
                    self.problem(
                        index,
                        at,
                        f"đơn vị kế thừa '{successor}' của {_name(self.registry, row['unit_id'])} "
                        f"không tồn tại ngày {self.day:%d/%m/%Y}; tạo nó trong tệp này "
                        "('op: create') hoặc nêu một đơn vị đang tồn tại",
                    )

    def _in_cycle(self, unit_id: str) -> bool:
        """Whether following ``unit_id``'s successors ended in this file comes back to it."""
        ended = self.planned.ended
        seen: set[str] = set()
        todo = [unit_id]
        while todo:
            current = todo.pop()
            for successor in ended.get(current, []):
                if successor == unit_id:
                    return True
                if successor in ended and successor not in seen:
                    seen.add(successor)
                    todo.append(successor)
        return False

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
                located(
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
