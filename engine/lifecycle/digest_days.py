"""Which days the sweep makes a consolidating unit's weekly digest, and for which duties
(engine.lifecycle.sweep): the week's first working day, from the week its units are
first reminded for as long as one of them still owes its report."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from engine.calendar import WorkCalendar
from engine.context import PlanContext
from engine.lifecycle.sweep_days import ladder_for
from engine.states import OBLIGATION_OPEN
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
    week, and of which a unit's report is still missing: the digest starts in the week
    the units are first reminded (before, the seed's district police had a digest "0/32
    đơn vị đã gửi, hạn 11/9" every Monday from January) and goes on while a unit still
    owes its report, whether the consolidated report is drafted, in approval or sent
    upward (before, it stopped at the draft of 12/9/2023, the day the district police
    most needed the list); none once every unit has answered. One query for all."""
    if not duties:
        return duties
    of = {c.id: c.consolidates for c in ctx.plan.consolidations}
    missing = func.sum(case((Obligation.status.in_(OBLIGATION_OPEN), 1), else_=0))
    units = {
        (cycle, deliverable): (due, owed)
        for cycle, deliverable, due, owed in session.execute(
            select(
                Obligation.cycle_id,
                Obligation.deliverable_id,
                func.min(Obligation.due_date),
                missing,
            )
            .where(
                Obligation.cycle_id.in_({d.cycle_id for d in duties}),
                Obligation.deliverable_id.in_(set(of.values())),
                Obligation.kind != "consolidation",
            )
            .group_by(Obligation.cycle_id, Obligation.deliverable_id)
        )
    }
    near = []
    for duty in duties:
        units_deliverable = of.get(duty.deliverable_id, "")
        due, owed = units.get((duty.cycle_id, units_deliverable), (None, 0))
        ahead = max(ladder_for(ctx.plan, units_deliverable), default=0) + 6
        if owed and due is not None and (due - today).days <= ahead:
            near.append(duty)
    return near
