"""Every value a unit sends is bounded before it is stored, and every stored value is made
safe to show and to count.

One set of rules for every path that stores a field value: the portal form, and
``engine.lifecycle.record_submission``, which the simulation's responses, the report
handed upward and any import go through. Numbers are finite, at most
``MAX_MAGNITUDE`` in absolute value, with at most ``MAX_DIGITS`` significant digits and
``MAX_DECIMALS`` after the decimal sign, within the field's ``min``/``max``; integer
fields integral. Text is normalised to Unicode NFC (line breaks to ``\\n``), refused
when it holds a control character (other than a line break or a tab), a lone surrogate
or a noncharacter (U+FFFE, U+FFFF…), none of which a .docx (XML) can hold, and limited
to the field's ``max_length`` (``TEXT_MAX_LENGTH`` by default). Every problem is a
Vietnamese message that names the field, so the portal can show it next to it.

Rows stored before these rules, or edited in the database, are read through
:func:`stored_values`: what cannot be shown or counted is dropped or cleaned, and said so.
Numbers accept the Vietnamese convention ("1.234,5") and the HTML one ("1234.5").
"""

from __future__ import annotations

import datetime as dt
import math
import re
import unicodedata
from collections.abc import Mapping
from decimal import Context, Decimal, InvalidOperation
from typing import Any

from engine.errors import KehoachError
from engine.schema import FieldType, ReportTemplate, TemplateField

MAX_MAGNITUDE = 10**12  # |x| of any number stored
MAX_DIGITS = 15  # significant digits: a float keeps 15 exactly
MAX_DECIMALS = 6  # digits after the decimal sign
MAX_NUMBER_CHARS = 64  # what may be typed for one number, spaces and separators included
TEXT_MAX_LENGTH = 20_000  # a text field without its own max_length
SHORT_MAX_LENGTH = 500  # what may be typed for a choice or a date
STORED_TEXT_MAX = 100_000  # a stored text longer than this is cut when shown or counted
MAX_FILE_ID = 2**63 - 1
MAX_FILES = 100
YEARS = (1900, 2100)

# Characters no field may hold: C0 and C1 controls but tab and line feed (carriage
# returns become line feeds first), lone surrogates, and the noncharacters. XML 1.0,
# hence python-docx, refuses the C0 controls, the surrogates, U+FFFE and U+FFFF.
_NONCHARACTERS = "".join(
    f"{chr(plane * 0x10000 + 0xFFFE)}{chr(plane * 0x10000 + 0xFFFF)}" for plane in range(17)
)
_FORBIDDEN = re.compile(
    "[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff\ufdd0-\ufdef" + _NONCHARACTERS + "]"
)
_GROUPED = re.compile(r"^[0-9]{1,3}(?:([.,\u00a0 ])[0-9]{3})(?:\1[0-9]{3})*$")
_SPACES = re.compile(r"[\s\u00a0\u202f]+")
_PLAIN_NUMBER = re.compile(r"[0-9]+(?:\.[0-9]+)?|\.[0-9]+")
_ISO_DAY = re.compile(r"([0-9]{4})-([0-9]{1,2})-([0-9]{1,2})")
_VN_DAY = re.compile(r"([0-9]{1,2})[/.-]([0-9]{1,2})[/.-]([0-9]{4})")
_FILE_ID = re.compile(r"[0-9]{1,18}")
_EXACT = Context(prec=2 * MAX_NUMBER_CHARS)  # exact for anything MAX_NUMBER_CHARS long


class InvalidValue(KehoachError):
    """A value refused for one field; ``message`` is Vietnamese and names the field."""

    def __init__(self, field_id: str, message: str) -> None:
        self.field_id = field_id
        self.message = message
        super().__init__(message)


def fmt_number(value: float | int | Decimal) -> str:
    """'1.234,5' — a number as written in Vietnamese documents."""
    if isinstance(value, bool):  # pragma: no cover - never a number here
        return str(value)
    number = Decimal(str(value))
    if number == number.to_integral_value():
        whole, frac = f"{int(number):,}", ""
    else:
        text = f"{number.normalize():f}"
        int_part, _, frac = text.partition(".")
        whole = f"{int(int_part):,}" if int_part not in ("-0", "") else int_part
    whole = whole.replace(",", ".")
    return f"{whole},{frac}" if frac else whole


def _label(field: TemplateField) -> str:
    return f"Trường '{field.label}'"


def _refuse(field: TemplateField, message: str) -> InvalidValue:
    return InvalidValue(field.id, f"{_label(field)} {message}")


# ---------------------------------------------------------------- text


def normalised(text: str) -> str:
    """NFC, line breaks as ``\\n``: the form a text is compared and stored in."""
    return unicodedata.normalize("NFC", text.replace("\r\n", "\n").replace("\r", "\n"))


def forbidden_character(text: str) -> tuple[int, str] | None:
    """(1-based position, character) of the first character no field may hold, or None."""
    found = _FORBIDDEN.search(text)
    return (found.start() + 1, found.group()) if found else None


def xml_safe(text: str) -> str:
    """``text`` without the characters no field may hold (a document can show the rest)."""
    return _FORBIDDEN.sub("", text)


def _finite(value: int | float | Decimal) -> bool:
    if isinstance(value, Decimal):
        return value.is_finite()  # math.isfinite raises on a signalling NaN
    return isinstance(value, int) or math.isfinite(value)


def _scalar_text(value: Any) -> str | None:
    """A str, or a number written as text; None for anything else (lists, huge ints…)."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool) or not isinstance(value, (int, float, Decimal)):
        return None
    if isinstance(value, int) and value.bit_length() > 64:
        return None
    if not _finite(value):
        return None
    return str(value)


def check_text(field: TemplateField, value: Any, max_length: int) -> str:
    """The text as stored (NFC, stripped), or InvalidValue."""
    raw = _scalar_text(value)
    if raw is None:
        raise _refuse(field, "phải là văn bản")
    if len(raw) > 2 * max_length + 1000:  # far too long: refused before any work on it
        raise _refuse(field, f"dài quá {fmt_number(max_length)} ký tự; vui lòng rút gọn")
    text = normalised(raw).strip()
    bad = forbidden_character(text)
    if bad is not None:
        position, char = bad
        raise _refuse(
            field,
            f"có ký tự không hợp lệ (mã U+{ord(char):04X}, ở vị trí {fmt_number(position)}); "
            "vui lòng xoá ký tự đó rồi gửi lại",
        )
    if len(text) > max_length:
        raise _refuse(
            field,
            f"dài quá {fmt_number(max_length)} ký tự (hiện có {fmt_number(len(text))}); "
            "vui lòng rút gọn",
        )
    return text


def text_limit(field: TemplateField) -> int:
    """How many characters the field takes."""
    if field.type is FieldType.text:
        return field.max_length or TEXT_MAX_LENGTH
    return SHORT_MAX_LENGTH


# ---------------------------------------------------------------- numbers


def _parse_number(text: str) -> Decimal | None:
    """Both '1.234,5' and '1234.5'; a lone ',' is the decimal comma (Vietnamese)."""
    raw = _SPACES.sub(" ", text.strip()).replace("−", "-")
    sign = ""
    if raw[:1] and raw[0] in "+-":  # ("" is in every string)
        sign, raw = ("-" if raw[0] == "-" else ""), raw[1:].strip()
    if not raw:
        return None
    if _GROUPED.match(raw) and not (raw.count(",") == 1 and "." not in raw and " " not in raw):
        # 1.234 / 1 234 / 1.234.567 are thousands; a single "1,234" stays a decimal comma
        raw = re.sub(r"[.,\u00a0 ]", "", raw)
    elif " " in raw:
        return None
    dots, commas = raw.count("."), raw.count(",")
    if dots and commas:
        decimal_sep = "." if raw.rfind(".") > raw.rfind(",") else ","
        thousands = "," if decimal_sep == "." else "."
        if raw.count(decimal_sep) != 1:
            return None
        raw = raw.replace(thousands, "").replace(decimal_sep, ".")
    elif commas == 1:
        raw = raw.replace(",", ".")
    elif commas > 1 or dots > 1:
        return None
    if not _PLAIN_NUMBER.fullmatch(raw):
        return None
    try:
        return Decimal(sign + raw)
    except InvalidOperation:  # pragma: no cover - the regex already guards this
        return None


def _number(field: TemplateField, value: Any) -> Decimal | None:
    """The number given, None when it is not one; InvalidValue when it is out of reach."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        if value.bit_length() > 64:
            raise _too_large(field)
        return Decimal(value)
    if isinstance(value, float):
        # A float's last digits are binary noise (0.1 + 0.2): it is read to MAX_DIGITS.
        return Decimal(f"{value:.{MAX_DIGITS}g}") if _finite(value) else None
    if isinstance(value, Decimal):
        return value if _finite(value) else None
    if isinstance(value, str):
        if len(value) > MAX_NUMBER_CHARS:
            raise _refuse(field, "quá dài để là một số; vui lòng kiểm tra lại")
        text = value.strip()
        return _parse_number(text[:-1] if text.endswith("%") else text)
    return None


def _too_large(field: TemplateField) -> InvalidValue:
    return _refuse(field, f"vượt quá giới hạn cho phép (tối đa {fmt_number(MAX_MAGNITUDE)})")


def _bounded(field: TemplateField, number: Decimal) -> Decimal:
    """``number`` when it is within every bound, else InvalidValue."""
    if abs(number) > MAX_MAGNITUDE:
        raise _too_large(field)
    sign, digits, exponent = number.normalize(_EXACT).as_tuple()
    assert isinstance(exponent, int)  # finite: checked by the caller
    if len(digits) > MAX_DIGITS or -exponent > MAX_DECIMALS:
        raise _refuse(
            field,
            f"có quá nhiều chữ số (tối đa {MAX_DIGITS} chữ số có nghĩa và {MAX_DECIMALS} "
            "chữ số sau dấu phẩy)",
        )
    if field.min is not None and number < Decimal(str(field.min)):
        raise _refuse(field, f"phải lớn hơn hoặc bằng {fmt_number(field.min)}")
    if field.max is not None and number > Decimal(str(field.max)):
        raise _refuse(field, f"không được lớn hơn {fmt_number(field.max)}")
    return number


def _plain(number: Decimal) -> int | float:
    """JSON-friendly: whole numbers as int, others as float."""
    if number == number.to_integral_value():
        return int(number)
    return float(number)


def check_number(field: TemplateField, value: Any) -> int | float:
    """An integer, decimal or percent field's value as stored, or InvalidValue."""
    number = _number(field, value)
    nonneg = field.min is None or field.min >= 0
    if field.type is FieldType.integer:
        what = "số nguyên không âm" if nonneg else "số nguyên"
        if number is None or number != number.to_integral_value() or (nonneg and number < 0):
            if number is not None and abs(number) > MAX_MAGNITUDE:
                raise _too_large(field)
            raise _refuse(field, f"phải là {what}")
        return int(_bounded(field, number))
    if field.type is FieldType.percent:
        if number is None or number < 0 or number > 100:
            raise _refuse(field, "phải là tỷ lệ phần trăm từ 0 đến 100")
        return _plain(_bounded(field, number))
    if number is None or (nonneg and number < 0):
        raise _refuse(field, f"phải là số{' không âm' if nonneg else ''}")
    return _plain(_bounded(field, number))


# ---------------------------------------------------------------- other kinds


def parse_date(value: Any) -> dt.date | None:
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    if not isinstance(value, str) or len(value) > SHORT_MAX_LENGTH:
        return None
    text = value.strip()
    match = _ISO_DAY.fullmatch(text)
    if match:
        year, month, day = (int(g) for g in match.groups())
    else:
        match = _VN_DAY.fullmatch(text)
        if not match:
            return None
        day, month, year = (int(g) for g in match.groups())
    try:
        return dt.date(year, month, day)
    except ValueError:
        return None


def check_date(field: TemplateField, value: Any) -> str:
    day = parse_date(value)
    if day is None:
        raise _refuse(field, "phải là ngày hợp lệ (ngày/tháng/năm, ví dụ 10/9/2027)")
    if not YEARS[0] <= day.year <= YEARS[1]:
        raise _refuse(field, f"phải là một ngày từ năm {YEARS[0]} đến năm {YEARS[1]}")
    return day.isoformat()


def check_choice(field: TemplateField, value: Any) -> str:
    raw = _scalar_text(value)
    if raw is not None and len(raw) <= SHORT_MAX_LENGTH:
        wanted = normalised(raw).strip().casefold()
        for choice in field.choices:
            if normalised(choice).strip().casefold() == wanted:
                return choice
    options = ", ".join(f"'{c}'" for c in field.choices)
    raise _refuse(field, f"phải là một trong các lựa chọn: {options}")


def check_files(field: TemplateField, value: Any) -> list[int]:
    """Stored file ids (positive integers)."""
    items = value if isinstance(value, (list, tuple)) else [value]
    if len(items) > MAX_FILES:
        raise _refuse(field, f"chỉ nhận tối đa {MAX_FILES} tệp")
    ids: list[int] = []
    for item in items:
        if is_blank(item):
            continue
        text = _scalar_text(item)
        if isinstance(item, (bool, float)) or text is None or not _FILE_ID.fullmatch(text.strip()):
            raise InvalidValue(field.id, f"{_label(field)}: tệp đính kèm không hợp lệ")
        number = int(text.strip())
        if not 0 < number <= MAX_FILE_ID:
            raise InvalidValue(field.id, f"{_label(field)}: tệp đính kèm không hợp lệ")
        ids.append(number)
    return ids


def is_blank(value: Any) -> bool:
    """Nothing given: None, blank text, or a list of those (one level deep)."""
    if value is None:
        return True
    if isinstance(value, str):
        return not value.strip()
    if isinstance(value, (list, tuple)):
        return all(v is None or (isinstance(v, str) and not v.strip()) for v in value)
    return False


def check_value(field: TemplateField, value: Any) -> Any:
    """One given (not blank) value in its stored (JSON) form, or InvalidValue."""
    if field.type is FieldType.file:
        return check_files(field, value)
    if isinstance(value, (list, tuple)):
        present = [v for v in value if not is_blank(v)]
        if len(present) != 1:
            raise _refuse(field, "chỉ nhận một giá trị")
        value = present[0]
    if field.type is FieldType.text:
        return check_text(field, value, text_limit(field))
    if field.type is FieldType.choice:
        return check_choice(field, value)
    if field.type is FieldType.date:
        return check_date(field, value)
    return check_number(field, value)


def validate_values(
    template: ReportTemplate, raw: Mapping[str, Any]
) -> tuple[dict[str, Any], dict[str, str]]:
    """Coerce ``raw`` (form strings or typed values) per ``template``; never raises.

    Returns ``(values, errors)``: ``values`` holds every given field in its stored
    form (int, float, ISO date, canonical choice, NFC text, file ids); ``errors`` maps
    field ids to Vietnamese messages. Keys not in the template are ignored (forms carry
    tokens and buttons).
    """
    values: dict[str, Any] = {}
    errors: dict[str, str] = {}
    for field in template.fields:
        value = raw.get(field.id)
        if is_blank(value):
            if field.required:
                errors[field.id] = (
                    f"{_label(field)} chưa có tệp đính kèm"
                    if field.type is FieldType.file
                    else f"{_label(field)} là bắt buộc"
                )
            continue
        try:
            values[field.id] = check_value(field, value)
        except InvalidValue as exc:
            errors[field.id] = exc.message
    return values, errors


# ---------------------------------------------------------------- stored values


DROPPED = object()  # stored_value's answer for a value that can be neither shown nor counted

_NUMERIC = {FieldType.integer, FieldType.decimal, FieldType.percent}
_NOT_COUNTED = "; không đưa vào báo cáo"


def stored_number_ok(value: Any) -> bool:
    """A stored number that can be shown and counted: finite, within MAX_MAGNITUDE."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    if isinstance(value, int):
        return value.bit_length() <= 64 and abs(value) <= MAX_MAGNITUDE
    return math.isfinite(value) and abs(value) <= MAX_MAGNITUDE


def stored_value(field: TemplateField, value: Any) -> tuple[Any, str | None]:
    """A value read from the store, as it may be shown and counted (or ``DROPPED``), and
    why it was changed or dropped (Vietnamese), or None when it is kept as it is."""
    if value is None:
        return None, None
    if field.type in _NUMERIC:
        if stored_number_ok(value):
            return value, None
        if isinstance(value, float) and not math.isfinite(value):
            why = "không phải là số hữu hạn"
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            why = f"vượt quá giới hạn {fmt_number(MAX_MAGNITUDE)}"
        else:
            why = "không phải là số"
        return DROPPED, why + _NOT_COUNTED
    if field.type is FieldType.file:
        items = value if isinstance(value, list) else []
        ids = [i for i in items if isinstance(i, int) and not isinstance(i, bool)]
        ids = [i for i in ids if 0 < i <= MAX_FILE_ID]
        if len(ids) == len(items) and isinstance(value, list):
            return value, None
        return ids, "có tệp đính kèm không hợp lệ; đã bỏ qua tệp đó"
    text = _scalar_text(value)
    if text is None:
        return DROPPED, "không đọc được" + _NOT_COUNTED
    if _FORBIDDEN.search(text):
        return xml_safe(text)[
            :STORED_TEXT_MAX
        ], "có ký tự điều khiển không hợp lệ; đã bỏ các ký tự đó"
    if len(text) > STORED_TEXT_MAX:
        return text[:STORED_TEXT_MAX], f"dài quá {fmt_number(STORED_TEXT_MAX)} ký tự; đã cắt bớt"
    return value, None


def stored_values(
    template: ReportTemplate, values: Any
) -> tuple[dict[str, Any], list[tuple[str, str]]]:
    """A stored answer's values as they may be shown and counted, and the problems found:
    ``[(field label, why), ...]`` (Vietnamese). Never raises."""
    if not isinstance(values, Mapping):
        if values is None:
            return {}, []
        return {}, [("", "dữ liệu đã lưu không đọc được" + _NOT_COUNTED)]
    clean: dict[str, Any] = {}
    problems: list[tuple[str, str]] = []
    for field in template.fields:
        if field.id not in values:
            continue
        value, why = stored_value(field, values[field.id])
        if why is not None:
            problems.append((field.label, why))
        if value is not DROPPED:
            clean[field.id] = value
    return clean, problems
