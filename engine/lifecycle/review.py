"""The consolidating unit's decision on a report: accept, or return with a reason."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from engine.context import context_for_obligation
from engine.errors import KehoachError, NotFound
from engine.lifecycle.intake import intake
from engine.outbox.kinds import MailKind
from engine.outbox.requests import queue_mail
from engine.states import (
    ObligationStatus,
    ReviewState,
)
from engine.store.models import (
    Obligation,
    Submission,
)
from engine.transitions import move_obligation, move_review


class ReviewError(KehoachError):
    """A review decision that cannot be made (no reason, not the newest version…)."""


def review(
    session: Session,
    submission_id: int,
    *,
    decision: str,
    reason: str | None = None,
    by: str,
    now: dt.datetime,
) -> Submission:
    """Accept or return (with a reason, mailed to the unit) the newest version of a report.

    Returning puts the obligation back to pending so the unit can send a new version.
    Repeating the same decision is a no-op; changing a decision already made is refused.
    """
    if decision not in ("accept", "return"):
        raise ReviewError(f"decision must be 'accept' or 'return', not {decision!r}")
    text = (reason or "").strip()
    if decision == "return" and not text:
        raise ReviewError("returning a report needs a reason (lý do trả lại) for the unit")
    submission = session.get(Submission, submission_id)
    if submission is None:
        raise NotFound(f"submission {submission_id} does not exist")
    obligation = session.scalar(
        select(Obligation).where(Obligation.id == submission.obligation_id).with_for_update()
    )
    assert obligation is not None
    target = ReviewState.ACCEPTED if decision == "accept" else ReviewState.RETURNED
    if submission.review_state == target:
        return submission
    if submission.review_state.decided:
        raise ReviewError(
            f"version {submission.version} was already {submission.review_state}; "
            "a decision is not changed"
        )
    newest = session.scalar(
        select(func.max(Submission.version)).where(Submission.obligation_id == obligation.id)
    )
    if submission.version != newest:
        raise ReviewError(
            f"version {submission.version} is not the newest (v{newest}); review that one"
        )
    if not submission.intake_done:
        intake(session, submission.id, now=now)
    ctx = context_for_obligation(session, obligation)
    move_review(
        session,
        submission,
        target,
        at=now,
        action=f"submission.{target}",
        plan_id=ctx.plan_id,
        actor=by,
        submission_id=submission.id,
        version=submission.version,
        reason=text or None,
    )
    submission.review_reason = text or None
    submission.reviewed_at = now
    submission.reviewed_by = by
    # recorded in the 'submission.accepted' / 'submission.returned' row above
    if target is ReviewState.ACCEPTED:
        move_obligation(
            session, obligation, ObligationStatus.ACCEPTED, at=now, action=None, plan_id=None
        )
    else:
        move_obligation(
            session, obligation, ObligationStatus.PENDING, at=now, action=None, plan_id=None
        )
        obligation.submitted_at = None
        obligation.on_time = None
        session.flush()
        queue_mail(
            session, obligation, MailKind.RETURNED, str(submission.version), {"reason": text}, now
        )
    session.flush()
    return submission
