"""The example plans through a simulated year, with no code change (issue 10).

Each day of 2026 from the plan's date: the units answer the periods open (some late,
one never), the sweep reminds and marks overdue, every consolidation due that day is
written, cycles close after their ``closes_on``; for the provincial plan, two reports
on request in the middle of the year. Engine calls on a virtual clock (the flows call
the same functions; tests/test_example_province.py runs them on a Prefect server).
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from sqlalchemy import select

from engine.closing import close_due_cycles
from engine.consolidation import consolidate
from engine.documents import DRAFT_MARK
from engine.due import due_consolidations
from engine.lifecycle import activate, intake, record_submission, sweep
from engine.requests_adhoc import request_report
from engine.states import CycleStatus
from engine.store import session_scope
from engine.store.models import ConsolidatedReport, Cycle, Obligation, PlanInstance
from tests.approval_support import approve_sign_send
from tests.lifecycle_factory import DEFINITIONS, lc_settings, store_files, vn

EXAMPLES = DEFINITIONS / "examples"
REGISTRY = EXAMPLES / "registry_cao_bang_2026.yaml"
CALENDAR = DEFINITIONS / "calendar_vn.yaml"
NEVER = "ubnd-xa-vinh-quy-2025"  # answers nothing all year
LATE = "so-y-te-cao-bang"  # answers two days late


def _values(deliverable_id: str) -> dict[str, str]:
    if deliverable_id == "danh-sach-hoc-vien":
        return {"so-hoc-vien": "3", "danh-sach": "Nguyễn Thị Mẫu, công chức văn phòng - thống kê"}
    if deliverable_id == "bao-cao-dot-xuat":
        return {"gia-tri-giai-ngan": "700", "tinh-hinh": "Đã bàn giao mặt bằng 2/3 dự án."}
    if deliverable_id == "quyet-toan-du-an":  # the provincial plan's quý IV task
        return {"muc-do": "Đã hoàn thành", "ket-qua": "Đã phê duyệt quyết toán 14 dự án."}
    if deliverable_id == "bao-cao-nam":
        return {"ty-le-giai-ngan": "91,5", "danh-gia-chung": "Cơ bản hoàn thành kế hoạch."}
    return {"ke-hoach-von": "1200", "gia-tri-giai-ngan": "640", "ty-le-giai-ngan": "53,3"}


def _answer_due(session, plan_id: str, day: dt.date) -> int:
    """Every pending report due in 3 days (LATE: due 2 days ago) is answered today."""
    rows = session.scalars(
        select(Obligation)
        .join(Cycle, Obligation.cycle_id == Cycle.id)
        .join(PlanInstance, Cycle.instance_id == PlanInstance.id)
        .where(
            PlanInstance.plan_id == plan_id,
            Obligation.status == "pending",
            Obligation.kind == "report",
            Cycle.status == CycleStatus.OPEN,
        )
    ).all()
    answered = 0
    for o in rows:
        if o.unit_id == NEVER:
            continue
        when = (
            o.due_date + dt.timedelta(days=2)
            if o.unit_id == LATE
            else o.due_date - dt.timedelta(days=3)
        )
        if max(when, dt.date(2026, 3, 27)) != day:
            continue
        moment = vn(day.year, day.month, day.day, 10)
        submission = record_submission(
            session, o.id, values=_values(o.deliverable_id), now=moment, source="sim"
        )
        intake(session, submission.id, now=moment)
        answered += 1
    return answered


def run_year(url: str, plan_id: str, start: dt.date, home: Path, requests=()) -> dict[str, int]:
    with session_scope(url) as session:
        activate(session, plan_id, now=vn(start.year, start.month, start.day, 9))
    tally = {"answered": 0, "consolidated": 0, "closed": 0}
    day = start
    while day <= dt.date(2026, 12, 31):
        for when, deliverable, due in requests:
            if when == day:
                with session_scope(url) as session:
                    request_report(
                        session, plan_id, deliverable, due=due, reason="Báo cáo nhanh",
                        now=vn(day.year, day.month, day.day, 8),
                    )  # fmt: skip
        with session_scope(url) as session:  # the day's steps, in the flows' order
            tally["answered"] += _answer_due(session, plan_id, day)
            sweep(session, plan_id, today=day)
            for cycle_key, consolidation_id in due_consolidations(session, plan_id, day):
                consolidate(
                    session, plan_id, cycle_key, consolidation_id,
                    now=vn(day.year, day.month, day.day, 16), settings=lc_settings(home),
                )  # fmt: skip
                tally["consolidated"] += 1
            tally["closed"] += len(close_due_cycles(session, plan_id, today=day).closed)
        day += dt.timedelta(days=1)
    return tally


def test_the_provincial_plan_runs_through_2026(sqlite_url: str, tmp_path: Path) -> None:
    plan_id = "cao-bang-dau-tu-cong-2026"
    store_files(sqlite_url, REGISTRY, CALENDAR, EXAMPLES / "cao_bang_dau_tu_cong_2026.yaml")
    tally = run_year(
        sqlite_url,
        plan_id,
        dt.date(2026, 3, 26),
        tmp_path,
        requests=[
            (dt.date(2026, 5, 12), "bao-cao-dot-xuat", dt.date(2026, 5, 18)),
            (dt.date(2026, 9, 1), "bao-cao-dot-xuat", dt.date(2026, 9, 8)),
        ],
    )
    with session_scope(sqlite_url) as session:
        reports = session.execute(
            select(Cycle.key, ConsolidatedReport.consolidation_id).join(
                Cycle, ConsolidatedReport.cycle_id == Cycle.id
            )
        ).all()
        keys = sorted(k for k, c in reports if c == "tong-hop-thang")
        # April to December, each consolidated once by Sở Tài chính; both requests too.
        assert keys == [f"2026-{m:02d}" for m in range(4, 13)]
        assert sorted(k for k, c in reports if c == "tong-hop-dot-xuat") == ["2026-DX1", "2026-DX2"]
        assert ("2026", "tong-hop-nam") in reports
        never = session.scalars(
            select(Obligation).where(Obligation.unit_id == NEVER, Obligation.kind == "report")
        ).all()
        assert never and all(o.overdue for o in never)  # 9 months, the year, 2 requests
        closed = session.scalars(select(Cycle.key).where(Cycle.status == CycleStatus.CLOSED)).all()
        assert {"2026-04", "2026-09", "2026-DX1", "2026-DX2"} <= set(closed)
    assert tally["consolidated"] == 9 + 2 + 1 and tally["answered"] > 100


def test_the_one_off_training_plan_runs_through_2026(sqlite_url: str, tmp_path: Path) -> None:
    plan_id = "cao-bang-tap-huan-2026"
    store_files(sqlite_url, REGISTRY, CALENDAR, EXAMPLES / "cao_bang_tap_huan_2026.yaml")
    tally = run_year(sqlite_url, plan_id, dt.date(2026, 6, 22), tmp_path)
    assert tally == {"answered": 5, "consolidated": 1, "closed": 1}
    with session_scope(sqlite_url) as session:
        [cycle] = session.scalars(select(Cycle)).all()
        assert (cycle.key, cycle.status) == ("once", CycleStatus.CLOSED)
        rows = session.scalars(select(Obligation).where(Obligation.kind == "report")).all()
        assert {o.due_date for o in rows} == {dt.date(2026, 7, 15)}  # the single deadline
        [report] = session.scalars(select(ConsolidatedReport)).all()
        draft = consolidate(
            session, plan_id, "once", "tong-hop-hoc-vien", now=vn(2026, 12, 31, 9),
            settings=lc_settings(tmp_path),
        )  # fmt: skip
    head = "**ỦY BAN NHÂN DÂN TỈNH CAO BẰNG**  \n**SỞ NỘI VỤ TỈNH CAO BẰNG**  \n"
    # Nobody approved it: still the draft, its mark above the department's header.
    assert draft.markdown.startswith(f"**{DRAFT_MARK}**\n\n{head}Số: …/BC-SNV\n")
    # Approved, numbered in the department's register, signed and sent upward.
    conf, at = lc_settings(tmp_path), vn(2027, 1, 4, 9)
    with session_scope(sqlite_url) as session:
        assert approve_sign_send(session, draft.id, conf, at).upward_refused is None
    with session_scope(sqlite_url) as session:
        result = consolidate(session, plan_id, "once", "tong-hop-hoc-vien", now=at, settings=conf)
    markdown = result.markdown
    assert (result.created, result.id) == (False, draft.id)
    assert markdown.startswith(head + "Số: 01/BC-SNV\n"), markdown[:200]
    assert "**KT. GIÁM ĐỐC**  \n**PHÓ GIÁM ĐỐC**  \n**Lục Thị Mẫu**" in markdown
    assert "- UBND tỉnh (B/c);" in markdown and "- Lưu: VT, TCCB" in markdown
    assert report.aggregates["so-hoc-vien"] == 15  # 5 communes answered, 3 each
