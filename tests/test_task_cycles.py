"""A task running for years does not hold the first year's tasks open (issue 10, item 1).

The ministry plan ``bo_khcn_chuyen_doi_so_2024.yaml`` (issued 15/3/2024) has rows due in
2024 (tháng 8/2024, quý IV năm 2024) and two ranges, "2024 - 2025" and "2025 - 2030". The
2024 rows' cycle closes 60 days after their last deadline (31/12/2024), with the one
never answered listed as missing; each range's completion report falls in the period of
the year it is due, opened when that year starts.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select

from engine.closing import close_due_cycles
from engine.lifecycle import activate
from engine.store import session_scope
from engine.store.models import Cycle
from tests.lifecycle_factory import DEFINITIONS, obligations, store_files, vn

EXAMPLES = DEFINITIONS / "examples"
MINISTRY = "bo-khcn-chuyen-doi-so-2024"
CONSOLIDATION = "tong-hop-nen-tang-dia-phuong"
FILES = (
    EXAMPLES / "registry_bo_khcn_2024.yaml",
    DEFINITIONS / "calendar_vn.yaml",
    EXAMPLES / "bo_khcn_chuyen_doi_so_2024.yaml",
)


def _cycle(session, key: str) -> Cycle:  # type: ignore[no-untyped-def]
    return session.scalar(select(Cycle).where(Cycle.key == key))


def test_the_first_years_tasks_cycle_closes_when_its_deadlines_pass(sqlite_url: str) -> None:
    store_files(sqlite_url, *FILES)
    with session_scope(sqlite_url) as session:
        activate(session, MINISTRY, now=vn(2024, 3, 15))
        once = {o.deliverable_id: o.due_date for o in obligations(session, MINISTRY, cycle="once")}
    assert once == {"quy-che-so": dt.date(2024, 12, 31), "danh-gia-muc-do": dt.date(2024, 8, 31)}

    # Open while its tasks are pending and within the grace after their last deadline …
    with session_scope(sqlite_url) as session:
        kept = close_due_cycles(session, MINISTRY, today=dt.date(2025, 3, 1))
        assert ("once", dt.date(2025, 3, 1)) in kept.closes_on_set
        assert "once" not in [c.cycle_key for c in kept.closed]
        assert _cycle(session, "once").status == "open"
    # … closed the day after, the row nobody answered listed as missing.
    with session_scope(sqlite_url) as session:
        done = close_due_cycles(session, MINISTRY, today=dt.date(2025, 3, 2))
        assert [c.cycle_key for c in done.closed] == ["once"]
        assert {(m.unit_id, m.deliverable_id) for m in done.closed[0].missing} == {
            ("van-phong-bo-khcn", "quy-che-so"),
            ("vu-khtc-bo-khcn", "danh-gia-muc-do"),
        }
        assert _cycle(session, "once").status == "closed"

    # Each range's completion in the period of its last year, opened when it starts.
    with session_scope(sqlite_url) as session:
        activate(session, MINISTRY, now=vn(2025, 1, 2))
        activate(session, MINISTRY, now=vn(2030, 1, 2))
    with session_scope(sqlite_url) as session:
        due = {
            (o.cycle.key, o.unit_id, o.deliverable_id): o.due_date
            for o in obligations(session, MINISTRY)
            if o.deliverable_id in ("csdl-khcn", "nen-tang-dia-phuong", CONSOLIDATION)
        }
    assert due == {
        ("2025", "cuc-cds-bo-khcn", "csdl-khcn"): dt.date(2025, 12, 31),
        ("2030", "so-khcn-tinh-a", "nen-tang-dia-phuong"): dt.date(2030, 12, 31),
        ("2030", "so-khcn-tinh-b", "nen-tang-dia-phuong"): dt.date(2030, 12, 31),
        # Cục Chuyển đổi số consolidates the Sở's completion reports in the same period
        ("2030", "cuc-cds-bo-khcn", CONSOLIDATION): dt.date(2031, 1, 19),  # "trước ngày 20/01"
    }
