"""The names of document types (Kế hoạch, Báo cáo …), as pages and emails write them.

``engine.schema.DocumentType`` holds the codes a plan's YAML uses (``KH``, ``QĐ`` …);
this is the one place that spells out what each code is called.
"""

from __future__ import annotations

from engine.schema import DocumentType

DOCUMENT_TYPES: dict[str, str] = {
    DocumentType.KH: "Kế hoạch",
    DocumentType.BC: "Báo cáo",
    DocumentType.QD: "Quyết định",
    DocumentType.CT: "Chỉ thị",
    DocumentType.KL: "Kết luận",
    DocumentType.NQ: "Nghị quyết",
    DocumentType.ND: "Nghị định",
    DocumentType.TB: "Thông báo",
    DocumentType.HD: "Hướng dẫn",
    DocumentType.CTR: "Chương trình",
    DocumentType.TTR: "Tờ trình",
    DocumentType.QYD: "Quy định",
    DocumentType.DA: "Đề án",
    DocumentType.PA: "Phương án",
    DocumentType.CV: "Công văn",
    DocumentType.LUAT: "Luật",
}


def document_type_name(code: str) -> str:
    """What a document type is called (``"KH"`` -> ``"Kế hoạch"``); an unknown code as is."""
    return DOCUMENT_TYPES.get(code, str(code))
