"""Raw lines → paragraphs: PDF line breaks joined, page numbers dropped, spaces tidied.

Two layouts occur.  Text taken from a PDF keeps the PDF's lines (about 80 characters,
often with blank lines between them): a paragraph ends on a short line, before a line
that starts an item ("1.", "a)", "-", "II."), or after a line in capitals.  Text where
each line is a whole paragraph (DOCX, a typed file) keeps its lines as paragraphs.
Markdown table rows ("| a | b |") are kept as table rows, one per line.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field

ROMAN = r"(?:X{0,3})(?:IX|IV|V?I{0,3})"
STARTERS = (
    rf"^(?:PHẦN|Phần|MỤC|Mục|CHƯƠNG|Chương)\s+(?:{ROMAN}|\d+)\b",
    rf"^(?:{ROMAN})\s*[.\-–/]\s*\S",
    r"^\d+(?:\.\d+)*\s*(?:[.)]\s*\S|/\s+\S)",
    r"^\d+(?:\.\d+)+\s+\S",
    r"^[a-zđ]\)\s*\S",
    r"^[-+•*–]\s*\S",
    r"^(?:Căn cứ|Thực hiện|Trên đây|Nơi nhận|Lưu\s*:|Số\s*:|Kính gửi)",
    r"^(?:TM|KT|TL|TUQ|Q)\.\s",
    r"^[^,]{2,40},\s*ngày\s+(?:\d{1,2}|[.…]+)\s+tháng",
)
_STARTER = re.compile("|".join(f"(?:{s})" for s in STARTERS))
_PAGE_NUMBER = re.compile(r"^(?:[-–]\s*)?(?:Trang\s+)?\d{1,3}(?:\s*/\s*\d{1,3})?(?:\s*[-–])?$")
_TABLE_RULE = re.compile(r"^\|?\s*:?-{2,}:?\s*(?:\|\s*:?-{2,}:?\s*)*\|?$")


@dataclass
class Paragraph:
    """One logical paragraph (or table row) and the lines of the file it came from."""

    text: str
    first_line: int
    last_line: int
    cells: list[str] | None = None  # a Markdown table row, split into cells
    used: bool = False
    lines: list[int] = field(default_factory=list)

    @property
    def is_table_row(self) -> bool:
        return self.cells is not None


_SPACES = str.maketrans(dict.fromkeys("\t\u00a0\u2002\u2003\u2009\u200b\ufeff", " "))


def clean(text: str) -> str:
    """NFC, one space between words, no control characters."""
    text = unicodedata.normalize("NFC", text).translate(_SPACES)
    if not text.isprintable():  # a character of category C (or a rarer space): looked at one by one
        text = "".join(ch for ch in text if ch == " " or unicodedata.category(ch)[0] != "C")
    return " ".join(text.split())


def is_caps(text: str) -> bool:
    """A line in capitals (headings, bodies, signer titles): no lower-case letter."""
    letters = [ch for ch in text if ch.isalpha()]
    return len(letters) >= 2 and not any(ch.islower() for ch in letters)


def split_cells(text: str) -> list[str]:
    return [clean(cell) for cell in text.strip().strip("|").split("|")]


def _ends_sentence(text: str) -> bool:
    return text.endswith((".", ":", ";", "!", "?", "./.", "”", '"')) and not text.endswith("...")


def paragraphs(lines: list[tuple[int, str]], *, hard_breaks: bool = False) -> list[Paragraph]:
    """Numbered raw lines → paragraphs.  ``hard_breaks``: every line is its own paragraph
    unless it plainly continues the previous one (DOCX paragraphs, typed text)."""
    kept: list[tuple[int, str]] = []
    for number, raw in lines:
        text = clean(raw)
        if not text or _PAGE_NUMBER.match(text) or _TABLE_RULE.match(text):
            continue
        kept.append((number, text))
    prose = [len(t) for _, t in kept if not t.startswith("|")]
    wrapped = False
    width = 0.0
    if prose and not hard_breaks:
        ordered = sorted(prose)
        width = float(ordered[int(len(ordered) * 0.9)] if len(ordered) >= 10 else ordered[-1])
        wrapped = width <= 110
    result: list[Paragraph] = []
    previous: tuple[int, str] | None = None
    for number, text in kept:
        if text.startswith("|") and text.count("|") >= 2:
            result.append(Paragraph(text, number, number, split_cells(text), lines=[number]))
            previous = None
            continue
        if previous is not None and result and _continues(previous[1], text, wrapped, width):
            last = result[-1]
            glue = "" if _glued(previous[1], text) else " "
            last.text = last.text + glue + text
            last.last_line = number
            last.lines.append(number)
        else:
            result.append(Paragraph(text, number, number, lines=[number]))
        previous = (number, text)
    return result


def _glued(before: str, after: str) -> bool:
    """A number or symbol broken at its hyphen ("1492/QĐ-" + "TTg") joins without a space."""
    return (
        before.endswith("-") and not before.endswith(" -") and bool(re.search(r"\d", before[-12:]))
    )


def _continues(before: str, after: str, wrapped: bool, width: float) -> bool:
    """Does ``after`` continue the paragraph whose last line is ``before``?"""
    if _STARTER.match(after) or is_caps(before) or (is_caps(after) and len(after) < 60):
        return False
    if after[:1].islower() or after[:1] in ",;)":
        return True
    if not wrapped:
        return not _ends_sentence(before) and after[:1].islower()
    return len(before) >= 0.72 * width and not before.endswith(("./.",))
