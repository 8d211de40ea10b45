"""The Prefect events kehoach emits: their names, resources, payloads, and the one call
emitting them.

The engine returns plain results (``IntakeResult``, ``ClosingResult``); what Prefect's
event feed shows of them is decided here, so engine/ knows nothing of Prefect.

Names: the feed titles an event by its name (V2 UI: "kehoach.nộp.trễ-hạn" is shown as
"Kehoach Nộp Trễ Hạn"; V1: "Kehoach nộp trễ hạn"), so the name is Vietnamese: dotted,
lowercase, NFC, words joined by dashes, in the ``kehoach`` namespace.  Prefect does not
restrict event names to ASCII (only their length, 1024); automations match them as
written here (:data:`EVENT_NAMES`).  Resource ids are identifiers and stay ASCII:
``kehoach.plan.<plan>``, ``kehoach.cycle.<plan>.<cycle>``, ``kehoach.unit.<unit>``,
``kehoach.obligation.<id>``, ``kehoach.submission.<id>``; what a person reads of a
resource is its ``prefect.resource.name``, which names a plan by its short title
("Kế hoạch PCCC", ``title`` below; :func:`workflows.common.plan_short_name`), never by
its id.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
from collections.abc import Iterable, Mapping
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any

from engine.vntext import cycle_label

if TYPE_CHECKING:
    from engine.closing import ClosingResult
    from engine.lifecycle import IntakeResult

log = logging.getLogger("kehoach.workflows")

SUBMISSION_RECEIVED = "kehoach.bản-nộp.đã-nhận"
SUBMITTED_ON_TIME = "kehoach.nộp.đúng-hạn"
SUBMITTED_LATE = "kehoach.nộp.trễ-hạn"
SUBMISSION_ACCEPTED = "kehoach.bản-nộp.được-chấp-nhận"
SUBMISSION_RETURNED = "kehoach.bản-nộp.bị-trả-lại"
PLAN_ACTIVATED = "kehoach.kế-hoạch.bắt-đầu-thực-hiện"
CYCLE_STARTED = "kehoach.kỳ.bắt-đầu"
CYCLE_CONSOLIDATED = "kehoach.kỳ.đã-tổng-hợp"
CYCLE_RECONSOLIDATED = "kehoach.kỳ.tổng-hợp-lại"
CYCLE_CLOSED = "kehoach.kỳ.đã-đóng"
OBLIGATION_OVERDUE = "kehoach.nghĩa-vụ.quá-hạn"
OBLIGATION_ESCALATED = "kehoach.nghĩa-vụ.báo-cáo-lãnh-đạo"
REPORT_HANDED_UPWARD = "kehoach.báo-cáo.đã-gửi-cấp-trên"
SWEEP_CHANGED = "kehoach.quét-hạn.có-thay-đổi"
EVENT_NAMES = (
    SUBMISSION_RECEIVED,
    SUBMITTED_ON_TIME,
    SUBMITTED_LATE,
    SUBMISSION_ACCEPTED,
    SUBMISSION_RETURNED,
    PLAN_ACTIVATED,
    CYCLE_STARTED,
    CYCLE_CONSOLIDATED,
    CYCLE_RECONSOLIDATED,
    CYCLE_CLOSED,
    OBLIGATION_OVERDUE,
    OBLIGATION_ESCALATED,
    REPORT_HANDED_UPWARD,
    SWEEP_CHANGED,
)
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def ascii_id(*parts: str) -> str:
    """A resource id from ``parts`` joined by dots: ASCII letters, digits, dot, dash,
    underscore (ids are slugs already; anything else is replaced, never passed on)."""
    return ".".join(_UNSAFE.sub("-", part) for part in parts)


def emit(
    event: str,
    resource: Mapping[str, str],
    related: Iterable[Mapping[str, str]] = (),
    payload: Mapping[str, Any] | None = None,
    occurred: dt.datetime | None = None,
) -> None:
    """Emit a Prefect event (shown in the UI's event feed); never fails the flow.

    Prefect's events worker adds the flow and task run of the caller's context, restoring
    only the context variables the caller had set; one never set in the caller (a flow's
    own code runs outside any task) keeps the worker's own value. Once, on 3.9.1, every
    event of a demo named the activation's first task run as related (not reproduced
    since). Both run variables are set here, to what they are, so the worker sees the
    caller's runs and nothing else.
    """
    from prefect.context import FlowRunContext, TaskRunContext
    from prefect.events import emit_event

    variables: tuple[ContextVar[Any], ...] = (FlowRunContext.__var__, TaskRunContext.__var__)
    tokens = [(var, var.set(var.get(None))) for var in variables]
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
    finally:
        for var, token in reversed(tokens):
            var.reset(token)


# ---------------------------------------------------------------- resources

# The events page of Prefect's V2 UI shows the last 24 hours unless told otherwise; a
# plan's or a cycle's link asks for the last 366 days.
EVENTS_SPAN_SECONDS = 366 * 24 * 3600


def events_url(ui: str, plan_id: str, cycle_key: str | None = None) -> str:
    """The V2 UI's events page (``ui`` ends in ``/v2``, or is empty for a link within
    the UI) filtered to the events of one plan, or of one of its cycles: those whose
    resource, or a related resource, is ``kehoach.cycle.<plan>.<cycle>`` (the page
    matches ids by prefix, so a cycle ``2023`` also shows ``2023-DX1``)."""
    import json
    from urllib.parse import urlencode

    resource = (
        ascii_id("kehoach", "cycle", plan_id, cycle_key)
        if cycle_key
        else ascii_id("kehoach", "plan", plan_id)
    )
    query = urlencode({"resource": json.dumps([resource]), "seconds": str(-EVENTS_SPAN_SECONDS)})
    return f"{ui}/events?{query}"


def cycle_name(title: str, cycle_key: str) -> str:
    """ "Kỳ năm 2023 · Kế hoạch PCCC": the cycle, then the plan's short title."""
    return f"Kỳ {cycle_label(cycle_key)} · {title}"


def plan_resource(plan_id: str, title: str) -> dict[str, str]:
    return {
        "prefect.resource.id": ascii_id("kehoach", "plan", plan_id),
        "prefect.resource.name": title,
    }


def cycle_resource(plan_id: str, title: str, cycle_key: str) -> dict[str, str]:
    return {
        "prefect.resource.id": ascii_id("kehoach", "cycle", plan_id, cycle_key),
        "prefect.resource.name": cycle_name(title, cycle_key),
        "kehoach.plan": plan_id,
        "kehoach.cycle": cycle_key,
    }


def obligation_resource(obligation_id: int, name: str) -> dict[str, str]:
    return {
        "prefect.resource.id": ascii_id("kehoach", "obligation", str(obligation_id)),
        "prefect.resource.name": name,
    }


def submission_resource(submission_id: int, name: str) -> dict[str, str]:
    return {
        "prefect.resource.id": ascii_id("kehoach", "submission", str(submission_id)),
        "prefect.resource.name": name,
    }


def obligation_related(obligation_id: int) -> dict[str, str]:
    return {
        "prefect.resource.id": ascii_id("kehoach", "obligation", str(obligation_id)),
        "prefect.resource.role": "obligation",
    }


def related_resources(
    plan_id: str,
    title: str,
    cycle_key: str | None = None,
    unit_id: str | None = None,
    unit_name: str | None = None,
) -> list[dict[str, str]]:
    """The plan, and where given the cycle and the unit, an event is also about."""
    related = [
        {
            "prefect.resource.id": ascii_id("kehoach", "plan", plan_id),
            "prefect.resource.role": "plan",
            "prefect.resource.name": title,
        }
    ]
    if cycle_key is not None:
        related.append(
            {
                "prefect.resource.id": ascii_id("kehoach", "cycle", plan_id, cycle_key),
                "prefect.resource.role": "cycle",
                "prefect.resource.name": cycle_name(title, cycle_key),
            }
        )
    if unit_id is not None:
        related.append(
            {
                "prefect.resource.id": ascii_id("kehoach", "unit", unit_id),
                "prefect.resource.role": "unit",
                "prefect.resource.name": unit_name or unit_id,
            }
        )
    return related


# ---------------------------------------------------------------- engine results


def intake_event(result: IntakeResult) -> str:
    """The event of one submission taken in: on time or late."""
    return SUBMITTED_ON_TIME if result.on_time else SUBMITTED_LATE


def intake_resource(result: IntakeResult) -> dict[str, str]:
    when = "đúng hạn" if result.on_time else "trễ hạn"
    return {
        "prefect.resource.id": ascii_id("kehoach", "obligation", str(result.obligation_id)),
        "prefect.resource.name": (
            f"{result.unit_name} · {result.deliverable_title} · "
            f"{cycle_label(result.cycle_key)} · {when}"
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


def closing_resource(result: ClosingResult, title: str) -> dict[str, str]:
    """The cycle a :data:`CYCLE_CLOSED` event is about, named with what it left undone."""
    missing = len(result.missing)
    undone = f" · {missing} nghĩa vụ không nộp" if missing else ""
    return {
        **cycle_resource(result.plan_id, title, result.cycle_key),
        "prefect.resource.name": f"{cycle_name(title, result.cycle_key)} đã đóng{undone}",
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
