"""The consolidating unit's weekly digest goes on after the draft (issue 14): the seed's
2023 cycle is drafted on Tuesday 12/9; before, the district police had no digest on
Monday 18/9 although communes still had not reported. It now names them and says the
report's real state (drafted, in approval, sent upward: late reports then go into a
supplementary report), and stops once nothing is missing or the cycle is closed."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select

from engine.closing import close_cycle
from engine.consolidation import consolidate
from engine.lifecycle import activate, intake, record_submission, sweep
from engine.states import ReportApproval
from engine.store import session_scope
from engine.store.models import ConsolidatedReport, OutboxMessage
from notifications.render import render_parts
from tests.lifecycle_factory import (
    DEFINITIONS,
    filled_answer,
    lc_settings,
    obligations,
    store_files,
    vn,
)
from tests.test_mail_subjects import FILES, PARENT, PLAN, _seed_template

CONSOLIDATION = "tong-hop-bao-cao-nam"
SILENT = ("ubnd-xa-thi-hoa", "ubnd-xa-minh-long", "ubnd-xa-quang-long")
MONDAY = dt.date(2023, 9, 18)  # the Monday after the draft of 12/9


@pytest.fixture()
def drafted(tmp_path):
    """The seed's 2023 cycle: every unit but three communes answered by 8/9; the
    consolidated report drafted on 12/9, as the sweep's draft day does."""
    url = f"sqlite:///{tmp_path / 'kehoach.sqlite'}"
    store_files(url, *(DEFINITIONS / name for name in (*FILES, "calendar_vn.yaml")))
    with session_scope(url) as session:
        activate(session, PARENT, now=vn(2023, 1, 3), years=[2023])
        activate(session, PLAN, now=vn(2023, 1, 3), years=[2023])
    with session_scope(url) as session:
        units = obligations(session, PLAN, deliverable="bao-cao-nam", cycle="2023")
        assert set(SILENT) <= {o.unit_id for o in units}
        answer = filled_answer(_seed_template())
        for o in units:
            if o.unit_id not in SILENT:
                sent = record_submission(session, o.id, values=answer, now=vn(2023, 9, 8))
                intake(session, sent.id, now=vn(2023, 9, 8))
    conf = lc_settings(tmp_path)
    with session_scope(url) as session:
        consolidate(session, PLAN, "2023", CONSOLIDATION, now=vn(2023, 9, 12, 7), settings=conf)
    return url, conf


def _digests(url: str) -> list[OutboxMessage]:
    with session_scope(url) as session:
        rows = session.scalars(
            select(OutboxMessage).where(OutboxMessage.kind == "digest").order_by(OutboxMessage.id)
        ).all()
        session.expunge_all()
    return list(rows)


def test_the_monday_after_the_draft_names_the_missing_communes_and_the_draft(drafted):
    url, _conf = drafted
    with session_scope(url) as session:
        made = sweep(session, PLAN, today=MONDAY).digests
        again = sweep(session, PLAN, today=dt.date(2023, 9, 19)).digests
    assert made and not again  # one a week
    [digest] = _digests(url)
    assert digest.idempotency_key.endswith(":digest:2023-W38")
    subject, text, html = render_parts("digest", digest.context)
    assert "Dự thảo báo cáo tổng hợp đã lập ngày 12/9/2023, chờ duyệt" in text
    assert "còn 3 đơn vị chưa gửi báo cáo" in text
    assert "lập lại dự thảo (lần 2)" in text  # 18/9 is before the upward date 25/9
    assert "dự thảo tổng hợp lập 12/9/2023" in subject
    assert "Dự thảo báo cáo tổng hợp đã lập ngày 12/9/2023" in html
    missing = [r["unit_name"] for r in digest.context["rows"] if not r["done"]]
    assert len(missing) == 3
    for name in missing:
        assert name.startswith("Ủy ban nhân dân xã") and name in text


def test_after_the_report_is_sent_late_reports_go_into_a_supplement(drafted):
    from tests.approval_support import approve_sign_send

    url, conf = drafted
    with session_scope(url) as session:
        report = session.scalar(select(ConsolidatedReport))
        approve_sign_send(session, report.id, conf, vn(2023, 9, 22, 10), final_pdf=False)
    with session_scope(url) as session:
        assert session.scalar(select(ConsolidatedReport.approval)) is ReportApproval.SENT
        assert sweep(session, PLAN, today=dt.date(2023, 10, 2)).digests  # after 25/9
    [digest] = _digests(url)
    subject, text, _html = render_parts("digest", digest.context)
    assert "đã gửi cấp trên ngày 22/9/2023; còn 3 đơn vị chưa gửi báo cáo" in text
    assert "không đưa vào báo cáo ngày 22/9/2023 đã gửi" in text
    assert "báo cáo bổ sung" in text and "hạn gửi cấp trên (25/9/2023) đã qua" in text
    assert "đã gửi báo cáo tổng hợp 22/9/2023" in subject


def test_no_digest_once_every_unit_has_answered(drafted):
    url, _conf = drafted
    with session_scope(url) as session:
        answer = filled_answer(_seed_template())
        for o in obligations(session, PLAN, deliverable="bao-cao-nam", cycle="2023"):
            if o.unit_id in SILENT:
                sent = record_submission(session, o.id, values=answer, now=vn(2023, 9, 14))
                intake(session, sent.id, now=vn(2023, 9, 14))
    with session_scope(url) as session:
        assert sweep(session, PLAN, today=MONDAY).digests == []
    assert _digests(url) == []


def test_no_digest_for_a_closed_cycle(drafted):
    url, _conf = drafted
    with session_scope(url) as session:
        [duty] = obligations(session, PLAN, deliverable=CONSOLIDATION, cycle="2023")
        close_cycle(session, duty.cycle_id, now=vn(2023, 9, 15), by="admin")
    with session_scope(url) as session:
        assert sweep(session, PLAN, today=MONDAY).digests == []
    assert _digests(url) == []


def test_a_simulation_sweeps_on_the_mondays_after_the_upward_date_while_units_owe(drafted):
    """The simulation sweeps only on the days something is due: while communes still
    owe their reports, the Mondays after 25/9 up to the cycle's close are such days."""
    from workflows.simulation_days import _digest_days

    url, _conf = drafted
    with session_scope(url) as session:  # the sweep flow's first look stores it
        from engine.closing import ensure_closes_on
        from engine.store.models import Cycle

        [duty] = obligations(session, PLAN, deliverable=CONSOLIDATION, cycle="2023")
        cycle = session.get(Cycle, duty.cycle_id)
        ensure_closes_on(session, cycle, now=vn(2023, 9, 18, 7))
        assert cycle.closes_on == dt.date(2023, 11, 24)
    days = [day for day, plan in _digest_days(url, [PLAN]) if plan == PLAN]
    assert dt.date(2023, 10, 2) in days and dt.date(2023, 11, 20) in days
    assert max(days) <= dt.date(2023, 11, 24)  # 25/9 + 60 days: the cycle closes
