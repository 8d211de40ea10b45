"""What keeps a portal request cheap: a few statements, whatever the history.

The portal serves every GET and POST with a handful of small statements (see
benchmarks/bench_portal.py for the CPU they cost). These tests pin the count, check
that recording a version reads only the versions that decide a refusal (not the whole
history, which grows with every resubmission) and that the submission
``record_submission`` INSERTs directly is the same persistent object as before.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from sqlalchemy import event, inspect, select, update

from engine.lifecycle import deciding_versions, record_submission, submission_refusal
from engine.store.db import connect, session_scope
from engine.store.models import AuditEvent, Obligation, Submission
from portal import audit
from portal.writes import write_engine
from tests.test_portal_support import UNIT, vn, world_fixture

pytestmark = pytest.mark.filterwarnings("ignore:Using `httpx` with `starlette.testclient`")

REPORT = {
    "so-vu-chay": "2",
    "ty-le-tap-huan": "95,5",
    "dan-phong": "Đã rà soát",
    "ngay-ra-soat": "2027-08-30",
    "ket-qua": "Tuyên truyền tại 12 thôn.",
}


@pytest.fixture
def world(tmp_path, monkeypatch):  # type: ignore[no-untyped-def]
    yield from world_fixture(tmp_path, monkeypatch)


@contextmanager
def statements(url: str) -> Iterator[dict[str, list[str]]]:
    """SQL sent by the portal's read engine and its write engine, while in the block."""
    seen: dict[str, list[str]] = {"read": [], "write": []}
    listeners = []
    for name, engine in (("read", connect(url)), ("write", write_engine(url))):

        def listener(conn, cursor, sql, params, context, executemany, name=name):  # type: ignore[no-untyped-def]
            seen[name].append(" ".join(sql.split())[:80])

        event.listen(engine, "before_cursor_execute", listener)
        listeners.append((engine, listener))
    try:
        yield seen
    finally:
        for engine, listener in listeners:
            event.remove(engine, "before_cursor_execute", listener)


def _client(world):  # type: ignore[no-untyped-def]
    from starlette.testclient import TestClient

    # No intake here: only the request's own statements are counted.
    return TestClient(world.app(handoff=lambda _id: None))


def _csrf(html: str) -> str:
    import re

    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found
    return found.group(1)


def test_a_page_and_an_answer_take_a_few_statements_whatever_the_history(world):
    token = world.token()
    form = {f"f-{k}": v for k, v in REPORT.items()}
    with _client(world) as client:
        csrf = _csrf(client.get(f"/o/{token}").text)
        for version in range(1, 7):
            with statements(world.db_url) as seen:
                # other figures each time: the same answer again would be a replay
                answer = {**form, "f-so-vu-chay": str(version), "csrf": csrf}
                response = client.post(f"/o/{token}/submit", data=answer, follow_redirects=False)
            assert response.status_code == 303, response.text
            assert response.headers["location"].startswith(f"/o/{token}/receipt/{version}")
            # one write transaction (portal.posting): BEGIN, the link with its row, the
            # versions that decide, whether this answer was stored before (its
            # idempotency key), INSERT the submission, claim the audit chain's head,
            # INSERT both audit rows (one executemany), the head's new hash
            assert seen["read"] == [], seen
            assert [s for s in seen["write"] if s.startswith("BEGIN")] == ["BEGIN IMMEDIATE"]
            assert len(seen["write"]) == 8, seen
        with statements(world.db_url) as seen:
            page = client.get(f"/o/{token}")
        assert page.status_code == 200 and "Lần 6" in page.text and "Lần 1" in page.text
        assert len(seen["read"]) == 3 and seen["write"] == [], seen
        with statements(world.db_url) as seen:
            receipt = client.get(f"/o/{token}/receipt/4")
        assert receipt.status_code == 200 and "Lần 4" in receipt.text
        assert len(seen["read"]) == 3 and seen["write"] == [], seen
    with session_scope(world.db_url) as session:
        actions = session.scalars(
            select(AuditEvent.action)
            .where(AuditEvent.action.in_(["submission.recorded", "portal.submit"]))
            .order_by(AuditEvent.id)
        ).all()
    assert actions == ["submission.recorded", "portal.submit"] * 6


# review states of versions 1..n, the obligation's status, and when the next one is sent
HISTORIES = [
    ([], "pending", vn(2027, 9, 1)),
    ([], "pending", vn(2027, 9, 30)),
    (["received"], "pending", vn(2027, 9, 1)),
    (["validated", "validated"], "submitted", vn(2027, 9, 30)),
    # a return puts the obligation back to pending (engine.lifecycle.review)
    (["validated", "returned"], "pending", vn(2027, 9, 30)),
    (["returned", "validated"], "submitted", vn(2027, 9, 30)),
    (["returned", "accepted"], "accepted", vn(2027, 9, 1)),
    (["accepted", "returned", "validated"], "submitted", vn(2027, 9, 1)),
    (["validated", "validated", "validated"], "waived", vn(2027, 9, 1)),
]


@pytest.mark.parametrize(("states", "status", "when"), HISTORIES)
def test_the_deciding_versions_refuse_as_the_whole_history_does(world, states, status, when):
    obligation_id = world.obligation_id()
    with session_scope(world.db_url) as session:
        for _ in states:
            record_submission(session, obligation_id, values=REPORT, now=vn(2027, 9, 1))
        for version, state in enumerate(states, start=1):
            session.execute(
                update(Submission)
                .where(Submission.obligation_id == obligation_id, Submission.version == version)
                .values(review_state=state)
            )
        session.execute(
            update(Obligation).where(Obligation.id == obligation_id).values(status=status)
        )
    with session_scope(world.db_url) as session:
        obligation = session.get(Obligation, obligation_id)
        assert obligation is not None
        history = session.scalars(
            select(Submission).where(Submission.obligation_id == obligation_id)
        ).all()
        deciding = deciding_versions(session, obligation_id)
        assert len(deciding) <= 2 + states.count("accepted")
        if states:
            assert max(row.version for row in deciding) == len(states)
        expected = submission_refusal(obligation, history, when)
        assert submission_refusal(obligation, deciding, when) == expected
        if expected is None:
            submission = record_submission(session, obligation_id, values=REPORT, now=when)
            assert submission.version == len(states) + 1
        else:
            from engine.lifecycle import SubmissionRejected

            with pytest.raises(SubmissionRejected):
                record_submission(session, obligation_id, values=REPORT, now=when)


def test_the_recorded_submission_is_a_persistent_object_loaded_in_full(world):
    obligation_id = world.obligation_id()
    with session_scope(world.db_url) as session:
        submission = record_submission(
            session, obligation_id, values=REPORT, now=vn(2027, 9, 1), actor=f"unit:{UNIT}"
        )
        state = inspect(submission)
        # every column loaded (no SELECT when read); the relationship loads on use
        assert state.persistent and not state.expired_attributes
        assert state.unloaded == {"obligation"}
        assert submission.obligation.id == obligation_id
        assert session.get(Submission, submission.id) is submission
        assert submission.values["so-vu-chay"] == 2 and submission.review_reason is None
        audit.record(session, "portal.submit", at=vn(2027, 9, 1), actor="unit:x", remote_addr=None)
        submission.review_state = "validated"  # a change after recording is flushed as usual
        submission_id = submission.id
    with session_scope(world.db_url) as session:
        stored = session.get(Submission, submission_id)
        assert stored is not None and stored.review_state == "validated"
        assert stored.version == 1 and stored.on_time is True and stored.file_ids == []
        rows = session.execute(
            select(AuditEvent.action, AuditEvent.data)
            .where(AuditEvent.action.in_(["submission.recorded", "portal.submit"]))
            .order_by(AuditEvent.id)
        )
        [(first, data), (second, _)] = rows.all()
        assert first == "submission.recorded" and data["submission_id"] == submission_id
        assert second == "portal.submit"
