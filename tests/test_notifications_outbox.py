"""The outbox: idempotent, transactional enqueue and the context built from the DB."""

from __future__ import annotations

import datetime as dt
import hashlib
import threading
import time

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import sessionmaker

from engine.links import read_token
from engine.outbox import Enqueued, enqueue, enqueue_for_obligation, message_id_for
from engine.store.db import connect, migrate, session_scope
from engine.store.models import Obligation, OutboxMessage
from notifications.render import build_message, render_parts
from tests.notifications_factory import (
    CAH_EMAIL,
    DUE_REASON,
    FOCAL_EMAIL,
    HEAD_EMAIL,
    UNIT_EMAIL,
    add_obligation,
    make_settings,
    make_world,
)

T0 = dt.datetime(2028, 8, 1, 1, 0, tzinfo=dt.UTC)  # 08:00 in Hà Nội


@pytest.fixture
def conf():
    return make_settings()


def _count(url: str) -> int:
    with session_scope(url) as session:
        return session.scalar(select(func.count(OutboxMessage.id)))


def _world(url: str, **kwargs) -> int:
    migrate(url)
    with session_scope(url) as session:
        return make_world(session, **kwargs).obligation.id


def test_same_key_twice_gives_one_row(db_url, conf):
    obligation_id = _world(db_url)
    with session_scope(db_url) as session:
        obligation = session.get(Obligation, obligation_id)
        first = enqueue_for_obligation(session, obligation, "reminder", "7", now=T0, settings=conf)
        again = enqueue_for_obligation(session, obligation, "reminder", "7", now=T0, settings=conf)
        assert again.id == first.id
    # ... and in a later transaction, e.g. a sweep flow re-run after a crash.
    with session_scope(db_url) as session:
        obligation = session.get(Obligation, obligation_id)
        later = enqueue_for_obligation(session, obligation, "reminder", "7", now=T0, settings=conf)
        other_step = enqueue_for_obligation(
            session, obligation, "reminder", "3", now=T0, settings=conf
        )
        assert later.id == first.id
        assert other_step.id != first.id
    assert _count(db_url) == 2


def test_rolled_back_transaction_leaves_no_email(db_url, conf):
    """The email is part of the caller's transaction: no state change, no email."""
    obligation_id = _world(db_url)
    with pytest.raises(RuntimeError), session_scope(db_url) as session:
        obligation = session.get(Obligation, obligation_id)
        obligation.overdue = True
        enqueue_for_obligation(session, obligation, "overdue", now=T0, settings=conf)
        raise RuntimeError("the flow failed after enqueueing")
    assert _count(db_url) == 0
    with session_scope(db_url) as session:
        assert session.get(Obligation, obligation_id).overdue is False


def test_enqueue_says_whether_it_inserted(db_url, conf):
    """A new key: inserted, the row as stored; the same key again (same transaction or a
    later one): not inserted, the first row, unchanged."""
    migrate(db_url)

    def put(session, to: str) -> Enqueued:
        return enqueue(
            session,
            kind="digest",
            idempotency_key="said",
            to_addrs=[to],
            context={"n": 1},
            now=T0,
            settings=conf,
        )

    with session_scope(db_url) as session:
        row, inserted = put(session, "a@x.example")
        assert inserted and row.id is not None and row.to_addrs == ["a@x.example"]
        same, again = put(session, "b@x.example")
        assert not again and same.id == row.id
    with session_scope(db_url) as session:
        later = put(session, "c@x.example")
        assert not later.inserted and later.row.id == row.id
        assert later.row.to_addrs == ["a@x.example"] and later.row.context == {"n": 1}
    assert _count(db_url) == 1


def test_racing_flows_insert_one_row_postgres(postgres_url, conf):
    """Two transactions enqueue the same key at once: one row, both callers get it,
    and the loser's transaction is still usable."""
    migrate(postgres_url)
    factory = sessionmaker(connect(postgres_url), expire_on_commit=False)
    first = factory()
    first.begin()
    row, inserted = enqueue(
        first,
        kind="digest",
        idempotency_key="race",
        to_addrs=["a@x.example"],
        context={},
        now=T0,
        settings=conf,
    )
    result: dict[str, Enqueued] = {}

    def other_flow() -> None:
        with factory() as second, second.begin():
            result["row"] = enqueue(
                second,
                kind="digest",
                idempotency_key="race",
                to_addrs=["a@x.example"],
                context={},
                now=T0,
                settings=conf,
            )
            result["more"] = enqueue(
                second,
                kind="digest",
                idempotency_key="after-race",
                to_addrs=["a@x.example"],
                context={},
                now=T0,
                settings=conf,
            )

    thread = threading.Thread(target=other_flow)
    thread.start()
    time.sleep(0.5)
    assert thread.is_alive(), "the second insert should wait for the first transaction"
    first.commit()
    first.close()
    thread.join(10)
    theirs, they_inserted = result["row"]
    assert theirs.id == row.id and inserted and not they_inserted
    assert result["more"].inserted
    with session_scope(postgres_url) as session:
        keys = session.scalars(select(OutboxMessage.idempotency_key)).all()
    assert sorted(keys) == ["after-race", "race"]


def test_message_ids_are_stable_and_thread_on_the_assignment(sqlite_url, conf):
    obligation_id = _world(sqlite_url)
    with session_scope(sqlite_url) as session:
        obligation = session.get(Obligation, obligation_id)
        reminder = enqueue_for_obligation(
            session, obligation, "reminder", "3", now=T0, settings=conf
        )
        assignment = enqueue_for_obligation(
            session, obligation, "assignment", now=T0, settings=conf
        )
    key = f"obl:{obligation_id}:reminder:3"
    assert reminder.idempotency_key == key
    assert (
        reminder.message_id == f"<{hashlib.sha256(key.encode()).hexdigest()[:32]}@halang.example>"
    )
    # Enqueued before the assignment, the reminder still threads under it.
    assert reminder.thread_id == assignment.message_id == assignment.thread_id
    assert message_id_for(key, conf) == reminder.message_id


def test_context_has_what_a_unit_needs(sqlite_url, conf):
    obligation_id = _world(sqlite_url)
    with session_scope(sqlite_url) as session:
        obligation = session.get(Obligation, obligation_id)
        row = enqueue_for_obligation(session, obligation, "assignment", now=T0, settings=conf)
    ctx = row.context
    assert ctx["plan"]["number"] == "134/KH-UBND"
    assert (
        ctx["plan"]["ref"]
        == "Kế hoạch số 134/KH-UBND ngày 15 tháng 11 năm 2022 của UBND huyện Hạ Lang"
    )
    assert ctx["unit"]["name"] == "Phòng Văn hóa và Thông tin"
    assert row.to_addrs == [UNIT_EMAIL]
    assert ctx["assignments"][0]["tasks"] == [
        "Tuyên truyền pháp luật về PCCC trên đài.",
        "Hưởng ứng Ngày toàn dân PCCC 04/10.",
    ]
    assert ctx["due"]["with_weekday"] == "Thứ Hai, 11/9/2028"
    assert ctx["nominal"]["with_weekday"] == "Chủ nhật, 10/9/2028"
    assert ctx["moved"] is True and ctx["due_reason"] == DUE_REASON
    assert ctx["contact"]["email"] == FOCAL_EMAIL
    assert ctx["contact"]["unit_name"] == "Công an huyện Hạ Lang"
    assert ctx["cycle"] == {"key": "2028", "label": "năm 2028"}
    claims = read_token(ctx["link"].rsplit("/", 1)[1], conf=conf)
    assert (claims.obligation_id, claims.unit_id, claims.cycle_key) == (
        obligation_id,
        "phong-vhtt",
        "2028",
    )
    _, text, _ = render_parts("assignment", ctx)
    assert "Hạn gửi: Thứ Hai, 11/9/2028 (ngày 11 tháng 9 năm 2028)" in text
    # the plan's own words, then why the date is what it is (engine/deadline_text.py)
    assert f"Kế hoạch ghi: “trước ngày 10/9 hằng năm”. {DUE_REASON}." in text
    assert "Theo kế hoạch là" not in text  # no date attributed to the plan


def test_escalation_goes_to_the_head_with_the_consolidating_unit_in_copy(sqlite_url, conf):
    obligation_id = _world(sqlite_url)
    with session_scope(sqlite_url) as session:
        obligation = session.get(Obligation, obligation_id)
        row = enqueue_for_obligation(
            session, obligation, "escalation", now=T0 + dt.timedelta(days=45), settings=conf
        )
    assert row.to_addrs == [HEAD_EMAIL]
    assert row.cc_addrs == [CAH_EMAIL]
    msg = build_message(row, conf, now=T0)
    assert msg["To"].addresses[0].display_name == "Hoàng Thị Lan"
    # The moved deadline (11/9) first; 15/9/2028 is 4 days after it, not 5 after the
    # nominal one.
    assert msg["Subject"].startswith("Quá hạn 11/9: Phòng Văn hóa")
    assert "Đến nay đã quá hạn 4 ngày" in msg.get_body(("plain",)).get_content()
    # the head by name, addressed as a person (tests/test_escalation.py has the policy)
    assert (
        "Kính gửi: Đồng chí Hoàng Thị Lan (Trưởng phòng)" in msg.get_body(("plain",)).get_content()
    )


def test_digest_counts_units_reporting_through_the_consolidator(sqlite_url, conf):
    migrate(sqlite_url)
    with session_scope(sqlite_url) as session:
        world = make_world(session)
        add_obligation(session, world.cycle, "xa-duc-quang", status="submitted")
        row = enqueue_for_obligation(session, world.obligation, "digest", now=T0, settings=conf)
        again = enqueue_for_obligation(session, world.obligation, "digest", now=T0, settings=conf)
    assert again.id == row.id  # one digest per ISO week
    assert row.idempotency_key.endswith(":digest:2028-W31")
    assert row.to_addrs == [CAH_EMAIL]
    subject, text, _ = render_parts("digest", row.context)
    assert subject == "Hạn 11/9: 1/2 đơn vị đã gửi — Kế hoạch 134/KH-UBND"
    assert "Ủy ban nhân dân xã Đức Quang – Đã gửi" in text
    assert "Phòng Văn hóa và Thông tin – Chưa gửi" in text


def test_unit_without_email_is_still_recorded(sqlite_url, conf):
    """No address in the registry: the row exists (and will fail visibly), never vanishes."""
    obligation_id = _world(sqlite_url, unit_emails=[])
    with session_scope(sqlite_url) as session:
        obligation = session.get(Obligation, obligation_id)
        row = enqueue_for_obligation(session, obligation, "assignment", now=T0, settings=conf)
    assert row.to_addrs == [] and row.status == "pending"


def test_unknown_kind_is_refused(sqlite_url, conf):
    migrate(sqlite_url)
    with (
        session_scope(sqlite_url) as session,
        pytest.raises(ValueError, match="unknown email kind"),
    ):
        enqueue(
            session,
            kind="spam",
            idempotency_key="k",
            to_addrs=["a@x.example"],
            context={},
            settings=conf,
        )


def test_only_the_flow_module_imports_prefect():
    """The CLI's mail commands and the domain stay fast: no Prefect import."""
    import subprocess
    import sys

    code = (
        "import sys, engine.outbox, notifications.render, notifications.dispatch, "
        "cli.mail, notifications.mailbox; print('prefect' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def _claims(context: dict, conf) -> dict:  # type: ignore[no-untyped-def]
    """``context`` with its link read back to what it names: a link carries the second it
    was signed at (itsdangerous, for its max age), so two forms run a second apart sign
    the same claims with different timestamps; the path before the token must match."""
    link = context["link"]
    base, _, token = link.rpartition("/")
    return {**context, "link": (base, read_token(token, conf=conf))}


def test_bulk_enqueue_matches_one_by_one_and_is_idempotent(db_url, conf):
    from engine.outbox import enqueue_many_for_obligations

    migrate(db_url)
    with session_scope(db_url) as session:
        world = make_world(session)
        second = add_obligation(session, world.cycle, "xa-duc-quang")
        obligations = [world.obligation, second]
        new = enqueue_many_for_obligations(
            session, obligations, "reminder", "3", now=T0, settings=conf
        )
        assert sorted(new) == sorted(f"obl:{o.id}:reminder:3" for o in obligations)
        assert (
            enqueue_many_for_obligations(
                session, obligations, "reminder", "3", now=T0, settings=conf
            )
            == []
        )
        bulk = {r.idempotency_key: r for r in session.scalars(select(OutboxMessage))}
        # The single form would have produced exactly these rows.
        session.query(OutboxMessage).delete()
        single = {
            r.idempotency_key: r
            for r in (
                enqueue_for_obligation(session, o, "reminder", "3", now=T0, settings=conf)
                for o in obligations
            )
        }
        for key, row in single.items():
            other = bulk[key]
            assert (
                other.message_id,
                other.thread_id,
                other.to_addrs,
                _claims(other.context, conf),
            ) == (
                row.message_id,
                row.thread_id,
                row.to_addrs,
                _claims(row.context, conf),
            )
