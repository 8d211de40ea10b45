"""Opening a link once per request: the FastAPI dependencies of the routes behind a link.

A GET behind a link declares ``link: Link`` (``Annotated[OpenedLink, Depends(read_link)]``);
the answer form ``posted: PostedOnLink``. Before the handler runs, the dependency has

- taken a token from the link's rate limit (reads and writes have their own buckets);
- for the POST: read the form and checked its CSRF field against the nonce cookie;
- verified the token and read its obligation and plan, once (:func:`portal.access.open_link`).

The handlers receive the opened link and never see a token they must check again.
What fails is answered here, as :class:`Answered` (the app turns it into its
response): 429, 400 for an unreadable form, the CSRF page (403), or the refusal page
with its form to request a fresh link (403 or 410). A refused POST is audited when
its token is genuinely signed; a forged one is only logged (otherwise anyone could
fill the audit table with made-up tokens).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData
from starlette.formparsers import MultiPartException
from starlette.requests import Request
from starlette.responses import Response

from engine.links import LinkClaims
from portal import audit, csrf
from portal.access import LinkRefused, OpenedLink, open_link, token_hash, verify_signature
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
    """An answer form posted on an opened link (the form is closed after the handler)."""

    link: OpenedLink
    form: FormData
    addr: str
    # Whether a version may be sent now, and why not: read with the link, in its session.
    answerable: tuple[bool, str | None]


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
    response = state.pages.response(
        "refused.html.j2",
        exc.status_code,
        title=title,
        explanation=explanation,
        token=safe_token,
        csrf=state.form_token(safe_token, nonce),
    )
    return with_nonce(state, response, nonce, fresh)


def _state(request: Request) -> PortalState:
    state: PortalState = request.app.state.portal
    return state


def read_link(token: str, request: Request) -> OpenedLink:
    """A GET on a link: the link's read limit, then the link."""
    state = _state(request)
    if not state.limiters.link_read.allow(token_hash(token)):
        raise Answered(too_many(state))
    nonce = valid_nonce(request.cookies.get(csrf.COOKIE))
    with state.reading() as session:
        try:
            return open_link(session, token, state.conf, state.now(), state.link_max_age, nonce)
        except LinkRefused as exc:
            raise Answered(refused_page(state, token, exc, nonce)) from None


# A malformed number in the address is a page that does not exist (404): these take
# it as a parameter, so FastAPI refuses it before the link is opened.


def read_receipt_link(token: str, version: int, request: Request) -> OpenedLink:
    return read_link(token, request)


def read_file_link(token: str, file_id: int, request: Request) -> OpenedLink:
    return read_link(token, request)


async def post_on_link(token: str, request: Request) -> AsyncIterator[Posted]:
    """The answer form on a link: the link's write limit, the form, its CSRF field, then
    the link; the form is closed when the handler is done."""
    state = _state(request)
    if not state.limiters.link_write.allow(token_hash(token)):
        raise Answered(too_many(state))
    try:
        form = await request.form(max_files=MAX_FILES_PER_FORM, max_fields=200)
    except MultiPartException as exc:
        log.info("unreadable form: %s", exc)
        raise Answered(state.pages.error(400, back=f"/o/{token}")) from None
    try:
        addr = client_address(request.scope)
        nonce = valid_nonce(request.cookies.get(csrf.COOKIE))
        link, answerable = await run_in_threadpool(open_posted, state, token, form, nonce, addr)
        yield Posted(link, form, addr, answerable)
    finally:
        await form.close()


# What the routes declare: ``def view(link: Link)``.
Link = Annotated[OpenedLink, Depends(read_link)]
ReceiptLink = Annotated[OpenedLink, Depends(read_receipt_link)]
FileLink = Annotated[OpenedLink, Depends(read_file_link)]
PostedOnLink = Annotated[Posted, Depends(post_on_link, scope="function")]


def open_posted(
    state: PortalState, token: str, form: FormData, nonce: str | None, addr: str
) -> tuple[OpenedLink, tuple[bool, str | None]]:
    """The link a form was posted on, once its CSRF field holds, and whether it may be
    answered now (one session for both); else :class:`Answered`."""
    given = form.get(csrf.FIELD)
    if not csrf.valid(state.csrf_key, token, nonce, given if isinstance(given, str) else None):
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
    with state.reading() as session:
        try:
            link = open_link(session, token, state.conf, state.now(), state.link_max_age, nonce)
            return link, can_answer(session, link.obligation, link.opened_at)
        except LinkRefused as exc:
            refused = exc
    _audit_refused(
        state, token, "portal.submit_refused_link", addr, refused.claims, reason=refused.reason
    )
    raise Answered(refused_page(state, token, refused, nonce))


def _claims_or_none(state: PortalState, token: str) -> LinkClaims | None:
    try:
        return verify_signature(token, state.conf, max_age=None)
    except LinkRefused:
        return None


def _audit_refused(
    state: PortalState, token: str, action: str, addr: str, claims: LinkClaims | None, **data: Any
) -> None:
    """Audit a refused POST when the token is genuinely signed; a forged one is only logged."""
    if claims is None:
        log.info("%s with an unverifiable link from %s", action, addr)
        return
    with state.writing() as session:
        audit.record(
            session,
            action,
            at=state.now(),
            actor=f"unit:{claims.unit_id}",
            remote_addr=addr,
            link_hash=token_hash(token),
            obligation_id=claims.obligation_id,
            **data,
        )
