"""Save as draft ("Lưu nháp"): the answer form kept without sending it.

``POST /o/{token}/draft`` is the form's second button. The same checks as an answer run
first (rate limits, the CSRF field, the link, whether the duty may be answered now:
:meth:`portal.link.Posted.open`); then every value given is checked by the rules of a
submission (:func:`engine.values.check_value`: kinds, bounds, lengths, characters), but
nothing is required, so a half-filled form can be kept. A value refused shows the form
again with the message next to its field, and nothing is saved.

A draft is one row per obligation (:class:`~engine.store.models.AnswerDraft`), replaced
by each save: it is not a submission (no version, no receipt, no email, no intake, not
consolidated), and it is removed in the transaction that stores the answer sent
(:func:`portal.answers.submit`). Files are not kept in a draft (they are chosen again
when sending); the page says so. A form already sent with the same answer (portal.idempotency)
is not saved again as a draft: its receipt is the answer. The save is audited as ``portal.draft_saved`` (which
fields, never their content). The obligation page fills the form with the draft.
"""

from __future__ import annotations

import logging

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from starlette.datastructures import FormData
from starlette.responses import RedirectResponse, Response

from engine.schema import FieldType
from engine.store.models import AnswerDraft
from engine.values import InvalidValue, check_value, is_blank, normalised
from portal import audit
from portal.access import OpenedLink
from portal.answers import receipt_redirect
from portal.link import Posted
from portal.obligation import obligation_response
from portal.state import PortalState
from portal.view import SUMMARY_FIELD, SUMMARY_MAX, Answer, answer_for

log = logging.getLogger("kehoach.portal")


def draft_values(answer: Answer, form: FormData) -> tuple[dict[str, str], dict[str, str]]:
    """(what the draft keeps, problems by field): each typed value checked as a
    submission's would be, none required; files are not kept."""
    kept: dict[str, str] = {}
    errors: dict[str, str] = {}
    for field in answer.fields:
        if field.type is FieldType.file:
            continue
        value = form.get(f"f-{field.id}")
        if not isinstance(value, str) or is_blank(value):
            continue
        try:
            checked = check_value(field, value)
        except InvalidValue as exc:
            errors[field.id] = exc.message
            continue
        if field.type in (FieldType.text, FieldType.choice, FieldType.date):
            kept[field.id] = str(checked)  # NFC text, the canonical choice, an ISO date
        else:
            kept[field.id] = normalised(value).strip()  # a number as the unit typed it
    summary = kept.get(SUMMARY_FIELD)
    if answer.sub_plan and summary and len(summary) > SUMMARY_MAX:
        errors[SUMMARY_FIELD] = f"Tóm tắt dài quá {SUMMARY_MAX} ký tự; vui lòng rút gọn."
    return kept, errors


def save_draft(posted: Posted) -> Response:
    """The response to "Lưu nháp": the form again with its problems, or back to the page."""
    state = posted.state
    opened = posted.open()  # CSRF and the link; a refusal is answered there
    link = opened.link
    allowed, why_not = opened.answerable
    if opened.first is not None:  # this very form and answer were sent already: its receipt
        return receipt_redirect(link, opened.first.version)
    answer = answer_for(link.plan, link.obligation, state.reading)
    if answer is None or not allowed:
        message = why_not or "Nhiệm vụ này không nhận báo cáo qua cổng."
        return state.pages.error(409, "Không lưu được bản nháp", message, back=link.page)
    kept, errors = draft_values(answer, posted.form)
    if errors:
        shown = {
            f.id: v
            for f in answer.fields
            if f.type is not FieldType.file and isinstance(v := posted.form.get(f"f-{f.id}"), str)
        }
        return obligation_response(
            state, link, status_code=422, values=shown, errors=errors, draft_refused=True
        )
    with state.obligation_lock(int(link.obligation.id)):
        for attempt in (1, 2):  # another process may insert the first draft meanwhile
            try:
                _store(state, link, posted.addr, kept)
                break
            except IntegrityError:
                if attempt == 2:
                    raise
    log.info("draft saved for obligation %s (%s fields)", link.obligation.id, len(kept))
    return RedirectResponse(f"{link.page}#gui-bao-cao", status_code=303)


def _store(state: PortalState, link: OpenedLink, addr: str, kept: dict[str, str]) -> None:
    """The draft replaced (or added) and its audit row, in one transaction."""
    obligation_id, now = int(link.obligation.id), link.opened_at
    with state.writing() as session:
        row = session.scalars(
            select(AnswerDraft).where(AnswerDraft.obligation_id == obligation_id)
        ).first()
        if row is None:
            row = AnswerDraft(obligation_id=obligation_id, saved_by=link.actor)
            session.add(row)
        row.values, row.saved_at, row.saved_by = kept, now, link.actor
        audit.record(
            session,
            "portal.draft_saved",
            at=now,
            actor=link.actor,
            remote_addr=addr,
            link_hash=link.token_hash,
            obligation_id=obligation_id,
            plan_id=link.plan.id,
            fields=sorted(kept),
        )
