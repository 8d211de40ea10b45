"""Tasks as tracked obligations (issue 10, item 1).

``plan_definitions/examples/cao_bang_so_khcn_nhiem_vu_2026.yaml`` (sample data) is a
department plan whose tasks carry their own lead, supporting units and time: "hoàn
thành trong quý IV năm 2026", "Tháng 8/2026", "trước ngày 30/6/2026", "6 tháng đầu năm
2026", "thường xuyên" and one task without a time. ``bo_khcn_chuyen_doi_so_2024.yaml``
is a ministry plan whose appendix task table has ranges ("2024 - 2025", "2025 - 2030")
with yearly progress reports, quarters and months.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from dataclasses import dataclass
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from engine.calendar import TZ, end_of_day
from engine.errors import DefinitionError
from engine.lifecycle import activate
from engine.loader import load
from engine.states import State
from engine.status import status_table
from engine.store import session_scope
from engine.store.models import OutboxMessage
from engine.task_window import Shape, read_window
from tests.lifecycle_factory import DEFINITIONS, obligations, store_files, vn

EXAMPLES = DEFINITIONS / "examples"
REGISTRY = EXAMPLES / "registry_cao_bang_2026.yaml"
CALENDAR = DEFINITIONS / "calendar_vn.yaml"
DEPARTMENT_FILE = EXAMPLES / "cao_bang_so_khcn_nhiem_vu_2026.yaml"
DEPARTMENT = "cao-bang-so-khcn-nhiem-vu-2026"
MINISTRY_REGISTRY = EXAMPLES / "registry_bo_khcn_2024.yaml"
MINISTRY_FILE = EXAMPLES / "bo_khcn_chuyen_doi_so_2024.yaml"
MINISTRY = "bo-khcn-chuyen-doi-so-2024"
QUARTER_IV = "nen-tang-du-lieu"  # led by Sở KH&CN, supported by Sở Tài chính


# ---------------------------------------------------------------- the words of time


@pytest.mark.parametrize(
    ("words", "shape", "start", "end"),
    [
        ("hoàn thành trong quý IV năm 2026", Shape.quarter, (2026, 10, 1), (2026, 12, 31)),
        ("Quý 2/2027", Shape.quarter, (2027, 4, 1), (2027, 6, 30)),
        ("Tháng 8/2024", Shape.month, (2024, 8, 1), (2024, 8, 31)),
        ("tháng 2 năm 2028", Shape.month, (2028, 2, 1), (2028, 2, 29)),
        ("năm 2026", Shape.year, (2026, 1, 1), (2026, 12, 31)),
        ("6 tháng đầu năm 2026", Shape.half, (2026, 1, 1), (2026, 6, 30)),
        ("6 tháng cuối năm 2026", Shape.half, (2026, 7, 1), (2026, 12, 31)),
        ("2024 - 2025", Shape.range, (2024, 1, 1), (2025, 12, 31)),
        ("giai đoạn 2025–2030", Shape.range, (2025, 1, 1), (2030, 12, 31)),
        ("trước ngày 30/6/2026", Shape.date, (2026, 6, 30), (2026, 6, 30)),
        ("ngày 15 tháng 10 năm 2026", Shape.date, (2026, 10, 15), (2026, 10, 15)),
    ],
)
def test_the_forms_documents_use_are_read(words, shape, start, end) -> None:
    window = read_window(words)
    assert (window.shape, window.start, window.end) == (shape, dt.date(*start), dt.date(*end))
    assert window.year_given


def test_ongoing_words_are_no_deadline_and_yearless_words_take_the_given_year() -> None:
    assert read_window("Thường xuyên").shape is Shape.ongoing
    assert read_window("thường xuyên").end is None
    window = read_window("quý IV", 2026)
    assert (window.end, window.year_given) == (dt.date(2026, 12, 31), False)
    for words, message in [
        ("quý IV", "không ghi năm"),
        ("tháng 13/2026", "tháng 13 không có"),
        ("31/2/2026", "không phải là một ngày có thật"),
        ("2025 - 2024", "năm đầu trước năm cuối"),
        ("sớm nhất có thể", "không đọc được thời gian"),
    ]:
        with pytest.raises(ValueError, match=message):
            read_window(words)


# ---------------------------------------------------------------- activation


@pytest.fixture
def department_url(sqlite_url: str) -> str:
    store_files(sqlite_url, REGISTRY, CALENDAR, DEPARTMENT_FILE)
    return sqlite_url


def test_timed_tasks_are_the_leads_obligations_and_untimed_ones_stay_text(
    department_url: str,
) -> None:
    with session_scope(department_url) as session:
        result = activate(session, DEPARTMENT, now=vn(2026, 2, 10, 9))
    # 3 tasks of the Sở + the communes' "6 tháng đầu năm" task; the communes' two
    # half-yearly reports
    assert result.created == 3 + 6 + 6 * 2
    with session_scope(department_url) as session:
        rows = {
            (o.unit_id, o.deliverable_id): o for o in obligations(session, DEPARTMENT, cycle="once")
        }
        owed = {d for _u, d in rows}
        assert owed == {QUARTER_IV, "so-hoa-ho-so", "quy-che-du-lieu", "diem-ho-tro-dvc"}
        # "thường xuyên" and the task without a time are never due
        assert "tuyen-truyen" not in owed and "tham-muu" not in owed
        # the lead of a task narrower than its heading: Sở Nội vụ, not the heading's Sở
        assert ("so-noi-vu-cao-bang", "so-hoa-ho-so") in rows
        quarter = rows[("so-khcn-cao-bang", QUARTER_IV)]
        assert (quarter.nominal_date, quarter.due_date) == (dt.date(2026, 12, 31),) * 2
        # "trước ngày 30/6/2026": the last day is 29/6 (exclusive by its words)
        assert rows[("so-khcn-cao-bang", "quy-che-du-lieu")].due_date == dt.date(2026, 6, 29)
        # 31/8/2026 is a day off; the plan's policy (exact) keeps it and says so
        august = rows[("so-noi-vu-cao-bang", "so-hoa-ho-so")]
        assert august.due_date == dt.date(2026, 8, 31)
        assert "hạn giữ nguyên" in (august.due_reason or "")
        support = session.scalars(
            select(OutboxMessage).where(OutboxMessage.kind == "task_support")
        ).all()
        to = sorted(tuple(m.to_addrs) for m in support)
        # Sở Tài chính is told of the quý IV task, Sở KH&CN of Sở Nội vụ's task
        assert to == [("chuyendoiso.skhcn@caobang.example",), ("stc@caobang.example",)]
        # each its own contribution link (tests/test_task_support_portal.py), never the lead's
        assert all("/p/" in m.context["link"] and "/o/" not in m.context["link"] for m in support)


def test_the_leads_email_names_the_task_alone_and_its_supporting_units(
    department_url: str,
) -> None:
    from notifications.render import render_parts

    with session_scope(department_url) as session:
        activate(session, DEPARTMENT, now=vn(2026, 2, 10, 9))
    with session_scope(department_url) as session:
        [lead] = [
            m
            for m in session.scalars(
                select(OutboxMessage).where(OutboxMessage.kind == "assignment")
            )
            if m.context["deliverable"]["id"] == QUARTER_IV
        ]
        subject, text, _html = render_parts(lead.kind, lead.context)
    assert subject.startswith("Hạn 31/12: Nền tảng LGSP")
    assert "Kế hoạch ghi: “hoàn thành trong quý IV năm 2026”." in text
    assert "đơn vị phối hợp: Sở Tài chính tỉnh Cao Bằng" in text
    # only this task, not the heading's other four
    assert "Số hóa hồ sơ" not in text and "Tuyên truyền" not in text


def test_the_appendix_rows_are_their_leads_obligations_with_yearly_progress(
    sqlite_url: str,
) -> None:
    store_files(sqlite_url, MINISTRY_REGISTRY, CALENDAR, MINISTRY_FILE)
    with session_scope(sqlite_url) as session:
        first = activate(session, MINISTRY, now=vn(2024, 3, 15, 9))
        later = activate(session, MINISTRY, now=vn(2025, 1, 2, 9))
    # 2025: the two Sở's progress reports and the 2024 - 2025 row's completion
    assert first.cycles == ["2024", "once"] and (later.cycles, later.created) == (
        ["2025", "once"],
        3,
    )
    with session_scope(sqlite_url) as session:
        rows = {
            (o.cycle.key, o.unit_id, o.deliverable_id): o.due_date
            for o in obligations(session, MINISTRY)
        }
    assert rows == {
        # a row due after the plan's first year: in the period of its year (opened then)
        ("2025", "cuc-cds-bo-khcn", "csdl-khcn"): dt.date(2025, 12, 31),
        # "trước ngày 15/12 hằng năm": 14/12/2024 is a Saturday, the next working day
        ("2024", "cuc-cds-bo-khcn", "csdl-khcn-tien-do"): dt.date(2024, 12, 16),
        ("once", "van-phong-bo-khcn", "quy-che-so"): dt.date(2024, 12, 31),
        ("once", "vu-khtc-bo-khcn", "danh-gia-muc-do"): dt.date(2024, 8, 31),
        # a group lead: each Sở owes its own progress each year to 2029 and, in the 2030
        # period, its completion of 2025 - 2030 (tests/test_task_cycles.py)
        ("2025", "so-khcn-tinh-a", "nen-tang-dia-phuong-tien-do"): dt.date(2025, 12, 9),
        ("2025", "so-khcn-tinh-b", "nen-tang-dia-phuong-tien-do"): dt.date(2025, 12, 9),
    }  # 2025 is the range's last year for csdl-khcn: its completion, no progress


def test_a_task_is_completed_by_the_leads_periodic_report_saying_so(
    department_url: str,
) -> None:
    """ "6 tháng đầu năm 2026" task: done when the commune's half-yearly report says
    "Đã hoàn thành" in its field; a report saying "Đang thực hiện" leaves it open."""
    from engine.lifecycle import intake, record_submission

    with session_scope(department_url) as session:
        activate(session, DEPARTMENT, now=vn(2026, 2, 10, 9))
    answers = {"ubnd-xa-ly-quoc-2025": "Đã hoàn thành", "ubnd-xa-ha-lang-2025": "Đang thực hiện"}
    with session_scope(department_url) as session:
        for unit, state in answers.items():
            [report] = [
                o
                for o in obligations(session, DEPARTMENT, deliverable="bao-cao-6-thang")
                if o.unit_id == unit and o.cycle.key == "2026-H1"
            ]
            sent = record_submission(
                session,
                report.id,
                values={"so-buoi-tuyen-truyen": 3, "diem-ho-tro": state},
                now=vn(2026, 6, 10, 9),
            )
            intake(session, sent.id, now=vn(2026, 6, 10, 9, 5))
    with session_scope(department_url) as session:
        tasks = {
            o.unit_id: o for o in obligations(session, DEPARTMENT, deliverable="diem-ho-tro-dvc")
        }
        done = tasks["ubnd-xa-ly-quoc-2025"]
        assert (done.status, done.on_time) == ("submitted", True)
        [answer] = done.submissions
        assert answer.source == "periodic_report" and answer.values["muc-do"] == "Đã hoàn thành"
        assert tasks["ubnd-xa-ha-lang-2025"].status == "pending"
        receipts = session.scalars(
            select(OutboxMessage).where(
                OutboxMessage.kind == "receipt", OutboxMessage.obligation_id == done.id
            )
        ).all()
        assert len(receipts) == 1  # acknowledged like any answer


@pytest.mark.filterwarnings("ignore:Using `httpx` with `starlette.testclient`")
def test_the_lead_sees_the_task_and_the_plans_content_and_answers_on_the_portal(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import re

    from starlette.testclient import TestClient

    from engine import config
    from engine.clock import VirtualClock
    from portal.app import create_app

    url = f"sqlite:///{tmp_path / 'kehoach.sqlite'}"
    for key, value in {
        "KEHOACH_HOME": str(tmp_path / "var"),
        "KEHOACH_DATABASE_URL": url,
        "KEHOACH_PORTAL_SECRET": "tasks-portal-secret-0123456789abcdefghij",
        "KEHOACH_SMTP_PORT": "9",  # receipts queued, never sent here
    }.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("KEHOACH_NOW", raising=False)
    config.settings.cache_clear()
    store_files(url, REGISTRY, CALENDAR, DEPARTMENT_FILE)
    with session_scope(url) as session:
        activate(session, DEPARTMENT, now=vn(2026, 2, 10, 9))
        [lead] = [
            m
            for m in session.scalars(
                select(OutboxMessage).where(OutboxMessage.kind == "assignment")
            )
            if m.context["deliverable"]["id"] == QUARTER_IV
        ]
        token = lead.context["link"].rsplit("/o/", 1)[1]
    app = create_app(config.settings(), url, clock=VirtualClock(vn(2026, 11, 2)), intake_flow=False)
    try:
        with TestClient(app) as client:
            page = client.get(f"/o/{token}")
            assert page.status_code == 200, page.text
            text = re.sub(r"<[^>]+>", "", page.text)
            assert "đơn vị phối hợp: Sở Tài chính tỉnh Cao Bằng" in text
            assert "“hoàn thành trong quý IV năm 2026”" in text
            assert "Số hóa hồ sơ" not in text  # the task alone, not its heading's others
            # the content sections: giải pháp and kinh phí with its amounts
            assert "IV. Kinh phí thực hiện" in text
            assert "Nâng cấp nền tảng LGSP: 1.250.000.000 đồng (ngân sách tỉnh)" in text
            assert "Mức độ hoàn thành" in text  # the built-in completion form
            csrf = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)
            form = {"csrf": csrf, "f-muc-do": "Đã hoàn thành", "f-ket-qua": "Đã kết nối NDXP."}
            posted = client.post(f"/o/{token}/submit", data=form)
            assert posted.status_code in (200, 303), posted.text
    finally:
        config.settings.cache_clear()
    with session_scope(url) as session:
        [task] = obligations(session, DEPARTMENT, deliverable=QUARTER_IV)
        [answer] = task.submissions
        assert answer.values == {"muc-do": "Đã hoàn thành", "ket-qua": "Đã kết nối NDXP."}
        assert answer.on_time


def test_a_new_version_that_drops_a_tracked_tasks_time_names_the_running_duty(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from cli import main

    monkeypatch.setenv("KEHOACH_PORTAL_SECRET", "tasks-version-secret-0123456789abcdefgh")
    db = ["--database-url", f"sqlite:///{tmp_path / 'kehoach.sqlite'}"]
    files = [str(REGISTRY), str(CALENDAR), str(DEPARTMENT_FILE)]
    assert main([*db, "load", *files]) == 0
    assert main([*db, "activate", DEPARTMENT, "--at", "2026-02-10"]) == 0
    capsys.readouterr()
    # the quý IV task loses its time: it would be text again, its duty without a basis
    old = "        due:\n          phrase: hoàn thành trong quý IV năm 2026\n"
    text = DEPARTMENT_FILE.read_text(encoding="utf-8")
    start = text.index(old)
    end = text.index("        deliverable_title: Nền tảng LGSP\n")
    path = tmp_path / DEPARTMENT_FILE.name
    path.write_text(text[:start] + text[end:], encoding="utf-8")
    assert main([*db, "load", str(path)]) == 1
    err = capsys.readouterr().err
    assert f"{QUARTER_IV} (Báo cáo kết quả thực hiện nhiệm vụ" in err, err
    assert "once" in err


# ---------------------------------------------------------------- located errors


def _variant(tmp_path: Path, old: str, new: str, source: Path = DEPARTMENT_FILE) -> Path:
    text = source.read_text(encoding="utf-8")
    assert old in text, old
    path = tmp_path / source.name
    path.write_text(text.replace(old, new, 1), encoding="utf-8")
    return path


def _line_of(path: Path, words: str) -> int:
    """The last line that holds ``words`` (not in a comment): a duplicate is named at its
    second use."""
    found = [
        number
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1)
        if words in line and not line.lstrip().startswith("#")
    ]
    assert found, words
    return found[-1]


AUGUST = "        due: Tháng 8/2026\n"
BAD_TASKS = [
    (AUGUST, "        due: Tháng 13/2026\n", "Tháng 13/2026", "tháng 13 không có"),
    (AUGUST, "        due: sớm nhất có thể\n", "sớm nhất", "không đọc được thời gian"),
    (AUGUST, "        due: Tháng 8/2025\n", "Tháng 8/2025", "trước ngày kế hoạch có hiệu lực"),
    (AUGUST, "        due: 2026 - 2025\n", "2026 - 2025", "năm đầu trước năm cuối"),
    # after end_year: its year's period would never open (tests/test_task_cycles.py)
    (AUGUST, "        due: Tháng 8/2027\n", "Tháng 8/2027", "sau năm cuối của kế hoạch"),
    (
        AUGUST,
        "        due: {phrase: Tháng 8/2026, progress: {day: 15, month: 12}}\n",
        "progress",
        "chỉ dùng cho một giai đoạn",
    ),
    (
        AUGUST,
        "        due: {phrase: Tháng 8/2026, deadline_kind: exclusive}\n",
        "deadline_kind",
        "chỉ dùng cho một ngày",
    ),
    (
        "        lead: {unit: so-noi-vu-cao-bang}\n",
        "        lead: {unit: so-khong-co}\n",
        "so-khong-co",
        "so-khong-co",
    ),
    (
        "        supporting: [{unit: so-khcn-cao-bang}]\n",
        "        supporting: [{group: khong-co-nhom}]\n",
        "khong-co-nhom",
        "không có nhóm 'khong-co-nhom'",
    ),
    (
        "        text: Tham mưu UBND tỉnh các giải pháp thúc đẩy chuyển đổi số.\n",
        "        text: Tham mưu UBND tỉnh các giải pháp thúc đẩy chuyển đổi số.\n"
        "        completion: {by: report}\n",
        "completion: {by: report}",
        "chỉ có tác dụng với nhiệm vụ có thời hạn",
    ),
    (
        AUGUST,
        AUGUST + "        completion: {by: periodic_report}\n",
        "{by: periodic_report}",
        "cần 'deliverable'",
    ),
    (
        AUGUST,
        AUGUST
        + "        completion: {by: periodic_report, deliverable: bao-cao-6-thang, field: x}\n",
        "field: x",
        "không phải gửi 'bao-cao-6-thang'",
    ),
    (
        "field: diem-ho-tro}",
        "field: so-buoi-tuyen-truyen}",
        "so-buoi-tuyen-truyen}",
        "cần một trường lựa chọn 'so-buoi-tuyen-truyen'",
    ),
    (
        AUGUST,
        AUGUST + "        completion: {template: khong-co-mau}\n",
        "khong-co-mau",
        "không có mẫu báo cáo 'khong-co-mau'",
    ),
    (
        "      - id: so-hoa-ho-so\n",
        "      - id: quy-che-du-lieu\n",
        "- id: quy-che-du-lieu",
        "bị dùng hai lần",
    ),
    # A task's completion reports are consolidated like a report's
    # (tests/test_task_consolidation.py), by the unit they go to, after the task's deadline.
    (
        "\nreport_templates:",
        "\nconsolidations:\n  - id: tong-hop-lgsp\n    consolidates: nen-tang-du-lieu\n"
        "    by: so-noi-vu-cao-bang\n    routing: {to: ubnd-tinh-cao-bang}\n"
        "    deadline: {rule: fixed, date: 2027-01-15}\n\nreport_templates:",
        "by: so-noi-vu-cao-bang",
        "không nhận báo cáo 'nen-tang-du-lieu' nào",
    ),
    (
        "\nreport_templates:",
        "\nconsolidations:\n  - id: tong-hop-lgsp\n    consolidates: nen-tang-du-lieu\n"
        "    by: so-khcn-cao-bang\n    routing: {to: ubnd-tinh-cao-bang}\n"
        "    deadline: {rule: fixed, date: 2026-12-15}\n\nreport_templates:",
        "phrase: hoàn thành trong quý IV năm 2026",
        "trùng hoặc sau hạn tổng hợp",
    ),
    (
        "          phrase: trước ngày 30/6/2026\n",
        "          phrase: trước ngày 30/6/2026\n          deadline_kind: inclusive\n",
        "deadline_kind: inclusive",
        "ghi lý do vào 'note'",
    ),
]


@pytest.mark.parametrize(("old", "new", "needle", "words"), BAD_TASKS)
def test_bad_task_constructs_are_located_errors(
    tmp_path: Path, old: str, new: str, needle: str, words: str
) -> None:
    path = _variant(tmp_path, old, new)
    with pytest.raises(DefinitionError) as caught:
        load([REGISTRY, CALENDAR, path])
    mine = [p for p in caught.value.problems if p.location.file == str(path)]
    assert any(words in p.message for p in mine), [p.message for p in mine]
    line = _line_of(path, needle)
    assert any(p.location.line == line and words in p.message for p in mine), (line, mine)


def test_a_yearless_time_is_read_in_the_plans_year_with_a_warning(tmp_path: Path) -> None:
    path = _variant(tmp_path, AUGUST, "        due: Tháng 8\n")
    catalog = load([REGISTRY, CALENDAR, path])
    plan = catalog.plans[DEPARTMENT].definition
    assert plan.deliverable("so-hoa-ho-so").deadline.date == dt.date(2026, 8, 31)
    [warning] = [w for w in catalog.warnings if "không ghi năm" in w.message]
    assert warning.location.line == _line_of(path, "due: Tháng 8")
    assert "tính là năm 2026" in warning.message


# ---------------------------------------------------------------- fuzzed constructs

_WORDS = st.sampled_from(
    [
        "quý",
        "IV",
        "II",
        "5",
        "tháng",
        "năm",
        "2026",
        "2024",
        "-",
        "–",
        "/",
        "đến",
        "6 tháng đầu năm",
        "thường xuyên",
        "trước ngày",
        "chậm nhất",
        "30/6",
        "31/2/2026",
        "13",
        "0",
        "99999",
        "giai đoạn",
        "",
        "ngày",
        "hoàn thành trong",
    ]
)
_SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-10, 100_000),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12),
    st.lists(_WORDS, max_size=6).map(" ".join),
)
_TASK_VALUES = st.one_of(
    _SCALARS,
    st.lists(_SCALARS, max_size=3),
    st.fixed_dictionaries(
        {"phrase": st.lists(_WORDS, max_size=6).map(" ".join)},
        optional={
            "year": _SCALARS,
            "policy": st.sampled_from(["exact", "next_working_day", "sideways", 3]),
            "deadline_kind": st.sampled_from(["exclusive", "inclusive", "both", None]),
            "progress": st.one_of(
                _SCALARS, st.fixed_dictionaries({"day": _SCALARS, "month": _SCALARS})
            ),
        },
    ),
)
_KEYS = st.sampled_from(["due", "lead", "supporting", "completion", "deliverable_title", "number"])


def _yaml(value: object) -> str:
    return (
        json.dumps(value, ensure_ascii=False, allow_nan=True)
        .replace("NaN", ".nan")
        .replace("Infinity", ".inf")
    )


@settings(
    max_examples=int(os.environ.get("KEHOACH_FUZZ_EXAMPLES", "100")),
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(key=_KEYS, value=_TASK_VALUES, table=st.booleans())
def test_fuzzed_task_constructs_are_loaded_or_refused_with_a_location(
    tmp_path: Path, key: str, value: object, table: bool
) -> None:
    source = MINISTRY_FILE if table else DEPARTMENT_FILE
    anchor = (
        "        text: Truyền thông về chuyển đổi số trong ngành khoa học và công nghệ.\n"
        if table
        else "        text: Tham mưu UBND tỉnh các giải pháp thúc đẩy chuyển đổi số.\n"
    )
    path = _variant(tmp_path, anchor, f"{anchor}        {key}: {_yaml(value)}\n", source)
    registry = MINISTRY_REGISTRY if table else REGISTRY
    try:
        catalog = load([registry, CALENDAR, path])
    except DefinitionError as exc:
        assert exc.problems and all(p.location.line > 0 for p in exc.problems), exc
    else:  # what loads is usable: every tracked task has a real deadline
        plan = next(iter(catalog.plans.values())).definition
        for deliverable in plan.tracked.deliverables:
            assert deliverable.deadline is not None


_SECTION = st.fixed_dictionaries(
    {
        "id": st.sampled_from(["phu-luc", "phu-luc-2", "Phu Luc", ""]),
        "title": st.one_of(st.just("Phụ lục II. Danh mục dự án"), st.just("Kinh phí"), _SCALARS),
        "text": st.one_of(st.just("Theo danh mục kèm theo."), st.just("Ngân sách tỉnh"), _SCALARS),
        "role": st.sampled_from(["funding", "solutions", "appendix", "other", "money", 1]),
    },
    optional={
        "items": st.one_of(_SCALARS, st.lists(_SCALARS, max_size=3)),
        "amounts": st.one_of(
            _SCALARS,
            st.lists(
                st.fixed_dictionaries(
                    {"label": _SCALARS, "amount": _SCALARS},
                    optional={
                        "unit": st.sampled_from(["dong", "billion", "usd"]),
                        "source": _SCALARS,
                    },
                ),
                max_size=2,
            ),
        ),
    },
)
_COMPLETION = st.fixed_dictionaries(
    {},
    optional={
        "by": st.sampled_from(["report", "periodic_report", "email"]),
        "deliverable": st.sampled_from(["bao-cao-6-thang", "khong-co", 3]),
        "field": st.sampled_from(["diem-ho-tro", "so-buoi-tuyen-truyen", "x"]),
        "done_when": _SCALARS,
        "template": st.sampled_from(["ket-qua-nhiem-vu", "bao-cao-cds-6-thang", "khong"]),
        "to": st.sampled_from(["ubnd-tinh-cao-bang", "khong-co", None]),
        "reminders": st.one_of(_SCALARS, st.lists(st.integers(-5, 400), max_size=3)),
    },
)


@settings(
    max_examples=int(os.environ.get("KEHOACH_FUZZ_EXAMPLES", "100")) // 2,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(section=_SECTION, completion=_COMPLETION)
def test_fuzzed_sections_and_completions_are_loaded_or_refused_with_a_location(
    tmp_path: Path, section: dict, completion: dict
) -> None:
    text = DEPARTMENT_FILE.read_text(encoding="utf-8")
    text = text.replace("sections:\n", f"sections:\n  - {_yaml(section)}\n", 1)
    text = text.replace(
        "        due: Tháng 8/2026\n",
        f"        due: Tháng 8/2026\n        completion: {_yaml(completion)}\n",
        1,
    )
    path = tmp_path / DEPARTMENT_FILE.name
    path.write_text(text, encoding="utf-8")
    try:
        catalog = load([REGISTRY, CALENDAR, path])
    except DefinitionError as exc:
        assert exc.problems and all(p.location.line > 0 for p in exc.problems), exc
    else:  # what loads shows: show's text and the portal's sections never raise
        from engine.content import content_lines, sections_of

        plan = catalog.plans[DEPARTMENT].definition
        assert len(sections_of(plan)) == len(plan.sections) and content_lines(plan)


# ---------------------------------------------------------------- on a real Prefect server


@dataclass
class Simulated:
    smtp: object
    home: Path

    def store(self, *files: Path) -> str:
        url = f"sqlite:///{self.home / 'kehoach.sqlite'}"
        store_files(url, *files)
        return url


@pytest.fixture
def simulated(prefect_server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):  # noqa: ARG001
    """kehoach settings for a simulated year on the real Prefect server, with an SMTP server."""
    from engine.config import settings as kehoach_settings
    from tests.fixtures.smtp import SMTPTestServer

    smtp = SMTPTestServer()
    smtp.start()
    for name, value in {
        "KEHOACH_HOME": str(tmp_path / "home"),
        "KEHOACH_SMTP_HOST": smtp.host,
        "KEHOACH_SMTP_PORT": str(smtp.port),
        "KEHOACH_SMTP_SECURITY": "none",
        "KEHOACH_MAIL_HOURS": "any",
        "KEHOACH_PORTAL_SECRET": "tasks-test-secret-0123456789abcdefghijkl",
    }.items():
        monkeypatch.setenv(name, value)
    kehoach_settings.cache_clear()
    try:
        yield Simulated(smtp, tmp_path)
    finally:
        monkeypatch.undo()
        kehoach_settings.cache_clear()
        smtp.stop()


def _simulate(plan_id: str, url: str, start: dt.date, until: dt.date, never: list[dict]):
    from workflows.responses import parse
    from workflows.simulate import simulate

    responses = parse(
        {
            "kind": "responses",
            "defaults": {"submit": "on_time", "days_before_due": [1, 5]},
            "responses": [{**rule, "never": True} for rule in never],
        }
    )
    return simulate(plan_id, start, until, responses, database_url=url, out=lambda _line: None)


def _status_artifact(plan_id: str, cycle: str) -> list[dict]:
    from prefect.artifacts import Artifact

    status = Artifact.get(f"status-{plan_id}-{cycle}")
    assert status is not None and status.type == "table"
    return json.loads(status.data)


@pytest.mark.prefect
def test_a_task_due_in_quarter_iv_is_reminded_goes_overdue_and_is_tracked(
    simulated: Simulated,
) -> None:
    """The department plan simulated from its date to 4/1/2027 through the real flows:
    Sở KH&CN never answers its quý IV task; everyone else answers on time."""
    url = simulated.store(REGISTRY, CALENDAR, DEPARTMENT_FILE)
    never = [{"unit": "so-khcn-cao-bang", "deliverable": QUARTER_IV}]
    result = _simulate(DEPARTMENT, url, dt.date(2026, 2, 10), dt.date(2027, 1, 4), never)
    # every tracked task but the quý IV one, and the communes' two half-yearly reports
    assert result.submissions == 8 + 12
    with session_scope(url) as session:
        [task] = obligations(session, DEPARTMENT, deliverable=QUARTER_IV)
        mails = {
            (m.kind, m.idempotency_key.rsplit(":", 1)[-1]): m
            for m in session.scalars(
                select(OutboxMessage).where(OutboxMessage.obligation_id == task.id)
            )
        }
        days = {key: m.created_at.astimezone(TZ).date() for key, m in mails.items()}
        # reminded 7, 3 and 1 days before Thursday 31/12/2026
        assert days[("reminder", "7")] == dt.date(2026, 12, 24)
        assert days[("reminder", "3")] == dt.date(2026, 12, 28)
        assert days[("reminder", "1")] == dt.date(2026, 12, 30)
        # overdue the day after its last day, not on it
        assert days[("overdue", "")] == dt.date(2027, 1, 1)
        assert task.overdue and task.due_date == dt.date(2026, 12, 31)
        on_the_day = _state(session, task.id, dt.date(2026, 12, 31))
        after = _state(session, task.id, dt.date(2027, 1, 1))
        done = _state(session, None, dt.date(2027, 1, 1))
    assert on_the_day == State.OPEN_WITHIN and after == State.OPEN_OVERDUE
    assert done == {State.DONE_ON_TIME}  # the other 8 tracked tasks
    rows = _status_artifact(DEPARTMENT, "once")
    mine = [r for r in rows if "LGSP" in json.dumps(r, ensure_ascii=False)]
    assert [r["Trạng thái"] for r in mine] == ["Quá hạn"], rows
    told = [m for m in simulated.smtp.messages if "Phối hợp, hạn 31/12" in (m.subject or "")]
    assert told and told[0].rcpt_tos == ["stc@caobang.example"]


@pytest.mark.prefect
def test_the_ministrys_appendix_table_runs_through_its_first_year(simulated: Simulated) -> None:
    """The ministry plan from 15/3/2024 to 3/1/2025: its table rows due in 2024 fall due
    and are answered, Văn phòng Bộ never answers its quý IV row, and the cycle start of
    1/1/2025 opens the 2025 progress reports of the 2025 - 2030 row."""
    url = simulated.store(MINISTRY_REGISTRY, CALENDAR, MINISTRY_FILE)
    never = [{"unit": "van-phong-bo-khcn", "deliverable": "quy-che-so"}]
    result = _simulate(MINISTRY, url, dt.date(2024, 3, 15), dt.date(2025, 1, 3), never)
    # Tháng 8/2024 and the 2024 progress report of 2024 - 2025
    assert result.submissions == 2
    with session_scope(url) as session:
        rows = status_table(session, MINISTRY, today=dt.date(2025, 1, 3))
        states = {(r.cycle_key, r.unit_id, r.deliverable_id): r.state for r in rows}
    assert states[("once", "vu-khtc-bo-khcn", "danh-gia-muc-do")] == State.DONE_ON_TIME
    assert states[("2024", "cuc-cds-bo-khcn", "csdl-khcn-tien-do")] == State.DONE_ON_TIME
    assert states[("once", "van-phong-bo-khcn", "quy-che-so")] == State.OPEN_OVERDUE
    assert states[("2025", "cuc-cds-bo-khcn", "csdl-khcn")] == State.OPEN_WITHIN
    assert not any(k[2] == "nen-tang-dia-phuong" for k in states)  # its 2030 period
    assert states[("2025", "so-khcn-tinh-b", "nen-tang-dia-phuong-tien-do")] == State.OPEN_WITHIN
    assert ("2025", "cuc-cds-bo-khcn", "csdl-khcn-tien-do") not in states  # its last year
    table = _status_artifact(MINISTRY, "once")
    assert "Quá hạn" in {r["Trạng thái"] for r in table}


def _state(session, obligation_id: int | None, day: dt.date):
    """The four-state value of one obligation (or the set of the others) at the end of day."""
    rows = status_table(
        session, DEPARTMENT, "once", today=day, as_of=end_of_day(day) + dt.timedelta(seconds=1)
    )
    if obligation_id is not None:
        return next(r.state for r in rows if r.obligation_id == obligation_id)
    return {r.state for r in rows if r.deliverable_id != QUARTER_IV}
