"""engine.due: which consolidations the flows run now (on their due date, early, a follow-up).

The district of tests/data/lifecycle reports by Friday 10/9/2027; its police draft the
consolidation on Monday 13/9 and send it by Monday 27/9 (the rule's 25/9 is a Saturday).
"""

from __future__ import annotations

import dataclasses
import datetime as dt

from engine.consolidation import consolidate
from engine.due import Fed, consolidated_before, due_consolidations, early_consolidations
from engine.lifecycle import IntakeResult, activate, intake, record_submission
from engine.store import session_scope
from tests.lifecycle_factory import (
    CONSOLIDATION,
    DISTRICT,
    GOOD_REPORT,
    PROVINCE,
    lc_settings,
    obligation,
    prepared,
    vn,
)

UNITS = ("ca-huyen", "phong-vh", "phong-kt", "xa-a", "xa-b", "xa-moi")
TARGET = (DISTRICT, "2027", CONSOLIDATION)


def _fed(result: IntakeResult) -> Fed:
    return Fed(
        plan_id=result.plan_id,
        cycle_key=result.cycle_key,
        obligation_id=result.obligation_id,
        consolidation_ids=result.consolidation_ids,
        cycle_complete=result.cycle_complete,
        superseded=result.superseded,
    )


def _send(url: str, unit: str, moment: dt.datetime) -> Fed:
    with session_scope(url) as session:
        submission = record_submission(
            session, obligation(session, unit).id, values=dict(GOOD_REPORT), now=moment
        )
        return _fed(intake(session, submission.id, now=moment))


def test_a_consolidation_is_due_the_first_working_day_after_the_units_deadline(sqlite_url):
    """The units' Friday 10/9/2027 → drafted on Monday 13/9, not over the weekend, nor on
    the upward date (Monday 27/9): the police keep the days between to review and sign."""
    prepared(sqlite_url)
    with session_scope(sqlite_url) as session:
        activate(session, PROVINCE, now=vn(2027, 1, 4))
        activate(session, DISTRICT, now=vn(2027, 1, 4))
        for day in (10, 11, 12):
            assert due_consolidations(session, DISTRICT, dt.date(2027, 9, day)) == []
        for day in (13, 25, 27):
            assert due_consolidations(session, DISTRICT, dt.date(2027, 9, day)) == [
                ("2027", CONSOLIDATION)
            ]


def test_the_last_report_makes_it_due_early_then_later_ones_call_for_a_follow_up(
    sqlite_url, tmp_path
):
    prepared(sqlite_url)
    with session_scope(sqlite_url) as session:
        activate(session, PROVINCE, now=vn(2027, 1, 4))
        activate(session, DISTRICT, now=vn(2027, 1, 4))
    fed = [_send(sqlite_url, unit, vn(2027, 9, day)) for day, unit in enumerate(UNITS, start=4)]
    with session_scope(sqlite_url) as session:
        assert early_consolidations(session, fed[:-1]) == []  # someone has not answered yet
        assert early_consolidations(session, fed) == [TARGET]  # once, though fed twice
        assert early_consolidations(session, [*fed, fed[-1]]) == [TARGET]
        assert consolidated_before(session, fed) == set()
        consolidate(
            session,
            DISTRICT,
            "2027",
            CONSOLIDATION,
            now=vn(2027, 9, 9, 16),
            settings=lc_settings(tmp_path),
        )
        assert early_consolidations(session, fed) == []  # written already
    corrected = _send(sqlite_url, "xa-a", vn(2027, 9, 10, 10))
    with session_scope(sqlite_url) as session:
        assert consolidated_before(session, [corrected]) == {TARGET}
        superseded = dataclasses.replace(corrected, superseded=True)
        assert consolidated_before(session, [superseded]) == set()
