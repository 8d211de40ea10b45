"""What `kehoach import` does with files that are not a readable plan: one Vietnamese
line, exit 1 (a user error, README's exit codes), never a traceback; a fuzzed corpus of plan-like text never hangs or
crashes; DOCX tables are read like the Markdown tables of a text."""

from __future__ import annotations

import contextlib
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.importer.api import import_document
from engine.importer.interpret import Interpreter
from engine.importer.sources import ImportInputError, SourceText
from tests.import_docs import DATA, build_docx, pdf_of, run_import, scanned_pdf
from tests.test_import_documents import EXPECTED, extracted, facts_of


def _refused(path: Path, *words: str) -> str:
    done = run_import(str(path))
    assert done.returncode == 1, (done.returncode, done.stderr)
    assert "Traceback" not in done.stderr and done.stdout == ""
    message = done.stderr.strip()
    assert message.startswith(f"kehoach: {path}"), message
    for word in words:
        assert word in message, message
    return message


def test_an_empty_file(tmp_path):
    (tmp_path / "trong.txt").write_text("  \n\n", encoding="utf-8")
    _refused(tmp_path / "trong.txt", "tệp trống")


def test_a_binary_file(tmp_path):
    (tmp_path / "anh.txt").write_bytes(bytes(range(256)) * 8)
    _refused(tmp_path / "anh.txt", "tệp nhị phân")


def test_text_that_is_not_utf8_names_its_line(tmp_path):
    (tmp_path / "cu.txt").write_bytes(
        "KẾ HOẠCH\nSố: 12/KH-UBND\n".encode() + "Tiếng Việt".encode()[:3] + b"\xea\xcc\x81ng"
    )  # a cp1258 "ế"
    _refused(tmp_path / "cu.txt", ":3:", "UTF-8")


def test_a_document_that_is_not_a_plan(tmp_path):
    letter = (
        "ỦY BAN NHÂN DÂN\nHUYỆN HẠ LANG\nSố: 15/TB-UBND\nHạ Lang, ngày 02 tháng 3 năm 2023\n"
        "THÔNG BÁO\nLịch tiếp công dân tháng 3 năm 2023\nChủ tịch UBND huyện tiếp công dân vào thứ Năm hằng tuần.\n"
    )
    (tmp_path / "thong-bao.txt").write_text(letter, encoding="utf-8")
    _refused(tmp_path / "thong-bao.txt", "không phải kế hoạch", ":5")
    (tmp_path / "thu.txt").write_text("Chào anh,\nHẹn gặp lại vào thứ Hai.\n", encoding="utf-8")
    _refused(tmp_path / "thu.txt", "không nhận ra một kế hoạch")


def test_a_truncated_docx(tmp_path):
    whole = build_docx(DATA / "so_noi_vu_boi_duong_2025.docx.txt", tmp_path / "ke-hoach.docx")
    data = whole.read_bytes()
    (tmp_path / "cut.docx").write_bytes(data[: len(data) // 2])
    _refused(tmp_path / "cut.docx", "DOCX hỏng")


def test_a_scanned_pdf_and_a_broken_pdf(tmp_path):
    pdf = pdf_of(DATA / "so_cong_thuong_hoa_chat_2026.docx.txt")
    scan = scanned_pdf(pdf, tmp_path)
    _refused(scan, "không có lớp chữ", "OCR")
    (tmp_path / "hong.pdf").write_bytes(pdf.read_bytes()[:300])
    _refused(tmp_path / "hong.pdf", "PDF")


def test_a_missing_file_and_a_folder(tmp_path):
    _refused(tmp_path / "khong-co.txt", "không có tệp này")
    assert run_import(str(tmp_path)).returncode == 1


def test_nothing_is_half_written_when_the_input_is_refused(tmp_path):
    (tmp_path / "trong.txt").write_text("", encoding="utf-8")
    target = tmp_path / "draft.yaml"
    target.write_text("kind: plan\n", encoding="utf-8")
    assert run_import(str(tmp_path / "trong.txt"), "-o", str(target)).returncode == 1
    assert target.read_text(encoding="utf-8") == "kind: plan\n"


def test_a_docx_with_a_task_table_reads_like_the_text_with_a_markdown_table(tmp_path):
    from engine.loader import read_files

    catalog, _ = read_files([DATA / "registry_mau.yaml"])
    registry = catalog.registries["mau-nhap-van-ban"].definition
    name = "bo_cong_thuong_hang_viet_2024.txt"
    as_docx = build_docx(DATA / name, tmp_path / "bo.docx")
    draft = import_document(as_docx, registry)
    found = facts_of(extracted(draft.plan, draft.registry_draft))
    want = facts_of(EXPECTED[name])
    assert want - found == set() and found - want == set()


# ---------------------------------------------------------------- fuzzing

FRAGMENTS = [
    "KẾ HOẠCH",
    "I. MỤC ĐÍCH, YÊU CẦU",
    "II. NỘI DUNG",
    "III. TỔ CHỨC THỰC HIỆN",
    "V. TỔ CHỨC THỰC HIỆN",
    "1. Công an huyện",
    "2. Sở Công Thương: chủ trì",
    "a) UBND các xã:",
    "- ",
    "+ ",
    "Số: 134 /KH-UBND",
    "Số:     /KH-SCT",
    "Cao Bằng, ngày 15 tháng 8 năm 2025",
    "Căn cứ Nghị định số 136/2020/NĐ-CP ngày 24/11/2020 của Chính phủ",
    "Thực hiện Kế hoạch số 2720/KH-UBND ngày 21/10/2022 của Ủy ban nhân dân tỉnh Cao Bằng về",
    "báo cáo UBND huyện qua Công an huyện trước ngày 10/9/ hằng năm",
    "trước ngày 20 hằng tháng",
    "quý IV năm 2026",
    "Tháng 8/2024",
    "2024 - 2025",
    "định kỳ 6 tháng",
    "đột xuất",
    "khi có yêu cầu",
    "thường xuyên",
    "(lồng ghép với",
    "tổng hợp, báo cáo UBND tỉnh (qua Công an tỉnh)",
    "Nơi nhận:",
    "- Lưu: VT, CAH.",
    "TM. ỦY BAN NHÂN DÂN",
    "KT. CHỦ TỊCH",
    "PHÓ CHỦ TỊCH",
    "Nguyễn Văn A",
    "PHỤ LỤC",
    "| STT | Nhiệm vụ | Đơn vị chủ trì | Đơn vị phối hợp | Thời gian |",
    "| 1 | Việc | Sở Y tế | Sở Tài chính, | Năm 2025 |",
    "|---|---|",
    "Trên đây là Kế hoạch",
    "2",
    "(",
    ")",
    ":",
    ";",
    "Đề nghị Ủy ban Mặt trận Tổ quốc Việt Nam",
    "99/2019/QH",
    "02-KL/TW",
    "47 CT/TW",
    "trong vòng 05 ngày làm việc",
]
_line = st.lists(
    st.one_of(st.sampled_from(FRAGMENTS), st.text(max_size=30)), min_size=0, max_size=6
).map(" ".join)


@settings(
    max_examples=80,
    derandomize=True,
    deadline=3000,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(st.lists(_line, min_size=0, max_size=60), st.booleans())
def test_fuzzed_plan_like_text_is_read_or_refused_in_words(lines, hard_breaks):
    source = SourceText("fuzz.txt", list(enumerate(lines, 1)), hard_breaks=hard_breaks, unit="dòng")
    try:
        draft = Interpreter(source, None).run()
    except ImportInputError as exc:
        assert str(exc).startswith("fuzz.txt")
        return
    assert draft.plan.get("kind") == "plan"
    assert all(f.line >= 0 for f in draft.findings)


@pytest.mark.parametrize("size", [2_000, 200_000])
def test_one_very_long_line_is_read_in_bounded_time(size, tmp_path):
    import time

    text = (
        "KẾ HOẠCH\nI. NỘI DUNG\n1. Sở Y tế: "
        + ("báo cáo UBND tỉnh qua Sở Tài chính, và " * (size // 40))
        + "\n"
    )
    (tmp_path / "dai.txt").write_text(text, encoding="utf-8")
    started = time.monotonic()
    with contextlib.suppress(ImportInputError):
        import_document(tmp_path / "dai.txt")
    assert time.monotonic() - started < 20
