"""Fields the schema accepted and nothing used now have an effect (issue 10, item 4):
a yearly report's data cut-off period, a deliverable's own mode, a duty's measuring
field; ``routing.person`` in every email's "Gửi đến"."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import select

from cli.main import main
from engine.lifecycle import activate
from engine.store import session_scope
from engine.store.models import OutboxMessage
from notifications.render import render_parts
from tests.lifecycle_factory import DEFINITIONS, lc_settings, obligations, store_files, vn

SEED_FILES = [
    DEFINITIONS / "registry_cao_bang.yaml",
    DEFINITIONS / "calendar_vn.yaml",
    DEFINITIONS / "cao_bang_2720_kh_ubnd.yaml",
    DEFINITIONS / "ha_lang_pccc_2022.yaml",
]
SEED = "ha-lang-pccc-2022"
EXAMPLES = DEFINITIONS / "examples"
EXAMPLE = EXAMPLES / "cao_bang_dau_tu_cong_2026.yaml"
EXAMPLE_FILES = [EXAMPLES / "registry_cao_bang_2026.yaml", DEFINITIONS / "calendar_vn.yaml"]
CUTOFF = "Số liệu tính từ ngày 1/9/2022 đến hết ngày 31/8/2023"


def _mail_text(session, obligation_id: int, kind: str = "assignment") -> str:  # type: ignore[no-untyped-def]
    row = session.scalar(
        select(OutboxMessage).where(
            OutboxMessage.obligation_id == obligation_id, OutboxMessage.kind == kind
        )
    )
    _subject, text, _html = render_parts(row.kind, dict(row.context))
    return " ".join(text.split())


def test_the_seeds_cutoff_is_in_its_emails_and_its_report(sqlite_url: str, tmp_path: Path) -> None:
    from engine.consolidation import consolidate

    store_files(sqlite_url, *SEED_FILES)
    with session_scope(sqlite_url) as session:
        activate(session, SEED, now=vn(2023, 1, 3), years=[2023])
        [owed] = [
            o
            for o in obligations(session, SEED, deliverable="bao-cao-nam", cycle="2023")
            if o.unit_id == "ubnd-xa-thi-hoa"
        ]
        text = _mail_text(session, owed.id)
    assert f"Thời gian chốt số liệu: {CUTOFF} (Kế hoạch không nêu thời gian chốt số liệu." in text
    with session_scope(sqlite_url) as session:
        result = consolidate(
            session, SEED, "2023", "tong-hop-bao-cao-nam", now=vn(2023, 9, 27),
            settings=lc_settings(tmp_path),
        )  # fmt: skip
    assert f"{CUTOFF}." in result.markdown


def _example_variant(tmp_path: Path, old: str, new: str) -> Path:
    text = EXAMPLE.read_text(encoding="utf-8")
    assert old in text
    path = tmp_path / EXAMPLE.name
    path.write_text(text.replace(old, new, 1), encoding="utf-8")
    return path


def test_a_deliverables_own_mode_words_its_email(sqlite_url: str, tmp_path: Path) -> None:
    """'mode: request' on the monthly report: its emails ask ('đề nghị'), the others order."""
    path = _example_variant(
        tmp_path,
        "    template: bao-cao-giai-ngan-thang\n    reminders: [5, 2]\n",
        "    template: bao-cao-giai-ngan-thang\n    reminders: [5, 2]\n    mode: request\n",
    )
    store_files(sqlite_url, *EXAMPLE_FILES, path)
    plan = "cao-bang-dau-tu-cong-2026"
    with session_scope(sqlite_url) as session:
        activate(session, plan, now=vn(2026, 3, 26, 9))
        [monthly] = obligations(session, plan, deliverable="bao-cao-thang", cycle="2026-04")[:1]
        [yearly] = obligations(session, plan, deliverable="bao-cao-nam", cycle="2026")[:1]
        asked, ordered = _mail_text(session, monthly.id), _mail_text(session, yearly.id)
    assert "đề nghị thực hiện" in asked and "đề nghị thực hiện" not in ordered


def test_the_office_holder_is_named_in_the_emails(sqlite_url: str) -> None:
    store_files(sqlite_url, *EXAMPLE_FILES, EXAMPLE)
    plan = "cao-bang-dau-tu-cong-2026"
    with session_scope(sqlite_url) as session:
        activate(session, plan, now=vn(2026, 3, 26, 9))
        [duty] = [
            o for o in obligations(session, plan, cycle="2026-04") if o.kind == "consolidation"
        ]
        text = _mail_text(session, duty.id)
    assert (
        "Gửi đến: Chủ tịch UBND tỉnh (Ủy ban nhân dân tỉnh Cao Bằng) (qua Văn phòng UBND tỉnh "
        "Cao Bằng)" in text
    )


def test_show_names_the_field_that_measures_a_duty(capsys) -> None:  # type: ignore[no-untyped-def]
    assert main(["show", str(DEFINITIONS / "ha_lang_pccc_2022.yaml")]) == 0
    printed = " ".join(capsys.readouterr().out.split())
    assert "đo bằng: Số đội dân phòng, đội PCCC cơ sở" in printed


def _shown(capsys, *files: Path) -> str:  # type: ignore[no-untyped-def]
    assert main(["show", *map(str, files)]) == 0
    return " ".join(capsys.readouterr().out.split())


def test_show_prints_the_preamble_after_the_basis(capsys) -> None:  # type: ignore[no-untyped-def]
    printed = _shown(capsys, EXAMPLE)
    opening = "Căn cứ Nghị quyết của Hội đồng nhân dân tỉnh về kế hoạch đầu tư công năm 2026;"
    assert opening in printed
    assert printed.index("Căn cứ:") < printed.index(opening) < printed.index("I. Mục đích")


def test_show_resolves_the_recipients_units_and_groups(capsys) -> None:  # type: ignore[no-untyped-def]
    printed = _shown(capsys, EXAMPLE)
    nơi_nhận = printed[printed.index("Nơi nhận:") :]
    # The communes' line names its group's members as of the plan's date.
    communes = nơi_nhận[nơi_nhận.index("UBND các xã, phường (thực hiện)") :]
    assert communes.split(" - ")[0].count("Ủy ban nhân dân") >= 2, communes
    assert "gồm 1 đơn vị: Văn phòng UBND tỉnh Cao Bằng" in nơi_nhận, nơi_nhận
    assert "Bộ Tài chính (B/c) - " in nơi_nhận  # a line without units: its name alone


def test_show_counts_the_sample_units_and_persons_the_plan_mails(capsys) -> None:  # type: ignore[no-untyped-def]
    printed = _shown(capsys, EXAMPLE)
    assert "Dữ liệu mẫu, chưa kiểm chứng, trong danh mục cao-bang-2026:" in printed
    assert "người (thủ trưởng, đầu mối)" in printed


def test_show_prints_the_closing_paragraph_and_marks_inferred_tasks(
    capsys,  # type: ignore[no-untyped-def]
    tmp_path: Path,
) -> None:
    seed = DEFINITIONS / "ha_lang_pccc_2022.yaml"
    printed = _shown(capsys, seed)
    closing = "Trên đây là Kế hoạch tiếp tục triển khai thực hiện Quyết định số 1492/QĐ-TTg"
    assert closing in printed and printed.index(closing) < printed.index("Nơi nhận:")
    # A task whose words are not quoted from the document says so.
    text = EXAMPLE.read_text(encoding="utf-8")
    marked = text.replace(
        "      - id: day-nhanh-tien-do\n",
        "      - id: day-nhanh-tien-do\n        source: inferred\n",
        1,
    )
    assert marked != text
    for name in ("registry_cao_bang_2026.yaml",):
        (tmp_path / name).write_text((EXAMPLES / name).read_text(encoding="utf-8"), "utf-8")
    (tmp_path / EXAMPLE.name).write_text(marked, encoding="utf-8")
    printed = _shown(capsys, tmp_path / EXAMPLE.name)
    assert printed.count("[suy ra, không trích nguyên văn]") == 1
    assert "không để dồn thanh toán vào cuối năm. [suy ra, không trích nguyên văn]" in printed


def test_show_prints_an_events_text_and_the_registrys_note(capsys) -> None:  # type: ignore[no-untyped-def]
    printed = _shown(capsys, DEFINITIONS / "ha_lang_pccc_2022.yaml")
    assert "Tháng an toàn PCCC (tháng 10) hàng năm (nhiệm vụ II.1 của Công an huyện)." in printed
    assert "Ghi chú của danh mục: Dữ liệu mẫu một phần." in printed
