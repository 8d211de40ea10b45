"""GET pages behind an opened link: the obligation, a receipt, a stored file.

Each takes the :class:`~portal.access.OpenedLink` that :mod:`portal.link` opened for
the request. Nothing here writes to the database (the sessions are rolled back);
views are logged to the application log only, so a mail scanner that prefetches a
link changes nothing.
"""

from __future__ import annotations

import logging
from contextlib import nullcontext
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, Response

from engine.store.models import StoredFile, Submission
from engine.task_contributions import contributions_to
from portal import csrf, uploads
from portal.access import OpenedLink
from portal.link import read_link_in, with_nonce
from portal.state import PortalState
from portal.view import obligation_page

log = logging.getLogger("kehoach.portal")


def obligation_response(
    state: PortalState,
    link: OpenedLink,
    *,
    status_code: int = 200,
    values: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
    draft_refused: bool = False,
    session: Session | None = None,
) -> Response:
    """The obligation's page, with its form (``values`` and ``errors``: the form again;
    without them, the form holds the unit's draft if it saved one: portal.drafts).
    ``draft_refused``: the errors are a draft's, which was not saved; ``session``: read
    in this one (the link's) rather than a new one."""
    with nullcontext(session) if session is not None else state.reading() as reading:
        page = obligation_page(reading, link)
    if values is None and page["draft"] is not None:
        values = page["draft"]["values"]
    fresh = link.nonce is None
    nonce = link.nonce or csrf.new_nonce()
    html = state.pages.html(
        "obligation.html.j2",
        **page,
        token=link.token,
        csrf=state.form_token(link.token, nonce),
        values=values or {},
        errors=errors or {},
        draft_refused=draft_refused,
        accept=uploads.ACCEPT_ATTRIBUTE,
        max_upload_mb=f"{state.conf.portal_max_upload_mb:g}",
    )
    obligation = link.obligation
    log.info(
        "view obligation=%s unit=%s link=%s",
        obligation.id,
        obligation.unit_id,
        link.token_hash[:12],
    )
    return with_nonce(state, HTMLResponse(html, status_code=status_code), nonce, fresh)


def view_response(state: PortalState, token: str, request: Request) -> Response:
    """GET /o/{token}: the link opened and its page read in one session and one thread
    hop (a sync dependency and a sync handler would be two hops, each a wait for a free
    worker thread under load, and two sessions, each a pool checkout and a rollback)."""
    with state.reading() as session:
        return obligation_response(state, read_link_in(token, request, session), session=session)


def receipt_response(state: PortalState, link: OpenedLink, version: int) -> Response:
    with state.reading() as session:
        page = obligation_page(session, link)
    chosen: dict[str, Any] | None = next(
        (s for s in page["submissions"] if s["version"] == version), None
    )
    if chosen is None:
        return state.pages.error(404, back=link.page)
    return state.pages.response(
        "receipt.html.j2",
        plan=page["plan"],
        unit_name=page["unit_name"],
        deliverable=page["deliverable"],
        cycle_key=page["cycle_key"],
        due=page["due"],
        sub=chosen,
        token=link.token,
        period=page["period"],
        contact=page["contact"],
    )


def file_response(state: PortalState, link: OpenedLink, file_id: int) -> Response:
    """A stored file, only if one of this obligation's submissions lists it, or a
    supporting unit's contribution to it (engine.task_contributions)."""
    with state.reading() as session:
        listed = any(
            file_id in {int(i) for i in (ids or [])}
            for ids in session.scalars(
                select(Submission.file_ids).where(Submission.obligation_id == link.obligation.id)
            )
        ) or file_id in {m.file_id for m in contributions_to(session, link.obligation.id)}
        row = session.get(StoredFile, file_id) if listed else None
        found = (row.sha256, row.content_type, row.original_name) if row is not None else None
    if found is None:
        return state.pages.error(404, back=link.page)
    sha256, content_type, name = found
    path = uploads.final_path(state.files_dir, sha256)
    if not path.is_file():
        log.error("stored file %s (%s) is missing on disk", file_id, sha256)
        return state.pages.error(404, back=link.page)
    return FileResponse(
        path,
        media_type=content_type,
        headers={"content-disposition": uploads.content_disposition(name)},
    )
