"""On which days the daily sweep has something to do for an open duty.

A duty is told of on the day its period opens (when that is after activation), reminded
on the ladder's days before its due date, marked overdue and mailed the day after it,
escalated :data:`ESCALATE_AFTER_DAYS` days after it. The first such day still to come
is stored on the obligation (``Obligation.next_sweep_on``), so the sweep reads only the
duties due that day through an index, not every open one.

What the sweep does on a day depends only on the due date, the day the duty was
created, the day its period opens, the ladder, the mails already queued for it and its
overdue mark; mails and the mark only accumulate, so a day computed from them is never
later than the first day anything is done. Days can only come early (e.g. a reminder
queued by hand), and a duty looked at early is simply looked at again.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Sequence

from engine.schema import Plan

DEFAULT_REMINDERS = (7, 3, 1)
ESCALATE_AFTER_DAYS = 3

# The sweep's record of what was queued for a duty: "<kind>:<step>" of its outbox keys.
ASSIGNMENT_SENT = "assignment:"
OVERDUE_SENT = "overdue:"
ESCALATION_STEP = f"overdue-{ESCALATE_AFTER_DAYS}"
ESCALATION_SENT = f"escalation:{ESCALATION_STEP}"


def ladder_for(plan: Plan, deliverable_id: str) -> Sequence[int]:
    """Days before the deadline a duty is reminded (a consolidation duty: the default)."""
    deliverable = plan.deliverable(deliverable_id)
    if deliverable is not None:
        return deliverable.reminders
    return DEFAULT_REMINDERS


def reminder_steps_sent(sent: Collection[str]) -> set[int]:
    return {
        int(k.split(":", 1)[1])
        for k in sent
        if k.startswith("reminder:") and k.split(":", 1)[1].isdigit()
    }


def reminder_step(
    ladder: Sequence[int], days_left: int, created_day: dt.date, due: dt.date, sent: set[int]
) -> int | None:
    """The most urgent reminder due and not sent yet; stale earlier steps are skipped."""
    due_steps = [
        step
        for step in ladder
        if step > 0 and days_left <= step and due - dt.timedelta(days=step) > created_day
    ]
    if days_left < 0 or not due_steps:
        return None
    step = min(due_steps)
    if step in sent or any(s in sent for s in ladder if s < step):
        return None
    return step


def next_sweep_day(
    ladder: Sequence[int],
    due: dt.date,
    created_day: dt.date,
    *,
    opens: dt.date | None = None,
    sent: Collection[str] = (),
    overdue: bool = False,
    after: dt.date | None = None,
) -> dt.date | None:
    """The first day after ``after`` (any day when None) on which the sweep mails the
    assignment of, reminds, marks overdue or escalates this open duty; None when
    nothing is left to do.

    ``opens`` is the day the duty's period opens (None: open from activation): nothing
    is done before it, on it the assignment is mailed unless queued already, and
    reminders count from it. ``sent`` holds what was queued already (keys as above),
    ``overdue`` the mark. A reminder goes out from the day its step is reached for the
    largest eligible step below every step sent (:func:`reminder_step`), until the due
    date; the overdue mark and mail from the day after it; the escalation from
    ESCALATE_AFTER_DAYS later.
    """
    earliest = after + dt.timedelta(days=1) if after is not None else dt.date.min
    days: list[dt.date] = []
    told = created_day
    if opens is not None:
        earliest, told = max(earliest, opens), max(created_day, opens)
        if ASSIGNMENT_SENT not in sent:
            days.append(earliest)
    done = {s for s in reminder_steps_sent(sent) if s in ladder}
    waiting = [
        s
        for s in ladder
        if s > 0 and due - dt.timedelta(days=s) > told and (not done or s < min(done))
    ]
    if waiting:
        day = max(due - dt.timedelta(days=max(waiting)), earliest)
        if day <= due:
            days.append(day)
    if not overdue or OVERDUE_SENT not in sent:
        days.append(max(due + dt.timedelta(days=1), earliest))
    elif ESCALATION_SENT not in sent:
        days.append(max(due + dt.timedelta(days=ESCALATE_AFTER_DAYS), earliest))
    return min(days) if days else None
