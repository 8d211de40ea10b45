"""From a signed link to the one obligation it opens, or a reason it does not.

Every portal route that takes a token opens it through :mod:`portal.link`, which
calls :func:`open_link` once per request: the obligation is always re-derived from the
token, never from an id in a form or a URL, so a link for one obligation can never
read or write another.

A link is honoured while all of these hold:

- its signature verifies with the current key or one of ``KEHOACH_PORTAL_OLD_SECRETS``
  (those until the end of ``KEHOACH_PORTAL_OLD_SECRETS_UNTIL`` when set);
- it was issued at most ``max_age`` ago (default 400 days: an absolute cap, so a
  link leaked years ago is dead even on a long-running plan);
- the obligation exists, is still the token's unit's, in the token's cycle, and has
  the token's ``token_version`` (bumping it revokes every earlier link);
- the cycle is not closed and today is not past the link's end: the end of the
  cycle's ``closes_on`` day, or, when the cycle has none, the end of the day
  ``engine.closing.DEFAULT_CLOSE_AFTER_DAYS`` (60) after the obligation's due date
  (the day the cycle would close), which leaves room for a late report and for a
  resubmission after a return for revision.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from sqlalchemy import Row, bindparam, select
from sqlalchemy.orm import Session

from engine.calendar import end_of_day
from engine.closing import DEFAULT_CLOSE_AFTER_DAYS
from engine.config import Settings
from engine.definitions_cache import plan_for_key
from engine.links import SALT, LinkClaims, LinkError, read_token
from engine.schema import Plan
from engine.states import CycleStatus
from engine.store.models import AnswerDraft, Cycle, Obligation, PlanInstance, PlanVersion

DEFAULT_MAX_AGE = dt.timedelta(days=400)

# A row of the obligations table: read-only, attributes named like Obligation's.
ObligationRow = Row[Any]

_obligations = Obligation.__table__
_cycles = Cycle.__table__
_instances = PlanInstance.__table__
_versions = PlanVersion.__table__
_drafts = AnswerDraft.__table__
# Built once, in plain SQL expressions (no ORM entities): building the statement, or
# loading ORM objects, would cost more than running it. The plan version's id and hash
# name the parsed plan in engine.definitions_cache, so one statement opens a link.
_OBLIGATION_WITH_CYCLE = (
    select(
        _obligations,
        _cycles.c.instance_id.label("cycle_instance_id"),
        _cycles.c.key.label("cycle_key"),
        _cycles.c.status.label("cycle_status"),
        _cycles.c.closes_on.label("cycle_closes_on"),
        # the data period the page states (portal.clerk), read here rather than again
        _cycles.c.period_start.label("cycle_period_start"),
        _cycles.c.period_end.label("cycle_period_end"),
        _instances.c.plan_version_id.label("plan_version_id"),
        _versions.c.content_hash.label("plan_content_hash"),
        _versions.c.registry_id.label("plan_registry_id"),
        # the answer the unit saved without sending it (portal.drafts), if any
        _drafts.c["values"].label("draft_values"),
        _drafts.c.saved_at.label("draft_saved_at"),
    )
    .join(_cycles, _cycles.c.id == _obligations.c.cycle_id)
    .join(_instances, _instances.c.id == _cycles.c.instance_id)
    .join(_versions, _versions.c.id == _instances.c.plan_version_id)
    .outerjoin(_drafts, _drafts.c.obligation_id == _obligations.c.id)
    .where(_obligations.c.id == bindparam("obligation_id"))
)
# The same, locking the obligation's row until the transaction ends (an answer opened and
# stored in one transaction: portal.posting); SQLite renders no FOR UPDATE (its write
# transaction, BEGIN IMMEDIATE, already excludes every other writer).
_OBLIGATION_WITH_CYCLE_LOCKED = _OBLIGATION_WITH_CYCLE.with_for_update(of=_obligations)


class RefusalReason(StrEnum):
    """Why a link is not honoured (the refusal page and the audit row name it)."""

    FORGED = "forged"
    MALFORMED = "malformed"
    UNKNOWN = "unknown"  # no such obligation
    EXPIRED = "expired"
    REVOKED = "revoked"
    CLOSED = "closed"  # its cycle is closed

    @property
    def status_code(self) -> int:
        """403 for a link that never was good; 410 (gone) for one that was."""
        gone = (RefusalReason.EXPIRED, RefusalReason.REVOKED, RefusalReason.CLOSED)
        return 410 if self in gone else 403


class LinkRefused(Exception):
    """A link the portal will not honour, and why (:class:`RefusalReason`).

    ``claims`` is set when the signature itself verified: then a fresh link can be
    sent to the unit's registered address.
    """

    def __init__(self, reason: RefusalReason | str, claims: LinkClaims | None = None) -> None:
        super().__init__(reason)
        self.reason = RefusalReason(reason)
        self.claims = claims

    @property
    def status_code(self) -> int:
        return self.reason.status_code


@dataclass(frozen=True)
class LinkedCycle:
    """What a link needs of its cycle."""

    id: int
    instance_id: int
    key: str
    status: CycleStatus
    closes_on: dt.date | None
    period_start: dt.date | None = None
    period_end: dt.date | None = None


@dataclass(frozen=True)
class OpenedLink:
    """A verified link, the obligation it opens and that obligation's plan, as read
    once for one request (plain rows, not ORM objects: nothing here can be changed and
    flushed).

    ``opened_at`` is the request's one reading of the clock; ``nonce`` the browser's
    CSRF nonce (its cookie), None when it sent none or a malformed one.
    """

    token: str
    token_hash: str
    claims: LinkClaims
    obligation: ObligationRow
    cycle: LinkedCycle
    plan: Plan
    registry_id: str
    valid_until: dt.datetime
    opened_at: dt.datetime
    nonce: str | None = None

    @property
    def actor(self) -> str:
        return f"unit:{self.obligation.unit_id}"

    @property
    def page(self) -> str:
        """The obligation's page: where every refusal and error points back to."""
        return f"/o/{self.token}"


def token_hash(token: str) -> str:
    """What the audit log keeps instead of the token (the token itself grants access)."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()[:32]


def link_valid_until(closes_on: dt.date | None, due_date: dt.date) -> dt.datetime:
    """The last moment a link is honoured (Asia/Ho_Chi_Minh day end): the end of the
    cycle's ``closes_on``, else of the day the cycle would close after ``due_date``."""
    if closes_on is not None:
        return end_of_day(closes_on)
    return end_of_day(due_date + dt.timedelta(days=DEFAULT_CLOSE_AFTER_DAYS))


def verify_signature(
    token: str,
    conf: Settings,
    max_age: dt.timedelta | None = DEFAULT_MAX_AGE,
    *,
    salt: str = SALT,
) -> LinkClaims:
    """The token's claims if its signature (and, unless ``max_age`` is None, its age) holds;
    ``salt``: which kind of link (engine.links: an obligation's, a supporting unit's)."""
    if not token or len(token) > 500:
        raise LinkRefused(RefusalReason.MALFORMED)
    seconds = int(max_age.total_seconds()) if max_age is not None else None
    try:
        return read_token(token, max_age_seconds=seconds, conf=conf, salt=salt)
    except LinkError as exc:
        if exc.reason == RefusalReason.EXPIRED:
            # The signature is genuine, only old: a fresh link may be requested.
            claims = read_token(token, max_age_seconds=None, conf=conf, retired_ok=True, salt=salt)
            raise LinkRefused(RefusalReason.EXPIRED, claims) from None
        raise LinkRefused(exc.reason) from None


def load_obligation(
    session: Session, claims: LinkClaims, lock: bool = False
) -> tuple[ObligationRow, Plan]:
    """The obligation a verified token names, with its cycle's and plan's facts, and the
    parsed plan; :class:`LinkRefused` (unknown) when there is none. ``lock``: its row
    stays locked until ``session``'s transaction ends."""
    statement = _OBLIGATION_WITH_CYCLE_LOCKED if lock else _OBLIGATION_WITH_CYCLE
    row = session.execute(statement, {"obligation_id": claims.obligation_id}).first()
    if row is None:
        raise LinkRefused(RefusalReason.UNKNOWN)
    return row, plan_for_key(session, row.plan_version_id, row.plan_content_hash)


def open_link(
    session: Session,
    token: str,
    conf: Settings,
    now: dt.datetime,
    max_age: dt.timedelta | None = DEFAULT_MAX_AGE,
    nonce: str | None = None,
    lock: bool = False,
) -> OpenedLink:
    """Verify ``token`` and load its obligation and plan; raise :class:`LinkRefused` otherwise.
    ``lock``: the obligation's row stays locked until ``session``'s transaction ends."""
    claims = verify_signature(token, conf, max_age)
    row, plan = load_obligation(session, claims, lock)
    cycle = LinkedCycle(
        row.cycle_id,
        row.cycle_instance_id,
        row.cycle_key,
        row.cycle_status,
        row.cycle_closes_on,
        row.cycle_period_start,
        row.cycle_period_end,
    )
    # A genuine signature whose facts no longer match (the obligation moved to a
    # successor unit, a bumped token_version) is a revoked link, not a forgery.
    if (
        row.unit_id != claims.unit_id
        or cycle.key != claims.cycle_key
        or row.token_version != claims.token_version
    ):
        raise LinkRefused(RefusalReason.REVOKED, claims)
    valid_until = link_valid_until(cycle.closes_on, row.due_date)
    if cycle.status == CycleStatus.CLOSED:
        raise LinkRefused(RefusalReason.CLOSED, claims)
    if now > valid_until:
        raise LinkRefused(RefusalReason.EXPIRED, claims)
    return OpenedLink(
        token=token,
        token_hash=token_hash(token),
        claims=claims,
        obligation=row,
        cycle=cycle,
        plan=plan,
        registry_id=row.plan_registry_id,
        valid_until=valid_until,
        opened_at=now,
        nonce=nonce,
    )
