"""Activation, the daily sweep, submissions, intake and review on a real database.

The district plan (tests/data/lifecycle/district.yaml) is shaped like the seed: every
unit reports before 10/9 through the district police, which consolidates by 25/9.
In 2027, 10/9 is a Friday and 25/9 a Saturday (moved to Monday 27/9); communes c and
e merge into a new commune on 1/7/2027.
"""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import func, select

from engine.clock import SystemClock, VirtualClock, clock_from_env
from engine.documents import store_file
from engine.lifecycle import (
    ReviewError,
    SubmissionRejected,
    activate,
    intake,
    record_submission,
    review,
    start_cycle,
    sweep,
)
from engine.store import session_scope
from engine.store.models import AuditEvent, Obligation, OutboxMessage, Submission
from tests.lifecycle_factory import (
    CONSOLIDATION,
    DATA,
    DISTRICT,
    GOOD_REPORT,
    REPORT,
    SUB_PLAN,
    obligation,
    obligations,
    outbox,
    outbox_keys,
    prepared,
    store_files,
    vn,
)

ACTIVATED = vn(2027, 1, 4, 9)  # a Monday
REPORTERS_2027 = {"ca-huyen", "phong-vh", "phong-kt", "xa-a", "xa-b", "xa-moi"}


@pytest.fixture
def url(sqlite_url: str) -> str:
    prepared(sqlite_url)
    with session_scope(sqlite_url) as session:
        activate(session, DISTRICT, now=ACTIVATED)
    return sqlite_url


def _submit(url, unit, when, values=None, deliverable=REPORT, **kwargs):
    with session_scope(url) as session:
        target = obligation(session, unit, deliverable)
        submission = record_submission(
            session, target.id, values=values or GOOD_REPORT, now=when, **kwargs
        )
        return submission.id


# ---------------------------------------------------------------- clock


def test_clocks_are_injected():
    clock = VirtualClock(vn(2027, 9, 10, 8))
    assert clock.now() == dt.datetime(2027, 9, 10, 1, tzinfo=dt.UTC)
    clock.advance(dt.timedelta(days=1))
    assert clock.now().day == 11
    with pytest.raises(ValueError):
        clock.set(dt.datetime(2027, 1, 1))  # naive
    virtual = clock_from_env({"KEHOACH_NOW": "2027-09-25T08:00:00"})  # read in Viet Nam
    assert virtual.now() == dt.datetime(2027, 9, 25, 1, tzinfo=dt.UTC)
    assert isinstance(clock_from_env({}), SystemClock)


# ---------------------------------------------------------------- activation


def test_activation_expands_groups_and_computes_deadlines(db_url):
    prepared(db_url)
    with session_scope(db_url) as session:
        result = activate(session, DISTRICT, now=ACTIVATED)
    assert result.cycles == ["2027", "once"]
    # xa-moi exists from 1/7/2027 only: its assignment waits for that day (no email to a
    # unit outside its validity; the sweep of 1/7/2027 sends it).
    assert (result.created, result.existing, result.queued) == (14, 0, 13)

    with session_scope(db_url) as session:
        reports = obligations(session, deliverable=REPORT, cycle="2027")
        assert {o.unit_id for o in reports} == REPORTERS_2027
        for o in reports:
            # 10/9/2027 is a Friday: nothing moves.
            assert (o.nominal_date, o.due_date, o.due_reason) == (
                dt.date(2027, 9, 10),
                dt.date(2027, 9, 10),
                None,
            )
            assert (o.to_unit_id, o.via_unit_id, o.kind, o.status) == (
                "ubnd-huyen",
                "ca-huyen",
                "report",
                "pending",
            )
        assert obligation(session, "phong-kt").assignment_ids == ["cac-phong"]
        assert obligation(session, "xa-a").assignment_ids == ["cac-xa"]

        [duty] = obligations(session, deliverable=CONSOLIDATION, cycle="2027")
        assert (duty.unit_id, duty.kind) == ("ca-huyen", "consolidation")
        assert (duty.nominal_date, duty.due_date) == (dt.date(2027, 9, 25), dt.date(2027, 9, 27))
        assert "Thứ Bảy" in duty.due_reason and "Điều 148" in duty.due_reason
        assert (duty.to_unit_id, duty.via_unit_id) == ("ubnd-tinh", "ca-tinh")

        # Sub-plans fall due 30 days after activation, when communes c and e still exist.
        plans = obligations(session, deliverable=SUB_PLAN, cycle="once")
        assert {o.unit_id for o in plans} == (REPORTERS_2027 - {"xa-moi"}) | {"xa-c", "xa-e"}
        assert {o.nominal_date for o in plans} == {dt.date(2027, 2, 3)}

        assignment_mails = outbox(session, "assignment")
        assert len(assignment_mails) == 13
        assert "xa-moi" not in {m.unit_id for m in assignment_mails}
        assert obligation(session, "xa-moi").next_sweep_on == dt.date(2027, 7, 1)
        mail = next(m for m in assignment_mails if m.unit_id == "phong-vh")
        assert mail.to_addrs == ["vh@lc.example"]
        assert mail.idempotency_key == f"obl:{mail.obligation_id}:assignment:"
        assert session.scalar(select(func.count()).where(AuditEvent.action == "plan.activated"))


def test_reactivation_creates_nothing_and_queues_nothing(db_url):
    prepared(db_url)
    with session_scope(db_url) as session:
        first = activate(session, DISTRICT, now=ACTIVATED)
    with session_scope(db_url) as session:
        keys = outbox_keys(session)
        again = activate(session, DISTRICT, now=ACTIVATED + dt.timedelta(days=3))
        same_year = start_cycle(session, DISTRICT, 2027, now=ACTIVATED + dt.timedelta(days=4))
    assert (again.created, again.existing, again.queued) == (0, 14, 0)
    assert (same_year.created, same_year.queued) == (0, 0)
    assert again.instance_id == first.instance_id
    with session_scope(db_url) as session:
        assert outbox_keys(session) == keys
        assert len(obligations(session)) == 14
        # The next year's start adds that year's reports and consolidation only.
        nxt = start_cycle(session, DISTRICT, 2028, now=vn(2028, 1, 2))
    assert (nxt.created, nxt.queued, nxt.cycles) == (7, 7, ["2028", "once"])
    with session_scope(db_url) as session:
        duty = obligations(session, deliverable=CONSOLIDATION, cycle="2028")[0]
        assert duty.due_date == dt.date(2028, 9, 25)  # a Monday


def test_successor_takes_the_duty_of_a_unit_abolished_before_the_cycle(url):
    with session_scope(url) as session:
        merged = obligation(session, "xa-moi")
        # xa-c and xa-e both ended on 30/6/2027: one obligation for their successor.
        assert merged.transferred_from in {"xa-c", "xa-e"}
        assert not [o for o in obligations(session, cycle="2027") if o.unit_id in {"xa-c", "xa-e"}]
        started = session.scalar(select(AuditEvent).where(AuditEvent.action == "cycle.started"))
        assert ["xa-c", "xa-e"] in started.data["merged"].values()
        # The 2026 cycle (before the merger) belongs to the old communes themselves.
        result = activate(session, DISTRICT, now=ACTIVATED, years=[2026])
    assert result.created == 8 and result.transferred == 0  # 7 reports + consolidation
    with session_scope(url) as session:
        units_2026 = {o.unit_id for o in obligations(session, deliverable=REPORT, cycle="2026")}
        assert units_2026 == (REPORTERS_2027 - {"xa-moi"}) | {"xa-c", "xa-e"}


def _abolish_xa_b(url, tmp_path):
    """A later registry version: xa-b ends on 31/3/2027 and xa-b2 takes over."""
    text = (DATA / "registry.yaml").read_text(encoding="utf-8")
    text = text.replace(
        "    emails: [xa.b@lc.example]\n",
        "    emails: [xa.b@lc.example]\n    valid_to: 2027-03-31\n    successors: [xa-b2]\n",
    )
    text += (
        "  - {id: xa-b2, name: Ủy ban nhân dân xã Bế Triều mới, kind: commune-committee, "
        "level: commune, parent: ubnd-huyen, emails: [xa.b2@lc.example], valid_from: 2027-04-01}\n"
    )
    text = text.replace("\ngroups:", "\n# later version\ngroups:", 1)
    changed = tmp_path / "registry_v2.yaml"
    # groups must follow units; move the appended unit before them
    head, _, groups = text.partition("\n# later version\ngroups:")
    unit_line = groups[groups.index("  - {id: xa-b2") :]
    groups = groups[: groups.index("  - {id: xa-b2")]
    changed.write_text(head + "\n" + unit_line + "groups:" + groups, encoding="utf-8")
    store_files(url, changed)


def test_sweep_moves_open_duties_of_a_unit_abolished_later(url, tmp_path):
    _abolish_xa_b(url, tmp_path)
    with session_scope(url) as session:
        before = obligation(session, "xa-b")
        result = sweep(session, DISTRICT, today=dt.date(2027, 4, 2))
    assert (before.id, "xa-b", "xa-b2") in result.transferred
    with session_scope(url) as session:
        moved = session.get(Obligation, before.id)
        assert (moved.unit_id, moved.transferred_from, moved.token_version) == ("xa-b2", "xa-b", 2)
        # One email tells the heir what it inherited (engine.successors).
        mail = session.scalar(
            select(OutboxMessage).where(
                OutboxMessage.idempotency_key == f"inherit:{DISTRICT}:xa-b2:2027-04-02"
            )
        )
        assert mail is not None and mail.to_addrs == ["xa.b2@lc.example"]
        assert mail.kind == "inherited" and mail.context["from_names"] == [
            "Ủy ban nhân dân xã Bế Triều"
        ]
        again = sweep(session, DISTRICT, today=dt.date(2027, 4, 2))
    assert not again.transferred


def test_the_heirs_email_is_new_once_on_sqlite_and_postgres(db_url, tmp_path):
    """engine.successors.queue_inheritance returns the keys it queued: the heir's email
    on the first sweep, nothing when the same move is queued again (one row)."""
    from engine.context import plan_context
    from engine.repository import plan_version
    from engine.successors import queue_inheritance

    prepared(db_url)
    with session_scope(db_url) as session:
        activate(session, DISTRICT, now=ACTIVATED)
    _abolish_xa_b(db_url, tmp_path)
    key = f"inherit:{DISTRICT}:xa-b2:2027-04-02"
    with session_scope(db_url) as session:
        moved_id = obligation(session, "xa-b").id
        sweep(session, DISTRICT, today=dt.date(2027, 4, 2))
    with session_scope(db_url) as session:
        ctx = plan_context(session, plan_version(session, DISTRICT))
        moved = [(session.get(Obligation, moved_id), "xa-b")]
        assert queue_inheritance(session, ctx, moved, vn(2027, 4, 2, 7)) == []
        rows = session.scalars(
            select(OutboxMessage.idempotency_key).where(OutboxMessage.kind == "inherited")
        ).all()
    assert rows == [key]


# ---------------------------------------------------------------- sweep


def _reminder_steps(session, obligation_id):
    keys = session.scalars(
        select(OutboxMessage.idempotency_key).where(
            OutboxMessage.obligation_id == obligation_id, OutboxMessage.kind == "reminder"
        )
    ).all()
    return sorted(int(k.rsplit(":", 1)[1]) for k in keys)


def test_sweep_reminder_ladder_overdue_and_escalation_once(url):
    with session_scope(url) as session:
        target = obligation(session, "phong-vh").id
    seen = {}
    for day in range(2, 15):
        today = dt.date(2027, 9, day)
        with session_scope(url) as session:
            result = sweep(session, DISTRICT, today=today)
            seen[day] = (
                [step for oid, step in result.reminders if oid == target],
                target in result.overdue,
                target in result.escalations,
            )
            if day == 3:  # the same day twice changes nothing
                repeat = sweep(session, DISTRICT, today=today)
                assert not repeat.reminders and not repeat.overdue and not repeat.escalations
    assert seen[2] == ([], False, False)  # 8 days left
    assert seen[3] == ([7], False, False)
    assert seen[7] == ([3], False, False)
    assert seen[9] == ([1], False, False)
    assert seen[10] == ([], False, False)  # the deadline day itself
    assert seen[11] == ([], True, False)  # overdue the day after
    assert seen[13] == ([], False, True)  # escalated 3 days late
    assert all(seen[d] == ([], False, False) for d in (4, 5, 6, 8, 12, 14))

    with session_scope(url) as session:
        assert _reminder_steps(session, target) == [1, 3, 7]
        kinds = session.scalars(
            select(OutboxMessage.kind).where(OutboxMessage.obligation_id == target)
        ).all()
        assert sorted(kinds) == [
            "assignment",
            "escalation",
            "overdue",
            "reminder",
            "reminder",
            "reminder",
        ]
        escalation = session.scalar(
            select(OutboxMessage).where(
                OutboxMessage.obligation_id == target, OutboxMessage.kind == "escalation"
            )
        )
        # To the unit's head, copied to the consolidating unit (the district police).
        # its head, then the body above it (the plan's default escalation policy)
        assert escalation.to_addrs == ["truongphong.vh@lc.example", "ubnd.huyen@lc.example"]
        assert "ca.huyen@lc.example" in escalation.cc_addrs
        assert session.get(Obligation, target).overdue is True
        actions = session.scalars(
            select(AuditEvent.action).where(AuditEvent.obligation_id == target)
        ).all()
        assert actions.count("obligation.overdue") == 1
        assert actions.count("obligation.escalated") == 1


def test_missed_sweeps_send_only_the_most_urgent_reminder(url):
    with session_scope(url) as session:
        target = obligation(session, "xa-a").id
        result = sweep(session, DISTRICT, today=dt.date(2027, 9, 8))  # 2 days left
        assert [s for o, s in result.reminders if o == target] == [3]
        result = sweep(session, DISTRICT, today=dt.date(2027, 9, 9))
        assert [s for o, s in result.reminders if o == target] == [1]
        result = sweep(session, DISTRICT, today=dt.date(2027, 9, 9))
        assert not result.reminders
        assert _reminder_steps(session, target) == [1, 3]
        mail = session.scalar(
            select(OutboxMessage).where(OutboxMessage.idempotency_key == f"obl:{target}:reminder:3")
        )
        assert mail.context["days_left"] == 2  # the real count, not the ladder step


def test_no_stale_reminders_for_an_obligation_created_late(sqlite_url):
    prepared(sqlite_url)
    with session_scope(sqlite_url) as session:
        activate(session, DISTRICT, now=vn(2027, 9, 8, 9))
        target = obligation(session, "xa-a").id
        assert not [
            o
            for o, _ in sweep(session, DISTRICT, today=dt.date(2027, 9, 8)).reminders
            if o == target
        ]
        result = sweep(session, DISTRICT, today=dt.date(2027, 9, 9))
        assert [s for o, s in result.reminders if o == target] == [1]


def test_sweep_takes_in_a_recorded_submission_before_reminding(url):
    submission_id = _submit(url, "xa-a", vn(2027, 9, 1))  # intake flow never ran
    with session_scope(url) as session:
        target = obligation(session, "xa-a").id
        result = sweep(session, DISTRICT, today=dt.date(2027, 9, 3))
        assert result.intakes == [submission_id]
        assert target not in {o for o, _ in result.reminders}
        assert session.get(Obligation, target).status == "submitted"


# ---------------------------------------------------------------- submissions


def test_submission_values_are_validated(url):
    with session_scope(url) as session:
        target = obligation(session, "xa-a").id
        with pytest.raises(SubmissionRejected) as caught:
            record_submission(
                session,
                target,
                values={"so-vu-chay": "nhiều", "ty-le-hoc-tap": "101"},
                now=vn(2027, 9, 1),
            )
    assert caught.value.errors == {
        "so-vu-chay": "Trường 'Số vụ cháy' phải là số nguyên không âm",
        "ty-le-hoc-tap": "Trường 'Tỷ lệ cán bộ được học tập' phải là tỷ lệ phần trăm từ 0 đến 100",
        "danh-gia": "Trường 'Tự đánh giá' là bắt buộc",
    }
    with session_scope(url) as session:
        assert session.scalar(select(func.count(Submission.id))) == 0


def test_on_time_until_the_end_of_the_due_day_then_late(url):
    on_time = _submit(url, "xa-a", vn(2027, 9, 10, 23, 59))
    late = _submit(url, "xa-b", vn(2027, 9, 11, 0, 1))
    with session_scope(url) as session:
        assert session.get(Submission, on_time).on_time is True
        assert session.get(Submission, late).on_time is False
        assert session.get(Submission, on_time).values["thiet-hai"] == 1234.5
        result = intake(session, late, now=vn(2027, 9, 11, 0, 2))
    assert (result.on_time, result.unit_name, result.cycle_key) == (
        False,
        "Ủy ban nhân dân xã Bế Triều",
        "2027",
    )
    from workflows.events import intake_event, intake_resource

    assert intake_event(result) == "kehoach.nộp.trễ-hạn"
    assert intake_resource(result)["kehoach.unit"] == "xa-b"


def test_resubmission_keeps_versions_and_stops_after_the_deadline(url):
    first = _submit(url, "xa-a", vn(2027, 9, 1))
    second = _submit(url, "xa-a", vn(2027, 9, 9), values={**GOOD_REPORT, "so-vu-chay": "5"})
    with session_scope(url) as session:
        assert [session.get(Submission, s).version for s in (first, second)] == [1, 2]
        intake(session, second, now=vn(2027, 9, 9))
        stale = intake(session, first, now=vn(2027, 9, 9))  # an older version arrives late
        assert stale.superseded
        target = obligation(session, "xa-a")
        assert target.status == "submitted" and target.submitted_at == vn(2027, 9, 9)
    with pytest.raises(SubmissionRejected) as caught:
        _submit(url, "xa-a", vn(2027, 9, 11))
    assert "quá hạn" in caught.value.errors["_form"]


def test_intake_is_idempotent_and_reports_cycle_completion(url):
    ids = {unit: _submit(url, unit, vn(2027, 9, 5)) for unit in sorted(REPORTERS_2027)}
    with session_scope(url) as session:
        results = [intake(session, ids[unit], now=vn(2027, 9, 5, 10)) for unit in sorted(ids)]
        again = intake(session, ids["xa-a"], now=vn(2027, 9, 6))
        receipts = outbox(session, "receipt")
    assert [r.cycle_complete for r in results] == [False] * 5 + [True]
    assert results[-1].consolidation_ids == [CONSOLIDATION]
    assert again.already_done and again.cycle_complete
    assert len(receipts) == 6  # one per submission, none for the repeat
    assert {m.idempotency_key.rsplit(":", 1)[1] for m in receipts} == {"1"}


def test_sub_plan_needs_a_summary_and_a_file(url, tmp_path):
    with session_scope(url) as session:
        target = obligation(session, "xa-a", SUB_PLAN, "once").id
        with pytest.raises(SubmissionRejected) as caught:
            record_submission(session, target, values=None, now=vn(2027, 1, 20))
        assert set(caught.value.errors) == {"summary", "files"}
        with pytest.raises(SubmissionRejected) as caught:
            record_submission(
                session,
                target,
                values=None,
                summary="Kế hoạch",
                file_ids=[999],
                now=vn(2027, 1, 20),
            )
        assert set(caught.value.errors) == {"files"}
        stored = store_file(
            session,
            b"%PDF-1.4 ke hoach",
            name="ke-hoach.pdf",
            content_type="application/pdf",
            now=vn(2027, 1, 20),
            files_dir=tmp_path / "files",
        )
        submission = record_submission(
            session,
            target,
            values=None,
            summary="Kế hoạch số 05/KH-UBND",
            file_ids=[stored.id],
            now=vn(2027, 1, 20),
            actor="unit:xa-a",
            remote_addr="10.0.0.7",
        )
        assert submission.file_ids == [stored.id] and submission.on_time
        audit = session.scalar(select(AuditEvent).where(AuditEvent.action == "submission.recorded"))
        assert (audit.actor, audit.remote_addr) == ("unit:xa-a", "10.0.0.7")


# ---------------------------------------------------------------- review


def test_return_needs_a_reason_reopens_and_allows_a_late_version(url):
    first = _submit(url, "phong-vh", vn(2027, 9, 8))
    with session_scope(url) as session:
        intake(session, first, now=vn(2027, 9, 8))
        with pytest.raises(ReviewError):
            review(
                session, first, decision="return", reason="  ", by="ca-huyen", now=vn(2027, 9, 12)
            )
    with session_scope(url) as session:
        review(
            session,
            first,
            decision="return",
            reason="Thiếu số liệu diễn tập",
            by="operator:ca-huyen",
            now=vn(2027, 9, 12),
        )
        target = obligation(session, "phong-vh")
        assert (target.status, target.submitted_at, target.on_time) == ("pending", None, None)
        [mail] = outbox(session, "returned")
        assert mail.context["reason"] == "Thiếu số liệu diễn tập"
        assert mail.idempotency_key == f"obl:{target.id}:returned:1"
        # Returning twice is a no-op, not a second email.
        review(session, first, decision="return", reason="again", by="x", now=vn(2027, 9, 12))
        assert len(outbox(session, "returned")) == 1

    second = _submit(url, "phong-vh", vn(2027, 9, 13))  # after the deadline: allowed now
    with session_scope(url) as session:
        assert session.get(Submission, second).version == 2
        assert session.get(Submission, second).on_time is False
        review(session, second, decision="accept", by="operator:ca-huyen", now=vn(2027, 9, 14))
        target = obligation(session, "phong-vh")
        assert target.status == "accepted"
        assert session.get(Submission, second).intake_done  # review takes it in first
        with pytest.raises(ReviewError):
            review(session, second, decision="return", reason="đổi ý", by="x", now=vn(2027, 9, 14))
    with pytest.raises(SubmissionRejected) as caught:
        _submit(url, "phong-vh", vn(2027, 9, 15))
    assert "chấp nhận" in caught.value.errors["_form"]


# ---------------------------------------------------------------- outbox


def test_running_cycles_keep_the_version_they_started_with(url, tmp_path):
    text = (DATA / "district.yaml").read_text(encoding="utf-8")
    changed = tmp_path / "district_v2.yaml"
    changed.write_text(
        text.replace("title: Báo cáo kết quả thực hiện hằng năm", "title: Báo cáo năm (sửa đổi)"),
        encoding="utf-8",
    )
    store_files(url, DATA / "registry.yaml", DATA / "province.yaml", changed)
    with session_scope(url) as session:
        second = activate(session, DISTRICT, now=vn(2027, 3, 1), years=[2027, 2028])
    # 2027 and the sub-plans run under version 1; only 2028 starts under version 2.
    assert (second.plan_version, second.cycles, second.created) == (2, ["2028"], 7)
    assert any("earlier version" in w for w in second.warnings)
    with session_scope(url) as session:
        assert len(obligations(session, cycle="2027")) == 7
        result = sweep(session, DISTRICT, today=dt.date(2028, 9, 4))
        # Both instances are swept: 2028 reports get their 7-day reminder.
        assert len(result.reminders) == 6


def test_monday_sweep_sends_the_consolidating_unit_one_digest_a_week(url):
    monday, tuesday = dt.date(2027, 9, 6), dt.date(2027, 9, 7)
    assert monday.weekday() == 0
    with session_scope(url) as session:
        first = sweep(session, DISTRICT, today=monday)
        again = sweep(session, DISTRICT, today=monday)
        later = sweep(session, DISTRICT, today=tuesday)
        digests = session.scalars(select(OutboxMessage).where(OutboxMessage.kind == "digest")).all()
    assert first.digests and not again.digests and not later.digests
    assert len(digests) == len(first.digests)
    [mail] = digests[:1]
    assert mail.idempotency_key.endswith(":digest:2027-W36")
    assert mail.context["rows"], "the digest lists the units and their state"
