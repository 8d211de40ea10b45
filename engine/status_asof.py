"""Obligations as they stood at a past moment, rebuilt from what the store recorded.

An obligation row holds its state *now*.  ``kehoach status --at DATE`` must show the
state at the end of DATE, so nothing recorded after it may count: a report sent after
it was not sent yet, a return decided after it had not happened, a cycle closed after
it was still open, a duty merged or moved to a successor after it still belonged to
the abolished unit, an obligation created after it did not exist.  The submission
versions (``submitted_at``, ``reviewed_at``) and the audit rows of merges, transfers,
closings and reopenings hold all of that.

A version counts once it was taken in (``intake_done``), as the present-day table
counts it; one still waiting for intake is not counted, as of any day.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.states import CycleStatus, ObligationStatus, ReviewState
from engine.store.models import AuditEvent, Obligation, Submission

# The audit actions the rebuilt state reads (written by engine.lifecycle.sweep and
# engine.closing); no state value is spelled here.
MERGED = "obligation.merged"
TRANSFERRED = "obligation.transferred"
CYCLE_CLOSED = "cycle.closed"
CYCLE_REOPENED = "cycle.reopened"
_CHUNK = 900  # SQLite's bound-parameter limit on old builds


@dataclass(frozen=True)
class ObligationAsOf:
    """What one obligation's row said at the moment (the fields the status table reads)."""

    status: ObligationStatus
    unit_id: str
    submitted_at: dt.datetime | None
    on_time: bool | None
    transferred_from: str | None
    review_state: ReviewState | None  # of the newest version sent by then
    version: int | None


@dataclass
class History:
    """The versions and audit rows of a set of obligations and cycles, read once."""

    moment: dt.datetime  # exclusive: what was recorded at or after it does not count
    versions: dict[int, list[Submission]] = field(default_factory=dict)
    merged: dict[int, dt.datetime] = field(default_factory=dict)
    transfers: dict[int, list[tuple[dt.datetime, str]]] = field(default_factory=dict)
    cycle_moves: dict[int, list[tuple[dt.datetime, str]]] = field(default_factory=dict)

    @classmethod
    def read(
        cls,
        session: Session,
        plan_id: str,
        obligation_ids: Iterable[int],
        moment: dt.datetime,
    ) -> History:
        history = cls(moment=moment)
        ids = sorted(set(obligation_ids))
        versions: dict[int, list[Submission]] = defaultdict(list)
        for start in range(0, len(ids), _CHUNK):
            chunk = ids[start : start + _CHUNK]
            for sub in session.scalars(
                select(Submission)
                .where(Submission.obligation_id.in_(chunk))
                .order_by(Submission.version)
            ):
                versions[sub.obligation_id].append(sub)
        history.versions = dict(versions)
        history._read_audit(session, plan_id, set(ids))
        return history

    def _read_audit(self, session: Session, plan_id: str, ids: set[int]) -> None:
        rows = session.scalars(
            select(AuditEvent)
            .where(
                AuditEvent.plan_id == plan_id,
                AuditEvent.action.in_([MERGED, TRANSFERRED, CYCLE_CLOSED, CYCLE_REOPENED]),
            )
            .order_by(AuditEvent.at, AuditEvent.id)
        )
        transfers: dict[int, list[tuple[dt.datetime, str]]] = defaultdict(list)
        cycles: dict[int, list[tuple[dt.datetime, str]]] = defaultdict(list)
        for row in rows:
            data: dict[str, Any] = row.data or {}
            if row.action == MERGED and row.obligation_id in ids:
                self.merged.setdefault(row.obligation_id, row.at)
            elif row.action == TRANSFERRED and row.obligation_id in ids:
                transfers[row.obligation_id].append((row.at, str(data.get("from_unit"))))
            elif row.action in (CYCLE_CLOSED, CYCLE_REOPENED) and data.get("cycle_id"):
                cycles[int(data["cycle_id"])].append((row.at, row.action))
        self.transfers = dict(transfers)
        self.cycle_moves = dict(cycles)

    # ------------------------------------------------------------ rebuilt rows

    def existed(self, obligation: Obligation) -> bool:
        return obligation.created_at < self.moment

    def obligation(self, obligation: Obligation) -> ObligationAsOf:
        """The obligation's row as it stood just before ``moment``."""
        unit_id, transferred_from = self._owner(obligation)
        merged_at = self.merged.get(obligation.id)
        if merged_at is not None and merged_at < self.moment:
            return ObligationAsOf(
                ObligationStatus.WAIVED, unit_id, None, None, transferred_from, None, None
            )
        sent = [
            s
            for s in self.versions.get(obligation.id, [])
            if s.submitted_at < self.moment and s.intake_done
        ]
        if not sent:
            return ObligationAsOf(
                ObligationStatus.PENDING, unit_id, None, None, transferred_from, None, None
            )
        newest = max(sent, key=lambda s: s.version)
        review = ReviewState.VALIDATED
        if newest.review_state.decided and newest.reviewed_at and newest.reviewed_at < self.moment:
            review = newest.review_state
        if review is ReviewState.RETURNED:
            status, submitted_at, on_time = ObligationStatus.PENDING, None, None
        else:
            status = (
                ObligationStatus.ACCEPTED
                if review is ReviewState.ACCEPTED
                else ObligationStatus.SUBMITTED
            )
            submitted_at, on_time = newest.submitted_at, newest.on_time
        return ObligationAsOf(
            status, unit_id, submitted_at, on_time, transferred_from, review, newest.version
        )

    def _owner(self, obligation: Obligation) -> tuple[str, str | None]:
        """(unit, first owner if it had moved by then): a duty moved to a successor after
        the moment still belonged to the unit it was moved from."""
        moves = self.transfers.get(obligation.id, [])
        later = [unit for at, unit in moves if at >= self.moment]
        earlier = [unit for at, unit in moves if at < self.moment]
        unit_id = later[0] if later else obligation.unit_id
        return unit_id, (obligation.transferred_from if earlier else None)

    def cycle_status(self, cycle_id: int, consolidated_at: dt.datetime | None) -> CycleStatus:
        """The cycle's status just before ``moment`` (closed, or open / consolidated)."""
        before = [action for at, action in self.cycle_moves.get(cycle_id, []) if at < self.moment]
        if before and before[-1] == CYCLE_CLOSED:
            return CycleStatus.CLOSED
        if consolidated_at is not None and consolidated_at < self.moment:
            return CycleStatus.CONSOLIDATED
        return CycleStatus.OPEN
