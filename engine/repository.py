"""Versioned storage of definitions: registries, plans and calendars.

A version is identified by the hash of its validated content (canonical JSON), so
loading the same content again — even with other comments or key order — is a
no-op; changed content becomes a new version and earlier ones stay readable.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from engine.errors import NotFound
from engine.loader import Catalog, Loaded
from engine.schema import CalendarOverrides, Plan, Registry
from engine.store.models import CalendarVersion, PlanVersion, RegistryUnit, RegistryVersion


def content_hash(definition: Registry | Plan | CalendarOverrides) -> str:
    canonical = json.dumps(
        definition.model_dump(mode="json"),
        sort_keys=True,
        ensure_ascii=False,
        separators=(",", ":"),
    )
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class StoreResult:
    kind: str
    id: str
    version: int
    created: bool  # False when the same content was already stored


def _store_registry(session: Session, loaded: Loaded) -> StoreResult:
    registry: Registry = loaded.definition  # type: ignore[assignment]
    digest = content_hash(registry)
    existing = session.scalar(
        select(RegistryVersion).where(
            RegistryVersion.registry_id == registry.id, RegistryVersion.content_hash == digest
        )
    )
    if existing is not None:
        if not existing.current:
            _make_current(
                session, RegistryVersion, RegistryVersion.registry_id, registry.id, existing
            )
        return StoreResult("registry", registry.id, existing.version, False)
    version = (
        session.scalar(
            select(func.max(RegistryVersion.version)).where(
                RegistryVersion.registry_id == registry.id
            )
        )
        or 0
    ) + 1
    session.execute(
        update(RegistryVersion)
        .where(RegistryVersion.registry_id == registry.id)
        .values(current=False)
    )
    row = RegistryVersion(
        registry_id=registry.id,
        version=version,
        content_hash=digest,
        source_path=loaded.source.path,
        source_text=loaded.source.text,
        definition=registry.model_dump(mode="json"),
        current=True,
    )
    row.units = [
        RegistryUnit(
            unit_id=u.id,
            name=u.name,
            short=u.short,
            kind=u.kind,
            level=u.level,
            parent_id=u.parent,
            emails=list(u.emails),
            valid_from=u.valid_from,
            valid_to=u.valid_to,
            successors=list(u.successors),
            data=u.model_dump(mode="json"),
        )
        for u in registry.units
    ]
    session.add(row)
    session.flush()
    return StoreResult("registry", registry.id, version, True)


def _make_current(session, model, id_column, ident, row) -> None:  # type: ignore[no-untyped-def]
    session.execute(update(model).where(id_column == ident).values(current=False))
    row.current = True


def _store_plan(session: Session, loaded: Loaded) -> StoreResult:
    plan: Plan = loaded.definition  # type: ignore[assignment]
    digest = content_hash(plan)
    existing = session.scalar(
        select(PlanVersion).where(
            PlanVersion.plan_id == plan.id, PlanVersion.content_hash == digest
        )
    )
    if existing is not None:
        if not existing.current:
            _make_current(session, PlanVersion, PlanVersion.plan_id, plan.id, existing)
            existing.retired_at = None
        return StoreResult("plan", plan.id, existing.version, False)
    version = (
        session.scalar(select(func.max(PlanVersion.version)).where(PlanVersion.plan_id == plan.id))
        or 0
    ) + 1
    session.execute(update(PlanVersion).where(PlanVersion.plan_id == plan.id).values(current=False))
    session.add(
        PlanVersion(
            plan_id=plan.id,
            version=version,
            content_hash=digest,
            registry_id=plan.registry,
            source_path=loaded.source.path,
            source_text=loaded.source.text,
            definition=plan.model_dump(mode="json"),
            current=True,
        )
    )
    session.flush()
    return StoreResult("plan", plan.id, version, True)


def _store_calendar(session: Session, loaded: Loaded) -> StoreResult:
    calendar: CalendarOverrides = loaded.definition  # type: ignore[assignment]
    digest = content_hash(calendar)
    existing = session.scalar(
        select(CalendarVersion).where(
            CalendarVersion.calendar_id == calendar.id, CalendarVersion.content_hash == digest
        )
    )
    if existing is not None:
        if not existing.current:
            _make_current(
                session, CalendarVersion, CalendarVersion.calendar_id, calendar.id, existing
            )
        return StoreResult("calendar", calendar.id, existing.version, False)
    version = (
        session.scalar(
            select(func.max(CalendarVersion.version)).where(
                CalendarVersion.calendar_id == calendar.id
            )
        )
        or 0
    ) + 1
    session.execute(
        update(CalendarVersion)
        .where(CalendarVersion.calendar_id == calendar.id)
        .values(current=False)
    )
    session.add(
        CalendarVersion(
            calendar_id=calendar.id,
            version=version,
            content_hash=digest,
            definition=calendar.model_dump(mode="json"),
            current=True,
        )
    )
    session.flush()
    return StoreResult("calendar", calendar.id, version, True)


def store_catalog(session: Session, catalog: Catalog) -> list[StoreResult]:
    """Store every given definition (registries first) in the caller's transaction."""
    results = []
    for loaded in catalog.given():
        if loaded.definition.kind == "registry":
            results.append(_store_registry(session, loaded))
    for loaded in catalog.given():
        if loaded.definition.kind == "calendar":
            results.append(_store_calendar(session, loaded))
    for loaded in catalog.given():
        if loaded.definition.kind == "plan":
            results.append(_store_plan(session, loaded))
    return results


# ---------------------------------------------------------------- reading


def current_registry(session: Session, registry_id: str) -> Registry | None:
    row = session.scalar(
        select(RegistryVersion).where(
            RegistryVersion.registry_id == registry_id, RegistryVersion.current.is_(True)
        )
    )
    return Registry.model_validate(row.definition) if row else None


def registry_for_plan_version(session: Session, plan_version: PlanVersion) -> Registry:
    """The current registry of the plan's registry id (the hierarchy is resolved by date)."""
    registry = current_registry(session, plan_version.registry_id)
    if registry is None:
        raise NotFound(f"registry '{plan_version.registry_id}' is not loaded; `kehoach load` it")
    return registry


def plan_version(session: Session, plan_id: str, version: int | None = None) -> PlanVersion:
    """The current version of a plan, or a given one; NotFound with a hint otherwise."""
    query = select(PlanVersion).where(PlanVersion.plan_id == plan_id)
    query = (
        query.where(PlanVersion.version == version)
        if version is not None
        else query.where(PlanVersion.current.is_(True))
    )
    row = session.scalar(query)
    if row is None:
        known = session.scalars(select(PlanVersion.plan_id).distinct()).all()
        hint = f" Loaded plans: {', '.join(sorted(known))}." if known else " No plan is loaded yet."
        what = f"version {version} of plan" if version is not None else "plan"
        raise NotFound(f"{what} '{plan_id}' is not in the store.{hint} Use `kehoach load FILE`.")
    return row


def plan_definition(row: PlanVersion) -> Plan:
    return Plan.model_validate(row.definition)


def current_plan(session: Session, plan_id: str) -> Plan | None:
    row = session.scalar(
        select(PlanVersion).where(PlanVersion.plan_id == plan_id, PlanVersion.current.is_(True))
    )
    return plan_definition(row) if row else None


def current_calendar(session: Session, calendar_id: str = "vn") -> CalendarOverrides | None:
    row = session.scalar(
        select(CalendarVersion).where(
            CalendarVersion.calendar_id == calendar_id, CalendarVersion.current.is_(True)
        )
    )
    return CalendarOverrides.model_validate(row.definition) if row else None


def list_plan_versions(session: Session) -> list[PlanVersion]:
    return list(
        session.scalars(select(PlanVersion).order_by(PlanVersion.plan_id, PlanVersion.version))
    )


def retire_plan(session: Session, plan_id: str) -> int:
    """Mark a plan's current version retired (no new cycles start); returns rows changed."""
    from engine.store.models import utcnow

    result = session.execute(
        update(PlanVersion)
        .where(PlanVersion.plan_id == plan_id, PlanVersion.current.is_(True))
        .values(current=False, retired_at=utcnow())
    )
    return getattr(result, "rowcount", 0) or 0
