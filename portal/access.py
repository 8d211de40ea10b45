"""From a signed link to the one obligation it opens, or a reason it does not.

Every portal route that takes a token calls :func:`open_link`: the obligation is
always re-derived from the token, never from an id in a form or a URL, so a link
for one obligation can never read or write another.

A link is honoured while all of these hold:

- its signature verifies with the current key or one of ``KEHOACH_PORTAL_OLD_SECRETS``
  (those until the end of ``KEHOACH_PORTAL_OLD_SECRETS_UNTIL`` when set);
- it was issued at most ``max_age`` ago (default 400 days: an absolute cap, so a
  link leaked years ago is dead even on a long-running plan);
- the obligation exists, is still the token's unit's, in the token's cycle, and has
  the token's ``token_version`` (bumping it revokes every earlier link);
- the cycle is not closed and today is not past the link's end: the end of the
  cycle's ``closes_on`` day, or, when the cycle has none, the end of the day
  ``LINK_GRACE_DAYS`` (60) after the obligation's due date, which leaves room for a
  late report and for a resubmission after a return for revision.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Row, bindparam, select
from sqlalchemy.orm import Session

from engine.calendar import end_of_day
from engine.config import Settings
from engine.links import LinkClaims, LinkError, read_token
from engine.store.models import Cycle, Obligation

LINK_GRACE_DAYS = 60
DEFAULT_MAX_AGE = dt.timedelta(days=400)

# A row of the obligations table: read-only, attributes named like Obligation's.
ObligationRow = Row[Any]

_obligations = Obligation.__table__
_cycles = Cycle.__table__
# Built once, in plain SQL expressions (no ORM entities): building the statement, or
# loading ORM objects, would cost more than running it.
_OBLIGATION_WITH_CYCLE = (
    select(
        _obligations,
        _cycles.c.instance_id.label("cycle_instance_id"),
        _cycles.c.key.label("cycle_key"),
        _cycles.c.status.label("cycle_status"),
        _cycles.c.closes_on.label("cycle_closes_on"),
    )
    .join(_cycles, _cycles.c.id == _obligations.c.cycle_id)
    .where(_obligations.c.id == bindparam("obligation_id"))
)


class LinkRefused(Exception):
    """A link the portal will not honour.

    ``reason``: forged | malformed | unknown (403) or expired | revoked | closed (410).
    ``claims`` is set when the signature itself verified: then a fresh link can be
    sent to the unit's registered address.
    """

    GONE = {"expired", "revoked", "closed"}

    def __init__(self, reason: str, claims: LinkClaims | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.claims = claims

    @property
    def status_code(self) -> int:
        return 410 if self.reason in self.GONE else 403


@dataclass(frozen=True)
class LinkedCycle:
    """What a link needs of its cycle."""

    id: int
    instance_id: int
    key: str
    status: str
    closes_on: dt.date | None


@dataclass(frozen=True)
class OpenLink:
    """A verified link and the obligation it opens, as read in the caller's session
    (plain rows, not ORM objects: nothing here can be changed and flushed)."""

    token: str
    token_hash: str
    claims: LinkClaims
    obligation: ObligationRow
    cycle: LinkedCycle
    valid_until: dt.datetime

    @property
    def actor(self) -> str:
        return f"unit:{self.obligation.unit_id}"


def token_hash(token: str) -> str:
    """What the audit log keeps instead of the token (the token itself grants access)."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()[:32]


def link_valid_until(
    cycle: Cycle | LinkedCycle, obligation: Obligation | ObligationRow
) -> dt.datetime:
    """The last moment a link to ``obligation`` is honoured (Asia/Ho_Chi_Minh day end)."""
    if cycle.closes_on is not None:
        return end_of_day(cycle.closes_on)
    return end_of_day(obligation.due_date + dt.timedelta(days=LINK_GRACE_DAYS))


def verify_signature(
    token: str, conf: Settings, max_age: dt.timedelta | None = DEFAULT_MAX_AGE
) -> LinkClaims:
    """The token's claims if its signature (and, unless ``max_age`` is None, its age) holds."""
    if not token or len(token) > 500:
        raise LinkRefused("malformed")
    seconds = int(max_age.total_seconds()) if max_age is not None else None
    try:
        return read_token(token, max_age_seconds=seconds, conf=conf)
    except LinkError as exc:
        if exc.reason == "expired":
            # The signature is genuine, only old: a fresh link may be requested.
            claims = read_token(token, max_age_seconds=None, conf=conf, retired_ok=True)
            raise LinkRefused("expired", claims) from None
        raise LinkRefused(exc.reason) from None


def open_link(
    session: Session,
    token: str,
    conf: Settings,
    now: dt.datetime,
    max_age: dt.timedelta | None = DEFAULT_MAX_AGE,
) -> OpenLink:
    """Verify ``token`` and load its obligation; raise :class:`LinkRefused` otherwise."""
    claims = verify_signature(token, conf, max_age)
    obligation = session.execute(
        _OBLIGATION_WITH_CYCLE, {"obligation_id": claims.obligation_id}
    ).first()
    if obligation is None:
        raise LinkRefused("unknown")
    cycle = LinkedCycle(
        obligation.cycle_id,
        obligation.cycle_instance_id,
        obligation.cycle_key,
        obligation.cycle_status,
        obligation.cycle_closes_on,
    )
    # A genuine signature whose facts no longer match (the obligation moved to a
    # successor unit, a bumped token_version) is a revoked link, not a forgery.
    if (
        obligation.unit_id != claims.unit_id
        or cycle.key != claims.cycle_key
        or obligation.token_version != claims.token_version
    ):
        raise LinkRefused("revoked", claims)
    valid_until = link_valid_until(cycle, obligation)
    if cycle.status == "closed":
        raise LinkRefused("closed", claims)
    if now > valid_until:
        raise LinkRefused("expired", claims)
    return OpenLink(token, token_hash(token), claims, obligation, cycle, valid_until)
