"""Low-level .docx building for engine.documents: styles, fast tables, rules, page numbers.

Fonts come from styles (the document defaults and a few paragraph styles), never from
each run: python-docx setting name, size, bold and italic on every run of every cell
took 21 of the 22.5 s of a 3,500-unit report. A table is built as XML: one styled row
is made once and deep-copied per row, only its texts set. Every table has a fixed
layout whose grid columns are the cells' widths (LibreOffice and Word lay a table out
by its grid; a grid that disagrees with the cells wraps "HUYỆN HẠ / LANG").
"""

from __future__ import annotations

import copy
import os
import re
import zipfile
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from lxml import etree

W_NS = "http://schemas.openxmlformats.org/wordprocessingml/2006/main"
FONT = "Times New Roman"
ROWS_MARK = "kehoach-rows-"  # an XML comment where deferred table rows go
_MARKS = re.compile(rb"<!--" + ROWS_MARK.encode() + rb"(\d+)-->")
_ROW_HEAD = re.compile(rb'<w:tr(?: xmlns(?::\w+)?="[^"]*")*>')
TWIPS_PER_CM = 1440 / 2.54

# Paragraph styles (id, name, size in pt, bold, italic, alignment)
STYLES = [
    ("KhBody", "Kh Body", 14, False, False, "both"),
    ("KhCell", "Kh Cell", 12, False, False, "left"),
    ("KhCellHead", "Kh Cell Head", 12, True, False, "center"),
    ("KhSmallCell", "Kh Small Cell", 11, False, False, "left"),
    ("KhSmallHead", "Kh Small Head", 10, True, False, "center"),
]


def w(tag: str) -> str:
    return f"{{{W_NS}}}{tag}"


def twips(cm: float) -> str:
    return str(round(cm * TWIPS_PER_CM))


def _el(tag: str, attrs: dict[str, str] | None = None, *children: Any) -> Any:
    element = etree.Element(w(tag), {w(k): v for k, v in (attrs or {}).items()})
    for child in children:
        element.append(child)
    return element


def set_defaults(document: Any) -> None:
    """Times New Roman 14 for every run, Vietnamese, no spacing, no theme fonts."""
    styles = document.styles.element
    defaults = styles.find(w("docDefaults"))
    rpr = defaults.find(f"{w('rPrDefault')}/{w('rPr')}")
    for child in list(rpr):
        if child.tag in (w("rFonts"), w("sz"), w("szCs"), w("lang")):
            rpr.remove(child)
    fonts = {k: FONT for k in ("ascii", "hAnsi", "eastAsia", "cs")}
    rpr.insert(0, _el("rFonts", fonts))
    rpr.append(_el("sz", {"val": "28"}))
    rpr.append(_el("szCs", {"val": "28"}))
    rpr.append(_el("lang", {"val": "vi-VN", "eastAsia": "vi-VN", "bidi": "ar-SA"}))
    ppr = defaults.find(f"{w('pPrDefault')}/{w('pPr')}")
    if ppr is None:
        holder = defaults.find(w("pPrDefault"))
        if holder is None:
            holder = _el("pPrDefault")
            defaults.append(holder)
        ppr = _el("pPr")
        holder.append(ppr)
    for child in list(ppr):
        ppr.remove(child)
    ppr.append(_el("spacing", {"before": "0", "after": "0", "line": "240", "lineRule": "auto"}))
    # The template's Normal style carries its own spacing: the defaults above decide.
    normal = styles.find(f"{w('style')}[@{w('styleId')}='Normal']")
    if normal is not None:
        for child in list(normal):
            if child.tag in (w("pPr"), w("rPr")):
                normal.remove(child)
    for style_id, name, size, bold, italic, align in STYLES:
        styles.append(_style(style_id, name, size, bold, italic, align))


def _style(style_id: str, name: str, size: float, bold: bool, italic: bool, align: str) -> Any:
    rpr = _el("rPr")
    if bold:
        rpr.append(_el("b"))
    if italic:
        rpr.append(_el("i"))
    half_points = str(round(size * 2))
    rpr.append(_el("sz", {"val": half_points}))
    rpr.append(_el("szCs", {"val": half_points}))
    ppr = _el("pPr", None, _el("jc", {"val": align}))
    if style_id == "KhBody":
        ppr.insert(0, _el("spacing", {"before": "0", "after": "120", "line": "264"}))
        ppr.insert(1, _el("ind", {"firstLine": twips(1.0)}))
    return _el(
        "style",
        {"type": "paragraph", "customStyle": "1", "styleId": style_id},
        _el("name", {"val": name}),
        _el("basedOn", {"val": "Normal"}),
        _el("qFormat"),
        ppr,
        rpr,
    )


def paragraph(
    text: str = "",
    *,
    style: str | None = None,
    size: float | None = None,
    bold: bool = False,
    italic: bool = False,
    align: str | None = None,
    before: float | None = None,
    after: float | None = None,
) -> Any:
    """A ``w:p`` element; what the style gives is not repeated on the run."""
    ppr = _el("pPr")
    if style:
        ppr.append(_el("pStyle", {"val": style}))
    if before is not None or after is not None:
        spacing = {}
        if before is not None:
            spacing["before"] = str(round(before * 20))
        if after is not None:
            spacing["after"] = str(round(after * 20))
        ppr.append(_el("spacing", spacing))
    if align:
        ppr.append(_el("jc", {"val": align}))
    p = _el("p", None, ppr)
    if text:
        p.append(run(text, size=size, bold=bold, italic=italic))
    return p


def run(text: str, *, size: float | None = None, bold: bool = False, italic: bool = False) -> Any:
    rpr = _el("rPr")
    if bold:
        rpr.append(_el("b"))
    if italic:
        rpr.append(_el("i"))
    if size is not None:
        rpr.append(_el("sz", {"val": str(round(size * 2))}))
        rpr.append(_el("szCs", {"val": str(round(size * 2))}))
    r = _el("r", None, rpr) if len(rpr) else _el("r")
    _set_run_text(r, text)
    return r


def _set_run_text(r: Any, text: str) -> None:
    """The run's text, a line break (``w:br``) for each newline."""
    for child in list(r):
        if child.tag != w("rPr"):
            r.remove(child)
    for index, line in enumerate(text.split("\n")):
        if index:
            r.append(_el("br"))
        t = _el("t")
        t.text = line
        t.set("{http://www.w3.org/XML/1998/namespace}space", "preserve")
        r.append(t)


def rule(width_cm: float, box_cm: float, *, before: float = 0) -> Any:
    """A short solid line (Nghị định 30: under the body name, the tiêu ngữ, the trích
    yếu): an empty paragraph with a bottom border, indented to ``width_cm`` centred in a
    box ``box_cm`` wide."""
    side = max(0.0, (box_cm - width_cm) / 2)
    ppr = _el(
        "pPr",
        None,
        _el(
            "pBdr",
            None,
            _el("bottom", {"val": "single", "sz": "6", "space": "1", "color": "000000"}),
        ),
        _el(
            "spacing",
            {"before": str(round(before * 20)), "after": "0", "line": "60", "lineRule": "exact"},
        ),
        _el("ind", {"left": twips(side), "right": twips(side)}),
        _el("jc", {"val": "center"}),
        _el("rPr", None, _el("sz", {"val": "4"}), _el("szCs", {"val": "4"})),
    )
    return _el("p", None, ppr)


def page_number_paragraph(size: float = 13) -> Any:
    """A centred paragraph holding the PAGE field."""
    half = str(round(size * 2))

    def field_run(*children: Any) -> Any:
        return _el("r", None, _el("rPr", None, _el("sz", {"val": half})), *children)

    instr = _el("instrText")
    instr.text = " PAGE "
    instr.set("{http://www.w3.org/XML/1998/namespace}space", "preserve")
    shown = _el("t")
    shown.text = "2"
    return _el(
        "p",
        None,
        _el("pPr", None, _el("jc", {"val": "center"})),
        field_run(_el("fldChar", {"fldCharType": "begin"})),
        field_run(instr),
        field_run(_el("fldChar", {"fldCharType": "separate"})),
        field_run(shown),
        field_run(_el("fldChar", {"fldCharType": "end"})),
    )


def _cell(width_cm: float, style: str, align: str | None, shade: bool = False) -> Any:
    tcpr = _el("tcPr", None, _el("tcW", {"w": twips(width_cm), "type": "dxa"}))
    if shade:
        tcpr.append(_el("vAlign", {"val": "center"}))
    ppr = _el("pPr", None, _el("pStyle", {"val": style}))
    if align:
        ppr.append(_el("jc", {"val": align}))
    p = _el("p", None, ppr, _el("r", None, _el("t")))
    return _el("tc", None, tcpr, p)


def table(
    widths_cm: Sequence[float],
    header: Sequence[str] | None,
    rows: Iterable[Sequence[str]],
    *,
    aligns: Sequence[str | None] | None = None,
    cell_style: str = "KhCell",
    head_style: str = "KhCellHead",
    borders: bool = True,
    split_rows: bool = True,
    deferred: list[tuple[Any, Iterable[Sequence[str]]]] | None = None,
) -> Any:
    """A ``w:tbl``: fixed layout, grid = cell widths, a repeated header row; each body
    row a deep copy of one styled row with its texts set. With ``deferred`` the body
    rows are only marked, for :func:`write_deferred` to write as the file is saved."""
    total = sum(widths_cm)
    edge = (
        {"val": "single", "sz": "4", "space": "0", "color": "000000"} if borders else {"val": "nil"}
    )
    tblpr = _el(
        "tblPr",
        None,
        _el("tblW", {"w": twips(total), "type": "dxa"}),
        _el("jc", {"val": "center"}),
        _el(
            "tblBorders",
            None,
            *(_el(side, edge) for side in ("top", "left", "bottom", "right", "insideH", "insideV")),
        ),
        _el("tblLayout", {"type": "fixed"}),
        _el(
            "tblLook",
            {
                "val": "0000",
                "firstRow": "0",
                "lastRow": "0",
                "firstColumn": "0",
                "lastColumn": "0",
                "noHBand": "1",
                "noVBand": "1",
            },
        ),
    )
    grid = _el("tblGrid", None, *(_el("gridCol", {"w": twips(x)}) for x in widths_cm))
    tbl = _el("tbl", None, tblpr, grid)
    aligns = list(aligns or [None] * len(widths_cm))
    if header is not None:
        head = _el("tr", None, _el("trPr", None, _el("tblHeader"), _el("cantSplit")))
        for width in widths_cm:
            head.append(_cell(width, head_style, None, shade=True))
        tbl.append(_filled(head, header))
    # A row of a phụ lục may split across pages (a long answer); a figure's row may not.
    template = _el("tr") if split_rows else _el("tr", None, _el("trPr", None, _el("cantSplit")))
    for width, align in zip(widths_cm, aligns, strict=True):
        template.append(_cell(width, cell_style, align))
    if deferred is not None:
        # Under the prefix the document uses (w:), as the rows would be in it.
        etree.Element(w("tbl"), nsmap={"w": W_NS}).append(template)
        deferred.append((template, rows))
        tbl.append(etree.Comment(f"{ROWS_MARK}{len(deferred) - 1}"))
        return tbl
    for values in rows:
        tbl.append(_filled(copy.deepcopy(template), values))
    return tbl


def _row_xml(template: Any, values: Sequence[str]) -> bytes:
    """One body row as it reads inside word/document.xml: serialised alone, lxml puts
    the namespace declarations on the ``w:tr`` tag, which has no attributes."""
    data = etree.tostring(_filled(copy.deepcopy(template), values), encoding="utf-8")
    head = _ROW_HEAD.match(data)
    if head is None:
        raise ValueError("a deferred table row must be a <w:tr> without attributes")
    return b"<w:tr>" + data[head.end() :]


def write_deferred(path: Path, deferred: Sequence[tuple[Any, Iterable[Sequence[str]]]]) -> None:
    """Put the body rows of the tables built with ``deferred`` (:func:`table`) in the
    saved package at ``path``, streamed into word/document.xml one row at a time: the
    document never holds them as elements (~30 KB of memory a row of a phụ lục)."""
    if not deferred:
        return
    staged = path.with_name(path.name + ".rows")
    try:
        deflated = zipfile.ZipFile(staged, "w", zipfile.ZIP_DEFLATED)
        with zipfile.ZipFile(path) as source, deflated as target:
            for info in source.infolist():
                if info.filename != "word/document.xml":
                    target.writestr(info.filename, source.read(info))
                    continue
                pieces = _MARKS.split(source.read(info))
                with target.open(info.filename, "w") as stream:
                    stream.write(pieces[0])
                    for index in range(1, len(pieces), 2):
                        template, rows = deferred[int(pieces[index])]
                        for values in rows:
                            stream.write(_row_xml(template, values))
                        stream.write(pieces[index + 1])
        os.replace(staged, path)
    finally:
        if staged.exists():
            staged.unlink()


def _filled(row: Any, values: Sequence[str]) -> Any:
    for t, value in zip(list(row.iter(w("t"))), list(values), strict=True):
        text = str(value)
        if "\n" in text:
            _set_run_text(t.getparent(), text)
        else:
            t.text = text
            if text[:1].isspace() or text[-1:].isspace():
                t.set("{http://www.w3.org/XML/1998/namespace}space", "preserve")
    return row


def cell_paragraphs(tbl: Any, row: int, col: int) -> Any:
    """The ``w:tc`` of a table built by :func:`table` (to put several paragraphs in it)."""
    return tbl.findall(w("tr"))[row].findall(w("tc"))[col]


def fill_cell(tc: Any, paragraphs: Iterable[Any]) -> None:
    """Replace the cell's paragraphs with ``paragraphs`` (a cell keeps at least one)."""
    for p in tc.findall(w("p")):
        tc.remove(p)
    added = False
    for p in paragraphs:
        tc.append(p)
        added = True
    if not added:
        tc.append(_el("p"))


def append(document: Any, element: Any) -> Any:
    """Put ``element`` at the end of the body (before its final section properties)."""
    body = document.element.body
    last = body.find(w("sectPr"))
    if last is not None:
        last.addprevious(element)
    else:
        body.append(element)
    return element


def keep_with_next(p: Any) -> Any:
    """Keep paragraph ``p`` on the page of what follows it."""
    ppr = p.find(w("pPr"))
    if ppr is None:
        ppr = _el("pPr")
        p.insert(0, ppr)
    style = ppr.find(w("pStyle"))
    keep = _el("keepNext")
    if style is not None:
        style.addnext(keep)
    else:
        ppr.insert(0, keep)
    return p
