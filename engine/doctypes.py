"""Names of Vietnamese document types by their abbreviation (Nghị định 30/2020/NĐ-CP)."""

from __future__ import annotations

DOCUMENT_TYPES = {
    "KH": "Kế hoạch",
    "BC": "Báo cáo",
    "QĐ": "Quyết định",
    "CT": "Chỉ thị",
    "KL": "Kết luận",
    "NQ": "Nghị quyết",
    "NĐ": "Nghị định",
    "TB": "Thông báo",
    "HD": "Hướng dẫn",
    "CTr": "Chương trình",
    "TTr": "Tờ trình",
    "QyĐ": "Quy định",
    "ĐA": "Đề án",
    "PA": "Phương án",
    "CV": "Công văn",
    "Luật": "Luật",
}


def document_type_name(code: str) -> str:
    """'KH' → 'Kế hoạch'; an abbreviation not listed is shown as written."""
    return DOCUMENT_TYPES.get(code, code)
