"""An answer without a file is opened and stored in ONE write transaction (portal.posting),
on SQLite and on PostgreSQL: one pooled connection, its obligation's row locked first,
nothing read twice; concurrent answers through two portals (two worker processes) still
get versions 1..n, a replay racing its first answer is stored once; refusals are audited
after the transaction; a form with files keeps its two steps (no upload is read while a
row is locked).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from sqlalchemy import event, select
from starlette.datastructures import FormData

from engine import config
from engine.store.db import connect, session_scope
from engine.store.models import AuditEvent, Obligation, Submission
from portal.link import Posted
from portal.posting import take_answer
from portal.writes import write_engine
from tests.test_portal import REPORT, client_for, open_form, pdf_upload, post_report
from tests.test_portal_support import make_world

# the link's statement (portal.access), as the SQL log shows its start
LINK_SELECT = "SELECT obligations.id, obligations.cycle_id, obligations.unit_id, obligations.deliverable_id, obligations.kind"  # noqa: E501

pytestmark = pytest.mark.filterwarnings("ignore:Using `httpx` with `starlette.testclient`")


@pytest.fixture
def world(tmp_path, monkeypatch, db_url):  # type: ignore[no-untyped-def]
    made = make_world(tmp_path, monkeypatch, db_url=db_url)
    yield made
    connect(db_url).dispose()
    write_engine(db_url).dispose()
    config.settings.cache_clear()


@contextmanager
def traffic(url: str) -> Iterator[dict[str, list[str]]]:
    """Connections checked out of the portal's pools and the SQL sent, in the block."""
    seen: dict[str, list[str]] = {"checkouts": [], "sql": []}
    hooks = []
    for engine in {id(e): e for e in (connect(url), write_engine(url))}.values():

        def checkout(dbapi, record, proxy):  # type: ignore[no-untyped-def]
            seen["checkouts"].append("checkout")

        def sql(conn, cursor, statement, params, context, executemany):  # type: ignore[no-untyped-def]
            seen["sql"].append(" ".join(statement.split()))

        event.listen(engine, "checkout", checkout)
        event.listen(engine, "before_cursor_execute", sql)
        hooks += [(engine, "checkout", checkout), (engine, "before_cursor_execute", sql)]
    try:
        yield seen
    finally:
        for engine, name, hook in hooks:
            event.remove(engine, name, hook)


def _answer(state, token: str, nonce: str, figure: int, field: str | None = None):  # type: ignore[no-untyped-def]
    form = FormData(
        [("csrf", field or state.form_token(token, nonce))]
        + [(k, v) for k, v in REPORT.items() if k != "f-so-vu-chay"]
        + [("f-so-vu-chay", str(figure))]
    )
    return take_answer(state, Posted(state, token, form, "127.0.0.1", nonce))


def test_an_answer_without_a_file_is_one_transaction_on_one_connection(world):
    token = world.token()
    with client_for(world, handoff=lambda _id: None) as client:
        csrf = open_form(client, token)
        for version in (1, 2):
            with traffic(world.db_url) as seen:
                response = post_report(
                    client, token, csrf, {"f-so-vu-chay": str(version)}, follow_redirects=False
                )
            assert response.status_code == 303, response.text
            assert f"/receipt/{version}" in response.headers["location"]
            assert seen["checkouts"] == ["checkout"], seen
            first = next(s for s in seen["sql"] if s.startswith("SELECT"))
            assert first.startswith(LINK_SELECT), seen["sql"]
            if world.db_url.startswith("postgresql"):
                assert first.endswith("FOR UPDATE OF obligations"), first
            # the obligation and its deciding versions are read once, not again to store
            reads = [s for s in seen["sql"] if s.startswith("SELECT obligations.")]
            versions = [s for s in seen["sql"] if "max(submissions.version)" in s]
            assert len(reads) == 1 and len(versions) == 1, seen["sql"]


def test_an_answer_with_a_file_is_read_first_and_stored_in_its_own_transaction(world):
    token = world.token()
    with client_for(world, handoff=lambda _id: None) as client:
        csrf = open_form(client, token)
        with traffic(world.db_url) as seen:
            response = post_report(client, token, csrf, files=pdf_upload(), follow_redirects=False)
        assert response.status_code == 303, response.text
    # the link in a read session, then the files placed and the answer stored
    assert len(seen["checkouts"]) == 2, seen
    link = [s for s in seen["sql"] if s.startswith(LINK_SELECT)]
    assert len(link) == 1 and "FOR UPDATE" not in link[0], seen["sql"]
    with session_scope(world.db_url) as session:
        [submission] = session.scalars(select(Submission)).all()
        assert submission.version == 1 and len(submission.file_ids) == 1


def test_concurrent_answers_through_two_portals_get_versions_one_to_n(world):
    """Two portals (as two worker processes: no lock shared in memory), eight answers
    with other figures at once: the row lock (SQLite: its write lock) orders them."""
    states = [world.app().state.portal, world.app().state.portal]
    token, nonce = world.token(), "n" * 32
    barrier = threading.Barrier(8)
    results: list[int | None] = []
    errors: list[BaseException] = []

    def answer(i: int) -> None:
        try:
            barrier.wait()
            results.append(_answer(states[i % 2], token, nonce, i)[1])
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=answer, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == [] and len(results) == 8 and None not in results
    with session_scope(world.db_url) as session:
        versions = session.scalars(select(Submission.version).order_by(Submission.version)).all()
        recorded = session.scalars(
            select(AuditEvent.action).where(AuditEvent.action == "portal.submit")
        ).all()
    assert versions == list(range(1, 9))
    assert len(recorded) == 8


def test_a_replay_racing_its_first_answer_is_stored_once(world):
    states = [world.app().state.portal, world.app().state.portal]
    token, nonce = world.token(), "n" * 32
    field = states[0].form_token(token, nonce)
    barrier = threading.Barrier(4)
    results: list[tuple[str, int | None]] = []

    def answer(i: int) -> None:
        barrier.wait()
        response, stored = _answer(states[i % 2], token, nonce, 5, field)
        results.append((response.headers["location"], stored))

    threads = [threading.Thread(target=answer, args=(i,)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert {location for location, _ in results} == {f"/o/{token}/receipt/1#da-nhan"}
    assert len([stored for _, stored in results if stored is not None]) == 1
    assert world.count(Submission) == 1
    # the three replays are audited, after the transaction that found them
    assert world.count(AuditEvent, action="portal.submit_replayed") == 3


def test_refusals_are_audited_after_the_transaction(world):
    """A revoked link and a refused answer: nothing stored, each refusal's audit row
    written (in its own transaction: inside the answer's, SQLite's write lock would
    make it wait for itself)."""
    state = world.app().state.portal
    token, nonce = world.token(), "n" * 32
    obligation_id = world.obligation_id()
    # an invalid figure: the form again, its rejection audited
    form = FormData(
        [("csrf", state.form_token(token, nonce))]
        + [(k, v) for k, v in REPORT.items() if k != "f-so-vu-chay"]
        + [("f-so-vu-chay", "mười hai")]
    )
    response, stored = take_answer(state, Posted(state, token, form, "127.0.0.1", nonce))
    assert stored is None and response.status_code == 422, response.status_code
    assert world.count(AuditEvent, action="portal.submit_rejected") == 1
    # a revoked link (its token_version bumped): the refusal page, audited
    with session_scope(world.db_url) as session:
        session.get(Obligation, obligation_id).token_version += 1
    from portal.link import Answered

    with pytest.raises(Answered) as refused:
        _answer(state, token, nonce, 1)
    assert refused.value.response.status_code == 410
    assert world.count(AuditEvent, action="portal.submit_refused_link") == 1
    assert world.count(Submission) == 0
