"""When an email may go out: working hours of working days in Viet Nam, except what cannot wait.

Officials expect no mail on Sundays, public holidays or at night. The dispatcher claims
a message that may wait only while the sending window is open (``KEHOACH_MAIL_HOURS``,
default 07:00-18:00, Asia/Ho_Chi_Minh, on the working days of :mod:`engine.calendar`,
make-up Saturdays included); outside it the message stays queued with its due time and
goes at the window's next opening. Messages that answer something a person just did go
at once, whatever the hour (docs/DECISIONS.md): the receipt (the clerk's proof that the
report arrived), a fresh link the unit asked for, and the administrator's notice of a
failed delivery.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from engine.calendar import TZ, WorkCalendar
from engine.config import parse_hours
from engine.outbox.kinds import MailKind

AT_ONCE_KINDS = frozenset({MailKind.RECEIPT, MailKind.DELIVERY_FAILURE})
# Context flags of a message that answers a request made just now (portal.freshlink).
AT_ONCE_FLAGS = ("fresh_link",)


@dataclass(frozen=True)
class SendingWindow:
    """The hours of the working days in which mail that may wait is sent."""

    hours: tuple[dt.time, dt.time] | None
    calendar: WorkCalendar

    @classmethod
    def from_text(cls, hours: str, calendar: WorkCalendar | None = None) -> SendingWindow:
        return cls(parse_hours(hours), calendar or WorkCalendar())

    def is_open(self, moment: dt.datetime) -> bool:
        if self.hours is None:
            return True
        local = moment.astimezone(TZ)
        opens, closes = self.hours
        return self.calendar.is_working_day(local.date()) and opens <= local.time() < closes

    def next_open(self, moment: dt.datetime) -> dt.datetime:
        """``moment`` when the window is open then, else its next opening (UTC)."""
        if self.is_open(moment) or self.hours is None:
            return moment
        local = moment.astimezone(TZ)
        day = local.date()
        if local.time() >= self.hours[0]:  # after today's opening: tomorrow at the earliest
            day += dt.timedelta(days=1)
        for _ in range(366):  # the calendar never has a year without a working day
            if self.calendar.is_working_day(day):
                break
            day += dt.timedelta(days=1)
        return dt.datetime.combine(day, self.hours[0], TZ).astimezone(dt.UTC)
