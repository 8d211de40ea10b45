"""A supporting unit's page for a tracked task: ``GET /p/{token}`` and its contribution
form ``POST /p/{token}/contribute`` (engine.task_contributions).

The token is the supporting unit's own (engine.links.support_link, signed with
``SUPPORT_SALT``): the obligation routes (``/o/…``) refuse it as forged, so it can never
answer the task, and a lead's token never opens this page. It is honoured like an
obligation link (portal.access): a genuine signature within its age, the lead's duty
still in the token's cycle with the token's version, and the unit still one of the
task's supporting units; else the refusal page. The same rate limits apply (a bucket
per supporting unit and task; the address's write limit for the POST), and the form
carries the same CSRF field. After the task is done or its cycle closed the page says
so and the POST stores nothing.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session
from starlette.datastructures import FormData, UploadFile
from starlette.formparsers import MultiPartException
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from engine.links import SUPPORT_SALT
from engine.schema import Plan
from engine.store.models import Obligation, StoredFile
from engine.task_contributions import (
    clean_text,
    closed_reason,
    contribute,
    contributions_of,
    posted_before,
    supporting_of,
    task_of,
)
from engine.unit_messages import MessageRefused
from engine.vntext import date_with_weekday
from portal import csrf, uploads
from portal.access import (
    LinkRefused,
    RefusalReason,
    link_valid_until,
    load_obligation,
    token_hash,
    verify_signature,
)
from portal.hardening import client_address
from portal.link import too_many, valid_nonce, with_nonce
from portal.pages import CSRF_FAILED, REFUSALS
from portal.state import PortalState
from portal.view import local_time, plan_summary, unit_names

log = logging.getLogger("kehoach.portal")

FILE_FIELD = "tep"
TEXT_FIELD = "noi_dung"


@dataclass(frozen=True)
class SupportLink:
    """A verified supporting unit's link: who, the lead's duty (a plain row), its plan."""

    token: str
    unit_id: str
    obligation: Any
    plan: Plan
    registry_id: str
    closed: str | None  # why nothing more is taken (Vietnamese), None while it is

    @property
    def page(self) -> str:
        return f"/p/{self.token}"


def open_support(session: Session, state: PortalState, token: str) -> SupportLink:
    """Verify a supporting unit's token; :class:`LinkRefused` when it is not honoured."""
    claims = verify_signature(token, state.conf, state.link_max_age, salt=SUPPORT_SALT)
    row, plan = load_obligation(session, claims)
    if row.cycle_key != claims.cycle_key or row.token_version != claims.token_version:
        raise LinkRefused(RefusalReason.REVOKED, claims)
    if task_of(plan, row) is None or claims.unit_id not in supporting_of(
        session, plan, row.plan_registry_id, row
    ):
        raise LinkRefused(RefusalReason.REVOKED, claims)  # no longer a supporting unit
    until = link_valid_until(row.cycle_closes_on, row.due_date)
    closed = closed_reason(row.status, row.cycle_status, state.now(), until)
    return SupportLink(token, claims.unit_id, row, plan, row.plan_registry_id, closed)


def _bucket(state: PortalState, token: str) -> str:
    try:
        claims = verify_signature(token, state.conf, max_age=None, salt=SUPPORT_SALT)
    except LinkRefused:
        return f"token:{token_hash(token)}"
    return f"support:{claims.obligation_id}:{claims.unit_id}"


def _refused(state: PortalState, exc: LinkRefused) -> Response:
    title, explanation = REFUSALS[exc.reason]
    return state.pages.error(exc.status_code, title, explanation)


def _page(
    state: PortalState,
    session: Session,
    link: SupportLink,
    nonce: str,
    *,
    error: str | None = None,
    text: str = "",
) -> str:
    row, plan = link.obligation, link.plan
    task = task_of(plan, row)
    assert task is not None  # open_support checked it
    others = supporting_of(session, plan, link.registry_id, row)
    names = unit_names(session, link.registry_id, {row.unit_id, link.unit_id, *others})
    mine = contributions_of(session, row.id, link.unit_id)
    files = {m.file_id: session.get(StoredFile, m.file_id) for m in mine if m.file_id}
    return state.pages.html(
        "support.html.j2",
        plan=plan_summary(plan),
        unit_name=names.get(link.unit_id, link.unit_id),
        lead_name=names.get(row.unit_id, row.unit_id),
        supporting=[names.get(u, u) for u in others],
        task={"text": task.text, "phrase": task.phrase},
        due=date_with_weekday(row.due_date),
        closed=link.closed,
        sent=[
            {
                "at": local_time(m.created_at),
                "text": m.text,
                "file": f.original_name if (f := files.get(m.file_id or 0)) is not None else None,
            }
            for m in mine
        ],
        error=error,
        text=text,
        token=link.token,
        csrf=state.form_token(link.token, nonce),
        accept=uploads.ACCEPT_ATTRIBUTE,
        max_upload_mb=f"{state.conf.portal_max_upload_mb:g}",
        text_field=TEXT_FIELD,
        file_field=FILE_FIELD,
    )


def support_response(state: PortalState, token: str, request: Request) -> Response:
    """``GET /p/{token}``: the task, its lead and deadline, and the form (or why not)."""
    if not state.limiters.link_read.allow(_bucket(state, token)):
        return too_many(state)
    given = valid_nonce(request.cookies.get(csrf.COOKIE))
    nonce = given or csrf.new_nonce()
    with state.reading() as session:
        try:
            link = open_support(session, state, token)
        except LinkRefused as exc:
            return _refused(state, exc)
        html = _page(state, session, link, nonce)
    log.info("view support obligation=%s unit=%s", link.obligation.id, link.unit_id)
    return with_nonce(state, HTMLResponse(html), nonce, given is None)


async def read_contribution(state: PortalState, token: str, request: Request) -> Response:
    """``POST /p/{token}/contribute``: limits and the form here, the rest in a thread."""
    from starlette.concurrency import run_in_threadpool

    addr = client_address(request.scope)
    if not state.limiters.address_write.allow(addr) or not state.limiters.link_write.allow(
        _bucket(state, token)
    ):
        return too_many(state)
    try:
        form = await request.form(max_files=1, max_fields=10)
    except MultiPartException as exc:
        log.info("unreadable contribution form: %s", exc)
        return state.pages.error(400, back=f"/p/{token}")
    try:
        nonce = valid_nonce(request.cookies.get(csrf.COOKIE))
        return await run_in_threadpool(take_contribution, state, token, form, nonce, addr)
    finally:
        await form.close()


def _text(form: FormData, name: str) -> str:
    value = form.get(name)
    return value if isinstance(value, str) else ""


def take_contribution(
    state: PortalState, token: str, form: FormData, nonce: str | None, addr: str
) -> Response:
    """Check the CSRF field and the link, stage the file, then keep, audit and mail the
    contribution in one transaction (engine.task_contributions); nothing is kept on a
    refusal."""
    back = f"/p/{token}"
    field = _text(form, csrf.FIELD)
    if not csrf.valid(state.csrf_key, token, nonce, field or None):
        return state.pages.error(403, *CSRF_FAILED, back=back)
    typed = _text(form, TEXT_FIELD)
    with state.reading() as session:
        try:
            link = open_support(session, state, token)
        except LinkRefused as exc:
            return _refused(state, exc)
        if link.closed is not None:
            return state.pages.error(409, "Không còn nhận ý kiến phối hợp", link.closed, back=back)

    def again(message: str) -> Response:
        with state.reading() as session:
            html = _page(state, session, link, nonce or "", error=message, text=typed[:20_000])
        return HTMLResponse(html, status_code=422)

    try:
        text = clean_text(typed)
    except MessageRefused as exc:
        return again(f"{exc} Chưa có gì được lưu.")
    upload = form.get(FILE_FIELD)
    staged = None
    if isinstance(upload, UploadFile) and upload.filename:
        upload.file.seek(0)
        try:
            staged = uploads.stage(
                upload.file, upload.filename, FILE_FIELD, state.files_dir, state.max_file_bytes
            )
        except uploads.UploadRejected as exc:
            return again(f"{exc.message} Chưa có gì được lưu.")
    placed: list[Any] = []
    now, form_key = state.now(), csrf.form_id(field)
    try:
        with state.writing() as session:
            if posted_before(session, link.obligation.id, link.unit_id, form_key):
                log.info("contribution replayed: obligation=%s", link.obligation.id)
                if staged is not None:  # the same form posted again: kept once
                    uploads.discard([staged])
                return RedirectResponse(f"{back}#da-gui", status_code=303)
            stored = (
                uploads.place(session, staged, state.files_dir, now, placed) if staged else None
            )
            obligation = session.get(Obligation, link.obligation.id)
            assert obligation is not None  # the link was just opened on it
            contribute(
                session,
                obligation,
                link.unit_id,
                text=text,
                stored_file=stored,
                plan_id=link.plan.id,
                now=now,
                remote_addr=addr,
                form_key=form_key,
            )
    except BaseException:
        if staged is not None:
            uploads.discard([staged])
        for path in placed:
            path.unlink(missing_ok=True)
        raise
    log.info("contribution obligation=%s unit=%s", link.obligation.id, link.unit_id)
    return RedirectResponse(f"{back}#da-gui", status_code=303)
