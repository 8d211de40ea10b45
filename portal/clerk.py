"""What a commune clerk needs on the pages: a receipt number, the reporting period, whom
to call (a name and a phone from the registry), and, once a cycle is closed, what to do
instead of a link that no longer takes anything."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.store.models import (
    Cycle,
    Obligation,
    PlanInstance,
    PlanVersion,
    RegistryUnit,
    RegistryVersion,
)
from engine.vntext import short_date


def receipt_number(cycle_key: str, obligation_id: int, version: int) -> str:
    """'BN-2027-00012-01': the kỳ, the duty and the version; one per version sent, the
    same on the page, in print and in a later look-up."""
    return f"BN-{cycle_key}-{obligation_id:05d}-{version:02d}"


def period_text(start: dt.date | None, end: dt.date | None) -> str | None:
    """'từ 15/12/2026 đến 14/12/2027' (the cycle's data period), when stored."""
    if start is None or end is None:
        return None
    return f"từ {short_date(start)} đến {short_date(end)}"


def contact_unit(obligation: Any) -> str | None:
    """The unit a clerk calls about this duty: its channel, else the body it is for
    (none when that is the unit itself)."""
    unit_id = obligation.via_unit_id or obligation.to_unit_id
    if not unit_id or unit_id == obligation.unit_id:
        return None
    return str(unit_id)


def contact_of(row: Any) -> dict[str, Any] | None:
    """The focal person (else the head) of a registry unit ``row`` (its ``name``,
    ``emails`` and ``data``), with phone and email."""
    if row is None:
        return None
    data = row.data or {}
    person = data.get("focal") or data.get("head") or {}
    return {
        "unit_name": row.name,
        "name": person.get("name"),
        "title": person.get("title"),
        "phone": person.get("phone") or data.get("phone"),
        "email": person.get("email") or (list(row.emails or []) or [None])[0],
    }


def contact_for(session: Session, registry_id: str, obligation: Any) -> dict[str, Any] | None:
    """Whom the unit calls about this duty (:func:`contact_unit`, :func:`contact_of`)."""
    unit_id = contact_unit(obligation)
    if unit_id is None:
        return None
    return contact_of(
        session.scalar(
            select(RegistryUnit)
            .join(RegistryVersion, RegistryUnit.registry_version_id == RegistryVersion.id)
            .where(RegistryVersion.registry_id == registry_id, RegistryUnit.unit_id == unit_id)
            .order_by(RegistryVersion.current.desc(), RegistryVersion.version.desc())
            .limit(1)
        )
    )


def closed_contact(session: Session, obligation_id: int) -> dict[str, Any] | None:
    """The contact of a duty whose cycle is closed (the refusal page has no link to it)."""
    found = session.execute(
        select(Obligation, PlanVersion.registry_id)
        .join(Cycle, Obligation.cycle_id == Cycle.id)
        .join(PlanInstance, Cycle.instance_id == PlanInstance.id)
        .join(PlanVersion, PlanInstance.plan_version_id == PlanVersion.id)
        .where(Obligation.id == obligation_id)
    ).first()
    if found is None:
        return None
    obligation, registry_id = found
    return contact_for(session, registry_id, obligation)
