"""engine.values: every value bounded before it is stored, every stored value safe to show.

The defects these tests were written for (issue 13): a 400-digit decimal was stored as
Infinity, a 5,000-digit integer raised (Python's int/str limit), a control character
was stored and then stopped python-docx. Property tests (hypothesis) check that the
validator raises nothing but its own error and that what it accepts is stored, read
back and printed in a .docx unchanged.
"""

from __future__ import annotations

import datetime as dt
import json
import math
from pathlib import Path

import docx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.errors import KehoachError
from engine.loader import load
from engine.reports import display_stored, display_value
from engine.schema import ReportTemplate, TemplateField
from engine.store import json_codec
from engine.values import (
    DROPPED,
    MAX_MAGNITUDE,
    InvalidValue,
    check_value,
    stored_value,
    stored_values,
    validate_values,
)

FIELDS = [
    TemplateField(id="so-vu", label="Số vụ cháy", type="integer", aggregate="sum"),
    TemplateField(id="am", label="Nhiệt độ thấp nhất", type="integer", min=-60, max=60),
    TemplateField(id="thiet-hai", label="Thiệt hại", type="decimal", unit="triệu đồng"),
    TemplateField(id="ty-le", label="Tỷ lệ học tập", type="percent", aggregate="mean"),
    TemplateField(id="lop", label="Số lớp", type="integer", min=0, max=50),
    TemplateField(id="danh-gia", label="Tự đánh giá", type="choice", choices=["Tốt", "Khá"]),
    TemplateField(id="ngay", label="Ngày diễn tập", type="date"),
    TemplateField(id="ghi-chu", label="Ghi chú", type="text"),
    TemplateField(id="ngan", label="Tên đội", type="text", max_length=10),
    TemplateField(id="tep", label="Văn bản", type="file"),
]
TEMPLATE = ReportTemplate(id="mau", title="Mẫu", fields=FIELDS)
BY_ID = {f.id: f for f in FIELDS}
DATA = Path(__file__).parent / "data" / "lifecycle"


def error_of(field_id: str, value: object) -> str:
    _values, errors = validate_values(TEMPLATE, {field_id: value})
    assert field_id in errors, f"{value!r} was accepted for {field_id}"
    return errors[field_id]


# ---------------------------------------------------------------- the measured defects


def test_a_400_digit_decimal_is_refused_not_stored_as_infinity():
    message = error_of("thiet-hai", "1" * 400 + ",5")
    assert message.startswith("Trường 'Thiệt hại'")
    assert "quá dài để là một số" in message
    # within the typing limit but beyond the global bound: refused as too large
    assert "vượt quá giới hạn cho phép" in error_of("thiet-hai", "9" * 20)
    values, errors = validate_values(TEMPLATE, {"thiet-hai": float("1" * 400)})
    assert "thiet-hai" not in values and "phải là số" in errors["thiet-hai"]


def test_a_5000_digit_integer_is_refused_with_a_message_not_an_exception():
    assert "quá dài để là một số" in error_of("so-vu", "1" * 5000)
    assert "vượt quá giới hạn cho phép" in error_of("so-vu", 10**5000)  # from a YAML file
    assert "tệp đính kèm không hợp lệ" in error_of("tep", ["1" * 5000])
    assert "tệp đính kèm không hợp lệ" in error_of("tep", ["²"])  # isdigit(), not int()


@pytest.mark.parametrize("char", ["\x0b", "\x00", "\x1b", "\x7f", "\x85", "\ud800", "\ufffe"])
def test_a_control_character_in_text_is_refused_naming_the_field_and_the_place(char):
    message = error_of("ghi-chu", f"Đã rà soát{char} 12 đội")
    assert message.startswith("Trường 'Ghi chú' có ký tự không hợp lệ")
    assert f"U+{ord(char):04X}" in message and "vị trí 11" in message


def test_line_breaks_and_tabs_stay_text_is_nfc_and_carriage_returns_go():
    typed = "  Xa\u0303 A\r\n\tdòng 2\rdòng 3 "
    assert check_value(BY_ID["ghi-chu"], typed) == "Xã A\n\tdòng 2\ndòng 3"


# ---------------------------------------------------------------- the rules


def test_numbers_are_bounded_in_size_digits_and_by_the_template():
    assert validate_values(TEMPLATE, {"thiet-hai": "1.000.000.000.000"})[0] == {
        "thiet-hai": MAX_MAGNITUDE
    }
    assert "vượt quá giới hạn" in error_of("thiet-hai", "1.000.000.000.001")
    assert "quá nhiều chữ số" in error_of("thiet-hai", "0,1234567")  # 7 decimals
    assert "quá nhiều chữ số" in error_of("thiet-hai", "123456789,1234567")  # 16 digits
    assert validate_values(TEMPLATE, {"thiet-hai": "0,123456"})[0] == {"thiet-hai": 0.123456}
    assert "không được lớn hơn 50" in error_of("lop", "51")
    assert "phải lớn hơn hoặc bằng -60" in error_of("am", "-61")
    assert validate_values(TEMPLATE, {"am": "-12"})[0] == {"am": -12}
    assert "phải là số nguyên" in error_of("so-vu", "2,5")
    assert "từ 0 đến 100" in error_of("ty-le", "100,5")
    for value in (float("inf"), float("-inf"), float("nan"), "Infinity", "NaN", "1e400"):
        assert "phải là số" in error_of("thiet-hai", value)


def test_text_length_follows_max_length_and_choices_and_dates_are_short():
    assert "dài quá 10 ký tự (hiện có 11)" in error_of("ngan", "Đội số 1234")
    assert validate_values(TEMPLATE, {"ngan": "Đội số 123"})[0] == {"ngan": "Đội số 123"}
    assert "dài quá 20.000 ký tự" in error_of("ghi-chu", "a" * 20_001)
    assert "phải là một trong các lựa chọn" in error_of("danh-gia", "Tốt" * 1000)
    assert "phải là ngày hợp lệ" in error_of("ngay", "1" * 5000)
    assert "từ năm 1900 đến năm 2100" in error_of("ngay", "1/1/0001")
    assert "phải là văn bản" in error_of("ghi-chu", {"a": 1})


def test_the_loader_refuses_min_above_max_where_it_is_written(tmp_path):
    district = (DATA / "district.yaml").read_text(encoding="utf-8")
    bad = district.replace("type: integer, min: 0, max: 50", "type: integer, min: 60, max: 50")
    assert bad != district
    (tmp_path / "district.yaml").write_text(bad, encoding="utf-8")
    with pytest.raises(KehoachError) as caught:
        load([DATA / "registry.yaml", DATA / "province.yaml", tmp_path / "district.yaml"])
    text = str(caught.value)
    line = next(n for n, row in enumerate(bad.splitlines(), 1) if "min: 60" in row)
    assert f"district.yaml:{line}:" in text and "min 60 lớn hơn max 50" in text
    with pytest.raises(ValueError, match="phải là một số hữu hạn"):
        TemplateField(id="x", label="X", type="decimal", max=math.inf)
    with pytest.raises(ValueError, match="'max_length' chỉ dùng cho trường loại 'text'"):
        TemplateField(id="x", label="X", type="date", max_length=5)


# ---------------------------------------------------------------- stored rows


@pytest.mark.parametrize(
    ("field_id", "value", "why"),
    [
        ("thiet-hai", math.inf, "không phải là số hữu hạn"),
        ("thiet-hai", math.nan, "không phải là số hữu hạn"),
        ("so-vu", 10**5000, "vượt quá giới hạn"),
        ("so-vu", "1" * 5000, "không phải là số"),  # as json_codec reads 5,000 digits
        ("ghi-chu", 10**5000, "không đọc được"),
        ("ghi-chu", ["a", "b"], "không đọc được"),
    ],
    ids=["inf", "nan", "int-5000-digits", "digits-as-text", "huge-int-as-text", "list-as-text"],
)
def test_stored_values_that_cannot_be_shown_are_dropped_and_said(field_id, value, why):
    field = BY_ID[field_id]
    usable, reason = stored_value(field, value)
    assert usable is DROPPED and reason is not None and why in reason
    assert "(giá trị đã lưu không hợp lệ" in display_stored(field, value)


def test_stored_text_with_control_characters_is_cleaned_and_said():
    clean, problems = stored_values(TEMPLATE, {"ghi-chu": "a\x0bb\x00c\x1bd\ufffe", "so-vu": 3})
    assert clean == {"ghi-chu": "abcd", "so-vu": 3}
    assert problems == [("Ghi chú", "có ký tự điều khiển không hợp lệ; đã bỏ các ký tự đó")]
    assert stored_values(TEMPLATE, [1, 2])[1] != []


def test_the_json_codec_reads_a_5000_digit_number_and_writes_nothing_infinite():
    assert json_codec.loads('{"a": ' + "1" * 5000 + "}") == {"a": "1" * 5000}
    assert json_codec.loads('{"a": 1e400, "b": 12}') == {"a": math.inf, "b": 12}
    with pytest.raises(ValueError):
        json_codec.dumps({"a": math.inf})


# ---------------------------------------------------------------- properties

HUGE = st.builds(lambda: 10**5000)  # st.just() would print it: beyond int/str's limit
_NUMBER_TEXT = st.from_regex(r"[-+ ]?[0-9.,  ]{0,30}[%]?", fullmatch=True)
RAW = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**30), max_value=10**30),
    HUGE,
    st.floats(allow_nan=True, allow_infinity=True),
    st.decimals(allow_nan=True, allow_infinity=True),
    st.text(max_size=60),
    _NUMBER_TEXT,
    st.sampled_from(["Tốt", " khá ", "Kha\u0301", "2027-08-30", "30/8/2027", "1", "0", "²"]),
    st.dates().map(dt.date.isoformat),
    st.lists(st.one_of(st.integers(), st.text(max_size=5), st.none()), max_size=4),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
)
_DOCUMENT = docx.Document()


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(field=st.sampled_from(FIELDS), raw=RAW)
def test_the_validator_raises_only_its_own_error_and_what_it_accepts_round_trips(field, raw):
    try:
        value = check_value(field, raw)
    except InvalidValue as exc:
        assert exc.field_id == field.id and exc.message.startswith(f"Trường '{field.label}'")
        return
    stored = json_codec.loads(json_codec.dumps({"v": value}))["v"]
    assert stored == value and type(stored) is type(value)
    assert check_value(field, stored) == stored  # checked again: the same value
    if isinstance(value, float):
        assert math.isfinite(value) and abs(value) <= MAX_MAGNITUDE
    shown = display_value(field, stored)
    assert display_stored(field, stored) == shown
    _DOCUMENT.add_paragraph().add_run(shown)  # python-docx refuses what XML cannot hold


@settings(max_examples=150, deadline=None)
@given(raw=st.dictionaries(st.sampled_from([f.id for f in FIELDS]), RAW, max_size=6))
def test_validate_values_never_raises_and_stored_values_keeps_what_it_accepted(raw):
    values, errors = validate_values(TEMPLATE, raw)
    assert set(values).isdisjoint(errors)
    clean, problems = stored_values(TEMPLATE, values)
    assert clean == values and problems == []


JSON_VALUE = st.recursive(
    st.none() | st.booleans() | st.integers() | HUGE | st.floats() | st.text(),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(), inner, max_size=3),
    max_leaves=8,
)


@settings(max_examples=200, deadline=None)
@given(field=st.sampled_from(FIELDS), value=JSON_VALUE)
def test_any_stored_value_is_shown_and_printed_without_raising(field, value):
    usable, _why = stored_value(field, value)
    shown = display_stored(field, value)
    _DOCUMENT.add_paragraph().add_run(shown)
    if usable is not DROPPED:
        json.dumps(usable, allow_nan=False)
