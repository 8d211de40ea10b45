"""The seed's consolidated report as a district police chief gets it to sign.

The Hạ Lang plan runs its 2024 cycle: 27 of the 32 units report (three of them late),
each answering only the fields that apply to it (a commune its fires, an office its
staff trained). The report is rendered once per module to PDF by LibreOffice
headless, its pages 1–2 kept as PNG under tests/output/test_report_document/, and
checked with python-docx and pypdf: Nghị định 30's layout (rules under the body name
and the tiêu ngữ, page numbers from page 2, grids matching cells), no long text in the
body, one phụ lục row per unit, and every figure equal to a recount over the units its
field applies to.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import docx
import pytest
from docx.oxml.ns import qn

from engine.applicability import Applicability, UnitFacts
from engine.consolidation import consolidate
from engine.consolidation.figures import FIGURES_TITLE, TEXTS_TITLE
from engine.documents import QUOC_HIEU, STATUS_APPENDIX, TIEU_NGU
from engine.lifecycle import activate, intake, record_submission
from engine.loader import load
from engine.registry import RegistryView
from engine.schema import FieldType
from engine.store import session_scope
from tests.lifecycle_factory import DEFINITIONS, lc_settings, obligations, store_files, vn

SEED = DEFINITIONS / "ha_lang_pccc_2022.yaml"
PARENT = DEFINITIONS / "cao_bang_2720_kh_ubnd.yaml"
REGISTRY = DEFINITIONS / "registry_cao_bang.yaml"
CALENDAR = DEFINITIONS / "calendar_vn.yaml"
PLAN = "ha-lang-pccc-2022"
OUTPUT = Path(__file__).parent / "output" / "test_report_document"
SOFFICE = shutil.which("soffice") or "/usr/bin/soffice"
PDFTOPPM = shutil.which("pdftoppm") or "/usr/bin/pdftoppm"
SILENT = {"ubnd-xa-co-ngan", "ubnd-xa-thi-hoa", "phong-y-te-ha-lang", "hoi-nong-dan-huyen-ha-lang"}
LATE = {"ubnd-xa-an-lac", "phong-tckh-ha-lang", "doan-thanh-nien-huyen-ha-lang"}
NOT_HELD = {"ubnd-xa-kim-loan"}  # reports, but leaves the optional proposals empty


def _missing_tool(reason: str) -> None:
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(reason + " (required because CI=true)")
    pytest.skip(reason)


def _answer(plan, view, template, facts: UnitFacts, index: int) -> dict[str, str]:
    """A unit's answer, figures that differ from unit to unit. Like a form filled by a
    script, it gives every figure: those not the unit's (fires from an office) must be
    neither kept nor counted."""
    asked = {f.id for f in Applicability(plan, template, view).asked(facts)}
    values: dict[str, str] = {}
    for f in template.fields:
        if f.derived or (f.type is FieldType.text and f.id not in asked):
            continue
        if f.id == "tong-so-cbccvc":
            values[f.id] = str(20 + index)
        elif f.id == "so-cbccvc-hoc-tap":
            values[f.id] = str(18 + index)
        elif f.type is FieldType.choice:
            values[f.id] = f.choices[1] if index % 7 == 3 else f.choices[0]
        elif f.type is FieldType.text:
            if f.id == "kien-nghi" and facts.unit_id in NOT_HELD:
                continue
            values[f.id] = (
                f"Đơn vị đã quán triệt Kế hoạch, tổ chức tuyên truyền tại {index + 2} thôn, "
                "xóm; còn khó khăn về trang thiết bị chữa cháy ban đầu. " * (1 + index % 4)
            ).strip()
        elif f.type is FieldType.decimal:
            values[f.id] = f"{index * 1.5:.1f}".replace(".", ",")
        else:
            values[f.id] = str(index % 5)
    return values


@dataclass
class Rendered:
    result: object
    docx_path: Path
    pdf_path: Path
    pngs: list[Path]
    answers: dict[str, dict]
    owing: dict[str, UnitFacts]
    applicability: Applicability
    template: object


@pytest.fixture(scope="module")
def rendered(tmp_path_factory) -> Rendered:
    if not Path(SOFFICE).exists():
        _missing_tool(f"{SOFFICE} not found: run `make setup` (libreoffice-writer-nogui)")
    if not Path(PDFTOPPM).exists():
        _missing_tool(f"{PDFTOPPM} not found: run `make setup` (poppler-utils)")
    home = tmp_path_factory.mktemp("report-document")
    url = f"sqlite:///{home / 'kehoach.sqlite'}"
    store_files(url, REGISTRY, PARENT, SEED, CALENDAR)
    catalog = load([REGISTRY, SEED])
    plan = catalog.plans[PLAN].definition
    view = RegistryView(catalog.registries["cao-bang"].definition, plan.groups)
    template = plan.template("bao-cao-pccc-nam")
    with session_scope(url) as session:
        activate(session, "cao-bang-2720-2022", now=vn(2024, 1, 3), years=[2024])
        activate(session, PLAN, now=vn(2024, 1, 3), years=[2024])
    with session_scope(url) as session:
        owed = obligations(session, PLAN, deliverable="bao-cao-nam", cycle="2024")
        owing = {o.unit_id: UnitFacts.of(o) for o in owed}
        ids = {o.unit_id: o.id for o in owed}
    answers: dict[str, dict] = {}
    for index, unit in enumerate(sorted(owing)):
        if unit in SILENT:
            continue
        moment = vn(2024, 9, 12) if unit in LATE else vn(2024, 9, 5, 8 + index % 8)
        values = _answer(plan, view, template, owing[unit], index)
        with session_scope(url) as session:
            submission = record_submission(session, ids[unit], values=values, now=moment)
            intake(session, submission.id, now=moment)
            answers[unit] = submission.values
    with session_scope(url) as session:
        result = consolidate(
            session,
            PLAN,
            "2024",
            "tong-hop-bao-cao-nam",
            now=vn(2024, 9, 24, 9),
            settings=lc_settings(home),
        )
    docx_path = Path(result.document_path)
    shutil.rmtree(OUTPUT, ignore_errors=True)
    OUTPUT.mkdir(parents=True)
    kept = OUTPUT / "bao-cao-tong-hop.docx"
    shutil.copy(docx_path, kept)
    profile = home / "lo-profile"
    subprocess.run(
        [
            SOFFICE,
            f"-env:UserInstallation=file://{profile}",
            "--headless",
            "--convert-to",
            "pdf",
            "--outdir",
            str(OUTPUT),
            str(kept),
        ],
        check=True,
        capture_output=True,
        timeout=180,
    )
    pdf = OUTPUT / "bao-cao-tong-hop.pdf"
    subprocess.run(
        [PDFTOPPM, "-png", "-r", "80", "-f", "1", "-l", "2", str(pdf), str(OUTPUT / "trang")],
        check=True,
        capture_output=True,
        timeout=60,
    )
    pngs = sorted(OUTPUT.glob("trang-*.png"))
    return Rendered(
        result, kept, pdf, pngs, answers, owing, Applicability(plan, template, view), template
    )


def test_pages_one_and_two_are_kept_as_png(rendered):
    assert [p.name for p in rendered.pngs] == ["trang-01.png", "trang-02.png"]
    assert all(p.stat().st_size > 20_000 for p in rendered.pngs)


def test_pdf_has_page_numbers_from_page_two(rendered):
    from pypdf import PdfReader

    reader = PdfReader(str(rendered.pdf_path))
    assert len(reader.pages) >= 4  # the body, then the phụ lục pages
    first_lines = [page.extract_text().strip().splitlines() for page in reader.pages[:3]]
    assert first_lines[0][0] != "1"  # no number on page 1
    assert first_lines[1][0].strip() == "2" and first_lines[2][0].strip() == "3"


def _header_table(document):
    return document.tables[0]


def _text(element) -> str:
    """The text of an XML element (python-docx's element classes repeat ``itertext``)."""
    return "".join(t.text or "" for t in element.iter(qn("w:t")))


def test_lines_under_the_body_name_and_the_tieu_ngu(rendered):
    document = docx.Document(str(rendered.docx_path))
    head = _header_table(document)
    left, right = head.rows[0].cells
    assert [p.text for p in left.paragraphs if p.text] == ["ỦY BAN NHÂN DÂN", "HUYỆN HẠ LANG"]
    assert [p.text for p in right.paragraphs if p.text] == [QUOC_HIEU, TIEU_NGU]
    for cell in (left, right):
        rules = [
            p
            for p in cell.paragraphs
            if p._p.find(f"{qn('w:pPr')}/{qn('w:pBdr')}/{qn('w:bottom')}") is not None
        ]
        assert len(rules) == 1 and rules[0].text == "", cell.text
        assert cell.paragraphs[-1]._p is rules[0]._p  # under the text
    # Số/ký hiệu and the place and date (italic) on the second row, side by side.
    number, date = head.rows[1].cells
    assert number.text == "Số: …/BC-UBND"
    assert date.text == "Hạ Lang, ngày 24 tháng 9 năm 2024"
    assert all(r.italic for r in date.paragraphs[0].runs)
    # The type, then the trích yếu: what is reported on, the plan named right after
    # "thực hiện", the period last (it read "… thực hiện năm 2024 Kế hoạch về …").
    body = document.paragraphs
    at = next(i for i, p in enumerate(body) if p.text.startswith("Sơ kết"))
    assert body[at - 1].text == "BÁO CÁO"
    assert body[at].text == (
        "Sơ kết tình hình, kết quả thực hiện Kế hoạch về tiếp tục thực hiện Quyết định số "
        "1492/QĐ-TTg ngày 10/9/2021 của Thủ tướng Chính phủ và Kế hoạch số 78-KH/TU ngày "
        "30/8/2021 của Tỉnh ủy Cao Bằng năm 2024"
    )
    after = body[at + 1]
    assert after.text == "" and after._p.find(f"{qn('w:pPr')}/{qn('w:pBdr')}") is not None


def test_page_number_field_from_page_two(rendered):
    document = docx.Document(str(rendered.docx_path))
    first = document.sections[0]
    assert first.different_first_page_header_footer

    def instructions(part) -> str:
        return "".join(i.text or "" for i in part._element.iter(qn("w:instrText")))

    assert instructions(first.header).strip() == "PAGE"
    assert "PAGE" not in instructions(first.first_page_header)
    for section in document.sections[1:]:  # the phụ lục pages are numbered from their first
        assert not section.different_first_page_header_footer


def test_fonts_and_margins_of_nghi_dinh_30(rendered):
    document = docx.Document(str(rendered.docx_path))
    fonts = document.styles.element.find(
        f"{qn('w:docDefaults')}/{qn('w:rPrDefault')}/{qn('w:rPr')}/{qn('w:rFonts')}"
    )
    assert fonts.get(qn("w:ascii")) == fonts.get(qn("w:hAnsi")) == "Times New Roman"
    assert fonts.get(qn("w:asciiTheme")) is None
    assert document.styles["Kh Body"].font.size.pt == 14
    for section in document.sections:
        top, bottom = round(section.top_margin.cm, 2), round(section.bottom_margin.cm, 2)
        left, right = round(section.left_margin.cm, 2), round(section.right_margin.cm, 2)
        assert 2.0 <= top <= 2.5 and 2.0 <= bottom <= 2.5 and 3.0 <= left <= 3.5
        assert 1.5 <= right <= 2.0
    from pypdf import PdfReader

    used = set()
    for page in PdfReader(str(rendered.pdf_path)).pages[:2]:
        for font in page["/Resources"]["/Font"].values():
            used.add(str(font.get_object()["/BaseFont"]).split("+")[-1])
    assert used and all(name.startswith("LiberationSerif") for name in used), used


def test_every_grid_matches_its_cells(rendered):
    document = docx.Document(str(rendered.docx_path))
    for number, table in enumerate(document.tables):
        grid = [int(c.get(qn("w:w"))) for c in table._tbl.tblGrid.findall(qn("w:gridCol"))]
        for row in table._tbl.findall(qn("w:tr")):
            cells = [
                int(tc.find(f"{qn('w:tcPr')}/{qn('w:tcW')}").get(qn("w:w")))
                for tc in row.findall(qn("w:tc"))
            ]
            assert cells == grid, (number, cells, grid)
        layout = table._tbl.tblPr.find(qn("w:tblLayout"))
        assert layout is not None and layout.get(qn("w:type")) == "fixed"


def _body_tables(document):
    """The tables before the first phụ lục (the report's body)."""
    body, tables = document.element.body, []
    for child in body.iterchildren():
        if child.tag == qn("w:p") and _text(child).startswith("Phụ lục 1"):
            break
        if child.tag == qn("w:tbl"):
            tables.append(child)
    return tables


def test_no_body_cell_holds_a_long_text(rendered):
    document = docx.Document(str(rendered.docx_path))
    tables = _body_tables(document)
    assert len(tables) == 3  # header, section I, signer and Nơi nhận
    for tbl in tables:
        for tc in tbl.iter(qn("w:tc")):
            assert len(_text(tc)) <= 1000


def _appendix(document, title):
    """The table under the phụ lục heading ``title``."""
    found = False
    for child in document.element.body.iterchildren():
        if child.tag == qn("w:p") and _text(child) == title.upper():
            found = True
        elif found and child.tag == qn("w:tbl"):
            return docx.table.Table(child, document)
    raise AssertionError(f"no phụ lục {title}")


def test_each_appendix_holds_one_row_per_unit(rendered):
    document = docx.Document(str(rendered.docx_path))
    units = [row["unit_name"] for row in rendered.result.status_table]
    assert len(units) == 32
    for title in (STATUS_APPENDIX, FIGURES_TITLE, TEXTS_TITLE):
        table = _appendix(document, title)
        names = [row.cells[1].text for row in table.rows[1:]]
        assert names == units, title
    # The free text is there, in full, not in the body.
    texts = _appendix(document, TEXTS_TITLE)
    for row, unit in zip(
        texts.rows[1:], [r["unit_id"] for r in rendered.result.status_table], strict=True
    ):
        given = rendered.answers.get(unit, {}).get("danh-gia-chung", "")
        assert row.cells[2].text == given


def test_figures_equal_a_recount_over_the_units_each_field_applies_to(rendered):
    template, applicability = rendered.template, rendered.applicability
    aggregates = rendered.result.aggregates
    for field in template.fields:
        units = applicability.units_of(field, rendered.owing.values())
        given = [rendered.answers[u] for u in units if u in rendered.answers]
        if field.ratio_of:
            top, bottom = field.ratio_of
            pairs = [(a[top], a[bottom]) for a in given if top in a and bottom in a]
            expected = round(100 * sum(p[0] for p in pairs) / sum(p[1] for p in pairs), 2)
            assert aggregates[field.id] == pytest.approx(expected), field.id
        elif field.aggregate == "sum":
            assert aggregates[field.id] == pytest.approx(sum(a.get(field.id, 0) for a in given)), (
                field.id
            )
        coverage = rendered.result.coverage[field.id]
        assert set(coverage.expected) == set(units)
        reported = {
            u
            for u in units
            if u in rendered.answers and (field.ratio_of or field.id in rendered.answers[u])
        }
        assert set(coverage.reported) == reported, field.id
    # Fires are counted over the 13 communes and the police only, never the offices.
    fires = applicability.units_of(template.field("so-vu-chay"), rendered.owing.values())
    assert len(fires) == 14 and "ca-huyen-ha-lang" in fires and "phong-vhtt-ha-lang" not in fires
    assert not any("so-vu-chay" in rendered.answers[u] for u in rendered.answers if u not in fires)


def test_each_figure_says_how_many_units_it_covers_and_which_are_missing(rendered):
    document = docx.Document(str(rendered.docx_path))
    section_one = docx.table.Table(_body_tables(document)[1], document)
    rows = {row.cells[1].text: row.cells[3].text for row in section_one.rows[1:]}
    fires = rows["Số vụ cháy, nổ xảy ra trên địa bàn (vụ)"]
    assert fires == "12/14 đơn vị báo cáo; chưa báo cáo: UBND xã Cô Ngân, UBND xã Thị Hoa"
    organised = rows[next(k for k in rows if k.startswith("Tổ chức hoạt động hưởng ứng"))]
    not_held = [
        u for u, a in rendered.answers.items() if a.get("hoat-dong-thang-an-toan") == "Chưa tổ chức"
    ]
    assert 0 < len(not_held) <= 8
    named = organised.split("chưa tổ chức: ")[1].split(", ")
    assert len(named) == len(not_held)  # "Chưa tổ chức: 4" says which four
    values = {row.cells[1].text: row.cells[2].text for row in section_one.rows[1:]}
    rate = values[next(k for k in values if k.startswith("Tỷ lệ cán bộ"))]
    assert rate.endswith("người)") and "%" in rate and "/" in rate
    markdown = rendered.result.markdown
    assert (
        "| 24 vụ | 12/14 đơn vị báo cáo; chưa báo cáo: UBND xã Cô Ngân, UBND xã Thị Hoa |"
        in markdown
    )


def test_only_the_fields_that_apply_are_asked(rendered):
    """A mass organisation is not asked fires; a commune is; required only where asked."""
    applicability = rendered.applicability
    veterans = applicability.asked(rendered.owing["hoi-cuu-chien-binh-huyen-ha-lang"])
    commune = applicability.asked(rendered.owing["ubnd-xa-minh-long"])
    office = applicability.asked(rendered.owing["phong-noi-vu-ha-lang"])
    assert "so-vu-chay" not in {f.id for f in veterans} and "so-vu-chay" in {f.id for f in commune}
    assert "tong-so-cbccvc" in {f.id for f in office} and "tong-so-cbccvc" not in {
        f.id for f in commune
    }
    assert "ty-le-cbccvc-hoc-tap" not in {f.id for f in office}  # computed, never asked
    assert len(veterans) < len(commune) < len(rendered.template.fields)
