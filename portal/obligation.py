"""GET pages behind a link: the obligation, a receipt, a stored file; and the refusal page.

Nothing here writes to the database (the sessions are rolled back); views are
logged to the application log only, so a mail scanner that prefetches a link
changes nothing.
"""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy import select
from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, Response

from engine.store.models import StoredFile, Submission
from portal import csrf, uploads
from portal.access import LinkRefused, open_link, token_hash
from portal.pages import REFUSALS
from portal.state import PortalState
from portal.view import obligation_page

log = logging.getLogger("kehoach.portal")


def with_nonce(state: PortalState, response: Response, nonce: str, fresh: bool) -> Response:
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


def nonce_of(request: Request) -> tuple[str, bool]:
    """The browser's nonce, or a new one (True) to be set as a cookie."""
    nonce = request.cookies.get(csrf.COOKIE)
    if nonce and 16 <= len(nonce) <= 100:
        return nonce, False
    return csrf.new_nonce(), True


def refused_page(state: PortalState, token: str, exc: LinkRefused, nonce: str | None) -> Response:
    """The Vietnamese refusal page with the form to request a fresh link."""
    title, explanation = REFUSALS.get(exc.reason, REFUSALS["forged"])
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


def obligation_response(
    state: PortalState,
    token: str,
    nonce: str | None,
    *,
    status_code: int = 200,
    values: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
) -> Response:
    now = state.now()
    with state.reading() as session:
        try:
            link = open_link(session, token, state.conf, now, state.link_max_age)
        except LinkRefused as exc:
            return refused_page(state, token, exc, nonce)
        plan, registry_id = state.plans.get(session, link.cycle.instance_id)
        page = obligation_page(session, link, plan, registry_id, now)
        obligation_id, unit_id = link.obligation.id, link.obligation.unit_id
    fresh = nonce is None
    nonce = nonce or csrf.new_nonce()
    html = state.pages.html(
        "obligation.html.j2",
        **page,
        token=token,
        csrf=state.form_token(token, nonce),
        values=values or {},
        errors=errors or {},
        accept=uploads.ACCEPT_ATTRIBUTE,
        max_upload_mb=f"{state.conf.portal_max_upload_mb:g}",
    )
    log.info("view obligation=%s unit=%s link=%s", obligation_id, unit_id, token_hash(token)[:12])
    return with_nonce(state, HTMLResponse(html, status_code=status_code), nonce, fresh)


def receipt_response(state: PortalState, token: str, version: int, nonce: str | None) -> Response:
    now = state.now()
    with state.reading() as session:
        try:
            link = open_link(session, token, state.conf, now, state.link_max_age)
        except LinkRefused as exc:
            return refused_page(state, token, exc, nonce)
        plan, registry_id = state.plans.get(session, link.cycle.instance_id)
        page = obligation_page(session, link, plan, registry_id, now)
        chosen: dict[str, Any] | None = next(
            (s for s in page["submissions"] if s["version"] == version), None
        )
    if chosen is None:
        return state.pages.error(404, back=f"/o/{token}")
    return state.pages.response(
        "receipt.html.j2",
        plan=page["plan"],
        unit_name=page["unit_name"],
        deliverable=page["deliverable"],
        cycle_key=page["cycle_key"],
        due=page["due"],
        sub=chosen,
        token=token,
    )


def file_response(state: PortalState, token: str, file_id: int, nonce: str | None) -> Response:
    """A stored file, only if one of this obligation's submissions lists it."""
    now = state.now()
    with state.reading() as session:
        try:
            link = open_link(session, token, state.conf, now, state.link_max_age)
        except LinkRefused as exc:
            return refused_page(state, token, exc, nonce)
        listed = any(
            file_id in {int(i) for i in (ids or [])}
            for ids in session.scalars(
                select(Submission.file_ids).where(Submission.obligation_id == link.obligation.id)
            )
        )
        row = session.get(StoredFile, file_id) if listed else None
        found = (row.sha256, row.content_type, row.original_name) if row is not None else None
    if found is None:
        return state.pages.error(404, back=f"/o/{token}")
    sha256, content_type, name = found
    path = uploads.final_path(state.files_dir, sha256)
    if not path.is_file():
        log.error("stored file %s (%s) is missing on disk", file_id, sha256)
        return state.pages.error(404, back=f"/o/{token}")
    return FileResponse(
        path,
        media_type=content_type,
        headers={"content-disposition": uploads.content_disposition(name)},
    )
