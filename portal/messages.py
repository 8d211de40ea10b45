"""A unit's own report or comment under a plan, posted from its duty's page
(``POST /o/{token}/message``): the same checks as an answer (rate limits, CSRF, the
link), then engine.unit_messages keeps, audits and mails it in one transaction."""

from __future__ import annotations

import logging

from starlette.responses import Response

from engine.store.models import Obligation
from engine.unit_messages import KINDS, MessageRefused, send_message
from engine.vntext import short_date
from portal.link import Posted
from portal.view import unit_names

log = logging.getLogger("kehoach.portal")


def _field(posted: Posted, name: str) -> str | None:
    value = posted.form.get(name)
    return value if isinstance(value, str) else None


def take_message(posted: Posted) -> Response:
    state = posted.state
    opened = posted.open()  # CSRF and the link; a refusal is answered there
    link = opened.link
    back = f"/o/{link.token}"
    now = state.now()
    try:
        with state.writing() as session:
            obligation = session.get(Obligation, link.obligation.id)
            assert obligation is not None  # the link was just opened on it
            message = send_message(
                session,
                obligation,
                kind=_field(posted, "message_kind") or "",
                subject=_field(posted, "message_subject"),
                text=_field(posted, "message_text"),
                issuer_unit=link.plan.document.issuer_unit,
                plan_id=link.plan.id,
                now=now,
                remote_addr=posted.addr,
            )
            names = unit_names(session, link.registry_id, {message.to_unit_id})
            kind, to_unit = KINDS[message.kind], message.to_unit_id
    except MessageRefused as exc:
        return state.pages.error(400, "Chưa gửi được", f"{exc} Chưa có gì được lưu.", back=back)
    log.info("message obligation=%s unit=%s to=%s", obligation.id, obligation.unit_id, to_unit)
    return state.pages.error(
        200,
        f"Đã gửi: {kind.lower()}",
        f"{kind} của đơn vị đã được lưu và gửi tới {names.get(to_unit, to_unit)} ngày "
        f"{short_date(now.date())}; đơn vị nhận bản sao qua thư điện tử.",
        back=back,
    )
