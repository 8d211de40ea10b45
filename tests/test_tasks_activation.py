"""Tasks as tracked obligations (issue 10, item 1): what activating the sample plans
(tests/tasks_support.py) makes of their tasks: the leads' obligations and emails, the
supporting units' notices, the appendix rows' yearly progress, a task completed by a
periodic report or on the portal, and a new version that drops a task's time."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from sqlalchemy import select

from engine.lifecycle import activate
from engine.store import session_scope
from engine.store.models import OutboxMessage
from tests.lifecycle_factory import obligations, store_files, vn
from tests.tasks_support import (
    CALENDAR,
    DEPARTMENT,
    DEPARTMENT_FILE,
    MINISTRY,
    MINISTRY_FILE,
    MINISTRY_REGISTRY,
    QUARTER_IV,
    REGISTRY,
)


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
