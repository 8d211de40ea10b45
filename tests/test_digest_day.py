"""When the consolidating unit's weekly digest is made (found in the demo's mailbox):
queued at 07:00 on Monday 4/9/2023, a day off, it waited for Tuesday's working hours and
then said "2/32 đơn vị đã gửi, tính đến Thứ Hai, 4/9/2023" to a reader who by then had
twelve reports. The digest is made on the week's first working day, so it counts what
was sent up to the morning it arrives."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select

from engine.lifecycle import activate, intake, record_submission, sweep
from engine.store import session_scope
from engine.store.models import OutboxMessage
from tests.lifecycle_factory import DEFINITIONS, filled_answer, obligations, store_files, vn
from tests.test_mail_subjects import FILES, PARENT, PLAN, _seed_template


@pytest.fixture()
def seed_url(tmp_path):
    url = f"sqlite:///{tmp_path / 'kehoach.sqlite'}"
    store_files(url, *(DEFINITIONS / name for name in (*FILES, "calendar_vn.yaml")))
    with session_scope(url) as session:
        activate(session, PARENT, now=vn(2023, 1, 3), years=[2023])
        activate(session, PLAN, now=vn(2023, 1, 3), years=[2023])
    return url


def _digests(url: str) -> list[OutboxMessage]:
    with session_scope(url) as session:
        rows = session.scalars(select(OutboxMessage).where(OutboxMessage.kind == "digest")).all()
        session.expunge_all()
    return list(rows)


def test_after_a_monday_off_the_digest_is_made_on_tuesday_with_what_came_in(seed_url):
    holiday, tuesday = dt.date(2023, 9, 4), dt.date(2023, 9, 5)  # 4/9/2023: nghỉ bù 2/9
    with session_scope(seed_url) as session:
        by_unit = {o.unit_id: o for o in obligations(session, PLAN, deliverable="bao-cao-nam")}
        sent = record_submission(
            session,
            by_unit["phong-vhtt-ha-lang"].id,
            values=filled_answer(_seed_template()),
            now=vn(2023, 9, 4, 9),  # reported on the day off
        )
        intake(session, sent.id, now=vn(2023, 9, 4, 9))
    with session_scope(seed_url) as session:
        assert sweep(session, PLAN, today=holiday).digests == []
    with session_scope(seed_url) as session:
        made = sweep(session, PLAN, today=tuesday).digests
    with session_scope(seed_url) as session:
        again = sweep(session, PLAN, today=dt.date(2023, 9, 6)).digests
    [digest] = _digests(seed_url)
    assert made and not again
    assert digest.idempotency_key.endswith(":digest:2023-W36")
    assert digest.context["today"]["short"] == "5/9/2023"
    assert digest.context["done_count"] == 1
    row = next(r for r in digest.context["rows"] if r["unit_name"].startswith("Phòng Văn hóa"))
    assert row["done"]


def test_an_ordinary_monday_makes_the_digest_and_a_weekend_day_never(seed_url):
    with session_scope(seed_url) as session:
        assert sweep(session, PLAN, today=dt.date(2023, 9, 10)).digests == []  # Sunday
        assert sweep(session, PLAN, today=dt.date(2023, 9, 11)).digests  # Monday


def test_no_digest_months_before_the_units_deadline(seed_url):
    """The demo's first digest came on 30/1/2023: "Hạn 11/9: 0/32 đơn vị đã gửi", to come
    again every Monday until September. It starts in the week the units are first
    reminded (7 days before 11/9: the week of 4/9)."""
    with session_scope(seed_url) as session:
        assert sweep(session, PLAN, today=dt.date(2023, 1, 30)).digests == []
        assert sweep(session, PLAN, today=dt.date(2023, 8, 28)).digests == []  # 14 days
        assert sweep(session, PLAN, today=dt.date(2023, 9, 5)).digests  # Tuesday after 4/9
        assert sweep(session, PLAN, today=dt.date(2023, 9, 18)).digests  # one overdue


def test_a_simulation_sweeps_on_the_digest_mornings(seed_url):
    """The simulation sweeps only when something is due: without these days the demo's
    district police had no digest in the week of the deadline (11/9), and none on
    Tuesday 5/9 once the holiday Monday made none."""
    from workflows.simulation_days import _digest_days, sweep_days

    digest_days = [day for day, plan in _digest_days(seed_url, [PLAN]) if plan == PLAN]
    wanted = [dt.date(2023, 9, 5), dt.date(2023, 9, 11), dt.date(2023, 9, 18)]
    assert digest_days == [*wanted, dt.date(2023, 9, 25)]
    assert set(digest_days) <= {day for day, _ in sweep_days(seed_url, [PLAN])}
