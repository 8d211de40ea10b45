"""Reports and comments a unit sends unasked under a plan: "chủ động báo cáo", "gửi ý
kiến về …" (issue 10, item 3).

A unit writes one through the portal link of any of its duties; the message is kept
(``unit_messages``), audited, and mailed to the unit that gathers that duty's answers
(the channel, else the body it is for; the plan's issuer for the consolidating unit's
own duties), copied to the sender, in one transaction. ``kehoach status`` and the
Prefect status artifact list them under the cycle.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.audit import write_audit
from engine.calendar import local_day
from engine.errors import KehoachError
from engine.outbox.requests import queue_mail
from engine.store.models import Cycle, Obligation, PlanInstance, UnitMessage
from engine.values import xml_safe

KINDS = {"report": "Chủ động báo cáo", "comment": "Ý kiến"}
# How a kind is named in lists: the form's kinds, and a supporting unit's contribution
# to a tracked task (engine.task_contributions), which the form cannot send.
LABELS = {**KINDS, "contribution": "Ý kiến phối hợp"}
MAX_SUBJECT = 200
MAX_TEXT = 10_000


class MessageRefused(KehoachError):
    """A message that cannot be kept as written (the form says why; nothing is stored)."""


def _clean(text: str | None, limit: int, what: str, required: bool) -> str:
    value = xml_safe((text or "").replace("\r\n", "\n")).strip()
    if required and not value:
        raise MessageRefused(f"Chưa có {what}.")
    if len(value) > limit:
        raise MessageRefused(
            f"{what[:1].upper()}{what[1:]} dài {len(value)} ký tự; tối đa {limit}."
        )
    return value


def receiver_of(obligation: Obligation, issuer_unit: str) -> str:
    """Who a unit's message under this duty reaches: the unit that gathers its answers."""
    gatherer = obligation.via_unit_id or obligation.to_unit_id
    if gatherer is None or gatherer == obligation.unit_id:
        return issuer_unit
    return gatherer


def send_message(
    session: Session,
    obligation: Obligation,
    *,
    kind: str,
    subject: str | None,
    text: str | None,
    issuer_unit: str,
    plan_id: str,
    now: dt.datetime,
    remote_addr: str | None = None,
) -> UnitMessage:
    """Keep, audit and mail one message of ``obligation``'s unit (see the module)."""
    if kind not in KINDS:
        raise MessageRefused("Chọn loại: chủ động báo cáo hoặc gửi ý kiến.")
    body = _clean(text, MAX_TEXT, "nội dung", required=True)
    title = _clean(subject, MAX_SUBJECT, "tiêu đề", required=False) or KINDS[kind]
    message = UnitMessage(
        plan_id=plan_id,
        cycle_id=obligation.cycle_id,
        obligation_id=obligation.id,
        unit_id=obligation.unit_id,
        to_unit_id=receiver_of(obligation, issuer_unit),
        kind=kind,
        subject=title,
        text=body,
        created_at=now,
    )
    session.add(message)
    session.flush()
    write_audit(
        session,
        "unit.message",
        at=now,
        plan_id=plan_id,
        obligation_id=obligation.id,
        actor=f"unit:{obligation.unit_id}",
        remote_addr=remote_addr,
        message_id=message.id,
        kind=kind,
        to=message.to_unit_id,
        subject=title,
        length=len(body),
    )
    queue_mail(
        session,
        obligation,
        "unit_message",
        step=f"m{message.id}",
        extra={
            "message_kind": KINDS[kind],
            "message_subject": title,
            "message_text": body,
            "message_to": message.to_unit_id,
        },
        now=now,
    )
    return message


def messages_of(session: Session, plan_id: str, cycle_key: str | None = None) -> list[UnitMessage]:
    """The plan's messages (of one cycle when given), oldest first."""
    query = select(UnitMessage).where(UnitMessage.plan_id == plan_id)
    if cycle_key is not None:
        query = (
            query.join(Cycle, UnitMessage.cycle_id == Cycle.id)
            .join(PlanInstance, Cycle.instance_id == PlanInstance.id)
            .where(Cycle.key == cycle_key, PlanInstance.plan_id == plan_id)
        )
    return list(session.scalars(query.order_by(UnitMessage.created_at, UnitMessage.id)))


def message_lines(
    session: Session, plan_id: str, cycle_key: str | None, as_of: dt.datetime | None = None
) -> list[str]:
    """The messages as ``kehoach status`` and the status artifact print them: a heading,
    then one line each (day, kind, from → to, subject); none: no lines."""
    from engine.context import plan_context
    from engine.repository import plan_version
    from engine.vntext import short_date

    found = [
        m for m in messages_of(session, plan_id, cycle_key) if as_of is None or m.created_at < as_of
    ]
    if not found:
        return []
    ctx = plan_context(session, plan_version(session, plan_id))
    lines = [f"Đơn vị chủ động báo cáo, gửi ý kiến ({len(found)}):"]
    for m in found:
        sent = local_day(m.created_at)  # the units as they were named that day
        lines.append(
            f"  {short_date(sent)}  {LABELS.get(m.kind, m.kind)}: "
            f"{ctx.unit_name(m.unit_id, on=sent)} → {ctx.unit_name(m.to_unit_id, on=sent)}"
            f" — {m.subject}"
        )
    return lines
