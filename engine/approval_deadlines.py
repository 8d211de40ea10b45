"""When each step of a report's way upward is due (engine.approval), from the upward
date: read by the review page and the draft's email too."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

# Step deadlines, in days before the upward date (the consolidation duty's due date).
REVIEW_DAYS_BEFORE = 3  # approved and numbered by then
SIGN_DAYS_BEFORE = 1  # signed by then
ESCALATE_DAYS_BEFORE = 2  # not sent by then: the unit's head is written to


@dataclass(frozen=True)
class StepDeadlines:
    """When each step is due, from the upward date (the consolidation duty's due date)."""

    review_by: dt.date
    sign_by: dt.date
    escalate_from: dt.date
    send_by: dt.date

    @classmethod
    def of(cls, due: dt.date) -> StepDeadlines:
        return cls(
            review_by=due - dt.timedelta(days=REVIEW_DAYS_BEFORE),
            sign_by=due - dt.timedelta(days=SIGN_DAYS_BEFORE),
            escalate_from=due - dt.timedelta(days=ESCALATE_DAYS_BEFORE),
            send_by=due,
        )
