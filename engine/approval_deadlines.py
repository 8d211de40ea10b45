"""When each step of a report's way upward is due (engine.approval), from the upward
date: read by the review page and the draft's email too."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from engine.calendar import TZ, WorkCalendar

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
    def of(
        cls, due: dt.date, drafted: dt.date | None = None, calendar: WorkCalendar | None = None
    ) -> StepDeadlines:
        """``drafted``: the day the draft was written. No step is due before it: a draft
        written on the upward date itself (the units' answers came in late, or the
        consolidation ran on its due date) is reviewed, signed and sent that day, never
        asked "by 22/9" on 25/9. ``calendar``: a step that falls on a day off is due on
        the working day before it (sign by Friday 22/9, not Sunday 24/9/2023), never
        before the draft."""
        floor = min(drafted, due) if drafted is not None else None

        def step(days_before: int, earlier_on_day_off: bool = True) -> dt.date:
            day = due - dt.timedelta(days=days_before)
            if calendar is not None and earlier_on_day_off:
                while not calendar.is_working_day(day) and (floor is None or day > floor):
                    day -= dt.timedelta(days=1)
            return max(day, floor) if floor is not None else day

        return cls(
            review_by=step(REVIEW_DAYS_BEFORE),
            sign_by=step(SIGN_DAYS_BEFORE),
            # the head is written to from that day, a day off included: the mail then
            # waits for the next working morning (KEHOACH_MAIL_HOURS)
            escalate_from=step(ESCALATE_DAYS_BEFORE, earlier_on_day_off=False),
            send_by=due,
        )


def drafted_on(report: Any) -> dt.date | None:
    """The local day a consolidated report (a ``ConsolidatedReport`` row, or None) was
    written. A later revision (a late answer came in) is a new draft: its steps start
    from its own day."""
    created = getattr(report, "created_at", None)
    if created is None:
        return None
    if created.tzinfo is None:  # SQLite hands back naive UTC
        created = created.replace(tzinfo=dt.UTC)
    return created.astimezone(TZ).date()


def stored_calendar(session: Any) -> WorkCalendar:
    """The working days of the stored calendar (one read; a loop over reports reads it once)."""
    from engine.definitions_cache import current_calendar

    return WorkCalendar(current_calendar(session, "vn"))


def step_deadlines(
    session: Any, due: dt.date, report: Any, calendar: WorkCalendar | None = None
) -> StepDeadlines:
    """Each step's deadline for ``report`` (a ``ConsolidatedReport`` row, or None) with
    the working days of ``calendar`` (default: the stored one): what every reader of the
    steps uses."""
    return StepDeadlines.of(due, drafted_on(report), calendar or stored_calendar(session))
