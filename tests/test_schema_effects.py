"""Fields the schema accepted and nothing used now have an effect (issue 10, item 4):
a yearly report's data cut-off period, a deliverable's own mode, a duty's measuring
field; ``routing.person`` in every email's "Gửi đến"."""

from __future__ import annotations

import html
import re
from pathlib import Path

from sqlalchemy import select

from cli.main import main
from engine.lifecycle import activate
from engine.outbox import enqueue_for_obligation
from engine.store import session_scope
from engine.store.models import OutboxMessage
from notifications.render import render_parts
from tests.lifecycle_factory import (
    DEFINITIONS,
    lc_settings,
    obligations,
    outbox,
    store_files,
    vn,
)

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
# The seed's cut-off as the emails give it: in full with the plan's words once, in the
# assignment; one short line in the others.
CUTOFF_FULL = "Chốt số liệu: từ ngày 1/9/2022 đến hết ngày 31/8/2023"
CUTOFF_NOTE = (
    "Kế hoạch không nêu thời gian chốt số liệu; mặc định tại Điều 12 Nghị định số "
    "09/2019/NĐ-CP (từ 15/12 năm trước đến 14/12) kết thúc sau hạn báo cáo 10/9 nên "
    "không áp dụng được."
)
CUTOFF_SHORT = "Chốt số liệu: từ 1/9/2022 đến 31/8/2023"


def _words(text: str) -> str:
    return " ".join(text.split())


def _html_words(markup: str) -> str:
    """The HTML part as a reader sees it: tags dropped, a table row's cells joined by ': '."""
    cells = re.sub(r"</td>\s*<td[^>]*>", ": ", markup)
    return _words(html.unescape(re.sub(r"<[^>]+>", " ", cells)))


def _parts(row: OutboxMessage) -> tuple[str, str]:
    """(text part, HTML part) of a queued row, each as one line of words."""
    _subject, text, markup = render_parts(row.kind, dict(row.context))
    return _words(text), _html_words(markup)


def _mail_text(session, obligation_id: int, kind: str = "assignment") -> str:  # type: ignore[no-untyped-def]
    row = session.scalar(
        select(OutboxMessage).where(
            OutboxMessage.obligation_id == obligation_id, OutboxMessage.kind == kind
        )
    )
    return _parts(row)[0]


def _seed_report(session):  # type: ignore[no-untyped-def]
    [owed] = [
        o
        for o in obligations(session, SEED, deliverable="bao-cao-nam", cycle="2023")
        if o.unit_id == "ubnd-xa-thi-hoa"
    ]
    return owed


def test_the_seeds_cutoff_is_in_its_emails_and_its_report(sqlite_url: str, tmp_path: Path) -> None:
    from engine.consolidation import consolidate

    store_files(sqlite_url, *SEED_FILES)
    with session_scope(sqlite_url) as session:
        activate(session, SEED, now=vn(2023, 1, 3), years=[2023])
        text = _mail_text(session, _seed_report(session).id)
    assert f"{CUTOFF_FULL} {CUTOFF_NOTE}" in text
    with session_scope(sqlite_url) as session:
        result = consolidate(
            session, SEED, "2023", "tong-hop-bao-cao-nam", now=vn(2023, 9, 27),
            settings=lc_settings(tmp_path),
        )  # fmt: skip
    assert f"{CUTOFF}." in result.markdown


def test_the_cutoff_is_stated_in_full_once_and_then_in_one_line(
    sqlite_url: str, tmp_path: Path
) -> None:
    """The assignment gives the cut-off period in full with the plan's words on it; the
    reminder, the overdue notice, the receipt, the return and the escalation give one
    line in their facts; the consolidating unit's digest none. Both parts alike."""
    store_files(sqlite_url, *SEED_FILES)
    conf = lc_settings(tmp_path)
    with session_scope(sqlite_url) as session:
        activate(session, SEED, now=vn(2023, 1, 3), years=[2023])
        owed = _seed_report(session)
        [assignment] = [r for r in outbox(session, "assignment") if r.obligation_id == owed.id]
        later = {
            kind: enqueue_for_obligation(session, owed, kind, step, extra, now, conf)
            for kind, step, extra, now in [
                ("reminder", "3", None, vn(2023, 9, 8)),
                ("overdue", "", None, vn(2023, 9, 13)),
                ("escalation", "", None, vn(2023, 9, 15)),
                ("receipt", "1", None, vn(2023, 9, 16)),
                ("returned", "1", {"reason": "Số vụ cháy chưa khớp"}, vn(2023, 9, 17)),
            ]
        }
        duty = next(
            o for o in obligations(session, SEED, cycle="2023") if o.kind == "consolidation"
        )
        digest = enqueue_for_obligation(session, duty, "digest", "", None, vn(2023, 9, 13), conf)
        parts = {kind: _parts(row) for kind, row in [("assignment", assignment), *later.items()]}
        digest_parts = _parts(digest)
    for part in parts["assignment"]:
        assert f"{CUTOFF_FULL} {CUTOFF_NOTE}" in part, part
        assert part.count("Chốt số liệu") == 1 and CUTOFF_SHORT not in part
    for kind, both in parts.items():
        if kind == "assignment":
            continue
        for part in both:
            assert CUTOFF_SHORT in part, (kind, part)
            assert part.count("Chốt số liệu") == 1, (kind, part)
            assert "09/2019" not in part and "Kế hoạch không nêu" not in part, (kind, part)
    assert all("Chốt số liệu" not in part for part in digest_parts)


def test_the_decrees_own_period_names_its_article(sqlite_url: str, tmp_path: Path) -> None:
    """A yearly report on Điều 12's default period (15/12 → 14/12) cites it in a clause."""
    path = _example_variant(
        tmp_path,
        "    template: bao-cao-giai-ngan-nam\n",
        "    template: bao-cao-giai-ngan-nam\n    cutoff: {}\n",
    )
    store_files(sqlite_url, *EXAMPLE_FILES, path)
    plan = "cao-bang-dau-tu-cong-2026"
    with session_scope(sqlite_url) as session:
        activate(session, plan, now=vn(2026, 3, 26, 9))
        [yearly] = obligations(session, plan, deliverable="bao-cao-nam", cycle="2026")[:1]
        [row] = [r for r in outbox(session, "assignment") if r.obligation_id == yearly.id]
        reminder = enqueue_for_obligation(
            session, yearly, "reminder", "3", now=vn(2026, 12, 7), settings=lc_settings(tmp_path)
        )
        assigned, reminded = _parts(row), _parts(reminder)
    clause = (
        "Chốt số liệu: từ ngày 15/12/2025 đến hết ngày 14/12/2026 "
        "(theo Điều 12 Nghị định số 09/2019/NĐ-CP)"
    )
    assert all(clause in part for part in assigned), assigned
    assert all("Chốt số liệu: từ 15/12/2025 đến 14/12/2026 " in p for p in reminded), reminded
    assert all("09/2019" not in part for part in reminded)


def test_a_message_queued_with_the_cutoff_as_one_sentence_still_shows_it() -> None:
    """Rows queued before the cut-off had parts carry it as a string: shown as written."""
    context = {"plan": {"ref": "Kế hoạch"}, "deliverable": {"title": "Báo cáo"}, "cutoff": CUTOFF}
    context.update(unit={"name": "UBND xã"}, cycle={"label": "năm 2023"}, days_left=3)
    _subject, text, markup = render_parts("reminder", context)
    assert f"Chốt số liệu: {CUTOFF}" in _words(text)
    assert f"Chốt số liệu: {CUTOFF}" in _html_words(markup)


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
