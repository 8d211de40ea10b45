"""Closing cycles (engine/closing.py): the rule, closing itself, the commands, the sweep.

The district plan of tests/data/lifecycle/ reports by 10/9 and consolidates by 25/9,
which in 2027 is a Saturday: the consolidation duty is due Monday 27/9/2027, the
cycle's last due date, so with the default ``close_after_days`` (60) the 2027 cycle
closes after 26/11/2027 and the first sweep from 27/11/2027 closes it.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from sqlalchemy import func, select

from cli import main
from engine.closing import (
    ClosingRefused,
    close_cycle,
    close_due_cycles,
    closes_on_for,
    cycles_due,
    find_cycle,
)
from engine.lifecycle import activate, intake, record_submission
from engine.status import render_status, status_table
from engine.store import session_scope
from engine.store.models import AuditEvent, Cycle, Obligation, OutboxMessage, Submission
from tests.lifecycle_factory import (
    CONSOLIDATION,
    DATA,
    DISTRICT,
    GOOD_REPORT,
    PROVINCE,
    obligation,
    outbox,
    prepared,
    store_files,
    vn,
)

ACTIVATED = vn(2027, 1, 4, 9)
LAST_DUE_2027 = dt.date(2027, 9, 27)  # the consolidation, 25/9 (Saturday) → Monday
CLOSES_ON_2027 = dt.date(2027, 11, 26)
REPORTERS_2027 = {"ca-huyen", "phong-vh", "phong-kt", "xa-a", "xa-b", "xa-moi"}


@pytest.fixture
def url(db_url: str) -> str:
    prepared(db_url)
    with session_scope(db_url) as session:
        activate(session, PROVINCE, now=ACTIVATED)
        activate(session, DISTRICT, now=ACTIVATED)
    return db_url


def _cycle(session, key: str = "2027", plan_id: str = DISTRICT) -> Cycle:
    return find_cycle(session, plan_id, key)


def _audits(session, action: str) -> list[AuditEvent]:
    return list(
        session.scalars(
            select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.id)
        )
    )


def _answer(url: str, unit: str, when: dt.datetime, *, take_in: bool) -> int:
    with session_scope(url) as session:
        submission = record_submission(
            session, obligation(session, unit).id, values=GOOD_REPORT, now=when
        )
        if take_in:
            intake(session, submission.id, now=when)
        return submission.id


# ---------------------------------------------------------------- the rule


def test_closes_on_is_the_last_due_date_plus_the_plans_days_stored_once(url):
    assert closes_on_for(LAST_DUE_2027, None) == CLOSES_ON_2027
    assert closes_on_for(LAST_DUE_2027, 0) == LAST_DUE_2027
    with session_scope(url) as session:
        assert _cycle(session).closes_on is None
        due = cycles_due(session, DISTRICT, today=dt.date(2027, 3, 1))
        once_last = session.scalar(
            select(func.max(Obligation.due_date)).where(
                Obligation.cycle_id == _cycle(session, "once").id
            )
        )
    assert dict(due.closes_on_set) == {
        "2027": CLOSES_ON_2027,
        "once": once_last + dt.timedelta(days=60),
    }
    assert due.due == []
    with session_scope(url) as session:
        assert _cycle(session).closes_on == CLOSES_ON_2027
        events = _audits(session, "cycle.closes_on")
        assert {e.data["cycle"]: e.data["closes_on"] for e in events}["2027"] == "2027-11-26"
        again = cycles_due(session, DISTRICT, today=dt.date(2027, 3, 2))
        assert again.closes_on_set == [] and again.due == []
        assert len(_audits(session, "cycle.closes_on")) == 2


def test_close_after_days_is_read_from_the_plan_yaml(sqlite_url, tmp_path: Path):
    text = (DATA / "district.yaml").read_text(encoding="utf-8")
    custom = tmp_path / "district.yaml"
    custom.write_text(
        text.replace("start_year: 2026\n", "start_year: 2026\nclose_after_days: 10\n"),
        encoding="utf-8",
    )
    store_files(sqlite_url, DATA / "registry.yaml", DATA / "province.yaml", custom)
    with session_scope(sqlite_url) as session:
        activate(session, DISTRICT, now=ACTIVATED)
        close_due_cycles(session, DISTRICT, today=dt.date(2027, 3, 1))
        assert _cycle(session).closes_on == LAST_DUE_2027 + dt.timedelta(days=10)


# ---------------------------------------------------------------- closing


def test_closes_the_day_after_closes_on_takes_answers_in_and_lists_the_missing(url):
    _answer(url, "xa-a", vn(2027, 9, 9), take_in=True)
    late = _answer(url, "xa-b", vn(2027, 9, 20), take_in=False)  # intake flow never ran
    with session_scope(url) as session:
        before = close_due_cycles(session, DISTRICT, today=CLOSES_ON_2027)
        # The sub-plans' cycle (due 3/2/2027) closed long ago; 2027 closes tomorrow.
        assert [c.cycle_key for c in before.closed] == ["once"]
        assert _cycle(session).status == "open"
        assert session.get(Submission, late).intake_done is False

    with session_scope(url) as session:
        result = close_due_cycles(session, DISTRICT, today=CLOSES_ON_2027 + dt.timedelta(days=1))
        closed = {c.cycle_key: c for c in result.closed}
        assert set(closed) == {"2027"}
        assert _cycle(session).status == "closed"

    done = closed["2027"]
    assert done.closed and not done.already_closed and done.by == "system"
    assert done.intakes == [late]
    assert done.counts == {"total": 7, "on_time": 1, "late": 1, "waived": 0, "missing": 5}
    assert {m.unit_id for m in done.missing if m.kind == "report"} == REPORTERS_2027 - {
        "xa-a",
        "xa-b",
    }
    assert [m.deliverable_id for m in done.missing if m.kind == "consolidation"] == [CONSOLIDATION]
    assert done.forced  # closed by the rule although nobody consolidated
    with session_scope(url) as session:
        xa_b = obligation(session, "xa-b")
        assert xa_b.status == "submitted" and xa_b.on_time is False
        assert session.get(Submission, late).intake_done is True
        # Never answered: the status stays 'pending' (open, overdue) for the record.
        assert obligation(session, "xa-moi").status == "pending"
        event = next(e for e in _audits(session, "cycle.closed") if e.data["cycle"] == "2027")
        assert event.actor == "system"
        assert event.at == dt.datetime.combine(
            CLOSES_ON_2027 + dt.timedelta(days=1), dt.time(0), vn(2027, 1, 1).tzinfo
        )
        assert event.data["counts"]["missing"] == 5
        assert set(event.data["missing_units"]) == {"ca-huyen", "phong-vh", "phong-kt", "xa-moi"}
        assert event.data["closed_on"] == "2027-11-27" and event.data["forced"] is True


def test_reminders_not_sent_yet_are_cancelled_when_the_cycle_closes(url):
    """A reminder about a deadline that no longer counts does not go out after closing;
    what had gone out stays as it was."""
    with session_scope(url) as session:
        cycle = _cycle(session)
        ids = [o.id for o in cycle.obligations]
        queued = [m for m in outbox(session) if m.obligation_id in ids]
        assert queued and all(m.status == "pending" for m in queued)
        sent = next(m for m in queued if m.kind == "assignment")
        sent.status = "sent"  # the assignment went out long ago
        for kind in ("reminder", "overdue"):
            session.add(
                OutboxMessage(
                    idempotency_key=f"test:{kind}",
                    message_id=f"<test-{kind}@kehoach.example>",
                    kind=kind,
                    obligation_id=obligation(session, "xa-moi").id,
                    plan_id=DISTRICT,
                    unit_id="xa-moi",
                    to_addrs=["xa-moi@example.test"],
                    context={},
                )
            )
    with session_scope(url) as session:
        close_cycle(session, _cycle(session).id, now=vn(2027, 11, 27))
    with session_scope(url) as session:
        rows = {m.idempotency_key: m for m in outbox(session)}
        for kind in ("reminder", "overdue"):
            assert rows[f"test:{kind}"].status == "cancelled"
            assert rows[f"test:{kind}"].last_error == "cycle 2027 closed"
        assert rows[sent.idempotency_key].status == "sent"
        [event] = [e for e in _audits(session, "cycle.closed") if e.data["cycle"] == "2027"]
        assert event.data["cancelled_emails"] == 2
        [summary] = outbox(session, "cycle_closed")
        assert summary.status == "pending"  # the closing summary itself goes out


def test_no_answer_is_recorded_in_a_closed_cycle(url):
    """Not only the portal: the engine refuses a new version once the cycle is closed."""
    from engine.lifecycle import SubmissionRejected

    with session_scope(url) as session:
        close_cycle(session, _cycle(session).id, now=vn(2027, 11, 27))
    with session_scope(url) as session, pytest.raises(SubmissionRejected) as refused:
        record_submission(
            session, obligation(session, "xa-moi").id, values=GOOD_REPORT, now=vn(2027, 11, 28)
        )
    assert "Kỳ báo cáo đã đóng" in str(refused.value.errors)
    with session_scope(url) as session:
        assert session.scalar(select(func.count()).select_from(Submission)) == 0


def test_closing_is_idempotent_and_queues_one_summary(url):
    from notifications.render import render_parts

    _answer(url, "xa-a", vn(2027, 9, 9), take_in=True)
    day = CLOSES_ON_2027 + dt.timedelta(days=1)
    with session_scope(url) as session:
        close_due_cycles(session, DISTRICT, today=day)
    with session_scope(url) as session:
        outbox_before = session.scalar(select(func.count(OutboxMessage.id)))
        audits_before = session.scalar(select(func.count(AuditEvent.id)))
        again = close_cycle(session, _cycle(session).id, now=vn(2027, 11, 28))
        assert again.already_closed and not again.closed and again.emails == []
        assert close_due_cycles(session, DISTRICT, today=day + dt.timedelta(days=3)).closed == []
    with session_scope(url) as session:
        assert session.scalar(select(func.count(OutboxMessage.id))) == outbox_before
        assert session.scalar(select(func.count(AuditEvent.id))) == audits_before
        summaries = outbox(session, "cycle_closed")
    # One per cycle for the consolidating unit (reports and sub-plans go via ca-huyen).
    assert len(summaries) == 2
    by_cycle = {m.context["cycle"]["key"]: m for m in summaries}
    mail = by_cycle["2027"]
    assert mail.to_addrs == ["ca.huyen@lc.example"] and mail.unit_id == "ca-huyen"
    assert mail.obligation_id is not None  # the consolidation duty
    subject, text, html = render_parts(mail.kind, mail.context)
    assert "Đã đóng kỳ báo cáo năm 2027" in subject and "1/6 đã nộp" in subject
    assert (
        "Không nộp: 5" in text
        and "Đã gửi ngày 9/9/2027" in text
        and "Ủy ban nhân dân xã Quang Long mới" in text
    )
    assert (
        "Báo cáo tổng hợp: Báo cáo kết quả thực hiện hằng năm (hạn 27/9/2027): Chưa thực hiện"
        in text
    )
    assert "<table" in html and "Không nộp" in html


def test_summary_html_is_escaped(url):
    from notifications.render import render_parts

    with session_scope(url) as session:
        close_due_cycles(session, DISTRICT, today=CLOSES_ON_2027 + dt.timedelta(days=1))
        [mail] = [m for m in outbox(session, "cycle_closed") if m.context["cycle"]["key"] == "2027"]
        context = dict(mail.context)
    context["rows"] = [{**context["rows"][0], "unit_name": "<script>alert(1)</script>"}]
    _subject, text, html = render_parts("cycle_closed", context)
    assert "<script>alert(1)</script>" in text  # plain text stays plain
    assert "<script>" not in html and "&lt;script&gt;" in html


# ---------------------------------------------------------------- status


def test_status_shows_a_closed_cycle_as_closed(url):
    with session_scope(url) as session:
        close_due_cycles(session, DISTRICT, today=CLOSES_ON_2027 + dt.timedelta(days=1))
        rows = status_table(session, DISTRICT, "2027", today=dt.date(2027, 12, 1))
    assert rows and all(r.cycle_closed for r in rows)
    table = render_status(rows, color=False)
    assert "2027 (đã đóng)" in table and "không nộp, kỳ đã đóng" in table


# ---------------------------------------------------------------- commands


def _cli(url: str, *argv: str) -> int:
    return main(["--database-url", url, *argv])


def test_close_by_hand_refusals_and_force(url, monkeypatch, capsys):
    monkeypatch.setenv("KEHOACH_NOW", "2027-10-01T09:00:00+07:00")
    assert _cli(url, "close", DISTRICT, "--cycle", "2031") == 4  # not found, as elsewhere
    err = capsys.readouterr().err
    assert "không tồn tại" in err and "does not exist" in err and "Traceback" not in err
    assert _cli(url, "close", "khong-co", "--cycle", "2027") == 4
    capsys.readouterr()

    assert _cli(url, "close", DISTRICT, "--cycle", "2027") == 1  # consolidation pending
    err = capsys.readouterr().err
    assert "--force" in err and "tổng hợp" in err
    with session_scope(url) as session:
        assert _cycle(session).status == "open"

    assert _cli(url, "close", DISTRICT, "--cycle", "2027", "--force", "--by", "quantri") == 0
    out = capsys.readouterr().out
    assert "đã đóng" in out and "không nộp: Ủy ban nhân dân xã Quang Long mới" in out
    with session_scope(url) as session:
        cycle = _cycle(session)
        assert cycle.status == "closed" and cycle.closes_on == CLOSES_ON_2027
        [event] = _audits(session, "cycle.closed")
        assert event.actor == "quantri" and event.data["forced"] is True
        assert event.at == dt.datetime(2027, 10, 1, 2, tzinfo=dt.UTC)

    assert _cli(url, "close", DISTRICT, "--cycle", "2027", "--force") == 1
    assert "already closed" in capsys.readouterr().err


def test_close_at_a_date_once_consolidated(url, monkeypatch, capsys):
    with session_scope(url) as session:
        duty = obligation(session, "ca-huyen", CONSOLIDATION)
        # What engine.consolidation records (tested there): the duty is done.
        duty.status, duty.on_time, duty.submitted_at = "submitted", True, vn(2027, 9, 27)
        _cycle(session).status = "consolidated"
    assert _cli(url, "close", DISTRICT, "--cycle", "2027", "--at", "2027-10-15") == 0
    capsys.readouterr()
    with session_scope(url) as session:
        [event] = _audits(session, "cycle.closed")
        assert event.data["closed_on"] == "2027-10-15" and event.data["forced"] is False
        assert event.data["previous_status"] == "consolidated"


def test_reopen_refusals_then_reopen_until_a_date_and_close_again(url, monkeypatch, capsys):
    monkeypatch.setenv("KEHOACH_NOW", "2027-12-01T09:00:00+07:00")
    reopen = ["reopen", DISTRICT, "--cycle", "2027", "--until", "2027-12-15"]
    assert _cli(url, *reopen, "--reason", "Gia hạn") == 1  # not closed yet
    assert "not closed" in capsys.readouterr().err
    with session_scope(url) as session:
        close_due_cycles(session, DISTRICT, today=dt.date(2027, 11, 27))
    assert _cli(url, *reopen, "--reason", "   ") == 1
    assert "reason" in capsys.readouterr().err
    past = ["reopen", DISTRICT, "--cycle", "2027", "--until", "2027-11-30", "--reason", "x"]
    assert _cli(url, *past) == 1
    assert "in the past" in capsys.readouterr().err
    assert (
        _cli(url, "reopen", DISTRICT, "--cycle", "1999", "--until", "2028-01-01", "--reason", "x")
        == 4  # no such cycle: not found
    )
    capsys.readouterr()

    assert _cli(url, *reopen, "--reason", "Xã Quang Long mới xin nộp muộn") == 0
    assert "15/12/2027" in capsys.readouterr().out
    with session_scope(url) as session:
        cycle = _cycle(session)
        assert (cycle.status, cycle.closes_on) == ("open", dt.date(2027, 12, 15))
        [event] = _audits(session, "cycle.reopened")
        assert event.data["reason"] == "Xã Quang Long mới xin nộp muộn"
        assert event.data["previous_closes_on"] == CLOSES_ON_2027.isoformat()
    # The missing unit may answer now (late), and the rule closes the cycle again.
    _answer(url, "xa-moi", vn(2027, 12, 5), take_in=False)
    with session_scope(url) as session:
        assert close_due_cycles(session, DISTRICT, today=dt.date(2027, 12, 15)).closed == []
        [again] = close_due_cycles(session, DISTRICT, today=dt.date(2027, 12, 16)).closed
        assert again.cycle_key == "2027" and len(again.intakes) == 1
        assert "xa-moi" not in {m.unit_id for m in again.missing}
        # A second summary for the second closing (another day), not a repeat.
        assert (
            len([m for m in outbox(session, "cycle_closed") if m.context["cycle"]["key"] == "2027"])
            == 2
        )


def test_close_refuses_while_consolidation_pending_in_engine_too(url):
    with session_scope(url) as session, pytest.raises(ClosingRefused, match="--force"):
        close_cycle(session, _cycle(session).id, now=vn(2027, 10, 1), force=False)


# ---------------------------------------------------------------- portal


@pytest.mark.filterwarnings("ignore:Using `httpx` with `starlette.testclient`")
def test_portal_refuses_a_link_of_a_closed_cycle(tmp_path, monkeypatch):
    from starlette.testclient import TestClient

    from engine import config
    from tests.test_portal_support import PLAN_ID, make_world

    world = make_world(tmp_path, monkeypatch)
    try:
        with session_scope(world.db_url) as session:
            due = cycles_due(session, PLAN_ID, today=dt.date(2027, 9, 1))
            [(key, closes_on)] = [c for c in due.closes_on_set if c[0] == "2027"]
        with TestClient(world.app(), base_url=world.base_url) as client:
            assert client.get(f"/o/{world.token()}").status_code == 200
            world.clock.set(
                dt.datetime.combine(
                    closes_on + dt.timedelta(days=1), dt.time(8), vn(2027, 1, 1).tzinfo
                )
            )
            page = client.get(f"/o/{world.token()}")
            assert page.status_code == 410  # the link's end is the end of closes_on
            with session_scope(world.db_url) as session:
                closed = close_due_cycles(session, PLAN_ID, today=closes_on + dt.timedelta(days=1))
                assert key in {c.cycle_key for c in closed.closed}
            page = client.get(f"/o/{world.token()}")
            assert page.status_code == 410 and "Kỳ báo cáo đã đóng" in page.text
            # The operator page says so too.
            auth = ("tonghop", "mat-khau-thu-nghiem")
            page = client.get(f"/operator/plans/{PLAN_ID}/cycles/2027", auth=auth)
            assert page.status_code == 200 and 'id="ky-da-dong"' in page.text
            assert "Kỳ 2027 đã đóng" in page.text and "kehoach reopen" in page.text
    finally:
        config.settings.cache_clear()


# ---------------------------------------------------------------- the sweep flow


def test_sweep_flow_closes_due_cycles_with_a_named_task_and_an_event(
    prefect_server,  # noqa: ARG001
    sqlite_url,
):
    import time

    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import TaskRunFilter, TaskRunFilterName
    from prefect.events.filters import EventFilter, EventNameFilter, EventResourceFilter

    from workflows.common import in_process_runs
    from workflows.events import CYCLE_CLOSED
    from workflows.sweep import sweep_flow

    prepared(sqlite_url)
    with session_scope(sqlite_url) as session:
        activate(session, DISTRICT, now=ACTIVATED)

    def run(day: str) -> dict:
        return sweep_flow(
            DISTRICT,
            now=f"{day}T07:00:00+07:00",
            database_url=sqlite_url,
            dispatch=False,
            consolidate_due=False,
        )

    with in_process_runs():
        first = run("2027-11-26")  # first sight: closes_on stored; the sub-plans' cycle is due
        assert [c["cycle_key"] for c in first["closed"]] == ["once"]
        with session_scope(sqlite_url) as session:
            assert (_cycle(session).status, _cycle(session).closes_on) == ("open", CLOSES_ON_2027)
        assert [c["cycle_key"] for c in run("2027-11-27")["closed"]] == ["2027"]
        assert run("2027-11-28")["closed"] == []
    with session_scope(sqlite_url) as session:
        assert _cycle(session).status == "closed"
        assert len(outbox(session, "cycle_closed")) == 2

    with get_client(sync_client=True) as client:
        wanted_task = f"đóng kỳ · {DISTRICT} · 2027"
        deadline = time.monotonic() + 15  # task runs are reported through events too
        while True:
            tasks = client.read_task_runs(
                task_run_filter=TaskRunFilter(name=TaskRunFilterName(like_=f"đóng kỳ · {DISTRICT}"))
            )
            if wanted_task in {t.name for t in tasks} or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        assert wanted_task in {t.name for t in tasks}
        wanted = EventFilter(
            event=EventNameFilter(name=[CYCLE_CLOSED]),  # "kehoach.kỳ.đã-đóng"
            resource=EventResourceFilter(id=[f"kehoach.cycle.{DISTRICT}.2027"]),
        )
        deadline = time.monotonic() + 15  # events travel through a websocket, then a queue
        while True:
            events = client.read_events(wanted, limit=10)
            if events.total >= 1 or time.monotonic() > deadline:
                break
            time.sleep(0.5)
    assert events.total == 1
    assert events.events[0].payload["counts"]["missing"] == 7
    # named by the plan's short title (its id is in the resource id only)
    assert (
        events.events[0].resource.name
        == "Kỳ năm 2027 · Kế hoạch 15/KH-UBND đã đóng · 7 nghĩa vụ không nộp"
    )


def test_consolidating_a_cycle_closed_without_it_leaves_it_closed(url, tmp_path):
    """Closed with --force before its consolidation, then consolidated by hand: the report
    is written, the cycle stays closed (answers stay refused), and reopening it later
    restores 'consolidated'."""
    from engine.consolidation import consolidate
    from engine.lifecycle import SubmissionRejected
    from tests.lifecycle_factory import lc_settings

    _answer(url, "xa-a", vn(2027, 9, 9), take_in=True)
    with session_scope(url) as session:
        close_cycle(session, _cycle(session).id, now=vn(2027, 10, 1), force=True)
    with session_scope(url) as session:
        result = consolidate(
            session,
            DISTRICT,
            "2027",
            CONSOLIDATION,
            now=vn(2027, 10, 2),
            settings=lc_settings(tmp_path),
        )
        assert result.created
    with session_scope(url) as session:
        cycle = _cycle(session)
        assert cycle.status == "closed" and cycle.consolidated_at is not None
        closed = close_due_cycles(session, DISTRICT, today=dt.date(2028, 1, 1)).closed
        assert "2027" not in {c.cycle_key for c in closed}  # not closed a second time
        assert len(_audits(session, "cycle.closed")) == 1 + len(closed)
    with session_scope(url) as session, pytest.raises(SubmissionRejected):
        record_submission(
            session, obligation(session, "xa-moi").id, values=GOOD_REPORT, now=vn(2027, 10, 3)
        )
    with session_scope(url) as session:
        from engine.closing import reopen_cycle

        reopened = reopen_cycle(
            session,
            DISTRICT,
            "2027",
            until=dt.date(2027, 10, 20),
            reason="Bổ sung",
            by="admin",
            now=vn(2027, 10, 3),
        )
        assert reopened.status == "consolidated"


@pytest.mark.postgres
def test_an_answer_that_waited_for_a_closing_is_refused(postgres_url):
    """PostgreSQL: an answer whose obligation row a closing holds waits, then sees the
    cycle closed (its first snapshot still said open) and is refused, not recorded."""
    import threading

    from sqlalchemy.orm import Session

    from engine.lifecycle import SubmissionRejected
    from engine.store import connect

    prepared(postgres_url)
    with session_scope(postgres_url) as session:
        activate(session, PROVINCE, now=ACTIVATED)
        activate(session, DISTRICT, now=ACTIVATED)
        cycle_id = _cycle(session).id
        target = obligation(session, "xa-moi").id
    closer = Session(connect(postgres_url))
    try:
        close_cycle(closer, cycle_id, now=vn(2027, 11, 27))  # holds the obligations' locks
        outcome: dict[str, object] = {}

        def answer() -> None:
            try:
                with session_scope(postgres_url) as session:
                    record_submission(session, target, values=GOOD_REPORT, now=vn(2027, 11, 27, 9))
                outcome["recorded"] = True
            except SubmissionRejected as exc:
                outcome["refused"] = exc.errors

        thread = threading.Thread(target=answer)
        thread.start()
        thread.join(1.5)
        assert thread.is_alive(), "the answer should wait for the closing's lock"
        closer.commit()
        thread.join(30)
        assert not thread.is_alive()
    finally:
        closer.close()
    assert "recorded" not in outcome
    assert "Kỳ báo cáo đã đóng" in str(outcome["refused"])
    with session_scope(postgres_url) as session:
        assert session.scalar(select(func.count()).select_from(Submission)) == 0
