"""A phụ lục's rows are written into word/document.xml as the file is saved, one at a
time (engine.docx_build.write_deferred), so the document never holds 3,500 rows as
elements: the file is byte for byte the one built with every row in the tree, and reads
back as typed (line breaks, leading spaces, XML's special characters, Vietnamese)."""

from __future__ import annotations

import zipfile
from pathlib import Path

import docx

from engine import docx_build as xb

VALUES = ["Xã Đức Quang", "  lề trái", 'a & b < c > d "q"', "dòng 1\ndòng 2", "", "cuối "]
ROWS = [[str(i), *(VALUES[(i + k) % len(VALUES)] for k in range(4))] for i in range(1, 301)]
WIDTHS = [1.2, 5.0, 3.0, 3.0, 3.0]


def _save(path: Path, deferred: list | None) -> Path:
    document = docx.Document()
    xb.set_defaults(document)
    xb.append(document, xb.paragraph("Phụ lục 1", bold=True, align="center"))
    header = ["STT", "Đơn vị", "Hạn", "Tình trạng", "Ghi chú"]
    xb.append(document, xb.table(WIDTHS, header, ROWS, deferred=deferred))
    xb.append(document, xb.paragraph("Ghi chú cuối", italic=True))
    document.save(path)
    xb.write_deferred(path, deferred or [])
    return path


def _part(path: Path, name: str) -> bytes:
    with zipfile.ZipFile(path) as package:
        return package.read(name)


def test_rows_written_at_save_are_the_rows_built_in_the_tree(tmp_path):
    in_tree = _save(tmp_path / "in-tree.docx", None)
    deferred: list = []
    streamed = _save(tmp_path / "streamed.docx", deferred)
    assert len(deferred) == 1
    assert _part(streamed, "word/document.xml") == _part(in_tree, "word/document.xml")
    assert b"kehoach-rows" not in _part(streamed, "word/document.xml")
    with zipfile.ZipFile(in_tree) as a, zipfile.ZipFile(streamed) as b:
        assert a.namelist() == b.namelist()
        assert b.testzip() is None


def test_streamed_rows_read_back_as_typed(tmp_path):
    streamed = _save(tmp_path / "streamed.docx", [])
    (table,) = docx.Document(str(streamed)).tables
    assert len(table.rows) == 1 + len(ROWS)
    for row, values in zip(table.rows[1:], ROWS, strict=True):
        assert [cell.text for cell in row.cells] == values
