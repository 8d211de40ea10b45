"""A plan file → numbered lines of text: plain text, DOCX (paragraphs and tables) or a
PDF with a text layer.  Every failure is an :class:`ImportInputError` in Vietnamese."""

from __future__ import annotations

import errno
import io
from dataclasses import dataclass
from pathlib import Path

from engine.errors import KehoachError

MAX_BYTES = 20 * 1024 * 1024


def os_reason(exc: OSError) -> str:
    """Why a file could not be read or written, in Vietnamese."""
    reasons = {
        errno.ENOENT: "không có tệp hoặc thư mục này",
        errno.EACCES: "không có quyền",
        errno.EPERM: "không được phép",
        errno.ENOSPC: "đĩa đầy",
        errno.EISDIR: "đây là một thư mục",
        errno.EROFS: "ổ đĩa chỉ đọc",
    }
    return reasons.get(exc.errno or 0, "lỗi hệ thống tệp, mã " + str(exc.errno))


class ImportInputError(KehoachError):
    """The file cannot be read as a plan document (exit 1, a user error: the wrong file,
    or one that is not what its name says)."""


@dataclass(frozen=True)
class SourceText:
    """The document as lines, with how its line numbers are to be read."""

    path: str
    lines: list[tuple[int, str]]
    hard_breaks: bool  # each line is a paragraph (DOCX) rather than a PDF's line
    unit: str  # what a number counts in messages: "dòng" or "đoạn"


def read_source(path: str | Path) -> SourceText:
    """Read ``path`` by its content (not only its suffix)."""
    file = Path(path)
    name = str(path)
    try:
        data = file.read_bytes()
    except FileNotFoundError:
        raise ImportInputError(f"{name}: không có tệp này; kiểm tra đường dẫn") from None
    except IsADirectoryError:
        raise ImportInputError(
            f"{name}: là một thư mục; hãy chỉ ra một tệp .txt, .docx hoặc .pdf"
        ) from None
    except OSError as exc:
        raise ImportInputError(f"{name}: không đọc được tệp ({os_reason(exc)})") from None
    if len(data) > MAX_BYTES:
        raise ImportInputError(
            f"{name}: tệp lớn hơn {MAX_BYTES // (1024 * 1024)} MB, không giống một văn bản kế hoạch"
        )
    if not data.strip():
        raise ImportInputError(f"{name}: tệp trống; hãy chọn tệp văn bản kế hoạch có nội dung")
    if data.startswith(b"%PDF"):
        return _pdf(name, data)
    if data.startswith(b"PK\x03\x04") or file.suffix.lower() == ".docx":
        return _docx(name, data)
    return _text(name, data)


def _text(name: str, data: bytes) -> SourceText:
    if b"\x00" in data[:4096]:
        raise ImportInputError(
            f"{name}: là tệp nhị phân, không phải văn bản; hãy đưa tệp .txt (UTF-8), .docx hoặc .pdf"
        )
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise ImportInputError(
            f"{name}:{line}: không phải văn bản UTF-8 (byte 0x{data[exc.start]:02x}); lưu lại tệp "
            "với mã UTF-8 rồi chạy lại"
        ) from None
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    return SourceText(name, list(enumerate(lines, 1)), hard_breaks=False, unit="dòng")


def _docx(name: str, data: bytes) -> SourceText:
    import zipfile  # here, not at the top: a text plan's import needs neither it nor docx

    try:
        import docx
        from docx.table import Table
        from docx.text.paragraph import Paragraph

        document = docx.Document(io.BytesIO(data))
    except (zipfile.BadZipFile, KeyError, ValueError, OSError) as exc:
        raise ImportInputError(
            f"{name}: tệp DOCX hỏng hoặc không đầy đủ ({type(exc).__name__}); mở lại bằng Word "
            "hoặc LibreOffice, lưu thành .docx rồi chạy lại"
        ) from None
    except Exception as exc:  # lxml and python-docx raise their own kinds on broken parts
        raise ImportInputError(
            f"{name}: không đọc được tệp DOCX ({type(exc).__name__}); lưu lại bằng Word hoặc "
            "LibreOffice rồi chạy lại"
        ) from None
    texts: list[str] = []
    # Header tables (issuing body | national motto) come first in DOCX plans.
    body = document.element.body
    for child in body.iterchildren():
        tag = child.tag.rsplit("}", 1)[-1]
        if tag == "p":
            texts.extend(Paragraph(child, document).text.split("\n"))
        elif tag == "tbl":
            texts.extend(_table_lines(Table(child, document)))
    return SourceText(name, list(enumerate(texts, 1)), hard_breaks=True, unit="đoạn")


def _table_lines(table: object) -> list[str]:
    """A DOCX table: a layout table (header, signature) as its cells' lines; a data table
    (three or more columns) as Markdown rows."""
    rows = list(table.rows)  # type: ignore[attr-defined]  # a docx Table
    columns = max((len(r.cells) for r in rows), default=0)
    lines: list[str] = []
    if columns >= 3:
        for row in rows:
            cells = [c.text.replace("\n", " ").replace("|", "/") for c in row.cells]
            lines.append("| " + " | ".join(cells) + " |")
        return lines
    for column in range(columns):
        for row in rows:
            if column < len(row.cells):
                lines.extend(row.cells[column].text.split("\n"))
    return lines


def _pdf(name: str, data: bytes) -> SourceText:
    import logging  # here, not at the top: logging alone is ~5 ms of a text plan's import

    # pypdf logs its repairs in English ("EOF marker not found"); the user gets one
    # Vietnamese line instead.
    quiet = logging.getLogger("pypdf")
    level = quiet.level
    quiet.setLevel(logging.CRITICAL)
    try:
        return _pdf_text(name, data)
    finally:
        quiet.setLevel(level)


def _pdf_text(name: str, data: bytes) -> SourceText:
    try:
        from pypdf import PdfReader
        from pypdf.errors import PdfReadError

        reader = PdfReader(io.BytesIO(data))
        pages = [page.extract_text() or "" for page in reader.pages]
    except ImportError:
        raise ImportInputError(
            "đọc PDF cần gói pypdf; cài bằng: pip install pypdf (hoặc pip install -e .)"
        ) from None
    except (PdfReadError, ValueError, KeyError, OSError) as exc:
        raise ImportInputError(
            f"{name}: tệp PDF hỏng ({type(exc).__name__}); xuất lại PDF từ văn bản gốc rồi chạy lại"
        ) from None
    if not "".join(pages).strip():
        raise ImportInputError(
            f"{name}: PDF không có lớp chữ (bản chụp/quét, {len(pages)} trang); cần nhận dạng "
            "chữ (OCR) trước, hoặc dùng bản DOCX/PDF gốc xuất từ máy tính"
        )
    lines: list[str] = []
    for page in pages:
        lines.extend(page.split("\n"))
    return SourceText(name, list(enumerate(lines, 1)), hard_breaks=False, unit="dòng")
