"""Report values: coerce and check a unit's answers, and aggregate a cycle's reports.

Input comes from HTML forms (strings), the CLI or a simulation; every problem is a
Vietnamese message that names the field's label, so the portal can show it as is.
Numbers accept the Vietnamese convention ("1.234,5") and the HTML one ("1234.5").
"""

from __future__ import annotations

import datetime as dt
import re
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from decimal import Decimal, InvalidOperation
from typing import Any

from engine.schema import Aggregation, FieldType, ReportTemplate, TemplateField

MAX_TEXT = 20_000

_GROUPED = re.compile(r"^\d{1,3}(?:([.,\u00a0 ])\d{3})(?:\1\d{3})*$")
_SPACES = re.compile(r"[\s\u00a0\u202f]+")


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


def _blank(value: Any) -> bool:
    if value is None:
        return True
    if isinstance(value, str):
        return not value.strip()
    if isinstance(value, (list, tuple)):
        return all(_blank(v) for v in value)
    return False


def _parse_number(text: str) -> Decimal | None:
    """Both '1.234,5' and '1234.5'; a lone ',' is the decimal comma (Vietnamese)."""
    raw = _SPACES.sub(" ", text.strip()).replace("−", "-")
    sign = ""
    if raw[:1] in "+-":
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
    if not re.fullmatch(r"\d+(?:\.\d+)?|\.\d+", raw):
        return None
    try:
        return Decimal(sign + raw)
    except InvalidOperation:  # pragma: no cover - the regex already guards this
        return None


def _number(value: Any) -> Decimal | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, Decimal)):
        return Decimal(value)
    if isinstance(value, float):
        return Decimal(str(value)) if value == value and abs(value) != float("inf") else None
    if isinstance(value, str):
        return _parse_number(value.rstrip("%").strip() if "%" in value else value)
    return None


def _parse_date(value: Any) -> dt.date | None:
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    if not isinstance(value, str):
        return None
    text = value.strip()
    match = re.fullmatch(r"(\d{4})-(\d{1,2})-(\d{1,2})", text)
    if match:
        year, month, day = (int(g) for g in match.groups())
    else:
        match = re.fullmatch(r"(\d{1,2})[/.-](\d{1,2})[/.-](\d{4})", text)
        if not match:
            return None
        day, month, year = (int(g) for g in match.groups())
    try:
        return dt.date(year, month, day)
    except ValueError:
        return None


def _nfc(text: str) -> str:
    return unicodedata.normalize("NFC", text)


def _bounds(field: TemplateField, number: Decimal) -> str | None:
    if field.min is not None and number < Decimal(str(field.min)):
        return f"{_label(field)} phải lớn hơn hoặc bằng {fmt_number(field.min)}"
    if field.max is not None and number > Decimal(str(field.max)):
        return f"{_label(field)} không được lớn hơn {fmt_number(field.max)}"
    return None


def _coerce(field: TemplateField, value: Any) -> tuple[Any, str | None]:
    """One value to its stored (JSON) form, or an error message."""
    kind = field.type
    if kind is FieldType.file:
        items = value if isinstance(value, (list, tuple)) else [value]
        ids: list[int] = []
        for item in items:
            if _blank(item):
                continue
            text = str(item).strip()
            if isinstance(item, bool) or not text.isdigit() or int(text) <= 0:
                return None, f"{_label(field)}: tệp đính kèm không hợp lệ"
            ids.append(int(text))
        return ids, None
    if isinstance(value, (list, tuple)):
        present = [v for v in value if not _blank(v)]
        if len(present) != 1:
            return None, f"{_label(field)} chỉ nhận một giá trị"
        value = present[0]
    if kind is FieldType.text:
        text = _nfc(str(value)).strip()
        if len(text) > MAX_TEXT:
            return None, f"{_label(field)} dài quá {fmt_number(MAX_TEXT)} ký tự"
        return text, None
    if kind is FieldType.choice:
        wanted = _nfc(str(value)).strip()
        for choice in field.choices:
            if _nfc(choice).strip().casefold() == wanted.casefold():
                return choice, None
        options = ", ".join(f"'{c}'" for c in field.choices)
        return None, f"{_label(field)} phải là một trong các lựa chọn: {options}"
    if kind is FieldType.date:
        day = _parse_date(value)
        if day is None:
            return None, f"{_label(field)} phải là ngày hợp lệ (ngày/tháng/năm, ví dụ 10/9/2027)"
        return day.isoformat(), None
    number = _number(value)
    if kind is FieldType.integer:
        nonneg = field.min is None or field.min >= 0
        what = "số nguyên không âm" if nonneg else "số nguyên"
        if number is None or number != number.to_integral_value() or (nonneg and number < 0):
            return None, f"{_label(field)} phải là {what}"
        return int(number), _bounds(field, number)
    if kind is FieldType.percent:
        if number is None or number < 0 or number > 100:
            return None, f"{_label(field)} phải là tỷ lệ phần trăm từ 0 đến 100"
        return _plain(number), _bounds(field, number)
    # decimal
    nonneg = field.min is None or field.min >= 0
    if number is None or (nonneg and number < 0):
        return None, f"{_label(field)} phải là số{' không âm' if nonneg else ''}"
    return _plain(number), _bounds(field, number)


def _plain(number: Decimal) -> int | float:
    """JSON-friendly: whole numbers as int, others as float."""
    if number == number.to_integral_value():
        return int(number)
    return float(number)


def validate_values(
    template: ReportTemplate, raw: Mapping[str, Any]
) -> tuple[dict[str, Any], dict[str, str]]:
    """Coerce ``raw`` (form strings or typed values) per ``template``.

    Returns ``(values, errors)``: ``values`` holds every given field in its stored
    form (int, float, ISO date, canonical choice, stripped text, file ids);
    ``errors`` maps field ids to Vietnamese messages.  Keys not in the template are
    ignored (forms carry tokens and buttons).
    """
    values: dict[str, Any] = {}
    errors: dict[str, str] = {}
    for field in template.fields:
        value = raw.get(field.id)
        if _blank(value):
            if field.required:
                errors[field.id] = (
                    f"{_label(field)} chưa có tệp đính kèm"
                    if field.type is FieldType.file
                    else f"{_label(field)} là bắt buộc"
                )
            continue
        clean, error = _coerce(field, value)
        if error:
            errors[field.id] = error
            continue
        values[field.id] = clean
    return values, errors


# ---------------------------------------------------------------- aggregation


def _numbers(field: TemplateField, reports: Sequence[tuple[str, Mapping[str, Any]]]) -> list[Any]:
    out = []
    for _unit, values in reports:
        value = values.get(field.id)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            out.append(value)
    return out


def _round(value: float) -> int | float:
    rounded = round(value, 2)
    return int(rounded) if rounded == int(rounded) else rounded


def aggregate_field(field: TemplateField, reports: Sequence[tuple[str, Mapping[str, Any]]]) -> Any:
    """One field over every unit's report, per the field's ``aggregate``."""
    how = field.aggregate
    if how in {Aggregation.sum, Aggregation.mean, Aggregation.min, Aggregation.max}:
        numbers = _numbers(field, reports)
        if how is Aggregation.sum:
            return _round(sum(numbers)) if numbers else 0
        if not numbers:
            return None
        if how is Aggregation.mean:
            return _round(sum(numbers) / len(numbers))
        return min(numbers) if how is Aggregation.min else max(numbers)
    if how is Aggregation.count:
        if field.type is FieldType.choice:
            counts = {choice: 0 for choice in field.choices}
            for _unit, values in reports:
                value = values.get(field.id)
                if value in counts:
                    counts[value] += 1
            return counts
        return sum(1 for _unit, values in reports if not _blank(values.get(field.id)))
    return [
        {"unit_id": unit, "value": values.get(field.id)}
        for unit, values in reports
        if not _blank(values.get(field.id))
    ]


def aggregate(
    template: ReportTemplate, reports: Iterable[tuple[str, Mapping[str, Any]]]
) -> dict[str, Any]:
    """Every field of ``template`` aggregated over ``[(unit_id, values), ...]``.

    sum/mean/min/max over the numeric answers (mean rounded to 2 places; None when
    nobody answered), count = units answering (for a choice field: units per choice),
    list_by_unit = ``[{"unit_id", "value"}, ...]`` in the given order.
    """
    rows = list(reports)
    return {field.id: aggregate_field(field, rows) for field in template.fields}


def display_value(
    field: TemplateField, value: Any, unit_names: Mapping[str, str] | None = None
) -> str:
    """An aggregate or a single value as text for documents and the terminal."""
    names = unit_names or {}
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "Có" if value else "Không"
    if isinstance(value, (int, float)):
        text = fmt_number(value)
        if field.type is FieldType.percent:
            return f"{text}%"
        return f"{text} {field.unit}" if field.unit else text
    if isinstance(value, dict):
        return "; ".join(f"{k}: {fmt_number(v)}" for k, v in value.items())
    if isinstance(value, list):
        parts = []
        for item in value:
            if isinstance(item, dict) and "unit_id" in item:
                unit = names.get(item["unit_id"], item["unit_id"])
                parts.append(f"{unit}: {display_value(field, item['value'], names)}")
            else:
                parts.append(str(item))
        return "\n".join(parts) if parts else "—"
    if field.type is FieldType.date and isinstance(value, str):
        day = _parse_date(value)
        if day:
            return f"{day.day:02d}/{day.month:02d}/{day.year}"
    return str(value)


def values_for_template(
    template: ReportTemplate,
    aggregates: Mapping[str, Any],
    source: ReportTemplate | None = None,
    unit_names: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """Map a consolidation's aggregates onto another template's fields (same ids).

    Used to hand a district report upward: scalars that fit the target field are
    kept, a list by unit becomes text for a text field, anything else is left out.
    """
    values: dict[str, Any] = {}
    for field in template.fields:
        if field.id not in aggregates:
            continue
        value = aggregates[field.id]
        if value is None or isinstance(value, bool):
            continue
        if field.type in {FieldType.integer, FieldType.decimal, FieldType.percent}:
            if isinstance(value, (int, float)):
                candidate: Any = round(value) if field.type is FieldType.integer else value
                clean, error = _coerce(field, candidate)
                if error is None:
                    values[field.id] = clean
        elif field.type is FieldType.text:
            source_field = source.field(field.id) if source else None
            shown = display_value(source_field or field, value, unit_names)
            if shown != "—":
                values[field.id] = shown
        elif field.type is FieldType.file and isinstance(value, list):
            ids: list[Any] = []
            for item in value:
                inner = item.get("value") if isinstance(item, dict) else item
                ids.extend(inner if isinstance(inner, list) else [inner])
            values[field.id] = [int(i) for i in ids if str(i).isdigit()]
        elif isinstance(value, str):
            clean, error = _coerce(field, value)
            if error is None:
                values[field.id] = clean
    return values
