"""Versioned storage of definitions: registries, plans and calendars.

A version is identified by the hash of its validated content (canonical JSON), so
loading the same content again — even with other comments or key order — is a
no-op; changed content becomes a new version and earlier ones stay readable.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from engine import definitions_cache
from engine.catalog import Catalog, Loaded
from engine.errors import NotFound
from engine.schema import CalendarOverrides, Plan, Registry
from engine.store.models import CalendarVersion, PlanVersion, RegistryUnit, RegistryVersion


def content_hash(definition: Registry | Plan | CalendarOverrides) -> str:
    """SHA-256 of the canonical JSON of what the definition says.

    Fields left at their default are left out, so a new optional schema field (with a
    default that keeps the old meaning) does not turn every stored plan into a new
    version, and writing a default out in the YAML changes nothing either.
    """
    canonical = json.dumps(
        definition.model_dump(mode="json", exclude_defaults=True),
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


# Each kind of definition: its version model, the column holding the definition id,
# and the extra columns of a new row.
def _registry_row(loaded: Loaded) -> dict[str, Any]:
    # Loaded.definition is typed as the union of kinds; this row is a registry's.
    registry: Registry = loaded.definition  # type: ignore[assignment]
    units = [
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
    return {"source_path": loaded.source.path, "source_text": loaded.source.text, "units": units}


def _plan_row(loaded: Loaded) -> dict[str, Any]:
    # Loaded.definition is typed as the union of kinds; this row is a plan's.
    plan: Plan = loaded.definition  # type: ignore[assignment]
    return {
        "registry_id": plan.registry,
        "source_path": loaded.source.path,
        "source_text": loaded.source.text,
    }


_KINDS: dict[str, tuple[Any, str, Callable[[Loaded], dict[str, Any]]]] = {
    "registry": (RegistryVersion, "registry_id", _registry_row),
    "calendar": (CalendarVersion, "calendar_id", lambda _loaded: {}),
    "plan": (PlanVersion, "plan_id", _plan_row),
}


def _store(session: Session, loaded: Loaded) -> StoreResult:
    """Store one definition as a new version unless the same content is stored already."""
    definition = loaded.definition
    model, id_name, extra = _KINDS[definition.kind]
    id_column = getattr(model, id_name)
    digest = content_hash(definition)
    existing = session.scalar(
        select(model).where(id_column == definition.id, model.content_hash == digest)
    )
    if existing is not None:
        if not existing.current:  # an older content loaded again becomes current again
            session.execute(update(model).where(id_column == definition.id).values(current=False))
            existing.current = True
            if hasattr(existing, "retired_at"):
                existing.retired_at = None
        return StoreResult(definition.kind, definition.id, existing.version, False)
    latest = session.scalar(select(func.max(model.version)).where(id_column == definition.id))
    version = (latest or 0) + 1
    session.execute(update(model).where(id_column == definition.id).values(current=False))
    session.add(
        model(
            **{id_name: definition.id},
            version=version,
            content_hash=digest,
            definition=definition.model_dump(mode="json"),
            current=True,
            **extra(loaded),
        )
    )
    session.flush()
    return StoreResult(definition.kind, definition.id, version, True)


def store_catalog(session: Session, catalog: Catalog) -> list[StoreResult]:
    """Store every given definition (registries first) in the caller's transaction."""
    order = {"registry": 0, "calendar": 1, "plan": 2}
    given = sorted(catalog.given(), key=lambda item: order[item.definition.kind])
    return [_store(session, loaded) for loaded in given]


# ---------------------------------------------------------------- reading


def current_registry(session: Session, registry_id: str) -> Registry | None:
    """The current version of a registry (parsed once per process: engine.definitions_cache)."""
    return definitions_cache.current_registry(session, registry_id)


def registry_for_plan_version(session: Session, plan_version: PlanVersion) -> Registry:
    """The current registry of the plan's registry id (the hierarchy is resolved by date)."""
    return definitions_cache.registry_for_plan_version(session, plan_version)


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
    """The validated plan of a stored version (parsed once per process)."""
    return definitions_cache.plan_for_version(None, row)


def current_plan(session: Session, plan_id: str) -> Plan | None:
    row = session.scalar(
        select(PlanVersion).where(PlanVersion.plan_id == plan_id, PlanVersion.current.is_(True))
    )
    return plan_definition(row) if row else None


def current_calendar(session: Session, calendar_id: str = "vn") -> CalendarOverrides | None:
    return definitions_cache.current_calendar(session, calendar_id)


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
