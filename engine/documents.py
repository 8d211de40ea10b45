"""Documents: the consolidated report as .docx (Nghị định 30/2020/NĐ-CP layout) and markdown.

One :class:`ReportDocument` feeds both renderings, so the Prefect artifact and the
Word file always say the same thing. The .docx follows Phụ lục I of Nghị định 30: the
issuing body (its parent above it) with a short rule under it, quốc hiệu and tiêu ngữ
with the rule under it, Số/ký hiệu, place and date in italics, type and trích yếu with
a rule under it, the body, the signer and Nơi nhận, page numbers in the top margin from
page 2; per-unit detail goes into phụ lục tables, one row per unit. Generated and
uploaded files are kept by content hash under ``settings().files_dir`` and recorded as
``StoredFile`` rows.
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

from engine import docx_build as xb
from engine import party as pt
from engine.store.models import StoredFile
from engine.textwidth import balanced_lines, width_cm
from engine.values import xml_safe
from engine.vntext import long_date, short_date

QUOC_HIEU = "CỘNG HÒA XÃ HỘI CHỦ NGHĨA VIỆT NAM"
TIEU_NGU = "Độc lập - Tự do - Hạnh phúc"
DOCX_TYPE = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
FONT = xb.FONT
DRAFT_MARK = "DỰ THẢO"
CHANGES_HEADING = "Những điểm thay đổi so với báo cáo trước:"
WARNINGS_HEADING = "Cảnh báo về số liệu đã lưu (không in trong báo cáo):"
STATUS_APPENDIX = "TÌNH HÌNH GỬI BÁO CÁO CỦA CÁC ĐƠN VỊ"
RESULTS_HEADER = ("STT", "Nội dung", "Kết quả", "Đơn vị báo cáo")
# A unit list longer than this in the body is left to Phụ lục 1.
NAMES_IN_BODY = 8

# A4 and the margins of Nghị định 30 (top and bottom 20–25 mm, left 30–35 mm, right
# 15–20 mm), in cm; the text is 16.5 cm wide (25.2 cm on a landscape page).
PAGE = (21.0, 29.7)
MARGINS = {"top": 2.0, "bottom": 2.0, "left": 3.0, "right": 1.5}
TEXT_WIDTH = PAGE[0] - MARGINS["left"] - MARGINS["right"]
LANDSCAPE_WIDTH = PAGE[1] - MARGINS["left"] - MARGINS["right"]
HEAD_WIDTHS = (6.0, 10.5)  # issuing body | quốc hiệu: "CỘNG HÒA … VIỆT NAM" fits in 12 pt
FOOT_WIDTHS = (8.0, 8.5)  # Nơi nhận | signer
CELL_PADDING = 0.38  # Word's default cell margins, left + right


@dataclass
class Signer:
    """The signer block: authority lines (TM. ỦY BAN NHÂN DÂN, KT. CHỦ TỊCH), the title
    and the name, each printed on its own line (engine.authority checks the chain)."""

    title: str  # CHỦ TỊCH, PHÓ CHỦ TỊCH, TRƯỞNG CÔNG AN…
    name: str | None = None
    lines: list[str] = field(default_factory=list)


@dataclass
class Appendix:
    """A phụ lục: one row per unit. ``weights``: relative column widths (scaled to the
    page); ``aligns``: 'center', 'right' or None (left) per column."""

    title: str
    header: list[str]
    rows: list[list[str]]
    weights: list[float]
    aligns: list[str | None]
    note: str | None = None
    landscape: bool = False


@dataclass
class ReportDocument:
    """Everything printed on a consolidated report."""

    issuer: str  # issuing body, e.g. CÔNG AN HUYỆN HẠ LANG
    symbol: str  # e.g. BC-CAH → "Số: …/BC-CAH"; a Party body's BC/HU → "Số …-BC/HU"
    place: str | None
    day: dt.date
    title: str  # BÁO CÁO
    summary: str  # trích yếu
    parent_body: str | None = None  # the body printed above the issuer
    intro: list[str] = field(default_factory=list)
    # A revision: "Báo cáo này thay thế báo cáo … ngày …" and what changed since that one.
    replaces: str | None = None
    changes: list[str] = field(default_factory=list)
    # (label, value, the units it covers and those missing) rows of section I
    results: list[tuple[str, str, str]] = field(default_factory=list)
    # status rows: (unit, due, state, note), printed as Phụ lục 1
    status: list[tuple[str, str, str, str]] = field(default_factory=list)
    on_time: list[str] = field(default_factory=list)
    late: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    combined_with: str | None = None
    closing: str | None = None
    signer: Signer | None = None
    recipients: list[str] = field(default_factory=list)  # Nơi nhận lines, without '- '
    archive: str = "Lưu: VT."
    # Phụ lục 2, 3…: the units' figures and texts, one row per unit.
    appendices: list[Appendix] = field(default_factory=list)
    # Stored values left out or cleaned (engine.values): for the operator, in the
    # markdown only, never printed on the report.
    warnings: list[str] = field(default_factory=list)
    # The audit chain's head when the report was written (engine.audit_anchor): in the
    # document's properties and at the end of the artifact, not on the printed page.
    audit_head: str | None = None
    # engine.approval: a draft is marked "DỰ THẢO" on every page; an approved report
    # carries its number ("125/BC-CAH") and the sections the consolidating unit wrote:
    # ``assessment`` opens section I, ``sections`` (heading, paragraphs) follow section II.
    draft: bool = False
    number: str | None = None
    assessment: list[str] = field(default_factory=list)
    sections: list[tuple[str, list[str]]] = field(default_factory=list)
    # A Party body's report: Hướng dẫn 36-HD/VPTW layout (engine.party), not Nghị định 30's.
    party: bool = False

    @property
    def number_text(self) -> str:
        """'125/BC-CAH' ('…/BC-CAH' before it is numbered); a Party body's '12-BC/HU'."""
        return self.number or (f"…-{self.symbol}" if self.party else f"…/{self.symbol}")

    @property
    def number_line(self) -> str:
        return f"Số {self.number_text}" if self.party else f"Số: {self.number_text}"

    @property
    def header_issuer(self) -> str:
        """The issuer as the header prints it (a Party body: once under its parent)."""
        return pt.header_name(self.issuer, self.parent_body) if self.party else self.issuer

    @property
    def date_line(self) -> str:
        return long_date(self.day, self.place)

    @property
    def attached_to(self) -> str:
        """'(Kèm theo Báo cáo số …/BC-UBND ngày 27/9/2027 của Ủy ban nhân dân huyện …)'."""
        kind = self.title[:1].upper() + self.title[1:].lower()
        number = self.number_text
        return f"(Kèm theo {kind} số {number} ngày {short_date(self.day)} của {self.issuer})"

    def submission_lines(self) -> list[str]:
        """Section II: how many units sent on time, late, not at all (names when few)."""
        total = len(self.on_time) + len(self.late) + len(self.missing)
        lines = [f"Tổng số đơn vị phải gửi báo cáo: {total} đơn vị; chi tiết tại Phụ lục 1."]
        for label, names in (
            ("Gửi đúng hạn", self.on_time),
            ("Gửi quá hạn", self.late),
            ("Chưa gửi báo cáo", self.missing),
        ):
            if not names:
                lines.append(f"{label}: không có.")
            elif label == "Gửi đúng hạn" or len(names) > NAMES_IN_BODY:
                lines.append(f"{label}: {len(names)} đơn vị.")
            else:
                lines.append(f"{label}: {len(names)} đơn vị, gồm: {'; '.join(names)}.")
        return lines

    def appendix_list(self) -> list[Appendix]:
        """Phụ lục 1 (the status of every unit's report), then the others."""
        status = Appendix(
            STATUS_APPENDIX,
            ["STT", "Đơn vị", "Hạn", "Tình trạng", "Ghi chú"],
            [[str(i), *row] for i, row in enumerate(self.status, 1)],
            [1.3, 6.0, 2.2, 4.2, 2.8],
            ["center", None, "center", None, None],
        )
        return [status, *self.appendices] if self.status else list(self.appendices)


# ---------------------------------------------------------------- markdown


# The characters that make Markdown markup are backslash-escaped: brackets (no link or
# image can form without them, so parentheses stay as typed), emphasis, code, headings,
# strikethrough, table bars; <, > and & become entities, so HTML stays text.
_MD_PUNCTUATION = re.compile(r"([\\`*_\[\]#~|])")


_MD_PLAIN = re.compile(r"[^\\`*_\[\]#~|<>&]*")


def _md(text: str) -> str:
    """Text from units and plans as Markdown text: markup is shown, never rendered."""
    text = xml_safe(str(text))
    if _MD_PLAIN.fullmatch(text):  # most cells: nothing to escape
        return text
    return _MD_PUNCTUATION.sub(r"\\\1", html.escape(text, quote=False))


def _md_cell(text: str) -> str:
    return _md(text).replace("\n", "<br>")


HEAD_PREFIX = "Đầu "  # before the audit chain's head in the properties and the artifact


def render_markdown(doc: ReportDocument) -> str:
    lines: list[str | None] = [
        f"**{DRAFT_MARK}**\n" if doc.draft else None,
        f"**{doc.parent_body.upper()}**  " if doc.parent_body else None,
        f"**{doc.header_issuer.upper()}**  ",
        f"\\{pt.STAR}  " if doc.party else None,
        f"{doc.number_line}",
        "",
        *(
            [f"**{pt.PARTY_TITLE}**  "]
            if doc.party
            else [f"**{QUOC_HIEU}**  ", f"**{TIEU_NGU}**  "]
        ),
        f"*{doc.date_line}*",
        "",
        f"## {_md(doc.title)}",
        f"**{_md(doc.summary)}**",
        *(["", "\\-" * 5] if doc.party else []),  # Hướng dẫn 36: '-----' under it
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
    lines += ["### I. Kết quả thực hiện", ""]
    lines += [f"{_md(p)}\n" for p in doc.assessment]
    lines.append(f"| {' | '.join(RESULTS_HEADER)} |")
    lines.append("|" + " --- |" * len(RESULTS_HEADER))
    for index, (label, value, covers) in enumerate(doc.results, 1):
        lines.append(f"| {index} | {_md_cell(label)} | {_md_cell(value)} | {_md_cell(covers)} |")
    lines += ["", "### II. Tình hình gửi báo cáo của các đơn vị", ""]
    lines += [f"- {_md(line)}" for line in doc.submission_lines()]
    for heading, paragraphs in doc.sections:
        lines += ["", f"### {_md(heading)}", ""]
        lines += [f"{_md(p)}\n" for p in paragraphs]
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
    for number, appendix in enumerate(doc.appendix_list(), 1):
        lines += ["", f"### Phụ lục {number}: {_md(appendix.title)}", ""]
        lines.append("| " + " | ".join(_md_cell(h) for h in appendix.header) + " |")
        lines.append("|" + " --- |" * len(appendix.header))
        lines += ["| " + " | ".join(_md_cell(c) for c in row) + " |" for row in appendix.rows]
        if appendix.note:
            lines += ["", f"*{_md(appendix.note)}*"]
    if doc.audit_head:
        lines += ["", f"*{_md(HEAD_PREFIX + doc.audit_head)}.*"]
    return "\n".join(line for line in lines if line is not None).strip() + "\n"


def _signer_lines(signer: Signer) -> list[str]:
    lines = [f"**{_md(line.upper())}**  " for line in signer.lines]
    lines.append(f"**{_md(signer.title.upper())}**  ")
    lines.append(f"**{_md(signer.name)}**" if signer.name else "*(Ký, ghi rõ họ tên)*")
    return lines


# ---------------------------------------------------------------- docx


def render_docx(doc: ReportDocument, path: Path) -> Path:
    """Write ``doc`` as a Word file at ``path`` (atomically) and return the path."""
    from docx import Document

    doc = _xml_safe(doc)  # a control character in any text would stop python-docx
    document = Document()
    xb.set_defaults(document)
    _page(document.sections[0], landscape=False)
    _page_numbers(document.sections[0])
    if doc.draft:
        _draft_mark(document.sections[0])
    _docx_header(document, doc)
    _docx_opening(document, doc)
    _docx_results(document, doc)
    _docx_status(document, doc)
    _docx_closing(document, doc)
    _docx_footer(document, doc)
    deferred: list[Any] = []  # the phụ lục rows, written as the file is saved
    for number, appendix in enumerate(doc.appendix_list(), 1):
        _docx_appendix(document, doc, number, appendix, deferred)
    if doc.audit_head:
        document.core_properties.comments = HEAD_PREFIX + doc.audit_head
    return _save_atomically(document, path, deferred)


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


def _page(section: Any, landscape: bool) -> None:
    from docx.enum.section import WD_ORIENT
    from docx.shared import Cm

    width, height = (PAGE[1], PAGE[0]) if landscape else PAGE
    section.orientation = WD_ORIENT.LANDSCAPE if landscape else WD_ORIENT.PORTRAIT
    section.page_width, section.page_height = Cm(width), Cm(height)
    section.top_margin, section.bottom_margin = Cm(MARGINS["top"]), Cm(MARGINS["bottom"])
    section.left_margin, section.right_margin = Cm(MARGINS["left"]), Cm(MARGINS["right"])
    section.header_distance = Cm(1.0)


def _page_numbers(section: Any) -> None:
    """Page numbers centred in the top margin, from page 2 (Nghị định 30): the first
    page has a header of its own, left empty."""
    section.different_first_page_header_footer = True
    header = section.header
    header.is_linked_to_previous = False
    holder = header._element
    for p in list(holder):
        holder.remove(p)
    holder.append(xb.page_number_paragraph(13))
    section.first_page_header.is_linked_to_previous = False


def _draft_mark(section: Any) -> None:
    """ "DỰ THẢO" at the top right of every page (both headers of the first section; the
    phụ lục sections link to its default header)."""
    mark = [xb.paragraph(DRAFT_MARK, size=13, bold=True, align="right", after=0) for _ in "12"]
    section.first_page_header._element.insert(0, mark[0])
    section.header._element.append(mark[1])  # under the page number, which comes first


def _lines(texts: list[str], size: float, bold: bool = False, italic: bool = False) -> list[Any]:
    return [xb.paragraph(t, size=size, bold=bold, italic=italic, align="center") for t in texts]


def _docx_header(document: Any, doc: ReportDocument) -> None:
    """Issuing body (under its parent) left, quốc hiệu and tiêu ngữ right, each with its
    rule; then Số/ký hiệu left and place and date right, on one line (Phụ lục I). A Party
    body's (Hướng dẫn 36-HD/VPTW): the body above and the issuer in 14 pt with a '*' under
    them, 'ĐẢNG CỘNG SẢN VIỆT NAM' (15 pt) with its rule right, no quốc hiệu or tiêu ngữ."""
    left_w, right_w = HEAD_WIDTHS
    inner = left_w - CELL_PADDING
    size = 14 if doc.party else 13
    tbl = xb.table(HEAD_WIDTHS, None, [["", ""], ["", ""]], borders=False)
    names = balanced_lines(doc.header_issuer.upper(), inner, size)
    left: list[Any] = []
    if doc.parent_body:
        left += _lines(balanced_lines(doc.parent_body.upper(), inner, size), size)
    left += _lines(names, size, bold=True)
    widest = max(width_cm(n, size) for n in names)
    if doc.party:
        left.append(xb.paragraph(pt.STAR, size=size, align="center"))
    else:
        left.append(xb.rule(min(widest, inner) * 0.4, inner))
    xb.fill_cell(xb.cell_paragraphs(tbl, 0, 0), left)
    right_inner = right_w - CELL_PADDING
    right = (
        [
            xb.paragraph(pt.PARTY_TITLE, size=15, bold=True, align="center"),
            xb.rule(width_cm(pt.PARTY_TITLE, 15), right_inner),
        ]
        if doc.party
        else [
            xb.paragraph(QUOC_HIEU, size=12, bold=True, align="center"),
            xb.paragraph(TIEU_NGU, size=13, bold=True, align="center"),
            xb.rule(width_cm(TIEU_NGU, 13), right_inner),
        ]
    )
    xb.fill_cell(xb.cell_paragraphs(tbl, 0, 1), right)
    number = xb.paragraph(doc.number_line, size=size, align="center", before=6)
    xb.fill_cell(xb.cell_paragraphs(tbl, 1, 0), [number])
    date = xb.paragraph(doc.date_line, size=14, italic=True, align="center", before=6)
    xb.fill_cell(xb.cell_paragraphs(tbl, 1, 1), [date])
    xb.append(document, tbl)


def _body(
    document: Any, text: str, *, bold: bool = False, italic: bool = False, keep: bool = False
) -> None:
    p = xb.paragraph(text, style="KhBody", bold=bold, italic=italic)
    xb.append(document, xb.keep_with_next(p) if keep else p)


def _docx_opening(document: Any, doc: ReportDocument) -> None:
    """Type and trích yếu (with the rule under it), introduction and, for a revision,
    what it replaces and what changed."""
    xb.append(
        document, xb.paragraph(doc.title.upper(), size=14, bold=True, align="center", before=18)
    )
    xb.append(document, xb.paragraph(doc.summary, size=14, bold=True, align="center"))
    if doc.party:  # Hướng dẫn 36: five hyphens under the trích yếu
        xb.append(document, xb.paragraph("-" * 5, size=14, align="center"))
    else:
        line = min(width_cm(doc.summary, 14), TEXT_WIDTH) / 3
        xb.append(document, xb.rule(line, TEXT_WIDTH, before=2))
    xb.append(document, xb.paragraph("", after=12))
    for text in doc.intro:
        _body(document, text)
    if doc.replaces:
        _body(document, doc.replaces, italic=True)
    if doc.changes:
        _body(document, CHANGES_HEADING)
        for change in doc.changes:
            _body(document, f"- {change};")


def _docx_results(document: Any, doc: ReportDocument) -> None:
    """Section I: the consolidated figures, each saying which units it covers."""
    _body(document, "I. KẾT QUẢ THỰC HIỆN", bold=True)
    for text in doc.assessment:
        _body(document, text)
    rows = [[str(i), *row] for i, row in enumerate(doc.results, 1)]
    widths = [1.3, 6.0, 3.4, 5.8]
    aligns = ["center", None, "center", None]
    tbl = xb.table(widths, RESULTS_HEADER, rows, aligns=aligns, split_rows=False)
    xb.append(document, tbl)
    xb.append(document, xb.paragraph("", after=6))


def _docx_status(document: Any, doc: ReportDocument) -> None:
    """Section II: how many units sent on time, late or not at all (each unit: Phụ lục 1)."""
    _body(document, "II. TÌNH HÌNH GỬI BÁO CÁO CỦA CÁC ĐƠN VỊ", bold=True)
    for line in doc.submission_lines():
        _body(document, f"- {line}")
    for heading, paragraphs in doc.sections:
        _body(document, heading, bold=True, keep=True)
        for text in paragraphs:
            _body(document, text)


def _docx_closing(document: Any, doc: ReportDocument) -> None:
    """The closing lines, kept on the page of the signature (never a signer alone)."""
    if doc.combined_with:
        _body(
            document, f"Báo cáo này được lồng ghép với {doc.combined_with}.", italic=True, keep=True
        )
    if doc.closing:
        _body(document, doc.closing, keep=True)


def _docx_footer(document: Any, doc: ReportDocument) -> None:
    """Nơi nhận (left, 12 bold italic then 11) and the signer (right), side by side."""
    xb.append(document, xb.keep_with_next(xb.paragraph("", after=6)))
    tbl = xb.table(FOOT_WIDTHS, None, [["", ""]], borders=False)
    recipients = [xb.paragraph("Nơi nhận:", size=12, bold=True, italic=True)]
    recipients += [xb.paragraph(f"- {line};", size=11) for line in doc.recipients]
    recipients.append(xb.paragraph(f"- {doc.archive}", size=11))
    xb.fill_cell(xb.cell_paragraphs(tbl, 0, 0), recipients)
    xb.fill_cell(xb.cell_paragraphs(tbl, 0, 1), _signer_paragraphs(doc.signer))
    xb.append(document, tbl)


def _signer_paragraphs(signer: Signer | None) -> list[Any]:
    signer = signer or Signer(title="THỦ TRƯỞNG ĐƠN VỊ")
    lines: list[Any] = [
        xb.paragraph(line.upper(), size=14, bold=True, align="center") for line in signer.lines
    ]
    lines.append(xb.paragraph(signer.title.upper(), size=14, bold=True, align="center"))
    lines += [xb.paragraph("", size=14) for _ in range(4)]  # room for signature and seal
    if signer.name:
        lines.append(xb.paragraph(signer.name, size=14, bold=True, align="center"))
    else:
        lines.append(xb.paragraph("(Ký, ghi rõ họ tên)", size=14, italic=True, align="center"))
    return lines


def _shrink_break(paragraph: Any) -> None:
    """The empty paragraph that ends a section (it holds the section break) as small as
    Word allows: after a footer that fills page 1 it would otherwise start a blank page."""
    from docx.oxml.ns import qn
    from docx.shared import Pt

    fmt = paragraph.paragraph_format
    fmt.space_before, fmt.space_after, fmt.line_spacing = Pt(0), Pt(0), Pt(1)
    properties = paragraph._p.get_or_add_pPr()
    mark = properties.find(qn("w:rPr"))
    if mark is None:  # the paragraph mark's run properties come before the section break
        mark = properties.makeelement(qn("w:rPr"), {})
        breaks = properties.find(qn("w:sectPr"))
        if breaks is not None:
            breaks.addprevious(mark)
        else:
            properties.append(mark)
    size = mark.makeelement(qn("w:sz"), {qn("w:val"): "2"})
    mark.append(size)


def _docx_appendix(
    document: Any, doc: ReportDocument, number: int, appendix: Appendix, deferred: list[Any]
) -> None:
    """A phụ lục on a new page (landscape when it is wide): its number, title, what it
    is attached to, then the table, one row per unit."""
    from docx.enum.section import WD_SECTION

    section = document.add_section(WD_SECTION.NEW_PAGE)
    _shrink_break(document.paragraphs[-1])
    section.different_first_page_header_footer = False  # numbered from its first page
    _page(section, appendix.landscape)
    width = LANDSCAPE_WIDTH if appendix.landscape else TEXT_WIDTH
    xb.append(document, xb.paragraph(f"Phụ lục {number}", size=14, bold=True, align="center"))
    xb.append(document, xb.paragraph(appendix.title.upper(), size=14, bold=True, align="center"))
    xb.append(document, xb.paragraph(doc.attached_to, size=14, italic=True, align="center"))
    xb.append(document, xb.rule(width / 6, width, before=2))
    xb.append(document, xb.paragraph("", after=6))
    small = len(appendix.header) > 6
    first = 1.2 if small else 1.3  # "STT" on one line
    scale = (width - first) / sum(appendix.weights[1:])
    tbl = xb.table(
        [first] + [round(x * scale, 2) for x in appendix.weights[1:]],
        appendix.header,
        appendix.rows,
        aligns=appendix.aligns,
        cell_style="KhSmallCell" if small else "KhCell",
        head_style="KhSmallHead" if small else "KhCellHead",
        deferred=deferred,
    )
    xb.append(document, tbl)
    if appendix.note:
        xb.append(document, xb.paragraph(appendix.note, size=11, italic=True, before=6))


def _save_atomically(document, path: Path, deferred: list[Any] | None = None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".docx", dir=path.parent)
    os.close(handle)
    try:
        document.save(tmp)
        xb.write_deferred(Path(tmp), deferred or [])
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
