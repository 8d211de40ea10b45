"""When mail goes out (issue 12, item 5): the receipt at once, from the portal itself;
everything that may wait only in working hours of working days, Asia/Ho_Chi_Minh.

The dispatcher's clock is injected (``now``), so a Sunday, a public holiday and a night
are real moments of the 2023/2024 calendar, with the holidays engine/calendar.py knows.
"""

from __future__ import annotations

import datetime as dt
import time
from pathlib import Path

import pytest
from sqlalchemy import select

from engine.config import parse_hours
from engine.outbox import enqueue_for_obligation
from engine.outbox.timing import SendingWindow
from engine.store.db import migrate, session_scope
from engine.store.models import Obligation, OutboxMessage
from notifications.dispatch import dispatch_pending_sync
from tests.notifications_factory import make_world, smtp_settings
from tests.test_portal import REPORT, open_form, post_report
from tests.test_portal_support import make_world as make_portal_world
from tests.test_portal_support import vn

pytestmark = pytest.mark.filterwarnings("ignore:Using `httpx` with `starlette.testclient`")

ROOT = Path(__file__).resolve().parent.parent
SUNDAY = dt.date(2023, 9, 10)  # the seed's deadline day, a Sunday
NATIONAL_DAY = dt.date(2024, 9, 2)  # Quốc khánh, a Monday; 3/9/2024 was a day off too


@pytest.fixture
def url(sqlite_url):
    migrate(sqlite_url)
    return sqlite_url


def _queue(url: str, conf, kinds: list[tuple[str, str]], now: dt.datetime) -> dict[str, int]:
    with session_scope(url) as session:
        obligation = make_world(session).obligation
        return {
            kind: enqueue_for_obligation(session, obligation, kind, step, now=now, settings=conf).id
            for kind, step in kinds
        }


def _status(url: str, row_id: int) -> str:
    with session_scope(url) as session:
        row = session.get(OutboxMessage, row_id)
        assert row is not None
        return str(row.status)


def _kinds(smtp_server) -> list[str]:
    return [m.message["X-Kehoach-Kind"] for m in smtp_server.messages]


@pytest.mark.parametrize(
    ("day", "first_morning"),
    [(SUNDAY, dt.date(2023, 9, 11)), (NATIONAL_DAY, dt.date(2024, 9, 4))],
    ids=["sunday", "national-day"],
)
def test_nothing_that_may_wait_goes_on_a_day_off(url, smtp_server, day, first_morning):
    conf = smtp_settings(smtp_server)
    queued_at = vn(day.year, day.month, day.day, 8)
    ids = _queue(url, conf, [("reminder", "1"), ("receipt", "1")], queued_at)
    # All day long: the receipt goes at once, the reminder waits.
    for hour in (8, 10, 14, 17):
        dispatch_pending_sync(url, conf, now=vn(day.year, day.month, day.day, hour))
    assert _kinds(smtp_server) == ["receipt"]
    assert _status(url, ids["reminder"]) == "pending"
    # Every day up to the first working morning, even at working hours, nothing more.
    moment = queued_at
    while moment.date() < first_morning:
        moment += dt.timedelta(hours=3)
        stats = dispatch_pending_sync(url, conf, now=min(moment, vn(*_ymd(first_morning), 6, 59)))
        assert stats.sent == 0
    assert stats.held == 1 and stats.window_opens == f"{first_morning.isoformat()}T07:00+07:00"
    # 07:00 of the first working day.
    stats = dispatch_pending_sync(url, conf, now=vn(*_ymd(first_morning), 7, 0))
    assert stats.sent == 1 and _kinds(smtp_server) == ["receipt", "reminder"]
    reminder = smtp_server.messages[1].message
    assert reminder["Date"].datetime == vn(*_ymd(first_morning), 7, 0)
    # It counts the days left from the morning it goes, not from the day it was queued.
    with session_scope(url) as session:
        row = session.get(OutboxMessage, ids["reminder"])
        assert row is not None
        left = (dt.date.fromisoformat(row.context["due"]["iso"]) - first_morning).days
    said = f"còn {left} ngày" if left > 0 else "là hôm nay" if left == 0 else f"đã quá {-left} ngày"
    assert said in reminder["Subject"], (left, reminder["Subject"])


def _ymd(day: dt.date) -> tuple[int, int, int]:
    return day.year, day.month, day.day


def test_nothing_that_may_wait_goes_at_night(url, smtp_server):
    conf = smtp_settings(smtp_server)
    evening = vn(2023, 9, 12, 18, 0)  # a Tuesday
    ids = _queue(url, conf, [("overdue", ""), ("receipt", "2")], evening)
    for moment in (evening, vn(2023, 9, 12, 23, 30), vn(2023, 9, 13, 6, 59)):
        dispatch_pending_sync(url, conf, now=moment)
    assert _kinds(smtp_server) == ["receipt"] and _status(url, ids["overdue"]) == "pending"
    assert dispatch_pending_sync(url, conf, now=vn(2023, 9, 13, 7, 0)).sent == 1
    assert _kinds(smtp_server) == ["receipt", "overdue"]


def test_a_make_up_saturday_is_a_working_day_and_the_window_is_configurable():
    from engine.calendar import WorkCalendar
    from engine.loader import load

    [calendar] = load([ROOT / "plan_definitions" / "calendar_vn.yaml"]).calendars.values()
    window = SendingWindow.from_text("07:30-17:00", WorkCalendar(calendar.definition))
    make_up = vn(2024, 5, 4, 9)  # a Saturday worked in exchange for 29/4/2024
    assert window.is_open(make_up)
    assert not window.is_open(vn(2024, 5, 11, 9))  # an ordinary Saturday
    assert window.next_open(vn(2024, 5, 10, 17, 0)) == vn(2024, 5, 13, 7, 30)
    assert window.next_open(vn(2024, 5, 13, 6, 0)) == vn(2024, 5, 13, 7, 30)
    assert SendingWindow.from_text("any").is_open(vn(2023, 9, 10, 3))
    for bad in ("7-18", "18:00-07:00", "07:00-25:00"):
        with pytest.raises(ValueError):
            parse_hours(bad)


def test_a_bad_window_setting_is_a_located_error():
    from engine.config import ConfigError, load_settings

    with pytest.raises(ConfigError, match="KEHOACH_MAIL_HOURS='sáng'"):
        load_settings({"KEHOACH_MAIL_HOURS": "sáng"})


def test_the_portal_sends_the_receipt_itself(tmp_path, monkeypatch, smtp_server):
    """No Prefect, no dispatcher: the answer's receipt reaches the SMTP server within a
    minute, on a Sunday night too; the assignment emails still wait for Monday."""
    from starlette.testclient import TestClient

    world = make_portal_world(
        tmp_path,
        monkeypatch,
        KEHOACH_SMTP_HOST=smtp_server.host,
        KEHOACH_SMTP_PORT=str(smtp_server.port),
    )
    world.clock.set(vn(2027, 9, 5, 21, 30))  # a Sunday night
    token = world.token()
    with TestClient(world.app()) as client:
        response = post_report(client, token, open_form(client, token), data=dict(REPORT))
        assert response.status_code == 200, response.text
        posted = time.monotonic()
        [mail] = smtp_server.wait_for(1, timeout=60)
        seconds = time.monotonic() - posted
    assert mail.message["X-Kehoach-Kind"] == "receipt"
    assert mail.rcpt_tos == ["ubnd.thihoa@halang.example"]
    with session_scope(world.db_url) as session:
        [receipt] = session.scalars(
            select(OutboxMessage).where(OutboxMessage.kind == "receipt")
        ).all()
        assert receipt.status == "sent" and receipt.message_id == mail.message["Message-ID"]
        waiting = session.scalars(
            select(OutboxMessage.status).where(OutboxMessage.kind == "assignment")
        ).all()
        assert waiting and set(waiting) == {"pending"}
        assert session.get(Obligation, world.obligation_id()).status == "submitted"
    print(f"\nreceipt in the SMTP server {seconds:.1f} s after the answer (no dispatcher run)")
    assert seconds < 60
    assert len(smtp_server.messages) == 1


def test_a_receipt_the_portal_cannot_send_now_is_left_as_it_was(url, smtp_server):
    from notifications.dispatch import Dispatcher, run_sync

    conf = smtp_settings(smtp_server)
    moment = vn(2023, 9, 11, 22)
    row_id = _queue(url, conf, [("receipt", "1")], moment)["receipt"]
    with session_scope(url) as session:
        key = session.get(OutboxMessage, row_id).idempotency_key
    smtp_server.stop()
    portal_pass = Dispatcher(url, conf, now=moment, keys=[key], best_effort=True)
    assert run_sync(portal_pass.run()).sent == 0
    with session_scope(url) as session:
        row = session.get(OutboxMessage, row_id)
        assert (row.status, row.attempts, row.next_attempt_at) == ("pending", 0, moment)
        assert row.give_up_at is None and row.last_error is None
    smtp_server.start()
    assert dispatch_pending_sync(url, conf, now=moment).sent == 1  # at night: a receipt


def test_a_fresh_link_goes_at_night_an_assignment_waits(db_url, smtp_server):
    """The context flag portal.freshlink sets is read in the claim (JSON, both databases)."""
    migrate(db_url)
    conf = smtp_settings(smtp_server)
    night = vn(2023, 9, 11, 22, 30)
    with session_scope(db_url) as session:
        obligation = make_world(session).obligation
        link = enqueue_for_obligation(
            session,
            obligation,
            "assignment",
            "link-2023091122",
            {"fresh_link": True},
            now=night,
            settings=conf,
        ).id
        waits = enqueue_for_obligation(
            session, obligation, "assignment", now=night, settings=conf
        ).id
    assert dispatch_pending_sync(db_url, conf, now=night).sent == 1
    assert (_status(db_url, link), _status(db_url, waits)) == ("sent", "pending")
