"""The seed plan (Hạ Lang 2022, PCCC & CNCH) activated for real, and activation at scale.

Decision for cycles after the 2025 reform (the change sets in
plan_definitions/registry_changes/ end the district police on 28/2/2025 and every
district unit on 30/6/2025, sample heirs named): an obligation is owed by whoever exists
on its deadline.  Units with a successor pass their duty to it (the police to Công an
tỉnh, the communes to the new merged communes — several units merge into one
obligation); a unit whose successor the registry does not name has its duty held (no
obligation, no email) and said so (engine.successors).  Before the reform (2024) every
unit owes its own report.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from sqlalchemy import event
from sqlalchemy.engine import Engine

from engine.consolidation import consolidate
from engine.definitions_cache import current_registry
from engine.lifecycle import activate, intake, record_submission
from engine.loader import load
from engine.registry import RegistryView
from engine.registry_history import apply_source
from engine.store import session_scope
from engine.yamlsource import read
from tests.approval_support import approve_sign_send
from tests.lifecycle_factory import (
    DEFINITIONS,
    filled_answer,
    lc_settings,
    obligation,
    obligations,
    store_files,
    synthetic_files,
    vn,
)

SEED = DEFINITIONS / "ha_lang_pccc_2022.yaml"
PARENT = DEFINITIONS / "cao_bang_2720_kh_ubnd.yaml"
REGISTRY = DEFINITIONS / "registry_cao_bang.yaml"
CALENDAR = DEFINITIONS / "calendar_vn.yaml"
CHANGES = DEFINITIONS / "registry_changes"
PLAN = "ha-lang-pccc-2022"
PARENT_PLAN = "cao-bang-2720-2022"

pytestmark = pytest.mark.skipif(
    not (SEED.exists() and PARENT.exists() and REGISTRY.exists()),
    reason="the seed plan definitions are not in plan_definitions/",
)


@pytest.fixture
def seed_url(sqlite_url):
    files = [REGISTRY, PARENT, SEED] + ([CALENDAR] if CALENDAR.exists() else [])
    store_files(sqlite_url, *files)
    return sqlite_url


def _assigned():
    catalog = load([REGISTRY, SEED])
    plan = catalog.plans[PLAN].definition
    view = RegistryView(catalog.registries["cao-bang"].definition, plan.groups)
    units: dict[str, list[str]] = {}
    for assignment in plan.assignments:
        for unit in view.resolve(assignment.to, plan.as_of):
            units.setdefault(unit.id, []).append(assignment.id)
    return plan, view, units


def test_seed_2027_every_assigned_unit_owes_the_10_9_report(seed_url):
    plan, _view, assigned = _assigned()
    assert len(assigned) == 32  # CAH, 12 departments, 13 communes, 6 MTTQ bodies
    with session_scope(seed_url) as session:
        for change in sorted(CHANGES.glob("*.yaml")):  # the 2025 reform
            apply_source(session, read(change), vn(2026, 12, 1))
        view = RegistryView(current_registry(session, "cao-bang"), plan.groups)
        activate(session, PARENT_PLAN, now=vn(2027, 1, 4))
        result = activate(session, PLAN, now=vn(2027, 1, 4))
    assert result.cycles == ["2027", "once"]
    assert not result.held
    assert any(
        w.startswith("việc chuyển cho Ủy ban nhân dân xã Lý Quốc: ") and "xã Minh Long" in w
        for w in result.warnings
    )

    with session_scope(seed_url) as session:
        reports = {
            o.unit_id: o
            for o in obligations(session, PLAN, cycle="2027")
            if o.deliverable_id == "bao-cao-nam"
        }
        for unit_id in assigned:
            successor = view.successor_on(unit_id, dt.date(2027, 9, 10))
            holder = successor.id if successor else unit_id
            report = reports[holder]
            # 10/9/2027 is a Friday: due that day.
            assert report.nominal_date == report.due_date == dt.date(2027, 9, 10)
            assert report.due_date.weekday() == 4
            assert (report.to_unit_id, report.via_unit_id) == (
                "ubnd-xa-ha-lang-2025",  # UBND huyện ended 30/6/2025 (sample heir)
                "ca-tinh-cao-bang",  # Công an huyện ended 28/2/2025
            )
        assert reports["ca-tinh-cao-bang"].transferred_from == "ca-huyen-ha-lang"
        assert reports["ubnd-xa-ly-quoc-2025"].transferred_from in assigned  # a commune
        # Công an tỉnh, 4 new communes, MTTQ xã Hạ Lang: nobody abolished owes anything.
        assert set(reports) == {
            "ca-tinh-cao-bang",
            "ubnd-xa-ha-lang-2025",
            "ubnd-xa-ly-quoc-2025",
            "ubnd-xa-quang-long-2025",
            "ubnd-xa-vinh-quy-2025",
            "mttq-xa-ha-lang-2025",
        }

        # Công an huyện's consolidation: 25/9/2027 is a Saturday → Monday 27/9, owed by
        # its successor Công an tỉnh.
        [duty] = obligations(session, PLAN, deliverable="tong-hop-bao-cao-nam", cycle="2027")
        assert (duty.unit_id, duty.transferred_from) == ("ca-tinh-cao-bang", "ca-huyen-ha-lang")
        assert (duty.nominal_date, duty.due_date) == (dt.date(2027, 9, 25), dt.date(2027, 9, 27))
        assert "Thứ Bảy" in duty.due_reason


def test_seed_2024_runs_a_cycle_and_reports_to_the_province(seed_url, tmp_path):
    plan, _view, assigned = _assigned()
    template = plan.template("bao-cao-pccc-nam")
    with session_scope(seed_url) as session:
        activate(session, PARENT_PLAN, now=vn(2024, 1, 3), years=[2024])
        result = activate(session, PLAN, now=vn(2024, 1, 3), years=[2024])
    assert result.transferred == 0 and not result.warnings
    with session_scope(seed_url) as session:
        reports = obligations(session, PLAN, deliverable="bao-cao-nam", cycle="2024")
        assert {o.unit_id for o in reports} == set(assigned)
        assert {o.due_date for o in reports} == {dt.date(2024, 9, 10)}  # a Tuesday
        vhtt = obligation(session, "phong-vhtt-ha-lang", "bao-cao-nam", "2024", PLAN)
        assert vhtt.assignment_ids == ["phong-van-hoa-thong-tin", "cac-phong-ban-nganh"]
        [duty] = obligations(session, PLAN, deliverable="tong-hop-bao-cao-nam", cycle="2024")
        assert (duty.unit_id, duty.due_date) == ("ca-huyen-ha-lang", dt.date(2024, 9, 25))

    for unit, moment in (("ca-huyen-ha-lang", vn(2024, 9, 5)), ("ubnd-xa-an-lac", vn(2024, 9, 12))):
        with session_scope(seed_url) as session:
            target = obligation(session, unit, "bao-cao-nam", "2024", PLAN)
            submission = record_submission(
                session, target.id, values=filled_answer(template), now=moment
            )
            intake(session, submission.id, now=moment)
    with session_scope(seed_url) as session:
        report = consolidate(
            session,
            PLAN,
            "2024",
            "tong-hop-bao-cao-nam",
            now=vn(2024, 9, 25, 9),
            settings=lc_settings(tmp_path),
        )
        assert report.counts() == {
            "done_on_time": 1,
            "done_late": 1,
            "open_within": 0,
            "open_overdue": 30,
        }
        assert report.aggregates["so-vu-chay"] == 4
        parent = obligation(session, "ubnd-huyen-ha-lang", "bao-cao-nam-huyen", "2024", PARENT_PLAN)
        assert parent.status == "pending"  # a draft goes nowhere
        sent = approve_sign_send(session, report.id, lc_settings(tmp_path), vn(2024, 9, 25, 10))
        assert parent.status == "submitted" and sent.upward_obligation_id == parent.id
    assert "Nguyễn Phương Huy" in report.markdown and "Lưu: VT, CAH." in report.markdown


@contextmanager
def _statements() -> Iterator[list[str]]:
    """The SQL statements run meanwhile (an executemany counts once)."""
    seen: list[str] = []

    def count(_conn, _cursor, statement, _params, _context, _many) -> None:  # noqa: ANN001
        seen.append(statement)

    event.listen(Engine, "before_cursor_execute", count)
    try:
        yield seen
    finally:
        event.remove(Engine, "before_cursor_execute", count)


def test_activating_3500_units_costs_statements_by_the_chunk_not_by_the_unit(sqlite_url, tmp_path):
    # Cost is checked by what is run, not by a stopwatch (the machine is shared): rows
    # go in and are mailed CHUNK at a time, so the statements grow with the chunks, not
    # with the 3,502 communes (36 here; one statement per unit would be thousands). Timings are
    # in benchmarks/ (make bench).
    store_files(sqlite_url, *synthetic_files(tmp_path / "defs"))
    with _statements() as seen, session_scope(sqlite_url) as session:
        result = activate(session, "quy-mo-3500", now=vn(2027, 1, 4))
    assert result.units == 3502 + 1  # every commune, and the ministry's consolidation
    assert result.created == result.queued == 2 * 3502 + 1
    assert len(seen) < 80, f"{len(seen)} statements for {result.created} obligations"
    with _statements() as again_seen, session_scope(sqlite_url) as session:
        again = activate(session, "quy-mo-3500", now=vn(2027, 1, 5))
    assert again.created == 0
    assert len(again_seen) < 20, f"{len(again_seen)} statements to find nothing to do"
