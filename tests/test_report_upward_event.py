"""The report handed upward is on Prefect's event feed again: since consolidation makes a
draft (engine.approval), the event comes from the approval flow (workflows/approve_report.py)
once the report is approved, signed and its email to the body above sent — named in
Vietnamese, on an ASCII resource id, about the parent plan's cycle and unit."""

from __future__ import annotations

import datetime as dt
import time

import pytest

from engine.config import settings
from engine.lifecycle import activate
from engine.store import session_scope
from engine.store.models import ConsolidatedReport
from tests.approval_support import NARRATIVE
from tests.lifecycle_factory import DISTRICT, PROVINCE, outbox, vn
from tests.test_approval import _draft
from tests.test_portal_support import minimal_pdf

pytestmark = [pytest.mark.prefect]


def _events_since(names: list[str], since: dt.datetime, wanted: int, wait: float = 20):  # type: ignore[no-untyped-def]
    from prefect.client.orchestration import get_client
    from prefect.events.filters import EventFilter, EventNameFilter, EventOccurredFilter

    wanted_filter = EventFilter(
        event=EventNameFilter(name=names), occurred=EventOccurredFilter(since=since)
    )
    with get_client(sync_client=True) as client:
        deadline = time.monotonic() + wait  # events go through a websocket, then a queue
        while True:
            page = client.read_events(wanted_filter, limit=50)
            if page.total >= wanted or time.monotonic() > deadline:
                return page.events
            time.sleep(0.5)


def test_the_report_handed_upward_is_an_event_after_approval_signature_and_email(  # type: ignore[no-untyped-def]
    prefect_server,  # noqa: ARG001
    sqlite_url,
    tmp_path,
    monkeypatch,
    smtp_server,
):
    from workflows.approve_report import approve_report_flow
    from workflows.common import in_process_runs
    from workflows.events import REPORT_HANDED_UPWARD, SUBMISSION_RECEIVED

    monkeypatch.setenv("KEHOACH_HOME", str(tmp_path))
    monkeypatch.setenv("KEHOACH_PORTAL_SECRET", "kehoach-test-secret-7f3a9c2e4b1d8f60")
    monkeypatch.setenv("KEHOACH_SMTP_HOST", smtp_server.host)
    monkeypatch.setenv("KEHOACH_SMTP_PORT", str(smtp_server.port))
    monkeypatch.setenv("KEHOACH_SMTP_SECURITY", "none")
    settings.cache_clear()
    report_id = _draft(sqlite_url, tmp_path)
    with session_scope(sqlite_url) as session:  # the plan the report goes up to
        activate(session, PROVINCE, now=vn(2027, 1, 4))
    signed = tmp_path / "bao-cao-da-ky.pdf"
    signed.write_bytes(minimal_pdf())
    since = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)
    now = vn(2027, 9, 13, 10).isoformat()  # a Monday morning: the email leaves at once
    try:
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
    finally:
        settings.cache_clear()
    with session_scope(sqlite_url) as session:
        [mail] = outbox(session, "consolidated")  # the email to the body above: sent
        assert mail.status.value == "sent" and set(mail.to_addrs) <= {
            r for m in smtp_server.messages for r in m.rcpt_tos
        }
        report = session.get(ConsolidatedReport, report_id)
        assert report is not None
        number, upward = report.number_text, report.upward_submission_id
    assert upward is not None
    events = _events_since([REPORT_HANDED_UPWARD, SUBMISSION_RECEIVED], since, 2)
    [handed] = [e for e in events if e.event == REPORT_HANDED_UPWARD]
    assert handed.resource.id == f"kehoach.cycle.{DISTRICT}.2027" and handed.resource.id.isascii()
    assert handed.payload["number"] == number and handed.payload["submission_id"] == upward
    assert handed.payload["parent_plan"] == "lc-tinh-plan"
    related = {r.role: r.id for r in handed.related}
    assert related["plan"] == "kehoach.plan.lc-tinh-plan"
    assert related["cycle"] == "kehoach.cycle.lc-tinh-plan.2027"
    assert all(r.isascii() for r in related.values())
    [received] = [e for e in events if e.event == SUBMISSION_RECEIVED]
    assert received.resource.id == f"kehoach.submission.{upward}"
