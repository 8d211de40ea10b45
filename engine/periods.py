"""Time anchored to the plan: when it takes effect, which periods it owes, when each opens.

- :func:`effective_date`: the plan's ``effective_date``, else its issue date
  (``document.date``), else ``as_of`` (an undated plan, like the seed).
- :func:`owed`: a recurring deliverable's periods start with the first one due after the
  effective date, or with its ``first_period``; nothing due before the plan is owed.
- :func:`opens_on`: a period opens (its assignment email goes out) the day after the
  previous period's due date, or at once when there is no earlier period owed; so an
  activation mails the periods open now, and the sweep mails each later one as it opens.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from engine.calendar import (
    CycleSpec,
    WorkCalendar,
    cycle_from_key,
    cycles_in_year,
    deadline,
    previous_cycle,
)
from engine.schema import DeadlineRule, Deliverable, Frequency, Plan
from engine.tasks import is_last_or_before


def effective_date(plan: Plan) -> dt.date:
    """The day the plan takes effect."""
    return plan.takes_effect


def counting_from(plan: Plan, activated_on: dt.date) -> dt.date:
    """The day 'N days after activation' counts from: never before the plan takes effect."""
    return max(activated_on, effective_date(plan))


def due_of(
    plan: Plan, rule: DeadlineRule, spec: CycleSpec, activated_on: dt.date, cal: WorkCalendar
) -> dt.date:
    return deadline(rule, spec, counting_from(plan, activated_on), cal).due


def owed(
    plan: Plan,
    deliverable: Deliverable,
    specs: Sequence[CycleSpec],
    activated_on: dt.date,
    cal: WorkCalendar,
) -> list[CycleSpec]:
    """The periods of ``specs`` the deliverable owes: from its ``first_period`` if stated,
    else those due after the effective date."""
    if deliverable.frequency is Frequency.once:
        return list(specs)
    specs = [s for s in specs if is_last_or_before(deliverable, s.key)]  # a task's years
    if deliverable.first_period:
        first = cycle_from_key(deliverable.first_period)
        assert first.start is not None  # a periodic key always has a start
        return [s for s in specs if s.start is not None and s.start >= first.start]
    start = effective_date(plan)
    return [s for s in specs if due_of(plan, deliverable.deadline, s, activated_on, cal) > start]


def first_owed(
    plan: Plan, deliverable: Deliverable, activated_on: dt.date, cal: WorkCalendar
) -> CycleSpec | None:
    """The first period the deliverable owes (a look at most three years ahead)."""
    year = effective_date(plan).year
    if deliverable.first_period:
        year = int(deliverable.first_period[:4])
    for y in range(max(year, plan.start_year or year), year + 3):
        if plan.end_year is not None and y > plan.end_year:
            return None
        found = owed(plan, deliverable, cycles_in_year(deliverable.frequency, y), activated_on, cal)
        if found:
            return found[0]
    return None


def opens_on(
    plan: Plan,
    deliverable: Deliverable,
    spec: CycleSpec,
    activated_on: dt.date,
    cal: WorkCalendar,
) -> dt.date | None:
    """The day period ``spec`` of ``deliverable`` opens; None: open from activation."""
    before = previous_cycle(spec.key)
    if before is None or not _in_years(plan, before):
        return None
    if not owed(plan, deliverable, [before], activated_on, cal):
        return None  # the first period owed: open from activation
    return due_of(plan, deliverable.deadline, before, activated_on, cal) + dt.timedelta(days=1)


def _in_years(plan: Plan, spec: CycleSpec) -> bool:
    if spec.start is None:
        return True
    year = spec.start.year
    if plan.start_year is not None and year < plan.start_year:
        return False
    return plan.end_year is None or year <= plan.end_year
