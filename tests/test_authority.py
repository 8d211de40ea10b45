"""Routing and authority as written (issue 10, item 4).

The example plan ``plan_definitions/examples/cao_bang_dau_tu_cong_2026.yaml`` (sample
data) is signed "TM. ỦY BAN NHÂN DÂN / KT. CHỦ TỊCH / PHÓ CHỦ TỊCH"; Sở Tài chính
consolidates the monthly reports and its report goes out in its own name
(``on_behalf_of``), under its parent, signed "KT. GIÁM ĐỐC / PHÓ GIÁM ĐỐC", to the
Chairman of UBND tỉnh through Văn phòng UBND tỉnh, with the plan's own Nơi nhận.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pypdf import PdfReader

from engine.authority import check_signer, is_deputy
from engine.documents import DRAFT_MARK, stored_path
from engine.errors import DefinitionError
from engine.lifecycle import activate
from engine.loader import load
from engine.schema import Signer, Unit
from engine.store import session_scope
from engine.store.models import ConsolidatedReport, StoredFile
from tests.approval_support import approve_sign_send
from tests.lifecycle_factory import DEFINITIONS, lc_settings, store_files, vn

EXAMPLES = DEFINITIONS / "examples"
REGISTRY = EXAMPLES / "registry_cao_bang_2026.yaml"
CALENDAR = DEFINITIONS / "calendar_vn.yaml"
PLAN_FILE = EXAMPLES / "cao_bang_dau_tu_cong_2026.yaml"
PLAN = "cao-bang-dau-tu-cong-2026"
OUTPUT = Path(__file__).parent / "output" / "test_authority"
SOFFICE = shutil.which("soffice") or "/usr/bin/soffice"
PDFTOPPM = shutil.which("pdftoppm") or "/usr/bin/pdftoppm"

COMMITTEE = Unit(id="ubnd", name="Ủy ban nhân dân tỉnh Cao Bằng", kind="people-committee")
DEPARTMENT = Unit(id="stc", name="Sở Tài chính tỉnh Cao Bằng", kind="department")


def findings(chain: list[str], title: str, issuer: Unit = COMMITTEE) -> list[tuple[str, tuple]]:
    """(code, path) of every error the chain gets for ``issuer``."""
    errors: list[tuple[str, tuple]] = []
    signer = Signer(chain=chain, title=title, name="Nguyễn Văn A")
    check_signer(
        signer,
        issuer,
        ("document", "signer"),
        lambda path, _message, code: errors.append((code, path)),
        lambda *_: None,
    )
    return errors


# ---------------------------------------------------------------- the rules


@pytest.mark.parametrize(
    ("chain", "title", "issuer"),
    [
        (["TM. ỦY BAN NHÂN DÂN", "KT. CHỦ TỊCH"], "PHÓ CHỦ TỊCH", COMMITTEE),
        (["TM. ỦY BAN NHÂN DÂN"], "CHỦ TỊCH", COMMITTEE),
        (["TM. ỦY BAN NHÂN DÂN"], "Q. CHỦ TỊCH", COMMITTEE),
        (["KT. GIÁM ĐỐC"], "PHÓ GIÁM ĐỐC", DEPARTMENT),
        (["TL. GIÁM ĐỐC"], "CHÁNH VĂN PHÒNG", DEPARTMENT),
        (["TL. GIÁM ĐỐC", "KT. CHÁNH VĂN PHÒNG"], "PHÓ CHÁNH VĂN PHÒNG", DEPARTMENT),
        (["TUQ. GIÁM ĐỐC"], "TRƯỞNG PHÒNG KẾ HOẠCH", DEPARTMENT),
        (["KT. BỘ TRƯỞNG"], "THỨ TRƯỞNG", DEPARTMENT),
        ([], "GIÁM ĐỐC", DEPARTMENT),
    ],
)
def test_chains_nghi_dinh_30_allows_pass(chain, title, issuer) -> None:
    assert findings(chain, title, issuer) == []


@pytest.mark.parametrize(
    ("chain", "title", "issuer", "code", "line"),
    [
        # TM. is for collective bodies only, and only first
        (["TM. SỞ TÀI CHÍNH"], "GIÁM ĐỐC", DEPARTMENT, "signer-tm-not-collective", 0),
        (["KT. CHỦ TỊCH", "TM. ỦY BAN NHÂN DÂN"], "PHÓ CHỦ TỊCH", COMMITTEE, "signer-order", 1),
        # KT.: a deputy for the head
        (["KT. CHỦ TỊCH"], "CHỦ TỊCH", COMMITTEE, "signer-kt-not-deputy", None),
        (["KT. PHÓ CHỦ TỊCH"], "PHÓ CHỦ TỊCH", COMMITTEE, "signer-deputy-after-prefix", 0),
        ([], "PHÓ CHỦ TỊCH", COMMITTEE, "signer-deputy-without-kt", None),
        (["TM. ỦY BAN NHÂN DÂN"], "PHÓ CHỦ TỊCH", COMMITTEE, "signer-deputy-without-kt", None),
        (["KT. GIÁM ĐỐC", "TL. GIÁM ĐỐC"], "PHÓ GIÁM ĐỐC", DEPARTMENT, "signer-order", 1),
        # TUQ. cannot be passed on; TL. only to a deputy (KT.)
        (["TUQ. GIÁM ĐỐC", "KT. TRƯỞNG PHÒNG"], "PHÓ TRƯỞNG PHÒNG", DEPARTMENT, "signer-order", 1),
        (["TUQ. GIÁM ĐỐC"], "PHÓ TRƯỞNG PHÒNG", DEPARTMENT, "signer-deputy", None),
        (["TL. GIÁM ĐỐC", "TUQ. CHÁNH VĂN PHÒNG"], "TRƯỞNG PHÒNG", DEPARTMENT, "signer-order", 1),
        (["TL. GIÁM ĐỐC"], "PHÓ CHÁNH VĂN PHÒNG", DEPARTMENT, "signer-deputy", None),
        # spelling of the lines themselves
        (["Q. CHỦ TỊCH"], "CHỦ TỊCH", COMMITTEE, "signer-acting-line", 0),
        (["T/M ỦY BAN NHÂN DÂN"], "CHỦ TỊCH", COMMITTEE, "signer-line", 0),
        (["KT."], "PHÓ CHỦ TỊCH", COMMITTEE, "signer-line", 0),
        (["KT. CHỦ TỊCH", "KT. CHỦ TỊCH"], "PHÓ CHỦ TỊCH", COMMITTEE, "signer-repeated", 1),
        ([], "KT. CHỦ TỊCH", COMMITTEE, "signer-title-prefix", None),
    ],
)
def test_chains_against_nghi_dinh_30_are_refused_at_their_line(
    chain, title, issuer, code, line
) -> None:
    found = findings(chain, title, issuer)
    where = (
        ("document", "signer", "chain", line)
        if line is not None
        else ("document", "signer", "title")
    )
    assert found == [(code, where)]


def test_deputy_titles() -> None:
    assert is_deputy("Phó Chủ tịch") and is_deputy("THỨ TRƯỞNG") and is_deputy("PHÓ GIÁM ĐỐC")
    assert not is_deputy("CHỦ TỊCH") and not is_deputy("Q. GIÁM ĐỐC") and not is_deputy("")


# ---------------------------------------------------------------- located in the YAML


def _variant(tmp_path: Path, old: str, new: str, name: str = "plan.yaml") -> Path:
    text = PLAN_FILE.read_text(encoding="utf-8")
    assert old in text, old
    path = tmp_path / name
    path.write_text(text.replace(old, new, 1), encoding="utf-8")
    return path


def _problems(path: Path) -> list:
    with pytest.raises(DefinitionError) as caught:
        load([REGISTRY, CALENDAR, path])
    return caught.value.problems


STC_CHAIN = "      chain: [KT. GIÁM ĐỐC]\n      title: PHÓ GIÁM ĐỐC\n"


@pytest.mark.parametrize(
    ("old", "new", "code", "line_text"),
    [
        (
            "    chain: [TM. ỦY BAN NHÂN DÂN, KT. CHỦ TỊCH]\n",
            "    chain: [TM. ỦY BAN NHÂN DÂN]\n",
            "signer-deputy-without-kt",
            "    title: PHÓ CHỦ TỊCH",
        ),
        (
            STC_CHAIN,
            "      chain: [TM. SỞ TÀI CHÍNH]\n      title: GIÁM ĐỐC\n",
            "signer-tm-not-collective",
            "chain:",
        ),
        (
            "    on_behalf_of: so-tai-chinh-cao-bang\n    signer: &stc-signer",
            "    on_behalf_of: so-khong-co\n    signer: &stc-signer",
            "unknown-unit",
            "on_behalf_of: so-khong-co",
        ),
        (
            "    on_behalf_of: so-tai-chinh-cao-bang\n    signer: &stc-signer",
            "    on_behalf_of: ubnd-tinh-cao-bang\n    signer: &stc-signer",
            "reports-to-itself",
            "on_behalf_of: ubnd-tinh-cao-bang",
        ),
        (
            "      via: van-phong-ubnd-tinh-cao-bang\n",
            "      via: ubnd-tinh-cao-bang\n",
            "via-is-to",
            "via: ubnd-tinh-cao-bang",
        ),
        (
            '      - "Lưu: VT, ĐT"\n',
            '      - "Lưu: VT, ĐT"\n      - "Lưu: TH"\n',
            "archive-twice",
            "Lưu: TH",
        ),
    ],
)
def test_authority_errors_are_located(tmp_path, old, new, code, line_text) -> None:
    path = _variant(tmp_path, old, new)
    problems = [p for p in _problems(path) if p.code == code]
    # One finding (one per consolidation for the signer three share through a YAML alias,
    # the others at the alias).
    assert len(problems) in (1, 3), _problems(path)
    lines = path.read_text(encoding="utf-8").splitlines()
    assert line_text in lines[problems[0].location.line - 1]


def test_a_unit_that_consolidates_and_reports_to_itself_is_refused(tmp_path) -> None:
    # The monthly consolidation by Sở Tài chính, routed to Sở Tài chính.
    path = _variant(
        tmp_path,
        "    routing:\n      to: ubnd-tinh-cao-bang\n      person: Chủ tịch UBND tỉnh\n",
        "    routing:\n      to: so-tai-chinh-cao-bang\n      person: Chủ tịch UBND tỉnh\n",
    )
    problems = [p for p in _problems(path) if p.code == "reports-to-itself"]
    assert len(problems) == 1 and "tự báo cáo cho chính mình" in problems[0].message


def test_the_default_issuer_reporting_to_itself_is_refused(tmp_path) -> None:
    """Before: validated, and the report was headed UBND tỉnh and addressed to itself."""
    path = _variant(
        tmp_path, "    on_behalf_of: so-tai-chinh-cao-bang\n    signer: *stc-signer\n", ""
    )
    problems = [p for p in _problems(path) if p.code == "reports-to-itself"]
    assert len(problems) == 1
    assert "mặc định: cơ quan ban hành kế hoạch" in problems[0].message
    assert "on_behalf_of: so-tai-chinh-cao-bang" in problems[0].message


def test_a_cutoff_that_cannot_apply_is_refused(tmp_path) -> None:
    path = _variant(
        tmp_path,
        "    template: bao-cao-giai-ngan-thang\n",
        "    template: bao-cao-giai-ngan-thang\n    cutoff: {period: month, start_day: 15, end_day: 14}\n",
    )
    assert [p.code for p in _problems(path) if p.code.startswith("cutoff")] == [
        "cutoff-unsupported"
    ]


# ---------------------------------------------------------------- the report itself


def _pdf(docx: Path, out: Path) -> Path:
    if not Path(SOFFICE).exists() or not Path(PDFTOPPM).exists():
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail("soffice/pdftoppm missing (required because CI=true)")
        pytest.skip("soffice/pdftoppm missing: run `make setup`")
    out.mkdir(parents=True, exist_ok=True)
    profile = out / "lo-profile"
    subprocess.run(
        [SOFFICE, f"-env:UserInstallation=file://{profile}", "--headless", "--convert-to",
         "pdf", "--outdir", str(out), str(docx)],
        check=True, capture_output=True, timeout=120,
    )  # fmt: skip
    pdf = out / (docx.stem + ".pdf")
    subprocess.run(
        [PDFTOPPM, "-png", "-r", "60", "-f", "1", "-l", "2", str(pdf), str(out / "page")],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    return pdf


def consolidated_april(url: str, home: Path):
    """April's monthly report of the example, consolidated on 27/4/2026 (nobody sent)."""
    from engine.consolidation import consolidate

    store_files(url, REGISTRY, CALENDAR, PLAN_FILE)
    with session_scope(url) as session:
        activate(session, PLAN, now=vn(2026, 3, 26, 9))
    with session_scope(url) as session:
        return consolidate(
            session, PLAN, "2026-04", "tong-hop-thang", now=vn(2026, 4, 27, 9),
            settings=lc_settings(home),
        )  # fmt: skip


def test_the_departments_report_is_headed_signed_and_addressed_as_the_plan_states(
    sqlite_url: str, tmp_path: Path
) -> None:
    draft = consolidated_april(sqlite_url, tmp_path)
    head = "**ỦY BAN NHÂN DÂN TỈNH CAO BẰNG**  \n**SỞ TÀI CHÍNH TỈNH CAO BẰNG**  \n"
    # The draft: its mark, then the same header, not numbered yet.
    assert draft.markdown.startswith(f"**{DRAFT_MARK}**\n\n{head}Số: …/BC-STC\n")
    # What goes upward: approved, numbered in the department's register, signed, sent.
    from engine.consolidation import consolidate

    conf, at = lc_settings(tmp_path), vn(2026, 4, 28, 9)
    with session_scope(sqlite_url) as session:
        sent = approve_sign_send(session, draft.id, conf, at)
    assert sent.upward_refused is None
    with session_scope(sqlite_url) as session:  # the stored revision, as approved
        result = consolidate(session, PLAN, "2026-04", "tong-hop-thang", now=at, settings=conf)
    assert (result.created, result.id) == (False, draft.id)
    markdown = result.markdown
    assert DRAFT_MARK not in markdown
    # Header: the department under its parent (registry), not the People's Committee.
    assert markdown.startswith(head + "Số: 01/BC-STC\n"), markdown[:200]
    assert "Sở Tài chính tỉnh Cao Bằng báo cáo Chủ tịch UBND tỉnh tình hình" in markdown
    # Signer: every line of the chain, then the title and the name.
    assert "**KT. GIÁM ĐỐC**  \n**PHÓ GIÁM ĐỐC**  \n**Nông Văn Mẫu**" in markdown
    # Nơi nhận: the plan's lines, the archive line last.
    nơi_nhận = markdown.split("*Nơi nhận:*", 1)[1].split("###", 1)[0]
    assert [line.strip() for line in nơi_nhận.strip().splitlines()] == [
        "- Chủ tịch UBND tỉnh (B/c);",
        "- Các Phó Chủ tịch UBND tỉnh (B/c);",
        "- Văn phòng UBND tỉnh;",
        "- Bộ Tài chính (B/c);",
        "- Lưu: VT, ĐT",
    ]
    assert "Ủy ban nhân dân tỉnh Cao Bằng (B/c)" not in markdown  # no longer to itself

    # The approved Word file, through LibreOffice: every line printed (PNGs kept to look at).
    with session_scope(sqlite_url) as session:
        report = session.get(ConsolidatedReport, draft.id)
        final = session.get(StoredFile, report.final_docx_file_id)
        docx = tmp_path / final.original_name
        shutil.copyfile(stored_path(Path(conf.files_dir), final.sha256), docx)
    pdf = _pdf(docx, OUTPUT)
    pages = [page.extract_text() for page in PdfReader(pdf).pages]
    # No page holds only its number (the section break after a full page 1 made one).
    assert all(len(page.split()) > 2 for page in pages), [len(p.split()) for p in pages]
    text = " ".join(pages)
    flat = " ".join(text.split())
    for line in (
        "ỦY BAN NHÂN DÂN TỈNH CAO BẰNG",
        "SỞ TÀI CHÍNH TỈNH CAO BẰNG",
        "KT. GIÁM ĐỐC",
        "PHÓ GIÁM ĐỐC",
        "Nông Văn Mẫu",
        "Chủ tịch UBND tỉnh (B/c);",
        "Bộ Tài chính (B/c);",
        "Lưu: VT, ĐT",
    ):
        assert line in flat, line


def test_the_plans_own_signer_prints_its_whole_chain(sqlite_url: str, tmp_path: Path) -> None:
    """A report in the plan issuer's name is signed as the plan: three lines and the name."""
    path = _variant(
        tmp_path,
        "    consolidates: bao-cao-thang\n    by: so-tai-chinh-cao-bang\n",
        "    consolidates: bao-cao-thang\n    by: van-phong-ubnd-tinh-cao-bang\n",
    )
    text = path.read_text(encoding="utf-8")
    text = text.replace(
        "    on_behalf_of: so-tai-chinh-cao-bang\n    signer: &stc-signer\n"
        "      chain: [KT. GIÁM ĐỐC]\n      title: PHÓ GIÁM ĐỐC\n      name: Nông Văn Mẫu\n"
        "    routing:\n      to: ubnd-tinh-cao-bang\n      person: Chủ tịch UBND tỉnh\n"
        "      via: van-phong-ubnd-tinh-cao-bang\n    recipients:\n"
        "      - Chủ tịch UBND tỉnh (B/c)\n      - Các Phó Chủ tịch UBND tỉnh (B/c)\n"
        '      - Văn phòng UBND tỉnh\n      - Bộ Tài chính (B/c)\n      - "Lưu: VT, ĐT"\n',
        "    routing:\n      to: bo-khoa-hoc-cong-nghe\n",
    ).replace(
        "    signer: *stc-signer\n", "    signer:\n" + STC_CHAIN + "      name: Nông Văn Mẫu\n"
    )
    text = text.replace("routing: {to: so-tai-chinh-cao-bang}\n    frequency: monthly",
                        "routing: {to: van-phong-ubnd-tinh-cao-bang}\n    frequency: monthly")  # fmt: skip
    path.write_text(text, encoding="utf-8")
    store_files(sqlite_url, REGISTRY, CALENDAR, path)
    from engine.consolidation import consolidate

    with session_scope(sqlite_url) as session:
        activate(session, PLAN, now=vn(2026, 3, 26, 9))
    with session_scope(sqlite_url) as session:
        result = consolidate(
            session, PLAN, "2026-04", "tong-hop-thang", now=vn(2026, 4, 27, 9),
            settings=lc_settings(tmp_path),
        )  # fmt: skip
    markdown = result.markdown
    # A draft: its mark, one blank line, then the plan issuer's header (no parent body).
    assert markdown.startswith(
        f"**{DRAFT_MARK}**\n\n**ỦY BAN NHÂN DÂN TỈNH CAO BẰNG**  \nSố: …/BC-UBND\n"
    )
    assert (
        "**TM. ỦY BAN NHÂN DÂN**  \n**KT. CHỦ TỊCH**  \n**PHÓ CHỦ TỊCH**  \n**Hà Văn Mẫu**"
        in markdown
    )
    assert "- Bộ Khoa học và Công nghệ (B/c);" in markdown
    assert "Lưu: VT, VT" not in markdown and "- Lưu: VT." in markdown


# ---------------------------------------------------------------- fuzzed constructs


PIECES = st.sampled_from(
    ["TM.", "KT.", "TL.", "TUQ.", "Q.", "T/M", "kt.", "", "ỦY BAN NHÂN DÂN", "CHỦ TỊCH",
     "PHÓ CHỦ TỊCH", "GIÁM ĐỐC", "x" * 300, "\u0000", "'", "[", "{a: 1}", "null", "- a"]
)  # fmt: skip
VALUES = st.one_of(
    st.lists(st.builds(lambda a, b: f"{a} {b}".strip(), PIECES, PIECES), max_size=5).map(str),
    PIECES,
    st.integers(-3, 3).map(str),
    st.just("[]"),
)


@settings(
    max_examples=int(os.environ.get("KEHOACH_FUZZ_EXAMPLES", "40")),
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    where=st.sampled_from(
        [
            ("    chain: [TM. ỦY BAN NHÂN DÂN, KT. CHỦ TỊCH]\n", "    chain: {v}\n"),
            ("    title: PHÓ CHỦ TỊCH\n", "    title: {v}\n"),
            ("      chain: [KT. GIÁM ĐỐC]\n", "      chain: {v}\n"),
            ("      person: Chủ tịch UBND tỉnh\n", "      person: {v}\n"),
            (
                "    on_behalf_of: so-tai-chinh-cao-bang\n    signer: &",
                "    on_behalf_of: {v}\n    signer: &",
            ),
            ("      - Văn phòng UBND tỉnh\n", "      - {v}\n"),
            ("    recipients:\n", "    recipients: {v}\n    x-recipients:\n"),
            (
                "    template: bao-cao-giai-ngan-nam\n",
                "    template: bao-cao-giai-ngan-nam\n    cutoff: {v}\n",
            ),
        ]
    ),
    value=VALUES,
)
def test_fuzzed_authority_constructs_give_only_located_errors(
    tmp_path_factory, where, value
) -> None:
    old, new = where
    path = _variant(tmp_path_factory.mktemp("fuzz"), old, new.replace("{v}", value))
    try:
        load([REGISTRY, CALENDAR, path])
    except DefinitionError as exc:
        assert exc.problems and all(p.location.line > 0 for p in exc.problems), exc


def test_the_report_date_is_the_consolidation_day(sqlite_url: str, tmp_path: Path) -> None:
    result = consolidated_april(sqlite_url, tmp_path)
    assert "Cao Bằng, ngày 27 tháng 4 năm 2026" in result.markdown
    assert result.report.created_at.date() in {dt.date(2026, 4, 27), dt.date(2026, 4, 26)}
