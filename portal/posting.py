"""The answer POST, in one hop off the event loop: the posted link opened
(:meth:`portal.link.Posted.open`), a replay answered with its first receipt, any
other answer taken (:func:`portal.answers.submit`).

Opening the link and taking the answer used to be two thread hops; one is enough, and
each hop costs the request a wait for a free worker thread under load.
"""

from __future__ import annotations

import logging

from starlette.responses import Response

from portal import answers
from portal.link import Posted
from portal.state import PortalState

log = logging.getLogger("kehoach.portal")


def take_answer(state: PortalState, posted: Posted) -> tuple[Response, int | None]:
    """The response to a posted answer and the id of the submission stored (None when
    nothing was: a refusal, an invalid answer, a replay)."""
    opened = posted.open()
    link = opened.link
    if opened.first is None:
        return answers.submit(
            state, link, posted.form, posted.addr, opened.answerable, form_key=opened.form_key
        )
    log.info(
        "replayed answer on obligation %s: receipt of v%s", link.obligation.id, opened.first.version
    )
    state.refusals.record(
        "portal.submit_replayed",
        at=link.opened_at,
        actor=link.actor,
        remote_addr=posted.addr,
        link_hash=link.token_hash,
        obligation_id=link.obligation.id,
        plan_id=link.plan.id,
        submission_id=opened.first.id,
        version=opened.first.version,
    )
    return answers.receipt_redirect(link, opened.first.version), None
