"""`kehoach status --at DATE` is the state at the end of DATE: nothing recorded after it
counts (a report sent later, a return or an acceptance decided later, a duty moved to a
successor later, a cycle closed later, an obligation created later); the table fits 100
columns, every column behind --wide.

The lifecycle district plan (tests/data/lifecycle), activated 4/1/2027, yearly report due
Friday 10/9/2027: xa-a answers on time; xa-b four days late (14/9); phong-vh on time,
returned on 9/9, sends again on 13/9 (late); ca-huyen on time, accepted on 20/9; the
sweep of 1/7/2027 moves xa-c's and xa-e's duties to their successor xa-moi.
"""

from __future__ import annotations

import datetime as dt
import re
import unicodedata

import pytest

from cli import main
from engine.lifecycle import activate, intake, record_submission, review, sweep
from engine.status import State, status_table
from engine.store import session_scope
from tests.lifecycle_factory import (
    DISTRICT,
    GOOD_REPORT,
    PROVINCE,
    SUB_PLAN,
    obligation,
    prepared,
    store_files,
    vn,
)
from tests.registry_history_support import (
    RH_CHANGE,
    RH_FILES,
    RH_PLAN,
    WATER,
    WATER_2024,
    WATER_2025,
    apply_change,
    send_report,
)

REPORT = "bao-cao-nam"
DEFINITIONS_SEED = "ha-lang-pccc-2022"


def _send(url: str, unit: str, moment: dt.datetime) -> int:
    with session_scope(url) as session:
        sub = record_submission(
            session, obligation(session, unit).id, values=GOOD_REPORT, now=moment
        )
        intake(session, sub.id, now=moment)
        return sub.id


@pytest.fixture
def year_url(sqlite_url: str) -> str:
    prepared(sqlite_url)
    with session_scope(sqlite_url) as session:
        activate(session, PROVINCE, now=vn(2027, 1, 4))
        activate(session, DISTRICT, now=vn(2027, 1, 4))
    with session_scope(sqlite_url) as session:
        sweep(session, DISTRICT, today=dt.date(2027, 7, 1))  # xa-c, xa-e -> xa-moi
    _send(sqlite_url, "xa-a", vn(2027, 9, 8))
    returned = _send(sqlite_url, "phong-vh", vn(2027, 9, 6))
    accepted = _send(sqlite_url, "ca-huyen", vn(2027, 9, 6))
    with session_scope(sqlite_url) as session:
        review(
            session,
            returned,
            decision="return",
            reason="Thiếu số liệu",
            by="ca",
            now=vn(2027, 9, 9),
        )
    _send(sqlite_url, "phong-vh", vn(2027, 9, 13))
    _send(sqlite_url, "xa-b", vn(2027, 9, 14))
    with session_scope(sqlite_url) as session:
        review(session, accepted, decision="accept", by="ca", now=vn(2027, 9, 20))
    return sqlite_url


def _states(
    url: str, day: dt.date | None, deliverable: str = REPORT, cycle: str = "2027"
) -> dict[str, tuple[State, str | None]]:
    """{unit: (state, review state)} of one deliverable, as of the end of ``day``."""
    as_of = vn(day.year, day.month, day.day, 0) + dt.timedelta(days=1) if day else None
    with session_scope(url) as session:
        rows = status_table(
            session,
            DISTRICT,
            cycle,
            today=day or dt.date(2027, 9, 30),
            deliverable_id=deliverable,
            as_of=as_of,
        )
    return {r.unit_id: (r.state, r.review_state) for r in rows}


def test_a_report_sent_after_the_day_is_not_counted(year_url: str) -> None:
    now = _states(year_url, None)
    assert now["xa-b"][0] is State.DONE_LATE  # today: four days late

    on_11 = _states(year_url, dt.date(2027, 9, 11))
    assert on_11["xa-b"] == (State.OPEN_OVERDUE, None)  # sent on 14/9: not yet
    assert on_11["xa-a"] == (State.DONE_ON_TIME, "validated")
    # returned on 9/9, sent again only on 13/9: owed and overdue on 11/9
    assert on_11["phong-vh"] == (State.OPEN_OVERDUE, "returned")
    # accepted on 20/9: on 11/9 it was taken in, not accepted yet
    assert on_11["ca-huyen"] == (State.DONE_ON_TIME, "validated")

    on_8 = _states(year_url, dt.date(2027, 9, 8))
    assert on_8["phong-vh"] == (State.DONE_ON_TIME, "validated")  # the return came on 9/9
    assert on_8["xa-b"] == (State.OPEN_WITHIN, None)

    on_21 = _states(year_url, dt.date(2027, 9, 21))
    assert on_21["ca-huyen"] == (State.DONE_ON_TIME, "accepted")
    assert on_21["phong-vh"][0] is State.DONE_LATE and on_21["xa-b"][0] is State.DONE_LATE
    assert on_21 == {unit: (state, rs) for unit, (state, rs) in now.items()}


def test_a_duty_moved_to_a_successor_later_still_belongs_to_the_old_unit(year_url: str) -> None:
    """The sub-plans (due 3/2/2027, never sent) of xa-c and xa-e, abolished on 30/6: the
    sweep of 1/7 moved one to xa-moi and merged the other into it (waived)."""
    before = _states(year_url, dt.date(2027, 6, 30), SUB_PLAN, "once")
    assert {"xa-c", "xa-e"} <= set(before) and "xa-moi" not in before
    assert before["xa-c"][0] is State.OPEN_OVERDUE and before["xa-e"][0] is State.OPEN_OVERDUE
    after = _states(year_url, dt.date(2027, 7, 2), SUB_PLAN, "once")
    assert after["xa-moi"][0] is State.OPEN_OVERDUE
    [merged] = {"xa-c", "xa-e"} & set(after)
    assert after[merged][0] is State.DONE_ON_TIME  # waived counts as done


def test_nothing_existed_before_activation(year_url: str, capsys) -> None:
    assert _states(year_url, dt.date(2027, 1, 3)) == {}
    argv = ["--database-url", year_url, "status", DISTRICT, "--at", "3/1/2027", "--no-color"]
    assert main(argv) == 0
    assert "chưa có nghĩa vụ nào" in capsys.readouterr().out


def test_the_command_shows_the_day_it_is_asked_for(year_url: str, capsys) -> None:
    argv = ["--database-url", year_url, "status", DISTRICT, "--cycle", "2027", "--no-color"]
    assert main([*argv, "--at", "2027-09-11"]) == 0
    out = capsys.readouterr().out
    assert "tính đến hết ngày 11/9/2027" in out
    [xa_b] = [line for line in out.splitlines() if line.startswith("Ủy ban nhân dân xã Bế Triều ")]
    assert "Chưa hoàn thành, quá hạn" in xa_b and "trễ 1 ngày" in xa_b


# ---------------------------------------------------------------- width


def _columns(line: str) -> int:
    plain = re.sub(r"\033\[[0-9;]*m", "", line)
    return sum(0 if unicodedata.combining(ch) else 1 for ch in unicodedata.normalize("NFC", plain))


def test_the_seed_plans_table_fits_100_columns_and_wide_shows_everything(tmp_path, capsys) -> None:
    from engine.loader import load
    from engine.repository import store_catalog
    from engine.store import migrate
    from tests.test_workflows import SEED_FILES

    url = f"sqlite:///{tmp_path / 'seed.sqlite'}"
    migrate(url)
    with session_scope(url) as session:
        store_catalog(session, load(SEED_FILES))
        activate(session, DEFINITIONS_SEED, now=vn(2023, 8, 12))
    for unit, day in (("ubnd-xa-thi-hoa", 15), ("mttq-huyen-ha-lang", 8)):
        with session_scope(url) as session:
            sub = record_submission(
                session,
                obligation(session, unit, "bao-cao-nam", "2023", DEFINITIONS_SEED).id,
                values=None,
                strict=False,
                now=vn(2023, 9, day),
            )
            intake(session, sub.id, now=vn(2023, 9, day))
    argv = ["--database-url", url, "status", DEFINITIONS_SEED, "--at", "2023-09-20"]
    assert main(argv) == 0
    narrow = capsys.readouterr().out.splitlines()
    assert len(narrow) > 60  # 32 reports, 32 sub-plans, the duty, headings
    assert max(_columns(line) for line in narrow) <= 100, max(narrow, key=_columns)
    assert any("Hoàn thành quá hạn" in line and "Thị Hoa" in line for line in narrow)

    assert main([*argv, "--wide"]) == 0
    wide = capsys.readouterr().out
    assert "Ủy ban Mặt trận Tổ quốc Việt Nam huyện Hạ Lang" in wide  # not cut
    assert "(+07:00)" in wide  # when it was sent, in Viet Nam time
    assert max(_columns(line) for line in wide.splitlines()) > 100


# ---------------------------------------------------------------- names as of the day


def _rh_year(url: str) -> str:
    """The ministries' plan (tests/data/registry_history): the water office reports for
    2024 on 5/11/2024 under its old name; the change set of 1/3/2025 (applied on 15/1)
    merges the ministries, moves the office and renames it; 2025 is activated on 20/1."""
    store_files(url, *RH_FILES)
    with session_scope(url) as session:
        activate(session, RH_PLAN, now=vn(2024, 1, 2), years=[2024])
    send_report(url, RH_PLAN, WATER, "2024", {"so-ho-so": "12"}, vn(2024, 11, 5))
    apply_change(url, RH_CHANGE, vn(2025, 1, 15))
    with session_scope(url) as session:
        activate(session, RH_PLAN, now=vn(2025, 1, 20), years=[2025])
        sweep(session, RH_PLAN, today=dt.date(2025, 3, 1))  # the change takes effect
    return url


def _names(url: str, cycle: str, day: dt.date) -> dict[tuple[str, str], tuple[str, str | None]]:
    """{(deliverable, unit): (its name, the name of the unit it took over from)}."""
    as_of = vn(day.year, day.month, day.day, 0) + dt.timedelta(days=1)
    with session_scope(url) as session:
        rows = status_table(session, RH_PLAN, cycle, today=day, as_of=as_of)
    return {(r.deliverable_id, r.unit_id): (r.unit_name, r.transferred_from_name) for r in rows}


def test_units_are_named_as_they_were_named_then(sqlite_url: str, capsys) -> None:
    url = _rh_year(sqlite_url)
    old_ministry, new_ministry = (
        "Bộ Tài nguyên và Môi trường (thử)",
        "Bộ Nông nghiệp và Môi trường (thử)",
    )
    # 2024, seen at its end: the names of 2024, the duty still with the old ministry
    then = _names(url, "2024", dt.date(2024, 12, 31))
    assert then[(REPORT, WATER)] == (WATER_2024, None)
    assert then[("tong-hop", "bo-tnmt")] == (old_ministry, None)
    # 2024 seen after the reform: the report sent in 2024 keeps its 2024 name; the open
    # consolidation went to the new ministry, which says whom it took it over from
    later = _names(url, "2024", dt.date(2025, 12, 1))
    assert later[(REPORT, WATER)] == (WATER_2024, None)
    assert later[("tong-hop", "bo-nnmt")] == (new_ministry, old_ministry)
    # 2025: the new name
    assert _names(url, "2025", dt.date(2025, 12, 1))[(REPORT, WATER)] == (WATER_2025, None)

    argv = ["--database-url", url, "status", RH_PLAN, "--wide", "--no-color"]
    assert main([*argv, "--cycle", "2024", "--at", "2025-12-01"]) == 0
    shown = capsys.readouterr().out
    assert WATER_2024 in shown and "thuộc Bộ mới" not in shown
    assert f"tiếp nhận từ {old_ministry}" in shown
    assert main([*argv, "--cycle", "2025", "--at", "2025-12-01"]) == 0
    assert WATER_2025 in capsys.readouterr().out
