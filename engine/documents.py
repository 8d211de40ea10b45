"""Documents: the consolidated report as .docx (Nghị định 30/2020/NĐ-CP layout) and markdown.

One :class:`ReportDocument` feeds both renderings, so the Prefect artifact and the
Word file always say the same thing.  Generated and uploaded files are kept by
content hash under ``settings().files_dir`` and recorded as ``StoredFile`` rows.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import html
import os
import re
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.store.models import StoredFile
from engine.values import xml_safe
from engine.vntext import long_date

QUOC_HIEU = "CỘNG HÒA XÃ HỘI CHỦ NGHĨA VIỆT NAM"
TIEU_NGU = "Độc lập - Tự do - Hạnh phúc"
DOCX_TYPE = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
FONT = "Times New Roman"
CHANGES_HEADING = "Những điểm thay đổi so với báo cáo trước:"
WARNINGS_HEADING = "Cảnh báo về số liệu đã lưu (không in trong báo cáo):"


@dataclass
class Signer:
    title: str  # CHỦ TỊCH, TRƯỞNG CÔNG AN…
    name: str | None = None
    authority: str | None = None  # TM., KT., Q., TL., TUQ.
    on_behalf_of: str | None = None


@dataclass
class ReportDocument:
    """Everything printed on a consolidated report."""

    issuer: str  # issuing body, e.g. CÔNG AN HUYỆN HẠ LANG
    symbol: str  # e.g. BC-CAH → "Số: …/BC-CAH"
    place: str | None
    day: dt.date
    title: str  # BÁO CÁO
    summary: str  # trích yếu
    parent_body: str | None = None  # the body printed above the issuer
    intro: list[str] = field(default_factory=list)
    # A revision: "Báo cáo này thay thế báo cáo … ngày …" and what changed since that one.
    replaces: str | None = None
    changes: list[str] = field(default_factory=list)
    # (label, value) rows of section I
    results: list[tuple[str, str]] = field(default_factory=list)
    # status rows: (unit, due, state, note) of section II
    status: list[tuple[str, str, str, str]] = field(default_factory=list)
    on_time: list[str] = field(default_factory=list)
    late: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    combined_with: str | None = None
    closing: str | None = None
    signer: Signer | None = None
    recipients: list[str] = field(default_factory=list)  # Nơi nhận lines, without '- '
    archive: str = "Lưu: VT."
    # Stored values left out or cleaned (engine.values): for the operator, in the
    # markdown only, never printed on the report.
    warnings: list[str] = field(default_factory=list)

    @property
    def number_line(self) -> str:
        return f"Số: …/{self.symbol}"

    @property
    def date_line(self) -> str:
        return long_date(self.day, self.place)


# ---------------------------------------------------------------- markdown


# The characters that make Markdown markup are backslash-escaped: brackets (no link or
# image can form without them, so parentheses stay as typed), emphasis, code, headings,
# strikethrough, table bars; <, > and & become entities, so HTML stays text.
_MD_PUNCTUATION = re.compile(r"([\\`*_\[\]#~|])")


def _md(text: str) -> str:
    """Text from units and plans as Markdown text: markup is shown, never rendered."""
    return _MD_PUNCTUATION.sub(r"\\\1", html.escape(xml_safe(str(text)), quote=False))


def _md_cell(text: str) -> str:
    return _md(text).replace("\n", "<br>")


def render_markdown(doc: ReportDocument) -> str:
    lines = [
        f"**{doc.parent_body.upper()}**  " if doc.parent_body else "",
        f"**{doc.issuer.upper()}**  ",
        f"{doc.number_line}",
        "",
        f"**{QUOC_HIEU}**  ",
        f"**{TIEU_NGU}**  ",
        f"*{doc.date_line}*",
        "",
        f"## {_md(doc.title)}",
        f"**{_md(doc.summary)}**",
        "",
    ]
    if doc.warnings:
        lines += [f"**{WARNINGS_HEADING}**", ""]
        lines += [f"- {_md(warning)}" for warning in doc.warnings]
        lines.append("")
    lines.extend(f"{_md(p)}\n" for p in doc.intro)
    if doc.replaces:
        lines += [f"*{_md(doc.replaces)}*", ""]
    if doc.changes:
        lines += [CHANGES_HEADING, ""]
        lines += [f"- {_md(change)}" for change in doc.changes]
        lines.append("")
    lines += ["### I. Kết quả tổng hợp", "", "| STT | Nội dung | Kết quả |", "| --- | --- | --- |"]
    for index, (label, value) in enumerate(doc.results, 1):
        lines.append(f"| {index} | {_md_cell(label)} | {_md_cell(value)} |")
    lines += [
        "",
        "### II. Tình hình gửi báo cáo của các đơn vị",
        "",
        f"- Đúng hạn ({len(doc.on_time)}): {_md(', '.join(doc.on_time)) or 'không có'}",
        f"- Quá hạn ({len(doc.late)}): {_md(', '.join(doc.late)) or 'không có'}",
        f"- Chưa gửi ({len(doc.missing)}): {_md(', '.join(doc.missing)) or 'không có'}",
        "",
        "| STT | Đơn vị | Hạn | Tình trạng | Ghi chú |",
        "| --- | --- | --- | --- | --- |",
    ]
    for index, (unit, due, state, note) in enumerate(doc.status, 1):
        lines.append(
            f"| {index} | {_md_cell(unit)} | {due} | {_md_cell(state)} | {_md_cell(note)} |"
        )
    if doc.combined_with:
        lines += ["", f"*Báo cáo được lồng ghép với {_md(doc.combined_with)}.*"]
    if doc.closing:
        lines += ["", _md(doc.closing)]
    if doc.signer:
        lines += ["", *_signer_lines(doc.signer)]
    if doc.recipients:
        lines += ["", "*Nơi nhận:*"]
        lines += [f"- {_md(r)};" for r in doc.recipients]
        lines.append(f"- {doc.archive}")
    return "\n".join(line for line in lines if line is not None).strip() + "\n"


def _signer_lines(signer: Signer) -> list[str]:
    lines = []
    if signer.authority and signer.on_behalf_of:
        lines.append(f"**{signer.authority} {signer.on_behalf_of.upper()}**  ")
    elif signer.authority:
        lines.append(f"**{signer.authority}**  ")
    lines.append(f"**{signer.title.upper()}**  ")
    lines.append(f"**{signer.name}**" if signer.name else "*(Ký, ghi rõ họ tên)*")
    return lines


# ---------------------------------------------------------------- docx


def _font(run, size: float, bold: bool = False, italic: bool = False) -> None:
    from docx.oxml.ns import qn
    from docx.shared import Pt

    run.font.name = FONT
    run.font.size = Pt(size)
    run.bold = bold
    run.italic = italic
    rpr = run._element.get_or_add_rPr()
    fonts = rpr.find(qn("w:rFonts"))
    if fonts is None:
        fonts = rpr.makeelement(qn("w:rFonts"), {})
        rpr.append(fonts)
    for attr in ("w:ascii", "w:hAnsi", "w:eastAsia", "w:cs"):
        fonts.set(qn(attr), FONT)


def _para(
    container,
    text: str = "",
    size: float = 14,
    bold: bool = False,
    italic: bool = False,
    align: str = "left",
    space_after: float = 0,
    indent: bool = False,
):
    from docx.enum.text import WD_ALIGN_PARAGRAPH
    from docx.shared import Cm, Pt

    paragraph = container.add_paragraph()
    paragraph.alignment = {
        "left": WD_ALIGN_PARAGRAPH.LEFT,
        "center": WD_ALIGN_PARAGRAPH.CENTER,
        "right": WD_ALIGN_PARAGRAPH.RIGHT,
        "justify": WD_ALIGN_PARAGRAPH.JUSTIFY,
    }[align]
    paragraph.paragraph_format.space_after = Pt(space_after)
    paragraph.paragraph_format.space_before = Pt(0)
    if indent:
        paragraph.paragraph_format.first_line_indent = Cm(1)
    if text:
        _font(paragraph.add_run(text), size, bold, italic)
    return paragraph


def _cell(cell, text: str, size: float = 12, bold: bool = False, align: str = "left") -> None:
    cell.text = ""
    first = cell.paragraphs[0]
    lines = text.split("\n") or [""]
    from docx.enum.text import WD_ALIGN_PARAGRAPH

    for index, line in enumerate(lines):
        paragraph = first if index == 0 else cell.add_paragraph()
        paragraph.alignment = (
            WD_ALIGN_PARAGRAPH.CENTER if align == "center" else WD_ALIGN_PARAGRAPH.LEFT
        )
        _font(paragraph.add_run(line), size, bold)


def _no_borders(table) -> None:
    from docx.oxml.ns import qn

    tbl_pr = table._tbl.tblPr
    borders = tbl_pr.makeelement(qn("w:tblBorders"), {})
    for edge in ("top", "left", "bottom", "right", "insideH", "insideV"):
        element = borders.makeelement(qn(f"w:{edge}"), {qn("w:val"): "nil"})
        borders.append(element)
    tbl_pr.append(borders)


def _grid(document, header: list[str], rows: list[list[str]], widths_cm: list[float]) -> None:
    from docx.shared import Cm

    table = document.add_table(rows=1, cols=len(header))
    table.style = "Table Grid"
    for index, title in enumerate(header):
        _cell(table.rows[0].cells[index], title, bold=True, align="center")
    for row in rows:
        cells = table.add_row().cells
        for index, value in enumerate(row):
            _cell(cells[index], value, align="center" if index == 0 else "left")
    for row in table.rows:
        for index, width in enumerate(widths_cm):
            row.cells[index].width = Cm(width)


def render_docx(doc: ReportDocument, path: Path) -> Path:
    """Write ``doc`` as a Word file at ``path`` (atomically) and return the path."""
    from docx import Document

    doc = _xml_safe(doc)  # a control character in any text would stop python-docx
    document = Document()
    _a4_page(document)
    _docx_header(document, doc)
    _docx_opening(document, doc)
    _docx_results(document, doc)
    _docx_status(document, doc)
    _docx_closing(document, doc)
    _docx_footer(document, doc)
    return _save_atomically(document, path)


def _xml_safe(value: Any) -> Any:
    """``value`` (the document, its signer, lists, tuples, text) without the characters
    XML cannot hold (engine.values.xml_safe); anything else as it is."""
    if isinstance(value, str):
        return xml_safe(value)
    if isinstance(value, (list, tuple)):
        return type(value)(_xml_safe(item) for item in value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        changes = {f.name: _xml_safe(getattr(value, f.name)) for f in dataclasses.fields(value)}
        return dataclasses.replace(value, **changes)
    return value


def _a4_page(document) -> None:
    from docx.shared import Cm

    section = document.sections[0]
    section.page_width, section.page_height = Cm(21), Cm(29.7)  # A4
    section.top_margin, section.bottom_margin = Cm(2), Cm(2)
    section.left_margin, section.right_margin = Cm(3), Cm(1.5)


def _docx_header(document, doc: ReportDocument) -> None:
    """Issuing body on the left, national title on the right (Nghị định 30, Phụ lục I)."""
    from docx.shared import Cm

    head = document.add_table(rows=1, cols=2)
    _no_borders(head)
    left, right = head.rows[0].cells
    left.width, right.width = Cm(6.5), Cm(10)
    left.text = right.text = ""
    if doc.parent_body:
        _font(left.paragraphs[0].add_run(doc.parent_body.upper()), 13)
        left.paragraphs[0].alignment = 1
        _para(left, doc.issuer.upper(), 13, bold=True, align="center")
    else:
        _font(left.paragraphs[0].add_run(doc.issuer.upper()), 13, bold=True)
        left.paragraphs[0].alignment = 1
    _para(left, doc.number_line, 13, align="center")
    _font(right.paragraphs[0].add_run(QUOC_HIEU), 12, bold=True)
    right.paragraphs[0].alignment = 1
    _para(right, TIEU_NGU, 13, bold=True, align="center")
    _para(right, "")
    _para(right, doc.date_line, 14, italic=True, align="center")


def _docx_opening(document, doc: ReportDocument) -> None:
    """Title, trích yếu, introduction and, for a revision, what it replaces and changes."""
    _para(document, "")
    _para(document, doc.title.upper(), 14, bold=True, align="center")
    _para(document, doc.summary, 14, bold=True, align="center", space_after=12)
    for text in doc.intro:
        _para(document, text, 14, align="justify", indent=True, space_after=6)
    if doc.replaces:
        _para(document, doc.replaces, 14, italic=True, align="justify", indent=True, space_after=6)
    if doc.changes:
        _para(document, CHANGES_HEADING, 14, align="justify", indent=True, space_after=3)
        for change in doc.changes:
            _para(document, f"- {change};", 14, align="justify", indent=True, space_after=3)


def _docx_results(document, doc: ReportDocument) -> None:
    """Section I: the consolidated figures."""
    _para(document, "I. KẾT QUẢ TỔNG HỢP", 14, bold=True, space_after=6)
    _grid(
        document,
        ["STT", "Nội dung", "Kết quả"],
        [[str(i), label, value] for i, (label, value) in enumerate(doc.results, 1)],
        [1.2, 8.3, 7],
    )


def _docx_status(document, doc: ReportDocument) -> None:
    """Section II: who sent on time, late or not at all, then one row per unit."""
    _para(document, "")
    _para(document, "II. TÌNH HÌNH GỬI BÁO CÁO CỦA CÁC ĐƠN VỊ", 14, bold=True, space_after=6)
    for label, names in (
        ("Gửi đúng hạn", doc.on_time),
        ("Gửi quá hạn", doc.late),
        ("Chưa gửi báo cáo", doc.missing),
    ):
        listed = ", ".join(names) if names else "không có"
        _para(
            document,
            f"- {label} ({len(names)} đơn vị): {listed}.",
            14,
            align="justify",
            indent=True,
            space_after=3,
        )
    _grid(
        document,
        ["STT", "Đơn vị", "Hạn", "Tình trạng", "Ghi chú"],
        [
            [str(i), unit, due, state, note]
            for i, (unit, due, state, note) in enumerate(doc.status, 1)
        ],
        [1.2, 6, 2.5, 4, 2.8],
    )


def _docx_closing(document, doc: ReportDocument) -> None:
    if doc.combined_with:
        _para(document, "")
        _para(
            document,
            f"Báo cáo này được lồng ghép với {doc.combined_with}.",
            14,
            italic=True,
            align="justify",
            indent=True,
        )
    if doc.closing:
        _para(document, doc.closing, 14, align="justify", indent=True, space_after=6)


def _docx_footer(document, doc: ReportDocument) -> None:
    """Recipients (left, size 12/11) and signer (right), side by side."""
    from docx.shared import Cm

    _para(document, "")
    foot = document.add_table(rows=1, cols=2)
    _no_borders(foot)
    recipients_cell, signer_cell = foot.rows[0].cells
    recipients_cell.width, signer_cell.width = Cm(8), Cm(8.5)
    recipients_cell.text = signer_cell.text = ""
    _docx_recipients(recipients_cell, doc)
    _docx_signer(signer_cell, doc.signer or Signer(title="THỦ TRƯỞNG ĐƠN VỊ"))


def _docx_recipients(cell, doc: ReportDocument) -> None:
    _font(cell.paragraphs[0].add_run("Nơi nhận:"), 12, bold=True, italic=True)
    for line in doc.recipients:
        _para(cell, f"- {line};", 11)
    _para(cell, f"- {doc.archive}", 11)


def _docx_signer(cell, signer: Signer) -> None:
    first = cell.paragraphs[0]
    first.alignment = 1
    if signer.authority:
        heading = (
            f"{signer.authority} {signer.on_behalf_of.upper()}"
            if signer.on_behalf_of
            else signer.authority
        )
        _font(first.add_run(heading), 14, bold=True)
        _para(cell, signer.title.upper(), 14, bold=True, align="center")
    else:
        _font(first.add_run(signer.title.upper()), 14, bold=True)
    for _ in range(3):
        _para(cell, "")
    if signer.name:
        _para(cell, signer.name, 14, bold=True, align="center")
    else:
        _para(cell, "(Ký, ghi rõ họ tên)", 14, italic=True, align="center")


def _save_atomically(document, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".docx", dir=path.parent)
    os.close(handle)
    try:
        document.save(tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path


# ---------------------------------------------------------------- stored files


def stored_path(files_dir: Path, sha256: str) -> Path:
    """Where a stored file's bytes live: ``files_dir/ab/abcdef…`` (content-addressed)."""
    return files_dir / sha256[:2] / sha256


def store_file(
    session: Session,
    data: bytes,
    *,
    name: str,
    content_type: str,
    now: dt.datetime,
    files_dir: Path,
) -> StoredFile:
    """Keep ``data`` by content hash and record it (same bytes and name = same row)."""
    digest = hashlib.sha256(data).hexdigest()
    target = stored_path(files_dir, digest)
    if not target.exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        handle, tmp = tempfile.mkstemp(prefix=".tmp-", dir=target.parent)
        with os.fdopen(handle, "wb") as out:
            out.write(data)
        os.replace(tmp, target)
    existing = session.scalar(
        select(StoredFile).where(StoredFile.sha256 == digest, StoredFile.original_name == name)
    )
    if existing is not None:
        return existing
    row = StoredFile(
        sha256=digest, original_name=name, content_type=content_type, size=len(data), created_at=now
    )
    session.add(row)
    session.flush()
    return row
