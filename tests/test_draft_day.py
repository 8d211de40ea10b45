"""The day a consolidation is drafted (engine.due.draft_day), on the seed plan's 2023 cycle.

The units report "trước ngày 10/9" (10/9/2023 is a Sunday: due Monday 11/9); Công an
huyện reports upward by 25/9. The draft is written on the first working day after the
units' deadline, Tuesday 12/9, so the district police have until 22/9 to review, not a
single day; a report that comes afterwards, before 25/9, makes a revised draft.
"""

from __future__ import annotations

import datetime as dt

import pytest

from engine.approval_deadlines import StepDeadlines
from engine.calendar import WorkCalendar
from engine.consolidation import consolidate, follow_up
from engine.due import due_consolidations
from engine.lifecycle import activate, intake, record_submission
from engine.loader import load
from engine.states import ReportApproval
from engine.store import session_scope
from engine.store.models import ConsolidatedReport
from tests.lifecycle_factory import (
    DEFINITIONS,
    filled_answer,
    lc_settings,
    obligation,
    obligations,
    outbox,
    store_files,
    vn,
)

SEED = DEFINITIONS / "ha_lang_pccc_2022.yaml"
PARENT = DEFINITIONS / "cao_bang_2720_kh_ubnd.yaml"
REGISTRY = DEFINITIONS / "registry_cao_bang.yaml"
CALENDAR = DEFINITIONS / "calendar_vn.yaml"
PLAN = "ha-lang-pccc-2022"
PARENT_PLAN = "cao-bang-2720-2022"
CONSOLIDATION = "tong-hop-bao-cao-nam"

pytestmark = pytest.mark.skipif(
    not (SEED.exists() and PARENT.exists() and REGISTRY.exists()),
    reason="the seed plan definitions are not in plan_definitions/",
)


@pytest.fixture
def seed_2023(sqlite_url):
    store_files(sqlite_url, REGISTRY, PARENT, SEED, *([CALENDAR] if CALENDAR.exists() else []))
    with session_scope(sqlite_url) as session:
        activate(session, PARENT_PLAN, now=vn(2023, 1, 3), years=[2023])
        activate(session, PLAN, now=vn(2023, 1, 3), years=[2023])
    return sqlite_url


def _answer() -> dict[str, str]:
    """Every field of the seed's yearly report filled."""
    return filled_answer(load([REGISTRY, SEED]).plans[PLAN].definition.template("bao-cao-pccc-nam"))


def _send(url: str, unit: str, moment: dt.datetime) -> None:
    with session_scope(url) as session:
        target = obligation(session, unit, "bao-cao-nam", "2023", PLAN)
        submission = record_submission(session, target.id, values=_answer(), now=moment)
        intake(session, submission.id, now=moment)


def test_the_draft_day_is_the_first_working_day_after_the_units_deadline():
    from engine.due import draft_day

    calendar = WorkCalendar()
    upward = dt.date(2023, 9, 25)
    # the units' Monday 11/9 → Tuesday 12/9; a Friday → the Monday after
    assert draft_day(calendar, upward, [dt.date(2023, 9, 11)]) == dt.date(2023, 9, 12)
    assert draft_day(calendar, upward, [dt.date(2023, 9, 8)]) == dt.date(2023, 9, 11)
    # the latest unit counts (one with an extension, say)
    assert draft_day(calendar, upward, [dt.date(2023, 9, 11), dt.date(2023, 9, 19)]) == (
        dt.date(2023, 9, 20)
    )
    # never after the upward date; on it when the units' deadline is not before it
    assert draft_day(calendar, upward, [dt.date(2023, 9, 22)]) == upward
    assert draft_day(calendar, upward, [dt.date(2023, 9, 25)]) == upward
    assert draft_day(calendar, upward, [dt.date(2023, 9, 28)]) == upward
    assert draft_day(calendar, upward, []) == upward
    # 2/9/2023 (Quốc khánh) falls on a Saturday; the 1/9 and 4/9 holidays are days off
    assert draft_day(calendar, upward, [dt.date(2023, 8, 31)]) == dt.date(2023, 9, 5)


def test_seed_2023_is_drafted_on_12_9_and_a_late_report_revises_the_draft(seed_2023, tmp_path):
    url, conf = seed_2023, lc_settings(tmp_path)
    with session_scope(url) as session:
        units = obligations(session, PLAN, deliverable="bao-cao-nam", cycle="2023")
        [duty] = obligations(session, PLAN, deliverable=CONSOLIDATION, cycle="2023")
        # 10/9/2023 is a Sunday: the units' deadline moves to Monday 11/9 (Điều 148)
        assert {o.due_date for o in units} == {dt.date(2023, 9, 11)}
        assert duty.due_date == dt.date(2023, 9, 25)
        # not while the units may still answer; the day after, not on the upward date
        assert due_consolidations(session, PLAN, dt.date(2023, 9, 11)) == []
        assert due_consolidations(session, PLAN, dt.date(2023, 9, 12)) == [("2023", CONSOLIDATION)]
    _send(url, "ubnd-tt-thanh-nhat", vn(2023, 9, 8, 9))
    with session_scope(url) as session:
        first = consolidate(
            session, PLAN, "2023", CONSOLIDATION, now=vn(2023, 9, 12, 7), settings=conf
        )
        assert first.created and first.revision == 1
        assert due_consolidations(session, PLAN, dt.date(2023, 9, 25)) == []  # done once
        [mail] = outbox(session, "report_draft")
        assert mail.context["steps"] == {
            "review_by": "22/9/2023",
            "sign_by": "22/9/2023",  # 24/9 is a Sunday and 23/9 a Saturday
            "send_by": "25/9/2023",
        }
        draft_context = dict(mail.context)
    from notifications.render import render_parts

    subject, body, _html = render_parts("report_draft", draft_context)
    assert subject.startswith("Hạn duyệt 22/9/2023: dự thảo báo cáo tổng hợp"), subject
    assert "duyệt và cấp số: chậm nhất ngày 22/9/2023" in body
    assert "Gửi cấp trên: chậm nhất ngày 25/9/2023" in body
    assert "lập lại" not in subject + body

    # xã Thị Hoa reports on 15/9, after the draft: the draft is revised (before 25/9)
    _send(url, "ubnd-xa-thi-hoa", vn(2023, 9, 15, 10))
    with session_scope(url) as session:
        done = follow_up(
            session, PLAN, "2023", CONSOLIDATION, now=vn(2023, 9, 15, 11), settings=conf
        )
        assert done.automatic and done.result is not None and done.result.revision == 2
        reports = session.query(ConsolidatedReport).order_by(ConsolidatedReport.revision).all()
        assert [r.approval for r in reports] == [ReportApproval.SUPERSEDED, ReportApproval.DRAFT]
        mails = outbox(session, "report_draft")
        assert [m.idempotency_key.rsplit(":", 1)[-1] for m in mails] == ["r1", "r2"]
        revised = dict(mails[1].context)
    assert revised["steps"]["review_by"] == "22/9/2023"
    subject, body, html = render_parts("report_draft", revised)
    assert subject == "Hạn duyệt 22/9/2023: dự thảo báo cáo tổng hợp năm 2023, lập lại lần 2"
    assert "Hệ thống đã lập lại dự thảo" in body and "lần 2" in body
    assert "Dự thảo lần 1 không còn dùng" in body
    assert "lập lại dự thảo</strong>" in html


def test_a_step_on_a_day_off_is_due_the_working_day_before_never_before_the_draft():
    calendar = WorkCalendar()
    upward = dt.date(2023, 9, 25)  # Monday
    steps = StepDeadlines.of(upward, dt.date(2023, 9, 12), calendar)
    assert steps.review_by == dt.date(2023, 9, 22)  # Friday
    assert steps.sign_by == dt.date(2023, 9, 22)  # not Sunday 24/9
    assert steps.escalate_from == dt.date(2023, 9, 23)  # its mail waits for Monday
    without = StepDeadlines.of(upward, dt.date(2023, 9, 12))
    assert without.sign_by == dt.date(2023, 9, 24)
    # drafted on Friday 22/9: nothing is due before it
    late = StepDeadlines.of(upward, dt.date(2023, 9, 22), calendar)
    assert (late.review_by, late.sign_by) == (dt.date(2023, 9, 22), dt.date(2023, 9, 22))
    # drafted on Saturday 23/9 (by hand): signing is due that day, not on Friday
    weekend = StepDeadlines.of(upward, dt.date(2023, 9, 23), calendar)
    assert weekend.sign_by == dt.date(2023, 9, 23)
