"""Requesting a fresh link from an expired, revoked or broken one.

The answer is the same page whatever happened, so the form tells an outsider
nothing about which tokens are real. A fresh link is only ever mailed to the
addresses the registry holds for the unit that owns the obligation now (never to
an address typed in a form). The token's signature must verify (its age does not
matter; that is the point); a token that does not verify sends nothing.

Limits: per client address (in memory, see portal.ratelimit) and at most one mail
per obligation per hour, enforced by the outbox's idempotency key
``obl:<id>:assignment:link-<YYYYMMDDHH>`` (in the database, so across processes).
The mail is the assignment mail again, carrying a link signed now with the
obligation's current token_version.
"""

from __future__ import annotations

import logging
from zoneinfo import ZoneInfo

from sqlalchemy import select
from starlette.responses import Response

from engine.config import TIMEZONE
from engine.links import LinkClaims
from engine.states import CycleStatus, InstanceStatus, ObligationStatus
from engine.store.models import Obligation, OutboxMessage
from portal import audit, csrf
from portal.access import LinkRefused, token_hash, verify_signature
from portal.pages import CSRF_FAILED
from portal.state import PortalState

log = logging.getLogger("kehoach.portal")
TZ = ZoneInfo(TIMEZONE)


def _send(state: PortalState, token: str, addr: str) -> tuple[str, int | None, str | None]:
    """(outcome, obligation id, unit id); queues the mail when the outcome is 'queued'."""
    try:
        claims = verify_signature(token, state.conf, max_age=None)
    except LinkRefused as exc:
        # "expired" with claims: genuine, signed with a key retired past
        # KEHOACH_PORTAL_OLD_SECRETS_UNTIL; exactly the link a fresh one replaces.
        if exc.claims is None:
            return f"unverified-{exc.reason}", None, None
        claims = exc.claims
    now = state.now()
    with state.writing() as session:
        obligation = session.get(Obligation, claims.obligation_id)
        if obligation is None:
            return "unknown-obligation", None, None
        cycle = obligation.cycle
        outcome: str  # the state that stops a fresh link, or whether the mail is queued
        if cycle.status == CycleStatus.CLOSED or cycle.instance.status != InstanceStatus.ACTIVE:
            outcome = CycleStatus.CLOSED
        elif obligation.status == ObligationStatus.WAIVED:
            outcome = ObligationStatus.WAIVED
        else:
            from engine.outbox import enqueue_for_obligation, obligation_key

            step = f"link-{now.astimezone(TZ):%Y%m%d%H}"
            key = obligation_key(obligation.id, "assignment", step)
            queued_before = session.scalar(
                select(OutboxMessage.id).where(OutboxMessage.idempotency_key == key)
            )
            enqueue_for_obligation(
                session,
                obligation,
                "assignment",
                step,
                {"fresh_link": True},
                now=now,
                settings=state.conf,
            )
            outcome = "already-queued" if queued_before else "queued"
        audit.record(
            session,
            "portal.link_request",
            at=now,
            actor=f"unit:{claims.unit_id}",
            remote_addr=addr,
            link_hash=token_hash(token),
            obligation_id=obligation.id,
            plan_id=cycle.instance.plan_id,
            outcome=outcome,
        )
        return outcome, obligation.id, obligation.unit_id


def request_link(
    state: PortalState, token: str, given_csrf: str | None, nonce: str | None, addr: str
) -> Response:
    if not csrf.valid(state.csrf_key, token, nonce, given_csrf):
        claims: LinkClaims | None
        try:
            claims = verify_signature(token, state.conf, max_age=None)
        except LinkRefused as exc:
            claims = exc.claims  # genuine but signed with a retired key: still audited
        if claims is not None:  # forged tokens are only logged: see portal.link
            state.refusals.record(  # rows bounded per address
                "portal.csrf_rejected",
                at=state.now(),
                actor=f"unit:{claims.unit_id}",
                remote_addr=addr,
                link_hash=token_hash(token),
                obligation_id=claims.obligation_id,
                form="link_request",
            )
        log.info("fresh link request with a bad CSRF field from %s", addr)
        return state.pages.error(403, *CSRF_FAILED)
    if state.limiters.link_request_address.allow(addr):
        outcome, obligation_id, _ = _send(state, token, addr)
    else:
        outcome, obligation_id = "rate-limited", None
    log.info("fresh link request: %s (obligation %s)", outcome, obligation_id)
    return state.pages.response("link_requested.html.j2", 202)
