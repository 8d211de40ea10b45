"""The report handed upward is on Prefect's event feed again: since consolidation makes a
draft (engine.approval), the event comes once the report is approved, signed and its
email to the body above sent — named in Vietnamese, on an ASCII resource id, about the
parent plan's cycle and unit — whichever way it was sent: the approval flow
(workflows/approve_report.py), the portal's review page (portal/review_report.py) or
``kehoach report send`` (cli/report.py), all through workflows.upward.announce_sent.

Before (issue 12): only the approval flow emitted it; a report sent from the portal or
the CLI reached the body above with nothing on the feed."""

from __future__ import annotations

import datetime as dt
import threading
import time

import pytest

from engine.config import settings
from engine.lifecycle import activate
from engine.store import session_scope
from engine.store.models import ConsolidatedReport
from tests.approval_support import NARRATIVE, approve_and_sign
from tests.lifecycle_factory import DISTRICT, PROVINCE, lc_settings, outbox, vn
from tests.test_approval import _draft
from tests.test_portal import csrf_of
from tests.test_portal_support import minimal_pdf

pytestmark = [pytest.mark.prefect]


def _events_since(names: list[str], since: dt.datetime, wanted: int, wait: float = 20):  # type: ignore[no-untyped-def]
    from prefect.client.orchestration import get_client
    from prefect.events.filters import (
        EventAnyResourceFilter,
        EventFilter,
        EventNameFilter,
        EventOccurredFilter,
    )

    # Only this module's plans (lc-…): the session's Prefect server also holds the events
    # of other modules' runs, the seed's handed-upward reports among them.
    wanted_filter = EventFilter(
        event=EventNameFilter(name=names),
        occurred=EventOccurredFilter(since=since),
        any_resource=EventAnyResourceFilter(id_prefix=["kehoach.plan.lc-"]),
    )
    deadline = time.monotonic() + wait  # events go through a websocket, then a queue
    while True:
        with get_client(sync_client=True) as client:
            page = client.read_events(wanted_filter, limit=50)
        if page.total >= wanted or time.monotonic() > deadline:
            return page.events
        time.sleep(0.5)


SECRET = "kehoach-test-secret-7f3a9c2e4b1d8f60"
SENT_AT = vn(2027, 9, 13, 10)  # a Monday morning: the email leaves at once


@pytest.fixture
def mailing(tmp_path, monkeypatch, smtp_server):  # type: ignore[no-untyped-def]
    """kehoach's settings in the environment: home in tmp_path, mail to ``smtp_server``."""
    monkeypatch.setenv("KEHOACH_HOME", str(tmp_path))
    monkeypatch.setenv("KEHOACH_PORTAL_SECRET", SECRET)
    monkeypatch.setenv("KEHOACH_SMTP_HOST", smtp_server.host)
    monkeypatch.setenv("KEHOACH_SMTP_PORT", str(smtp_server.port))
    monkeypatch.setenv("KEHOACH_SMTP_SECURITY", "none")
    settings.cache_clear()
    yield smtp_server
    settings.cache_clear()


def _signed_draft(url: str, tmp_path) -> int:  # type: ignore[no-untyped-def]
    """A draft of the district's report, approved and signed (not sent), with the
    province's plan it goes up to active."""
    report_id = _draft(url, tmp_path)
    with session_scope(url) as session:
        activate(session, PROVINCE, now=vn(2027, 1, 4))
        approve_and_sign(
            session, report_id, lc_settings(tmp_path), vn(2027, 9, 13, 9), final_pdf=False
        )
    return report_id


def _assert_handed_upward_once(url: str, report_id: int, since: dt.datetime, smtp) -> None:  # type: ignore[no-untyped-def]
    """The report's email to the body above sent, and on the feed one
    REPORT_HANDED_UPWARD about it (waited for a second one) and its SUBMISSION_RECEIVED
    in the parent plan."""
    from workflows.events import REPORT_HANDED_UPWARD, SUBMISSION_RECEIVED

    with session_scope(url) as session:
        [mail] = outbox(session, "consolidated")  # the email to the body above: sent
        assert mail.status.value == "sent" and set(mail.to_addrs) <= {
            r for m in smtp.messages for r in m.rcpt_tos
        }
        report = session.get(ConsolidatedReport, report_id)
        assert report is not None and report.number_text
        number, upward = report.number_text, report.upward_submission_id
    assert upward is not None
    names = [REPORT_HANDED_UPWARD, SUBMISSION_RECEIVED]
    _events_since(names, since, 2, wait=30)
    events = _events_since(names, since, 3, wait=4)  # and a second announcement, if any
    [handed] = [e for e in events if e.event == REPORT_HANDED_UPWARD]
    assert handed.resource.id == f"kehoach.cycle.{DISTRICT}.2027" and handed.resource.id.isascii()
    assert handed.payload["report_id"] == report_id
    assert handed.payload["number"] == number and handed.payload["submission_id"] == upward
    assert handed.payload["parent_plan"] == "lc-tinh-plan"
    related = {r.role: r.id for r in handed.related}
    assert related["plan"] == "kehoach.plan.lc-tinh-plan"
    assert related["cycle"] == "kehoach.cycle.lc-tinh-plan.2027"
    assert all(r.isascii() for r in related.values())
    # Named by the plans' short titles (the district's, the province's), not their ids.
    assert handed.resource.name == "Kỳ năm 2027 · Kế hoạch 15/KH-UBND"
    names_of = {r.role: r.name for r in handed.related}
    assert names_of["plan"] == "Kế hoạch 20/KH-UBND"
    assert names_of["cycle"] == "Kỳ năm 2027 · Kế hoạch 20/KH-UBND"
    [received] = [e for e in events if e.event == SUBMISSION_RECEIVED]
    assert received.resource.id == f"kehoach.submission.{upward}"


def test_the_report_handed_upward_is_an_event_after_approval_signature_and_email(  # type: ignore[no-untyped-def]
    prefect_server,  # noqa: ARG001
    sqlite_url,
    tmp_path,
    mailing,
):
    from workflows.approve_report import approve_report_flow
    from workflows.common import in_process_runs
    from workflows.events import REPORT_HANDED_UPWARD

    report_id = _draft(sqlite_url, tmp_path)
    with session_scope(sqlite_url) as session:  # the plan the report goes up to
        activate(session, PROVINCE, now=vn(2027, 1, 4))
    signed = tmp_path / "bao-cao-da-ky.pdf"
    signed.write_bytes(minimal_pdf())
    since = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)
    now = SENT_AT.isoformat()
    with in_process_runs():
        # approved and signed, not sent: nothing handed upward, no event
        approve_report_flow(
            report_id, NARRATIVE, "Trưởng phòng", str(signed), False, now, sqlite_url
        )
        with session_scope(sqlite_url) as session:
            report = session.get(ConsolidatedReport, report_id)
            assert report is not None and report.upward_submission_id is None
        assert _events_since([REPORT_HANDED_UPWARD], since, 1, wait=2) == []
        approve_report_flow(report_id, None, "Trưởng phòng", "", True, now, sqlite_url)
    _assert_handed_upward_once(sqlite_url, report_id, since, mailing)


def test_kehoach_report_send_puts_the_report_on_the_event_feed(  # type: ignore[no-untyped-def]
    prefect_server,  # noqa: ARG001
    sqlite_url,
    tmp_path,
    monkeypatch,
    mailing,
    capsys,
):
    from cli.main import main

    report_id = _signed_draft(sqlite_url, tmp_path)
    monkeypatch.setenv("KEHOACH_NOW", SENT_AT.isoformat())
    since = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)
    assert main(["--database-url", sqlite_url, "report", DISTRICT, "send", "--cycle", "2027"]) == 0
    printed = capsys.readouterr().out
    assert "Đã gửi cấp trên" in printed and "cảnh báo" not in printed
    _assert_handed_upward_once(sqlite_url, report_id, since, mailing)


def test_the_portal_review_page_send_puts_the_report_on_the_event_feed(  # type: ignore[no-untyped-def]
    prefect_server,  # noqa: ARG001
    sqlite_url,
    tmp_path,
    mailing,
):
    from sqlalchemy import select
    from starlette.testclient import TestClient

    from engine.clock import VirtualClock
    from engine.links import make_token
    from engine.store.models import Obligation
    from notifications.dispatch import dispatch_pending_sync
    from portal.app import create_app

    report_id = _signed_draft(sqlite_url, tmp_path)
    with session_scope(sqlite_url) as session:
        report = session.get(ConsolidatedReport, report_id)
        assert report is not None
        duty = session.scalar(
            select(Obligation).where(
                Obligation.cycle_id == report.cycle_id, Obligation.kind == "consolidation"
            )
        )
        assert duty is not None
        token = make_token(duty.id, duty.unit_id, duty.cycle.key, duty.token_version)
    conf = settings()
    since = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)
    app = create_app(conf, sqlite_url, clock=VirtualClock(SENT_AT), intake_flow=False)
    with TestClient(app) as client:
        page = client.get(f"/o/{token}/bao-cao")
        assert page.status_code == 200, page.text
        sent = client.post(
            f"/o/{token}/bao-cao",
            data={"action": "send", "csrf": csrf_of(page.text)},
            follow_redirects=False,
        )
        assert sent.status_code == 303, sent.text
        assert sent.headers["location"].endswith("?xong=send")
    # announced off the request, on a thread of its own: waited for, since looking for
    # the events meanwhile held them back on the test server for about 60 s (measured)
    for thread in threading.enumerate():
        if thread.name == "upward-event":
            thread.join(60)
    dispatch_pending_sync(sqlite_url, conf, now=SENT_AT)  # the email to the body above
    _assert_handed_upward_once(sqlite_url, report_id, since, mailing)
