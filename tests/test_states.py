"""engine.states and engine.transitions: one place for every state, illegal moves refused."""

from __future__ import annotations

import pytest
from sqlalchemy import select, text

from engine.lifecycle import activate, intake, record_submission, review
from engine.states import (
    OBLIGATION_DONE,
    CycleStatus,
    IllegalTransition,
    InstanceStatus,
    ObligationStatus,
    OutboxStatus,
    ReviewState,
    State,
)
from engine.store import session_scope
from engine.store.models import AuditEvent, Cycle, Obligation
from engine.transitions import move_cycle, move_obligation, move_review
from tests.lifecycle_factory import DISTRICT, GOOD_REPORT, PROVINCE, obligation, prepared, vn

NOW = vn(2027, 1, 4, 9)


@pytest.fixture
def url(sqlite_url: str) -> str:
    prepared(sqlite_url)
    with session_scope(sqlite_url) as session:
        activate(session, PROVINCE, now=NOW)
        activate(session, DISTRICT, now=NOW)
    return sqlite_url


def test_every_value_has_a_vietnamese_label_and_the_predicates_agree() -> None:
    for enum in (ObligationStatus, ReviewState, CycleStatus, InstanceStatus, OutboxStatus, State):
        labels = [member.label for member in enum]
        assert all(labels) and len(set(labels)) == len(labels), enum
    assert {s for s in ObligationStatus if s.done} == OBLIGATION_DONE
    assert [s for s in ObligationStatus if s.open] == [ObligationStatus.PENDING]
    assert ReviewState.ACCEPTED.decided and not ReviewState.VALIDATED.decided
    assert CycleStatus.CLOSED.terminal and not CycleStatus.CLOSED.open
    assert CycleStatus.CONSOLIDATED.open
    assert OutboxStatus.SENT.terminal and not OutboxStatus.SENDING.terminal


def test_columns_read_back_as_members_and_store_the_plain_values(url: str) -> None:
    with session_scope(url) as session:
        row = session.scalars(select(Obligation)).first()
        assert row is not None and row.status is ObligationStatus.PENDING
        stored = session.execute(text("SELECT status FROM obligations LIMIT 1")).scalar()
        assert stored == "pending" and type(stored) is str
        cycle = session.scalars(select(Cycle)).first()
        assert cycle is not None and cycle.status is CycleStatus.OPEN


def test_a_closed_cycle_does_not_go_back_to_open_without_reopen(url: str) -> None:
    with session_scope(url) as session:
        cycle = session.scalars(select(Cycle)).first()
        assert cycle is not None
        move_cycle(session, cycle, CycleStatus.CLOSED, at=NOW, action="cycle.closed", plan_id="p")
        with pytest.raises(IllegalTransition, match="closed → open"):
            move_cycle(session, cycle, CycleStatus.OPEN, at=NOW, action="x", plan_id="p")
        assert cycle.status is CycleStatus.CLOSED
        move_cycle(
            session, cycle, CycleStatus.OPEN, reopen=True, at=NOW, action="cycle.reopened",
            plan_id="p",
        )  # fmt: skip
        assert cycle.status is CycleStatus.OPEN
        actions = session.scalars(
            select(AuditEvent.action).where(
                AuditEvent.action.in_(["cycle.closed", "cycle.reopened", "x"])
            )
        ).all()
        # the refused move wrote nothing
        assert actions == ["cycle.closed", "cycle.reopened"]
        with pytest.raises(IllegalTransition):  # reopen only leaves 'closed'
            move_cycle(
                session, cycle, CycleStatus.CONSOLIDATED, reopen=True, at=NOW, action="x",
                plan_id="p",
            )  # fmt: skip


def test_an_accepted_or_waived_obligation_does_not_move_and_a_decision_stays(url: str) -> None:
    with session_scope(url) as session:
        duty = obligation(session, "xa-a")
        submission = record_submission(session, duty.id, values=GOOD_REPORT, now=NOW)
        intake(session, submission.id, now=NOW)
        review(session, submission.id, decision="accept", by="Công an huyện", now=NOW)
        assert duty.status is ObligationStatus.ACCEPTED
        for target in (ObligationStatus.PENDING, ObligationStatus.SUBMITTED):
            with pytest.raises(IllegalTransition, match="obligation: accepted"):
                move_obligation(session, duty, target, at=NOW, action="x", plan_id=DISTRICT)
        with pytest.raises(IllegalTransition, match="submission: accepted → returned"):
            move_review(session, submission, ReviewState.RETURNED, at=NOW, action="x", plan_id=None)
        with pytest.raises(IllegalTransition, match="submission: accepted → received"):
            move_review(session, submission, ReviewState.RECEIVED, at=NOW, action="x", plan_id=None)
        assert submission.review_state is ReviewState.ACCEPTED


def test_a_move_writes_its_audit_row_in_the_same_transaction(url: str) -> None:
    with session_scope(url) as session:
        duty = obligation(session, "xa-b")
        move_obligation(
            session, duty, ObligationStatus.WAIVED, at=NOW, action="obligation.merged",
            plan_id=DISTRICT, into=42,
        )  # fmt: skip
        session.flush()
        [row] = session.scalars(
            select(AuditEvent).where(AuditEvent.action == "obligation.merged")
        ).all()
        assert (row.obligation_id, row.data, row.plan_id) == (duty.id, {"into": 42}, DISTRICT)
        session.rollback()
    with session_scope(url) as session:
        assert obligation(session, "xa-b").status is ObligationStatus.PENDING
        assert not session.scalars(
            select(AuditEvent).where(AuditEvent.action == "obligation.merged")
        ).all()
