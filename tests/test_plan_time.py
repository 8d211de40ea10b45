"""Time anchored to the plan, and deadline wording kept honest (issue 10, items 2 and 5).

The example plan ``plan_definitions/examples/cao_bang_dau_tu_cong_2026.yaml`` is issued
on 26/3/2026 by UBND tỉnh Cao Bằng for six departments and six communes (sample units),
with a report "trước ngày 20 hằng tháng", a yearly report "chậm nhất ngày 10/12/2026" and
the units' own plans "trước ngày 10/4/2026".  Activated on its date it owes nothing due
before it, its first monthly period is April's, and it mails the periods open then
(each unit: its own plan, April, the year; Sở Tài chính: April's and the year's
consolidation); May is mailed on the day after April's deadline.
"""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import pytest
from sqlalchemy import select

from engine.errors import DefinitionError
from engine.lifecycle import activate, sweep
from engine.loader import load, read_files
from engine.repository import store_catalog
from engine.store import migrate, session_scope
from engine.store.models import Cycle, Obligation, OutboxMessage
from notifications.render import render_parts
from tests.lifecycle_factory import DEFINITIONS, obligations, store_files, vn

EXAMPLES = DEFINITIONS / "examples"
REGISTRY = EXAMPLES / "registry_cao_bang_2026.yaml"
CALENDAR = DEFINITIONS / "calendar_vn.yaml"
PLAN_FILE = EXAMPLES / "cao_bang_dau_tu_cong_2026.yaml"
PLAN = "cao-bang-dau-tu-cong-2026"
ISSUED = dt.date(2026, 3, 26)
DEPARTMENTS = {
    "so-khcn-cao-bang",
    "so-noi-vu-cao-bang",
    "so-y-te-cao-bang",
    "so-gddt-cao-bang",
    "so-xay-dung-cao-bang",
    "so-nnmt-cao-bang",
}
COMMUNES = {
    "ubnd-xa-ha-lang-2025",
    "ubnd-xa-ly-quoc-2025",
    "ubnd-xa-quang-long-2025",
    "ubnd-xa-vinh-quy-2025",
    "ubnd-xa-trung-khanh-2025",
    "ubnd-phuong-thuc-phan-2025",
}
UNITS = DEPARTMENTS | COMMUNES
MONTHS = [f"2026-{m:02d}" for m in range(4, 13)]


def assignments_by_cycle(session) -> dict[str, int]:
    """Assignment emails queued, counted by the cycle key of their obligation."""
    counts: dict[str, int] = {}
    for key in session.scalars(
        select(Cycle.key)
        .join(Obligation, Obligation.cycle_id == Cycle.id)
        .join(OutboxMessage, OutboxMessage.obligation_id == Obligation.id)
        .where(OutboxMessage.kind == "assignment")
    ):
        counts[key] = counts.get(key, 0) + 1
    return counts


@pytest.fixture
def plan_url(sqlite_url: str) -> str:
    store_files(sqlite_url, REGISTRY, CALENDAR, PLAN_FILE)
    return sqlite_url


# ---------------------------------------------------------------- item 2: time anchored


def test_activation_on_the_plans_date_owes_nothing_before_it(plan_url: str) -> None:
    with session_scope(plan_url) as session:
        result = activate(session, PLAN, now=vn(2026, 3, 26, 9))
    # January-March are not periods of a plan issued on 26 March.
    assert result.cycles == sorted([*MONTHS, "2026", "once"])
    with session_scope(plan_url) as session:
        rows = obligations(session, PLAN)
        assert rows and min(o.due_date for o in rows) >= ISSUED
        monthly = [o for o in rows if o.deliverable_id == "bao-cao-thang"]
        first = min(monthly, key=lambda o: o.due_date)
        april = obligations(session, PLAN, deliverable="bao-cao-thang", cycle="2026-04")
        assert {o.unit_id for o in april} == UNITS
        assert first in april
        # "trước ngày 20" ends on 19/4/2026, a Sunday: Điều 148 gives Monday 20/4.
        assert {(o.nominal_date, o.due_date) for o in april} == {
            (dt.date(2026, 4, 20), dt.date(2026, 4, 20))
        }
        assert "không tính ngày 20/4/2026" in april[0].due_reason
        assert "19/4/2026, là Chủ nhật" in april[0].due_reason
        # Emails: the periods open now times the units, nothing for May-December.
        open_periods = ["once", "2026-04", "2026"]
        by_cycle = assignments_by_cycle(session)
        # once: the 12 units' plans and Sở Tài chính's task due "quý IV năm 2026"
        assert by_cycle == {"once": 13, "2026-04": 13, "2026": 13}
        # + Sở Tài chính's duties (2) + its quý IV task and the task's supporting unit (2)
        assert result.queued == len(open_periods) * len(UNITS) + 2 + 2


def test_later_periods_are_mailed_when_they_open(plan_url: str) -> None:
    with session_scope(plan_url) as session:
        activate(session, PLAN, now=vn(2026, 3, 26, 9))
    with session_scope(plan_url) as session:
        # Monday 20/4 is April's deadline: May is not open yet, and Monday's digest goes
        # for the open consolidation duties only, and of those only April's (not 8 more
        # months; the year's units are not reminded before December: no digest yet).
        on_the_day = sweep(session, PLAN, today=dt.date(2026, 4, 20))
        assert on_the_day.opened == [] and len(on_the_day.digests) == 1
        assert "2026-05" not in assignments_by_cycle(session)
    with session_scope(plan_url) as session:
        after = sweep(session, PLAN, today=dt.date(2026, 4, 21))
        assert len(after.opened) == 13  # 12 units and Sở Tài chính's May duty
        assert assignments_by_cycle(session)["2026-05"] == 13
        assert "2026-06" not in assignments_by_cycle(session)
    with session_scope(plan_url) as session:
        again = sweep(session, PLAN, today=dt.date(2026, 4, 21))
        assert again.opened == []
        assert assignments_by_cycle(session)["2026-05"] == 13


def test_a_stated_first_period_and_effective_date_are_followed(
    sqlite_url: str, tmp_path: Path
) -> None:
    text = PLAN_FILE.read_text(encoding="utf-8")
    text = text.replace("effective_date: 2026-03-26", "effective_date: 2026-04-01")
    text = text.replace(
        "    template: bao-cao-giai-ngan-thang\n",
        "    first_period: 2026-06\n    template: bao-cao-giai-ngan-thang\n",
    )
    plan_file = tmp_path / "plan.yaml"
    plan_file.write_text(text, encoding="utf-8")
    store_files(sqlite_url, REGISTRY, CALENDAR, plan_file)
    with session_scope(sqlite_url) as session:
        result = activate(session, PLAN, now=vn(2026, 3, 26, 9))
    assert [k for k in result.cycles if k.startswith("2026-")] == MONTHS[2:]
    with session_scope(sqlite_url) as session:
        assert assignments_by_cycle(session)["2026-06"] == 13  # the first period, mailed now
        assert "2026-07" not in assignments_by_cycle(session)
        # "30 ngày" counts from the plan's effective date, not from an earlier activation
        [own_plan] = obligations(session, PLAN, deliverable="ke-hoach-giai-ngan")[:1]
        assert own_plan.due_date == dt.date(2026, 4, 9)


def test_activation_refuses_an_obligation_due_before_the_plan(
    sqlite_url: str, tmp_path: Path
) -> None:
    """The invariant holds even for a definition stored without the loader's checks."""
    from engine.lifecycle.activation import ObligationBeforePlan

    text = PLAN_FILE.read_text(encoding="utf-8").replace("date: 2026-04-10", "date: 2026-03-10")
    plan_file = tmp_path / "plan.yaml"
    plan_file.write_text(text, encoding="utf-8")
    catalog, problems = read_files([REGISTRY, CALENDAR, plan_file])  # schema only
    assert problems == []
    migrate(sqlite_url)
    with session_scope(sqlite_url) as session:
        store_catalog(session, catalog)
    refused = pytest.raises(ObligationBeforePlan, match=r"trước ngày kế hoạch có hiệu lực")
    with refused, session_scope(sqlite_url) as session:
        activate(session, PLAN, now=vn(2026, 3, 26, 9))
    with session_scope(sqlite_url) as session:
        assert session.scalars(select(Obligation)).first() is None  # nothing written
        assert session.scalars(select(OutboxMessage)).first() is None


# ---------------------------------------------------------------- item 5: the words


def test_each_deadline_keeps_its_own_words(plan_url: str) -> None:
    with session_scope(plan_url) as session:
        activate(session, PLAN, now=vn(2026, 3, 26, 9))
        [own] = obligations(session, PLAN, deliverable="ke-hoach-giai-ngan")[:1]
        [year] = obligations(session, PLAN, deliverable="bao-cao-nam")[:1]
        [duty] = obligations(session, PLAN, deliverable="tong-hop-nam")
    # "trước ngày 10/4/2026": exclusive, the last day is Thursday 9/4.
    assert (own.nominal_date, own.due_date) == (dt.date(2026, 4, 10), dt.date(2026, 4, 9))
    # "chậm nhất ngày 10/12/2026": inclusive, a Thursday, nothing to explain.
    assert (year.nominal_date, year.due_date, year.due_reason) == (
        dt.date(2026, 12, 10),
        dt.date(2026, 12, 10),
        None,
    )
    # "chậm nhất ngày 20/12/2026" with policy exact: a Sunday, kept, and said so.
    assert duty.due_date == dt.date(2026, 12, 20)
    assert (
        duty.due_reason == "20/12/2026 là Chủ nhật; hạn giữ nguyên, không chuyển theo ngày làm việc"
    )


def test_the_assignment_email_quotes_the_plan_and_says_why(plan_url: str) -> None:
    with session_scope(plan_url) as session:
        activate(session, PLAN, now=vn(2026, 3, 26, 9))
        [april] = [
            o
            for o in obligations(session, PLAN, deliverable="bao-cao-thang", cycle="2026-04")
            if o.unit_id == "ubnd-xa-ly-quoc-2025"
        ]
        row = session.scalar(
            select(OutboxMessage).where(
                OutboxMessage.obligation_id == april.id, OutboxMessage.kind == "assignment"
            )
        )
        context = dict(row.context)
    _, text, html = render_parts("assignment", context)
    flat = " ".join(text.split())
    assert "Hạn gửi: Thứ Hai, 20/4/2026" in flat
    assert (
        "Kế hoạch ghi: “trước ngày 20 hằng tháng”. “Trước ngày” không tính ngày 20/4/2026 "
        "nên ngày cuối là 19/4/2026, là Chủ nhật; theo Điều 148 Bộ luật Dân sự 2015, hạn "
        "chuyển sang ngày làm việc tiếp theo: Thứ Hai, 20/4/2026." in flat
    )
    assert "Kế hoạch ghi: “trước ngày 20 hằng tháng”" in html
    assert "Theo kế hoạch là" not in flat  # no date attributed to the plan


SEED_FILES = [
    DEFINITIONS / "registry_cao_bang.yaml",
    CALENDAR,
    DEFINITIONS / "cao_bang_2720_kh_ubnd.yaml",
    DEFINITIONS / "ha_lang_pccc_2022.yaml",
]


def test_the_seed_reads_its_dates_as_written_with_the_reason(sqlite_url: str) -> None:
    """10/9 and 25/9 stay the seed's yearly deadlines; the sentence says how they are read,
    and the seed's assumed deadline is never the plan's in its escalation."""
    store_files(sqlite_url, *SEED_FILES)
    with session_scope(sqlite_url) as session:
        activate(session, "cao-bang-2720-2022", now=vn(2023, 8, 12))
        activate(session, "ha-lang-pccc-2022", now=vn(2023, 8, 12))
    with session_scope(sqlite_url) as session:
        sweep(session, "ha-lang-pccc-2022", today=dt.date(2023, 9, 15))
        rows = {
            (o.deliverable_id, o.unit_id): o
            for o in obligations(session, "ha-lang-pccc-2022")
            if o.unit_id == "ubnd-xa-ly-quoc"
        }
        report = rows[("bao-cao-nam", "ubnd-xa-ly-quoc")]
        assert (report.nominal_date, report.due_date) == (
            dt.date(2023, 9, 10),
            dt.date(2023, 9, 11),
        )
        mails = {
            m.kind: m
            for m in session.scalars(
                select(OutboxMessage).where(OutboxMessage.unit_id == "ubnd-xa-ly-quoc")
            )
            if m.obligation_id == rows[("ke-hoach-cu-the", "ubnd-xa-ly-quoc")].id
        }
        report_mail = session.scalar(
            select(OutboxMessage).where(
                OutboxMessage.obligation_id == report.id, OutboxMessage.kind == "assignment"
            )
        )
        report_context = dict(report_mail.context)
        escalation = dict(mails["escalation"].context)
        own_plan = dict(mails["assignment"].context)
    _, text, _ = render_parts("assignment", report_context)
    flat = " ".join(text.split())
    assert "Kế hoạch ghi: “trước ngày 10/9/ hằng năm” (cách tính hạn:" in flat
    assert "10/9/2023 là Chủ nhật; theo Điều 148" in flat
    # The units' own plans have no deadline in the seed: "hạn do đơn vị tổng hợp đề nghị",
    # in full in the assignment; the seed's note already says the plan names no deadline:
    # said once, not twice.
    _, text, _ = render_parts("assignment", own_plan)
    flat = " ".join(text.split())
    assert (
        "Hạn do đơn vị tổng hợp đề nghị: Kế hoạch không nêu thời hạn xây dựng kế hoạch cụ thể;"
        in flat
    )
    assert "(kế hoạch không nêu thời hạn): Kế hoạch không nêu" not in flat
    # The escalation cites who set the deadline, and its Hạn gửi row says it in one clause.
    _, text, html = render_parts("escalation", escalation)
    flat = " ".join(text.split())
    assert "(hạn do đơn vị tổng hợp đề nghị)" in flat
    assert "Kế hoạch không nêu thời hạn xây dựng" not in flat
    assert flat.count("Theo hạn do đơn vị tổng hợp đề nghị") == 1
    assert not re.search(r"Theo (Kế hoạch|kế hoạch)", flat)  # no escalation citing the plan
    assert "Theo hạn do đơn vị tổng hợp đề nghị" in html


# ---------------------------------------------------------------- located errors


def _variant(tmp_path: Path, old: str, new: str, *more: tuple[str, str]) -> Path:
    text = PLAN_FILE.read_text(encoding="utf-8")
    for before, after in [(old, new), *more]:
        assert before in text, before
        text = text.replace(before, after, 1)
    path = tmp_path / "plan.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def _line_of(path: Path, key: str) -> int:
    """The line where ``key`` is written (not a comment that mentions it)."""
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if line.strip().startswith(key):
            return number
    raise AssertionError(key)


MONTHLY = "      phrase: trước ngày 20 hằng tháng\n"
BAD_VALUES = [
    # (what replaces what, the line the error names, words of the message)
    (
        "effective_date: 2026-03-26",
        "effective_date: 26/3/2026",
        "effective_date",
        "không phải là một ngày",
    ),
    (
        "effective_date: 2026-03-26",
        "effective_date: 2026-03-01",
        "effective_date",
        "trước ngày ban hành",
    ),
    (MONTHLY, MONTHLY + "      deadline_kind: exclusiv\n", "deadline_kind", "'exclusive' hoặc"),
    (
        "      phrase: chậm nhất ngày 10/12/2026\n",
        "      phrase: chậm nhất ngày 10/12/2026\n      deadline_kind: exclusive\n",
        "deadline_kind",
        "trái với lời văn “chậm nhất”",
    ),
    (
        MONTHLY,
        MONTHLY + "      deadline_kind: inclusive\n",
        "deadline_kind",
        "ghi lý do vào 'note'",
    ),
    (
        "      policy: next_working_day\n    # The plan takes effect",
        "      moves: next_working_day\n    # The plan takes effect",
        "moves",
        "có phải ý bạn là 'policy'",
    ),
    (
        "    template: bao-cao-giai-ngan-thang\n",
        "    first_period: 2026-4\n    template: bao-cao-giai-ngan-thang\n",
        "first_period",
        "không phải một kỳ báo cáo",
    ),
    (
        "    template: bao-cao-giai-ngan-thang\n",
        "    first_period: 2026-Q2\n    template: bao-cao-giai-ngan-thang\n",
        "first_period",
        "không phải một kỳ monthly",
    ),
    (
        "    template: bao-cao-giai-ngan-thang\n",
        "    first_period: 2026-03\n    template: bao-cao-giai-ngan-thang\n",
        "first_period",
        "trước ngày kế hoạch có hiệu lực",
    ),
    (
        "    template: bao-cao-giai-ngan-thang\n",
        "    first_period: 2027-01\n    template: bao-cao-giai-ngan-thang\n",
        "first_period",
        "ngoài các năm",
    ),
    (
        "    frequency: once\n",
        "    frequency: once\n    first_period: 2026\n",
        "first_period",
        "chỉ dùng cho báo cáo định kỳ",
    ),
    (
        "      date: 2026-04-10\n",
        "      date: 2026-03-20\n",
        "date: 2026-03-20",
        "trước ngày kế hoạch có hiệu lực",
    ),
]


@pytest.mark.parametrize(("old", "new", "needle", "words"), BAD_VALUES)
def test_bad_time_fields_are_located_errors(
    tmp_path: Path, old: str, new: str, needle: str, words: str
) -> None:
    path = _variant(tmp_path, old, new)
    with pytest.raises(DefinitionError) as caught:
        load([REGISTRY, CALENDAR, path])
    mine = [p for p in caught.value.problems if p.location.file == str(path)]
    assert mine, caught.value
    assert any(p.location.line == _line_of(path, needle) for p in mine), mine
    assert any(words in p.message for p in mine), [p.message for p in mine]


def test_deadline_kind_on_an_event_is_refused(tmp_path: Path) -> None:
    text = PLAN_FILE.read_text(encoding="utf-8").replace(
        "report_templates:",
        "events:\n  - id: hoi-nghi\n    title: Hội nghị sơ kết\n"
        "    date: {rule: fixed, date: 2026-07-15, deadline_kind: inclusive}\n\nreport_templates:",
        1,
    )
    path = tmp_path / "plan.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(DefinitionError, match="sự kiện là một ngày diễn ra"):
        load([REGISTRY, CALENDAR, path])


def test_a_reading_against_the_letter_with_its_reason_is_accepted(tmp_path: Path) -> None:
    path = _variant(
        tmp_path,
        MONTHLY,
        MONTHLY
        + "      deadline_kind: inclusive\n      note: Sở Tài chính nhận đến hết ngày 20.\n",
    )
    catalog = load([REGISTRY, CALENDAR, path])
    assert catalog.plans[PLAN].definition.deliverables[1].deadline.deadline_kind == "inclusive"


def test_a_first_deadline_close_to_the_plan_warns_once(tmp_path: Path, capsys, monkeypatch) -> None:
    from cli.main import main
    from engine.config import settings

    path = _variant(
        tmp_path,
        "effective_date: 2026-03-26",
        "effective_date: 2026-04-15",
        ("date: 2026-04-10", "date: 2026-04-30"),
    )
    settings.cache_clear()
    assert main(["validate", str(REGISTRY), str(CALENDAR), str(path)]) == 0
    err = capsys.readouterr().err
    warning = (
        "hạn đầu tiên (2026-04: 20/04/2026) chỉ cách ngày kế hoạch có hiệu lực (15/04/2026) 5 ngày"
    )
    assert err.count(warning) == 1, err
    monthly = _line_of(path, "kind: report")  # the deliverable's deadline follows its kind
    found = re.search(
        rf"{re.escape(str(path))}:(\d+):\d+: deliverables\[1\]\.deadline: cảnh báo", err
    )
    assert found and int(found.group(1)) > monthly, err
    # The threshold is a setting: at 3 days the same plan passes quietly.
    monkeypatch.setenv("KEHOACH_FIRST_DEADLINE_WARN_DAYS", "3")
    settings.cache_clear()
    try:
        assert main(["validate", str(REGISTRY), str(CALENDAR), str(path)]) == 0
        assert "cảnh báo" not in capsys.readouterr().err
    finally:
        monkeypatch.undo()
        settings.cache_clear()


def test_the_fuzzed_time_fields_never_raise_anything_but_located_errors(tmp_path: Path) -> None:
    values = [
        "",
        "null",
        "0",
        "-1",
        "2026",
        "2026-13",
        "2026-Q5",
        "[1, 2]",
        "{a: 1}",
        "'x'",
        "2026-02-30",
        "true",
        "9999-12-31",
        "exclusive",
        "inclusive",
        "2026-H3",
    ]
    fields = [
        ("effective_date: 2026-03-26", "effective_date: {v}"),
        (MONTHLY, MONTHLY + "      deadline_kind: {v}\n"),
        (
            "    template: bao-cao-giai-ngan-thang\n",
            "    first_period: {v}\n    template: bao-cao-giai-ngan-thang\n",
        ),
        (MONTHLY, MONTHLY + "      note: {v}\n      deadline_kind: inclusive\n"),
        ("      phrase: trước ngày 20 hằng tháng\n", "      phrase: {v}\n"),
    ]
    outcomes = {"ok": 0, "refused": 0}
    for old, new in fields:
        for value in values:
            path = _variant(tmp_path, old, new.format(v=value))
            try:
                load([REGISTRY, CALENDAR, path])
            except DefinitionError as exc:
                assert all(p.location.line > 0 for p in exc.problems), exc
                outcomes["refused"] += 1
            else:
                outcomes["ok"] += 1
    assert outcomes["refused"] > 20 and outcomes["ok"] > 5, outcomes


# ---------------------------------------------------------------- on a real Prefect server


@pytest.mark.prefect
def test_the_activate_flow_mails_the_open_periods_only(
    prefect_server,  # noqa: ARG001  (a real `prefect server start` for the flow runs)
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The deployed path: the activate flow on 26/3/2026, then the sweep flow on 21/4."""
    from engine.config import settings
    from engine.states import OutboxStatus
    from tests.fixtures.smtp import SMTPTestServer
    from workflows.activate import activate_flow
    from workflows.common import in_process_runs
    from workflows.sweep import sweep_flow

    smtp = SMTPTestServer()
    smtp.start()
    for name, value in {
        "KEHOACH_HOME": str(tmp_path / "home"),
        "KEHOACH_SMTP_HOST": smtp.host,
        "KEHOACH_SMTP_PORT": str(smtp.port),
        "KEHOACH_SMTP_SECURITY": "none",
        "KEHOACH_PORTAL_SECRET": "plan-time-test-secret-0123456789abcdefgh",
    }.items():
        monkeypatch.setenv(name, value)
    settings.cache_clear()
    url = f"sqlite:///{tmp_path / 'kehoach.sqlite'}"
    store_files(url, REGISTRY, CALENDAR, PLAN_FILE)
    try:
        with in_process_runs():
            result = activate_flow(PLAN, now=vn(2026, 3, 26, 9).isoformat(), database_url=url)
            assert result["cycles"] == sorted([*MONTHS, "2026", "once"])
            assert result["queued"] == 3 * len(UNITS) + 2 + 2  # as above
            # Nơi nhận: Tỉnh ủy (B/c) and Văn phòng UBND tỉnh, owing nothing (plan_notice)
            assert result["notified"] == 2
            assert len(smtp.messages) == result["queued"] + 2  # delivered, nothing more
            sweep_flow(PLAN, now=vn(2026, 4, 21, 7).isoformat(), database_url=url)
        with session_scope(url) as session:
            assert min(o.due_date for o in obligations(session, PLAN)) >= ISSUED
            by_cycle = assignments_by_cycle(session)
            assert by_cycle == {"once": 13, "2026-04": 13, "2026": 13, "2026-05": 13}
            sent = session.scalars(
                select(OutboxMessage).where(OutboxMessage.status == OutboxStatus.SENT)
            ).all()
        assert len(smtp.messages) == len(sent)  # the sweep's emails went out too
    finally:
        monkeypatch.undo()
        settings.cache_clear()
        smtp.stop()


def test_a_late_activation_says_which_periods_are_already_due(plan_url: str) -> None:
    with session_scope(plan_url) as session:
        result = activate(session, PLAN, now=vn(2026, 5, 10, 9))
    assert any(w.startswith("kỳ 2026-04, once đã quá hạn khi kích hoạt") for w in result.warnings)
    with session_scope(plan_url) as session:
        # April (due), May (opened on 21/4) and the year are open; June is not.
        assert assignments_by_cycle(session) == {
            "once": 13,  # with the quý IV task
            "2026-04": 13,
            "2026-05": 13,
            "2026": 13,
        }
