"""Tasks as tracked obligations (issue 10, item 1): the sample plans simulated through
the real flows on a real Prefect server: reminders, overdue, the status table."""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import select

from engine.calendar import TZ, end_of_day
from engine.states import State
from engine.status import status_table
from engine.store import session_scope
from engine.store.models import OutboxMessage
from tests.lifecycle_factory import obligations, store_files
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
