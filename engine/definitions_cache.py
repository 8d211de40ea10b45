"""Parsed definitions, cached per process by their stored version.

Plan, registry and calendar versions never change once stored: a row is identified
by the hash of its content (engine/repository.py), and new content becomes a new
row.  Validating a definition with pydantic costs milliseconds (a registry of a few
hundred units: tens), so the portal and the flows, which need one on every request
or message, parse each version once per process and keep it here.

Keys are ``(row id, content hash)``: the id names the version in one database, the
hash makes a key from another database (tests open many) that happens to reuse the
id harmless — same key, same content.  Only immutable definitions are cached; never
obligations, submissions or any other mutable row.  Each kind is a bounded LRU.

"Current" registries and calendars are resolved with one small SELECT of the current
version's id and hash on every call, so a newly loaded version is seen at once.

The SELECTs run on every request are built once, at import, with bound parameters:
building a statement costs more than running it on SQLite.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Any, Generic, TypeVar

from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from engine.registry import RegistryView
from engine.registry_dated import changes_applied, changes_fingerprint, with_changes
from engine.schema import CalendarOverrides, Plan, Registry
from engine.store.models import CalendarVersion, PlanVersion, RegistryVersion

T = TypeVar("T")

MAX_PLANS = 64
MAX_REGISTRIES = 16
MAX_VIEWS = 64
MAX_CALENDARS = 8


class LRU(Generic[T]):
    """A small thread-safe LRU; ``get`` builds a missing value outside the lock."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._items: OrderedDict[Hashable, T] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def get(self, key: Hashable, build: Callable[[], T]) -> T:
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                self.hits += 1
                return self._items[key]
        value = build()
        with self._lock:
            self.misses += 1
            if key in self._items:  # another thread built it meanwhile: keep one object
                self._items.move_to_end(key)
                return self._items[key]
            self._items[key] = value
            while len(self._items) > self.size:
                self._items.popitem(last=False)
        return value

    def clear(self) -> None:
        with self._lock:
            self._items.clear()
            self.hits = self.misses = 0

    def __len__(self) -> int:
        return len(self._items)


_plans: LRU[Plan] = LRU(MAX_PLANS)
_registries: LRU[Registry] = LRU(MAX_REGISTRIES)
_views: LRU[RegistryView] = LRU(MAX_VIEWS)
_calendars: LRU[CalendarOverrides] = LRU(MAX_CALENDARS)


def clear() -> None:
    """Forget everything (tests; never needed for correctness)."""
    for cache in (_plans, _registries, _views, _calendars):
        cache.clear()


def stats() -> dict[str, dict[str, int]]:
    return {
        name: {"size": len(c), "hits": c.hits, "misses": c.misses}
        for name, c in (
            ("plans", _plans),
            ("registries", _registries),
            ("views", _views),
            ("calendars", _calendars),
        )
    }


def _row(session: Session | None, model: Any, row_or_id: Any) -> Any:
    if isinstance(row_or_id, model):
        return row_or_id
    if session is None:
        raise TypeError(f"a session is needed to read {model.__name__} {row_or_id!r}")
    return session.get(model, int(row_or_id))


# ---------------------------------------------------------------- plans


def plan_key(row: PlanVersion) -> tuple[int, str]:
    return (row.id, row.content_hash)


_PLAN_DEFINITION = select(PlanVersion.definition).where(PlanVersion.id == bindparam("id"))


def plan_for_version(session: Session | None, plan_version: PlanVersion | int) -> Plan:
    """The validated plan of a stored version (a row, or its id and a session)."""
    row: PlanVersion | None = _row(session, PlanVersion, plan_version)
    if row is None:
        from engine.errors import NotFound

        raise NotFound(f"plan version {plan_version} does not exist")
    return _plans.get(plan_key(row), lambda: Plan.model_validate(row.definition))


def plan_for_key(session: Session, version_id: int, content_hash: str) -> Plan:
    """The validated plan of a stored version known by its id and content hash (read
    along with other columns by the caller); the stored definition is read only when
    that version is not parsed yet."""

    def build() -> Plan:
        return Plan.model_validate(session.scalar(_PLAN_DEFINITION, {"id": version_id}))

    return _plans.get((version_id, content_hash), build)


# ---------------------------------------------------------------- registries


_registry_versions = RegistryVersion.__table__
# Plain SQL expressions on the table (no ORM work per call): run on every email/intake.
_CURRENT_REGISTRY_KEY = select(
    _registry_versions.c.id,
    _registry_versions.c.content_hash,
    changes_applied(bindparam("registry_id")),
).where(
    _registry_versions.c.registry_id == bindparam("registry_id"),
    _registry_versions.c.current.is_(True),
)
_REGISTRY_DEFINITION = select(RegistryVersion.definition).where(
    RegistryVersion.id == bindparam("id")
)


def current_registry_key(session: Session, registry_id: str) -> tuple[int, str] | None:
    """(id, content hash) of the registry's current version: one small SELECT; the hash
    names the change sets applied to it too (engine.registry_dated)."""
    session.flush()  # a plain SQL statement does not autoflush: see a version just added
    found = session.execute(_CURRENT_REGISTRY_KEY, {"registry_id": registry_id}).first()
    if found is None:
        return None
    if found[2] is None:
        return (found[0], found[1])
    # By content, not by id: another database (tests open many) may hold other changes
    # under the same ids.
    return (found[0], f"{found[1]}+{changes_fingerprint(session, registry_id)}")


def _registry_by_key(session: Session, key: tuple[int, str]) -> Registry:
    def build() -> Registry:
        definition = session.scalar(_REGISTRY_DEFINITION, {"id": key[0]})
        registry = Registry.model_validate(definition)
        return with_changes(session, registry) if "+" in key[1] else registry

    return _registries.get(key, build)


def current_registry(session: Session, registry_id: str) -> Registry | None:
    """The current version of a registry, or None when none is loaded."""
    key = current_registry_key(session, registry_id)
    return _registry_by_key(session, key) if key is not None else None


def registry_for_plan_version(session: Session, plan_version: PlanVersion) -> Registry:
    """The current registry of the plan's registry id; NotFound with a hint otherwise."""
    registry = current_registry(session, plan_version.registry_id)
    if registry is None:
        from engine.errors import NotFound

        raise NotFound(f"registry '{plan_version.registry_id}' is not loaded; `kehoach load` it")
    return registry


def registry_view_for(session: Session, plan_version: PlanVersion) -> RegistryView:
    """RegistryView(current registry, plan groups) of a plan version, shared read-only."""
    key = current_registry_key(session, plan_version.registry_id)
    if key is None:
        from engine.errors import NotFound

        raise NotFound(f"registry '{plan_version.registry_id}' is not loaded; `kehoach load` it")

    def build() -> RegistryView:
        plan = plan_for_version(session, plan_version)
        return RegistryView(_registry_by_key(session, key), plan.groups)

    return _views.get((plan_key(plan_version), key), build)


# ---------------------------------------------------------------- calendars


def current_calendar(session: Session, calendar_id: str = "vn") -> CalendarOverrides | None:
    found = session.execute(
        select(CalendarVersion.id, CalendarVersion.content_hash).where(
            CalendarVersion.calendar_id == calendar_id, CalendarVersion.current.is_(True)
        )
    ).first()
    if found is None:
        return None

    def build() -> CalendarOverrides:
        definition = session.scalar(
            select(CalendarVersion.definition).where(CalendarVersion.id == found[0])
        )
        return CalendarOverrides.model_validate(definition)

    return _calendars.get((found[0], found[1]), build)
