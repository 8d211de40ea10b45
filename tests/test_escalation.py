"""Escalation of a late report goes up, never back to the late office (issue 12, item 4).

Before: with no head's address in the registry, the escalation went to the late unit's
own mailbox ("Kính gửi: UBND xã Thị Hoa … Đề nghị đồng chí chỉ đạo …"), and a body the
plan only requests (MTTQ, mass organisations) was told it "phải gửi". Here: the unit's
head (a person), then the body above it, per the plan's ``escalation.to``; a requested
body is asked.
"""

from __future__ import annotations

import pytest

from engine.lifecycle import activate
from engine.outbox.queue import enqueue_for_obligation
from engine.store import session_scope
from notifications.render import render_parts
from tests.lifecycle_factory import DATA, DISTRICT, obligation, prepared, store_files, vn
from tests.test_lifecycle_seed import CALENDAR, PARENT, PLAN, REGISTRY, SEED


def _escalation(session, unit: str, deliverable: str = "bao-cao-nam", plan: str = DISTRICT):  # type: ignore[no-untyped-def]
    duty = obligation(session, unit, deliverable, plan_id=plan)
    return enqueue_for_obligation(session, duty, "escalation", step="7", now=vn(2027, 9, 20))


def test_a_unit_without_a_head_is_escalated_to_the_body_above_not_to_itself(sqlite_url):
    prepared(sqlite_url)
    with session_scope(sqlite_url) as session:
        activate(session, DISTRICT, now=vn(2027, 1, 4))
        row = _escalation(session, "xa-a")  # a commune with no head in the registry
        assert "xa.a@lc.example" not in row.to_addrs + row.cc_addrs
        assert row.to_addrs == ["ubnd.huyen@lc.example"]  # UBND huyện, its parent
        assert row.cc_addrs == ["ca.huyen@lc.example"]  # the consolidating unit follows it
        _subject, body, html = render_parts("escalation", row.context)
        assert body.startswith("Kính gửi: Ủy ban nhân dân huyện")
        assert "Đề nghị Quý cơ quan chỉ đạo" in body and "Ủy ban nhân dân xã An Lạc" in body
        assert "<strong>Ủy ban nhân dân huyện" in html


def test_a_unit_with_a_head_is_escalated_to_that_person_and_the_body_above(sqlite_url):
    prepared(sqlite_url)
    with session_scope(sqlite_url) as session:
        activate(session, DISTRICT, now=vn(2027, 1, 4))
        row = _escalation(session, "phong-vh")
        assert row.to_addrs == ["truongphong.vh@lc.example", "ubnd.huyen@lc.example"]
        assert "vh@lc.example" not in row.to_addrs + row.cc_addrs
        _subject, body, _html = render_parts("escalation", row.context)
        assert body.startswith("Kính gửi: Đồng chí Triệu Thị Lan (Trưởng phòng); Ủy ban nhân dân")
        assert "Đề nghị đồng chí chỉ đạo" in body
        # The unit's signed link is its own (portal/freshlink.py mails one only to the
        # unit's addresses): the head, the body above and the consolidating unit in
        # copy are not given it, so none of them can file the report as the unit.
        link = row.context["link"]
        assert link and link not in body and link not in _html
        assert "/o/" not in body and "/o/" not in _html
        assert "gửi báo cáo qua đường dẫn trong thư giao nhiệm vụ" in body
        assert "đường dẫn ở trên" not in _html  # the footer points to no link


@pytest.mark.parametrize("policy", [["issuer"], ["head"]])
def test_the_plans_policy_decides_and_nobody_above_falls_to_the_consolidating_unit(
    sqlite_url, tmp_path, policy
):
    changed = tmp_path / "district.yaml"
    text = (DATA / "district.yaml").read_text(encoding="utf-8")
    changed.write_text(text + f"escalation:\n  to: {policy}\n", encoding="utf-8")
    store_files(sqlite_url, DATA / "registry.yaml", DATA / "province.yaml", changed)
    with session_scope(sqlite_url) as session:
        activate(session, DISTRICT, now=vn(2027, 1, 4))
        row = _escalation(session, "xa-a")
        assert "xa.a@lc.example" not in row.to_addrs + row.cc_addrs
        if policy == ["issuer"]:
            assert row.to_addrs == ["ubnd.huyen@lc.example"]  # the plan's issuer
            assert row.context["nobody_above"] is False
        else:  # xa-a has no head: nobody above to write to, the consolidating unit is
            assert row.to_addrs == ["ca.huyen@lc.example"] and row.cc_addrs == []
            _subject, body, _html = render_parts("escalation", row.context)
            assert "Danh bạ chưa có địa chỉ thư của thủ trưởng" in body


def test_a_requested_body_is_asked_never_ordered(sqlite_url):
    store_files(sqlite_url, REGISTRY, PARENT, SEED, *([CALENDAR] if CALENDAR.exists() else []))
    with session_scope(sqlite_url) as session:
        activate(session, PLAN, now=vn(2023, 1, 3), years=[2023])
        duty = obligation(session, "mttq-huyen-ha-lang", "bao-cao-nam", "2023", PLAN)
        row = enqueue_for_obligation(session, duty, "escalation", step="7", now=vn(2023, 9, 18))
        assert row.context["requested"] is True
        assert "mttq.halang@caobang.example" not in row.to_addrs + row.cc_addrs
        _subject, body, html = render_parts("escalation", row.context)
        overdue = enqueue_for_obligation(session, duty, "overdue", now=vn(2023, 9, 11))
        _s, overdue_body, _h = render_parts("overdue", overdue.context)
    for text in (body, html):
        assert "được đề nghị gửi" in text and "phải gửi" not in text
        assert "Kính đề nghị" in text and "chỉ đạo" not in text
    assert "Kính đề nghị Quý cơ quan quan tâm gửi báo cáo" in overdue_body
    assert "giải trình" not in overdue_body
