"""Report values: form strings coerced per the template, Vietnamese errors, aggregation."""

from __future__ import annotations

import pytest

from engine.reports import (
    aggregate,
    display_value,
    fmt_number,
    validate_values,
    values_for_template,
)
from engine.schema import ReportTemplate, TemplateField

TEMPLATE = ReportTemplate(
    id="mau",
    title="Mẫu",
    fields=[
        TemplateField(id="so-vu-chay", label="Số vụ cháy", type="integer", aggregate="sum"),
        TemplateField(
            id="thiet-hai",
            label="Thiệt hại",
            type="decimal",
            required=False,
            aggregate="sum",
            unit="triệu đồng",
        ),
        TemplateField(id="ty-le", label="Tỷ lệ học tập", type="percent", aggregate="mean"),
        TemplateField(
            id="so-lop",
            label="Số lớp",
            type="integer",
            min=1,
            max=50,
            required=False,
            aggregate="max",
        ),
        TemplateField(
            id="danh-gia",
            label="Tự đánh giá",
            type="choice",
            choices=["Tốt", "Khá"],
            aggregate="count",
        ),
        TemplateField(id="ngay", label="Ngày diễn tập", type="date", required=False),
        TemplateField(
            id="ghi-chu", label="Ghi chú", type="text", required=False, aggregate="count"
        ),
        TemplateField(id="tep", label="Tệp", type="file", required=False),
    ],
)

GOOD = {"so-vu-chay": "3", "ty-le": "95,5", "danh-gia": "Tốt"}


def test_form_strings_become_typed_values():
    values, errors = validate_values(
        TEMPLATE,
        {
            **GOOD,
            "thiet-hai": "1.234,5",
            "so-lop": " 12 ",
            "ngay": "05/09/2027",
            "ghi-chu": "  <b>không</b> diễn giải  ",
            "tep": ["4", "7"],
            "csrf": "ignored",
        },
    )
    assert errors == {}
    assert values == {
        "so-vu-chay": 3,
        "thiet-hai": 1234.5,
        "ty-le": 95.5,
        "so-lop": 12,
        "danh-gia": "Tốt",
        "ngay": "2027-09-05",
        "ghi-chu": "<b>không</b> diễn giải",  # kept as text, never interpreted
        "tep": [4, 7],
    }


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("1.234,5", 1234.5),  # Vietnamese: '.' thousands, ',' decimal
        ("1234.5", 1234.5),  # HTML number input
        ("1,5", 1.5),
        ("1.234", 1234),  # grouping → thousands
        ("1 234 567", 1234567),
        ("1,234.75", 1234.75),
        ("0", 0),
    ],
)
def test_decimal_accepts_both_separators(raw, expected):
    values, errors = validate_values(TEMPLATE, {**GOOD, "thiet-hai": raw})
    assert errors == {}
    assert values["thiet-hai"] == expected


def test_errors_name_the_field_in_vietnamese():
    _values, errors = validate_values(
        TEMPLATE,
        {
            "so-vu-chay": "-1",
            "ty-le": "120",
            "danh-gia": "Xuất sắc",
            "so-lop": "99",
            "ngay": "31/02/2027",
            "thiet-hai": "nhiều",
        },
    )
    assert errors == {
        "so-vu-chay": "Trường 'Số vụ cháy' phải là số nguyên không âm",
        "ty-le": "Trường 'Tỷ lệ học tập' phải là tỷ lệ phần trăm từ 0 đến 100",
        "danh-gia": "Trường 'Tự đánh giá' phải là một trong các lựa chọn: 'Tốt', 'Khá'",
        "so-lop": "Trường 'Số lớp' không được lớn hơn 50",
        "ngay": "Trường 'Ngày diễn tập' phải là ngày hợp lệ (ngày/tháng/năm, ví dụ 10/9/2027)",
        "thiet-hai": "Trường 'Thiệt hại' phải là số không âm",
    }


def test_required_missing_and_fractional_integer():
    _values, errors = validate_values(TEMPLATE, {"so-vu-chay": "2,5", "ty-le": "  ", "so-lop": "0"})
    assert errors["so-vu-chay"] == "Trường 'Số vụ cháy' phải là số nguyên không âm"
    assert errors["ty-le"] == "Trường 'Tỷ lệ học tập' là bắt buộc"
    assert errors["danh-gia"] == "Trường 'Tự đánh giá' là bắt buộc"
    assert errors["so-lop"] == "Trường 'Số lớp' phải lớn hơn hoặc bằng 1"


def test_choice_matches_case_and_unicode_forms():
    import unicodedata

    decomposed = unicodedata.normalize("NFD", "tốt")
    values, errors = validate_values(TEMPLATE, {**GOOD, "danh-gia": decomposed})
    assert errors == {} and values["danh-gia"] == "Tốt"


def test_aggregate_sum_mean_max_count_and_list():
    reports = [
        (
            "xa-a",
            {
                "so-vu-chay": 2,
                "thiet-hai": 10.5,
                "ty-le": 90,
                "so-lop": 3,
                "danh-gia": "Tốt",
                "ghi-chu": "a",
            },
        ),
        ("xa-b", {"so-vu-chay": 1, "ty-le": 85, "so-lop": 7, "danh-gia": "Khá"}),
        ("xa-c", {"so-vu-chay": 0, "ty-le": 100, "danh-gia": "Tốt", "ngay": "2027-08-01"}),
    ]
    result = aggregate(TEMPLATE, reports)
    assert result["so-vu-chay"] == 3
    assert result["thiet-hai"] == 10.5
    assert result["ty-le"] == pytest.approx(91.67)
    assert result["so-lop"] == 7
    assert result["danh-gia"] == {"Tốt": 2, "Khá": 1}
    assert result["ghi-chu"] == 1  # units answering
    assert result["ngay"] == [{"unit_id": "xa-c", "value": "2027-08-01"}]
    assert aggregate(TEMPLATE, [])["so-vu-chay"] == 0
    assert aggregate(TEMPLATE, [])["ty-le"] is None


def test_display_and_upward_mapping():
    assert fmt_number(1234.5) == "1.234,5"
    assert fmt_number(1000000) == "1.000.000"
    field = TEMPLATE.field("thiet-hai")
    assert display_value(field, 1234.5) == "1.234,5 triệu đồng"
    assert display_value(TEMPLATE.field("ty-le"), 91.67) == "91,67%"
    target = ReportTemplate(
        id="tinh",
        title="Tỉnh",
        fields=[
            TemplateField(id="so-vu-chay", label="Số vụ cháy", type="integer"),
            TemplateField(id="ty-le", label="Tỷ lệ", type="percent"),
            TemplateField(id="ngay", label="Ngày", type="text"),
            TemplateField(id="khac", label="Khác", type="text", required=False),
        ],
    )
    values = values_for_template(
        target,
        {"so-vu-chay": 3, "ty-le": 91.67, "ngay": [{"unit_id": "xa-c", "value": "2027-08-01"}]},
        TEMPLATE,
        {"xa-c": "Xã C"},
    )
    assert values == {"so-vu-chay": 3, "ty-le": 91.67, "ngay": "Xã C: 01/08/2027"}
