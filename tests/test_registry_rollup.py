"""Issue 11: a three-level roll-up (communes → department → province) across a registry
change set, through the same flows, with no code change.

tests/data/registry_rollup (sample data): the province's plan asks its departments for a
yearly report and consolidates them for the ministry; the Sở Văn hóa's plan, loaded as a
sub-plan of it, asks the communes for their own plan and a yearly report, consolidates
them and hands the result upward as its answer. Both run from January 2025; on 1/7/2025
the district ends, communes An and Bình merge into An Bình, Cao and Đông come under the
province and Đông is renamed. Open work of the merged communes goes to An Bình (one
email, audit rows); nothing is mailed to a unit that no longer exists; the department's
and the province's figures equal a recount of what the communes and the other
department sent.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from sqlalchemy import select

from engine.audit_verify import verify
from engine.definitions_cache import current_registry
from engine.lifecycle import activate, sweep
from engine.store import session_scope
from engine.store.models import AuditEvent, OutboxMessage, Submission
from tests.approval_support import approve_sign_send
from tests.lifecycle_factory import lc_settings, obligation, obligations, store_files, vn
from tests.registry_history_support import CALENDAR, apply_change, consolidate_at, send_report

DATA = Path(__file__).parent / "data" / "registry_rollup"
PROVINCE, DEPARTMENT = "rr-tinh-plan", "rr-so-vh-plan"
REPORT, UP = "bao-cao-xa", "bao-cao-so"
MERGED, HEIR = ("xa-a", "xa-b"), "xa-an-binh"
ENDED = ("xa-a", "xa-b", "ubnd-huyen")
# what each unit reports for 2025 (the communes to the Sở, Sở Y tế to the province)
SENT = {
    HEIR: {"so-le-hoi": 3, "so-nguoi": 120},
    "xa-c": {"so-le-hoi": 2, "so-nguoi": 80},
    "xa-d": {"so-le-hoi": 5, "so-nguoi": 205},
}
HEALTH = {"so-le-hoi": 1, "so-nguoi": 30}


def _sweep_days(url: str, first: dt.date, last: dt.date) -> None:
    """Every day's sweep of both plans (reminders, overdue, escalations)."""
    day = first
    while day <= last:
        with session_scope(url) as session:
            for plan_id in (DEPARTMENT, PROVINCE):
                sweep(session, plan_id, today=day)
        day += dt.timedelta(days=1)


def _recount(url: str, plan_id: str, deliverable: str) -> dict[str, int]:
    """The sums of the newest versions sent for the plan's 2025 ``deliverable``."""
    totals = {"so-le-hoi": 0, "so-nguoi": 0}
    with session_scope(url) as session:
        for o in obligations(session, plan_id, deliverable=deliverable, cycle="2025"):
            newest = session.scalars(
                select(Submission)
                .where(Submission.obligation_id == o.id)
                .order_by(Submission.version.desc())
            ).first()
            for field in totals if newest is not None else ():
                totals[field] += int(newest.values[field])
    return totals


def test_communes_department_province_roll_up_across_the_reform(sqlite_url, tmp_path):
    store_files(
        sqlite_url,
        DATA / "registry.yaml",
        DATA / "province.yaml",
        DATA / "department.yaml",
        CALENDAR,
    )
    with session_scope(sqlite_url) as session:
        for plan_id in (PROVINCE, DEPARTMENT):  # the parent first: the hand-off's target
            activate(session, plan_id, now=vn(2025, 1, 6), years=[2025])
        before = {o.unit_id for o in obligations(session, DEPARTMENT, deliverable=REPORT)}
    assert before == {"xa-a", "xa-b", "xa-c", "xa-d"}

    # ---- the reform, applied on its date: the merged communes' open work goes to the heir
    result = apply_change(sqlite_url, DATA / "change_2025_07.yaml", vn(2025, 7, 1, 8))
    assert result.ended == {"xa-a": [HEIR], "xa-b": [HEIR], "ubnd-huyen": ["ubnd-tinh"]}
    with session_scope(sqlite_url) as session:
        # nothing open is left with them (a duty the heir already owed is merged into
        # the heir's and waived: it stays, closed, with the old commune)
        left = {o.unit_id for o in obligations(session, DEPARTMENT) if o.status.open}
        assert not left & set(ENDED)
        for deliverable in ("ke-hoach-xa", REPORT):  # one duty each, the other merged into it
            [duty] = [
                o
                for o in obligations(session, DEPARTMENT, deliverable=deliverable)
                if o.unit_id == HEIR and o.status.open
            ]
            assert duty.transferred_from in MERGED
        [told] = session.scalars(
            select(OutboxMessage).where(OutboxMessage.kind == "inherited")
        ).all()
        assert told.unit_id == HEIR and told.to_addrs == ["xa.anbinh@rr.example"]
        assert sorted(told.context["from_names"]) == [
            "Ủy ban nhân dân xã An (thử)",
            "Ủy ban nhân dân xã Bình (thử)",
        ]
        moved = session.scalars(
            select(AuditEvent).where(AuditEvent.action == "obligation.transferred")
        ).all()
        assert {(a.data["from_unit"], a.data["to_unit"]) for a in moved} <= {
            (unit, HEIR) for unit in MERGED
        } and moved

    # ---- the communes answer, the sweeps run through the deadlines
    for unit, values in SENT.items():
        strings = {k: str(v) for k, v in values.items()}
        send_report(sqlite_url, DEPARTMENT, unit, "2025", strings, vn(2025, 9, 4), REPORT)
    send_report(
        sqlite_url,
        PROVINCE,
        "so-yt",
        "2025",
        {k: str(v) for k, v in HEALTH.items()},
        vn(2025, 9, 25),
        UP,
    )
    _sweep_days(sqlite_url, dt.date(2025, 9, 1), dt.date(2025, 10, 20))

    # ---- level 2: the department consolidates the communes, and sends it upward
    conf = lc_settings(tmp_path)
    department = consolidate_at(
        sqlite_url, DEPARTMENT, "2025", "tong-hop-so", vn(2025, 9, 18, 9), tmp_path
    )
    assert department.aggregates == _recount(sqlite_url, DEPARTMENT, REPORT)
    assert department.aggregates == {"so-le-hoi": 10, "so-nguoi": 405}
    names = {row["unit_id"]: row["unit_name"] for row in department.status_table}
    assert names["xa-d"] == "Ủy ban nhân dân xã Đông Mới (thử)"  # its name on 10/9/2025
    assert {HEIR, "xa-c", "xa-d"} <= set(names) and not set(names) & {"ubnd-huyen"}
    with session_scope(sqlite_url) as session:
        sent = approve_sign_send(session, department.id, conf, vn(2025, 9, 18, 10), final_pdf=False)
        upward = obligation(session, "so-vh", UP, "2025", PROVINCE)
        assert sent.upward_obligation_id == upward.id and upward.status == "submitted"

    # ---- level 3: the province consolidates its departments
    province = consolidate_at(
        sqlite_url, PROVINCE, "2025", "tong-hop-tinh", vn(2025, 10, 15, 9), tmp_path
    )
    recount = _recount(sqlite_url, PROVINCE, UP)
    assert (
        province.aggregates
        == recount
        == {field: department.aggregates[field] + HEALTH[field] for field in HEALTH}
    )
    assert province.counts()["done_on_time"] == 2
    assert "Bộ Văn hóa, Thể thao và Du lịch (thử)" in province.markdown

    # ---- nothing to the dead: no email to a unit (or an address of it) after its end
    with session_scope(sqlite_url) as session:
        registry = current_registry(session, "rr-tinh")
        ended = {u.id: u for u in registry.units if u.id in ENDED}
        assert all(u.valid_to == dt.date(2025, 6, 30) for u in ended.values())
        dead_addrs = {e for u in ended.values() for e in u.emails}
        later = session.scalars(
            select(OutboxMessage).where(OutboxMessage.created_at >= vn(2025, 7, 1, 0))
        ).all()
        assert len(later) > 10  # reminders, receipts, drafts went out after the reform
        to_dead = [m for m in later if m.unit_id in ended or set(m.to_addrs) & dead_addrs]
        assert [(m.kind, m.unit_id, m.to_addrs, m.created_at) for m in to_dead] == []
        # the communes' overdue own plans escalate to the body above them now: the
        # province they were moved under, not the district that ended
        escalated = {m.unit_id: m.to_addrs for m in later if m.kind == "escalation"}
        assert escalated["xa-c"] == escalated["xa-d"] == ["ubnd.tinh@rr.example"]
        assert verify(session).intact
