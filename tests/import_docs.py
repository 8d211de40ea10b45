"""Builds the DOCX and PDF inputs of the import tests from their text specs.

A spec (``tests/data/import/*.docx.txt``) is one paragraph a line; ``@header L || R``
and ``@sign L || R`` lines are the rows of the two-column layout tables Vietnamese
plans put their head and their Nơi nhận / signer block in; ``| a | b |`` lines are a
data table.  PDFs are made from the DOCX by LibreOffice, as an office would.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import docx
from docx.enum.text import WD_ALIGN_PARAGRAPH
from docx.shared import Pt

DATA = Path(__file__).resolve().parent / "data" / "import"
ROOT = DATA.parent.parent.parent


def run_import(*args: str) -> subprocess.CompletedProcess[str]:
    """`kehoach import ARGS` as a user runs it (a new process, its output kept)."""
    return subprocess.run(
        [sys.executable, "-m", "cli", "import", *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
    )


def _caps(text: str) -> bool:
    letters = [c for c in text if c.isalpha()]
    return bool(letters) and not any(c.islower() for c in letters)


def _layout_table(document: docx.document.Document, rows: list[tuple[str, str]]) -> None:
    table = document.add_table(rows=1, cols=2)
    left, right = table.rows[0].cells
    for cell, texts in ((left, [r[0] for r in rows]), (right, [r[1] for r in rows])):
        cell.paragraphs[0].text = texts[0]
        for text in texts[1:]:
            cell.add_paragraph(text)
        for paragraph in cell.paragraphs:
            paragraph.alignment = WD_ALIGN_PARAGRAPH.CENTER
            for run in paragraph.runs:
                run.bold = _caps(run.text)
                run.font.size = Pt(12)


def _data_table(document: docx.document.Document, rows: list[list[str]]) -> None:
    table = document.add_table(rows=len(rows), cols=len(rows[0]))
    table.style = "Table Grid"
    for row, cells in zip(table.rows, rows, strict=True):
        for cell, text in zip(row.cells, cells, strict=False):
            cell.text = text


def build_docx(spec: Path, target: Path) -> Path:
    document = docx.Document()
    style = document.styles["Normal"]
    style.font.name = "Liberation Serif"
    style.font.size = Pt(13)
    pending: dict[str, list[tuple[str, str]]] = {"@header": [], "@sign": []}
    table: list[list[str]] = []

    def flush() -> None:
        for key in ("@header", "@sign"):
            if pending[key]:
                _layout_table(document, pending[key])
                pending[key] = []
        if table:
            _data_table(document, list(table))
            table.clear()

    for raw in spec.read_text(encoding="utf-8").splitlines():
        line = raw.rstrip()
        kind = line.split(" ", 1)[0]
        if kind in pending:
            if any(pending[k] for k in pending if k != kind) or table:
                flush()
            left, _, right = line[len(kind) :].partition("||")
            pending[kind].append((left.strip(), right.strip()))
            continue
        if line.startswith("|"):
            if any(pending.values()):
                flush()
            if not set(line) <= set("|-: "):
                table.append([c.strip() for c in line.strip("|").split("|")])
            continue
        flush()
        if not line:
            continue
        paragraph = document.add_paragraph(line)
        if _caps(line) or line in {"KẾ HOẠCH"}:
            paragraph.alignment = WD_ALIGN_PARAGRAPH.CENTER
            for run in paragraph.runs:
                run.bold = True
        else:
            paragraph.alignment = WD_ALIGN_PARAGRAPH.JUSTIFY
    flush()
    document.save(target)
    return target


def to_pdf(source: Path, folder: Path) -> Path:
    """LibreOffice's PDF of ``source`` (a DOCX or an image) in ``folder``."""
    soffice = shutil.which("soffice") or shutil.which("libreoffice")
    assert soffice, "LibreOffice (soffice) is needed to make the PDF inputs"
    subprocess.run(
        [
            soffice,
            f"-env:UserInstallation=file://{folder}/lo-profile",
            "--headless",
            "--convert-to",
            "pdf",
            "--outdir",
            str(folder),
            str(source),
        ],
        check=True,
        capture_output=True,
        timeout=180,
    )
    pdf = folder / (source.stem + ".pdf")
    assert pdf.exists(), f"LibreOffice made no PDF of {source}"
    return pdf


_PDFS: dict[str, Path] = {}


def pdf_of(spec: Path) -> Path:
    """The LibreOffice PDF of a spec's DOCX, made once per test session (a conversion
    takes seconds; the tests only read the file)."""
    if spec.name not in _PDFS:
        import atexit
        import tempfile

        folder = Path(tempfile.mkdtemp(prefix="kehoach-import-pdf-"))
        atexit.register(shutil.rmtree, folder, True)
        docx_file = build_docx(spec, folder / spec.name.replace(".docx.txt", ".docx"))
        _PDFS[spec.name] = to_pdf(docx_file, folder)
    return _PDFS[spec.name]


def scanned_pdf(pdf: Path, folder: Path) -> Path:
    """A PDF with no text layer: the first page of ``pdf`` as a picture, put back into a
    PDF (what a scanner gives; the picture goes through a DOCX, as LibreOffice's Writer
    alone is installed)."""
    subprocess.run(
        ["pdftoppm", "-png", "-r", "60", "-f", "1", "-l", "1", str(pdf), str(folder / "scan")],
        check=True,
        timeout=60,
    )
    image = next(folder.glob("scan*.png"))
    holder = docx.Document()
    holder.add_picture(str(image), width=docx.shared.Cm(16))
    holder.save(folder / "scan.docx")
    return to_pdf(folder / "scan.docx", folder)
