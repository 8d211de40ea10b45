"""Opening a link once per request: the FastAPI dependencies of the routes behind a link.

A GET behind a link declares ``link: Link`` (``Annotated[OpenedLink, Depends(read_link)]``);
the answer form ``posted: PostedOnLink``. Before the handler runs, the dependency has

- taken a token from the rate limits: the obligation's (every link and spelling of one
  obligation share it; reads and writes have their own buckets) and, for a POST, the
  client address's;
- for a GET: verified the token and read its obligation and plan, once
  (:func:`portal.access.open_link`);
- for the POST: read the form. The handler opens it with :meth:`Posted.open`, in the
  same thread hop as the answer: the CSRF field against the nonce cookie, then the
  link, whether it may be answered and whether this POST replays an earlier one.

The handlers receive the opened link and never see a token they must check again.
What fails is answered here, as :class:`Answered` (the app turns it into its
response): 429, 400 for an unreadable form, the CSRF page (403), or the refusal page
with its form to request a fresh link (403 or 410). A refused POST is audited when
its token is genuinely signed, within the per-address bound of
:class:`portal.audit.RefusalAudit`; a forged one is only logged (otherwise anyone
could fill the audit table with made-up tokens).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Sequence
from contextlib import nullcontext
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends
from sqlalchemy import Row
from sqlalchemy.orm import Session
from starlette.datastructures import FormData, UploadFile
from starlette.formparsers import MultiPartException
from starlette.requests import Request
from starlette.responses import Response

from engine.lifecycle import deciding_versions
from engine.links import LinkClaims
from portal import csrf, idempotency
from portal.access import (
    LinkRefused,
    OpenedLink,
    RefusalReason,
    open_link,
    token_hash,
    verify_signature,
)
from portal.hardening import client_address
from portal.pages import CSRF_FAILED, REFUSALS
from portal.state import MAX_FILES_PER_FORM, PortalState
from portal.view import can_answer

log = logging.getLogger("kehoach.portal")


class Answered(Exception):
    """The request is answered before its handler runs (a limit, a refusal)."""

    def __init__(self, response: Response) -> None:
        super().__init__(response.status_code)
        self.response = response


@dataclass(frozen=True)
class Posted:
    """An answer form posted on a link, read but not opened yet: :meth:`open` does that
    in the thread that takes the answer (one hop off the event loop for both). The form
    is closed after the handler."""

    state: PortalState
    token: str
    form: FormData
    addr: str
    nonce: str | None

    def open(self) -> OpenedPost:
        return open_posted(self.state, self.token, self.form, self.nonce, self.addr)

    @property
    def has_files(self) -> bool:
        """Whether a file was chosen in the form (a browser sends an empty part with no
        name for a file field left empty)."""
        return any(isinstance(v, UploadFile) and v.filename for _, v in self.form.multi_items())


@dataclass(frozen=True)
class OpenedPost:
    """The link an answer was posted on, opened, and what was read with it."""

    link: OpenedLink
    # Whether a version may be sent now, and why not: read with the link, in its session.
    answerable: tuple[bool, str | None]
    form_key: str  # the answer's idempotency key (portal.idempotency)
    first: Row[Any, Any] | None  # (id, version) of the answer this POST replays, if any
    history: Sequence[Any] = ()  # the versions that decided ``answerable`` (deciding_versions)


def valid_nonce(nonce: str | None) -> str | None:
    """The browser's CSRF nonce when it is one this portal could have set, else None."""
    return nonce if nonce and 16 <= len(nonce) <= 100 else None


def with_nonce(state: PortalState, response: Response, nonce: str, fresh: bool) -> Response:
    """``response``, setting the nonce cookie when the nonce is ``fresh`` (new here)."""
    if fresh:
        response.set_cookie(
            csrf.COOKIE,
            nonce,
            httponly=True,
            samesite="strict",
            secure=state.secure_cookies,
            path="/",
        )
    return response


def too_many(state: PortalState) -> Response:
    response = state.pages.error(429)
    response.headers["retry-after"] = "30"
    return response


def refused_page(state: PortalState, token: str, exc: LinkRefused, nonce: str | None) -> Response:
    """The Vietnamese refusal page with the form to request a fresh link."""
    title, explanation = REFUSALS[exc.reason]
    fresh = nonce is None
    nonce = nonce or csrf.new_nonce()
    # The token goes back only as a hidden field: never echoed as text.
    safe_token = token if len(token) <= 500 else ""
    contact = None
    if exc.reason is RefusalReason.CLOSED and exc.claims is not None:
        from portal.clerk import closed_contact

        with state.reading() as session:
            contact = closed_contact(session, exc.claims.obligation_id)
    response = state.pages.response(
        "refused.html.j2",
        exc.status_code,
        title=title,
        explanation=explanation,
        closed=exc.reason is RefusalReason.CLOSED,
        contact=contact,
        token=safe_token,
        csrf=state.form_token(safe_token, nonce),
    )
    return with_nonce(state, response, nonce, fresh)


def _state(request: Request) -> PortalState:
    state: PortalState = request.app.state.portal
    return state


def link_bucket(state: PortalState, token: str) -> str:
    """The rate-limit key of a link: its obligation's when its signature holds (so every
    link and every spelling that opens one obligation draws on one bucket), else the
    token's own (it is refused anyway)."""
    claims = _claims_or_none(state, token)
    return f"obligation:{claims.obligation_id}" if claims else f"token:{token_hash(token)}"


def read_link(token: str, request: Request) -> OpenedLink:
    """A GET on a link: the obligation's read limit, then the link."""
    return read_link_in(token, request, None)


def read_link_in(token: str, request: Request, session: Session | None) -> OpenedLink:
    """:func:`read_link`, reading in ``session`` when given (so that the page can be
    read in the same one)."""
    state = _state(request)
    if not state.limiters.link_read.allow(link_bucket(state, token)):
        raise Answered(too_many(state))
    nonce = valid_nonce(request.cookies.get(csrf.COOKIE))
    with nullcontext(session) if session is not None else state.reading() as reading:
        try:
            return open_link(reading, token, state.conf, state.now(), state.link_max_age, nonce)
        except LinkRefused as exc:
            raise Answered(refused_page(state, token, exc, nonce)) from None


# A malformed number in the address is a page that does not exist (404): these take
# it as a parameter, so FastAPI refuses it before the link is opened.


def read_receipt_link(token: str, version: int, request: Request) -> OpenedLink:
    return read_link(token, request)


def read_file_link(token: str, file_id: int, request: Request) -> OpenedLink:
    return read_link(token, request)


async def post_on_link(token: str, request: Request) -> AsyncIterator[Posted]:
    """The answer form on a link: the address's and the obligation's write limits, then
    the form (closed when the handler is done); the handler opens it (:meth:`Posted.open`)."""
    state = _state(request)
    addr = client_address(request.scope)
    if not state.limiters.address_write.allow(addr) or not state.limiters.link_write.allow(
        link_bucket(state, token)
    ):
        raise Answered(too_many(state))
    try:
        form = await request.form(max_files=MAX_FILES_PER_FORM, max_fields=200)
    except MultiPartException as exc:
        log.info("unreadable form: %s", exc)
        raise Answered(state.pages.error(400, back=f"/o/{token}")) from None
    try:
        yield Posted(state, token, form, addr, valid_nonce(request.cookies.get(csrf.COOKIE)))
    finally:
        await form.close()


# What the routes declare: ``def receipt(version: int, link: ReceiptLink)``.
Link = Annotated[OpenedLink, Depends(read_link)]
ReceiptLink = Annotated[OpenedLink, Depends(read_receipt_link)]
FileLink = Annotated[OpenedLink, Depends(read_file_link)]
PostedOnLink = Annotated[Posted, Depends(post_on_link, scope="function")]


def open_posted(
    state: PortalState, token: str, form: FormData, nonce: str | None, addr: str
) -> OpenedPost:
    """The link a form was posted on, once its CSRF field holds, whether it may be
    answered now and the answer it replays (one session for all); else :class:`Answered`."""
    key = checked_form_key(state, token, form, nonce, addr)
    with state.reading() as session:
        try:
            return open_for_answer(state, session, token, nonce, key)
        except LinkRefused as exc:
            refused = exc
    raise refused_post(state, token, addr, nonce, refused)


def checked_form_key(
    state: PortalState, token: str, form: FormData, nonce: str | None, addr: str
) -> str:
    """The answer's idempotency key (portal.idempotency) once the form's CSRF field
    holds against the nonce cookie; else :class:`Answered` (403, audited)."""
    given = form.get(csrf.FIELD)
    field = given if isinstance(given, str) else None
    if field is None or not csrf.valid(state.csrf_key, token, nonce, field):
        _audit_refused(
            state,
            token,
            "portal.csrf_rejected",
            addr,
            _claims_or_none(state, token),
            cookie=bool(nonce),
            field=bool(given),
        )
        raise Answered(state.pages.error(403, *CSRF_FAILED, back=f"/o/{token}"))
    return idempotency.form_key(field, form)


def open_for_answer(
    state: PortalState,
    session: Session,
    token: str,
    nonce: str | None,
    key: str,
    lock: bool = False,
) -> OpenedPost:
    """In ``session``: the link (:class:`LinkRefused` when it is not honoured), the
    versions that decide whether it may be answered now, and the answer stored under
    ``key`` if any. ``lock``: the obligation's row stays locked until the transaction
    ends, and everything after it is read under the lock."""
    link = open_link(session, token, state.conf, state.now(), state.link_max_age, nonce, lock=lock)
    history = deciding_versions(session, link.obligation.id)
    answerable = can_answer(session, link.obligation, link.opened_at, history)
    first = idempotency.first_answer(session, link.obligation.id, key)
    return OpenedPost(link, answerable, key, first, history)


def refused_post(
    state: PortalState, token: str, addr: str, nonce: str | None, refused: LinkRefused
) -> Answered:
    """The refusal page of a POST on a link not honoured, audited (call it outside any
    write transaction: the audit row is written in its own)."""
    _audit_refused(
        state, token, "portal.submit_refused_link", addr, refused.claims, reason=refused.reason
    )
    return Answered(refused_page(state, token, refused, nonce))


def _claims_or_none(state: PortalState, token: str) -> LinkClaims | None:
    try:
        return verify_signature(token, state.conf, max_age=None)
    except LinkRefused:
        return None


def _audit_refused(
    state: PortalState, token: str, action: str, addr: str, claims: LinkClaims | None, **data: Any
) -> None:
    """Audit a refused POST when the token is genuinely signed (rows bounded per address:
    portal.audit.RefusalAudit); a forged one is only logged."""
    if claims is None:
        log.info("%s with an unverifiable link from %s", action, addr)
        return
    state.refusals.record(
        action,
        at=state.now(),
        actor=f"unit:{claims.unit_id}",
        remote_addr=addr,
        link_hash=token_hash(token),
        obligation_id=claims.obligation_id,
        **data,
    )
