"""The Prefect events kehoach emits: their resources, payloads, and the one call emitting them.

The engine returns plain results (``IntakeResult``, ``ClosingResult``); what Prefect's
event feed shows of them (``prefect.resource.id`` and the rest) is decided here, so
engine/ knows nothing of Prefect.  Resource ids name what an event is about:
``kehoach.plan.<plan>``, ``kehoach.cycle.<plan>.<cycle>``, ``kehoach.unit.<unit>``,
``kehoach.obligation.<id>``, ``kehoach.submission.<id>``.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from engine.vntext import cycle_label

if TYPE_CHECKING:
    from engine.closing import ClosingResult
    from engine.lifecycle import IntakeResult

log = logging.getLogger("kehoach.workflows")


def emit(
    event: str,
    resource: Mapping[str, str],
    related: Iterable[Mapping[str, str]] = (),
    payload: Mapping[str, Any] | None = None,
    occurred: dt.datetime | None = None,
) -> None:
    """Emit a Prefect event (shown in the UI's event feed); never fails the flow."""
    from prefect.events import emit_event

    try:
        emit_event(
            event=event,
            resource=dict(resource),
            related=[dict(r) for r in related],
            payload=dict(payload or {}),
            occurred=occurred,
        )
    except Exception as exc:
        log.warning("could not emit %s: %s", event, exc)


# ---------------------------------------------------------------- resources


def plan_resource(plan_id: str) -> dict[str, str]:
    return {"prefect.resource.id": f"kehoach.plan.{plan_id}", "prefect.resource.name": plan_id}


def cycle_resource(plan_id: str, cycle_key: str) -> dict[str, str]:
    return {
        "prefect.resource.id": f"kehoach.cycle.{plan_id}.{cycle_key}",
        "prefect.resource.name": f"{plan_id} · {cycle_label(cycle_key)}",
    }


def obligation_resource(obligation_id: int, name: str) -> dict[str, str]:
    return {
        "prefect.resource.id": f"kehoach.obligation.{obligation_id}",
        "prefect.resource.name": name,
    }


def submission_resource(submission_id: int, name: str) -> dict[str, str]:
    return {
        "prefect.resource.id": f"kehoach.submission.{submission_id}",
        "prefect.resource.name": name,
    }


def obligation_related(obligation_id: int) -> dict[str, str]:
    return {
        "prefect.resource.id": f"kehoach.obligation.{obligation_id}",
        "prefect.resource.role": "obligation",
    }


def related_resources(
    plan_id: str,
    cycle_key: str | None = None,
    unit_id: str | None = None,
    unit_name: str | None = None,
) -> list[dict[str, str]]:
    """The plan, and where given the cycle and the unit, an event is also about."""
    related = [
        {
            "prefect.resource.id": f"kehoach.plan.{plan_id}",
            "prefect.resource.role": "plan",
            "prefect.resource.name": plan_id,
        }
    ]
    if cycle_key is not None:
        related.append(
            {
                "prefect.resource.id": f"kehoach.cycle.{plan_id}.{cycle_key}",
                "prefect.resource.role": "cycle",
                "prefect.resource.name": cycle_key,
            }
        )
    if unit_id is not None:
        related.append(
            {
                "prefect.resource.id": f"kehoach.unit.{unit_id}",
                "prefect.resource.role": "unit",
                "prefect.resource.name": unit_name or unit_id,
            }
        )
    return related


# ---------------------------------------------------------------- engine results


def intake_event(result: IntakeResult) -> str:
    """The event of one submission taken in: on time or late."""
    return "kehoach.submission.on-time" if result.on_time else "kehoach.submission.late"


def intake_resource(result: IntakeResult) -> dict[str, str]:
    return {
        "prefect.resource.id": f"kehoach.obligation.{result.obligation_id}",
        "prefect.resource.name": (
            f"{result.unit_name} · {result.deliverable_title} · {result.cycle_key}"
        ),
        "kehoach.plan": result.plan_id,
        "kehoach.unit": result.unit_id,
        "kehoach.cycle": result.cycle_key,
    }


def intake_payload(result: IntakeResult) -> dict[str, Any]:
    return {
        "submission_id": result.submission_id,
        "version": result.version,
        "plan_title": result.plan_title,
        "unit_name": result.unit_name,
        "deliverable": result.deliverable_title,
        "on_time": result.on_time,
        "cycle_complete": result.cycle_complete,
    }


def closing_resource(result: ClosingResult) -> dict[str, str]:
    """The cycle a ``kehoach.cycle.closed`` event is about (named by its key, not label)."""
    return {
        "prefect.resource.id": f"kehoach.cycle.{result.plan_id}.{result.cycle_key}",
        "prefect.resource.name": f"{result.plan_id} · {result.cycle_key}",
        "kehoach.plan": result.plan_id,
        "kehoach.cycle": result.cycle_key,
    }


def closing_payload(result: ClosingResult) -> dict[str, Any]:
    return {
        "by": result.by,
        "closes_on": result.closes_on.isoformat() if result.closes_on else None,
        "counts": dict(result.counts),
        "missing": [f"{m.unit_name} · {m.deliverable_title}" for m in result.missing],
        "intakes": len(result.intakes),
        "emails": len(result.emails),
        "forced": result.forced,
    }
