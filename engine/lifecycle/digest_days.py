"""Which days the sweep makes a consolidating unit's weekly digest, and for which duties
(engine.lifecycle.sweep): the week's first working day, from the week its units are
first reminded."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from engine.calendar import WorkCalendar
from engine.context import PlanContext
from engine.lifecycle.sweep_days import ladder_for
from engine.store.models import Obligation

DIGEST_WEEKDAY = 0  # Monday: the consolidating unit's week starts with who owes what


def is_digest_day(calendar: WorkCalendar, today: dt.date) -> bool:
    """The week's digest is made on its first working day: Monday, or after a Monday
    off (4/9/2023, Tết) the next working day, so what it says of that morning is what
    the reader sees when it arrives (made on a day off, it waited for the next working
    morning and counted as not sent every unit that reported in between)."""
    if not calendar.is_working_day(today):
        return False
    start = today - dt.timedelta(days=today.weekday() - DIGEST_WEEKDAY)
    days = (start + dt.timedelta(days=n) for n in range((today - start).days))
    return not any(calendar.is_working_day(day) for day in days)


def near_their_units_deadline(
    session: Session, ctx: PlanContext, duties: list[Any], today: dt.date
) -> list[Any]:
    """The duties whose units' reports fall due within their first reminder's days and a
    week: the digest starts in the week the units are first reminded (before, the seed's
    district police had a digest "0/32 đơn vị đã gửi, hạn 11/9" every Monday from
    January). A duty whose units' reports are overdue keeps its digest until it is done."""
    if not duties:
        return duties
    of = {c.id: c.consolidates for c in ctx.plan.consolidations}
    first_due = dict(
        ((cycle, deliverable), due)
        for cycle, deliverable, due in session.execute(
            select(Obligation.cycle_id, Obligation.deliverable_id, func.min(Obligation.due_date))
            .where(
                Obligation.cycle_id.in_({d.cycle_id for d in duties}),
                Obligation.deliverable_id.in_(set(of.values())),
            )
            .group_by(Obligation.cycle_id, Obligation.deliverable_id)
        )
    )
    near = []
    for duty in duties:
        units_deliverable = of.get(duty.deliverable_id, "")
        due = first_due.get((duty.cycle_id, units_deliverable))
        ahead = max(ladder_for(ctx.plan, units_deliverable), default=0) + 6
        if due is None or (due - today).days <= ahead:
            near.append(duty)
    return near
