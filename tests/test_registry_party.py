"""Issue 11: Party bodies in the hierarchy (Party → government bodies), across a change set.

tests/data/registry_party (sample data): the Huyện ủy's plan; its Ban Tuyên giáo and Ban
Dân vận report to it beside the district's UBND and police, through the Huyện ủy's
office, which consolidates as the Huyện ủy for the Tỉnh ủy; the Ban Tuyên giáo
consolidates the government bodies' propaganda reports in its own name. On 1/3/2025 the
two boards merge into the Ban Tuyên giáo và Dân vận and the district police end.

A Party body's report is laid out as Hướng dẫn 36-HD/VPTW says (title "ĐẢNG CỘNG SẢN
VIỆT NAM", the body above the issuer and a "*", "Số 12-BC/HU", "T/M BAN THƯỜNG VỤ"),
never under Nghị định 30's quốc hiệu; the merged board's open work, its consolidation
among it, goes to the new board, which then issues the report under its own name.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from sqlalchemy import func, select

from cli.main import main
from engine.audit_verify import verify
from engine.lifecycle import activate
from engine.party import reads_as_party
from engine.register_numbers import register_of
from engine.store import session_scope
from engine.store.models import AuditEvent, ConsolidatedReport, OutboxMessage, RegistryChange
from tests.approval_support import approve_sign_send, docx_text, final_docx_text
from tests.lifecycle_factory import lc_settings, obligation, obligations, store_files, vn
from tests.registry_history_support import CALENDAR, apply_change, consolidate_at, send_report

DATA = Path(__file__).parent / "data" / "registry_party"
PLAN = "rp-ke-hoach-hu"
YEARLY, PROPAGANDA = "bao-cao-nam", "bao-cao-tuyen-truyen"
BOARDS, HEIR = ("btg-hu", "bdv-hu"), "btgdv-hu"
ENDED = {"btg-hu": [HEIR], "bdv-hu": [HEIR], "ca-huyen": ["ca-tinh"]}
STATE_HEADER = ("CỘNG HÒA XÃ HỘI CHỦ NGHĨA VIỆT NAM", "Độc lập - Tự do - Hạnh phúc")


def _assert_party_layout(text: str) -> None:
    assert "ĐẢNG CỘNG SẢN VIỆT NAM" in text
    for words in STATE_HEADER:
        assert words not in text
    assert "Số:" not in text  # Party numbers read "Số 12-BC/HU"


def _send_year(url: str, year: int, police: str, moment: dt.datetime) -> None:
    """Every unit's two reports of ``year`` (the police: the district's, later the province's)."""
    boards = BOARDS if year == 2024 else (HEIR,)
    for unit in (*boards, "ubnd-huyen", police):
        send_report(url, PLAN, unit, str(year), {"so-buoi": "4"}, moment, YEARLY)
    for unit in ("ubnd-huyen", police):
        send_report(url, PLAN, unit, str(year), {"so-buoi": "3"}, moment, PROPAGANDA)


def test_party_bodies_report_consolidate_and_merge_with_hd36_headers(sqlite_url, tmp_path):
    store_files(sqlite_url, DATA / "registry.yaml", DATA / "plan.yaml", CALENDAR)
    with session_scope(sqlite_url) as session:
        activate(session, PLAN, now=vn(2024, 1, 8), years=[2024])

    # ---- 2024: the boards report beside the government bodies; two Party bodies consolidate
    _send_year(sqlite_url, 2024, "ca-huyen", vn(2024, 9, 3))
    board = consolidate_at(sqlite_url, PLAN, "2024", "tong-hop-tg", vn(2024, 9, 16, 9), tmp_path)
    text = docx_text(board.document_path)
    _assert_party_layout(text)
    _assert_party_layout(board.markdown)
    # the board under its committee, once, with a star; its number after a hyphen
    assert "HUYỆN ỦY CŨ\nBAN TUYÊN GIÁO\n*" in text
    assert "Số …-BC/BTGHU" in text and "\\*" in board.markdown
    assert "TRƯỞNG BAN" in text and "Hoàng Thị Mẫu" in text
    assert "Huyện ủy Cũ (B/c)" in text
    committee = consolidate_at(
        sqlite_url, PLAN, "2024", "tong-hop-hu", vn(2024, 9, 26, 9), tmp_path
    )
    text = docx_text(committee.document_path)
    _assert_party_layout(text)
    assert "ĐẢNG BỘ TỈNH THỬ\nHUYỆN ỦY CŨ\n*" in text and "Số …-BC/HU" in text
    # the committee signs for its standing committee, as Party documents write it
    assert "T/M BAN THƯỜNG VỤ\nBÍ THƯ" in text and "TM." not in text
    assert committee.aggregates == {"so-buoi": 16}
    assert {row["unit_id"] for row in committee.status_table} == {*BOARDS, "ubnd-huyen", "ca-huyen"}

    # ---- 2025: activated before the change, then the boards merge and the police end
    with session_scope(sqlite_url) as session:
        activate(session, PLAN, now=vn(2025, 1, 6), years=[2025])
    result = apply_change(sqlite_url, DATA / "change_2025_03.yaml", vn(2025, 3, 1, 8))
    assert result.ended == ENDED
    with session_scope(sqlite_url) as session:
        open_2025 = [o for o in obligations(session, PLAN, cycle="2025") if o.status.open]
        assert not {o.unit_id for o in open_2025} & set(ENDED)
        # the new board owes one yearly report (the other board's merged into it) and
        # carries the Ban Tuyên giáo's consolidation
        [yearly] = [o for o in open_2025 if o.unit_id == HEIR and o.deliverable_id == YEARLY]
        assert yearly.transferred_from in BOARDS
        [duty] = [o for o in open_2025 if o.deliverable_id == "tong-hop-tg"]
        assert (duty.unit_id, duty.transferred_from) == (HEIR, "btg-hu")
        # the government bodies' propaganda reports now go to the new board
        assert {(o.unit_id, o.to_unit_id) for o in open_2025 if o.deliverable_id == PROPAGANDA} == {
            ("ubnd-huyen", HEIR),
            ("ca-tinh", HEIR),
        }
        # 2024's answered reports stay with the boards of 2024
        for unit in BOARDS:
            old = obligation(session, unit, YEARLY, "2024", PLAN)
            assert old.status.answered and old.transferred_from is None
        told = session.scalars(select(OutboxMessage).where(OutboxMessage.kind == "inherited"))
        by_unit = {m.unit_id: m for m in told}
        assert set(by_unit) == {HEIR, "ca-tinh"}
        assert by_unit[HEIR].to_addrs == ["tuyengiaodanvan.hu@rp.example"]
        assert sorted(by_unit[HEIR].context["from_names"]) == [
            "Ban Dân vận Huyện ủy Cũ",
            "Ban Tuyên giáo Huyện ủy Cũ",
        ]
        # on the audit chain: moved to the heir, or merged into the duty it already had
        rows = session.scalars(select(AuditEvent)).all()
        moved = {
            (r.data["from_unit"], r.data["to_unit"])
            for r in rows
            if r.action == "obligation.transferred"
        }
        merged = [r.data for r in rows if r.action == "obligation.merged"]
        assert ("ca-huyen", "ca-tinh") in moved and ("btg-hu", HEIR) in moved
        assert [(m["unit_id"], m["into"]) for m in merged] == [("bdv-hu", yearly.id)]

    # ---- the new board consolidates as the heir, under its committee, and is numbered
    _send_year(sqlite_url, 2025, "ca-tinh", vn(2025, 9, 3))
    heir = consolidate_at(sqlite_url, PLAN, "2025", "tong-hop-tg", vn(2025, 9, 16, 9), tmp_path)
    _assert_party_layout(heir.markdown)
    assert "**BAN TUYÊN GIÁO VÀ DÂN VẬN (KẾ THỪA BAN TUYÊN GIÁO)**" in heir.markdown
    assert "Số …-BC/BTGDVHU" in heir.markdown
    conf = lc_settings(tmp_path)
    with session_scope(sqlite_url) as session:
        approve_sign_send(session, heir.id, conf, vn(2025, 9, 16, 10))
        report = session.get(ConsolidatedReport, heir.id)
        assert report.number_text == "01-BC/BTGDVHU"
        assert [r.report_id for r in register_of(session, HEIR, 2025)] == [report.id]
        assert register_of(session, "btg-hu", 2025) == []
        final = final_docx_text(session, report, conf)
        assert verify(session).intact
    _assert_party_layout(final)
    assert "Số 01-BC/BTGDVHU" in final and "HUYỆN ỦY CŨ" in final

    # ---- nothing was mailed to an ended unit after its end
    with session_scope(sqlite_url) as session:
        rows = session.scalars(select(OutboxMessage)).all()
        late = [m for m in rows if m.unit_id in ENDED and m.created_at >= vn(2025, 3, 1, 0)]
        assert late == [] and len(rows) > 20


def test_after_the_district_ends_the_commune_party_committee_reports_as_the_huyen_uy(
    sqlite_url, tmp_path
):
    """The Huyện ủy ends on 1/7/2025: its report goes out as the commune's Party committee,
    headed with the organisation above it (ĐẢNG BỘ TỈNH THỬ) and signed T/M by its head."""
    store_files(sqlite_url, DATA / "registry.yaml", DATA / "plan.yaml", CALENDAR)
    with session_scope(sqlite_url) as session:
        activate(session, PLAN, now=vn(2025, 1, 6), years=[2025])
    apply_change(sqlite_url, DATA / "change_2025_03.yaml", vn(2025, 3, 1, 8))
    for unit in (HEIR, "ubnd-huyen", "ca-tinh"):  # all sent before the district ends
        send_report(sqlite_url, PLAN, unit, "2025", {"so-buoi": "2"}, vn(2025, 6, 20), YEARLY)
    result = apply_change(sqlite_url, DATA / "change_2025_07.yaml", vn(2025, 7, 1, 8))
    assert set(result.ended) == {"huyen-uy", "vp-hu", HEIR, "ubnd-huyen"}
    with session_scope(sqlite_url) as session:
        [duty] = obligations(session, PLAN, deliverable="tong-hop-hu", cycle="2025")
        assert (duty.unit_id, duty.transferred_from, duty.to_unit_id) == (
            "dang-uy-xa",
            "vp-hu",
            "tinh-uy",
        )
    report = consolidate_at(sqlite_url, PLAN, "2025", "tong-hop-hu", vn(2025, 9, 26, 9), tmp_path)
    text = docx_text(report.document_path)
    _assert_party_layout(text)
    # the .docx breaks the header over lines
    assert "ĐẢNG BỘ TỈNH THỬ ĐẢNG ỦY XÃ CŨ MỚI (KẾ THỪA HUYỆN ỦY CŨ) *" in " ".join(text.split())
    assert "Số …-BC/ĐU" in text
    assert "T/M BAN THƯỜNG VỤ\nBÍ THƯ" in text and "Lý Văn Mẫu" in text
    assert "Tỉnh ủy Thử (B/c)" in text and report.aggregates == {"so-buoi": 6}
    # the board whose duty was merged into the new board's owes nothing: it is neither
    # "on time" nor "missing", and the new board's row says it answered for both
    rows = [line for line in report.markdown.splitlines() if "Ban Dân vận" in line]
    assert rows == [
        "| 3 | Ban Tuyên giáo và Dân vận Huyện ủy Cũ | 10/9/2025 | Hoàn thành đúng hạn | tiếp "
        "nhận từ Ban Tuyên giáo Huyện ủy Cũ; gộp nghĩa vụ của Ban Dân vận Huyện ủy Cũ |"
    ], rows
    assert "chưa báo cáo:" not in report.markdown and "3 đơn vị báo cáo" in report.markdown


# ---------------------------------------------------------------- refused


def test_a_party_body_with_a_state_kind_is_refused_located(tmp_path, capsys):
    """A Party board recorded as a department would be headed as a state document."""
    registry = (DATA / "registry.yaml").read_text(encoding="utf-8")
    wrong = tmp_path / "registry.yaml"
    wrong.write_text(
        registry.replace(
            "    short: BDVHU\n    kind: party-board", "    short: BDVHU\n    kind: department"
        ),
        encoding="utf-8",
    )
    line = wrong.read_text(encoding="utf-8").splitlines().index("    kind: department") + 1
    assert main(["validate", str(wrong), str(DATA / "plan.yaml"), str(CALENDAR)]) == 3
    err = capsys.readouterr().err
    assert f"{wrong}:{line}:" in err and "Hướng dẫn 36-HD/VPTW" in err, err
    assert "'Ban Dân vận Huyện ủy Cũ' là tên một cơ quan của Đảng" in err
    assert "Traceback" not in err


def test_a_change_set_creating_a_party_body_as_a_state_kind_is_refused(
    sqlite_url, tmp_path, capsys
):
    store_files(sqlite_url, DATA / "registry.yaml", DATA / "plan.yaml", CALENDAR)
    change = (DATA / "change_2025_03.yaml").read_text(encoding="utf-8")
    wrong = tmp_path / "change.yaml"
    wrong.write_text(change.replace("kind: party-board", "kind: department"), encoding="utf-8")
    line = wrong.read_text(encoding="utf-8").splitlines().index("    kind: department") + 1
    code = main(
        ["--database-url", sqlite_url, "registry", "apply", str(wrong), "--at", "2025-03-02"]
    )
    err = capsys.readouterr().err
    assert code == 3
    assert f"{wrong}:{line}:" in err and "party-board" in err, err
    with session_scope(sqlite_url) as session:
        assert session.scalar(select(func.count()).select_from(RegistryChange)) == 0


@pytest.mark.parametrize(
    ("name", "party"),
    [
        ("Ban Tuyên giáo Huyện ủy Hạ Lang", True),
        ("Đảng uỷ xã Thị Hoa", True),
        ("Văn phòng Tỉnh ủy Cao Bằng", True),
        ("Ủy ban nhân dân huyện Hạ Lang", False),
        ("Ủy ban Mặt trận Tổ quốc Việt Nam huyện Hạ Lang", False),
    ],
)
def test_which_names_read_as_party_bodies(name, party):
    assert reads_as_party(name) is party
