"""Document-type names: one definition for pages and emails."""

from __future__ import annotations

from engine.doctypes import DOCUMENT_TYPES, document_type_name
from engine.schema import DocumentType


def test_every_document_type_has_its_vietnamese_name():
    assert set(DOCUMENT_TYPES) == set(DocumentType)
    assert document_type_name("KH") == "Kế hoạch"
    assert document_type_name(DocumentType.QD) == "Quyết định"
    assert document_type_name("CTr") == "Chương trình"
    assert document_type_name("XYZ") == "XYZ"  # an unknown code is shown as written
