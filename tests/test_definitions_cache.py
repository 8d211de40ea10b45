"""The per-process cache of parsed definitions (engine.definitions_cache).

Plan and registry versions are immutable, so each is parsed once per process; the
*current* registry is looked up on every call, so a newly loaded registry version is
seen at once by the next email and the next context.
"""

from __future__ import annotations

from sqlalchemy import select

from engine import definitions_cache
from engine.lifecycle import activate, context_for_obligation, intake, record_submission
from engine.repository import plan_definition, plan_version, registry_for_plan_version
from engine.status import status_table
from engine.store import session_scope
from engine.store.models import OutboxMessage
from tests.lifecycle_factory import (
    DATA,
    DISTRICT,
    GOOD_REPORT,
    obligation,
    prepared,
    store_files,
    vn,
)

OLD_NAME = "Ủy ban nhân dân xã An Lạc"
NEW_NAME = "Ủy ban nhân dân xã An Lạc Mới"


def _receipt_unit_names(session, obligation_id: int) -> list[str]:
    rows = session.scalars(
        select(OutboxMessage)
        .where(OutboxMessage.obligation_id == obligation_id, OutboxMessage.kind == "receipt")
        .order_by(OutboxMessage.id)
    )
    return [row.context["unit"]["name"] for row in rows]


def _submit_and_take_in(url: str, when) -> tuple[int, str]:
    with session_scope(url) as session:
        target = obligation(session, "xa-a")
        submission = record_submission(session, target.id, values=GOOD_REPORT, now=when)
        result = intake(session, submission.id, now=when)
        return target.id, result.unit_name


def test_a_new_registry_version_is_seen_by_the_next_email_and_context(sqlite_url, tmp_path):
    prepared(sqlite_url)
    with session_scope(sqlite_url) as session:
        activate(session, DISTRICT, now=vn(2027, 1, 4))
        version = plan_version(session, DISTRICT)
        first = registry_for_plan_version(session, version)
        assert registry_for_plan_version(session, version) is first  # parsed once

    obligation_id, name = _submit_and_take_in(sqlite_url, vn(2027, 9, 1))
    assert name == OLD_NAME

    # Registry v2: the commune is renamed.
    text = (DATA / "registry.yaml").read_text(encoding="utf-8")
    assert text.count(f"name: {OLD_NAME}\n") == 1
    renamed = tmp_path / "registry.yaml"
    renamed.write_text(text.replace(f"name: {OLD_NAME}\n", f"name: {NEW_NAME}\n"), "utf-8")
    store_files(sqlite_url, renamed)

    _, name = _submit_and_take_in(sqlite_url, vn(2027, 9, 2))
    assert name == NEW_NAME
    with session_scope(sqlite_url) as session:
        assert _receipt_unit_names(session, obligation_id) == [OLD_NAME, NEW_NAME]
        version = plan_version(session, DISTRICT)
        second = registry_for_plan_version(session, version)
        assert second is not first
        assert second.units[[u.id for u in second.units].index("xa-a")].name == NEW_NAME
        ctx = context_for_obligation(session, obligation(session, "xa-a"))
        assert ctx.unit_name("xa-a") == NEW_NAME
        rows = status_table(session, DISTRICT, "2027", today=vn(2027, 9, 2).date())
        assert NEW_NAME in {row.unit_name for row in rows}


def test_a_cached_plan_is_the_same_object_on_the_second_call(sqlite_url):
    prepared(sqlite_url)
    with session_scope(sqlite_url) as session:
        activate(session, DISTRICT, now=vn(2027, 1, 4))
        row = plan_version(session, DISTRICT)
        row_id = row.id
        plan = definitions_cache.plan_for_version(session, row)
        assert definitions_cache.plan_for_version(session, row) is plan
        assert plan_definition(row) is plan
        ctx = context_for_obligation(session, obligation(session, "xa-a"))
        assert ctx.plan is plan
        view = ctx.view
    # Another session (another request) gets the same objects, by row or by id.
    with session_scope(sqlite_url) as session:
        assert definitions_cache.plan_for_version(session, row_id) is plan
        assert context_for_obligation(session, obligation(session, "xa-a")).view is view


def test_the_lru_is_bounded():
    cache: definitions_cache.LRU[int] = definitions_cache.LRU(2)
    for key in range(5):
        assert cache.get(key, lambda key=key: key * 10) == key * 10
    assert len(cache) == 2
    assert cache.get(4, lambda: -1) == 40  # kept: the newest
    assert cache.get(0, lambda: -1) == -1  # dropped: the oldest
