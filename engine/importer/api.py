"""The importer's entry point: a file (and optionally a registry) → a :class:`Draft`."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from engine.importer.context import CHECK, Draft
from engine.importer.interpret import Interpreter
from engine.importer.sources import read_source
from engine.importer.yamlout import dump, emit_map

if TYPE_CHECKING:
    from collections.abc import Sequence

    from engine.importer.directory import Directory
    from engine.registry_files import ChangeFile
    from engine.schema import Registry


def import_document(
    path: str | Path,
    registry: Registry | Directory | None = None,
    changes: Sequence[ChangeFile] = (),
) -> Draft:
    """Read a plan document and interpret it (raises ImportInputError on a bad file).
    ``changes``: registry change sets (engine.registry_files); those in effect on the
    document's date are applied to ``registry`` before names are matched."""
    return Interpreter(read_source(path), registry, changes).run()


def draft_yaml(draft: Draft) -> str:
    checks = sum(1 for f in draft.findings if f.kind == "chưa chắc")
    unread = sum(1 for f in draft.findings if f.kind == "không hiểu")
    source = draft.source.path if draft.source else "?"
    header = [
        "yaml-language-server: $schema=kehoach.schema.json",
        f"Bản nháp do `kehoach import` tạo từ {Path(source).name}.",
        f"{checks} chỗ cần kiểm tra (dòng “# {CHECK}”), {unread} đoạn chưa hiểu (xem báo cáo).",
        "Sửa các chỗ đó, xóa các dòng ghi chú đã xử lý, rồi chạy `kehoach validate`.",
        "",
    ]
    return dump(draft.plan, header)


def registry_draft_yaml(draft: Draft) -> str | None:
    if draft.registry_draft is None:
        return None
    header = [
        "Bản nháp danh bạ: các đơn vị kế hoạch nêu mà danh bạ chưa có.",
        "Bổ sung đủ thông tin rồi chép các đơn vị này vào danh bạ.",
        "",
    ]
    return dump(draft.registry_draft, header)


def report_lines(draft: Draft) -> list[str]:
    """Every finding as 'file:line: kind: text', in the document's order."""
    source = draft.source.path if draft.source else "?"
    return [
        f"{source}:{f.line}: {f.kind}: {f.text}" if f.line else f"{source}: {f.kind}: {f.text}"
        for f in draft.findings
    ]


__all__ = [
    "Draft",
    "import_document",
    "draft_yaml",
    "registry_draft_yaml",
    "report_lines",
    "emit_map",
]
