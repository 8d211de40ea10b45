"""The cascade on a real Prefect server: the seed plan through a cycle, to the province.

Every test here runs the real flows (workflows/) in this process against the
session's ``prefect_server`` (a real ``prefect server start``), a real SQLite store
and a real SMTP server on loopback.  The seed year is simulated once per module on a
virtual clock (workflows.simulate) and several tests read what it left behind.
"""

from __future__ import annotations

import datetime as dt
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import func, select

from engine.calendar import TZ
from engine.config import settings
from engine.loader import load
from engine.repository import store_catalog
from engine.store.db import migrate, session_scope
from engine.store.models import (
    ConsolidatedReport,
    Cycle,
    Obligation,
    OutboxMessage,
    PlanInstance,
    Submission,
)
from tests.fixtures.smtp import SMTPTestServer

pytestmark = [pytest.mark.prefect]

DEFINITIONS = Path(__file__).resolve().parents[1] / "plan_definitions"
SEED_FILES = [
    DEFINITIONS / "registry_cao_bang.yaml",
    DEFINITIONS / "calendar_vn.yaml",
    DEFINITIONS / "cao_bang_2720_kh_ubnd.yaml",
    DEFINITIONS / "ha_lang_pccc_2022.yaml",
]
SEED = "ha-lang-pccc-2022"
PROVINCE = "cao-bang-2720-2022"

# The seed's section II, expanded against the 2022 registry (tests/test_seed_plan.py
# checks the headings against the seed text; these are the registry ids they mean).
DEPARTMENTS = {
    "vp-hdnd-ubnd-huyen-ha-lang",
    "phong-vhtt-ha-lang",
    "phong-ktht-ha-lang",
    "phong-tu-phap-ha-lang",
    "phong-noi-vu-ha-lang",
    "phong-tckh-ha-lang",
    "phong-gddt-ha-lang",
    "phong-tnmt-ha-lang",
    "phong-nnptnt-ha-lang",
    "phong-ldtbxh-ha-lang",
    "phong-y-te-ha-lang",
    "thanh-tra-huyen-ha-lang",
}
COMMUNES = {
    "ubnd-tt-thanh-nhat",
    "ubnd-xa-minh-long",
    "ubnd-xa-ly-quoc",
    "ubnd-xa-thang-loi",
    "ubnd-xa-dong-loan",
    "ubnd-xa-duc-quang",
    "ubnd-xa-kim-loan",
    "ubnd-xa-quang-long",
    "ubnd-xa-an-lac",
    "ubnd-xa-vinh-quy",
    "ubnd-xa-thong-nhat",
    "ubnd-xa-co-ngan",
    "ubnd-xa-thi-hoa",
}
FRONT = {
    "mttq-huyen-ha-lang",
    "hoi-phu-nu-huyen-ha-lang",
    "doan-thanh-nien-huyen-ha-lang",
    "hoi-nong-dan-huyen-ha-lang",
    "hoi-cuu-chien-binh-huyen-ha-lang",
    "lien-doan-lao-dong-huyen-ha-lang",
}
EXPECTED_ASSIGNMENTS = {  # assignment id -> the units it reaches
    "cong-an-huyen": {"ca-huyen-ha-lang"},
    "phong-van-hoa-thong-tin": {"phong-vhtt-ha-lang"},
    "phong-kinh-te-ha-tang": {"phong-ktht-ha-lang"},
    "cac-phong-ban-nganh": DEPARTMENTS,
    "ubnd-cac-xa-thi-tran": COMMUNES,
    "mttq-doan-the-huyen": FRONT,
}
LATE, NEVER = "ubnd-xa-thi-hoa", "hoi-cuu-chien-binh-huyen-ha-lang"

# Short on purpose: the units' own plans (sub-plans) are not answered, so the test
# year holds 31 report intakes, the reminders, the overdue marks and the escalations.
SEED_RESPONSES = {
    "kind": "responses",
    "defaults": {"submit": "on_time", "days_before_due": [1, 6]},
    "responses": [
        {"unit": "*", "deliverable": "ke-hoach-cu-the", "never": True},
        {"unit": LATE, "deliverable": "bao-cao-nam", "late_days": 4, "values": {"so-vu-chay": 1}},
        {"unit": NEVER, "deliverable": "bao-cao-nam", "never": True},
        {
            "unit": "ubnd-xa-minh-long",
            "deliverable": "bao-cao-nam",
            "days_before_due": 6,
            "review": {"decision": "return", "reason": "Thiếu số đội dân phòng", "after_days": 1},
            "resubmit": {"after_days": 1, "values": {"so-doi-dan-phong-ra-soat": 2}},
        },
    ],
}


@dataclass
class Env:
    home: Path
    smtp: SMTPTestServer


@pytest.fixture(scope="module")
def env(prefect_server, tmp_path_factory) -> Iterator[Env]:  # noqa: ARG001
    """kehoach settings for this module: a home folder and a real SMTP server."""
    from workflows.common import in_process_runs

    home = tmp_path_factory.mktemp("kehoach-home")
    smtp = SMTPTestServer()
    smtp.start()
    patch = pytest.MonkeyPatch()
    patch.setenv("KEHOACH_HOME", str(home))
    patch.setenv("KEHOACH_SMTP_HOST", smtp.host)
    patch.setenv("KEHOACH_SMTP_PORT", str(smtp.port))
    patch.setenv("KEHOACH_SMTP_SECURITY", "none")
    patch.setenv("KEHOACH_PORTAL_SECRET", "kehoach-test-secret-7f3a9c2e4b1d8f60")
    settings.cache_clear()
    try:
        with in_process_runs():
            yield Env(home, smtp)
    finally:
        patch.undo()
        settings.cache_clear()
        smtp.stop()


def new_store(folder: Path, files: list[Path]) -> str:
    folder.mkdir(parents=True, exist_ok=True)
    url = f"sqlite:///{folder / 'kehoach.sqlite'}"
    migrate(url)
    with session_scope(url) as session:
        store_catalog(session, load(files))
    return url


def vn(year: int, month: int, day: int, hour: int = 8) -> str:
    return dt.datetime(year, month, day, hour, 0, tzinfo=TZ).isoformat()


def snapshot(url: str) -> dict[str, object]:
    """Everything a re-run must leave unchanged."""
    with session_scope(url) as session:
        return {
            "obligations": sorted(
                (
                    o.cycle_id,
                    o.unit_id,
                    o.deliverable_id,
                    o.status,
                    o.overdue,
                    o.due_date.isoformat(),
                    o.on_time,
                )
                for o in session.scalars(select(Obligation))
            ),
            "outbox": sorted(
                (m.idempotency_key, m.kind, m.status)
                for m in session.scalars(select(OutboxMessage))
            ),
            "submissions": session.scalar(select(func.count(Submission.id))),
            "reports": session.scalar(select(func.count(ConsolidatedReport.id))),
        }


@dataclass
class SeedYear:
    url: str
    result: object
    smtp_count: int


@pytest.fixture(scope="module")
def seed_year(env: Env, tmp_path_factory) -> SeedYear:
    """Hạ Lang and Cao Bằng over Aug-Sep 2023 on the real flows.

    Activated on 12/8 so the units' own plans (due 30 days later) fall due with the
    reports on 11/9: fewer distinct sweep days, a shorter test.
    """
    from workflows.responses import parse
    from workflows.simulate import simulate

    url = new_store(tmp_path_factory.mktemp("seed-store"), SEED_FILES)
    result = simulate(
        SEED,
        dt.date(2023, 8, 15),
        dt.date(2023, 9, 30),
        parse(SEED_RESPONSES),
        database_url=url,
        out=lambda _line: None,
    )
    return SeedYear(url, result, len(env.smtp.messages))


# ---------------------------------------------------------------- the cycle


def test_six_assignment_groups_expand_to_the_right_units(seed_year: SeedYear) -> None:
    with session_scope(seed_year.url) as session:
        rows = session.execute(
            select(Obligation.unit_id, Obligation.assignment_ids)
            .join(Cycle, Obligation.cycle_id == Cycle.id)
            .join(PlanInstance, Cycle.instance_id == PlanInstance.id)
            .where(PlanInstance.plan_id == SEED, Obligation.deliverable_id == "bao-cao-nam")
        ).all()
    reached: dict[str, set[str]] = {}
    for unit_id, assignment_ids in rows:
        for assignment_id in assignment_ids:
            reached.setdefault(assignment_id, set()).add(unit_id)
    assert reached == EXPECTED_ASSIGNMENTS
    assert len(rows) == 32  # one yearly report per unit, however many groups hold it


def test_deadlines_follow_the_calendar(seed_year: SeedYear) -> None:
    with session_scope(seed_year.url) as session:
        reports = session.scalars(
            select(Obligation).where(Obligation.deliverable_id == "bao-cao-nam")
        ).all()
        duty = session.scalar(
            select(Obligation).where(Obligation.deliverable_id == "tong-hop-bao-cao-nam")
        )
        parent = session.scalar(
            select(Obligation).where(Obligation.deliverable_id == "bao-cao-nam-huyen")
        )
        # 10/9/2023 is a Sunday: the units' deadline moves to Monday 11/9 (Điều 148).
        assert {(o.nominal_date, o.due_date) for o in reports} == {
            (dt.date(2023, 9, 10), dt.date(2023, 9, 11))
        }
        assert "Chủ nhật" in reports[0].due_reason and "Điều 148" in reports[0].due_reason
        assert (duty.unit_id, duty.due_date) == ("ca-huyen-ha-lang", dt.date(2023, 9, 25))
        assert (parent.unit_id, parent.due_date) == ("ubnd-huyen-ha-lang", dt.date(2023, 9, 25))


def test_late_and_missing_units_are_listed_and_the_report_goes_upward(
    seed_year: SeedYear,
) -> None:
    from engine.approval_deadlines import drafted_on
    from engine.states import ReportApproval
    from engine.status import State, status_table

    with session_scope(seed_year.url) as session:
        revisions = session.scalars(
            select(ConsolidatedReport).order_by(ConsolidatedReport.revision)
        ).all()
        # Drafted on Tuesday 12/9, the first working day after the units' 11/9, not on
        # the upward date 25/9; xã Thị Hoa's report of 15/9 came after it and revised it.
        # The simulated police approve on their review-by day, 22/9: only the newest goes.
        first, report = revisions[0], revisions[-1]
        assert drafted_on(first) == dt.date(2023, 9, 12)
        assert {r["unit_id"]: r["state"] for r in first.status_table}[LATE] == (
            State.OPEN_OVERDUE.value
        )
        assert [r.approval for r in revisions] == [ReportApproval.SUPERSEDED] * (
            len(revisions) - 1
        ) + [ReportApproval.SENT]
        assert len(revisions) == 2 and drafted_on(report) == dt.date(2023, 9, 15)
        sent = report.sent_at.replace(tzinfo=report.sent_at.tzinfo or dt.UTC)
        assert sent.astimezone(TZ).date() == dt.date(2023, 9, 22)
        rows = {r["unit_id"]: r["state"] for r in report.status_table}
        assert rows[LATE] == State.DONE_LATE.value
        assert rows[NEVER] == State.OPEN_OVERDUE.value
        assert sum(1 for s in rows.values() if s == State.DONE_ON_TIME.value) == 30
        assert Path(report.document_path).is_file()
        assert report.aggregates  # aggregated per the template

        # The district's report became its submission to the provincial plan.
        upward = session.get(Submission, report.upward_submission_id)
        parent_obligation = session.get(Obligation, upward.obligation_id)
        assert upward.source == "upward" and upward.on_time
        assert parent_obligation.deliverable_id == "bao-cao-nam-huyen"
        assert parent_obligation.unit_id == "ubnd-huyen-ha-lang"
        assert parent_obligation.status == "submitted"
        province = status_table(session, PROVINCE, "2023", today=dt.date(2023, 9, 30))
        assert [r.state for r in province if r.deliverable_id == "bao-cao-nam-huyen"] == [
            State.DONE_ON_TIME
        ]

        # The returned report came back as version 2.
        versions = session.execute(
            select(Submission.version, Submission.review_state)
            .join(Obligation, Submission.obligation_id == Obligation.id)
            .where(
                Obligation.unit_id == "ubnd-xa-minh-long",
                Obligation.deliverable_id == "bao-cao-nam",
            )
            .order_by(Submission.version)
        ).all()
        assert [v for v, _ in versions] == [1, 2] and versions[0][1] == "returned"

        kinds = dict(
            session.execute(
                select(OutboxMessage.kind, func.count(OutboxMessage.id)).group_by(
                    OutboxMessage.kind
                )
            ).all()
        )
    for kind in (
        "assignment",
        "reminder",
        "overdue",
        "escalation",
        "receipt",
        "returned",
        "consolidated",
    ):
        assert kinds.get(kind), f"no '{kind}' email"
    # every queued email was delivered to the SMTP server
    assert seed_year.smtp_count == sum(kinds.values())


def test_operators_see_named_runs_artifacts_and_events(seed_year: SeedYear) -> None:
    from prefect.artifacts import Artifact
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import (
        FlowRunFilter,
        FlowRunFilterName,
        FlowRunFilterTags,
    )
    from prefect.events.filters import EventFilter, EventNameFilter

    from workflows.events import SUBMISSION_RECEIVED

    status = Artifact.get("status-ha-lang-pccc-2022-2023")
    assert status is not None and status.type == "table"
    table = {row["Đơn vị"]: row for row in json.loads(status.data)}
    assert table["UBND xã Thị Hoa"]["Trạng thái"] == "Trễ hạn"  # names as documents abbreviate
    assert table["Hội CCB huyện Hạ Lang"]["Trạng thái"] == "Quá hạn"
    report = Artifact.get("report-ha-lang-pccc-2022-2023")
    assert report is not None and report.type == "markdown"
    assert "Hội Cựu chiến binh huyện Hạ Lang" in str(report.data)
    province = Artifact.get("status-cao-bang-2720-2022-2023")
    assert province is not None

    with get_client(sync_client=True) as client:
        runs = client.read_flow_runs(
            flow_run_filter=FlowRunFilter(
                name=FlowRunFilterName(like_="nộp · Ủy ban nhân dân xã Thị Hoa"),
                tags=FlowRunFilterTags(
                    all_=["plan:ha-lang-pccc-2022", "unit:ubnd-xa-thi-hoa", "cycle:2023"]
                ),
            )
        )
        assert runs, "no intake run named and tagged after the unit"
        assert any(run.state.is_completed() for run in runs)
        wanted = EventFilter(event=EventNameFilter(name=[SUBMISSION_RECEIVED]))
        deadline = time.monotonic() + 15  # events travel through a websocket, then a queue
        while True:
            events = client.read_events(wanted, limit=50)
            if events.total >= 32 or time.monotonic() > deadline:
                break
            time.sleep(0.5)
    # 31 reports and the resubmission from units, plus the district's report upward
    assert events.total >= 32
    roles = {r.role: r.id for r in events.events[0].related}
    assert {"plan", "unit", "cycle"} <= set(roles)


def test_rerunning_the_same_day_changes_nothing_and_sends_nothing(
    seed_year: SeedYear, env: Env
) -> None:
    from workflows.activate import activate_flow
    from workflows.consolidate import consolidate_flow
    from workflows.sweep import sweep_flow

    url = seed_year.url
    before = snapshot(url)
    sent_before = len(env.smtp.messages)
    for plan_id in (PROVINCE, SEED):
        activate_flow(plan_id, now=vn(2023, 8, 12), years=[2023], database_url=url)
    for day in (
        dt.date(2023, 9, 4),
        dt.date(2023, 9, 12),
        dt.date(2023, 9, 14),
        dt.date(2023, 9, 25),
    ):
        for plan_id in (SEED, PROVINCE):
            sweep_flow(plan_id, now=vn(day.year, day.month, day.day, 7), database_url=url)
    again = consolidate_flow(SEED, cycle_key="2023", now=vn(2023, 9, 25, 9), database_url=url)
    assert [c["created"] for c in again["consolidated"]] == [False]
    assert snapshot(url) == before
    assert len(env.smtp.messages) == sent_before


# ---------------------------------------------------------------- the calendar, 2027


def test_2027_consolidation_waits_for_the_real_due_date(env: Env, tmp_path: Path) -> None:
    """25/9/2027 is a Saturday: the upward date is Monday 27/9; the draft is written on
    Monday 13/9, the first working day after the units' Friday 10/9."""
    from engine.registry_history import apply_source
    from engine.yamlsource import read
    from workflows.activate import activate_flow
    from workflows.consolidate import consolidate_flow
    from workflows.register import consolidation_crons
    from workflows.sweep import sweep_flow

    url = new_store(tmp_path / "store", SEED_FILES)
    with session_scope(url) as session:
        # The 2025 reform is not in the 2022 registry but in its dated change sets.
        for change in sorted((DEFINITIONS / "registry_changes").glob("*.yaml")):
            apply_source(session, read(change), dt.datetime(2026, 12, 1, 8, tzinfo=TZ))
    for plan_id in (PROVINCE, SEED):
        activate_flow(plan_id, now=vn(2027, 1, 4), years=[2027], database_url=url, dispatch=False)
    with session_scope(url) as session:
        duty = session.scalar(
            select(Obligation).where(Obligation.deliverable_id == "tong-hop-bao-cao-nam")
        )
        parent = session.scalar(
            select(Obligation).where(Obligation.deliverable_id == "bao-cao-nam-huyen")
        )
        # The district police were abolished on 1/3/2025: Công an tỉnh holds the duty.
        assert duty.unit_id == "ca-tinh-cao-bang" and duty.transferred_from == "ca-huyen-ha-lang"
        assert (duty.nominal_date, duty.due_date) == (dt.date(2027, 9, 25), dt.date(2027, 9, 27))
        assert parent.due_date == dt.date(2027, 9, 27)
        assert "Thứ Bảy" in duty.due_reason

    from engine.repository import current_plan

    with session_scope(url) as session:
        assert ("0 8 25 9 *", "tong-hop-bao-cao-nam: trước ngày 25/9 hằng năm") in (
            consolidation_crons(current_plan(session, SEED))
        )
    # The units' Friday 10/9: drafted on the first working day after it, Monday 13/9,
    # not over the weekend; the cron of 25/9 finds it done.
    early = consolidate_flow(SEED, now=vn(2027, 9, 12), database_url=url, dispatch=False)
    assert early["consolidated"] == []
    swept = sweep_flow(SEED, now=vn(2027, 9, 13, 7), database_url=url, dispatch=False)
    [done] = swept["consolidated"]
    assert done["consolidated"][0]["cycle_key"] == "2027"
    with session_scope(url) as session:
        assert session.scalar(select(func.count(ConsolidatedReport.id))) == 1


def test_mail_held_over_tet_goes_on_the_first_working_morning(env: Env, tmp_path: Path) -> None:
    """Activated on Saturday 21/1/2023, in the Tết days off (20-26/1): the assignments wait
    for the sending window and go on Friday 27/1 at 07:00, as a running dispatcher sends
    them, not at the simulation's next event (in the demo, after the units' answers)."""
    from engine.states import OutboxStatus
    from workflows.responses import parse
    from workflows.simulate import simulate

    url = new_store(tmp_path / "store", SEED_FILES)
    result = simulate(
        SEED,
        dt.date(2023, 1, 21),
        dt.date(2023, 1, 28),
        parse(SEED_RESPONSES),
        database_url=url,
        out=lambda _line: None,
    )
    with session_scope(url) as session:
        mails = session.scalars(select(OutboxMessage).where(OutboxMessage.kind == "assignment"))
        sent = {(m.status, m.sent_at.replace(tzinfo=dt.UTC).astimezone(TZ)) for m in mails}
    assert sent == {(OutboxStatus.SENT, dt.datetime(2023, 1, 27, 7, tzinfo=TZ))}, sent
    assert [row.what for row in result.timeline].count("gửi email chờ giờ làm việc") == 1


# ---------------------------------------------------------------- a second plan, YAML only


def test_a_yaml_only_plan_runs_a_cycle_without_code_change(env: Env, tmp_path: Path) -> None:
    """Another directive (province → departments and communes, monthly reports, other fields)."""
    from prefect.artifacts import Artifact

    from engine.status import State
    from workflows.responses import parse
    from workflows.simulate import simulate

    examples = DEFINITIONS / "examples"
    plan_id = "cao-bang-chuyen-doi-so-2026"
    url = new_store(
        tmp_path / "store",
        [
            examples / "registry_cao_bang_2026.yaml",
            DEFINITIONS / "calendar_vn.yaml",
            examples / "cao_bang_chuyen_doi_so_2026.yaml",
        ],
    )
    responses = parse(
        {
            "kind": "responses",
            "defaults": {
                "submit": "on_time",
                "days_before_due": [1, 3],
                "values": {"so-ho-so-tiep-nhan": [120, 900]},
            },
            "responses": [
                {"unit": "ubnd-xa-ly-quoc-2025", "deliverable": "bao-cao-thang", "late_days": 2},
                {"unit": "so-y-te-cao-bang", "deliverable": "bao-cao-thang", "never": True},
            ],
        }
    )
    result = simulate(
        plan_id,
        dt.date(2026, 1, 15),
        dt.date(2026, 1, 31),
        responses,
        database_url=url,
        out=lambda _line: None,
    )
    # drafted on Wednesday 21/1, the day after the units' 20/1; xã Lý Quốc's report of
    # 22/1 came after it and revised it (…-lan-2.docx)
    assert result.plans == [plan_id] and len(result.reports) == 2

    with session_scope(url) as session:
        report = session.scalar(
            select(ConsolidatedReport).order_by(ConsolidatedReport.revision.desc()).limit(1)
        )
        assert report.revision == 2
        cycle = session.get(Cycle, report.cycle_id)
        assert (cycle.key, report.consolidation_id) == ("2026-01", "tong-hop-thang")
        states = {r["unit_id"]: r["state"] for r in report.status_table}
        assert states["ubnd-xa-ly-quoc-2025"] == State.DONE_LATE.value
        assert states["so-y-te-cao-bang"] == State.OPEN_OVERDUE.value
        assert "so-ho-so-tiep-nhan" in report.aggregates
        duty = session.scalar(
            select(Obligation).where(
                Obligation.cycle_id == cycle.id, Obligation.kind == "consolidation"
            )
        )
        # 25/1/2026 is a Sunday: the department's consolidation is due Monday 26/1.
        assert (duty.nominal_date, duty.due_date) == (dt.date(2026, 1, 25), dt.date(2026, 1, 26))
    assert Artifact.get(f"status-{plan_id}-2026-01") is not None
    assert Artifact.get(f"report-{plan_id}-2026-01") is not None
