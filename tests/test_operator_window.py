"""What an operator sees in Prefect, on the real server: who is late, at a glance.

The lifecycle district plan (tests/data/lifecycle; reports due Friday 10/9/2027):
xã Bế Triều (xa-b) sends four days late, xã A on time, Phòng Văn hóa on time and is
returned.  The real flows run in this process against the session's Prefect server:
- the late intake run ends in a state named "Trễ hạn" (type Completed), the on-time one
  "Đúng hạn", the review that returned the report "Trả lại";
- ``status-<plan>-<cycle>`` has Vietnamese columns, the status first, the worst rows
  first, times in Viet Nam time with +07:00; ``summary-<plan>-<cycle>`` names the late
  and missing units before the others;
- the events are named in Vietnamese (dotted, NFC), their resource ids are ASCII, their
  resource names Vietnamese, and an event emitted by a flow names no task run of
  another step.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import time
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from engine.config import settings
from engine.lifecycle import activate, record_submission
from engine.store import session_scope
from tests.lifecycle_factory import DISTRICT, GOOD_REPORT, PROVINCE, obligation, prepared, vn

pytestmark = [pytest.mark.prefect]

LATE_UNIT, ON_TIME_UNIT, RETURNED_UNIT = "xa-b", "xa-a", "phong-vh"
LATE_NAME = "Ủy ban nhân dân xã Bế Triều"


@dataclass
class Window:
    url: str
    runs: dict[str, str]  # what -> flow run id
    submissions: dict[str, int]


def _submit(url: str, unit: str, moment: dt.datetime) -> int:
    with session_scope(url) as session:
        return record_submission(
            session, obligation(session, unit).id, values=GOOD_REPORT, now=moment
        ).id


@pytest.fixture(scope="module")
def window(prefect_server, tmp_path_factory) -> Iterator[Window]:  # noqa: ARG001
    patch = pytest.MonkeyPatch()
    try:
        yield operator_window(tmp_path_factory.mktemp("window"), patch)
    finally:
        patch.undo()
        settings.cache_clear()


def operator_window(folder, patch: pytest.MonkeyPatch) -> Window:  # type: ignore[no-untyped-def]
    """The three submissions, their intake runs, the review and the sweep, run in this
    process against the Prefect API it points at (also scripts/prefect-ui-shots.py)."""
    from prefect.events.worker import EventsWorker

    from workflows.common import in_process_runs
    from workflows.intake import intake_flow
    from workflows.review import review_flow
    from workflows.sweep import sweep_flow

    url = prepared(f"sqlite:///{folder / 'kehoach.sqlite'}")
    patch.setenv("KEHOACH_HOME", str(folder))
    patch.setenv("KEHOACH_PORTAL_SECRET", "kehoach-test-secret-window-0123456789")
    settings.cache_clear()
    with session_scope(url) as session:
        activate(session, PROVINCE, now=vn(2027, 1, 4))
        activate(session, DISTRICT, now=vn(2027, 1, 4))
    subs = {
        LATE_UNIT: _submit(url, LATE_UNIT, vn(2027, 9, 14)),
        ON_TIME_UNIT: _submit(url, ON_TIME_UNIT, vn(2027, 9, 8)),
        RETURNED_UNIT: _submit(url, RETURNED_UNIT, vn(2027, 9, 6)),
    }
    options = {"database_url": url, "dispatch": False, "request_review": False}
    runs: dict[str, str] = {}
    with in_process_runs():
        # A new events worker: it starts inside the first task run of the next flow,
        # so an event of the flow's own code would name that task without the fix.
        EventsWorker.drain_all()
        for what, unit, moment in (
            ("late", LATE_UNIT, vn(2027, 9, 14, 9, 5)),
            ("on_time", ON_TIME_UNIT, vn(2027, 9, 8, 9, 5)),
            ("returned_intake", RETURNED_UNIT, vn(2027, 9, 6, 9, 5)),
        ):
            state = intake_flow(subs[unit], now=moment.isoformat(), return_state=True, **options)
            runs[what] = str(state.state_details.flow_run_id)
            assert isinstance(state.result(), dict)  # the caller still gets the dict
        state = review_flow(
            subs[RETURNED_UNIT],
            decision="return",
            reason="Thiếu số đội dân phòng",
            by="Công an huyện",
            now=vn(2027, 9, 9).isoformat(),
            database_url=url,
            dispatch=False,
            return_state=True,
        )
        runs["review"] = str(state.state_details.flow_run_id)
        # the daily sweep marks the overdue duties and publishes the cycle's artifacts
        sweep_flow(
            DISTRICT,
            now=vn(2027, 9, 15, 7).isoformat(),
            database_url=url,
            dispatch=False,
            consolidate_due=False,
            close_due=False,
        )
    return Window(url, runs, subs)


def _flow_run(run_id: str):
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        return client.read_flow_run(run_id)


# ---------------------------------------------------------------- run states


def test_a_late_intake_run_ends_in_a_state_named_tre_han(window: Window) -> None:
    run = _flow_run(window.runs["late"])
    assert run.state.name == "Trễ hạn" and run.state.is_completed()
    assert run.state_name == "Trễ hạn"  # what the runs list shows
    assert LATE_NAME in run.state.message and "trễ 4 ngày" in run.state.message
    # the badge stays green (type Completed): the lateness also heads the run's name, the
    # bold line of the runs list (its diacritics kept)
    assert run.name.startswith(f"TRỄ HẠN · nộp · {LATE_NAME} · ")

    on_time = _flow_run(window.runs["on_time"])
    assert (on_time.state.name, on_time.state.type.value) == ("Đúng hạn", "COMPLETED")
    assert on_time.name.startswith("nộp · Ủy ban nhân dân xã An Lạc · ")


def test_a_review_that_returned_the_report_ends_tra_lai(window: Window) -> None:
    run = _flow_run(window.runs["review"])
    assert run.state.name == "Trả lại" and run.state.is_completed()
    assert "Thiếu số đội dân phòng" in run.state.message
    assert run.name.startswith("TRẢ LẠI · duyệt · Phòng Văn hóa")
    intake = _flow_run(window.runs["returned_intake"])  # sent on time, returned later
    assert intake.name.startswith("nộp · Phòng Văn hóa")


# ---------------------------------------------------------------- artifacts

RANK = {"Quá hạn": 0, "Trễ hạn": 1, "Còn hạn": 2, "Đúng hạn": 3}


def test_the_status_table_is_vietnamese_worst_first_in_local_time(window: Window) -> None:
    from prefect.artifacts import Artifact

    from engine.status import width
    from workflows.artifacts import TABLE_COLUMNS

    status = Artifact.get(f"status-{DISTRICT}-2027")
    assert status is not None and status.type == "table"
    rows = json.loads(status.data)
    # four short columns: they fit the 582 px Prefect's UI (V2) gives a table artifact
    # at 1280 px (seven took 1,606 px and cut "Hạn" and "Ghi chú"); the rest is in the
    # summary artifact
    assert list(rows[0]) == ["Trạng thái", "Đơn vị", "Nội dung", "Ghi chú (+07:00)"]
    assert all(list(row) == list(TABLE_COLUMNS) for row in rows)
    assert all(width(row[h]) <= n for row in rows for h, n in TABLE_COLUMNS.items())
    assert sum(TABLE_COLUMNS.values()) == 73  # ~7 px a character, 16 px a cell: 582 px
    ranks = [RANK[row["Trạng thái"]] for row in rows]
    assert ranks == sorted(ranks) and ranks[0] == 0 and 3 in ranks
    [late] = [row for row in rows if row["Đơn vị"] == "UBND xã Bế Triều"]  # abbreviated
    assert late["Trạng thái"] == "Trễ hạn" and late["Nội dung"] == "Báo cáo kết quả th…"
    assert late["Ghi chú (+07:00)"] == "14/9 09:00, trễ 4 ngày"  # sent 09:00 Viet Nam time
    returned = next(r for r in rows if r["Đơn vị"].startswith("Phòng Văn hóa"))
    assert returned["Trạng thái"] == "Quá hạn"
    assert returned["Ghi chú (+07:00)"] == "quá 5 ngày, trả lại"
    within = [r for r in rows if r["Trạng thái"] == "Còn hạn"]
    assert [r["Ghi chú (+07:00)"] for r in within] == ["còn 12 ngày"]  # the consolidation
    # the news first (what a card in the artifacts list shows), then which cycle and day
    assert status.description.startswith("4 quá hạn, chưa gửi · 1 trễ hạn · ")
    assert status.description.endswith(" — Kế hoạch 15/KH-UBND, năm 2027 · ngày 15/9/2027")


def test_the_cycle_summary_names_the_late_and_missing_units_first(window: Window) -> None:
    from prefect.artifacts import Artifact

    summary = Artifact.get(f"summary-{DISTRICT}-2027")
    assert summary is not None and summary.type == "markdown"
    text = str(summary.data)
    overdue = text.index("## Chưa hoàn thành, quá hạn")
    late = text.index("## Hoàn thành quá hạn")
    on_time = text.index("## Hoàn thành đúng hạn")
    assert overdue < late < on_time
    # the headline, above the sections, names who is overdue and who was late
    headline = text[: text.index("## ")]
    assert f"Trễ hạn (1): {LATE_NAME}" in headline
    assert "Quá hạn, chưa gửi (4): " in headline and "xã Quang Long mới" in headline
    assert overdue < text.index("Ủy ban nhân dân xã Quang Long mới", overdue) < late  # no answer
    assert late < text.index(f"**{LATE_NAME}**") < on_time
    # what the status table leaves out is here: the whole name, what, due, sent, note
    [late_row] = [line for line in text.splitlines() if f"**{LATE_NAME}**" in line]
    assert "Báo cáo kết quả thực hiện hằng năm" in late_row and "| 10/9/2027 |" in late_row
    assert "14/9/2027 09:00 (+07:00)" in late_row and "trễ 4 ngày" in late_row
    assert text.index("Ủy ban nhân dân xã An Lạc") > on_time  # xa-a, on time
    assert summary.description.startswith("Quá hạn, chưa gửi (4): ")
    # the plan by its name, not its id (the demo's summary was headed "ha-lang-pccc-2022")
    assert summary.description.endswith(" — Kế hoạch 15/KH-UBND, năm 2027 · ngày 15/9/2027")
    heading, _, rest = text.partition("\n\n")
    assert heading == "# Kế hoạch 15/KH-UBND, năm 2027"
    assert rest.startswith("Kế hoạch số 15/KH-UBND ngày "), rest[:200]
    # a link to the cycle's events only, over the last year (the page shows a day)
    link = re.search(r"\[Sự kiện của kỳ này\]\((\S+)\)", text)
    assert link is not None, text[:600]
    assert link[1] == (
        f"{settings_ui()}/v2/events?resource=%5B%22kehoach.cycle.{DISTRICT}.2027%22%5D"
        "&seconds=-31622400"
    )


def settings_ui() -> str:
    from prefect.settings import get_current_settings

    return str(get_current_settings().ui_url).rstrip("/")


# ---------------------------------------------------------------- events

EVENT_NAME = re.compile(r"kehoach(\.[a-zà-ỹđ]+(-[a-zà-ỹđ]+)*)+")


def _events(names: list[str], wanted: int):
    from prefect.client.orchestration import get_client
    from prefect.events.filters import EventFilter, EventNameFilter

    with get_client(sync_client=True) as client:
        deadline = time.monotonic() + 20  # events go through a websocket, then a queue
        while True:
            page = client.read_events(EventFilter(event=EventNameFilter(name=names)), limit=50)
            if page.total >= wanted or time.monotonic() > deadline:
                return page.events
            time.sleep(0.5)


def test_events_are_named_in_vietnamese_with_ascii_resource_ids(window: Window) -> None:
    from workflows.events import (
        EVENT_NAMES,
        SUBMISSION_RECEIVED,
        SUBMISSION_RETURNED,
        SUBMITTED_LATE,
        SUBMITTED_ON_TIME,
    )

    for name in EVENT_NAMES:
        assert EVENT_NAME.fullmatch(name) and unicodedata.is_normalized("NFC", name), name
    names = [SUBMISSION_RECEIVED, SUBMITTED_LATE, SUBMITTED_ON_TIME, SUBMISSION_RETURNED]
    events = _events(names, 7)
    assert {e.event for e in events} == set(names)
    for event in events:
        for resource in [event.resource, *event.related]:
            assert resource.id.isascii(), resource.id
    [late] = [e for e in events if e.event == SUBMITTED_LATE]
    assert late.event == "kehoach.nộp.trễ-hạn"
    assert late.resource.id.startswith("kehoach.obligation.")
    assert late.resource.name.startswith(LATE_NAME) and late.resource.name.endswith("trễ hạn")
    related = {r.role: r for r in late.related}
    assert related["unit"].name == LATE_NAME
    # What a person reads names the plan by its short title; its id stays in the ids.
    assert related["plan"].name == "Kế hoạch 15/KH-UBND"
    assert related["plan"].id == f"kehoach.plan.{DISTRICT}"
    assert related["cycle"].name == "Kỳ năm 2027 · Kế hoạch 15/KH-UBND"
    assert related["cycle"].id == f"kehoach.cycle.{DISTRICT}.2027"
    assert all(DISTRICT not in (r.name or "") for r in [late.resource, *late.related])


def test_an_event_of_a_flow_names_no_task_run(window: Window) -> None:
    """The intake flow emits its events from its own code, not from a task: Prefect's
    events worker, started inside the intake's first task run, added that task run to
    every later event of the process until emit() set the run variables itself."""
    from workflows.events import SUBMISSION_RECEIVED, SUBMITTED_LATE

    events = _events([SUBMISSION_RECEIVED, SUBMITTED_LATE], 4)
    assert events
    for event in events:
        roles = {r.role: r for r in event.related}
        assert "task-run" not in roles, (event.event, roles["task-run"].name)
        assert "flow-run" in roles


def test_the_summary_names_a_unit_on_time_twice_once() -> None:
    """The demo's summary listed "Công an huyện Hạ Lang" twice among the on-time units
    (its own report and the consolidation): each unit once, with how many."""
    from engine.states import ObligationStatus
    from engine.status import State, StatusRow
    from workflows.artifacts import summary_markdown

    def row(n: int, unit: str, title: str) -> StatusRow:
        day = dt.date(2023, 9, 11)
        return StatusRow(
            n, DISTRICT, "2023", unit, unit, f"d{n}", title, "report", day, day,
            State.DONE_ON_TIME, None, None, None, 1, vn(2023, 9, 5, 9), ObligationStatus.SUBMITTED,
            None,
        )  # fmt: skip

    rows = [
        row(1, "Công an huyện Hạ Lang", "Báo cáo sơ kết"),
        row(2, "Phòng Y tế huyện Hạ Lang", "Báo cáo sơ kết"),
        row(3, "Công an huyện Hạ Lang", "Tổng hợp báo cáo sơ kết"),
    ]
    text = summary_markdown(rows, DISTRICT, "2023", dt.date(2023, 9, 25))
    paragraph = text.split("## Hoàn thành đúng hạn: 3\n\n")[1].strip()
    assert paragraph == "Công an huyện Hạ Lang (2 nội dung), Phòng Y tế huyện Hạ Lang."
